"""agop_book.reference: the brute-force patch-variable patch-AGOP that the engine's tests compare
against, checked itself against explicit patches and the Jacobian written out (a conv called twice)."""

import functools

import pytest
import torch
from torch import nn

from agop.features import (
    patch_agop,
)
from agop_book.reference import brute_force_patch_agop


class Residual(nn.Module):
    """conv -> BN -> relu, a residual block (dilated grouped conv), strided conv, max-pool."""

    def __init__(self, padding_mode="zeros"):
        super().__init__()
        self.c1 = nn.Conv2d(3, 4, 3, padding=1, padding_mode=padding_mode)
        self.bn = nn.BatchNorm2d(4)
        self.c2 = nn.Conv2d(
            4, 4, 3, padding=2, dilation=2, groups=2, padding_mode=padding_mode, bias=False
        )
        self.c3 = nn.Conv2d(4, 6, 3, stride=2)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(6 * 3 * 3, 5)

    def forward(self, x):
        h = torch.relu(self.bn(self.c1(x)))
        h = h + torch.tanh(self.c2(h))
        return self.fc(self.pool(torch.relu(self.c3(h))).flatten(1))


def sequential(**conv_kw):
    return nn.Sequential(
        nn.Conv2d(3, 5, 3, **conv_kw),
        nn.Softplus(),
        nn.Conv2d(5, 4, 3, padding=1),
        nn.AvgPool2d(2),
        nn.Tanh(),
        nn.Flatten(),
        nn.LazyLinear(3),
    )


def make(name):
    torch.manual_seed(1)
    if name.startswith("residual"):
        model = Residual(name.split("-")[1])
        model.bn.running_mean.normal_()
        model.bn.running_var.uniform_(0.5, 2.0)
    else:
        kw = {
            "padding": dict(padding=1),
            "stride2": dict(stride=2, padding=1),
            "dilation2": dict(dilation=2, padding=2, bias=False),
            "groups": dict(padding="same", padding_mode="replicate"),
        }[name]
        model = sequential(**kw)
        if name == "groups":  # depthwise-style first layer, two groups in the second
            model[0] = nn.Conv2d(3, 6, 3, padding=1, groups=3, padding_mode="replicate")
            model[2] = nn.Conv2d(6, 4, 3, padding=1, groups=2)
        model(torch.zeros(1, 3, 14, 14))  # materialise the lazy read-out
    return model.double().eval()


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


class SharedConv(nn.Module):
    """One conv applied twice (a shared, recurrent layer), then a linear read-out."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1)
        self.fc = nn.Linear(2 * 5 * 5, 3)

    def forward(self, x):
        return self.fc(torch.tanh(self.conv(torch.tanh(self.conv(x)))).flatten(1))


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
