r"""Patch-AGOP of every conv layer of a 4-layer CNN: the engine against the brute-force path.

The engine reads :math:`W^\top G W` for all layers from the same backward passes; the reference
differentiates through explicit patch variables, one layer at a time (see
:mod:`agop_book.bench._compare`). Problem: 256 images ``3 x 32 x 32``, 10 outputs,
four 3 x 3 conv layers of width 64 (``same`` padding) with max-pooling after the second and
fourth; ``quick`` uses 32 images.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from agop.features import patch_agop
from agop_book.bench import Result, benchmark
from agop_book.bench._compare import engine_against_reference
from agop_book.nets import SimpleCNN
from agop_book.reference import brute_force_patch_agop

N_IMAGES = {"quick": 32, "paper": 256}


def four_layer_cnn(seed: int = 0) -> torch.nn.Module:
    """``SimpleCNN`` of depth 4, width 64, max-pooling, ``same`` padding, 10 outputs."""
    return SimpleCNN(3, 10, 32, depth=4, width=64, pool="max", padding="same", seed=seed).eval()


@benchmark("cnn_agop")
def cnn_agop(size: str, device: torch.device) -> Iterator[Result]:
    n = N_IMAGES[size]
    model = four_layer_cnn().to(device)
    X = torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(0)).to(device)
    model64, X64 = four_layer_cnn().to(device).double(), X[:4].double()
    fast64 = patch_agop(model64, X64, device=device)
    error64 = max(
        float((A - brute_force_patch_agop(model64, X64, k)).norm() / A.norm())
        for k, A in fast64.items()
    )
    if error64 > 1e-10:
        raise AssertionError(f"engine and brute force disagree in float64: {error64:.2e}")
    yield engine_against_reference(
        model,
        X,
        None,
        device,
        size=size,
        problem=f"patch-AGOP, 4 conv layers, n={n}, 32x32x3, 10 outputs",
        notes=f"float64 on 4 images: {error64:.1e}",
    )
