"""Execute a notebook cell by cell, with a per-cell timeout that names the cell.

    from execute import execute_notebook
    seconds = execute_notebook(nb, cwd="/tmp/x", kernel="python3", timeout=420, name="01_ansatz")

One way for every place outside the book build that runs a notebook (the Colab-like run, the
paper-profile smoke run, the chapter-03 branch test, tools/run_chapter.py). A cell that errors
raises nbclient's ``CellExecutionError`` as usual; a cell that runs past ``timeout`` seconds, or
a kernel that stops answering, raises :class:`CellStalled`, whose message names the notebook,
the cell's index and its first line, so a hang fails at once with the cell to look at instead of
a silent wait. Kernels come from ipykernel < 7 (pinned in pyproject.toml): ipykernel 7.x can
lose an execute reply and leave the client waiting on an idle kernel.

The book build has its own per-cell timeout (``execute.timeout`` in _config.yml) and nbval its
``--nbval-cell-timeout`` (Makefile).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError


class CellStalled(RuntimeError):
    """A cell ran past its timeout, or its kernel died or stopped answering."""


def first_line(source: str) -> str:
    """The first non-empty line of a cell, shortened to 80 characters."""
    lines = [line for line in source.splitlines() if line.strip()]
    return lines[0][:80] if lines else "(empty cell)"


def execute_notebook(
    nb: Any,
    *,
    cwd: str,
    kernel: str = "python3",
    timeout: int = 600,
    name: str = "notebook",
    on_cell: Callable[[int, Any, float], None] | None = None,
) -> float:
    """Run every cell of ``nb`` in place (outputs are written into it); return the seconds taken.

    ``on_cell(index, cell, seconds)`` is called after each code cell (for per-cell timings).
    """
    client = NotebookClient(
        nb, timeout=timeout, kernel_name=kernel, resources={"metadata": {"path": cwd}}
    )
    start = time.perf_counter()
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            t0 = time.perf_counter()
            try:
                client.execute_cell(cell, index)
            except (CellTimeoutError, DeadKernelError, TimeoutError) as err:
                raise CellStalled(
                    f"{name}, cell {index} ({first_line(cell.source)!r}): "
                    f"{type(err).__name__} after {time.perf_counter() - t0:.0f} s "
                    f"(timeout {timeout} s per cell)"
                ) from err
            if on_cell is not None and cell.cell_type == "code":
                on_cell(index, cell, time.perf_counter() - t0)
    return time.perf_counter() - start
