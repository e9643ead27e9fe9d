"""Kernel ridge regression: ``alpha = (K + lambda I)^{-1} Y``, one lambda or a sweep of them."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch

from agop.validation import (
    as_tensor,
    check_choice,
    check_finite,
    check_real,
    check_result,
    check_square,
    check_symmetric,
)


def _targets(Y, n: int, like: torch.Tensor, name: str = "Y") -> tuple[torch.Tensor, bool]:
    Y = check_finite(as_tensor(Y, name, dtype=like.dtype, device=like.device), name)
    vector = Y.ndim == 1
    if vector:
        Y = Y[:, None]
    if Y.ndim != 2 or Y.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},) or ({n}, C), got {tuple(Y.shape)}")
    return Y, vector


def _check_lam(lam) -> float:
    return check_real(lam, "lam", minimum=0)


def _check_kernel_matrix(K) -> torch.Tensor:
    """``K`` as a finite, square, symmetric (to ``sqrt(eps)`` of its largest entry) matrix."""
    return check_symmetric(check_square(as_tensor(K, "K"), "K"), "K")


def _checked_alpha(alpha: torch.Tensor) -> torch.Tensor:
    return check_result(alpha, "alpha = (K + lam I)^{-1} Y",
                        hint="increase lam, or rescale K (divide it by its largest entry)")


def ridge(K, Y, lam: float = 0.0, *, jitter: bool = True) -> torch.Tensor:
    """``alpha = (K + lam I)^{-1} Y`` by a Cholesky factorisation.

    ``K`` ``(n, n)`` symmetric, ``Y`` ``(n,)`` or ``(n, C)``; ``alpha`` has ``Y``'s shape.
    When ``K + lam I`` is not positive definite (a singular kernel matrix with ``lam = 0``, or
    float32 round-off), ``jitter=True`` adds the smallest ``eps * mean(diag K) * 10^j`` that
    makes it so, with a warning; ``jitter=False`` raises ``ValueError``. A clearly indefinite
    ``K`` (no jitter up to ``1e-3 * mean(diag K)`` helps) always raises.
    """
    K = _check_kernel_matrix(K)
    Y, vector = _targets(Y, K.shape[0], K)
    lam = _check_lam(lam)
    A = (K + K.T) / 2
    A.diagonal().add_(lam)
    L, info = torch.linalg.cholesky_ex(A)
    if int(info) != 0:
        if not jitter:
            raise ValueError(f"K + lam*I is not positive definite (lam={lam:g}); increase lam "
                             "or pass jitter=True")
        scale = float(A.diagonal().abs().mean()) or 1.0
        eps = torch.finfo(K.dtype).eps
        amount = eps * scale
        while int(info) != 0 and amount <= 1e-3 * scale:
            B = A.clone()
            B.diagonal().add_(amount)
            L, info = torch.linalg.cholesky_ex(B)
            if int(info) != 0:
                amount *= 10
        if int(info) != 0:
            raise ValueError(f"K + lam*I is not positive definite (lam={lam:g}), even with a "
                             f"jitter of 1e-3 * mean(diag K); is K a kernel matrix?")
        warnings.warn(f"K + lam*I was not positive definite (lam={lam:g}); added a jitter of "
                      f"{amount:.3g} to its diagonal", RuntimeWarning, stacklevel=2)
    alpha = _checked_alpha(torch.cholesky_solve(Y, L))
    return alpha[:, 0] if vector else alpha


class RidgeSweep:
    """One eigendecomposition ``K = U diag(s) U^T`` serving every ``lambda`` of a sweep:
    ``alpha(lambda) = U diag(1/(s + lambda)) U^T Y``."""

    def __init__(self, K):
        K = _check_kernel_matrix(K)
        self.eigenvalues, self.eigenvectors = torch.linalg.eigh((K + K.T) / 2)
        self._tol = self.eigenvalues.abs().max() * K.shape[0] * torch.finfo(K.dtype).eps

    def _inverse_spectrum(self, lam: float) -> torch.Tensor:
        shifted = self.eigenvalues + lam
        if not bool((shifted != 0).any()):
            raise ValueError(f"K + lam*I is zero (K = 0 and lam={lam:g}): no solution; use "
                             "lam > 0 or a non-zero kernel matrix")
        if shifted.min() <= 0:
            if shifted.min() < -self._tol:
                raise ValueError(f"K + lam*I is not positive definite (lam={lam:g}): its "
                                 f"smallest eigenvalue is {float(shifted.min()):.3g}")
            warnings.warn(f"K + lam*I is singular to round-off (lam={lam:g}); eigenvalues below "
                          f"{float(self._tol):.3g} are raised to it", RuntimeWarning, stacklevel=3)
            shifted = shifted.clamp_min(self._tol)
        return shifted.reciprocal()

    def solve(self, Y, lam: float) -> torch.Tensor:
        """``alpha = (K + lam I)^{-1} Y``, with ``Y``'s shape."""
        U = self.eigenvectors
        Y, vector = _targets(Y, U.shape[0], U)
        alpha = U @ (self._inverse_spectrum(_check_lam(lam))[:, None] * (U.T @ Y))
        alpha = _checked_alpha(alpha)
        return alpha[:, 0] if vector else alpha


