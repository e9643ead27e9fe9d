r"""Convergence diagnostics of Markov chains: split-:math:`\hat R` and the effective sample size.

Both take ``draws`` of shape ``(m, n, ...)``: ``m`` chains of ``n`` draws each, of any number of
scalar quantities (the trailing dimensions, diagnosed each on its own). Following Gelman et al.,
*Bayesian Data Analysis* (3rd ed., section 11.4-11.5), each chain is first split into its two
halves (a chain that drifts then disagrees with itself), giving :math:`2m` chains of
:math:`n' = \lfloor n/2 \rfloor` draws. With :math:`W` the mean of the within-chain variances
and :math:`B/n'` the variance of the chain means (both with ``ddof=1``),

.. math::

   \widehat{\operatorname{var}}^+ = \frac{n'-1}{n'} W + \frac{B}{n'}, \qquad
   \hat R = \sqrt{\widehat{\operatorname{var}}^+ / W},

and the effective sample size is :math:`2m n' / (1 + 2 \sum_{t \ge 1} \hat\rho_t)`, the
autocorrelations :math:`\hat\rho_t = 1 - (W - \overline{\gamma}_t) / \widehat{\operatorname{var}}^+`
(:math:`\overline{\gamma}_t` the within-chain autocovariance at lag :math:`t`, averaged over
chains) summed in pairs while each pair's sum stays positive and made monotone (Geyer's initial
monotone sequence). :math:`\hat R \le 1.05` (or 1.01 for a stricter reader) and an effective
sample size of at least a few hundred are the usual marks of chains worth concluding from.

Conventions for degenerate chains (never a NaN): quantities constant over every draw of every
chain have :math:`\hat R = 1` and the full sample size; chains each constant at different
values (:math:`W = 0 < B`) have :math:`\hat R = \infty` and an effective sample size of ``m``
(one value per chain, as if each chain were a single draw).
"""

from __future__ import annotations

import math

import torch

from agop._typing import ArrayLike
from agop.validation import all_finite


def _split_chains(draws: ArrayLike) -> torch.Tensor:
    """``(2m, n // 2, k)`` float64: each chain's two halves (the middle draw of an odd chain
    is dropped), quantities flattened into ``k``."""
    x = torch.as_tensor(draws).detach().to("cpu", torch.float64)
    if x.ndim < 2:
        raise ValueError(f"draws must be (chains, draws, ...), got shape {tuple(x.shape)}")
    m, n = x.shape[:2]
    if n < 4:
        raise ValueError(f"draws must hold at least 4 draws per chain, got {n}")
    if not all_finite(x):
        raise ValueError("draws contain NaN or infinity")
    x = x.reshape(m, n, -1)
    half = n // 2
    return torch.cat([x[:, :half], x[:, n - half :]])


def _variances(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(W, var_plus)`` of split chains ``x`` ``(M, n, k)``."""
    n = x.shape[1]
    W = x.var(dim=1, unbiased=True).mean(0)
    B_over_n = x.mean(1).var(dim=0, unbiased=True)
    return W, (n - 1) / n * W + B_over_n


def split_rhat(draws: ArrayLike) -> torch.Tensor:
    r"""Split-:math:`\hat R` of each quantity of ``draws`` ``(m, n, ...)``; shape ``draws.shape[2:]``.

    Examples:
        Chains of independent draws from one distribution agree (:math:`\hat R \approx 1`);
        chains stuck at different values do not:

        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> mixed = torch.randn(4, 1000, generator=g, dtype=torch.float64)
        >>> bool(abs(split_rhat(mixed) - 1) < 0.01)
        True
        >>> stuck = mixed * 0.1 + torch.tensor([0.0, 0.0, 3.0, 3.0]).unsqueeze(1)
        >>> bool(split_rhat(stuck) > 5)
        True
    """
    x = _split_chains(draws)
    W, var_plus = _variances(x)
    # 0/0 (constant everywhere) -> 1; b/0 with b > 0 (each chain constant) -> inf
    rhat = torch.where(W > 0, (var_plus / W.clamp_min(1e-300)).sqrt(), torch.inf)
    rhat = torch.where(var_plus > 0, rhat, 1.0)
    return rhat.reshape(torch.as_tensor(draws).shape[2:])


def effective_sample_size(draws: ArrayLike) -> torch.Tensor:
    r"""Effective sample size of each quantity of ``draws`` ``(m, n, ...)``; shape
    ``draws.shape[2:]``.

    Examples:
        Independent draws count fully; an AR(1) chain with coefficient :math:`\rho` counts
        about :math:`(1 - \rho)/(1 + \rho)` of its draws:

        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> noise = torch.randn(4, 4000, generator=g, dtype=torch.float64)
        >>> round(effective_sample_size(noise).item() / 16000, 1)
        1.0
        >>> ar = noise.clone()
        >>> for t in range(1, 4000):
        ...     ar[:, t] = 0.5 * ar[:, t - 1] + noise[:, t]
        >>> share = effective_sample_size(ar).item() / 16000  # (1 - 0.5) / (1 + 0.5) = 0.33
        >>> bool(0.29 < share < 0.37)
        True
    """
    x = _split_chains(draws)
    M, n, _ = x.shape
    W, var_plus = _variances(x)
    centred = x - x.mean(1, keepdim=True)
    # within-chain autocovariances at every lag through the FFT (biased, as in BDA3)
    spectrum = torch.fft.rfft(centred, n=2 * n, dim=1)
    acov = torch.fft.irfft(spectrum.abs() ** 2, n=2 * n, dim=1)[:, :n] / n
    gamma = acov.mean(0)  # (n, k), averaged over chains
    safe = torch.where(var_plus > 0, var_plus, 1.0)
    rho = 1 - (W - gamma) / safe
    rho[0] = 1.0
    # Geyer: pair sums P_t = rho_2t + rho_2t+1, kept while positive, made non-increasing
    pairs = rho[: 2 * (n // 2)].reshape(n // 2, 2, -1).sum(1)
    positive = torch.cumprod((pairs > 0).to(pairs.dtype), dim=0)
    monotone = torch.cummin(torch.where(positive > 0, pairs, 0.0), dim=0).values
    tau = -1 + 2 * (monotone * positive).sum(0)  # 1 + 2 sum_{t>=1} rho_t
    # anticorrelated chains can count more than their draws; capped, as Stan does
    ess = M * n / tau.clamp_min(1 / math.log10(M * n))
    # degenerate chains: constant everywhere -> the full count; each constant -> one per chain
    ess = torch.where(var_plus > 0, ess, float(M * n))
    ess = torch.where((W == 0) & (var_plus > 0), float(M // 2), ess)
    return ess.reshape(torch.as_tensor(draws).shape[2:])
