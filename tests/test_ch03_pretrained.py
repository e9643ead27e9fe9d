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


def test_factored_agops_of_another_layer_and_a_zero_agop_are_named():
    """The factored AGOP of a wider network failed naming its inner ``G``; an image that gives
    a layer no gradient (zeros behind ReLUs) failed with "the similarity is undefined"."""
    from agop.features import patch_agop
    from agop_book.nets import SimpleCNN

    net = SimpleCNN(3, 4, image_size=16, depth=2, width=4, seed=0).double().eval()
    wide = SimpleCNN(3, 4, image_size=16, depth=2, width=6, seed=0).double().eval()
    X = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    other = patch_agop(wide, X, factored=True, device="cpu")
    with pytest.raises(
        ValueError,
        match=r"^agops\['convs\.0'\] has factors of another layer: W of shape \(1, 6, 27\), "
        r"this layer's filter matrix is \(1, 4, 27\)",
    ):
        ch03.feature_maps(net, X[0], other)
    own = patch_agop(net, X, factored=True, device="cpu")
    assert set(ch03.feature_maps(net, X[0], own)) == {"convs.0", "convs.1"}
    with pytest.raises(ValueError, match=r"^x gives layer 'convs\.0' .* a zero AGOP"):
        ch03.layer_view(net, "convs.0", torch.zeros(3, 16, 16, dtype=torch.float64))
    view = ch03.layer_view(net, "convs.0", X[0])
    alone = patch_agop(net, X[:1], sketch=8, seed=0, factored=True, device="cpu")
    assert view["pearson"] == pytest.approx(alone["convs.0"].pearson(), rel=1e-12)


# Mutation testing, stop 35


def _net35():
    from agop_book.nets import SimpleCNN

    return SimpleCNN(3, 2, image_size=8, depth=2, width=3, seed=0).double().eval()


def _pool_net35(odd=False):
    """A fully convolutional net (any image size); ``odd``: a reflect-padded first layer and a
    dilated, strided, zero-padded second one."""
    torch.manual_seed(1)
    first = (
        nn.Conv2d(3, 3, 3, padding=1, padding_mode="reflect", bias=False)
        if odd
        else nn.Conv2d(3, 3, 3, padding=1)
    )
    second = nn.Conv2d(3, 3, 3, stride=2, padding=2, dilation=2) if odd else nn.Conv2d(3, 3, 3)
    return (
        nn.Sequential(
            first, nn.ReLU(), second, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 2)
        )
        .double()
        .eval()
    )


def _image35(seed=0, size=8):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(3, size, size, generator=g, dtype=torch.float64)


def _patch_map(A, z, conv):
    """sqrt(z[j]^T A z[j]) over the patches conv reads, taken one by one (zero padding)."""
    patches = nn.functional.unfold(
        z, conv.kernel_size, dilation=conv.dilation, padding=conv.padding, stride=conv.stride
    )[0]
    with torch.no_grad():
        H, W = nn.functional.conv2d(
            z, conv.weight, None, conv.stride, conv.padding, conv.dilation
        ).shape[-2:]
    values = [float(p @ A @ p) for p in patches.T]
    return torch.tensor(values, dtype=torch.float64).clamp_min(0).sqrt().reshape(H, W)


def _spy(monkeypatch, module, name="patch_agop"):
    calls, real = [], getattr(module, name)
    monkeypatch.setattr(module, name, lambda *a, **k: calls.append(k) or real(*a, **k))
    return calls


