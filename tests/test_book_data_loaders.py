"""agop_book.data.load_dataset on tiny files written here in each dataset's real on-disk format.

Where torchvision can read the same tiny files (it checks md5 sums only for some datasets; the
check is switched off here where it would refuse them) its output is the reference.
"""

import gzip
import pickle
import struct

import numpy as np
import pytest
import torch
from fake_files import (
    write_cifar,
    write_cifar10,
    write_gtsrb,
    write_mnist_like,
    write_svhn,
)

from agop.data import one_hot
from agop_book import ch05_deep_convrfm as ch05
from agop_book import data
from agop_book.data import DataFileError, load_dataset, read_split
from agop_book.data.readers import (
    read_cifar_batch,
    read_cifar_meta,
    read_gtsrb_table,
    read_idx,
    read_images,
    read_svhn_mat,
)


@pytest.mark.parametrize("name, folder", [("MNIST", "MNIST"), ("FashionMNIST", "FashionMNIST")])
def test_mnist_family_matches_torchvision(tmp_path, name, folder):
    import torchvision.datasets as tvd

    write_mnist_like(tmp_path, folder)
    ds = data.load_dataset(name, root=tmp_path, device="cpu")
    assert ds.X_train.shape == (12, 1, 28, 28) and ds.X_test.shape == (7, 1, 28, 28)
    assert ds.n_classes == 10 and len(ds.classes) == 10
    for train, X, y in ((True, ds.X_train, ds.y_train), (False, ds.X_test, ds.y_test)):
        ref = getattr(tvd, name)(str(tmp_path), train=train, download=False)
        assert torch.equal(X[:, 0], ref.data.float() / 255) and torch.equal(y, ref.targets)
    assert ds.X_train.dtype == torch.get_default_dtype() and ds.y_train.dtype == torch.long
    assert 0 <= float(ds.X_train.min()) and float(ds.X_train.max()) <= 1
    assert torch.equal(ds.Y_train, one_hot(ds.y_train, 10))


