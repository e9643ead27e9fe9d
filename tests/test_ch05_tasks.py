"""agop_book.ch05_deep_convrfm: the local-signal tasks (bars, digits and a star in noise):
shapes, seeds, the signal recoverable at zero noise, the noise statistics, and every bad
argument named (all offline)."""

import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from agop_book import ch05_deep_convrfm as ch05
from agop_book import data as book_data


def _signal_rows(X):
    """Index of the row of each bars image whose 32 entries are all equal (the bar)."""
    flat = (X[:, 0] - X[:, 0, :, :1]).abs().amax(-1) == 0  # (n, height)
    assert bool((flat.sum(1) == 1).all()), "exactly one constant row per image"
    return flat.float().argmax(1)


def test_bars_in_noise_shapes_seed_and_signal():
    sigma = 2.0
    X, y = ch05.bars_in_noise(400, sigma, seed=1, device="cpu")
    assert X.shape == (400, 1, 16, 32) and X.dtype == torch.get_default_dtype()
    assert y.dtype == torch.long and torch.bincount(y).tolist() == [200, 200]
    X2, y2 = ch05.bars_in_noise(400, sigma, seed=1, device="cpu")
    assert torch.equal(X, X2) and torch.equal(y, y2)
    assert not torch.equal(X, ch05.bars_in_noise(400, sigma, seed=2, device="cpu")[0])
    rows = _signal_rows(X)
    bar = X[torch.arange(400), 0, rows]  # (n, 32)
    # the bar is (2y - 1) ones / sqrt(32): the paper's +-1 label is 2y - 1
    assert torch.allclose(bar, ((2 * y - 1).float() / math.sqrt(32))[:, None].expand(-1, 32))
    # the bar's row is uniform over the 16 rows (chi-square, 15 dof: 99.9% quantile 37.7)
    counts = torch.bincount(rows, minlength=16).double()
    assert float(((counts - 25) ** 2 / 25).sum()) < 37.7
    # everything else is N(0, sigma / 32)
    noise = X[:, 0][torch.arange(16)[None, :] != rows[:, None]].double()
    sd = math.sqrt(sigma / 32)
    assert abs(float(noise.mean())) < 4 * sd / math.sqrt(noise.numel())
    assert abs(float(noise.std()) / sd - 1) < 0.02


def test_bars_at_zero_noise_and_bad_arguments():
    X, y = ch05.bars_in_noise(5, 0.0, height=4, width=8, device="cpu", dtype=torch.float64)
    assert X.shape == (5, 1, 4, 8)
    assert torch.allclose(X.sum((1, 2, 3)), (2 * y - 1).double() * 8 / math.sqrt(8))
    assert int((X != 0).sum()) == 5 * 8
    for kwargs, match in [
        ({"n": 0, "sigma": 1.0}, "n must"),
        ({"n": 3, "sigma": -1.0}, "sigma"),
        ({"n": 3, "sigma": float("nan")}, "sigma"),
        ({"n": 3, "sigma": 1.0, "width": 0}, "width"),
    ]:
        with pytest.raises(ValueError, match=match):
            ch05.bars_in_noise(**kwargs)


