"""Local versus global renormalization: the sampler, the kernels, the per-position estimator."""

from __future__ import annotations

import math
import statistics

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
    # two seeds a and b: the sample SD is |a - b| / sqrt(2)
    assert d == pytest.approx(0.85 - 0.70) and s == pytest.approx(0.1 / math.sqrt(2))
    d, s = gap(ROWS, "FC", "NNGP FC", 8)
    assert d == pytest.approx(0.0) and s == pytest.approx(math.hypot(0.1, 0.1) / math.sqrt(2))


def test_band_ratio_against_a_loop_and_its_errors():
    g = np.random.default_rng(0)
    Q = g.uniform(0.5, 2.0, size=(3, 24))
    band = np.arange(24) < 8
    per_seed = [
        np.mean([q[i] for i in range(24) if band[i]])
        / np.mean([q[i] for i in range(24) if not band[i]])
        for q in Q
    ]
    assert band_ratio(Q, band) == pytest.approx(
        (statistics.mean(per_seed), statistics.stdev(per_seed))
    )
    with pytest.raises(ValueError, match="band_positions"):
        band_ratio(Q, np.ones(24, bool))
    with pytest.raises(ValueError, match="band_positions"):
        band_ratio(Q, band[:10])


def test_band_ratio_refuses_a_seed_with_no_weight_off_the_band():
    """A seed whose Q is zero off the band has no ratio (it was (inf, nan)); negative or
    non-finite weights are refused too. A zero weight on some positions is fine."""
    band = np.array([True, False, False])
    assert band_ratio([[2.0, 0.0, 1.0], [1.0, 1.0, 1.0]], band) == pytest.approx(
        (2.5, 3 / math.sqrt(2))
    )
    assert band_ratio([[2.0, 0.0, 1.0]], band) == (4.0, 0.0)  # one seed: no spread, not NaN
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


# Mutation testing (`python tools/mutation.py other_accounts`, CONTRIBUTING.md): the kernels'
# weights of any dtype, the position fit's shapes, accuracy's threshold and names.


def test_local_kernel_weights_of_any_dtype():
    comps = torch.rand(2, 3, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ref = (0.5 * comps[0] + 1.5 * comps[1]) / 2
    for weights in ([0.5, 1.5], torch.tensor([0.5, 1.5]), np.array([0.5, 1.5])):
        torch.testing.assert_close(local_kernel(comps, weights), ref, rtol=0, atol=1e-15)


def test_fit_position_weights_refuses_mismatched_shapes():
    comps = torch.rand(2, 3, 3, dtype=torch.float64)
    for K, c in (
        (torch.rand(3, 4, dtype=torch.float64), comps),  # K not square
        (torch.rand(3, dtype=torch.float64), comps),  # K a vector
        (torch.rand(3, 3, dtype=torch.float64), torch.rand(2, 3, 4, dtype=torch.float64)),
        (torch.rand(3, 3, dtype=torch.float64), torch.rand(3, 3, dtype=torch.float64)),
    ):
        with pytest.raises(ValueError, match=r"^K must be \(n, n\) and components \(P, n, n\)"):
            fit_position_weights(K, c)


def test_accuracy_threshold_is_zero_and_errors_name_the_argument():
    # an output of exactly 0 is class 0; any positive output, however small, class 1
    assert accuracy([0.0, 0.5, 1e-30, -0.5], [0, 1, 1, 0]) == 1.0
    for output, y, error, match in (
        ([1.0, float("nan")], [0, 1], ValueError, "^output contains 1 non-finite"),
        (torch.ones(2, dtype=torch.complex64), [0, 1], TypeError, "^output must be real"),
        ([1.0, 0.0], torch.ones(2, dtype=torch.complex64), TypeError, "^y must be real"),
        ([1.0, 0.0], [[0, 1], [1, 0]], ValueError, "^y must hold one value per example"),
        ([[1.0, 0.0]], [0, 1], ValueError, "^output must hold one value per example"),
    ):
        with pytest.raises(error, match=match):
            accuracy(output, y)


import agop_book.ch07_other_accounts as C7  # noqa: E402
from agop_book.ch07_other_accounts import (  # noqa: E402
    Posterior,
    effective_sample_size,
    overlap_kernel,
    split_rhat,
)


class _SweepStubs:
    """Recording stand-ins for sample_posterior and evaluate_methods, with planted outputs."""

    def __init__(self, monkeypatch):
        self.posteriors, self.methods = [], []
        stubs = self

        def sample_posterior(X, y, X_test, **kwargs):
            i = len(stubs.posteriors)
            S, n = X.shape[:2]
            k = kwargs["patch_size"]
            P = 1 if k is None else (X.shape[3] - k + 1) * (X.shape[4] - k + 1)
            g = torch.Generator().manual_seed(100 + i)

            def r(*shape):
                return torch.rand(*shape, generator=g, dtype=torch.float64)

            A, B = r(S, n, n), r(S, P, P)
            post = Posterior(
                r(S, X_test.shape[1]) - 0.5, r(S, P) + 0.5, A @ A.transpose(1, 2) + 0.1,
                r(S), 6, r(S, 6, P), r(S, 6, 3), B @ B.transpose(1, 2) + torch.eye(P),
            )  # fmt: skip
            stubs.posteriors.append((X, y, X_test, kwargs, post))
            return post

        def evaluate_methods(X, y, X_test, y_test, **kwargs):
            i = len(stubs.methods)
            stubs.methods.append((X, y, X_test, y_test, kwargs))
            acc = {m: 0.5 + i / 10 + j / 100 for j, m in enumerate(kwargs["methods"])}
            model = type("Model", (), {"M_": torch.full((2, 2), float(i))})()
            return {"accuracy": acc, "models": {"ConvRFM": model}}

        monkeypatch.setattr(C7, "sample_posterior", sample_posterior)
        monkeypatch.setattr(C7, "evaluate_methods", evaluate_methods)


def _gp(K, Kt, y, T):
    """K_* (K + T I)^-1 (2y - 1), by numpy."""
    K, Kt = np.asarray(K, dtype=np.float64), np.asarray(Kt, dtype=np.float64)
    return Kt @ np.linalg.solve(K + T * np.eye(len(K)), 2.0 * np.asarray(y, np.float64) - 1)


def _acc(pred, y):
    return float(np.mean((np.asarray(pred) > 0) == (np.asarray(y) == 1)))


def _rel(a, b):
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(np.asarray(b)))


