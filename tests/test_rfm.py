"""ConvRFM: it finds a planted patch direction, its rounds are Algorithm 1, and it is a
well-behaved scikit-learn classifier on image tensors."""

import dataclasses
import os
import re
import time
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


# ---- Mutation testing ---------------------------------------------------------------------
# Tests written against the survivors of `python tools/mutation.py rfm` (CONTRIBUTING.md,
# "Mutation testing"); each names the behaviour it pins, checked against a definition.

from agop.data import one_hot  # noqa: E402
from agop.rfm import RFM, fit_kernel_machine  # noqa: E402

DOCUMENTED_RIDGES = (1e-8, 1e-6, 1e-4, 1e-3, 1e-2, 1e-1)


def _tiny_split(n=10, seed=0, dtype=torch.float64):
    """``n`` random 1 x 4 x 4 images with alternating labels, one-hot, split 7 / rest."""
    X = torch.rand(n, 1, 4, 4, generator=torch.Generator().manual_seed(seed), dtype=dtype)
    Y = one_hot(torch.arange(n) % 2, dtype=dtype)
    return X[:7], Y[:7], X[7:], Y[7:]


def test_defaults_are_the_documented_ones():
    """The class docstrings' defaults, through ``get_params`` (what ``clone`` and grid searches
    copy) and the signatures of the functions."""
    conv = {
        "kernel": "laplace",
        "patch_size": 7,
        "depth": 1,
        "n_iter": 3,
        "random_state": None,
        "padding": 0,
        "ridges": DOCUMENTED_RIDGES,
        "agop_samples": None,
        "normalize": "max_eig",
        "power": 1.0,
        "validation_fraction": 0.2,
        "bandwidth": None,
        "device": None,
        "dtype": None,
        "max_memory": None,
        "progress": True,
        "image_shape": None,
    }
    assert ConvRFM().get_params() == conv
    fc = {k: v for k, v in conv.items() if k not in ("kernel", "patch_size", "depth", "padding")}
    fc.pop("image_shape")
    assert RFM().get_params() == fc | {"bandwidth": 10.0}

    import inspect

    def defaults(f):
        return {
            k: p.default
            for k, p in inspect.signature(f).parameters.items()
            if p.default is not inspect.Parameter.empty
        }

    assert defaults(normalize_feature_matrix) == {"normalize": "max_eig", "power": 1.0}
    assert defaults(rfm_iterations) == {
        "ridges": DOCUMENTED_RIDGES,
        "agop_samples": None,
        "normalize": "max_eig",
        "power": 1.0,
        "generator": None,
        "progress": False,
        "desc": "ConvRFM",
        "solve_memory": None,
    }


def test_parameters_are_stored_as_given():
    """scikit-learn's convention: ``__init__`` stores each argument unchanged (``clone``
    rebuilds an estimator from ``get_params``)."""
    given = {
        "n_iter": 5,
        "random_state": 4,
        "ridges": (0.5,),
        "agop_samples": 9,
        "normalize": "fro",
        "power": 0.5,
        "validation_fraction": 0.3,
        "bandwidth": 2.5,
        "device": "cpu",
        "dtype": torch.float64,
        "max_memory": 2**20,
        "progress": False,
    }
    conv = given | {"kernel": "cntk", "patch_size": 3, "depth": 2, "padding": 1}
    conv |= {"bandwidth": None, "image_shape": (1, 4, 4)}
    for cls, params in ((ConvRFM, conv), (RFM, given)):
        model = cls(**params)
        assert model.get_params() == params, cls
        assert clone(model).get_params() == params, cls


def test_errors_name_the_argument_at_fault():
    """Each error starts with the name of the argument at fault (issue 28): a bound that is
    inclusive where it must be strict (``power = 0`` would give the projection on A's range),
    or missing (``power < 0``, ``n_iter < 0``), is refused."""
    A = torch.eye(2, dtype=torch.float64)
    for power in (0, 0.0, -1.0):
        with pytest.raises(ValueError, match="^power must be a positive number"):
            normalize_feature_matrix(A, power=power)
    with pytest.raises(TypeError, match="^power must be a real number"):
        normalize_feature_matrix(A, power="1")
    with pytest.raises(ValueError, match="^normalize must be one of"):
        normalize_feature_matrix(A, "trace")
    with pytest.raises(ValueError, match="^A contains 1 non-finite"):
        normalize_feature_matrix(torch.tensor([[1.0, float("nan")], [0.0, 1.0]]))

    X, Y, X_val, Y_val = _tiny_split()
    kernel = K.Laplace(3)
    for kwargs, error, match in [
        (dict(n_iter=-1), ValueError, "^n_iter must be a non-negative integer"),
        (dict(n_iter=1.0), TypeError, "^n_iter must be an integer"),
        (dict(normalize="trace"), ValueError, "^normalize must be one of"),
        (dict(power=0), ValueError, "^power must be a positive number"),
        (dict(power=-1.0), ValueError, "^power must be a positive number"),
        (dict(power="1"), TypeError, "^power must be a real number"),
    ]:
        with pytest.raises(error, match=match):
            rfm_iterations(kernel, X, Y, X_val, Y_val, q=9, **({"n_iter": 1} | kwargs))

    Xi, y = images(), np.arange(12) % 2
    kw = dict(patch_size=3, n_iter=1, **FAST, random_state=0)
    with pytest.raises(ValueError, match="^kernel must be one of"):
        ConvRFM(kernel="gaussian", **kw).fit(Xi, y)
    model = ConvRFM(**kw).fit(Xi, y)
    bad = Xi.clone()
    bad[1, 0, 2, 2] = float("nan")
    with pytest.raises(ValueError, match="^X contains 1 non-finite"):
        ConvRFM(**kw).fit(bad, y)
    with pytest.raises(ValueError, match="^ConvRFM requires y"):
        ConvRFM(**kw).fit(Xi, None)
    with pytest.raises(ValueError, match="^RFM requires y"):
        RFM(progress=False).fit(Xi, None)
    with pytest.raises(ValueError, match="^X contains 1 non-finite"):
        model.predict(bad)
    assert len(model.Ms_) == 2
    model._outputs(Xi, iteration=1)  # the last iterate is a valid one
    for iteration in (2, -1):  # one past the last iterate
        with pytest.raises(ValueError, match=r"^iteration must be in \[0, 1\]"):
            model._outputs(Xi, iteration=iteration)


