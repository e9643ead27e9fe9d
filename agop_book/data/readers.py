"""Small readers for the files torchvision's datasets keep on disk.

They read the formats without torchvision's md5 checks (which only the real files pass), so
tests can write tiny files in the same formats. Each returns ``uint8`` arrays ``(N, c, H, W)``
and ``int64`` labels. A file that cannot be read (truncated, corrupt, of another format, pixel
values outside ``0..255``) raises :class:`DataFileError` naming it; a missing file raises
``FileNotFoundError``.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import importlib
import math
import os
import pickle
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from agop.validation import (
    _check_allocation,
    check_int,
)


class DataFileError(ValueError):
    """A data file exists but cannot be read as the format it should have.

    Examples:
        A truncated download of a compressed MNIST file:

        >>> import gzip, tempfile
        >>> from pathlib import Path
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = Path(folder) / "train-images-idx3-ubyte.gz"
        ...     whole = gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1]))
        ...     _ = path.write_bytes(whole[:-6])  # the last bytes never arrived
        ...     try:
        ...         read_idx(path)
        ...     except DataFileError as err:
        ...         print(isinstance(err, ValueError), path.name in str(err))
        True True
    """


#: GTSRB's classes: ClassId 0..42
GTSRB_CLASSES = 43


class UnsafePickle(pickle.UnpicklingError):
    """A pickled data file asks for a class other than numpy arrays: refused, never run."""


def _check_path(path: Any, name: str = "path") -> Path:
    """``path`` as a ``Path``: a ``str`` or an ``os.PathLike``, else ``TypeError`` naming ``name``."""
    if isinstance(path, (str, os.PathLike)) and not isinstance(path, bytes):
        return Path(path)
    raise TypeError(f"{name} must be a file path (str or os.PathLike), got {path!r}")


@contextlib.contextmanager
def reading(path: str | Path, what: str, extra: tuple[type[Exception], ...] = ()) -> Iterator[None]:
    """Turn any failure to parse ``path`` into a :class:`DataFileError` that names the file and
    the format expected (``what``); missing files stay ``FileNotFoundError``. ``extra``: further
    exception types of the parser that mean the same (scipy's ``MatReadError``, say)."""
    errors: tuple[type[BaseException], ...] = (
        OSError,
        EOFError,
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        AttributeError,
        pickle.UnpicklingError,
        zlib.error,
        NotImplementedError,
        *extra,
    )
    try:
        yield
    except (FileNotFoundError, DataFileError):
        raise
    except UnsafePickle as err:
        raise UnsafePickle(f"{path}: {err}") from err
    except errors as err:
        raise DataFileError(
            f"{path}: cannot read it as {what} ({type(err).__name__}: {err}); "
            "the file is truncated or corrupt: delete it and download again"
        ) from err


def as_pixels(values: Any, path: str | Path, what: str = "images") -> np.ndarray:
    """``values`` as ``uint8`` pixels; :class:`DataFileError` if any is not an integer in
    ``0..255`` (a cast would wrap 256 to 0 silently)."""
    arr = np.asarray(values)
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype.kind not in "iuf" or (
        arr.size
        and (
            arr.min() < 0
            or arr.max() > 255
            or (arr.dtype.kind == "f" and not np.array_equal(arr, np.round(arr)))
        )
    ):
        low, high = (arr.min(), arr.max()) if arr.size and arr.dtype.kind in "iuf" else ("?", "?")
        raise DataFileError(
            f"{path}: {what} must be integers in 0..255, found values in "
            f"[{low}, {high}] (dtype {arr.dtype})"
        )
    return arr.astype(np.uint8)


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file (MNIST's format), plain or gzip-compressed (``.gz``), as a ``uint8`` array.

    Layout: two zero bytes, the type byte ``0x08`` (unsigned byte), the number of dimensions
    ``d``, then ``d`` big-endian 32-bit sizes, then the data in C order.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = Path(folder) / "labels-idx1-ubyte"
        ...     _ = path.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1]))
        ...     print(read_idx(path).tolist())
        [7, 2, 1]
    """
    path = _check_path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with reading(path, "an IDX file"), opener(path, "rb") as fh:
        data = fh.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataFileError(f"{path} is not an IDX file (bad magic number)")
    if data[2] != 0x08:
        raise DataFileError(f"{path}: IDX type 0x{data[2]:02x} is not supported (only uint8, 0x08)")
    nd = data[3]
    if nd < 1 or len(data) < 4 + 4 * nd:
        raise DataFileError(f"{path}: truncated IDX header")
    shape = tuple(int(v) for v in np.frombuffer(data, dtype=">u4", count=nd, offset=4))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * nd)
    if body.size != math.prod(shape):  # Python ints: np.prod would overflow int64 (to 0)
        raise DataFileError(f"{path}: IDX header says shape {shape} but holds {body.size} values")
    return body.reshape(shape)


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickle dictionaries of numpy arrays and plain Python values, nothing else.

    CIFAR's batches are pickles; this refuses any other class so that a tampered file cannot run
    code while being read.
    """

    _ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise UnsafePickle(f"refusing to load {module}.{name} from a data file")
        numpy2 = int(np.__version__.split(".")[0]) >= 2
        if numpy2 and module.startswith("numpy.core"):
            module = "numpy._core" + module[len("numpy.core") :]
        elif not numpy2 and module.startswith("numpy._core"):
            module = "numpy.core" + module[len("numpy._core") :]
        return getattr(importlib.import_module(module), name)