def test_width_sweep_passes_every_option_and_its_results_are_the_planted_posteriors(monkeypatch):
    stubs = _SweepStubs(monkeypatch)
    seeds, widths, chains, T = [3, 1], [4, 2], 2, 0.3
    task = {"height": 6, "width": 5, "band": (4,)}
    out = C7.width_sweep(
        widths, seeds, n_train=7, n_test=5, sigma=0.5, temperature=T, n_steps=9,
        step_size=1e-3, patch_size=2, task=task, every=3, chains=chains, init_scale=1.5,
        rfm=True, locally_connected=True, dtype=torch.float64, device="cpu",
    )  # fmt: skip
    # the data: band_task per seed (test images from seed + 10000), one scale per seed
    data = [band_task(7, 0.5, seed=s, **task) for s in seeds]
    test = [band_task(5, 0.5, seed=s + 10_000, **task) for s in seeds]
    scale = [float(np.std(d[0].numpy(), ddof=1)) for d in data]
    X = [d[0] / c for d, c in zip(data, scale, strict=True)]
    Xt = [t[0] / c for t, c in zip(test, scale, strict=True)]
    y, yt = [d[1] for d in data], [t[1] for t in test]
    grid = (5, 4)  # (6 - 2 + 1, 5 - 2 + 1) positions
    assert out["grid"] == grid
    band = np.repeat([False, False, False, True, True], 4)  # patch rows 3 and 4 see row 4
    assert np.array_equal(out["band_positions"], band)
    rows = out["rows"]
    # the kernels at infinite width, per seed
    for s, seed in enumerate(seeds):
        comps = nngp_components(X[s], None, 2)
        comps_t = nngp_components(Xt[s], X[s], 2)
        mask = torch.tensor(band, dtype=torch.float64)[:, None, None]
        for method, K, Kt in (
            ("NNGP local (uniform Q)", comps.mean(0), comps_t.mean(0)),
            ("local, band only", (comps * mask).mean(0), (comps_t * mask).mean(0)),
            ("NNGP FC", nngp_components(X[s], None, None)[0],
             nngp_components(Xt[s], X[s], None)[0]),
        ):  # fmt: skip
            pred = _gp(K, Kt, y[s], T)
            np.testing.assert_allclose(out["gp_mean"][method][s], pred, rtol=1e-8, atol=1e-10)
            (row,) = [r for r in rows if r["method"] == method and r["seed"] == seed]
            assert row == {"method": method, "width": None, "seed": seed,
                           "accuracy": _acc(pred, yt[s])}  # fmt: skip
    assert sorted(out["gp_mean"]) == sorted(["NNGP local (uniform Q)", "local, band only",
                                             "NNGP FC"])  # fmt: skip
    # the samplers: CNN, FC, LCN per width, every option, chain seeds from (N, seed, c, kind)
    assert len(stubs.posteriors) == 3 * len(widths)
    for w, N in enumerate(widths):
        nets = {}
        for kind, (name, patch, shared) in enumerate(
            (("CNN", 2, True), ("FC", None, True), ("LCN", 2, False))
        ):
            Xs, ys, Xts, kwargs, post = stubs.posteriors[3 * w + kind]
            assert kwargs.pop("shared", True) is shared
            assert kwargs == {
                "width": N, "patch_size": patch, "temperature": T, "n_steps": 9,
                "step_size": 1e-3, "burn_in": 4, "every": 3, "init_scale": 1.5,
                "dtype": torch.float64, "device": "cpu",
                "seed": [int(np.random.SeedSequence([N, sd, c, kind]).generate_state(1)[0])
                         for sd in seeds for c in range(chains)],
            }  # fmt: skip
            for s in range(len(seeds)):
                for c in range(chains):
                    torch.testing.assert_close(Xs[s * chains + c], X[s])
                    torch.testing.assert_close(Xts[s * chains + c], Xt[s])
                    assert torch.equal(ys[s * chains + c], y[s])
            nets[name] = post
        pooled = {k: {f: getattr(p, f).reshape(2, chains, *getattr(p, f).shape[1:]).mean(1)
                      for f in ("test_mean", "Q", "kernel", "Q_pairs")}
                  for k, p in nets.items()}  # fmt: skip
        for name in nets:
            np.testing.assert_allclose(out["test_mean"][N][name], pooled[name]["test_mean"])
        np.testing.assert_allclose(out["Q"][N], pooled["CNN"]["Q"])
        np.testing.assert_allclose(out["Q_lcn"][N], pooled["LCN"]["Q"])
        np.testing.assert_allclose(out["Q_fc"][N], pooled["FC"]["Q"][:, 0])
        np.testing.assert_allclose(out["Q_pairs"][N], pooled["CNN"]["Q_pairs"])
        # convergence: the worst seed and quantity of each network, its chains together
        for name, post in nets.items():
            (conv,) = [c for c in out["convergence"] if (c["network"], c["width"]) == (name, N)]
            want = {"network": name, "width": N}
            for key, trace in (("Q", post.Q_trace), ("test", post.test_trace)):
                per_seed = trace.reshape(2, chains, *trace.shape[1:])
                want[f"rhat_{key}"] = max(float(split_rhat(d).max()) for d in per_seed)
                want[f"ess_{key}"] = min(float(effective_sample_size(d).min()) for d in per_seed)
            assert conv == pytest.approx(want)
        for s, seed in enumerate(seeds):
            comps = nngp_components(X[s], None, 2)
            comps_t = nngp_components(Xt[s], X[s], 2)
            for name in nets:
                (row,) = [
                    r for r in rows if (r["method"], r["width"], r["seed"]) == (name, N, seed)
                ]
                assert row["accuracy"] == _acc(pooled[name]["test_mean"][s], yt[s])
                assert set(row) == {"method", "width", "seed", "accuracy"}
            # the position fits: non-negative least squares on the pairs a <= b
            a, b = np.triu_indices(7)
            fit = [
                (comps[:, a, b] / comps.shape[0]).T.numpy(),
                nngp_components(X[s], None, None)[:, a, b].T.numpy(),
            ]
            from scipy.optimize import nnls

            Qfit = nnls(fit[0], pooled["CNN"]["kernel"][s].numpy()[a, b])[0]
            np.testing.assert_allclose(out["Q_fit"][N][s], Qfit, rtol=1e-6, atol=1e-9)
            Qfc = nnls(fit[1], pooled["FC"]["kernel"][s].numpy()[a, b])[0][0]
            assert out["Q_fc_fit"][N][s] == pytest.approx(Qfc, rel=1e-6)
            # the GP with the measured diagonal Q, then with the full overlaps
            q = pooled["CNN"]["Q"][s]
            Kd = (comps * q[:, None, None]).mean(0)
            Kdt = (comps_t * q[:, None, None]).mean(0)
            pred = _gp(Kd, Kdt, y[s], T)
            (row,) = [r for r in rows if (r["method"], r["width"], r["seed"])
                      == ("local, measured Q", N, seed)]  # fmt: skip
            assert row == {"method": "local, measured Q", "width": N, "seed": seed,
                           "accuracy": _acc(pred, yt[s])}  # fmt: skip
            Qp = pooled["CNN"]["Q_pairs"][s]
            Kf, Kft = overlap_kernel(X[s], None, Qp, 2), overlap_kernel(Xt[s], X[s], Qp, 2)
            full = _gp(Kf, Kft, y[s], T)
            (row,) = [r for r in rows if (r["method"], r["width"], r["seed"])
                      == ("local, measured full Q", N, seed)]  # fmt: skip
            assert row["accuracy"] == _acc(full, yt[s])
            off = out["off_diagonal"][N]
            assert set(off) == {"kernel", "prediction", "empirical_diag", "empirical_full"}
            Kd_diag = local_kernel(comps, torch.diagonal(Qp))
            emp = pooled["CNN"]["kernel"][s]
            assert off["kernel"][s] == pytest.approx(_rel(Kf, Kd_diag), rel=1e-6)
            pdiag = _gp(Kd_diag, local_kernel(comps_t, torch.diagonal(Qp)), y[s], T)
            assert off["prediction"][s] == pytest.approx(_rel(full, pdiag), rel=1e-6)
            assert off["empirical_diag"][s] == pytest.approx(_rel(Kd_diag, emp), rel=1e-6)
            assert off["empirical_full"][s] == pytest.approx(_rel(Kf, emp), rel=1e-6)
    # ConvRFM and Deep ConvRFM per seed, on the seed's scaled images
    assert len(stubs.methods) == 2 * len(seeds)
    for s, seed in enumerate(seeds):
        for j, (depth, extra, methods) in enumerate(
            ((1, {}, ("CNTK", "ConvRFM")), (2, {"width": 64}, ("Deep ConvRFM",)))
        ):
            i = 2 * s + j
            Xm, ym, Xtm, ytm, kwargs = stubs.methods[i]
            torch.testing.assert_close(Xm, X[s])
            torch.testing.assert_close(Xtm, Xt[s])
            assert torch.equal(ym, y[s]) and torch.equal(ytm, yt[s])
            assert kwargs == {"seed": seed, "depth": depth, "patch_size": 2, "methods": methods,
                              "device": "cpu", **extra}  # fmt: skip
            for k, m in enumerate(methods):
                (row,) = [r for r in rows if r["method"] == m and r["seed"] == seed]
                assert row == {"method": m, "width": None, "seed": seed,
                               "accuracy": 0.5 + i / 10 + k / 100}  # fmt: skip
        assert torch.equal(out["M"][seed], torch.full((2, 2), float(2 * s)))
    assert set(out) == {"rows", "Q", "Q_fit", "Q_fc", "Q_fc_fit", "M", "test_mean", "gp_mean",
                        "convergence", "Q_lcn", "Q_pairs", "off_diagonal", "grid",
                        "band_positions"}  # fmt: skip
    assert len(rows) == len(seeds) * (3 + len(widths) * 5 + 3)


