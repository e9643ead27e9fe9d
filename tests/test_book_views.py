"""agop_book.views: what each layer reads, and a feature operator's top eigenvectors as filters
(the feature maps through the convolution are checked in tests/test_ch03_pretrained.py), the
factored feature map against the q x q path, and layer inputs that stop once every input is read."""

import numpy as np
import pytest
import torch
from conv_zoo import four_similarities
from torch import nn

from agop.features import cnfm, conv_layers, patch_agop
from agop.linalg import correlation
from agop_book import pretrained as P
from agop_book.views import factored_feature_map, layer_inputs, top_filters


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU(),
        nn.Flatten(), nn.Dropout(0.5), nn.Linear(64, 3),
    ).double().eval()  # fmt: skip


def test_top_filters_recover_eigenvectors(float64):
    Q, _ = torch.linalg.qr(torch.randn(12, 12))
    A = Q @ torch.diag(torch.arange(12.0, 0.0, -1.0)) @ Q.T
    f = top_filters(A, 3, channels=3, kernel_size=2)
    assert f.shape == (3, 3, 2, 2)
    for i in range(3):
        assert abs(float(f[i].flatten() @ Q[:, i])) == pytest.approx(1.0, abs=1e-10)
        assert f[i].flatten()[f[i].flatten().abs().argmax()] > 0
    with pytest.raises(ValueError, match="n_filters"):
        top_filters(A, 13, 3, 2)
    with pytest.raises(ValueError, match="A must be 27 x 27"):
        top_filters(A, 1, 3, 3)


def test_layer_inputs_are_what_each_layer_reads():
    model = _net()
    X = torch.randn(3, 2, 8, 8, dtype=torch.float64)
    inputs = layer_inputs(model, X, device="cpu")
    assert list(inputs) == ["0", "3"]  # every conv layer, in module order
    torch.testing.assert_close(inputs["0"], X)
    with torch.no_grad():
        torch.testing.assert_close(inputs["3"], model[2](model[1](model[0](X))))
    assert list(layer_inputs(model, X, [model[3], "1"])) == ["3", "1"]  # modules or names


def test_layer_inputs_run_a_training_model_in_eval_mode_and_restore_it():
    """Batch norm reads its running statistics (not the batch's, which it would also update),
    the caller is warned, and every module's mode is restored, also on an error."""
    model = _net()
    model[1].running_mean.fill_(0.5)
    model[1].running_var.fill_(2.0)
    X = torch.randn(5, 2, 8, 8, dtype=torch.float64)
    expected = torch.relu(model[1].eval()(model[0](X))).detach()  # running statistics
    model.train()
    with pytest.warns(UserWarning, match="training mode"):
        got = layer_inputs(model, X, ["3"])["3"]
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    assert all(m.training for m in model.modules())
    assert float(model[1].running_mean[0]) == 0.5  # not updated by the batch
    model[6].eval()  # a mixed model comes back mixed
    with (
        pytest.warns(UserWarning, match="training mode"),
        pytest.raises(ValueError, match="X of shape .* does not fit the model"),
    ):
        layer_inputs(model, torch.randn(2, 2, 2, 2, dtype=torch.float64), ["7"])  # too small
    assert [m.training for m in model.modules()] == [True] * 7 + [False, True]
    assert all(not m._forward_pre_hooks for m in model.modules())


def _model(name, seed=0):
    return P.load_model(name, pretrained=False, seed=seed, device="cpu", dtype=torch.float64)


def _images(n, size, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, size, size, generator=g, dtype=torch.float64)


