"""agop_book: the machinery of the book's chapters, built on the ``agop`` library.

One module per chapter holds that chapter's tasks, experiments, figures and explorer together:

* :mod:`agop_book.ch01_ansatz`: the ansatz report of any CNN (:func:`~agop_book.ch01_ansatz.verify_ansatz`);
* :mod:`agop_book.ch02_theorem`: Theorem 1 as code;
* :mod:`agop_book.ch03_pretrained`: the sketch's accuracy, layer views, the pretrained explorer;
* :mod:`agop_book.ch04_edges`: edge statistics of a feature operator and their controls;
* :mod:`agop_book.ch05_deep_convrfm`: the local-signal tasks and the comparison of CNTK,
  ConvRFM, Deep ConvRFM and the CNN (chapters 05, 06 and 07 use them);
* :mod:`agop_book.ch06_local_signals`: accuracy against noise, the noise explorer;
* :mod:`agop_book.ch07_other_accounts`: emergence of localised receptive fields, local kernel
  renormalization in Bayesian CNNs, Markov-chain diagnostics.

Beside them, the helpers several chapters share: :mod:`agop_book.notebook` (the profile, glue,
claim, announce, the footer's environment report), :mod:`agop_book.data` (the named datasets:
digits, photographs, MNIST, CIFAR, ...), :mod:`agop_book.nets` (small CNNs, one training loop,
the CNN baseline), :mod:`agop_book.views` (what each layer reads, feature maps through the
convolution, top filters), :mod:`agop_book.plots` (shared figures), :mod:`agop_book.pretrained`
(torchvision's weights), :mod:`agop_book.reference` (the brute-force patch-AGOP that tests and
benchmarks check :func:`agop.features.patch_agop` against), and the benchmarks,
:mod:`agop_book.bench` (``python -m agop_book.bench --size quick``).

A chapter module imports from ``agop``, from the shared helpers and from an *earlier* chapter's
module, never a later one; ``agop`` imports nothing from here (``tests/test_layers.py``).

Explorers (ipywidgets core controls, as Colab supports) redraw a figure with the same function
that draws the chapter's static twin, and open on the view the static twin shows. What a redraw
computes is cached by its inputs, sliders whose recompute is expensive update on release
(``continuous_update=False``), and one change of a control redraws once;
``python -m agop_book.bench --only widgets`` measures each explorer's answer time.

``import agop_book`` is light: each module is imported on first use.

Examples:
    >>> import agop_book
    >>> agop_book.notebook.glue.__module__
    'agop_book.notebook'
"""

from __future__ import annotations

import importlib
from typing import Any

MODULES = (
    "notebook",
    "data",
    "nets",
    "views",
    "plots",
    "pretrained",
    "reference",
    "bench",
    "ch01_ansatz",
    "ch02_theorem",
    "ch03_pretrained",
    "ch04_edges",
    "ch05_deep_convrfm",
    "ch06_local_signals",
    "ch07_other_accounts",
)

__all__ = list(MODULES)


def __getattr__(name: str) -> Any:
    if name not in MODULES:
        raise AttributeError(f"module 'agop_book' has no attribute {name!r}")
    return importlib.import_module(f"agop_book.{name}")


def __dir__() -> list[str]:
    return sorted(__all__)
