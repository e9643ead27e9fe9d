r"""Patch-AGOP of every conv layer of VGG11 and ResNet18: one shared pass against one layer at a time.

The engine reads every conv layer's factors ``W`` and ``G`` (:math:`\mathrm{AGOP} = W^\top G W`,
:class:`agop.features.FactoredAGOP`) from the same backward passes and forms no ``q x q``
matrix (every similarity of the ansatz needs only the factors); the reference
feeds explicit patch variables through the network and differentiates, one layer at a time, as
the paper's original code did (:mod:`agop_book.bench._compare`). Both run on the same images and
outputs, and the results must agree. Random (torchvision-initialised) weights: the cost does not depend on the weights.

* ``paper`` on the CPU: 2 images of 224 x 224; the sketch with k = 64 probes over all 1000
  outputs (timed alone), and exact over the first 10 outputs against the reference.
* ``paper`` on a GPU: 16 images of 224 x 224, exact over all 1000 outputs (timed alone), and
  exact over the first 10 outputs against the reference.
* ``quick``: 2 images of 64 x 64 and the first 2 outputs (no sketch row), to keep the whole
  benchmark suite within a few minutes on 2 CPU cores.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from agop.features import conv_layers, patch_agop
from agop_book.bench import Result, benchmark, measure
from agop_book.bench._compare import engine_against_reference
from agop_book.pretrained import load_model

MODELS = ("vgg11", "resnet18")


def _setting(size: str, device: torch.device) -> dict:
    if size == "quick":
        return dict(n=2, pixels=64, outputs=2, sketch=None, all_outputs=False)
    if device.type == "cuda":
        return dict(n=16, pixels=224, outputs=10, sketch=None, all_outputs=True)
    return dict(n=2, pixels=224, outputs=10, sketch=64, all_outputs=False)


def _model(name: str, device: torch.device) -> torch.nn.Module:
    return load_model(name, pretrained=False, seed=0, device=device)


def _rows(name: str, size: str, device: torch.device, s: dict) -> Iterator[Result]:
    model = _model(name, device)
    n_layers = len(conv_layers(model))
    X = torch.randn(
        s["n"], 3, s["pixels"], s["pixels"], generator=torch.Generator().manual_seed(0)
    ).to(device)
    shape = f"n={s['n']}, {s['pixels']}x{s['pixels']}"
    if size == "paper" and (s["sketch"] or s["all_outputs"]):
        seconds, peak, _ = measure(
            lambda: patch_agop(model, X, sketch=s["sketch"], device=device, factored=True),
            device,
            repeats=1,
        )
        how = (
            f"sketch k={s['sketch']}, all 1000 outputs"
            if s["sketch"]
            else "exact, all 1000 outputs"
        )
        yield Result(
            problem=f"{name}: {n_layers} conv layers, {shape}, {how}",
            size=size,
            seconds=seconds,
            peak_mb=peak,
            notes="engine only, one shared pass",
        )
    yield engine_against_reference(
        model,
        X,
        range(s["outputs"]),
        device,
        size=size,
        repeats=3,  # medians of 3 runs of each path
        problem=f"{name}: {n_layers} conv layers, {shape}, exact, {s['outputs']} outputs",
        notes="quick: two 64x64 images and 2 outputs" if size == "quick" else "",
        factored=True,
    )


@benchmark("pretrained")
def pretrained(size: str, device: torch.device) -> Iterator[Result]:
    s = _setting(size, device)
    for name in MODELS:
        yield from _rows(name, size, device, s)
