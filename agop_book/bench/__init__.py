"""Benchmarks: ``python -m agop_book.bench --size quick|paper|large --device cpu|cuda [--busy N]``.

Each topic lives in its own module of this package and registers entries with
:func:`benchmark`. An entry is a function ``(size, device) -> Iterable[Result]``; it measures
with :func:`measure` and, where a reference path exists, reports the speed-up over it.
Speed targets live here, never in timed tests.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib
import json
import os
import pkgutil
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from agop.runtime import default_device
from agop.validation import ArgumentTypeError, check_bool, check_int
from agop_book.bench._busy import Busy

SIZES = ("quick", "paper", "large")
#: the sizes an entry runs at unless it registers others (``large`` is opt-in)
DEFAULT_SIZES = ("quick", "paper")


@dataclasses.dataclass
class Result:
    """One row of the benchmark table.

    Examples:
        >>> row = Result("K(X, X) laplace", "quick", seconds=0.5, peak_mb=300.0, gflops=12.0)
        >>> row.as_dict()["speedup"] is None, row.as_dict()["gflops"]
        (True, 12.0)
    """

    problem: str
    size: str
    seconds: float
    peak_mb: float
    gflops: float | None = None  # achieved GFLOP/s, where a FLOP count is meaningful
    speedup: float | None = None  # over the reference path, where one exists
    reference_seconds: float | None = None
    reference_peak_mb: float | None = None
    arithmetic_ratio: float | None = None  # the reference's FLOPs over this path's, where counted
    float64_difference: float | None = None  # max |float32 - float64| / max |float64|, where run
    notes: str = ""
    details: dict | None = None  # entry-specific numbers (phases, memory targets) for the JSON

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


Entry = Callable[[str, torch.device], Iterable[Result]]
REGISTRY: dict[str, Entry] = {}
ENTRY_SIZES: dict[str, tuple[str, ...]] = {}


def benchmark(name: str, sizes: tuple[str, ...] = DEFAULT_SIZES) -> Callable[[Entry], Entry]:
    """Register ``fn(size, device) -> Iterable[Result]`` under ``name``, run at ``sizes``.

    Examples:
        >>> @benchmark("doctest: sum", sizes=("quick",))
        ... def entry(size, device):
        ...     yield Result("sum", size, seconds=0.0, peak_mb=0.0)
        >>> ENTRY_SIZES["doctest: sum"], [r.problem for r in REGISTRY["doctest: sum"]("quick", "cpu")]
        (('quick',), ['sum'])
        >>> benchmark("doctest: sum")(entry)
        Traceback (most recent call last):
        ...
        ValueError: benchmark 'doctest: sum' registered twice
        >>> del REGISTRY["doctest: sum"], ENTRY_SIZES["doctest: sum"]
    """

    def register(fn: Entry) -> Entry:
        if name in REGISTRY:
            raise ValueError(f"benchmark {name!r} registered twice")
        REGISTRY[name] = fn
        ENTRY_SIZES[name] = tuple(sizes)
        return fn

    return register


def discover() -> dict[str, Entry]:
    """Import every topic module of this package so that its entries register.

    Examples:
        >>> {"cnn_agop", "kernels", "rfm"} <= {name.split(":")[0] for name in discover()}
        True
    """
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
    return REGISTRY


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _reset_peak_rss() -> bool:
    """Reset the kernel's record of this process's peak resident memory (``VmHWM``) to the
    present one (Linux: ``5`` written to ``/proc/self/clear_refs``); False where that is not
    possible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return _peak_rss_bytes() is not None


