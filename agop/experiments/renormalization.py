r"""Local versus global kernel renormalization in Bayesian one-hidden-layer networks.

Aiudi et al. (2025) study the Bayesian posterior of one-hidden-layer networks in the
proportional limit (width :math:`N` and training-set size :math:`n` large, :math:`n/N` fixed).
The setting used here, with a Gaussian prior :math:`\mathcal N(0, 1)` on every weight and the
energy

.. math::

   U(\theta) = \frac{1}{2T} \sum_{\mu=1}^{n} (y_\mu - f(x_\mu))^2 + \frac12 \|\theta\|^2,
   \qquad p(\theta \mid \mathcal D) \propto e^{-U(\theta)},

at temperature :math:`T`, for two networks on images ``(c, H, W)``:

* the **CNN**: one ``k x k`` VALID convolution of :math:`N` filters shared over the :math:`P`
  patch positions, and a linear read-out with its own weight per position and filter,
  :math:`f(x) = \frac{1}{\sqrt{NP}} \sum_{i=1}^{P} \sum_{c=1}^{N} v_{ci}\,
  \phi(w_c \cdot x_i / \sqrt q)`, :math:`x_i \in \mathbb R^q` the patch at position :math:`i`;
* the **FC network**: :math:`f(x) = \frac{1}{\sqrt N} \sum_c v_c\, \phi(w_c \cdot x / \sqrt d)`
  (the CNN's formula with one "patch", the whole image);

with :math:`\phi(u) = \sqrt2\, \max(u, 0)`. At infinite width both are Gaussian processes with
the NNGP kernels :math:`K_{\rm CNN} = \frac1P \sum_i \kappa(x_i, x'_i)` (a *local* kernel with
uniform weights) and :math:`K_{\rm FC} = \kappa(x, x')`, where :math:`\kappa` is the ReLU
arc-cosine kernel (:func:`nngp_components`), and the posterior mean is GP regression with
noise :math:`T` (:func:`gp_posterior_mean`). At finite width the theory's effective kernel is
renormalized by the read-out's overlaps: :math:`Q = \frac1N \sum_c v_c^2` multiplies the whole
FC kernel (*global*), while the CNN's kernel gets one weight per position,
:math:`K_{\rm eff} = \frac1P \sum_i Q_i\, \kappa(x_i, x'_i)`,
:math:`Q_i = \frac1N \sum_c v_{ci}^2` (*local*; the theory also has off-diagonal
:math:`Q_{ij}` coupling positions, which this module does not fit). Under the prior every
:math:`Q` is 1.

Sampling is Langevin dynamics (:func:`langevin`), all chains of a width at once; the
measurements are :func:`sample_posterior`'s ``Q`` (posterior mean of :math:`Q_i` from the read-out)
and :func:`fit_position_weights` (non-negative per-position coefficients of an empirical
kernel). The task is chapter 6's bars, confined to a band of rows (:func:`band_task`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np
import torch
from scipy.optimize import nnls

from agop._typing import ArrayLike
from agop.data import bars_in_noise
from agop.experiments.convergence import effective_sample_size, split_rhat
from agop.experiments.local_signals import evaluate_methods
from agop.patches import extract_patches
from agop.runtime import default_device
from agop.solve import ridge
from agop.validation import (
    as_tensor,
    check_finite,
    check_images,
    check_int,
    check_real,
    check_seed,
)


def band_task(
    n: int,
    sigma: float,
    *,
    height: int = 8,
    width: int = 8,
    band: Sequence[int] = (0, 1),
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Chapter 6's bars (:func:`agop.data.bars_in_noise`) confined to the rows ``band``.

    Images ``(n, 1, height, width)``: i.i.d. Gaussian noise of variance ``sigma`` everywhere,
    except one row of ``band``, chosen at random, which holds :math:`\pm 1` (the sign is the
    label ``y`` in ``{0, 1}``, ``s = 2y - 1``). Only patches that overlap ``band`` carry the
    label. The band rows are ``bars_in_noise(n, sigma, height=len(band), width=width)``
    rescaled by :math:`\sqrt{\mathrm{width}}`.

    Examples:
        >>> X, y = band_task(4, 0.0, band=(2,))
        >>> tuple(X.shape), X[:, 0, 2, 0].tolist() == (2.0 * y - 1).tolist()
        ((4, 1, 8, 8), True)
        >>> float(X[:, 0, [0, 1, 3, 4, 5, 6, 7]].abs().sum())  # no noise: nothing off the band
        0.0
    """

    height = check_int(height, "height", minimum=1)
    seed = check_seed(seed)
    band = [check_int(r, f"band[{i}]") for i, r in enumerate(band)]
    if not band or len(set(band)) != len(band) or min(band) < 0 or max(band) >= height:
        raise ValueError(f"band must hold distinct rows in [0, {height}), got {band!r}")
    bars, y = bars_in_noise(
        n, sigma, height=len(band), width=width, seed=seed, device="cpu", dtype=torch.float64
    )
    g = torch.Generator().manual_seed(seed + 7919)
    X = torch.randn(n, 1, height, width, generator=g, dtype=torch.float64) * math.sqrt(sigma)
    X[:, :, band] = bars * math.sqrt(width)
    return X.to(dtype), y


