"""Local versus global renormalization: the sampler, the kernels, the per-position estimator."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from one_chain import one_chain

from agop_book.ch07_other_accounts import (
    accuracy,
    band_ratio,
    band_task,
    fit_position_weights,
    gap,
    gp_posterior_mean,
    kernel_gain,
    langevin,
    local_kernel,
    network_output,
    nngp_components,
    sample_posterior,
    width_sweep,
)


def test_langevin_matches_gaussian_posterior():
    """Bayesian linear regression: Langevin's mean and covariance against the closed form
    (posterior precision A = X^T X / T + I, mean A^{-1} X^T y / T), within Monte Carlo error."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(12, 3, generator=g, dtype=torch.float64)
    y = torch.randn(12, generator=g, dtype=torch.float64)
    T = 2.0
    A = X.T @ X / T + torch.eye(3, dtype=torch.float64)
    cov = torch.linalg.inv(A)
    mean = cov @ X.T @ y / T
    chains = 4000

    def energy(theta):  # theta: (chains, 3)
        return ((y - theta @ X.T) ** 2).sum(-1) / (2 * T) + (theta**2).sum(-1) / 2

    eta = 2e-3
    (theta,) = langevin(
        energy,
        [torch.zeros(chains, 3, dtype=torch.float64)],
        n_steps=3000,
        step_size=eta,
        generator=g,
    )
    emp_mean = theta.mean(0)
    emp_cov = torch.cov(theta.T)
    se = (cov.diagonal() / chains).sqrt()
    assert torch.all((emp_mean - mean).abs() < 4 * se + 1e-3), (emp_mean, mean)
    # covariance entries: standard error about sqrt((C_ii C_jj + C_ij^2) / chains), plus the
    # O(eta) discretisation bias (about eta * |A| |C|)
    se_cov = ((cov.diagonal()[:, None] * cov.diagonal()[None] + cov**2) / chains).sqrt()
    bias = eta * float(torch.linalg.matrix_norm(A, 2)) * cov.abs().max()
    assert torch.all((emp_cov - cov).abs() < 4 * se_cov + bias), (emp_cov, cov)


def test_position_weights_recover_planted_q():
    """A kernel planted as a weighted sum of per-position NNGPs, plus noise: NNLS finds it."""
    X, _ = band_task(40, 1.0, height=6, width=6, seed=3)
    comps = nngp_components(X, patch_size=3)  # 16 positions
    Q = torch.linspace(0, 3, 16, dtype=torch.float64).roll(5)
    Q[[2, 9]] = 0.0
    K = local_kernel(comps, Q)
    g = torch.Generator().manual_seed(1)
    E = 1e-4 * torch.randn(40, 40, generator=g, dtype=torch.float64)
    fit = fit_position_weights(K + (E + E.T) / 2, comps)
    np.testing.assert_allclose(fit, Q.numpy(), atol=0.02)
    assert fit.min() >= 0


def test_nngp_components_match_monte_carlo_and_cnngp():
    """Per-position arc-cosine kernels: the prior average of phi(w.x/sqrt q) phi(w.z/sqrt q)
    over many Gaussian w, and, averaged over positions, agop.kernels.cnngp on one channel
    (which does not divide the patch inner product by q = k^2: inputs scaled by 1/k)."""
    from agop.kernels import cnngp

    g = torch.Generator().manual_seed(0)
    X1 = torch.randn(3, 1, 5, 5, generator=g, dtype=torch.float64)
    torch.testing.assert_close(
        nngp_components(X1, patch_size=3).mean(0), cnngp(X1 / 3, X1 / 3, 3, device="cpu")
    )
    X = torch.randn(3, 2, 5, 5, generator=g, dtype=torch.float64)
    comps = nngp_components(X, patch_size=3)
    assert comps.shape == (9, 3, 3)
    U = torch.nn.functional.unfold(X, 3).transpose(1, 2)  # (n, P, q)
    w = torch.randn(200_000, 18, generator=g, dtype=torch.float64)
    phi = torch.relu(U @ w.T / math.sqrt(18)) * math.sqrt(2)  # (n, P, draws)
    mc = torch.einsum("apd,bpd->pab", phi, phi) / w.shape[0]
    torch.testing.assert_close(comps, mc, atol=0.03 * float(comps.abs().max()), rtol=0)


