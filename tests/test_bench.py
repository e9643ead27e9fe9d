"""The benchmark harness: registry, measurement, table, JSON round trip, scaling fit."""

import json

import pytest
import torch

from agop import bench
from agop.bench import Result, format_table, load_results, measure
from agop.bench.__main__ import main
from agop.bench.scaling import fit_exponent, scaling_curve


def test_every_topic_registers_entries():
    registry = bench.discover()
    for name in ("cnn_agop", "kernels", "pretrained", "rfm"):
        assert name in registry


def test_measure_returns_median_peak_and_result():
    seconds, peak, out = measure(lambda: torch.ones(3).sum(), torch.device("cpu"), repeats=3)
    assert seconds >= 0 and peak > 0 and float(out) == 3.0


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
    return [{h: line.ljust(len(lines[1]))[a:b].strip() for h, (a, b) in zip(head, spans, strict=True)}
            for line in lines[2:]]


def test_format_table_has_every_row():
    rows = [Result("cnn_agop.vgg", "quick", 1.25, 10.4, gflops=2.0, speedup=3.0,
                   reference_seconds=3.75).as_dict() | {"percent_peak": 12.0},
            Result("b", "paper", 0.5, 1234.5).as_dict()]
    cells = _cells(format_table(rows))
    assert len(cells) == 2
    first, second = cells
    assert (first["problem"], first["size"], first["seconds"], first["peak MB"]) == (
        "cnn_agop.vgg", "quick", "1.250", "10")
    assert (first["GFLOP/s"], first["% peak"], first["ref s"], first["speed-up"]) == (
        "2.0", "12", "3.750", "3.0x")
    assert (second["problem"], second["size"], second["seconds"], second["peak MB"]) == (
        "b", "paper", "0.500", "1234")  # 1234.5 rounds half to even
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