# --------------------------------------------------------------------------------------------
# kernels
# --------------------------------------------------------------------------------------------


def _patches(X: torch.Tensor, patch_size: int | None) -> torch.Tensor:
    """``(n, P, q)`` patches; ``patch_size=None``: the whole image as one patch."""
    X = check_images(X, "X")
    if patch_size is None:
        return X.flatten(1)[:, None, :]
    return extract_patches(X, int(patch_size))


def nngp_components(
    X: torch.Tensor, Z: torch.Tensor | None = None, patch_size: int | None = 3
) -> torch.Tensor:
    r"""The ReLU NNGP of each patch position, :math:`\kappa(x_i, z_i)`: ``(P, n, m)``.

    With :math:`S = x_i \cdot z_i / q` and :math:`S_x, S_z` the same for :math:`(x_i, x_i)`,
    :math:`(z_i, z_i)`, :math:`\cos\theta = S / \sqrt{S_x S_z}`:

    .. math::

       \kappa(x_i, z_i) = \mathbb E_{w \sim \mathcal N(0, I)}\, \phi(w \cdot x_i/\sqrt q)\,
       \phi(w \cdot z_i/\sqrt q) = \frac{\sqrt{S_x S_z}}{\pi}
       \big(\sin\theta + (\pi - \theta)\cos\theta\big), \qquad \phi = \sqrt2\,\mathrm{ReLU}.

    ``patch_size=None`` treats the whole image as one patch (the FC network's kernel). The
    mean over positions is the one-hidden-layer CNN's NNGP.

    Examples:
        >>> import torch
        >>> X = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]], [[[0.0, 1.0], [0.0, 0.0]]]],
        ...                  dtype=torch.float64)
        >>> K = nngp_components(X, patch_size=None)[0]  # orthogonal inputs: theta = pi / 2
        >>> [round(v, 4) for v in K.flatten().tolist()]  # S_x = 1/4; 1/(4 pi) off the diagonal
        [0.25, 0.0796, 0.0796, 0.25]
    """
    U = _patches(X, patch_size).transpose(0, 1)  # (P, n, q)
    V = U if Z is None else _patches(Z, patch_size).transpose(0, 1)
    q = U.shape[-1]
    S = torch.bmm(U, V.transpose(1, 2)) / q
    nx = (U * U).sum(-1).div(q).sqrt()
    nz = (V * V).sum(-1).div(q).sqrt()
    norms = nx[:, :, None] * nz[:, None, :]
    cos = torch.where(norms > 0, S / norms.clamp_min(1e-300), torch.zeros_like(S)).clamp(-1, 1)
    theta = torch.arccos(cos)
    return norms / math.pi * (torch.sin(theta) + (math.pi - theta) * cos)


def gp_posterior_mean(
    K_train: torch.Tensor, K_test_train: torch.Tensor, y: ArrayLike, temperature: float
) -> torch.Tensor:
    r"""GP regression's posterior mean :math:`K_{*}(K + T I)^{-1} y` (:func:`agop.solve.ridge`):
    the infinite-width limit of the Bayesian network's posterior-mean predictor.

    Examples:
        >>> import torch
        >>> K = torch.eye(2, dtype=torch.float64)
        >>> gp_posterior_mean(K, K, torch.tensor([1.0, -1.0], dtype=torch.float64), 1.0).tolist()
        [0.5, -0.5]
    """

    return K_test_train @ ridge(
        K_train,
        torch.as_tensor(y, dtype=K_train.dtype),
        check_real(temperature, "temperature", minimum=0),
    )


def local_kernel(components: torch.Tensor, weights: ArrayLike) -> torch.Tensor:
    r""":math:`\frac1P \sum_i Q_i K_i` from components ``(P, n, m)`` and weights ``(P,)``.

    Examples:
        >>> import torch
        >>> local_kernel(torch.ones(2, 1, 1), torch.tensor([1.0, 3.0])).item()
        2.0
    """
    weights = torch.as_tensor(weights, dtype=components.dtype)
    if weights.shape != components.shape[:1]:
        raise ValueError(
            f"weights must have shape ({components.shape[0]},), one per position, "
            f"got {tuple(weights.shape)}"
        )
    return torch.einsum("p,pnm->nm", weights, components) / components.shape[0]


