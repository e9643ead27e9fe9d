"""Linear algebra on feature operators: PSD powers and the similarity of two matrices."""

from __future__ import annotations

import torch

from agop._typing import ArrayLike, Tensor
from agop.validation import (
    as_tensor,
    check_bool,
    check_choice,
    check_finite,
    check_int,
    check_psd,
    check_real,
    check_result,
    check_square,
    low_precision,
)


def psd_power(A: ArrayLike, power: float, *, check: bool = True) -> Tensor:
    r"""The power :math:`A^p` (:math:`p` = ``power``) of a symmetric PSD matrix
    :math:`A = U \Lambda U^\top`:

    .. math:: A^p = U \operatorname{diag}\bigl(\max(\lambda_i, 0)^p\bigr) U^\top.

    Tiny negative eigenvalues from round-off are clipped to zero; for :math:`p \le 0` (a
    pseudo-inverse power) every eigenvalue up to :math:`n \varepsilon \lambda_{\max}` (the rank
    tolerance of :func:`torch.linalg.pinv`) stays zero. A clearly indefinite ``A`` raises ``ValueError``
    (unless ``check=False``). float16 and bfloat16 matrices are decomposed in float32 and
    returned in their own dtype.

    Examples:
        >>> import torch
        >>> A = torch.tensor([[2.0, 1.0], [1.0, 2.0]], dtype=torch.float64)
        >>> torch.linalg.eigvalsh(psd_power(A, 2.0)).tolist()  # eigenvalues 1, 3 squared
        [1.0, 9.0]
        >>> torch.allclose(psd_power(A, -1.0) @ A, torch.eye(2, dtype=torch.float64))
        True
    """
    A = as_tensor(A, "A")
    power = check_real(power, "power")
    if check_bool(check, "check"):
        check_psd(A, "A")
    else:  # the shape and finiteness still: eigh fails on NaN deep inside LAPACK
        check_square(A, "A")
    return _psd_power(A, power)


def _psd_power(A: Tensor, power: float) -> Tensor:
    """:func:`psd_power` of a checked matrix and power: no checks but the result's."""
    A = (A + A.T) / 2
    if power == 1:
        return A
    dtype = A.dtype
    if low_precision(dtype):
        A = A.to(torch.float32)
    eigvals, eigvecs = torch.linalg.eigh(A)
    eigvals = eigvals.clamp_min(0)
    if power > 0:
        powered = eigvals.pow(power)
    else:  # a pseudo-inverse power: eigenvalues within round-off of zero (pinv's rank
        # tolerance, n eps lambda_max) are zero, not 1 / round-off
        tol = eigvals.max() * A.shape[0] * torch.finfo(eigvals.dtype).eps
        powered = torch.where(eigvals > tol, eigvals.pow(power), torch.zeros_like(eigvals))
    out = ((eigvecs * powered) @ eigvecs.T).to(dtype)
    return check_result(
        out,
        f"A^{power:g}",
        inputs={"A": A},
        hint="scale A down (A^p scales by c^p) or compute in float64",
    )


def psd_sqrt(A: torch.Tensor, *, check: bool = True) -> torch.Tensor:
    r"""The PSD square root :math:`A^{1/2}` (``psd_power(A, 0.5)``): the PSD :math:`S` with
    :math:`S^2 = A`.

    Examples:
        >>> import torch
        >>> A = torch.tensor([[5.0, 4.0], [4.0, 5.0]], dtype=torch.float64)
        >>> S = psd_sqrt(A)
        >>> S.tolist()
        [[2.0, 1.0], [1.0, 2.0]]
        >>> torch.allclose(S @ S, A)
        True
    """
    return psd_power(A, 0.5, check=check)


