"""ConvRFM: it finds a planted patch direction, its rounds are Algorithm 1, and it is a
well-behaved scikit-learn classifier on image tensors."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score

from agop import kernels as K
from agop.linalg import psd_sqrt
from agop.patches import extract_patches
from agop.rfm import ConvRFM, normalize_feature_matrix, rfm_iterations

FAST = dict(device="cpu", progress=False)


def planted_edge(
    n: int,
    amp: float = 0.7,
    channels: int = 3,
    k: int = 5,
    width: int = 24,
    segment: int = 8,
    seed: int = 0,
):
    """Noise images ``(channels, k, width)``; a horizontal edge (rows ``+ + 0 - -``) of length
    ``segment`` at a random horizontal place in channel 0, with sign = label.

    Within any ``k x k`` patch the signal lies along one direction ``u`` (the edge profile
    repeated over columns, zero in the other channels), up to the patches that cut the segment.
    """
    g = torch.Generator().manual_seed(seed)
    s = torch.tensor([1.0, 1.0, 0.0, -1.0, -1.0]) / 2
    X = torch.randn(n, channels, k, width, generator=g)
    y = torch.randint(0, 2, (n,), generator=g)
    start = torch.randint(0, width - segment + 1, (n,), generator=g)
    cols = torch.arange(width)
    mask = ((cols >= start[:, None]) & (cols < start[:, None] + segment)).float()
    X[:, 0] += amp * (2 * y - 1).float()[:, None, None] * s[None, :, None] * mask[:, None, :]
    u = torch.zeros(channels, k, k)
    u[0] = s[:, None].expand(k, k)
    return X, y, (u / u.norm()).reshape(-1)


def small_digits(n: int = 60, n_classes: int = 3, seed: int = 0):
    from agop_book.data import digits

    X, y = digits(classes=list(range(n_classes)), dtype=torch.float64)
    idx = torch.randperm(X.shape[0], generator=torch.Generator().manual_seed(seed))[:n]
    return X[idx].numpy(), y[idx].numpy()


# ---- the mathematics ----------------------------------------------------------------------


def test_planted_direction_is_learned_and_helps():
    X, y, u = planted_edge(300)
    Xt, yt, _ = planted_edge(1000, seed=1)
    model = ConvRFM("laplace", patch_size=5, n_iter=1, random_state=0, **FAST).fit(X, y)
    eigvals, eigvecs = torch.linalg.eigh(model.Ms_[1].double())
    assert abs(float(eigvecs[:, -1] @ u.double())) >= 0.9
    assert eigvals[-1] > 5 * eigvals[-2]  # one dominant direction, not a flat spectrum
    fixed, learned = model.score_iterations(Xt, yt)
    assert learned >= fixed + 0.02, (fixed, learned)
    assert model.best_iter_ == 1 and model.score(Xt, yt) == pytest.approx(learned)
    assert model.history_[0]["val_acc"] < model.history_[1]["val_acc"]


def test_planted_direction_cntk():
    X, y, u = planted_edge(150, amp=1.0, channels=1)
    model = ConvRFM("cntk", patch_size=5, depth=1, n_iter=1, random_state=0, **FAST).fit(X, y)
    top = torch.linalg.eigh(model.Ms_[1].double())[1][:, -1]
    assert abs(float(top @ u.double())) >= 0.9


def test_rounds_are_algorithm_1(float64):
    """M_1 is the normalised patch-AGOP of the round-0 predictor, computed here by autograd
    through an explicit patch-wise Laplace machine (patches as independent variables)."""
    X, y = small_digits(40)
    model = ConvRFM(
        "laplace", patch_size=3, padding=1, n_iter=1, random_state=1, bandwidth=4.0, **FAST
    ).fit(X, y)
    Z, alpha = model.X_fit_, model.dual_coefs_[0]
    Pz = extract_patches(Z, 3)  # images already padded
    Px = Pz.clone().requires_grad_(True)
    dist = (Px[:, None] - Pz[None]).pow(2).sum(-1).clamp_min(1e-300).sqrt()  # (n, m, P)
    f = torch.exp(-dist / 4.0).mean(-1) @ alpha  # (n, C)
    agop = torch.zeros(9, 9)
    for c in range(f.shape[1]):
        (g,) = torch.autograd.grad(f[:, c].sum(), Px, retain_graph=True)
        agop += torch.einsum("npi,npj->ij", g, g) / Z.shape[0]
    torch.testing.assert_close(
        model.Ms_[1], agop / torch.linalg.eigvalsh(agop)[-1], rtol=1e-6, atol=1e-8
    )
    # and the machine of round 0 is kernel ridge regression with the chosen ridge
    K = model.kernel_(Z, Z)
    s = K.max()
    Xp = torch.nn.functional.pad(torch.as_tensor(X), (1, 1, 1, 1))
    rows = (Z.flatten(1)[:, None] == Xp.flatten(1)[None]).all(-1).double().argmax(1)
    Y = torch.eye(3)[torch.as_tensor(y)[rows]]  # the training split's labels
    alpha0 = torch.linalg.solve(K / s + model.history_[0]["ridge"] * torch.eye(len(Z)), Y) / s
    torch.testing.assert_close(alpha, alpha0, rtol=1e-5, atol=1e-8)


def _laplace_patchwise(Pa, Pb, M, bandwidth):
    """``K_M(a, b) = (1/P) sum_j exp(-|a[j] - b[j]|_M / L)`` from explicit patches ``(n, P, q)``;
    the distance is clamped so that its gradient is zero where it vanishes."""
    d = Pa[:, None] - Pb[None]
    dist = torch.einsum("nmpi,ij,nmpj->nmp", d, M, d).clamp_min(1e-300).sqrt()
    return torch.exp(-dist / bandwidth).mean(-1)


def _ridge_on(K, Y, K_eval, Y_eval, ridges):
    """The ridge with the best accuracy on ``(K_eval, Y_eval)`` (ties: the larger ridge), its
    ``alpha`` and that accuracy, by one dense solve per ridge."""
    best = None
    for lam in ridges:
        alpha = torch.linalg.solve(K + lam * torch.eye(len(K)), Y)
        acc = float(((K_eval @ alpha).argmax(1) == Y_eval.argmax(1)).double().mean())
        if best is None or (acc, lam) > (best[2], best[0]):
            best = (lam, alpha, acc)
    return best


def _normalised_agop(Pz, M, alpha, bandwidth):
    """``AGOP / lambda_max`` of ``f(x) = K_M(x, Z) alpha`` over the training images ``Z``
    (patches ``Pz``), by autograd with every patch an independent variable."""
    Px = Pz.clone().requires_grad_(True)
    f = _laplace_patchwise(Px, Pz, M, bandwidth) @ alpha
    agop = torch.zeros(M.shape)
    for c in range(f.shape[1]):
        (g,) = torch.autograd.grad(f[:, c].sum(), Px, retain_graph=True)
        agop += torch.einsum("npi,npj->ij", g, g) / len(Pz)
    return agop / torch.linalg.eigvalsh(agop)[-1]


@pytest.mark.slow
def test_every_round_is_algorithm_1(float64):
    """Two AGOP rounds checked round by round against an independent computation: at round t
    the kernel is K_{M_t} (brute force on explicit patches), the ridge is the best on the
    *validation* images (recomputed here with dense solves), alpha_t solves the ridge system,
    and M_{t+1} is the max-eigenvalue-normalised patch-AGOP of f_t under K_{M_t} (autograd
    through the explicit machine, patches as independent variables). On this data the
    training split would choose other ridges, so a ridge chosen on the wrong split fails, and
    M_2 differs from the AGOP taken under M = I, so an AGOP with the wrong metric fails."""
    from agop_book.data import digits

    X, y = digits(dtype=torch.float64)
    idx = torch.randperm(X.shape[0], generator=torch.Generator().manual_seed(2))[:100]
    X = X[idx] + 0.5 * torch.randn(100, 1, 8, 8, generator=torch.Generator().manual_seed(9))
    y = y[idx]
    ridges, L = (1e-6, 1e-3, 1e-2, 1e-1, 1.0), 4.0
    model = ConvRFM(
        "laplace",
        patch_size=3,
        padding=1,
        n_iter=2,
        random_state=2,
        bandwidth=L,
        ridges=ridges,
        **FAST,
    ).fit(X, y)
    assert len(model.Ms_) == 3
    # the two splits, found by matching the stored training images among all (padded) images
    Xp = torch.nn.functional.pad(X, (1, 1, 1, 1))
    Z = model.X_fit_
    same = (Z.flatten(1)[:, None] == Xp.flatten(1)[None]).all(-1)  # (n_train, n)
    assert bool((same.sum(1) == 1).all())
    train_rows, val_rows = same.double().argmax(1), ~same.any(0)
    Y, Y_val = torch.eye(10)[y[train_rows]], torch.eye(10)[y[val_rows]]
    Pz, Pv = extract_patches(Z, 3), extract_patches(Xp[val_rows], 3)
    M, differs = torch.eye(9), []
    for t in range(3):
        torch.testing.assert_close(model.Ms_[t], M, rtol=1e-6, atol=1e-9)
        K, K_val = _laplace_patchwise(Pz, Pz, M, L), _laplace_patchwise(Pv, Pz, M, L)
        s = K.max()
        lam, alpha, val_acc = _ridge_on(K / s, Y, K_val / s, Y_val, ridges)
        differs.append(_ridge_on(K / s, Y, K / s, Y, ridges)[0] != lam)
        assert model.history_[t]["ridge"] == lam, t
        assert model.history_[t]["val_acc"] == pytest.approx(val_acc), t
        torch.testing.assert_close(model.dual_coefs_[t], alpha / s, rtol=1e-6, atol=1e-9)
        if t == 2:
            break
        previous, M = M, _normalised_agop(Pz, M, alpha / s, L)
        if t == 1:  # the test can tell: under M = I the same round gives another M_2
            other = _normalised_agop(Pz, torch.eye(9), alpha / s, L)
            assert not torch.allclose(other, M, rtol=0.05, atol=0.05)
            assert not torch.allclose(previous, torch.eye(9), atol=0.05)
    assert any(differs), "the data no longer separates the validation from the training choice"
    keys = [(h["val_acc"], -h["val_mse"]) for h in model.history_]
    assert model.best_iter_ == max(range(3), key=lambda t: (keys[t], -t))


def test_normalisations_and_power(float64):
    g = torch.Generator().manual_seed(0)
    B = torch.randn(6, 4, generator=g)
    A = B @ B.T
    assert torch.linalg.eigvalsh(normalize_feature_matrix(A))[-1] == pytest.approx(1.0)
    assert torch.linalg.matrix_norm(normalize_feature_matrix(A, "fro")) == pytest.approx(1.0)
    torch.testing.assert_close(normalize_feature_matrix(A, None), A)
    root = normalize_feature_matrix(A, None, power=0.5)
    torch.testing.assert_close(root @ root, A)
    with pytest.raises(ValueError, match="zero"):
        normalize_feature_matrix(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="normalize"):
        normalize_feature_matrix(A, "trace")

    X, y = small_digits(40)
    kw = dict(kernel="laplace", patch_size=3, padding=1, n_iter=1, random_state=0, **FAST)
    plain = ConvRFM(**kw).fit(X, y)
    sqrt = ConvRFM(power=0.5, normalize="fro", **kw).fit(X, y)
    expected = psd_sqrt(plain.Ms_[1])
    torch.testing.assert_close(sqrt.Ms_[1], expected / expected.norm(), rtol=1e-5, atol=1e-7)


def test_rfm_iterations_zero_agop_stops_with_warning():
    class Constant:
        patch_size = 1

        def __call__(self, X, Z, M=None):
            return torch.eye(X.shape[0], Z.shape[0], dtype=X.dtype) + 1.0

        def agop(self, X, Z, alpha, M=None):
            return torch.zeros(1, 1, dtype=X.dtype)

    X = torch.randn(6, 1, 2, 2)
    Y = torch.eye(2)[[0, 1, 0, 1, 0, 1]]
    with pytest.warns(RuntimeWarning, match="zero"):
        result = rfm_iterations(Constant(), X, Y, X[:2], Y[:2], n_iter=3, q=1)
    assert len(result.Ms) == len(result.history) == 1 and result.best_iter == 0


# ---- the estimator ------------------------------------------------------------------------


def test_history_attributes_and_fixed_kernel_baseline():
    X, y = small_digits()
    model = ConvRFM("laplace", patch_size=3, padding=1, n_iter=2, random_state=0, **FAST)
    assert model.fit(X, y) is model
    assert len(model.Ms_) == len(model.history_) == 3 and model.n_iter_ == 2
    torch.testing.assert_close(model.Ms_[0], torch.eye(9, dtype=model.Ms_[0].dtype))
    assert model.M_ is model.Ms_[model.best_iter_]
    assert set(model.history_[0]) >= {
        "train_acc",
        "val_acc",
        "train_mse",
        "val_mse",
        "ridge",
        "seconds",
    }
    assert model.X_fit_.dtype == torch.float64  # the caller's dtype is kept
    best = max(h["val_acc"] for h in model.history_)
    assert model.history_[model.best_iter_]["val_acc"] == best
    baseline = ConvRFM("laplace", patch_size=3, padding=1, n_iter=0, random_state=0, **FAST).fit(
        X, y
    )

    def untimed(h):
        return {k: v for k, v in h.items() if not k.endswith("seconds")}

    assert [untimed(h) for h in baseline.history_] == [untimed(model.history_[0])]
    assert model.history_[0]["agop_seconds"] > 0 and baseline.history_[0]["agop_seconds"] == 0
    np.testing.assert_array_equal(model.classes_, [0, 1, 2])
    assert model.decision_function(X).shape == (60, 3)


def test_labels_one_hot_strings_and_binary():
    X, y = small_digits()
    kw = dict(kernel="laplace", patch_size=3, padding=1, n_iter=1, random_state=0, **FAST)
    a = ConvRFM(**kw).fit(X, y)
    b = ConvRFM(**kw).fit(torch.as_tensor(X), np.eye(3)[y])
    names = np.array(["zero", "one", "two"])
    c = ConvRFM(**kw).fit(X, names[y])
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    np.testing.assert_array_equal(names[a.predict(X)], c.predict(X))
    assert b.score(X, np.eye(3)[y]) == a.score(X, y) == c.score(X, names[y])
    keep = y < 2
    binary = ConvRFM(**kw).fit(X[keep], y[keep])
    scores = binary.decision_function(X[keep])
    assert scores.shape == (keep.sum(),)
    np.testing.assert_array_equal(binary.predict(X[keep]), (scores > 0).astype(int))


def test_sklearn_conventions():
    X, y = small_digits()
    model = ConvRFM("laplace", patch_size=3, padding=1, n_iter=1, random_state=0, **FAST)
    params = model.get_params()
    assert {"kernel", "patch_size", "depth", "n_iter", "random_state"} <= set(params)
    twin = clone(model)
    assert twin.get_params() == params and not hasattr(twin, "M_")
    assert model.set_params(n_iter=2) is model and model.n_iter == 2
    first = model.fit(X, y).decision_function(X)
    again = clone(model).fit(X, y).decision_function(X)
    np.testing.assert_array_equal(first, again)  # deterministic with a seed

    scores = cross_val_score(
        clone(model).set_params(n_iter=1), X, y, cv=KFold(3, shuffle=True, random_state=0)
    )
    assert scores.shape == (3,) and scores.mean() > 0.8
    search = GridSearchCV(clone(model), {"n_iter": [0, 1]}, cv=2).fit(torch.as_tensor(X), y)
    assert search.best_params_["n_iter"] in (0, 1) and search.score(X, y) > 0.8


def test_bad_input_errors():
    X, y = small_digits(20)
    model = ConvRFM("laplace", patch_size=3, padding=1, n_iter=1, **FAST)
    with pytest.raises(ValueError, match=r"\(n, c, H, W\)"):
        model.fit(X[:, 0], y)
    with pytest.raises(ValueError, match="one label per image"):
        model.fit(X, y[:-1])
    with pytest.raises(ValueError, match="two classes"):
        model.fit(X, np.zeros(20, dtype=int))
    with pytest.raises(ValueError, match="one-hot"):
        model.fit(X, np.full((20, 3), 0.5))
    with pytest.raises(ValueError, match="validation"):
        model.fit(X[:2], y[:2])
    bad = X.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        model.fit(bad, y)
    with pytest.raises(ValueError, match="patch_size"):
        clone(model).set_params(patch_size=4).fit(X, y)
    with pytest.raises(ValueError, match="patch size"):
        clone(model).set_params(patch_size=11, padding=0).fit(X, y)
    with pytest.raises(ValueError, match="validation_fraction"):
        clone(model).set_params(validation_fraction=1.0).fit(X, y)
    with pytest.raises(ValueError, match="normalize"):
        clone(model).set_params(normalize="trace").fit(X, y)
    with pytest.raises(ValueError, match="kernel"):
        clone(model).set_params(kernel="gaussian").fit(X, y)
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        clone(model).predict(X)
    model.fit(X, y)
    with pytest.raises(ValueError, match="training images' shape"):
        model.predict(np.zeros((3, 1, 9, 9)))
    with pytest.raises(ValueError, match="iteration"):
        model._outputs(X, iteration=5)


def test_fit_refuses_a_kernel_matrix_with_nan_or_inf():
    """A kernel (here a user's callable) whose K(X, X) holds one NaN or inf is refused with
    the count, not scaled by it."""
    from agop.rfm import fit_kernel_machine

    X = torch.randn(6, 1, 4, 4, dtype=torch.float64)
    Y = torch.eye(6, 2, dtype=torch.float64)
    for bad in (float("nan"), float("inf")):

        def kernel(A, B=None, M=None, bad=bad):
            B = A if B is None else B
            K = torch.exp(-torch.cdist(A.flatten(1), B.flatten(1)))
            if B is A:
                K[2, 3] = bad
            return K

        with pytest.raises(ValueError, match=r"K\(X, X\) contains 1 non-finite"):
            fit_kernel_machine(kernel, X, Y, X[:2], Y[:2], None, [1e-3])


@pytest.mark.parametrize("kernel", ["laplace", "cntk"])
def test_fit_and_predict_check_once_and_decompose_each_metric_once(kernel, monkeypatch):
    """Validate once (issue 29): through ``ConvRFM.fit`` the images are scanned for
    finiteness once, and each round's metric is decomposed once: one ``eigh`` (its square
    root, shared by ``K(X, X)``, ``K(X_val, X)`` and the AGOP) and one ``eigvalsh`` (the
    ``max_eig`` normalisation), no positive semi-definiteness check of a metric the fit made
    itself (the ridge sweep's decompositions of ``K`` are not counted). ``predict`` scans its images once and decomposes the chosen metric once."""
    import agop.validation

    calls = {"eigh": 0, "eigvalsh": 0, "images": 0}
    real = {name: getattr(torch.linalg, name) for name in ("eigh", "eigvalsh")}
    real_all_finite = agop.validation.all_finite

    def counting(name):
        def call(A, *args, **kwargs):
            calls[name] += A.shape[-1] == 9  # a metric (the ridge sweep decomposes K)
            return real[name](A, *args, **kwargs)

        return call

    def all_finite(x):
        calls["images"] += x.ndim == 4  # an image batch (results are matrices)
        return real_all_finite(x)

    X, y = small_digits(40)
    model = ConvRFM(kernel, patch_size=3, n_iter=3, random_state=0, dtype=torch.float64, **FAST)
    for name in ("eigh", "eigvalsh"):
        monkeypatch.setattr(torch.linalg, name, counting(name))
    monkeypatch.setattr(agop.validation, "all_finite", all_finite)
    model.fit(X, y)
    rounds = len(model.Ms_) - 1
    assert rounds == 3
    assert calls == {"eigh": rounds, "eigvalsh": rounds, "images": 1}
    calls.update(eigh=0, eigvalsh=0, images=0)
    model.best_iter_ = rounds  # a learned metric, not the identity
    model.predict(X)
    assert calls == {"eigh": 1, "eigvalsh": 0, "images": 1}


def images(n=12, c=1, size=6, seed=0, dtype=torch.float64):
    return torch.rand(n, c, size, size, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def test_estimator_kernel_names_are_case_insensitive():
    X, y = images(), np.arange(12) % 2
    cntk = ConvRFM(kernel="CNTK", depth=2, patch_size=3, n_iter=0, **FAST, random_state=0).fit(X, y)
    assert cntk.kernel_.depth == 2
    lap = ConvRFM(
        kernel="Laplace", bandwidth=0.5, patch_size=3, n_iter=0, **FAST, random_state=0
    ).fit(X, y)
    assert lap.kernel_.bandwidth == 0.5
    ref = ConvRFM(
        kernel="laplace", bandwidth=0.5, patch_size=3, n_iter=0, **FAST, random_state=0
    ).fit(X, y)
    np.testing.assert_array_equal(lap.decision_function(X), ref.decision_function(X))
    assert K.get_kernel("LAPLACE", patch_size=3) == K.Laplace(3)
    assert K.get_kernel("cntk", patch_size=3, kind="NNGP")(X).shape == (12, 12)


def test_arguments_a_kernel_does_not_use_are_rejected():
    X, y = images(), np.arange(12) % 2
    with pytest.raises(ValueError, match="bandwidth does not apply to the 'cntk' kernel"):
        ConvRFM(kernel="cntk", bandwidth=0.5, patch_size=3, n_iter=0, **FAST, random_state=0).fit(
            X, y
        )
    with pytest.raises(ValueError, match="depth does not apply to the 'laplace' kernel"):
        ConvRFM(kernel="laplace", depth=2, patch_size=3, n_iter=0, **FAST, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="bandwidth does not apply to the 'cnngp' kernel"):
        K.get_kernel("cnngp", patch_size=3, bandwidth=2.0)


def test_kernel_object_with_conflicting_estimator_arguments_warns():
    X, y = images(), np.arange(12) % 2
    with pytest.warns(UserWarning, match="patch_size=5 is ignored.*Laplace has patch_size=3"):
        model = ConvRFM(kernel=K.Laplace(3), patch_size=5, n_iter=0, **FAST, random_state=0).fit(
            X, y
        )
    assert model.kernel_.patch_size == 3
    with pytest.warns(UserWarning, match="bandwidth=0.5 is ignored"):
        ConvRFM(
            kernel=K.Laplace(3), patch_size=3, bandwidth=0.5, n_iter=0, **FAST, random_state=0
        ).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # agreeing arguments: no warning
        ConvRFM(
            kernel=K.Laplace(3, bandwidth=2.0),
            patch_size=3,
            bandwidth=2.0,
            n_iter=0,
            **FAST,
            random_state=0,
        ).fit(X, y)


def test_grid_search_over_numpy_arange():
    X, y = images(16), np.arange(16) % 2
    grid = GridSearchCV(
        ConvRFM(kernel="laplace", n_iter=0, **FAST, random_state=0),
        {"patch_size": np.arange(1, 5, 2)},
        cv=2,
    ).fit(X, y)
    assert grid.best_params_["patch_size"] in (1, 3)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(dtype=torch.int32), "dtype must be one of.*images would be truncated"),
        (dict(dtype="float8?"), "dtype must be a floating torch dtype"),
        (dict(ridges=0.1), r"ridges must be a non-empty sequence.*pass \[0.1\]"),
        (dict(ridges=[1e-3, float("nan")]), r"ridges\[1\] must be a finite number"),
        (dict(padding=True), "padding must be an integer, got True"),
        (dict(patch_size=4), "patch_size must be a positive odd integer"),
        (dict(n_iter=1.0), "n_iter must be an integer"),
        (dict(validation_fraction=1.0), "validation_fraction must lie in"),
        (dict(normalize="l2"), "normalize must be one of"),
        (dict(power=0), "power must be a positive number"),
        (dict(max_memory=0), "max_memory must be a positive integer"),
        (dict(agop_samples=True), "agop_samples must be an integer"),
    ],
)
def test_estimator_parameters_are_checked_before_fitting(params, match):
    X, y = images(), np.arange(12) % 2
    kw = dict(kernel="laplace", patch_size=3, n_iter=0, **FAST, random_state=0) | params
    with pytest.raises(ValueError, match=match):
        ConvRFM(**kw).fit(X, y)
