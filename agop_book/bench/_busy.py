"""Contention on purpose: ``N`` bounded busy processes beside a benchmark.

``python -m agop_book.bench --busy N`` runs its entries while ``N`` processes spin on the CPU, as
another user's work would; each stops on its own after ``limit`` seconds even if this
process dies, and all are stopped (and reaped) when the block ends, or when starting one of
them fails. ``N`` is at most :func:`max_busy` (four per CPU core).
"""

from __future__ import annotations

import os
import subprocess
import sys

from agop.validation import check_int, check_real

#: a busy process spins until this many seconds have passed, whatever happens to its parent
DEFAULT_LIMIT = 3600.0

_SPIN = (
    "import time\n"
    "end = time.monotonic() + {limit}\n"
    "while time.monotonic() < end:\n"
    "    sum(range(1000))\n"
)


def max_busy() -> int:
    """The most busy processes allowed: four per CPU core (more only measures the scheduler)."""
    return 4 * (os.cpu_count() or 1)


class Busy:
    """Start ``n`` busy processes on entering, stop them on leaving (``n = 0``: nothing)."""

    def __init__(self, n: int, limit: float = DEFAULT_LIMIT):
        self.n = check_int(n, "busy", minimum=0, maximum=max_busy())
        self.limit = check_real(limit, "limit", minimum=0, strict_minimum=True)
        self.processes: list[subprocess.Popen] = []

    def __enter__(self) -> Busy:
        code = _SPIN.format(limit=self.limit)
        self.processes = []
        try:
            for _ in range(self.n):
                self.processes.append(
                    subprocess.Popen(
                        [sys.executable, "-c", code],
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
        except BaseException:  # the ones already started would spin for up to an hour
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for p in self.processes:
            p.terminate()
        for p in self.processes:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:  # pragma: no cover - terminate is enough
                p.kill()
                p.wait()
        self.processes = []

    def alive(self) -> int:
        """How many of the busy processes are running."""
        return sum(p.poll() is None for p in self.processes)
