r"""A user's own images for pretrained ImageNet classifiers: torchvision's preprocessing of
files, folders and arrays.

:func:`load_images` gives ``(n, 3, size, size)`` batches, preprocessed as the classifiers were
trained: resize the shorter side, crop the centre, scale to :math:`[0, 1]` and normalise each
channel, :math:`(x - \mu) / \sigma` (:func:`preprocess`). torchvision is imported on first use:
it takes seconds to import, and ``agop.data`` is imported by every estimator.
"""

from __future__ import annotations

import numbers
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from agop.validation import (
    ArgumentTypeError,
    _check_allocation,
    check_dtype,
    check_int,
    check_not_meta,
    check_reals,
)
from agop_book.data.readers import DataFileError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: floating dtypes preprocess delivers images in
_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def _as_uint8_rgb(image: Any, name: str = "image") -> torch.Tensor:
    """One image (path, PIL image, or array ``(H, W)``, ``(H, W, 3|4)``) as a ``(3, H, W)`` float
    in [0, 1]; errors name it ``name`` (and a file by its path)."""
    if isinstance(image, (str, Path)):
        try:
            with Image.open(image) as im:
                image = np.asarray(im.convert("RGB"))
        except (UnidentifiedImageError, OSError, ValueError) as err:
            if isinstance(err, FileNotFoundError):
                raise FileNotFoundError(f"{name}: no such image file {str(image)!r}") from None
            raise DataFileError(
                f"{name}: cannot read {str(image)!r} as an image ({type(err).__name__}: {err}); "
                "the file is corrupt, truncated or not an image"
            ) from err
    elif type(image).__module__.startswith("PIL"):
        image = np.asarray(image.convert("RGB"))
    elif isinstance(image, torch.Tensor):
        image = check_not_meta(image, name).detach().cpu().numpy()
    elif image is None or isinstance(image, (bytes, numbers.Number)):
        raise ArgumentTypeError(
            f"{name} must be an image (a file path, a PIL image or an (H, W) or (H, W, 3) "
            f"array), got {type(image).__name__}"
        )
    try:
        a = np.asarray(image)
    except (TypeError, ValueError) as err:  # ragged nested lists
        raise ArgumentTypeError(
            f"{name} must be an image array, got {type(image).__name__}"
        ) from err
    if a.dtype == bool:
        a = a.astype(np.float32)
    elif np.issubdtype(a.dtype, np.integer):
        if a.size and (a.min() < 0 or a.max() > 255):
            raise ValueError(
                f"{name}: an integer image must hold pixels in 0..255, got values in "
                f"[{a.min()}, {a.max()}] (pass floats in [0, 1] for another scale)"
            )
        a = a.astype(np.float32) / 255.0
    elif a.dtype.kind != "f":
        raise ArgumentTypeError(f"{name} must hold real numbers, got an array of dtype {a.dtype}")
    elif a.size and np.isfinite(a).all() and (a.max() > 1 or a.min() < 0):
        low, high = float(a.min()), float(a.max())
        warnings.warn(
            f"float images are expected in [0, 1]; got values in [{low:g}, {high:g}], which "
            "are clipped to [0, 1]"
            + (
                f" (max {high:g}: a 0..255 image? divide it by 255, or pass it as uint8)"
                if 1 < high <= 255
                else ""
            ),
            stacklevel=3,
        )
    a = a.astype(np.float32)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise ValueError(
            f"{name} must have shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {a.shape}"
        )
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {a.shape}")
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    a = a[:, :, :3]
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)


def _three(values: Sequence[float], name: str) -> list[float]:
    """``values`` as three finite numbers, one per RGB channel."""
    out = check_reals(values, name)
    if len(out) != 3:
        raise ValueError(f"{name} must hold 3 numbers, one per RGB channel, got {len(out)}")
    return out


