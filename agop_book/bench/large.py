"""ConvRFM at scale on one machine: ``python -m agop_book.bench --size large``.

ConvRFM (Algorithm 1) with the CNTK of depth 3 on 3 x 3 patches, on ``1 x 28 x 28`` digits in
noise (:func:`digits_28`: scikit-learn's 8 x 8 digits, offline, resized to 28 x 28, plus
Gaussian noise of standard deviation ``NOISE``; training and test images come from disjoint
digit images), ``n`` in {2 500, 5 000, 10 000} training images, two AGOP rounds (three kernel fits), each AGOP over 1 000 sampled training images.
Each ``n`` runs in a fresh process, so its peak resident memory (``VmHWM``) is its own.

Memory: the run must stay within ``3 n^2 x 4 bytes + 1 GB`` (the kernel matrix is ``n^2``
float32 entries). ``K(X, X)`` is written tile by tile into one ``n x n`` buffer; the ridge
sweep (:func:`agop.solve.select_ridge`) gets ``2 n^2 x 4`` bytes beside it, too little for an
eigendecomposition (``4 n^2`` entries), so it factorises ``K + lambda I`` in place, one
Cholesky per ridge, in one preallocated buffer; the validation kernel is ``n_val x n`` and
the test predictions are computed 1 000 test images at a time; the kernels get
``KERNEL_MEMORY`` (256 MB) for their tiles and caches.

    python -m agop_book.bench.large --n 2500                # one point, as JSON on the last line
    python -m agop_book.bench.large --curve 600 1200 --json curve.json   # points, benchmark JSON
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence

import torch

from agop.data import one_hot
from agop.kernels import CNTK
from agop.rfm import DEFAULT_RIDGES, rfm_iterations
from agop.runtime import default_device
from agop_book.bench import Result, _check_json_path, benchmark, machine_description
from agop_book.bench.scaling import _peak_rss_mb
from agop_book.data import digits

NS = (2500, 5000, 10000)
PATCH, DEPTH, ROUNDS, AGOP_SAMPLES = 3, 3, 2, 1000
NOISE, SIDE = 0.5, 28
N_VAL_SHARE, N_TEST = 0.2, 2000
TEST_BLOCK = 1000
#: the kernels' own budget (``max_memory``): a third of it may cache per-image patch data,
#: about 34 kB an image here, so above ~2 500 images each tile recomputes its patches (no
#: slower at these sizes) instead of holding O(n) of them beside the n x n buffers
KERNEL_MEMORY = 256 * 2**20


def memory_target_mb(n: int) -> float:
    """``3 n^2 x 4 bytes + 1 GB`` in MB."""
    return (3 * n * n * 4 + 2**30) / 2**20


def digits_28(
    n: int,
    split: str,
    seed: int,
    device: str | torch.device | None,
    dtype: torch.dtype = torch.float32,
    side: int = SIDE,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` digits ``(n, 1, side, side)`` in noise and their labels: drawn with replacement
    from a fixed 75 % (``split="train"``) / 25 % (``"test"``) split of the 1 797 digit images,
    resized to ``side x side`` (28; values in [0, 1]), plus i.i.d. ``N(0, NOISE^2)`` noise
    per pixel."""
    X, y = digits(size=side, device="cpu", dtype=torch.float32)
    perm = torch.randperm(X.shape[0], generator=torch.Generator().manual_seed(0))
    cut = int(round(0.75 * X.shape[0]))
    pool = perm[:cut] if split == "train" else perm[cut:]
    g = torch.Generator().manual_seed(seed)
    idx = pool[torch.randint(len(pool), (n,), generator=g)]
    noisy = X[idx] + NOISE * torch.randn(n, 1, side, side, generator=g)
    return noisy.to(device=device, dtype=dtype), y[idx].to(device)


def run_point(
    n: int,
    device: str | None = None,
    seed: int = 0,
    progress: bool = True,
    *,
    n_test: int = N_TEST,
    agop_samples: int = AGOP_SAMPLES,
    side: int = SIDE,
    rounds: int = ROUNDS,
) -> dict:
    """Fit ConvRFM at ``n`` training images in this process (``n_val = 0.2 n`` more for
    validation); time per phase, accuracy and peak memory. ``side`` and ``rounds`` other than
    the benchmark's (28, 2) make a memory check: the ``n x n`` buffers, which set the peak,
    do not depend on the image size, and the AGOP rounds hold none."""
    dev = default_device(device)
    n_val = int(round(N_VAL_SHARE * n))
    X, y = digits_28(n + n_val, "train", seed, dev, side=side)
    X_test, y_test = digits_28(n_test, "test", seed + 1, dev, side=side)
    Y = one_hot(y, 10, dtype=torch.float32)
    X_tr, Y_tr, X_va, Y_va = X[:n], Y[:n], X[n:], Y[n:]
    kernel = CNTK(PATCH, DEPTH, device=dev, progress=progress, max_memory=KERNEL_MEMORY)
    start = time.perf_counter()
    result = rfm_iterations(
        kernel,
        X_tr,
        Y_tr,
        X_va,
        Y_va,
        n_iter=rounds,
        q=PATCH * PATCH,
        ridges=DEFAULT_RIDGES,
        agop_samples=agop_samples,
        generator=torch.Generator().manual_seed(seed),
        progress=progress,
        solve_memory=2 * n * n * 4,
    )
    fit_seconds = time.perf_counter() - start
    t0 = time.perf_counter()
    best = result.best_iter
    M = None if best == 0 else result.Ms[best]
    dual_coef = result.best_fit.dual_coef / result.best_fit.scale
    predictions = torch.cat(
        [
            kernel(X_test[i : i + TEST_BLOCK], X_tr, M=M) @ dual_coef
            for i in range(0, n_test, TEST_BLOCK)
        ]
    )
    test_acc = float((predictions.argmax(1).cpu() == y_test.cpu()).double().mean())
    test_seconds = time.perf_counter() - t0
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated(dev) / 2**20
    else:
        peak = _peak_rss_mb()
    h = result.history
    return {
        "n": n,
        "n_val": n_val,
        "n_test": n_test,
        "agop_samples": min(agop_samples, n),
        "side": side,
        "agop_rounds": rounds,
        "device": str(dev),
        "kernel_seconds": sum(r["kernel_seconds"] for r in h),
        "solve_seconds": sum(r["solve_seconds"] for r in h),
        "agop_seconds": sum(r["agop_seconds"] for r in h),
        "test_seconds": test_seconds,
        "total_seconds": fit_seconds + test_seconds,
        "rounds": [
            {
                k: r[k]
                for k in (
                    "iteration",
                    "val_acc",
                    "train_acc",
                    "ridge",
                    "kernel_seconds",
                    "solve_seconds",
                    "agop_seconds",
                )
            }
            for r in h
        ],
        "best_iter": best,
        "val_acc": h[best]["val_acc"],
        "test_acc": test_acc,
        "test_acc_fixed_kernel_val": h[0]["val_acc"],
        "peak_mb": peak,
        "memory_target_mb": memory_target_mb(n),
        "kernel_max_memory_mb": KERNEL_MEMORY / 2**20,
    }