def _find_digits(X, s, pool):
    """For each framed image, the pool image equal to one of its s x s windows (index, or -1).

    Exact matches are found through a random projection of every window (a hash), sorted.
    """
    r = torch.randn(s * s, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    h_pool = pool.double().flatten(1) @ r  # (N,)
    h_win = F.unfold(X.double(), s).transpose(1, 2) @ r  # (n, positions)
    order = h_pool.argsort()
    sorted_h = h_pool[order]
    pos = torch.searchsorted(sorted_h, h_win).clamp(max=len(sorted_h) - 1)
    lower = (pos - 1).clamp(min=0)
    pick = torch.where((sorted_h[pos] - h_win).abs() < (sorted_h[lower] - h_win).abs(), pos, lower)
    gap = (sorted_h[pick] - h_win).abs()  # (n, positions)
    best = gap.min(1)
    idx = order[pick.gather(1, best.indices[:, None])[:, 0]]
    return torch.where(best.values < 1e-9, idx, -1)


def test_digits_in_noise_digit_is_recoverable_at_zero_noise():
    X, y = ch05.digits_in_noise(300, 0.0, seed=0, device="cpu")
    assert X.shape == (300, 1, 12, 12) and ch05.DEFAULT_FRAME["digits"] == 12  # 8 * 42/28
    pool, pool_y = book_data.digits(device="cpu")
    found = _find_digits(X, 8, pool[:, 0])
    assert bool((found >= 0).all())
    assert torch.equal(pool_y[found], y)
    # outside the digit's window there is nothing at sigma = 0: every non-zero pixel fits in 8x8
    nz = X[:, 0] != 0
    rows, cols = nz.any(2), nz.any(1)
    span = lambda m: m.float().flip(1).argmax(1) * -1 + m.shape[1] - 1 - m.float().argmax(1)  # noqa: E731
    assert bool((span(rows) < 8).all()) and bool((span(cols) < 8).all())


def test_digits_in_noise_noise_level_seed_and_disjoint_splits():
    sigma = 3.0
    X, y = ch05.digits_in_noise(500, sigma, seed=2, device="cpu", dtype=torch.float64)
    X0, y0 = ch05.digits_in_noise(500, 0.0, seed=2, device="cpu", dtype=torch.float64)
    assert torch.equal(y, y0)
    # same seed: same digits and positions; the difference is the noise, outside the window
    noise = (X - X0)[X0 == 0]  # background pixels
    noise = noise[noise != 0]
    assert abs(float(noise.std()) / (0.5 * math.sqrt(sigma)) - 1) < 0.03
    assert set(y.tolist()) == set(range(10))
    # the training and test digits come from disjoint parts of the 1797 digits
    pool, _ = book_data.digits(device="cpu", dtype=torch.float64)
    tr = _find_digits(
        ch05.digits_in_noise(1347, 0.0, split="train", device="cpu")[0], 8, pool[:, 0]
    )
    te = _find_digits(ch05.digits_in_noise(450, 0.0, split="test", device="cpu")[0], 8, pool[:, 0])
    img = lambda idx: {tuple(pool[i].flatten().tolist()) for i in idx.tolist()}  # noqa: E731
    assert len(img(tr)) > 1300 and not (img(tr) & img(te))


def test_digits_in_noise_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="frame"):
        ch05.digits_in_noise(3, 1.0, frame=7)
    with pytest.raises(ValueError, match="source"):
        ch05.digits_in_noise(3, 1.0, source="kmnist")
    with pytest.raises(ValueError, match="split"):
        ch05.digits_in_noise(3, 1.0, split="val")
    with pytest.raises(book_data.DatasetNotAvailable, match="MNIST"):
        ch05.digits_in_noise(3, 1.0, source="mnist", root=tmp_path)


def test_star_mask_is_a_symmetric_asterisk():
    m = ch05.star_mask(3, 4)
    assert m.shape == (7, 7) and int(m.sum()) == 21
    assert m[3].all() and m[:, 3].all()  # horizontal, vertical
    assert torch.equal(m, m.flip(0)) and torch.equal(m, m.flip(1)) and torch.equal(m, m.T)
    assert m[1, 1] and m[5, 5] and m[1, 5] and not m[0, 0]
    with pytest.raises(ValueError, match="radius"):
        ch05.star_mask(0)


def test_star_in_noise_draws_the_star_in_two_channels():
    X, y = ch05.star_in_noise(40, noise=0.0, seed=0, device="cpu", dtype=torch.float64)
    assert X.shape == (40, 3, 32, 32) and torch.bincount(y).tolist() == [20, 20]
    assert (
        X[y == 0].abs().max() == 0 and X[:, 2].abs().max() == 0
    )  # class 0 empty; channel 2 unused
    template = ch05.star_mask(3, 4).double()
    for c in (0, 1):  # star at one offset, both channels
        hits = F.conv2d(X[y == 1][:, c : c + 1], template[None, None])  # (20, 1, 26, 26)
        assert bool((hits.flatten(1).max(1).values == 1.5 * template.sum()).all())
        assert bool(((X[y == 1][:, c] == 1.5).flatten(1).sum(1) == template.sum()).all())
    assert torch.equal(X[:, 0], X[:, 1])


def test_star_in_noise_noise_statistics_and_detectability():
    X, y = ch05.star_in_noise(200, seed=3, device="cpu", dtype=torch.float64)
    assert torch.equal(X, ch05.star_in_noise(200, seed=3, device="cpu", dtype=torch.float64)[0])
    noise = X[y == 0]
    assert abs(float(noise.std()) / 0.3 - 1) < 0.01 and abs(float(noise.mean())) < 0.003
    # per pixel, a class-1 image looks like noise (the star covers 42 of 3072 values) ...
    pix = X[y == 1]
    assert abs(float(pix.mean()) - 1.5 * 42 / 3072) < 0.005
    # ... but a matched filter (the star template in channels 0 and 1) separates the classes
    t = ch05.star_mask(3, 4).double()
    w = torch.stack([t, t, torch.zeros_like(t)])[None]
    score = F.conv2d(X, w).flatten(1).max(1).values
    assert float(score[y == 1].min()) > float(score[y == 0].max())


