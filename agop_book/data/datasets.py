"""torchvision's datasets, read from torchvision's own on-disk layout, as float tensors.

``load_dataset('cifar10', n_train=5000)`` reads the files a ``torchvision.datasets.CIFAR10``
download leaves under the data root, draws a seeded subsample and returns images
``(n, c, H, W)`` in ``[0, 1]`` with integer labels. The data root is the ``root`` argument, else
the environment variable ``AGOP_DATA``, else ``~/.cache/agop/data``. Nothing is downloaded unless
``download=True`` (which hands the download to torchvision, then reads the files the same way).
"""

from __future__ import annotations

import dataclasses
import os
import string
from collections.abc import Callable
from pathlib import Path
from typing import cast

import numpy as np
import torch

from agop.data.splits import one_hot
from agop.runtime import default_device
from agop.validation import (
    ArgumentTypeError,
    check_bool,
    check_choice,
    check_finite,
    check_int,
    check_seed,
)
from agop_book.data.offline import _dtype, resize
from agop_book.data.readers import (
    DataFileError,
    read_cifar_batch,
    read_cifar_meta,
    read_gtsrb_table,
    read_idx,
    read_images,
    read_svhn_mat,
)
from agop_book.notebook import offline

ENV_VAR = "AGOP_DATA"


