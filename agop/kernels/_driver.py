"""Run a patch kernel's per-tile operations over all (row, column) tiles: the kernel matrix and
the patch-AGOP of ``f(x) = K(x, Z) dual_coef``."""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Iterator
from typing import Any, Protocol

import torch
from tqdm.auto import tqdm

from agop.kernels._tiling import memory_budget, tile_sizes, tiles

# On the CPU a tile's pair tensors are kept near this many elements so that the elementwise
# passes run from cache; on a GPU only the memory budget bounds the tiles.
CPU_TILE_ELEMENTS = 2**18
# Torch intra-op threads for a kernel evaluation on the CPU. None (default): chosen per call by
# :func:`choose_threads` from the cores this process may use, OpenMP's wait policy and how many
# other threads are running right now; an int fixes it for every call (a call's own
# ``threads=`` wins over both).
CPU_THREADS: int | None = None
# Show a progress bar (progress=None) when the work exceeds this many pair-positions.
AUTO_PROGRESS_WORK = 2e9


class TileOps(Protocol):
    """What a patch kernel provides to the driver."""

    n_positions: int  # positions of the first layer, P
    dim: int  # dimension of the transformed patch vectors, q

    def prepare(self, X: torch.Tensor) -> dict[str, Any]: ...
    def take(self, data: dict[str, Any], idx: slice) -> dict[str, Any]: ...
    def block(self, xd: dict[str, Any], zd: dict[str, Any], same: bool) -> torch.Tensor: ...
    def grad_block(
        self, xd: dict[str, Any], zd: dict[str, Any], same: bool
    ) -> tuple[torch.Tensor, torch.Tensor]: ...
    def pair_bytes(self, grad: bool) -> float: ...
    def image_bytes(self) -> float: ...


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _own_running_threads() -> int:
    """Threads of this process in state R (running or runnable) right now."""
    count = 0
    try:
        for task in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{task}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] == "R":
                    count += 1
    except OSError:
        return 1
    return max(count, 1)


def other_running_threads(samples: int = 5, interval: float = 0.002) -> int:
    """Runnable threads of *other* processes right now: the median over ``samples`` readings
    of ``procs_running`` (``/proc/stat``, every runnable thread of the machine) less this
    process's own running threads. 0 where ``/proc`` cannot be read."""
    readings = []
    for i in range(samples):
        try:
            with open("/proc/stat") as fh:
                running = next(
                    int(line.split()[1]) for line in fh if line.startswith("procs_running")
                )
        except (OSError, StopIteration, ValueError):
            return 0
        readings.append(max(0, running - _own_running_threads()))
        if i + 1 < samples:
            time.sleep(interval)
    return int(statistics.median(readings))


def passive_wait() -> bool:
    """Whether OpenMP's threads sleep when they wait (``OMP_WAIT_POLICY=PASSIVE``) instead of
    spinning (the default). The runtime reads the variable when torch loads it; set it before
    ``import torch``."""
    return os.environ.get("OMP_WAIT_POLICY", "").strip().upper() == "PASSIVE"


def choose_threads(threads: int | None = None) -> int:
    """Intra-op threads for one kernel evaluation on the CPU.

    ``threads`` (an int >= 1) wins; else the module default ``CPU_THREADS`` when it is set;
    else every core this process may run on (``sched_getaffinity``) when OpenMP's threads
    sleep while they wait (:func:`passive_wait`), and otherwise
    ``max(1, cores - others)``, with ``others`` the threads of other processes running right
    now (:func:`other_running_threads`). Measured on a 2-core machine under a load average of
    about 10, ``K(X, X)``, ``n = 400``, ``1 x 28 x 28``, depth 3: with spinning waits 2 threads
    took 31-100 s and 1 thread 2.1-3.0 s (a thread spins at every barrier while its partner
    is descheduled); with ``OMP_WAIT_POLICY=PASSIVE`` 2 threads took 2.8-3.2 s and 1 thread
    4.0-4.7 s. On a quiet machine every core gains 1.4-1.9x.

    Examples:
        >>> choose_threads(3)
        3
        >>> 1 <= choose_threads() <= os.cpu_count()
        True
    """
    if threads is not None:
        if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
            raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
        return threads
    if CPU_THREADS is not None:
        return CPU_THREADS
    cores = _usable_cores()
    if passive_wait():
        return cores
    return max(1, min(cores, cores - other_running_threads()))


@contextlib.contextmanager
def _tile_threads(device: torch.device, threads: int | None = None) -> Iterator[None]:
    """Run a kernel evaluation (patch extraction included: im2col suffers most) with
    :func:`choose_threads` intra-op threads on the CPU; restore torch's setting afterwards."""
    if device.type != "cpu":
        yield
        return
    previous = torch.get_num_threads()
    wanted = choose_threads(threads)
    if wanted == previous:
        yield
        return
    torch.set_num_threads(wanted)
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
        assert self._last_data is not None
        return self._last_data


