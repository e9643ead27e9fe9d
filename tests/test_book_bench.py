"""agop_book.bench: the harness (registry, measurement, table, JSON round trip, scaling fit), its
command line, and a smoke run of the entries that measure implementation details."""

import gc
import json
import os

import pytest
import torch

from agop_book import bench
from agop_book.bench import Result, format_table, load_results, measure
from agop_book.bench.__main__ import main
from agop_book.bench.scaling import fit_exponent, scaling_curve


def test_every_topic_registers_entries():
    registry = bench.discover()
    for name in ("cnn_agop", "kernels", "pretrained", "rfm"):
        assert name in registry


def test_measure_returns_median_peak_and_result():
    seconds, peak, out = measure(lambda: torch.ones(3).sum(), torch.device("cpu"), repeats=3)
    assert seconds >= 0 and peak > 0 and float(out) == 3.0


@pytest.mark.parametrize("kernel_record", [True, False])
def test_peak_rss_sees_a_transient_allocation(monkeypatch, kernel_record):
    """A 128 MB tensor made and freed inside the block sets its peak, whether the kernel's
    high-water mark is reset and read or a thread samples (``kernel_record=False``)."""
    import time

    if not kernel_record:
        monkeypatch.setattr(bench, "_reset_peak_rss", lambda: False)
    elif not bench._reset_peak_rss():
        pytest.skip("needs Linux's resettable peak resident memory")
    size = 2**27
    # Earlier tests' garbage must not be freed inside the block: a collection there could
    # return as much memory as the tensor takes, and the peak would not rise above the base.
    gc.collect()
    gc.disable()
    try:
        with bench._PeakRSS() as rss:
            x = torch.ones(size // 4)
            # The sampling thread may wait long for a core on a loaded machine: the tensor
            # lives until a sample has seen it (or 30 s), not for a fixed time.
            deadline = time.monotonic() + 30
            while not kernel_record and rss.peak - rss.base < 0.95 * size:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.01)
            del x
    finally:
        gc.enable()
    assert 0.95 * size < rss.peak - rss.base < 1.1 * size


def _cells(table: str) -> list[dict[str, str]]:
    """The table's rows as {column header: cell}, columns cut where the dashed rule has runs."""
    lines = table.splitlines()
    spans, start = [], None
    for i, ch in enumerate(lines[1] + " "):
        if ch == "-" and start is None:
            start = i
        elif ch != "-" and start is not None:
            spans.append((start, i))
            start = None
    head = [lines[0][a:b].strip() for a, b in spans]
    return [
        {h: line.ljust(len(lines[1]))[a:b].strip() for h, (a, b) in zip(head, spans, strict=True)}
        for line in lines[2:]
    ]


def test_format_table_has_every_row():
    rows = [
        Result(
            "cnn_agop.vgg", "quick", 1.25, 10.4, gflops=2.0, speedup=3.0, reference_seconds=3.75
        ).as_dict()
        | {"percent_peak": 12.0},
        Result("b", "paper", 0.5, 1234.5).as_dict(),
    ]
    cells = _cells(format_table(rows))
    assert len(cells) == 2
    first, second = cells
    assert (first["problem"], first["size"], first["seconds"], first["peak MB"]) == (
        "cnn_agop.vgg",
        "quick",
        "1.250",
        "10",
    )
    assert (first["GFLOP/s"], first["% peak"], first["ref s"], first["speed-up"]) == (
        "2.0",
        "12",
        "3.750",
        "3.0x",
    )
    assert (second["problem"], second["size"], second["seconds"], second["peak MB"]) == (
        "b",
        "paper",
        "0.500",
        "1234",
    )  # 1234.5 rounds half to even
    assert second["GFLOP/s"] == second["speed-up"] == second["ref s"] == ""  # not measured


def test_fit_exponent_recovers_power_laws():
    ns = [10, 20, 40, 80]
    assert fit_exponent(ns, [n**2 for n in ns]) == pytest.approx(2.0)
    assert fit_exponent(ns, [5 * n**0.5 for n in ns]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="positive"):
        fit_exponent([1, 2], [0, 1])


def test_scaling_point_runs_in_a_fresh_process():
    (point,) = scaling_curve([8], problem="K", shape=(1, 6, 6), depth=1)
    assert point.n == 8 and point.seconds > 0 and point.peak_mb > 0
    with pytest.raises(ValueError, match="problem"):
        scaling_curve([8], problem="Q")


def test_cli_lists_and_rejects_unknown(capsys):
    assert main(["--list"]) == 0
    assert "kernels" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--only", "no_such_entry"])


