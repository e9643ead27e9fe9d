"""Run every book/*.ipynb as a Colab reader would, and say how each one went.

    python tools/colab_run.py --kernel NAME [--report FILE] book/*.ipynb

Called by tools/colab_like.sh (`make test-colab`) with the Python of a fresh virtual environment
that has no myst-nb, Jupyter Book or Sphinx. Each notebook runs top to bottom, unchanged, in the
kernel ``NAME``, from its own fresh temporary working directory (so nothing is found through the
repository's folders). A notebook fails on any cell error, on a cell that runs past the per-cell
timeout or whose kernel stops answering (named by tools/execute.py), and on MyST-only markup left
in one of its markdown cells. Nothing is retried. Needs only the standard library, nbformat and
nbclient.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient.exceptions import CellExecutionError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from execute import CellStalled, execute_notebook  # noqa: E402
from make_notebooks import myst_markup  # noqa: E402


def run(path: Path, kernel: str, timeout: int) -> dict:
    nb = nbformat.read(path, as_version=4)
    markup = [
        f"cell {i}: {m}"
        for i, c in enumerate(nb.cells)
        if c.cell_type == "markdown"
        for m in myst_markup(c.source)
    ]
    result = {"notebook": path.name, "myst_markup": markup, "error": None}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"colab-{path.stem}-") as cwd:
        try:
            execute_notebook(nb, cwd=cwd, kernel=kernel, timeout=timeout, name=path.name)
        except CellExecutionError as err:
            result["error"] = str(err).strip().splitlines()[-1][:300]
            result["error_detail"] = str(err)[-3000:]
        except CellStalled as err:  # a timeout, a dead or silent kernel: named, never retried
            result["error"] = f"CellStalled: {err}"[:300]
    result["seconds"] = round(time.perf_counter() - start, 1)
    result["ok"] = result["error"] is None and not markup
    text = "".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    result["glued_lines"] = sum(1 for line in text.splitlines() if " = " in line)
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kernel", required=True)
    parser.add_argument("--timeout", type=int, default=420, help="seconds per cell")
    parser.add_argument("--report", type=Path, default=None)
    parser.add_argument("notebooks", nargs="+", type=Path)
    args = parser.parse_args()
    results = []
    for path in args.notebooks:
        r = run(path.resolve(), args.kernel, args.timeout)
        results.append(r)
        status = "pass" if r["ok"] else "FAIL"
        print(
            f"{status} {r['notebook']:28s} {r['seconds']:7.1f} s"
            + (f"  error: {r['error']}" if r["error"] else "")
            + (f"  MyST left: {r['myst_markup'][:3]}" if r["myst_markup"] else ""),
            flush=True,
        )
        if r.get("error_detail"):
            print(r["error_detail"], flush=True)
    if args.report:
        args.report.write_text(json.dumps(results, indent=1))
    failed = [r["notebook"] for r in results if not r["ok"]]
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