def test_sketch_accuracy_passes_layers_outputs_chunks_device_and_seeds_on(monkeypatch):
    """Exactly one exact and one sketched patch-AGOP per k, over the chosen layers and outputs,
    in the chosen chunks, on the chosen device, without progress bars, the sketch drawn with
    ``seed + k``; the rows against the brute-force AGOP over those outputs."""
    from agop.features import patch_agop
    from agop_book.reference import brute_force_patch_agop

    net, X = _net35(), torch.stack([_image35(0), _image35(1)])
    calls = _spy(monkeypatch, ansatz)
    rows = ch03.sketch_accuracy(
        net, X, [3], layers=["convs.1"], outputs=[1], chunk_size=1, seed=4, device="cpu"
    )
    common = dict(layers=["convs.1"], outputs=[1], chunk_size=1, device="cpu", progress=False)
    assert calls == [
        dict(common, sketch=None, seed=4, factored=True),
        dict(common, sketch=3, seed=7, factored=True),
    ]
    assert [(r.layer, r.k) for r in rows] == [("convs.1", 3)]
    A = brute_force_patch_agop(net, X, "convs.1", outputs=[1])
    Ak = patch_agop(net, X, layers=["convs.1"], sketch=3, seed=7, outputs=[1], device="cpu")
    Ak = Ak["convs.1"]
    assert rows[0].relative_error == pytest.approx(float((Ak - A).norm() / A.norm()), rel=1e-9)
    assert rows[0].ansatz_pearson == pytest.approx(correlation(cnfm(net.convs[1]), Ak), abs=1e-10)


def test_sketch_accuracy_default_seed_is_zero_and_its_images_are_X_in_the_models_dtype():
    from agop.features import patch_agop

    net, X = _net35(), torch.stack([_image35(0), _image35(1)])
    (row,) = ch03.sketch_accuracy(net, X, [2], layers=["convs.0"])
    Ak = patch_agop(net, X, layers=["convs.0"], sketch=2, seed=2, device="cpu")["convs.0"]
    A = patch_agop(net, X, layers=["convs.0"], device="cpu")["convs.0"]
    assert row.relative_error == pytest.approx(float((Ak - A).norm() / A.norm()), rel=1e-9)
    single = ch03.sketch_accuracy(net, X.float(), [2], layers=["convs.0"])
    same = ch03.sketch_accuracy(net, X.float().double(), [2], layers=["convs.0"])
    assert single == same
    with pytest.raises(ValueError, match=r"^X must have shape \(n, c, H, W\)"):
        ch03.sketch_accuracy(net, _image35(), [2])


def test_feature_maps_of_factored_agops_equal_the_maps_patch_by_patch():
    """Factored AGOPs (drawn through the convolution) and dense ones, on a zero-padded,
    dilated, strided layer and behind a reflect-padded one, against sqrt(z[j]^T A z[j]) over
    the patches F.unfold takes; the CNFM map against W^T W."""
    from agop.features import patch_agop

    net, x = _net35(), _image35()
    factored = patch_agop(net, x[None], factored=True, device="cpu")
    maps = ch03.feature_maps(net, x, factored)
    z = layer_inputs(net, x[None], ["convs.0", "convs.1"])
    for name, conv in (("convs.0", net.convs[0]), ("convs.1", net.convs[1])):
        A, M = factored[name].dense(), cnfm(conv)
        torch.testing.assert_close(maps[name][1], _patch_map(A, z[name], conv))
        torch.testing.assert_close(maps[name][0], _patch_map(M, z[name], conv))
    odd, x = _pool_net35(odd=True), _image35(1)
    factored = patch_agop(odd, x[None], factored=True, device="cpu")
    dense = {n: f.dense() for n, f in factored.items()}
    z = layer_inputs(odd, x[None], ["2"])["2"]
    for agops in (factored, dense):
        maps = ch03.feature_maps(odd, x, agops)
        torch.testing.assert_close(maps["2"][1], _patch_map(dense["2"], z, odd[2]))
        torch.testing.assert_close(maps["2"][0], _patch_map(cnfm(odd[2]), z, odd[2]))
    reflect = ch03.feature_maps(odd, x, {"0": factored["0"]})["0"]
    torch.testing.assert_close(reflect, ch03.feature_maps(odd, x, {"0": dense["0"]})["0"])


