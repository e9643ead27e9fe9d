"""agop_book.ch03_pretrained: the pretrained explorer's layer views (cached, equal to the dense
computation), the sketch's accuracy report and the feature maps through the convolution."""

import math
import os

import pytest
import torch
from conv_zoo import bn_cnn, rgb_images, torchvision_net
from torch import nn

from agop.features import cnfm
from agop.linalg import correlation
from agop_book import ch01_ansatz as ansatz
from agop_book import ch03_pretrained as ch03
from agop_book.views import layer_inputs


def test_sketch_accuracy_reports_exact_and_sketched():
    model, X = bn_cnn(0), rgb_images(2, 8)[:, :2]
    rows = ch03.sketch_accuracy(model, X, ks=[2, 2000], device="cpu")
    assert [(r.k, r.layer) for r in rows] == [(2, "0"), (2, "3"), (2000, "0"), (2000, "3")]
    exact = ansatz.verify_ansatz(model, X, null_draws=0, device="cpu")
    for r in rows:
        assert r.exact_ansatz_pearson == pytest.approx(exact[r.layer].pearson, abs=1e-10)
    err = {(r.k, r.layer): r.relative_error for r in rows}
    assert all(err[(2000, layer)] < err[(2, layer)] for layer in ("0", "3"))
    assert max(err[(2000, layer)] for layer in ("0", "3")) < 0.1  # ~ 1/sqrt(k) scale


@pytest.mark.skipif(  # chapter 01's mutation run: its small-network tests cover verify_ansatz
    "MUTANT_UNDER_TEST" in os.environ, reason="seconds per mutant under mutmut"
)
def test_layer_inputs_and_feature_maps():
    model, x = torchvision_net("vgg11_bn"), rgb_images(1, 32)
    inputs = layer_inputs(model, x, ["features.0", "features.4"])
    torch.testing.assert_close(inputs["features.0"], x)
    with torch.no_grad():
        torch.testing.assert_close(inputs["features.4"], model.features[:4](x))
    table = ansatz.verify_ansatz(
        model,
        x,
        layers=["features.4"],
        outputs=range(2),
        null_draws=0,
        keep_agops=True,
        device="cpu",
    )
    maps = ch03.feature_maps(model, x[0], table.agops)
    cnfm_map, agop_map = maps["features.4"]
    conv = model.features[4]
    with torch.no_grad():  # |(W^T W)^{1/2} z| = |W z|: the conv's output norm over channels
        expected = nn.functional.conv2d(inputs["features.4"], conv.weight, padding=1).norm(dim=1)[0]
    torch.testing.assert_close(cnfm_map, expected, rtol=1e-6, atol=1e-8)
    assert agop_map.shape == cnfm_map.shape == (16, 16)


@pytest.mark.skipif(  # chapter 01's mutation run: its small-network tests cover verify_ansatz
    "MUTANT_UNDER_TEST" in os.environ, reason="seconds per mutant under mutmut"
)
def test_layer_views_are_cached_and_equal_the_dense_computation(monkeypatch):
    model, X = torchvision_net("alexnet"), rgb_images(2, 64)
    views = ch03.LayerViews({"a": model}, {"x0": X[0], "x1": X[1]}, sketch=4, seed=3, device="cpu")
    assert views.first() == ("a", "features.0", "x0")
    calls = []
    real = ch03.patch_agop
    monkeypatch.setattr(
        ch03, "patch_agop", lambda *a, **k: calls.append(k.get("layers")) or real(*a, **k)
    )
    v3 = views.view("a", "features.3", "x0")
    v6 = views.view("a", "features.6", "x0")
    assert views.view("a", "features.3", "x0") is v3
    assert calls == [None]  # one set of backward passes for every layer of (model, image)
    table = ansatz.verify_ansatz(
        model,
        X[:1],
        layers=["features.6"],
        sketch=4,
        seed=3,
        null_draws=0,
        keep_agops=True,
        device="cpu",
    )
    A = table.agops["features.6"]
    torch.testing.assert_close(v6["factors"].dense(), A, rtol=1e-12, atol=1e-14)
    conv = model.features[6]
    assert v6["pearson"] == pytest.approx(correlation(cnfm(conv), A), abs=1e-10)
    z = layer_inputs(model, X[:1], ["features.6"])["features.6"]
    from agop.features import feature_map

    torch.testing.assert_close(
        v6["agop_map"], feature_map(A, z, 3, padding=1)[0], rtol=1e-7, atol=1e-10
    )
    old = ch03.layer_view(model, "features.3", X[0], sketch=4, seed=3, device="cpu")
    torch.testing.assert_close(old["agop_map"], v3["agop_map"], rtol=0, atol=0)
    calls.clear()
    views.view("a", "features.3", "x1")
    views.view("a", "features.6", "x1")
    assert calls == [None]  # a new image: one new set of passes
    views.add_image("x1", X[0])  # a replaced image is recomputed
    torch.testing.assert_close(
        views.view("a", "features.3", "x1")["agop_map"], v3["agop_map"], rtol=0, atol=0
    )
    with pytest.raises(ValueError, match="layer"):
        views.view("a", "classifier.1", "x0")


