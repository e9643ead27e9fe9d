"""agop_book.ch07_other_accounts: split-R-hat and the effective sample size against a direct
(loop) implementation of the formulas of Gelman et al. (BDA3, 11.4-11.5), and on chains whose
answer is known: identical chains, chains stuck at different values, a drifting chain, AR(1)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from agop_book.ch07_other_accounts import effective_sample_size, split_rhat


def reference(chains: np.ndarray) -> tuple[float, float]:
    """(R-hat, ESS) of one quantity, chains (m, n), by loops over chains and lags."""
    m, n = chains.shape
    h = n // 2
    split = [c[:h] for c in chains] + [c[n - h :] for c in chains]
    M = len(split)
    means = [sum(c) / h for c in split]
    variances = [
        sum((v - mu) ** 2 for v in c) / (h - 1) for c, mu in zip(split, means, strict=True)
    ]
    W = sum(variances) / M
    grand = sum(means) / M
    B_over_n = sum((mu - grand) ** 2 for mu in means) / (M - 1)
    var_plus = (h - 1) / h * W + B_over_n
    rhat = math.sqrt(var_plus / W)
    rho = []
    for t in range(h):
        gamma = (
            sum(
                sum((c[i] - mu) * (c[i + t] - mu) for i in range(h - t)) / h
                for c, mu in zip(split, means, strict=True)
            )
            / M
        )
        rho.append(1 - (W - gamma) / var_plus)
    rho[0] = 1.0
    total, last = 0.0, math.inf
    for t in range(0, h - 1, 2):
        pair = rho[t] + rho[t + 1]
        if pair <= 0:
            break
        last = min(last, pair)
        total += last
    tau = max(-1 + 2 * total, 1 / math.log10(M * h))
    return rhat, M * h / tau


@pytest.mark.parametrize("rho, m, n", [(0.0, 3, 40), (0.7, 4, 51), (-0.4, 2, 30), (0.95, 3, 60)])
def test_against_the_formulas_written_as_loops(rho, m, n):
    g = np.random.default_rng([int(100 * abs(rho)), m, n])
    x = g.standard_normal((m, n)) + g.standard_normal((m, 1)) * 0.3  # chains a little apart
    for t in range(1, n):
        x[:, t] += rho * x[:, t - 1]
    rhat, ess = reference(x)
    assert split_rhat(torch.tensor(x)).item() == pytest.approx(rhat, rel=1e-10)
    assert effective_sample_size(torch.tensor(x)).item() == pytest.approx(ess, rel=1e-10)


def test_identical_chains_of_independent_draws_agree():
    one = torch.randn(1, 4000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    same = one.repeat(4, 1)
    assert abs(split_rhat(same).item() - 1) < 0.005


def test_chains_stuck_at_different_values_never_converge():
    levels = torch.tensor([[0.0], [0.0], [1.0], [2.0]], dtype=torch.float64)
    assert split_rhat(levels.expand(4, 100)).item() == math.inf
    assert effective_sample_size(levels.expand(4, 100)).item() == 4  # one value per chain
    noisy = levels + 0.01 * torch.randn(4, 100, generator=torch.Generator().manual_seed(1))
    assert split_rhat(noisy).item() > 10


def test_a_constant_quantity_is_converged_not_nan():
    draws = torch.full((3, 50), 2.5, dtype=torch.float64)
    assert split_rhat(draws).item() == 1.0
    assert effective_sample_size(draws).item() == 150


def test_a_drifting_chain_fails_even_alone():
    """Splitting is what catches a single chain that has not settled: its halves disagree."""
    t = torch.linspace(0, 1, 400, dtype=torch.float64)
    noise = torch.randn(1, 400, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    assert split_rhat(3 * t + noise).item() > 1.3
    assert abs(split_rhat(noise).item() - 1) < 0.05


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.9])
def test_ar1_effective_sample_size_is_its_closed_form(rho):
    """An AR(1) chain's draws count (1 - rho) / (1 + rho) each, over many chains."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(8, 5000, generator=g, dtype=torch.float64)
    for t in range(1, 5000):
        x[:, t] += rho * x[:, t - 1]
    share = effective_sample_size(x).item() / x.numel()
    assert share == pytest.approx((1 - rho) / (1 + rho), rel=0.1)