def test_width_sweep_defaults_are_the_documented_ones(monkeypatch):
    stubs = _SweepStubs(monkeypatch)
    out = C7.width_sweep([2], [0], n_train=6, n_test=4, sigma=0.5, temperature=0.2,
                         n_steps=8, step_size=1e-3)  # fmt: skip
    assert len(stubs.posteriors) == 2  # CNN and FC, no LCN
    X, _, _, kwargs, _ = stubs.posteriors[0]
    assert X.shape == (1, 6, 1, 8, 6)  # one chain; 8 x 6 images
    want = band_task(6, 0.5, seed=0, height=8, width=6, band=(0, 1))[0]
    torch.testing.assert_close(X[0], want / float(np.std(want.numpy(), ddof=1)))
    assert (kwargs["patch_size"], kwargs["every"], kwargs["init_scale"]) == (3, 10, 1.0)
    assert (kwargs["dtype"], kwargs["device"], kwargs["burn_in"]) == (torch.float32, "cpu", 4)
    assert "shared" not in kwargs or kwargs["shared"] is True
    assert out["grid"] == (6, 4) and out["band_positions"].tolist() == [True] * 8 + [False] * 16
    assert [m[4]["methods"] for m in stubs.methods] == [("CNTK", "ConvRFM"), ("Deep ConvRFM",)]
    assert stubs.methods[0][4]["device"] == "cpu"