# Held-out style bugs


def test_sketch_accuracy_fields_are_their_definitions():
    """Each row against its definition, from the exact AGOP and the k-probe sketch that
    verify_ansatz gives with the same probes (seed + k): relative error |A_k - A|_F / |A|_F,
    corr(A_k, A), corr(W^T W, A_k) and corr(W^T W, A)."""
    model, X = bn_cnn(0), rgb_images(2, 8)[:, :2]
    rows = ch03.sketch_accuracy(model, X, ks=[3], seed=5, device="cpu")
    kw = dict(null_draws=0, keep_agops=True, device="cpu")
    exact = ansatz.verify_ansatz(model, X, **kw).agops
    sketched = ansatz.verify_ansatz(model, X, sketch=3, seed=8, **kw).agops
    for r in rows:
        A, Ak = exact[r.layer], sketched[r.layer]
        M = cnfm(model.get_submodule(r.layer))
        assert not torch.allclose(A, Ak)  # the sketch is not exact: the fields differ
        assert r.relative_error == pytest.approx(float(torch.norm(Ak - A) / torch.norm(A)), 1e-10)
        assert r.pearson_with_exact == pytest.approx(correlation(Ak, A), abs=1e-10)
        assert r.ansatz_pearson == pytest.approx(correlation(M, Ak), abs=1e-10)
        assert r.exact_ansatz_pearson == pytest.approx(correlation(M, A), abs=1e-10)


def test_feature_maps_of_a_dense_agop_read_patches_at_the_layers_stride():
    """A dense AGOP on bn_cnn's stride-2 layer: ||A^{1/2} z[j]|| = sqrt(z[j]^T A z[j]) over the
    patches F.unfold takes at the layer's stride (3 x 3 positions of its 8 x 8 input)."""
    model, X = bn_cnn(0), rgb_images(1, 8)[:, :2]
    table = ansatz.verify_ansatz(
        model, X, layers=["3"], null_draws=0, keep_agops=True, device="cpu"
    )
    A = table.agops["3"]
    cnfm_map, agop_map = ch03.feature_maps(model, X[0], table.agops)["3"]
    z = layer_inputs(model, X, ["3"])["3"]
    patches = nn.functional.unfold(z, 3, stride=2)[0]  # (q, 9)
    expected = torch.einsum("qp,qr,rp->p", patches, A, patches).clamp_min(0).sqrt().reshape(3, 3)
    torch.testing.assert_close(agop_map, expected, rtol=1e-7, atol=1e-10)
    M = cnfm(model[3])
    expected_cnfm = torch.einsum("qp,qr,rp->p", patches, M, patches).sqrt().reshape(3, 3)
    torch.testing.assert_close(cnfm_map, expected_cnfm, rtol=1e-7, atol=1e-10)


# Hostile inputs


