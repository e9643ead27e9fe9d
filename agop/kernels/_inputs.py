"""Checked inputs of the patch kernels: images, the metric's factor, patch vectors, coefficients."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from agop.linalg import _psd_power
from agop.runtime import default_device
from agop.validation import (
    _check_allocation,
    as_tensor,
    check_finite,
    check_images,
    check_int,
    check_psd,
    check_result,
    psd_tolerance,
)


def check_pair(
    X, Z, device=None, differentiable: bool = True
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """``X`` and ``Z`` as image batches on one device in ``X``'s dtype; ``symmetric`` when ``Z``
    is ``None`` or the very same object as ``X`` (then only half the kernel is computed).
    Not ``differentiable``: detached (a kernel whose tiles work in place)."""
    device = default_device(device)
    symmetric = Z is None or Z is X
    X = check_images(X, "X", device=device)
    if not differentiable:  # in-place tiles: values only, as if X had no gradient
        X = X.detach()
    if X.dtype not in (torch.float32, torch.float64):
        X = X.to(torch.get_default_dtype())
    if symmetric:
        return X, X, True
    Z = check_images(Z, "Z", channels=X.shape[1], dtype=X.dtype, device=device)
    if not differentiable:
        Z = Z.detach()
    if Z.shape[2:] != X.shape[2:]:
        raise ValueError(
            f"Z must have images of X's size {tuple(X.shape[2:])}, got shape {tuple(Z.shape)}"
        )
    return X, Z, False


def check_patch_size(patch_size, X: torch.Tensor, padding: int = 0, depth: int = 1) -> int:
    """``patch_size`` as an int ``k`` such that ``depth`` VALID ``k x k`` convolutions fit."""
    if isinstance(patch_size, (tuple, list)):
        if len(patch_size) != 2 or len(set(patch_size)) != 1:
            raise ValueError(
                f"patch_size must be an integer k (or a square pair (k, k)), got {patch_size!r}"
            )
        patch_size = patch_size[0]
    patch_size = check_int(patch_size, "patch_size", minimum=1)
    depth = check_int(depth, "depth", minimum=1)
    padding = check_int(padding, "padding", minimum=0)
    H, W = X.shape[2] + 2 * padding, X.shape[3] + 2 * padding
    # the padded images are materialised: a padding such as 10**12 is refused by name here
    _check_allocation(
        X.shape[0] * X.shape[1] * H * W, X.element_size(), "padding", "the padded images"
    )
    if min(H, W) - depth * (patch_size - 1) < 1:
        raise ValueError(
            f"X has images of size {H}x{W} (after padding {padding}), too small for "
            f"depth={depth} with patch_size={patch_size}: need H - depth*(k-1) >= 1"
        )
    return patch_size


def checked_result(
    K: torch.Tensor,
    what: str,
    X: torch.Tensor,
    Z: torch.Tensor,
    dual_coef: torch.Tensor | None = None,
) -> torch.Tensor:
    """``K`` if finite; else a ``ValueError`` naming the overflow and the inputs' magnitudes.

    The kernels square patch norms (the arc-cosine kernels multiply two variances, a fourth
    power of the pixel scale), so float32 overflows once pixels reach about ``1e9`` (arc-cosine)
    or ``1e19`` (Laplace); see the API appendix for the measured range."""
    inputs = {"X": X, "Z": Z} if dual_coef is None else {"X": X, "Z": Z, "dual_coef": dual_coef}
    return check_result(
        K, what, inputs=inputs, hint="rescale X and Z (images to [0, 1], say) or compute in float64"
    )


def metric_factor(M, q: int, like: torch.Tensor) -> torch.Tensor | None:
    """``R = M^{1/2}`` (so ``<a, b>_M = <R a, R b>``), in ``like``'s dtype and device.

    ``M=None`` (the identity) gives ``None``. ``M`` must be a ``q x q`` PSD matrix.
    """
    if M is None:
        return None
    M = as_tensor(M, "M")
    return metric_root(
        check_psd(M.to(torch.float64), "M", size=q, rtol=psd_tolerance(M.dtype)), like
    )


def metric_root(M: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``R = M^{1/2}`` of a checked PSD ``M``, computed in float64 and returned in ``like``'s
    dtype and device: one eigendecomposition, nothing checked (:func:`metric_factor` checks)."""
    return _psd_power(M.to(torch.float64), 0.5).to(dtype=like.dtype, device=like.device)


def patch_vectors(X: torch.Tensor, k: int, padding: int, R: torch.Tensor | None) -> torch.Tensor:
    """Transformed patch vectors ``u[j] = R x[j]`` laid out ``(P, n, q)``, positions first."""
    cols = F.unfold(X, k, padding=padding)  # (n, q, P), (channel, row, col) order
    if R is not None:
        cols = torch.matmul(R, cols)
    return cols.permute(2, 0, 1).contiguous()


def check_dual_coef(dual_coef, m: int, like: torch.Tensor) -> torch.Tensor:
    """Regression coefficients ``dual_coef`` as an ``(m, C)`` matrix in ``like``'s dtype/device."""
    dual_coef = check_finite(
        as_tensor(dual_coef, "dual_coef", dtype=like.dtype, device=like.device), "dual_coef"
    )
    if dual_coef.ndim == 1:
        dual_coef = dual_coef[:, None]
    if dual_coef.ndim != 2 or dual_coef.shape[0] != m or dual_coef.shape[1] == 0:
        raise ValueError(
            f"dual_coef must have shape ({m}, C) with C >= 1 (one row per image of Z), "
            f"got shape {tuple(dual_coef.shape)}"
        )
    return dual_coef


def snap_tolerance(dtype: torch.dtype) -> float:
    r"""Relative size below which a squared distance (or ``|x|^2|z|^2 - <x,z>^2``) is rounding
    noise and is set to zero: coinciding points then give exact values and one-sided
    derivatives instead of :math:`\sqrt{\varepsilon}`-sized noise."""
    return 32 * torch.finfo(dtype).eps