@pytest.mark.parametrize(
    "chains, error, match",
    [(0, ValueError, "^chains must be a positive"), (1.0, TypeError, "^chains must be an integer")],
)
def test_width_sweep_chains_are_checked_by_name(monkeypatch, chains, error, match):
    _SweepStubs(monkeypatch)
    with pytest.raises(error, match=match):
        C7.width_sweep([2], [0], n_train=6, n_test=4, sigma=0.5, temperature=0.2, n_steps=8,
                       step_size=1e-3, chains=chains, rfm=False)  # fmt: skip


def test_band_ratio_in_float64_with_any_mask_of_zeros_and_ones():
    Q = [[0.1, 0.3, 0.7], [0.2, 0.1, 0.4]]
    want = [0.1 / ((0.3 + 0.7) / 2), 0.2 / ((0.1 + 0.4) / 2)]  # Python floats: float64
    for mask in ([True, False, False], [1, 0, 0], np.array([1.0, 0.0, 0.0])):
        mean, sd = band_ratio(Q, mask)
        assert mean == pytest.approx(np.mean(want), rel=1e-14)
        assert sd == pytest.approx(abs(want[0] - want[1]) / math.sqrt(2), rel=1e-12)
    with pytest.raises(TypeError, match="^Q must be real"):
        band_ratio(torch.ones(1, 3, dtype=torch.complex64), [True, False, False])


def test_diagnosis_needs_four_samples_per_chain():
    """Fewer than 4 samples: not diagnosable, R-hat inf and ESS 0; 4 samples are diagnosed."""

    def post(n):
        trace = torch.arange(2 * n * 3, dtype=torch.float64).reshape(2, n, 3).sin()
        return Posterior(None, None, None, None, n, trace.float(), trace[..., :2].float())

    assert C7._diagnose(post(3), 2) == {
        "rhat_Q": math.inf, "ess_Q": 0.0, "rhat_test": math.inf, "ess_test": 0.0
    }  # fmt: skip
    out = C7._diagnose(post(4), 2)
    t = post(4)
    assert out == pytest.approx({
        "rhat_Q": float(split_rhat(t.Q_trace).max()),
        "ess_Q": float(effective_sample_size(t.Q_trace).min()),
        "rhat_test": float(split_rhat(t.test_trace).max()),
        "ess_test": float(effective_sample_size(t.test_trace).min()),
    })  # fmt: skip


class _LangevinRecorder:
    """Stands in for langevin: records what sample_posterior hands it and calls back at every
    step t with the start scaled by (t + 1), so that Q = (t + 1)^2 Q(start) marks the step."""

    def __init__(self, monkeypatch):
        self.calls = []
        monkeypatch.setattr("agop_book.ch07_other_accounts.langevin", self)

    def __call__(self, energy, params, *, n_steps, step_size, generator, callback):
        self.calls.append(dict(energy=energy, params=[p.clone() for p in params],
                               n_steps=n_steps, step_size=step_size, generator=generator))  # fmt: skip
        for t in range(n_steps):
            callback(t, [p * (t + 1) for p in params])
        return params


def _images(S, n, seed):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(S, n, 1, 2, 2, generator=g, dtype=torch.float64)
    return X, (torch.rand(S, n, generator=g) > 0.5).long()


_POST = dict(width=3, patch_size=None, temperature=0.5, n_steps=12, step_size=1e-3, burn_in=3)


def _state(g):
    return g.get_state()


