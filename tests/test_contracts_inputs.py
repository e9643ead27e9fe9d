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


# --------------------------------------------------------------------------------------------
# Hostile inputs at every public entry point: each gets an error of the stated type whose
# message names the argument (never an error from deep inside torch, numpy or scikit-learn)
# --------------------------------------------------------------------------------------------


def _hostile_cases():
    import pandas as pd
    import scipy.sparse as sp
    from torch import nn

    from agop import linalg, patches, solve
    from agop.data import one_hot, train_val_split
    from agop.deep_rfm import RandomFeatureConv, random_filters
    from agop.estimator import random_seeds
    from agop.features import (
        FilterSpace,
        cnfm,
        cnfm_similarity,
        haar_rotations,
        layer_correlations,
        null_baselines,
    )
    from agop.kernels import CNTK, RBF, Kernel, Laplace
    from agop.rfm import RFM, normalize_feature_matrix, rfm_iterations
    from agop.runtime import default_device

    nan = float("nan")
    X = uniform_images(4)  # (4, 1, 6, 6) float64
    A = torch.eye(3, dtype=torch.float64) + 1
    K2 = torch.eye(5, dtype=torch.float64) * 2
    Y = torch.ones(5, 2, dtype=torch.float64)
    W = torch.randn(4, 9, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    space = FilterSpace(W)
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(32, 2)).double()

    class Argmax(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net(x).argmax(1)

    class Detached(Argmax):
        def forward(self, x):
            return self.net(x).detach()

    Xr = X.reshape(4, 36)
    Yh = torch.eye(2, dtype=torch.float64)[torch.arange(4) % 2]
    run = dict(n_iter=1, q=9)
    fitted = ConvRFM(patch_size=3, n_iter=0, validation_fraction=0.5, **FAST).fit(
        X, np.arange(4) % 2
    )
    kern = Laplace(3, device="cpu")
    # (id, call, exception, regex naming the argument)
    return [
        (
            "extract_patches: reflect padding beyond the image",
            lambda: patches.extract_patches(X, 3, padding=8, padding_mode="reflect"),
            ValueError,
            "padding of 8 in padding_mode='reflect'",
        ),
        (
            "extract_patches: reflect padding equal to the side",
            lambda: patches.extract_patches(X, 3, padding=6, padding_mode="reflect"),
            ValueError,
            "padding of 6 in padding_mode='reflect'",
        ),
        (
            "extract_patches: circular padding wraps twice",
            lambda: patches.extract_patches(X, 3, padding=9, padding_mode="circular"),
            ValueError,
            "padding_mode='circular'",
        ),
        (
            "extract_patches: meta tensor",
            lambda: patches.extract_patches(X.to("meta"), 3),
            ValueError,
            "x is on the 'meta' device",
        ),
        (
            "extract_patches: scipy sparse",
            lambda: patches.extract_patches(sp.csr_matrix(np.eye(3)), 1),
            TypeError,
            "x must be a dense tensor or array",
        ),
        (
            "extract_patches: kernel larger than the images",
            lambda: patches.extract_patches(X, 9),
            ValueError,
            "kernel_size=.9, 9. .*images x",
        ),
        (
            "output_size: one side",
            lambda: patches.output_size((5,), 3),
            TypeError,
            "size must be the images' .H, W.",
        ),
        (
            "output_size: a float side",
            lambda: patches.output_size((2.5, 5), 1),
            TypeError,
            r"size\[-2\] must be an integer",
        ),
        (
            "output_size: kernel larger than the images",
            lambda: patches.output_size((2, 2), 3),
            ValueError,
            "kernel_size=.3, 3. .*does not fit",
        ),
        (
            "pad: three amounts",
            lambda: patches.pad(X, (1, 1, 1)),
            TypeError,
            "amounts must be four integers",
        ),
        (
            "pad: a negative amount",
            lambda: patches.pad(X, (-1, 1, 1, 1)),
            ValueError,
            r"amounts\[0\] must be a non-negative integer",
        ),
        (
            "pad: a float amount",
            lambda: patches.pad(X, (1.0, 1, 1, 1)),
            TypeError,
            r"amounts\[0\] must be an integer",
        ),
        (
            "pad: reflect beyond the image",
            lambda: patches.pad(X, (8, 8, 8, 8), "reflect"),
            ValueError,
            "padding of 8",
        ),
        (
            "pad: one image",
            lambda: patches.pad(X[0], (1, 1, 1, 1)),
            ValueError,
            r"x must have shape \(n, c, H, W\)",
        ),
        (
            "conv_padding: not a conv",
            lambda: patches.conv_padding(nn.Linear(2, 2)),
            TypeError,
            "conv must be a torch.nn.Conv2d",
        ),
        (
            "conv_patches: channels differ from the conv's",
            lambda: patches.conv_patches(nn.Conv2d(3, 2, 3), X),
            ValueError,
            "x must have 3 channels",
        ),
        (
            "psd_power: empty matrix",
            lambda: linalg.psd_power(torch.ones(0, 0), 0.5),
            ValueError,
            "A is empty",
        ),
        (
            "psd_power: NaN with check=False",
            lambda: linalg.psd_power(A * nan, 0.5, check=False),
            ValueError,
            "A contains 9 non-finite",
        ),
        (
            "psd_power: check as a string",
            lambda: linalg.psd_power(A, 0.5, check="yes"),
            TypeError,
            "check must be True or False",
        ),
        (
            "congruence: NaN in G",
            lambda: linalg.congruence(torch.ones(3, 4), torch.eye(3) * nan),
            ValueError,
            "G contains",
        ),
        (
            "correlation: meta tensor",
            lambda: linalg.correlation(A.to("meta"), A),
            ValueError,
            "A is on the 'meta' device",
        ),
        (
            "ridge: jitter as a string",
            lambda: solve.ridge(K2, Y, jitter="no"),
            TypeError,
            "jitter must be True or False",
        ),
        (
            "select_ridge: a scalar ridges",
            lambda: solve.select_ridge(K2, Y, K2, Y, 0.1),
            TypeError,
            r"ridges must be a non-empty sequence.*pass \[0.1\]",
        ),
        (
            "select_ridge: max_memory as a string",
            lambda: solve.select_ridge(K2, Y, K2, Y, [0.1], max_memory="x"),
            TypeError,
            "max_memory must be a real number",
        ),
        (
            "select_ridge: infinite max_memory",
            lambda: solve.select_ridge(K2, Y, K2, Y, [0.1], max_memory=float("inf")),
            ValueError,
            "max_memory must be a finite number",
        ),
        (
            "select_ridge: max_memory=True",
            lambda: solve.select_ridge(K2, Y, K2, Y, [0.1], max_memory=True),
            TypeError,
            "max_memory must be a real number",
        ),
        (
            "select_ridge: no validation sample",
            lambda: solve.select_ridge(K2, Y, K2[:0], Y[:0], [0.1]),
            ValueError,
            "K_val must have shape .n_val, 5. with n_val >= 1",
        ),
        (
            "eigen_sweep_fits: negative n",
            lambda: solve.eigen_sweep_fits(-1, 8),
            ValueError,
            "n must be a non-negative integer",
        ),
        (
            "eigen_sweep_fits: element_size 0",
            lambda: solve.eigen_sweep_fits(10, 0),
            ValueError,
            "element_size must be a positive integer",
        ),
        (
            "eigen_sweep_fits: unknown device",
            lambda: solve.eigen_sweep_fits(10, 8, device="gpu"),
            ValueError,
            "device must be",
        ),
        (
            "one_hot: complex labels",
            lambda: one_hot(torch.tensor([0, 1], dtype=torch.complex64)),
            TypeError,
            "y must hold integer class indices, got complex",
        ),
        ("one_hot: string labels", lambda: one_hot(["a", "b"]), TypeError, "y must hold numbers"),
        (
            "one_hot: meta labels",
            lambda: one_hot(torch.tensor([0, 1], device="meta")),
            ValueError,
            "y is on the 'meta' device",
        ),
        (
            "one_hot: a label of 10**12",
            lambda: one_hot([10**12]),
            ValueError,
            r"^y: one_hot of 1 labels into n_classes=1000000000001 classes \(largest label",
        ),
        (
            "train_val_split: NaN in X",
            lambda: train_val_split(Xr * nan, torch.arange(4) % 2),
            ValueError,
            "X contains",
        ),
        (
            "train_val_split: NaN targets",
            lambda: train_val_split(Xr, torch.full((4, 2), nan)),
            ValueError,
            "Y contains",
        ),
        (
            "train_val_split: complex Y",
            lambda: train_val_split(Xr, torch.ones(4, dtype=torch.complex64)),
            TypeError,
            "Y must hold real",
        ),
        (
            "train_val_split: object Y",
            lambda: train_val_split(Xr, np.array([None] * 4, dtype=object)),
            TypeError,
            "Y must hold numbers",
        ),
        (
            "train_val_split: stratify as a string",
            lambda: train_val_split(Xr, torch.arange(4) % 2, stratify="yes"),
            TypeError,
            "stratify must be True or False",
        ),
        ("default_device: 'meta'", lambda: default_device("meta"), ValueError, "device='meta'"),
        (
            "random_seeds: a negative seed",
            lambda: random_seeds(-1, 2),
            ValueError,
            r"random_state must be None, an integer in \[0, 2\*\*32\).*got -1$",
        ),
        (
            "random_seeds: a numpy Generator",
            lambda: random_seeds(np.random.default_rng(0), 2),
            TypeError,
            "random_state must be None, an integer in",
        ),
        (
            "patch_agop: outputs as an int",
            lambda: patch_agop(net, X, outputs=1, device="cpu"),
            TypeError,
            r"outputs must be None or a non-empty sequence.*pass \[1\]",
        ),
        (
            "patch_agop: a bool output index",
            lambda: patch_agop(net, X, outputs=[True], device="cpu"),
            TypeError,
            r"outputs\[0\] must be an integer",
        ),
        (
            "patch_agop: an integer output",
            lambda: patch_agop(Argmax(), X, device="cpu"),
            ValueError,
            "the model's output must be floating",
        ),
        (
            "patch_agop: a detached output",
            lambda: patch_agop(Detached(), X, device="cpu"),
            ValueError,
            "the model's output does not depend on X through autograd",
        ),
        (
            "patch_agop: a model on meta",
            lambda: patch_agop(nn.Conv2d(1, 1, 3).to("meta"), X, device="cpu"),
            ValueError,
            "model has its parameters on the 'meta' device",
        ),
        (
            "patch_agop: X on meta",
            lambda: patch_agop(net, X.to("meta"), device="cpu"),
            ValueError,
            "X is on the 'meta' device",
        ),
        (
            "cnfm: a Linear layer",
            lambda: cnfm(nn.Linear(3, 2)),
            TypeError,
            "conv must be a torch.nn.Conv2d or its filters",
        ),
        ("cnfm: no filters", lambda: cnfm(torch.ones(0, 9)), ValueError, "conv holds no filters"),
        ("cnfm: NaN filters", lambda: cnfm(W * nan), ValueError, "conv contains"),
        (
            "FilterSpace: NaN filters",
            lambda: FilterSpace(W * nan),
            ValueError,
            "conv_or_W contains",
        ),
        (
            "FilterSpace.reduce: G of the wrong size",
            lambda: space.reduce(torch.eye(3)),
            ValueError,
            r"G must be \(4, 4\)",
        ),
        (
            "FilterSpace.reduce: NaN G",
            lambda: space.reduce(torch.eye(4) * nan),
            ValueError,
            "G contains",
        ),
        (
            "FilterSpace.similarity: B of the wrong size",
            lambda: space.similarity(torch.eye(3)),
            ValueError,
            r"B must be a reduced matrix of these filters, \(4, 4\)",
        ),
        (
            "FilterSpace.power: NaN power",
            lambda: space.power(torch.eye(4), nan),
            ValueError,
            "power must be a finite number",
        ),
        (
            "null_baselines: space of a string",
            lambda: null_baselines(W, 2, space="x"),
            TypeError,
            "space must be None or a FilterSpace",
        ),
        (
            "null_baselines: space of other filters",
            lambda: null_baselines(W, 2, space=FilterSpace(W[:3])),
            ValueError,
            "space must be the FilterSpace of conv_or_W",
        ),
        (
            "null_baselines: a Linear layer",
            lambda: null_baselines(nn.Linear(3, 3), 2),
            TypeError,
            "conv_or_W must be a torch.nn.Conv2d",
        ),
        (
            "null_baselines: filters whose Gram matrix overflows",
            lambda: null_baselines(W * 1e200, 2),
            ValueError,
            "the filters' Gram matrix W W\\^T is not finite",
        ),
        (
            "cnfm_similarity: NaN filters",
            lambda: cnfm_similarity(W * nan, W),
            ValueError,
            "conv_a contains",
        ),
        (
            "cnfm_similarity: an unknown kind",
            lambda: cnfm_similarity(W, W, "spearman"),
            ValueError,
            "kind must be one of",
        ),
        (
            "layer_correlations: agops not a dict",
            lambda: layer_correlations(net, [torch.eye(9)]),
            TypeError,
            "agops must be a dict",
        ),
        (
            "layer_correlations: an AGOP of the wrong size",
            lambda: layer_correlations(net, {"0": torch.eye(5)}),
            ValueError,
            r"agops\['0'\] must be 9 x 9",
        ),
        (
            "layer_correlations: a NaN AGOP",
            lambda: layer_correlations(net, {"0": torch.eye(9) * nan}),
            ValueError,
            r"agops\['0'\] contains",
        ),
        (
            "haar_rotations: a vector",
            lambda: haar_rotations(torch.ones(3)),
            ValueError,
            "B must be square matrices",
        ),
        (
            "haar_rotations: NaN",
            lambda: haar_rotations(torch.ones(3, 3) * nan),
            ValueError,
            "B contains",
        ),
        (
            "laplace: max_memory as a string",
            lambda: K.laplace(X, None, 3, max_memory="x"),
            TypeError,
            "max_memory must be a real number",
        ),
        (
            "laplace: max_memory too small",
            lambda: K.laplace(X, None, 3, max_memory=1),
            ValueError,
            r"max_memory=1(\.0)? bytes cannot hold even one pair",
        ),
        (
            "laplace: a bandwidth whose inverse overflows",
            lambda: K.laplace(X, None, 3, 1e-320),
            ValueError,
            "bandwidth=1e-320 is too small",
        ),
        (
            "RBF: a bandwidth whose square underflows",
            lambda: RBF(3, 1e-200)(X),
            ValueError,
            "bandwidth=1e-200 is too small",
        ),
        (
            "laplace_agop: dual_coef without a column",
            lambda: K.laplace_agop(X, X, torch.ones(4, 0), 3),
            ValueError,
            "dual_coef must have shape .4, C. with C >= 1",
        ),
        (
            "Laplace: a patch_size of three sides",
            lambda: Laplace((3, 3, 3))(X),
            ValueError,
            "patch_size must be an integer k",
        ),
        (
            "Kernel: the interface itself",
            lambda: Kernel(3)(X),
            TypeError,
            "Kernel defines no block",
        ),
        (
            "CNTK: M on meta",
            lambda: CNTK(3)(X, M=torch.eye(9, device="meta")),
            ValueError,
            "M is on the 'meta' device",
        ),
        (
            "ConvRFM: labels of two types",
            lambda: ConvRFM(patch_size=3, n_iter=0, **FAST).fit(
                X, np.array(["a", 1] * 2, dtype=object)
            ),
            TypeError,
            "y must hold labels of one type",
        ),
        (
            "ConvRFM: labels on meta",
            lambda: ConvRFM(patch_size=3, n_iter=0, **FAST).fit(
                X, torch.tensor([0, 1] * 2, device="meta")
            ),
            ValueError,
            "y is on the 'meta' device",
        ),
        (
            "ConvRFM: random_state too large",
            lambda: ConvRFM(
                patch_size=3, n_iter=0, device="cpu", progress=False, random_state=2**64
            ).fit(X, np.arange(4) % 2),
            ValueError,
            "random_state must be None, an integer in",
        ),
        (
            "ConvRFM.score: fewer labels than images",
            lambda: fitted.score(X, np.arange(2)),
            ValueError,
            r"y must hold one label per image of X \(4\), got 2",
        ),
        (
            "ConvRFM.score_iterations: fewer labels than images",
            lambda: fitted.score_iterations(X, np.arange(2)),
            ValueError,
            r"y must hold one label per image of X \(4\), got 2",
        ),
        (
            "RFM: string X",
            lambda: RFM(n_iter=0, **FAST).fit(np.full((4, 3), "a"), np.arange(4) % 2),
            TypeError,
            "X must hold numbers",
        ),
        (
            "random_filters: seed 2**64",
            lambda: random_filters(torch.eye(9), 4, 1, 3, seed=2**64),
            ValueError,
            "seed must be a non-negative integer",
        ),
        (
            "random_filters: an integer dtype",
            lambda: random_filters(torch.eye(9), 4, 1, 3, dtype=torch.int64),
            ValueError,
            "dtype must be one of",
        ),
        (
            "RandomFeatureConv: NaN filters",
            lambda: RandomFeatureConv(torch.ones(2, 1, 3, 3) * nan),
            ValueError,
            "filters contains",
        ),
        (
            "RandomFeatureConv: even filters",
            lambda: RandomFeatureConv(torch.ones(2, 1, 2, 2)),
            ValueError,
            "filters must be non-empty with an odd side",
        ),
        (
            "RandomFeatureConv.output_shape: two sides",
            lambda: RandomFeatureConv(torch.ones(2, 1, 3, 3)).output_shape((1, 6)),
            TypeError,
            r"image_shape must be \(c, H, W\)",
        ),
        (
            "normalize_feature_matrix: a vector",
            lambda: normalize_feature_matrix(torch.ones(3)),
            ValueError,
            "A must be a square matrix",
        ),
        (
            "normalize_feature_matrix: not PSD",
            lambda: normalize_feature_matrix(-torch.eye(3)),
            ValueError,
            "A must be positive semi-definite",
        ),
        (
            "normalize_feature_matrix: on meta",
            lambda: normalize_feature_matrix(torch.eye(3, device="meta")),
            ValueError,
            "A is on the 'meta' device",
        ),
        (
            "rfm_iterations: a q that is not c k^2",
            lambda: rfm_iterations(kern, X[:2], Yh[:2], X[2:], Yh[2:], n_iter=1, q=4),
            ValueError,
            "q must be the patch dimension",
        ),
        (
            "rfm_iterations: X_val of another size",
            lambda: rfm_iterations(kern, X[:2], Yh[:2], X[2:, :, :4], Yh[2:], **run),
            ValueError,
            "X and X_val must be images",
        ),
        (
            "rfm_iterations: agop_samples 0",
            lambda: rfm_iterations(kern, X[:2], Yh[:2], X[2:], Yh[2:], agop_samples=0, **run),
            ValueError,
            "agop_samples must be a positive integer",
        ),
        (
            "rfm_iterations: a scalar ridges",
            lambda: rfm_iterations(kern, X[:2], Yh[:2], X[2:], Yh[2:], ridges=0.1, **run),
            TypeError,
            "ridges must be a non-empty sequence",
        ),
        (
            "rfm_iterations: a kernel name",
            lambda: rfm_iterations("laplace", X[:2], Yh[:2], X[2:], Yh[2:], **run),
            TypeError,
            "kernel must be an agop.kernels.Kernel",
        ),
        (
            "rfm_iterations: numpy X",
            lambda: rfm_iterations(kern, X[:2].numpy(), Yh[:2], X[2:], Yh[2:], **run),
            TypeError,
            "X must be a torch.Tensor",
        ),
        (
            "DataFrame is read as its array",
            lambda: linalg.psd_power(pd.DataFrame(torch.ones(2, 3).numpy()), 1.0),
            ValueError,
            "A must be a square matrix",
        ),
    ]


_HOSTILE = _hostile_cases()


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [case[1:] for case in _HOSTILE],
    ids=[case[0] for case in _HOSTILE],
)
def test_hostile_input_gets_an_error_that_names_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_cnfm_similarity_of_huge_or_tiny_filters_is_that_of_unit_filters():
    """The similarity is scale-invariant: filters of size 1e200 (their Gram entries overflow
    float64) and 1e-200 (they underflow) give the value of the explicit q x q CNFMs."""
    from agop.features import cnfm_similarity
    from agop.linalg import correlation

    g = torch.Generator().manual_seed(1)
    A, B = (torch.randn(4, 9, generator=g, dtype=torch.float64) for _ in range(2))
    for kind in ("pearson", "cosine"):
        reference = correlation(A.T @ A, B.T @ B, kind)
        assert cnfm_similarity(A * 1e200, B * 1e-200, kind) == pytest.approx(reference, rel=1e-10)