def fit_position_weights(K: ArrayLike, components: ArrayLike) -> np.ndarray:
    r"""Non-negative :math:`Q` minimising :math:`\|K - \frac1P \sum_i Q_i K_i\|_F` over the
    pairs :math:`(a \le b)` of a symmetric ``K`` ``(n, n)`` (non-negative least squares,
    :func:`scipy.optimize.nnls`); ``components`` ``(P, n, n)``.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> A = torch.randn(3, 5, 5, generator=g, dtype=torch.float64)
        >>> comps = A @ A.transpose(1, 2)
        >>> fit_position_weights(local_kernel(comps, [2.0, 0.0, 1.0]), comps).round(6).tolist()
        [2.0, 0.0, 1.0]
    """

    K = torch.as_tensor(K).double()
    components = torch.as_tensor(components).double()
    n = K.shape[0]
    if K.shape != (n, n) or components.ndim != 3 or components.shape[1:] != (n, n):
        raise ValueError(
            f"K must be (n, n) and components (P, n, n); got {tuple(K.shape)} "
            f"and {tuple(components.shape)}"
        )
    rows, cols = torch.triu_indices(n, n)
    A = (components[:, rows, cols] / components.shape[0]).T.numpy()
    Q, _ = nnls(A, K[rows, cols].numpy())
    return Q


# --------------------------------------------------------------------------------------------
# networks and Langevin dynamics
# --------------------------------------------------------------------------------------------


def network_output(W: torch.Tensor, V: torch.Tensor, U: torch.Tensor) -> torch.Tensor:
    r"""Outputs ``(S, n)`` of ``S`` one-hidden-layer networks on their patches ``U``
    ``(S, n, P, q)``: :math:`f(x) = \frac{1}{\sqrt{NP}} \sum_{i, c} v_{ci}\,
    \phi(w_c \cdot x_i / \sqrt q)`, ``W`` ``(S, N, q)``, ``V`` ``(S, P, N)``,
    :math:`\phi = \sqrt2\,\mathrm{ReLU}`. With ``P = 1`` and ``q = d`` it is the FC network.

    Examples:
        >>> import torch
        >>> W, V = torch.ones(1, 1, 4), torch.tensor([[[1.0], [-1.0]]])
        >>> U = torch.tensor([[[[1.0, 1, 1, 1], [2.0, 2, 2, 2]]]])  # 1 image, 2 patches
        >>> network_output(W, V, U)  # sqrt(2) (2 - 4) / sqrt(2)
        tensor([[-2.]])
    """
    S, n, P, _ = U.shape
    phi = _hidden(W, U)  # (S, n, P, N)
    out = torch.bmm(phi.reshape(S, n, -1), V.reshape(S, -1, 1))[..., 0]
    return out / math.sqrt(W.shape[1] * P)


def _hidden(W: torch.Tensor, U: torch.Tensor) -> torch.Tensor:
    r""":math:`\phi(w_c \cdot x_i / \sqrt q)` ``(S, n, P, N)`` by one batched product."""
    S, n, P, q = U.shape
    h = torch.bmm(U.reshape(S, n * P, q), W.transpose(1, 2)).mul(1 / math.sqrt(q))
    return torch.relu(h).mul(math.sqrt(2.0)).reshape(S, n, P, -1)


def langevin(
    energy: Callable[..., torch.Tensor],
    params: Sequence[torch.Tensor],
    *,
    n_steps: int,
    step_size: float,
    generator: torch.Generator | Sequence[torch.Generator] | None = None,
    callback: Callable[[int, Sequence[torch.Tensor]], None] | None = None,
) -> list[torch.Tensor]:
    r"""Unadjusted Langevin dynamics on ``energy(*params)`` (one energy per chain, summed for
    the gradient, so chains stacked along any axis stay independent):

    .. math::

       \theta_{t+1} = \theta_t - \eta \nabla U(\theta_t) + \sqrt{2\eta}\,\xi_t,
       \qquad \xi_t \sim \mathcal N(0, I),

    which samples :math:`e^{-U}` up to an :math:`O(\eta)` bias. ``callback(t, params)`` is called
    after every step ``t`` (0-based). ``generator`` must live on the parameters' device; a
    sequence of ``S`` generators draws the noise of chain ``s`` (index ``s`` of every
    parameter's leading axis) from the ``s``-th, so that a chain's path does not depend on
    the chains stacked with it. Returns the final parameters (new tensors).

    Examples:
        Two chains on :math:`U = \theta^2 / 2` forget their start (a standard normal):

        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> theta, = langevin(lambda t: (t ** 2).sum(-1) / 2, [torch.full((2, 1000), 5.0,
        ...                   dtype=torch.float64)], n_steps=400, step_size=0.05, generator=g)
        >>> [round(float(v), 1) for v in theta.std(1)], abs(float(theta.mean())) < 0.1
        ([1.0, 1.0], True)
    """
    check_int(n_steps, "n_steps", minimum=0)
    eta = check_real(step_size, "step_size", minimum=0, strict_minimum=True)
    params = [p.detach().clone().requires_grad_(True) for p in params]
    noise_scale = math.sqrt(2 * eta)
    per_chain = generator is not None and not isinstance(generator, torch.Generator)
    if per_chain:
        generators = list(cast(Sequence[torch.Generator], generator))
        if any(p.ndim == 0 or p.shape[0] != len(generators) for p in params):
            raise ValueError(
                f"a sequence of {len(generators)} generators needs every parameter to stack "
                f"{len(generators)} chains along its first axis, got shapes "
                f"{[tuple(p.shape) for p in params]}"
            )

    def noise(p: torch.Tensor) -> torch.Tensor:
        if not per_chain:
            return torch.randn(
                p.shape, generator=cast(torch.Generator | None, generator), dtype=p.dtype,
                device=p.device,
            )  # fmt: skip
        return torch.stack(
            [torch.randn(p.shape[1:], generator=g, dtype=p.dtype, device=p.device)
             for g in generators]
        )  # fmt: skip

    for t in range(int(n_steps)):
        grads = torch.autograd.grad(energy(*params).sum(), params)
        with torch.no_grad():
            for p, g in zip(params, grads, strict=True):
                p.add_(g, alpha=-eta)
                p.add_(noise(p), alpha=noise_scale)
        if callback is not None:
            callback(t, params)
    return [p.detach() for p in params]


