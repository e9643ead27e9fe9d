"""Tiny files in the real on-disk formats that torchvision downloads, and torch hub checkpoints.

Used by the readers' tests (tests/test_book_data_loaders.py), the pretrained branch of chapter 03
(tests/test_book.py) and the paper profile at smoke scale (tests/paper_smoke.py). Pixels are
seeded random bytes; labels cycle through the classes so every class occurs.
"""

from __future__ import annotations

import csv
import gzip
import pickle
import struct
from pathlib import Path

import numpy as np


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def write_idx(path: Path, array, gz: bool = False) -> None:
    """An IDX file (MNIST's format): magic ``0 0 8 ndim``, big-endian sizes, then uint8 data."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    with (gzip.open if gz else open)(path.with_name(path.name + ".gz") if gz else path, "wb") as fh:
        fh.write(header + array.tobytes())


def write_mnist_like(
    root: Path,
    folder: str,
    n_train: int = 12,
    n_test: int = 7,
    n_classes: int = 10,
    prefix=None,
    gz: bool = False,
    size: int = 28,
    seed: int = 0,
    label_offset: int = 0,
) -> dict:
    """``root/folder/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (MNIST, FashionMNIST;
    EMNIST with ``prefix=lambda part: f"emnist-balanced-{part}"``). Returns the arrays."""
    r = rng(seed)
    raw = root / folder / "raw"
    out = {}
    for part, n in (("train", n_train), ("test", n_test)):
        stem = prefix(part) if prefix else ("train" if part == "train" else "t10k")
        X = r.integers(0, 256, (n, size, size), dtype=np.uint8)
        y = (np.arange(n) % n_classes + label_offset).astype(np.uint8)
        write_idx(raw / f"{stem}-images-idx3-ubyte", X, gz)
        write_idx(raw / f"{stem}-labels-idx1-ubyte", y, gz)
        out[part] = (X, y)
    return out


def write_cifar(
    root: Path, folder: str, files, key: str, n_per_file: int, n_classes: int, seed: int = 0
) -> None:
    """CIFAR's python pickles: ``{"data": (n, 3072) uint8, key: labels, ...}`` per file."""
    r = rng(seed)
    (root / folder).mkdir(parents=True, exist_ok=True)
    for f in files:
        X = r.integers(0, 256, (n_per_file, 3 * 32 * 32), dtype=np.uint8)
        y = list(r.integers(0, n_classes, n_per_file).tolist())
        with open(root / folder / f, "wb") as fh:
            pickle.dump(
                {"batch_label": f, key: y, "data": X, "filenames": ["x"] * n_per_file},
                fh,
                protocol=2,
            )


def write_cifar10(
    root: Path, n_per_file: int = 4, n_test: int | None = None, seed: int = 0
) -> None:
    """``root/cifar-10-batches-py/``: five training batches of ``n_per_file`` images and the
    test batch of ``n_test`` (default ``n_per_file``)."""
    write_cifar(
        root,
        "cifar-10-batches-py",
        [f"data_batch_{i}" for i in range(1, 6)],
        "labels",
        n_per_file,
        10,
        seed,
    )
    write_cifar(
        root,
        "cifar-10-batches-py",
        ["test_batch"],
        "labels",
        n_per_file if n_test is None else n_test,
        10,
        seed + 1,
    )


def write_svhn(root: Path, n_train: int = 9, n_test: int = 4, seed: int = 1) -> None:
    """``root/{train,test}_32x32.mat``: ``X`` stored (H, W, C, N), labels 1..10 (10 means 0)."""
    import scipy.io

    r = rng(seed)
    for split, n in (("train", n_train), ("test", n_test)):
        X = r.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        y = (np.arange(n) % 10 + 1).astype(np.uint8)[:, None]
        scipy.io.savemat(root / f"{split}_32x32.mat", {"X": X, "y": y})


def write_gtsrb(
    root: Path,
    classes=("00000", "00001", "00002"),
    per_class: int = 2,
    test_labels=(2, 0, 1, 1),
    seed: int = 2,
) -> None:
    """``root/gtsrb/GTSRB/Training/<class>/*.ppm`` of varied sizes, and the test folder with
    ``GT-final_test.csv`` (``;``-separated), as torchvision's GTSRB download leaves them."""
    from PIL import Image

    r = rng(seed)
    base = root / "gtsrb"
    for c in classes:
        d = base / "GTSRB" / "Training" / c
        d.mkdir(parents=True)
        for i in range(per_class):
            h, w = r.integers(20, 50, 2)
            Image.fromarray(r.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(d / f"0_{i}.ppm")
        (d / f"GT-{c}.csv").write_text("Filename;ClassId\n")  # ignored, as by torchvision
    test = base / "GTSRB" / "Final_Test" / "Images"
    test.mkdir(parents=True)
    rows = []
    for i, cls in enumerate(test_labels):
        Image.fromarray(r.integers(0, 256, (40, 35, 3), dtype=np.uint8)).save(test / f"{i:05d}.ppm")
        rows.append({"Filename": f"{i:05d}.ppm", "Width": 35, "Height": 40, "ClassId": cls})
    with open(base / "GT-final_test.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["Filename", "Width", "Height", "ClassId"], delimiter=";")
        w.writeheader()
        w.writerows(rows)


def write_hub_checkpoint(name: str, seed: int = 1) -> Path:
    """torchvision's initialisation of ``name``, saved where ``load_model(name)`` looks for the
    pretrained checkpoint (``$TORCH_HOME/hub/checkpoints/<the real file name>``). Code paths only:
    these weights are not ImageNet's."""
    import torch

    from agop_book import pretrained

    path = pretrained.weights_file(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        pretrained.load_model(name, pretrained=False, seed=seed, device="cpu").state_dict(), path
    )
    return path
