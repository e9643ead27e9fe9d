"""agop: feature learning in convolutional networks through the average gradient outer product.

The public API is re-exported here lazily, so ``import agop`` stays fast and each name is
imported from the module that holds its one idea on first use.

Examples:
    >>> import agop
    >>> agop.correlation is agop.linalg.correlation  # the same function, imported on first use
    True
    >>> agop.ConvRFM.__module__  # where it is defined and documented
    'agop.rfm'
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# name -> submodule that defines it
_EXPORTS: dict[str, str] = {
    # runtime
    "default_device": "agop.runtime",
    "seed_everything": "agop.runtime",
    # linear algebra on feature operators
    "psd_power": "agop.linalg",
    "psd_sqrt": "agop.linalg",
    "correlation": "agop.linalg",
    # patches and CNN feature operators
    "extract_patches": "agop.patches",
    "cnfm": "agop.features",
    "patch_agop": "agop.features",
    "feature_map": "agop.features",
    "null_baselines": "agop.features",
    # kernels and solvers
    "kernels": "agop",
    "solve": "agop",
    "data": "agop",
    "rfm": "agop",
    "deep_rfm": "agop",
    # estimators
    "ConvRFM": "agop.rfm",
    "RFM": "agop.rfm",
    "DeepConvRFM": "agop.deep_rfm",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'agop' has no attribute {name!r}")
    if module == "agop":
        return importlib.import_module(f"agop.{name}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