def preprocess(
    images: Any,
    size: int = 224,
    resize: int | None = None,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    r"""torchvision's ImageNet preprocessing: resize the shorter side to ``resize`` (default
    ``round(size * 256 / 224)``), crop the central ``size x size``, scale to [0, 1] and
    normalise each channel, ``(x - mean) / std``. Returns ``(n, 3, size, size)``.

    ``images``: one image or a list of them (file paths, PIL images, ``(H, W)`` or ``(H, W, 3)``
    arrays, uint8 in 0..255 or floats in [0, 1]; a float image outside [0, 1], such as one in
    0..255, is clipped with a warning). ``mean`` and ``std``: one value per channel (3), ``std``
    positive.

    Examples:
        A black image becomes :math:`-\mu / \sigma` in every channel:

        >>> import numpy as np
        >>> x = preprocess(np.zeros((100, 150, 3), dtype=np.uint8), size=32)
        >>> tuple(x.shape), [round(v, 4) for v in x[0, :, 0, 0].tolist()]
        ((1, 3, 32, 32), [-2.1179, -2.0357, -1.8044])
    """
    return _preprocess(images, size, resize, mean, std, dtype, "images")


def _preprocess(
    images: Any,
    size: int,
    resize: int | None,
    mean: Sequence[float],
    std: Sequence[float],
    dtype: torch.dtype,
    name: str,
) -> torch.Tensor:
    """:func:`preprocess`, its errors naming the caller's argument ``name`` (``images``, or
    :func:`load_images`'s ``source``)."""
    from torchvision.transforms.v2 import functional as TF

    size = check_int(size, "size", minimum=1)
    resize = round(size * 256 / 224) if resize is None else check_int(resize, "resize", minimum=1)
    if resize < size:
        raise ValueError(f"resize ({resize}) must be at least size ({size})")
    dtype = check_dtype(dtype, "dtype", allowed=_DTYPES, allow_none=False)
    mean_t = torch.tensor(_three(mean, "mean"))
    std_values = _three(std, "std")
    if min(std_values) <= 0:
        raise ValueError(f"std must be positive in every channel, got {tuple(std_values)}")
    std_t = torch.tensor(std_values)
    if isinstance(images, (str, Path, np.ndarray, torch.Tensor)) or type(
        images
    ).__module__.startswith("PIL"):
        images = [images]
    if not isinstance(images, Iterable):
        raise ArgumentTypeError(
            f"{name} must be an image (a file path, a PIL image, an array) or a list of them, "
            f"got {type(images).__name__}"
        )
    out = []
    for i, image in enumerate(images):
        x = _as_uint8_rgb(image, f"{name}[{i}]")
        short, long = sorted(x.shape[1:])
        _check_allocation(
            3 * resize * max(resize, round(resize * long / short)),
            4,
            "size, resize",
            f"{name}[{i}] resized to a shorter side of {resize}",
        )
        _check_allocation((i + 1) * 3 * size * size, dtype.itemsize, "size", "the images")
        x = TF.resize(x, [resize], antialias=True)
        x = TF.center_crop(x, [size, size])
        out.append(x)
    if not out:
        raise ValueError(f"{name} is empty: pass at least one image")
    X = torch.stack(out).clamp(0, 1)
    X = (X - mean_t.view(1, 3, 1, 1)) / std_t.view(1, 3, 1, 1)
    return X.to(dtype)


def image_files(folder: str | Path) -> list[Path]:
    """The image files directly in ``folder``, sorted by name.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     for name in ("b.png", "a.jpg", "notes.txt"):
        ...         _ = (Path(folder) / name).write_bytes(b"")
        ...     print([f.name for f in image_files(folder)])
        ['a.jpg', 'b.png']
    """
    if not isinstance(folder, (str, os.PathLike)):
        raise ArgumentTypeError(
            f"folder must be a folder path (str or os.PathLike), got {folder!r} "
            f"({type(folder).__name__})"
        )
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"folder must be an existing directory, got {str(folder)!r}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(
            f"folder {str(folder)!r} holds no image file ({', '.join(IMAGE_SUFFIXES)})"
        )
    return files


def load_images(
    source: str | Path | Sequence[Any],
    n: int | None = None,
    size: int = 224,
    resize: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Images for the ansatz, preprocessed as for ImageNet: ``(n, 3, size, size)``.

    ``source``: a folder of image files, or a list of files, PIL images or arrays (as
    :func:`preprocess` takes them). ``n`` keeps the first ``n``.

    Examples:
        A gray ramp, wider than high, cropped to its centre:

        >>> import numpy as np
        >>> ramp = np.tile(np.linspace(0, 255, 60).astype(np.uint8), (40, 1))
        >>> X = load_images([ramp, ramp.T], size=32)
        >>> tuple(X.shape), bool(X[0, 0, 0, 0] < X[0, 0, 0, -1]), bool(X[1, 0, 0, 0] < X[1, 0, -1, 0])
        ((2, 3, 32, 32), True, True)
    """
    what = "a folder of images or a list of images (files, PIL images, arrays)"
    if isinstance(source, (np.ndarray, torch.Tensor)) and source.ndim != 4:
        raise ValueError(
            f"source must be {what}, or a batch array (n, H, W, c); got an array of shape "
            f"{tuple(source.shape)} (for one image, pass [image])"
        )
    if isinstance(source, (str, os.PathLike)):
        if not Path(source).is_dir():
            raise (FileNotFoundError if not Path(source).exists() else ValueError)(
                f"source must be an existing folder of images, got {str(source)!r}"
            )
        images: list[Any] = image_files(source)
    elif isinstance(source, (Sequence, np.ndarray, torch.Tensor)) and not isinstance(source, bytes):
        images = list(source)
    else:
        raise ArgumentTypeError(f"source must be {what}, got {type(source).__name__}")
    if not images:
        raise ValueError(f"source must be {what}, got an empty {type(source).__name__}")
    if n is not None:
        n = check_int(n, "n", minimum=1)
        if n > len(images):
            raise ValueError(f"n={n} images asked for, but the source holds {len(images)}")
        images = images[:n]
    return _preprocess(images, size, resize, IMAGENET_MEAN, IMAGENET_STD, dtype, "source")
