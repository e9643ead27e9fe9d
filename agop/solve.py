r"""Kernel ridge regression: the dual coefficients :math:`\alpha = (K + \lambda I)^{-1} Y`
(``dual_coef``), for one ridge :math:`\lambda` (``ridge``) or a grid of them (``ridges``).

A sweep over :math:`\lambda` uses one eigendecomposition of :math:`K` when its memory (about
``EIGEN_COPIES`` :math:`\cdot n^2` elements beside :math:`K`: a symmetrised copy, the
eigenvectors and LAPACK's workspace) fits the budget, and otherwise one Cholesky factorisation
per :math:`\lambda`, written in place into a single preallocated :math:`n \times n` buffer
(:math:`n^2` elements beside :math:`K`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch

from agop._typing import ArrayLike, Tensor
from agop.kernels._tiling import memory_budget
from agop.runtime import default_device
from agop.validation import (
    _stacklevel_outside_agop,
    as_tensor,
    check_bool,
    check_choice,
    check_finite,
    check_int,
    check_real,
    check_reals,
    check_result,
    check_square,
    check_symmetric,
    low_precision,
)

#: ``n x n`` matrices an eigendecomposition sweep holds beside ``K`` (copy, vectors, workspace)
EIGEN_COPIES = 4


def _matrix(A: ArrayLike, name: str, like: torch.Tensor | None = None) -> torch.Tensor:
    """``A`` as a tensor to solve with: detached (the solvers factorise in place, which autograd
    cannot follow), float16/bfloat16 raised to float32 (LAPACK has no half precision), in
    ``like``'s dtype and device when given."""
    if like is not None:
        return as_tensor(A, name, dtype=like.dtype, device=like.device).detach()
    A = as_tensor(A, name).detach()
    return A.to(torch.float32) if low_precision(A.dtype) else A


def _targets(Y, n: int, like: torch.Tensor, name: str = "Y") -> tuple[torch.Tensor, bool]:
    Y = check_finite(_matrix(Y, name, like), name)
    vector = Y.ndim == 1
    if vector:
        Y = Y[:, None]
    if Y.ndim != 2 or Y.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},) or ({n}, C), got {tuple(Y.shape)}")
    return Y, vector


def _check_ridge(ridge: float, name: str = "ridge") -> float:
    return check_real(ridge, name, minimum=0)


def _check_kernel_matrix(K: ArrayLike) -> torch.Tensor:
    r"""``K`` as a finite, square, symmetric (to :math:`\sqrt{\varepsilon}` of its largest entry) matrix."""
    return check_symmetric(check_square(_matrix(K, "K"), "K"), "K")


def _checked_dual_coef(dual_coef: torch.Tensor) -> torch.Tensor:
    return check_result(
        dual_coef,
        "dual_coef = (K + ridge I)^{-1} Y",
        hint="increase the ridge, or rescale K (divide it by its largest entry)",
    )


def ridge(K: ArrayLike, Y: ArrayLike, ridge: float = 0.0, *, jitter: bool = True) -> Tensor:
    r"""The dual coefficients :math:`\alpha = (K + \lambda I)^{-1} Y` (:math:`\lambda` =
    ``ridge``) by a Cholesky factorisation.

    ``K`` ``(n, n)`` symmetric, ``Y`` ``(n,)`` or ``(n, C)``; the result has ``Y``'s shape.
    When ``K + ridge I`` is not positive definite (a singular kernel matrix with ``ridge = 0``, or
    float32 round-off), ``jitter=True`` adds the smallest ``eps * mean(diag K) * 10^j`` that
    makes it so, with a warning; ``jitter=False`` raises ``ValueError``. A clearly indefinite
    ``K`` (no jitter up to ``1e-3 * mean(diag K)`` helps) always raises.

    Examples:
        >>> import torch
        >>> K = torch.tensor([[2.0, 1.0], [1.0, 2.0]], dtype=torch.float64)
        >>> Y = torch.tensor([[1.0], [0.0]], dtype=torch.float64)
        >>> dual_coef = ridge(K, Y, ridge=1.0)  # (K + I) dual_coef = Y
        >>> dual_coef.flatten().tolist()
        [0.375, -0.125]
        >>> torch.allclose((K + torch.eye(2, dtype=torch.float64)) @ dual_coef, Y)
        True
    """
    K = _check_kernel_matrix(K)
    Y, vector = _targets(Y, K.shape[0], K)
    shift = _check_ridge(ridge)
    jitter = check_bool(jitter, "jitter")
    solver = _CholeskySolver(K, torch.empty_like(K))  # solves with (K + K^T) / 2
    dual_coef = _checked_dual_coef(solver.solve(Y, shift, jitter))
    return dual_coef[:, 0] if vector else dual_coef


