"""Deep ConvRFM: the random-feature featurisation and the layer-wise estimator."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from agop.deep_rfm import DeepConvRFM, RandomFeatureConv, featurize, random_filters


def random_psd(q: int, seed: int = 0, rank: int | None = None) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(q, rank or q, generator=g, dtype=torch.float64)
    return A @ A.T / (rank or q)


# ---- the featurisation ------------------------------------------------------------------


def test_filter_covariance_is_M_monte_carlo():
    """Rows of G M^{1/2} are N(0, M): the sample covariance of w filters matches M entrywise
    within 5 standard errors, Var(S_ab) = (M_ab^2 + M_aa M_bb) / w for Gaussian rows."""
    c, k, w = 2, 3, 20_000
    q = c * k * k
    M = random_psd(q, seed=1, rank=5)  # low rank: the filters must live in M's range
    W = random_filters(M, w, c, k, seed=3, dtype=torch.float64, device="cpu").reshape(w, q)
    S = W.T @ W / w
    se = ((M**2 + torch.outer(M.diagonal(), M.diagonal())) / w).sqrt()
    z = (S - M) / se
    assert z.abs().max() < 5.0, float(z.abs().max())
    # and the mean filter is zero within 5 standard errors
    mean_z = W.mean(0) / (M.diagonal() / w).sqrt()
    assert mean_z.abs().max() < 5.0
    # rows lie in the range of M (rank 5): no energy in its null space beyond the square root
    # of round-off eigenvalues, sqrt(q eps lambda_max), times the largest normal draw (~5)
    eigvals, eigvecs = torch.linalg.eigh(M)
    null = eigvecs[:, eigvals < 1e-10 * eigvals[-1]]
    tol = 5 * math.sqrt(q * torch.finfo(torch.float64).eps * float(eigvals[-1])) * 10
    assert (W @ null).abs().max() < tol


def test_identity_metric_is_the_default():
    c, k = 3, 3
    A = random_filters(None, 7, c, k, seed=5, dtype=torch.float64, device="cpu")
    B = random_filters(torch.eye(c * k * k, dtype=torch.float64), 7, c, k, seed=5, device="cpu")
    torch.testing.assert_close(A, B)
    C = random_filters(None, 7, c, k, seed=6, dtype=torch.float64, device="cpu")
    assert not torch.allclose(A, C)


@pytest.mark.parametrize("nonlinearity", [None, "relu", "abs", torch.sin])
def test_featurize_matches_explicit_patches(nonlinearity):
    """phi(W x[j]) at every position j, with x[j] sliced out by hand in (channel, row, col) order."""
    g = torch.Generator().manual_seed(0)
    n, c, H, Wd, k, w = 2, 2, 6, 5, 3, 4
    X = torch.randn(n, c, H, Wd, generator=g, dtype=torch.float64)
    M = random_psd(c * k * k, seed=2)
    out = featurize(X, M, w, k, nonlinearity=nonlinearity, seed=9, device="cpu")
    filt = random_filters(M, w, c, k, seed=9, device="cpu").reshape(w, -1)
    phi = {None: lambda t: t, "relu": torch.relu, "abs": torch.abs}.get(nonlinearity, nonlinearity)
    assert out.shape == (n, w, H - k + 1, Wd - k + 1)
    assert out.dtype == torch.float64
    for a in range(H - k + 1):
        for b in range(Wd - k + 1):
            patch = X[:, :, a : a + k, b : b + k].reshape(n, -1)
            torch.testing.assert_close(out[:, :, a, b], phi(patch @ filt.T))


def test_chunking_does_not_change_the_result():
    X = torch.randn(9, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    t = RandomFeatureConv.from_metric(None, 5, 1, 3, seed=0, nonlinearity="relu", device="cpu")
    torch.testing.assert_close(t(X, max_memory=1), t(X))
    assert t.output_shape((1, 8, 8)) == (5, 6, 6)


def test_featurisation_is_equivariant_to_translation():
    """A conv layer commutes with shifts: shifting the image shifts the feature map."""
    X = torch.randn(1, 1, 10, 10, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    t = RandomFeatureConv.from_metric(
        random_psd(9), 3, 1, 3, seed=1, dtype=torch.float64, device="cpu"
    )
    torch.testing.assert_close(t(X[..., 1:, 2:])[..., :, :], t(X)[..., 1:, 2:])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(M=-torch.eye(9)), "positive semi-definite"),
        (dict(M=torch.eye(8)), "M must be 9 x 9"),
        (dict(patch_size=2), "patch_size"),
        (dict(width=0), "width"),
        (dict(nonlinearity="softplus"), "nonlinearity"),
        (dict(seed=-1), "seed"),
    ],
)
def test_featurize_rejects_bad_arguments(kwargs, match):
    args = dict(X=torch.randn(2, 1, 6, 6), M=None, width=3, patch_size=3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        featurize(**args, device="cpu")


def test_featurize_rejects_bad_images():
    with pytest.raises(ValueError, match="X must have shape"):
        featurize(torch.randn(6, 6), None, 3, 3, device="cpu")
    with pytest.raises(ValueError, match="non-finite"):
        featurize(torch.full((1, 1, 6, 6), math.nan), None, 3, 3, device="cpu")
    t = RandomFeatureConv.from_metric(None, 3, 2, 3, device="cpu")
    with pytest.raises(ValueError, match="2 channels"):
        t(torch.randn(1, 1, 6, 6))
    with pytest.raises(ValueError, match="smaller than the patch size"):
        t(torch.randn(1, 2, 2, 6))
    with pytest.raises(ValueError, match="filters must have shape"):
        RandomFeatureConv(torch.randn(3, 9))


# ---- the estimator ----------------------------------------------------------------------


def two_class_images(n: int = 40, size: int = 9, seed: int = 0):
    """A bright bar, horizontal (class 0) or vertical (class 1), at a random place in noise."""
    rng = np.random.default_rng(seed)
    X = 0.3 * rng.standard_normal((n, 1, size, size))
    y = rng.integers(0, 2, n)
    for i in range(n):
        a, b = rng.integers(1, size - 4, 2)
        if y[i] == 0:
            X[i, 0, a, b : b + 4] += 1.5
        else:
            X[i, 0, a : a + 4, b] += 1.5
    return X.astype(np.float64), y


def test_one_layer_is_convrfm():
    from agop.rfm import ConvRFM

    X, y = two_class_images()
    common = dict(patch_size=3, n_iter=1, random_state=4, device="cpu", progress=False)
    deep = DeepConvRFM(depth=2, n_layers=1, width=8, **common).fit(X, y)
    single = ConvRFM(kernel="cntk", depth=2, **common).fit(X, y)
    torch.testing.assert_close(deep.M_, single.M_)
    assert deep.filters_ == [] and len(deep.Ms_) == 1
    Xt, _ = two_class_images(seed=1)
    np.testing.assert_array_equal(deep.predict(Xt), single.predict(Xt))
    np.testing.assert_allclose(deep.decision_function(Xt), single.decision_function(Xt))


def test_two_layers_shapes_and_determinism():
    X, y = two_class_images()
    kw = dict(
        depth=2, width=6, patch_size=3, n_iter=1, random_state=0, device="cpu", progress=False
    )
    a = DeepConvRFM(**kw).fit(X, y)
    assert [M.shape for M in a.Ms_] == [(9, 9), (6 * 9, 6 * 9)]
    assert [f.shape for f in a.filters_] == [(6, 1, 3, 3)]
    assert [h["kernel_depth"] for h in a.history_] == [2, 1]
    assert a.transform(X).shape == (40, 6, 7, 7)
    Xt, yt = two_class_images(seed=1)
    scores = a.score_layers(Xt, yt)
    assert len(scores) == 2 and scores[-1] == pytest.approx(a.score(Xt, yt))
    maps = a.feature_maps(Xt[:3])
    assert [tuple(m.shape) for m in maps] == [(3, 9, 9), (3, 7, 7)]
    from agop.features import feature_map

    torch.testing.assert_close(maps[1], feature_map(a.Ms_[1], a.transform(Xt[:3]), 3))
    # the control map with M = I is the norm of each zero-padded patch
    plain = a.feature_maps(Xt[:3], identity=True)[0]
    padded = torch.nn.functional.pad(torch.as_tensor(Xt[:3]), (1, 1, 1, 1))
    torch.testing.assert_close(plain[:, 4, 5], padded[:, 0, 4:7, 5:8].reshape(3, -1).norm(dim=1))
    b = DeepConvRFM(**kw).fit(X, y)
    torch.testing.assert_close(a.filters_[0], b.filters_[0])
    np.testing.assert_array_equal(a.predict(Xt), b.predict(Xt))


def test_two_layers_decompose_each_metric_once(monkeypatch):
    """Validate once (issue 29): each layer's rounds decompose their metric once (one
    ``eigh`` for :math:`M^{1/2}`, one ``eigvalsh`` for the ``max_eig`` normalisation), and the
    featurisation draws its filters from one more ``eigh`` of the fitted metric, with no
    positive semi-definiteness check of it. Decompositions of the ``32 x 32`` kernel matrices
    (the ridge sweep) are not counted."""
    X, y = two_class_images()
    calls = {"eigh": 0, "eigvalsh": 0}
    real = {name: getattr(torch.linalg, name) for name in calls}

    def counting(name):
        def call(A, *args, **kwargs):
            calls[name] += A.shape[-1] in (9, 6 * 9)  # the two layers' metrics
            return real[name](A, *args, **kwargs)

        return call

    for name in calls:
        monkeypatch.setattr(torch.linalg, name, counting(name))
    kw = dict(depth=2, width=6, patch_size=3, n_iter=1, random_state=0, device="cpu")
    model = DeepConvRFM(progress=False, **kw).fit(X, y)
    assert [len(layer.Ms_) for layer in model.layers_] == [2, 2]  # one round per layer
    assert calls == {"eigh": 1 + 1 + 1, "eigvalsh": 1 + 1}


def test_default_nonlinearity_is_the_papers_relu_and_none_is_the_codes():
    """Algorithm 2 applies phi to the random features (default ReLU); nonlinearity=None is
    the authors' code: the same filters, no rectification."""
    X, y = two_class_images()
    kw = dict(
        depth=2, width=6, patch_size=3, n_iter=1, random_state=0, device="cpu", progress=False
    )
    paper = DeepConvRFM(**kw).fit(X, y)
    code = DeepConvRFM(**kw, nonlinearity=None).fit(X, y)
    assert DeepConvRFM().get_params()["nonlinearity"] == "relu"
    torch.testing.assert_close(paper.filters_[0], code.filters_[0])
    linear = code.transform(X)
    assert bool((linear < 0).any())
    np.testing.assert_array_equal(paper.transform(X), np.maximum(linear, 0))