def test_normalize_feature_matrix_is_the_definition():
    """``M = A^p / s`` by the definition: ``A^2`` is ``A @ A`` (no shortcut but ``p = 1``),
    ``p = 1`` and ``normalize=None`` give ``A`` itself, and a matrix that is zero, or whose
    scale under- or overflows, is refused instead of giving inf or zeros."""
    g = torch.Generator().manual_seed(0)
    B = torch.randn(4, 3, generator=g, dtype=torch.float64)
    A = B @ B.T
    torch.testing.assert_close(normalize_feature_matrix(A, None, power=2), A @ A)
    square = A @ A
    torch.testing.assert_close(normalize_feature_matrix(A, "fro", power=2), square / square.norm())
    I = torch.eye(3, dtype=torch.float64)
    assert torch.equal(normalize_feature_matrix(A, None), A)
    assert torch.equal(normalize_feature_matrix(I, None), I)  # its largest entry is 1
    with pytest.raises(ValueError, match="zero"):
        normalize_feature_matrix(torch.zeros(3, 3, dtype=torch.float64), None)
    with pytest.raises(ValueError):  # ||A||_F = sqrt(2e-340) underflows to 0
        normalize_feature_matrix(1e-170 * I[:2, :2], "fro")
    with pytest.raises(ValueError):  # ||A||_F = sqrt(2e400) overflows to inf
        normalize_feature_matrix(1e200 * I[:2, :2], "fro")


def test_fit_scores_are_the_accuracy_and_mse_definitions():
    """``train_acc``/``val_acc`` and ``train_mse``/``val_mse`` of a kernel fit, from the fitted
    machine by the definitions: the share of argmax matches, and the mean over the images of
    the squared error summed over the outputs."""
    X, Y, X_val, Y_val = _tiny_split(14)
    kernel = K.Laplace(3, bandwidth=0.5)
    fit = fit_kernel_machine(kernel, X, Y, X_val, Y_val, None, [0.1])
    for A, T, acc, mse in [
        (X, Y, fit.train_acc, fit.train_mse),
        (X_val, Y_val, fit.val_acc, fit.val_mse),
    ]:
        F_pred = kernel(A, X) @ fit.dual_coef / fit.scale
        hits = [int(F_pred[i].argmax() == T[i].argmax()) for i in range(len(A))]
        errors = [sum(float(F_pred[i, c] - T[i, c]) ** 2 for c in range(2)) for i in range(len(A))]
        assert acc == pytest.approx(sum(hits) / len(A))
        assert mse == pytest.approx(sum(errors) / len(A), rel=1e-9)
        assert mse > 1e-6  # not a perfect fit: the test can tell the formula


def test_progress_bars(capsys, monkeypatch):
    """``progress`` shows one transient bar over the rounds (named ``desc``, ``'ConvRFM'``
    by default; erased when done), and ``progress=False`` silences every bar, the kernel's
    included; with ``progress=True`` the kernel's bars are automatic (here forced on by a
    zero threshold of work)."""
    X, Y, X_val, Y_val = _tiny_split()
    rfm_iterations(K.Laplace(3), X, Y, X_val, Y_val, n_iter=2, q=9)
    assert capsys.readouterr().err == ""  # off by default
    rfm_iterations(K.Laplace(3), X, Y, X_val, Y_val, n_iter=2, q=9, progress=True, desc="layer 2")
    err = capsys.readouterr().err
    assert "layer 2:" in err and "0/3 " in err  # n_iter + 1 fits
    assert not err.endswith("\n") and err.rstrip("\r").endswith(" ")  # the bar is erased
    assert re.search(r"val_acc=\d\.\d{3}\]", err)  # each round's validation accuracy

    import agop.kernels._driver

    monkeypatch.setattr(agop.kernels._driver, "AUTO_PROGRESS_WORK", 0)
    Xi, y = images(), np.arange(12) % 2
    kw = dict(kernel="laplace", patch_size=3, n_iter=1, device="cpu", random_state=0)
    model = ConvRFM(**kw).fit(Xi, y)  # progress=True by default
    err = capsys.readouterr().err
    assert "ConvRFM:" in err and "tile" in err
    assert model.kernel_.progress is None
    model = ConvRFM(**kw, progress=False).fit(Xi, y)
    model.predict(Xi)
    assert capsys.readouterr().err == ""
    assert model.kernel_.progress is False


def test_max_memory_reaches_the_kernel_and_the_solver(monkeypatch):
    """``max_memory`` is the kernel's block budget (``None``: the kernel's default), and the
    ridge sweep's unless ``solve_memory`` is given."""
    import agop.rfm

    budgets = []
    real = agop.rfm.select_ridge

    def select_ridge(*args, max_memory=None, **kwargs):
        budgets.append(max_memory)
        return real(*args, max_memory=max_memory, **kwargs)

    monkeypatch.setattr(agop.rfm, "select_ridge", select_ridge)
    Xi, y = images(), np.arange(12) % 2
    kw = dict(kernel="laplace", patch_size=3, n_iter=1, **FAST, random_state=0)
    assert ConvRFM(**kw).fit(Xi, y).kernel_.max_memory is None
    assert budgets == [None, None]
    assert ConvRFM(**kw, max_memory=2**22).fit(Xi, y).kernel_.max_memory == 2**22
    assert budgets[2:] == [2**22, 2**22]
    X, Y, X_val, Y_val = _tiny_split()
    rfm_iterations(K.Laplace(3), X, Y, X_val, Y_val, n_iter=1, q=9, solve_memory=12345)
    assert budgets[4:] == [12345, 12345]