def test_star_in_noise_parameters_and_bad_arguments():
    X, y = ch05.star_in_noise(
        6, noise=0.0, intensity=0.5, radius=2, n_lines=2, channels=(2,), image_size=9, device="cpu"
    )
    assert X.shape == (6, 3, 9, 9) and X[:, :2].abs().max() == 0
    assert set(X[y == 1][:, 2].unique().tolist()) == {0.0, 0.5}
    for kwargs, match in [
        ({"channels": (0, 3)}, "channels"),
        ({"channels": (1, 1)}, "channels"),
        ({"image_size": 5}, "image_size"),
        ({"noise": -0.1}, "noise"),
        ({"intensity": float("inf")}, "intensity"),
        ({"n_lines": 0}, "n_lines"),
    ]:
        with pytest.raises(ValueError, match=match):
            ch05.star_in_noise(4, **kwargs)


def test_star_in_noise_channels_are_integers_and_every_argument_is_named():
    """Channel 2.7 was truncated to 2 silently; intensity=None and seed=2**64 failed deep inside
    (float() of None; torch's "Overflow when unpacking long long"). numpy integers are integers:
    the same images as with Python ints."""
    ref = ch05.star_in_noise(6, channels=(0, 2), image_size=12, seed=1, device="cpu")
    out = ch05.star_in_noise(
        np.int64(6), channels=np.array([0, 2]), image_size=np.int64(12), seed=np.uint8(1),
        radius=np.int64(3), device="cpu",
    )  # fmt: skip
    assert torch.equal(ref[0], out[0]) and torch.equal(ref[1], out[1])
    for kwargs, error, match in [
        ({"channels": (0, 2.7)}, TypeError, r"channels\[1\] must be an integer, got 2.7"),
        ({"channels": (0, np.float64(2.0))}, TypeError, r"channels\[1\] must be an integer"),
        ({"channels": 2}, TypeError, "channels must be a sequence of distinct indices"),
        ({"channels": (0, 3)}, ValueError, r"channels\[1\] must be .*<= 2, got 3"),
        ({"intensity": None}, TypeError, "intensity must be a real number, got None"),
        ({"seed": 2**64}, ValueError, r"seed must be .*below 2\*\*63"),
        ({"seed": 1.5}, TypeError, "seed must be an integer, got 1.5"),
        ({"image_size": 12.0}, TypeError, "image_size must be an integer"),
        ({"radius": True}, TypeError, "radius must be an integer, got True"),
    ]:
        with pytest.raises(error, match=match):
            ch05.star_in_noise(4, device="cpu", **kwargs)
    with pytest.raises(TypeError, match="height must be an integer, got 8.0"):
        ch05.bars_in_noise(4, 1.0, height=8.0)
    with pytest.raises(ValueError, match=r"seed must be .*below 2\*\*63"):
        ch05.digits_in_noise(4, 1.0, seed=2**63)


# Mutation testing (`make mutation MODULES=local_signals`, CONTRIBUTING.md): tests that kill
# surviving mutants, each against a definition written out here.


def _crossed_cells(radius, n_lines, samples=200_001):
    """The docstring's star by brute force: every pixel ``round(p)`` of a dense sample of points
    ``p`` of each open segment (the end points, which may sit on a cell border, left out)."""
    t = torch.linspace(-radius + 1e-6, radius - 1e-6, samples, dtype=torch.float64)
    mask = torch.zeros(2 * radius + 1, 2 * radius + 1, dtype=torch.bool)
    for k in range(n_lines):
        a = math.pi * k / n_lines
        rows = torch.round(radius - t * math.sin(a)).long()
        cols = torch.round(radius + t * math.cos(a)).long()
        mask[rows, cols] = True
    return mask


