"""Where and how a computation runs: the profile, the device, seeds, and the footer report."""

from __future__ import annotations

import os
import platform
import random
import sys

import numpy as np
import torch

PROFILES = ("quick", "paper")


def profile() -> str:
    """The run profile: ``AGOP_PROFILE`` if set, else ``'paper'`` with CUDA and ``'quick'`` without.

    ``quick`` runs a chapter on 2 CPU cores in a few minutes on data that needs no download;
    ``paper`` runs at the paper's scale on a GPU.
    """
    value = os.environ.get("AGOP_PROFILE", "").strip().lower()
    if not value:
        return "paper" if torch.cuda.is_available() else "quick"
    if value not in PROFILES:
        raise ValueError(f"AGOP_PROFILE must be one of {PROFILES}, got {value!r}")
    return value


def default_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` as a ``torch.device``; ``None`` means CUDA when available, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device.lower() if isinstance(device, str) else device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device must be None, 'cpu', 'cuda', 'cuda:N' or a torch.device, "
                         f"got {device!r}") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r} was asked for, but CUDA is not available here")
    return device


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a CPU ``torch.Generator`` seeded with ``seed``."""
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)
    torch.manual_seed(int(seed))
    return torch.Generator().manual_seed(int(seed))


def in_colab() -> bool:
    """True inside Google Colab."""
    return "google.colab" in sys.modules


def environment_report(**seeds: int) -> str:
    """The footer every chapter prints: profile, seeds, versions and device, one fact a line."""
    import matplotlib
    import sklearn
    import torchvision

    import agop

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