def test_sample_posterior_hands_langevin_the_seeded_start_noise_and_energy(monkeypatch):
    rec = _LangevinRecorder(monkeypatch)
    X, y = _images(2, 4, 0)
    X_test, _ = _images(2, 101, 1)  # 101 test images: the trace keeps the first 100
    post = sample_posterior(X, y, X_test, **_POST, every=4, seed=7, init_scale=2.0)
    call = rec.calls[0]
    g = torch.Generator().manual_seed(7)
    W0 = torch.randn(2, 3, 4, generator=g, dtype=torch.float64)
    V0 = torch.randn(2, 1, 3, generator=g, dtype=torch.float64)
    assert torch.equal(call["params"][0], 2 * W0) and torch.equal(call["params"][1], 2 * V0)
    assert torch.equal(_state(call["generator"]), _state(torch.Generator().manual_seed(8)))
    assert call["n_steps"] == 12 and call["step_size"] == 1e-3
    # the energy |y - f|^2 / 2T + |theta|^2 / 2, per chain
    U = X.flatten(2)[:, :, None, :]
    f = network_output(W0, V0, U)
    want = ((2.0 * y - 1 - f) ** 2).sum(-1) / 1.0 + ((W0**2).sum((1, 2)) + (V0**2).sum((1, 2))) / 2
    assert torch.allclose(call["energy"](W0, V0), want)
    # samples after burn_in = 3 every 4th step: t = 3, 7, 11, at (t + 1) times the start
    steps = [3, 7, 11]
    assert post.n_samples == 3
    Q0 = (2 * V0).pow(2).mean(-1)
    assert torch.allclose(post.Q_trace, torch.stack([Q0 * (t + 1) ** 2 for t in steps], 1).float())
    assert post.test_trace.shape == (2, 3, 100)
    out = [
        network_output(2 * W0 * (t + 1), 2 * V0 * (t + 1), X_test.flatten(2)[:, :, None])
        for t in steps
    ]
    assert torch.allclose(post.test_trace, torch.stack(out, 1)[..., :100].float())
    loss = [
        ((2.0 * y - 1 - network_output(2 * W0 * (t + 1), 2 * V0 * (t + 1), U)) ** 2).mean(-1)
        for t in steps
    ]
    assert torch.allclose(post.train_loss, sum(loss) / 3)


def test_sample_posterior_per_chain_seeds_and_the_defaults(monkeypatch):
    rec = _LangevinRecorder(monkeypatch)
    X, y = _images(2, 4, 0)
    sample_posterior(X, y, X, **_POST, seed=[4, 9])
    noise = rec.calls[0]["generator"]
    assert [_state(g).tolist() for g in noise] == [
        _state(torch.Generator().manual_seed(s)).tolist() for s in (5, 10)
    ]
    for s, W in zip((4, 9), rec.calls[0]["params"][0], strict=True):
        assert torch.equal(
            W, torch.randn(3, 4, generator=torch.Generator().manual_seed(s), dtype=torch.float64)
        )
    # defaults: every 10, seed 0, init_scale 1, float64 on the CPU
    default = sample_posterior(X, y, X, **(_POST | dict(n_steps=25)))
    explicit = sample_posterior(X, y, X, **(_POST | dict(n_steps=25)), every=10, seed=0,
                                init_scale=1.0, shared=True, dtype=torch.float64, device="cpu")  # fmt: skip
    assert default.n_samples == 3  # t = 3, 13, 23
    assert torch.equal(default.Q_trace, explicit.Q_trace)
    for a, b in zip(rec.calls[1]["params"], rec.calls[2]["params"], strict=True):
        assert torch.equal(a, b) and a.dtype == torch.float64 and a.device.type == "cpu"
    assert torch.equal(_state(rec.calls[1]["generator"]), _state(torch.Generator().manual_seed(1)))


def test_sample_posterior_energy_runs_in_the_sampling_dtype(monkeypatch):
    rec = _LangevinRecorder(monkeypatch)
    X, y = _images(1, 3, 2)
    sample_posterior(X, y.double(), X, **_POST, dtype=torch.float32)
    W, V = rec.calls[0]["params"]
    assert W.dtype == torch.float32 and rec.calls[0]["energy"](W, V).dtype == torch.float32


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(width=0), ValueError, "^width must"),
        (dict(temperature=0.0), ValueError, "^temperature must"),
        (dict(burn_in=-1), ValueError, "^burn_in must"),
        (dict(every=0), ValueError, "^every must"),
        (dict(init_scale=0.0), ValueError, "^init_scale must"),
        (dict(init_scale=-1.0), ValueError, "^init_scale must"),
        (dict(seed=[0, -1]), ValueError, r"^seed\[s\] must"),
    ],
)
def test_sample_posterior_arguments_are_refused_by_name(monkeypatch, kwargs, error, match):
    _LangevinRecorder(monkeypatch)
    X, y = _images(2, 3, 0)
    with pytest.raises(error, match=match):
        sample_posterior(X, y, X, **(_POST | kwargs))


def test_sample_posterior_refuses_training_images_that_are_not_a_stack(monkeypatch):
    _LangevinRecorder(monkeypatch)
    X, y = _images(2, 3, 0)
    with pytest.raises(ValueError, match=r"^X and X_test must be \(S, n, c, H, W\)"):
        sample_posterior(X[0], y, X, **_POST)
    post = sample_posterior(X, y, X, **(_POST | dict(width=1, burn_in=0, n_steps=1)), every=1)
    assert post.n_samples == 1


