r"""Chapter 07, other accounts of feature learning in CNNs: emergence of localised receptive
fields in fully connected networks, and local kernel renormalization in Bayesian CNNs.

**Inputs.** Translation-invariant inputs whose non-Gaussianity is set by a gain, at a fixed covariance.

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

**Localisation.** How localised a vector is: the inverse participation ratio.

For :math:`v \in \mathbb{R}^D`,

.. math:: \mathrm{IPR}(v) = \frac{\sum_i v_i^4}{\bigl(\sum_i v_i^2\bigr)^2},
          \qquad \frac1D \le \mathrm{IPR}(v) \le 1.

It is 1 for a vector on one site, :math:`1/D` for a vector spread evenly over all :math:`D`
sites, and about :math:`3/D` for a vector of i.i.d. Gaussian entries
(:math:`E[v^4] = 3 E[v^2]^2`). A vector
spread evenly over ``m`` sites has ``IPR = 1/m``, so ``1/IPR`` reads as the number of sites the
vector occupies. It is invariant to the scale and the sign of ``v`` and to a permutation of its
sites. Used on the first-layer receptive fields of a network and on the top eigenvectors of an
AGOP or an RFM's metric ``M``.

**Emergence.** Emergence of localised receptive fields in fully connected networks, through the AGOP.

Ingrosso and Goldt (2022) train fully connected networks on translation-invariant inputs
(:func:`agop_book.ch07_other_accounts.emergence_task`: two classes of a non-linear Gaussian field that differ in
correlation length, the same covariance :math:`\exp(-d/\xi)` at every gain) and find
first-layer receptive fields that localise when, and only when, the inputs are non-Gaussian.
This module measures the same thing for three objects, with the inverse participation ratio
(:func:`agop_book.ch07_other_accounts.ipr`):

* the rows :math:`w_k` of the first layer of a one-hidden-layer network
  :math:`f(x) = \sum_k a_k \phi(w_k^\top x + b_k)`;
* the top eigenvectors of that network's AGOP over whole inputs,

  .. math:: \mathrm{AGOP}(f) = \frac1n \sum_i \nabla f(x_i) \nabla f(x_i)^\top
            = W^\top G W, \qquad
            G = \frac1n \sum_i (a \odot \phi'(W x_i + b))(a \odot \phi'(W x_i + b))^\top;

* the top eigenvectors of the metric :math:`M` of a fully connected RFM
  (:class:`agop.RFM`), a kernel machine that has no network at all: the metric of its last
  AGOP round, whichever round its validation split keeps for predicting (``M = I``, kept
  when no round helps, has no direction to measure).

The networks of one sweep point are trained together, as one batch of independent networks
(:class:`TwoLayerNets`): minibatch Adam on the squared error to labels :math:`\pm 1`.

**Renormalization.** Local versus global kernel renormalization in Bayesian one-hidden-layer networks.

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

**Convergence of the chains.** Convergence diagnostics of Markov chains: split-:math:`\hat R` and the effective sample size.

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

Figures: :func:`plot_emergence_ipr`, :func:`plot_emergence_view`. Explorer (:func:`emergence_explorer`): ipywidgets core controls, as Colab supports; it redraws a figure with
the same function that draws the chapter's static twin, and opens on the view the static twin
shows."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy.optimize import nnls
from tqdm.auto import tqdm

from agop._typing import ArrayLike, Device
from agop.estimator import _MAX_COUNT
from agop.features import FilterSpace, null_baselines
from agop.patches import extract_patches
from agop.rfm import RFM
from agop.runtime import default_device
from agop.solve import ridge
from agop.validation import (
    ArgumentTypeError,
    _check_allocation,
    all_finite,
    as_tensor,
    check_choice,
    check_dtype,
    check_finite,
    check_images,
    check_int,
    check_real,
    check_reals,
    check_seed,
    check_seeds,
    check_square,
)
from agop_book.ch05_deep_convrfm import bars_in_noise, evaluate_methods
from agop_book.plots import _check_figure, _check_mapping, _check_records, _mean_sd

if TYPE_CHECKING:
    from matplotlib.figure import Figure


GAIN_GAUSSIAN = 1e-4  # below this gain the erf is linear to float64 precision: x = z


def ring_distance(D: int, dim: int = 1) -> torch.Tensor:
    """Distance of every site to site 0 on a ring of ``D`` sites (``dim=1``, shape ``(D,)``)
    or a ``D x D`` torus (``dim=2``, shape ``(D, D)``, Euclidean on the torus).

    Examples:
        >>> ring_distance(5)
        tensor([0., 1., 2., 2., 1.], dtype=torch.float64)
    """
    D = check_int(D, "D", minimum=1)
    dim = check_int(dim, "dim", minimum=1, maximum=2)
    _check_allocation(D**dim, 8 * 3, "D, dim", "the distances")
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
    # above 1e150 the erf is a sign to float64 precision anyway; gain**2 would overflow
    gain = check_real(gain, "gain", minimum=0, maximum=1e150)
    dtype = check_dtype(dtype, allow_none=False)
    # white noise, its complex spectrum and the field, in float64
    _check_allocation(n * D**dim, 48, "n, D, dim", "the inputs")
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
    D = check_int(D, "D", minimum=2)
    dim = check_int(dim, "dim", minimum=1, maximum=2)
    gain = check_real(gain, "gain", minimum=0)
    dtype = check_dtype(dtype, allow_none=False)
    if isinstance(xi, (str, bytes)) or not isinstance(xi, (Sequence, np.ndarray, torch.Tensor)):
        raise ArgumentTypeError(f"xi must hold two correlation lengths, one per class, got {xi!r}")
    xis = check_reals(xi, "xi", minimum=0)
    if len(xis) != 2:
        raise ValueError(f"xi must hold two correlation lengths, one per class, got {xi!r}")
    _check_allocation(n * D**dim, 48, "n, D, dim", "the inputs")
    rng = np.random.SeedSequence(check_seed(seed))
    s_label, s0, s1 = (int(s.generate_state(1)[0]) for s in rng.spawn(3))
    y = torch.randperm(n, generator=torch.Generator().manual_seed(s_label)) % 2
    n1 = int(y.sum())
    X = torch.empty((n, *(D,) * dim), dtype=dtype)
    X[y == 0] = nonlinear_gaussian_process(
        n - n1, D, xi=xis[0], gain=gain, dim=dim, seed=s0, dtype=dtype
    )
    X[y == 1] = nonlinear_gaussian_process(
        n1, D, xi=xis[1], gain=gain, dim=dim, seed=s1, dtype=dtype
    )
    return X, y


def ipr(v: ArrayLike, dim: int = -1) -> torch.Tensor:
    r"""Inverse participation ratio :math:`\sum_i v_i^4 / (\sum_i v_i^2)^2` along ``dim``.

    ``v`` may hold a batch of vectors (e.g. the rows of a weight matrix, with ``dim=-1``); the
    sites may span several axes only after flattening them. A zero vector has no localisation:
    it raises ``ValueError``.

    Examples:
        >>> import torch
        >>> ipr(torch.tensor([0.0, -3.0, 0.0, 0.0])), ipr(torch.ones(4))  # one site; all 4
        (tensor(1.), tensor(0.2500))
        >>> ipr(torch.tensor([[1.0, 1.0, 0.0, 0.0], [2.0, 0.0, 0.0, 0.0]]))  # row by row
        tensor([0.5000, 1.0000])
    """
    v = check_finite(as_tensor(v, "v"), "v")
    dim = check_int(dim, "dim", minimum=-max(v.ndim, 1), maximum=max(v.ndim, 1) - 1)
    if v.ndim == 0 or v.shape[dim] == 0:
        raise ValueError(
            f"v must have at least one site along dim={dim}, got shape {tuple(v.shape)}"
        )
    # Scale by the largest entry first, so that neither the square nor the fourth power
    # overflows or underflows.
    scale = v.abs().amax(dim=dim, keepdim=True)
    if bool((scale == 0).any()):
        raise ValueError("v holds a zero vector, whose participation ratio is undefined")
    u = v / scale
    u2 = u * u
    return (u2 * u2).sum(dim) / u2.sum(dim) ** 2


ACTIVATIONS = ("relu", "erf")


LABELS = ("true", "shuffled")


OPTIMIZERS = ("adam", "sgd")


def _phi(h: torch.Tensor, activation: str) -> torch.Tensor:
    return torch.relu(h) if activation == "relu" else torch.erf(h / math.sqrt(2))


def _dphi(h: torch.Tensor, activation: str) -> torch.Tensor:
    if activation == "relu":
        return (h > 0).to(h.dtype)
    return math.sqrt(2 / math.pi) * torch.exp(-h * h / 2)


@dataclasses.dataclass
class TwoLayerNets:
    r"""``E`` independent one-hidden-layer networks
    :math:`f_e(x) = \sum_k a_{ek} \phi(w_{ek}^\top x + b_{ek})`, as batched tensors:
    ``W`` ``(E, K, D)``, ``b`` and ``a`` ``(E, K)``; ``activation`` is ``'relu'`` or
    ``'erf'`` (:math:`\phi(h) = \operatorname{erf}(h / \sqrt2)`); ``W0`` and ``a0``: the
    first layer and the read-out at initialisation (set by :func:`train_two_layer`; the biases
    start at 0), so that ``W - W0`` is what training changed and :meth:`initial` the
    untrained networks.

    Examples:
        >>> import torch
        >>> nets = TwoLayerNets(torch.ones(1, 2, 3), torch.zeros(1, 2),
        ...                     torch.tensor([[1.0, -2.0]]), "relu")
        >>> nets(torch.tensor([[1.0, 1.0, 1.0], [-1.0, 0.0, 0.0]]))  # (1 - 2) * relu(sum x)
        tensor([[-3., -0.]])
    """

    W: torch.Tensor
    b: torch.Tensor
    a: torch.Tensor
    activation: str = "relu"
    W0: torch.Tensor | None = None
    a0: torch.Tensor | None = None

    def __post_init__(self) -> None:
        for name in ("W", "b", "a", "W0", "a0"):
            value = getattr(self, name)
            if not (value is None and name in ("W0", "a0")) and not isinstance(value, torch.Tensor):
                raise ArgumentTypeError(f"{name} must be a tensor, got {type(value).__name__}")
        if self.W.ndim != 3:
            raise ValueError(f"W must be (E, K, D), got shape {tuple(self.W.shape)}")
        E, K, _ = self.W.shape
        for name in ("b", "a", "a0"):
            value = getattr(self, name)
            if value is not None and tuple(value.shape) != (E, K):
                raise ValueError(
                    f"{name} must be (E, K) = {(E, K)} to match W, got shape {tuple(value.shape)}"
                )
        if self.W0 is not None and self.W0.shape != self.W.shape:
            raise ValueError(
                f"W0 must have W's shape {tuple(self.W.shape)}, got {tuple(self.W0.shape)}"
            )
        self.activation = check_choice(self.activation, "activation", ACTIVATIONS)

    def _check_inputs(self, X: Any) -> torch.Tensor:
        """``X`` ``(n, D)`` or ``(E, n, D)`` with ``n >= 1``, checked against the networks."""
        X = as_tensor(X, "X")
        E, _, D = self.W.shape
        if X.ndim not in (2, 3) or X.shape[-1] != D or (X.ndim == 3 and X.shape[0] != E):
            raise ValueError(
                f"X must be (n, D) or (E, n, D) with E = {E} networks of D = {D} inputs, got "
                f"shape {tuple(X.shape)}"
            )
        if X.shape[-2] == 0:
            raise ValueError(f"X must hold at least one input, got shape {tuple(X.shape)}")
        return X

    def initial(self) -> TwoLayerNets:
        """The same networks at initialisation (``W0``, zero biases, ``a0``).

        Examples:
            >>> import torch
            >>> nets = TwoLayerNets(torch.ones(1, 2, 3), torch.ones(1, 2), torch.ones(1, 2),
            ...                     W0=torch.zeros(1, 2, 3), a0=torch.full((1, 2), 2.0))
            >>> start = nets.initial()
            >>> start.W.sum().item(), start.b.sum().item(), start.a.tolist()
            (0.0, 0.0, [[2.0, 2.0]])
        """
        if self.W0 is None or self.a0 is None:
            raise ValueError("these networks carry no initial state (W0 and a0 are unset)")
        return TwoLayerNets(
            self.W0, torch.zeros_like(self.b), self.a0, self.activation, self.W0, self.a0
        )

    def hidden(self, X: torch.Tensor) -> torch.Tensor:
        """Pre-activations ``(E, n, K)`` for inputs ``(n, D)`` shared by all networks or
        ``(E, n, D)``, one set per network."""
        if X.ndim == 2:
            return torch.einsum("nd,ekd->enk", X, self.W) + self.b[:, None, :]
        return torch.einsum("end,ekd->enk", X, self.W) + self.b[:, None, :]

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        """Outputs ``(E, n)``."""
        return torch.einsum("enk,ek->en", _phi(self.hidden(X), self.activation), self.a)


def train_two_layer(
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    width: int,
    steps: int,
    lr: float = 3e-3,
    batch_size: int = 256,
    init_scale: float = 0.3,
    activation: str = "relu",
    optimizer: str = "adam",
    online: bool = False,
    seed: int | Sequence[int] = 0,
) -> TwoLayerNets:
    r"""Train ``E`` one-hidden-layer networks of ``width`` hidden units at once, network
    ``e`` on ``X[e]`` (``(E, n, D)``) with labels ``y[e]`` in ``{0, 1}`` (``(E, n)``).

    Initialisation: :math:`W_{kd} \sim \mathcal N(0, s^2 / D)` (:math:`s` = ``init_scale``),
    :math:`a_k \sim \mathcal N(0, 1/K)`, :math:`b = 0`. Each of ``steps`` steps draws a
    minibatch of ``batch_size`` examples per network and takes one Adam step (learning rate
    ``lr``) on the mean squared error between :math:`f(x)` and :math:`2y - 1`.
    ``optimizer="sgd"`` takes plain gradient steps instead,
    :math:`\theta \leftarrow \theta - \eta \nabla_\theta L`. ``online=True`` trains on a
    stream, as online SGD does: step ``t`` takes examples ``t * batch_size`` to
    ``(t + 1) * batch_size - 1`` of ``X``, so each example is seen once and ``X`` must hold at
    least ``steps * batch_size`` examples; otherwise each minibatch is drawn with replacement
    from ``X``. Seeded: ``seed`` an int seeds one generator for all the networks; ``E`` seeds
    give network ``e`` its own generator (its start and its minibatches), so that it is the
    same network whichever networks train with it.

    Examples:
        A linearly separable problem is learned:

        >>> import torch
        >>> X = torch.randn(1, 200, 5, generator=torch.Generator().manual_seed(0))
        >>> y = (X[..., 0] > 0).long()
        >>> nets = train_two_layer(X, y, width=8, steps=300, lr=1e-2, batch_size=50)
        >>> float(((nets(X) > 0).long() == y).float().mean()) > 0.95
        True

        And by online SGD, on a stream of 50 minibatches of 10 fresh examples:

        >>> X = torch.randn(1, 500, 5, generator=torch.Generator().manual_seed(1))
        >>> y = (X[..., 0] > 0).long()
        >>> nets = train_two_layer(X, y, width=8, steps=50, lr=0.2, batch_size=10,
        ...                        optimizer="sgd", online=True)
        >>> float(((nets(X) > 0).long() == y).float().mean()) > 0.9
        True
    """
    X, y = as_tensor(X, "X"), torch.as_tensor(y)
    if X.ndim != 3 or y.shape != X.shape[:2]:
        raise ValueError(
            f"X must be (E, n, D) and y (E, n), got {tuple(X.shape)} and {tuple(y.shape)}"
        )
    check_finite(X, "X")
    if not bool(((y == 0) | (y == 1)).all()):
        raise ValueError(
            f"y must hold labels in {{0, 1}}, got values {torch.unique(y)[:5].tolist()}"
        )
    width = check_int(width, "width", minimum=1)
    steps = check_int(steps, "steps", minimum=0, maximum=_MAX_COUNT)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    lr = check_real(
        lr, "lr", minimum=0, strict_minimum=True, maximum=float(torch.finfo(X.dtype).max)
    )
    init_scale = check_real(init_scale, "init_scale", minimum=0)
    activation = check_choice(activation, "activation", ACTIVATIONS)
    optimizer = check_choice(optimizer, "optimizer", OPTIMIZERS)
    if not isinstance(online, bool):
        raise TypeError(f"online must be True or False, got {online!r}")
    E, n, D = X.shape
    if n == 0:
        raise ValueError(
            f"X must hold at least one example per network, got shape {tuple(X.shape)}"
        )
    # the weights, their initial copy, gradients and Adam's two moments
    _check_allocation(E * width * (D + 2) * 6, X.element_size(), "width", "the networks")
    dtype = X.dtype
    batch = min(batch_size, n)
    if online and n < steps * batch_size:
        raise ValueError(
            f"online training takes {steps} x {batch_size} = {steps * batch_size} fresh "
            f"examples per network, but X holds {n}"
        )
    if isinstance(seed, Sequence):
        gens = [torch.Generator().manual_seed(check_seed(s, "seed[e]")) for s in seed]
        if len(gens) != E:
            raise ValueError(f"seed must be an int or {E} ints (one per network), got {len(gens)}")
        drawn = [(torch.randn(width, D, generator=g, dtype=dtype),
                  torch.randn(width, generator=g, dtype=dtype)) for g in gens]  # fmt: skip
        W = (init_scale / math.sqrt(D)) * torch.stack([w for w, _ in drawn])
        a = torch.stack([v for _, v in drawn]) / math.sqrt(width)

        def minibatch() -> torch.Tensor:
            return torch.stack([torch.randint(0, n, (batch,), generator=g) for g in gens])

    else:
        g = torch.Generator().manual_seed(check_seed(seed))
        W = (init_scale / math.sqrt(D)) * torch.randn(E, width, D, generator=g, dtype=dtype)
        a = torch.randn(E, width, generator=g, dtype=dtype) / math.sqrt(width)

        def minibatch() -> torch.Tensor:
            return torch.randint(0, n, (E, batch), generator=g)

    b = torch.zeros(E, width, dtype=dtype)
    W_init, a_init = W.clone().to(X.device), a.clone().to(X.device)
    params = [p.to(X.device).requires_grad_() for p in (W, b, a)]
    nets = TwoLayerNets(params[0], params[1], params[2], activation=activation)
    target = 2.0 * y.to(dtype) - 1
    opt = torch.optim.Adam(params, lr=lr) if optimizer == "adam" else torch.optim.SGD(params, lr=lr)
    rows = torch.arange(E, device=X.device)[:, None]
    for step in range(steps):
        if online:
            start = step * batch_size
            idx = torch.arange(start, start + batch_size, device=X.device).expand(E, -1)
        else:
            idx = minibatch().to(X.device)
        loss = ((nets(X[rows, idx]) - target[rows, idx]) ** 2).mean() * E
        opt.zero_grad()
        loss.backward()
        opt.step()
    W, b, a = (p.detach() for p in params)
    if not all(all_finite(p) for p in (W, b, a)):
        raise ValueError(
            f"lr={lr!r}: training diverged (non-finite weights after {steps} steps); lower lr"
        )
    return TwoLayerNets(W, b, a, activation=activation, W0=W_init, a0=a_init)


def two_layer_agop(nets: TwoLayerNets, X: torch.Tensor) -> torch.Tensor:
    r"""The AGOP over whole inputs of each network, :math:`W^\top G W` with
    :math:`G = \frac1n \sum_i d_i d_i^\top`, :math:`d_i = a \odot \phi'(W x_i + b)`
    (``(E, D, D)``; ``X`` is ``(n, D)`` or ``(E, n, D)``).

    Examples:
        Against autograd, one sample at a time:

        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> nets = TwoLayerNets(torch.randn(1, 3, 4, generator=g, dtype=torch.float64),
        ...                     torch.randn(1, 3, generator=g, dtype=torch.float64),
        ...                     torch.randn(1, 3, generator=g, dtype=torch.float64), "erf")
        >>> X = torch.randn(5, 4, generator=g, dtype=torch.float64)
        >>> grads = [torch.autograd.functional.jacobian(lambda x: nets(x[None])[0, 0], x)
        ...          for x in X]
        >>> brute = sum(torch.outer(v, v) for v in grads) / 5
        >>> torch.allclose(two_layer_agop(nets, X)[0], brute)
        True
    """
    inner = two_layer_inner(nets, X)  # checks nets and X
    return nets.W.transpose(1, 2) @ inner @ nets.W


def two_layer_inner(nets: TwoLayerNets, X: torch.Tensor) -> torch.Tensor:
    r"""The inner matrix of each network's AGOP :math:`W^\top G W`:
    :math:`G = \frac1n \sum_i d_i d_i^\top`, :math:`d_i = a \odot \phi'(W x_i + b)`
    (``(E, K, K)``; ``X`` is ``(n, D)`` or ``(E, n, D)``).

    Examples:
        A ReLU network whose units are all active on every input has :math:`\phi' = 1`,
        so :math:`G = a a^\top`:

        >>> import torch
        >>> nets = TwoLayerNets(torch.eye(2, 3)[None], torch.full((1, 2), 10.0),
        ...                     torch.tensor([[2.0, -1.0]]), "relu")
        >>> two_layer_inner(nets, torch.rand(4, 3))[0]
        tensor([[ 4., -2.],
                [-2.,  1.]])
    """
    if not isinstance(nets, TwoLayerNets):
        raise ArgumentTypeError(f"nets must be TwoLayerNets, got {type(nets).__name__}")
    X = nets._check_inputs(X)
    d = _dphi(nets.hidden(X), nets.activation) * nets.a[:, None, :]  # (E, n, K)
    return torch.einsum("enk,enl->ekl", d, d) / d.shape[1]


def fc_ansatz(
    W: ArrayLike,
    G: ArrayLike,
    *,
    powers: Sequence[float] = (1.0, 0.5),
    n_draws: int = 20,
    seed: int = 0,
) -> dict[float, dict[str, float]]:
    r"""The neural feature ansatz of a fully connected first layer, against its
    spectrum-matched null: the Pearson correlation of :math:`W^\top W` with
    :math:`(W^\top G W)^p` (the network's AGOP over whole inputs to the power :math:`p`, for
    each :math:`p` in ``powers``), and of :math:`W^\top W` with
    :math:`(W^\top O \Lambda O^\top W)^p` for ``n_draws`` Haar-random :math:`O`, :math:`\Lambda`
    the eigenvalues of ``G``: the same network and the same spectrum of :math:`G`, in a random
    eigenbasis (:func:`agop.features.null_baselines`, whose ``spectrum`` null this is, drawn
    from ``seed``).

    ``W``: the first layer ``(K, D)``; ``G``: its inner matrix ``(K, K)``
    (:func:`two_layer_inner`), positive semi-definite and not zero. Returns, per power,
    ``{"trained", "null_mean", "null_sd", "margin"}`` (``margin`` = ``trained - null_mean``;
    ``null_sd`` over the draws, ``ddof=1``).

    Examples:
        A :math:`G` proportional to the identity leaves nothing for a rotation to change:
        the AGOP is :math:`c W^\top W`, and the null is the measured value, 1, at power 1.

        >>> import torch
        >>> W = torch.randn(3, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        >>> out = fc_ansatz(W, 2 * torch.eye(3, dtype=torch.float64), n_draws=4)
        >>> [round(out[1.0][k], 6) for k in ("trained", "null_mean", "null_sd")]
        [1.0, 1.0, 0.0]
    """
    W = check_finite(as_tensor(W, "W", dtype=torch.float64), "W").detach().cpu()
    if W.ndim != 2:
        raise ValueError(f"W must be a first layer (K, D), got shape {tuple(W.shape)}")
    if not bool((W != 0).any()):
        raise ValueError("W is zero: W^T W has no direction to correlate")
    G = check_finite(as_tensor(G, "G", dtype=torch.float64), "G").detach().cpu()
    if G.shape != (W.shape[0], W.shape[0]):
        raise ValueError(
            f"G must be the ({W.shape[0]}, {W.shape[0]}) inner matrix of W's {W.shape[0]} "
            f"units, got shape {tuple(G.shape)}"
        )
    powers = check_reals(powers, "powers", minimum=0)
    if not powers or min(powers) <= 0 or max(powers) > 1:
        raise ValueError(f"powers must hold powers in (0, 1], got {powers!r}")
    n_draws = check_int(n_draws, "n_draws", minimum=2, maximum=_MAX_COUNT)
    space = FilterSpace(W)
    reduced = space.reduce((G + G.T) / 2)
    out = {}
    for p in powers:
        null = null_baselines(W, n_draws=n_draws, seed=seed, power=p, G=G, space=space)
        trained = space.similarity(space.power(reduced, p))
        mean = null["pearson"]["spectrum_mean"]
        out[p] = {
            "trained": trained,
            "null_mean": mean,
            "null_sd": null["pearson"]["spectrum_std"],
            "margin": trained - mean,
        }
    return out


def top_eigenvectors(A: torch.Tensor, k: int) -> torch.Tensor:
    """The ``k`` eigenvectors of the symmetric ``A`` (``(..., D, D)``) with the largest
    eigenvalues, as rows ``(..., k, D)``, largest first.

    Examples:
        >>> import torch
        >>> top_eigenvectors(torch.diag(torch.tensor([1.0, 3.0, 2.0])), 2).abs()
        tensor([[0., 1., 0.],
                [0., 0., 1.]])
    """
    A = as_tensor(A, "A")
    if A.ndim < 2 or A.shape[-1] != A.shape[-2]:
        raise ValueError(f"A must be square matrices (..., D, D), got shape {tuple(A.shape)}")
    check_finite(A, "A")
    k = check_int(k, "k", minimum=1, maximum=A.shape[-1])
    vecs = torch.linalg.eigh((A + A.transpose(-1, -2)) / 2)[1]
    return vecs[..., -k:].flip(-1).transpose(-1, -2)


@dataclasses.dataclass
class EmergenceResult:
    """Rows of :func:`emergence_sweep` (one per gain, seed and label condition: the mean IPR
    of the receptive fields ``ipr_weights``, of what training changed in them (the rows of
    ``W - W0``) ``ipr_delta``, of the top eigenvectors of :math:`W^\\top W` ``ipr_wtw`` and of the
    AGOP ``ipr_agop``, of the top eigenvectors of the RFM's ``M`` ``ipr_rfm``, with test
    accuracies: the network's ``acc_net``, the RFM's kept iterate's ``acc_rfm``, its round 0
    (``M = I``) ``acc_rfm_identity`` and its last round ``acc_rfm_last``), and one
    example per ``(gain, labels)`` (the first seed): ``W``, ``agop``, ``M``. See
    :func:`emergence_sweep`'s example."""

    rows: list[dict]
    examples: dict
    settings: dict

    def summary(self, stat: str, gain: float, labels: str = "true") -> tuple[float, float]:
        """Mean and sample standard deviation (``ddof=1``, 0.0 for one seed) over seeds of
        column ``stat``.

        Examples:
            >>> r = EmergenceResult([{"gain": 1.0, "labels": "true", "x": v}
            ...                      for v in (1.0, 3.0, 5.0)], {}, {})
            >>> r.summary("x", 1.0)
            (3.0, 2.0)
        """
        values = [r[stat] for r in self.rows if r["gain"] == gain and r["labels"] == labels]
        if not values:
            raise KeyError(f"no rows for gain={gain}, labels={labels!r}")
        return _mean_sd(values)

    @property
    def gains(self) -> list[float]:
        """The gains of the rows, in the order the sweep ran them.

        Examples:
            >>> EmergenceResult([{"gain": g} for g in (0.0, 3.0, 0.0)], {}, {}).gains
            [0.0, 3.0]
        """
        return list(dict.fromkeys(r["gain"] for r in self.rows))

    def localisation(self, stat: str) -> tuple[bool, float, float, float]:
        """Whether column ``stat`` localises, with the means it is judged on:
        ``(ok, m0, m1, ms)``, the mean over seeds at the first gain ``m0``, at the last gain
        ``m1`` and with shuffled labels at the last gain ``ms``. ``ok``: ``m1`` exceeds ``m0``
        by more than the sum of the two seed spreads, and ``ms`` by more than the sum of
        theirs.

        Examples:
            >>> rows = [{"gain": g, "labels": lab, "seed": s, "x": v}
            ...         for g, lab, vals in [(0.0, "true", (0.1, 0.1)),
            ...                              (3.0, "true", (0.5, 0.7)),
            ...                              (3.0, "shuffled", (0.1, 0.3))]
            ...         for s, v in enumerate(vals)]
            >>> ok, m0, m1, ms = EmergenceResult(rows, {}, {}).localisation("x")
            >>> ok, round(m0, 3), round(m1, 3), round(ms, 3)
            (True, 0.1, 0.6, 0.2)
        """
        m0, s0 = self.summary(stat, self.gains[0])
        m1, s1 = self.summary(stat, self.gains[-1])
        ms, ss = self.summary(stat, self.gains[-1], "shuffled")
        return (m1 - m0 > s0 + s1 and m1 - ms > s1 + ss), m0, m1, ms

    def per_seed(self, stat: str, gain: float, labels: str = "true") -> dict[int, float]:
        """Column ``stat`` at ``gain`` and ``labels``, one value per seed: ``{seed: value}``,
        for :func:`paired_difference`.

        Examples:
            >>> r = EmergenceResult([{"gain": 1.0, "labels": "true", "seed": s, "x": 2.0 * s}
            ...                      for s in (0, 1)], {}, {})
            >>> r.per_seed("x", 1.0)
            {0: 0.0, 1: 2.0}
        """
        out = {
            int(r["seed"]): float(r[stat])
            for r in self.rows
            if r["gain"] == gain and r["labels"] == labels
        }
        if not out:
            raise KeyError(f"no rows for gain={gain}, labels={labels!r}")
        return out

    def kept_identity(self) -> float:
        """The fraction of the RFM fits on the true labels whose validation split kept round
        0, the plain kernel with ``M = I``.

        Examples:
            >>> rows = [{"labels": lab, "rfm_best_iter": i} for lab, i in
            ...         [("true", 0), ("true", 2), ("shuffled", 0)]]
            >>> EmergenceResult(rows, {}, {}).kept_identity()
            0.5
        """
        return float(np.mean([r["rfm_best_iter"] == 0 for r in self.rows if r["labels"] == "true"]))


def emergence_sweep(
    gains: Sequence[float],
    seeds: Sequence[int],
    *,
    D: int = 40,
    n_train: int = 4000,
    n_test: int = 1000,
    xi: tuple[float, float] = (1.0, 2.0),
    width: int = 8,
    steps: int = 3000,
    lr: float = 3e-3,
    batch_size: int = 256,
    optimizer: str = "adam",
    online: bool = False,
    activation: str = "erf",
    n_top: int = 3,
    rfm_train: int = 1000,
    nfa_draws: int = 20,
    rfm_iter: int = 3,
    bandwidth: float = 10.0,
    shuffled: bool = True,
    dtype: torch.dtype = torch.float32,
    device: Device | None = None,
    progress: bool = False,
) -> EmergenceResult:
    r"""For every gain: draw :func:`agop_book.ch07_other_accounts.emergence_task` data per seed, train one network
    per seed on the true labels and (``shuffled``) one on a permutation of them, all together
    (:func:`train_two_layer`; the networks of seed ``s`` are seeded with ``s``, so the
    true- and shuffled-label networks share their start, and a seed's rows do not depend on
    the other seeds swept with it), fit an :class:`agop.RFM` on the first ``rfm_train`` training
    examples with the same labels, and measure the mean IPR of the network's ``width``
    receptive fields and of their changes from initialisation, of the top ``n_top``
    eigenvectors of :math:`W^\top W` and of its AGOP (over its training inputs), and of the top
    ``n_top`` eigenvectors of the RFM's ``M``; the RFM's test accuracy at round 0 (``M = I``)
    and at its last round tells whether its metric learned anything. Gain 0 is the Gaussian
    field with the same covariance: the null. Networks and RFMs run on ``device`` (``None``:
    CUDA when available); the results come back on the CPU.

    ``optimizer`` and ``online`` are :func:`train_two_layer`'s: with ``online=True`` each
    network trains on a stream of ``steps * batch_size`` fresh examples (when that exceeds
    ``n_train``), of which the first ``n_train`` are the inputs of its AGOP and the RFM's
    training examples. The neural feature ansatz of each network's first layer is measured
    against its spectrum-matched null (:func:`fc_ansatz`, ``nfa_draws`` rotations drawn from
    the seed): columns ``nfa`` and ``nfa_null`` at power 1, ``nfa_half`` and
    ``nfa_half_null`` at power 1/2, and the same network's correlation at initialisation,
    ``nfa_init`` and ``nfa_half_init``.

    Examples:
        >>> res = emergence_sweep([0.0], [0], D=8, n_train=60, n_test=20, width=2, steps=5,
        ...                       rfm_train=40, rfm_iter=1, shuffled=False)
        >>> sorted(k for k in res.rows[0] if k.startswith("ipr")), len(res.rows)
        (['ipr_agop', 'ipr_delta', 'ipr_rfm', 'ipr_weights', 'ipr_wtw'], 1)
        >>> sorted(k for k in res.rows[0] if k.startswith("nfa"))
        ['nfa', 'nfa_half', 'nfa_half_init', 'nfa_half_null', 'nfa_init', 'nfa_null']
    """

    gains = check_reals(gains, "gains", minimum=0)
    seeds = check_seeds(seeds)
    n_top = check_int(n_top, "n_top", minimum=1, maximum=D)
    rfm_train = check_int(rfm_train, "rfm_train", minimum=4, maximum=n_train)
    check_int(n_test, "n_test", minimum=1)
    check_int(nfa_draws, "nfa_draws", minimum=2, maximum=_MAX_COUNT)
    steps = check_int(steps, "steps", minimum=0, maximum=_MAX_COUNT)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    n_stream = max(n_train, steps * batch_size) if online else n_train
    dev = default_device(device)  # the networks train there too
    conditions = [(s, lab) for s in seeds for lab in (LABELS if shuffled else LABELS[:1])]
    rows, examples = [], {}
    for gain in tqdm(gains, desc="gains", disable=not progress):
        Xs, ys, tests = [], [], []
        for seed, labels in conditions:
            X, y = emergence_task(n_stream + n_test, D, gain=gain, xi=xi, seed=seed, dtype=dtype)
            X, y, Xt, yt = X[:n_stream], y[:n_stream], X[n_stream:], y[n_stream:]
            if labels == "shuffled":
                y = y[torch.randperm(n_stream, generator=torch.Generator().manual_seed(seed))]
            Xs.append(X)
            ys.append(y)
            tests.append((Xt, yt))
        X_all, y_all = torch.stack(Xs).to(dev), torch.stack(ys).to(dev)
        nets = train_two_layer(
            X_all,
            y_all,
            width=width,
            steps=steps,
            lr=lr,
            batch_size=batch_size,
            activation=activation,
            optimizer=optimizer,
            online=online,
            seed=[seed for seed, _ in conditions],  # a seed's networks: the same start
        )
        inner = two_layer_inner(nets, X_all[:, :n_train])
        start = nets.initial()
        inner0 = two_layer_inner(start, X_all[:, :n_train])
        agops = nets.W.transpose(1, 2) @ inner @ nets.W
        ipr_w = ipr(nets.W).mean(-1).cpu()
        ipr_d = ipr(nets.W - cast(torch.Tensor, nets.W0)).mean(-1).cpu()
        wtw = nets.W.transpose(1, 2) @ nets.W
        ipr_g = ipr(top_eigenvectors(wtw, n_top)).mean(-1).cpu()
        ipr_a = ipr(top_eigenvectors(agops, n_top)).mean(-1).cpu()
        for e, (seed, labels) in enumerate(conditions):
            Xt, yt = tests[e]
            rfm = RFM(
                n_iter=rfm_iter,
                random_state=seed,
                bandwidth=bandwidth,
                device=device,
                progress=False,
            ).fit(Xs[e][:rfm_train], ys[e][:rfm_train])
            M = rfm.Ms_[-1].cpu()  # the last AGOP round, whichever iterate validation keeps
            acc_net = float(((nets(Xt.to(dev))[e].cpu() > 0).long() == yt).float().mean())
            acc_rounds = rfm.score_iterations(Xt, yt.numpy())
            nfa = fc_ansatz(nets.W[e], inner[e], n_draws=nfa_draws, seed=seed)
            nfa0 = fc_ansatz(start.W[e], inner0[e], n_draws=2, seed=seed)  # its null unused
            rows.append(
                {
                    "gain": gain,
                    "seed": seed,
                    "labels": labels,
                    "ipr_weights": float(ipr_w[e]),
                    "ipr_delta": float(ipr_d[e]),
                    "ipr_wtw": float(ipr_g[e]),
                    "ipr_agop": float(ipr_a[e]),
                    "ipr_rfm": float(ipr(top_eigenvectors(M, n_top)).mean()),
                    "acc_net": acc_net,
                    "acc_rfm": float(rfm.score(Xt, yt.numpy())),
                    "acc_rfm_last": float(acc_rounds[-1]),
                    "acc_rfm_identity": float(acc_rounds[0]),
                    "rfm_best_iter": int(rfm.best_iter_),
                    "nfa": nfa[1.0]["trained"],
                    "nfa_null": nfa[1.0]["null_mean"],
                    "nfa_half": nfa[0.5]["trained"],
                    "nfa_half_null": nfa[0.5]["null_mean"],
                    "nfa_init": nfa0[1.0]["trained"],
                    "nfa_half_init": nfa0[0.5]["trained"],
                }
            )
            if seed == seeds[0]:
                examples[(gain, labels)] = {"W": nets.W[e].cpu(), "agop": agops[e].cpu(), "M": M}
    settings = dict(
        D=D,
        n_train=n_train,
        xi=xi,
        width=width,
        steps=steps,
        lr=lr,
        batch_size=batch_size,
        optimizer=optimizer,
        online=online,
        activation=activation,
        n_top=n_top,
        rfm_train=rfm_train,
        rfm_iter=rfm_iter,
    )
    return EmergenceResult(rows, examples, settings)


def paired_difference(a: Mapping[int, float], b: Mapping[int, float]) -> tuple[float, float]:
    """The mean and the sample standard deviation (``ddof=1``) over seeds of the paired
    differences ``a[s] - b[s]``: two measurements of the same seeds (say, one network and its
    null, or one optimiser and another from the same start).

    Examples:
        >>> mean, sd = paired_difference({0: 0.9, 1: 0.8, 2: 1.0}, {0: 0.5, 1: 0.5, 2: 0.5})
        >>> round(mean, 6), round(sd, 6)
        (0.4, 0.1)
    """
    if not isinstance(a, Mapping) or not isinstance(b, Mapping):
        raise TypeError("a and b must map each seed to its value, {seed: value}")
    if set(a) != set(b):
        raise ValueError(f"a and b must hold the same seeds, got {sorted(a)} and {sorted(b)}")
    if len(a) < 2:
        raise ValueError(f"a paired spread needs at least 2 seeds, got {len(a)}")
    d = np.array([check_real(a[s], f"a[{s!r}]") - check_real(b[s], f"b[{s!r}]") for s in sorted(a)])
    if not np.isfinite(d).all():
        raise ValueError("a and b must hold finite values")
    return float(d.mean()), float(d.std(ddof=1))


def emergence_view(
    gain: float,
    width: int,
    *,
    seed: int = 0,
    D: int = 40,
    n_train: int = 4000,
    xi: tuple[float, float] = (1.0, 2.0),
    steps: int = 3000,
    lr: float = 3e-3,
    batch_size: int = 256,
    activation: str = "erf",
    n_top: int = 3,
    dtype: torch.dtype = torch.float32,
    device: Device | None = None,
) -> dict:
    r"""One network at one ``gain`` and ``width`` (what the explorer shows): its receptive
    fields ``W`` (rows, sorted by norm, largest first), the top ``n_top`` eigenvectors of its
    AGOP ``eigvecs`` and the IPR of each (``ipr_weights``, ``ipr_agop``), with the
    reference level ``3 / D`` of a vector of i.i.d. Gaussian entries (``ipr_random``).
    Trained on ``device`` (``None``: CUDA when available); the view is on the CPU.

    Examples:
        >>> view = emergence_view(3.0, 2, D=8, n_train=50, steps=5)
        >>> tuple(view["W"].shape), tuple(view["eigvecs"].shape), view["ipr_random"]
        ((2, 8), (3, 8), 0.375)
    """
    gain = check_real(gain, "gain", minimum=0)
    views = emergence_views(
        [gain], width, seed=seed, D=D, n_train=n_train, xi=xi, steps=steps, lr=lr,
        batch_size=batch_size, activation=activation, n_top=n_top, dtype=dtype, device=device,
    )  # fmt: skip
    return views[gain, width]


def emergence_views(
    gains: Sequence[float],
    width: int,
    *,
    seed: int = 0,
    D: int = 40,
    n_train: int = 4000,
    xi: tuple[float, float] = (1.0, 2.0),
    steps: int = 3000,
    lr: float = 3e-3,
    batch_size: int = 256,
    activation: str = "erf",
    n_top: int = 3,
    dtype: torch.dtype = torch.float32,
    device: Device | None = None,
) -> dict[tuple[float, int], dict]:
    r""":func:`emergence_view` at every gain of ``gains`` and one ``width``, the networks trained
    together as one batch (:func:`train_two_layer`, each with its own generator seeded by
    ``seed``: network ``e`` is the network :func:`emergence_view` trains at ``gains[e]``).
    Returns ``{(gain, width): view}``, what :func:`agop_book.ch07_other_accounts.emergence_explorer` selects
    from.

    Examples:
        >>> views = emergence_views([0.0, 3.0], 2, D=8, n_train=50, steps=5)
        >>> sorted(views), tuple(views[3.0, 2]["W"].shape)
        ([(0.0, 2), (3.0, 2)], (2, 8))
    """
    gains = check_reals(gains, "gains", minimum=0)
    if not gains:
        raise ValueError("gains must hold at least one gain")
    if len(set(gains)) != len(gains):
        raise ValueError(f"gains must be distinct (one view per gain), got {gains}")
    n_train = check_int(n_train, "n_train", minimum=2)
    D = check_int(D, "D", minimum=2)
    n_top = check_int(n_top, "n_top", minimum=1, maximum=D)
    dev = default_device(device)
    data = [emergence_task(n_train, D, gain=g, xi=xi, seed=seed, dtype=dtype) for g in gains]
    X = torch.stack([x for x, _ in data]).to(dev)
    y = torch.stack([t for _, t in data]).to(dev)
    nets = train_two_layer(
        X,
        y,
        width=width,
        steps=steps,
        lr=lr,
        batch_size=batch_size,
        activation=activation,
        seed=[seed] * len(gains),
    )
    agops = two_layer_agop(nets, X).cpu()
    return {(g, width): view_of(g, nets.W[e].cpu(), agops[e], n_top) for e, g in enumerate(gains)}


def view_of(gain: float, W: torch.Tensor, agop: torch.Tensor, n_top: int = 3) -> dict:
    """The explorer's view (see :func:`emergence_view`) of a network already trained at
    ``gain``, from its first layer ``W`` (``(K, D)``) and its AGOP (``(D, D)``); for instance
    one of ``EmergenceResult.examples``, so that the explorer opens without training.

    Examples:
        >>> import torch
        >>> view = view_of(1.0, torch.eye(2, 4), torch.diag(torch.tensor([1.0, 3, 2, 0])), 2)
        >>> view["width"], view["eigvecs"].abs().argmax(1).tolist(), view["ipr_random"]
        (2, [1, 2], 0.75)
    """
    gain = check_real(gain, "gain", minimum=0)
    W = check_finite(as_tensor(W, "W"), "W")
    if W.ndim != 2 or W.numel() == 0:
        raise ValueError(
            f"W must be a non-empty (K, D) matrix of receptive fields, got shape {tuple(W.shape)}"
        )
    agop = check_square(as_tensor(agop, "agop"), "agop", W.shape[1])
    n_top = check_int(n_top, "n_top", minimum=1, maximum=W.shape[1])
    zero = torch.nonzero(W.abs().amax(dim=1) == 0).flatten().tolist()
    if zero:
        raise ValueError(
            f"W holds zero rows {zero}: a zero receptive field has no participation ratio"
        )
    W = W[W.norm(dim=1).argsort(descending=True)]
    vecs = top_eigenvectors(agop, n_top)
    return {
        "gain": gain,
        "width": W.shape[0],
        "W": W,
        "eigvecs": vecs,
        "ipr_weights": ipr(W),
        "ipr_agop": ipr(vecs),
        "ipr_random": 3 / W.shape[1],
    }


def _split_chains(draws: ArrayLike) -> torch.Tensor:
    """``(2m, n // 2, k)`` float64: each chain's two halves (the middle draw of an odd chain
    is dropped), quantities flattened into ``k``."""
    x = torch.as_tensor(draws).detach().to("cpu", torch.float64)
    if x.ndim < 2:
        raise ValueError(f"draws must be (chains, draws, ...), got shape {tuple(x.shape)}")
    m, n = x.shape[:2]
    if m < 1:
        raise ValueError(f"draws must hold at least one chain, got shape {tuple(x.shape)}")
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
    r"""Chapter 6's bars (:func:`agop_book.ch05_deep_convrfm.bars_in_noise`) confined to the rows ``band``.

    Images ``(n, 1, height, width)``: i.i.d. Gaussian noise of variance ``sigma`` everywhere
    (drawn from a generator seeded ``seed + 7919``),
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

    n = check_int(n, "n", minimum=1)
    height = check_int(height, "height", minimum=1)
    width = check_int(width, "width", minimum=1)
    seed = check_seed(seed)
    dtype = check_dtype(dtype, allow_none=False)
    _check_allocation(n * height * width, 16, "n, height, width", "the images")
    if isinstance(band, (str, bytes)) or not isinstance(band, Sequence):
        raise ArgumentTypeError(f"band must be a sequence of row indices, got {band!r}")
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


def _patches(X: torch.Tensor, patch_size: int | None, name: str = "X") -> torch.Tensor:
    """``(n, P, q)`` patches; ``patch_size=None``: the whole image as one patch."""
    X = check_images(X, name)
    if patch_size is None:
        return X.flatten(1)[:, None, :]
    k = check_int(patch_size, "patch_size", minimum=1)
    if k > min(X.shape[2:]):
        raise ValueError(
            f"patch_size must be at most the images' height and width {tuple(X.shape[2:])}, got {k}"
        )
    return extract_patches(X, k)


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
    V = U if Z is None else _patches(Z, patch_size, "Z").transpose(0, 1)
    if V.shape[0] != U.shape[0] or V.shape[2] != U.shape[2]:
        raise ValueError(
            f"Z must have X's channels, height and width {tuple(X.shape[1:])}: its patches are "
            f"{tuple(V.shape[::2])} (positions, values), X's {tuple(U.shape[::2])}"
        )
    return _relu_kernel(U, V)


def _relu_kernel(U: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    """The ReLU NNGP ``(B, n, m)`` between the patches ``U`` ``(B, n, q)`` and ``V`` ``(B, m, q)``."""
    q = U.shape[-1]
    S = torch.bmm(U, V.transpose(1, 2)) / q
    nx = (U * U).sum(-1).div(q).sqrt()
    nz = (V * V).sum(-1).div(q).sqrt()
    norms = nx[:, :, None] * nz[:, None, :]
    cos = torch.where(norms > 0, S / norms.clamp_min(1e-300), torch.zeros_like(S)).clamp(-1, 1)
    theta = torch.arccos(cos)
    return norms / math.pi * (torch.sin(theta) + (math.pi - theta) * cos)


def overlap_kernel(
    X: torch.Tensor, Z: torch.Tensor | None, Q: ArrayLike, patch_size: int = 3
) -> torch.Tensor:
    r"""The CNN's kernel renormalized by the full overlap matrix ``Q`` ``(P, P)``, ``(n, m)``
    (or a stack ``(B, P, P)`` of them, ``(B, n, m)``, at the cost of one):

    .. math:: K(x, z) = \frac1P \sum_{i,j=1}^{P} Q_{ij}\, \kappa(x_i, z_j),

    with :math:`\kappa` the ReLU NNGP of two patches (:func:`nngp_components`, here between
    *different* positions too), and :math:`Q_{ij} = \frac1N \sum_c v_{ci} v_{cj}` the
    read-out's overlaps in the account of Aiudi et al. With one filter (:math:`N = 1`) and
    its read-out held fixed, it is :math:`E_w f(x) f(z)` over the filter, :math:`Q = v v^\top`
    (with more filters :math:`E_w` adds terms in the mean of :math:`\phi` that couple
    different filters). A diagonal ``Q`` gives :func:`local_kernel` of the components.

    Examples:
        >>> import torch
        >>> X = torch.randn(4, 1, 4, 4, dtype=torch.float64)
        >>> Q = torch.tensor([2.0, 0.5, 1.0, 3.0], dtype=torch.float64)
        >>> diag = local_kernel(nngp_components(X, None, 3), Q)
        >>> bool(torch.allclose(overlap_kernel(X, None, torch.diag(Q)), diag))
        True
    """
    U = _patches(X, patch_size)  # (n, P, q)
    V = U if Z is None else _patches(Z, patch_size, "Z")
    P, m = U.shape[1], V.shape[0]
    Q = torch.as_tensor(Q, dtype=U.dtype)
    single = Q.ndim == 2
    Q = Q[None] if single else Q
    if Q.ndim != 3 or Q.shape[1:] != (P, P) or V.shape[1:] != U.shape[1:]:
        raise ValueError(
            f"Q must be ({P}, {P}), one overlap per pair of positions, and Z's patches must "
            f"match X's {tuple(U.shape[1:])}; got Q {tuple(Q.shape)} and {tuple(V.shape[1:])}"
        )
    check_finite(Q, "Q")
    everywhere = V.reshape(1, m * P, -1)
    out = torch.zeros(U.shape[0], m, Q.shape[0], dtype=U.dtype)
    for i in range(P):
        kappa = _relu_kernel(U[None, :, i], everywhere)[0].reshape(-1, m, P)  # k(x_i, z_j)
        out += kappa @ Q[:, i].T
    out = out.permute(2, 0, 1) / P
    return out[0] if single else out


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

    temperature = check_real(temperature, "temperature", minimum=0, strict_minimum=True)
    K_train = check_square(as_tensor(K_train, "K_train"), "K_train")
    n = K_train.shape[0]
    K_test_train = check_finite(as_tensor(K_test_train, "K_test_train"), "K_test_train")
    if K_test_train.ndim != 2 or K_test_train.shape[1] != n:
        raise ValueError(
            f"K_test_train must be (m, {n}), one row per test input against the {n} training "
            f"inputs of K_train, got shape {tuple(K_test_train.shape)}"
        )
    targets = check_finite(as_tensor(y, "y", dtype=K_train.dtype), "y")
    if targets.ndim not in (1, 2) or targets.shape[0] != n:
        raise ValueError(
            f"y must hold {n} targets, one per training input, got shape {tuple(targets.shape)}"
        )
    return K_test_train.to(K_train.dtype) @ ridge(K_train, targets, temperature)


def local_kernel(components: torch.Tensor, weights: ArrayLike) -> torch.Tensor:
    r""":math:`\frac1P \sum_i Q_i K_i` from components ``(P, n, m)`` and weights ``(P,)``.

    Examples:
        >>> import torch
        >>> local_kernel(torch.ones(2, 1, 1), torch.tensor([1.0, 3.0])).item()
        2.0
    """
    weights = torch.as_tensor(weights, dtype=components.dtype)
    check_finite(weights, "weights")
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


def network_output(W: torch.Tensor, V: torch.Tensor, U: torch.Tensor) -> torch.Tensor:
    r"""Outputs ``(S, n)`` of ``S`` one-hidden-layer networks on their patches ``U``
    ``(S, n, P, q)``: :math:`f(x) = \frac{1}{\sqrt{NP}} \sum_{i, c} v_{ci}\,
    \phi(w_c \cdot x_i / \sqrt q)`, ``W`` ``(S, N, q)``, ``V`` ``(S, P, N)``,
    :math:`\phi = \sqrt2\,\mathrm{ReLU}`. With ``P = 1`` and ``q = d`` it is the FC network.
    ``W`` ``(S, P, N, q)`` is the locally connected network (no weight sharing): position
    ``i`` has its own filters, :math:`f(x) = \frac{1}{\sqrt{NP}} \sum_{i, c} v_{ci}\,
    \phi(w_{ci} \cdot x_i / \sqrt q)` (:class:`LocallyConnected`).

    Examples:
        >>> import torch
        >>> W, V = torch.ones(1, 1, 4), torch.tensor([[[1.0], [-1.0]]])
        >>> U = torch.tensor([[[[1.0, 1, 1, 1], [2.0, 2, 2, 2]]]])  # 1 image, 2 patches
        >>> network_output(W, V, U)  # sqrt(2) (2 - 4) / sqrt(2)
        tensor([[-2.]])
    """
    W, V, U = (as_tensor(t, name) for t, name in ((W, "W"), (V, "V"), (U, "U")))
    if U.ndim != 4:
        raise ValueError(f"U must be patches (S, n, P, q), got shape {tuple(U.shape)}")
    S, n, P, q = U.shape
    if W.ndim == 3:
        N = W.shape[1]
        ok = W.shape[0] == S and W.shape[2] == q
    else:
        N = W.shape[2] if W.ndim == 4 else -1
        ok = W.ndim == 4 and W.shape[:2] == (S, P) and W.shape[3] == q
    if not ok:
        raise ValueError(
            f"W must be ({S}, N, {q}) (shared filters) or ({S}, {P}, N, {q}) (locally "
            f"connected) for patches U of shape {tuple(U.shape)}, got shape {tuple(W.shape)}"
        )
    if V.shape != (S, P, N):
        raise ValueError(
            f"V must be ({S}, {P}, {N}), one read-out per position and filter, got shape {tuple(V.shape)}"
        )
    phi = _hidden(W, U)  # (S, n, P, N)
    out = torch.bmm(phi.reshape(S, n, -1), V.reshape(S, -1, 1))[..., 0]
    return out / math.sqrt(V.shape[2] * P)


def _hidden(W: torch.Tensor, U: torch.Tensor) -> torch.Tensor:
    r""":math:`\phi(w_c \cdot x_i / \sqrt q)` ``(S, n, P, N)`` by one batched product."""
    S, n, P, q = U.shape
    if W.ndim == 4:  # locally connected: (S, P, N, q), one bmm per chain and position
        Ub = U.transpose(1, 2).reshape(S * P, n, q)
        h = torch.bmm(Ub, W.reshape(S * P, -1, q).transpose(1, 2)).mul(1 / math.sqrt(q))
        return torch.relu(h).mul(math.sqrt(2.0)).reshape(S, P, n, -1).transpose(1, 2)
    h = torch.bmm(U.reshape(S, n * P, q), W.transpose(1, 2)).mul(1 / math.sqrt(q))
    return torch.relu(h).mul(math.sqrt(2.0)).reshape(S, n, P, -1)


class LocallyConnected(torch.nn.Module):
    r"""A one-hidden-layer locally connected network: a convolution without weight sharing,
    each patch position :math:`i` with its own ``width`` filters :math:`w_{ci}`,

    .. math:: f(x) = \frac{1}{\sqrt{NP}} \sum_{i=1}^{P} \sum_{c=1}^{N} v_{ci}\,
              \phi(w_{ci} \cdot x_i / \sqrt q), \qquad \phi = \sqrt2\,\mathrm{ReLU},

    on the ``P`` VALID ``patch_size x patch_size`` patches :math:`x_i` (``q`` values each)
    of ``(n, channels, height, width)`` images. Parameters: ``weight`` ``(P, N, q)`` and
    ``readout`` ``(P, N)``, unit Gaussian (the prior of :func:`sample_posterior` with
    ``shared=False``). Its infinite-width kernel is the CNN's (the mean over positions of
    :func:`nngp_components`): the two differ only at finite width.

    Examples:
        With every position's filters equal, it is the CNN of :func:`network_output`:

        >>> import torch
        >>> net = LocallyConnected(1, 4, 4, patch_size=3, width=2, seed=0).double()
        >>> with torch.no_grad():
        ...     net.weight[:] = net.weight[0]
        >>> X = torch.randn(3, 1, 4, 4, dtype=torch.float64)
        >>> cnn = network_output(net.weight[None, 0], net.readout[None],
        ...                      extract_patches(X, 3)[None])[0]
        >>> bool(torch.allclose(net(X), cnn))
        True
    """

    def __init__(
        self, channels: int, height: int, width_px: int, *, patch_size: int, width: int,
        seed: int = 0,
    ) -> None:  # fmt: skip
        super().__init__()
        for v, name in (
            (channels, "channels"),
            (height, "height"),
            (width_px, "width_px"),
            (width, "width"),
            (patch_size, "patch_size"),
        ):
            check_int(v, name, minimum=1)
        if patch_size > min(height, width_px):
            raise ValueError(
                f"patch_size must be at most the image's height and width "
                f"({height}, {width_px}), got {patch_size}"
            )
        self.patch_size = int(patch_size)
        P = (height - patch_size + 1) * (width_px - patch_size + 1)
        q = channels * patch_size**2
        _check_allocation(
            P * width * (q + 1), 4, "width, channels, height, width_px, patch_size", "the weights"
        )
        g = torch.Generator().manual_seed(check_seed(seed))
        self.weight = torch.nn.Parameter(torch.randn(P, width, q, generator=g))
        self.readout = torch.nn.Parameter(torch.randn(P, width, generator=g))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """Outputs ``(n,)`` of images ``X`` ``(n, channels, height, width)``."""
        U = extract_patches(X, self.patch_size)
        if U.shape[1:] != (self.weight.shape[0], self.weight.shape[2]):
            raise ValueError(
                f"X must give {self.weight.shape[0]} patches of {self.weight.shape[2]} values, "
                f"got {tuple(U.shape[1:])} from images of shape {tuple(X.shape[1:])}"
            )
        return network_output(self.weight[None], self.readout[None], U[None])[0]


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
    if not callable(energy):
        raise ArgumentTypeError(
            f"energy must be a function of the parameters, got {type(energy).__name__}"
        )
    if callback is not None and not callable(callback):
        raise ArgumentTypeError(
            f"callback must be None or a function, got {type(callback).__name__}"
        )
    check_int(n_steps, "n_steps", minimum=0, maximum=_MAX_COUNT)
    eta = check_real(step_size, "step_size", minimum=0, strict_minimum=True)
    if isinstance(params, torch.Tensor) or not isinstance(params, Sequence):
        raise ArgumentTypeError(
            f"params must be a list of tensors (for one, pass [tensor]), got {type(params).__name__}"
        )
    if not params:
        raise ValueError("params must hold at least one tensor, got an empty list")
    for i, p in enumerate(params):
        if not isinstance(p, torch.Tensor) or not p.is_floating_point():
            raise ArgumentTypeError(f"params[{i}] must be a floating-point tensor, got {p!r}"[:200])
        check_finite(p, f"params[{i}]")
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
        e = energy(*params)
        if not isinstance(e, torch.Tensor):
            raise ArgumentTypeError(f"energy must return a tensor, got {type(e).__name__}")
        grads = torch.autograd.grad(e.sum(), params)
        with torch.no_grad():
            for p, g in zip(params, grads, strict=True):
                p.add_(g, alpha=-eta)
                p.add_(noise(p), alpha=noise_scale)
        if callback is not None:
            callback(t, params)
    if not all(all_finite(p) for p in params):
        raise ValueError(
            f"step_size={eta!r}: the chains diverged (non-finite parameters after {n_steps} "
            "steps); lower step_size"
        )
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
    (for the convergence diagnostics of :mod:`agop_book.ch07_other_accounts`): ``Q_trace``
    ``(S, n_samples, P)`` and ``test_trace`` ``(S, n_samples, k)``, the outputs on the first
    ``k = min(100, n_test)`` test images. ``Q_pairs`` ``(S, P, P)``: the posterior mean of the
    overlaps :math:`Q_{ij} = \\frac1N \\sum_c v_{ci} v_{cj}` (its diagonal is ``Q``), or None.

    See :func:`sample_posterior` for an example.
    """

    test_mean: torch.Tensor
    Q: torch.Tensor
    kernel: torch.Tensor
    train_loss: torch.Tensor
    n_samples: int
    Q_trace: torch.Tensor
    test_trace: torch.Tensor
    Q_pairs: torch.Tensor | None = None


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
    shared: bool = True,
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
    is the same whichever chains are stacked with it). ``shared=False`` samples the locally
    connected network instead of the CNN (:class:`LocallyConnected`: first-layer weights
    ``(P, width, q)`` per chain, drawn before the read-out).

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
    n_steps = check_int(n_steps, "n_steps", minimum=1, maximum=_MAX_COUNT)
    burn_in = check_int(burn_in, "burn_in", minimum=0)
    if burn_in >= n_steps:
        raise ValueError(f"burn_in must be below n_steps={n_steps} (no samples), got {burn_in}")
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
    if not isinstance(shared, bool):
        raise TypeError(f"shared must be a bool, got {type(shared).__name__}")
    if not shared and patch_size is None:
        raise ValueError("shared=False (locally connected) needs an int patch_size, got None")
    wshape = (width, q) if shared else (P, width, q)
    noise: torch.Generator | list[torch.Generator]
    if not isinstance(seed, Sequence):
        seed = check_seed(seed)
        g = torch.Generator().manual_seed(seed)
        W0 = torch.randn(S, *wshape, generator=g, dtype=dtype).to(device)
        V0 = torch.randn(S, P, width, generator=g, dtype=dtype).to(device)
        noise = torch.Generator(device=device).manual_seed(seed + 1)
    else:
        seeds = [check_seed(s, "seed[s]") for s in seed]
        if len(seeds) != S:
            raise ValueError(f"seed must be an int or {S} ints (one per chain), got {len(seeds)}")
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        W0 = torch.stack([torch.randn(*wshape, generator=g, dtype=dtype) for g in gens])
        V0 = torch.stack([torch.randn(P, width, generator=g, dtype=dtype) for g in gens])
        W0, V0 = W0.to(device), V0.to(device)
        noise = [torch.Generator(device=device).manual_seed(s + 1) for s in seeds]
    W0, V0 = W0 * init_scale, V0 * init_scale
    n_trace = min(100, U_test.shape[1])

    def energy(W, V):
        residual = target - network_output(W, V, U)
        return (residual**2).sum(-1) / (2 * T) + ((W**2).flatten(1).sum(1) + (V**2).sum((1, 2))) / 2

    acc: dict[str, Any] = {
        "test": torch.zeros(S, U_test.shape[1], dtype=torch.float64),
        "Q": torch.zeros(S, P, dtype=torch.float64),
        "K": torch.zeros(S, n, n, dtype=torch.float64),
        "QQ": torch.zeros(S, P, P, dtype=torch.float64),
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
            acc["QQ"] += (V @ V.transpose(1, 2)).double().cpu() / width
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
        acc["QQ"] / m,
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
    # float64: a sign is all that is read, and a float32 reading of a Python list would turn
    # an output of 1e-300 into 0 (class 0)
    output = as_tensor(output, "output", dtype=torch.float64)
    y = as_tensor(y, "y")

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
    locally_connected: bool = False,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device | None = "cpu",
) -> dict:
    r"""CNN and FC posteriors (:func:`sample_posterior`) at every width on :func:`band_task`,
    the infinite-width GPs, and ConvRFM / Deep ConvRFM (:func:`agop_book.ch05_deep_convrfm.evaluate_methods`).

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
    size (:mod:`agop_book.ch07_other_accounts`, the ``chains`` chains of a seed, over all seeds)
    of the :math:`Q_i` (``rhat_Q``, ``ess_Q``) and of the outputs on the first 100 test images
    (``rhat_test``, ``ess_test``); chains of fewer than 4 samples cannot be diagnosed and get
    :math:`\hat R = \infty` and an effective sample size of 0. Chains start from prior draws times ``init_scale``.
    ``locally_connected``: the locally connected network too (``"LCN"``, sampled like the CNN
    with ``shared=False``; its infinite-width limit is the local NNGP): its rows, ``Q_lcn``
    (width -> ``(seeds, P)``), ``test_mean[N]["LCN"]`` and its ``convergence`` entries.
    The CNN's full overlaps: ``Q_pairs`` (width -> ``(seeds, P, P)``, the posterior mean of
    :math:`Q_{ij}`), the rows ``"local, measured full Q"`` (the GP with
    :func:`overlap_kernel` of those overlaps) and ``off_diagonal`` (width -> dict of
    ``(seeds,)`` arrays): ``kernel`` the relative change
    :math:`\|K_{\rm full} - K_{\rm diag}\|_F / \|K_{\rm diag}\|_F` on the training images
    that the off-diagonal overlaps make, ``prediction`` the same for the GP's test outputs,
    ``empirical_diag`` and ``empirical_full`` the relative distance of the posterior's
    empirical kernel to :math:`K_{\rm diag}` and to :math:`K_{\rm full}`.

    Examples:
        >>> out = width_sweep([4], [0], n_train=20, n_test=20, sigma=2.0, temperature=0.1,
        ...                   n_steps=40, step_size=1e-3, every=5, rfm=False)
        >>> sorted({r["method"] for r in out["rows"]})
        ['CNN', 'FC', 'NNGP FC', 'NNGP local (uniform Q)', 'local, band only', 'local, measured Q',
         'local, measured full Q']
        >>> out["Q"][4].shape, out["grid"]
        ((1, 24), (6, 4))
    """
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence):
        raise ArgumentTypeError(f"widths must be a non-empty sequence, got {widths!r}")
    if not widths:
        raise ValueError(
            f"widths must hold at least one value, got an empty {type(widths).__name__}"
        )
    for i, N in enumerate(widths):
        check_int(N, f"widths[{i}]", minimum=1)
    if len(set(widths)) != len(widths):
        raise ValueError(
            "widths must be distinct (a repeated one repeats its runs, and its results "
            f"are keyed by it), got {list(widths)}"
        )
    seeds = check_seeds(seeds)
    check_int(n_train, "n_train", minimum=1)
    check_int(n_test, "n_test", minimum=1)
    if task is not None and not isinstance(task, Mapping):
        raise ArgumentTypeError(f"task must be None or a dict of band_task's options, got {task!r}")
    unknown = set(task or {}) - {"height", "width", "band"}
    if unknown:
        raise ValueError(
            f"task: unknown options {sorted(unknown, key=str)}; it takes height, width and band"
        )
    temperature = check_real(temperature, "temperature", minimum=0, strict_minimum=True)
    check_int(patch_size, "patch_size", minimum=1)
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
        "Q_lcn": {},
        "Q_pairs": {},
        "off_diagonal": {},
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
    cnn_kernel: dict[int, torch.Tensor] = {}
    for N in widths:

        def chain_seeds(kind: int, N: int = N) -> list[int]:
            return [
                int(np.random.SeedSequence([N, int(seed), c, kind]).generate_state(1)[0])
                for seed in seeds
                for c in range(chains)
            ]

        cnn = sample_posterior(*rep, width=N, patch_size=patch_size, seed=chain_seeds(0), **run)
        fc = sample_posterior(*rep, width=N, patch_size=None, seed=chain_seeds(1), **run)
        nets = {"CNN": cnn, "FC": fc}
        if locally_connected:
            nets["LCN"] = sample_posterior(
                *rep, width=N, patch_size=patch_size, shared=False, seed=chain_seeds(2), **run
            )
        for name, post in nets.items():
            out["convergence"].append({"network": name, "width": N, **_diagnose(post, chains)})
        nets = {name: _pool(post, chains) for name, post in nets.items()}
        cnn, fc = nets["CNN"], nets["FC"]
        out["test_mean"][N] = {name: post.test_mean.numpy() for name, post in nets.items()}
        if locally_connected:
            out["Q_lcn"][N] = nets["LCN"].Q.numpy()
        if cnn.Q_pairs is not None:
            out["Q_pairs"][N] = cnn.Q_pairs.numpy()
            cnn_kernel[N] = cnn.kernel
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
            for name, post in nets.items():
                rows.append(
                    {
                        "method": name,
                        "width": N,
                        "seed": seed,
                        "accuracy": accuracy(post.test_mean[s], yt[s]),
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
    if cnn_kernel:
        out["off_diagonal"] = _off_diagonal(
            out["Q_pairs"], cnn_kernel, X, Xt, yt, target, comps, comps_t, temperature,
            patch_size, seeds, rows,
        )  # fmt: skip
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


def _off_diagonal(
    Q_pairs: Mapping[int, np.ndarray],
    kernel: Mapping[int, torch.Tensor],
    X: torch.Tensor,
    Xt: torch.Tensor,
    yt: torch.Tensor,
    target: torch.Tensor,
    comps: Sequence[torch.Tensor],
    comps_t: Sequence[torch.Tensor],
    temperature: float,
    patch_size: int,
    seeds: Sequence[int],
    rows: list[dict],
) -> dict[int, dict[str, np.ndarray]]:
    """What the CNN's off-diagonal overlaps change at each width: kernel, GP predictions, fit
    to the empirical kernel (see :func:`width_sweep`); appends the ``"local, measured full Q"``
    rows. The cross-position kernels are computed once per seed for all widths."""
    widths = list(Q_pairs)
    keys = ("kernel", "prediction", "empirical_diag", "empirical_full")
    res: dict[int, dict[str, list[float]]] = {N: {k: [] for k in keys} for N in widths}

    def rel(a: torch.Tensor, b: torch.Tensor) -> float:
        return float(torch.linalg.norm(a - b) / torch.linalg.norm(b))

    for s, seed in enumerate(seeds):
        Qs = torch.as_tensor(np.stack([Q_pairs[N][s] for N in widths]))
        full_all = (
            overlap_kernel(X[s], None, Qs, patch_size),
            overlap_kernel(Xt[s], X[s], Qs, patch_size),
        )
        for b, N in enumerate(widths):
            q = Qs[b].diagonal()
            diag = (local_kernel(comps[s], q), local_kernel(comps_t[s], q))
            full = (full_all[0][b], full_all[1][b])
            p_diag, p_full = (gp_posterior_mean(*k, target[s], temperature) for k in (diag, full))
            r = res[N]
            r["kernel"].append(rel(full[0], diag[0]))
            r["prediction"].append(rel(p_full, p_diag))
            r["empirical_diag"].append(rel(diag[0], kernel[N][s]))
            r["empirical_full"].append(rel(full[0], kernel[N][s]))
            acc = accuracy(p_full, yt[s])
            rows.append(
                {"method": "local, measured full Q", "width": N, "seed": seed, "accuracy": acc}
            )
    return {N: {k: np.array(v) for k, v in r.items()} for N, r in res.items()}


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
        None if post.Q_pairs is None else mean(post.Q_pairs),
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
    """(mean, sample standard deviation) over seeds of one method's test accuracy (at one
    width); the standard deviation has ``ddof=1`` (0.0 for one seed).

    Examples:
        >>> rows = [{"method": "CNN", "width": 8, "seed": s, "accuracy": a}
        ...         for s, a in enumerate([0.7, 0.8, 0.9])]
        >>> [round(v, 3) for v in summarise(rows, "CNN", 8)]
        [0.8, 0.1]
    """
    records = _check_records(rows, "rows", ("method", "width"))
    acc = [
        check_real(r["accuracy"] if "accuracy" in r else None, f"rows[{i}]['accuracy']")
        for i, r in enumerate(records)
        if r["method"] == method and r["width"] == width
    ]
    if not acc:
        have = sorted({(r["method"], r["width"]) for r in records}, key=str)
        raise ValueError(
            f"method={method!r}, width={width!r}: no row of rows has them; rows hold "
            f"(method, width) {have}"
        )
    return _mean_sd(acc)


def gap(rows: Sequence[dict], method: str, ref: str, width: int) -> tuple[float, float]:
    """``method``'s mean accuracy at ``width`` minus kernel ``ref``'s mean accuracy, with the
    spread of the difference, :math:`\\sqrt{s_a^2 + s_b^2}` (the two seed spreads).

    Examples:
        >>> rows = [{"method": "CNN", "width": 8, "accuracy": a} for a in (0.7, 0.8, 0.9)]
        >>> rows += [{"method": "NNGP", "width": None, "accuracy": a} for a in (0.6, 0.6)]
        >>> [round(v, 3) for v in gap(rows, "CNN", "NNGP", 8)]
        [0.2, 0.1]
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
    """Mean and sample standard deviation (``ddof=1``, 0.0 for one seed) over seeds of the
    ratio of the mean weight on the positions that see the band to the mean on the others,
    from ``Q`` ``(seeds, P)`` (:func:`width_sweep`'s ``Q`` or ``Q_fit``) and the ``(P,)`` mask
    ``band_positions``.

    ``Q`` must be finite and non-negative (a weight per position). The ratio is undefined for a
    seed whose ``Q`` is zero on every position off the band (a fitted ``Q_fit`` can be): such a
    ``Q`` raises ``ValueError`` naming the seed, rather than giving ``(inf, nan)``.

    Examples:
        >>> band_ratio([[2.0, 1.0, 1.0], [4.0, 1.0, 1.0], [6.0, 1.0, 1.0]],
        ...            [True, False, False])
        (4.0, 2.0)
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
    return _mean_sd(r)


def plot_emergence_ipr(
    rows: Sequence[Mapping[str, Any]],
    stats: Mapping[str, str] | None = None,
    ipr_random: float | None = None,
    fig: Figure | None = None,
) -> Figure:
    """Localisation against the input gain: the mean IPR (over seeds, band of one sample
    standard deviation, ``ddof=1``; none for a single seed) of each statistic in ``stats`` (``{column: panel title}``; default: the
    receptive fields, the AGOP's and the RFM's top eigenvectors), for the true and the
    shuffled labels. ``rows``: the rows of :func:`agop_book.ch07_other_accounts.emergence_sweep`.
    ``ipr_random``: a dashed reference line (``3/D``, i.i.d. Gaussian entries). Returns the
    figure.

    Examples:
        >>> import matplotlib.pyplot as plt
        >>> rows = [{"gain": g, "labels": lab, "seed": s, "ipr_weights": 0.1 + g / 100}
        ...         for g in (0.0, 3.0) for lab in ("true", "shuffled") for s in (0, 1)]
        >>> fig = plot_emergence_ipr(rows, {"ipr_weights": "weights"}, ipr_random=0.075)
        >>> [line.get_label() for line in fig.axes[0].get_lines()][:2]
        ['true labels', 'shuffled labels']
        >>> plt.close(fig)
    """

    if stats is None:
        stats = {
            "ipr_weights": "network: receptive fields (rows of $W$)",
            "ipr_agop": "network: top AGOP eigenvectors",
            "ipr_rfm": "RFM: top eigenvectors of $M$",
        }
    _check_mapping(stats, "stats", "{column: panel title}")
    rows = _check_records(rows, "rows", ("gain", "labels", *stats), ("gain", *stats))
    for i, r in enumerate(rows):
        if r["labels"] not in ("true", "shuffled"):
            raise ValueError(
                f"rows[{i}]['labels'] must be 'true' or 'shuffled', got {r['labels']!r}"
            )
    if ipr_random is not None:
        ipr_random = check_real(ipr_random, "ipr_random", minimum=0)
    _check_figure(fig)
    if fig is None:
        fig = plt.figure(figsize=(3.8 * len(stats), 3.2))
    fig.clear()
    axes = fig.subplots(1, len(stats), sharey=True, squeeze=False)[0]
    gains = sorted({r["gain"] for r in rows})
    x = np.arange(len(gains))
    for ax, (stat, title) in zip(axes, stats.items(), strict=True):
        for labels, style in (("true", "-o"), ("shuffled", "--s")):
            vals = [
                [r[stat] for r in rows if r["gain"] == g and r["labels"] == labels] for g in gains
            ]
            if not any(vals):
                continue
            mean, sd = np.array([_mean_sd(v) for v in vals]).T
            ax.plot(x, mean, style, ms=4, label=f"{labels} labels")
            ax.fill_between(x, mean - sd, mean + sd, alpha=0.2)
        if ipr_random is not None:
            ax.axhline(ipr_random, color="gray", ls=":", lw=1, label="i.i.d. Gaussian vector")
        ax.set_xticks(x)
        ax.set_xticklabels([f"{g:g}" for g in gains])
        ax.set_xlabel("gain (0: Gaussian)")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("mean IPR")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_emergence_view(
    view: Mapping[str, Any], n_fields: int = 4, fig: Figure | None = None
) -> Figure:
    """One network of the emergence task: its ``n_fields`` largest receptive fields (rows of
    ``W``) and the top eigenvectors of its AGOP, drawn against the input site, each with its
    IPR. ``view``: a dict from :func:`agop_book.ch07_other_accounts.emergence_view`. Returns the
    figure.

    Examples:
        >>> import matplotlib.pyplot as plt
        >>> import torch
        >>> from agop_book.ch07_other_accounts import ipr
        >>> W, V = torch.eye(3, 6), torch.ones(2, 6)
        >>> view = {"gain": 1.0, "width": 3, "W": W, "eigvecs": V, "ipr_weights": ipr(W),
        ...         "ipr_agop": ipr(V), "ipr_random": 0.5}
        >>> fig = plot_emergence_view(view, n_fields=2)
        >>> [ax.get_title() for ax in fig.axes]
        ['receptive fields (mean IPR 1.00)', 'AGOP eigenvectors (mean IPR 0.17)']
        >>> plt.close(fig)
    """

    view = _check_emergence_view(view, "view")
    n_fields = check_int(n_fields, "n_fields", minimum=1)
    _check_figure(fig)
    if fig is None:
        fig = plt.figure(figsize=(9.0, 3.0))
    fig.clear()
    axes = fig.subplots(1, 2)
    panels = [
        (axes[0], view["W"][:n_fields], view["ipr_weights"], "receptive fields", "unit"),
        (axes[1], view["eigvecs"], view["ipr_agop"], "AGOP eigenvectors", "eigenvector"),
    ]
    for ax, vecs, iprs, title, what in panels:
        for i, v in enumerate(vecs.detach().cpu()):
            v = v / v.abs().max().clamp_min(torch.finfo(v.dtype).tiny)  # a zero field stays 0
            v = v * (1 if v[v.abs().argmax()] > 0 else -1)  # the largest entry upwards
            ax.plot(v.numpy() - 2.2 * i, lw=1.2, label=f"{what} {i + 1}: IPR {float(iprs[i]):.2f}")
        ax.set_yticks([])
        ax.set_xlabel("input site")
        ax.set_title(f"{title} (mean IPR {float(iprs.mean()):.2f})", fontsize=9)
        ax.legend(fontsize=6, loc="upper right")
    fig.suptitle(
        f"gain {view['gain']:g}, width {view['width']}; an i.i.d. Gaussian vector "
        f"has IPR about {view['ipr_random']:.3f}",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def _check_emergence_view(view: Any, name: str) -> dict[str, Any]:
    """``view`` (a dict from :func:`emergence_view`) with its parts checked: ``W`` ``(K, D)``
    and ``eigvecs`` ``(n, D)`` finite and non-empty, one finite IPR per row of each."""
    keys = ("gain", "width", "W", "eigvecs", "ipr_weights", "ipr_agop", "ipr_random")
    if not isinstance(view, Mapping) or any(k not in view for k in keys):
        got = sorted(view) if isinstance(view, Mapping) else type(view).__name__
        raise ValueError(f"{name} must be a dict from emergence_view with keys {keys}, got {got}")
    out = dict(view)
    for key in ("W", "eigvecs"):
        where = f"{name}[{key!r}]"
        x = check_finite(as_tensor(view[key], where, dtype=torch.float64, device="cpu"), where)
        if x.ndim != 2 or x.numel() == 0:
            raise ValueError(
                f"{where} must be a non-empty (rows, D) matrix, got shape {tuple(x.shape)}"
            )
        out[key] = x
    if out["eigvecs"].shape[1] != out["W"].shape[1]:
        raise ValueError(
            f"{name}['eigvecs'] must have D = {out['W'].shape[1]} columns as {name}['W'] has, "
            f"got shape {tuple(out['eigvecs'].shape)}"
        )
    for key, rows in (("ipr_weights", "W"), ("ipr_agop", "eigvecs")):
        where = f"{name}[{key!r}]"
        x = check_finite(as_tensor(view[key], where, dtype=torch.float64, device="cpu"), where)
        if tuple(x.shape) != (out[rows].shape[0],):
            raise ValueError(
                f"{where} must hold one IPR per row of {name}[{rows!r}] ({out[rows].shape[0]}), "
                f"got shape {tuple(x.shape)}"
            )
        out[key] = x
    out["gain"] = check_real(view["gain"], f"{name}['gain']", minimum=0)
    out["width"] = check_int(view["width"], f"{name}['width']", minimum=1)
    out["ipr_random"] = check_real(view["ipr_random"], f"{name}['ipr_random']", minimum=0)
    return out


def emergence_explorer(views: Mapping[tuple[float, int], Any]) -> Any:
    """Emergence of localised receptive fields: a gain and a width -> one trained
    fully connected network's receptive fields and the top eigenvectors of its AGOP, with
    their IPR, drawn by :func:`plot_emergence_view` (the chapter's static twin).
    ``views``: ``{(gain, width): view}``, computed beforehand (the sweep's networks and
    :func:`agop_book.ch07_other_accounts.emergence_views`): the explorer trains nothing, it
    selects among them, so that every interaction is one redraw. The sliders offer the gains
    and widths of ``views``; a pair it does not hold says so. Opens on the largest gain and the
    smallest width. Returns the widget.

    Examples:
        >>> import contextlib, io
        >>> from agop_book.ch07_other_accounts import emergence_views
        >>> views = emergence_views([0.0, 3.0], 2, D=8, n_train=40, steps=2)
        >>> with contextlib.redirect_stdout(io.StringIO()):
        ...     explorer = emergence_explorer(views)
        >>> [(w.description, w.value) for w in explorer.children[0].children]
        [('gain', 3.0), ('width', 2)]
    """
    import ipywidgets as w

    _check_mapping(views, "views", "{(gain, width): view}")
    checked = {}
    for key, view in views.items():
        if not isinstance(key, tuple) or len(key) != 2:
            raise ArgumentTypeError(f"views: each key must be a pair (gain, width), got {key!r}")
        gain = check_real(key[0], f"views: the gain of {key!r}", minimum=0)
        width = check_int(key[1], f"views: the width of {key!r}", minimum=1)
        checked[gain, width] = _check_emergence_view(view, f"views[{key!r}]")
    views = checked
    gains = sorted({g for g, _ in views})
    widths = sorted({k for _, k in views})
    controls = {
        "gain": w.SelectionSlider(options=gains, value=gains[-1], description="gain"),
        "width": w.SelectionSlider(options=widths, value=widths[0], description="width"),
    }
    out = w.Output()
    fig = plt.figure(figsize=(9.0, 3.0))
    plt.close(fig)

    def draw(gain, width):
        with out:
            out.clear_output(wait=True)
            if (gain, width) not in views:
                print(f"no network computed at gain {gain:g} and width {width}")
                return
            plot_emergence_view(views[(gain, width)], fig=fig)
            from IPython.display import display

            display(fig)

    w.interactive_output(draw, controls)
    return w.VBox([w.HBox(list(controls.values())), out])