def read_cifar_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR python batch: images ``(N, 3, 32, 32)`` uint8 and labels (``labels`` or ``fine_labels``)."""
    path = _check_path(path)
    with reading(path, "a CIFAR python batch"):
        with open(path, "rb") as fh:
            entry = _ArrayUnpickler(fh, encoding="latin1").load()
        if not isinstance(entry, dict) or "data" not in entry:
            raise DataFileError(f"{path} is not a CIFAR batch (no 'data' entry)")
        key = "labels" if "labels" in entry else "fine_labels"
        if key not in entry:
            raise DataFileError(f"{path} is not a CIFAR batch (no 'labels' or 'fine_labels' entry)")
        X = as_pixels(entry["data"], path).reshape(-1, 3, 32, 32)
        y = np.asarray(entry[key], dtype=np.int64)
        if y.shape != (X.shape[0],):
            raise DataFileError(f"{path}: {X.shape[0]} images but labels of shape {y.shape}")
    return X, y


def read_cifar_meta(path: str | Path, key: str) -> list[str] | None:
    """Class names stored in CIFAR's meta file under ``key``, or ``None`` when the file is
    absent; a file that is not a dict holding a non-empty list of names under ``key`` raises
    :class:`DataFileError` naming it."""
    path = _check_path(path)
    if not isinstance(key, str):
        raise TypeError(f"key must be a str, got {key!r}")
    if not path.is_file():
        return None
    with reading(path, "a CIFAR meta file"), open(path, "rb") as fh:
        meta = _ArrayUnpickler(fh, encoding="latin1").load()
    names = meta.get(key) if isinstance(meta, dict) else None
    if isinstance(names, np.ndarray):
        names = names.tolist()
    if (
        not isinstance(names, (list, tuple))
        or not names
        or not all(isinstance(v, (str, bytes)) for v in names)
    ):
        raise DataFileError(
            f"{path}: a CIFAR meta file holds a dict with a list of class names under {key!r}; "
            f"this one does not (got {type(meta).__name__}"
            + (f" with {key!r}: {type(names).__name__})" if isinstance(meta, dict) else ")")
        )
    return [v.decode("latin1") if isinstance(v, bytes) else v for v in names]


def read_svhn_mat(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """SVHN's ``*_32x32.mat``: ``X`` stored ``(32, 32, 3, N)`` becomes ``(N, 3, 32, 32)``; label 10 becomes 0."""
    import scipy.io
    from scipy.io.matlab import MatReadError

    path = _check_path(path)
    with reading(path, "an SVHN .mat file", (MatReadError,)):
        mat = scipy.io.loadmat(str(path))
        X = np.ascontiguousarray(np.transpose(as_pixels(mat["X"], path), (3, 2, 0, 1)))
        labels = np.asarray(mat["y"])
        if labels.dtype.kind not in "iuf" or (
            labels.size and not np.array_equal(labels, np.round(labels))
        ):
            raise DataFileError(f"{path}: labels y must be integers, got dtype {labels.dtype}")
        if labels.size and (labels.min() < 0 or labels.max() > 10):
            raise DataFileError(
                f"{path}: labels y must lie in 1..10 (10 for the digit 0), found values in "
                f"[{labels.min():g}, {labels.max():g}]"
            )
        y = labels.astype(np.int64).reshape(-1)
        if y.shape != (X.shape[0],):
            raise DataFileError(f"{path}: {X.shape[0]} images but {y.shape[0]} labels")
    y[y == 10] = 0
    return X, y