@dataclasses.dataclass
class Posterior:
    """What :func:`sample_posterior` returns (``S`` chains, one per data set).

    ``test_mean`` ``(S, n_test)``: the posterior-mean output on the test images; ``Q``
    ``(S, P)``: the posterior mean of :math:`Q_i = \\frac1N \\sum_c v_{ci}^2`; ``kernel``
    ``(S, n, n)``: the posterior mean of the empirical kernel
    :math:`\\frac1N \\sum_c g_c(x) g_c(x')`, :math:`g_c(x) = \\frac{1}{\\sqrt P} \\sum_i v_{ci}
    \\phi(w_c \\cdot x_i/\\sqrt q)` on the training images (its prior mean is the NNGP);
    ``train_loss`` ``(S,)``: the mean squared error on the training set, averaged over the
    samples; ``n_samples``: how many samples were averaged. The traces, one value per sample
    (for the convergence diagnostics of :mod:`agop.experiments.convergence`): ``Q_trace``
    ``(S, n_samples, P)`` and ``test_trace`` ``(S, n_samples, k)``, the outputs on the first
    ``k = min(100, n_test)`` test images.

    See :func:`sample_posterior` for an example.
    """

    test_mean: torch.Tensor
    Q: torch.Tensor
    kernel: torch.Tensor
    train_loss: torch.Tensor
    n_samples: int
    Q_trace: torch.Tensor
    test_trace: torch.Tensor


