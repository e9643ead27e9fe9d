"""Contention on purpose: ``N`` bounded busy processes beside a benchmark.

``python -m agop.bench --busy N`` runs its entries while ``N`` processes spin on the CPU, as
another user's work would; each stops on its own after ``limit`` seconds even if this
process dies, and all are stopped (and reaped) when the block ends.
"""

from __future__ import annotations

import subprocess
import sys

#: a busy process spins until this many seconds have passed, whatever happens to its parent
DEFAULT_LIMIT = 3600.0

_SPIN = (
    "import time\n"
    "end = time.monotonic() + {limit}\n"
    "while time.monotonic() < end:\n"
    "    sum(range(1000))\n"
)


class Busy:
    """Start ``n`` busy processes on entering, stop them on leaving (``n = 0``: nothing)."""

    def __init__(self, n: int, limit: float = DEFAULT_LIMIT):
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ValueError(f"busy must be a non-negative integer, got {n!r}")
        if not limit > 0:
            raise ValueError(f"limit must be a positive number of seconds, got {limit!r}")
        self.n, self.limit = n, float(limit)
        self.processes: list[subprocess.Popen] = []

    def __enter__(self) -> Busy:
        code = _SPIN.format(limit=self.limit)
        self.processes = [
            subprocess.Popen(
                [sys.executable, "-c", code],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(self.n)
        ]
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
