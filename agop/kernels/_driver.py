"""Run a patch kernel's per-tile operations over all (row, column) tiles: the kernel matrix and
the patch-AGOP of ``f(x) = K(x, Z) dual_coef``."""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple, TypeVar

import torch
from tqdm.auto import tqdm

from agop.kernels._inputs import patch_vectors
from agop.kernels._tiling import memory_budget, tile_pairs, tile_sizes
from agop.validation import check_int

# On the CPU a tile's live pair tensors (``ops.pair_bytes`` per pair) are kept near this many
# bytes, so that the elementwise passes run from cache; on a GPU only the memory budget bounds
# the tiles. Measured on a 2-core machine with 2 MB of L2 per core and 32 MB of L3 (n = 400,
# depth 3, two workers, medians of 5): K(X, X) on 1x28x28 took 0.59 / 0.48 / 0.54 s and on
# 3x32x32 0.84 / 0.75 / 0.98 s with 8 / 16 / 32 MB tiles; the patch-AGOP of 20 images (its
# tiles hold 2.5x more per pair) 0.21 / 0.18 / 0.21 s on 1x28x28 at 6.5 / 13 / 26 MB.
CPU_TILE_BYTES = 16 * 2**20
# Worker threads for a kernel evaluation on the CPU. None (default): every core this process
# may run on (:func:`choose_threads`); an int fixes it for every call (a call's own
# ``threads=`` wins over both).
CPU_THREADS: int | None = None
# Show a progress bar (progress=None) when the work exceeds this many pair-positions.
AUTO_PROGRESS_WORK = 2e9


class PatchGrid(NamedTuple):
    """Where a kernel's tile comes from: images of ``channels`` channels, ``patch_size`` x
    ``patch_size`` patches at ``rows`` x ``cols`` positions (after padding), laid out row by
    row (position ``j = r * cols + c``)."""

    channels: int
    patch_size: int
    rows: int
    cols: int