def _peak_rss_bytes() -> int | None:
    """``VmHWM`` of this process in bytes (None where ``/proc`` does not give it)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class _PeakRSS:
    """The process's peak resident memory over a block, ``peak`` (bytes; ``base`` on entry).

    On Linux the kernel keeps the high-water mark: it is reset on entry and read on exit,
    exact and free of cost. Elsewhere a thread samples the resident memory every
    ``interval`` seconds (it wakes the interpreter, so it slows the block a little, and a
    spike between two samples goes unseen).
    """

    def __init__(self, interval: float = 0.002):
        self.interval, self.peak, self._stop = interval, 0, threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> _PeakRSS:
        self.base = self.peak = _rss_bytes()
        if not _reset_peak_rss():
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes())
            time.sleep(self.interval)

    def __exit__(self, *exc: object) -> None:
        if self._thread is None:
            self.peak = max(self.peak, _peak_rss_bytes() or 0)
        else:
            self._stop.set()
            self._thread.join()
        self.peak = max(self.peak, _rss_bytes())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


#: the most runs :func:`measure` makes of one function (timed or warm-up)
MAX_REPEATS = 1000


def measure(
    fn: Callable[[], Any], device: torch.device | str, repeats: int = 3, warmup: int = 1
) -> tuple[float, float, Any]:
    """Run ``fn`` ``warmup`` times, then ``repeats`` times.

    Returns (median seconds, peak memory in MB, last result). Peak memory is CUDA's max
    allocated on a GPU; on the CPU, the process's peak resident memory during the timed runs
    (whole process, so it includes the interpreter and torch, about 0.3-0.5 GB).

    Examples:
        >>> import torch
        >>> a = torch.randn(64, 64)
        >>> seconds, peak_mb, result = measure(lambda: a @ a, torch.device("cpu"), repeats=3)
        >>> seconds > 0, peak_mb > 0, torch.equal(result, a @ a)
        (True, True, True)
    """
    if not callable(fn):
        raise ArgumentTypeError(f"fn must be a function of no arguments, got {type(fn).__name__}")
    if isinstance(device, str):
        device = default_device(device)
    elif not isinstance(device, torch.device):
        raise ArgumentTypeError(
            f"device must be a torch.device or its name ('cpu', 'cuda'), got {device!r}"
        )
    repeats = check_int(repeats, "repeats", minimum=1, maximum=MAX_REPEATS)
    warmup = check_int(warmup, "warmup", minimum=0, maximum=MAX_REPEATS)
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


def _on_meta(out: Any) -> bool:
    if isinstance(out, (tuple, list)):
        return any(_on_meta(o) for o in out)
    return isinstance(out, torch.Tensor) and out.is_meta


class _ComputedFlops(FlopCounterMode):
    """:class:`~torch.utils.flop_counter.FlopCounterMode` without the operations on the
    ``meta`` device, which infer shapes and compute nothing (the patch-AGOP sizes its chunks
    that way). It overrides the counter's private ``_count_flops``; under a torch that renamed
    it, meta operations are counted like the others."""

    def _count_flops(self, func_packet, out, args, kwargs):
        if _on_meta(out):
            return out
        return super()._count_flops(func_packet, out, args, kwargs)


def count_flops(fn: Callable[[], Any]) -> float:
    r"""Floating-point operations of one call of ``fn``, as counted by
    :class:`torch.utils.flop_counter.FlopCounterMode`: matrix products and convolutions,
    forward and backward (elementwise work is not counted), leaving out operations on the
    ``meta`` device (shapes only). Run it apart from the timing.

    Examples:
        A ``(64, 32) @ (32, 16)`` product is :math:`2 \cdot 64 \cdot 32 \cdot 16` FLOPs;
        the same product on ``meta`` computes nothing:

        >>> import torch
        >>> a, b = torch.randn(64, 32), torch.randn(32, 16)
        >>> count_flops(lambda: a @ b)
        65536.0
        >>> count_flops(lambda: (a @ b, a.to("meta") @ b.to("meta")))
        65536.0
    """
    with _ComputedFlops(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


_PEAK_CACHE: dict[tuple[str, torch.dtype], float] = {}


def matmul_peak_gflops(device: torch.device, dtype: torch.dtype = torch.float32) -> float:
    r"""The machine's measured dense matmul rate in GFLOP/s (median of 5 timed
    :math:`2048^3` products), measured once per device and dtype.

    Examples:
        >>> import torch
        >>> matmul_peak_gflops(torch.device("cpu")) > 0
        True
    """
    key = (str(device), dtype)
    if key not in _PEAK_CACHE:
        n = 2048
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        seconds, _, _ = measure(lambda: a @ b, device, repeats=5, warmup=2)
        _PEAK_CACHE[key] = 2 * n**3 / seconds / 1e9
    return _PEAK_CACHE[key]


def machine_description(device: torch.device, command: str = "") -> dict:
    """Where and when a benchmark ran: date, command, versions, device and its matmul peak.

    Examples:
        >>> import torch
        >>> machine = machine_description(torch.device("cpu"), "python -m agop_book.bench")
        >>> machine["device"], machine["gpu"], machine["command"]
        ('cpu', None, 'python -m agop_book.bench')
    """
    desc = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "load_average": list(os.getloadavg()),  # 1, 5, 15 minutes, when the run began
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32 if device.type == "cuda" else None,
    }
    desc["commit"] = _git_commit()
    desc["matmul_peak_gflops_float32"] = round(matmul_peak_gflops(device, torch.float32), 1)
    return desc


def _git_commit() -> str | None:
    """The commit of the checkout that holds this package (``+dirty`` with local changes), or
    ``None`` outside a git checkout."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def format_table(rows: list[dict]) -> str:
    """The benchmark rows as one aligned text table.

    Examples:
        >>> row = Result("K(X, X)", "quick", 0.25, 310.0, gflops=8.0, speedup=3.0,
        ...              reference_seconds=0.75).as_dict()
        >>> print(format_table([row]))
        problem   size  seconds  peak MB  GFLOP/s  % peak  ref s  speed-up  arith.  f32-f64
        -------  -----  -------  -------  -------  ------  -----  --------  ------  -------
        K(X, X)  quick    0.250      310      8.0          0.750      3.0x
    """
    keys = ("problem", "size", "seconds", "peak_mb", "gflops", "reference_seconds", "speedup")
    if isinstance(rows, (str, bytes, dict)) or not isinstance(rows, (list, tuple)):
        raise ArgumentTypeError(f"rows must be a list of result dicts, got {type(rows).__name__}")
    for i, r in enumerate(rows):
        if not isinstance(r, dict):
            raise ArgumentTypeError(f"rows[{i}] must be a result dict, got {type(r).__name__}")
        missing = [k for k in keys if k not in r]
        if missing:
            raise ValueError(f"rows[{i}] has no key {missing[0]!r} (Result.as_dict() has them all)")
    head = [
        "problem",
        "size",
        "seconds",
        "peak MB",
        "GFLOP/s",
        "% peak",
        "ref s",
        "speed-up",
        "arith.",
        "f32-f64",
    ]
    lines = [head]
    for r in rows:
        lines.append(
            [
                r["problem"],
                r["size"],
                f"{r['seconds']:.3f}",
                f"{r['peak_mb']:.0f}",
                "" if r["gflops"] is None else f"{r['gflops']:.1f}",
                "" if r.get("percent_peak") is None else f"{r['percent_peak']:.0f}",
                "" if r["reference_seconds"] is None else f"{r['reference_seconds']:.3f}",
                "" if r["speedup"] is None else f"{r['speedup']:.1f}x",
                "" if r.get("arithmetic_ratio") is None else f"{r['arithmetic_ratio']:.1f}x",
                "" if r.get("float64_difference") is None else f"{r['float64_difference']:.0e}",
            ]
        )
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
    out = []
    for k, line in enumerate(lines):
        out.append(
            "  ".join(
                str(c).ljust(w) if i == 0 else str(c).rjust(w)
                for i, (c, w) in enumerate(zip(line, widths, strict=True))
            )
        )
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def run_benchmarks(
    size: str = "quick",
    device: str | torch.device | None = None,
    only: list[str] | None = None,
    *,
    command: str = "",
    echo: bool = False,
    busy: int = 0,
    on_row: Callable[[dict, list[dict]], None] | None = None,
) -> tuple[dict, list[dict]]:
    """Run the registered entries (all that run at ``size``, or those named in ``only``) at
    ``size`` on ``device``; with ``busy = N``, beside ``N`` busy processes
    (``agop_book.bench._busy.Busy``), started before and stopped after. ``on_row(machine,
    rows)`` is called after every row (to save partial results of a long run).

    Returns the machine description and one dict per result row (``Result`` fields plus
    ``entry`` and ``percent_peak``, the achieved rate as a share of the measured matmul peak).
    TF32 is switched off: no silent precision loss.

    Examples:
        Names are checked before anything runs:

        >>> run_benchmarks("quick", "cpu", only=["no such entry"])
        Traceback (most recent call last):
        ...
        ValueError: unknown benchmark(s) ['no such entry']; known: [...]
    """
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    if only is not None and (isinstance(only, (str, bytes)) or not isinstance(only, Iterable)):
        raise ArgumentTypeError(f"only must be None or a list of entry names, got {only!r}")
    if not isinstance(command, str):
        raise ArgumentTypeError(f"command must be a str, got {type(command).__name__}")
    echo = check_bool(echo, "echo")
    busy = check_int(busy, "busy", minimum=0)
    if on_row is not None and not callable(on_row):
        raise ArgumentTypeError(
            f"on_row must be None or a function (machine, rows), got {type(on_row).__name__}"
        )
    registry = discover()
    names = [n for n in sorted(registry) if size in ENTRY_SIZES[n]] if not only else list(only)
    unknown = [n for n in names if n not in registry]
    if unknown:
        raise ValueError(f"unknown benchmark(s) {unknown}; known: {sorted(registry)}")
    wrong = [n for n in names if size not in ENTRY_SIZES[n]]
    if wrong:
        raise ValueError(f"benchmark(s) {wrong} do not run at size {size!r}")
    device = default_device(device)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    machine = machine_description(device, command or f"python -m agop_book.bench --size {size}")
    machine["busy_processes"] = busy
    peak = machine["matmul_peak_gflops_float32"]
    if echo:
        print(
            f"# {machine['command']} on {machine['device']} "
            f"({machine['gpu'] or machine['processor']}, {machine['torch_threads']} threads); "
            f"measured float32 matmul peak {peak:.1f} GFLOP/s",
            flush=True,
        )
    rows = []
    t0 = time.perf_counter()
    with Busy(busy):
        for name in names:
            for result in registry[name](size, device):
                row = result.as_dict()
                row["entry"] = name
                row["busy"] = busy
                row["percent_peak"] = None if row["gflops"] is None else 100 * row["gflops"] / peak
                rows.append(row)
                if on_row is not None:
                    on_row(machine, rows)
                if echo:
                    print(
                        f"  {row['problem']}: {row['seconds']:.3f} s", file=sys.stderr, flush=True
                    )
    machine["total_seconds"] = time.perf_counter() - t0
    return machine, rows