def test_estimator_rejects_bad_input():
    X, y = two_class_images(n=10)
    with pytest.raises(ValueError, match="n_layers"):
        DeepConvRFM(depth=2, n_layers=3).fit(X, y)
    with pytest.raises(ValueError, match="width"):
        DeepConvRFM(depth=2, width=0).fit(X, y)
    with pytest.raises(ValueError, match="need at least"):
        DeepConvRFM(depth=5, patch_size=3).fit(X, y)
    with pytest.raises(ValueError, match="nonlinearity"):
        DeepConvRFM(depth=2, nonlinearity="gelu?").fit(X, y)
    with pytest.raises(NotFittedError):
        DeepConvRFM().predict(X)
    params = DeepConvRFM(depth=2, width=5).get_params()
    assert params["depth"] == 2 and params["width"] == 5


@pytest.mark.parametrize("seed", [0, 1])
def test_one_agop_round_beats_the_fixed_kernel_on_the_star_task(seed):
    """The star task at test size (20 x 20, patch 7, CNTK depth 1, 40 images): the metric
    learned by one AGOP round beats M = I on held-out images by more than 5 points (about
    10-15 at this size; 78% -> 95% in the authors' 32 x 32 run)."""
    from agop.rfm import ConvRFM
    from agop_book.ch05_deep_convrfm import star_in_noise

    X, y = star_in_noise(40, image_size=20, seed=seed, device="cpu", dtype=torch.float64)
    Xt, yt = star_in_noise(
        200, image_size=20, seed=seed + 10_000, device="cpu", dtype=torch.float64
    )
    common = dict(
        kernel="cntk", depth=1, patch_size=7, random_state=seed, device="cpu", progress=False
    )
    fixed = ConvRFM(n_iter=0, **common).fit(X, y).score(Xt, yt)
    learned = ConvRFM(n_iter=1, **common).fit(X, y)
    assert learned.best_iter_ == 1
    assert learned.score(Xt, yt) > fixed + 0.05


