"""Convolutional NNGP/NTK kernels on patches in a learned metric ``M``.

The deep CNTK is the kernel of Neural Tangents' ``stax`` for
``[Conv(w, (k, k), W_std=k, b_std=0, padding='VALID') -> ABRelu(0, sqrt 2)] * depth ->
Flatten() -> Dense(1, W_std=1)`` (NTK parameterisation), whose first layer reads the patch
vectors transformed by ``M^{1/2}``. Without pooling only same-position covariances enter:
``Sigma_1(x, z)[j] = (1/c) <x[j], z[j]>_M`` (a channel mean; ``W_std = k`` on a fan-in of
``c k^2`` makes each layer *sum* its input covariance over its ``k x k`` window), then
:mod:`agop.kernels.arccos` layer by layer, and the read-out averages over positions.
"""

from __future__ import annotations

from typing import Any

import torch

from agop.kernels import _driver, arccos
from agop.kernels._inputs import (
    check_alpha,
    check_pair,
    check_patch_size,
    checked_result,
    metric_factor,
    patch_vectors,
    snap_tolerance,
)
from agop.validation import check_choice


class ArccosOps:
    """Per-tile operations of the arc-cosine kernels (CNTK, CNNGP)."""

    def __init__(self, X: torch.Tensor, k: int, depth: int, ntk: bool, R: torch.Tensor | None,
                 scale: float, padding: int = 0):
        self.k, self.depth, self.ntk, self.R = k, depth, ntk, R
        self.scale, self.padding = scale, padding
        self.H1 = X.shape[2] + 2 * padding - k + 1
        self.W1 = X.shape[3] + 2 * padding - k + 1
        self.n_positions, self.dim = self.H1 * self.W1, X.shape[1] * k * k
        self.snap = snap_tolerance(X.dtype)
        self.e = X.element_size()

    def prepare(self, X: torch.Tensor) -> dict[str, Any]:
        U = patch_vectors(X, self.k, self.padding, self.R)  # (P, n, q)
        s1 = (U * U).sum(-1).mul_(self.scale)  # Sigma_1(x, x) per position
        diags = arccos.diagonals(s1.view(self.H1, self.W1, -1), self.k, self.depth)
        return {"U": U, "s1": s1, "diags": diags}

    def take(self, data: dict[str, Any], idx: slice) -> dict[str, Any]:
        return {"U": data["U"][:, idx], "s1": data["s1"][:, idx],
                "diags": [d[:, :, idx] for d in data["diags"]]}

    def _first_layer(self, xd, zd, same: bool) -> torch.Tensor:
        S1 = torch.bmm(xd["U"], zd["U"].transpose(1, 2)).mul_(self.scale)
        if same:  # a pair (x, x) gets exactly its variance, so sin(theta) = 0 exactly
            S1.diagonal(dim1=1, dim2=2).copy_(xd["s1"])
        return S1.view(self.H1, self.W1, S1.shape[1], S1.shape[2])

    def block(self, xd, zd, same: bool) -> torch.Tensor:
        S1 = self._first_layer(xd, zd, same)
        sx = [d[:, :, :, None] for d in xd["diags"]]
        sz = [d[:, :, None, :] for d in zd["diags"]]
        return arccos.forward(S1, sx, sz, self.k, self.depth, self.ntk, self.snap)

    def grad_block(self, xd, zd, same: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """``grad_{u_x[j]} K = scale (dK/dSigma_1 u_z[j] + 2 dK/dSigma_1(x,x) u_x[j])``."""
        S1 = self._first_layer(xd, zd, same)
        sx = [d[:, :, :, None] for d in xd["diags"]]
        sz = [d[:, :, None, :] for d in zd["diags"]]
        _, S_bar, sx_bar = arccos.forward_backward(S1, sx, sz, self.k, self.depth, self.ntk,
                                                   self.snap)
        P = self.n_positions
        a = S_bar.mul_(self.scale).view(P, S1.shape[2], S1.shape[3])
        b = sx_bar.mul_(2 * self.scale).view(P, S1.shape[2], S1.shape[3])
        return a, b

    def pair_bytes(self, grad: bool) -> float:
        live = (4 * self.depth + 8) if grad else 8
        return live * self.n_positions * self.e

    def image_bytes(self) -> float:
        return self.n_positions * (self.dim + 1 + self.depth) * self.e


def _check_kind(kind: str) -> bool:
    return check_choice(kind, "kind", ("ntk", "nngp")) == "ntk"


def cntk(X, Z, patch_size: int, depth: int, M=None, kind: str = "ntk", *, device=None,
         max_memory: int | None = None, progress: bool | None = None) -> torch.Tensor:
    """Deep convolutional NTK (``kind="ntk"``) or NNGP (``kind="nngp"``) ``(n, m)``.

    ``Sigma_1[j] = Theta_1[j] = (1/c) <x[j], z[j]>_M``; for each of ``depth`` ReLU layers
    ``A = kappa0 Sigma + sq/pi``, ``Theta <- kappa0 Theta + A`` (``sq = sqrt(Sx Sz - Sigma^2)``,
    ``kappa0 = 1 - atan2(sq, Sigma)/pi``), then a ``k x k`` window sum before the next layer;
    NNGP ``= mean_j A_depth[j]``, NTK ``= mean_j Theta_depth[j]``. Exactly Neural Tangents'
    ``stax`` kernel of the architecture in the module docstring. ``Z=None`` (or ``X``) gives the
    symmetric ``K(X, X)``. Evaluated in tiles within ``max_memory`` bytes.
    """
    ntk = _check_kind(kind)
    X, Z, symmetric = check_pair(X, Z, device)
    k, depth = check_patch_size(patch_size, X, 0, depth), int(depth)
    R = metric_factor(M, X.shape[1] * k * k, X)
    ops = ArccosOps(X, k, depth, ntk, R, 1.0 / X.shape[1])
    K = _driver.kernel_matrix(ops, X, Z, symmetric, max_memory, progress,
                              "CNTK" if ntk else "CNNGP")
    return checked_result(K, "cntk(X, Z)", X, Z)


def cntk_agop(X, Z, alpha, patch_size: int, depth: int, M=None, kind: str = "ntk", *,
              device=None, max_memory: int | None = None, progress: bool | None = None
              ) -> torch.Tensor:
    """Patch-AGOP ``(q, q)`` of ``f(x) = cntk(x, Z) alpha`` over the images ``X``.

    ``(1/n) sum_i sum_j sum_c grad_{x_i[j]} f_c grad_{x_i[j]} f_c^T``, each first-layer patch
    ``x[j]`` an independent variable, gradients in the untransformed patch coordinates.
    Derivatives by a hand-derived backward of the tile computation
    (:func:`agop.kernels.arccos.forward_backward`), with Neural Tangents' one-sided conventions
    at coinciding points and zero patches.
    """
    ntk = _check_kind(kind)
    X, Z, _ = check_pair(X, Z, device)
    k, depth = check_patch_size(patch_size, X, 0, depth), int(depth)
    alpha = check_alpha(alpha, Z.shape[0], X)
    R = metric_factor(M, X.shape[1] * k * k, X)
    ops = ArccosOps(X, k, depth, ntk, R, 1.0 / X.shape[1])
    A = _driver.patch_agop(ops, X, Z, alpha, R, max_memory, progress, "CNTK patch-AGOP")
    return checked_result(A, "cntk_agop", X, Z, alpha)


def cnngp(X, Z, patch_size: int, M=None, padding: int = 0, *, device=None,
          max_memory: int | None = None, progress: bool | None = None) -> torch.Tensor:
    """NNGP of one hidden ReLU conv layer with a fully connected read-out:

    ``K_M(x, z) = (1/P) sum_j |x[j]|_M |z[j]|_M kappa(<x[j], z[j]>_M / (|x[j]|_M |z[j]|_M))``,
    ``kappa(t) = (t (pi - arccos t) + sqrt(1 - t^2)) / pi``. (It is ``c`` times the depth-1
    ``cntk(kind="nngp")``, which takes the channel mean.)
    """
    X, Z, symmetric = check_pair(X, Z, device)
    k = check_patch_size(patch_size, X, padding)
    R = metric_factor(M, X.shape[1] * k * k, X)
    ops = ArccosOps(X, k, 1, False, R, 1.0, int(padding))
    K = _driver.kernel_matrix(ops, X, Z, symmetric, max_memory, progress, "CNNGP")
    return checked_result(K, "cnngp(X, Z)", X, Z)


def cnngp_agop(X, Z, alpha, patch_size: int, M=None, padding: int = 0, *, device=None,
               max_memory: int | None = None, progress: bool | None = None) -> torch.Tensor:
    """Patch-AGOP ``(q, q)`` of ``f(x) = cnngp(x, Z) alpha`` over the images ``X``.

    Closed form per pair and position (``u = M^{1/2} x[j]``, ``v = M^{1/2} z[j]``):
    ``grad_u k(u, v) = kappa0 v + (|v| sin(theta) / (pi |u|)) u`` with
    ``kappa0 = 1 - theta/pi``; gradients in the untransformed coordinates are ``M^{1/2}`` times it.
    """
    X, Z, _ = check_pair(X, Z, device)
    k = check_patch_size(patch_size, X, padding)
    alpha = check_alpha(alpha, Z.shape[0], X)
    R = metric_factor(M, X.shape[1] * k * k, X)
    ops = ArccosOps(X, k, 1, False, R, 1.0, int(padding))
    A = _driver.patch_agop(ops, X, Z, alpha, R, max_memory, progress, "CNNGP patch-AGOP")
    return checked_result(A, "cnngp_agop", X, Z, alpha)