def test_network_output_is_an_explicit_patch_loop():
    g = torch.Generator().manual_seed(0)
    S, n, c, H, W, k, N = 2, 3, 2, 5, 4, 3, 4
    X = torch.randn(S, n, c, H, W, generator=g, dtype=torch.float64)
    Wt = torch.randn(S, N, c * k * k, generator=g, dtype=torch.float64)
    positions = [(a, b) for a in range(H - k + 1) for b in range(W - k + 1)]
    V = torch.randn(S, len(positions), N, generator=g, dtype=torch.float64)
    U = torch.stack([torch.nn.functional.unfold(x, k).transpose(1, 2) for x in X])
    out = network_output(Wt, V, U)
    for s in range(S):
        for m in range(n):
            total = 0.0
            for i, (a, b) in enumerate(positions):
                patch = X[s, m, :, a : a + k, b : b + k].reshape(-1)
                for ch in range(N):
                    pre = float(Wt[s, ch] @ patch) / math.sqrt(c * k * k)
                    total += float(V[s, i, ch]) * math.sqrt(2) * max(pre, 0.0)
            assert out[s, m].item() == pytest.approx(total / math.sqrt(N * len(positions)))


def test_network_prior_covariance_is_the_nngp():
    """Under the prior, E f(x) f(x') over many networks is the mean of the components."""
    X, _ = band_task(3, 1.0, height=5, width=5, seed=0)
    U = torch.nn.functional.unfold(X, 3).transpose(1, 2)
    g = torch.Generator().manual_seed(2)
    S, N = 20_000, 4
    Wt = torch.randn(S, N, 9, generator=g, dtype=torch.float64)
    V = torch.randn(S, 9, N, generator=g, dtype=torch.float64)
    f = network_output(Wt, V, U.expand(S, -1, -1, -1))
    emp = f.T @ f / S
    K = nngp_components(X, patch_size=3).mean(0)
    torch.testing.assert_close(emp, K, atol=0.05 * float(K.max()), rtol=0)


def test_gp_posterior_mean_closed_form():
    K = torch.tensor([[2.0, 1.0], [1.0, 2.0]], dtype=torch.float64)
    y = torch.tensor([1.0, -1.0], dtype=torch.float64)
    # (K + I)^{-1} y = [1, -1] / 2 (eigenvector of eigenvalue 1 + 1), K times it = [1, -1] / 2
    assert gp_posterior_mean(K, K, y, 1.0).tolist() == pytest.approx([0.5, -0.5])


def test_sample_posterior_at_high_temperature_is_the_prior():
    """With a huge temperature the data do not matter: Q stays at its prior mean, 1."""
    X, y = band_task(10, 1.0, height=5, width=5, seed=0)
    post = one_chain(
        X, y, width=64, temperature=1e6, n_steps=600, step_size=0.02, burn_in=100, every=5, seed=0
    )
    assert abs(float(post.Q.mean()) - 1) < 0.1


def test_band_task_only_band_carries_the_label():
    X, y = band_task(50, 0.0, height=6, width=4, band=(1, 3), seed=0)
    s = 2.0 * y - 1
    band_rows = X[:, 0, [1, 3]]  # (n, 2, width)
    assert torch.all((band_rows.sum((1, 2)) / 4) == s)
    assert X[:, 0, [0, 2, 4, 5]].abs().sum() == 0


def test_bad_arguments_raise():
    X, y = band_task(4, 1.0)
    with pytest.raises(ValueError, match="band"):
        band_task(4, 1.0, band=(9,))
    with pytest.raises(ValueError, match="X and X_test"):
        sample_posterior(
            X, y, X, width=2, patch_size=3, temperature=1.0, n_steps=2, step_size=1e-3, burn_in=0
        )
    with pytest.raises(ValueError, match="weights"):
        local_kernel(torch.ones(2, 1, 1), [1.0])
    with pytest.raises(ValueError, match="temperature"):
        one_chain(X, y, temperature=0, n_steps=2)