def sample_posterior(
    X: ArrayLike,
    y: ArrayLike,
    X_test: ArrayLike,
    *,
    width: int,
    patch_size: int | None,
    temperature: float,
    n_steps: int,
    step_size: float,
    burn_in: int,
    every: int = 10,
    seed: int | Sequence[int] = 0,
    init_scale: float = 1.0,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device | None = "cpu",
) -> Posterior:
    r"""Langevin samples of the CNN (``patch_size`` an int) or FC network (``patch_size=None``)
    posterior at temperature :math:`T`, one chain per data set, all chains at once.

    ``X`` ``(S, n, c, H, W)`` and ``y`` ``(S, n)`` in ``{0, 1}`` (the target is
    :math:`2y - 1`), ``X_test`` ``(S, m, c, H, W)``. Chains start from a draw of the prior
    times ``init_scale`` (above 1: over-dispersed starts, so that chains that have not
    forgotten their start disagree, which split-:math:`\hat R` detects); after ``burn_in`` steps every ``every``-th step is a sample. Sampling runs in ``dtype``
    (float32 is about twice as fast on a CPU) on ``device`` (None: CUDA when available); the
    averages are kept in float64 on the CPU. ``seed``: one seed for all chains, or ``S`` seeds,
    one per chain, which then draws its start and its noise from its own generators (a chain
    is the same whichever chains are stacked with it).

    Examples:
        >>> import torch
        >>> X, y = band_task(20, 0.5, seed=0)
        >>> post = sample_posterior(X[None], y[None], X[None], width=8, patch_size=3,
        ...                         temperature=0.1, n_steps=40, step_size=1e-3, burn_in=20)
        >>> tuple(post.Q.shape), tuple(post.kernel.shape), post.n_samples
        ((1, 36), (1, 20, 20), 2)
    """
    check_int(width, "width", minimum=1)
    T = check_real(temperature, "temperature", minimum=0, strict_minimum=True)
    check_int(burn_in, "burn_in", minimum=0)
    check_int(every, "every", minimum=1)
    init_scale = check_real(init_scale, "init_scale", minimum=0, strict_minimum=True)

    device = default_device(device)
    X = torch.as_tensor(X, dtype=dtype).to(device)
    X_test = torch.as_tensor(X_test, dtype=dtype).to(device)
    if X.ndim != 5 or X_test.ndim != 5:
        raise ValueError(
            "X and X_test must be (S, n, c, H, W): one stack of images per chain, "
            f"got shapes {tuple(X.shape)} and {tuple(X_test.shape)}"
        )
    S, n = X.shape[:2]
    target = 2.0 * torch.as_tensor(y, dtype=dtype).to(device) - 1
    if target.shape != (S, n):
        raise ValueError(f"y must have shape {(S, n)}, got {tuple(target.shape)}")
    U = torch.stack([_patches(x, patch_size) for x in X])
    U_test = torch.stack([_patches(x, patch_size) for x in X_test])
    P, q = U.shape[2], U.shape[3]
    noise: torch.Generator | list[torch.Generator]
    if not isinstance(seed, Sequence):
        seed = check_seed(seed)
        g = torch.Generator().manual_seed(seed)
        W0 = torch.randn(S, width, q, generator=g, dtype=dtype).to(device)
        V0 = torch.randn(S, P, width, generator=g, dtype=dtype).to(device)
        noise = torch.Generator(device=device).manual_seed(seed + 1)
    else:
        seeds = [check_seed(s, "seed[s]") for s in seed]
        if len(seeds) != S:
            raise ValueError(f"seed must be an int or {S} ints (one per chain), got {len(seeds)}")
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        W0 = torch.stack([torch.randn(width, q, generator=g, dtype=dtype) for g in gens])
        V0 = torch.stack([torch.randn(P, width, generator=g, dtype=dtype) for g in gens])
        W0, V0 = W0.to(device), V0.to(device)
        noise = [torch.Generator(device=device).manual_seed(s + 1) for s in seeds]
    W0, V0 = W0 * init_scale, V0 * init_scale
    n_trace = min(100, U_test.shape[1])

    def energy(W, V):
        residual = target - network_output(W, V, U)
        return (residual**2).sum(-1) / (2 * T) + ((W**2).sum((1, 2)) + (V**2).sum((1, 2))) / 2

    acc: dict[str, Any] = {
        "test": torch.zeros(S, U_test.shape[1], dtype=torch.float64),
        "Q": torch.zeros(S, P, dtype=torch.float64),
        "K": torch.zeros(S, n, n, dtype=torch.float64),
        "loss": torch.zeros(S, dtype=torch.float64),
        "count": 0,
        "Q_trace": [],
        "test_trace": [],
    }

    def record(t, params):
        if t < burn_in or (t - burn_in) % every:
            return
        with torch.no_grad():
            W, V = params
            out = network_output(W, V, U_test).double().cpu()
            Q = (V**2).mean(-1).double().cpu()
            acc["test"] += out
            acc["Q"] += Q
            acc["Q_trace"].append(Q.float())
            acc["test_trace"].append(out[:, :n_trace].float())
            G = (_hidden(W, U) * V[:, None]).sum(2).double() / math.sqrt(P)  # g_c(x)
            acc["K"] += (G @ G.transpose(1, 2)).cpu() / width
            acc["loss"] += ((target - network_output(W, V, U)) ** 2).mean(-1).double().cpu()
            acc["count"] += 1

    langevin(
        energy, [W0, V0], n_steps=n_steps, step_size=step_size, generator=noise, callback=record
    )
    m = acc["count"]
    if m == 0:
        raise ValueError(f"no samples: burn_in={burn_in} must be below n_steps={n_steps}")
    return Posterior(
        acc["test"] / m,
        acc["Q"] / m,
        acc["K"] / m,
        acc["loss"] / m,
        m,
        torch.stack(acc["Q_trace"], 1),
        torch.stack(acc["test_trace"], 1),
    )


def accuracy(output: ArrayLike, y: ArrayLike) -> float:
    """Share of signs of ``output`` that match ``2 y - 1`` (labels ``y`` in ``{0, 1}``).

    ``output`` and ``y`` hold one value per example: shape ``(n,)``, or ``(n, 1)`` (a column,
    flattened). Any other pair of shapes raises ``ValueError`` (``(n, 1)`` against ``(n,)``
    would otherwise broadcast to an ``n x n`` comparison).

    Examples:
        >>> accuracy([0.3, -2.0, 1.0], [1, 0, 0])
        0.6666666666666666
        >>> accuracy([[0.3], [-2.0]], [1, 0])  # a column of outputs
        1.0
    """
    output, y = as_tensor(output, "output"), as_tensor(y, "y")

    def flat(t: torch.Tensor, name: str) -> torch.Tensor:
        if t.ndim == 2 and t.shape[1] == 1:
            t = t[:, 0]
        if t.ndim != 1:
            raise ValueError(
                f"{name} must hold one value per example, shape (n,) or (n, 1), "
                f"got shape {tuple(t.shape)}"
            )
        return t

    output, y = flat(output, "output"), flat(y, "y")
    if output.shape != y.shape or not len(y):
        raise ValueError(
            f"output and y must hold the same, non-zero number of examples, got "
            f"{output.shape[0]} and {y.shape[0]}"
        )
    check_finite(output, "output")
    if not bool(((y == 0) | (y == 1)).all()):
        raise ValueError(
            f"y must hold labels in {{0, 1}}, got values {torch.unique(y)[:5].tolist()}"
        )
    return float(((output > 0) == (y > 0)).double().mean())


