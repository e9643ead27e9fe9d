"""Linear algebra on feature operators: PSD powers and the similarity of two matrices."""

from __future__ import annotations

import torch

from agop.validation import as_tensor, check_finite, check_psd


def psd_power(A: torch.Tensor, alpha: float, *, check: bool = True) -> torch.Tensor:
    """``A^alpha`` for a symmetric PSD matrix: ``U diag(max(lambda, 0)^alpha) U^T``.

    Tiny negative eigenvalues from round-off are clipped to zero; a clearly indefinite ``A``
    raises ``ValueError`` (unless ``check=False``).
    """
    A = as_tensor(A, "A")
    if check:
        check_psd(A, "A")
    A = (A + A.T) / 2
    eigvals, eigvecs = torch.linalg.eigh(A)
    eigvals = eigvals.clamp_min(0)
    if alpha == 1:
        return A
    powered = eigvals.pow(alpha) if alpha > 0 else torch.where(
        eigvals > 0, eigvals.pow(alpha), torch.zeros_like(eigvals))
    return (eigvecs * powered) @ eigvecs.T


def psd_sqrt(A: torch.Tensor, *, check: bool = True) -> torch.Tensor:
    """The PSD square root ``A^{1/2}`` (``psd_power(A, 1/2)``)."""
    return psd_power(A, 0.5, check=check)


def correlation(A, B, kind: str = "pearson") -> float:
    """Similarity of two matrices of the same shape, over their entries.

    ``kind="pearson"``: subtract each matrix's mean entry, then take the cosine (the paper's
    measure). ``kind="cosine"``: ``<A, B>_F / (|A|_F |B|_F)``, uncentred.
    Both are invariant to positive scaling of either matrix.
    """
    A = check_finite(as_tensor(A, "A"), "A").to(torch.float64)
    B = check_finite(as_tensor(B, "B"), "B").to(device=A.device, dtype=torch.float64)
    if A.shape != B.shape:
        raise ValueError(f"A and B must have the same shape, got {tuple(A.shape)} and {tuple(B.shape)}")
    if kind == "pearson":
        A, B = A - A.mean(), B - B.mean()
    elif kind != "cosine":
        raise ValueError(f"kind must be 'pearson' or 'cosine', got {kind!r}")
    na, nb = A.norm(), B.norm()
    if na == 0 or nb == 0:
        raise ValueError("correlation is undefined for a constant matrix (zero norm after centring)")
    return float((A * B).sum() / (na * nb))
