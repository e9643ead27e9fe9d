"""Ridge regression: Cholesky, one eigendecomposition for a sweep, validation selection."""

import re
import warnings

import numpy as np
import pytest
import torch

from agop.solve import RidgeSweep, _CholeskySolver, ridge, select_ridge


def _problem(n=30, C=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 5, generator=g, dtype=torch.float64)
    K = torch.exp(-torch.cdist(X, X))  # Laplace kernel: PD
    Y = torch.randn(n, C, generator=g, dtype=torch.float64)
    return X, K, Y


def test_ridge_solves_the_regularised_system():
    _, K, Y = _problem()
    for lam in (0.0, 1e-3, 1.0):
        alpha = ridge(K, Y, lam)
        torch.testing.assert_close((K + lam * torch.eye(30, dtype=K.dtype)) @ alpha, Y)
    assert ridge(K, Y[:, 0], 0.1).shape == (30,)


def test_sweep_equals_ridge_for_every_lambda():
    _, K, Y = _problem()
    sweep = RidgeSweep(K)
    for lam in (1e-4, 1e-2, 1.0, 10.0):
        torch.testing.assert_close(sweep.solve(Y, lam), ridge(K, Y, lam), rtol=1e-8, atol=1e-10)


def test_select_ridge_picks_the_best_validation_score():
    g = torch.Generator().manual_seed(1)
    X = torch.randn(80, 4, generator=g, dtype=torch.float64)
    labels = (X[:, 0] + 0.5 * torch.randn(80, generator=g, dtype=torch.float64) > 0).long()
    Y = torch.nn.functional.one_hot(labels, 2).double()
    Kall = torch.exp(-torch.cdist(X, X) / 2)
    tr, va = slice(0, 50), slice(50, 80)
    lambdas = [1e-6, 1e-3, 1e-1, 1.0, 10.0]
    best, alpha, scores = select_ridge(Kall[tr, tr], Y[tr], Kall[va, tr], Y[va], lambdas)
    brute = [
        float(
            ((Kall[va, tr] @ ridge(Kall[tr, tr], Y[tr], lam)).argmax(1) == labels[va])
            .double()
            .mean()
        )
        for lam in lambdas
    ]
    assert scores == pytest.approx(brute)
    assert scores[lambdas.index(best)] == max(brute)
    torch.testing.assert_close(alpha, ridge(Kall[tr, tr], Y[tr], best), rtol=1e-8, atol=1e-10)
    best_mse, _, mse = select_ridge(Kall[tr, tr], Y[tr, 1], Kall[va, tr], Y[va, 1], lambdas)
    assert mse[lambdas.index(best_mse)] == min(mse)


