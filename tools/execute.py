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

Replies are waited for in one-second polls (:func:`poll_in_slices`). nbclient waits for a
kernel's reply with pyzmq's asyncio ``poll(timeout)``, which is woken by the socket's file
descriptor; a ZeroMQ descriptor signals edges, and a missed edge leaves the poll asleep with the
reply already queued until its timer fires, when pyzmq's final non-blocking ``poll(0)`` finds it.
That is the stall this project saw: a cell that takes seconds sat for exactly its 600 s timeout
and then went on without an error. Polling in slices bounds a missed wake-up to one slice. The
book build applies the same patch (tools/agop_sphinx.py), since myst-nb executes through
nbclient too; nbval uses jupyter_client's blocking client, whose synchronous poll does not miss
events.

The book build has its own per-cell timeout (``execute.timeout`` in _config.yml) and nbval its
``--nbval-cell-timeout`` (Makefile).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from queue import Empty
from typing import Any

from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import run_sync


class CellStalled(RuntimeError):
    """A cell ran past its timeout, or its kernel died or stopped answering."""


SLICE = 1.0  # seconds: the longest a missed wake-up can delay a reply


def sliced_get_msg(
    get_msg: Callable[..., Awaitable[dict]], slice_s: float = SLICE
) -> Callable[..., Awaitable[dict]]:
    """``get_msg(timeout)`` of an asyncio channel, waiting in polls of at most ``slice_s``.

    Each poll that times out ends with a non-blocking check of the socket, so a message whose
    wake-up was missed is read at the end of its slice; ``Empty`` is raised only once the
    caller's whole ``timeout`` has passed (never, for ``timeout=None``).
    """

    async def get_msg_in_slices(timeout: float | None = None) -> dict:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = slice_s if deadline is None else deadline - time.monotonic()
            try:
                return await get_msg(timeout=max(0.0, min(slice_s, left)))
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    return get_msg_in_slices


def poll_in_slices() -> None:
    """Make every nbclient run wait for kernel messages in one-second polls (idempotent).

    Patches ``NotebookClient.async_start_new_kernel_client`` so that the shell and IOPub
    channels of each new kernel client read through :func:`sliced_get_msg`; this covers
    nbclient's ``execute`` as jupyter-cache and myst-nb call it.
    """
    if getattr(NotebookClient, "_polls_in_slices", False):
        return
    start = NotebookClient.async_start_new_kernel_client

    async def start_sliced(self: NotebookClient) -> Any:
        kc = await start(self)
        for channel in (kc.shell_channel, kc.iopub_channel):
            channel.get_msg = sliced_get_msg(channel.get_msg)
        return kc

    NotebookClient.async_start_new_kernel_client = start_sliced  # type: ignore[method-assign]
    NotebookClient.start_new_kernel_client = run_sync(start_sliced)  # type: ignore[method-assign]
    NotebookClient._polls_in_slices = True  # type: ignore[attr-defined]


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
    poll_in_slices()
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
