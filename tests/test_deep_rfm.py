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