def test_band_task_defaults_and_its_height_by_name():
    X, y = band_task(3, 0.5)
    X0, y0 = band_task(3, 0.5, height=8, width=8, band=(0, 1), seed=0, dtype=torch.float64)
    assert torch.equal(X, X0) and torch.equal(y, y0) and X.shape == (3, 1, 8, 8)
    assert band_task(2, 0.5, height=1, band=(0,))[0].shape == (2, 1, 1, 8)  # the smallest
    with pytest.raises(ValueError, match="^height must"):
        band_task(2, 0.5, height=0, band=(0,))


def test_nngp_components_default_patch_is_3():
    X = torch.randn(2, 1, 5, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    K = nngp_components(X)
    assert K.shape == (9, 2, 2) and torch.equal(K, nngp_components(X, None, 3))


def test_relu_kernel_of_opposite_patches_is_zero_despite_rounding():
    from agop_book.ch07_other_accounts import _relu_kernel

    # for this patch S / (|x| |z|) rounds to -1 - 2^-52: theta = pi, sin + (pi - theta) cos = 0
    u = torch.tensor([[[0.5684312772806678, -1.084522342424021, -1.3985953953708767]]],
                     dtype=torch.float64)  # fmt: skip
    K = _relu_kernel(u, -u)
    assert torch.isfinite(K).all() and abs(float(K)) < 1e-12


@pytest.mark.parametrize(
    "band, error, match",
    [
        ((0, 1.5), TypeError, r"^band\[1\] must be an integer"),
        ((2, 2), ValueError, r"^band must hold distinct rows in \[0, 8\)"),
        ((-1, 2), ValueError, r"^band must hold distinct rows"),
        ((0, 8), ValueError, r"^band must hold distinct rows"),
        ((), ValueError, r"^band must hold distinct rows"),
    ],
)
def test_band_rows_are_distinct_integers_inside_the_image(band, error, match):
    with pytest.raises(error, match=match):
        C7.band_task(4, 1.0, band=band)


def test_accuracy_reads_the_sign_of_tiny_outputs():
    """A Python list was read in float32, where 1e-300 is 0: counted as class 0."""
    assert C7.accuracy([1e-300, -1e-300], [1, 0]) == 1.0
    assert C7.accuracy(torch.tensor([1e-30], dtype=torch.float32), [1]) == 1.0


def test_band_task_is_bars_in_noise_rescaled_into_its_band_over_seeded_noise():
    """The documented construction, rebuilt: the band rows are ``bars_in_noise`` (float64, the
    same seed) times sqrt(width), the other rows Gaussian noise of variance sigma from the
    generator seeded ``seed + 7919``; the result cast to ``dtype`` once, at the end."""
    from agop_book.ch05_deep_convrfm import bars_in_noise

    n, sigma, height, width, band, seed = 5, 0.5, 5, 3, (3, 1), 2
    bars, y_ref = bars_in_noise(n, sigma, height=2, width=width, seed=seed, device="cpu",
                                dtype=torch.float64)  # fmt: skip
    g = torch.Generator().manual_seed(seed + 7919)
    ref = torch.randn(n, 1, height, width, generator=g, dtype=torch.float64) * math.sqrt(sigma)
    ref[:, :, list(band)] = bars * math.sqrt(width)
    X, y = band_task(n, sigma, height=height, width=width, band=band, seed=seed)
    assert X.dtype == torch.float64 and torch.equal(X, ref) and torch.equal(y, y_ref)
    X32, y32 = band_task(n, sigma, height=height, width=width, band=band, seed=seed,
                         dtype=torch.float32)  # fmt: skip
    assert X32.dtype == torch.float32 and torch.equal(X32, ref.float()) and torch.equal(y32, y)
    assert band_task(2, 0.5, width=1, band=(0,))[0].shape == (2, 1, 8, 1)  # the smallest width


@pytest.mark.parametrize(
    "kwargs, error, match",
    [  # the first bad argument in the signature's order is the one named
        (dict(n=0, band=(9,)), ValueError, "^n must be a positive integer"),
        (dict(width=0, band=(9,)), ValueError, "^width must be a positive integer"),
        (dict(width=0), ValueError, "^width must be a positive integer"),
        (dict(dtype=None), TypeError, "^dtype must be a floating torch dtype"),
        # the band: a sequence of distinct rows inside the image (height 8)
        (dict(band=3), TypeError, "^band must"),
        (dict(band=(0, "1")), TypeError, r"^band\[1\] must"),
        (dict(band=()), ValueError, "^band must"),
        (dict(band=(1, 1)), ValueError, "^band must"),
        (dict(band=(-1, 2)), ValueError, "^band must"),
        (dict(band=(0, 8)), ValueError, "^band must"),
    ],
)
def test_band_task_names_its_first_bad_argument(kwargs, error, match):
    with pytest.raises(error, match=match):
        band_task(**(dict(n=4, sigma=1.0) | kwargs))


def test_band_task_refuses_images_beyond_the_memory_at_16_bytes_a_pixel(monkeypatch):
    """16 bytes a pixel: the float64 images and their copy in ``dtype``."""
    monkeypatch.setattr("agop.validation._memory_bytes", lambda: 16 * 100)
    assert band_task(2, 0.5, height=5, width=10, band=(0,))[0].shape == (2, 1, 5, 10)
    with pytest.raises(ValueError, match="^n, height, width: the images would need"):
        band_task(2, 0.5, height=5, width=11, band=(0,))


def _langevin_loop(a, b, eta, steps, draw):
    """theta <- theta - eta grad U + sqrt(2 eta) xi, written out for U = |a - 1|^2 / 2 + b^4 / 4
    per chain (grad: a - 1, b^3), each parameter's noise drawn in turn by ``draw``."""
    path = []
    for _ in range(steps):
        ga, gb = a - 1, b**3
        a = a - eta * ga + math.sqrt(2 * eta) * draw(a)
        b = b - eta * gb + math.sqrt(2 * eta) * draw(b)
        path.append((a, b))
    return path


@pytest.mark.parametrize("per_chain", [False, True])
def test_langevin_is_the_update_written_out(per_chain):
    def energy(a, b):
        return ((a - 1) ** 2).sum(-1) / 2 + b**4 / 4

    a0 = torch.tensor([[0.5, -1.0, 2.0], [0.0, 0.3, 1.0]], dtype=torch.float64)
    b0 = torch.tensor([0.7, -0.4], dtype=torch.float64)
    eta, steps = 0.1, 3
    if per_chain:
        gens = [torch.Generator().manual_seed(s) for s in (4, 9)]
        ref = [torch.Generator().manual_seed(s) for s in (4, 9)]

        def draw(p):
            return torch.stack([torch.randn(p.shape[1:], generator=g, dtype=p.dtype) for g in ref])
    else:
        gens, ref = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)

        def draw(p):
            return torch.randn(p.shape, generator=ref, dtype=p.dtype)

    seen = []
    a, b = langevin(energy, [a0, b0], n_steps=steps, step_size=eta, generator=gens,
                    callback=lambda t, ps: seen.append((t, [p.detach().clone() for p in ps])))  # fmt: skip
    want = _langevin_loop(a0, b0, eta, steps, draw)
    assert [t for t, _ in seen] == [0, 1, 2]
    for (_, got), w in zip(seen, want, strict=True):
        assert all(torch.allclose(x, y, rtol=0, atol=1e-14) for x, y in zip(got, w, strict=True))
    assert torch.allclose(a, want[-1][0], rtol=0, atol=1e-14) and a.dtype == torch.float64
    assert torch.allclose(b, want[-1][1], rtol=0, atol=1e-14) and not a.requires_grad
    assert a0[0, 0] == 0.5 and b0[0] == 0.7  # the start untouched
    same = langevin(energy, [a0, b0], n_steps=0, step_size=eta, callback=seen.append)
    assert len(seen) == 3 and all(torch.equal(x, y) for x, y in zip(same, [a0, b0], strict=True))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(n_steps=-1), ValueError, "^n_steps must"),
        (dict(step_size=0.0), ValueError, "^step_size must"),
        (dict(step_size=-0.1), ValueError, "^step_size must"),
        (dict(params={1: torch.ones(2)}), TypeError, "^params must be a list of tensors"),
        (dict(params=[torch.ones(())], generator=[torch.Generator()]), ValueError,
         "^a sequence of 1 generators needs every parameter to stack 1 chains"),
        (dict(params=[torch.ones(1, 2), torch.ones(2, 1)], generator=[torch.Generator()]),
         ValueError, "^a sequence of 1 generators"),
        (dict(params=[torch.ones(2), torch.ones(2, dtype=torch.long)]), TypeError,
         r"^params\[1\] must"),
        (dict(params=[torch.tensor([1.0, float("nan")])]), ValueError, r"^params\[0\] "),
    ],
)  # fmt: skip
def test_langevin_refuses_by_name(kwargs, error, match):
    args = dict(energy=lambda t: t.sum(), params=[torch.ones(2)], n_steps=1, step_size=0.1)
    with pytest.raises(error, match=match):
        langevin(**(args | kwargs))