@pytest.mark.parametrize("radius", [1, 2, 3, 5])
@pytest.mark.parametrize("n_lines", [1, 2, 3, 4, 6])
def test_star_mask_holds_every_cell_its_segments_cross(radius, n_lines):
    """Found by mutation triage: 4 r + 1 points per segment skipped cells a segment crosses at
    any angle but a multiple of 45 degrees (3 lines of radius 3 had gaps: 19 pixels of 21)."""
    mask = ch05.star_mask(radius, n_lines)
    assert mask.dtype == torch.bool
    assert torch.equal(mask, _crossed_cells(radius, n_lines))


def test_star_mask_small_stars_by_hand():
    draw = lambda m: ["".join("-#"[v] for v in row) for row in m.int().tolist()]  # noqa: E731
    assert draw(ch05.star_mask(1, 4)) == ["###"] * 3
    assert draw(ch05.star_mask(2, 1)) == ["-----", "-----", "#####", "-----", "-----"]
    assert draw(ch05.star_mask(2, 2)) == ["--#--", "--#--", "#####", "--#--", "--#--"]
    # the diagonals are r long: they end 1.41 pixels from the centre, short of the corners
    assert draw(ch05.star_mask(2)) == ["--#--", "-###-", "#####", "-###-", "--#--"]


_BARS = dict(n=3, sigma=1.0)
_DIGITS = dict(n=3, sigma=1.0)


@pytest.mark.parametrize(
    "function, kwargs, error, name",
    [
        (ch05.bars_in_noise, dict(n=0, sigma=1.0), ValueError, "n"),
        (ch05.bars_in_noise, dict(_BARS, sigma=-1.0), ValueError, "sigma"),
        (ch05.bars_in_noise, dict(_BARS, height=0), ValueError, "height"),
        (ch05.bars_in_noise, dict(_BARS, width=0), ValueError, "width"),
        (ch05.digits_in_noise, dict(_DIGITS, sigma=-1.0), ValueError, "sigma"),
        (ch05.digits_in_noise, dict(_DIGITS, frame=7), ValueError, "frame"),
        (ch05.digits_in_noise, dict(_DIGITS, frame=12.5), TypeError, "frame"),
        (ch05.digits_in_noise, dict(_DIGITS, split="val"), ValueError, "split"),
        (ch05.digits_in_noise, dict(_DIGITS, source="kmnist"), ValueError, "source"),
        (ch05.star_mask, dict(radius=0), ValueError, "radius"),
        (ch05.star_mask, dict(n_lines=0), ValueError, "n_lines"),
        (ch05.star_in_noise, dict(n=2, noise=-1.0), ValueError, "noise"),
        (ch05.star_in_noise, dict(n=2, channels=(-1,)), ValueError, r"channels\[0\]"),
        (ch05.star_in_noise, dict(n=2, image_size=6), ValueError, "image_size"),
        (ch05.local_signal_task, dict(name="dots"), ValueError, "name"),
    ],
)
def test_each_error_starts_with_the_arguments_name(function, kwargs, error, name):
    with pytest.raises(error, match=f"^{name} must"):
        function(**kwargs)


def test_the_smallest_accepted_sizes():
    """``n``, ``height``, ``width``, ``radius``, ``n_lines`` may be 1, a channel 0, the frame
    the digit's own size, the image the star's: the star (or digit) then fills the image."""
    X, y = ch05.bars_in_noise(1, 0.0, height=1, width=1, device="cpu", dtype=torch.float64)
    assert X.tolist() == [[[[2.0 * int(y) - 1]]]]
    assert ch05.star_mask(1, 1).tolist() == [[False] * 3, [True] * 3, [False] * 3]
    X, y = ch05.star_in_noise(
        8, noise=0.0, channels=(0,), image_size=7, device="cpu", dtype=torch.float64
    )
    star = 1.5 * ch05.star_mask().double()
    assert torch.equal(X[y == 1][:, 0], star.expand(4, 7, 7))
    assert X[y == 0].abs().max() == 0 and X[:, 1:].abs().max() == 0
    X, y = ch05.digits_in_noise(2, 0.0, frame=8, device="cpu", dtype=torch.float64)
    pool, pool_y = book_data.digits(device="cpu", dtype=torch.float64)
    found = _find_digits(X, 8, pool[:, 0])
    assert torch.equal(X[:, 0], pool[found, 0]) and torch.equal(pool_y[found], y)