def test_feature_maps_read_x_in_the_models_dtype_and_name_it():
    from agop.features import patch_agop

    net, x = _net35(), _image35()
    agops = patch_agop(net, x[None], factored=True, device="cpu")
    single = ch03.feature_maps(net, x.float(), agops)
    same = ch03.feature_maps(net, x.float().double(), agops)
    for n in same:
        torch.testing.assert_close(single[n], same[n], rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"^x must have shape \(n, c, H, W\)"):
        ch03.feature_maps(net, x[0], agops)


def _view_reference(net, x, layer, sketch, seed):
    from agop.features import patch_agop

    factors = patch_agop(net, x[None], sketch=sketch, seed=seed, factored=True, device="cpu")
    return factors[layer].dense()


def _check_view(view, net, x, layer, A):
    conv = net.get_submodule(layer)
    z = layer_inputs(net, x[None], [layer])[layer]
    torch.testing.assert_close(view["image"], x, rtol=0, atol=0)
    torch.testing.assert_close(view["factors"].dense(), A, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(view["agop_map"], _patch_map(A, z, conv))
    torch.testing.assert_close(view["cnfm_map"], _patch_map(cnfm(conv), z, conv))
    assert view["pearson"] == pytest.approx(correlation(cnfm(conv), A), abs=1e-10)


def test_layer_view_is_the_sketched_agop_of_its_image_and_its_maps():
    net, x = _net35(), _image35()
    view = ch03.layer_view(net, "convs.1", x, sketch=3, seed=2, device="cpu")
    _check_view(view, net, x, "convs.1", _view_reference(net, x, "convs.1", 3, 2))
    with pytest.raises(ValueError, match="^device must be None, 'cpu'"):
        ch03.layer_view(net, "convs.1", x, device="nope")
    with pytest.raises(ValueError, match=r"^x must be a non-empty image \(c, H, W\)"):
        ch03.layer_view(net, "convs.1", torch.zeros(3, 0, 8, dtype=torch.float64))
    with pytest.raises(ValueError, match="^x contains 1 non-finite"):
        ch03.layer_view(net, "convs.1", torch.where(x > x.max() - 1e-12, math.nan, x))


def test_layer_views_defaults_exact_sketch_and_the_models_dtype():
    """Default ``sketch=8``, ``seed=0``; ``sketch=None`` is the exact patch-AGOP of the image
    (brute force); a float32 image is read in the model's float64."""
    from agop_book.reference import brute_force_patch_agop

    net, x = _net35(), _image35()
    view = ch03.LayerViews({"m": net}, {"i": x}).view("m", "convs.0", "i")
    _check_view(view, net, x, "convs.0", _view_reference(net, x, "convs.0", 8, 0))
    exact = ch03.LayerViews({"m": net}, {"i": x}, sketch=None).view("m", "convs.1", "i")
    _check_view(view=exact, net=net, x=x, layer="convs.1",
                A=brute_force_patch_agop(net, x[None], "convs.1"))  # fmt: skip
    one = ch03.LayerViews({"m": net}, {"i": x}, sketch=1, seed=5).view("m", "convs.0", "i")
    _check_view(one, net, x, "convs.0", _view_reference(net, x, "convs.0", 1, 5))
    single = ch03.LayerViews({"m": net}, {"i": x.float()}).view("m", "convs.0", "i")
    torch.testing.assert_close(single["image"], x.float().double(), rtol=0, atol=0)


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda net, x: ch03.LayerViews([], {"i": x}), TypeError,
         r"^models must be a dict \{label: torch\.nn\.Module\}, got list"),
        (lambda net, x: ch03.LayerViews({"m": net}, []), TypeError,
         r"^images must be a dict \{label: \(c, H, W\) image\}, got list"),
        (lambda net, x: ch03.LayerViews({"m": net}, {"a": torch.zeros(3, 0, 8)}), ValueError,
         r"^images\['a'\] must be a non-empty image"),
        (lambda net, x: ch03.LayerViews({"m": net}, {"i": x}, sketch=0), ValueError,
         "^sketch must be a positive"),
        (lambda net, x: ch03.LayerViews({"m": net}, {"i": x}, device="nope"), ValueError,
         "^device must be None"),
        (lambda net, x: ch03.LayerViews({"m": net}, {"i": x}).view("zz", "convs.0", "i"),
         ValueError, r"^model must be one of \['m'\], got 'zz'"),
        (lambda net, x: ch03.LayerViews({"m": net}, {"i": x[:2]}).view("m", "convs.0", "i"),
         ValueError, r"^images\['i'\] of shape \(2, 8, 8\) does not fit model 'm'"),
        (lambda net, x: ch03.LayerViews({"m": net}, {"z": 0 * x}).view("m", "convs.0", "z"),
         ValueError, r"^images\['z'\] gives layer 'convs\.0' of model 'm' a zero AGOP"),
        (lambda net, x: ch03.LayerViews({"m": net}, {"i": x}).add_image("j", x[0]), ValueError,
         r"^x must be a non-empty image \(c, H, W\)"),
    ],
)  # fmt: skip
def test_layer_views_name_a_bad_argument(make, error, match):
    with pytest.raises(error, match=match):
        make(_net35(), _image35())


