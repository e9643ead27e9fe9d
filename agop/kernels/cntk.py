r"""Convolutional NNGP/NTK kernels on patches in a learned metric :math:`M`.

The deep CNTK is the kernel of Neural Tangents' ``stax`` for
``[Conv(w, (k, k), W_std=k, b_std=0, padding='VALID') -> ABRelu(0, sqrt 2)] * depth ->
Flatten() -> Dense(1, W_std=1)`` (NTK parameterisation), whose first layer reads the patch
vectors transformed by :math:`M^{1/2}`. Without pooling only same-position covariances enter:
:math:`\Sigma_1(x, z)[j] = \frac1c \langle x[j], z[j] \rangle_M` (a channel mean;
``W_std = k`` on a fan-in of :math:`c k^2` makes each layer *sum* its input covariance over its
:math:`k \times k` window), then
:mod:`agop.kernels.arccos` layer by layer, and the read-out averages over positions.
"""

from __future__ import annotations

import dataclasses

from agop._typing import ArrayLike, Device, Tensor
from agop.kernels import arccos
from agop.kernels._driver import PatchGrid
from agop.kernels._inputs import snap_tolerance
from agop.kernels.objects import Kernel, _pow2_scale, kernel_function
from agop.validation import check_choice


def _layers(
    S: Tensor, sx: Tensor, sz: Tensor, grid: PatchGrid, depth: int, scale: float
) -> tuple[Tensor, list[Tensor], list[Tensor]]:
    """The first layer's covariances ``scale * S`` as ``(H1, W1, tn, tm)`` (in ``S``'s
    buffer) and the variances of the rows and columns at every layer
    (:func:`agop.kernels.arccos.diagonals`), ``(H_l, W_l, tn, 1)`` and ``(H_l, W_l, 1, tm)``."""
    H1, W1, k = grid.rows, grid.cols, grid.patch_size
    S1 = S.mul_(scale).view(H1, W1, *S.shape[1:])
    sxl = arccos.diagonals(sx.mul(scale).view(H1, W1, *sx.shape[1:]), k, depth)
    szl = arccos.diagonals(sz.mul(scale).view(H1, W1, *sz.shape[1:]), k, depth)
    return S1, sxl, szl


@dataclasses.dataclass
class _Arccos(Kernel):
    """The arc-cosine kernels' tile (:mod:`agop.kernels.arccos`) and its hand-derived
    backward; subclasses set the depth, the kind and the scale of the first layer."""

    differentiable = False  # the arc-cosine recursion works in place (out=)

    def _rescaled(self, X: Tensor, Z: Tensor, root: Tensor | None):
        """The ReLU kernels are positively homogeneous of degree 1 in each argument,
        ``K(aX, bZ) = a b K(X, Z)``; the gradient in ``x`` of ``K(x, Z)`` is ``1/b`` times that
        of ``K(ax, bZ)`` at ``ax``."""
        a = _pow2_scale(X, root)
        b = a if Z is X else _pow2_scale(Z, root)
        if a == 1.0 and b == 1.0:
            return self, X, Z, 1.0, 1.0
        Xs = X * a
        # (1 / a) (1 / b): a b itself may vanish (2^-665 squared) where the product is inf
        return self, Xs, Xs if Z is X else Z * b, (1.0 / a) * (1.0 / b), 1.0 / b

    def _spec(self, grid: PatchGrid) -> tuple[int, bool, float]:
        """``(depth, ntk, scale)``: ``Sigma_1 = scale <u_x[j], u_z[j]>``."""
        raise NotImplementedError

    def block(self, S: Tensor, sx: Tensor, sz: Tensor, grid: PatchGrid) -> Tensor:
        depth, ntk, scale = self._spec(grid)
        S1, sxl, szl = _layers(S, sx, sz, grid, depth, scale)
        return arccos.forward(S1, sxl, szl, grid.patch_size, depth, ntk, snap_tolerance(S.dtype))

    def grad_block(
        self, S: Tensor, sx: Tensor, sz: Tensor, grid: PatchGrid
    ) -> tuple[Tensor, Tensor]:
        """``grad_{u_x[j]} K = scale (dK/dSigma_1 u_z[j] + 2 dK/dSigma_1(x,x) u_x[j])``."""
        depth, ntk, scale = self._spec(grid)
        S1, sxl, szl = _layers(S, sx, sz, grid, depth, scale)
        _, S_bar, sx_bar = arccos.forward_backward(
            S1, sxl, szl, grid.patch_size, depth, ntk, snap_tolerance(S.dtype)
        )
        a = S_bar.mul_(scale).view(S.shape)
        b = sx_bar.mul_(2 * scale).view(S.shape)
        return a, b

    def _pair_tensors(self, grad: bool) -> float:
        depth = self._spec(PatchGrid(1, 1, 1, 1))[0]
        return (4 * depth + 8) if grad else 8


