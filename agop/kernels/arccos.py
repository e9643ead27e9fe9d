r"""The ReLU arc-cosine recursion of a deep convolutional NNGP/NTK, on same-position covariances.

Tensors are laid out ``(H, W, ...)``: positions first, then the batch of image pairs, so a
``k x k`` window sum is ``2(k-1)`` additions of shifted slices and every step is elementwise.
One layer (``ABRelu(0, sqrt 2)`` in Neural Tangents' conventions) maps the covariance :math:`S` of
a pair and the variances :math:`S_x`, :math:`S_z` to

.. math::

   s = \sqrt{\max(S_x S_z - S^2, 0)}, \qquad \theta = \operatorname{atan2}(s, S), \qquad
   \kappa_0 = 1 - \theta / \pi, \qquad A = \kappa_0 S + s / \pi

(:math:`A` is the NNGP of the ReLU features) and the NTK to :math:`\kappa_0 \Theta`; the next
VALID convolution (``W_std = k``) sums over its :math:`k \times k` window, written :math:`\mathcal W`:
:math:`S' = \mathcal W(A)`, :math:`\Theta' = \mathcal W(\kappa_0 \Theta + A)`,
:math:`S_x' = \mathcal W(S_x)`.
The read-out (Flatten, Dense with ``W_std = 1``) averages over positions.
"""

from __future__ import annotations

import math
from typing import Any

import torch

_PI = math.pi


def _broadcast_shape(*shapes: torch.Size) -> tuple[int, ...]:
    """NumPy's broadcast of shapes (trusted to broadcast). ``torch.broadcast_shapes`` would do,
    but its first call imports sympy (0.3-0.8 s on the first kernel call of a process)."""
    n = max(len(s) for s in shapes)
    padded = [(1,) * (n - len(s)) + tuple(s) for s in shapes]
    return tuple(max(dims) if 0 not in dims else 0 for dims in zip(*padded, strict=True))


def window_sum(x: torch.Tensor, k: int) -> torch.Tensor:
    r"""VALID :math:`k \times k` window sum over the first two dimensions,
    :math:`\mathcal W(x)[a, b] = \sum_{a' = a}^{a + k - 1} \sum_{b' = b}^{b + k - 1} x[a', b']`:
    ``(H, W, ...) -> (H-k+1, W-k+1, ...)``.

    Pair tensors and per-image diagonals go through this same code, so a pair ``(x, x)`` gets
    bit-for-bit the diagonal's value.

    Examples:
        >>> import torch
        >>> x = torch.arange(16.0).reshape(4, 4)
        >>> window_sum(x, 3).tolist()  # 0+1+2+4+5+6+8+9+10 = 45, ...
        [[45.0, 54.0], [81.0, 90.0]]
    """
    H, W = x.shape[0], x.shape[1]
    if k == 1:
        return x.clone()
    h, w = H - k + 1, W - k + 1
    rows = torch.add(x[0:h], x[1 : 1 + h])
    for a in range(2, k):
        rows += x[a : a + h]
    out = torch.add(rows[:, 0:w], rows[:, 1 : 1 + w])
    for b in range(2, k):
        out += rows[:, b : b + w]
    return out


def window_sum_adjoint(y: torch.Tensor, k: int) -> torch.Tensor:
    r"""Adjoint of :func:`window_sum`, :math:`\mathcal W^\top`: ``(H', W', ...) -> (H'+k-1, W'+k-1, ...)``.

    Examples:
        The defining identity :math:`\langle \mathcal W x, y \rangle = \langle x, \mathcal W^\top y \rangle`:

        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(5, 6, generator=g, dtype=torch.float64)
        >>> y = torch.randn(3, 4, generator=g, dtype=torch.float64)
        >>> torch.allclose((window_sum(x, 3) * y).sum(), (x * window_sum_adjoint(y, 3)).sum())
        True
    """
    Hp, Wp = y.shape[0], y.shape[1]
    cols = y.new_zeros((Hp, Wp + k - 1, *y.shape[2:]))
    for b in range(k):
        cols[:, b : b + Wp] += y
    out = y.new_zeros((Hp + k - 1, Wp + k - 1, *y.shape[2:]))
    for a in range(k):
        out[a : a + Hp] += cols
    return out


def diagonals(s1: torch.Tensor, k: int, depth: int) -> list[torch.Tensor]:
    r"""Per-image variances at every layer: :math:`[S_1, \mathcal W(S_1), \mathcal W(\mathcal W(S_1)), \dots]`
    (the ReLU step keeps a variance unchanged: :math:`\kappa_0 = 1`, :math:`s = 0` on the
    diagonal).

    Examples:
        >>> import torch
        >>> [(tuple(d.shape), d[0, 0].item()) for d in diagonals(torch.ones(5, 5), 3, 3)]
        [((5, 5), 1.0), ((3, 3), 9.0), ((1, 1), 81.0)]
    """
    out = [s1]
    for _ in range(depth - 1):
        out.append(window_sum(out[-1], k))
    return out


