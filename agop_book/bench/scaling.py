"""Scaling of the CNTK kernel matrix and its patch-AGOP with the number of images ``n``.

:func:`scaling_curve` times ``K(X, X)`` (or the patch-AGOP of ``f = K(., X) dual_coef`` over a fixed
set of sample images) for growing ``n``, tiled inside the default memory budget and, where it
fits, as one untiled block (every pair of images at once). Each point runs in a fresh Python
process, so its peak memory is that process's own high-water mark (``VmHWM``: the
interpreter and torch, about 0.3-0.5 GB, plus the computation) and no point inherits another's
heap. :func:`fit_exponent` fits ``value ~ n^p`` on a log-log scale.

    python -m agop_book.bench.scaling --problem K --n 500 --path tiled   # one point, as JSON
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import subprocess
import sys
import time
from collections.abc import Sequence

import numpy as np
import torch

from agop.kernels import _driver, cntk, cntk_agop
from agop.runtime import default_device
from agop.validation import all_finite
from agop_book.bench import _peak_rss_bytes


@dataclasses.dataclass
class ScalingPoint:
    """One size of a scaling curve."""

    problem: str  # "K(X,X)" or "patch-AGOP"
    path: str  # "tiled" or "untiled"
    n: int
    seconds: float
    peak_mb: float  # the process's peak resident memory (CPU) or CUDA max allocated


PROBLEMS = {"K": "K(X,X)", "AGOP": "patch-AGOP"}


def _peak_rss_mb() -> float:
    """This process's peak resident memory in MB: ``VmHWM`` (reset by exec, unlike
    ``ru_maxrss``, which a child inherits from the parent it was forked from)."""
    peak = _peak_rss_bytes()
    if peak is not None:
        return peak / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10  # kB on Linux


def _point(
    problem: str,
    n: int,
    path: str,
    shape,
    patch_size: int,
    depth: int,
    n_samples: int,
    n_outputs: int,
    device: str | None,
    seed: int,
) -> dict:
    dev = default_device(device)
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, *shape, generator=g).to(dev)
    budget = None  # tiled: the default budget and cache-sized tiles
    if path == "untiled":  # one block holding every pair of images: the dense reference
        _driver.CPU_TILE_BYTES = 2**62
        budget = 2**62
    if problem == "K":

        def call():
            return cntk(X, None, patch_size, depth, device=dev, max_memory=budget)
    else:
        dual_coef = torch.randn(n, n_outputs, generator=g).to(dev)

        def call():
            return cntk_agop(
                X[:n_samples], X, dual_coef, patch_size, depth, device=dev, max_memory=budget
            )

    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    t0 = time.perf_counter()
    out = call()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    seconds = time.perf_counter() - t0
    if not all_finite(out):
        raise RuntimeError("non-finite kernel values")
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated(dev) / 2**20
    else:
        peak = _peak_rss_mb()
    return {"problem": PROBLEMS[problem], "path": path, "n": n, "seconds": seconds, "peak_mb": peak}


def scaling_curve(
    ns: Sequence[int],
    *,
    problem: str = "K",
    path: str = "tiled",
    shape: Sequence[int] = (1, 28, 28),
    patch_size: int = 3,
    depth: int = 1,
    n_samples: int = 20,
    n_outputs: int = 10,
    device: str | None = None,
    seed: int = 0,
) -> list[ScalingPoint]:
    """Time and peak memory of the CNTK ``K(X, X)`` (``problem="K"``) or of its patch-AGOP over
    ``n_samples`` images with ``n_outputs`` outputs (``problem="AGOP"``), for each ``n``.

    ``path="tiled"`` runs inside the default memory budget; ``path="untiled"`` evaluates every
    pair of images in one block, whose memory grows like ``n^2`` for ``K(X, X)``: keep its ``n``
    small. float32 images of uniform noise (the cost does not depend on the pixels).
    """
    if problem not in PROBLEMS:
        raise ValueError(f"problem must be one of {sorted(PROBLEMS)}, got {problem!r}")
    if path not in ("tiled", "untiled"):
        raise ValueError(f"path must be 'tiled' or 'untiled', got {path!r}")
    points = []
    for n in ns:
        cmd = [
            sys.executable,
            "-m",
            "agop_book.bench.scaling",
            "--problem",
            problem,
            "--n",
            str(n),
            "--path",
            path,
            "--shape",
            *map(str, shape),
            "--patch-size",
            str(patch_size),
            "--depth",
            str(depth),
            "--n-samples",
            str(n_samples),
            "--n-outputs",
            str(n_outputs),
            "--seed",
            str(seed),
        ]
        if device is not None:
            cmd += ["--device", str(device)]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"scaling point n={n} failed:\n{result.stderr[-2000:]}")
        points.append(ScalingPoint(**json.loads(result.stdout.strip().splitlines()[-1])))
    return points


def fit_exponent(ns: Sequence[float], values: Sequence[float]) -> float:
    """The slope ``p`` of the least-squares line through ``(log n, log value)``: value ~ n^p."""
    n_arr, v_arr = np.asarray(ns, float), np.asarray(values, float)
    if len(n_arr) < 2 or np.any(n_arr <= 0) or np.any(v_arr <= 0):
        raise ValueError("fit_exponent needs at least two points with positive n and values")
    slope, _ = np.polyfit(np.log(n_arr), np.log(v_arr), 1)
    return float(slope)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m agop_book.bench.scaling")
    parser.add_argument("--problem", choices=sorted(PROBLEMS), default="K")
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--path", choices=["tiled", "untiled"], default="tiled")
    parser.add_argument("--shape", type=int, nargs=3, default=[1, 28, 28])
    parser.add_argument("--patch-size", type=int, default=3)
    parser.add_argument("--depth", type=int, default=1)
    parser.add_argument("--n-samples", type=int, default=20)
    parser.add_argument("--n-outputs", type=int, default=10)
    parser.add_argument("--device", default=None)
    parser.add_argument("--seed", type=int, default=0)
    a = parser.parse_args(argv)
    print(
        json.dumps(
            _point(
                a.problem,
                a.n,
                a.path,
                tuple(a.shape),
                a.patch_size,
                a.depth,
                a.n_samples,
                a.n_outputs,
                a.device,
                a.seed,
            )
        )
    )


if __name__ == "__main__":
    main()