def test_each_quantity_is_diagnosed_on_its_own():
    g = torch.Generator().manual_seed(4)
    draws = torch.randn(3, 60, 2, 3, generator=g, dtype=torch.float64)
    draws[:, :, 1, 2] += torch.tensor([0.0, 5.0, 10.0]).view(3, 1)  # one quantity stuck apart
    rhat, ess = split_rhat(draws), effective_sample_size(draws)
    assert rhat.shape == ess.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            assert rhat[i, j] == split_rhat(draws[:, :, i, j])
            assert ess[i, j] == effective_sample_size(draws[:, :, i, j])
    assert rhat[1, 2] > 3 and (rhat.flatten()[:-1] < 1.2).all()


@pytest.mark.parametrize(
    "draws, match",
    [
        (torch.zeros(5), r"\(chains, draws, \.\.\.\)"),
        (torch.zeros(2, 3), "at least 4 draws"),
        (torch.tensor([[0.0, 1.0, float("nan"), 2.0]]), "NaN"),
    ],
)
def test_bad_draws_are_refused(draws, match):
    for diagnostic in (split_rhat, effective_sample_size):
        with pytest.raises(ValueError, match=match):
            diagnostic(draws)


# Held-out style bugs


def test_width_sweep_diagnosis_is_the_worst_seed_and_quantity():
    """``_diagnose`` (the ``rhat_*`` / ``ess_*`` of :func:`width_sweep`'s rows) against the
    diagnostics of each seed's chains computed one by one: the largest R-hat and the smallest
    effective sample size over seeds and quantities. Seed 0's two chains are white noise, seed
    1's are a slowly mixing AR(1) (a far smaller sample size), so the two ends differ."""
    from agop_book.ch07_other_accounts import Posterior, _diagnose

    g = torch.Generator().manual_seed(0)
    S, chains, n, P = 4, 2, 40, 3
    noise = torch.randn(S, n, P, generator=g, dtype=torch.float64)
    trace = noise.clone()
    for t in range(1, n):  # seed 1 = chains 2 and 3: x_t = 0.95 x_{t-1} + e_t
        trace[2:, t] = 0.95 * trace[2:, t - 1] + noise[2:, t]
    test = torch.randn(S, n, 2, generator=g, dtype=torch.float64)
    post = Posterior(
        test_mean=torch.zeros(S, 2, dtype=torch.float64),
        Q=trace.mean(1),
        kernel=torch.zeros(S, 1, 1, dtype=torch.float64),
        train_loss=torch.zeros(S, dtype=torch.float64),
        n_samples=n,
        Q_trace=trace,
        test_trace=test,
    )
    out = _diagnose(post, chains)
    for key, x in (("Q", trace), ("test", test)):
        per_seed = [x[s : s + chains] for s in range(0, S, chains)]
        rhat = max(float(split_rhat(d).max()) for d in per_seed)
        ess = [float(effective_sample_size(d).min()) for d in per_seed]
        assert out[f"rhat_{key}"] == pytest.approx(rhat, rel=1e-12)
        assert out[f"ess_{key}"] == pytest.approx(min(ess), rel=1e-12)
    ess_Q = [float(effective_sample_size(trace[s : s + 2]).min()) for s in (0, 2)]
    assert ess_Q[1] < ess_Q[0] / 3  # the slow seed sets the reported size


# Mutation testing (`python tools/mutation.py other_accounts`, CONTRIBUTING.md): the
# diagnostics compute in float64 whatever the draws' dtype, and do not depend on their units.


def test_diagnostics_compute_in_float64_and_ignore_the_units():
    """float32 and integer draws are exact in float64: the same answer as float64 draws, to
    the last bit. Rescaling (by 1e-3 too: a variance below 1) and shifting change nothing."""
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(3, 200, generator=g, dtype=torch.float64)
    ar = noise.clone()
    for t in range(1, 200):
        ar[:, t] = 0.6 * ar[:, t - 1] + noise[:, t]
    draws = (ar * 64).round()  # integers, exact in float32 and int64
    rhat, ess = split_rhat(draws), effective_sample_size(draws)
    assert float(ess) < 0.6 * 600  # correlated: well below the count
    for same in (draws.float(), draws.long()):
        assert torch.equal(split_rhat(same), rhat)
        assert torch.equal(effective_sample_size(same), ess)
    for scaled in (draws * 1e-3, draws / 64 + 5.0):
        assert float(split_rhat(scaled)) == pytest.approx(float(rhat), rel=1e-12)
        assert float(effective_sample_size(scaled)) == pytest.approx(float(ess), rel=1e-12)
