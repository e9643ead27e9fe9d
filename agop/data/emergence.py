r"""Translation-invariant inputs whose non-Gaussianity is set by a gain, at a fixed covariance.

The data model of Ingrosso and Goldt (2022), "Data-driven emergence of convolutional structure
in neural networks", changed so that the gain moves only the higher-order statistics. A
latent Gaussian field ``z ~ N(0, C_g)`` on a ring of ``D`` sites (or a ``D x D`` torus) goes
through a saturating non-linearity,

.. math:: x_i = \operatorname{erf}(g z_i) / Z(g), \qquad Z(g)^2 = \frac2\pi \arcsin(a), \qquad
          a = \frac{2 g^2}{1 + 2 g^2}.

For unit-variance jointly Gaussian :math:`z_i, z_j` with covariance :math:`c`,
:math:`E[\operatorname{erf}(g z_i) \operatorname{erf}(g z_j)] = \frac2\pi \arcsin(a c)`.
Choosing the latent covariance

.. math:: C_g = \sin(\arcsin(a)\, \Sigma) / a \qquad \text{(entrywise)}

therefore gives :math:`\operatorname{Cov}(x) = \Sigma` exactly, at every gain. The target
:math:`\Sigma` is the translation-invariant correlation :math:`\Sigma_{ij} = \exp(-d(i, j) / \xi)`
with :math:`d` the distance on the ring (torus), so a shift of the sites leaves the
distribution unchanged. At :math:`g \to 0`, :math:`C_g \to \Sigma` and :math:`x` is Gaussian; as ``g`` grows, ``x`` approaches the sign of a Gaussian
field: the same covariance, ever less Gaussian (negative excess kurtosis, down to ``-2``).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from agop.validation import check_dtype, check_int, check_real, check_seed

GAIN_GAUSSIAN = 1e-4  # below this gain the erf is linear to float64 precision: x = z


def ring_distance(D: int, dim: int = 1) -> torch.Tensor:
    """Distance of every site to site 0 on a ring of ``D`` sites (``dim=1``, shape ``(D,)``)
    or a ``D x D`` torus (``dim=2``, shape ``(D, D)``, Euclidean on the torus)."""
    d = torch.arange(D, dtype=torch.float64)
    d = torch.minimum(d, D - d)
    if dim == 1:
        return d
    return torch.sqrt(d[:, None] ** 2 + d[None, :] ** 2)


def _latent_correlation(D: int, xi: float, gain: float, dim: int) -> torch.Tensor:
    """First row (1-D) or first plane (2-D) of the latent covariance ``C_g``."""
    sigma = torch.exp(-ring_distance(D, dim) / xi)
    if gain < GAIN_GAUSSIAN:
        return sigma
    a = 2 * gain**2 / (1 + 2 * gain**2)
    return torch.sin(math.asin(a) * sigma) / a


def _circulant_sqrt_spectrum(row: torch.Tensor, gain: float, xi: float) -> torch.Tensor:
    """Square roots of the eigenvalues of the circulant (block-circulant) matrix with this
    first row; raise when the matrix is not positive semi-definite."""
    spectrum = torch.fft.fftn(row).real
    if float(spectrum.min()) < -1e-10 * float(spectrum.max()):
        raise ValueError(
            f"no Gaussian field has the latent covariance for gain={gain} and xi={xi} on this "
            f"lattice (smallest eigenvalue {float(spectrum.min()):.3g}): lower xi or gain, or "
            "use more sites"
        )
    return spectrum.clamp_min(0).sqrt()


def nonlinear_gaussian_process(
    n: int,
    D: int,
    *,
    xi: float,
    gain: float,
    dim: int = 1,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    r"""``n`` inputs ``x = erf(g z) / Z(g)`` on a ring of ``D`` sites (shape ``(n, D)``) or a
    ``D x D`` torus (``dim=2``, shape ``(n, D, D)``), with covariance
    :math:`\Sigma_{ij} = \exp(-d(i, j) / \xi)` at every ``gain`` (see the module docstring).

    ``gain = 0`` gives the Gaussian field with that covariance. Seeded: the same ``seed`` gives
    the same inputs on every machine.

    Examples:
        At a high gain the inputs are far from Gaussian (excess kurtosis near :math:`-2`), yet
        their covariance is still :math:`\exp(-d / \xi)` (Monte Carlo, 20000 draws):

        >>> import torch
        >>> X = nonlinear_gaussian_process(20000, 8, xi=2.0, gain=3.0, dtype=torch.float64)
        >>> C = X.T @ X / 20000
        >>> [round(c, 2) for c in C[0, :4].tolist()]  # exp(-d/2): 1, 0.61, 0.37, 0.22
        [1.0, 0.61, 0.37, 0.22]
        >>> round(((X**4).mean() / (X**2).mean() ** 2 - 3).item(), 1)
        -1.8
    """
    n, D = check_int(n, "n", minimum=1), check_int(D, "D", minimum=2)
    dim = check_int(dim, "dim", minimum=1, maximum=2)
    xi = check_real(xi, "xi", minimum=0, strict_minimum=True)
    gain = check_real(gain, "gain", minimum=0)
    dtype = check_dtype(dtype, allow_none=False)
    shape = (D,) * dim
    root = _circulant_sqrt_spectrum(_latent_correlation(D, xi, gain, dim), gain, xi)
    g = torch.Generator().manual_seed(check_seed(seed))
    white = torch.randn((n, *shape), generator=g, dtype=torch.float64)
    dims = tuple(range(1, dim + 1))
    # z = C^{1/2} w for a circulant C: multiply the spectrum of w by sqrt(eigenvalues of C).
    z = torch.fft.ifftn(torch.fft.fftn(white, dim=dims) * root, dim=dims).real
    if gain < GAIN_GAUSSIAN:
        return z.to(dtype)
    a = 2 * gain**2 / (1 + 2 * gain**2)
    x = torch.erf(gain * z) / math.sqrt(2 / math.pi * math.asin(a))
    return x.to(dtype)


def emergence_task(
    n: int,
    D: int,
    *,
    gain: float,
    xi: tuple[float, float] = (1.0, 4.0),
    dim: int = 1,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two translation-invariant classes that differ in correlation length: label ``c`` draws
    its inputs from :func:`nonlinear_gaussian_process` with ``xi[c]`` and the same ``gain``.

    Returns ``(X, y)``: ``X`` of shape ``(n, D)`` (``(n, D, D)`` for ``dim=2``) and balanced
    labels ``y`` in ``{0, 1}``, shuffled.

    Examples:
        >>> X, y = emergence_task(6, 8, gain=1.0)
        >>> tuple(X.shape), sorted(y.tolist())
        ((6, 8), [0, 0, 0, 1, 1, 1])
        >>> tuple(emergence_task(4, 5, gain=1.0, dim=2)[0].shape)
        (4, 5, 5)
    """
    n = check_int(n, "n", minimum=2)
    if len(xi) != 2:
        raise ValueError(f"xi must hold two correlation lengths, one per class, got {xi!r}")
    rng = np.random.SeedSequence(check_seed(seed))
    s_label, s0, s1 = (int(s.generate_state(1)[0]) for s in rng.spawn(3))
    y = torch.randperm(n, generator=torch.Generator().manual_seed(s_label)) % 2
    n1 = int(y.sum())
    X = torch.empty((n, *(D,) * dim), dtype=dtype)
    X[y == 0] = nonlinear_gaussian_process(
        n - n1, D, xi=xi[0], gain=gain, dim=dim, seed=s0, dtype=dtype
    )
    X[y == 1] = nonlinear_gaussian_process(
        n1, D, xi=xi[1], gain=gain, dim=dim, seed=s1, dtype=dtype
    )
    return X, y