def test_load_results_round_trip_and_error(tmp_path):
    good = tmp_path / "b.json"
    good.write_text(json.dumps({"machine": {"device": "cpu"}, "results": []}))
    assert load_results(good) == ({"device": "cpu"}, [])
    bad = tmp_path / "c.json"
    bad.write_text("{}")
    with pytest.raises(ValueError, match="not a benchmark file"):
        load_results(bad)


def test_large_runs_only_at_its_size_and_sizes_are_checked():
    registry = bench.discover()
    assert "large" in registry and bench.ENTRY_SIZES["large"] == ("large",)
    assert "large" not in [n for n in registry if "quick" in bench.ENTRY_SIZES[n]]
    with pytest.raises(ValueError, match="do not run at size"):
        bench.run_benchmarks("quick", "cpu", only=["large"])


def test_busy_processes_start_and_stop():
    from agop_book.bench._busy import Busy

    with Busy(2, limit=60) as busy:
        assert busy.alive() == 2
        procs = list(busy.processes)
    assert all(p.poll() is not None for p in procs)
    with Busy(1, limit=0.2) as short:  # a bounded one stops by itself
        short.processes[0].wait(timeout=30)
        assert short.alive() == 0
    with pytest.raises(ValueError, match="busy"):
        Busy(-1)


def test_busy_is_bounded_on_the_command_line_and_in_busy(capsys, monkeypatch):
    """--busy N took any N (each process spins for up to an hour): at most four per core, a
    usage error (exit 2) before anything runs otherwise."""
    import agop_book.bench.__main__ as cli
    from agop_book.bench._busy import Busy, max_busy

    assert max_busy() == 4 * (os.cpu_count() or 1)
    ran = []
    monkeypatch.setattr(
        cli, "run_benchmarks", lambda *a, **k: ran.append(k) or ({"total_seconds": 0.0}, [])
    )
    for n in (max_busy() + 1, -1):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["--busy", str(n), "--only", "kernels"])
        assert exit_info.value.code == 2 and not ran
        assert f"--busy must be an integer in [0, {max_busy()}]" in capsys.readouterr().err
    with pytest.raises(ValueError, match=f"busy must be a non-negative integer <= {max_busy()}"):
        Busy(max_busy() + 1)


def test_busy_stops_the_started_processes_when_a_start_fails(monkeypatch):
    """Starting the 2nd spinner fails: the 1st, already spinning (for up to an hour), is
    terminated and reaped before the error propagates."""
    import subprocess

    from agop_book.bench import _busy

    started, real_popen = [], subprocess.Popen

    def popen(*args, **kwargs):
        if started:
            raise OSError("no more processes")
        started.append(real_popen(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(_busy.subprocess, "Popen", popen)
    busy = _busy.Busy(3, limit=60)
    try:
        with pytest.raises(OSError, match="no more processes"):
            with busy:
                pytest.fail("the block must not run")
        assert len(started) == 1 and started[0].returncode is not None  # terminated and reaped
        assert busy.processes == []
    finally:  # never leave a spinner behind, even when the test fails
        for p in started:
            p.kill()
            p.wait()


def test_large_point_fits_convrfm_within_its_memory_target():
    from agop_book.bench.large import digits_28, memory_target_mb, run_point

    X, y = digits_28(6, "test", 0, "cpu")
    assert X.shape == (6, 1, 28, 28) and int(y.max()) <= 9
    p = run_point(60, "cpu", progress=False, n_test=20, agop_samples=20)
    assert p["n"] == 60 and p["n_val"] == 12 and len(p["rounds"]) == 3
    assert p["rounds"][0]["agop_seconds"] > 0 and p["rounds"][-1]["agop_seconds"] == 0
    assert 0 <= p["test_acc"] <= 1 and p["memory_target_mb"] == memory_target_mb(60)
    assert p["peak_mb"] > 0


def test_json_is_written_after_every_row(tmp_path, monkeypatch):
    seen = []

    @bench.benchmark("_probe_rows", sizes=("quick",))
    def probe(size, device):
        for i in range(2):
            yield Result(f"row {i}", size, 0.1, 1.0)

    try:
        _, rows = bench.run_benchmarks(
            "quick", "cpu", only=["_probe_rows"], on_row=lambda m, r: seen.append(len(r))
        )
        assert seen == [1, 2] and len(rows) == 2
        out = tmp_path / "b.json"
        monkeypatch.setattr(bench, "matmul_peak_gflops", lambda *a, **k: 1.0)
        assert main(["--only", "_probe_rows", "--json", str(out)]) == 0
        data = json.loads(out.read_text())
        assert data["complete"] and len(data["results"]) == 2 and "commit" in data["machine"]
    finally:
        bench.REGISTRY.pop("_probe_rows")
        bench.ENTRY_SIZES.pop("_probe_rows")


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--curve", "20", "--json", "/missing/dir/x.json"], "the directory /missing/dir"),
        (["--n", "20", "--json", "x.json"], "--json needs --curve"),
    ],
)
def test_large_usage_errors_come_before_any_point_runs(argv, match, capsys, monkeypatch):
    """A curve takes hours: a --json it cannot write is an error before the first point."""
    from agop_book.bench import large

    ran = []
    monkeypatch.setattr(large, "point_in_subprocess", lambda *a, **k: ran.append(a))
    monkeypatch.setattr(large, "run_point", lambda *a, **k: ran.append(a))
    with pytest.raises(SystemExit):
        large.main(argv)
    assert match in capsys.readouterr().err and not ran


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--json", "/missing/dir/x.json"], "the directory /missing/dir does not exist"),
        (["--only"], "expected at least one argument"),
        (["--device", "gpu"], "--device gpu: device must be"),
        (["--only", "nope"], "unknown benchmark"),
    ],
)
def test_bench_usage_errors_come_before_any_benchmark_runs(argv, match, capsys, monkeypatch):
    import agop_book.bench as bench
    from agop_book.bench.__main__ import main

    ran = []
    monkeypatch.setattr(bench, "run_benchmarks", lambda *a, **k: ran.append(a))
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2 and not ran
    assert match in capsys.readouterr().err