def test_wide_network_posterior_mean_is_the_gp_posterior_mean():
    """At large width the Bayesian network's posterior mean is GP regression with the NNGP
    and noise T (an independent route through the sampler, the energy's temperature and the
    network's scaling): 16 chains on the same 6 images, compared on them and on 4 others
    (on the training images the mean depends strongly on T: 0.68 at T = 0.5, 0.81 at 0.25)."""
    X, y = band_task(10, 1.0, height=5, width=5, seed=4)
    X = X / X.std()
    Xtr, ytr, Xte = X[:6], y[:6], X
    T = 0.5
    K = nngp_components(Xtr, None, 3).mean(0)
    Kt = nngp_components(Xte, Xtr, 3).mean(0)
    gp = gp_posterior_mean(K, Kt, 2.0 * ytr.double() - 1, T)
    S = 16
    post = sample_posterior(
        Xtr.expand(S, -1, -1, -1, -1),
        ytr.expand(S, -1),
        Xte.expand(S, -1, -1, -1, -1),
        width=256,
        patch_size=3,
        temperature=T,
        n_steps=1500,
        step_size=0.01,
        burn_in=300,
        every=5,
        seed=0,
    )
    est = post.test_mean.mean(0)
    se = post.test_mean.std(0) / math.sqrt(S)  # chains are independent
    assert torch.all((est - gp).abs() < 4 * se + 0.02), (est, gp, se)


def accuracy_rows(by_method):
    """Rows of a sweep from ``{(method, width): accuracies over seeds}``."""
    return [
        {"method": m, "width": w, "seed": s, "accuracy": a}
        for (m, w), accs in by_method.items()
        for s, a in enumerate(accs)
    ]


ROWS = accuracy_rows(
    {
        ("CNN", 8): (0.80, 0.90),
        ("CNN", 32): (0.69, 0.73),
        ("CNN", 128): (0.50, 0.56),
        ("NNGP", None): (0.70, 0.70),
        ("FC", 8): (0.60, 0.70),
        ("FC", 32): (0.66, 0.64),
        ("FC", 128): (0.65, 0.65),
        ("NNGP FC", None): (0.70, 0.60),
    }
)


def test_gap_is_the_difference_of_means_with_the_combined_spread():
    d, s = gap(ROWS, "CNN", "NNGP", 8)
    assert d == pytest.approx(0.85 - 0.70) and s == pytest.approx(0.05)
    d, s = gap(ROWS, "FC", "NNGP FC", 8)
    assert d == pytest.approx(0.0) and s == pytest.approx(math.hypot(0.05, 0.05))


def test_band_ratio_against_a_loop_and_its_errors():
    g = np.random.default_rng(0)
    Q = g.uniform(0.5, 2.0, size=(3, 24))
    band = np.arange(24) < 8
    per_seed = [
        np.mean([q[i] for i in range(24) if band[i]])
        / np.mean([q[i] for i in range(24) if not band[i]])
        for q in Q
    ]
    assert band_ratio(Q, band) == pytest.approx((np.mean(per_seed), np.std(per_seed)))
    with pytest.raises(ValueError, match="band_positions"):
        band_ratio(Q, np.ones(24, bool))
    with pytest.raises(ValueError, match="band_positions"):
        band_ratio(Q, band[:10])


def test_band_ratio_refuses_a_seed_with_no_weight_off_the_band():
    """A seed whose Q is zero off the band has no ratio (it was (inf, nan)); negative or
    non-finite weights are refused too. A zero weight on some positions is fine."""
    band = np.array([True, False, False])
    assert band_ratio([[2.0, 0.0, 1.0], [1.0, 1.0, 1.0]], band) == pytest.approx((2.5, 1.5))
    with pytest.raises(
        ValueError, match=r"zero on every position off the band for seed\(s\) \[0\]"
    ):
        band_ratio([[2.0, 0.0, 0.0], [1.0, 1.0, 1.0]], band)
    with pytest.raises(ValueError, match="finite, non-negative"):
        band_ratio([[2.0, -1.0, 3.0]], band)
    with pytest.raises(ValueError, match="finite, non-negative"):
        band_ratio([[2.0, np.nan, 3.0]], band)