def test_kernel_object_without_a_bandwidth_warns_for_any_bandwidth():
    """A kernel object without a bandwidth (the CNTK) has none: ``bandwidth=1.0`` is ignored
    with a warning like any other value."""
    Xi, y = images(), np.arange(12) % 2
    with pytest.warns(UserWarning, match="bandwidth=1.0 is ignored: .* CNTK has bandwidth=None"):
        ConvRFM(kernel=K.CNTK(3), patch_size=3, bandwidth=1.0, n_iter=0, **FAST).fit(Xi, y)


class _Wrapped:
    """A user's kernel (not an :class:`agop.kernels.Kernel`): ``factor`` times a kernel object,
    evaluated with the metric ``M`` it is given; its AGOP in ``agop_dtype`` (default: X's)."""

    def __init__(self, kernel, factor=1.0, agop_dtype=None):
        self.kernel, self.factor, self.agop_dtype = kernel, factor, agop_dtype

    def __call__(self, X, Z, M=None):
        return self.factor * self.kernel(X, Z, M=M)

    def agop(self, X, Z, dual_coef, M=None):
        A = self.kernel.agop(X, Z, self.factor * dual_coef, M=M)
        return A if self.agop_dtype is None else A.to(self.agop_dtype)


def test_a_users_kernel_gets_each_rounds_metric_and_the_scaled_coefficients():
    """A user's kernel is evaluated, and its AGOP taken, with the round's metric ``M_t``, so
    that it reproduces the kernel object it wraps; the AGOP is that of ``f = K alpha / s`` with
    ``s = max K(X, X)`` (here 2: ``normalize=None`` shows the scale), and the metrics keep the
    images' dtype."""
    X, Y, X_val, Y_val = _tiny_split()
    lap = K.Laplace(3, bandwidth=0.5)
    ref = rfm_iterations(lap, X, Y, X_val, Y_val, n_iter=2, q=9)
    got = rfm_iterations(_Wrapped(lap), X, Y, X_val, Y_val, n_iter=2, q=9)
    assert not torch.allclose(ref.Ms[2], ref.Ms[1], atol=1e-3)  # M_2 depends on M_1
    for a, b in zip(ref.history, got.history, strict=True):  # K(X_val, X) under M_t too
        for key in ("train_acc", "val_acc", "train_mse", "val_mse", "ridge"):
            assert a[key] == pytest.approx(b[key], rel=1e-9), key
    for a, b in zip(
        ref.Ms + [f.dual_coef for f in ref.fits],
        got.Ms + [f.dual_coef for f in got.fits],
        strict=True,
    ):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)

    twice = rfm_iterations(_Wrapped(lap, 2.0), X, Y, X_val, Y_val, n_iter=1, q=9, normalize=None)
    fit = twice.fits[0]
    assert fit.scale == 2.0
    # f = 2 K_lap(x, X) alpha / 2: its AGOP is that of K_lap with coefficients alpha
    torch.testing.assert_close(twice.Ms[1], lap.agop(X, X, fit.dual_coef), rtol=1e-9, atol=0)

    X32, Y32, Xv32, Yv32 = (t.float() for t in (X, Y, X_val, Y_val))
    mixed = _Wrapped(lap, agop_dtype=torch.float64)
    result = rfm_iterations(mixed, X32, Y32, Xv32, Yv32, n_iter=1, q=9)
    assert [M.dtype for M in result.Ms] == [torch.float32, torch.float32]


class _SameEveryRound:
    """A user's kernel that ignores the metric (every round fits the same machine); its AGOP
    is ``G``."""

    G = torch.tensor([[2.0, 1.0], [1.0, 2.0]], dtype=torch.float64)

    def __call__(self, X, Z, M=None):
        return torch.exp(-torch.cdist(X.flatten(1), Z.flatten(1)))

    def agop(self, X, Z, dual_coef, M=None):
        return self.G.to(X.dtype)


def test_ties_keep_the_earliest_iterate_and_the_agop_time_is_part_of_the_round():
    """Equal iterates: the first is kept. Each round's time is split into its kernel, solve
    and AGOP phases (each taking some time), which lie within the round, and the rounds within
    the call."""
    X, Y, X_val, Y_val = _tiny_split()
    start = time.perf_counter()
    result = rfm_iterations(_SameEveryRound(), X, Y, X_val, Y_val, n_iter=2, q=2)
    elapsed = time.perf_counter() - start
    keys = {(h["val_acc"], h["val_mse"]) for h in result.history}
    assert len(keys) == 1  # three equal iterates
    assert result.best_iter == 0
    torch.testing.assert_close(result.Ms[1], _SameEveryRound.G / 3)  # eigenvalues 3 and 1
    for h in result.history:
        parts = h["kernel_seconds"] + h["solve_seconds"] + h["agop_seconds"]
        assert 0 <= h["agop_seconds"] <= parts <= h["seconds"]
        assert h["kernel_seconds"] > 0 and h["solve_seconds"] > 0
        assert (h["agop_seconds"] > 0) == (h["iteration"] < 2)  # no AGOP after the last fit
    assert sum(h["seconds"] for h in result.history) <= elapsed