def relu_step(
    S: torch.Tensor,
    sx: torch.Tensor,
    sz: torch.Tensor,
    snap: float,
    fill: bool = False,
    keep_s: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    r"""One ReLU layer on covariances: :math:`(A, \kappa_0, s)` from :math:`S` and the variances
    (the formulas in the module docstring).

    :math:`S_x S_z - S^2` below ``snap`` :math:`\cdot S_x S_z` counts as zero (coinciding
    directions, up to rounding); ``snap=0`` only clips negatives, as Neural Tangents does.
    ``fill=True`` sets :math:`\theta = \pi/2` where :math:`S_x S_z = 0` (Neural Tangents'
    :math:`\operatorname{atan2}(0, 0)`); values never depend on it (:math:`S` and :math:`\Theta`
    vanish there), derivatives do. ``keep_s=False`` returns ``None`` for :math:`s` and builds
    :math:`A` in its buffer.

    Masks are built by arithmetic, not comparisons: on the CPU a comparison into a boolean
    tensor costs several arithmetic passes, and this step is the kernels' hot loop.

    Examples:
        Coinciding directions keep the covariance (:math:`\kappa_0 = 1`); orthogonal ones get
        :math:`A = \sqrt{S_x S_z} / \pi` and :math:`\kappa_0 = 1/2`:

        >>> import torch
        >>> S, v = torch.tensor([4.0, 0.0], dtype=torch.float64), torch.tensor([4.0, 4.0])
        >>> A, kappa0, s = relu_step(S, v.double(), v.double(), snap=0.0)
        >>> [round(a, 12) for a in A.tolist()], kappa0.tolist()  # 4 and 4 / pi
        ([4.0, 1.273239544735], [1.0, 0.5])
    """
    # full-sized, as its buffer is reused below (a copy only when S is the larger operand)
    prod = (sx * sz).expand(_broadcast_shape(S.shape, sx.shape, sz.shape)).contiguous()
    d = torch.addcmul(prod, S, S, value=-1.0)
    # 1 where prod = 0, else 0 (prod >= 0, and ceil(clamp(prod, 0, 1)) = 1 for any prod > 0)
    zero_prod: Any = prod.clamp(0.0, 1.0).ceil_().neg_().add_(1.0) if fill else None
    if snap > 0:
        # keep = 1 where d > snap * prod, else 0, without a boolean tensor (comparisons into
        # bool cost several arithmetic passes on the CPU): d - snap * prod is positive exactly
        # when d > snap * prod (gradual underflow), and ceil(clamp(., 0, 1)) maps it to 1.
        keep = torch.add(d, prod, alpha=-snap, out=prod).clamp_(0.0, 1.0).ceil_()
        d.mul_(keep).abs_()  # abs: a dropped negative d gives +0, so that atan2(0, S < 0) = pi
    else:
        d.clamp_(min=0.0)
    sq = d.sqrt_()
    # prod's buffer is free again; where prod = 0, S = s = 0 and atan2(0 + 1, 0) = pi / 2
    theta = torch.atan2(zero_prod.add_(sq) if fill else sq, S, out=prod)
    kappa0 = theta.mul_(-1.0 / _PI).add_(1.0)
    if keep_s:
        return torch.addcmul(sq * (1.0 / _PI), kappa0, S), kappa0, sq
    return sq.mul_(1.0 / _PI).addcmul_(kappa0, S), kappa0, None  # A in s's buffer


def _reciprocal_or_zero(x: torch.Tensor) -> torch.Tensor:
    r""":math:`1/x` where :math:`x \ne 0`, else 0 (the one-sided derivatives' convention), for
    :math:`x \ge 0` without a boolean mask."""
    return x.reciprocal().nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)


def forward(
    S1: torch.Tensor,
    sx: list[torch.Tensor],
    sz: list[torch.Tensor],
    k: int,
    depth: int,
    ntk: bool,
    snap: float,
) -> torch.Tensor:
    """Kernel block ``(tn, tm)`` from first-layer covariances ``S1`` ``(H1, W1, tn, tm)``.

    ``sx[l]`` is ``(H_l, W_l, tn, 1)`` and ``sz[l]`` is ``(H_l, W_l, 1, tm)``.

    Examples:
        A depth-1 NNGP of one position is one :func:`relu_step`:

        >>> import torch
        >>> S1 = torch.tensor([[[[0.0]]]], dtype=torch.float64)  # orthogonal patches
        >>> sx = [torch.full((1, 1, 1, 1), 4.0, dtype=torch.float64)]
        >>> round(forward(S1, sx, sx, k=3, depth=1, ntk=False, snap=0.0).item(), 12)  # 4 / pi
        1.273239544735
    """
    S = S1
    theta: Any = S1 if ntk else None  # Theta_1 = Sigma_1 (no NTK term from the input)
    for layer in range(depth):
        A, kappa0, _ = relu_step(S, sx[layer], sz[layer], snap, keep_s=False)
        if ntk:
            theta = kappa0.mul_(theta).add_(A)  # kappa0 Theta + A, in kappa0's buffer
        if layer == depth - 1:
            out = theta if ntk else A
            return out.mean(dim=(0, 1))
        S = window_sum(A, k)
        if ntk:
            theta = window_sum(theta, k)
    raise AssertionError("unreachable")