# Held-out style bugs, round 4


def test_width_sweep_measured_q_kernel_of_each_seed_uses_that_seeds_overlaps(monkeypatch):
    """The "local, measured Q" GP of seed ``s`` weights the positions by seed ``s``'s own
    posterior :math:`Q_i`. Planted: seed 0's CNN puts its weight off the band (its kernel sees
    only noise), seed 1's on the band; each row is the GP written out with its own seed's
    ``Q``, and seed 1's accuracy with seed 0's ``Q`` would differ (checked), so a sweep that
    reused one seed's overlaps for every seed fails here."""
    task = {"height": 6, "width": 5, "band": (4,)}
    grid, patch = (5, 4), 2
    band = torch.tensor(np.repeat([False, False, False, True, True], 4), dtype=torch.float64)
    planted_Q = torch.stack([(1 - band) + 1e-3, band + 1e-3])  # seed index 0, 1

    def sample_posterior(X, y, X_test, **kwargs):
        S, n, P = X.shape[0], X.shape[1], grid[0] * grid[1]
        P = 1 if kwargs["patch_size"] is None else P
        Q = planted_Q if P > 1 else torch.ones(S, 1, dtype=torch.float64)
        eye = torch.eye(n, dtype=torch.float64).expand(S, n, n)
        return Posterior(
            torch.zeros(S, X_test.shape[1], dtype=torch.float64), Q, eye.clone(),
            torch.zeros(S, dtype=torch.float64), 6, torch.ones(S, 6, P),
            torch.ones(S, 6, 3), torch.diag_embed(Q),
        )  # fmt: skip

    monkeypatch.setattr(C7, "sample_posterior", sample_posterior)
    seeds, T = [2, 5], 0.1
    out = C7.width_sweep(
        [3], seeds, n_train=24, n_test=40, sigma=0.05, temperature=T, n_steps=4,
        step_size=1e-3, patch_size=patch, task=task, rfm=False, dtype=torch.float64,
        device="cpu",
    )  # fmt: skip
    data = [band_task(24, 0.05, seed=s, **task) for s in seeds]
    test = [band_task(40, 0.05, seed=s + 10_000, **task) for s in seeds]

    def measured(s, q):
        scale = float(np.std(data[s][0].numpy(), ddof=1))
        X, Xt = data[s][0] / scale, test[s][0] / scale
        comps = nngp_components(X, None, patch)
        comps_t = nngp_components(Xt, X, patch)
        pred = _gp((comps * q[:, None, None]).mean(0), (comps_t * q[:, None, None]).mean(0),
                   data[s][1], T)  # fmt: skip
        return _acc(pred, test[s][1])

    for s, seed in enumerate(seeds):
        (row,) = [r for r in out["rows"] if (r["method"], r["seed"]) == ("local, measured Q", seed)]
        assert row["accuracy"] == measured(s, planted_Q[s])
    assert measured(1, planted_Q[1]) != measured(1, planted_Q[0])  # the test has power