def _small():
    from agop.features import patch_agop
    from agop_book.nets import SimpleCNN

    net = SimpleCNN(3, 2, image_size=8, depth=2, width=2, seed=0).double().eval()
    X = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return net, X, patch_agop(net, X, device="cpu")


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda net, X, A: ch03.sketch_accuracy(net, X, []), ValueError, "ks must hold at least"),
        (lambda net, X, A: ch03.sketch_accuracy(net, X, 4), TypeError, "ks must be a sequence"),
        (lambda net, X, A: ch03.sketch_accuracy(net, X, [0]), ValueError, r"ks\[0\] must be a pos"),
        (lambda net, X, A: ch03.sketch_accuracy(net, X, [2.0]), TypeError, r"ks\[0\] must be an"),
        (lambda net, X, A: ch03.sketch_accuracy(net, X, [2], seed=-1), ValueError, "seed must"),
        (
            lambda net, X, A: ch03.feature_maps(net, X[0], {"convs.0": torch.eye(4)}),
            ValueError,
            r"agops\['convs.0'\] must be 27 x 27",
        ),
        (lambda net, X, A: ch03.feature_maps(net, X[0], {}), ValueError, "agops must hold"),
        (lambda net, X, A: ch03.feature_maps(net, X[0], [1]), TypeError, "agops must be a dict"),
        (
            lambda net, X, A: ch03.feature_maps(net, X[0], {"convs.0": A["convs.0"]}, ["convs.1"]),
            ValueError,
            r"layers: 'convs.1' is not one of the layers of agops \['convs.0'\]",
        ),
        (
            lambda net, X, A: ch03.feature_maps(net, X[0], A, "convs.0"),
            TypeError,
            "layers must be a list of layer names, got str",
        ),
        (lambda net, X, A: ch03.uploaded_files(3), TypeError, "value must be a FileUpload"),
        (lambda net, X, A: ch03.uploaded_files("a.png"), TypeError, "value must be a FileUpload"),
        (
            lambda net, X, A: ch03.uploaded_files({"a.png": {"content": 5}}),
            TypeError,
            r"value\['a.png'\]: its content must be bytes",
        ),
        (
            lambda net, X, A: ch03.uploaded_files(({"name": "a.png"},)),
            ValueError,
            r"value\[0\] must have a 'content' field",
        ),
    ],
)
def test_hostile_inputs_are_refused_by_name(call, error, match):
    with pytest.raises(error, match=f"^{match}"):
        call(*_small())


def test_uploaded_files_of_no_upload_are_empty():
    assert ch03.uploaded_files(None) == [] and ch03.uploaded_files({}) == []
    assert ch03.uploaded_files(()) == []


# Hostile inputs: the views, their figures and the explorer


def _views():
    from agop_book.nets import SimpleCNN

    net = SimpleCNN(3, 4, image_size=8, depth=2, width=4, seed=0).double().eval()
    x = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return net, x


_IMG, _MAP = torch.rand(1, 8, 8), torch.rand(8, 8)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda net, x: ch03.layer_view(net, "convs.0", None), TypeError, "^x must be a tensor"),
        (lambda net, x: ch03.layer_view(net, "convs.0", x[None]), ValueError, r"^x must be a non"),
        (lambda net, x: ch03.layer_view(net, "convs.0", x[:2]), ValueError, "^x of shape"),
        (lambda net, x: ch03.layer_view("vgg", "convs.0", x), TypeError, "^model must be a torch"),
        (lambda net, x: ch03.LayerViews({"m": net}, {}), ValueError, "^images must hold"),
        (lambda net, x: ch03.LayerViews({"m": 3}, {"i": x}), TypeError, r"^models\['m'\] must be"),
        (
            lambda net, x: ch03.LayerViews({"m": net}, {"i": x}).view("m", "convs.0", "j"),
            ValueError,
            r"^image must be one of \['i'\]",
        ),
        (lambda net, x: ch03.plot_sketch_accuracy([]), ValueError, "^rows must hold"),
        (
            lambda net, x: ch03.plot_sketch_accuracy(
                [ch03.SketchAccuracy("c", 1, math.nan, 1, 1, 1)]
            ),
            ValueError,
            r"^rows\[0\].relative_error must be a finite",
        ),
        (lambda net, x: ch03.plot_layer_view(None, _MAP, _MAP, 0.5), TypeError, "^image must be"),
        (
            lambda net, x: ch03.plot_layer_view(_IMG, _MAP, _MAP * math.nan, 0.5),
            ValueError,
            "^agop_map contains 64 non-finite",
        ),
        (
            lambda net, x: ch03.plot_layer_view(_IMG, _MAP, _MAP, math.nan),
            ValueError,
            "^similarity",
        ),
        (lambda net, x: ch03.plot_layer_view(_IMG, _MAP, _MAP, 0.5, title=3), TypeError, "^title"),
        (
            lambda net, x: ch03.plot_layer_views({}, "m", "convs.0", "i"),
            TypeError,
            "^views must be",
        ),
        (
            lambda net, x: ch03.pretrained_explorer({"m": net}, {"i": x}, size=0),
            ValueError,
            "^size must be a positive",
        ),
        (
            lambda net, x: ch03.pretrained_explorer({"m": net}, {"i": x}, views={"a": 1}),
            TypeError,
            "^views must be None or a LayerViews",
        ),
    ],
)
def test_views_figures_and_explorer_name_a_hostile_argument(call, error, match):
    import matplotlib.pyplot as plt

    net, x = _views()
    before = plt.get_fignums()
    with pytest.raises(error, match=match):
        call(net, x)
    assert plt.get_fignums() == before


