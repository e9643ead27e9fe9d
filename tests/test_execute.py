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


class MissedWakeups:
    """A channel whose socket never wakes its poll: like pyzmq's asyncio poll after a missed
    edge, a read returns a queued message only when its timer runs out, and raises Empty when
    nothing is queued. ``arrives`` is the read at which the message is queued."""

    def __init__(self, arrives: int):
        self.arrives, self.timeouts = arrives, []

    async def get_msg(self, timeout=None):
        import asyncio
        from queue import Empty

        self.timeouts.append(timeout)
        await asyncio.sleep(timeout)  # the whole timeout: no wake-up
        if len(self.timeouts) >= self.arrives:
            return {"msg": len(self.timeouts)}
        raise Empty


def test_a_missed_wake_up_costs_one_slice_not_the_whole_timeout():
    import asyncio

    from execute import sliced_get_msg

    channel = MissedWakeups(arrives=3)
    msg = asyncio.run(sliced_get_msg(channel.get_msg, slice_s=0.01)(timeout=600))
    assert msg == {"msg": 3}
    assert channel.timeouts == [0.01, 0.01, 0.01]  # never a 600 s poll


def test_sliced_reads_without_a_timeout_wait_until_a_message_comes():
    import asyncio

    from execute import sliced_get_msg

    channel = MissedWakeups(arrives=4)
    assert asyncio.run(sliced_get_msg(channel.get_msg, slice_s=0.01)(timeout=None)) == {"msg": 4}
    assert channel.timeouts == [0.01] * 4


def test_sliced_reads_raise_empty_once_the_whole_timeout_has_passed():
    import asyncio
    from queue import Empty

    from execute import sliced_get_msg

    channel = MissedWakeups(arrives=10**6)
    with pytest.raises(Empty):
        asyncio.run(sliced_get_msg(channel.get_msg, slice_s=0.01)(timeout=0.035))
    assert 3 <= len(channel.timeouts) <= 5 and max(channel.timeouts) <= 0.01


def test_every_nbclient_run_reads_its_kernel_in_slices(tmp_path):
    """execute_notebook, and nbclient's own execute as jupyter-cache calls it in the book
    build (whose extension, tools/agop_sphinx.py, installs the patch in its setup)."""
    import subprocess

    code = (
        "import sys, unittest.mock as mock; sys.path.insert(0, 'tools')\n"
        "import nbformat, nbclient, nbclient.client as c\n"
        "import agop_sphinx; agop_sphinx.setup(mock.MagicMock())\n"
        "nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('print(6 * 7)')])\n"
        "client = c.NotebookClient(nb)\n"
        "with client.setup_kernel():\n"
        "    for ch in (client.kc.shell_channel, client.kc.iopub_channel):\n"
        "        assert ch.get_msg.__name__ == 'get_msg_in_slices', ch.get_msg\n"
        "    client.execute_cell(nb.cells[0], 0)\n"
        "assert nb.cells[0].outputs[0]['text'].strip() == '42'\n"
        "print('sliced')\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0 and "sliced" in run.stdout, run.stderr[-2000:]