def test_mnist_reads_gzip_only_files_and_subsamples_with_a_seed(tmp_path):
    files = write_mnist_like(tmp_path, "MNIST", n_train=30, n_test=20, gz=True)
    assert not (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte").exists()
    ds = data.load_dataset(
        "mnist", n_train=10, n_test=5, root=tmp_path, seed=1, device="cpu", dtype=torch.float64
    )
    assert ds.X_train.shape == (10, 1, 28, 28) and ds.X_test.shape == (5, 1, 28, 28)
    X, y = files["train"]
    # every drawn image is the stored image with its own label, without repetition
    flat = torch.from_numpy(X.reshape(30, -1)).double() / 255
    match = (ds.X_train.flatten(1)[:, None] == flat[None]).all(-1)  # (10, 30)
    assert bool((match.sum(1) == 1).all()) and len(set(match.float().argmax(1).tolist())) == 10
    assert torch.equal(ds.y_train, torch.from_numpy(y.astype(np.int64))[match.float().argmax(1)])
    same = data.load_dataset("mnist", n_train=10, n_test=5, root=tmp_path, seed=1, device="cpu")
    other = data.load_dataset("mnist", n_train=10, n_test=5, root=tmp_path, seed=2, device="cpu")
    assert same.X_train.dtype == torch.float32  # the default dtype
    assert torch.equal(same.y_train, ds.y_train) and torch.equal(same.X_test, ds.X_test.float())
    assert not torch.equal(other.X_train, ds.X_train.float())
    resized = data.load_dataset(
        "mnist", n_train=3, n_test=3, root=tmp_path, image_size=14, device="cpu"
    )
    assert resized.X_train.shape == (3, 1, 14, 14)


def test_emnist_balanced_by_default_upright_and_letters_relabelled(tmp_path):
    import torchvision.datasets as tvd

    write_mnist_like(tmp_path, "EMNIST", n_classes=47, prefix=lambda p: f"emnist-balanced-{p}")
    write_mnist_like(
        tmp_path, "EMNIST", n_classes=26, label_offset=1, prefix=lambda p: f"emnist-letters-{p}"
    )
    ds = data.load_dataset("EMNIST", root=tmp_path, device="cpu")
    assert ds.name == "EMNIST-balanced" and ds.n_classes == 47 and len(ds.classes) == 47
    ref = tvd.EMNIST(str(tmp_path), split="balanced", train=True, download=False)
    # torchvision keeps the stored (transposed) orientation; we return images upright
    assert torch.equal(ds.X_train[:, 0], ref.data.transpose(1, 2).float() / 255)
    assert torch.equal(ds.y_train, ref.targets)
    letters = data.load_dataset("emnist", root=tmp_path, split="letters", device="cpu")
    ref = tvd.EMNIST(str(tmp_path), split="letters", train=False, download=False)
    assert letters.n_classes == 26 and torch.equal(letters.y_test, ref.targets - 1)
    assert letters.y_train.tolist() == list(range(12))  # stored as 1..12
    with pytest.raises(ValueError, match="split must be one of .*balanced"):
        data.load_dataset("emnist", root=tmp_path, split="bogus")
    with pytest.raises(data.DatasetNotAvailable, match="emnist-digits-train"):
        data.load_dataset("emnist", root=tmp_path, split="digits")


def _tv_reference(monkeypatch, cls, root, **kw):
    """torchvision's reading of our tiny files, with its md5 check switched off."""
    monkeypatch.setattr(cls, "_check_integrity", lambda self: True)
    if hasattr(cls, "_load_meta"):
        monkeypatch.setattr(cls, "_load_meta", lambda self: None)
    return cls(str(root), download=False, **kw)


def test_cifar10_and_cifar100_match_torchvision(tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    write_cifar10(tmp_path, n_per_file=4)
    write_cifar(tmp_path, "cifar-100-python", ["train", "test"], "fine_labels", 6, 100)
    with open(tmp_path / "cifar-100-python" / "meta", "wb") as fh:
        pickle.dump({"fine_label_names": [f"c{i}" for i in range(100)]}, fh, protocol=2)
    for name, cls, n_train, n_classes in (
        ("cifar10", tvd.CIFAR10, 20, 10),
        ("CIFAR100", tvd.CIFAR100, 6, 100),
    ):
        ds = data.load_dataset(name, root=tmp_path, device="cpu")
        assert ds.X_train.shape == (n_train, 3, 32, 32) and ds.n_classes == n_classes
        for train, X, y in ((True, ds.X_train, ds.y_train), (False, ds.X_test, ds.y_test)):
            ref = _tv_reference(monkeypatch, cls, tmp_path, train=train)
            hwc = torch.from_numpy(ref.data).float() / 255  # torchvision keeps HWC
            assert torch.equal(X, hwc.permute(0, 3, 1, 2)) and y.tolist() == list(ref.targets)
    assert data.load_dataset("cifar100", root=tmp_path, device="cpu").classes[3] == "c3"
    assert data.load_dataset("cifar10", root=tmp_path, device="cpu").classes[0] == "airplane"


def test_cifar_reader_refuses_pickled_code(tmp_path):
    class Evil:
        def __reduce__(self):
            import os

            return (os.getcwd, ())

    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for f in ("train", "test"):
        with open(folder / f, "wb") as fh:
            pickle.dump({"data": Evil(), "fine_labels": [0]}, fh, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="refusing to load posix.getcwd"):
        data.load_dataset("cifar100", root=tmp_path)


def test_svhn_matches_torchvision(tmp_path, monkeypatch):
    import scipy.io
    import torchvision.datasets as tvd

    write_svhn(tmp_path, n_train=9, n_test=4)  # SVHN stores H, W, C, N; labels 1..10, 10 is "0"
    ds = data.load_dataset("svhn", root=tmp_path, device="cpu")
    assert ds.X_train.shape == (9, 3, 32, 32) and ds.n_classes == 10
    assert ds.y_train.tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert ds.y_test.tolist() == [1, 2, 3, 4]
    for split, X, y in (("train", ds.X_train, ds.y_train), ("test", ds.X_test, ds.y_test)):
        ref = _tv_reference(monkeypatch, tvd.SVHN, tmp_path, split=split)
        assert torch.equal(X, torch.from_numpy(ref.data).float() / 255)
        assert torch.equal(y, torch.from_numpy(ref.labels))
    y10 = np.full((3, 1), 10, dtype=np.uint8)
    scipy.io.savemat(
        tmp_path / "test_32x32.mat", {"X": np.zeros((32, 32, 3, 3), np.uint8), "y": y10}
    )
    assert data.load_dataset("svhn", root=tmp_path, device="cpu").y_test.tolist() == [0, 0, 0]


def test_gtsrb_folder_layout_matches_torchvision(tmp_path):
    import torchvision.datasets as tvd
    import torchvision.transforms.functional as TF
    from PIL import Image

    write_gtsrb(
        tmp_path, classes=("00000", "00001", "00002"), per_class=2, test_labels=(2, 0, 1, 1)
    )
    ds = data.load_dataset("GTSRB", root=tmp_path, device="cpu")
    assert ds.X_train.shape == (6, 3, 32, 32) and ds.X_test.shape == (4, 3, 32, 32)
    assert ds.n_classes == 43 and ds.y_test.tolist() == [2, 0, 1, 1]
    for split, X, y in (("train", ds.X_train, ds.y_train), ("test", ds.X_test, ds.y_test)):
        ref = tvd.GTSRB(str(tmp_path), split=split, download=False)
        assert y.tolist() == [ref[i][1] for i in range(len(ref))]
        expected = (
            torch.stack(
                [
                    TF.pil_to_tensor(ref[i][0].resize((32, 32), Image.BILINEAR))
                    for i in range(len(ref))
                ]
            ).float()
            / 255
        )
        assert torch.equal(X, expected)
    assert data.load_dataset("gtsrb", root=tmp_path, image_size=16, device="cpu").X_test.shape == (
        4,
        3,
        16,
        16,
    )


@pytest.mark.parametrize(
    "name, what",
    [
        ("MNIST", "MNIST/raw"),
        ("FashionMNIST", "FashionMNIST/raw"),
        ("EMNIST", "emnist-balanced"),
        ("SVHN", "train_32x32.mat"),
        ("CIFAR10", "cifar-10-batches-py"),
        ("CIFAR100", "cifar-100-python"),
        ("GTSRB", "gtsrb"),
    ],
)
def test_missing_data_error_says_what_to_do(tmp_path, name, what):
    with pytest.raises(data.DatasetNotAvailable) as err:
        data.load_dataset(name, root=tmp_path / "empty")
    msg = str(err.value)
    assert isinstance(err.value, FileNotFoundError)
    assert name in msg and what in msg and str(tmp_path / "empty") in msg
    assert "AGOP_DATA" in msg and "download=True" in msg and "torchvision" in msg


def test_data_root_from_argument_environment_or_home(tmp_path, monkeypatch):
    monkeypatch.setenv("AGOP_DATA", str(tmp_path / "env"))
    assert data.data_root() == tmp_path / "env"
    assert data.data_root(tmp_path / "arg") == tmp_path / "arg"
    write_mnist_like(tmp_path / "env", "MNIST", n_train=2, n_test=2)
    assert data.load_dataset("mnist", device="cpu").X_train.shape == (2, 1, 28, 28)
    monkeypatch.delenv("AGOP_DATA")
    from pathlib import Path

    assert data.data_root() == Path.home() / ".cache" / "agop" / "data"


def test_download_delegates_to_torchvision_then_reads_our_way(tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    monkeypatch.delenv("AGOP_OFFLINE", raising=False)  # `make test` sets it

    calls = []

    class FakeMNIST:  # stands in for the network: writes torchvision's files
        def __init__(self, root, train=True, download=False):
            calls.append((root, train, download))
            write_mnist_like(tmp_path / "dl", "MNIST", n_train=5, n_test=3)

    monkeypatch.setattr(tvd, "MNIST", FakeMNIST)
    ds = data.load_dataset("mnist", root=tmp_path / "dl", download=True, device="cpu")
    assert calls == [(str(tmp_path / "dl"), True, True), (str(tmp_path / "dl"), False, True)]
    assert ds.X_train.shape == (5, 1, 28, 28) and ds.X_test.shape == (3, 1, 28, 28)


def test_load_dataset_bad_arguments(tmp_path):
    write_mnist_like(tmp_path, "MNIST", n_train=4, n_test=3)
    with pytest.raises(ValueError, match="unknown dataset"):
        data.load_dataset("imagenet", root=tmp_path)
    with pytest.raises(ValueError, match="n_train=5 exceeds the 4"):
        data.load_dataset("mnist", n_train=5, root=tmp_path)
    with pytest.raises(ValueError, match="n_test must be"):
        data.load_dataset("mnist", n_test=0, root=tmp_path)
    with pytest.raises(ValueError, match="only applies to EMNIST"):
        data.load_dataset("mnist", split="balanced", root=tmp_path)
    with pytest.raises(ValueError, match="image_size"):
        data.load_dataset("mnist", image_size=0, root=tmp_path)
    bad = tmp_path / "bad" / "MNIST" / "raw"
    bad.mkdir(parents=True)
    (bad / "train-images-idx3-ubyte").write_bytes(b"\x01\x02\x08\x03")
    (bad / "train-labels-idx1-ubyte").write_bytes(
        b"\x00\x00\x08\x01" + struct.pack(">I", 1) + b"\x00"
    )
    with pytest.raises(ValueError, match="not an IDX file"):
        data.load_dataset("mnist", root=tmp_path / "bad")
    (bad / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03" + struct.pack(">3I", 2, 2, 2))
    with pytest.raises(ValueError, match="holds 0 values"):
        data.load_dataset("mnist", root=tmp_path / "bad")


def test_digits_in_noise_from_mnist_files(tmp_path):
    files = write_mnist_like(tmp_path, "MNIST", n_train=10, n_test=4)
    X, y = ch05.digits_in_noise(
        6, 0.0, source="mnist", root=tmp_path, seed=0, device="cpu", dtype=torch.float64
    )
    assert X.shape == (6, 1, 42, 42)
    digits = torch.from_numpy(files["train"][0]).double() / 255
    windows = torch.nn.functional.unfold(X, 28).transpose(1, 2)  # (6, 225, 784)
    dist = torch.cdist(
        windows,
        digits.flatten(1)[None].expand(6, -1, -1),
        compute_mode="donot_use_mm_for_euclid_dist",
    )  # (6, 225, 10)
    found = dist.flatten(1).argmin(1) % 10
    assert bool((dist.flatten(1).min(1).values < 1e-9).all())
    assert torch.equal(torch.from_numpy(files["train"][1].astype(np.int64))[found], y)
    Xt, _ = ch05.digits_in_noise(3, 1.0, source="mnist", split="test", root=tmp_path, device="cpu")
    assert Xt.shape == (3, 1, 42, 42)


def test_offline_switch_refuses_the_download_with_the_clear_error(tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    def no_network(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(tvd, "MNIST", no_network)
    monkeypatch.setenv("AGOP_OFFLINE", "1")
    with pytest.raises(data.DatasetNotAvailable, match="AGOP_OFFLINE") as err:
        data.load_dataset("mnist", root=tmp_path / "empty", download=True)
    assert "MNIST/raw" in str(err.value)
    write_mnist_like(tmp_path / "disk", "MNIST", n_train=3, n_test=2)  # files on disk: read them
    ds = data.load_dataset("mnist", root=tmp_path / "disk", download=True, device="cpu")
    assert ds.X_train.shape == (3, 1, 28, 28)
    monkeypatch.delenv("AGOP_OFFLINE")
    assert data.load_dataset(
        "mnist", root=tmp_path / "disk", download=True, device="cpu"
    ).X_test.shape == (2, 1, 28, 28)


def test_an_idx_header_whose_sizes_overflow_names_the_file(tmp_path):
    """Sizes whose product overflows int64 (65536**4 = 2**64 wraps to 0) matched an empty body
    and failed in reshape ('cannot reshape array of size 0'), naming no file."""
    from agop_book.data.readers import read_idx

    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(b"\x00\x00\x08\x04" + struct.pack(">4I", *[65536] * 4))
    with pytest.raises(data.DataFileError, match=rf"{path.name}: IDX header says shape \(65536, "):
        read_idx(path)
    path.write_bytes(b"\x00\x00\x08\x02" + struct.pack(">2I", 2**31, 2) + bytes(4))
    with pytest.raises(data.DataFileError, match=rf"{path.name}: .*holds 4 values"):
        read_idx(path)


def test_a_gtsrb_table_without_a_column_names_the_file_and_the_column(tmp_path):
    """A GT-final_test.csv without ClassId raised KeyError: 'ClassId' from inside csv."""
    write_gtsrb(tmp_path, classes=("00000", "00001"), per_class=1, test_labels=(1, 0))
    table = tmp_path / "gtsrb" / "GT-final_test.csv"
    good = table.read_text()
    assert data.load_dataset("gtsrb", root=tmp_path, device="cpu").y_test.tolist() == [1, 0]
    table.write_text(good.replace("ClassId", "Class"))
    with pytest.raises(data.DataFileError, match=r"GT-final_test.csv: no column 'ClassId'"):
        data.load_dataset("gtsrb", root=tmp_path, device="cpu")
    table.write_text(good.replace("Filename", "File"))
    with pytest.raises(data.DataFileError, match=r"GT-final_test.csv: no column 'Filename'"):
        data.load_dataset("gtsrb", root=tmp_path, device="cpu")
    table.write_text(good.replace(";0\n", ";x\n"))
    with pytest.raises(data.DataFileError, match=r"GT-final_test.csv, line 3: .*'x'"):
        data.load_dataset("gtsrb", root=tmp_path, device="cpu")


def test_load_dataset_takes_numpy_sizes_and_checks_its_seed(tmp_path):
    write_mnist_like(tmp_path, "MNIST", n_train=6, n_test=3)
    ref = data.load_dataset("mnist", n_train=4, image_size=14, seed=3, root=tmp_path, device="cpu")
    out = data.load_dataset(
        "mnist", n_train=4, image_size=np.int64(14), seed=np.int64(3), root=tmp_path, device="cpu"
    )
    assert torch.equal(ref.X_train, out.X_train) and torch.equal(ref.y_train, out.y_train)
    with pytest.raises(ValueError, match=r"seed must be .*below 2\*\*63"):
        data.load_dataset("mnist", seed=2**64, root=tmp_path)
    with pytest.raises(TypeError, match="image_size must be an integer, got 14.0"):
        data.load_dataset("mnist", image_size=14.0, root=tmp_path)


def _idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def test_corrupt_and_truncated_gzip_idx_name_the_file(tmp_path):
    data = _idx(tmp_path, np.zeros((4, 5, 5), dtype=np.uint8))
    bad = tmp_path / "bad-idx3-ubyte.gz"
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(DataFileError, match=f"{bad}: cannot read it as an IDX file.*BadGzipFile"):
        read_idx(bad)
    cut = tmp_path / "cut-idx3-ubyte.gz"
    cut.write_bytes(gzip.compress(data)[:30])
    with pytest.raises(DataFileError, match=f"{cut}: cannot read it as an IDX file.*EOFError"):
        read_idx(cut)
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "missing.gz")


@pytest.mark.parametrize("cut", [2, 4, 10, 30])
def test_short_uncompressed_idx_raises_data_file_error(tmp_path, cut):
    """A plain IDX file cut short (in the magic number, the header or the body) is a
    DataFileError naming the file, like a truncated .gz, not a bare ValueError."""
    whole = _idx(tmp_path, np.zeros((4, 5, 5), dtype=np.uint8))
    path = tmp_path / "short-idx3-ubyte"
    path.write_bytes(whole[:cut])
    with pytest.raises(DataFileError, match=str(path)):
        read_idx(path)


def test_cifar_batches_corrupt_truncated_or_out_of_range(tmp_path):
    good = {"data": np.zeros((2, 3072), dtype=np.uint8), "labels": [0, 1]}
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps(good)[:40])
    with pytest.raises(DataFileError, match=f"{path}: cannot read it as a CIFAR python batch"):
        read_cifar_batch(path)
    path.write_bytes(b"\x80\x04garbage")
    with pytest.raises(DataFileError, match=str(path)):
        read_cifar_batch(path)
    path.write_bytes(pickle.dumps({"data": np.zeros((2, 100), dtype=np.uint8), "labels": [0, 1]}))
    with pytest.raises(DataFileError, match=f"{path}: cannot read it.*reshape"):
        read_cifar_batch(path)
    wide = np.full((2, 3072), 300, dtype=np.int64)  # would wrap to 44 as uint8
    path.write_bytes(pickle.dumps({"data": wide, "labels": [0, 1]}))
    with pytest.raises(DataFileError, match=r"integers in 0..255, found values in \[300, 300\]"):
        read_cifar_batch(path)
    path.write_bytes(pickle.dumps({"data": good["data"].astype(np.int64), "labels": [0, 1]}))
    X, y = read_cifar_batch(path)  # in-range integers of another dtype are fine
    assert X.dtype == np.uint8 and X.shape == (2, 3, 32, 32) and y.tolist() == [0, 1]


def test_svhn_mat_corrupt_and_out_of_range(tmp_path):
    import scipy.io

    path = tmp_path / "train_32x32.mat"
    path.write_bytes(b"MATLAB 5.0 MAT-file, truncated")
    with pytest.raises(DataFileError, match=f"{path}: cannot read it as an SVHN .mat file"):
        read_svhn_mat(path)
    X = np.full((32, 32, 3, 2), 256.0)
    scipy.io.savemat(path, {"X": X, "y": np.array([[1], [2]])})
    with pytest.raises(DataFileError, match="integers in 0..255"):
        read_svhn_mat(path)


def test_unreadable_image_names_the_file(tmp_path):
    path = tmp_path / "00000.ppm"
    path.write_bytes(b"P6\n32 32\n255\n" + bytes(100))  # truncated pixel data
    with pytest.raises(DataFileError, match=f"{path}: cannot read it as an image"):
        read_images([str(path)], 8)


def test_labels_out_of_range_fail_on_loading(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for part, n in (("train", 6), ("t10k", 4)):
        (raw / f"{part}-images-idx3-ubyte").write_bytes(_idx(raw, np.zeros((n, 28, 28))))
        (raw / f"{part}-labels-idx1-ubyte").write_bytes(
            _idx(raw, np.array([0, 1, 12, 3, 4, 5][:n]))
        )
    for call in (
        lambda: load_dataset("mnist", root=tmp_path, device="cpu"),
        lambda: read_split("mnist", root=tmp_path),
    ):
        with pytest.raises(
            DataFileError,
            match=r"MNIST train labels under .* must lie in 0..9; "
            r"1 do not \(e.g. \[12\]\)",
        ):
            call()


# Hostile inputs


def _write(path, content):
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda tmp: load_dataset(None), TypeError, "name must be a dataset name"),
        (lambda tmp: load_dataset("imagenet"), ValueError, "name: unknown dataset"),
        (lambda tmp: read_split(3), TypeError, "name must be a dataset name"),
        # arguments are checked before any file is looked for (tmp is empty)
        (lambda tmp: load_dataset("mnist", 0, root=tmp), ValueError, "n_train must be a positive"),
        (lambda tmp: load_dataset("mnist", 1.5, root=tmp), TypeError, "n_train must be"),
        (lambda tmp: load_dataset("mnist", None, -1, root=tmp), ValueError, "n_test must be"),
        (lambda tmp: load_dataset("mnist", root=tmp, dtype=torch.int64), ValueError, "dtype must"),
        (lambda tmp: load_dataset("mnist", root=tmp, image_size=0), ValueError, "image_size"),
        (lambda tmp: load_dataset("mnist", root=tmp, download="yes"), TypeError, "download must"),
        (lambda tmp: load_dataset("mnist", root=3), TypeError, "root must be a folder path"),
        (lambda tmp: data.data_root(3), TypeError, "root must be a folder path"),
        (lambda tmp: read_split("mnist", root=tmp, train="no"), TypeError, "train must be"),
        (lambda tmp: read_split("mnist", root=tmp, image_size=-2), ValueError, "image_size"),
        (lambda tmp: read_idx(None), TypeError, "path must be a file path"),
        (lambda tmp: read_svhn_mat(3), TypeError, "path must be a file path"),
        (lambda tmp: read_images(["a.ppm"], 0), ValueError, "size must be a positive"),
        (lambda tmp: read_images("a.ppm", 4), TypeError, "paths must be a list"),
        (lambda tmp: read_images([None], 4), TypeError, r"paths\[0\] must be a file path"),
        (lambda tmp: read_images(["a.ppm"] * 4, 10**6), ValueError, "size: the images would"),
        (
            lambda tmp: read_svhn_mat(_write(tmp / "x.mat", b"\x00garbage" * 40)),
            DataFileError,
            "x.mat: cannot read it as an SVHN .mat file",
        ),
        (
            lambda tmp: read_gtsrb_table(
                _write(tmp / "t.csv", "Filename;ClassId\na.ppm;100000000000000000000\n")
            ),
            DataFileError,
            r"t.csv, line 2: expected a Filename and a ClassId in 0..42",
        ),
        (
            lambda tmp: read_gtsrb_table(_write(tmp / "t.csv", "Filename;ClassId\na.ppm;43\n")),
            DataFileError,
            "ClassId in 0..42",
        ),
        (
            lambda tmp: read_cifar_meta(
                _write(tmp / "meta", pickle.dumps({"fine_label_names": "apple"})),
                "fine_label_names",
            ),
            DataFileError,
            "meta: a CIFAR meta file holds a dict with a list of class names",
        ),
        (
            lambda tmp: read_cifar_meta(_write(tmp / "meta", pickle.dumps([1, 2])), "label_names"),
            DataFileError,
            "meta: a CIFAR meta file",
        ),
        (
            lambda tmp: read_cifar_meta(_write(tmp / "meta", pickle.dumps({})), "label_names"),
            DataFileError,
            "meta: a CIFAR meta file",
        ),
        (
            lambda tmp: read_cifar_meta(
                _write(tmp / "meta", pickle.dumps({"label_names": []})), "label_names"
            ),
            DataFileError,
            "meta: a CIFAR meta file",
        ),
        (  # scipy's MatReadError (an empty file, one of zeros), named as the file
            lambda tmp: read_svhn_mat(_write(tmp / "x.mat", b"")),
            DataFileError,
            "x.mat: cannot read it as an SVHN .mat file",
        ),
        (
            lambda tmp: read_svhn_mat(_write(tmp / "x.mat", bytes(200))),
            DataFileError,
            "x.mat: cannot read it as an SVHN .mat file",
        ),
    ],
)
def test_hostile_inputs_are_refused_by_name(tmp_path, call, error, match):
    with pytest.raises(error, match=match):
        call(tmp_path)


def test_svhn_labels_outside_1_to_10_name_the_file(tmp_path):
    import scipy.io

    path = tmp_path / "train_32x32.mat"
    scipy.io.savemat(path, {"X": np.zeros((32, 32, 3, 2)), "y": np.array([[1], [11]])})
    with pytest.raises(DataFileError, match=r"train_32x32.mat: labels y must lie in 1..10"):
        read_svhn_mat(path)
    scipy.io.savemat(path, {"X": np.zeros((32, 32, 3, 2)), "y": np.array([[1.5], [2]])})
    with pytest.raises(DataFileError, match="labels y must be integers"):
        read_svhn_mat(path)
    scipy.io.savemat(path, {"X": np.zeros((32, 32, 3, 2)), "y": np.array([[10], [3]])})
    assert read_svhn_mat(path)[1].tolist() == [0, 3]  # 10 is the digit 0


def test_cifar_meta_names_and_absence(tmp_path):
    path = tmp_path / "meta"
    assert read_cifar_meta(path, "label_names") is None  # no file: no names
    path.write_bytes(pickle.dumps({"label_names": ["cat", b"dog"]}))
    assert read_cifar_meta(path, "label_names") == ["cat", "dog"]