# Held-out style bugs, round 4


def test_sketch_accuracy_compares_the_sketch_with_the_exact_agop_over_the_same_outputs():
    """With ``outputs``, the exact AGOP of each row is the brute-force patch-AGOP over those
    outputs only (as the sketch is), not over every output of the network."""
    from agop.features import patch_agop
    from agop_book.reference import brute_force_patch_agop

    model, X = bn_cnn(0), rgb_images(2, 8)[:, :2]
    outputs = [0, 2]
    rows = ch03.sketch_accuracy(model, X, ks=[3], outputs=outputs, seed=5, device="cpu")
    sketched = patch_agop(model, X, sketch=3, seed=8, outputs=outputs, device="cpu")
    for r in rows:
        A = brute_force_patch_agop(model, X, r.layer, outputs=outputs)
        every = brute_force_patch_agop(model, X, r.layer)
        assert not torch.allclose(A, every)  # the outputs matter
        Ak, M = sketched[r.layer], cnfm(model.get_submodule(r.layer))
        assert r.relative_error == pytest.approx(float(torch.norm(Ak - A) / torch.norm(A)), 1e-9)
        assert r.pearson_with_exact == pytest.approx(correlation(Ak, A), abs=1e-10)
        assert r.exact_ansatz_pearson == pytest.approx(correlation(M, A), abs=1e-10)


# Hostile inputs, round 6


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda net, X, A: ch03.feature_maps(net, "abc", A), TypeError, "^x must be"),
        (
            lambda net, X, A: ch03.feature_maps(net, torch.rand(2, 3, 8), A),
            ValueError,
            r"^x of shape \(1, 2, 3, 8\) does not fit the model",
        ),
        (
            lambda net, X, A: ch03.sketch_accuracy(net, X, [2, 10**9]),
            ValueError,
            r"^ks\[1\]: sketch=1000000000 Gaussian probes",
        ),
    ],
)
def test_feature_maps_and_sketch_accuracy_name_their_own_arguments(call, error, match):
    """``feature_maps``' image is ``x`` and ``sketch_accuracy``'s probe counts are ``ks``:
    errors from the functions they call (``layer_inputs``' ``X``, ``patch_agop``'s
    ``sketch``) name them so."""
    net, X, A = _small()
    with pytest.raises(error, match=match):
        call(net, X, A)


# Mutation testing, stop 35


def _sketch_rows():
    """Layer "a" at k = 16, 1, 4 (out of order), layer "b" at 1 and 16: the slope runs through
    the mean error at the smallest k over both layers."""
    SA = ch03.SketchAccuracy
    return [
        SA("a", 16, 0.1, 0.9, 0.5, 0.5),
        SA("a", 1, 0.6, 0.9, 0.5, 0.5),
        SA("a", 4, 0.3, 0.9, 0.5, 0.5),
        SA("b", 16, 0.2, 0.9, 0.5, 0.5),
        SA("b", 1, 0.8, 0.9, 0.5, 0.5),
    ]