# ---------------------------------------------------------------------------
# Hostile inputs, round 5


def _quadratic(t):
    return (t**2).sum(-1) / 2


def test_round5_langevin_names_runaway_chains_counts_and_energies():
    start = [torch.full((2, 5), 5.0, dtype=torch.float64)]
    # an unstable step (above 2 on this energy) used to return inf/NaN parameters
    with pytest.raises(ValueError, match=r"^step_size=1000.0: the chains diverged"):
        langevin(_quadratic, start, n_steps=200, step_size=1e3)
    with pytest.raises(ValueError, match=r"^n_steps must be .*<= 2147483647"):
        langevin(_quadratic, start, n_steps=10**12, step_size=0.05)  # used to hang
    with pytest.raises(TypeError, match=r"^energy must return a tensor, got float"):
        langevin(lambda t: 3.0, start, n_steps=2, step_size=0.05)  # was an AttributeError
    # a stable step is untouched: the same draws as before
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    (a,) = langevin(_quadratic, start, n_steps=5, step_size=0.05, generator=g1)
    x = start[0].clone()
    for _ in range(5):
        x = x - 0.05 * x + math.sqrt(0.1) * torch.randn(x.shape, generator=g2, dtype=x.dtype)
    torch.testing.assert_close(a, x, rtol=1e-12, atol=1e-12)


def test_round5_sample_posterior_names_its_counts_before_sampling():
    X, y = band_task(12, 0.5, seed=0)
    kw = dict(width=4, patch_size=3, temperature=0.1, step_size=1e-3, every=5)
    with pytest.raises(ValueError, match=r"^burn_in must be below n_steps=20"):
        sample_posterior(X[None], y[None], X[None], n_steps=20, burn_in=20, **kw)
    with pytest.raises(ValueError, match=r"^n_steps must be .*<= 2147483647"):
        sample_posterior(X[None], y[None], X[None], n_steps=10**12, burn_in=0, **kw)
    with pytest.raises(ValueError, match=r"^step_size=1000000.0: the chains diverged"):
        sample_posterior(
            X[None], y[None], X[None], n_steps=20, burn_in=10, **{**kw, "step_size": 1e6}
        )


@pytest.mark.parametrize(
    "widths, seeds, match",
    [
        ([4, 4], [0], r"^widths must be distinct"),
        ([4], [1, 1], r"^seeds must be distinct"),
    ],
)
def test_round5_width_sweep_refuses_repeats(widths, seeds, match):
    # a repeated seed used to shrink the spread over seeds; a repeated width to overwrite its Q
    with pytest.raises(ValueError, match=match):
        width_sweep(widths, seeds, n_train=12, n_test=12, sigma=2.0, temperature=0.1,
                    n_steps=20, step_size=1e-3, every=5, rfm=False)  # fmt: skip
    with pytest.raises(ValueError, match=r"^n_test must be a positive integer"):
        width_sweep([4], [0], n_train=12, n_test=0, sigma=2.0, temperature=0.1,
                    n_steps=20, step_size=1e-3, every=5, rfm=False)  # fmt: skip


def test_round5_statistics_name_rows_and_weights_that_are_not_numbers():
    rows = [{"method": "CNN", "width": 8, "accuracy": a} for a in (0.7, math.nan)]
    with pytest.raises(ValueError, match=r"^rows\[1\]\['accuracy'\] must be a finite number"):
        C7.summarise(rows, "CNN", 8)  # used to return (nan, nan)
    with pytest.raises(TypeError, match=r"^rows\[0\]\['accuracy'\] must be a real number"):
        C7.summarise([{"method": "CNN", "width": 8}], "CNN", 8)  # used to be a KeyError
    # rows of other methods need no accuracy; the one matching row gives an sd of 0.0
    mixed = [{"method": "CNN", "width": 8, "accuracy": 0.75}, {"method": "FC", "width": 8}]
    assert C7.summarise(mixed, "CNN", 8) == (0.75, 0.0)
    with pytest.raises(ValueError, match=r"^weights contains 1 non-finite"):
        local_kernel(torch.ones(2, 1, 1), [1.0, math.nan])  # used to be a NaN kernel
    with pytest.raises(ValueError, match=r"^draws must hold at least one chain"):
        split_rhat(torch.zeros(0, 10))  # used to be torch's reshape error