class _CholeskySolver:
    r""":math:`(K_s + \lambda I)^{-1} Y` for any ``ridge``, with :math:`K_s = (K + K^\top) / 2`
    (``K`` itself for a symmetric ``K``, to the bit), factorising :math:`K_s + \lambda I` in place
    in ``work`` (an ``n x n`` buffer; ``K`` itself is only read). The eigen sweep
    (:class:`RidgeSweep`) decomposes the same :math:`K_s`, so the two paths solve one system."""

    def __init__(self, K: torch.Tensor, work: torch.Tensor):
        self.K, self.work = K, work
        self._info = torch.empty((), dtype=torch.int32, device=K.device)

    def _fill(self, shift: float) -> None:
        self.work.copy_(self.K).add_(self.K.mT).mul_(0.5)
        self.work.diagonal().add_(shift)

    def _factor(self) -> bool:
        # the buffer's transpose is column-major, LAPACK's layout: torch factorises it where
        # it lies (``out`` aliasing the input), with no n x n copy
        factor = self.work.mT
        _, info = torch.linalg.cholesky_ex(factor, out=(factor, self._info))
        return int(info) == 0

    def solve(self, Y: torch.Tensor, ridge: float, jitter: bool = True) -> torch.Tensor:
        self._fill(ridge)
        if not self._factor():
            if not jitter:
                raise ValueError(
                    f"K + ridge*I is not positive definite (ridge={ridge:g}); "
                    "increase the ridge or pass jitter=True"
                )
            scale = float(self.K.diagonal().abs().mean()) + ridge or 1.0
            amount = torch.finfo(self.K.dtype).eps * scale
            ok = False
            while not ok and amount <= 1e-3 * scale:
                self._fill(ridge + amount)
                ok = self._factor()
                if not ok:
                    amount *= 10
            if not ok:
                raise ValueError(
                    f"K + ridge*I is not positive definite (ridge={ridge:g}), even "
                    f"with a jitter of 1e-3 * mean(diag K); is K a kernel matrix?"
                )
            warnings.warn(
                f"K + ridge*I was not positive definite (ridge={ridge:g}); added a "
                f"jitter of {amount:.3g} to its diagonal",
                RuntimeWarning,
                stacklevel=_stacklevel_outside_agop(),
            )
        # two triangular solves on the factor where it lies: torch.cholesky_solve would first
        # copy the n x n factor (384 MB at n = 10 000 in float32)
        L = self.work.mT
        return torch.linalg.solve_triangular(
            L.mT, torch.linalg.solve_triangular(L, Y, upper=False), upper=True
        )


def eigen_sweep_fits(
    n: int,
    element_size: int,
    max_memory: int | float | None = None,
    device: torch.device | str = "cpu",
) -> bool:
    """Whether a sweep by one eigendecomposition (``EIGEN_COPIES * n^2`` elements beside ``K``)
    fits ``max_memory`` bytes (``None``: a quarter of the available memory, as for the
    kernels' tiles).

    Examples:
        >>> eigen_sweep_fits(1000, 8, max_memory=1e9), eigen_sweep_fits(100_000, 8, max_memory=1e9)
        (True, False)
    """
    n = check_int(n, "n", minimum=0)
    element_size = check_int(element_size, "element_size", minimum=1)
    return EIGEN_COPIES * n * n * element_size <= memory_budget(max_memory, default_device(device))