class DatasetNotAvailable(FileNotFoundError):
    """A dataset's files are not on disk and ``download=False``.

    See :func:`load_dataset` for an example.
    """


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Where datasets live: ``root``, else ``$AGOP_DATA``, else ``~/.cache/agop/data``.

    Examples:
        >>> data_root("/srv/data").as_posix()
        '/srv/data'
        >>> data_root().name if not os.environ.get("AGOP_DATA") else "data"
        'data'
    """
    if root is not None:
        if not isinstance(root, (str, os.PathLike)):
            raise ArgumentTypeError(
                f"root must be a folder path (str or os.PathLike) or None, got {root!r} "
                f"({type(root).__name__})"
            )
        return Path(root).expanduser()
    env = os.environ.get(ENV_VAR, "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "agop" / "data"


@dataclasses.dataclass(repr=False)
class Dataset:
    """Train and test images ``(n, c, H, W)`` in ``[0, 1]`` with integer labels ``0..n_classes-1``.

    Examples:
        >>> import torch
        >>> from agop_book.data import digits
        >>> X, y = digits(device="cpu")
        >>> data = Dataset("digits", X[:1500], y[:1500], X[1500:], y[1500:], n_classes=10)
        >>> data
        Dataset('digits', X_train=(1500, 1, 8, 8), X_test=(297, 1, 8, 8), n_classes=10, dtype=torch.float32, device=cpu)
        >>> torch.equal(data.Y_train.argmax(1), data.y_train)
        True
    """

    name: str
    X_train: torch.Tensor
    y_train: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int
    classes: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        # each part checked by its field's name: a hand-made Dataset with labels outside
        # 0..n_classes-1, a label per image missing or images of two shapes would otherwise
        # surface later, deep inside one_hot or a fit
        if not isinstance(self.name, str):
            raise ArgumentTypeError(f"name must be a str, got {type(self.name).__name__}")
        self.n_classes = check_int(self.n_classes, "n_classes", minimum=1)
        for part in ("train", "test"):
            X, y = getattr(self, f"X_{part}"), getattr(self, f"y_{part}")
            for field, value in ((f"X_{part}", X), (f"y_{part}", y)):
                if not isinstance(value, torch.Tensor):
                    raise ArgumentTypeError(
                        f"{field} must be a torch.Tensor, got {type(value).__name__}"
                    )
            if X.ndim != 4 or not X.is_floating_point():
                raise ValueError(
                    f"X_{part} must be floating images (n, c, H, W), got {X.dtype} of shape "
                    f"{tuple(X.shape)}"
                )
            check_finite(X, f"X_{part}")
            if y.ndim != 1 or y.dtype not in _INTEGER_DTYPES:
                raise ValueError(
                    f"y_{part} must be a 1-d tensor of integer labels, got {y.dtype} of shape "
                    f"{tuple(y.shape)}"
                )
            if y.shape[0] != X.shape[0]:
                raise ValueError(
                    f"y_{part} must hold one label per image of X_{part} ({X.shape[0]}), got "
                    f"{y.shape[0]}"
                )
            if y.numel() and (int(y.min()) < 0 or int(y.max()) >= self.n_classes):
                raise ValueError(
                    f"y_{part} must hold labels in 0..{self.n_classes - 1} (n_classes="
                    f"{self.n_classes}), got values in [{int(y.min())}, {int(y.max())}]"
                )
        if self.X_test.shape[1:] != self.X_train.shape[1:]:
            raise ValueError(
                f"X_test must hold images of X_train's shape {tuple(self.X_train.shape[1:])}, "
                f"got {tuple(self.X_test.shape[1:])}"
            )
        if self.classes is not None:
            if isinstance(self.classes, str) or not isinstance(self.classes, (tuple, list)):
                raise ArgumentTypeError(
                    f"classes must be None or a tuple of class names, got {self.classes!r}"
                )
            if len(self.classes) != self.n_classes:
                raise ValueError(
                    f"classes must hold one name per class (n_classes={self.n_classes}), got "
                    f"{len(self.classes)}"
                )
            self.classes = tuple(self.classes)

    @property
    def Y_train(self) -> torch.Tensor:
        """One-hot training targets ``(n_train, n_classes)``."""
        return one_hot(self.y_train, self.n_classes, dtype=self.X_train.dtype)

    @property
    def Y_test(self) -> torch.Tensor:
        """One-hot test targets ``(n_test, n_classes)``."""
        return one_hot(self.y_test, self.n_classes, dtype=self.X_test.dtype)

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, X_train={tuple(self.X_train.shape)}, "
            f"X_test={tuple(self.X_test.shape)}, n_classes={self.n_classes}, "
            f"dtype={self.X_train.dtype}, device={self.X_train.device})"
        )


# ---------------------------------------------------------------------------------------------
# One entry per dataset: torchvision's class, where its files sit under the root, and a reader.
# A reader (root, train, split, image_size) -> (labels, fetch, classes) returns all labels and a
# function that reads the images at given indices, so a subsample never reads the rest.

Fetch = Callable[[np.ndarray], np.ndarray]
#: the dtypes a Dataset's labels may have
_INTEGER_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)
_EMNIST_SPLITS = {
    "byclass": sorted(set(string.digits + string.ascii_letters)),
    "bymerge": sorted(set(string.digits + string.ascii_letters) - set("cijklmopsuvwxyz")),
    "balanced": sorted(set(string.digits + string.ascii_letters) - set("cijklmopsuvwxyz")),
    "letters": list(string.ascii_lowercase),
    "digits": list(string.digits),
    "mnist": list(string.digits),
}
_FASHION = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
_CIFAR10 = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


def _need(path: Path, name: str, folder: Path, what: str) -> Path:
    """``path`` if it exists, else ``path + '.gz'`` if that does; else raise ``DatasetNotAvailable``."""
    for p in (path, path.with_name(path.name + ".gz")):
        if p.is_file():
            return p
    raise _missing(name, folder, what)


def _missing(name: str, folder: Path, what: str) -> DatasetNotAvailable:
    return DatasetNotAvailable(
        f"{name} is not available: no {what} in {folder}. The data root is the root= argument, "
        f"else the environment variable {ENV_VAR}, else ~/.cache/agop/data. To get it, run "
        f"agop_book.data.load_dataset({name!r}, root=..., download=True) on a machine with network "
        f"access (torchvision downloads it into that folder), or copy the files of a torchvision "
        f"download of {name} there (the layout torchvision.datasets uses)."
    )


def _mnist_family(folder_name: str, display: str, classes) -> Callable:
    def reader(root: Path, train: bool, split: str | None, image_size):
        raw = root / folder_name / "raw"
        if folder_name == "EMNIST":
            prefix = f"emnist-{split}-{'train' if train else 'test'}"
        else:
            prefix = "train" if train else "t10k"
        img_file = _need(
            raw / f"{prefix}-images-idx3-ubyte", display, raw, f"{prefix}-images-idx3-ubyte[.gz]"
        )
        lab_file = _need(
            raw / f"{prefix}-labels-idx1-ubyte", display, raw, f"{prefix}-labels-idx1-ubyte[.gz]"
        )
        X, y = read_idx(img_file), read_idx(lab_file).astype(np.int64)
        if X.ndim != 3 or y.ndim != 1 or X.shape[0] != y.shape[0]:
            raise ValueError(
                f"{img_file}: expected (N, H, W) images and N labels, got {X.shape} and {y.shape}"
            )
        if folder_name == "EMNIST":
            X = X.transpose(0, 2, 1)  # EMNIST stores images transposed: make them upright
            if split == "letters":
                y = y - 1  # letters are labelled 1..26 on disk: use 0..25
        names = classes(split) if callable(classes) else classes
        return y, (lambda idx: X[idx][:, None]), names

    return reader


def _cifar(
    display: str, folder_name: str, train_files, test_files, meta_file: str, meta_key: str, names
) -> Callable:
    def reader(root: Path, train: bool, split, image_size):
        folder = root / folder_name
        parts = []
        for f in train_files if train else test_files:
            if not (folder / f).is_file():
                raise _missing(display, folder, f)
            parts.append(read_cifar_batch(folder / f))
        X = np.concatenate([p[0] for p in parts])
        y = np.concatenate([p[1] for p in parts])
        classes = names or read_cifar_meta(folder / meta_file, meta_key)
        return y, (lambda idx: X[idx]), classes

    return reader


def _svhn(root: Path, train: bool, split, image_size):
    path = root / f"{'train' if train else 'test'}_32x32.mat"
    if not path.is_file():
        raise _missing("SVHN", root, path.name)
    X, y = read_svhn_mat(path)
    return y, (lambda idx: X[idx]), tuple(string.digits)


def _gtsrb(root: Path, train: bool, split, image_size):
    base = root / "gtsrb"
    if train:
        folder = base / "GTSRB" / "Training"
        if not folder.is_dir():
            raise _missing("GTSRB", folder, "class folders (00000/, 00001/, ... of .ppm images)")
        class_dirs = sorted(d for d in folder.iterdir() if d.is_dir())  # torchvision's indexing
        samples = [
            (str(f), i)
            for i, d in enumerate(class_dirs)
            for f in sorted(d.rglob("*"))
            if f.suffix.lower() == ".ppm"
        ]
    else:
        folder, table = base / "GTSRB" / "Final_Test" / "Images", base / "GT-final_test.csv"
        if not folder.is_dir() or not table.is_file():
            raise _missing("GTSRB", base, "GTSRB/Final_Test/Images/ with GT-final_test.csv")
        samples = [(str(folder / name), label) for name, label in read_gtsrb_table(table)]
    if not samples:
        raise _missing("GTSRB", folder, ".ppm images")
    paths = [s[0] for s in samples]
    y = np.array([s[1] for s in samples], dtype=np.int64)
    size = 32 if image_size is None else image_size
    return y, (lambda idx: read_images([paths[i] for i in idx], size)), None


_SPEC: dict[str, tuple[str, Callable, Callable[[str | None], int]]] = {
    # key: (torchvision class name, reader, number of classes given the split)
    "mnist": ("MNIST", _mnist_family("MNIST", "MNIST", tuple(string.digits)), lambda s: 10),
    "fashionmnist": (
        "FashionMNIST",
        _mnist_family("FashionMNIST", "FashionMNIST", _FASHION),
        lambda s: 10,
    ),
    "emnist": (
        "EMNIST",
        _mnist_family("EMNIST", "EMNIST", lambda s: tuple(_EMNIST_SPLITS[s])),
        lambda s: len(_EMNIST_SPLITS[cast(str, s)]),
    ),  # EMNIST always has a split
    "svhn": ("SVHN", _svhn, lambda s: 10),
    "cifar10": (
        "CIFAR10",
        _cifar(
            "CIFAR10",
            "cifar-10-batches-py",
            [f"data_batch_{i}" for i in range(1, 6)],
            ["test_batch"],
            "batches.meta",
            "label_names",
            _CIFAR10,
        ),
        lambda s: 10,
    ),
    "cifar100": (
        "CIFAR100",
        _cifar(
            "CIFAR100", "cifar-100-python", ["train"], ["test"], "meta", "fine_label_names", None
        ),
        lambda s: 100,
    ),
    "gtsrb": ("GTSRB", _gtsrb, lambda s: 43),
}
DATASETS: tuple[str, ...] = tuple(v[0] for v in _SPEC.values())


def _key(name: str) -> str:
    if not isinstance(name, str):
        raise ArgumentTypeError(
            f"name must be a dataset name (one of {', '.join(DATASETS)}), got {name!r} "
            f"({type(name).__name__})"
        )
    key = name.lower().replace("-", "").replace("_", "")
    if key not in _SPEC:
        raise ValueError(f"name: unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return key


def _check_split(key: str, split: str | None) -> str | None:
    if key == "emnist":
        return "balanced" if split is None else check_choice(split, "split", list(_EMNIST_SPLITS))
    if split is not None:
        raise ValueError(f"split= only applies to EMNIST, got split={split!r} for {_SPEC[key][0]}")
    return None


def _download(key: str, root: Path, split: str | None) -> None:
    """Let torchvision download both splits of the dataset into ``root``."""
    import torchvision.datasets as tvd

    cls = getattr(tvd, _SPEC[key][0])
    root.mkdir(parents=True, exist_ok=True)
    for train in (True, False):
        if key == "emnist":
            cls(str(root), split=split, train=train, download=True)
        elif key in ("svhn", "gtsrb"):
            cls(str(root), split="train" if train else "test", download=True)
        else:
            cls(str(root), train=train, download=True)


def _check_n(value, name: str) -> int | None:
    """``value`` as ``None`` or a positive ``int`` (before any file is read)."""
    if value is None:
        return None
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise ArgumentTypeError(f"{name} must be a positive integer or None, got {value!r}")
    if not 1 <= value:
        raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
    return int(value)


def _n(value, name: str, available: int) -> int | None:
    value = _check_n(value, name)
    if value is None:
        return None
    if value > available:
        raise ValueError(f"{name}={value} exceeds the {available} images available")
    return int(value)


def _check_labels(key: str, split: str | None, y: np.ndarray, root: Path, train: bool) -> None:
    """Raise :class:`agop_book.data.readers.DataFileError` when a label lies outside
    ``0..n_classes-1``: a corrupt file or one of another dataset, caught on reading."""
    n_classes = _SPEC[key][2](split)
    bad = (y < 0) | (y >= n_classes)
    if bad.any():
        raise DataFileError(
            f"{_SPEC[key][0]} {'train' if train else 'test'} labels under {root} must lie in "
            f"0..{n_classes - 1}; {int(bad.sum())} do not (e.g. {sorted(set(y[bad].tolist()))[:5]})"
            ": the label file is corrupt or belongs to another dataset"
        )


def _read(key: str, root: Path, split: str | None, image_size, download: bool) -> dict:
    """Both splits' ``(labels, fetch, classes)``; missing files downloaded first if allowed."""
    reader = _SPEC[key][1]

    def read_both():
        return {
            part: reader(root, part == "train", split, image_size) for part in ("train", "test")
        }

    try:
        return read_both()
    except DatasetNotAvailable as err:
        if not download:
            raise
        if offline():
            raise DatasetNotAvailable(
                f"{err} download=True was given, but AGOP_OFFLINE is set: nothing is downloaded."
            ) from None
    _download(key, root, split)
    return read_both()