def test_stop35_sketch_accuracy_figure_draws_each_layers_errors_and_the_slope():
    """One log-log line per layer (sorted by k, labelled by the layer), the dashed 1/sqrt(k)
    slope over every k through the mean error at the smallest k, the axis labels, and a given
    axes drawn into."""
    import matplotlib.pyplot as plt
    import numpy as np

    _, given = plt.subplots()
    ax = ch03.plot_sketch_accuracy(_sketch_rows(), ax=given)
    assert ax is given
    a, b, slope = ax.get_lines()
    assert (a.get_label(), list(a.get_xdata()), list(a.get_ydata())) == (
        "a", [1, 4, 16], [0.6, 0.3, 0.1]
    )  # fmt: skip
    assert (b.get_label(), list(b.get_xdata()), list(b.get_ydata())) == ("b", [1, 16], [0.8, 0.2])
    assert slope.get_label() == "$\\propto 1/\\sqrt{k}$" and slope.get_linestyle() == "--"
    np.testing.assert_allclose(slope.get_xdata(), [1, 4, 16])
    np.testing.assert_allclose(slope.get_ydata(), [0.7, 0.35, 0.175])
    assert ax.get_xscale() == ax.get_yscale() == "log"
    assert ax.get_xlabel() == "probes $k$" and ax.get_ylabel() == "relative error of the sketch"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b", slope.get_label()]
    plt.close(ax.figure)
    ax = ch03.plot_sketch_accuracy(_sketch_rows())  # no axes given: a new figure's
    assert [line.get_label() for line in ax.get_lines()][:2] == ["a", "b"]
    plt.close(ax.figure)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: ch03.plot_sketch_accuracy("a"), TypeError,
         r"^rows must be a list of SketchAccuracy rows \(sketch_accuracy\), got str$"),
        (lambda: ch03.plot_sketch_accuracy([ch03.SketchAccuracy("a", 0, 0.1, 1, 1, 1)]),
         ValueError, r"^rows\[0\]\.k must"),
        (lambda: ch03.plot_sketch_accuracy([ch03.SketchAccuracy("a", 1, 0.0, 1, 1, 1)]),
         ValueError, r"^rows\[0\]\.relative_error must"),
        (lambda: ch03.plot_sketch_accuracy([ch03.SketchAccuracy("a", 1, -0.5, 1, 1, 1)]),
         ValueError, r"^rows\[0\]\.relative_error must"),
        (lambda: ch03.plot_sketch_accuracy(_sketch_rows(), ax=1), TypeError, "^ax must be None"),
        (lambda: ch03.plot_layer_view(torch.rand(1, 4, 4), torch.rand(4), torch.rand(4, 4), 0.5),
         ValueError, r"^cnfm_map must be a non-empty map"),
        (lambda: ch03.plot_layer_view(torch.rand(1, 4, 4), torch.rand(4, 4), torch.rand(4, 4),
                                      1 + 2e-6), ValueError, "^similarity must"),
        (lambda: ch03.plot_layer_view(torch.rand(1, 4, 4), torch.rand(4, 4), torch.rand(4, 4),
                                      -1 - 2e-6), ValueError, "^similarity must"),
        (lambda: ch03.plot_layer_view(torch.rand(1, 4, 4), torch.rand(4, 4), torch.rand(4, 4),
                                      torch.tensor([0.5])), TypeError, "^similarity must"),
        (lambda: ch03.plot_layer_view(torch.rand(1, 4, 4), torch.rand(4, 4), torch.rand(4, 4),
                                      0.5, fig=1), TypeError, "^fig must be None"),
    ],
)  # fmt: skip
def test_stop35_figures_name_a_bad_argument(call, error, match):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    with pytest.raises(error, match=match):
        call()
    assert plt.get_fignums() == before


def test_stop35_layer_view_figure_draws_the_image_and_both_maps_in_a_row():
    """Three panels side by side: the image, the CNFM map and the AGOP map (the arrays given),
    titled so; the suptitle names the title and the similarity to 3 decimals (a 0-d tensor
    read as its number; the bounds +-(1 + 1e-6) accepted; no title by default); no ticks."""
    import matplotlib.pyplot as plt
    import numpy as np

    g = torch.Generator().manual_seed(0)
    image, cm, am = (torch.rand(*s, generator=g, dtype=torch.float64)
                     for s in ((1, 4, 5), (3, 4), (3, 4)))  # fmt: skip
    given = plt.figure()
    fig = ch03.plot_layer_view(image, cm, am, torch.tensor(0.4567), title="net conv", fig=given)
    assert fig is given and len(fig.axes) == 3
    for ax, want, title in zip(fig.axes, (image[0], cm, am), ("image", "CNFM map", "AGOP map"),
                               strict=True):  # fmt: skip
        np.testing.assert_array_equal(ax.get_images()[0].get_array(), want.numpy())
        assert ax.get_title() == title
        assert len(ax.get_xticks()) == len(ax.get_yticks()) == 0
    spans = [(ax.get_subplotspec().rowspan[0], ax.get_subplotspec().colspan[0]) for ax in fig.axes]
    assert spans == [(0, 0), (0, 1), (0, 2)]
    assert fig.axes[0].get_subplotspec().get_gridspec().get_geometry() == (1, 3)
    assert fig.get_suptitle() == "net conv  CNFM-AGOP pearson 0.457"
    plt.close(fig)
    for s in (1 + 1e-6, -1 - 1e-6):
        fig = ch03.plot_layer_view(image, cm, am, s)
        assert fig.get_suptitle() == f"  CNFM-AGOP pearson {s:.3f}"
        plt.close(fig)