class RidgeSweep:
    r"""One eigendecomposition :math:`K = U \operatorname{diag}(s) U^\top` serving every
    ridge :math:`\lambda` of a grid: :math:`\alpha(\lambda) = U \operatorname{diag}\bigl(1/(s + \lambda)\bigr)
    U^\top Y`.

    Examples:
        Every :math:`\lambda` of the sweep agrees with its own Cholesky solve:

        >>> import torch
        >>> B = torch.randn(6, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        >>> K, Y = B @ B.T, torch.eye(6, 2, dtype=torch.float64)
        >>> sweep = RidgeSweep(K)
        >>> [torch.allclose(sweep.solve(Y, r), ridge(K, Y, r)) for r in (1e-3, 1.0)]
        [True, True]
    """

    def __init__(self, K: ArrayLike) -> None:
        K = _check_kernel_matrix(K)
        self.eigenvalues, self.eigenvectors = torch.linalg.eigh((K + K.T) / 2)
        self._tol = self.eigenvalues.abs().max() * K.shape[0] * torch.finfo(K.dtype).eps

    def _inverse_spectrum(self, ridge: float) -> torch.Tensor:
        shifted = self.eigenvalues + ridge
        if not bool((shifted != 0).any()):
            raise ValueError(
                f"K + ridge*I is zero (K = 0 and ridge={ridge:g}): no solution; use "
                "ridge > 0 or a non-zero kernel matrix"
            )
        if shifted.min() <= 0:
            if shifted.min() < -self._tol:
                raise ValueError(
                    f"K + ridge*I is not positive definite (ridge={ridge:g}): its "
                    f"smallest eigenvalue is {float(shifted.min()):.3g}"
                )
            warnings.warn(
                f"K + ridge*I is singular to round-off (ridge={ridge:g}); eigenvalues "
                f"below {float(self._tol):.3g} are raised to it",
                RuntimeWarning,
                stacklevel=_stacklevel_outside_agop(),
            )
            shifted = shifted.clamp_min(self._tol)
        return shifted.reciprocal()

    def solve(self, Y: ArrayLike, ridge: float) -> Tensor:
        r"""The dual coefficients :math:`\alpha = (K + \lambda I)^{-1} Y` (:math:`\lambda` =
        ``ridge``), with ``Y``'s shape."""
        U = self.eigenvectors
        Y, vector = _targets(Y, U.shape[0], U)
        dual_coef = U @ (self._inverse_spectrum(_check_ridge(ridge))[:, None] * (U.T @ Y))
        dual_coef = _checked_dual_coef(dual_coef)
        return dual_coef[:, 0] if vector else dual_coef


def _score(pred: torch.Tensor, Y: torch.Tensor, metric: str) -> float:
    if metric == "accuracy":
        if Y.shape[1] == 1:
            return float(((pred[:, 0] > 0) == (Y[:, 0] > 0)).double().mean())
        return float((pred.argmax(1) == Y.argmax(1)).double().mean())
    return float(((pred - Y) ** 2).sum(1).mean())