def test_predict_reads_images_in_the_fitted_dtype():
    """Images are cast to the fitted dtype: float32 images give the outputs of the same
    values in float64 for a float64 fit."""
    Xi, y = images(), np.arange(12) % 2
    model = ConvRFM(kernel="laplace", patch_size=3, n_iter=1, **FAST, random_state=0).fit(Xi, y)
    X32 = images(5, seed=1).float()
    np.testing.assert_array_equal(
        model.decision_function(X32), model.decision_function(X32.double())
    )


def test_input_dtypes_and_containers():
    """``dtype=None``: float32 and float64 inputs keep their type, any other (float16,
    bfloat16, integers) gives float32; nested lists are arrays. Each fit equals the fit of the
    same values given as float32 (or float64) tensors."""
    Xi, y = images(seed=3, dtype=torch.float64), np.arange(12) % 2
    X16 = Xi.to(torch.float16)
    ref32 = X16.float()
    kw = dict(kernel="laplace", patch_size=3, n_iter=1, **FAST, random_state=0)
    ref = ConvRFM(**kw).fit(ref32, y)
    assert ref.X_fit_.dtype == torch.float32
    for X in (X16.numpy(), X16.to(torch.bfloat16).float().to(torch.bfloat16)):
        model = ConvRFM(**kw).fit(X, y)
        assert model.X_fit_.dtype == torch.float32
    model = ConvRFM(**kw).fit(X16.numpy(), y)
    torch.testing.assert_close(model.M_, ref.M_, rtol=0, atol=0)
    listed = ConvRFM(**kw).fit(Xi.tolist(), y)  # floats: float64
    torch.testing.assert_close(listed.M_, ConvRFM(**kw).fit(Xi, y).M_, rtol=0, atol=0)

    Xr = Xi.reshape(12, -1)[:, :6]
    rkw = dict(n_iter=1, progress=False, device="cpu", random_state=0)
    bf = Xr.to(torch.bfloat16)
    assert RFM(**rkw).fit(bf, y).X_fit_.dtype == torch.float32
    torch.testing.assert_close(
        RFM(**rkw).fit(Xr.tolist(), y).M_, RFM(**rkw).fit(Xr, y).M_, rtol=0, atol=0
    )


@pytest.mark.skipif(
    "MUTANT_UNDER_TEST" in os.environ,
    reason="mutmut's trampolines add frames between the caller and agop",
)
def test_warnings_name_the_callers_line():
    """The warnings of a fit (a kernel object's ignored argument; rounds stopped by a zero
    AGOP: identical images make a constant predictor) point at the caller's line, not into
    agop."""
    Xi, y = images(), np.arange(12) % 2
    for fit in (
        lambda: ConvRFM(K.Laplace(3), patch_size=5, n_iter=0, **FAST).fit(Xi, y),
        lambda: ConvRFM(patch_size=3, n_iter=2, **FAST).fit(torch.zeros_like(Xi), y),
    ):
        with pytest.warns((UserWarning, RuntimeWarning)) as record:
            fit()
        assert [w.filename for w in record] == [__file__], [str(w.message) for w in record]


def test_a_refit_reads_the_parameters_as_they_are_now():
    """``padding`` and ``image_shape`` changed by ``set_params`` after a fit apply to the next
    fit: it equals a fresh fit with those parameters."""
    Xi, y = images(), np.arange(12) % 2
    kw = dict(kernel="laplace", patch_size=3, n_iter=1, **FAST, random_state=0)
    model = ConvRFM(**kw).fit(Xi, y)
    fresh = ConvRFM(**kw, padding=1, image_shape=(1, 6, 6)).fit(Xi.reshape(12, 36), y)
    model.set_params(padding=1, image_shape=(1, 6, 6)).fit(Xi.reshape(12, 36), y)
    assert model.X_fit_.shape[1:] == (1, 8, 8)
    assert torch.equal(model.X_fit_, fresh.X_fit_) and torch.equal(model.M_, fresh.M_)
    np.testing.assert_array_equal(  # flat rows read as the new image_shape
        model.decision_function(Xi.reshape(12, 36)), fresh.decision_function(Xi.reshape(12, 36))
    )


def test_each_parameter_is_refused_by_name_at_its_bound():
    """``depth``, ``validation_fraction``, ``agop_samples``, ``bandwidth`` and ``dtype`` are
    checked, each error starting with the argument's name; each bound is
    exactly the documented one (``agop_samples = 1`` is a valid subsample, ``0`` and ``1`` are
    not validation fractions)."""
    Xi, y = images(), np.arange(12) % 2
    kw = dict(kernel="laplace", patch_size=3, n_iter=1, **FAST, random_state=0)
    for bad, error, match in [
        (dict(depth=0), ValueError, "^depth must be a positive integer, got 0"),
        (dict(depth=1.0), TypeError, "^depth must be an integer"),
        (dict(validation_fraction=0), ValueError, "^validation_fraction must be a positive"),
        (dict(validation_fraction=0.0), ValueError, "^validation_fraction must be a positive"),
        (dict(validation_fraction=-0.2), ValueError, "^validation_fraction must be a positive"),
        (dict(validation_fraction=1), ValueError, r"^validation_fraction must lie in \(0, 1\)"),
        (dict(validation_fraction=1.5), ValueError, "^validation_fraction must be <= 1"),
        (dict(validation_fraction="0.2"), TypeError, "^validation_fraction must be a real"),
        (dict(agop_samples=0), ValueError, "^agop_samples must be a positive integer, got 0"),
        (dict(agop_samples=-1), ValueError, "^agop_samples must be a positive integer"),
        (dict(bandwidth=0), ValueError, "^bandwidth must be a positive number, got 0"),
        (dict(bandwidth=-1.0), ValueError, "^bandwidth must be a positive number"),
        (dict(bandwidth="1"), TypeError, "^bandwidth must be a real number"),
    ]:
        with pytest.raises(error, match=match):
            ConvRFM(**(kw | bad)).fit(Xi, y)
    # a dtype that would truncate the images, named before X is read as images
    with pytest.raises(ValueError, match="^dtype must be one of"):
        ConvRFM(**kw, dtype=torch.int64).fit(np.zeros(12), y)
    one = ConvRFM(**kw, agop_samples=1).fit(Xi, y)  # the smallest subsample
    assert len(one.Ms_) == 2 and not torch.equal(one.Ms_[1], one.Ms_[0])