# --------------------------------------------------------------------------------------------
# the experiment of the book's section: accuracy against width, and the measured Q
# --------------------------------------------------------------------------------------------

KERNEL_METHODS = ("NNGP local (uniform Q)", "NNGP FC", "local, band only", "local, measured Q")


def width_sweep(
    widths: Sequence[int],
    seeds: Sequence[int],
    *,
    n_train: int,
    n_test: int,
    sigma: float,
    temperature: float,
    n_steps: int,
    step_size: float,
    patch_size: int = 3,
    task: dict | None = None,
    every: int = 10,
    chains: int = 1,
    init_scale: float = 1.0,
    rfm: bool = True,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device | None = "cpu",
) -> dict:
    r"""CNN and FC posteriors (:func:`sample_posterior`) at every width on :func:`band_task`,
    the infinite-width GPs, and ConvRFM / Deep ConvRFM (:func:`agop.experiments.local_signals.evaluate_methods`).

    Each seed's inputs are divided by the standard deviation of its training images (one
    factor, test images alike). Each seed's posterior is sampled by ``chains`` independent
    chains (chain ``c`` of seed ``s`` at width ``N`` seeded from ``(N, s, c)``), pooled: a
    seed's rows do not depend on the other seeds swept with it. Per
    seed: the local NNGP (uniform :math:`Q`), the FC NNGP, and the local kernel with
    the CNN's measured :math:`Q_i` at each width, and the oracle local kernel with
    :math:`Q_i = 1` on the positions whose patch overlaps the band, 0 elsewhere (``"local,
    band only"``), all as GP posterior means with noise ``T``;
    with ``rfm``, the CNTK (ConvRFM's iterate 0), ConvRFM (CNTK of depth 1, like the CNN) and
    Deep ConvRFM (depth 2, two layers), each selecting its ridge on a validation fifth of the
    training images. The networks are sampled on ``device`` (None: CUDA when available), the
    kernels on the CPU. Returns ``rows`` (``method``, ``width`` (None for kernels), ``seed``,
    ``accuracy``), ``Q`` (width -> ``(seeds, P)`` read-out :math:`Q_i`), ``Q_fit`` (the same
    from :func:`fit_position_weights` on the empirical kernel), ``Q_fc`` and ``Q_fc_fit``
    (width -> ``(seeds,)``), ``grid`` (the ``(rows, cols)`` of patch positions),
    ``band_positions`` (``(P,)`` bool: the positions that see the band), ``M``
    (seed -> ConvRFM's ``M``), ``test_mean`` (width -> ``{"CNN": (seeds, n_test), "FC": ...}``,
    the networks' posterior-mean outputs), ``gp_mean`` (``{"NNGP local (uniform Q)": (seeds,
    n_test), "NNGP FC": ...}``, their infinite-width limits') and ``convergence``: one dict per
    network and width with the largest split-:math:`\hat R` and the smallest effective sample
    size (:mod:`agop.experiments.convergence`, the ``chains`` chains of a seed, over all seeds)
    of the :math:`Q_i` (``rhat_Q``, ``ess_Q``) and of the outputs on the first 100 test images
    (``rhat_test``, ``ess_test``); chains of fewer than 4 samples cannot be diagnosed and get
    :math:`\hat R = \infty` and an effective sample size of 0. Chains start from prior draws times ``init_scale``.

    Examples:
        >>> out = width_sweep([4], [0], n_train=20, n_test=20, sigma=2.0, temperature=0.1,
        ...                   n_steps=40, step_size=1e-3, every=5, rfm=False)
        >>> sorted({r["method"] for r in out["rows"]})
        ['CNN', 'FC', 'NNGP FC', 'NNGP local (uniform Q)', 'local, band only', 'local, measured Q']
        >>> out["Q"][4].shape, out["grid"]
        ((1, 24), (6, 4))
    """
    task = {"height": 8, "width": 6, "band": (0, 1), **(task or {})}
    rows: list[dict] = []
    data = [band_task(n_train, sigma, seed=s, **task) for s in seeds]
    test = [band_task(n_test, sigma, seed=s + 10_000, **task) for s in seeds]
    X = torch.stack([d[0] for d in data])
    scale = X.flatten(1).std(1)[:, None, None, None, None]  # one factor per seed
    X = X / scale
    y = torch.stack([d[1] for d in data])
    Xt = torch.stack([d[0] for d in test]) / scale
    yt = torch.stack([d[1] for d in test])
    target = 2.0 * y.double() - 1
    comps = [nngp_components(X[s], None, patch_size) for s in range(len(seeds))]
    comps_t = [nngp_components(Xt[s], X[s], patch_size) for s in range(len(seeds))]
    out: dict = {
        "rows": rows,
        "Q": {},
        "Q_fit": {},
        "Q_fc": {},
        "Q_fc_fit": {},
        "M": {},
        "test_mean": {},
        "gp_mean": {},
        "convergence": [],
        "grid": (task["height"] - patch_size + 1, task["width"] - patch_size + 1),
    }
    rows_p, cols_p = out["grid"]
    sees_band = [any(a <= r < a + patch_size for r in task["band"]) for a in range(rows_p)]
    oracle = torch.tensor(sees_band, dtype=torch.float64).repeat_interleave(cols_p)
    out["band_positions"] = oracle.bool().numpy()
    for s, seed in enumerate(seeds):
        for method, pair in (
            ("NNGP local (uniform Q)", (comps[s], comps_t[s])),
            (
                "local, band only",
                (comps[s] * oracle[:, None, None], comps_t[s] * oracle[:, None, None]),
            ),
            ("NNGP FC", (nngp_components(X[s], None, None), nngp_components(Xt[s], X[s], None))),
        ):
            pred = gp_posterior_mean(pair[0].mean(0), pair[1].mean(0), target[s], temperature)
            out["gp_mean"].setdefault(method, []).append(pred.numpy())
            rows.append(
                {"method": method, "width": None, "seed": seed, "accuracy": accuracy(pred, yt[s])}
            )
    out["gp_mean"] = {k: np.stack(v) for k, v in out["gp_mean"].items()}
    run: dict[str, Any] = dict(
        temperature=temperature,
        init_scale=init_scale,
        n_steps=n_steps,
        step_size=step_size,
        burn_in=n_steps // 2,
        every=every,
        dtype=dtype,
        device=device,
    )
    check_int(chains, "chains", minimum=1)
    rep = [t.repeat_interleave(chains, 0) for t in (X, y, Xt)]
    for N in widths:

        def chain_seeds(kind: int, N: int = N) -> list[int]:
            return [
                int(np.random.SeedSequence([N, int(seed), c, kind]).generate_state(1)[0])
                for seed in seeds
                for c in range(chains)
            ]

        cnn = sample_posterior(*rep, width=N, patch_size=patch_size, seed=chain_seeds(0), **run)
        fc = sample_posterior(*rep, width=N, patch_size=None, seed=chain_seeds(1), **run)
        for name, post in (("CNN", cnn), ("FC", fc)):
            out["convergence"].append({"network": name, "width": N, **_diagnose(post, chains)})
        cnn, fc = _pool(cnn, chains), _pool(fc, chains)
        out["test_mean"][N] = {"CNN": cnn.test_mean.numpy(), "FC": fc.test_mean.numpy()}
        out["Q"][N] = cnn.Q.numpy()
        out["Q_fc"][N] = fc.Q[:, 0].numpy()
        out["Q_fit"][N] = np.stack(
            [fit_position_weights(cnn.kernel[s], comps[s]) for s in range(len(seeds))]
        )
        out["Q_fc_fit"][N] = np.array(
            [
                fit_position_weights(fc.kernel[s], nngp_components(X[s], None, None))[0]
                for s in range(len(seeds))
            ]
        )
        for s, seed in enumerate(seeds):
            rows.append(
                {
                    "method": "CNN",
                    "width": N,
                    "seed": seed,
                    "accuracy": accuracy(cnn.test_mean[s], yt[s]),
                }
            )
            rows.append(
                {
                    "method": "FC",
                    "width": N,
                    "seed": seed,
                    "accuracy": accuracy(fc.test_mean[s], yt[s]),
                }
            )
            pred = gp_posterior_mean(
                local_kernel(comps[s], cnn.Q[s]),
                local_kernel(comps_t[s], cnn.Q[s]),
                target[s],
                temperature,
            )
            rows.append(
                {
                    "method": "local, measured Q",
                    "width": N,
                    "seed": seed,
                    "accuracy": accuracy(pred, yt[s]),
                }
            )
    if rfm:
        for s, seed in enumerate(seeds):
            one = evaluate_methods(
                X[s],
                y[s],
                Xt[s],
                yt[s],
                seed=seed,
                depth=1,
                patch_size=patch_size,
                methods=("CNTK", "ConvRFM"),
                device=device,
            )
            deep = evaluate_methods(
                X[s],
                y[s],
                Xt[s],
                yt[s],
                seed=seed,
                depth=2,
                patch_size=patch_size,
                width=64,
                methods=("Deep ConvRFM",),
                device=device,
            )
            out["M"][seed] = one["models"]["ConvRFM"].M_
            for method, acc in [*one["accuracy"].items(), *deep["accuracy"].items()]:
                rows.append({"method": method, "width": None, "seed": seed, "accuracy": acc})
    return out


