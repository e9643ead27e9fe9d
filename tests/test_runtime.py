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


# Held-out style bugs, round 3


@pytest.fixture
def restore_global_rngs():
    """The global generators of Python, NumPy and torch, as they were before the test."""
    import random

    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    yield
    random.setstate(states[0])
    np.random.set_state(states[1])
    torch.set_rng_state(states[2])


@pytest.mark.parametrize("seed", [7, 2**40 + 2**31 + 3])
def test_seed_everything_seeds_python_numpy_and_torch(restore_global_rngs, seed):
    """After ``seed_everything(seed)`` each global generator draws what a fresh generator of
    its library seeded with ``seed`` draws (NumPy with ``seed mod 2**32``, the most it
    takes): Python's ``random``, NumPy's legacy global state and torch's default generator,
    each compared with its own independent reference."""
    import random

    from agop.runtime import seed_everything

    for _ in range(2):  # a second call starts the same streams again
        random.random(), np.random.rand(), torch.rand(1)  # move every stream on first
        seed_everything(seed)
        assert [random.random() for _ in range(3)] == _python_stream(seed, 3)
        np.testing.assert_array_equal(
            np.random.rand(3), np.random.RandomState(seed % 2**32).rand(3)
        )
        assert torch.equal(
            torch.rand(3), torch.rand(3, generator=torch.Generator().manual_seed(seed))
        )


def _python_stream(seed: int, n: int) -> list[float]:
    import random

    r = random.Random(seed)
    return [r.random() for _ in range(n)]