def _sqrtm(M: torch.Tensor) -> torch.Tensor:
    """The PSD square root by scipy (not the package's eigendecomposition)."""
    import scipy.linalg

    root = scipy.linalg.sqrtm(M.double().numpy())
    return torch.as_tensor(np.real(root))


def test_filters_are_drawn_from_the_learned_metrics():
    """Layer l's filters are G_l M_l^{1/2} with M_l the feature matrix that layer's ConvRFM
    kept, and G_l a Gaussian matrix fixed by the seed. With the same random_state, n_iter = 0
    keeps M_l = I at every layer, so its filters are G_l themselves: the filters of the fit
    with learned metrics must equal G_l M_l^{1/2} (square root by scipy), at every layer.
    The filters alone are compared, so this holds for any nonlinearity; the authors' code's
    (none) is used, on which validation keeps round 1 of 2 at both layers (the paper's ReLU
    keeps the last round at layer 2, where a last-iterate bug would go unseen)."""
    X, y = two_class_images(n=60, size=9)
    kw = dict(
        depth=3,
        width=3,
        patch_size=3,
        random_state=3,
        device="cpu",
        progress=False,
        nonlinearity=None,
    )
    learned = DeepConvRFM(n_iter=2, **kw).fit(X, y)
    plain = DeepConvRFM(n_iter=0, **kw).fit(X, y)
    assert len(learned.filters_) == len(plain.filters_) == 2
    # validation kept round 1 of 2 at both layers: M_l is neither I nor the last iterate
    assert [layer.best_iter_ for layer in learned.layers_[:2]] == [1, 1]
    for l, (W, G) in enumerate(zip(learned.filters_, plain.filters_, strict=True)):
        M = learned.Ms_[l]
        q = M.shape[0]
        torch.testing.assert_close(plain.Ms_[l], torch.eye(q, dtype=M.dtype))
        assert not torch.allclose(M, torch.eye(q, dtype=M.dtype), atol=0.1), l  # M_l was learned
        expected = G.reshape(3, q) @ _sqrtm(M).to(G.dtype)
        torch.testing.assert_close(W.reshape(3, q), expected, rtol=1e-6, atol=1e-8)
        # and not the filters of the other metric
        assert not torch.allclose(W.reshape(3, q), G.reshape(3, q), atol=1e-3)
        assert not torch.allclose(W.reshape(3, q), G.reshape(3, q) @ M.to(G.dtype), atol=1e-3)


# ---- Mutation testing ---------------------------------------------------------------------
# Tests written against the survivors of `python tools/mutation.py deep_rfm` (CONTRIBUTING.md,
# "Mutation testing"); each names the behaviour it pins, checked against a definition.

import inspect  # noqa: E402

from sklearn.base import clone  # noqa: E402

from agop.kernels import CNTK, Laplace  # noqa: E402

FAST = dict(n_iter=1, random_state=0, device="cpu", progress=False)


