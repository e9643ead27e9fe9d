"""Tiled evaluation of a pair function over (rows, columns) of images inside a memory budget."""

from __future__ import annotations

import math

import torch

from agop.validation import check_real


class MemoryBudgetError(MemoryError, ValueError):
    """A ``max_memory`` too small for the smallest unit of work: a ``MemoryError`` (the budget
    is short) that is also a ``ValueError`` (the argument's value is what to change)."""


def memory_budget(max_memory: int | float | None, device: torch.device) -> int:
    """Bytes a kernel evaluation may use: ``max_memory``, or a safe share of free memory.

    Default: a quarter of the available RAM (``MemAvailable`` in ``/proc/meminfo``) on the CPU,
    half of the free memory (``torch.cuda.mem_get_info``) on a GPU.
    """
    if max_memory is not None:
        try:
            max_memory = check_real(max_memory, "max_memory", minimum=0, strict_minimum=True)
        except ValueError as err:  # the ArgumentTypeError too: say what a budget is
            raise type(err)(f"{err} (a positive number of bytes, or None)") from None
        return max(1, int(max_memory))
    device = torch.device(device)
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
    max_rows: int | None = None,
) -> tuple[int, int]:
    """Row and column tile sizes ``(tn, tm)`` whose working set fits ``budget`` bytes.

    The working set of a tile is ``tn*tm*pair_bytes + tn*row_bytes + tm*col_bytes``.
    ``max_pairs`` caps ``tn*tm`` (small tiles keep the CPU's elementwise passes in cache) and
    ``max_rows`` caps ``tn``.
    """
    rows_cap = n if max_rows is None else max(1, min(n, max_rows))
    pairs = budget / max(pair_bytes, 1.0)
    if max_pairs is not None:
        pairs = min(pairs, max_pairs)
    side = max(1, int(math.sqrt(pairs)))
    tn = min(rows_cap, side)
    tm = min(m, max(1, int(pairs // tn)))
    tn = min(rows_cap, max(1, int(pairs // tm)))
    while tn > 1 and tn * tm * pair_bytes + tn * row_bytes + tm * col_bytes > budget:
        tn = max(1, tn // 2)
        tm = min(m, max(1, int(pairs // tn)))
    while tm > 1 and tn * tm * pair_bytes + tn * row_bytes + tm * col_bytes > budget:
        tm = max(1, tm // 2)
    if tn * tm * pair_bytes + tn * row_bytes + tm * col_bytes > budget:
        need = pair_bytes + row_bytes + col_bytes
        raise MemoryBudgetError(
            f"max_memory={budget} bytes cannot hold even one pair of images ({need:.0f} bytes); "
            f"raise max_memory to at least {need:.0f}, or pass None for a share of free memory"
        )
    return tn, tm


def tile_pairs(n: int, m: int, tn: int, tm: int, symmetric: bool) -> list[tuple[slice, slice]]:
    """``(rows, cols)`` slices covering ``n x m`` in ``tn x tm`` tiles; the upper triangle of
    square tiles only when ``symmetric`` (so that mirrored blocks line up).

    Examples:
        >>> [(r.start, c.start) for r, c in tile_pairs(5, 5, 2, 3, symmetric=True)]
        [(0, 0), (0, 2), (0, 4), (2, 2), (2, 4), (4, 4)]
    """
    if symmetric:
        tm = tn = min(tn, tm)
    return [
        (slice(i, min(i + tn, n)), slice(j, min(j + tm, m)))
        for i in range(0, n, tn)
        for j in range(0, m, tm)
        if not symmetric or j >= i
    ]
