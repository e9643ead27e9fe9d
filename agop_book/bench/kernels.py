"""Patch kernels: ``K(X, X)`` of the deep CNTK and the patch-AGOP of a fitted predictor; the
same two for every other registered kernel (``agop.kernels.objects.KERNELS``: Laplace, RBF,
CNNGP) on ``1 x 28 x 28`` at ``n = 400`` (``paper``: also ``n = 2000``), whose notes say
whether its patch-AGOP is a hand-derived fast path or autograd through its block.

Problems (float32, ``k = 3``): images ``1 x 28 x 28`` and ``3 x 32 x 32`` (uniform noise; the
cost does not depend on the pixels), CNTK of depth 1 and 3, ``n`` training images; the AGOP is
that of ``f(x) = K(x, X) dual_coef`` with 10 outputs over 20 sample images. ``quick`` runs the
paper's reference setting ``n = 400``, depth 3 (and ``n = 100`` against the untiled path);
``paper`` runs ``n`` in {100, 200, 400, 1000, 2000} and depth 1 and 3.

The reference path is the same computation in one untiled block (every pair of images at once,
no cache-sized tiles), where it fits in memory (``n <= 200``).
For scale: the paper's pipeline (Neural Tangents on patch-expanded images) took 4.4 s for
``K(X, X)`` and 23 s for the AGOP on ``1 x 28 x 28`` at ``n = 400``, depth 3, and 17 s and
33 s on ``3 x 32 x 32`` (as reported to us; other hardware).

GFLOP/s counts the first layer's matmul (``2 q`` per pair and position), 12 operations per
pair and position for each ReLU layer (atan2 and sqrt counted as one each) and
``4 (k - 1)`` per output position for the two window sums between layers; the AGOP adds
twice the forward's elementwise work for the backward and ``4 C q`` per pair and position for
the gradient contraction. Pairs of ``K(X, X)``: ``n^2 / 2`` (one triangle of tiles).

Threads: every row runs with the per-call choice of :func:`agop.kernels.choose_threads`
(worker threads sharing the tiles, each running its torch operations on one thread; every
usable core unless set; the notes say how many); ``quick`` adds ``K(X, X)`` at ``n = 400`` on
``1 x 28 x 28`` with one thread and with every core, forced, so that one run gives both ratios
(``--busy N`` runs it all beside ``N`` busy processes). The ``f32-f64`` column is
``max |K32 - K64| / max |K64|`` against the same computation in float64 (untimed,
``n <= 400``).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

import torch

from agop.kernels import Kernel, _driver, cntk, cntk_agop, get_kernel
from agop.kernels.objects import KERNELS
from agop_book.bench import Result, benchmark, measure

#: largest n at which the float64 result is also computed (untimed) for the f32-f64 column
FLOAT64_UP_TO = 400

SHAPES = {"1x28x28": (1, 28, 28), "3x32x32": (3, 32, 32)}
K_SIZE, N_SAMPLES, N_CLASSES = 3, 20, 10


def _positions(H: int, W: int, depth: int) -> list[int]:
    return [(H - l * (K_SIZE - 1)) * (W - l * (K_SIZE - 1)) for l in range(1, depth + 1)]


def _flops_per_pair(shape, depth: int, agop: bool) -> float:
    c, H, W = shape
    q = c * K_SIZE**2
    P = _positions(H, W, depth)
    elementwise = 12 * sum(P) + 4 * (K_SIZE - 1) * sum(P[1:])
    if agop:
        return 2 * q * P[0] + 3 * elementwise + 4 * N_CLASSES * q * P[0]
    return 2 * q * P[0] + elementwise


def _untiled(fn):
    """Run ``fn`` with a single tile (no cache-sized tiles, unlimited budget)."""

    def run():
        saved = _driver.CPU_TILE_BYTES
        _driver.CPU_TILE_BYTES = 2**62
        try:
            return fn()
        finally:
            _driver.CPU_TILE_BYTES = saved

    return run


def _float64_difference(fn64, out: torch.Tensor) -> float:
    ref = fn64()
    return float((out.double() - ref).abs().max() / ref.abs().max())


def _thread_rows(
    size: str, device: torch.device, X: torch.Tensor, auto_seconds: float
) -> Iterator[Result]:
    """``K(X, X)`` with one thread and with every usable core, forced: the ratios of the
    per-call choice to both, from the same run."""
    cores = _driver._usable_cores()
    for threads in sorted({1, cores}):
        seconds, peak, _ = measure(
            partial(cntk, X, None, K_SIZE, 3, device=device, threads=threads), device, repeats=1
        )
        yield Result(
            problem=f"CNTK K(X,X), 1x28x28, depth 3, n={X.shape[0]}, threads={threads} (forced)",
            size=size,
            seconds=seconds,
            peak_mb=peak,
            notes=f"per-call choice took {auto_seconds:.3f} s "
            f"({auto_seconds / seconds:.2f}x this row)",
        )


def _cases(size: str):
    if size == "quick":
        return [(name, 3, 400, False) for name in SHAPES] + [("1x28x28", 3, 100, True)]
    return [
        (name, depth, n, n <= 200)
        for name in SHAPES
        for depth in (1, 3)
        for n in (100, 200, 400, 1000, 2000)
    ]


@benchmark("kernels")
def kernels(size: str, device: torch.device) -> Iterator[Result]:
    g = torch.Generator().manual_seed(0)
    for name, depth, n, with_reference in _cases(size):
        shape = SHAPES[name]
        X = torch.rand(n, *shape, generator=g).to(device)
        dual_coef = torch.randn(n, N_CLASSES, generator=g).to(device)
        S = X[:N_SAMPLES]
        repeats = 1 if size == "quick" or n > 400 else 3
        problems: list[tuple[str, Any, Any, float]] = [
            (
                "K(X,X)",
                lambda X=X, d=depth: cntk(X, None, K_SIZE, d, device=device),
                lambda X=X, d=depth: cntk(X.double(), None, K_SIZE, d, device=device),
                n * n / 2 * _flops_per_pair(shape, depth, False),
            ),
            (
                f"patch-AGOP ({N_SAMPLES} images, {N_CLASSES} outputs)",
                lambda X=X, S=S, a=dual_coef, d=depth: cntk_agop(S, X, a, K_SIZE, d, device=device),
                lambda X=X, S=S, a=dual_coef, d=depth: cntk_agop(
                    S.double(), X.double(), a.double(), K_SIZE, d, device=device
                ),
                N_SAMPLES * n * _flops_per_pair(shape, depth, True),
            ),
        ]
        for label, fn, fn64, flops in problems:
            threads = _driver.choose_threads() if device.type == "cpu" else None
            seconds, peak, out = measure(fn, device, repeats=repeats)
            row = Result(
                problem=f"CNTK {label}, {name}, depth {depth}, n={n}",
                size=size,
                seconds=seconds,
                peak_mb=peak,
                gflops=flops / seconds / 1e9,
                notes="float32, k=3; peak = whole process"
                + (f"; {threads} worker thread(s)" if threads else ""),
            )
            if n <= FLOAT64_UP_TO:
                row.float64_difference = _float64_difference(fn64, out)
            if with_reference and device.type == "cpu":
                ref_seconds, ref_peak, ref = measure(_untiled(fn), device, repeats=1)
                err = float((ref - out).norm() / ref.norm())
                if err > 1e-5:
                    raise AssertionError(f"tiled and untiled disagree: {err:.1e}")
                row.reference_seconds, row.reference_peak_mb = ref_seconds, ref_peak
                row.speedup = ref_seconds / seconds
                row.notes += f"; reference: one untiled block (difference {err:.0e})"
            yield row
            if (
                size == "quick"
                and label == "K(X,X)"
                and name == "1x28x28"
                and n == 400
                and device.type == "cpu"
            ):
                yield from _thread_rows(size, device, X, seconds)
    yield from _other_kernels(size, device)


def _other_kernels(size: str, device: torch.device) -> Iterator[Result]:
    """``K(X, X)`` and the patch-AGOP of every registered kernel but the CNTK (default
    parameters, ``k = 3``) on ``1 x 28 x 28`` images."""
    g = torch.Generator().manual_seed(1)
    for n in (400,) if size == "quick" else (400, 2000):
        X = torch.rand(n, *SHAPES["1x28x28"], generator=g).to(device)
        dual_coef = torch.randn(n, N_CLASSES, generator=g).to(device)
        S = X[:N_SAMPLES]
        for name in sorted(set(KERNELS) - {"cntk"}):
            kernel = get_kernel(name, K_SIZE, device=device)
            fast = type(kernel).grad_block is not Kernel.grad_block
            how = "hand-derived patch-AGOP" if fast else "patch-AGOP by autograd through the block"
            problems: list[tuple[str, Any, Any]] = [
                ("K(X,X)", lambda X=X, k=kernel: k(X), lambda X=X, k=kernel: k(X.double())),
                (
                    f"patch-AGOP ({N_SAMPLES} images, {N_CLASSES} outputs)",
                    lambda X=X, S=S, a=dual_coef, k=kernel: k.agop(S, X, a),
                    lambda X=X, S=S, a=dual_coef, k=kernel: k.agop(
                        S.double(), X.double(), a.double()
                    ),
                ),
            ]
            for label, fn, fn64 in problems:
                seconds, peak, out = measure(fn, device, repeats=1 if size == "quick" else 3)
                row = Result(
                    problem=f"{type(kernel).__name__} {label}, 1x28x28, n={n}",
                    size=size,
                    seconds=seconds,
                    peak_mb=peak,
                    notes=f"float32, k=3, default parameters; {how}",
                )
                if n <= FLOAT64_UP_TO:
                    row.float64_difference = _float64_difference(fn64, out)
                yield row
