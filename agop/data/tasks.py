"""Local-signal tasks (Karp et al., 2021, as Beaglehole et al. use them, and the star task).

A small signal sits at a random place in a large field of Gaussian noise; the noise level is
the axis of every plot. Every generator is seeded through a CPU ``torch.Generator`` (the same
images on every device) and returns ``(X, y)`` with ``X`` of shape ``(n, c, H, W)`` and integer
labels ``y``. Binary tasks use labels ``{0, 1}``; the paper's ``+-1`` label is ``2 y - 1``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable

import torch

from agop.data.datasets import read_split
from agop.data.offline import _dtype, digits
from agop.runtime import default_device
from agop.validation import ArgumentTypeError, check_choice, check_int, check_real, check_seed


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
    y = _balanced_labels(n, g)
    X = torch.randn(n, 1, height, width, generator=g, dtype=torch.float64) * math.sqrt(
        sigma / width
    )
    rows = torch.randint(height, (n,), generator=g)
    X[torch.arange(n), 0, rows, :] = ((2 * y - 1).double() / math.sqrt(width))[:, None]
    device = default_device(device)
    return X.to(device=device, dtype=dtype), y.to(device)


# The authors' notebook (aradha/agop_feature_learning, kernel_machine_agop/conv_rfm/
# CRFM_noisy_mnist.ipynb) puts a 28 x 28 MNIST digit in a 42 x 42 frame: 1.5 times the digit.
# scikit-learn's 8 x 8 digits keep that ratio in a 12 x 12 frame.
DEFAULT_FRAME = {"digits": 12, "mnist": 42}


def _digit_pool(
    source: str, split: str, root, download: bool = False
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """All digits of ``source``'s ``split`` ``(N, 1, s, s)``, their labels, and the pixel scale.

    The images are returned as stored (uint8 for MNIST, to keep 60000 images small); divided by
    the scale they lie in ``[0, 1]``.
    """
    split = check_choice(split, "split", ("train", "test"))
    source = check_choice(source, "source", ("digits", "mnist"))
    if source == "digits":
        X, y = digits(device="cpu", dtype=torch.float64)
        # A fixed split of the 1797 digits (75% / 25%, seed 0), so that training and test
        # images of the task never share a digit, whatever seeds the caller uses.
        perm = torch.randperm(X.shape[0], generator=torch.Generator().manual_seed(0))
        n_train = int(round(0.75 * X.shape[0]))
        idx = perm[:n_train] if split == "train" else perm[n_train:]
        return X[idx], y[idx], 1.0
    if source == "mnist":
        images, labels = read_split("mnist", train=split == "train", root=root, download=download)
        return torch.from_numpy(images), torch.from_numpy(labels), 255.0
    raise ValueError(f"source must be 'digits' or 'mnist', got {source!r}")


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
    MNIST files, see :func:`agop.data.load_dataset`; ``root`` and ``download`` are passed to it).
    ``source="digits"`` (offline, the quick profile): scikit-learn's 8 x 8 digits in a 12 x 12
    frame, the same ratio 42/28 = 1.5. ``split`` picks the digits: MNIST's own train/test
    split, or a fixed 75%/25% split of scikit-learn's 1797 digits, so a training set and a test set
    never share a digit image. Digits are drawn without replacement while the pool lasts (with
    replacement when ``n`` exceeds it).

    Examples:
        >>> X, y = digits_in_noise(3, sigma=0.0, device="cpu")  # no noise: just the digit
        >>> tuple(X.shape), y.tolist()
        ((3, 1, 12, 12), [2, 7, 0])
        >>> [int((x != 0).any(0).sum()) <= 8 for x in X[:, 0]]  # an 8 x 8 digit, 2 blank columns
        [True, True, True]
    """
    n, sigma = _check_n(n), _check_nonneg(sigma, "sigma")
    pool_X, pool_y, scale = _digit_pool(source, split, root, download)
    s = pool_X.shape[-1]
    frame = DEFAULT_FRAME[source] if frame is None else check_int(frame, "frame")
    if frame < s:
        raise ValueError(f"frame must be an integer >= the digit's size {s}, got {frame!r}")
    g = torch.Generator().manual_seed(check_seed(seed))
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
    device = default_device(device)
    return X.to(device=device, dtype=_dtype(dtype)), pool_y[idx].to(device)


def star_mask(radius: int = 3, n_lines: int = 4) -> torch.Tensor:
    r"""A star: ``n_lines`` segments through the centre of a :math:`(2r+1) \times (2r+1)` grid, as a
    bool mask.

    Segment :math:`k` runs from :math:`-r u_k` to :math:`r u_k` with direction :math:`u_k` at
    angle :math:`\pi k / n` (:math:`n` = ``n_lines``; for 4 lines: horizontal, vertical and both
    diagonals, an asterisk), rasterised by rounding.

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
    t = torch.linspace(-radius, radius, 4 * radius + 1, dtype=torch.float64)
    angle = torch.arange(n_lines, dtype=torch.float64) * math.pi / n_lines
    rows = torch.round(radius - t[None, :] * torch.sin(angle)[:, None]).long()
    cols = torch.round(radius + t[None, :] * torch.cos(angle)[:, None]).long()
    mask = torch.zeros(2 * radius + 1, 2 * radius + 1, dtype=torch.bool)
    mask[rows.flatten(), cols.flatten()] = True
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
    device = default_device(device)
    return X.to(device=device, dtype=_dtype(dtype)), y.to(device)
