r"""One shared pass against one layer at a time: the comparison behind ``cnn_agop`` and
``pretrained``.

The engine (:func:`agop.features.patch_agop`) reads :math:`W^\top G W` for every conv layer from the
same backward passes; the reference (:func:`agop_book.reference.brute_force_patch_agop`) builds
explicit patches and differentiates through them, one layer at a time. Both run on the same
images and outputs, and their results must agree to ``TOLERANCE``. Beside the times, each row
counts the arithmetic of both paths (``torch.utils.flop_counter``: matrix products and
convolutions, forward and backward; one untimed call each, which also serves as the warm-up):
their ratio is what a shared pass can gain at best, since part of each layer's work -- forming
its ``q x q`` matrix -- is paid once per layer by both paths.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

import torch

from agop.features import conv_layers, patch_agop
from agop_book.bench import Result, count_flops, measure
from agop_book.reference import brute_force_patch_agop

#: largest relative difference (Frobenius) between engine and reference allowed in float32
TOLERANCE = 1e-5


def engine_against_reference(
    model: torch.nn.Module,
    X: torch.Tensor,
    outputs: Sequence[int] | None,
    device: torch.device,
    *,
    problem: str,
    size: str,
    repeats: int = 3,
    notes: str = "",
    factored: bool = False,
) -> Result:
    """Time (the median of ``repeats`` runs each, the two paths alternating), peak memory and
    arithmetic of both paths on every conv layer of ``model``.

    ``factored=True`` times the engine returning each layer's factors ``W, G``
    (:class:`agop.features.FactoredAGOP`), what every similarity needs; the ``q x q``
    matrices are formed afterwards, untimed, only to compare with the reference.
    """
    names = list(conv_layers(model))

    def engine():
        return patch_agop(model, X, outputs=outputs, device=device, factored=factored)

    def reference():
        return {name: brute_force_patch_agop(model, X, name, outputs=outputs) for name in names}

    # the runs alternate, so that a slow spell of a shared machine falls on both paths; the
    # engine's peak memory is that of its first run, before the reference has run at all
    flops = count_flops(engine)
    seconds, peak, fast = measure(engine, device, repeats=1, warmup=0)
    times = [seconds]
    ref_flops = count_flops(reference)
    ref_times, ref_peak = [], 0.0
    for i in range(repeats):
        ref_run, run_peak, slow = measure(reference, device, repeats=1, warmup=0)
        ref_times.append(ref_run)
        ref_peak = max(ref_peak, run_peak)
        if i + 1 < repeats:
            times.append(measure(engine, device, repeats=1, warmup=0)[0])
    seconds, ref_seconds = statistics.median(times), statistics.median(ref_times)
    if factored:
        fast = {k: f.dense() for k, f in fast.items()}
    error = max(float((fast[k] - slow[k]).norm() / slow[k].norm()) for k in names)
    if error > TOLERANCE:
        raise AssertionError(f"{problem}: engine and brute force disagree (relative {error:.2e})")
    return Result(
        problem=problem,
        size=size,
        seconds=seconds,
        peak_mb=peak,
        gflops=flops / seconds / 1e9,
        speedup=ref_seconds / seconds,
        reference_seconds=ref_seconds,
        reference_peak_mb=ref_peak,
        arithmetic_ratio=ref_flops / flops,
        notes=(
            ("factors W, G per layer; " if factored else "")
            + f"max relative difference to brute force {error:.1e} (float32); "
            f"arithmetic {flops / 1e9:.1f} vs {ref_flops / 1e9:.1f} GFLOP "
            f"(ratio {ref_flops / flops:.1f})" + (f"; {notes}" if notes else "")
        ),
    )