#: Committed benchmark files (``python -m agop_book.bench --json``), shipped inside the package so a
#: chapter finds them from any working directory (Colab included).
RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def results_file(name: str) -> str:
    """The path of the committed benchmark file ``name`` in :data:`RESULTS_DIR` (may not exist).

    Examples:
        >>> results_file("cpu.json") == os.path.join(RESULTS_DIR, "cpu.json")
        True
        >>> results_file("../cpu.json")
        Traceback (most recent call last):
        ...
        ValueError: name must be a file name ending in .json, got '../cpu.json'
    """
    if not isinstance(name, str) or not name.endswith(".json") or os.sep in name or name == ".json":
        raise ValueError(f"name must be a file name ending in .json, got {name!r}")
    return os.path.join(RESULTS_DIR, name)


def load_results(path: str | os.PathLike[str]) -> tuple[dict, list[dict]]:
    """The machine description and rows of a JSON file written by ``python -m agop_book.bench --json``.

    Examples:
        >>> import json, tempfile
        >>> with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        ...     json.dump({"machine": {"device": "cpu"}, "results": [{"problem": "K"}]}, fh)
        >>> load_results(fh.name)
        ({'device': 'cpu'}, [{'problem': 'K'}])
        >>> import os; os.remove(fh.name)
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path (str or os.PathLike), got {path!r}")
    with open(path) as fh:
        try:
            data = json.load(fh)
        except ValueError as err:  # JSONDecodeError, or bytes that are not UTF-8
            raise ValueError(f"{path} is not a benchmark file: not JSON ({err})") from None
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("machine"), dict)
        or not isinstance(data.get("results"), list)
    ):
        raise ValueError(f"{path} is not a benchmark file (no 'machine' dict and 'results' list)")
    return data["machine"], data["results"]


def _check_json_path(parser: argparse.ArgumentParser, path: str) -> None:
    """A usage error, before any benchmark runs, when ``--json`` cannot be written (shared by
    the command lines of :mod:`agop_book.bench`)."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        parser.error(f"--json {path} is a directory; give a file name")
    if not folder.is_dir():
        parser.error(f"--json {path}: the directory {folder} does not exist")
    if not os.access(folder, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        parser.error(f"--json {path}: not writable")
