"""agop.runtime: the device choice, the seeds and the last-level cache size."""

import numpy as np
import pytest
import torch

import agop
from agop.runtime import default_device


def test_default_device():
    assert agop.default_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        assert agop.default_device().type == "cpu"
        with pytest.raises(ValueError, match="CUDA"):
            agop.default_device("cuda")


def test_seed_everything_takes_seeds_below_two_to_the_63():
    """2**64 failed inside torch ("Overflow when unpacking long long"); a float was refused
    with a message that did not say why. numpy integers are seeds."""
    from agop.runtime import seed_everything

    a = torch.rand(3, generator=seed_everything(np.int64(2**63 - 1)))
    assert torch.equal(a, torch.rand(3, generator=torch.Generator().manual_seed(2**63 - 1)))
    with pytest.raises(ValueError, match=r"seed must be .*below 2\*\*63.*got 18446744073709551616"):
        seed_everything(2**64)
    with pytest.raises(TypeError, match="seed must be an integer, got 1.5"):
        seed_everything(1.5)


def test_device_names_are_case_insensitive_and_bad_ones_name_the_argument():
    assert default_device("CPU") == torch.device("cpu")
    with pytest.raises(ValueError, match="device must be None, 'cpu', 'cuda'"):
        default_device("gpu")


def test_last_level_cache_is_read_or_falls_back(monkeypatch):
    from agop.runtime import _last_level_cache

    assert _last_level_cache() >= 2**16  # every machine we run on has one of at least 64 KB
    monkeypatch.setattr("builtins.open", lambda *a, **k: (_ for _ in ()).throw(OSError()))
    assert _last_level_cache(fallback=12345) == 12345
