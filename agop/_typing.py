"""Type aliases shared by the package's annotations.

* ``Tensor`` -- a ``torch.Tensor``;
* ``ArrayLike`` -- what :func:`agop.validation.as_tensor` accepts: a tensor, a numpy array or
  nested sequences of numbers;
* ``Device`` -- a torch device or its name (``"cpu"``, ``"cuda:0"``); ``Device | None`` lets
  the package choose (CUDA when available);
* ``DType`` -- a torch dtype or its name (``"float32"``);
* ``IntPair`` -- a size given once for both spatial axes or as ``(height, width)``;
* ``RandomState`` -- scikit-learn's ``random_state``: ``None``, an integer seed or a numpy
  ``RandomState``.

Examples:
    >>> import torch
    >>> from agop._typing import Device
    >>> def where(device: Device | None = None) -> torch.device:
    ...     return torch.device(device or "cpu")
    >>> where("cpu")
    device(type='cpu')
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy as np
import torch

Tensor: TypeAlias = torch.Tensor
ArrayLike: TypeAlias = "torch.Tensor | np.ndarray | Sequence[Any] | float"
Device: TypeAlias = "str | torch.device"
DType: TypeAlias = "torch.dtype | str"
IntPair: TypeAlias = "int | tuple[int, ...]"
RandomState: TypeAlias = "int | np.integer | np.random.RandomState | None"

__all__ = ["Tensor", "ArrayLike", "Device", "DType", "IntPair", "RandomState"]