def test_layer_views_cache_each_view_and_recompute_a_replaced_image(monkeypatch):
    """One set of backward passes per (model, image), on the views' device; each view its own
    image's; replacing an image recomputes its views only."""
    net, a, b, c = _net35(), _image35(0), _image35(1), _image35(2)
    views = ch03.LayerViews({"m": net}, {"a": a, "b": b}, sketch=2, seed=1, device="cpu")
    calls = _spy(monkeypatch, ch03)
    va0, va1 = views.view("m", "convs.0", "a"), views.view("m", "convs.1", "a")
    vb0 = views.view("m", "convs.0", "b")
    assert [k["device"] for k in calls] == ["cpu", "cpu"]
    for view, x, layer in ((va0, a, "convs.0"), (va1, a, "convs.1"), (vb0, b, "convs.0")):
        _check_view(view, net, x, layer, _view_reference(net, x, layer, 2, 1))
    views.add_image("b", c)
    assert views.view("m", "convs.0", "a") is va0 and views.view("m", "convs.1", "a") is va1
    assert len(calls) == 2  # image a is not recomputed
    for layer in ("convs.0", "convs.1"):
        _check_view(
            views.view("m", layer, "b"), net, c, layer, _view_reference(net, c, layer, 2, 1)
        )
    assert len(calls) == 3 and views.view("m", "convs.0", "a") is va0


def test_layer_views_behind_a_reflect_padded_layer_are_its_feature_maps():
    from agop.features import patch_agop

    odd, x = _pool_net35(odd=True), _image35(3)
    views = ch03.LayerViews({"m": odd}, {"i": x}, sketch=3, seed=0)
    factors = patch_agop(odd, x[None], sketch=3, seed=0, factored=True, device="cpu")
    view = views.view("m", "0", "i")
    expected = ch03.feature_maps(odd, x, {"0": factors["0"].dense()})["0"]
    torch.testing.assert_close(view["cnfm_map"], expected[0])
    torch.testing.assert_close(view["agop_map"], expected[1])
    _check_view(views.view("m", "2", "i"), odd, x, "2", factors["2"].dense())


def test_uploaded_files_read_objects_and_dicts_in_order():
    from types import SimpleNamespace

    value = (SimpleNamespace(name="a.png", content=memoryview(b"12")),
             {"name": "b.png", "content": bytearray(b"3")})  # fmt: skip
    assert ch03.uploaded_files(value) == [("a.png", b"12"), ("b.png", b"3")]
    value = {"a.png": {"content": b"1"}, "b.png": {"content": memoryview(b"2")}}
    assert ch03.uploaded_files(value) == [("a.png", b"1"), ("b.png", b"2")]
    with pytest.raises(ValueError, match=r"^value\[0\] must have a 'name' field"):
        ch03.uploaded_files((SimpleNamespace(content=b"1"),))
    with pytest.raises(ValueError, match=r"^value\[1\] must have a 'content' field"):
        ch03.uploaded_files(({"name": "a", "content": b""}, SimpleNamespace(name="b")))