@pytest.mark.parametrize(
    "function, args, documented",
    [
        (ch05.bars_in_noise, (5, 1.0), dict(height=16, width=32, seed=0)),
        (ch05.digits_in_noise, (5, 1.0), dict(source="digits", frame=12, split="train", seed=0)),
        (
            ch05.star_in_noise,
            (5,),
            dict(
                noise=0.3,
                intensity=1.5,
                radius=3,
                n_lines=4,
                channels=(0, 1),
                image_size=32,
                seed=0,
            ),
        ),
    ],
)
def test_defaults_are_the_documented_ones(function, args, documented):
    default = function(*args, device="cpu")
    explicit = function(*args, device="cpu", **documented)
    assert all(torch.equal(a, b) for a, b in zip(default, explicit, strict=True))
    assert default[0].dtype == torch.get_default_dtype()


@pytest.mark.parametrize(
    "function, args",
    [(ch05.bars_in_noise, (6, 1.0)), (ch05.digits_in_noise, (6, 1.0)), (ch05.star_in_noise, (6,))],
)
def test_float64_images_are_drawn_in_float64(function, args):
    """The noise is drawn in float64, not drawn in float32 and cast: some of its values are
    not float32 numbers."""
    X, _ = function(*args, device="cpu", dtype=torch.float64)
    assert X.dtype == torch.float64
    assert not torch.equal(X, X.float().double())


def test_digits_beyond_the_pool_are_drawn_from_the_seed():
    """More images than the 1348 training digits: drawn with replacement, from the seed."""
    a = ch05.digits_in_noise(1400, 0.5, seed=4, device="cpu")
    b = ch05.digits_in_noise(1400, 0.5, seed=4, device="cpu")
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_offline_digits_split_is_the_documented_fixed_split():
    """The offline pools: 75 % / 25 % of the 1797 digits by a permutation of seed 0, whatever
    the caller's seed (so any training seed and any test seed never share a digit image)."""
    pool, pool_y = book_data.digits(device="cpu", dtype=torch.float64)
    perm = torch.randperm(1797, generator=torch.Generator().manual_seed(0))
    for split, part in (("train", perm[:1348]), ("test", perm[1348:])):
        X, y = ch05.digits_in_noise(len(part), 0.0, frame=8, split=split, seed=7, device="cpu")
        found = _find_digits(X.double(), 8, pool[:, 0])
        assert sorted(found.tolist()) == sorted(part.tolist())
        assert torch.equal(pool_y[found], y)


def test_mnist_digits_are_the_files_pixels_over_255_from_the_split_asked(tmp_path):
    """``source="mnist"``: the digit window is the IDX file's pixels / 255, from the training
    or test file as ``split`` says, read under ``root``."""
    from fake_files import write_mnist_like

    arrays = write_mnist_like(tmp_path, "MNIST", n_train=6, n_test=5)
    for split in ("train", "test"):
        images, labels = arrays[split]
        X, y = ch05.digits_in_noise(
            len(labels), 0.0, source="mnist", split=split, root=tmp_path, frame=28,
            device="cpu", dtype=torch.float64,
        )  # fmt: skip
        pool = torch.from_numpy(images).double() / 255
        found = _find_digits(X, 28, pool)
        assert sorted(found.tolist()) == list(range(len(labels)))
        assert torch.equal(X[:, 0], pool[found])
        assert y.tolist() == labels[found.numpy()].tolist()


@pytest.mark.parametrize(
    "name, options, direct",
    [
        ("star", dict(radius=2, image_size=9), lambda n, s, seed, split: ch05.star_in_noise(
            n, noise=s, seed=seed, radius=2, image_size=9, device="cpu")),
        ("bars", dict(height=4, width=6), lambda n, s, seed, split: ch05.bars_in_noise(
            n, s, seed=seed, height=4, width=6, device="cpu")),
        ("digits", dict(frame=10), lambda n, s, seed, split: ch05.digits_in_noise(
            n, s, seed=seed, split=split, frame=10, device="cpu")),
    ],
)  # fmt: skip
def test_local_signal_task_passes_everything_to_its_generator(name, options, direct):
    make = ch05.local_signal_task(name.upper(), **options)
    for args in ((5, 0.7, 3, "test"), (4, 0.2, 1, "train")):
        got, want = make(*args), direct(*args)
        assert got[0].device.type == "cpu"
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    default_split = make(5, 0.7, 3)
    assert torch.equal(default_split[0], direct(5, 0.7, 3, "train")[0])


