"""Where a computation runs: the device, seeds, and the CPU cache size that sizes chunks."""

from __future__ import annotations

import random

import numpy as np
import torch

from agop.validation import check_seed


def default_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` as a ``torch.device``; ``None`` means CUDA when available, else CPU.

    Examples:
        >>> default_device("CPU")
        device(type='cpu')
        >>> default_device().type in ("cpu", "cuda")
        True
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device.lower() if isinstance(device, str) else device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"device must be None, 'cpu', 'cuda', 'cuda:N' or a torch.device, got {device!r}"
        ) from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r} was asked for, but CUDA is not available here")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={str(device)!r} was asked for, but MPS is not available here")
    if device.type == "meta":
        raise ValueError(
            "device='meta' holds shapes without values: nothing can be computed there; "
            "use 'cpu' or 'cuda'"
        )
    return device


def _last_level_cache(fallback: int = 8 * 2**20) -> int:
    """Bytes of the CPU's largest cache (Linux sysfs), ``fallback`` where it cannot be read."""
    sizes = []
    for index in range(8):
        try:
            with open(f"/sys/devices/system/cpu/cpu0/cache/index{index}/size") as file:
                text = file.read().strip().upper()
        except OSError:
            continue
        scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1)
        digits = text.rstrip("KMG")
        if digits.isdigit():
            sizes.append(int(digits) * scale)
    return max(sizes, default=fallback)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a CPU ``torch.Generator`` seeded with ``seed``.

    Examples:
        >>> import torch
        >>> a = torch.rand(3, generator=seed_everything(7))
        >>> b = torch.rand(3, generator=seed_everything(7))
        >>> torch.equal(a, b)
        True
    """
    seed = check_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
