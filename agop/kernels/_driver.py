"""Run a patch kernel's per-tile operations over all (row, column) tiles: the kernel matrix and
the patch-AGOP of ``f(x) = K(x, Z) alpha``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Protocol

import torch

from agop.kernels._tiling import memory_budget, tile_sizes, tiles

# On the CPU a tile's pair tensors are kept near this many elements so that the elementwise
# passes run from cache; on a GPU only the memory budget bounds the tiles.
CPU_TILE_ELEMENTS = 2**18
# Torch intra-op threads for a kernel evaluation on the CPU. Elementwise passes over cache-sized tiles gain
# little from intra-op threads, and on shared cores they collapse (measured on the project's
# 2-core machine under load: K(X, X), n = 400, 1x28x28, depth 3 took 19 s with 2 threads and
# 2 s with 1). None leaves torch's setting alone.
CPU_THREADS: int | None = 1
# Show a progress bar (progress=None) when the work exceeds this many pair-positions.
AUTO_PROGRESS_WORK = 2e9


class TileOps(Protocol):
    """What a patch kernel provides to the driver."""

    n_positions: int  # positions of the first layer, P
    dim: int  # dimension of the transformed patch vectors, q

    def prepare(self, X: torch.Tensor) -> dict[str, Any]: ...
    def take(self, data: dict[str, Any], idx: slice) -> dict[str, Any]: ...
    def block(self, xd: dict[str, Any], zd: dict[str, Any], same: bool) -> torch.Tensor: ...
    def grad_block(self, xd: dict[str, Any], zd: dict[str, Any], same: bool
                   ) -> tuple[torch.Tensor, torch.Tensor]: ...
    def pair_bytes(self, grad: bool) -> float: ...
    def image_bytes(self) -> float: ...


@contextlib.contextmanager
def _tile_threads(device: torch.device) -> Iterator[None]:
    """Run a kernel evaluation (patch extraction included: im2col suffers most) with
    ``CPU_THREADS`` intra-op threads on the CPU; restore torch's setting afterwards."""
    previous = torch.get_num_threads()
    if device.type != "cpu" or CPU_THREADS is None or CPU_THREADS == previous:
        yield
        return
    torch.set_num_threads(CPU_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class _Source:
    """Per-image data of a tile: sliced from a cache when it fits the budget, else recomputed."""

    def __init__(self, ops: TileOps, X: torch.Tensor, cache: bool):
        self.ops, self.X = ops, X
        self.data = ops.prepare(X) if cache else None
        self._last: tuple[int, int] | None = None
        self._last_data: dict[str, Any] | None = None

    def __call__(self, idx: slice) -> dict[str, Any]:
        if self.data is not None:
            return self.ops.take(self.data, idx)
        key = (idx.start, idx.stop)
        if key != self._last:
            self._last, self._last_data = key, self.ops.prepare(self.X[idx])
        return self._last_data


def _plan(ops: TileOps, n: int, m: int, device: torch.device, max_memory, grad: bool,
          row_bytes: float = 0.0, col_bytes: float = 0.0) -> tuple[int, int, bool]:
    budget = memory_budget(max_memory, device)
    cache_bytes = (n + m) * ops.image_bytes()
    cache = cache_bytes <= budget / 3
    if cache:
        budget -= cache_bytes
    else:
        row_bytes += ops.image_bytes()
        col_bytes += ops.image_bytes()
    max_pairs = None
    if device.type == "cpu":
        max_pairs = max(1, CPU_TILE_ELEMENTS // ops.n_positions)
    tn, tm = tile_sizes(n, m, ops.pair_bytes(grad), row_bytes, col_bytes, budget, max_pairs)
    return tn, tm, cache


def _show(progress: bool | None, work: float) -> bool:
    return bool(progress) if progress is not None else work > AUTO_PROGRESS_WORK


def kernel_matrix(ops: TileOps, X: torch.Tensor, Z: torch.Tensor, symmetric: bool,
                  max_memory=None, progress: bool | None = None, desc: str = "kernel"
                  ) -> torch.Tensor:
    """``K(X, Z)`` tile by tile; only the upper triangle of tiles when ``symmetric``."""
    with _tile_threads(X.device):
        return _kernel_matrix(ops, X, Z, symmetric, max_memory, progress, desc)


def _kernel_matrix(ops, X, Z, symmetric, max_memory, progress, desc) -> torch.Tensor:
    n, m = X.shape[0], Z.shape[0]
    tn, tm, cache = _plan(ops, n, m, X.device, max_memory, grad=False)
    rows_src = _Source(ops, X, cache)
    cols_src = rows_src if symmetric else _Source(ops, Z, cache)
    out = torch.empty((n, m), dtype=X.dtype, device=X.device)
    show = _show(progress, n * m * ops.n_positions / (2 if symmetric else 1))
    for rows, cols in tiles(n, m, tn, tm, symmetric, show, desc):
        same = symmetric and rows == cols
        blk = ops.block(rows_src(rows), cols_src(cols), same)
        if same:  # exactly symmetric despite the matmul's rounding
            blk = (blk + blk.T) / 2
        out[rows, cols] = blk
        if symmetric and not same:
            out[cols, rows] = blk.T
    return out


def patch_agop(ops: TileOps, X: torch.Tensor, Z: torch.Tensor, alpha: torch.Tensor,
               R: torch.Tensor | None, max_memory=None, progress: bool | None = None,
               desc: str = "patch-AGOP") -> torch.Tensor:
    """``(1/n) sum_i sum_j sum_c grad_{x_i[j]} f_c grad_{x_i[j]} f_c^T`` for ``f = K(., Z) alpha``.

    Per tile, ``ops.grad_block`` gives coefficients ``a, b`` ``(P, tn, tm)`` with
    ``grad_{u_x[j]} K(x, z) = a[j,x,z] u_z[j] + b[j,x,z] u_x[j]`` in transformed coordinates
    ``u = R x``; the gradient in patch coordinates is ``R^T`` times it, so the AGOP is
    ``R^T G R`` with ``G`` the AGOP in transformed coordinates.
    """
    with _tile_threads(X.device):
        return _patch_agop(ops, X, Z, alpha, R, max_memory, progress, desc)


def _patch_agop(ops, X, Z, alpha, R, max_memory, progress, desc) -> torch.Tensor:
    n, m = X.shape[0], Z.shape[0]
    C, P, q = alpha.shape[1], ops.n_positions, ops.dim
    e = X.element_size()
    grad_bytes = P * C * q * e
    tn, tm, cache = _plan(ops, n, m, X.device, max_memory, grad=True,
                          row_bytes=2 * grad_bytes, col_bytes=grad_bytes)
    rows_src, cols_src = _Source(ops, X, cache), _Source(ops, Z, cache)
    G = torch.zeros((q, q), dtype=X.dtype, device=X.device)
    row_tiles = [slice(i, min(i + tn, n)) for i in range(0, n, tn)]
    col_tiles = [slice(j, min(j + tm, m)) for j in range(0, m, tm)]
    bar = None
    if _show(progress, n * m * P * 4):
        from tqdm.auto import tqdm

        bar = tqdm(total=len(row_tiles) * len(col_tiles), desc=desc, unit="tile")
    G = _accumulate(ops, rows_src, cols_src, row_tiles, col_tiles, alpha, G, bar)
    if bar is not None:
        bar.close()
    G /= n
    if R is not None:
        G = R.T @ G @ R
    return (G + G.T) / 2


def _accumulate(ops, rows_src, cols_src, row_tiles, col_tiles, alpha, G, bar) -> torch.Tensor:
    """``G += sum_{x, j, c} g g^T`` with ``g = grad_{u_x[j]} f_c``, row tile by row tile."""
    C, P, q = alpha.shape[1], ops.n_positions, ops.dim
    for rows in row_tiles:
        xd = rows_src(rows)
        Ux = xd["U"]  # (P, tn, q)
        g = torch.zeros((P, Ux.shape[1], C, q), dtype=G.dtype, device=G.device)
        for cols in col_tiles:
            zd = cols_src(cols)
            Uz, a_cols = zd["U"], alpha[cols]
            a, b = ops.grad_block(xd, zd, False)
            weighted = (Uz[:, :, None, :] * a_cols[None, :, :, None]).reshape(P, -1, C * q)
            g += torch.bmm(a, weighted).view_as(g)
            g += torch.bmm(b, a_cols.expand(P, -1, -1))[..., None] * Ux[:, :, None, :]
            del a, b, weighted
            if bar is not None:
                bar.update()
        flat = g.reshape(-1, q)
        G += flat.T @ flat
    return G
