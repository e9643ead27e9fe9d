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

from typing import Any

import torch

from agop._typing import ArrayLike, Device, Tensor
from agop.kernels import _driver, arccos
from agop.kernels._inputs import (
    check_dual_coef,
    check_pair,
    check_patch_size,
    checked_result,
    metric_factor,
    patch_vectors,
    snap_tolerance,
)
from agop.validation import check_choice


class _ArccosOps:
    """Per-tile operations of the arc-cosine kernels (CNTK, CNNGP)."""

    def __init__(
        self,
        X: torch.Tensor,
        k: int,
        depth: int,
        ntk: bool,
        R: torch.Tensor | None,
        scale: float,
        padding: int = 0,
    ):
        self.k, self.depth, self.ntk, self.R = k, depth, ntk, R
        self.scale, self.padding = scale, padding
        self.H1 = X.shape[2] + 2 * padding - k + 1
        self.W1 = X.shape[3] + 2 * padding - k + 1
        self.n_positions, self.dim = self.H1 * self.W1, X.shape[1] * k * k
        self.snap = snap_tolerance(X.dtype)
        self.e = X.element_size()

    def prepare(self, X: torch.Tensor) -> dict[str, Any]:
        U = patch_vectors(X, self.k, self.padding, self.R)  # (P, n, q)
        s1 = (U * U).sum(-1).mul_(self.scale)  # Sigma_1(x, x) per position
        diags = arccos.diagonals(s1.view(self.H1, self.W1, -1), self.k, self.depth)
        return {"U": U, "s1": s1, "diags": diags}

    def take(self, data: dict[str, Any], idx: slice) -> dict[str, Any]:
        return {
            "U": data["U"][:, idx],
            "s1": data["s1"][:, idx],
            "diags": [d[:, :, idx] for d in data["diags"]],
        }

    def _first_layer(self, xd, zd, same: bool) -> torch.Tensor:
        S1 = torch.bmm(xd["U"], zd["U"].transpose(1, 2)).mul_(self.scale)
        if same:  # a pair (x, x) gets exactly its variance, so sin(theta) = 0 exactly
            S1.diagonal(dim1=1, dim2=2).copy_(xd["s1"])
        return S1.view(self.H1, self.W1, S1.shape[1], S1.shape[2])

    def block(self, xd, zd, same: bool) -> torch.Tensor:
        S1 = self._first_layer(xd, zd, same)
        sx = [d[:, :, :, None] for d in xd["diags"]]
        sz = [d[:, :, None, :] for d in zd["diags"]]
        return arccos.forward(S1, sx, sz, self.k, self.depth, self.ntk, self.snap)

    def grad_block(self, xd, zd, same: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """``grad_{u_x[j]} K = scale (dK/dSigma_1 u_z[j] + 2 dK/dSigma_1(x,x) u_x[j])``."""
        S1 = self._first_layer(xd, zd, same)
        sx = [d[:, :, :, None] for d in xd["diags"]]
        sz = [d[:, :, None, :] for d in zd["diags"]]
        _, S_bar, sx_bar = arccos.forward_backward(
            S1, sx, sz, self.k, self.depth, self.ntk, self.snap
        )
        P = self.n_positions
        a = S_bar.mul_(self.scale).view(P, S1.shape[2], S1.shape[3])
        b = sx_bar.mul_(2 * self.scale).view(P, S1.shape[2], S1.shape[3])
        return a, b

    def pair_bytes(self, grad: bool) -> float:
        live = (4 * self.depth + 8) if grad else 8
        return live * self.n_positions * self.e

    def image_bytes(self) -> float:
        return self.n_positions * (self.dim + 1 + self.depth) * self.e


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
    ntk = _check_kind(kind)
    X, Z, symmetric = check_pair(X, Z, device)
    k, depth = check_patch_size(patch_size, X, 0, depth), int(depth)
    R = metric_factor(M, X.shape[1] * k * k, X)
    ops = _ArccosOps(X, k, depth, ntk, R, 1.0 / X.shape[1])
    K = _driver.kernel_matrix(
        ops, X, Z, symmetric, max_memory, progress, "CNTK" if ntk else "CNNGP", threads, out
    )
    return checked_result(K, "cntk(X, Z)", X, Z)


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
    ntk = _check_kind(kind)
    X, Z, _ = check_pair(X, Z, device)
    k, depth = check_patch_size(patch_size, X, 0, depth), int(depth)
    dual_coef = check_dual_coef(dual_coef, Z.shape[0], X)
    R = metric_factor(M, X.shape[1] * k * k, X)
    ops = _ArccosOps(X, k, depth, ntk, R, 1.0 / X.shape[1])
    A = _driver.patch_agop(
        ops, X, Z, dual_coef, R, max_memory, progress, "CNTK patch-AGOP", threads
    )
    return checked_result(A, "cntk_agop", X, Z, dual_coef)


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
    X, Z, symmetric = check_pair(X, Z, device)
    k = check_patch_size(patch_size, X, padding)
    R = metric_factor(M, X.shape[1] * k * k, X)
    ops = _ArccosOps(X, k, 1, False, R, 1.0, int(padding))
    K = _driver.kernel_matrix(ops, X, Z, symmetric, max_memory, progress, "CNNGP", threads, out)
    return checked_result(K, "cnngp(X, Z)", X, Z)


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
    X, Z, _ = check_pair(X, Z, device)
    k = check_patch_size(patch_size, X, padding)
    dual_coef = check_dual_coef(dual_coef, Z.shape[0], X)
    R = metric_factor(M, X.shape[1] * k * k, X)
    ops = _ArccosOps(X, k, 1, False, R, 1.0, int(padding))
    A = _driver.patch_agop(
        ops, X, Z, dual_coef, R, max_memory, progress, "CNNGP patch-AGOP", threads
    )
    return checked_result(A, "cnngp_agop", X, Z, dual_coef)