class TileOps:
    """A patch kernel's per-tile operations for the driver, over the images of one call.

    Per image it keeps the transformed patch vectors ``U`` ``(P, n, q)`` (``u[j] = R x[j]``,
    ``R = M^{1/2}``) and their squared norms ``s`` ``(P, n)``; per tile of pairs it forms the
    same-position inner products ``S[j, x, z] = <u_x[j], u_z[j]>`` (one batched matmul; on a
    diagonal tile of a symmetric matrix each pair ``(x, x)`` gets exactly ``s``) and hands
    them to the kernel: ``kernel.block(S, sx, sz, grid)`` is the tile ``K(x, z)`` and
    ``kernel.grad_block(S, sx, sz, grid)`` its coefficients ``(a, b)`` (see
    :meth:`agop.kernels.Kernel.grad_block`).
    """

    def __init__(self, kernel: Any, X: torch.Tensor, k: int, padding: int, R: torch.Tensor | None):
        self.kernel, self.k, self.padding, self.R = kernel, k, padding, R
        rows, cols = X.shape[2] + 2 * padding - k + 1, X.shape[3] + 2 * padding - k + 1
        self.grid = PatchGrid(X.shape[1], k, rows, cols)
        self.n_positions, self.dim = rows * cols, X.shape[1] * k * k  # P, q
        self.e = X.element_size()

    def prepare(self, X: torch.Tensor) -> dict[str, Any]:
        U = patch_vectors(X, self.k, self.padding, self.R)
        return {"U": U, "s": (U * U).sum(-1)}

    def take(self, data: dict[str, Any], idx: slice) -> dict[str, Any]:
        return {"U": data["U"][:, idx], "s": data["s"][:, idx]}

    def _gram(self, xd, zd, same: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        S = torch.bmm(xd["U"], zd["U"].transpose(1, 2))
        if same:  # a pair (x, x) gets exactly its squared norm: distance 0, angle 0
            S.diagonal(dim1=1, dim2=2).copy_(xd["s"])
        return S, xd["s"][:, :, None], zd["s"][:, None, :]

    def block(self, xd, zd, same: bool) -> torch.Tensor:
        return self.kernel.block(*self._gram(xd, zd, same), self.grid)

    def grad_block(self, xd, zd, same: bool) -> tuple[torch.Tensor, torch.Tensor]:
        return self.kernel.grad_block(*self._gram(xd, zd, same), self.grid)

    def pair_bytes(self, grad: bool) -> float:
        return self.kernel._pair_tensors(grad) * self.n_positions * self.e

    def image_bytes(self) -> float:
        return self.n_positions * (self.dim + 1) * self.e


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def choose_threads(threads: int | None = None) -> int:
    """Worker threads for one kernel evaluation on the CPU.

    ``threads`` (an int >= 1) wins; else the module default ``CPU_THREADS`` when it is set;
    else every core this process may run on (``sched_getaffinity``).

    The workers share the tiles (:func:`run_tiles`), and each runs its torch operations on one
    thread: no operation waits at an OpenMP barrier for a partner, so a worker that another
    process keeps off its core delays only its own tiles. Measured on a 2-core machine,
    ``K(X, X)``, ``n = 400``, ``1 x 28 x 28``, depth 3 (medians of 3 in one process): quiet,
    0.8 s with 2 workers, 1.2 s with one thread, 0.9 s with 2 intra-op threads spinning at
    their barriers and 1.9 s with 2 sleeping there (``OMP_WAIT_POLICY=PASSIVE``); beside 2
    busy processes, 1.2 s with 2 workers, 2.0 s with one thread and 4-9 s with 2 spinning
    intra-op threads.

    Examples:
        >>> choose_threads(3)
        3
        >>> 1 <= choose_threads() <= os.cpu_count()
        True
    """
    if threads is not None:
        return check_int(threads, "threads", minimum=1)
    if CPU_THREADS is not None:
        return CPU_THREADS
    return _usable_cores()


def _workers(device: torch.device, threads: int | None) -> int:
    """Worker threads for ``device``: :func:`choose_threads` on the CPU, one elsewhere (a GPU
    runs each tile's operations in parallel by itself)."""
    if device.type != "cpu":
        if threads is not None:
            choose_threads(threads)  # still a checked argument
        return 1
    return choose_threads(threads)


@contextlib.contextmanager
def _one_op_thread(device: torch.device) -> Iterator[None]:
    """Torch operations on one intra-op thread for the duration of a CPU kernel evaluation
    (the workers of :func:`run_tiles` give the parallelism); torch's setting is restored
    afterwards."""
    if device.type != "cpu":
        yield
        return
    previous = torch.get_num_threads()
    if previous == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


T = TypeVar("T")


def run_tiles(work: Callable[[T], None], items: Sequence[T], workers: int) -> None:
    """Call ``work(item)`` for every item, on ``workers`` threads sharing them (in order on
    the calling thread when ``workers == 1``). Torch releases the interpreter lock inside its
    operations, so the threads compute at the same time; the first exception is raised here,
    after the other threads have stopped taking items."""
    if workers <= 1 or len(items) <= 1:
        for item in items:
            work(item)
        return
    failed = threading.Event()

    def guarded(item: T) -> None:
        if not failed.is_set():
            try:
                work(item)
            except BaseException:
                failed.set()
                raise

    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        futures = [pool.submit(guarded, item) for item in items]
    for future in futures:
        future.result()


class _Source:
    """Per-image data of a tile: sliced from a cache when it fits the budget, else recomputed,
    each worker thread keeping the data of its last ``slots`` tiles (two for a symmetric
    matrix, whose rows and columns come from this one source: a worker's next tile usually
    shares its rows)."""

    def __init__(self, ops: TileOps, X: torch.Tensor, cache: bool, slots: int = 1):
        self.ops, self.X, self.slots = ops, X, slots
        self.data = ops.prepare(X) if cache else None
        self._last = threading.local()

    def __call__(self, idx: slice) -> dict[str, Any]:
        if self.data is not None:
            return self.ops.take(self.data, idx)
        key = (idx.start, idx.stop)
        kept = getattr(self._last, "kept", None)
        if kept is None:
            kept = self._last.kept = {}
        if key in kept:
            kept[key] = kept.pop(key)  # the most recently used goes last
        else:
            if len(kept) >= self.slots:
                del kept[next(iter(kept))]  # the least recently used
            kept[key] = self.ops.prepare(self.X[idx])
        return kept[key]


def _plan(
    ops: TileOps,
    n: int,
    m: int,
    device: torch.device,
    max_memory,
    grad: bool,
    workers: int = 1,
    row_bytes: float = 0.0,
    col_bytes: float = 0.0,
    max_rows: int | None = None,
) -> tuple[int, int, bool, int]:
    """Tile sizes ``(tn, tm)``, whether the per-image data is cached, and how many workers
    run: the cache takes at most a third of the budget, and each of the ``workers`` tiles in
    flight an equal share of the rest (fewer workers when a share cannot hold one pair)."""
    budget: float = memory_budget(max_memory, device)
    cache_bytes = (n + m) * ops.image_bytes()
    cache = cache_bytes <= budget / 3
    if cache:
        budget -= cache_bytes
    else:
        row_bytes += ops.image_bytes()
        col_bytes += ops.image_bytes()
    max_pairs = None
    if device.type == "cpu":
        max_pairs = max(1, int(CPU_TILE_BYTES // ops.pair_bytes(grad)))
    # no more workers than pairs of images, nor than shares of the budget that hold one pair:
    # threads=10**9 must not try a billion shares (or start a billion threads)
    need = ops.pair_bytes(grad) + row_bytes + col_bytes
    workers = max(1, min(workers, n * m, int(budget // max(need, 1.0))))
    for share in range(workers, 0, -1):
        try:
            tn, tm = tile_sizes(
                n,
                m,
                ops.pair_bytes(grad),
                row_bytes,
                col_bytes,
                budget / share,
                max_pairs,
                None if max_rows is None else max_rows * workers // share,
            )
        except MemoryError:
            if share == 1:
                raise
            continue
        return tn, tm, cache, share
    raise AssertionError("unreachable")


def _show(progress: bool | None, work: float) -> bool:
    return bool(progress) if progress is not None else work > AUTO_PROGRESS_WORK


def kernel_matrix(
    ops: TileOps,
    X: torch.Tensor,
    Z: torch.Tensor,
    symmetric: bool,
    max_memory=None,
    progress: bool | None = None,
    desc: str = "kernel",
    threads: int | None = None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """``K(X, Z)`` tile by tile; only the upper triangle of tiles when ``symmetric``.

    Each tile is written into ``out`` (a preallocated ``(n, m)`` tensor of ``X``'s dtype and
    device, returned) or into a new tensor; no other ``n x m`` matrix is ever held. On the CPU
    the tiles are shared by :func:`choose_threads` worker threads (:func:`run_tiles`); tiles
    are disjoint, so the result does not depend on their number.
    """
    out = check_out(out, X.shape[0], Z.shape[0], X)
    workers = _workers(X.device, threads)
    with _one_op_thread(X.device):
        return _kernel_matrix(ops, X, Z, symmetric, max_memory, progress, desc, out, workers)


def check_out(out: torch.Tensor | None, n: int, m: int, like: torch.Tensor) -> torch.Tensor:
    """``out`` checked as an ``(n, m)`` buffer in ``like``'s dtype and device (a new one when
    ``None``)."""
    if out is None:
        return torch.empty((n, m), dtype=like.dtype, device=like.device)
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"out must be a torch.Tensor or None, got {type(out).__name__}")
    if out.requires_grad:  # the tiles are written into it in place
        raise ValueError("out must not require grad: the kernel is written into it in place")
    if tuple(out.shape) != (n, m) or out.dtype != like.dtype or out.device != like.device:
        raise ValueError(
            f"out must be a tensor of shape ({n}, {m}), dtype {like.dtype} on "
            f"{like.device}, got shape {tuple(out.shape)}, dtype {out.dtype} on "
            f"{out.device}"
        )
    return out


def _progress_bar(show: bool, total: int, desc: str) -> Any:
    return tqdm(total=total, desc=desc, unit="tile") if show else None


def _kernel_matrix(ops, X, Z, symmetric, max_memory, progress, desc, out, workers):
    n, m = X.shape[0], Z.shape[0]
    tn, tm, cache, workers = _plan(ops, n, m, X.device, max_memory, grad=False, workers=workers)
    rows_src = _Source(ops, X, cache, slots=2 if symmetric else 1)
    cols_src = rows_src if symmetric else _Source(ops, Z, cache)
    pairs = tile_pairs(n, m, tn, tm, symmetric)
    show = _show(progress, n * m * ops.n_positions / (2 if symmetric else 1))
    bar = _progress_bar(show, len(pairs), desc)

    def tile(pair: tuple[slice, slice]) -> None:
        rows, cols = pair
        same = symmetric and rows == cols
        blk = ops.block(rows_src(rows), cols_src(cols), same)
        if same:  # exactly symmetric despite the matmul's rounding
            blk = (blk + blk.T) / 2
        out[rows, cols] = blk
        if symmetric and not same:
            out[cols, rows] = blk.T
        if bar is not None:
            bar.update()

    try:
        run_tiles(tile, pairs, workers)
    finally:
        if bar is not None:
            bar.close()
    return out


def patch_agop(
    ops: TileOps,
    X: torch.Tensor,
    Z: torch.Tensor,
    dual_coef: torch.Tensor,
    R: torch.Tensor | None,
    max_memory=None,
    progress: bool | None = None,
    desc: str = "patch-AGOP",
    threads: int | None = None,
) -> torch.Tensor:
    """``(1/n) sum_i sum_j sum_c grad_{x_i[j]} f_c grad_{x_i[j]} f_c^T`` for ``f = K(., Z) dual_coef``.

    Per tile, ``ops.grad_block`` gives coefficients ``a, b`` ``(P, tn, tm)`` with
    ``grad_{u_x[j]} K(x, z) = a[j,x,z] u_z[j] + b[j,x,z] u_x[j]`` in transformed coordinates
    ``u = R x``; the gradient in patch coordinates is ``R^T`` times it, so the AGOP is
    ``R^T G R`` with ``G`` the AGOP in transformed coordinates. ``G`` is accumulated in
    float64 whatever the dtype of the images (float32 sums of ~10^5 outer products lose about
    5 digits), and returned in ``X``'s dtype. On the CPU, worker ``w`` of
    :func:`choose_threads` takes row tiles ``w, w + workers, ...`` into its own ``G``, and the
    workers' sums are added in order, so the result is the same from run to run.
    """
    workers = _workers(X.device, threads)
    with _one_op_thread(X.device):
        return _patch_agop(ops, X, Z, dual_coef, R, max_memory, progress, desc, workers)


def _patch_agop(ops, X, Z, dual_coef, R, max_memory, progress, desc, workers) -> torch.Tensor:
    n, m = X.shape[0], Z.shape[0]
    C, P, q = dual_coef.shape[1], ops.n_positions, ops.dim
    e = X.element_size()
    grad_bytes = P * C * q * e
    tn, tm, cache, workers = _plan(
        ops,
        n,
        m,
        X.device,
        max_memory,
        grad=True,
        workers=workers,
        row_bytes=2 * grad_bytes,
        col_bytes=grad_bytes,
        max_rows=math.ceil(n / workers),  # a row tile for every worker
    )
    rows_src, cols_src = _Source(ops, X, cache), _Source(ops, Z, cache)
    row_tiles = [slice(i, min(i + tn, n)) for i in range(0, n, tn)]
    col_tiles = [slice(j, min(j + tm, m)) for j in range(0, m, tm)]
    bar = _progress_bar(_show(progress, n * m * P * 4), len(row_tiles) * len(col_tiles), desc)
    workers = min(workers, len(row_tiles))
    sums = [torch.zeros((q, q), dtype=torch.float64, device=X.device) for _ in range(workers)]

    def worker(w: int) -> None:
        for rows in row_tiles[w::workers]:
            _accumulate(ops, rows_src, cols_src, rows, col_tiles, dual_coef, sums[w], bar)

    try:
        run_tiles(worker, range(workers), workers)
    finally:
        if bar is not None:
            bar.close()
    G = sums[0]
    for other in sums[1:]:
        G += other
    G /= n
    if R is not None:
        G = R.T.double() @ G @ R.double()
    return ((G + G.T) / 2).to(X.dtype)


def _accumulate(ops, rows_src, cols_src, rows, col_tiles, dual_coef, G, bar) -> None:
    """``G += sum_{x, j, c} g g^T`` over the row tile ``rows``, with ``g = grad_{u_x[j]} f_c``."""
    C, P, q = dual_coef.shape[1], ops.n_positions, ops.dim
    xd = rows_src(rows)
    Ux = xd["U"]  # (P, tn, q)
    tn = Ux.shape[1]
    g = torch.zeros((P, tn, C * q), dtype=Ux.dtype, device=G.device)  # sum_z a alpha u_z
    b_alpha = torch.zeros((P, tn, C), dtype=Ux.dtype, device=G.device)  # sum_z b alpha
    for cols in col_tiles:
        zd = cols_src(cols)
        Uz, a_cols = zd["U"], dual_coef[cols]
        a, b = ops.grad_block(xd, zd, False)
        weighted = (Uz[:, :, None, :] * a_cols[None, :, :, None]).reshape(P, -1, C * q)
        g.baddbmm_(a, weighted)
        b_alpha.baddbmm_(b, a_cols.expand(P, -1, -1))
        del a, b, weighted
        if bar is not None:
            bar.update()
    # the b-term's direction u_x[j] is the same for every column: multiplied in once, here
    g = g.view(P, tn, C, q).addcmul_(b_alpha[..., None], Ux[:, :, None, :])
    flat = g.reshape(-1, q).to(torch.float64)
    G += flat.T @ flat