def forward_backward(
    S1: torch.Tensor,
    sx: list[torch.Tensor],
    sz: list[torch.Tensor],
    k: int,
    depth: int,
    ntk: bool,
    snap: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Kernel block and its derivatives with respect to ``S1`` and to the row variance ``Sx_1``.

    Returns ``(K, dK/dS1, dK/dSx1)``, the derivatives per pair and position ``(H1, W1, tn, tm)``.
    Hand-derived backward of :func:`forward`, with Neural Tangents' one-sided conventions:
    :math:`d\sqrt{u}/du = 0` at :math:`u = 0` and :math:`\operatorname{atan2}(0, 0) = \pi/2`
    with zero derivative. Local derivatives of one layer (:math:`s > 0`; zero otherwise):

    .. math:: \frac{\partial A}{\partial S} = \kappa_0, \quad
              \frac{\partial A}{\partial S_x} = \frac{s}{2 \pi S_x}, \quad
              \frac{\partial \kappa_0}{\partial S} = \frac{1}{\pi s}, \quad
              \frac{\partial \kappa_0}{\partial S_x} = -\frac{S}{2 \pi s S_x}.

    Examples:
        The derivative with respect to :math:`S_1` against a central difference:

        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> U = torch.randn(5, 5, 2, 3, generator=g, dtype=torch.float64)  # 2 images
        >>> S1 = (U[:, :, :1] * U[:, :, 1:].transpose(2, 3)).sum(-1, keepdim=True)  # x_0, x_1
        >>> sx = diagonals((U[:, :, :1] ** 2).sum(-1, keepdim=True), 3, 2)
        >>> sz = diagonals((U[:, :, 1:] ** 2).sum(-1, keepdim=True), 3, 2)
        >>> K, dS1, dSx1 = forward_backward(S1, sx, sz, 3, 2, True, 0.0)
        >>> torch.allclose(K, forward(S1, sx, sz, 3, 2, True, 0.0))
        True
        >>> E = torch.zeros_like(S1); E[2, 1] = 1e-6
        >>> fd = (forward(S1 + E, sx, sz, 3, 2, True, 0.0)
        ...       - forward(S1 - E, sx, sz, 3, 2, True, 0.0)) / 2e-6
        >>> torch.allclose(fd, dS1[2, 1], rtol=1e-6)
        True
    """
    saved = []
    S = S1
    theta: Any = S1.clone() if ntk else None  # tensors when ntk
    for layer in range(depth):
        A, kappa0, sq = relu_step(S, sx[layer], sz[layer], snap, fill=True)
        assert sq is not None  # keep_s=True
        saved.append((S, kappa0, sq, theta))
        if layer == depth - 1:
            K = (theta * kappa0 + A if ntk else A).mean(dim=(0, 1))
            break
        S = window_sum(A, k)
        if ntk:
            theta = window_sum(torch.addcmul(A, kappa0, theta), k)
    n_pos = S.shape[0] * S.shape[1]
    A_bar = torch.full_like(S, 1.0 / n_pos)
    kappa_bar: Any = saved[-1][3] / n_pos if ntk else None
    theta_bar: Any = saved[-1][1] / n_pos if ntk else None
    sx_bar = torch.zeros_like(S)
    for layer in range(depth - 1, -1, -1):
        S, kappa0, sq, theta = saved[layer]
        inv_sq = _reciprocal_or_zero(sq)
        inv_sx = _reciprocal_or_zero(sx[layer])
        S_bar = A_bar * kappa0
        local_sx = A_bar * sq
        if ntk:
            S_bar.addcmul_(kappa_bar, inv_sq, value=1.0 / _PI)
            local_sx.sub_(kappa_bar * S * inv_sq)
        sx_bar.addcmul_(local_sx, inv_sx, value=0.5 / _PI)
        if layer == 0:
            if ntk:
                S_bar += theta_bar
            return K, S_bar, sx_bar
        sx_bar = window_sum_adjoint(sx_bar, k)
        if ntk:
            t_bar = window_sum_adjoint(theta_bar, k)
            A_bar = window_sum_adjoint(S_bar, k).add_(t_bar)
            prev_kappa0, prev_theta = saved[layer - 1][1], saved[layer - 1][3]
            kappa_bar = t_bar * prev_theta
            theta_bar = t_bar.mul_(prev_kappa0)
        else:
            A_bar = window_sum_adjoint(S_bar, k)
    raise AssertionError("unreachable")
