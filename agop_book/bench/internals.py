"""Implementation details that do not change a result: how ``patch_agop`` cuts the images into
chunks, how often the kernel driver prepares a tile, and the peak memory of the finite-value
checks and of the Cholesky ridge sweep. Each row reports the measured quantity and its bound,
met or not met (``details``: ``measured``, ``bound``, ``met``); the tests check the results
(equal across chunk sizes, budgets and paths), this entry the way there.

Rows (the same at every size; seconds are the time of the measured call):

- ``patch_agop chunks``: the images per forward pass (a one-image probe first) under the
  default budget (all images at once), a memory bound of 3 images, and CPU caches that hold 3
  and 2 images' conv outputs, and a wide model whose weights decide (``(64 * 28 + 256 * 2 + 2)
  // (64 * 2 * 2) = 9`` images);
- ``K(X, X) tile preparations``: without the patch cache, a worker keeps its row tile while it
  moves along the row band: at most one preparation per tile, not two;
- ``check_finite peak``: scanning a 64 MB matrix holds no temporary of a quarter of its size
  (``torch.isfinite`` makes several);
- ``cholesky sweep peak``: the ridge sweep by Cholesky holds one ``n x n`` work buffer beside
  ``K``, no copy of the factor (``torch.cholesky_solve`` would make one).

The peak rows need Linux's resettable peak resident memory; elsewhere they say so.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import torch
from torch import nn

import agop.features
from agop.features import patch_agop
from agop.kernels import CNTK, _driver
from agop.kernels._tiling import tile_pairs
from agop.solve import select_ridge
from agop.validation import check_finite, check_result
from agop_book.bench import Result, _PeakRSS, _reset_peak_rss, benchmark


class _Residual(nn.Module):
    """conv -> BN -> relu, a residual block (dilated grouped conv), strided conv, max-pool."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.c2 = nn.Conv2d(4, 4, 3, padding=2, dilation=2, groups=2, bias=False)
        self.c3 = nn.Conv2d(4, 6, 3, stride=2)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(6 * 3 * 3, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn(self.c1(x)))
        h = h + torch.tanh(self.c2(h))
        return self.fc(self.pool(torch.relu(self.c3(h))).flatten(1))


def _residual() -> nn.Module:
    torch.manual_seed(1)
    model = _Residual()
    assert model.bn.running_mean is not None and model.bn.running_var is not None
    model.bn.running_mean.normal_()
    model.bn.running_var.uniform_(0.5, 2.0)
    return model.double().eval()


def _row(problem: str, size: str, seconds: float, measured: Any, bound: Any, met: bool, note: str):
    return Result(
        problem=problem,
        size=size,
        seconds=seconds,
        peak_mb=0.0,
        notes=f"{note}: measured {measured}, bound {bound}: {'met' if met else 'NOT MET'}",
        details={"measured": measured, "bound": bound, "met": bool(met)},
    )


def _chunks(model: nn.Module, X: torch.Tensor, cache: int | None = None, **kw) -> list[int]:
    """The batch sizes of the forward passes of ``patch_agop(model, X, **kw)``."""
    sizes: list[int] = []
    handle = model.register_forward_hook(lambda m, i, o: sizes.append(i[0].shape[0]))
    try:
        if cache is None:
            patch_agop(model, X, device="cpu", **kw)
        else:
            with mock.patch.object(agop.features, "_last_level_cache", lambda: cache):
                patch_agop(model, X, device="cpu", **kw)
    finally:
        handle.remove()
    return sizes