def _rows35():
    R = ch03.SketchAccuracy
    return [R("b", 16, 0.1, 1, 1, 1), R("a", 4, 0.3, 1, 1, 1), R("a", 16, 0.2, 1, 1, 1),
            R("b", 4, 0.5, 1, 1, 1), R("a", 1, 0.8, 1, 1, 1)]  # fmt: skip


def test_sketch_accuracy_figure_draws_each_layers_errors_and_the_slope():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    try:
        assert ch03.plot_sketch_accuracy(_rows35(), ax=ax) is ax
        lines = ax.get_lines()
        assert [line.get_label() for line in lines] == ["b", "a", "$\\propto 1/\\sqrt{k}$"]
        assert lines[0].get_xydata().tolist() == [[4, 0.5], [16, 0.1]]
        assert lines[1].get_xydata().tolist() == [[1, 0.8], [4, 0.3], [16, 0.2]]
        assert lines[2].get_xdata().tolist() == [1, 4, 16]
        assert lines[2].get_ydata().tolist() == pytest.approx([0.8, 0.4, 0.2])
        assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
        assert ax.get_xlabel() == "probes $k$"
        assert ax.get_ylabel() == "relative error of the sketch"
    finally:
        plt.close(fig)
    R = ch03.SketchAccuracy
    before = plt.get_fignums()
    ax = ch03.plot_sketch_accuracy([R("a", 2, 0.5, 1, 1, 1), R("b", 2, 1.5, 1, 1, 1)])
    try:  # the slope through the mean error at the smallest k
        assert ax.get_lines()[2].get_xydata().tolist() == [[2, 1.0]]
        assert plt.get_fignums() == [*before, ax.figure.number]
    finally:
        plt.close(ax.figure)


@pytest.mark.parametrize(
    "rows, ax, match",
    [
        ([], None, r"^rows must hold at least one of SketchAccuracy rows \(sketch_accuracy\)"),
        ([ch03.SketchAccuracy("a", 0, 0.5, 1, 1, 1)], None, r"^rows\[0\]\.k must be a positive"),
        ([ch03.SketchAccuracy("a", 1, 0.0, 1, 1, 1)], None, r"^rows\[0\]\.relative_error must"),
        ([ch03.SketchAccuracy("a", 1, -0.5, 1, 1, 1)], None, r"^rows\[0\]\.relative_error must"),
        ([ch03.SketchAccuracy("a", 1, 0.5, 1, 1, 1)], 3, "^ax must be None or a matplotlib Axes"),
    ],
)
def test_sketch_accuracy_figure_names_a_bad_row(rows, ax, match):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    with pytest.raises((ValueError, TypeError), match=match):
        ch03.plot_sketch_accuracy(rows, ax=ax)
    assert plt.get_fignums() == before


def test_layer_view_figure_draws_the_image_both_maps_and_the_correlation():
    import matplotlib.pyplot as plt

    g = torch.Generator().manual_seed(0)
    image, cmap_, amap = (torch.rand(s, generator=g) for s in ((1, 4, 5), (3, 4), (2, 3)))
    fig = ch03.plot_layer_view(image, cmap_, amap, torch.tensor(-0.25), title="t")
    try:
        axes = fig.axes
        assert len(axes) == 3
        torch.testing.assert_close(
            torch.as_tensor(axes[0].images[0].get_array()), image[0].double()
        )
        torch.testing.assert_close(torch.as_tensor(axes[1].images[0].get_array()), cmap_.double())
        torch.testing.assert_close(torch.as_tensor(axes[2].images[0].get_array()), amap.double())
        assert [len(ax.images) for ax in axes] == [1, 1, 1]
        assert [ax.get_title() for ax in axes] == ["image", "CNFM map", "AGOP map"]
        assert fig._suptitle.get_text() == "t  CNFM-AGOP pearson -0.250"
        boxes = [ax.get_position() for ax in axes]  # side by side
        assert boxes[0].x1 <= boxes[1].x0 and boxes[1].x1 <= boxes[2].x0
        assert max(b.y0 for b in boxes) < min(b.y1 for b in boxes)
        assert ch03.plot_layer_view(image, amap, cmap_, 1.0, fig=fig) is fig  # redrawn in place
        assert len(fig.axes) == 3 and fig._suptitle.get_text() == "  CNFM-AGOP pearson 1.000"
        torch.testing.assert_close(
            torch.as_tensor(fig.axes[1].images[0].get_array()), amap.double()
        )
        assert ch03.plot_layer_view(image, amap, cmap_, -1.0, fig=fig) is fig
    finally:
        plt.close(fig)