def _plan(
    ops: TileOps,
    n: int,
    m: int,
    device: torch.device,
    max_memory,
    grad: bool,
    row_bytes: float = 0.0,
    col_bytes: float = 0.0,
) -> tuple[int, int, bool]:
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
        max_pairs = max(1, CPU_TILE_ELEMENTS // ops.n_positions)
    tn, tm = tile_sizes(n, m, ops.pair_bytes(grad), row_bytes, col_bytes, budget, max_pairs)
    return tn, tm, cache


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
    device, returned) or into a new tensor; no other ``n x m`` matrix is ever held.
    """
    out = check_out(out, X.shape[0], Z.shape[0], X)
    with _tile_threads(X.device, threads):
        return _kernel_matrix(ops, X, Z, symmetric, max_memory, progress, desc, out)


def check_out(out: torch.Tensor | None, n: int, m: int, like: torch.Tensor) -> torch.Tensor:
    """``out`` checked as an ``(n, m)`` buffer in ``like``'s dtype and device (a new one when
    ``None``)."""
    if out is None:
        return torch.empty((n, m), dtype=like.dtype, device=like.device)
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"out must be a torch.Tensor or None, got {type(out).__name__}")
    if tuple(out.shape) != (n, m) or out.dtype != like.dtype or out.device != like.device:
        raise ValueError(
            f"out must be a tensor of shape ({n}, {m}), dtype {like.dtype} on "
            f"{like.device}, got shape {tuple(out.shape)}, dtype {out.dtype} on "
            f"{out.device}"
        )
    return out


def _kernel_matrix(ops, X, Z, symmetric, max_memory, progress, desc, out) -> torch.Tensor:
    n, m = X.shape[0], Z.shape[0]
    tn, tm, cache = _plan(ops, n, m, X.device, max_memory, grad=False)
    rows_src = _Source(ops, X, cache)
    cols_src = rows_src if symmetric else _Source(ops, Z, cache)
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
    5 digits), and returned in ``X``'s dtype.
    """
    with _tile_threads(X.device, threads):
        return _patch_agop(ops, X, Z, dual_coef, R, max_memory, progress, desc)


def _patch_agop(ops, X, Z, dual_coef, R, max_memory, progress, desc) -> torch.Tensor:
    n, m = X.shape[0], Z.shape[0]
    C, P, q = dual_coef.shape[1], ops.n_positions, ops.dim
    e = X.element_size()
    grad_bytes = P * C * q * e
    tn, tm, cache = _plan(
        ops, n, m, X.device, max_memory, grad=True, row_bytes=2 * grad_bytes, col_bytes=grad_bytes
    )
    rows_src, cols_src = _Source(ops, X, cache), _Source(ops, Z, cache)
    G = torch.zeros((q, q), dtype=torch.float64, device=X.device)
    row_tiles = [slice(i, min(i + tn, n)) for i in range(0, n, tn)]
    col_tiles = [slice(j, min(j + tm, m)) for j in range(0, m, tm)]
    bar = None
    if _show(progress, n * m * P * 4):
        bar = tqdm(total=len(row_tiles) * len(col_tiles), desc=desc, unit="tile")
    G = _accumulate(ops, rows_src, cols_src, row_tiles, col_tiles, dual_coef, G, bar)
    if bar is not None:
        bar.close()
    G /= n
    if R is not None:
        G = R.T.double() @ G @ R.double()
    return ((G + G.T) / 2).to(X.dtype)


def _accumulate(ops, rows_src, cols_src, row_tiles, col_tiles, dual_coef, G, bar) -> torch.Tensor:
    """``G += sum_{x, j, c} g g^T`` with ``g = grad_{u_x[j]} f_c``, row tile by row tile."""
    C, P, q = dual_coef.shape[1], ops.n_positions, ops.dim
    for rows in row_tiles:
        xd = rows_src(rows)
        Ux = xd["U"]  # (P, tn, q)
        g = torch.zeros((P, Ux.shape[1], C, q), dtype=Ux.dtype, device=G.device)
        for cols in col_tiles:
            zd = cols_src(cols)
            Uz, a_cols = zd["U"], dual_coef[cols]
            a, b = ops.grad_block(xd, zd, False)
            weighted = (Uz[:, :, None, :] * a_cols[None, :, :, None]).reshape(P, -1, C * q)
            g += torch.bmm(a, weighted).view_as(g)
            g += torch.bmm(b, a_cols.expand(P, -1, -1))[..., None] * Ux[:, :, None, :]
            del a, b, weighted
            if bar is not None:
                bar.update()
        flat = g.reshape(-1, q).to(torch.float64)
        G += flat.T @ flat
    return G
