"""Small float64 conv networks shared by the patch-AGOP tests (tests only): a residual block
with BatchNorm and every padding mode, plain conv stacks with padding, stride, dilation and
groups, and a conv called twice; plus similarity helpers written out by hand."""

import numpy as np
import torch
from torch import nn


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
    """One of ``ARCHS``, seeded, float64, in eval mode (14 x 14 RGB inputs)."""
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


ARCHS = [
    "padding",
    "stride2",
    "dilation2",
    "groups",
    "residual-zeros",
    "residual-reflect",
    "residual-replicate",
    "residual-circular",
]


class SharedConv(nn.Module):
    """One conv applied twice (a shared, recurrent layer), then a linear read-out."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1)
        self.fc = nn.Linear(2 * 5 * 5, 3)

    def forward(self, x):
        return self.fc(torch.tanh(self.conv(torch.tanh(self.conv(x)))).flatten(1))


def hand_pearson(A, B):
    """Pearson correlation of the entries, written out (not the package's ``correlation``)."""
    a, b = A.flatten() - A.mean(), B.flatten() - B.mean()
    return float(a @ b / (a.norm() * b.norm()))


def hand_cosine(A, B):
    """Cosine similarity of the entries, written out."""
    return float((A * B).sum() / (A.norm() * B.norm()))


def scipy_power(A, p):
    """A^p of a PSD matrix by scipy's fractional power (not the package's eigh)."""
    import scipy.linalg

    return torch.as_tensor(np.real(scipy.linalg.fractional_matrix_power(A.numpy(), p)))


def torchvision_net(name, seed=0):
    """The torchvision family ``name`` with random weights (seeded), float64, on the CPU."""
    from agop_book import pretrained

    return pretrained.load_model(
        name, pretrained=False, seed=seed, device="cpu", dtype=torch.float64
    )


def rgb_images(n, size, seed=0):
    """``n`` standard Gaussian RGB images of ``size`` x ``size``, float64."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, size, size, generator=g, dtype=torch.float64)


def bn_cnn(seed):
    """Two convs (BatchNorm and an in-place ReLU after the first, stride 2 in the second) and a
    linear read-out, for 2-channel 8 x 8 images; seeded, float64, in eval mode."""
    torch.manual_seed(seed)
    return (
        nn.Sequential(
            nn.Conv2d(2, 6, 3, padding=1),
            nn.BatchNorm2d(6),
            nn.ReLU(inplace=True),
            nn.Conv2d(6, 5, 3, stride=2),
            nn.Flatten(),
            nn.Linear(5 * 3 * 3, 4),
        )
        .double()
        .eval()
    )


def uniform_images(n=12, c=1, size=6, seed=0, dtype=torch.float64):
    """``n`` uniform ``c``-channel images of ``size`` x ``size`` (seeded)."""
    return torch.rand(n, c, size, size, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def small_cnn(seed=0):
    """One 3 x 3 conv (1 -> 2 channels), ReLU and a linear read-out to 3 outputs, for 6 x 6
    images; seeded, float64, in eval mode."""
    torch.manual_seed(seed)
    return (
        nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(32, 3)).double().eval()
    )


def four_similarities(M, A):
    """``(pearson, cosine, pearson_sqrt, cosine_sqrt)`` of ``M`` with ``A`` and with
    ``A^{1/2}``, in the order of ``FactoredAGOP.similarities``."""
    from agop.linalg import correlation, psd_power

    return (
        correlation(M, A),
        correlation(M, A, "cosine"),
        correlation(M, psd_power(A, 0.5)),
        correlation(M, psd_power(A, 0.5), "cosine"),
    )