def test_mnist_digits_are_read_without_download_unless_asked(monkeypatch):
    """``source="mnist"`` reads MNIST's own split through ``read_split``, passing ``root`` and
    ``download`` (False by default: nothing is fetched unless the caller asks)."""
    calls = []

    def read_split(name, train, root, download):
        calls.append((name, train, root, download))
        return np.zeros((3, 1, 28, 28), np.uint8), np.arange(3, dtype=np.int64)

    monkeypatch.setattr(ch05, "read_split", read_split)
    ch05.digits_in_noise(2, 1.0, source="mnist", root="here", device="cpu")
    ch05.digits_in_noise(2, 1.0, source="mnist", split="test", download=True, device="cpu")
    assert calls == [("mnist", True, "here", False), ("mnist", False, None, True)]


# Hostile inputs


@pytest.mark.parametrize(
    "call, error, match",
    [
        # sizes that would not fit in memory are refused before anything is drawn
        (lambda: ch05.bars_in_noise(10**9, 1.0), ValueError, "n, height, width: the images"),
        (lambda: ch05.bars_in_noise(10, 1.0, height=10**6, width=10**6), ValueError, "n, height"),
        (lambda: ch05.digits_in_noise(10**9, 1.0), ValueError, "n, frame: the images"),
        (lambda: ch05.digits_in_noise(2, 1.0, frame=10**7), ValueError, "n, frame: the images"),
        (lambda: ch05.star_in_noise(10**9), ValueError, "n, image_size: the images"),
        (lambda: ch05.star_in_noise(2, image_size=10**7), ValueError, "n, image_size"),
        (lambda: ch05.star_mask(10**6), ValueError, "radius, n_lines: the star"),
        (lambda: ch05.star_mask(3, 10**10), ValueError, "radius, n_lines: the star"),
        # digits_in_noise checks its arguments before it reads any digit
        (lambda: ch05.digits_in_noise(2, 1.0, frame=0), ValueError, "frame must be a positive"),
        (lambda: ch05.digits_in_noise(2, 1.0, seed=-1), ValueError, "seed must"),
        (lambda: ch05.digits_in_noise(2, 1.0, download="no"), TypeError, "download must"),
        (lambda: ch05.digits_in_noise(2, 1.0, dtype=torch.int64), ValueError, "dtype must"),
        (lambda: ch05.bars_in_noise(2, 1.0, dtype=torch.int64), ValueError, "dtype must"),
        (lambda: ch05.star_in_noise(2, dtype="float99"), TypeError, "dtype must"),
        (lambda: ch05.star_in_noise(2, device="gpu9"), ValueError, "device must"),
        # a task's options are checked against its generator when the task is made
        (lambda: ch05.local_signal_task("bars", bogus=1), TypeError, "bogus: not an option of"),
        (lambda: ch05.local_signal_task("star", sigma=1), TypeError, "sigma: not an option"),
        (lambda: ch05.local_signal_task("bars", seed=1), TypeError, "seed: set by the task's"),
        (lambda: ch05.local_signal_task("digits", split="test"), TypeError, "split: set by"),
        (lambda: ch05.local_signal_task("star", noise=0.1), TypeError, "noise: set by"),
        (lambda: ch05.local_signal_task("digits", device="cpu"), TypeError, "device: set by"),
    ],
)
def test_hostile_inputs_are_refused_by_name(call, error, match):
    with pytest.raises(error, match=f"^{match}"):
        call()


def test_a_task_takes_every_option_of_its_generator():
    for name, generator, options in (
        ("bars", ch05.bars_in_noise, dict(height=3, width=5, dtype=torch.float64)),
        ("star", ch05.star_in_noise, dict(intensity=2.0, radius=1, n_lines=2, channels=(1,),
                                          image_size=5, dtype=torch.float64)),
        ("digits", ch05.digits_in_noise, dict(source="digits", frame=9, root=None,
                                              download=False, dtype=torch.float64)),
    ):  # fmt: skip
        X, y = ch05.local_signal_task(name, **options)(4, 0.5, 3)
        noise = {"star": {"noise": 0.5}}.get(name, {"sigma": 0.5})
        X2, y2 = generator(4, **noise, seed=3, device="cpu", **options)
        assert torch.equal(X, X2) and torch.equal(y, y2)


# Mutation testing, stop 34


