"""Patch-AGOP of every conv layer of a 4-layer CNN: the engine against the brute-force path.

The engine (:func:`agop.features.patch_agop`) reads ``W^T G W`` for all layers from the same
backward passes, ten output directions at once; the reference
(:func:`agop.reference.brute_force_patch_agop`) differentiates through explicit patch
variables, one layer and one output at a time. Problem: 256 images ``3 x 32 x 32``, 10 outputs,
four 3 x 3 conv layers of width 64 (``same`` padding) with max-pooling after the second and
fourth; ``quick`` uses 32 images.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from agop.bench import Result, benchmark, measure
from agop.features import patch_agop
from agop.nets import SimpleCNN
from agop.reference import brute_force_patch_agop

N_IMAGES = {"quick": 32, "paper": 256}


def four_layer_cnn(seed: int = 0) -> torch.nn.Module:
    """``SimpleCNN`` of depth 4, width 64, max-pooling, ``same`` padding, 10 outputs."""
    return SimpleCNN(3, 10, 32, depth=4, width=64, pool="max", padding="same", seed=seed).eval()


@benchmark("cnn_agop")
def cnn_agop(size: str, device: torch.device) -> Iterator[Result]:
    n = N_IMAGES[size]
    model = four_layer_cnn().to(device)
    X = torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(0)).to(device)
    names = [f"convs.{i}" for i in range(4)]

    seconds, peak, fast = measure(lambda: patch_agop(model, X, device=device), device,
                                  repeats=3)
    ref_seconds, ref_peak, slow = measure(
        lambda: {name: brute_force_patch_agop(model, X, name) for name in names}, device,
        repeats=1, warmup=0)
    error = max(float((fast[k] - slow[k]).norm() / slow[k].norm()) for k in names)
    # float32 sums of n P C outer products in two different orders: round-off grows like
    # sqrt(n P) eps (about 1e-4 at n = 256); the float64 check below is the exact one
    if error > 1e-3:
        raise AssertionError(f"engine and brute force disagree: relative error {error:.2e}")
    model64, X64 = four_layer_cnn().to(device).double(), X[:4].double()
    fast64 = patch_agop(model64, X64, device=device)
    error64 = max(float((fast64[k] - brute_force_patch_agop(model64, X64, k)).norm()
                        / fast64[k].norm()) for k in names)
    if error64 > 1e-10:
        raise AssertionError(f"engine and brute force disagree in float64: {error64:.2e}")
    yield Result(problem=f"patch-AGOP, 4 conv layers, n={n}, 32x32x3, 10 outputs", size=size,
                 seconds=seconds, peak_mb=peak, speedup=ref_seconds / seconds,
                 reference_seconds=ref_seconds, reference_peak_mb=ref_peak,
                 notes=f"max relative difference to brute force {error:.1e} (float32), "
                       f"{error64:.1e} (float64, 4 images)")
