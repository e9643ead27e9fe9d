"""Benchmarks: ``python -m agop.bench --size quick|paper --device cpu|cuda``.

Each topic lives in its own module of this package and registers entries with
:func:`benchmark`. An entry is a function ``(size, device) -> Iterable[Result]``; it measures
with :func:`measure` and, where a reference path exists, reports the speed-up over it.
Speed targets live here, never in timed tests.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import pkgutil
import statistics
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import torch

SIZES = ("quick", "paper")


@dataclasses.dataclass
class Result:
    """One row of the benchmark table."""

    problem: str
    size: str
    seconds: float
    peak_mb: float
    gflops: float | None = None  # achieved GFLOP/s, where a FLOP count is meaningful
    speedup: float | None = None  # over the reference path, where one exists
    reference_seconds: float | None = None
    reference_peak_mb: float | None = None
    notes: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


Entry = Callable[[str, torch.device], Iterable[Result]]
REGISTRY: dict[str, Entry] = {}


def benchmark(name: str) -> Callable[[Entry], Entry]:
    """Register ``fn(size, device) -> Iterable[Result]`` under ``name``."""

    def register(fn: Entry) -> Entry:
        if name in REGISTRY:
            raise ValueError(f"benchmark {name!r} registered twice")
        REGISTRY[name] = fn
        return fn

    return register


def discover() -> dict[str, Entry]:
    """Import every topic module of this package so that its entries register."""
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
    return REGISTRY


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _PeakRSS:
    """Sample the process's resident memory in a thread; ``peak`` is the high-water mark."""

    def __init__(self, interval: float = 0.002):
        self.interval, self.peak, self._stop = interval, 0, threading.Event()

    def __enter__(self) -> _PeakRSS:
        self.base = self.peak = _rss_bytes()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes())
            time.sleep(self.interval)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(fn: Callable[[], Any], device: torch.device, repeats: int = 3,
            warmup: int = 1) -> tuple[float, float, Any]:
    """Run ``fn`` ``warmup`` times, then ``repeats`` times.

    Returns (median seconds, peak memory in MB, last result). Peak memory is CUDA's max
    allocated on a GPU; on the CPU, the process's peak resident memory during the timed runs
    (whole process, so it includes the interpreter and torch, about 0.3-0.5 GB).
    """
    out = None
    for _ in range(warmup):
        out = fn()
    _sync(device)
    times = []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = fn()
            _sync(device)
            times.append(time.perf_counter() - t0)
        peak = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        with _PeakRSS() as rss:
            for _ in range(repeats):
                t0 = time.perf_counter()
                out = fn()
                times.append(time.perf_counter() - t0)
        peak = rss.peak / 2**20
    return statistics.median(times), peak, out


_PEAK_CACHE: dict[tuple[str, torch.dtype], float] = {}


def matmul_peak_gflops(device: torch.device, dtype: torch.dtype = torch.float32) -> float:
    """The machine's measured dense matmul rate in GFLOP/s (best of a few 2048^3 products)."""
    key = (str(device), dtype)
    if key not in _PEAK_CACHE:
        n = 2048
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        seconds, _, _ = measure(lambda: a @ b, device, repeats=5, warmup=2)
        _PEAK_CACHE[key] = 2 * n**3 / seconds / 1e9
    return _PEAK_CACHE[key]
