"""Input contracts across the public API: every parsed name is case-insensitive, numpy scalars
(a GridSearchCV over np.arange) are accepted everywhere and give the same answer, floating dtypes
are named or checked by every estimator, and complex images are rejected by name."""

import numpy as np
import pytest
import torch
from conv_zoo import small_cnn, uniform_images

from agop import kernels as K
from agop.deep_rfm import DeepConvRFM
from agop.features import patch_agop
from agop.rfm import ConvRFM
from agop.runtime import default_device
from agop.solve import select_ridge
from agop_book.ch01_ansatz import verify_ansatz
from agop_book.nets import CNNBaseline

FAST = dict(device="cpu", progress=False, random_state=0)


def test_every_parsed_name_is_case_insensitive():
    from agop.features import FilterSpace
    from agop.patches import pad
    from agop_book.nets import SimpleCNN

    x = uniform_images(2)
    torch.testing.assert_close(pad(x, (1, 1, 1, 1), "Circular"), pad(x, (1, 1, 1, 1), "circular"))
    a, b = (
        SimpleCNN(1, 2, 6, depth=1, activation="TANH", pool="Max", init="Kaiming", seed=0),
        SimpleCNN(1, 2, 6, depth=1, activation="tanh", pool="max", init="kaiming", seed=0),
    )
    torch.testing.assert_close(a(x.float()), b(x.float()), rtol=0, atol=0)
    space = FilterSpace(torch.randn(4, 9, dtype=torch.float64))
    B = space.reduce(torch.eye(4, dtype=torch.float64))
    assert space.similarity(B, "COSINE") == space.similarity(B, "cosine")
    Kt = K.laplace(x, None, 3)
    best, _, scores = select_ridge(
        Kt, torch.ones(2, dtype=x.dtype), Kt, torch.ones(2, dtype=x.dtype), [0.1, 1.0], metric="MSE"
    )
    assert (best, scores) == select_ridge(
        Kt, torch.ones(2, dtype=x.dtype), Kt, torch.ones(2, dtype=x.dtype), [0.1, 1.0], "mse"
    )[::2]
    assert default_device("CPU").type == "cpu"


def test_numpy_scalars_are_accepted_everywhere_and_give_the_same_answer():
    X, y = uniform_images(), np.arange(12) % 2
    kw = dict(kernel="cntk", n_iter=1, **FAST)
    a = ConvRFM(patch_size=3, depth=2, power=0.5, **kw).fit(X, y)
    b = ConvRFM(patch_size=np.int64(3), depth=np.int32(2), power=np.float32(0.5), **kw).fit(X, y)
    torch.testing.assert_close(a.M_, b.M_, rtol=0, atol=0)
    torch.testing.assert_close(K.laplace(X, None, np.int64(3)), K.laplace(X, None, 3))
    torch.testing.assert_close(K.cntk(X, None, np.int32(3), np.int64(2)), K.cntk(X, None, 3, 2))
    model = small_cnn()
    s1 = patch_agop(model, X, sketch=2, chunk_size=5, max_memory=2**20)["0"]
    s2 = patch_agop(
        model, X, sketch=np.int64(2), chunk_size=np.int32(5), max_memory=np.int64(2**20)
    )["0"]
    torch.testing.assert_close(s1, s2, rtol=0, atol=0)
    table = verify_ansatz(model, X, sketch=np.int64(2), null_draws=np.int64(0))
    assert len(table) == 1
    deep = DeepConvRFM(
        depth=np.int64(2),
        n_layers=np.int64(1),
        width=np.int64(4),
        patch_size=np.int64(3),
        n_iter=0,
        **FAST,
    ).fit(X, y)
    assert deep.n_layers_ == 1


def test_dtype_names_work_and_deep_rfm_checks_its_dtype():
    X, y = uniform_images(), np.arange(12) % 2
    model = ConvRFM(kernel="laplace", patch_size=3, n_iter=0, dtype="float32", **FAST).fit(X, y)
    assert model.M_.dtype == torch.float32 and model.X_fit_.dtype == torch.float32
    with pytest.raises(ValueError, match="dtype must be one of"):
        DeepConvRFM(depth=2, width=4, dtype=torch.int64, **FAST).fit(X, y)
    with pytest.raises(ValueError, match="dtype must be one of"):
        CNNBaseline(depth=1, width=2, epochs=1, dtype=torch.int32, **FAST).fit(X, y)
    with pytest.raises(ValueError, match="lr must be a positive number"):
        CNNBaseline(depth=1, width=2, epochs=1, lr=0, **FAST).fit(X, y)
    base = CNNBaseline(
        depth=np.int64(1),
        width=np.int64(2),
        epochs=np.int64(1),
        patch_size=np.int64(3),
        lr=np.float32(0.1),
        **FAST,
    ).fit(X, y)
    assert base.predict(X).shape == (12,)


@pytest.mark.parametrize(
    "fn",
    [
        lambda X: K.laplace(X, None, 3),
        lambda X: patch_agop(small_cnn(), X),
        lambda X: ConvRFM(patch_size=3, n_iter=0, **FAST).fit(X, np.arange(len(X)) % 2),
    ],
    ids=["laplace", "patch_agop", "ConvRFM"],
)
def test_complex_images_are_rejected(fn):
    X = uniform_images()
    with pytest.raises(TypeError, match="X must be real, got a torch.complex128 tensor"):
        fn(torch.complex(X, X))
    with pytest.raises(TypeError, match="X must be real"):
        fn(torch.complex(X, X).numpy())