def point_in_subprocess(
    n: int, device: str | None = None, seed: int = 0, *, side: int = SIDE, rounds: int = ROUNDS
) -> dict:
    """:func:`run_point` in a fresh Python process (its own peak memory); its progress bars
    go to this process's stderr."""
    cmd = [
        sys.executable,
        "-m",
        "agop_book.bench.large",
        "--n",
        str(n),
        "--seed",
        str(seed),
        "--side",
        str(side),
        "--rounds",
        str(rounds),
    ]
    if device is not None:
        cmd += ["--device", str(device)]
    done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"the large benchmark at n={n} failed (exit {done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _result(p: dict, size: str) -> Result:
    within = p["peak_mb"] <= p["memory_target_mb"]
    return Result(
        problem=f"ConvRFM, CNTK depth {DEPTH}, {PATCH}x{PATCH}, 1x{p['side']}x{p['side']}, "
        f"n={p['n']}, {p['agop_rounds']} AGOP rounds on {p['agop_samples']} images",
        size=size,
        seconds=p["total_seconds"],
        peak_mb=p["peak_mb"],
        notes=(
            f"K {p['kernel_seconds']:.0f} s, solve {p['solve_seconds']:.0f} s, "
            f"AGOP {p['agop_seconds']:.0f} s, test {p['test_seconds']:.0f} s; "
            f"test accuracy {p['test_acc']:.3f} (round {p['best_iter']}); peak "
            f"{p['peak_mb']:.0f} MB vs target {p['memory_target_mb']:.0f} MB "
            f"({'within' if within else 'OVER'})"
        ),
        details=p,
    )


@benchmark("large", sizes=("large",))
def large(size: str, device: torch.device) -> Iterator[Result]:
    for n in NS:
        yield _result(point_in_subprocess(n, str(device)), size)


def curve(
    ns: Sequence[int],
    json_path: str | None,
    device: str | None = None,
    command: str = "",
    *,
    side: int = SIDE,
    rounds: int = ROUNDS,
) -> list:
    """Points at each ``n`` (fresh processes), saved after each one as a benchmark JSON
    (``machine``, ``results``, ``complete``) readable by :func:`agop_book.bench.load_results`."""
    machine = machine_description(default_device(device), command)
    rows = []
    for n in ns:
        row = _result(point_in_subprocess(n, device, side=side, rounds=rounds), "large").as_dict()
        row["entry"] = "large"
        rows.append(row)
        if json_path:
            with open(json_path, "w") as fh:
                json.dump(
                    {"machine": machine, "results": rows, "complete": n == ns[-1]}, fh, indent=2
                )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m agop_book.bench.large")
    parser.add_argument("--n", type=int, default=None)
    parser.add_argument(
        "--curve", type=int, nargs="+", default=None, help="several n, each in a fresh process"
    )
    parser.add_argument("--json", default=None, help="with --curve: write the points here")
    parser.add_argument("--device", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument(
        "--side",
        type=int,
        default=SIDE,
        help="image side (a memory check: the n x n buffers do not depend on it)",
    )
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="AGOP rounds")
    a = parser.parse_args(argv)
    ns = a.curve if a.curve else [a.n]
    if ns == [None] or min(ns) < 10:
        parser.error(f"give --n or --curve with sizes of at least 10, got {ns}")
    if a.json:
        if not a.curve:
            parser.error("--json needs --curve (a single --n prints its point)")
        _check_json_path(parser, a.json)
    if a.curve:
        command = " ".join(
            ["python -m agop_book.bench.large", *(sys.argv[1:] if argv is None else argv)]
        )
        curve(a.curve, a.json, a.device, command, side=a.side, rounds=a.rounds)
        return
    print(
        json.dumps(
            run_point(
                a.n, a.device, a.seed, progress=not a.no_progress, side=a.side, rounds=a.rounds
            )
        )
    )


if __name__ == "__main__":
    main()
