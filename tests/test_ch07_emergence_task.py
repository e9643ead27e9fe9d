"""The translation-invariant data model (same covariance at every gain) and the IPR."""

from __future__ import annotations

import math

import pytest
import torch

from agop_book.ch07_other_accounts import (
    emergence_task,
    ipr,
    nonlinear_gaussian_process,
    ring_distance,
)


def sigma(D: int, xi: float, dim: int = 1) -> torch.Tensor:
    """Sigma_ij = exp(-d(i, j)/xi), built site by site (independent of the FFT path)."""
    sites = [(i,) for i in range(D)] if dim == 1 else [(i, j) for i in range(D) for j in range(D)]
    out = torch.empty(len(sites), len(sites), dtype=torch.float64)
    for a, s in enumerate(sites):
        for b, t in enumerate(sites):
            d2 = sum(min(abs(u - v), D - abs(u - v)) ** 2 for u, v in zip(s, t, strict=True))
            out[a, b] = math.exp(-math.sqrt(d2) / xi)
    return out


@pytest.mark.parametrize("gain", [0.0, 0.5, 3.0, 30.0])
def test_covariance_is_the_same_at_every_gain(gain):
    D, xi, n = 16, 2.0, 200_000
    X = nonlinear_gaussian_process(n, D, xi=xi, gain=gain, seed=1, dtype=torch.float64)
    emp = X.T @ X / n
    # Monte Carlo: entries of a sample covariance of unit-variance data err by ~1/sqrt(n)
    assert (emp - sigma(D, xi)).abs().max() < 6 / math.sqrt(n) * 2
    assert X.mean(0).abs().max() < 6 / math.sqrt(n) * 3


def test_covariance_on_the_torus():
    D, xi, n = 6, 1.5, 100_000
    X = nonlinear_gaussian_process(n, D, xi=xi, gain=2.0, dim=2, seed=2, dtype=torch.float64)
    assert X.shape == (n, D, D)
    flat = X.reshape(n, -1)
    assert (flat.T @ flat / n - sigma(D, xi, dim=2)).abs().max() < 0.03


def excess_kurtosis(X: torch.Tensor) -> torch.Tensor:
    return (X**4).mean(0) / (X**2).mean(0) ** 2 - 3


def test_gain_sets_non_gaussianity_and_every_site_is_alike():
    """Gain 0 is Gaussian (excess kurtosis 0); a large gain approaches a sign field (-2).
    Translation invariance: every site has the same marginal, and shifting the sites leaves
    the two-site statistics unchanged."""
    n, D = 100_000, 12
    k0 = excess_kurtosis(nonlinear_gaussian_process(n, D, xi=2, gain=0, dtype=torch.float64))
    assert k0.abs().max() < 0.1
    X = nonlinear_gaussian_process(n, D, xi=2, gain=30, dtype=torch.float64)
    k = excess_kurtosis(X)
    assert (k + 2).abs().max() < 0.1, k
    k_mid = excess_kurtosis(nonlinear_gaussian_process(n, D, xi=2, gain=1, dtype=torch.float64))
    assert -1.9 < float(k_mid.mean()) < -0.1
    # a fourth-order two-site statistic, E[x_i^2 x_{i+1}^2], is the same at every i
    pair = (X**2 * X.roll(-1, dims=1) ** 2).mean(0)
    assert (pair - pair.mean()).abs().max() < 0.03


def test_seeded_and_task_balanced():
    a = nonlinear_gaussian_process(5, 8, xi=1, gain=2, seed=3)
    b = nonlinear_gaussian_process(5, 8, xi=1, gain=2, seed=3)
    assert torch.equal(a, b)
    assert not torch.equal(a, nonlinear_gaussian_process(5, 8, xi=1, gain=2, seed=4))
    X, y = emergence_task(101, 10, gain=1.0, xi=(1.0, 4.0), seed=0)
    assert X.shape == (101, 10) and int(y.sum()) == 50
    # the classes differ in correlation length: neighbours correlate more in class 1
    c = [(X[y == k] * X[y == k].roll(1, dims=1)).mean() for k in (0, 1)]
    assert math.exp(-1 / 1.0) - 0.1 < c[0] < math.exp(-1 / 1.0) + 0.1
    assert math.exp(-1 / 4.0) - 0.1 < c[1] < math.exp(-1 / 4.0) + 0.1


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="gain"):
        nonlinear_gaussian_process(4, 8, xi=1, gain=-1)
    with pytest.raises(ValueError, match="xi"):
        nonlinear_gaussian_process(4, 8, xi=0, gain=1)
    with pytest.raises(ValueError, match="dim"):
        nonlinear_gaussian_process(4, 8, xi=1, gain=1, dim=3)
    with pytest.raises(ValueError, match="latent covariance"):
        nonlinear_gaussian_process(4, 20, xi=20, gain=100)