def read_gtsrb_table(path: str | Path) -> list[tuple[str, int]]:
    r"""GTSRB's test table (``GT-final_test.csv``: ``;``-separated, with a header): the
    ``(Filename, ClassId)`` of each row. A missing column or a class that is not a
    non-negative integer raises :class:`DataFileError` naming the file (and the column).

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = Path(folder) / "GT-final_test.csv"
        ...     _ = path.write_text("Filename;Width;ClassId\n00000.ppm;53;16\n00001.ppm;42;1\n")
        ...     print(read_gtsrb_table(path))
        [('00000.ppm', 16), ('00001.ppm', 1)]
    """
    path = _check_path(path)
    with reading(path, "GTSRB's ;-separated test table"), open(path, newline="") as fh:
        reader = csv.DictReader(fh, delimiter=";", skipinitialspace=True)
        columns = [c.strip() for c in reader.fieldnames or []]
        for column in ("Filename", "ClassId"):
            if column not in columns:
                raise DataFileError(
                    f"{path}: no column {column!r} in GTSRB's test table (its header "
                    f"has {columns}); the file is truncated or not GT-final_test.csv"
                )
        rows = []
        for line, row in enumerate(reader, start=2):
            name, label = row.get("Filename"), row.get("ClassId")
            if (
                not name
                or label is None
                or not label.strip().isdigit()
                or int(label) >= GTSRB_CLASSES
            ):
                raise DataFileError(
                    f"{path}, line {line}: expected a Filename and a ClassId in "
                    f"0..{GTSRB_CLASSES - 1}, got {name!r} and {label!r}"
                )
            rows.append((name.strip(), int(label)))
    return rows


def read_images(paths: Sequence[str | os.PathLike], size: int) -> np.ndarray:
    """Image files (any format PIL reads, e.g. GTSRB's ``.ppm``) as RGB ``uint8`` ``(N, 3, size, size)``."""
    if isinstance(paths, (str, bytes, os.PathLike)) or not isinstance(paths, Sequence):
        raise TypeError(f"paths must be a list of image file paths, got {paths!r}")
    files = [_check_path(p, f"paths[{i}]") for i, p in enumerate(paths)]
    size = check_int(size, "size", minimum=1)
    _check_allocation(len(files) * 3 * size * size, 1, "size", "the images")
    BILINEAR = Image.BILINEAR  # type: ignore[attr-defined]  # set at import by PIL
    out = np.empty((len(files), 3, size, size), dtype=np.uint8)
    for i, p in enumerate(files):  # one file per image: reading is the loop, not arithmetic
        with reading(p, "an image"), Image.open(p) as img:
            rgb = img.convert("RGB").resize((size, size), BILINEAR)
            out[i] = np.asarray(rgb).transpose(2, 0, 1)
    return out