def _score(pred: torch.Tensor, Y: torch.Tensor, metric: str) -> float:
    if metric == "accuracy":
        if Y.shape[1] == 1:
            return float(((pred[:, 0] > 0) == (Y[:, 0] > 0)).double().mean())
        return float((pred.argmax(1) == Y.argmax(1)).double().mean())
    return float(((pred - Y) ** 2).sum(1).mean())


def select_ridge(K_train, Y_train, K_val, Y_val, lambdas: Sequence[float],
                 metric: str | None = None) -> tuple[float, torch.Tensor, list[float]]:
    """Choose ``lambda`` on a validation split: ``(best_lam, alpha, scores)``.

    ``K_train`` ``(n, n)``, ``K_val = K(X_val, X_train)`` ``(n_val, n)``; one eigendecomposition
    of ``K_train`` serves every lambda. ``metric``: ``"accuracy"`` (argmax of one-hot rows, or
    the sign of a single column; higher is better) or ``"mse"`` (lower is better); default
    accuracy for targets with several columns, else mse. Ties go to the larger lambda.
    ``scores[i]`` belongs to ``lambdas[i]``; ``alpha`` is refitted at ``best_lam``.
    """
    sweep = RidgeSweep(K_train)
    U = sweep.eigenvectors
    n = U.shape[0]
    Y, vector = _targets(Y_train, n, U, "Y_train")
    K_val = check_finite(as_tensor(K_val, "K_val", dtype=U.dtype, device=U.device), "K_val")
    if K_val.ndim != 2 or K_val.shape[1] != n:
        raise ValueError(f"K_val must have shape (n_val, {n}), got {tuple(K_val.shape)}")
    Yv, _ = _targets(Y_val, K_val.shape[0], U, "Y_val")
    if Yv.shape[1] != Y.shape[1]:
        raise ValueError(f"Y_val has {Yv.shape[1]} columns but Y_train has {Y.shape[1]}")
    lambdas = [_check_lam(lam) for lam in lambdas]
    if not lambdas:
        raise ValueError("lambdas must hold at least one value")
    if metric is None:
        metric = "accuracy" if Y.shape[1] > 1 else "mse"
    metric = check_choice(metric, "metric", ("accuracy", "mse"))
    KvU, UtY = K_val @ U, U.T @ Y
    scores = [_score(KvU @ (sweep._inverse_spectrum(lam)[:, None] * UtY), Yv, metric)
              for lam in lambdas]
    sign = 1 if metric == "accuracy" else -1
    best = max(range(len(lambdas)), key=lambda i: (sign * scores[i], lambdas[i]))
    alpha = sweep.solve(Y[:, 0] if vector else Y, lambdas[best])
    return lambdas[best], alpha, scores