@pytest.mark.parametrize(
    "kw, error, match",
    [
        (dict(similarity=-1.5), ValueError, "^similarity"),
        (dict(similarity=1.5), ValueError, "^similarity"),
        (dict(similarity=torch.tensor([0.5])), TypeError, "^similarity"),
        (dict(cnfm_map=torch.rand(1, 3, 3)), ValueError, "^cnfm_map must be a non-empty map"),
        (dict(fig=3), TypeError, "^fig must be None or a matplotlib Figure"),
    ],
)
def test_layer_view_figure_names_a_bad_argument(kw, error, match):
    import matplotlib.pyplot as plt

    args = dict(image=_IMG, cnfm_map=_MAP, agop_map=_MAP, similarity=0.5) | kw
    before = plt.get_fignums()
    with pytest.raises(error, match=match):
        ch03.plot_layer_view(**args)
    assert plt.get_fignums() == before


def test_layer_views_figure_draws_the_cached_view_in_the_given_figure():
    import matplotlib.pyplot as plt

    net, x = _net35(), _image35()
    views = ch03.LayerViews({"m": net}, {"i": x}, sketch=2)
    fig = plt.figure()
    try:
        assert ch03.plot_layer_views(views, "m", "convs.1", "i", fig=fig) is fig
        v = views.view("m", "convs.1", "i")
        assert fig._suptitle.get_text() == f"m convs.1  CNFM-AGOP pearson {v['pearson']:.3f}"
        torch.testing.assert_close(
            torch.as_tensor(fig.axes[2].images[0].get_array()), v["agop_map"]
        )
        with pytest.raises(TypeError, match="^fig must be None"):  # before the bad model
            ch03.plot_layer_views(views, "nope", "convs.1", "i", fig=3)
    finally:
        plt.close(fig)


def _png35(mode="RGBA", size=(12, 10)):
    import io as _io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, (size[1], size[0], len(mode)), dtype=np.uint8)
    buffer = _io.BytesIO()
    Image.fromarray(array, mode).save(buffer, format="PNG")
    return buffer.getvalue()


def _run_explorer(monkeypatch, *args, **kwargs):
    """The explorer and what it displayed, as ``(figure, suptitle, agop map)`` per display."""
    import IPython.display
    from matplotlib.figure import Figure

    shown = []

    def display(obj):
        assert isinstance(obj, Figure)
        shown.append((obj, obj._suptitle.get_text(), obj.axes[2].images[0].get_array().copy()))

    monkeypatch.setattr(IPython.display, "display", display)
    return ch03.pretrained_explorer(*args, **kwargs), shown


def _controls35(box):
    from agop_book.bench.widgets import _controls

    return _controls(box)


def test_pretrained_explorer_draws_the_sketch_of_its_arguments(monkeypatch):
    pytest.importorskip("ipywidgets")
    net, x = _pool_net35(), _image35()
    for kw, sketch in ((dict(sketch=3), 3), ({}, 8)):
        box, shown = _run_explorer(monkeypatch, {"m": net}, {"i": x}, size=8, **kw)
        A = _view_reference(net, x, "0", sketch, 0)
        (fig, title, agop_map), = shown  # fmt: skip
        assert title == f"m 0  CNFM-AGOP pearson {correlation(cnfm(net[0]), A):.3f}"
        z = layer_inputs(net, x[None], ["0"])["0"]
        torch.testing.assert_close(torch.as_tensor(agop_map), _patch_map(A, z, net[0]))
        c = _controls35(box)
        c["layer"].value = "2"
        assert len(shown) == 2 and shown[1][0] is fig and shown[1][1].startswith("m 2 ")
    upload = c["your image"]
    assert (upload.accept, upload.multiple) == ("image/*", False)