def _training_targets(model, X, Y):
    """The one-hot rows of ``Y`` of the images of ``X`` that ``model`` trained on."""
    rows = [int(np.flatnonzero([torch.equal(x, z) for z in X])[0]) for x in model.X_fit_]
    return Y[rows]


def _krr_dual_coef(kernel, X, Y, ridge):
    """``alpha / s`` with ``alpha = (K / s + ridge I)^{-1} Y``, ``s = max |K|``: the machine
    ``f(x) = K(x, X) alpha / s`` (fit_kernel_machine's definition), solved directly."""
    K = kernel(X, X)
    s = K.abs().max()
    eye = torch.eye(len(X), dtype=K.dtype)
    return torch.linalg.solve(K / s + ridge * eye, Y) / s


def test_two_training_images_are_enough_one_is_refused():
    """The smallest training split is two images: 3 images with ``validation_fraction=0.5``
    leave 2, whose machine is the ridge regression on those two; 4 of one class with 0.7
    leave 1."""
    Xi, y = images(3), np.array([0, 1, 0])
    Y = one_hot(torch.as_tensor(y), dtype=torch.float64)
    kw = dict(kernel="laplace", patch_size=3, n_iter=0, ridges=(0.1,), **FAST, random_state=0)
    model = ConvRFM(**kw, validation_fraction=0.5).fit(Xi, y)
    assert model.X_fit_.shape[0] == 2
    expected = _krr_dual_coef(model.kernel_, model.X_fit_, _training_targets(model, Xi, Y), 0.1)
    torch.testing.assert_close(model.dual_coef_, expected, rtol=1e-9, atol=1e-12)
    # the split keeps an image of each class for training: one could be left only when every
    # image is of one class, which a one-hot y with an empty column held; since round 4 of
    # the hostile inputs such a y is refused as labels of one class are
    one_class = np.repeat([[1, 0]], 4, axis=0)
    with pytest.raises(ValueError, match="^y must hold at least two classes"):
        ConvRFM(**kw, validation_fraction=0.7).fit(images(4), one_class)


def test_images_smaller_than_the_patch_are_refused_on_either_side():
    """The patch must fit in both the height and the width, and the patch is the kernel's
    own: a kernel object with 5 x 5 patches refuses 4 x 4 images whatever ``patch_size``
    says, and one with 3 x 3 patches fits them (``M`` is 9 x 9)."""
    y = np.arange(6) % 2
    kw = dict(n_iter=0, **FAST, random_state=0)
    g = torch.Generator().manual_seed(0)
    for shape in ((6, 1, 2, 6), (6, 1, 6, 2)):
        X = torch.rand(shape, generator=g, dtype=torch.float64)
        with pytest.raises(ValueError, match="smaller than the patch size 3"):
            ConvRFM("laplace", patch_size=3, **kw).fit(X, y)
    X = torch.rand(6, 1, 4, 4, generator=g, dtype=torch.float64)
    with pytest.warns(UserWarning, match="patch_size=3 is ignored"):
        with pytest.raises(ValueError, match="smaller than the patch size 5"):
            ConvRFM(K.Laplace(5), patch_size=3, **kw).fit(X, y)
    with pytest.warns(UserWarning, match="patch_size=5 is ignored"):
        model = ConvRFM(K.Laplace(3), patch_size=5, **(kw | {"n_iter": 1})).fit(X, y)
    assert model.M_.shape == (9, 9)


def test_ridges_agop_samples_and_the_scale_reach_the_machine():
    """``ridges`` is the grid every round chooses from (a one-value grid: that value, in
    ``history_`` and ``ridge_``); the CNTK, whose ``max K(X, X)`` is not 1, gives the machine
    of the direct ridge regression; ``agop_samples=1`` gives the AGOP of one training image."""
    Xi, y = images(), np.arange(12) % 2
    Y = one_hot(torch.as_tensor(y), dtype=torch.float64)
    kw = dict(patch_size=3, ridges=(0.37,), **FAST, random_state=0)
    model = ConvRFM("cntk", depth=2, n_iter=0, **kw).fit(Xi, y)
    assert model.ridge_ == 0.37 and [h["ridge"] for h in model.history_] == [0.37]
    K = model.kernel_(model.X_fit_, model.X_fit_)
    assert abs(float(K.abs().max()) - 1) > 0.1  # a scale that shows
    expected = _krr_dual_coef(model.kernel_, model.X_fit_, _training_targets(model, Xi, Y), 0.37)
    torch.testing.assert_close(model.dual_coef_, expected, rtol=1e-8, atol=1e-12)

    lap = ConvRFM("laplace", n_iter=1, agop_samples=1, **kw).fit(Xi, y)
    assert [h["ridge"] for h in lap.history_] == [0.37, 0.37]
    X, alpha = lap.X_fit_, lap.dual_coefs_[0]
    one = [
        normalize_feature_matrix(lap.kernel_.agop(X[i : i + 1], X, alpha), "max_eig")
        for i in range(len(X))
    ]
    full = normalize_feature_matrix(lap.kernel_.agop(X, X, alpha), "max_eig")
    assert not torch.allclose(lap.Ms_[1], full, rtol=1e-6, atol=1e-9)
    assert any(torch.allclose(lap.Ms_[1], A, rtol=1e-9, atol=1e-12) for A in one)