def test_factored_path_gives_the_numbers_of_the_q_by_q_path():
    """Factors W, G against the dense W^T G W: the AGOP, every similarity, the CNFM of init vs
    trained, and both feature maps (through the convolution vs through A^{1/2}), on a grouped
    and strided small CNN and on ResNet18's strided and 1x1 layers."""
    from agop.features import FactoredAGOP, cnfm_similarity, feature_map

    grouped = (
        nn.Sequential(
            nn.Conv2d(4, 6, 3, padding=1, groups=2),
            nn.ReLU(),
            nn.Conv2d(6, 5, 3, stride=2, padding=1),
            nn.Flatten(),
            nn.Linear(5 * 4 * 4, 3),
        )
        .double()
        .eval()
    )
    cases = [
        (grouped, _images(3, 8)[:, :2].repeat(1, 2, 1, 1), None),
        (_model("resnet18"), _images(2, 32), ["conv1", "layer2.0.conv1", "layer2.0.downsample.0"]),
    ]
    for model, X, layers in cases:
        dense = patch_agop(model, X, layers=layers, outputs=range(3), device="cpu")
        factors = patch_agop(model, X, layers=layers, outputs=range(3), device="cpu", factored=True)
        convs = conv_layers(model, layers)
        inputs = layer_inputs(model, X[:1], list(convs))
        for name, conv in convs.items():
            f, A = factors[name], dense[name]
            assert isinstance(f, FactoredAGOP) and f.q == A.shape[0]
            torch.testing.assert_close(f.dense(), A, rtol=1e-12, atol=1e-14)
            M = cnfm(conv)
            expected = four_similarities(M, A)
            np.testing.assert_allclose(f.similarities(), expected, rtol=0, atol=1e-9)
            assert f.pearson() == pytest.approx(expected[0], abs=1e-12)
            if conv.groups > 1:  # a feature map reads the full patch: one group only
                continue
            kw = dict(
                kernel_size=conv.kernel_size,
                stride=conv.stride,
                padding=conv.padding,
                dilation=conv.dilation,
            )
            z = inputs[name]
            torch.testing.assert_close(
                factored_feature_map(conv, z, f.G), feature_map(A, z, **kw), rtol=1e-7, atol=1e-10
            )
            torch.testing.assert_close(
                factored_feature_map(conv, z), feature_map(M, z, **kw), rtol=1e-7, atol=1e-10
            )
    other = _model("resnet18", seed=1)
    for name in ("conv1", "layer3.1.conv2"):
        a, b = other.get_submodule(name), cases[1][0].get_submodule(name)
        for kind in ("pearson", "cosine"):
            assert cnfm_similarity(a, b, kind) == pytest.approx(
                correlation(cnfm(a), cnfm(b), kind), abs=1e-12
            )


def test_layer_inputs_stop_once_every_input_is_read():
    """A conv prefix read on images the read-out cannot take: the forward pass stops at the
    last requested layer, so the Linear layer that would fail never runs."""
    model = (
        nn.Sequential(
            nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 3), nn.Flatten(), nn.Linear(2 * 4 * 4, 3)
        )
        .double()
        .eval()
    )
    X = torch.rand(2, 3, 20, 20, dtype=torch.float64)  # the read-out expects 8 x 8 images
    inputs = layer_inputs(model, X, ["2"])
    with torch.no_grad():
        torch.testing.assert_close(inputs["2"], model[1](model[0](X)))
    # even the read-out's own input: the pass stops at its pre-hook, before it would fail
    assert tuple(layer_inputs(model, X, ["4"])["4"].shape) == (2, 2 * 16 * 16)
    with pytest.raises(RuntimeError), torch.no_grad():
        model(X)


# Hostile inputs


def _hostile_model():
    return nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Conv2d(3, 2, 3)).double().eval()


