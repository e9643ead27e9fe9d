"""Where and how a computation runs: the profile, the device, seeds, and the footer report."""

from __future__ import annotations

import os
import platform
import random

import numpy as np
import torch

import agop
from agop.validation import check_seed

PROFILES = ("quick", "paper")


def profile() -> str:
    """The run profile: ``AGOP_PROFILE`` if set, else ``'quick'`` (on a GPU too).

    ``quick`` runs a chapter on 2 CPU cores in a few minutes on data that needs no download;
    ``paper`` runs at the paper's scale, best on a GPU, and downloads datasets and pretrained
    weights unless :func:`offline`. It is never chosen silently: set ``AGOP_PROFILE=paper``
    (or ``os.environ["AGOP_PROFILE"] = "paper"`` before a chapter's parameters cell).

    Examples:
        >>> import os
        >>> saved = os.environ.get("AGOP_PROFILE", "")
        >>> os.environ["AGOP_PROFILE"] = "Paper"
        >>> profile()
        'paper'
        >>> os.environ["AGOP_PROFILE"] = ""  # unset: 'quick', whatever the device
        >>> profile()
        'quick'
        >>> os.environ["AGOP_PROFILE"] = saved
    """
    value = os.environ.get("AGOP_PROFILE", "").strip().lower()
    if not value:
        return "quick"
    if value not in PROFILES:
        raise ValueError(f"AGOP_PROFILE must be one of {PROFILES}, got {value!r}")
    return value


def offline() -> bool:
    """True when ``AGOP_OFFLINE`` is set to ``1``/``true``/``yes``: nothing is downloaded.

    CI sets it. Then ``load_dataset(..., download=True)`` and ``load_model(...,
    allow_download=True)`` read only what is on disk and raise their ``DatasetNotAvailable`` /
    ``WeightsUnavailable`` error for what is missing, without touching the network.

    Examples:
        >>> import os
        >>> saved = os.environ.get("AGOP_OFFLINE", "")
        >>> os.environ["AGOP_OFFLINE"] = "Yes"
        >>> offline()
        True
        >>> os.environ["AGOP_OFFLINE"] = "0"
        >>> offline()
        False
        >>> os.environ["AGOP_OFFLINE"] = saved
    """
    value = os.environ.get("AGOP_OFFLINE", "").strip().lower()
    if value in ("", "0", "false", "no"):
        return False
    if value in ("1", "true", "yes"):
        return True
    raise ValueError(f"AGOP_OFFLINE must be 1/true/yes or 0/false/no, got {value!r}")


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


def environment_report(**seeds: int) -> str:
    """The footer every chapter prints: profile, seeds, versions and device, one fact a line.

    Examples:
        >>> report = environment_report(data=0, init=1)
        profile      ...
        seeds        data=0, init=1
        ...
        >>> len(report.splitlines())
        10
    """
    import matplotlib
    import sklearn
    import torchvision

    device = default_device()
    gpu = torch.cuda.get_device_name(0) if device.type == "cuda" else "none"
    lines = [
        f"profile      {profile()}",
        f"seeds        {', '.join(f'{k}={v}' for k, v in seeds.items()) or 'none'}",
        f"device       {device.type} (GPU: {gpu}; CPU threads: {torch.get_num_threads()})",
        f"agop         {agop.__version__}",
        f"torch        {torch.__version__}",
        f"torchvision  {torchvision.__version__}",
        f"numpy        {np.__version__}",
        f"scikit-learn {sklearn.__version__}",
        f"matplotlib   {matplotlib.__version__}",
        f"python       {platform.python_version()} on {platform.machine()}",
    ]
    report = "\n".join(lines)
    print(report)
    return report