def select_ridge(
    K_train: ArrayLike,
    Y_train: ArrayLike,
    K_val: ArrayLike,
    Y_val: ArrayLike,
    ridges: Sequence[float],
    metric: str | None = None,
    *,
    max_memory: int | float | None = None,
    method: str | None = None,
) -> tuple[float, Tensor, list[float]]:
    """Choose the ridge on a validation split: ``(best_ridge, dual_coef, scores)``.

    ``K_train`` ``(n, n)``, ``K_val = K(X_val, X_train)`` ``(n_val, n)``. ``method="eigen"``:
    one eigendecomposition of ``K_train`` serves every ridge; ``"cholesky"``: one Cholesky
    factorisation per ridge, in place in one ``n x n`` buffer (``K_train`` is only read);
    ``None``: eigen when it fits ``max_memory`` bytes (:func:`eigen_sweep_fits`), else
    Cholesky. ``metric``: ``"accuracy"`` (argmax of one-hot rows, or the sign of a single
    column; higher is better) or ``"mse"`` (lower is better); default accuracy for targets with
    several columns, else mse. Ties go to the larger ridge. ``scores[i]`` belongs to
    ``ridges[i]``; ``dual_coef`` is that of ``best_ridge``.

    Examples:
        Interpolating a smooth function at the midpoints: the smallest ridge has the lowest
        validation error, and both methods agree:

        >>> import torch
        >>> x = torch.linspace(0, 1, 8, dtype=torch.float64)[:, None]
        >>> K = torch.exp(-torch.cdist(x, x))  # a Laplace kernel on 8 points
        >>> Y = torch.sin(3 * x)
        >>> best, dual_coef, scores = select_ridge(K[::2, ::2], Y[::2], K[1::2, ::2], Y[1::2],
        ...                                   [1e-6, 1e-2, 1.0], metric="mse")
        >>> best, [round(v, 4) for v in scores]
        (1e-06, [0.0312, 0.0325, 0.0957])
        >>> again = select_ridge(K[::2, ::2], Y[::2], K[1::2, ::2], Y[1::2], [1e-6, 1e-2, 1.0],
        ...                      metric="mse", method="cholesky")
        >>> again[0] == best and torch.allclose(again[1], dual_coef)
        True
    """
    K = check_square(_matrix(K_train, "K_train"), "K_train")
    K = check_symmetric(K, "K_train")  # both sweeps solve with (K + K^T) / 2
    n = K.shape[0]
    Y, vector = _targets(Y_train, n, K, "Y_train")
    K_val = check_finite(_matrix(K_val, "K_val", K), "K_val")
    if K_val.ndim != 2 or K_val.shape[1] != n or K_val.shape[0] == 0:
        raise ValueError(
            f"K_val must have shape (n_val, {n}) with n_val >= 1, got {tuple(K_val.shape)}"
        )
    Yv, _ = _targets(Y_val, K_val.shape[0], K, "Y_val")
    if Yv.shape[1] != Y.shape[1]:
        raise ValueError(f"Y_val has {Yv.shape[1]} columns but Y_train has {Y.shape[1]}")
    ridges = check_reals(ridges, "ridges", minimum=0)
    if max_memory is not None:
        memory_budget(max_memory, K.device)  # checked before any work
    if metric is None:
        metric = "accuracy" if Y.shape[1] > 1 else "mse"
    metric = check_choice(metric, "metric", ("accuracy", "mse"))
    if method is None:
        method = (
            "eigen" if eigen_sweep_fits(n, K.element_size(), max_memory, K.device) else "cholesky"
        )
    method = check_choice(method, "method", ("eigen", "cholesky"))
    sign = 1 if metric == "accuracy" else -1
    if method == "eigen":
        sweep = RidgeSweep(K)
        U = sweep.eigenvectors
        KvU, UtY = K_val @ U, U.T @ Y
        scores = [
            _score(KvU @ (sweep._inverse_spectrum(r)[:, None] * UtY), Yv, metric) for r in ridges
        ]
        best = max(range(len(ridges)), key=lambda i: (sign * scores[i], ridges[i]))
        dual_coef = sweep.solve(Y, ridges[best])
    else:
        solver = _CholeskySolver(K, torch.empty_like(K))
        scores, dual_coefs = [], []
        for r in ridges:
            dual_coefs.append(solver.solve(Y, r))
            scores.append(_score(K_val @ dual_coefs[-1], Yv, metric))
        del solver
        best = max(range(len(ridges)), key=lambda i: (sign * scores[i], ridges[i]))
        dual_coef = dual_coefs[best]
    dual_coef = _checked_dual_coef(dual_coef)
    return ridges[best], (dual_coef[:, 0] if vector else dual_coef), scores
