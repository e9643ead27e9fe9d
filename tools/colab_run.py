"""Validate every book/*.ipynb with nbval as a Colab reader would run it, and say how each went.

    python tools/colab_run.py --kernel NAME [--report FILE] [NBVAL OPTIONS] book/*.ipynb

NBVAL OPTIONS go to pytest as they are (`make test-colab` passes
``--nbval-lax --nbval-cell-timeout=420``); without any, ``--nbval-lax``.

Called by tools/colab_like.sh (`make test-colab`) with the Python of a fresh virtual environment
that has no myst-nb, Jupyter Book or Sphinx, but has pytest and nbval. Each notebook is copied,
unchanged, into a fresh temporary directory of its own (nbval starts the kernel there, so nothing
is found through the repository's folders) and the copies are validated in one
``pytest --nbval-lax`` run in the kernel ``NAME``: every cell must run without error, within
nbval's per-cell timeout (a stalled cell fails as ``<notebook>::Cell N``).
A notebook also fails on MyST-only markup left in one of its markdown cells. Prints one line
per notebook with its seconds (summed over its cells, from pytest's JUnit report) and writes
them to ``--report`` as JSON. Needs only the standard library, nbformat, pytest and nbval.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_notebooks import myst_markup  # noqa: E402

ANSI = re.compile(r"(\x1b|#x1B)\[[0-9;]*m")  # terminal colours in nbval's messages


def markup_left(path: Path) -> list[str]:
    """MyST markup that Colab would show as raw text, by markdown cell."""
    nb = nbformat.read(path, as_version=4)
    return [
        f"cell {i}: {m}"
        for i, c in enumerate(nb.cells)
        if c.cell_type == "markdown"
        for m in myst_markup(c.source)
    ]


def per_notebook(junit: Path) -> dict[str, dict]:
    """Seconds and failures by notebook file name, from pytest's JUnit XML (one test per cell)."""
    out: dict[str, dict] = {}
    for case in ET.parse(junit).iter("testcase"):
        name = Path(case.get("file", "")).name  # xunit1: the notebook's path
        row = out.setdefault(name, {"seconds": 0.0, "cells": 0, "failed": []})
        row["seconds"] += float(case.get("time", 0))
        row["cells"] += 1
        for bad in (*case.iter("failure"), *case.iter("error")):
            message = ANSI.sub("", bad.get("message") or "").replace("#x1B", "")
            row["failed"].append(f"{case.get('name')}: {' '.join(message.split())[:300]}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kernel", required=True)
    parser.add_argument("--report", type=Path, default=None)
    parser.add_argument("notebooks", nargs="+", type=Path)
    args, nbval = parser.parse_known_args()
    if not any(a.startswith("--nbval") for a in nbval):
        nbval = ["--nbval-lax"]
    with tempfile.TemporaryDirectory(prefix="colab-nbval-") as tmp:
        copies = []
        for path in args.notebooks:
            folder = Path(tmp) / path.stem
            folder.mkdir()
            copies.append(Path(shutil.copy(path, folder)))
        junit = Path(tmp) / "junit.xml"
        command = [
            sys.executable, "-m", "pytest", *nbval, f"--nbval-kernel-name={args.kernel}",
            "-p", "no:cacheprovider", "-q",
            f"--rootdir={tmp}", f"--junitxml={junit}", "-o", "junit_family=xunit1",
            *map(str, copies),
        ]  # fmt: skip
        print(" ".join(command), flush=True)
        code = subprocess.run(command, cwd=tmp).returncode
        rows = per_notebook(junit) if junit.exists() else {}
    results = []
    for path in args.notebooks:
        row = rows.get(path.name, {"seconds": 0.0, "cells": 0, "failed": ["never ran"]})
        markup = markup_left(path)
        ok = not row["failed"] and not markup and row["cells"] > 0
        results.append({"notebook": path.name, "ok": ok, "myst_markup": markup, **row})
        print(
            f"{'pass' if ok else 'FAIL'} {path.name:28s} {row['seconds']:7.1f} s "
            f"({row['cells']} cells)"
            + (f"  failed: {row['failed'][:2]}" if row["failed"] else "")
            + (f"  MyST left: {markup[:3]}" if markup else ""),
            flush=True,
        )
    if args.report:
        args.report.write_text(json.dumps(results, indent=1))
    failed = [r["notebook"] for r in results if not r["ok"]]
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed (pytest exit code {code})")
    return 1 if failed or code != 0 else 0


if __name__ == "__main__":
    raise SystemExit(main())