def test_a_one_hot_y_with_an_empty_class_keeps_its_column():
    """One-hot ``y`` with a class no image has: that class is kept (``classes_``, a column of
    the outputs, identically 0: its target column is 0), and the other columns are the fit on
    the labels."""
    Xi, y = images(), np.arange(12) % 2
    Y3 = np.zeros((12, 3))
    Y3[np.arange(12), y] = 1
    kw = dict(kernel="laplace", patch_size=3, n_iter=1, **FAST, random_state=0)
    model = ConvRFM(**kw).fit(Xi, Y3)
    ref = ConvRFM(**kw).fit(Xi, y)
    np.testing.assert_array_equal(model.classes_, [0, 1, 2])
    out = model.decision_function(Xi)
    assert out.shape == (12, 3)
    np.testing.assert_array_equal(out[:, 2], 0)
    np.testing.assert_allclose(out[:, :2], ref._outputs(Xi).numpy(), rtol=1e-9, atol=1e-12)


# Held-out style bugs


def test_validation_scores_are_those_of_the_training_machine():
    """``fit_kernel_machine``'s validation scores are the scores of the machine it fitted,
    ``f(x) = K(x, X) alpha / s`` with ``alpha = (K / s + ridge I)^{-1} Y`` and
    ``s = max |K(X, X)|`` (solved directly here), on the validation images, for a kernel whose
    scale is far from 1 -- so that a validation kernel left unscaled, which leaves the
    accuracy as it is, shows in the mean squared error."""
    X, Y, X_val, Y_val = _tiny_split()

    def kernel(A, B, M=None):
        return 40.0 * (A.flatten(1) @ B.flatten(1).T + 1.0)

    fit = fit_kernel_machine(kernel, X, Y, X_val, Y_val, None, [0.05])
    s = kernel(X, X).abs().max()
    alpha = torch.linalg.solve(kernel(X, X) / s + 0.05 * torch.eye(len(X), dtype=X.dtype), Y)
    for Z, T, acc, mse in (
        (X, Y, fit.train_acc, fit.train_mse),
        (X_val, Y_val, fit.val_acc, fit.val_mse),
    ):
        F_pred = kernel(Z, X) @ alpha / s
        assert mse == pytest.approx(float(((F_pred - T) ** 2).sum(1).mean()), rel=1e-9)
        assert acc == pytest.approx(float((F_pred.argmax(1) == T.argmax(1)).double().mean()))
    assert fit.scale == pytest.approx(float(s))


def test_the_fitted_attributes_follow_the_best_round_not_the_last(monkeypatch):
    """When validation keeps round 0 of two, ``M_``, ``dual_coef_`` and ``ridge_`` are round
    0's: the identity metric and the ridge regression of the plain kernel on the training
    images (solved directly), and ``predict`` is that machine's arg max."""
    import agop.rfm as rfm_module

    run = rfm_module.rfm_iterations

    def keep_round_0(*args, **kwargs):
        result = run(*args, **kwargs)
        assert len(result.fits) == 2
        return dataclasses.replace(result, best_iter=0)

    monkeypatch.setattr(rfm_module, "rfm_iterations", keep_round_0)
    Xi, y = images(), np.arange(12) % 2
    Y = one_hot(torch.as_tensor(y), dtype=torch.float64)
    model = ConvRFM("laplace", patch_size=3, n_iter=1, ridges=(0.37,), **FAST, random_state=0)
    model.fit(Xi, y)
    assert model.best_iter_ == 0 and model.n_iter_ == 1
    torch.testing.assert_close(model.M_, torch.eye(9, dtype=torch.float64))
    expected = _krr_dual_coef(model.kernel_, model.X_fit_, _training_targets(model, Xi, Y), 0.37)
    torch.testing.assert_close(model.dual_coef_, expected, rtol=1e-9, atol=1e-12)
    assert model.ridge_ == 0.37
    X_new = images(5, seed=1)
    outputs = model.kernel_(X_new, model.X_fit_) @ expected
    np.testing.assert_array_equal(model.predict(X_new), outputs.argmax(1).numpy())


# Mutation testing, stop 33 (a fresh run of `python tools/mutation.py rfm`): the checks of
# rfm_iterations' prepared tensors and arguments, the count bounds, a kernel object's own
# padding, the padded images' memory check, column names, half-precision and float32 metrics.


def _prepared(n=6, n_val=3, c=1, size=5, classes=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, c, size, size, generator=g, dtype=torch.float64)
    X_val = torch.randn(n_val, c, size, size, generator=g, dtype=torch.float64)
    Y = torch.eye(classes, dtype=torch.float64)[torch.arange(n) % classes]
    Y_val = torch.eye(classes, dtype=torch.float64)[torch.arange(n_val) % classes]
    return X, Y, X_val, Y_val