@dataclasses.dataclass
class CNNGP(_Arccos, name="cnngp"):
    """NNGP of one hidden ReLU conv layer with a fully connected read-out
    (:func:`agop.kernels.cnngp`), with zero ``padding``.

    Examples:
        >>> import torch
        >>> X = torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(0),
        ...                dtype=torch.float64)
        >>> dual_coef = torch.ones(3, 1, dtype=torch.float64)
        >>> A = CNNGP(patch_size=3).agop(X, X, dual_coef)  # the patch-AGOP of K(., X) dual_coef
        >>> tuple(A.shape), bool(torch.linalg.eigvalsh(A).min() > -1e-12)
        ((9, 9), True)
    """

    padding: int = 0

    def _spec(self, grid: PatchGrid) -> tuple[int, bool, float]:
        return 1, False, 1.0


@dataclasses.dataclass
class CNTK(_Arccos, name="cntk"):
    """Deep convolutional NTK (``kind="ntk"``) or NNGP (``kind="nngp"``) of ``depth`` layers
    (:func:`agop.kernels.cntk`).

    Examples:
        >>> import torch
        >>> X = torch.rand(3, 2, 5, 5, generator=torch.Generator().manual_seed(0),
        ...                dtype=torch.float64)
        >>> M = torch.eye(18, dtype=torch.float64)  # the identity metric is the default
        >>> torch.allclose(CNTK(3, depth=2)(X, X, M=M), CNTK(3, depth=2)(X))
        True
    """

    depth: int = 1
    kind: str = "ntk"

    def _check_params(self) -> None:
        _check_kind(self.kind)

    def _spec(self, grid: PatchGrid) -> tuple[int, bool, float]:
        return int(self.depth), _check_kind(self.kind), 1.0 / grid.channels


def _check_kind(kind: str) -> bool:
    return check_choice(kind, "kind", ("ntk", "nngp")) == "ntk"


def cntk(
    X: ArrayLike,
    Z: ArrayLike | None,
    patch_size: int,
    depth: int,
    kind: str = "ntk",
    *,
    M: ArrayLike | None = None,
    device: Device | None = None,
    max_memory: int | None = None,
    progress: bool | None = None,
    threads: int | None = None,
    out: Tensor | None = None,
) -> Tensor:
    r"""Deep convolutional NTK (``kind="ntk"``) or NNGP (``kind="nngp"``), an ``(n, m)`` matrix.

    :math:`\Sigma_1[j] = \Theta_1[j] = \frac1c \langle x[j], z[j] \rangle_M`; for each of
    ``depth`` ReLU layers

    .. math:: A = \kappa_0 \Sigma + \frac{s}{\pi}, \qquad \Theta \leftarrow \kappa_0 \Theta + A,
              \qquad s = \sqrt{\Sigma_x \Sigma_z - \Sigma^2}, \quad
              \kappa_0 = 1 - \frac{\operatorname{atan2}(s, \Sigma)}{\pi},

    then a :math:`k \times k` window sum before the next layer; NNGP
    :math:`= \operatorname{mean}_j A_\mathrm{depth}[j]`, NTK
    :math:`= \operatorname{mean}_j \Theta_\mathrm{depth}[j]`. Exactly Neural Tangents' ``stax``
    kernel of the architecture in the module docstring. ``Z=None`` (or ``X``) gives the
    symmetric :math:`K(X, X)`. Evaluated in tiles within ``max_memory`` bytes, written into
    ``out`` when given (a preallocated ``(n, m)`` tensor), by ``threads`` worker threads on
    the CPU (``None``: every usable core, :func:`agop.kernels.choose_threads`).

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> X, Z = torch.rand(2, 3, 2, 5, 5, generator=g, dtype=torch.float64)
        >>> K = cntk(X, None, patch_size=3, depth=2)
        >>> torch.allclose(K, K.T), bool(torch.linalg.eigvalsh(K).min() > 0)
        (True, True)

        At depth 1 the NNGP is the one-layer :func:`cnngp` divided by the channel count:

        >>> torch.allclose(2 * cntk(X, Z, 3, 1, kind="nngp"), cnngp(X, Z, 3))
        True
    """
    return kernel_function(CNTK, locals())