@pytest.mark.parametrize(
    "call, error, match",
    [
        (
            lambda: factored_feature_map(nn.Linear(2, 2), torch.rand(1, 2, 6, 6)),
            TypeError,
            "conv must be",
        ),
        (lambda: factored_feature_map(None, torch.rand(1, 2, 6, 6)), TypeError, "conv must be"),
        (
            lambda: factored_feature_map(nn.Conv2d(2, 3, 3).double(), torch.rand(1, 3, 6, 6)),
            ValueError,
            "x must have 2 channels",
        ),
        (
            lambda: factored_feature_map(
                nn.Conv2d(2, 3, 3, dilation=2).double(), torch.rand(1, 2, 4, 4)
            ),
            ValueError,
            "x of shape .* does not fit conv",
        ),
        (lambda: layer_inputs(None, torch.rand(1, 2, 8, 8)), TypeError, "model must be"),
        (
            lambda: layer_inputs(_hostile_model(), torch.rand(1, 2, 8, 8), 0),
            TypeError,
            "layers must be",
        ),
        (
            lambda: layer_inputs(_hostile_model(), torch.rand(1, 5, 8, 8)),
            ValueError,
            "X of shape .* does not fit the model",
        ),
    ],
)
def test_hostile_inputs_are_refused_by_name(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_top_filters_of_a_half_precision_operator_are_its_float32_eigenvectors():
    A = torch.diag(torch.arange(1.0, 19.0))  # eigenvectors: the last basis vectors first
    top = top_filters(A.half(), 2, 2, 3)
    assert top.dtype == torch.float16
    torch.testing.assert_close(top.float(), top_filters(A, 2, 2, 3), rtol=0, atol=0)


# Held-out style bugs


def test_factored_feature_map_reads_the_layers_stride_padding_and_dilation():
    """Against the definition written as a loop over output positions: the patch of a dilated,
    strided, padded conv at (i, j) holds x[c, i s - p + d a, j s - p + d b] (zero outside),
    h = W patch, and the map is sqrt(h^T G h) (|h| for G = None)."""
    g = torch.Generator().manual_seed(0)
    conv = nn.Conv2d(2, 3, 2, stride=2, padding=1, dilation=2, bias=True).double()
    x = torch.randn(2, 7, 6, generator=g, dtype=torch.float64)
    B = torch.randn(3, 3, generator=g, dtype=torch.float64)
    G = B @ B.T
    W = conv.weight.detach().reshape(3, -1)
    s, p, d, k = 2, 1, 2, 2
    padded = torch.nn.functional.pad(x, (p, p, p, p))
    H = (7 + 2 * p - d * (k - 1) - 1) // s + 1
    Wd = (6 + 2 * p - d * (k - 1) - 1) // s + 1
    plain, weighted = (
        torch.empty(H, Wd, dtype=torch.float64),
        torch.empty(H, Wd, dtype=torch.float64),
    )
    for i in range(H):
        for j in range(Wd):
            patch = torch.stack(
                [
                    padded[c, i * s + d * a, j * s + d * b]
                    for c in range(2)
                    for a in range(k)
                    for b in range(k)
                ]
            )
            h = W @ patch
            plain[i, j] = h.norm()
            weighted[i, j] = (h @ G @ h).sqrt()
    torch.testing.assert_close(factored_feature_map(conv, x)[0], plain, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(
        factored_feature_map(conv, x, G)[0], weighted, rtol=1e-12, atol=1e-12
    )


def test_layer_inputs_of_a_module_called_twice_is_its_first_input():
    """A module that the forward pass calls twice (weight sharing): its input is the one it
    reads first, even when a later layer is requested too and the pass goes on past the
    second call."""

    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 2, 3, padding=1)
            self.head = nn.Conv2d(2, 1, 1)

        def forward(self, x):
            return self.head(self.conv(torch.relu(self.conv(x))))

    torch.manual_seed(0)
    model = Shared().double().eval()
    X = torch.randn(2, 2, 5, 5, dtype=torch.float64)
    got = layer_inputs(model, X, ["conv", "head"])
    torch.testing.assert_close(got["conv"], X, rtol=0, atol=0)
    with torch.no_grad():
        second = model.conv(torch.relu(model.conv(X)))
    torch.testing.assert_close(got["head"], second, rtol=0, atol=0)


@pytest.mark.parametrize(
    "G, match",
    [
        (torch.full((4, 4), float("nan"), dtype=torch.float64), "^G contains 16 non-finite"),
        (-torch.eye(4, dtype=torch.float64), "^G must be positive semi-definite"),
    ],
)
def test_factored_feature_map_refuses_a_bad_G(G, match):
    conv = torch.nn.Conv2d(2, 4, 3).double()
    x = torch.rand(1, 2, 6, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with pytest.raises(ValueError, match=match):
        factored_feature_map(conv, x, G)


def test_layer_inputs_names_a_layer_of_the_wrong_type():
    net = nn.Sequential(nn.Conv2d(1, 2, 3)).double()
    with pytest.raises(TypeError, match=r"^layers must hold module names or modules, got \['0'\]"):
        layer_inputs(net, torch.rand(1, 1, 5, 5, dtype=torch.float64), [["0"]])


def test_layer_inputs_names_the_images_by_the_callers_name():
    """A caller whose images are called ``x`` passes ``name="x"``: every error says ``x``."""
    net = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Conv2d(3, 1, 3)).double()
    small = torch.randn(1, 2, 2, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"^x of shape \(1, 2, 2, 2\) does not fit the model"):
        layer_inputs(net, small, ["2"], name="x")
    with pytest.raises(ValueError, match=r"^x contains 128 non-finite"):
        layer_inputs(net, torch.full((1, 2, 8, 8), float("nan")), name="x")
    with pytest.raises(TypeError, match="^name must be a str"):
        layer_inputs(net, small, name=0)
    X = torch.randn(2, 2, 8, 8, dtype=torch.float64)
    named = layer_inputs(net, X, ["2"], name="images")["2"]
    torch.testing.assert_close(named, torch.relu(net[0](X)).detach(), rtol=0, atol=0)


# Hostile inputs, round 6


def test_views_refuse_a_model_or_conv_on_the_meta_device_by_name():
    """Weights on ``meta`` have shapes but no values: ``layer_inputs`` failed copying them and
    ``factored_feature_map`` inside its PSD check."""
    X = torch.rand(2, 2, 8, 8, dtype=torch.float64)
    net = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Conv2d(3, 3, 3)).double().to("meta")
    with pytest.raises(ValueError, match="^model has its parameters on the 'meta' device"):
        layer_inputs(net, X, device="cpu")
    conv = nn.Conv2d(2, 4, 3, device="meta", dtype=torch.float64)
    with pytest.raises(ValueError, match=r"^conv\.weight is on the 'meta' device"):
        factored_feature_map(conv, X, torch.eye(4, dtype=torch.float64))
