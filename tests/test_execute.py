"""tools/execute.py: every notebook run outside the book build fails at a stalled cell, naming it,
instead of waiting; and every environment that runs notebooks takes a kernel without the
ipykernel 7.x lost-reply hang."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from execute import CellStalled, execute_notebook  # noqa: E402


def notebook(*sources: str):
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])


def test_a_cell_past_its_timeout_fails_at_once_naming_the_cell(tmp_path):
    nb = notebook("x = 1", "import time\ntime.sleep(60)  # the slow one", "y = 2")
    with pytest.raises(CellStalled, match=r"demo\.ipynb, cell 1 \('import time'\).*timeout 3 s"):
        execute_notebook(nb, cwd=str(tmp_path), timeout=3, name="demo.ipynb")


def test_cells_run_in_order_in_the_working_directory(tmp_path):
    nb = notebook("import os\nprint(os.getcwd())", "print(6 * 7)")
    seen = []
    execute_notebook(nb, cwd=str(tmp_path), name="demo", on_cell=lambda i, c, s: seen.append(i))
    assert nb.cells[0].outputs[0]["text"].strip() == str(tmp_path.resolve())
    assert nb.cells[1].outputs[0]["text"].strip() == "42"
    assert seen == [0, 1]


def test_every_environment_that_runs_notebooks_pins_ipykernel_below_7():
    pins = re.findall(r'"(ipykernel[^"]*)"', (ROOT / "pyproject.toml").read_text())
    assert pins and all(re.search(r"<\s*7\b", d) for d in pins), pins
    colab = (ROOT / "tools" / "colab_like.sh").read_text()
    assert re.search(r'"ipykernel>=6,<7"', colab), "the Colab-like venv must pin ipykernel<7"