def _defaults(f) -> dict:
    return {
        k: p.default
        for k, p in inspect.signature(f).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def test_defaults_are_the_documented_ones():
    """The class docstring's defaults through ``get_params`` (what ``clone`` copies), the
    functions' signatures, the transformer tag of the dtypes ``transform`` keeps, and the
    default seed 0 of the filters."""
    assert DeepConvRFM().get_params() == {
        "depth": 3,
        "n_layers": None,
        "width": 64,
        "patch_size": 3,
        "n_iter": 3,
        "nonlinearity": "relu",
        "random_state": None,
        "kernel": "cntk",
        "ridges": None,
        "agop_samples": None,
        "normalize": "max_eig",
        "power": 1.0,
        "validation_fraction": 0.2,
        "device": None,
        "dtype": None,
        "max_memory": None,
        "progress": True,
        "image_shape": None,
    }
    assert _defaults(random_filters) == {"seed": 0, "dtype": None, "device": None}
    assert _defaults(RandomFeatureConv.from_metric) == {
        "seed": 0,
        "nonlinearity": None,
        "dtype": None,
        "device": None,
    }
    assert _defaults(featurize) == {"nonlinearity": None, "seed": 0, "device": None}
    assert _defaults(DeepConvRFM.feature_maps) == {"identity": False}
    tags = DeepConvRFM().__sklearn_tags__()
    assert tags.transformer_tags.preserves_dtype == ["float64", "float32"]


def test_parameters_are_stored_as_given():
    """scikit-learn's convention: ``__init__`` stores each argument unchanged."""
    given = {
        "depth": 2,
        "n_layers": 1,
        "width": 5,
        "patch_size": 1,
        "n_iter": 2,
        "nonlinearity": "tanh",
        "random_state": 4,
        "kernel": "laplace",
        "ridges": (0.5,),
        "agop_samples": 9,
        "normalize": "fro",
        "power": 0.5,
        "validation_fraction": 0.3,
        "device": "cpu",
        "dtype": torch.float64,
        "max_memory": 2**20,
        "progress": False,
        "image_shape": (1, 4, 4),
    }
    model = DeepConvRFM(**given)
    assert model.get_params() == given
    assert clone(model).get_params() == given


def test_options_reach_every_layer():
    """``ridges, agop_samples, normalize, power, validation_fraction, device, dtype,
    max_memory, progress`` are passed to each layer's ConvRFM unchanged."""
    X, y = two_class_images(n=20)
    options = dict(
        ridges=(1e-3, 1e-1),
        agop_samples=7,
        normalize="fro",
        power=0.5,
        validation_fraction=0.3,
        device="cpu",
        dtype=torch.float64,
        max_memory=2**22,
        progress=False,
    )
    model = DeepConvRFM(depth=2, width=3, n_iter=1, random_state=0, **options).fit(X, y)
    for layer in model.layers_:
        assert {k: layer.get_params()[k] for k in options} == options


def test_errors_name_the_argument_at_fault():
    """Each error starts with the name of the argument at fault (issue 28); the bounds are
    the documented ones (a patch side of 1 is odd and allowed, -1 is not)."""
    X, y = two_class_images(n=10)
    M2 = torch.eye(2, dtype=torch.float64)
    for kwargs, error, match in [
        (dict(width=0), ValueError, "^width"),
        (dict(channels=0), ValueError, "^channels"),
        (dict(patch_size=-1), ValueError, "^patch_size"),
        (dict(M=[["a", "b"]]), TypeError, "^M must"),
    ]:
        args = dict(M=None, width=2, channels=1, patch_size=1) | kwargs
        with pytest.raises(error, match=match):
            random_filters(**args, device="cpu")
    assert random_filters(M2, 3, 2, 1, device="cpu").shape == (3, 2, 1, 1)  # k = 1 is fine
    with pytest.raises(TypeError, match="^filters must"):
        RandomFeatureConv([["a"]])
    for shape in [(2, 1, 3, 5), (3, 3, 3)]:  # not square; not 4-d
        with pytest.raises(ValueError, match="^filters must have shape"):
            RandomFeatureConv(torch.zeros(shape))
    t = RandomFeatureConv(torch.ones(1, 1, 3, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="^X contains"):
        t(torch.full((1, 1, 4, 4), math.nan))
    with pytest.raises(ValueError, match="^X contains"):
        featurize(torch.full((1, 1, 4, 4), math.nan), None, 2, 3, device="cpu")
    for shape in [(1, 1, 6, 2), (1, 1, 2, 6)]:  # too narrow; too low
        with pytest.raises(ValueError, match="^X has spatial size"):
            t(torch.zeros(shape, dtype=torch.float64))
    assert t(torch.ones(1, 1, 3, 3, dtype=torch.float64)).item() == 9.0  # exactly k x k
    for params, error, match in [
        (dict(depth=0), ValueError, "^depth"),
        (dict(depth=2, n_layers=0), ValueError, "^n_layers"),
        (dict(depth=2, n_layers=-1), ValueError, "^n_layers"),
        (dict(depth=2, width=0), ValueError, "^width"),
        (dict(depth=2, kernel="cntkk"), ValueError, "^kernel"),
        (dict(depth=2, kernel=3), TypeError, "^kernel must be one of"),
        (dict(depth=2, kernel=CNTK(5, depth=2)), ValueError, "kernel object's patch_size=5"),
        (dict(depth=2, kernel=CNTK(3, depth=3)), ValueError, "kernel object's depth=3"),
    ]:
        with pytest.raises(error, match=match):
            DeepConvRFM(**params, **FAST).fit(X, y)
    with pytest.raises(ValueError, match="^X contains"):
        DeepConvRFM(depth=1, **FAST).fit(np.full_like(X, math.nan), y)
    model = DeepConvRFM(depth=1, **FAST).fit(X, y)
    with pytest.raises(ValueError, match="^X contains"):
        model.predict(np.full_like(X, math.nan))
    for n_layers in (-1, 2, 1.0):
        with pytest.raises(ValueError, match=r"^n_layers must be in \[0, 0\]"):
            model.transform(X, n_layers=n_layers)


def test_parameters_are_checked_before_the_data():
    """A bad ``nonlinearity`` is reported as such even when ``y`` is bad too: every
    parameter is checked before the data."""
    X, y = two_class_images(n=10)
    with pytest.raises(ValueError, match="^nonlinearity"):
        DeepConvRFM(depth=1, nonlinearity="gelu?", **FAST).fit(X, y[:3])


class _Crop:
    """A callable without ``__name__`` that drops the last column: not elementwise."""

    def __call__(self, h):
        return h[..., :-1]

    def __repr__(self):
        return "Crop()"


def test_a_bad_nonlinearity_is_named_with_what_it_returned():
    """``phi``'s output must be a finite tensor of its input's shape: the error names ``phi``
    (its ``__name__``, else its repr), what it returned (the shape, or the type) and how many
    values were non-finite; an overflowing convolution is reported as such, not as ``phi``'s
    fault."""
    W = torch.ones(1, 1, 1, 1, dtype=torch.float64)
    X = torch.tensor([[[[-1.0, 0.0, 4.0]]]], dtype=torch.float64)
    with pytest.raises(ValueError, match=r"^nonlinearity Crop\(\) .* got shape \(1, 1, 1, 2\)"):
        RandomFeatureConv(W, _Crop())(X)

    def as_list(h):
        return h.tolist()

    with pytest.raises(ValueError, match=r"^nonlinearity 'as_list' .* got a list$"):
        RandomFeatureConv(W, as_list)(X)
    with pytest.raises(ValueError, match=r"^nonlinearity 'log' returned 2 non-finite values"):
        RandomFeatureConv(W, torch.log)(X)  # log(-1) = nan, log(0) = -inf, log(4) finite
    huge = torch.full((1, 1, 1, 1), 1e200, dtype=torch.float64)
    with pytest.raises(ValueError, match="^the convolution of X with the filters"):
        RandomFeatureConv(huge, "relu")(torch.full((1, 1, 1, 2), 1e200, dtype=torch.float64))


def test_a_custom_nonlinearity_is_probed_on_both_signs_in_the_training_dtype():
    """Before any layer is fitted a custom ``phi`` is applied to a few values of both signs
    in the training dtype (here with one layer, where no featurisation would apply it):
    ``sqrt`` fails on negatives, ``exp(45 h)`` is finite on ``[-2, 2]`` in float64 (its
    largest value ``e^90 ~ 1e39`` overflows float32 only)."""
    X, y = two_class_images(n=10)
    with pytest.raises(ValueError, match="^nonlinearity 'sqrt' returned"):
        DeepConvRFM(depth=1, nonlinearity=torch.sqrt, **FAST).fit(X, y)

    def steep(h):
        return torch.exp(45 * h)

    DeepConvRFM(depth=1, nonlinearity=steep, **FAST).fit(X, y)  # float64 X
    DeepConvRFM(depth=1, nonlinearity=steep, dtype=torch.float64, **FAST).fit(X.astype("f4"), y)
    with pytest.raises(ValueError, match="^nonlinearity 'steep' returned"):
        DeepConvRFM(depth=1, nonlinearity=steep, **FAST).fit(X.astype("f4"), y)


def test_filters_and_features_take_the_documented_dtype():
    """``random_filters``: ``M``'s dtype, or ``dtype`` (which converts ``M``), or torch's
    default for ``M = None``; ``G`` is drawn in float64 from the seed and then rounded. A
    float32 ``M`` accepts round-off negative eigenvalues up to ``psd_tolerance(float32)``.
    ``RandomFeatureConv`` converts images to its filters' dtype; ``featurize`` keeps ``X``'s."""

    def G(width, q, seed=0):
        g = torch.Generator().manual_seed(seed)
        return torch.randn(width, q, generator=g, dtype=torch.float64)

    W = random_filters(None, 4, 2, 1, device="cpu")
    assert W.dtype == torch.get_default_dtype() == torch.float32
    torch.testing.assert_close(W.reshape(4, 2), G(4, 2).float(), rtol=0, atol=0)
    W = random_filters(None, 4, 2, 1, dtype=torch.float64, device="cpu")
    torch.testing.assert_close(W.reshape(4, 2), G(4, 2), rtol=0, atol=0)
    M = torch.tensor([[4.0, 0.0], [0.0, -1e-4]], dtype=torch.float32)  # eigenvalue -2.5e-5 max
    W = random_filters(M, 4, 2, 1, seed=3, device="cpu")
    assert W.dtype == torch.float32
    torch.testing.assert_close(
        W.reshape(4, 2), G(4, 2, 3).float() @ torch.diag(torch.tensor([2.0, 0.0]))
    )
    M64 = torch.diag(torch.tensor([4.0, 9.0], dtype=torch.float64))
    W = random_filters(M64, 4, 2, 1, dtype=torch.float32, device="cpu")
    assert W.dtype == torch.float32
    torch.testing.assert_close(W.reshape(4, 2), G(4, 2).float() * torch.tensor([2.0, 3.0]))
    t = RandomFeatureConv.from_metric(None, 3, 1, 1, dtype=torch.float64, device="cpu")
    assert t.filters.dtype == torch.float64
    X = torch.rand(2, 1, 3, 3, generator=torch.Generator().manual_seed(0))
    assert t(X).dtype == torch.float64
    torch.testing.assert_close(t(X), t(X.double()))
    H = featurize(X.double(), None, 3, 1, device="cpu")  # M = None: X's dtype, not float32
    assert H.dtype == torch.float64
    torch.testing.assert_close(H, X.double() * G(3, 1).reshape(1, 3, 1, 1))
    layer = RandomFeatureConv(torch.ones(1, 1, 1, 1), nonlinearity="abs")
    assert repr(layer) == (
        "RandomFeatureConv(width=1, channels=1, patch_size=1, nonlinearity='abs')"
    )


def test_features_are_computed_in_chunks_within_max_memory(monkeypatch):
    """One chunk holds ``max_memory // per_image`` images (at least 1), with ``per_image`` =
    ``H' W' (width + c k^2)`` elements of the images' size (the output plus the im2col
    workspace); ``None`` is the 512 MiB default."""
    sizes = []
    real = torch.nn.functional.conv2d

    def conv2d(x, w, *args, **kwargs):
        sizes.append(x.shape[0])
        return real(x, w, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "conv2d", conv2d)
    X = torch.randn(5, 2, 6, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    t = RandomFeatureConv.from_metric(None, 4, 2, 3, dtype=torch.float64, device="cpu")
    per_image = 4 * 4 * (4 + 2 * 9) * 8
    full = t(X)
    assert sizes == [5]
    for budget, chunks in [(2 * per_image + 1, [2, 2, 1]), (2 * per_image - 1, [1] * 5)]:
        sizes.clear()
        torch.testing.assert_close(t(X, max_memory=budget), full, rtol=0, atol=0)
        assert sizes == chunks, budget
    sizes.clear()
    t(X, max_memory=1)
    assert sizes == [1] * 5


def test_max_memory_reaches_every_featurisation(monkeypatch):
    """The estimator's ``max_memory`` is the budget of every featurisation: in ``fit``,
    ``transform``, ``predict``, ``score_layers`` and ``feature_maps``."""
    budgets = []
    real = RandomFeatureConv._features

    def features(self, X, max_memory):
        budgets.append(max_memory)
        return real(self, X, max_memory)

    monkeypatch.setattr(RandomFeatureConv, "_features", features)
    X, y = two_class_images(n=12)
    model = DeepConvRFM(depth=2, width=3, max_memory=2**22 + 1, **FAST).fit(X, y)
    model.transform(X)
    model.predict(X)
    model.score_layers(X, y)
    model.feature_maps(X)
    assert budgets == [2**22 + 1] * 5


def test_each_layers_kernel_and_history():
    """Layer ``l`` uses a kernel with a depth (the CNTK, by name or object) at ``depth - l``
    and one without (Laplace, by name or object) unchanged, at kernel depth 1. ``history_``
    has one row per layer with exactly the documented keys, read from the layer's ConvRFM
    and its input (non-square 9 x 11 images: ``image_size`` is the width)."""
    X, y = two_class_images(n=16, size=11)
    X = X[:, :, 1:10]  # 9 x 11
    for kernel, depths in [
        ("cntk", [2, 1]),
        (CNTK(3, depth=2), [2, 1]),
        ("laplace", [1, 1]),
        (Laplace(3), [1, 1]),
    ]:
        model = DeepConvRFM(depth=2, width=3, kernel=kernel, **FAST).fit(X, y)
        assert [h["kernel_depth"] for h in model.history_] == depths, kernel
        if depths[0] == 2:
            assert [layer.kernel_.depth for layer in model.layers_] == depths, kernel
    assert model.histories_ == [layer.history_ for layer in model.layers_]
    assert model.n_features_in_ == 9 * 11
    expected = [
        {
            "layer": l,
            "kernel_depth": 1,
            "channels": c,
            "image_size": s,
            "best_iter": layer.best_iter_,
            "val_acc": layer.history_[layer.best_iter_]["val_acc"],
            "val_acc_cntk": layer.history_[0]["val_acc"],
        }
        for l, (layer, c, s) in enumerate(zip(model.layers_, (1, 3), (11, 9), strict=True))
    ]
    assert model.history_ == expected


def test_the_smallest_image_is_the_documented_bound():
    """``L - 1`` featurisations and the last kernel of depth ``d`` are ``convs = L - 1 + d``
    VALID layers of side ``k``, less the last kernel's ``padding`` on each side: images of
    side ``convs (k - 1) + 1 - 2 padding`` fit, one pixel less does not."""
    rng = np.random.default_rng(0)
    y = np.arange(8) % 2
    for kernel, side in [("cntk", 5), (Laplace(3, padding=1), 3)]:
        kw = dict(depth=2, width=2, kernel=kernel, **FAST)
        DeepConvRFM(**kw).fit(rng.standard_normal((8, 1, side, side)), y)
        with pytest.raises(ValueError, match=f"need at least {side} x {side}"):
            DeepConvRFM(**kw).fit(rng.standard_normal((8, 1, side - 1, side - 1)), y)


def test_labels_one_hot_and_named_classes():
    """Labels of any values (``classes_`` are the sorted labels, as ConvRFM's) and one-hot
    rows give the same fit; a missing ``y`` names the estimator."""
    X, y = two_class_images(n=16)
    kw = dict(depth=2, width=3, **FAST)
    named = DeepConvRFM(**kw).fit(X, np.where(y == 1, 7, 3))
    np.testing.assert_array_equal(named.classes_, [3, 7])
    assert set(named.predict(X)) <= {3, 7}
    plain = DeepConvRFM(**kw).fit(X, y)
    hot = DeepConvRFM(**kw).fit(X, np.eye(2, dtype=np.int64)[y])
    torch.testing.assert_close(hot.M_, plain.M_)
    np.testing.assert_array_equal(hot.classes_, [0, 1])
    np.testing.assert_array_equal(hot.predict(X), plain.predict(X))
    with pytest.raises(ValueError, match="^DeepConvRFM requires y"):
        DeepConvRFM(**kw).fit(X, None)


def test_transform_depth_and_containers():
    """``transform(X, n)`` is ``X`` through the first ``n`` featurisations (``n = 0``: ``X``
    itself), a tensor for a tensor and an array otherwise, rows for rows (with
    ``image_shape``; a refit reads the parameter as it is then) and images for images (an
    image fit does not read rows)."""
    X, y = two_class_images(n=12)
    model = DeepConvRFM(depth=3, width=2, nonlinearity=None, **FAST).fit(X, y)
    T = torch.as_tensor(X)
    torch.testing.assert_close(model.transform(T, n_layers=0), T)
    first = model.transforms_[0](T)
    torch.testing.assert_close(model.transform(T, n_layers=1), first)
    torch.testing.assert_close(model.transform(T), model.transforms_[1](first))
    assert isinstance(model.transform(X), np.ndarray)
    np.testing.assert_array_equal(model.transform(X, n_layers=1), first.numpy())
    with pytest.raises(ValueError, match=r"^X must have shape \(n, c, H, W\)"):
        model.predict(X.reshape(12, -1))
    rows = DeepConvRFM(depth=2, width=2, image_shape=(1, 9, -1), **FAST)
    out = rows.fit(X.reshape(12, -1), y).transform(X.reshape(12, -1))
    np.testing.assert_array_equal(out, rows.transform(X).reshape(12, -1))
    assert out.shape == (12, 2 * 7 * 7)
    np.testing.assert_array_equal(rows.predict(X.reshape(12, -1)), rows.predict(X))
    X2 = X[:, :, :7, :7]  # a refit on 7 x 7 images given as rows of 49
    rows.set_params(image_shape=(1, 7, 7)).fit(X2.reshape(12, -1), y)
    assert rows.transform(X2.reshape(12, -1)).shape == (12, 2 * 5 * 5)


def test_score_is_the_last_layers_weighted_accuracy():
    """``score`` is the accuracy of ``predict`` weighted by ``sample_weight`` (one layer:
    ``layers_[-1]`` is the only one)."""
    X, y = two_class_images(n=16)
    model = DeepConvRFM(depth=1, **FAST).fit(X, y)
    Xt, yt = two_class_images(n=16, seed=5)
    right = model.predict(Xt) == yt
    assert 0 < right.mean() < 1
    w = np.where(right, 1.0, 3.0)
    assert model.score(Xt, yt, sample_weight=w) == pytest.approx((w * right).sum() / w.sum())
    assert model.score(Xt, yt) == pytest.approx(right.mean())


def test_feature_maps_use_each_layers_metric():
    """Layer ``l``'s map is :func:`agop.features.feature_map` of ``M_l`` (a learned one, not
    ``I``) on that layer's input, in the fitted dtype for float32 images; one layer too
    (where there is no ``layers_[1]``)."""
    from agop.features import feature_map

    X, y = two_class_images(n=60, size=9)
    kw = dict(depth=3, width=3, patch_size=3, random_state=3, device="cpu", progress=False)
    model = DeepConvRFM(n_iter=2, nonlinearity=None, **kw).fit(X, y)
    assert model.layers_[0].best_iter_ == 1  # M_0 is learned
    maps = model.feature_maps(X[:2].astype("f4"))
    T = torch.as_tensor(X[:2])
    torch.testing.assert_close(maps[0], feature_map(model.Ms_[0], T, 3))
    torch.testing.assert_close(maps[1], feature_map(model.Ms_[1], model.transform(T, 1), 3))
    one = DeepConvRFM(n_iter=2, **(kw | dict(depth=1))).fit(X, y)
    (m,) = one.feature_maps(T)
    torch.testing.assert_close(m, feature_map(one.M_, T, 3))


def test_a_refit_reads_rows_by_the_image_shape_it_is_given():
    """``fit`` reads flat rows by the ``image_shape`` parameter as it is at that fit (not the
    one a previous fit kept): an image fit then a row fit reads rows afterwards, a row fit
    then an image fit (``image_shape=None``) reads images only."""
    X, y = two_class_images(n=12)
    rows = X.reshape(12, -1)
    model = DeepConvRFM(depth=2, width=2, **FAST).fit(X, y)
    model.set_params(image_shape=(1, 9, 9)).fit(rows, y)
    np.testing.assert_array_equal(model.transform(rows), model.transform(X).reshape(12, -1))
    np.testing.assert_array_equal(model.predict(rows), model.predict(X))
    model.set_params(image_shape=None).fit(X, y)
    with pytest.raises(ValueError, match=r"^X must have shape \(n, c, H, W\)"):
        model.predict(rows)


def test_one_hot_labels_keep_a_class_without_images():
    """One-hot ``y`` with a column no image has: its class is one of ``classes_`` (the
    columns, as ConvRFM reads them) and has a column of ``decision_function``."""
    from agop.rfm import ConvRFM

    X, y = two_class_images(n=16)
    Y = np.eye(3, dtype=np.int64)[y]  # class 2 has no image
    model = DeepConvRFM(depth=2, width=2, patch_size=3, **FAST).fit(X, Y)
    reference = ConvRFM(kernel="cntk", depth=2, patch_size=3, **FAST).fit(X, Y)
    np.testing.assert_array_equal(reference.classes_, [0, 1, 2])
    np.testing.assert_array_equal(model.classes_, [0, 1, 2])
    assert model.decision_function(X).shape == (16, 3)


def test_float32_fit_draws_float32_filters_from_the_seed():
    """``dtype=float32``: the filters of layer 2 are ``G`` (drawn in float64 from the seed)
    rounded to float32, times ``M^{1/2}``; with ``n_iter=0`` (``M = I``) exactly the float64
    fit's filters rounded, and the features are float32."""
    X, y = two_class_images(n=12)
    kw = dict(depth=2, width=2, n_iter=0, random_state=0, device="cpu", progress=False)
    single = DeepConvRFM(dtype=torch.float32, **kw).fit(X, y)
    double = DeepConvRFM(dtype=torch.float64, **kw).fit(X, y)
    assert single.filters_[0].dtype == torch.float32
    torch.testing.assert_close(single.filters_[0], double.filters_[0].float(), rtol=0, atol=0)
    assert single.transform(torch.as_tensor(X)).dtype == torch.float32


def test_n_features_in_counts_every_channel():
    """``n_features_in_`` is ``c H W``, the width of the flat rows (two channels here)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((10, 2, 5, 5))
    y = np.arange(10) % 2
    model = DeepConvRFM(depth=1, image_shape=(2, 5, 5), **FAST).fit(X.reshape(10, -1), y)
    assert model.n_features_in_ == X.reshape(10, -1).shape[1] == 50


# Held-out style bugs


def test_each_featurisation_draws_its_filters_from_its_own_seed():
    """With ``n_iter=0`` (M = I) the filters of featurisation l are G_l, a standard Gaussian
    (width, c_l k^2) matrix drawn from seed l + 1 of random_seeds(random_state, L + 1,
    keep_int=True) (seed 0 is the validation split's): three layers, two featurisations, two
    different streams (one seed for both would make G_1 start with G_0's numbers)."""
    from agop.estimator import random_seeds

    X, y = two_class_images(n=24, size=9)
    model = DeepConvRFM(
        depth=3, width=2, patch_size=3, n_iter=0, random_state=4, device="cpu", progress=False
    ).fit(X, y)
    seeds = random_seeds(4, 4, keep_int=True)[1:]
    assert len(model.filters_) == 2
    for l, (W, channels) in enumerate(zip(model.filters_, (1, 2), strict=True)):
        g = torch.Generator().manual_seed(seeds[l])
        G = torch.randn(2, channels * 9, generator=g, dtype=torch.float64)
        torch.testing.assert_close(W.reshape(2, -1), G, rtol=0, atol=0)


# Mutation testing, stop 33 (a fresh run of `python tools/mutation.py deep_rfm`): the memory
# checks of a fit, a data frame's column names, `output_shape`'s checks, `from_metric`'s seed.


@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_a_fit_checks_the_memory_of_its_metrics_and_featurised_images(monkeypatch, n_layers):
    """Before any work, the fit asks for the bytes of each layer's q x q metric (q = c k^2, then
    width k^2) and each featurisation's width x k^2 filters, and (with more than one layer) of
    the n featurised training images, width x (H - k + 1) x (W - k + 1) each."""
    import agop.deep_rfm as deep_rfm

    asked = []

    def record(n_values, itemsize, names, what):
        asked.append((n_values, itemsize, names, what))

    monkeypatch.setattr(deep_rfm, "_check_allocation", record)
    rng = np.random.default_rng(0)
    n, c, H, W, k, width = 6, 2, 9, 11, 3, 4
    X = rng.standard_normal((n, c, H, W)).astype(np.float32)
    y = np.arange(n) % 2
    model = DeepConvRFM(
        depth=n_layers, n_layers=n_layers, width=width, patch_size=k, dtype=torch.float32, **FAST
    )
    model.fit(X, y)
    q, q_next = c * k * k, width * k * k
    metrics = q * q + (n_layers - 1) * (q_next * q_next + width * q_next)
    expected = [
        (metrics, 4, "depth, n_layers, width", f"the metrics and filters of {n_layers} layers")
    ]
    if n_layers > 1:
        expected.append(
            (n * width * (H - k + 1) * (W - k + 1), 4, "width", "the featurised images")
        )
    assert asked[: len(expected)] == expected
    assert all(a[2:] != ("width", "the featurised images") for a in asked[len(expected) :])


def test_a_fit_on_a_data_frame_keeps_its_column_names():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((10, 25))
    y = np.arange(10) % 2
    columns = [f"px{i}" for i in range(25)]
    model = DeepConvRFM(depth=1, image_shape=(1, 5, 5), **FAST).fit(
        pd.DataFrame(X, columns=columns), y
    )
    assert list(model.feature_names_in_) == columns
    plain = DeepConvRFM(depth=1, image_shape=(1, 5, 5), **FAST).fit(X, y)
    assert not hasattr(plain, "feature_names_in_")


def test_output_shape_refuses_bad_image_shapes_by_name():
    conv = RandomFeatureConv(torch.randn(4, 2, 3, 3, dtype=torch.float64))
    assert conv.output_shape((2, 3, 5)) == (4, 1, 3)
    for bad, name in (((0, 5, 5), r"image_shape\[0\]"), ((2, 5, -1), r"image_shape\[2\]")):
        with pytest.raises(ValueError, match=f"^{name} must"):
            conv.output_shape(bad)
    for bad in ((3, 5, 5), (2, 2, 5), (3, 2, 2)):  # wrong channels, too small, or both
        with pytest.raises(ValueError, match=r"^image_shape must be \(c, H, W\) with c = 2"):
            conv.output_shape(bad)


def test_from_metric_draws_with_seed_0_by_default():
    M = random_psd(9, seed=1)
    default = RandomFeatureConv.from_metric(M, 5, 1, 3)
    torch.testing.assert_close(default.filters, random_filters(M, 5, 1, 3, seed=0), rtol=0, atol=0)
    other = RandomFeatureConv.from_metric(M, 5, 1, 3, seed=1)
    assert not torch.equal(default.filters, other.filters)


def test_a_feature_conv_refuses_images_with_other_channels_by_name():
    conv = RandomFeatureConv(torch.randn(4, 2, 3, 3, dtype=torch.float64))
    assert conv(torch.zeros(1, 2, 3, 3, dtype=torch.float64)).shape == (1, 4, 1, 1)
    with pytest.raises(ValueError, match="^X must"):
        conv(torch.zeros(1, 3, 5, 5, dtype=torch.float64))


# Hostile inputs, round 4


@pytest.mark.parametrize("identity", ["yes", 1, None])
def test_feature_maps_identity_must_be_a_bool(identity):
    """A string's truth was taken silently (``'no'`` meant True)."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(12, 1, 6, 6, generator=g, dtype=torch.float64)
    y = torch.arange(12) % 2
    model = DeepConvRFM(depth=1, width=4, n_iter=0, random_state=0, device="cpu", progress=False)
    model.fit(X, y)
    with pytest.raises(TypeError, match="^identity must be True or False"):
        model.feature_maps(X, identity=identity)


@pytest.mark.parametrize("dtype", ["Float64", "Int64"])
def test_nullable_frames_are_read_as_numbers_and_missing_values_refused(dtype):
    """As ConvRFM: a frame of nullable columns fits as the numpy array of its numbers, and one
    ``pd.NA`` is a ValueError naming ``X`` that says it holds missing values (was: "non-finite
    values")."""
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    plain = rng.integers(-3, 4, (10, 25)).astype(np.float64 if dtype == "Float64" else np.int64)
    y = np.arange(10) % 2
    frame = pd.DataFrame(plain, columns=[f"px{i}" for i in range(25)]).astype(dtype)
    kw = dict(depth=1, width=4, image_shape=(1, 5, 5), **FAST)
    model, reference = DeepConvRFM(**kw).fit(frame, y), DeepConvRFM(**kw).fit(plain, y)
    np.testing.assert_array_equal(
        model.decision_function(frame), reference.decision_function(plain)
    )
    missing = frame.copy()
    missing.iloc[3, 7] = pd.NA
    with pytest.raises(ValueError, match="^X contains 1 missing value"):
        DeepConvRFM(**kw).fit(missing, y)
    with pytest.raises(ValueError, match="^X contains 1 missing value"):
        model.predict(missing)


# --------------------------------------------------------------------------------------------
# Hostile inputs, round 6
# --------------------------------------------------------------------------------------------


def test_random_filters_of_terabytes_are_refused_by_name():
    """width=10**12 reached torch's allocator ("DefaultCPUAllocator: can't allocate memory")."""
    with pytest.raises(ValueError, match="^width: 1000000000000 random filters of 9 weights"):
        random_filters(None, 10**12, 1, 3)
    X = torch.rand(2, 1, 5, 5, dtype=torch.float64)
    with pytest.raises(ValueError, match="^width: "):
        featurize(X, None, 10**12, 3, device="cpu")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_featurize_of_half_precision_images_computes_in_float32(dtype):
    """float16 images were refused with "dtype must be one of torch.float32, torch.float64",
    an argument the caller never passed; they are read as float32, as integer images are."""
    X = torch.rand(3, 1, 5, 5, generator=torch.Generator().manual_seed(0)).to(dtype)
    M = torch.eye(9, dtype=torch.float64)
    got = featurize(X, M, 4, 3, nonlinearity="relu", seed=1, device="cpu")
    want = featurize(X.float(), M, 4, 3, nonlinearity="relu", seed=1, device="cpu")
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_random_feature_conv_names_a_bad_max_memory():
    layer = RandomFeatureConv(torch.ones(2, 1, 3, 3, dtype=torch.float64))
    X = torch.rand(2, 1, 5, 5, dtype=torch.float64)
    with pytest.raises(ValueError, match="^max_memory must be a positive integer, got 0"):
        layer(X, max_memory=0)
    with pytest.raises(TypeError, match="^max_memory must be an integer"):
        layer(X, max_memory="1e6")


def test_random_feature_conv_that_overflows_is_refused_clearly():
    """Filters near 1e20 on float32 images near 1e20: the convolution (about 1e41) is beyond
    float32, and without a nonlinearity the features came back as inf."""
    layer = RandomFeatureConv(torch.full((2, 1, 3, 3), 1e20))
    with pytest.raises(
        ValueError,
        match=r"^the convolution of X with the filters is not finite.*max \|filters\| = 1e\+20",
    ):
        layer(torch.full((1, 1, 3, 3), 1e20))


def test_transform_refuses_a_bool_n_layers():
    """n_layers=True was read as 1 layer, silently (False as 0)."""
    X = torch.rand(12, 1, 5, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    y = np.arange(12) % 2
    model = DeepConvRFM(
        depth=2, width=3, patch_size=3, n_iter=0, random_state=0, device="cpu", progress=False
    ).fit(X, y)
    for flag in (True, False, np.True_):
        with pytest.raises(ValueError, match=r"^n_layers must be in \[0, 1\], got"):
            model.transform(X, flag)


def test_kernel_object_of_another_shape_is_named_kernel():
    X = torch.rand(12, 1, 5, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    y = np.arange(12) % 2
    from agop.kernels import CNTK

    with pytest.raises(ValueError, match="^kernel: the kernel object's depth=5 differs"):
        DeepConvRFM(
            depth=2, width=3, patch_size=3, kernel=CNTK(3, depth=5), device="cpu", progress=False
        ).fit(X, y)