def read_split(
    name: str,
    *,
    train: bool = True,
    root: str | os.PathLike | None = None,
    split: str | None = None,
    image_size: int | None = None,
    download: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """All images of one split as stored, ``uint8 (N, c, H, W)``, and ``int64`` labels.

    Missing files raise :class:`DatasetNotAvailable`, unless ``download`` (see
    :func:`load_dataset`).

    Examples:
        Offline, without the files, the error says where they were looked for and what to do:

        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as empty:
        ...     read_split("CIFAR10", root=empty)
        Traceback (most recent call last):
        ...
        agop_book.data.datasets.DatasetNotAvailable: CIFAR10 is not available: no data_batch_1 in ...
    """
    key = _key(name)
    split = _check_split(key, split)
    train = check_bool(train, "train")
    download = check_bool(download, "download")
    if image_size is not None:
        image_size = check_int(image_size, "image_size", minimum=1)
    root_path = data_root(root)
    parts = _read(key, root_path, split, image_size, download)
    y, fetch, _ = parts["train" if train else "test"]
    _check_labels(key, split, y, root_path, train)
    return fetch(np.arange(y.shape[0])), y


def load_dataset(
    name: str,
    n_train: int | None = None,
    n_test: int | None = None,
    *,
    root: str | os.PathLike | None = None,
    download: bool = False,
    seed: int = 0,
    split: str | None = None,
    image_size: int | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> Dataset:
    """MNIST, FashionMNIST, EMNIST, SVHN, CIFAR10, CIFAR100 or GTSRB as a :class:`Dataset`.

    Images are ``(n, c, H, W)`` floats in ``[0, 1]`` (pixel / 255), labels ``0..n_classes-1``.
    ``n_train`` / ``n_test`` draw seeded subsamples without replacement (``None``: the whole split,
    in stored order). ``split`` is EMNIST's split (default ``"balanced"``, 47 classes; images are
    made upright and ``letters`` relabelled ``0..25``). ``image_size`` resizes to a square (GTSRB's
    images vary in size and are resized to 32 x 32 by default, as in the paper). SVHN's label
    ``10`` means digit 0, as in torchvision.

    Files are read from torchvision's layout under the data root (``root``, else
    ``$AGOP_DATA``, else ``~/.cache/agop/data``): ``MNIST/raw/``, ``FashionMNIST/raw/``,
    ``EMNIST/raw/`` (IDX files, plain or ``.gz``), ``cifar-10-batches-py/``,
    ``cifar-100-python/`` (python pickles), ``train_32x32.mat`` / ``test_32x32.mat`` (SVHN)
    and ``gtsrb/`` (GTSRB). Missing files raise :class:`DatasetNotAvailable` unless
    ``download=True``, which lets torchvision download them there first (files already on disk
    are read as they are); with ``AGOP_OFFLINE=1`` (:func:`agop_book.notebook.offline`) nothing is
    downloaded and missing files raise :class:`DatasetNotAvailable` whatever ``download`` says.

    Examples:
        Offline, without the files (``download=False``, the default), nothing is fetched:

        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as empty:
        ...     load_dataset("mnist", n_train=100, root=empty)
        Traceback (most recent call last):
        ...
        agop_book.data.datasets.DatasetNotAvailable: MNIST is not available: no train-images-idx3-ubyte[.gz] in ...
    """
    key = _key(name)
    split = _check_split(key, split)
    if image_size is not None:
        image_size = check_int(image_size, "image_size", minimum=1)
    seed = check_seed(seed)
    n_train, n_test = _check_n(n_train, "n_train"), _check_n(n_test, "n_test")
    download = check_bool(download, "download")
    device, dtype = default_device(device), _dtype(dtype)
    tv_name, _, n_classes = _SPEC[key]
    root_path = data_root(root)
    parts = _read(key, root_path, split, image_size, download)
    g = torch.Generator().manual_seed(seed)
    out = {}
    for part, n in (("train", n_train), ("test", n_test)):
        y, fetch, classes = parts[part]
        _check_labels(key, split, y, root_path, part == "train")
        n = _n(n, f"n_{part}", y.shape[0])
        idx = (
            np.arange(y.shape[0])
            if n is None
            else torch.randperm(y.shape[0], generator=g)[:n].numpy()
        )
        X = torch.from_numpy(np.ascontiguousarray(fetch(idx))).to(dtype) / 255.0
        if image_size is not None:
            X = resize(X, (image_size, image_size))
        out[f"X_{part}"] = X.to(device)
        out[f"y_{part}"] = torch.from_numpy(y[idx]).to(device)
    name_out = tv_name if key != "emnist" else f"EMNIST-{split}"
    return Dataset(
        name_out, n_classes=n_classes(split), classes=tuple(classes) if classes else None, **out
    )
