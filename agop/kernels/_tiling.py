"""Tiled evaluation of a pair function over (rows, columns) of images inside a memory budget."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from tqdm.auto import tqdm


def memory_budget(max_memory: int | float | None, device: torch.device) -> int:
    """Bytes a kernel evaluation may use: ``max_memory``, or a safe share of free memory.

    Default: a quarter of the available RAM (``MemAvailable`` in ``/proc/meminfo``) on the CPU,
    half of the free memory (``torch.cuda.mem_get_info``) on a GPU.
    """
    if max_memory is not None:
        if not max_memory > 0:
            raise ValueError(f"max_memory must be a positive number of bytes, got {max_memory!r}")
        return int(max_memory)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free // 2)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024 // 4
    except OSError:
        pass
    return 2 * 2**30


def tile_sizes(
    n: int,
    m: int,
    pair_bytes: float,
    row_bytes: float,
    col_bytes: float,
    budget: float,
    max_pairs: int | None = None,
) -> tuple[int, int]:
    """Row and column tile sizes ``(tn, tm)`` whose working set fits ``budget`` bytes.

    The working set of a tile is ``tn*tm*pair_bytes + tn*row_bytes + tm*col_bytes``.
    ``max_pairs`` caps ``tn*tm`` (small tiles keep the CPU's elementwise passes in cache).
    """
    pairs = budget / max(pair_bytes, 1.0)
    if max_pairs is not None:
        pairs = min(pairs, max_pairs)
    side = max(1, int(math.sqrt(pairs)))
    tn = min(n, side)
    tm = min(m, max(1, int(pairs // tn)))
    tn = min(n, max(1, int(pairs // tm)))
    while tn > 1 and tn * tm * pair_bytes + tn * row_bytes + tm * col_bytes > budget:
        tn = max(1, tn // 2)
        tm = min(m, max(1, int(pairs // tn)))
    while tm > 1 and tn * tm * pair_bytes + tn * row_bytes + tm * col_bytes > budget:
        tm = max(1, tm // 2)
    if tn * tm * pair_bytes + tn * row_bytes + tm * col_bytes > budget:
        need = pair_bytes + row_bytes + col_bytes
        raise MemoryError(
            f"max_memory={budget} bytes cannot hold even one pair of images ({need:.0f} bytes)"
        )
    return tn, tm


def tiles(
    n: int, m: int, tn: int, tm: int, symmetric: bool, progress: bool, desc: str
) -> Iterator[tuple[slice, slice]]:
    """Yield ``(rows, cols)`` slices covering ``n x m``; upper-triangle tiles only when symmetric."""
    if symmetric:  # square tiles so that mirrored blocks line up
        tm = tn = min(tn, tm)
    row_starts = range(0, n, tn)
    pairs = [(i, j) for i in row_starts for j in range(0, m, tm) if not symmetric or j >= i]
    bar = None
    if progress:
        bar = tqdm(total=len(pairs), desc=desc, unit="tile")
    for i, j in pairs:
        yield slice(i, min(i + tn, n)), slice(j, min(j + tm, m))
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()
