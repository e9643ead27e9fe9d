"""agop_book.pretrained: torchvision models with seeded random weights, or pretrained weights
read from the cache without the network (and a clear error when they are missing offline).
The ansatz table on each torchvision family is tested in tests/test_ch01_ansatz.py."""

import pytest
import torch
from torch import nn

from agop_book import ch01_ansatz as ansatz
from agop_book import pretrained as P

# (architecture, image size, layers): one strided/downsampling case per family


def _images(n, size, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, size, size, generator=g, dtype=torch.float64)


def test_missing_weights_offline_raise_without_network(tmp_path, monkeypatch):
    # torchvision binds torch.hub.load_state_dict_from_url when it is imported: import it before
    # the patch, or a later test loading a cached checkpoint would still meet the patched one
    import torchvision  # noqa: F401

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def no_network(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    expected = tmp_path / "hub" / "checkpoints" / "vgg11-8a719046.pth"
    assert P.weights_file("vgg11") == expected
    assert not P.weights_available("vgg11")
    with pytest.raises(P.WeightsUnavailable) as info:
        P.load_model("vgg11")
    message = str(info.value)
    assert "vgg11" in message and "VGG11_Weights.IMAGENET1K_V1" in message
    assert str(expected) in message and "allow_download" in message
    with pytest.raises(P.WeightsUnavailable):
        ansatz.verify_ansatz("alexnet", _images(1, 64))
    monkeypatch.setenv("AGOP_OFFLINE", "1")  # the offline switch wins over allow_download
    with pytest.raises(P.WeightsUnavailable, match="AGOP_OFFLINE"):
        P.load_model("vgg11", allow_download=True)


def test_cached_weights_load_without_network(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    source = P.load_model("resnet18", pretrained=False, seed=3, device="cpu")
    path = P.weights_file("resnet18")
    path.parent.mkdir(parents=True)
    torch.save(source.state_dict(), path)

    def no_download(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    loaded = P.load_model("resnet18", device="cpu")
    assert not loaded.training
    for (name, a), (_, b) in zip(
        source.state_dict().items(), loaded.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


def test_initialisation_is_seeded_and_leaves_global_state():
    state = torch.random.get_rng_state()
    a, b = (
        P.load_model("alexnet", pretrained=False, seed=5),
        P.load_model("alexnet", pretrained=False, seed=5),
    )
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(a.features[0].weight, b.features[0].weight)
    c = P.load_model("alexnet", pretrained=False, seed=6)
    assert not torch.equal(a.features[0].weight, c.features[0].weight)


def test_clear_errors():
    with pytest.raises(ValueError, match="no torch.nn.Conv2d"):
        ansatz.verify_ansatz(nn.Sequential(nn.Flatten(), nn.Linear(12, 2)), torch.randn(2, 3, 2, 2))
    with pytest.raises(ValueError, match="cannot take"):
        ansatz.verify_ansatz(P.load_model("alexnet", pretrained=False), torch.randn(1, 3, 32, 32))
    with pytest.raises(ValueError, match="cannot take"):
        ansatz.verify_ansatz(P.load_model("resnet18", pretrained=False), torch.randn(1, 1, 32, 32))
    model = P.load_model("resnet18", pretrained=False)
    with pytest.raises(ValueError, match="layer"):
        ansatz.verify_ansatz(model, torch.randn(1, 3, 32, 32), layers=["fc"])
    with pytest.raises(ValueError, match="sketch"):
        ansatz.verify_ansatz(model, torch.randn(1, 3, 32, 32), sketch=0)
    with pytest.raises(ValueError, match="init must be the same architecture"):
        ansatz.verify_ansatz(
            model,
            torch.randn(1, 3, 32, 32),
            init=P.load_model("resnet50", pretrained=False),
            layers=["layer1.0.conv1"],
            null_draws=0,
        )
    with pytest.raises(ValueError, match="torchvision"):
        P.load_model("not_a_model", pretrained=False)
    with pytest.raises(ValueError, match="weights must be one of"):
        P.weights_file("vgg11", "IMAGENET1K_V9")
    with pytest.raises(ValueError, match="X must have shape"):
        ansatz.verify_ansatz(model, torch.randn(3, 32, 32))


# Hostile inputs


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: P.load_model("alexnet", pretrained=False, seed=-1), ValueError, "seed must"),
        (lambda: P.load_model("alexnet", pretrained=False, seed=2**64), ValueError, "seed must"),
        (lambda: P.load_model("alexnet", pretrained=False, seed=1.5), TypeError, "seed must"),
        (lambda: P.load_model(None), TypeError, "name must be a torchvision model name"),
        (lambda: P.load_model(None, pretrained=False), TypeError, "name must"),
        (lambda: P.load_model("alexnet", pretrained="no"), TypeError, "pretrained must"),
        (lambda: P.load_model("alexnet", allow_download=1), TypeError, "allow_download must"),
        (lambda: P.weights_enum(3), TypeError, "name must be a torchvision model name"),
        (lambda: P.weights_enum("vgg11", None), TypeError, "weights must be a weight enum"),
    ],
)
def test_hostile_inputs_are_refused_by_name(call, error, match):
    with pytest.raises(error, match=match):
        call()
