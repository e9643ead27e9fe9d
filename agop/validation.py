"""Input checks shared by every public entry point: clear errors that name the argument."""

from __future__ import annotations

import numpy as np
import torch


def as_tensor(x, name: str, *, dtype: torch.dtype | None = None,
              device: torch.device | None = None) -> torch.Tensor:
    """``x`` (tensor, array or nested list) as a floating tensor; integer input becomes float32."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    elif not isinstance(x, torch.Tensor):
        try:
            x = torch.as_tensor(x)
        except Exception as err:  # noqa: BLE001 - re-raised with the argument's name
            raise TypeError(f"{name} must be a tensor or array, got {type(x).__name__}") from err
    if dtype is None and not x.is_floating_point():
        dtype = torch.get_default_dtype()
    return x.to(device=device, dtype=dtype)


def check_images(x, name: str = "X", *, channels: int | None = None,
                 dtype: torch.dtype | None = None,
                 device: torch.device | None = None) -> torch.Tensor:
    """``x`` as a finite image batch of shape ``(n, c, H, W)``; raise ``ValueError`` otherwise."""
    x = as_tensor(x, name, dtype=dtype, device=device)
    if x.ndim != 4:
        raise ValueError(f"{name} must have shape (n, c, H, W), got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is empty: shape {tuple(x.shape)}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{name} must have {channels} channels, got shape {tuple(x.shape)}")
    check_finite(x, name)
    return x


def check_finite(x: torch.Tensor, name: str) -> torch.Tensor:
    """Raise ``ValueError`` when ``x`` holds NaN or infinity."""
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{name} contains {bad} non-finite values (NaN or inf)")
    return x


def check_square(A: torch.Tensor, name: str, size: int | None = None) -> torch.Tensor:
    """Raise ``ValueError`` unless ``A`` is a finite square matrix (of side ``size`` if given)."""
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {tuple(A.shape)}")
    if size is not None and A.shape[0] != size:
        raise ValueError(f"{name} must be {size} x {size}, got shape {tuple(A.shape)}")
    return check_finite(A, name)


def check_psd(A, name: str = "M", size: int | None = None, *, rtol: float = 1e-6) -> torch.Tensor:
    """``A`` as a symmetric positive semi-definite matrix; raise ``ValueError`` otherwise.

    Symmetry is checked to ``rtol`` of the largest entry, and the smallest eigenvalue must not
    fall below ``-rtol`` times the largest.
    """
    A = check_square(as_tensor(A, name), name, size)
    scale = A.abs().max().clamp_min(torch.finfo(A.dtype).tiny)
    if (A - A.T).abs().max() > rtol * scale * 10:
        raise ValueError(f"{name} must be symmetric positive semi-definite; it is not symmetric")
    eig = torch.linalg.eigvalsh((A + A.T) / 2)
    if eig[0] < -rtol * max(float(eig[-1]), float(scale)):
        raise ValueError(
            f"{name} must be positive semi-definite; its smallest eigenvalue is {float(eig[0]):.3g}"
        )
    return A


def psd_tolerance(dtype: torch.dtype) -> float:
    """``rtol`` for :func:`check_psd` of a matrix computed in ``dtype``: ``1e-6``, or
    ``sqrt(eps)`` when larger (float32 and below), the size of the negative round-off
    eigenvalues of a PSD matrix such as an AGOP computed in that precision."""
    return max(1e-6, torch.finfo(dtype).eps ** 0.5) if dtype.is_floating_point else 1e-6