# Pandas' nullable columns, for every estimator


def _nullable_estimator(name):
    if name == "RFM":
        from agop.rfm import RFM

        return RFM(n_iter=1, **FAST)
    if name == "ConvRFM":
        return ConvRFM(patch_size=3, n_iter=1, image_shape=(1, 6, 6), **FAST)
    if name == "DeepConvRFM":
        return DeepConvRFM(depth=1, width=4, n_iter=1, image_shape=(1, 6, 6), **FAST)
    return CNNBaseline(depth=1, width=4, epochs=1, image_shape=(1, 6, 6), **FAST)


@pytest.mark.parametrize("dtype", ["Float64", "Int64"])
@pytest.mark.parametrize("estimator", ["RFM", "ConvRFM", "DeepConvRFM", "CNNBaseline"])
def test_nullable_frames_are_read_as_numbers_and_missing_values_refused(estimator, dtype):
    """A data frame of pandas' nullable columns (``"Float64"``, ``"Int64"``, whose
    ``np.asarray`` is an object array) fits and predicts as the plain numpy array of the same
    numbers (float64, or int64 read as float32); one ``pd.NA`` in it is a ValueError naming
    ``X`` and saying it holds missing values, at fit and after it (was: ``float()``'s
    TypeError from inside scikit-learn for RFM, "non-finite values" for the others)."""
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    y = np.arange(24) % 2
    X = rng.integers(-3, 4, (24, 36))
    X[:, 14] += 4 * (2 * y - 1)  # the class is the sign of one pixel
    plain = X.astype(np.float64 if dtype == "Float64" else np.int64)
    frame = pd.DataFrame(plain, columns=[f"px{i}" for i in range(36)]).astype(dtype)
    model = _nullable_estimator(estimator).fit(frame, y)
    reference = _nullable_estimator(estimator).fit(plain, y)
    if hasattr(model, "X_fit_"):
        assert model.X_fit_.dtype == reference.X_fit_.dtype
        assert model.X_fit_.dtype == (torch.float64 if dtype == "Float64" else torch.float32)
    np.testing.assert_array_equal(
        model.decision_function(frame), reference.decision_function(plain)
    )
    missing = frame.copy()
    missing.iloc[3, 7] = pd.NA
    with pytest.raises(ValueError, match="^X contains 1 missing value"):
        _nullable_estimator(estimator).fit(missing, y)
    with pytest.raises(ValueError, match="^X contains 1 missing value"):
        model.predict(missing)