@pytest.mark.parametrize(
    "change, error, match",
    [
        (dict(X=[[1.0]]), TypeError, "^X must be a torch.Tensor"),
        (dict(Y=np.ones((6, 2))), TypeError, "^Y must be a torch.Tensor"),
        (dict(X_val=None), TypeError, "^X_val must be a torch.Tensor"),
        (dict(Y_val=[1.0]), TypeError, "^Y_val must be a torch.Tensor"),
        (dict(X=torch.zeros(6, 5, 5, dtype=torch.float64)), ValueError, "^X and X_val must"),
        (dict(X_val=torch.zeros(3, 5, 5, dtype=torch.float64)), ValueError, "^X and X_val"),
        (dict(X_val=torch.zeros(3, 1, 4, 5, dtype=torch.float64)), ValueError, "^X and X_val"),
        (dict(X_val=torch.zeros(3, 1, 5, 5)), ValueError, "^X and X_val"),
        (dict(Y=torch.zeros(6, dtype=torch.float64)), ValueError, r"^Y must be targets \(6, C\)"),
        (dict(Y=torch.zeros(5, 2, dtype=torch.float64)), ValueError, r"^Y must be targets"),
        (dict(Y_val=torch.zeros(3, 3, dtype=torch.float64)), ValueError, r"^Y_val must"),
    ],
)
def test_rfm_iterations_checks_its_prepared_tensors_by_name(change, error, match):
    X, Y, X_val, Y_val = _prepared()
    args = dict(X=X, Y=Y, X_val=X_val, Y_val=Y_val) | change
    with pytest.raises(error, match=match):
        rfm_iterations(K.Laplace(3), **args, n_iter=0, q=9)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(n_iter=2**31), ValueError, "^n_iter must"),
        (dict(progress="yes"), TypeError, "^progress must"),
        (dict(ridges=[0.1, -1.0]), ValueError, r"^ridges\[1\] must"),
        (dict(q=0), ValueError, "^q must"),
        (dict(q="9"), TypeError, "^q must"),
        (dict(kernel=3), TypeError, "^kernel must"),
        (dict(kernel=lambda x, z=None: x), TypeError, "^kernel must"),  # no agop method
    ],
)
def test_rfm_iterations_refuses_each_argument_by_name(kwargs, error, match):
    X, Y, X_val, Y_val = _prepared()
    args = dict(kernel=K.Laplace(3), n_iter=0, q=9) | kwargs
    with pytest.raises(error, match=match):
        rfm_iterations(args.pop("kernel"), X, Y, X_val, Y_val, **args)


def test_rfm_iterations_takes_a_zero_ridge_and_the_largest_count():
    X, Y, X_val, Y_val = _prepared()
    result = rfm_iterations(K.Laplace(3), X, Y, X_val, Y_val, n_iter=0, q=9, ridges=[0.0, 1.0])
    assert len(result.fits) == 1


def test_counts_above_the_largest_int32_and_no_agop_sample_are_refused_by_name():
    X, y = torch.rand(8, 1, 5, 5, dtype=torch.float64), np.arange(8) % 2
    for params, match in (
        (dict(n_iter=2**31), "^n_iter must"),
        (dict(agop_samples=0), "^agop_samples must"),
        (dict(agop_samples=-3), "^agop_samples must"),
    ):
        with pytest.raises(ValueError, match=match):
            ConvRFM("laplace", patch_size=3, **FAST, **params).fit(X, y)


def test_a_kernel_objects_own_padding_is_room_for_the_patch():
    """A kernel object adding ``padding`` zeros on each side takes images down to
    ``patch_size - 2 padding`` on either side, and refuses one pixel less."""
    y = np.arange(6) % 2
    kw = dict(n_iter=0, **FAST, random_state=0)
    g = torch.Generator().manual_seed(0)
    for shape in ((6, 1, 3, 3), (6, 1, 3, 7), (6, 1, 7, 3)):
        X = torch.rand(shape, generator=g, dtype=torch.float64)
        ConvRFM(K.Laplace(5, padding=1), **kw).fit(X, y)  # 3 + 2 >= 5: fits
    for shape in ((6, 1, 2, 7), (6, 1, 7, 2)):
        X = torch.rand(shape, generator=g, dtype=torch.float64)
        with pytest.raises(ValueError, match="smaller than the patch size 5"):
            ConvRFM(K.Laplace(5, padding=1), **kw).fit(X, y)


def test_the_padded_images_memory_check_counts_every_value(monkeypatch):
    import agop.rfm as rfm

    asked = []
    monkeypatch.setattr(rfm, "_check_allocation", lambda *a: asked.append(a))
    X = torch.rand(6, 2, 5, 7, dtype=torch.float64)
    ConvRFM("laplace", patch_size=3, padding=2, n_iter=0, **FAST).fit(X, np.arange(6) % 2)
    assert asked[0] == (6 * 2 * (5 + 4) * (7 + 4), 8, "padding", "the padded images")


def test_a_fit_on_a_data_frame_keeps_its_column_names():
    pd = pytest.importorskip("pandas")
    X = np.random.default_rng(0).standard_normal((8, 25))
    y = np.arange(8) % 2
    columns = [f"px{i}" for i in range(25)]
    kw = dict(patch_size=3, image_shape=(1, 5, 5), n_iter=0, **FAST)
    model = ConvRFM("laplace", **kw).fit(pd.DataFrame(X, columns=columns), y)
    assert list(model.feature_names_in_) == columns
    assert not hasattr(ConvRFM("laplace", **kw).fit(X, y), "feature_names_in_")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_normalize_feature_matrix_reads_half_precision_in_float32(dtype):
    A = torch.tensor([[2.0, 1.0], [1.0, 3.0]])
    M = normalize_feature_matrix(A.to(dtype))
    assert M.dtype == torch.float32
    torch.testing.assert_close(M, normalize_feature_matrix(A.to(dtype).float()))


def test_normalize_feature_matrix_takes_round_off_negative_eigenvalues_at_the_dtypes_tolerance():
    # a float32 AGOP is PSD to float32's tolerance (sqrt(eps) = 3.45e-4), not float64's 1e-6
    v = torch.tensor([1.0, -1.0]) / 2**0.5
    A = torch.eye(2) - (1 + 1e-4) * torch.outer(v, v)  # eigenvalues 1 and -1e-4
    M = normalize_feature_matrix(A.float())
    assert torch.isfinite(M).all()
    with pytest.raises(ValueError, match="^A must"):
        normalize_feature_matrix(A.double() - 1e-3 * torch.outer(v, v).double())


# Held-out style bugs, round 3