def _pool(post: Posterior, chains: int) -> Posterior:
    """Average every ``chains`` consecutive chains (the same data set) into one."""

    def mean(t):
        return t.reshape(-1, chains, *t.shape[1:]).mean(1)

    return Posterior(
        mean(post.test_mean),
        mean(post.Q),
        mean(post.kernel),
        mean(post.train_loss),
        post.n_samples * chains,
        post.Q_trace,
        post.test_trace,
    )


def _diagnose(post: Posterior, chains: int) -> dict[str, float]:
    """Largest split-R-hat and smallest effective sample size over seeds and quantities of the
    ``Q_i`` and test-output traces, each seed's ``chains`` consecutive chains together."""
    out = {}
    if post.Q_trace.shape[1] < 4:  # too few samples to diagnose: as good as not converged
        return {"rhat_Q": math.inf, "ess_Q": 0.0, "rhat_test": math.inf, "ess_test": 0.0}
    for key, trace in (("Q", post.Q_trace), ("test", post.test_trace)):
        draws = trace.reshape(-1, chains, *trace.shape[1:])  # (seeds, chains, samples, k)
        rhat = torch.stack([split_rhat(d) for d in draws])
        ess = torch.stack([effective_sample_size(d) for d in draws])
        out[f"rhat_{key}"] = float(rhat.max())
        out[f"ess_{key}"] = float(ess.min())
    return out


