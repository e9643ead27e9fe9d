"""agop_book.reference: the brute-force patch-variable patch-AGOP that the engine's tests compare
against, checked itself against explicit patches and the Jacobian written out (a conv called twice)."""

import functools

import pytest
import torch
from conv_zoo import SharedConv, make
from torch import nn

from agop.features import (
    patch_agop,
)
from agop_book.reference import brute_force_patch_agop


def test_reference_checks_its_explicit_patches(monkeypatch):
    """Negative control: patches in the wrong order do not reproduce the conv output, and the
    reference says so instead of differentiating the wrong function."""
    import agop_book.reference

    model = make("padding")
    X = torch.randn(2, 3, 14, 14, dtype=torch.float64)
    real = agop_book.reference.conv_patches
    monkeypatch.setattr(agop_book.reference, "conv_patches", lambda conv, x: real(conv, x).flip(1))
    with pytest.raises(AssertionError, match="do not reproduce the conv output"):
        brute_force_patch_agop(model, X, "0")


def _explicit_shared_conv_agop(model, X):
    """The patch-AGOP of ``model.conv`` from ``torch.autograd.functional.jacobian``: per image,
    the output as a function of the patches of both calls, written out with ``F.unfold`` (the
    second call's patches are those of the first call's output, plus their own variable)."""
    W = model.conv.weight.detach().reshape(2, -1)
    b = model.conv.bias.detach()[:, None]
    fc = model.fc

    def f(x, D1, D2):  # D1, D2: (q, positions), the offsets of each call's patches
        U1 = nn.functional.unfold(x[None], 3, padding=1)[0] + D1
        a1 = torch.tanh(W @ U1 + b).reshape(1, 2, 5, 5)
        U2 = nn.functional.unfold(a1, 3, padding=1)[0] + D2
        a2 = torch.tanh(W @ U2 + b)
        return fc(a2.reshape(1, -1))[0]

    zero = torch.zeros(18, 25, dtype=X.dtype)
    A = torch.zeros(18, 18, dtype=X.dtype)
    for x in X:
        for J in torch.autograd.functional.jacobian(functools.partial(f, x), (zero, zero)):
            A += torch.einsum("cqj,crj->qr", J, J)  # outputs c, positions j
    return A / X.shape[0]


def test_reference_sums_over_every_call_of_a_shared_conv():
    """A conv called twice: its patch-AGOP sums over the patches of both calls, the first call's
    gradient including the path through the second. The brute-force reference and the engine
    against the explicit Jacobian of the output with respect to both calls' patches."""
    torch.manual_seed(0)
    model = SharedConv().double().eval()
    X = torch.rand(3, 2, 5, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    expected = _explicit_shared_conv_agop(model, X)
    torch.testing.assert_close(
        brute_force_patch_agop(model, X, "conv", chunk_size=2), expected, rtol=1e-10, atol=1e-12
    )
    torch.testing.assert_close(
        patch_agop(model, X, device="cpu")["conv"], expected, rtol=1e-10, atol=1e-12
    )


# Hostile inputs


@pytest.mark.parametrize(
    "layer, X, match",
    [
        ("7", torch.rand(2, 2, 8, 8, dtype=torch.float64), "layer_name must name a Conv2d"),
        ("1", torch.rand(2, 2, 8, 8, dtype=torch.float64), "layer_name must name a Conv2d"),
        (None, torch.rand(2, 2, 8, 8, dtype=torch.float64), "layer_name must name a Conv2d"),
        ("0", torch.rand(1, 2, 3, 3, dtype=torch.float64), "X of shape .* does not fit"),
        ("0", torch.rand(1, 3, 8, 8, dtype=torch.float64), "X of shape .* does not fit"),
    ],
)
def test_hostile_inputs_are_refused_by_name(layer, X, match):
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Conv2d(3, 2, 3)).double().eval()
    with pytest.raises(ValueError, match=match):
        brute_force_patch_agop(model, X, layer)


# Hostile inputs, round 6


def test_brute_force_patch_agop_refuses_a_model_on_the_meta_device_by_name():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 4 * 4, 2)).double()
    with pytest.raises(ValueError, match="^model is on the 'meta' device"):
        brute_force_patch_agop(net.to("meta"), torch.rand(2, 1, 6, 6, dtype=torch.float64), "0")


# Held-out style bugs, round 5


def _explicit_selected_agop(model, X, outputs):
    """The patch-AGOP over the ``outputs`` only, from the explicit Jacobian of
    :func:`_explicit_shared_conv_agop` (its rows ``c`` restricted to ``outputs``)."""
    W = model.conv.weight.detach().reshape(2, -1)
    b = model.conv.bias.detach()[:, None]

    def f(x, D1, D2):
        U1 = nn.functional.unfold(x[None], 3, padding=1)[0] + D1
        a1 = torch.tanh(W @ U1 + b).reshape(1, 2, 5, 5)
        U2 = nn.functional.unfold(a1, 3, padding=1)[0] + D2
        return model.fc(torch.tanh(W @ U2 + b).reshape(1, -1))[0]

    zero = torch.zeros(18, 25, dtype=X.dtype)
    A = torch.zeros(18, 18, dtype=X.dtype)
    for x in X:
        for J in torch.autograd.functional.jacobian(functools.partial(f, x), (zero, zero)):
            J = J[list(outputs)]
            A += torch.einsum("cqj,crj->qr", J, J)
    return A / X.shape[0]


@pytest.mark.parametrize("outputs, chunk_size", [([2], 10), ([2, 0], 1), ([1, 2], 3)])
def test_reference_takes_the_outputs_asked_for(outputs, chunk_size):
    """``outputs`` selects the outputs summed over, by their index (not the first
    ``len(outputs)`` of them), whatever the chunks: against the explicit Jacobian's rows."""
    torch.manual_seed(0)
    model = SharedConv().double().eval()
    X = torch.rand(2, 2, 5, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    torch.testing.assert_close(
        brute_force_patch_agop(model, X, "conv", outputs=outputs, chunk_size=chunk_size),
        _explicit_selected_agop(model, X, outputs),
        rtol=1e-10,
        atol=1e-12,
    )