def test_not_positive_definite():
    _, K, Y = _problem()
    v = torch.ones(30, 1, dtype=K.dtype)
    singular = v @ v.T  # rank one, PSD
    with pytest.raises(ValueError, match="not positive definite"):
        ridge(singular, Y, 0.0, jitter=False)
    with pytest.warns(RuntimeWarning, match="jitter") as record:
        alpha = ridge(singular, Y, 0.0)
    # alpha solves the jittered system with the jitter the warning reports (to 3 digits), to
    # the backward error of a Cholesky solve: that system's condition number is ~1e17

    jitter = float(re.search(r"jitter of ([0-9.e+-]+)", str(record[0].message)).group(1))
    shifted = singular + jitter * torch.eye(30, dtype=K.dtype)
    eps = torch.finfo(K.dtype).eps
    assert (shifted @ alpha - Y).norm() <= 100 * eps * shifted.norm() * alpha.norm()
    with pytest.raises(ValueError, match="not positive definite"):
        ridge(-K, Y, 0.0)
    with pytest.raises(ValueError, match="not positive definite"):
        RidgeSweep(-K).solve(Y, 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RidgeSweep(K).solve(Y, 0.0)


def test_bad_shapes():
    _, K, Y = _problem()
    with pytest.raises(ValueError, match="square"):
        ridge(K[:, :5], Y, 0.1)
    with pytest.raises(ValueError, match=r"Y must have shape \(30,\)"):
        ridge(K, Y[:5], 0.1)
    with pytest.raises(ValueError, match="ridge must be a non-negative"):
        ridge(K, Y, -1.0)
    with pytest.raises(ValueError, match="K_val must have shape"):
        select_ridge(K, Y, K[:, :4], Y, [0.1])


def test_cholesky_sweep_equals_eigen_sweep_and_leaves_K_alone():
    X, K, Y = _problem(n=40, C=3)
    tr, va = slice(0, 30), slice(30, 40)
    K_tr, K_va = K[tr, tr].clone(), K[va, tr]
    lambdas = [1e-6, 1e-3, 1e-1, 1.0]
    e_best, e_alpha, e_scores = select_ridge(
        K_tr, Y[tr], K_va, Y[va], lambdas, "mse", method="eigen"
    )
    c_best, c_alpha, c_scores = select_ridge(
        K_tr, Y[tr], K_va, Y[va], lambdas, "mse", method="cholesky"
    )
    assert e_best == c_best
    torch.testing.assert_close(torch.tensor(c_scores), torch.tensor(e_scores), rtol=1e-8, atol=0)
    torch.testing.assert_close(c_alpha, e_alpha, rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(K_tr, K[tr, tr], rtol=0, atol=0)  # only read
    # float32, the memory rule: a budget too small for the eigendecomposition takes Cholesky
    K32, Y32 = K_tr.float(), Y[tr].float()
    alpha32 = select_ridge(
        K32, Y32, K_va.float(), Y[va].float(), [1e-2], "mse", max_memory=30 * 30 * 4 * 3
    )[1]
    torch.testing.assert_close((K32 + 1e-2 * torch.eye(30)) @ alpha32, Y32, rtol=1e-4, atol=1e-4)


def test_eigen_sweep_fits_by_memory():
    from agop.solve import EIGEN_COPIES, eigen_sweep_fits

    assert eigen_sweep_fits(100, 4, max_memory=EIGEN_COPIES * 100 * 100 * 4)
    assert not eigen_sweep_fits(100, 4, max_memory=EIGEN_COPIES * 100 * 100 * 4 - 1)
    with pytest.raises(ValueError, match="method"):
        _, K, Y = _problem()
        select_ridge(K, Y, K[:5], Y[:5], [0.1], method="qr")

    from agop.solve import _CholeskySolver

    _, K, Y = _problem(n=25)
    work = torch.empty_like(K)
    alpha = _CholeskySolver(K, work).solve(Y, 0.3)
    L = work.mT.tril()
    torch.testing.assert_close(L @ L.T, K + 0.3 * torch.eye(25, dtype=K.dtype))
    torch.testing.assert_close((K + 0.3 * torch.eye(25, dtype=K.dtype)) @ alpha, Y)


# ---------------------------------------------------------------------------------------------
# Mutation testing (`make mutation`, CONTRIBUTING.md): tests that kill surviving mutants.
# The jitter is checked against its definition, the smallest eps * scale * 10^j (scale =
# mean |diag K| + ridge, or 1 for a zero diagonal) that makes K + (ridge + jitter) I positive
# definite by its eigenvalues, up to 1e-3 * scale.


def _reference_jitter(K, lam):
    scale = float(K.diagonal().abs().mean()) + lam
    scale = scale if scale != 0 else 1.0
    eye = torch.eye(K.shape[0], dtype=K.dtype)
    for j in range(40):
        amount = torch.finfo(K.dtype).eps * scale * 10.0**j
        if amount > 1e-3 * scale:
            return None
        if float(torch.linalg.eigvalsh(K + (lam + amount) * eye).min()) > 0:
            return amount
    raise AssertionError("unreachable")


@pytest.mark.parametrize(
    "diag, lam",
    [
        ([1.0, -0.5 - 1e-13], 0.5),  # the scale counts the ridge and |diag K|
        ([0.0, 0.0], 0.0),  # a zero matrix: scale 1
        ([1000.0, -0.05], 0.0),  # a jitter of many decades, still under 1e-3 * scale
    ],
)
def test_jitter_is_the_smallest_decade_that_makes_the_system_definite(diag, lam):
    K = torch.diag(torch.tensor(diag, dtype=torch.float64))
    Y = torch.tensor([[1.0], [2.0]], dtype=torch.float64)
    amount = _reference_jitter(K, lam)
    expected = Y / (K.diagonal() + lam + amount)[:, None]
    with pytest.warns(RuntimeWarning, match="jitter"):
        dual_coef = ridge(K, Y, lam)
    torch.testing.assert_close(dual_coef, expected, rtol=1e-2, atol=0)
    # select_ridge's Cholesky sweep jitters the same way (it never passes jitter=False)
    with pytest.warns(RuntimeWarning, match="jitter"):
        _, swept, _ = select_ridge(K, Y, K, Y, [lam], method="cholesky")
    torch.testing.assert_close(swept, expected, rtol=1e-2, atol=0)


def test_no_jitter_up_to_1e_3_of_the_scale_helps_an_indefinite_matrix():
    K = torch.diag(torch.tensor([1.0, -0.01], dtype=torch.float64))  # needs 0.01 > 1e-3 * 0.505
    assert _reference_jitter(K, 0.0) is None
    with pytest.raises(ValueError, match="not positive definite"):
        ridge(K, torch.ones(2, dtype=torch.float64))


@pytest.mark.skipif(
    "MUTANT_UNDER_TEST" in __import__("os").environ,
    reason="mutmut's trampolines add frames between the caller and agop",
)
def test_ridge_warnings_name_the_callers_line():
    v = torch.ones(3, 1, dtype=torch.float64)
    singular, Y = v @ v.T, torch.eye(3, dtype=torch.float64)
    calls = [
        lambda: ridge(singular, Y, 0.0),
        lambda: RidgeSweep(singular).solve(Y, 0.0),
        lambda: select_ridge(singular, Y, singular, Y, [0.0], method="eigen"),
        lambda: select_ridge(singular, Y, singular, Y, [0.0], method="cholesky"),
    ]
    for call in calls:
        with pytest.warns(RuntimeWarning) as record:
            call()
        assert {w.filename for w in record} == {__file__}


def test_errors_name_the_argument_at_fault():
    K = torch.eye(2, dtype=torch.float64)
    y = torch.ones(2, dtype=torch.float64)
    with pytest.raises(TypeError, match="^K must be a tensor"):
        ridge("abc", y)
    with pytest.raises(ValueError, match="^K must be a square"):
        ridge(K[:, :1], y)
    with pytest.raises(ValueError, match="^K must be symmetric"):
        ridge(torch.tensor([[1.0, 2.0], [0.0, 1.0]], dtype=torch.float64), y)
    with pytest.raises(TypeError, match="^Y must be a tensor"):
        ridge(K, "abc")
    with pytest.raises(ValueError, match="^Y contains 1 non-finite"):
        ridge(K, torch.tensor([1.0, float("nan")]))
    with pytest.raises(TypeError, match="^Y_val must be a tensor"):
        select_ridge(K, y, K, "abc", [1.0])
    # an overflowing solution names the equation and how to avoid it
    tiny = torch.tensor([[1e-308]], dtype=torch.float64)
    with pytest.raises(ValueError, match=r"^dual_coef = \(K \+ ridge I\)\^\{-1\} Y is not finite"):
        ridge(tiny, torch.tensor([1e308], dtype=torch.float64))
    with pytest.raises(ValueError, match=r"Increase the ridge, or rescale K \(divide it"):
        RidgeSweep(tiny).solve(torch.tensor([1e308], dtype=torch.float64), 0.0)


def test_targets_take_the_kernel_matrix_dtype():
    _, K, Y = _problem(n=6, C=2)
    expected = ridge(K, Y, 0.1)
    for targets in (Y.float(), Y.numpy(), Y.tolist()):
        dual_coef = ridge(K, targets, 0.1)
        assert dual_coef.dtype == torch.float64
        torch.testing.assert_close(dual_coef, expected, rtol=1e-6, atol=1e-6)
    # float64 targets with a float32 kernel matrix: the solve is in float32
    for dual_coef in (ridge(K.float(), Y, 0.1), RidgeSweep(K.float()).solve(Y, 0.1)):
        assert dual_coef.dtype == torch.float32
        torch.testing.assert_close(dual_coef, expected.float(), rtol=1e-4, atol=1e-4)


def test_select_ridge_scores_are_the_documented_metrics():
    # one column: accuracy is the agreement of signs (a prediction of exactly 0, from a zero
    # kernel row, is not positive; neither is a target of 0); mse the mean over rows of the
    # squared error summed over columns
    _, Kall, _ = _problem(n=24, C=1, seed=3)
    g = torch.Generator().manual_seed(4)
    Y = torch.randint(0, 2, (24, 2), generator=g).double()
    Y[:, 0] = 2 * Y[:, 0] - 1  # labels -1, 1 ...
    tr, va = slice(0, 16), slice(16, 24)
    K_val = Kall[va, tr].clone()
    K_val[0] = 0.0
    Y[16, 0] = 0.0  # ... and one 0
    ridges = [1e-3, 0.1, 10.0]
    fits = [ridge(Kall[tr, tr], Y[tr], r) for r in ridges]
    preds = [K_val @ a for a in fits]
    accuracy = [
        sum((float(p) > 0) == (float(t) > 0) for p, t in zip(pred[:, 0], Y[va, 0], strict=True)) / 8
        for pred in preds
    ]
    mse = [sum(float(((pred[i] - Y[va][i]) ** 2).sum()) for i in range(8)) / 8 for pred in preds]
    for method in ("eigen", "cholesky"):
        _, _, scores = select_ridge(
            Kall[tr, tr], Y[tr, :1], K_val, Y[va, :1], ridges, "accuracy", method=method
        )
        assert scores == pytest.approx(accuracy)
        _, _, scores = select_ridge(Kall[tr, tr], Y[tr], K_val, Y[va], ridges, "mse", method=method)
        assert scores == pytest.approx(mse)
    assert float(preds[0][0, 0]) == 0.0 and any(bool(((p > 0) & (p < 1)).any()) for p in preds)


def test_sweep_raises_round_off_eigenvalues_to_the_rank_tolerance():
    # K = diag(s): eigenvalues below tol = n * eps * max|s| (numpy's matrix_rank tolerance)
    # are round-off, raised to tol with a warning; a zero K with ridge 0 has no solution
    n, eps = 4, torch.finfo(torch.float64).eps
    tol = n * eps * 1.0
    Y = torch.arange(1.0, 5.0, dtype=torch.float64)
    for last in (0.0, -0.5 * tol):
        s = torch.tensor([1.0, 0.5, 0.25, last], dtype=torch.float64)
        with pytest.warns(RuntimeWarning, match="singular to round-off"):
            dual_coef = RidgeSweep(torch.diag(s)).solve(Y, 0.0)
        torch.testing.assert_close(dual_coef, Y / s.clamp_min(tol), rtol=1e-12, atol=0)
    with pytest.raises(ValueError, match="not positive definite"):
        RidgeSweep(torch.diag(torch.tensor([1.0, 0.5, 0.25, -2 * tol], dtype=Y.dtype))).solve(
            Y, 0.0
        )
    with pytest.raises(ValueError, match="is zero"):
        RidgeSweep(torch.zeros(3, 3, dtype=torch.float64)).solve(Y[:3], 0.0)
    torch.testing.assert_close(RidgeSweep(torch.eye(4, dtype=torch.float64)).solve(Y, 0.0), Y)


def test_solvers_never_return_nan():
    with pytest.raises(ValueError, match="K \\+ ridge\\*I is zero"):
        RidgeSweep(torch.zeros(3, 3)).solve(torch.ones(3), 0)
    assert torch.equal(
        RidgeSweep(torch.zeros(3, 3)).solve(torch.ones(3), 2.0), torch.full((3,), 0.5)
    )
    with pytest.raises(ValueError, match="K must be symmetric"):
        ridge(torch.tensor([[2.0, 1.0], [0.0, 2.0]]), torch.ones(2), 0.1)
    with pytest.raises(ValueError, match="K must be symmetric"):
        RidgeSweep(torch.tensor([[2.0, 1.0], [0.0, 2.0]]))
    with pytest.raises(ValueError, match="ridge must be a finite number"):
        ridge(torch.eye(2), torch.ones(2), float("nan"))
    tiny = torch.eye(3, dtype=torch.float64) * 1e-310  # subnormal: 1/K overflows
    with pytest.raises(ValueError, match=r"dual_coef = \(K \+ ridge I\)\^\{-1\} Y is not finite"):
        ridge(tiny, torch.ones(3, dtype=torch.float64), 0.0, jitter=False)
    with pytest.raises(ValueError, match="is not finite"):
        select_ridge(
            tiny,
            torch.ones(3, dtype=torch.float64),
            tiny,
            torch.ones(3, dtype=torch.float64),
            [0.0],
        )


def test_select_ridge_errors_name_the_argument_at_fault():
    K = torch.eye(2, dtype=torch.float64)
    y = torch.ones(2, dtype=torch.float64)
    nan = torch.tensor([[1.0, float("nan")]], dtype=torch.float64)
    with pytest.raises(TypeError, match="^K_train must be a tensor"):
        select_ridge("abc", y, K, y, [1.0])
    with pytest.raises(ValueError, match="^K_train must be a square"):
        select_ridge(K[:, :1], y, K, y, [1.0])
    with pytest.raises(TypeError, match="^Y_train must be a tensor"):
        select_ridge(K, "abc", K, y, [1.0])
    with pytest.raises(ValueError, match=r"^Y_train must have shape \(2,\)"):
        select_ridge(K, y[:1], K, y, [1.0])
    with pytest.raises(TypeError, match="^K_val must be a tensor"):
        select_ridge(K, y, "abc", y, [1.0])
    with pytest.raises(ValueError, match="^K_val contains 1 non-finite"):
        select_ridge(K, y, nan, y[:1], [1.0])
    with pytest.raises(ValueError, match=r"^ridges\[1\] must be a non-negative"):
        select_ridge(K, y, K, y, [1.0, -1.0])
    # the errors list the documented choices
    with pytest.raises(ValueError, match="^metric must be one of 'accuracy', 'mse' "):
        select_ridge(K, y, K, y, [1.0], "r2")
    with pytest.raises(ValueError, match="^method must be one of 'eigen', 'cholesky' "):
        select_ridge(K, y, K, y, [1.0], method="qr")


@pytest.mark.parametrize("method", ["eigen", "cholesky"])
def test_select_ridge_refuses_an_asymmetric_K_train_by_name(method):
    # a real bug: the Cholesky sweep read one triangle of an asymmetric K_train silently, and
    # the eigen sweep refused it under the name "K"
    K = torch.tensor([[2.0, 1.0], [0.0, 2.0]], dtype=torch.float64)
    y = torch.tensor([1.0, 2.0], dtype=torch.float64)
    with pytest.raises(ValueError, match="^K_train must be symmetric"):
        select_ridge(K, y, K, y, [0.1], method=method)


def test_both_sweeps_solve_the_symmetric_part_of_a_nearly_symmetric_K_train():
    """A K_train asymmetric within the accepted round-off (1e-10 of its scale): the Cholesky
    sweep solved with one triangle of it, the eigen sweep with (K + K^T) / 2. Both now solve
    the symmetric part; checked against numpy's dense solve of that system."""
    _, K, Y = _problem(n=8, C=2)
    bump = torch.zeros_like(K)
    bump[0, 5], bump[3, 1] = 1e-10, -2e-10
    K_train = K + bump * float(K.abs().max())
    K_s = ((K_train + K_train.T) / 2).numpy()
    want = np.linalg.solve(K_s + 0.1 * np.eye(8), Y.numpy())
    for method in ("eigen", "cholesky"):
        _, dual_coef, _ = select_ridge(K_train, Y, K, Y, [0.1], method=method)
        np.testing.assert_allclose(dual_coef.numpy(), want, rtol=1e-10, atol=1e-12)
    # a symmetric K is solved as given, to the bit
    solver = _CholeskySolver(K, torch.empty_like(K))
    solver._fill(0.0)
    assert torch.equal(solver.work, K)


def test_select_ridge_K_val_takes_K_trains_dtype():
    # a float32 (or nested-list) K_val is computed with in K_train's float64
    _, K, Y = _problem(n=8, C=2)
    K_val = K[6:, :6]
    expected = [
        ((K_val @ ridge(K[:6, :6], Y[:6], r) - Y[6:]) ** 2).sum(1).mean().item() for r in (0.1, 1.0)
    ]
    for method in ("eigen", "cholesky"):
        for given in (K_val.float(), K_val.tolist()):
            _, dual_coef, scores = select_ridge(
                K[:6, :6], Y[:6], given, Y[6:], [0.1, 1.0], "mse", method=method
            )
            assert dual_coef.dtype == torch.float64
            assert scores == pytest.approx(expected, rel=1e-5)


def _singular_problem():
    v = torch.ones(3, 1, dtype=torch.float64)
    return v @ v.T, torch.eye(3, dtype=torch.float64)


def _sweep_used(**kwargs):
    """Which sweep select_ridge took, by its warning on a singular K with ridge 0: the eigen
    sweep raises round-off eigenvalues, the Cholesky sweep adds a jitter."""
    K, Y = _singular_problem()
    with pytest.warns(RuntimeWarning) as record:
        select_ridge(K, Y, K, Y, [0.0], **kwargs)
    messages = " ".join(str(w.message) for w in record)
    return "eigen" if "round-off" in messages else "cholesky" if "jitter" in messages else None


def test_select_ridge_takes_the_method_asked_for_or_the_one_that_fits_max_memory():
    from agop.solve import EIGEN_COPIES

    assert _sweep_used(method="eigen") == "eigen"
    assert _sweep_used(method="EIGEN") == "eigen"  # case-insensitive
    assert _sweep_used(method="cholesky") == "cholesky"
    fits = EIGEN_COPIES * 3 * 3 * 8  # bytes of the eigendecomposition of a 3 x 3 float64 K
    assert _sweep_used(max_memory=fits) == "eigen"
    assert _sweep_used(max_memory=fits - 1) == "cholesky"
    assert _sweep_used(max_memory=1e12) == "eigen"


@pytest.mark.parametrize("method", ["eigen", "cholesky"])
def test_select_ridge_best_is_the_best_score_ties_to_the_larger_ridge(method):
    _, K, Y = _problem(n=12, C=1)
    K_tr, K_va, y_tr, y_va = K[:8, :8], K[8:, :8], Y[:8, 0], Y[8:, 0]
    ridges = [10.0, 1e-3, 0.1, 1.0]  # not sorted; the best is not the last
    mse = [float(((K_va @ ridge(K_tr, y_tr, r) - y_va) ** 2).mean()) for r in ridges]
    expected = ridges[min(range(4), key=lambda i: mse[i])]
    assert expected != ridges[-1]
    best, dual_coef, scores = select_ridge(K_tr, y_tr, K_va, y_va, ridges, "mse", method=method)
    assert scores == pytest.approx(mse) and best == expected
    # a vector Y_train gives a vector dual_coef, that of the best ridge
    assert dual_coef.shape == (8,)
    torch.testing.assert_close(dual_coef, ridge(K_tr, y_tr, best), rtol=1e-8, atol=1e-10)
    # a zero K_val predicts 0 for every ridge: all scores tie, and the larger ridge wins
    # wherever it stands in the list (the documented rule)
    for tied in ([1.0, 5.0, 2.0], [5.0, 1.0, 2.0]):
        for metric in ("mse", "accuracy"):
            best, _, scores = select_ridge(
                K_tr, y_tr, torch.zeros_like(K_va), y_va, tied, metric, method=method
            )
            assert len(set(scores)) == 1 and best == 5.0


# Mutation testing, stop 33 (a fresh run of `make mutation MODULES=solve`): the argument checks
# of eigen_sweep_fits and ridge's jitter, half-precision kernel matrices, targets read in the
# kernel matrix's dtype, an empty or one-row validation split, max_memory checked whatever the
# method.


def test_eigen_sweep_fits_checks_its_counts_by_name():
    from agop.solve import EIGEN_COPIES, eigen_sweep_fits

    assert eigen_sweep_fits(0, 1, max_memory=1)  # no sample: nothing to hold
    n, size = 10, 4
    budget = EIGEN_COPIES * n * n * size
    assert eigen_sweep_fits(n, size, max_memory=budget)
    assert not eigen_sweep_fits(n, size, max_memory=budget - 1)
    assert eigen_sweep_fits(1, 1, max_memory=EIGEN_COPIES)  # one 1-byte element per copy
    for bad in (-1, 2.5, "3"):
        with pytest.raises((TypeError, ValueError), match="^n must"):
            eigen_sweep_fits(bad, 8, max_memory=1e9)
    for bad in (0, -8, 1.5):
        with pytest.raises((TypeError, ValueError), match="^element_size must"):
            eigen_sweep_fits(10, bad, max_memory=1e9)


def test_ridge_refuses_a_jitter_that_is_not_a_bool_by_name():
    _, K, Y = _problem(n=5, C=1)
    for bad in ("yes", 2, None):
        with pytest.raises(TypeError, match="^jitter must"):
            ridge(K, Y, 0.1, jitter=bad)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_kernel_matrices_are_solved_in_float32(dtype):
    # LAPACK has no half precision: K is raised to float32, with its half-precision values
    _, K, Y = _problem(n=6, C=2)
    K = K.to(dtype)
    expected = ridge(K.float(), Y.float(), 0.5)
    for dual_coef in (ridge(K, Y, 0.5), RidgeSweep(K).solve(Y, 0.5)):
        assert dual_coef.dtype == torch.float32
        torch.testing.assert_close(dual_coef, expected, rtol=1e-4, atol=1e-4)


def test_targets_that_overflow_the_kernel_matrix_dtype_are_refused_by_name():
    # the targets are read in K's dtype: 1e39 is finite in float64 but not in float32
    _, K, Y = _problem(n=6, C=1)
    K = K.float()
    huge = Y.clone()
    huge[0, 0] = 1e39
    with pytest.raises(ValueError, match="^Y "):
        ridge(K, huge, 0.1)
    with pytest.raises(ValueError, match="^Y "):
        RidgeSweep(K).solve(huge, 0.1)
    for method in ("eigen", "cholesky"):
        with pytest.raises(ValueError, match="^Y_train "):
            select_ridge(K[:4, :4], huge[:4], K[4:, :4], Y[4:], [0.1], "mse", method=method)
        with pytest.raises(ValueError, match="^Y_val "):
            select_ridge(K[2:, 2:], Y[2:], K[:2, 2:], huge[:2], [0.1], "mse", method=method)


@pytest.mark.parametrize("method", ["eigen", "cholesky"])
def test_select_ridge_takes_one_validation_row_and_refuses_none(method):
    _, K, Y = _problem(n=6, C=1)
    best, _, scores = select_ridge(
        K[:5, :5], Y[:5], K[5:, :5], Y[5:], [0.1, 1.0], "mse", method=method
    )
    expected = [
        ((K[5:, :5] @ ridge(K[:5, :5], Y[:5], r) - Y[5:]) ** 2).sum().item() for r in (0.1, 1.0)
    ]
    assert scores == pytest.approx(expected, rel=1e-9)
    assert best == [0.1, 1.0][int(np.argmin(expected))]
    with pytest.raises(ValueError, match="^K_val must"):
        select_ridge(K[:5, :5], Y[:5], K[:0, :5], Y[:0], [0.1], "mse", method=method)


@pytest.mark.parametrize("method", ["eigen", "cholesky", None])
def test_select_ridge_checks_max_memory_whatever_the_method(method):
    _, K, Y = _problem(n=6, C=1)
    for bad in ("lots", -1.0, float("nan")):
        with pytest.raises((TypeError, ValueError), match="^max_memory must"):
            select_ridge(
                K[:4, :4], Y[:4], K[4:, :4], Y[4:], [0.1], "mse", method=method, max_memory=bad
            )
