"""Execute a chapter and keep what a reader would see: the executed notebook and its figures.

    python tools/run_chapter.py book/01_ansatz.md [--out /tmp/01_ansatz]

Writes OUT/executed.ipynb and OUT/fig_NN.png (shown and glued figures alike), and prints each cell's time and the total.
"""

from __future__ import annotations

import argparse
import base64
import sys
from pathlib import Path

import jupytext
import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from execute import execute_notebook  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("chapter")
    parser.add_argument("--out", default=None)
    parser.add_argument("--timeout", type=int, default=600)
    args = parser.parse_args()
    chapter = Path(args.chapter)
    out = Path(args.out or f"/tmp/{chapter.stem}")
    out.mkdir(parents=True, exist_ok=True)
    nb = jupytext.read(chapter)

    def report(index, cell, seconds):
        first = cell.source.splitlines()[0][:70] if cell.source else ""
        print(f"cell {index:3d}: {seconds:6.1f} s  {first}", flush=True)

    total = execute_notebook(
        nb, cwd=str(chapter.parent), timeout=args.timeout, name=chapter.name, on_cell=report
    )
    print(f"total {total:.1f} s")
    nbformat.write(nb, out / "executed.ipynb")
    k = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            # a figure glued for the prose (myst-nb's glue) is kept under papermill's key
            png = data.get("image/png") or data.get("application/papermill.record/image/png")
            if png:
                (out / f"fig_{k:02d}.png").write_bytes(base64.b64decode(png))
                k += 1
    print(f"{k} figures in {out}")


if __name__ == "__main__":
    main()