def test_bench_cuda_without_cuda_is_a_usage_error(capsys, monkeypatch):
    from agop_book.bench.__main__ import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as exit_info:
        main(["--device", "cuda", "--only", "kernels"])
    assert exit_info.value.code == 2
    assert "CUDA is not available" in capsys.readouterr().err


def test_bench_json_to_a_directory_or_unwritable_file(tmp_path, capsys):
    from agop_book.bench.__main__ import main

    with pytest.raises(SystemExit):
        main(["--json", str(tmp_path)])
    assert "is a directory" in capsys.readouterr().err


def test_internals_entry_reports_each_quantity_against_its_bound():
    """A smoke run of the entry that measures implementation details (patch_agop's chunks, the
    kernel driver's tile preparations, peak memory of the finite checks and the Cholesky
    sweep): every row says what it measured, its bound and whether it was met, consistently."""
    _, rows = bench.run_benchmarks("quick", "cpu", only=["internals"])
    problems = [row["problem"] for row in rows]
    assert sum(p.startswith("patch_agop chunks") for p in problems) == 5
    assert any(p.startswith("K(X, X) tile preparations") for p in problems)
    assert any(p.startswith("check_finite") for p in problems)
    assert any(p.startswith("cholesky ridge sweep") for p in problems)
    for row in rows:
        if row["details"] is None:
            assert row["notes"].startswith("not measured")
            continue
        assert set(row["details"]) == {"measured", "bound", "met"}
        assert isinstance(row["details"]["met"], bool)
        assert row["notes"].endswith(": met" if row["details"]["met"] else ": NOT MET")
    chunks = rows[0]["details"]
    assert chunks["measured"][0] == 1 and sum(chunks["measured"][1:]) == 7  # every image, once


# Held-out style bugs


def test_engine_against_reference_reports_medians_and_ratios_of_planted_runs(monkeypatch):
    """Planted timings and FLOP counts (the two paths computed for real, on a tiny CNN): the
    row holds the median of each path's runs, speed-up = reference / engine, arithmetic ratio =
    reference FLOPs / engine FLOPs, GFLOP/s = engine FLOPs / engine seconds / 1e9, the engine's
    first-run peak and the reference's largest."""
    from torch import nn

    from agop_book.bench import _compare

    times = {"engine": [1.0, 3.0, 2.0], "reference": [10.0, 40.0, 20.0]}
    peaks = {"engine": [5.0, 50.0, 60.0], "reference": [7.0, 9.0, 8.0]}

    def fake_measure(fn, device, repeats=3, warmup=1):
        assert (repeats, warmup) == (1, 0)
        return times[fn.__name__].pop(0), peaks[fn.__name__].pop(0), fn()

    monkeypatch.setattr(_compare, "measure", fake_measure)
    monkeypatch.setattr(
        _compare, "count_flops", lambda fn: {"engine": 1e9, "reference": 3e9}[fn.__name__]
    )
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 3 * 3, 2)).eval()
    X = torch.rand(3, 1, 5, 5, generator=torch.Generator().manual_seed(1))
    row = _compare.engine_against_reference(
        model, X, None, torch.device("cpu"), problem="tiny", size="quick", repeats=3
    )
    assert times == {"engine": [], "reference": []}  # three runs of each
    assert (row.seconds, row.reference_seconds) == (2.0, 20.0)
    assert row.speedup == pytest.approx(10.0) and row.arithmetic_ratio == pytest.approx(3.0)
    assert row.gflops == pytest.approx(0.5)
    assert (row.peak_mb, row.reference_peak_mb) == (5.0, 9.0)