def congruence(W: torch.Tensor, G: torch.Tensor, *, block: int = 512) -> torch.Tensor:
    r"""The congruence sum :math:`\sum_g W_g^\top G_g W_g` (:math:`q \times q`) for ``W`` of shape
    ``(groups, k, q)`` and ``G`` of shape ``(groups, k, k)``; a single :math:`k \times q` matrix
    and :math:`k \times k` ``G`` are one group.

    With :math:`C_g = G_g W_g` the sum is :math:`[W_1; \dots; W_g]^\top [C_1; \dots; C_g]`. The
    result is exactly symmetric: its upper tiles (``block`` columns wide) are computed and
    mirrored, which also spares nearly half of the :math:`q^2 k` multiply-adds when :math:`q` is
    large.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> W = torch.randn(2, 3, 4, generator=g, dtype=torch.float64)
        >>> G = torch.eye(3, dtype=torch.float64).expand(2, 3, 3)
        >>> A = congruence(W, G)  # G = I: the sum of the groups' W_g^T W_g
        >>> torch.allclose(A, W[0].T @ W[0] + W[1].T @ W[1])
        True
        >>> bool((A == A.T).all())
        True
    """
    W = check_finite(as_tensor(W, "W"), "W")
    G = check_finite(as_tensor(G, "G", device=W.device), "G")
    dtype = torch.promote_types(W.dtype, G.dtype)
    W, G = W.to(dtype), G.to(dtype)
    if W.ndim == 2 and G.ndim == 2:
        W, G = W[None], G[None]
    if W.ndim != 3 or G.shape != (W.shape[0], W.shape[1], W.shape[1]):
        raise ValueError(
            f"W must be (groups, k, q) and G (groups, k, k), got {tuple(W.shape)} "
            f"and {tuple(G.shape)}"
        )
    block = check_int(block, "block", minimum=1)
    G = (G + G.mT) / 2
    C = torch.matmul(G, W).reshape(-1, W.shape[2])
    W = W.reshape(-1, W.shape[2])
    q = W.shape[1]
    A = torch.empty(q, q, dtype=C.dtype, device=C.device)
    for i in range(0, q, block):
        for j in range(i, q, block):
            tile = W[:, i : i + block].T @ C[:, j : j + block]
            if i == j:
                tile = (tile + tile.T) / 2
            A[i : i + block, j : j + block] = tile
            if i != j:
                A[j : j + block, i : i + block] = tile.T
    return A


def correlation(A: ArrayLike, B: ArrayLike, kind: str = "pearson") -> float:
    r"""Similarity of two matrices of the same shape, over their entries.

    ``kind="pearson"``: subtract each matrix's mean entry, then take the cosine (the paper's
    measure),

    .. math:: \rho(A, B) = \frac{\langle A - \bar a \mathbf{1}\mathbf{1}^\top,
              B - \bar b \mathbf{1}\mathbf{1}^\top \rangle_F}
              {\|A - \bar a \mathbf{1}\mathbf{1}^\top\|_F \, \|B - \bar b \mathbf{1}\mathbf{1}^\top\|_F},

    with :math:`\bar a, \bar b` the mean entries. ``kind="cosine"``:
    :math:`\langle A, B \rangle_F / (\|A\|_F \|B\|_F)`, uncentred.
    Both are invariant to positive scaling of either matrix, so each is first divided by its
    largest entry: any finite matrix works, ``1e-300`` or ``1e300`` in size. A matrix whose
    centred entries are round-off of its mean (``<= n eps max|A|``) counts as constant.

    Examples:
        >>> import torch
        >>> A = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
        >>> correlation(A, 10 * A + 5)  # invariant to scaling and to a shift
        1.0
        >>> correlation(A, A.T)  # entries 1 2 3 4 against 1 3 2 4
        0.8
        >>> round(correlation(A, A.T, kind="cosine"), 4)  # 29 / 30
        0.9667
    """
    A = check_finite(as_tensor(A, "A"), "A").to(torch.float64)
    B = check_finite(as_tensor(B, "B"), "B").to(device=A.device, dtype=torch.float64)
    if A.shape != B.shape:
        raise ValueError(
            f"A and B must have the same shape, got {tuple(A.shape)} and {tuple(B.shape)}"
        )
    kind = check_choice(kind, "kind", ("pearson", "cosine"))
    centred = []
    for name, C in (("A", A), ("B", B)):
        if not C.numel():
            raise ValueError(f"{name} is empty: shape {tuple(C.shape)}")
        size = float(C.abs().max()) if C.numel() else 0.0
        C = C / size if size > 0 else C
        if kind == "pearson":
            C = C - C.mean()
        if not C.numel() or float(C.abs().max()) <= C.numel() * torch.finfo(C.dtype).eps:
            raise ValueError(
                f"{name} is {'constant' if kind == 'pearson' else 'zero'}: the correlation is "
                f"undefined for a {'constant' if kind == 'pearson' else 'zero'} matrix"
            )
        centred.append(C)
    A, B = centred
    return float((A * B).sum() / (A.norm() * B.norm()))