def summarise(rows: Sequence[dict], method: str, width: int | None = None) -> tuple[float, float]:
    """(mean, standard deviation) over seeds of one method's test accuracy (at one width).

    Examples:
        >>> rows = [{"method": "CNN", "width": 8, "seed": s, "accuracy": a}
        ...         for s, a in enumerate([0.7, 0.8])]
        >>> [round(v, 3) for v in summarise(rows, "CNN", 8)]
        [0.75, 0.05]
    """
    acc = [r["accuracy"] for r in rows if r["method"] == method and r["width"] == width]
    if not acc:
        raise KeyError(f"no result for method={method!r}, width={width!r}")
    return float(np.mean(acc)), float(np.std(acc))


def gap(rows: Sequence[dict], method: str, ref: str, width: int) -> tuple[float, float]:
    """``method``'s mean accuracy at ``width`` minus kernel ``ref``'s mean accuracy, with the
    spread of the difference, :math:`\\sqrt{s_a^2 + s_b^2}` (the two seed spreads).

    Examples:
        >>> rows = [{"method": "CNN", "width": 8, "accuracy": a} for a in (0.8, 0.9)]
        >>> rows += [{"method": "NNGP", "width": None, "accuracy": a} for a in (0.6, 0.6)]
        >>> [round(v, 3) for v in gap(rows, "CNN", "NNGP", 8)]
        [0.25, 0.05]
    """
    (a, sa), (b, sb) = summarise(rows, method, width), summarise(rows, ref)
    return a - b, float(np.hypot(sa, sb))


def kernel_gain(rows: Sequence[dict], method: str, ref: str) -> float:
    """Mean accuracy of kernel ``method`` minus that of kernel ``ref``, in points.

    Examples:
        >>> rows = [{"method": m, "width": None, "accuracy": a}
        ...         for m, a in [("ConvRFM", 0.9), ("CNTK", 0.75)]]
        >>> round(kernel_gain(rows, "ConvRFM", "CNTK"), 6)
        15.0
    """
    return 100 * (summarise(rows, method)[0] - summarise(rows, ref)[0])


def band_ratio(Q: ArrayLike, band_positions: ArrayLike) -> tuple[float, float]:
    """Mean and standard deviation over seeds of the ratio of the mean weight on the
    positions that see the band to the mean on the others, from ``Q`` ``(seeds, P)``
    (:func:`width_sweep`'s ``Q`` or ``Q_fit``) and the ``(P,)`` mask ``band_positions``.

    ``Q`` must be finite and non-negative (a weight per position). The ratio is undefined for a
    seed whose ``Q`` is zero on every position off the band (a fitted ``Q_fit`` can be): such a
    ``Q`` raises ``ValueError`` naming the seed, rather than giving ``(inf, nan)``.

    Examples:
        >>> band_ratio([[2.0, 1.0, 1.0], [4.0, 1.0, 1.0]], [True, False, False])
        (3.0, 1.0)
    """
    q = as_tensor(Q, "Q", dtype=torch.float64).numpy()
    mask = np.asarray(band_positions, dtype=bool)
    if q.ndim != 2 or mask.shape != q.shape[1:] or mask.all() or not mask.any():
        raise ValueError(
            f"Q must be (seeds, P) and band_positions a (P,) mask with both "
            f"values, got {q.shape} and {mask.shape}"
        )
    if not np.isfinite(q).all() or (q < 0).any():
        raise ValueError("Q must hold finite, non-negative weights (one per seed and position)")
    off = q[:, ~mask].mean(1)
    if (off == 0).any():
        raise ValueError(
            f"band_ratio is undefined: Q is zero on every position off the band for seed(s) "
            f"{np.flatnonzero(off == 0).tolist()} (rows of Q)"
        )
    r = q[:, mask].mean(1) / off
    return float(r.mean()), float(r.std())