def test_memory_checks_count_every_byte_of_the_images_and_the_star(monkeypatch):
    """Each generator asks for the bytes its docstring's arrays take, value by value: the
    float64 images and their copy in ``dtype`` (8 + itemsize bytes a pixel; three channels for
    the star), the digits' three index tensors (24 bytes a pixel more), and the star's mask
    (a byte a pixel) with 64 bytes for each of its ``n_lines * (4 r + 2)`` crossings. Each is
    accepted with exactly that many bytes of memory, refused by its arguments' names with one
    byte less."""
    import agop.validation

    f32, f64 = dict(device="cpu", dtype=torch.float32), dict(device="cpu", dtype=torch.float64)
    for call, need, match in (
        (lambda: ch05.bars_in_noise(3, 1.0, height=4, width=5, **f64), 3 * 4 * 5 * 16, "n, height, width: the images"),
        (lambda: ch05.bars_in_noise(3, 1.0, height=4, width=5, **f32), 3 * 4 * 5 * 12, "n, height, width: the images"),
        (lambda: ch05.digits_in_noise(2, 1.0, frame=9, **f64), 2 * 9 * 9 * (8 + 8 + 24), "n, frame: the images"),
        (lambda: ch05.digits_in_noise(2, 1.0, frame=9, **f32), 2 * 9 * 9 * (8 + 4 + 24), "n, frame: the images"),
        (lambda: ch05.star_in_noise(2, image_size=8, **f64), 2 * 3 * 8 * 8 * 16, "n, image_size: the images"),
        (lambda: ch05.star_in_noise(2, image_size=8, **f32), 2 * 3 * 8 * 8 * 12, "n, image_size: the images"),
        (lambda: ch05.star_mask(3, 4), 7 * 7 + 4 * 14 * 64, "radius, n_lines: the star"),
        (lambda: ch05.star_mask(2, 3), 5 * 5 + 3 * 10 * 64, "radius, n_lines: the star"),
    ):  # fmt: skip
        monkeypatch.setattr(agop.validation, "_memory_bytes", lambda need=need: need)
        call()
        monkeypatch.setattr(agop.validation, "_memory_bytes", lambda need=need: need - 1)
        with pytest.raises(ValueError, match=f"^{match} would need"):
            call()


def test_star_mask_does_not_depend_on_the_default_dtype():
    """The crossings, the half-integer borders and the segments' ends are float64 whatever
    torch's default dtype: under bfloat16 (integers exact only up to 256) two lines of radius
    257 are still the full middle row and column, 515 pixels each."""
    cross = torch.zeros(515, 515, dtype=torch.bool)
    cross[257], cross[:, 257] = True, True
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        mask = ch05.star_mask(257, 2)
    finally:
        torch.set_default_dtype(before)
    assert torch.equal(mask, cross)


@pytest.mark.parametrize(
    "call",
    [
        lambda device: ch05.bars_in_noise(2, 1.0, height=2, width=2, device=device),
        lambda device: ch05.digits_in_noise(2, 1.0, device=device),
        lambda device: ch05.star_in_noise(2, image_size=7, device=device),
    ],
)
def test_a_device_that_cannot_hold_the_images_is_refused_by_name(call):
    """``device`` is read by :func:`agop.runtime.default_device`: a name torch does not know,
    and the meta device (shapes without values), are refused, not ignored."""
    with pytest.raises(ValueError, match="^device must be None, 'cpu'"):
        call("gpu9")
    with pytest.raises(ValueError, match=r"^device='meta' holds shapes without values"):
        call("meta")


@pytest.mark.parametrize(
    "name, set_here, options",
    [
        ("star", ["n", "noise", "seed", "device"],
         "intensity, radius, n_lines, channels, image_size, dtype"),
        ("bars", ["n", "sigma", "seed", "device"], "height, width, dtype"),
        ("digits", ["n", "sigma", "split", "seed", "device"],
         "source, frame, root, download, dtype"),
    ],
)  # fmt: skip
def test_every_argument_the_tasks_make_sets_is_refused_as_an_option(name, set_here, options):
    """The arguments ``make(n, noise, seed, split)`` passes to the generator on each call (the
    noise is ``noise`` for the star, ``sigma`` for the others; ``split`` only for the digits;
    ``device`` always ``'cpu'``) are no options of the task: each is refused by its name, with
    the generator's other arguments listed as the options."""
    for argument in set_here:
        message = (
            f"{argument}: set by the task's make(n, noise, seed, split) on each call, not an "
            f"option of the {name!r} task (its options: {options})"
        )
        with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
            ch05.local_signal_task(name, **{argument: 1})


# Held-out style bugs, round 4


