r"""Gaussian (RBF) kernel on patches in a learned metric :math:`M`:
:math:`K_M(x, z) = \frac1P \sum_j \exp(-\|x[j] - z[j]\|_M^2 / (2 L^2))`.

The whole kernel is its tile, :meth:`RBF.block`; its patch-AGOP comes from autograd through
that block (:meth:`agop.kernels.Kernel.grad_block`)."""

from __future__ import annotations

import dataclasses

from agop._typing import Tensor
from agop.kernels._driver import PatchGrid
from agop.kernels.laplace import _Bandwidth


@dataclasses.dataclass
class RBF(_Bandwidth, name="rbf"):
    r"""The Gaussian kernel on patches, position by position as the Laplace kernel,

    .. math:: K_M(x, z) = \frac1P \sum_{j=1}^P
              \exp\Bigl(-\frac{\|x[j] - z[j]\|_M^2}{2 L^2}\Bigr),
              \qquad \|u\|_M = \sqrt{u^\top M u},

    :math:`L` = ``bandwidth``, patches of :math:`k` = ``patch_size`` with zero ``padding``.
    ``RBF(k)(X, Z, M=M)`` is the ``(n, m)`` kernel matrix and ``RBF(k).agop(X, Z, dual_coef,
    M=M)`` the patch-AGOP of :math:`f(x) = K_M(x, Z)\, \alpha`, by autograd through the block:

    .. math:: \nabla_{x[j]} f_c = -\frac{1}{P L^2} \sum_z \alpha_{zc}\,
              e^{-d^2 / (2 L^2)}\, M (x[j] - z[j]), \qquad d = \|x[j] - z[j]\|_M.

    Examples:
        With ``patch_size`` the image size there is one position, and the patch is the image:

        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> X, Z = torch.rand(2, 3, 1, 2, 2, generator=g, dtype=torch.float64)
        >>> K = RBF(patch_size=2, bandwidth=1.0)(X, Z)
        >>> torch.allclose(K, torch.exp(-torch.cdist(X.flatten(1), Z.flatten(1)) ** 2 / 2))
        True
        >>> M = 4 * torch.eye(4, dtype=torch.float64)  # |u|_M = 2 |u|: half the bandwidth
        >>> torch.allclose(RBF(2, bandwidth=2.0)(X, Z, M=M), K)
        True

        Its patch-AGOP against the closed form of the gradient above (one position, so
        :math:`P = 1`):

        >>> dual_coef = torch.randn(3, 1, generator=g, dtype=torch.float64)
        >>> A = RBF(2, bandwidth=1.0).agop(X, Z, dual_coef)
        >>> diff = X.flatten(1)[:, None] - Z.flatten(1)[None]  # (3, 3, 4)
        >>> grad = -(K[..., None] * diff * dual_coef[None]).sum(1)  # (3 images, 4)
        >>> torch.allclose(A, grad.T @ grad / 3)
        True
    """

    def block(self, S: Tensor, sx: Tensor, sz: Tensor, grid: PatchGrid) -> Tensor:
        """The tile :math:`\\frac1P \\sum_j \\exp(-d_j^2 / (2 L^2))`,
        :math:`d_j^2 = s_x[j] + s_z[j] - 2 S[j]` (rounding below zero clipped).

        Examples:
            >>> import torch
            >>> S = torch.tensor([[[3.0]]])  # <u_x, u_z> = 3, |u_x|^2 = 5, |u_z|^2 = 2
            >>> K = RBF(1, bandwidth=1.0).block(S, torch.tensor([[[5.0]]]),
            ...                                 torch.tensor([[[2.0]]]), PatchGrid(1, 1, 1, 1))
            >>> torch.allclose(K, torch.exp(torch.tensor([[-0.5]])))  # d^2 = 1
            True
        """
        d2 = S.mul_(-2.0).add_(sx).add_(sz).clamp_(min=0.0)
        return d2.mul_(-0.5 / float(self.bandwidth) ** 2).exp_().mean(0)
