"""``python -m agop.bench``: run every registered benchmark and print one table."""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time

import torch

from agop.bench import SIZES, discover, matmul_peak_gflops
from agop.runtime import default_device


def machine_description(device: torch.device) -> dict:
    import os

    desc = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python -m agop.bench", *sys.argv[1:]]),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32 if device.type == "cuda" else None,
    }
    desc["matmul_peak_gflops_float32"] = round(matmul_peak_gflops(device, torch.float32), 1)
    return desc


def format_table(rows: list[dict]) -> str:
    head = ["problem", "size", "seconds", "peak MB", "GFLOP/s", "% peak", "ref s", "speed-up"]
    lines = [head]
    for r in rows:
        lines.append([
            r["problem"], r["size"], f"{r['seconds']:.3f}", f"{r['peak_mb']:.0f}",
            "" if r["gflops"] is None else f"{r['gflops']:.1f}",
            "" if r.get("percent_peak") is None else f"{r['percent_peak']:.0f}",
            "" if r["reference_seconds"] is None else f"{r['reference_seconds']:.3f}",
            "" if r["speedup"] is None else f"{r['speedup']:.1f}x",
        ])
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
    out = []
    for k, line in enumerate(lines):
        out.append("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                             for i, (c, w) in enumerate(zip(line, widths))))
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agop.bench", description=__doc__)
    parser.add_argument("--size", choices=SIZES, default="quick")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
    parser.add_argument("--only", nargs="*", default=None, help="names of entries to run")
    parser.add_argument("--json", default=None, help="write results and machine description here")
    parser.add_argument("--list", action="store_true", help="list the entries and exit")
    args = parser.parse_args(argv)

    registry = discover()
    if args.list:
        print("\n".join(sorted(registry)))
        return 0
    names = sorted(registry) if not args.only else args.only
    unknown = [n for n in names if n not in registry]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; known: {sorted(registry)}")
    device = default_device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = False  # no silent precision loss
    torch.backends.cudnn.allow_tf32 = False
    machine = machine_description(device)
    peak = machine["matmul_peak_gflops_float32"]
    print(f"# {machine['command']} on {machine['device']} ({machine['gpu'] or machine['processor']},"
          f" {machine['torch_threads']} threads); measured float32 matmul peak {peak:.1f} GFLOP/s",
          flush=True)
    rows = []
    t0 = time.perf_counter()
    for name in names:
        for result in registry[name](args.size, device):
            row = result.as_dict()
            row["entry"] = name
            row["percent_peak"] = None if row["gflops"] is None else 100 * row["gflops"] / peak
            rows.append(row)
            print(f"  {row['problem']}: {row['seconds']:.3f} s", file=sys.stderr, flush=True)
    print(format_table(rows))
    print(f"# total {time.perf_counter() - t0:.1f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": machine, "results": rows}, fh, indent=2)
        print(f"# wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