def test_digits_in_noise_draws_the_row_and_column_offsets_independently():
    """Without noise each 12 x 12 frame holds one 8 x 8 training digit, zero elsewhere: brute
    force over the 25 offsets finds where each image's digit can sit. The offset is uniform
    over the 5 x 5 grid, its row and column drawn independently, so most images (about 4 in 5)
    have no placement on the diagonal top = left, and both offsets take all 5 values."""
    from agop_book.ch05_deep_convrfm import _digit_pool

    pool, _, _ = _digit_pool("digits", "train", None)
    pool = pool[:, 0].double()  # (N, 8, 8)
    X, _ = ch05.digits_in_noise(60, 0.0, seed=3, device="cpu", dtype=torch.float64)
    rows, cols, off_diagonal = set(), set(), 0
    for x in X[:, 0]:
        placements = []
        for t in range(5):
            for l in range(5):
                rest = x.clone()
                rest[t : t + 8, l : l + 8] = 0
                window = x[t : t + 8, l : l + 8]
                if rest.abs().max() == 0 and bool((pool == window).all((1, 2)).any()):
                    placements.append((t, l))
        assert placements  # every image holds a whole digit
        off_diagonal += all(t != l for t, l in placements)
        if len(placements) == 1:
            rows.add(placements[0][0])
            cols.add(placements[0][1])
    assert off_diagonal >= 30
    assert rows == cols == set(range(5))


# ---------------------------------------------------------------------------
# Hostile inputs, round 5


@pytest.mark.parametrize("name, options", [("bars", dict(height=8, width=8)), ("star", {})])
def test_round5_local_signal_task_names_a_bad_split(name, options):
    # bars and star have no pools to split: any split used to be accepted, even a typo
    make = ch05.local_signal_task(name, **options)
    with pytest.raises(ValueError, match=r"^split must be one of 'train', 'test'"):
        make(4, 1.0, 0, "tset")
    X, y = make(4, 1.0, 0, "test")  # the two splits differ by seed only: the same images
    X0, y0 = make(4, 1.0, 0, "train")
    assert torch.equal(X, X0) and torch.equal(y, y0)


@pytest.mark.parametrize(
    "name, options, match",
    [
        ("bars", dict(height=0), r"^height must be a positive integer"),
        ("bars", dict(dtype=torch.int64), r"^dtype must be a floating dtype"),
        ("star", dict(intensity=float("inf")), r"^intensity must be a finite number"),
        ("star", dict(radius=20, image_size=12), r"^image_size must be an integer >="),
    ],
)
def test_round5_local_signal_task_names_a_bad_option_value_when_made(name, options, match):
    # used to hand back a task that failed only on its first call, deep in a sweep
    with pytest.raises(ValueError, match=match):
        ch05.local_signal_task(name, **options)


def test_digit_sizes_are_the_pools_own():
    """The frame is checked against ``DIGIT_SIZE`` before any digit is loaded: it must be the
    size of the digits each offline source really holds."""
    for source in ("digits", "mnist_subset"):
        X, _, _ = ch05._digit_pool(source, "test", None)
        assert X.shape[-2:] == (ch05.DIGIT_SIZE[source],) * 2


def test_digits_task_checks_its_option_values_when_made(monkeypatch):
    """``local_signal_task("digits", ...)`` names a bad option value at once, without loading
    the digits (which could mean a download), as the other tasks do."""

    def no_loading(*args, **kwargs):
        raise AssertionError("the digits were loaded")

    monkeypatch.setattr(ch05, "_digit_pool", no_loading)
    for options, error, message in (
        (dict(frame=7), ValueError, r"^frame must be an integer >= the digit's size 8, got 7"),
        (dict(source="mnist", frame=27), ValueError, r"^frame must be an integer >= .* 28"),
        (dict(source="emnist"), ValueError, "^source must be one of"),
        (dict(download="yes"), TypeError, "^download must be True or False"),
        (dict(root=3), TypeError, "^root must be None or a path"),
        (dict(dtype="int8"), ValueError, "^dtype must be"),
    ):
        with pytest.raises(error, match=message):
            ch05.local_signal_task("digits", **options)
    make = ch05.local_signal_task("digits", frame=8, source="digits")  # the smallest frame
    with pytest.raises(AssertionError, match="loaded"):
        make(2, 0.0, 0)  # only a call loads
    monkeypatch.undo()
    X, y = make(3, 0.0, 0, "test")
    assert X.shape == (3, 1, 8, 8)
    torch.testing.assert_close(X, ch05.digits_in_noise(3, 0.0, frame=8, split="test")[0])
