"""Linear algebra on feature operators: PSD powers and the similarity of two matrices."""

from __future__ import annotations

import torch

from agop.validation import (
    as_tensor,
    check_choice,
    check_finite,
    check_psd,
    check_real,
    check_result,
    low_precision,
)


def psd_power(A: torch.Tensor, alpha: float, *, check: bool = True) -> torch.Tensor:
    """``A^alpha`` for a symmetric PSD matrix: ``U diag(max(lambda, 0)^alpha) U^T``.

    Tiny negative eigenvalues from round-off are clipped to zero; a clearly indefinite ``A``
    raises ``ValueError`` (unless ``check=False``). float16 and bfloat16 matrices are
    decomposed in float32 and returned in their own dtype.
    """
    A = as_tensor(A, "A")
    alpha = check_real(alpha, "alpha")
    if check:
        check_psd(A, "A")
    A = (A + A.T) / 2
    if alpha == 1:
        return A
    dtype = A.dtype
    if low_precision(dtype):
        A = A.to(torch.float32)
    eigvals, eigvecs = torch.linalg.eigh(A)
    eigvals = eigvals.clamp_min(0)
    powered = eigvals.pow(alpha) if alpha > 0 else torch.where(
        eigvals > 0, eigvals.pow(alpha), torch.zeros_like(eigvals))
    out = ((eigvecs * powered) @ eigvecs.T).to(dtype)
    return check_result(out, f"A^{alpha:g}", inputs={"A": A},
                        hint="scale A down (A^alpha scales by c^alpha) or compute in float64")


def psd_sqrt(A: torch.Tensor, *, check: bool = True) -> torch.Tensor:
    """The PSD square root ``A^{1/2}`` (``psd_power(A, 1/2)``)."""
    return psd_power(A, 0.5, check=check)


def congruence(W: torch.Tensor, G: torch.Tensor, *, block: int = 512) -> torch.Tensor:
    """``sum_g W_g^T G_g W_g`` (``q x q``) for ``W`` of shape ``(groups, k, q)`` and ``G`` of
    shape ``(groups, k, k)``; a single ``k x q`` matrix and ``k x k`` ``G`` are one group.

    With ``C_g = G_g W_g`` the sum is ``[W_1; ...; W_g]^T [C_1; ...; C_g]``. The result is exactly
    symmetric: its upper tiles (``block`` columns wide) are computed and mirrored, which also
    spares nearly half of the ``q^2 k`` multiply-adds when ``q`` is large.
    """
    if W.ndim == 2:
        W, G = W[None], G[None]
    if W.ndim != 3 or G.shape != (W.shape[0], W.shape[1], W.shape[1]):
        raise ValueError(f"W must be (groups, k, q) and G (groups, k, k), got {tuple(W.shape)} "
                         f"and {tuple(G.shape)}")
    G = (G + G.mT) / 2
    C = torch.matmul(G, W).reshape(-1, W.shape[2])
    W = W.reshape(-1, W.shape[2])
    q = W.shape[1]
    A = torch.empty(q, q, dtype=C.dtype, device=C.device)
    for i in range(0, q, block):
        for j in range(i, q, block):
            tile = W[:, i:i + block].T @ C[:, j:j + block]
            if i == j:
                tile = (tile + tile.T) / 2
            A[i:i + block, j:j + block] = tile
            if i != j:
                A[j:j + block, i:i + block] = tile.T
    return A


def correlation(A, B, kind: str = "pearson") -> float:
    """Similarity of two matrices of the same shape, over their entries.

    ``kind="pearson"``: subtract each matrix's mean entry, then take the cosine (the paper's
    measure). ``kind="cosine"``: ``<A, B>_F / (|A|_F |B|_F)``, uncentred.
    Both are invariant to positive scaling of either matrix, so each is first divided by its
    largest entry: any finite matrix works, ``1e-300`` or ``1e300`` in size. A matrix whose
    centred entries are round-off of its mean (``<= n eps max|A|``) counts as constant.
    """
    A = check_finite(as_tensor(A, "A"), "A").to(torch.float64)
    B = check_finite(as_tensor(B, "B"), "B").to(device=A.device, dtype=torch.float64)
    if A.shape != B.shape:
        raise ValueError(f"A and B must have the same shape, got {tuple(A.shape)} and {tuple(B.shape)}")
    kind = check_choice(kind, "kind", ("pearson", "cosine"))
    centred = []
    for name, C in (("A", A), ("B", B)):
        size = float(C.abs().max()) if C.numel() else 0.0
        C = C / size if size > 0 else C
        if kind == "pearson":
            C = C - C.mean()
        if not C.numel() or float(C.abs().max()) <= C.numel() * torch.finfo(C.dtype).eps:
            raise ValueError(f"correlation is undefined for a constant matrix ({name} is "
                             f"{'constant' if kind == 'pearson' else 'zero'})")
        centred.append(C)
    A, B = centred
    return float((A * B).sum() / (A.norm() * B.norm()))
