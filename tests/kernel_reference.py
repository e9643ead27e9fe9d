"""Brute-force definitions of the patch kernels, written with explicit loops (tests only).

Each kernel is a function of the two images' patch arrays ``(H1, W1, q)`` so that gradients with
respect to the patches (as independent variables) come from autograd. The arc-cosine maps use
``arccos`` and ``kappa(t)`` as written in the book's appendix ``book/92_kernels.md``, not the package's ``atan2`` form.
"""

from __future__ import annotations

import math

import torch


def patches(x: torch.Tensor, k: int, padding: int = 0) -> torch.Tensor:
    """``(c, H, W) -> (H1, W1, c*k*k)`` by explicit slicing, (channel, row, col) order."""
    if padding:
        x = torch.nn.functional.pad(x, (padding,) * 4)
    c, H, W = x.shape
    rows = []
    for i in range(H - k + 1):
        rows.append(torch.stack([x[:, i : i + k, j : j + k].reshape(-1) for j in range(W - k + 1)]))
    return torch.stack(rows)


def _quad(a, b, M):
    return a @ M @ b


def laplace_patches(px, pz, M, L):
    H1, W1, _ = px.shape
    total = 0.0
    for i in range(H1):
        for j in range(W1):
            diff = px[i, j] - pz[i, j]
            total = total + torch.exp(-torch.sqrt(_quad(diff, diff, M)) / L)
    return total / (H1 * W1)


def rbf_patches(px, pz, M, L):
    """The Gaussian patch kernel, (1/P) sum_j exp(-|x[j] - z[j]|_M^2 / (2 L^2))."""
    H1, W1, _ = px.shape
    total = 0.0
    for i in range(H1):
        for j in range(W1):
            diff = px[i, j] - pz[i, j]
            total = total + torch.exp(-_quad(diff, diff, M) / (2 * L**2))
    return total / (H1 * W1)


def kappa1(t):
    return (t * (math.pi - torch.arccos(t)) + torch.sqrt(1 - t * t)) / math.pi


def kappa0(t):
    return (math.pi - torch.arccos(t)) / math.pi


def cnngp_patches(px, pz, M):
    H1, W1, _ = px.shape
    total = torch.zeros((), dtype=px.dtype)
    for i in range(H1):
        for j in range(W1):
            if not (px[i, j].any() and pz[i, j].any()):
                continue  # a zero patch: |x| |z| kappa(t) -> 0 as either norm -> 0
            nx = torch.sqrt(_quad(px[i, j], px[i, j], M))
            nz = torch.sqrt(_quad(pz[i, j], pz[i, j], M))
            t = (_quad(px[i, j], pz[i, j], M) / (nx * nz)).clamp(-1, 1)
            total = total + nx * nz * kappa1(t)
    return total / (H1 * W1)


def cntk_patches(px, pz, M, c, k, depth, kind="ntk"):
    """Same-position recursion with explicit loops over positions, window offsets and layers."""
    H, W, _ = px.shape

    def grid(fn, H, W):
        return [[fn(i, j) for j in range(W)] for i in range(H)]

    S = grid(lambda i, j: _quad(px[i, j], pz[i, j], M) / c, H, W)
    Sx = grid(lambda i, j: _quad(px[i, j], px[i, j], M) / c, H, W)
    Sz = grid(lambda i, j: _quad(pz[i, j], pz[i, j], M) / c, H, W)
    T = [row[:] for row in S]
    for layer in range(depth):
        A, Td = [], []
        for i in range(H):
            A.append([]), Td.append([])
            for j in range(W):
                norm = torch.sqrt(Sx[i][j] * Sz[i][j])
                t = (S[i][j] / norm).clamp(-1, 1)
                A[i].append(norm * kappa1(t))
                Td[i].append(kappa0(t) * T[i][j] + A[i][j])
        if layer == depth - 1:
            out = A if kind == "nngp" else Td
            return sum(sum(row) for row in out) / (H * W)
        H, W = H - k + 1, W - k + 1

        def wsum(G, i, j):
            return sum(G[i + a][j + b] for a in range(k) for b in range(k))

        S = grid(lambda i, j, A=A: wsum(A, i, j), H, W)
        T = grid(lambda i, j, Td=Td: wsum(Td, i, j), H, W)
        Sx = grid(lambda i, j, Sx=Sx: wsum(Sx, i, j), H, W)
        Sz = grid(lambda i, j, Sz=Sz: wsum(Sz, i, j), H, W)
    raise AssertionError


def kernel_matrix(fn, X, Z, k, padding=0):
    """``[fn(patches(x), patches(z)) for x in X for z in Z]`` with explicit loops."""
    PX = [patches(x, k, padding) for x in X]
    PZ = [patches(z, k, padding) for z in Z]
    return torch.stack([torch.stack([fn(px, pz) for pz in PZ]) for px in PX])


def agop_autograd(fn, X, Z, alpha, k, padding=0):
    """Patch-AGOP of ``f(x) = sum_z alpha_z fn(patches(x), patches(z))`` by autograd, one image
    and one output at a time, every patch an independent variable."""
    PZ = [patches(z, k, padding) for z in Z]
    q = PZ[0].shape[-1]
    G = torch.zeros(q, q, dtype=X.dtype)
    for x in X:
        px = patches(x, k, padding).detach().requires_grad_(True)
        values = torch.stack([fn(px, pz) for pz in PZ])
        for cls in range(alpha.shape[1]):
            (grad,) = torch.autograd.grad(values @ alpha[:, cls], px, retain_graph=True)
            flat = grad.reshape(-1, q)
            G += flat.T @ flat
    return G / X.shape[0]