def test_pretrained_explorer_switches_layers_with_the_model_and_draws_once(monkeypatch):
    pytest.importorskip("ipywidgets")
    models = {"m": _pool_net35(), "o": _pool_net35(odd=True)}
    layers = list(models["o"])
    models["o"] = nn.Sequential(*layers[:2], nn.Identity(), *layers[2:]).eval()
    box, shown = _run_explorer(monkeypatch, models, {"i": _image35()}, size=8, sketch=2)
    c = _controls35(box)
    c["layer"].value = "2"
    c["model"].value = "o"
    assert list(c["layer"].options) == ["0", "3"] and c["layer"].value == "0"
    assert [s[1].split("  ")[0] for s in shown] == ["m 0", "m 2", "o 0"]


def test_pretrained_explorer_adds_an_uploaded_image_and_draws_it_once(monkeypatch):
    """An RGBA upload, read as RGB, preprocessed at ``size`` (default 96), added to the views
    under its name, selected, and drawn once."""
    pytest.importorskip("ipywidgets")
    import datetime
    import io as _io

    import numpy as np
    from PIL import Image

    from agop_book.data import preprocess

    net, x = _pool_net35(), _image35()
    content = _png35()
    rgb = np.asarray(Image.open(_io.BytesIO(content)).convert("RGB"))
    when = datetime.datetime(2024, 1, 1)
    for kw, size in ((dict(size=8), 8), ({}, 96)):
        views = ch03.LayerViews({"m": net}, {"i": x}, sketch=2)
        box, shown = _run_explorer(monkeypatch, {"m": net}, {"i": x}, views=views, **kw)
        c = _controls35(box)
        item = dict(name="me.png", type="image/png", size=len(content), last_modified=when)
        c["your image"].value = (dict(item, content=memoryview(content)),)
        expected = preprocess(rgb, size=size)[0]
        assert list(views.images) == ["i", "me.png"]
        torch.testing.assert_close(views.images["me.png"], expected, rtol=0, atol=0)
        assert list(c["image"].options) == ["i", "me.png"] and c["image"].value == "me.png"
        assert len(shown) == 2
        v = views.view("m", "0", "me.png")
        assert shown[1][1] == f"m 0  CNFM-AGOP pearson {v['pearson']:.3f}"
        torch.testing.assert_close(torch.as_tensor(shown[1][2]), v["agop_map"])


def test_feature_maps_of_a_reflect_padded_layer_read_its_reflected_patches():
    """A bug found at stop 35: a layer that pads by reflection (``padding_mode="reflect"``,
    also replicate or circular) had its border patches read zero-padded, up to 0.4 off the
    layer's own ``|W z[j]|`` here; now z is padded as the layer pads it."""
    from types import SimpleNamespace

    from agop.features import patch_agop

    odd, x = _pool_net35(odd=True), _image35(1)
    factored = patch_agop(odd, x[None], factored=True, device="cpu")
    z = layer_inputs(odd, x[None], ["0"])["0"]
    padded = nn.functional.pad(z, (1, 1, 1, 1), mode="reflect")
    bare = SimpleNamespace(kernel_size=(3, 3), dilation=(1, 1), padding=(0, 0), stride=(1, 1),
                           weight=odd[0].weight)  # fmt: skip
    with torch.no_grad():
        layer_norm = nn.functional.conv2d(padded, odd[0].weight).norm(dim=1)[0]
    for agops in (factored, {"0": factored["0"].dense()}):
        cnfm_map, agop_map = ch03.feature_maps(odd, x, agops, layers=["0"])["0"]
        torch.testing.assert_close(cnfm_map, layer_norm)
        torch.testing.assert_close(agop_map, _patch_map(factored["0"].dense(), padded, bare))


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