def test_accuracy_counts_signs_per_example_whatever_the_column_shape():
    """(n, 1) outputs against (n,) labels broadcast to an n x n comparison (0.5 for a perfect
    prediction): the column is one value per example. Against a count by hand."""
    output = torch.tensor([[0.3], [-2.0], [1.0], [-0.5]], dtype=torch.float64)
    y = torch.tensor([1, 0, 0, 0])
    by_hand = (
        sum((o > 0) == (t == 1) for o, t in zip(output[:, 0].tolist(), y.tolist(), strict=True)) / 4
    )
    assert by_hand == 0.75
    for out, labels in (
        (output, y),
        (output[:, 0], y),
        (output, y[:, None]),
        (output[:, 0], y[:, None]),
    ):
        assert accuracy(out, labels) == by_hand
    with pytest.raises(ValueError, match="same, non-zero number of examples"):
        accuracy(output[:3], y)
    with pytest.raises(ValueError, match=r"output must hold one value per example.*\(4, 2\)"):
        accuracy(output.repeat(1, 2), y)
    with pytest.raises(ValueError, match=r"y must hold labels in \{0, 1\}"):
        accuracy(output, 2 * y - 1)


def test_kernel_gain_is_the_difference_of_mean_accuracies_in_points():
    assert kernel_gain(ROWS, "NNGP", "NNGP FC") == pytest.approx(5.0)


def test_over_dispersed_chains_that_have_not_mixed_have_a_large_rhat():
    """Chains started at 3 x prior draws: a short run (time 0.1, far below the read-out's
    relaxation time 1/2 of Q = mean v^2) still remembers the start, and split-R-hat says so;
    a long run at the same step size forgets it (at high temperature the posterior is the
    prior, under which Q = 1)."""
    X, y = band_task(6, 1.0, height=5, width=5, seed=0)
    X, y = X[None].repeat(2, 1, 1, 1, 1), y[None].repeat(2, 1)
    run = dict(width=4, patch_size=3, temperature=1e4, step_size=0.05, seed=[1, 2],
               init_scale=3.0, every=1)  # fmt: skip
    short = sample_posterior(X, y, X, n_steps=6, burn_in=0, **run)
    assert float(short.Q_trace.mean()) > 4  # 9 at the start, still far from 1
    long = sample_posterior(X, y, X, n_steps=1600, burn_in=200, **run)
    from agop_book.ch07_other_accounts import split_rhat

    assert tuple(long.Q_trace.shape) == (2, 1400, 9)
    assert float(long.Q.mean()) == pytest.approx(1.0, abs=0.1)
    assert float(split_rhat(long.Q_trace).max()) < 1.05 < float(split_rhat(short.Q_trace).max())


def test_width_sweep_reports_diagnostics_and_the_gp_limits():
    out = width_sweep([4], [0], n_train=12, n_test=8, sigma=1.0, temperature=0.1, n_steps=40,
                      step_size=1e-3, every=2, chains=2, rfm=False)  # fmt: skip
    (cnn, fc) = out["convergence"]
    assert (cnn["network"], cnn["width"], fc["network"]) == ("CNN", 4, "FC")
    assert all(v >= 1.0 for k, v in cnn.items() if k.startswith("rhat"))
    # the GP limits are the rows' accuracies, recomputed from the stored means
    task = band_task(8, 1.0, height=8, width=6, seed=10_000)[1]
    gp = out["gp_mean"]["NNGP local (uniform Q)"][0]
    row = next(r for r in out["rows"] if r["method"] == "NNGP local (uniform Q)")
    assert accuracy(gp, task) == row["accuracy"]
    short = width_sweep([4], [0], n_train=12, n_test=8, sigma=1.0, temperature=0.1, n_steps=20,
                        step_size=1e-3, every=5, rfm=False)  # fmt: skip
    assert short["convergence"][0]["rhat_Q"] == math.inf  # 2 samples: cannot be diagnosed
    net = out["test_mean"][4]["CNN"][0]
    row = next(r for r in out["rows"] if r["method"] == "CNN")
    assert accuracy(net, task) == row["accuracy"]