def cntk_agop(
    X: ArrayLike,
    Z: ArrayLike,
    dual_coef: ArrayLike,
    patch_size: int,
    depth: int,
    kind: str = "ntk",
    *,
    M: ArrayLike | None = None,
    device: Device | None = None,
    max_memory: int | None = None,
    progress: bool | None = None,
    threads: int | None = None,
) -> Tensor:
    r"""Patch-AGOP :math:`(q \times q)` of :math:`f(x) = \mathrm{cntk}(x, Z)\,\alpha` over the
    images ``X``,

    .. math:: \mathrm{AGOP} = \frac1n \sum_{i=1}^n \sum_{j=1}^P \sum_c
              \nabla_{x_i[j]} f_c \, \nabla_{x_i[j]} f_c^\top,

    each first-layer patch :math:`x[j]` an independent variable, gradients in the untransformed
    patch coordinates.
    Derivatives by a hand-derived backward of the tile computation
    (:func:`agop.kernels.arccos.forward_backward`), with Neural Tangents' one-sided conventions
    at coinciding points and zero patches.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> X, Z = torch.rand(2, 3, 1, 5, 5, generator=g, dtype=torch.float64)
        >>> dual_coef = torch.randn(3, 2, generator=g, dtype=torch.float64)
        >>> A = cntk_agop(X, Z, dual_coef, patch_size=3, depth=2)
        >>> tuple(A.shape), torch.allclose(A, A.T)
        ((9, 9), True)

        With one channel, the depth-1 NNGP is :func:`cnngp`, and so are their AGOPs:

        >>> torch.allclose(cntk_agop(X, Z, dual_coef, 3, 1, kind="nngp"),
        ...                cnngp_agop(X, Z, dual_coef, 3))
        True
    """
    return kernel_function(CNTK, locals())


def cnngp(
    X: ArrayLike,
    Z: ArrayLike | None,
    patch_size: int,
    padding: int = 0,
    *,
    M: ArrayLike | None = None,
    device: Device | None = None,
    max_memory: int | None = None,
    progress: bool | None = None,
    threads: int | None = None,
    out: Tensor | None = None,
) -> Tensor:
    r"""NNGP of one hidden ReLU conv layer with a fully connected read-out:

    .. math:: K_M(x, z) = \frac1P \sum_{j=1}^P \|x[j]\|_M \|z[j]\|_M\,
              \kappa\Bigl(\frac{\langle x[j], z[j] \rangle_M}{\|x[j]\|_M \|z[j]\|_M}\Bigr),
              \qquad \kappa(t) = \frac{t (\pi - \arccos t) + \sqrt{1 - t^2}}{\pi}.

    (It is :math:`c` times the depth-1 ``cntk(kind="nngp")``, which takes the channel mean.)

    Examples:
        With one position: :math:`\kappa(1) = 1` on the diagonal, :math:`\kappa(0) = 1/\pi`
        for orthogonal patches:

        >>> import torch
        >>> X = torch.eye(4, dtype=torch.float64)[:2].reshape(2, 1, 2, 2)
        >>> K = cnngp(3 * X, X, patch_size=2)
        >>> K.diagonal().tolist()
        [3.0, 3.0]
        >>> round(K[0, 1].item(), 4)  # 3 / pi
        0.9549
    """
    return kernel_function(CNNGP, locals())


def cnngp_agop(
    X: ArrayLike,
    Z: ArrayLike,
    dual_coef: ArrayLike,
    patch_size: int,
    padding: int = 0,
    *,
    M: ArrayLike | None = None,
    device: Device | None = None,
    max_memory: int | None = None,
    progress: bool | None = None,
    threads: int | None = None,
) -> Tensor:
    r"""Patch-AGOP :math:`(q \times q)` of :math:`f(x) = \mathrm{cnngp}(x, Z)\,\alpha` over the
    images ``X``.

    Closed form per pair and position (:math:`u = M^{1/2} x[j]`, :math:`v = M^{1/2} z[j]`,
    :math:`\theta` the angle between them):

    .. math:: \nabla_u k(u, v) = \kappa_0 v + \frac{\|v\| \sin\theta}{\pi \|u\|} u,
              \qquad \kappa_0 = 1 - \frac{\theta}{\pi};

    gradients in the untransformed coordinates are :math:`M^{1/2}` times it.

    Examples:
        Against autograd of the closed form, with the patches of ``X`` as explicit variables
        (4 positions):

        >>> import torch
        >>> from agop.patches import extract_patches
        >>> g = torch.Generator().manual_seed(0)
        >>> X, Z = torch.randn(2, 3, 1, 3, 3, generator=g, dtype=torch.float64)
        >>> dual_coef = torch.randn(3, 1, generator=g, dtype=torch.float64)
        >>> A = cnngp_agop(X, Z, dual_coef, patch_size=2)
        >>> p, v = extract_patches(X, 2).requires_grad_(), extract_patches(Z, 2)
        >>> norms = p.norm(dim=-1)[:, None] * v.norm(dim=-1)[None]  # (3, 3, 4)
        >>> t = torch.einsum("npa,mpa->nmp", p, v) / norms
        >>> k = norms * (t * (torch.pi - torch.acos(t)) + (1 - t**2).sqrt()) / torch.pi
        >>> grad, = torch.autograd.grad((k.mean(-1) @ dual_coef).sum(), p)
        >>> torch.allclose(A, torch.einsum("npa,npb->ab", grad, grad) / 3)
        True
    """
    return kernel_function(CNNGP, locals())