# Hostile inputs


@pytest.mark.parametrize(
    "content, error, match",
    [
        (None, TypeError, "^path must be a file path"),
        ("{not json", ValueError, r"r\.json is not a benchmark file: not JSON"),
        (b"\xff\xfe\x00", ValueError, r"r\.json is not a benchmark file"),
        ("[1, 2]", ValueError, r"r\.json is not a benchmark file \(no 'machine' dict"),
        ('{"machine": 3, "results": []}', ValueError, r"r\.json is not a benchmark file"),
        ('{"machine": {}, "results": 3}', ValueError, r"r\.json is not a benchmark file"),
    ],
)
def test_hostile_inputs_are_refused_by_name(tmp_path, content, error, match):
    path = tmp_path / "r.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(error, match=match):
        load_results(None if content is None else path)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"fn": None}, TypeError, "^fn must be a function"),
        ({"device": None}, TypeError, "^device must be a torch.device"),
        ({"device": "tpu"}, ValueError, "^device must be"),
        ({"repeats": 0}, ValueError, "^repeats must be"),
        ({"repeats": True}, TypeError, "^repeats must be an integer"),
        ({"repeats": 10**12}, ValueError, "^repeats must be"),
        ({"warmup": -1}, ValueError, "^warmup must be"),
    ],
)
def test_measure_names_a_hostile_argument(kwargs, error, match):
    args = {"fn": lambda: 1, "device": torch.device("cpu"), **kwargs}
    with pytest.raises(error, match=match):
        measure(args.pop("fn"), args.pop("device"), **args)


def test_measure_takes_a_device_name():
    assert measure(lambda: 7, "cpu", repeats=1, warmup=0)[2] == 7


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"only": "rfm"}, TypeError, "^only must be None or a list"),
        ({"on_row": 3}, TypeError, "^on_row must be None or a function"),
        ({"echo": "yes"}, TypeError, "^echo must be True or False"),
        ({"command": 3}, TypeError, "^command must be a str"),
        ({"busy": -1}, ValueError, "^busy must be"),
    ],
)
def test_run_benchmarks_names_a_hostile_argument_before_running(kwargs, error, match):
    with pytest.raises(error, match=match):
        bench.run_benchmarks("quick", "cpu", **{"only": ["rfm"], **kwargs})


@pytest.mark.parametrize(
    "rows, error, match",
    [
        (None, TypeError, "^rows must be a list"),
        ({"problem": "x"}, TypeError, "^rows must be a list"),
        ([{"problem": "x"}], ValueError, r"^rows\[0\] has no key 'size'"),
    ],
)
def test_format_table_names_a_bad_row(rows, error, match):
    with pytest.raises(error, match=match):
        format_table(rows)


def test_results_file_refuses_a_name_that_is_only_the_suffix():
    with pytest.raises(ValueError, match="^name must be a file name"):
        bench.results_file(".json")


# Held-out style bugs, round 3


def test_measure_reports_the_median_of_planted_run_times(monkeypatch):
    """Runs that take 1, 2 and 9 (planted) seconds on a fake clock: the median is 2 (the
    mean, 4, would let one slow spell of a shared machine move the result)."""
    import time
    import types

    clock = [0.0]
    durations = [1.0, 2.0, 9.0]
    monkeypatch.setattr(
        bench, "time", types.SimpleNamespace(perf_counter=lambda: clock[0], sleep=time.sleep)
    )

    def run():
        clock[0] += durations.pop(0)
        return len(durations)

    seconds, _, out = measure(run, torch.device("cpu"), repeats=3, warmup=0)
    assert seconds == 2.0 and out == 0


# Held-out style bugs, round 5


def test_percent_peak_is_the_rate_in_percent_of_the_measured_matmul_peak(monkeypatch):
    """A planted peak of 120 GFLOP/s and rows at 30 GFLOP/s and without a rate: 25 (per cent,
    as the table's ``% peak`` column prints it) and None."""
    monkeypatch.setattr(bench, "matmul_peak_gflops", lambda *a, **k: 120.0)

    @bench.benchmark("_probe_peak", sizes=("quick",))
    def probe(size, device):
        yield Result("rated", size, 0.1, 1.0, gflops=30.0)
        yield Result("unrated", size, 0.1, 1.0)

    try:
        machine, rows = bench.run_benchmarks("quick", "cpu", only=["_probe_peak"])
    finally:
        bench.REGISTRY.pop("_probe_peak")
        bench.ENTRY_SIZES.pop("_probe_peak")
    assert machine["matmul_peak_gflops_float32"] == 120.0
    assert [r["percent_peak"] for r in rows] == [25.0, None]
    assert format_table(rows).splitlines()[2].split()[5] == "25"
