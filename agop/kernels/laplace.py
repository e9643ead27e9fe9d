r"""Laplace kernel on patches in a learned metric :math:`M`:
:math:`K_M(x, z) = \frac1P \sum_j \exp(-\|x[j] - z[j]\|_M / L)`."""

from __future__ import annotations

from typing import Any

import torch

from agop._typing import ArrayLike, Device, Tensor
from agop.kernels import _driver
from agop.kernels._inputs import (
    check_dual_coef,
    check_pair,
    check_patch_size,
    checked_result,
    metric_factor,
    patch_vectors,
    snap_tolerance,
)
from agop.validation import check_real


class _LaplaceOps:
    """Per-tile operations of the patch Laplace kernel (see :mod:`agop.kernels._driver`)."""

    def __init__(
        self, X: torch.Tensor, k: int, R: torch.Tensor | None, bandwidth: float, padding: int
    ):
        self.k, self.R, self.L, self.padding = k, R, float(bandwidth), padding
        H, W = X.shape[2] + 2 * padding - k + 1, X.shape[3] + 2 * padding - k + 1
        self.n_positions, self.dim = H * W, X.shape[1] * k * k
        self.snap = snap_tolerance(X.dtype)
        self.e = X.element_size()

    def prepare(self, X: torch.Tensor) -> dict[str, Any]:
        U = patch_vectors(X, self.k, self.padding, self.R)
        return {"U": U, "s": (U * U).sum(-1)}

    def take(self, data: dict[str, Any], idx: slice) -> dict[str, Any]:
        return {"U": data["U"][:, idx], "s": data["s"][:, idx]}

    def _dist(self, xd, zd, same: bool) -> torch.Tensor:
        """``|u_x[j] - u_z[j]|`` as ``(P, tn, tm)``; squared distances within rounding of zero
        (relative to ``|u_x|^2 + |u_z|^2``) are set to zero."""
        sx, sz = xd["s"][:, :, None], zd["s"][:, None, :]
        d2 = torch.bmm(xd["U"], zd["U"].transpose(1, 2)).mul_(-2.0).add_(sx).add_(sz)
        if same:
            d2.diagonal(dim1=1, dim2=2).zero_()
        d2.masked_fill_(d2 <= (sx + sz).mul_(self.snap), 0.0)
        return d2.sqrt_()

    def block(self, xd, zd, same: bool) -> torch.Tensor:
        return self._dist(xd, zd, same).mul_(-1.0 / self.L).exp_().mean(0)

    def grad_block(self, xd, zd, same: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """``grad_{u_x[j]} K = -(1/(P L)) exp(-d/L) (u_x[j] - u_z[j]) / d``, zero where ``d = 0``."""
        d = self._dist(xd, zd, same)
        w = torch.exp(d * (-1.0 / self.L)).mul_(-1.0 / (self.L * self.n_positions))
        w = torch.where(d == 0, 0.0, w / d)  # a NaN distance (overflow) stays NaN: reported
        return -w, w

    def pair_bytes(self, grad: bool) -> float:
        return (6 if grad else 4) * self.n_positions * self.e

    def image_bytes(self) -> float:
        return self.n_positions * (self.dim + 1) * self.e


def laplace(
    X: ArrayLike,
    Z: ArrayLike | None,
    patch_size: int,
    bandwidth: float = 10.0,
    padding: int = 0,
    *,
    M: ArrayLike | None = None,
    device: Device | None = None,
    max_memory: int | None = None,
    progress: bool | None = None,
    threads: int | None = None,
    out: Tensor | None = None,
) -> Tensor:
    r"""Laplace kernel on patches,

    .. math:: K_M(x, z) = \frac1P \sum_{j=1}^P \exp\bigl(-\|x[j] - z[j]\|_M / L\bigr),
              \qquad \|u\|_M = \sqrt{u^\top M u}.

    ``X`` ``(n, c, H, W)``, ``Z`` ``(m, c, H, W)`` (``None`` or ``X`` itself: :math:`K(X, X)`,
    computed as a symmetric matrix), ``M`` a :math:`q \times q` PSD matrix (:math:`q = c k^2`;
    ``None`` is the identity), :math:`L` = ``bandwidth``; patches of :math:`k` = ``patch_size``
    with zero ``padding``. Evaluated in tiles within ``max_memory`` bytes. Returns ``(n, m)`` in
    ``X``'s dtype.

    Examples:
        With ``patch_size`` the image size there is one position, and the patch is the image:

        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> X, Z = torch.rand(2, 3, 1, 2, 2, generator=g, dtype=torch.float64)
        >>> K = laplace(X, Z, patch_size=2, bandwidth=1.0)
        >>> torch.allclose(K, torch.exp(-torch.cdist(X.flatten(1), Z.flatten(1))))
        True
        >>> M = 4 * torch.eye(4, dtype=torch.float64)  # |u|_M = 2 |u|: half the bandwidth
        >>> torch.allclose(laplace(X, Z, 2, bandwidth=2.0, M=M), K)
        True
        >>> laplace(X, None, patch_size=1).diagonal().tolist()  # distance 0 at each position
        [1.0, 1.0, 1.0]
    """
    X, Z, symmetric = check_pair(X, Z, device)
    k = check_patch_size(patch_size, X, padding)
    bandwidth = check_real(bandwidth, "bandwidth", minimum=0, strict_minimum=True)
    ops = _LaplaceOps(X, k, metric_factor(M, X.shape[1] * k * k, X), bandwidth, int(padding))
    K = _driver.kernel_matrix(
        ops, X, Z, symmetric, max_memory, progress, "Laplace kernel", threads, out
    )
    return checked_result(K, "laplace(X, Z)", X, Z)


def laplace_agop(
    X: ArrayLike,
    Z: ArrayLike,
    dual_coef: ArrayLike,
    patch_size: int,
    bandwidth: float = 10.0,
    padding: int = 0,
    *,
    M: ArrayLike | None = None,
    device: Device | None = None,
    max_memory: int | None = None,
    progress: bool | None = None,
    threads: int | None = None,
) -> Tensor:
    r"""Patch-AGOP :math:`(q \times q)` of :math:`f(x) = K_M(x, Z)\,\alpha` over the images ``X``,

    .. math:: \mathrm{AGOP} = \frac1n \sum_{i=1}^n \sum_{j=1}^P \sum_c
              \nabla_{x_i[j]} f_c \, \nabla_{x_i[j]} f_c^\top,

    with each patch an independent variable, gradients in the untransformed patch coordinates:

    .. math:: \nabla_{x[j]} f_c = -\frac{1}{P L} \sum_z \alpha_{zc}\, e^{-d/L}\,
              \frac{M (x[j] - z[j])}{d}, \qquad d = \|x[j] - z[j]\|_M

    (terms with :math:`d = 0` contribute zero).

    Examples:
        Against autograd, with the patches of ``X`` as explicit variables (4 positions):

        >>> import torch
        >>> from agop.patches import extract_patches
        >>> g = torch.Generator().manual_seed(0)
        >>> X, Z = torch.rand(2, 3, 1, 3, 3, generator=g, dtype=torch.float64)
        >>> dual_coef = torch.randn(3, 1, generator=g, dtype=torch.float64)
        >>> A = laplace_agop(X, Z, dual_coef, patch_size=2, bandwidth=1.0)
        >>> p = extract_patches(X, 2).requires_grad_()  # (3 images, 4 positions, q = 4)
        >>> d = (p[:, None] - extract_patches(Z, 2)[None]).norm(dim=-1)  # (3, 3, 4)
        >>> f = torch.exp(-d).mean(-1) @ dual_coef  # K(X, Z) dual_coef
        >>> grad, = torch.autograd.grad(f.sum(), p)  # grad[i, j]: the gradient in x_i[j]
        >>> torch.allclose(A, torch.einsum("npa,npb->ab", grad, grad) / 3)
        True
    """
    X, Z, _ = check_pair(X, Z, device)
    k = check_patch_size(patch_size, X, padding)
    bandwidth = check_real(bandwidth, "bandwidth", minimum=0, strict_minimum=True)
    dual_coef = check_dual_coef(dual_coef, Z.shape[0], X)
    R = metric_factor(M, X.shape[1] * k * k, X)
    ops = _LaplaceOps(X, k, R, bandwidth, int(padding))
    A = _driver.patch_agop(
        ops, X, Z, dual_coef, R, max_memory, progress, "Laplace patch-AGOP", threads
    )
    return checked_result(A, "laplace_agop", X, Z, dual_coef)