def _two_nets():
    """A zero-padded net (SimpleCNN, VALID convs) and one whose first conv pads circularly."""
    from agop_book.nets import SimpleCNN

    torch.manual_seed(0)
    circ = nn.Sequential(
        nn.Conv2d(3, 3, 3, padding=1, padding_mode="circular"), nn.Tanh(),
        nn.Conv2d(3, 2, 3), nn.Flatten(), nn.Linear(2 * 6 * 6, 2),
    ).double().eval()  # fmt: skip
    net = SimpleCNN(3, 4, image_size=8, depth=2, width=3, seed=0).double().eval()
    g = torch.Generator().manual_seed(1)
    x0, x1 = torch.rand(2, 3, 8, 8, generator=g, dtype=torch.float64)
    return net, circ, x0, x1


def _reference_view(net, layer, x, sketch, seed):
    """The view by its definition: the factored patch-AGOP of one image, densified, and
    ||M^{1/2} z[j]|| over the layer input's patches, for M = W^T W and the AGOP."""
    from agop.features import feature_map, patch_agop

    A = patch_agop(net, x[None], sketch=sketch, seed=seed, factored=True, device="cpu")[layer]
    conv = dict(net.named_modules())[layer]
    z = layer_inputs(net, x[None], [layer])[layer]
    p = conv.padding[0]
    z = nn.functional.pad(z, (p, p, p, p), mode="circular")  # what the layer sees
    kw = dict(kernel_size=conv.kernel_size, padding=0)
    return A, feature_map(cnfm(conv), z, **kw)[0], feature_map(A.dense(), z, **kw)[0]


def _inside(m, layer):
    """The positions whose patch lies inside the image (a circular layer's border patches
    wrap around; the maps read them zero-padded, as feature_map pads)."""
    return m[1:-1, 1:-1] if layer == "0" else m


@pytest.mark.parametrize("which, layer", [(0, "convs.1"), (1, "0")])
def test_stop35_layer_views_maps_are_the_definitions_for_zero_and_circular_padding(which, layer):
    """Each view's CNFM map and AGOP map against the definition, its factors the AGOP of that
    image with the views' sketch and seed (defaults 8 and 0), a float32 image read in the
    model's dtype; layer_view passes its sketch on."""
    nets = _two_nets()
    net, x0 = nets[which], nets[2]
    views = ch03.LayerViews({"m": net}, {"i": x0.float()})
    v = views.view("m", layer, "i")
    A, cmap, amap = _reference_view(net, layer, x0.float().double(), 8, 0)
    torch.testing.assert_close(v["factors"].dense(), A.dense(), rtol=1e-10, atol=1e-12)
    for got, want in ((v["cnfm_map"], cmap), (v["agop_map"], amap)):
        assert got.shape == want.shape
        torch.testing.assert_close(_inside(got, layer), _inside(want, layer), rtol=1e-7, atol=1e-10)
    w = ch03.layer_view(net, layer, x0, sketch=2, seed=4)
    A2, cmap2, amap2 = _reference_view(net, layer, x0, 2, 4)
    torch.testing.assert_close(
        _inside(w["agop_map"], layer), _inside(amap2, layer), rtol=1e-7, atol=1e-10
    )
    maps = ch03.feature_maps(net, x0.float(), {layer: A2})
    for got, want in zip(maps[layer], (cmap2, amap2), strict=True):
        torch.testing.assert_close(_inside(got, layer), _inside(want, layer), rtol=1e-7, atol=1e-10)


def test_stop35_layer_views_replace_an_image_and_keep_the_others():
    """add_image recomputes the views of the replaced image only (the factors and the maps of
    the new image), the other image's cached view is kept."""
    net, _, x0, x1 = _two_nets()
    views = ch03.LayerViews({"m": net}, {"p": x0, "q": x1}, sketch=3)
    views.view("m", "convs.0", "p")
    q = views.view("m", "convs.1", "q")
    views.add_image("p", x1)
    p = views.view("m", "convs.1", "p")
    assert views.view("m", "convs.1", "q") is q
    torch.testing.assert_close(p["agop_map"], q["agop_map"], rtol=0, atol=0)
    torch.testing.assert_close(p["image"], x1, rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"^x must be a non-empty image"):
        views.add_image("p", torch.zeros(3, 0, 4))