# Held-out style bugs


def test_fit_position_weights_fits_every_pair_a_le_b_diagonal_included():
    """One component (P = 1): the least squares Q over the pairs a <= b has the closed form
    Q = sum_{a<=b} K_ab C_ab / sum_{a<=b} C_ab^2 (positive here, so the bound is inactive).
    K = 2 C plus a diagonal only: the diagonal pairs pull Q above 2 by a planted amount."""
    g = torch.Generator().manual_seed(0)
    B = torch.randn(5, 5, generator=g, dtype=torch.float64)
    C = B @ B.T
    K = 2 * C + torch.diag(torch.arange(1.0, 6.0, dtype=torch.float64))
    num = sum(float(K[a, b] * C[a, b]) for a in range(5) for b in range(a, 5))
    den = sum(float(C[a, b] ** 2) for a in range(5) for b in range(a, 5))
    Q = fit_position_weights(K, C[None])
    assert Q.shape == (1,) and Q[0] == pytest.approx(num / den, rel=1e-10)
    assert Q[0] > 2 + 1e-3  # the diagonal counted


# Hostile inputs

_X = torch.rand(3, 1, 5, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
_K = torch.eye(3, dtype=torch.float64)
_Y = torch.tensor([1.0, -1.0, 1.0], dtype=torch.float64)
_WIDTH_SWEEP = dict(n_train=6, n_test=6, sigma=1.0, temperature=0.1, n_steps=2, step_size=1e-3)


def _C7():
    import agop_book.ch07_other_accounts as C7

    return C7


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda C7: C7.band_task(4, 1.0, dtype=torch.int64), ValueError, "dtype must be one of"),
        (lambda C7: C7.band_task(4, 1.0, dtype="float99"), TypeError, "dtype must be a floating"),
        (lambda C7: C7.band_task(4, 1.0, band=3), TypeError, "band must be a sequence"),
        (lambda C7: C7.band_task(0, 1.0), ValueError, "n must be a positive"),
        (lambda C7: C7.band_task(10**9, 1.0, height=10**3), ValueError, "n, height, width"),
        (lambda C7: C7.band_task(10**6, 1.0, height=10**5), ValueError, "n, height, width"),
        (lambda C7: C7.nngp_components(_X, _X[:, :, :4]), ValueError, "Z must have X's"),
        (lambda C7: C7.nngp_components(_X, torch.rand(3, 2, 5, 5)), ValueError, "Z must have X's"),
        (lambda C7: C7.nngp_components(_X, _X * float("nan")), ValueError, "Z contains"),
        (lambda C7: C7.nngp_components(_X, None, 9), ValueError, "patch_size must be at most"),
        (lambda C7: C7.nngp_components(_X, None, 0), ValueError, "patch_size must be a positive"),
        (lambda C7: C7.nngp_components(_X, None, 2.5), TypeError, "patch_size must be an integer"),
        (lambda C7: C7.overlap_kernel(_X, None, torch.eye(9), 9), ValueError, "patch_size must"),
        (lambda C7: C7.gp_posterior_mean(_K, _K, _Y, 0.0), ValueError, "temperature must be a pos"),
        (lambda C7: C7.gp_posterior_mean(_K, _K[:, :2], _Y, 1.0), ValueError, r"K_test_train must"),
        (lambda C7: C7.gp_posterior_mean(_K, _K[0], _Y, 1.0), ValueError, r"K_test_train must"),
        (lambda C7: C7.gp_posterior_mean(_K[:2], _K, _Y, 1.0), ValueError, "K_train must be a squ"),
        (lambda C7: C7.gp_posterior_mean(_K, _K, _Y[:2], 1.0), ValueError, "y must hold 3 targets"),
        (
            lambda C7: C7.gp_posterior_mean(_K, _K * float("inf"), _Y, 1.0),
            ValueError,
            "K_test_train contains",
        ),
        (lambda C7: C7.gp_posterior_mean(_K, _K, _Y * float("nan"), 1.0), ValueError, "y contains"),
        (
            lambda C7: C7.network_output(
                torch.ones(1, 1, 4), torch.ones(1, 2, 1), torch.ones(1, 1, 4)
            ),
            ValueError,
            r"U must be patches \(S, n, P, q\)",
        ),
        (
            lambda C7: C7.network_output(
                torch.ones(1, 1, 3), torch.ones(1, 2, 1), torch.ones(1, 1, 2, 4)
            ),
            ValueError,
            r"W must be \(1, N, 4\)",
        ),
        (
            lambda C7: C7.network_output(
                torch.ones(1, 3, 1, 4), torch.ones(1, 2, 1), torch.ones(1, 1, 2, 4)
            ),
            ValueError,
            r"W must be",
        ),
        (
            lambda C7: C7.network_output(
                torch.ones(1, 1, 4), torch.ones(1, 3, 1), torch.ones(1, 1, 2, 4)
            ),
            ValueError,
            r"V must be \(1, 2, 1\)",
        ),
        (
            lambda C7: C7.langevin(lambda t: t, [], n_steps=1, step_size=0.1),
            ValueError,
            "params must hold",
        ),
        (
            lambda C7: C7.langevin(lambda t: t, torch.ones(2), n_steps=1, step_size=0.1),
            TypeError,
            "params must be a list of tensors",
        ),
        (
            lambda C7: C7.langevin(lambda t: t, [np.ones(2)], n_steps=1, step_size=0.1),
            TypeError,
            r"params\[0\] must be a floating-point tensor",
        ),
        (
            lambda C7: C7.langevin(
                lambda t: t, [torch.ones(2).mul(float("nan"))], n_steps=1, step_size=0.1
            ),
            ValueError,
            r"params\[0\] contains",
        ),
        (
            lambda C7: C7.langevin(None, [torch.ones(2)], n_steps=1, step_size=0.1),
            TypeError,
            "energy must",
        ),
        (
            lambda C7: C7.langevin(
                lambda t: t, [torch.ones(2)], n_steps=1, step_size=0.1, callback=3
            ),
            TypeError,
            "callback must",
        ),
        (
            lambda C7: C7.width_sweep([], [0], **_WIDTH_SWEEP),
            ValueError,
            "widths must hold at least",
        ),
        (
            lambda C7: C7.width_sweep([2], [], **_WIDTH_SWEEP),
            ValueError,
            "seeds must hold at least",
        ),
        (
            lambda C7: C7.width_sweep(2, [0], **_WIDTH_SWEEP),
            TypeError,
            "widths must be a non-empty",
        ),
        (lambda C7: C7.width_sweep([0], [0], **_WIDTH_SWEEP), ValueError, r"widths\[0\] must be"),
        (lambda C7: C7.width_sweep([2], [-1], **_WIDTH_SWEEP), ValueError, r"seeds\[0\] must be"),
        (
            lambda C7: C7.width_sweep([2], [0], task={"hight": 8}, **_WIDTH_SWEEP),
            ValueError,
            "task: unknown",
        ),
        (
            lambda C7: C7.width_sweep([2], [0], task=3, **_WIDTH_SWEEP),
            TypeError,
            "task must be None",
        ),
        (
            lambda C7: C7.width_sweep([2], [0], **dict(_WIDTH_SWEEP, temperature=0.0)),
            ValueError,
            "temperature must be a positive",
        ),
    ],
)
def test_hostile_inputs_are_refused_by_name(call, error, match):
    with pytest.raises(error, match=f"^{match}"):
        call(_C7())