def _chunk_rows(size: str) -> Iterator[Result]:
    model = _residual()
    X = torch.randn(7, 3, 14, 14, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    conv_bytes = 8 * (4 * 14 * 14 * 2 + 6 * 6 * 6)  # one image's conv outputs, once
    wide = nn.Sequential(nn.Conv2d(3, 64, 3), nn.Flatten(), nn.Linear(256, 2)).double().eval()
    X_wide = torch.randn(13, 3, 4, 4, dtype=torch.float64)
    cases: list[tuple[str, Callable[[], list[int]], list[int]]] = [
        ("default budget", lambda: _chunks(model, X), [1, 7]),
        ("max_memory of 3 images", lambda: _chunks(model, X, max_memory=3 * 2 * conv_bytes), [1, 3, 3, 1]),
        ("cache of 3 images", lambda: _chunks(model, X, cache=2 * (3 * conv_bytes + 1)), [1, 3, 3, 1]),
        ("cache of 2 images", lambda: _chunks(model, X, cache=2 * (2 * conv_bytes + 1)), [1, 2, 2, 2, 1]),
        ("no cache, the weights decide", lambda: _chunks(wide, X_wide, cache=0), [1, 9, 4]),
    ]  # fmt: skip
    for name, run, expected in cases:
        t0 = time.perf_counter()
        sizes = run()
        seconds = time.perf_counter() - t0
        yield _row(f"patch_agop chunks, {name}", size, seconds, sizes, expected,
                   sizes == expected, "images per forward pass")  # fmt: skip


def _tile_row(size: str) -> Result:
    g = torch.Generator().manual_seed(0)
    X = torch.rand(12, 2, 8, 8, generator=g, dtype=torch.float64)
    ops = _driver.TileOps(CNTK(3, depth=2), X, 3, 0, None)
    calls: list[int] = []
    prepare = ops.prepare

    def counting(x: torch.Tensor) -> Any:
        calls.append(x.shape[0])
        return prepare(x)

    ops.prepare = counting  # type: ignore[method-assign,assignment]
    tn, tm, cache, workers = _driver._plan(ops, 12, 12, X.device, 150_000, False, 1)
    t0 = time.perf_counter()
    _driver.kernel_matrix(ops, X, X, True, max_memory=150_000, threads=1)
    seconds = time.perf_counter() - t0
    pairs = len(tile_pairs(12, 12, tn, tm, True))
    # at most one per tile (its columns; a band's rows come with its diagonal tile); one slot
    # would make it two per tile off the diagonal
    met = not cache and workers == 1 and tn < 12 and pairs - 3 <= len(calls) <= pairs
    return _row("K(X, X) tile preparations, CNTK, n=12, no patch cache", size, seconds,
                len(calls), f"[{pairs - 3}, {pairs}] for {pairs} tiles", met,
                "preparations")  # fmt: skip


def _peak_row(size: str, problem: str, run: Callable[[], Any], bound_bytes: float, note: str):
    if not _reset_peak_rss():
        return Result(problem, size, seconds=0.0, peak_mb=0.0,
                      notes="not measured: needs Linux's resettable peak resident memory")  # fmt: skip
    t0 = time.perf_counter()
    with _PeakRSS() as rss:
        run()
    seconds = time.perf_counter() - t0
    extra = rss.peak - rss.base
    row = _row(problem, size, seconds, f"{extra / 2**20:.1f} MB", f"< {bound_bytes / 2**20:.1f} MB",
               extra < bound_bytes, note)  # fmt: skip
    row.peak_mb = extra / 2**20
    return row


def _finite_row(size: str) -> Result:
    K = torch.rand(4000, 4000)

    def run() -> None:
        check_finite(K, "K")
        check_result(K, "K")

    bound = 0.25 * K.numel() * K.element_size()
    return _peak_row(size, "check_finite + check_result peak, 4000 x 4000 float32", run, bound,
                     "memory above the matrix")  # fmt: skip


def _cholesky_row(size: str) -> Result:
    n, C = 3000, 3
    g = torch.Generator().manual_seed(0)
    F = torch.randn(n, 40, generator=g)
    K = torch.exp(-torch.cdist(F, F) / 10)
    K_val, Y, Y_val = K[:200].clone(), torch.randn(n, C, generator=g), torch.randn(200, C)
    bound = 1.5 * n * n * K.element_size()
    return _peak_row(
        size,
        f"cholesky ridge sweep peak, n={n}",
        lambda: select_ridge(K, Y, K_val, Y_val, [1e-3, 1e-1], method="cholesky"),
        bound,
        "memory above K (one work buffer allowed)",
    )


@benchmark("internals")
def internals(size: str, device: torch.device) -> Iterator[Result]:
    """Chunks, tile preparations and peak memory against their bounds (CPU; see the module).

    Examples:
        ``python -m agop_book.bench --only internals`` prints the rows; it runs at:

        >>> from agop_book.bench import ENTRY_SIZES
        >>> ENTRY_SIZES["internals"]
        ('quick', 'paper')
    """
    del device  # the quantities are the CPU paths'
    yield from _chunk_rows(size)
    yield _tile_row(size)
    yield _finite_row(size)
    yield _cholesky_row(size)
