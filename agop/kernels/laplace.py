r"""Laplace kernel on patches in a learned metric :math:`M`:
:math:`K_M(x, z) = \frac1P \sum_j \exp(-\|x[j] - z[j]\|_M / L)`."""

from __future__ import annotations

import dataclasses
import math

import torch

from agop._typing import ArrayLike, Device, Tensor
from agop.kernels._driver import PatchGrid
from agop.kernels._inputs import snap_tolerance
from agop.kernels.objects import Kernel, _pow2_scale, kernel_function
from agop.validation import check_real


def _distance(S: Tensor, sx: Tensor, sz: Tensor) -> Tensor:
    """``|u_x[j] - u_z[j]|`` from the tile's inner products (in ``S``'s buffer); squared
    distances within rounding of zero (relative to ``|u_x|^2 + |u_z|^2``) are set to zero."""
    d2 = S.mul_(-2.0).add_(sx).add_(sz)
    d2.masked_fill_(d2 <= (sx + sz).mul_(snap_tolerance(S.dtype)), 0.0)
    return d2.sqrt_()


@dataclasses.dataclass
class _Bandwidth(Kernel):
    """A kernel of patch distances on a length scale: a positive ``bandwidth`` :math:`L` and
    zero ``padding`` (the base of :class:`Laplace` and :class:`agop.kernels.RBF`)."""

    bandwidth: float = 10.0
    padding: int = 0

    def _rescaled(self, X: Tensor, Z: Tensor, root: Tensor | None):
        """``K(sX, sZ)`` with bandwidth ``sL`` is ``K(X, Z)`` with ``L``, and the gradient
        in ``x`` is ``s`` times that in ``sx``."""
        scale = _pow2_scale(X, root, None if Z is X else Z)
        if scale == 1.0:
            return self, X, Z, 1.0, 1.0
        kernel = dataclasses.replace(self, bandwidth=float(self.bandwidth) * scale)
        Xs = X * scale
        return kernel, Xs, Xs if Z is X else Z * scale, 1.0, scale

    def _check_params(self) -> None:
        L = check_real(self.bandwidth, "bandwidth", minimum=0, strict_minimum=True)
        denominator = 2.0 * L * L if self.name == "rbf" else L  # what block divides by
        if denominator == 0 or not math.isfinite(1.0 / denominator):
            raise ValueError(
                f"bandwidth={L!r} is too small: 1 / bandwidth"
                f"{'^2' if self.name == 'rbf' else ''} overflows; use a bandwidth of the "
                "order of the patch distances"
            )


@dataclasses.dataclass
class Laplace(_Bandwidth, name="laplace"):
    r"""The Laplace kernel :math:`K_M(x, z) = \frac1P \sum_j \exp(-\|x[j] - z[j]\|_M / L)`,
    :math:`L` = ``bandwidth`` (:func:`agop.kernels.laplace`), with zero ``padding``; its
    patch-AGOP by the closed form of :func:`agop.kernels.laplace_agop`.

    Examples:
        >>> import torch
        >>> from agop.kernels import laplace
        >>> X = torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(0),
        ...                dtype=torch.float64)
        >>> kernel = Laplace(patch_size=3, bandwidth=2.0)
        >>> torch.equal(kernel(X), laplace(X, X, 3, bandwidth=2.0))
        True
    """

    def block(self, S: Tensor, sx: Tensor, sz: Tensor, grid: PatchGrid) -> Tensor:
        return _distance(S, sx, sz).mul_(-1.0 / float(self.bandwidth)).exp_().mean(0)

    def grad_block(
        self, S: Tensor, sx: Tensor, sz: Tensor, grid: PatchGrid
    ) -> tuple[Tensor, Tensor]:
        """``grad_{u_x[j]} K = -(1/(P L)) exp(-d/L) (u_x[j] - u_z[j]) / d``, zero where ``d = 0``."""
        L = float(self.bandwidth)
        d = _distance(S, sx, sz)
        w = torch.exp(d * (-1.0 / L)).mul_(-1.0 / (L * S.shape[0]))
        w = torch.where(d == 0, 0.0, w / d)  # a NaN distance (overflow) stays NaN: reported
        return -w, w

    def _pair_tensors(self, grad: bool) -> float:
        return 6.0 if grad else 4.0


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
    return kernel_function(Laplace, locals())


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
    return kernel_function(Laplace, locals())