def test_stop35_layer_views_figure_titles_its_model_and_layer_into_the_given_figure():
    import matplotlib.pyplot as plt

    net, _, x0, _ = _two_nets()
    views = ch03.LayerViews({"m": net}, {"i": x0}, sketch=2)
    given = plt.figure()
    fig = ch03.plot_layer_views(views, "m", "convs.1", "i", fig=given)
    pearson = views.view("m", "convs.1", "i")["pearson"]
    assert fig is given and fig.get_suptitle() == f"m convs.1  CNFM-AGOP pearson {pearson:.3f}"
    plt.close(fig)
    with pytest.raises(TypeError, match="^fig must be None or a"):
        ch03.plot_layer_views(views, "m", "convs.1", "i", fig=1)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda n, x: ch03.LayerViews([], {"i": x}), TypeError,
         r"^models must be a dict \{label: torch\.nn\.Module\}, got list$"),
        (lambda n, x: ch03.LayerViews({"m": n}, []), TypeError,
         r"^images must be a dict \{label: \(c, H, W\) image\}, got list$"),
        (lambda n, x: ch03.LayerViews({"m": n}, {"i": x[None]}), ValueError,
         r"^images\['i'\] must be a non-empty image"),
        (lambda n, x: ch03.LayerViews({"m": n}, {"i": x}, sketch=0), ValueError, "^sketch must"),
        (lambda n, x: ch03.LayerViews({"m": n}, {"i": x}, device="nope"), Exception, ""),
        (lambda n, x: ch03.LayerViews({"m": n}, {"i": x[:, :2]}).view("m", "convs.0", "i"),
         ValueError, r"^images\['i'\] of shape \(3, 2, 8\) does not fit model 'm'"),
        (lambda n, x: ch03.LayerViews({"m": n}, {"i": x}).view("z", "convs.0", "i"),
         ValueError, r"^model must be one of \['m'\], got 'z'$"),
        (lambda n, x: ch03.layer_view(n, "convs.0", torch.zeros(3, 0, 8)), ValueError,
         "^x must be a non-empty image"),
        (lambda n, x: ch03.layer_view(n, "convs.0", x * math.nan), ValueError, "^x "),
        (lambda n, x: ch03.feature_maps(n, x * math.nan, {"convs.0": torch.eye(27)}), ValueError,
         "^x "),
        (lambda n, x: ch03.sketch_accuracy(n, x[None] * math.nan, [1]), ValueError, "^X "),
    ],
)  # fmt: skip
def test_stop35_views_name_their_arguments(call, error, match):
    net, _, x0, _ = _two_nets()
    with pytest.raises(error, match=match):
        call(net, x0)


def test_stop35_layer_views_take_a_sketch_of_one_probe():
    net, _, x0, _ = _two_nets()
    v = ch03.LayerViews({"m": net}, {"i": x0}, sketch=1).view("m", "convs.0", "i")
    A, _, amap = _reference_view(net, "convs.0", x0, 1, 0)
    torch.testing.assert_close(v["agop_map"], amap, rtol=1e-7, atol=1e-10)


def test_stop35_sketch_accuracy_layers_seed_dtype_and_no_progress_bar(capsys):
    """Only the layers asked for; the default seed is 0; float32 images read in the model's
    dtype; nothing written to stderr (no progress bar)."""
    net, _, x0, x1 = _two_nets()
    X = torch.stack([x0, x1])
    rows = ch03.sketch_accuracy(net, X.float(), [2], layers=["convs.1"])
    assert [r.layer for r in rows] == ["convs.1"]
    same = ch03.sketch_accuracy(net, X.float().double(), [2], layers=["convs.1"], seed=0)
    assert rows == same
    assert capsys.readouterr().err == ""


def test_stop35_uploaded_files_read_ipywidgets_8_objects_by_attribute():
    """ipywidgets 8 may give objects with ``name`` and ``content`` attributes: read as such,
    the name as a str and the content as bytes; a missing field is named."""
    from types import SimpleNamespace

    files = (SimpleNamespace(name="a.png", content=memoryview(b"12")),)
    assert ch03.uploaded_files(files) == [("a.png", b"12")]
    assert ch03.uploaded_files({"b.png": {"content": bytearray(b"3")}}) == [("b.png", b"3")]
    with pytest.raises(ValueError, match=r"^value\[0\] must have a 'name' field"):
        ch03.uploaded_files((SimpleNamespace(content=b"1"),))


