"""ConvRFM: one full round of Algorithm 1 (kernel matrices, ridge sweep, patch-AGOP).

Digits-sized images (sklearn's digits, ``1 x 8 x 8``): ``n = 1000`` at ``--size paper``,
``n = 200`` at ``--size quick``. Laplace with 7 x 7 patches and padding 3 (64 positions,
``q = 49``, the authors' edge-figure setting); CNTK of depth 2 with 3 x 3 VALID patches.
A round: ``K(X, X)`` and ``K(X_val, X)`` with ``M``, the ridge sweep on the validation split,
and the AGOP of the fitted predictor over the training images; the entry times a round at a
learned (non-identity) ``M``, which is the round every iteration after the first pays for.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F

from agop.data import one_hot, train_val_split
from agop.kernels import get_kernel
from agop.rfm import DEFAULT_RIDGES, fit_kernel_machine
from agop_book.bench import Result, benchmark, measure
from agop_book.data import digits

SETTINGS: dict[str, dict[str, Any]] = {
    "laplace": dict(patch_size=7, padding=3, options={}),
    "cntk": dict(patch_size=3, padding=0, options={"depth": 2}),
}


def _round(kernel, X, Y, X_val, Y_val, M):
    fit = fit_kernel_machine(kernel, X, Y, X_val, Y_val, M, DEFAULT_RIDGES)
    return kernel.agop(X, X, fit.dual_coef / fit.scale, M=M)


@benchmark("rfm")
def rfm_round(size: str, device: torch.device) -> Iterator[Result]:
    n = 1000 if size == "paper" else 200
    X, y = digits(n, seed=0, device=device, dtype=torch.float32)
    Y = one_hot(y, 10, dtype=torch.float32)
    for name, setting in SETTINGS.items():
        k, pad = setting["patch_size"], setting["padding"]
        Xp = F.pad(X, (pad,) * 4) if pad else X
        X_tr, Y_tr, X_va, Y_va = train_val_split(Xp, Y, 0.2, seed=0)
        kernel = get_kernel(name, patch_size=k, device=device, **setting["options"])
        q = X.shape[1] * k * k
        g = torch.Generator().manual_seed(0)
        B = torch.randn(q, q, generator=g).to(device)
        M = B @ B.T / q + torch.eye(q, device=device)  # a generic learned-looking metric
        M = M / torch.linalg.eigvalsh(M)[-1]
        seconds, peak, A = measure(
            partial(_round, kernel, X_tr, Y_tr, X_va, Y_va, M),
            device,
            repeats=1 if size == "quick" else 3,
            warmup=0 if size == "quick" else 1,
        )
        yield Result(
            problem=f"ConvRFM round, {name} (n={n}, k={k}, 8x8 digits, pad {pad})",
            size=size,
            seconds=seconds,
            peak_mb=peak,
            notes=f"q={q}; kernel fit + ridge sweep ({X_tr.shape[0]} train, "
            f"{X_va.shape[0]} val) + AGOP; finite={bool(torch.isfinite(A).all())}",
        )