def test_agop_subsamples_are_drawn_from_the_given_generator(float64):
    """``agop_samples``: round ``t`` averages the AGOP over ``X[randperm(n, generator)[:s]]``,
    the ``t``-th permutation of *the given* generator: the images each round's AGOP reads,
    recorded, are exactly those of a fresh generator with the same seed, whatever the
    global RNG holds (a subsample from the global RNG would follow ``torch.manual_seed``)."""

    class Recording(K.Laplace):
        def _agop(self, X, Z, dual_coef, root):
            seen.append(X.clone())
            return super()._agop(X, Z, dual_coef, root)

    g = torch.Generator().manual_seed(0)
    X = torch.rand(10, 1, 4, 4, generator=g)
    Y = torch.eye(2)[torch.arange(10) % 2]
    X_val, Y_val = torch.rand(4, 1, 4, 4, generator=g), torch.eye(2)[torch.arange(4) % 2]
    kernel = Recording(3, bandwidth=2.0)
    runs = []
    for global_seed in (1, 2):
        seen: list[torch.Tensor] = []
        torch.manual_seed(global_seed)
        rfm_iterations(
            kernel, X, Y, X_val, Y_val, n_iter=2, q=9, agop_samples=3,
            generator=torch.Generator().manual_seed(5),
        )  # fmt: skip
        runs.append(seen)
    reference = torch.Generator().manual_seed(5)
    expected = [X[torch.randperm(10, generator=reference)[:3]] for _ in range(2)]
    for seen in runs:
        assert len(seen) == 2
        for got, want in zip(seen, expected, strict=True):
            assert torch.equal(got, want)


# --------------------------------------------------------------------------------------------
# Held-out style bugs, round 4


@pytest.mark.parametrize("normalize", ["max_eig", "fro"])
def test_normalised_power_is_scaled_by_the_powers_own_size(normalize):
    r"""``M = A^p / s`` with ``s`` the largest eigenvalue (or the Frobenius norm) *of* ``A^p``:
    in a random eigenbasis, eigenvalues ``(9, 4, 1)`` and ``p = 1/2`` give ``(3, 2, 1) / 3``
    (``max_eig``) or ``(3, 2, 1) / sqrt(14)`` (``fro``), the explicit spectral definition."""
    g = torch.Generator().manual_seed(0)
    U, _ = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64))
    lam = torch.tensor([9.0, 4.0, 1.0], dtype=torch.float64)
    A = (U * lam) @ U.T
    root = torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64)
    scale = 3.0 if normalize == "max_eig" else 14.0**0.5
    expected = (U * (root / scale)) @ U.T
    torch.testing.assert_close(
        normalize_feature_matrix(A, normalize, power=0.5), expected, rtol=0, atol=1e-12
    )


def test_ridge_is_the_kept_iterates_ridge_by_the_normal_equations():
    r"""``ridge_`` is the ridge of the kept iterate (``best_iter_``), not of the last round:
    the fitted machine solves :math:`(K/s + \lambda I)\,\alpha = Y` with
    :math:`\alpha = s\,` ``dual_coef_`` and the one-hot training targets :math:`Y`, so
    :math:`K_{M}(X_{fit}, X_{fit})\, \mathrm{dual\_coef} + \lambda s\, \mathrm{dual\_coef}`
    must be one-hot (0/1 entries, one 1 per row) for :math:`\lambda` = ``ridge_``. The planted
    run keeps iterate 1 (ridge 0.1) and its last round picks 0.01."""
    X, y, _ = planted_edge(40, amp=0.5, channels=1, k=5, width=8, segment=4, seed=7)
    model = ConvRFM(
        "laplace", patch_size=3, n_iter=3, random_state=7, ridges=[1e-3, 1e-2, 1e-1, 1.0], **FAST
    ).fit(X.double(), y)
    ridges = [h["ridge"] for h in model.history_]
    assert model.best_iter_ != len(ridges) - 1 and ridges[model.best_iter_] != ridges[-1]
    Kf = K.laplace(model.X_fit_, model.X_fit_, 3, M=model.M_)
    s = float(Kf.max())
    Y = Kf @ model.dual_coef_ + model.ridge_ * s * model.dual_coef_
    torch.testing.assert_close(Y, Y.round(), rtol=0, atol=1e-9)
    assert torch.equal(Y.round().sum(1), torch.ones(len(Y), dtype=Y.dtype))


# --------------------------------------------------------------------------------------------
# Hostile inputs, round 6
# --------------------------------------------------------------------------------------------


def _bars6(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = np.arange(n) % 2
    X = 0.3 * torch.rand(n, 1, 5, 5, generator=g, dtype=torch.float64)
    X[y == 1, 0, 2, :] += 1.0
    return X, y


def test_convrfm_cntk_fit_is_scale_free_at_tiny_scales():
    """The CNTK scales as |x| |z|, and the fit divides K by its largest entry: images at
    1e-100 must give the fit at scale 1. The kernel lost 19% to underflow there."""
    X, y = _bars6()
    kw = dict(
        kernel="cntk",
        patch_size=3,
        depth=2,
        n_iter=1,
        random_state=0,
        device="cpu",
        progress=False,
        dtype=torch.float64,
    )
    unit = ConvRFM(**kw).fit(X, y)
    tiny = ConvRFM(**kw).fit(1e-100 * X, y)
    torch.testing.assert_close(tiny.M_, unit.M_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        tiny.decision_function(1e-100 * X), unit.decision_function(X), rtol=1e-9, atol=1e-12
    )


def test_convrfm_of_all_zero_images_names_X():
    X, y = _bars6()
    model = ConvRFM("cntk", patch_size=3, n_iter=1, device="cpu", progress=False)
    with pytest.raises(ValueError, match=r"^X gives a zero kernel matrix K\(X, X\)"):
        model.fit(torch.zeros_like(X), y)