def test_stop35_pretrained_explorer_shows_the_chosen_view_and_an_uploaded_image(monkeypatch):
    """What the explorer shows: the view of its own LayerViews (sketch 8 by default) for the
    chosen model, layer and image, in one figure; a second model resets the layer to its
    first; an uploaded PNG (one file, images only) is preprocessed at ``size``, added and
    shown, one redraw per change."""
    pytest.importorskip("ipywidgets")
    import datetime
    import io as _io

    import IPython.display
    import numpy as np
    from PIL import Image

    from agop_book.bench.widgets import _controls
    from agop_book.data import preprocess
    from agop_book.nets import SimpleCNN
    from agop_book.plots import _image_for_display

    nets = {f"n{s}": SimpleCNN(3, 4, image_size=16, depth=2 + s, width=3, seed=s).double().eval()
            for s in (0, 1)}  # fmt: skip
    image = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    shown = []
    monkeypatch.setattr(
        IPython.display,
        "display",
        lambda fig: shown.append(
            (fig, fig.get_suptitle(), fig.axes[0].get_images()[0].get_array())
        ),
    )
    box = ch03.pretrained_explorer(nets, {"noise": image}, size=16)
    ref = ch03.LayerViews(nets, {"noise": image}, sketch=8)

    def title(model, layer, img):
        return f"{model} {layer}  CNFM-AGOP pearson {ref.view(model, layer, img)['pearson']:.3f}"

    assert [s[1] for s in shown] == [title("n0", "convs.0", "noise")]
    c = _controls(box)
    upload = c["your image"]
    assert upload.accept == "image/*" and upload.multiple is False
    c["layer"].value = "convs.1"
    c["model"].value = "n1"
    assert c["layer"].value == "convs.0"
    assert list(c["layer"].options) == ["convs.0", "convs.1", "convs.2"]
    assert [s[1] for s in shown[1:]] == [
        title("n0", "convs.1", "noise"),
        title("n1", "convs.0", "noise"),
    ]
    pixels = (np.arange(20 * 20 * 3).reshape(20, 20, 3) % 251).astype(np.uint8)
    buf = _io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buf, format="PNG")
    upload.value = ({"name": "me.png", "type": "image/png", "size": len(buf.getvalue()),
                     "content": memoryview(buf.getvalue()),
                     "last_modified": datetime.datetime(2026, 1, 1)},)  # fmt: skip
    assert list(c["image"].options) == ["noise", "me.png"] and c["image"].value == "me.png"
    assert len(shown) == 4
    x = preprocess(np.asarray(Image.open(_io.BytesIO(buf.getvalue())).convert("RGB")), size=16)[0]
    ref.add_image("me.png", x)
    assert shown[-1][1] == title("n1", "convs.0", "me.png")
    np.testing.assert_allclose(shown[-1][2], _image_for_display(x)[0], rtol=1e-6, atol=1e-7)
    assert len({id(s[0]) for s in shown}) == 1


def test_stop35_feature_maps_read_patches_at_the_layers_dilation():
    """A dense AGOP of a dilated conv: the map of x[j] taken with the layer's dilation, the
    definition written with an explicit dilated patch reference."""
    from agop.features import feature_map

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 3, 3, dilation=2), nn.Flatten(), nn.Linear(3 * 4 * 4, 1))
    net = net.double().eval()
    x = torch.rand(2, 8, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    g = torch.Generator().manual_seed(3)
    B = torch.randn(18, 18, generator=g, dtype=torch.float64)
    A = B @ B.T
    maps = ch03.feature_maps(net, x, {"0": A})
    patches = torch.stack([x[:, i : i + 5 : 2, j : j + 5 : 2].reshape(-1)
                           for i in range(4) for j in range(4)])  # fmt: skip
    want = torch.einsum("pq,qr,pr->p", patches, A, patches).sqrt().reshape(4, 4)
    torch.testing.assert_close(maps["0"][1], want, rtol=1e-10, atol=1e-12)
    ref = feature_map(A, x[None], 3, padding=0, dilation=2)[0]
    torch.testing.assert_close(maps["0"][1], ref, rtol=1e-10, atol=1e-12)
