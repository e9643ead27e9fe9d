"""``python -m agop_book.bench``: run every registered benchmark and print one table."""

from __future__ import annotations

import argparse
import json
import sys

from agop.runtime import default_device
from agop_book.bench import SIZES, _check_json_path, discover, format_table, run_benchmarks
from agop_book.bench._busy import max_busy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agop_book.bench", description=__doc__)
    parser.add_argument("--size", choices=SIZES, default="quick", type=str.lower)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
    parser.add_argument("--only", nargs="+", default=None, help="names of entries to run")
    parser.add_argument("--json", default=None, help="write results and machine description here")
    parser.add_argument(
        "--busy",
        type=int,
        default=0,
        metavar="N",
        help="run beside N busy processes that the benchmark starts and stops",
    )
    parser.add_argument("--list", action="store_true", help="list the entries and exit")
    args = parser.parse_args(argv)

    registry = discover()
    if args.list:
        print("\n".join(sorted(registry)))
        return 0
    unknown = [n for n in (args.only or []) if n not in registry]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; known: {sorted(registry)}")
    args.device = _check_device(parser, args.device)
    if args.json:
        _check_json_path(parser, args.json)
    command = " ".join(["python -m agop_book.bench", *(sys.argv[1:] if argv is None else argv)])
    if not 0 <= args.busy <= max_busy():
        parser.error(
            f"--busy must be an integer in [0, {max_busy()}] (four per CPU core), got {args.busy}"
        )

    def save(machine: dict, rows: list[dict], complete: bool = False) -> None:
        if args.json:
            with open(args.json, "w") as fh:
                json.dump({"machine": machine, "results": rows, "complete": complete}, fh, indent=2)

    machine, rows = run_benchmarks(
        args.size, args.device, args.only, command=command, echo=True, busy=args.busy, on_row=save
    )
    print(format_table(rows))
    for row in rows:  # entries that check a bound (agop_book.bench.internals) say if it was met
        if isinstance(row.get("details"), dict) and "met" in row["details"]:
            print(f"# {row['problem']}: {row['notes']}")
    print(f"# total {machine['total_seconds']:.1f} s")
    if args.json:
        save(machine, rows, complete=True)
        print(f"# wrote {args.json}")
    return 0


def _check_device(parser: argparse.ArgumentParser, device: str | None) -> str | None:
    """``device`` in lower case; a usage error (exit 2) for one torch does not know or
    cannot use here."""
    try:
        default_device(device)
    except ValueError as err:
        parser.error(f"--device {device}: {err}")
    return None if device is None else device.lower()


if __name__ == "__main__":
    raise SystemExit(main())