def test_ring_distance():
    assert ring_distance(5).tolist() == [0, 1, 2, 2, 1]


def test_ipr_on_planted_vectors():
    D = 50
    one_site = torch.zeros(D)
    one_site[7] = -3.0
    assert float(ipr(one_site)) == pytest.approx(1.0)
    assert float(ipr(torch.ones(D))) == pytest.approx(1 / D)
    m_sites = torch.zeros(D)
    m_sites[10:15] = 2.0
    assert float(ipr(m_sites)) == pytest.approx(1 / 5)
    # closed forms: a Gaussian bump exp(-x^2/4) has IPR = sum e^{-x^2} / (sum e^{-x^2/2})^2
    # = sqrt(pi) / (sqrt(2 pi))^2 = 1 / (2 sqrt(pi)), times (1 + 2 e^{-pi^2}) on the integer
    # lattice (Poisson summation); a whole-period cosine has 3 / (2 D)
    x = torch.arange(D, dtype=torch.float64)
    bump, wave = torch.exp(-((x - 20) ** 2) / 4), torch.cos(2 * math.pi * 3 * x / D)
    assert float(ipr(bump)) == pytest.approx(
        (1 + 2 * math.exp(-(math.pi**2))) / (2 * math.sqrt(math.pi)), rel=1e-7
    )
    assert float(ipr(wave)) == pytest.approx(3 / (2 * D), rel=1e-9)
    # i.i.d. Gaussian entries: about 3/D
    g = torch.randn(2000, 400, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert float(ipr(g).mean()) == pytest.approx(3 / 400, rel=0.05)


def test_ipr_invariances_and_batches():
    v = torch.randn(4, 30, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    base = ipr(v)
    assert torch.allclose(ipr(-7.5 * v), base)
    assert torch.allclose(ipr(v[:, torch.randperm(30)]), base)
    assert torch.allclose(ipr(v.T, dim=0), base)
    assert torch.allclose(ipr(1e-200 * v), base)  # no underflow
    with pytest.raises(ValueError, match="zero vector"):
        ipr(torch.zeros(3, 5))


# Mutation testing (`python tools/mutation.py other_accounts`, CONTRIBUTING.md): the task's
# seeds, sizes and dimensions, and the IPR's edge cases and argument names.


def test_emergence_task_defaults_seeds_and_the_torus():
    X, y = emergence_task(9, 6, gain=1.0)
    X0, y0 = emergence_task(9, 6, gain=1.0, xi=(1.0, 4.0), dim=1, seed=0, dtype=torch.float32)
    assert torch.equal(X, X0) and torch.equal(y, y0)
    # each class draws from its own seed: another seed changes both classes' inputs
    a, b = emergence_task(9, 6, gain=1.0, seed=1), emergence_task(9, 6, gain=1.0, seed=2)
    for k in (0, 1):
        assert not torch.equal(a[0][a[1] == k][0], b[0][b[1] == k][0])
    # the smallest task: one example per class
    X2, y2 = emergence_task(2, 6, gain=1.0)
    assert sorted(y2.tolist()) == [0, 1]
    # on the torus both classes are fields of D x D sites, every example its own
    Xt, yt = emergence_task(6, 5, gain=1.0, dim=2, seed=3)
    assert Xt.shape == (6, 5, 5) and sorted(yt.tolist()) == [0, 0, 0, 1, 1, 1]
    flat = Xt.reshape(6, 25)
    assert len({tuple(r.tolist()) for r in flat}) == 6
    assert all(len(set(r.tolist())) == 25 for r in flat)
    with pytest.raises(ValueError, match="^n must be an integer >= 2, got 1"):
        emergence_task(1, 6, gain=1.0)
    with pytest.raises(TypeError, match="^n must be an integer"):
        emergence_task(4.0, 6, gain=1.0)


def test_ipr_of_one_site_and_of_no_site():
    assert float(ipr(torch.tensor([3.0]))) == 1.0
    assert ipr(torch.tensor([[2.0], [-1.0]])).tolist() == [1.0, 1.0]
    for empty in (torch.tensor(2.0), torch.zeros(0), torch.zeros(3, 0)):
        with pytest.raises(ValueError, match="^v must have at least one site along dim="):
            ipr(empty)
    with pytest.raises(ValueError, match="^v contains 1 non-finite values"):
        ipr(torch.tensor([1.0, float("nan")]))
    with pytest.raises(TypeError, match="^v must be real"):
        ipr(torch.tensor([1.0, 2.0], dtype=torch.complex64))


def test_ring_distance_is_float64_site_by_site():
    for dim in (1, 2):
        d = ring_distance(5, dim)
        sites = (
            [(i,) for i in range(5)] if dim == 1 else [(i, j) for i in range(5) for j in range(5)]
        )
        loop = [math.sqrt(sum(min(u, 5 - u) ** 2 for u in s)) for s in sites]
        assert d.dtype == torch.float64 and d.flatten().tolist() == loop


def _field_reference(n, D, xi, gain, seed):
    """z = Sigma^{1/2} w with the symmetric root of the dense Sigma (no FFT), w the seeded
    float64 white noise; then x = erf(g z) / sqrt(2/pi asin(2g^2/(1+2g^2))) (gain > 0)."""
    w = torch.randn((n, D), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    a = 2 * gain**2 / (1 + 2 * gain**2)
    C = sigma(D, xi)
    if gain > 0:  # the latent covariance whose erf has covariance Sigma
        C = torch.sin(math.asin(a) * C) / a
    vals, vecs = torch.linalg.eigh(C)
    z = w @ (vecs * vals.clamp_min(0).sqrt()) @ vecs.T
    if gain == 0:
        return z
    return torch.erf(gain * z) / math.sqrt(2 / math.pi * math.asin(a))


@pytest.mark.parametrize("gain", [0.0, 1e-4, 0.7])
def test_field_is_the_dense_root_of_the_covariance_times_the_seeded_noise(gain):
    # gain = GAIN_GAUSSIAN = 1e-4 itself still takes the erf (x differs from z by ~1e-8)
    X = nonlinear_gaussian_process(3, 7, xi=1.5, gain=gain, seed=4, dtype=torch.float64)
    assert torch.allclose(X, _field_reference(3, 7, 1.5, gain, 4), rtol=0, atol=1e-12)
    if gain == 1e-4:
        z = nonlinear_gaussian_process(3, 7, xi=1.5, gain=0.0, seed=4, dtype=torch.float64)
        assert (X - z).abs().max() > 1e-10


def test_field_defaults_and_arguments_by_name():
    assert torch.equal(
        nonlinear_gaussian_process(2, 5, xi=1.0, gain=0.5),
        nonlinear_gaussian_process(2, 5, xi=1.0, gain=0.5, dim=1, seed=0, dtype=torch.float32),
    )
    assert nonlinear_gaussian_process(1, 2, xi=1.0, gain=0.5).shape == (1, 2)  # the smallest
    for kwargs, error, match in [
        (dict(n=0), ValueError, "^n must"),
        (dict(D=1), ValueError, "^D must"),
        (dict(dim=0), ValueError, "^dim must"),
        (dict(xi=0.0), ValueError, "^xi must"),
        (dict(gain=-1.0), ValueError, "^gain must"),
        (dict(dtype=None), TypeError, "^dtype must"),
    ]:
        args = dict(n=2, D=5, xi=1.0, gain=0.5) | kwargs
        with pytest.raises(error, match=match):
            nonlinear_gaussian_process(**args)
    with pytest.raises(ValueError, match=r"for gain=3\.0 and xi=20\.0 on this lattice"):
        nonlinear_gaussian_process(2, 8, xi=20.0, gain=3.0)


def test_circulant_root_tolerates_rounding_below_1e10_of_the_largest_eigenvalue():
    from agop_book.ch07_other_accounts import _circulant_sqrt_spectrum

    # a two-site row (r0, r1) has the eigenvalues r0 + r1 and r0 - r1
    root = _circulant_sqrt_spectrum(torch.tensor([50.0, 50.0 + 5e-9], dtype=torch.float64), 1, 2)
    assert torch.allclose(root, torch.tensor([10.0, 0.0], dtype=torch.float64), atol=1e-12)
    assert torch.equal(_circulant_sqrt_spectrum(torch.zeros(3, dtype=torch.float64), 1, 2),
                       torch.zeros(3, dtype=torch.float64))  # fmt: skip
    with pytest.raises(ValueError, match=r"^no Gaussian field .*\(smallest eigenvalue -5e-07\)"):
        _circulant_sqrt_spectrum(torch.tensor([50.0, 50.0 + 5e-7], dtype=torch.float64), 1, 2)


# Held-out style bugs, round 3


def test_the_two_classes_draw_independent_noise():
    """At gain 0 each class is ``Sigma_c^{1/2} w`` (``Sigma_c = exp(-d / xi_c)``): whitening
    each class with the dense root of its own covariance gives back its white noise, and the
    two classes' noises are independent draws (a shared seed would make them equal, row by
    row: correlation 1), each of unit variance."""
    X, y = emergence_task(400, 8, gain=0.0, xi=(1.0, 3.0), seed=2, dtype=torch.float64)
    noise = []
    for c, xi in enumerate((1.0, 3.0)):
        vals, vecs = torch.linalg.eigh(sigma(8, xi))
        noise.append(X[y == c] @ (vecs / vals.sqrt()) @ vecs.T)  # Sigma^{-1/2} x
    assert all(abs(float(w.var()) - 1) < 0.1 for w in noise)
    m = min(len(w) for w in noise)
    a, b = noise[0][:m].flatten(), noise[1][:m].flatten()
    assert abs(float(torch.corrcoef(torch.stack([a, b]))[0, 1])) < 0.1
