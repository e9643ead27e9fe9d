"""agop_book.pretrained (torchvision weights), agop_book.data.images (ImageNet preprocessing; the
book's photographs, agop_book.data.load_photographs), agop_book.ch01_ansatz (the one-call
ansatz table) and agop_book.views (layer inputs, feature maps through the convolution).

The per-layer AGOPs of the one-pass call are checked against the brute-force patch-variable
reference (agop_book.reference) on each torchvision family, in float64, with random weights.
"""

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from agop.features import FilterSpace, cnfm, conv_layers, null_baselines, patch_agop
from agop.linalg import correlation, psd_power
from agop_book import ch01_ansatz as ansatz
from agop_book import ch03_pretrained as ch03
from agop_book import data as D
from agop_book import pretrained as P
from agop_book.reference import brute_force_patch_agop
from agop_book.views import factored_feature_map, layer_inputs

# (architecture, image size, layers): one strided/downsampling case per family
FAMILIES = [
    ("alexnet", 64, ["features.0", "features.3", "features.6"]),
    ("vgg11_bn", 32, ["features.0", "features.4", "features.8"]),
    ("resnet18", 32, ["conv1", "layer1.0.conv2", "layer2.0.conv1", "layer2.0.downsample.0"]),
    ("resnet50", 32, ["layer1.0.conv1", "layer2.0.conv2", "layer3.0.downsample.0"]),
]


def _model(name, seed=0):
    return P.load_model(name, pretrained=False, seed=seed, device="cpu", dtype=torch.float64)


def _images(n, size, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, size, size, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("name,size,layers", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_one_pass_agops_equal_brute_force(name, size, layers):
    model, X = _model(name), _images(2, size)
    table = ansatz.verify_ansatz(
        model, X, layers=layers, outputs=range(3), null_draws=0, keep_agops=True, device="cpu"
    )
    assert [r.layer for r in table] == layers
    for layer in layers:
        reference = brute_force_patch_agop(model, X, layer, outputs=range(3))
        A = table.agops[layer]
        assert A.dtype == torch.float64
        torch.testing.assert_close(
            A, reference, rtol=1e-9, atol=1e-12 * float(reference.abs().max())
        )
        M = cnfm(model.get_submodule(layer))
        assert table[layer].pearson == pytest.approx(correlation(M, reference), abs=1e-10)
        if M.shape[0] <= 600:  # a full eigendecomposition as the reference for AGOP^{1/2}
            assert table[layer].cosine_sqrt == pytest.approx(
                correlation(M, psd_power(reference, 0.5), "cosine"), abs=1e-6
            )
        assert table[layer].weight_shape == tuple(model.get_submodule(layer).weight.shape)


def _small_cnn(seed):
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


def test_every_conv_layer_by_default_and_init_columns():
    assert len(conv_layers(_model("resnet18"))) == 20
    model, init, X = _small_cnn(1), _small_cnn(2), _images(3, 8)[:, :2]
    table = ansatz.verify_ansatz(model, X, init=init, null_draws=0, device="cpu")
    assert [r.layer for r in table] == ["0", "3"]
    # the initial columns are the trained columns of the initial model
    init_table = ansatz.verify_ansatz(init, X, null_draws=0, device="cpu")
    for field in ("pearson", "cosine", "pearson_sqrt", "cosine_sqrt"):
        np.testing.assert_allclose(
            table.column(f"init_{field}"), init_table.column(field), atol=1e-12
        )
    for row in table:
        M, M0 = cnfm(model.get_submodule(row.layer)), cnfm(init.get_submodule(row.layer))
        assert row.cnfm_init_vs_trained == pytest.approx(correlation(M0, M), abs=1e-12)
    assert table.n_outputs == 4 and table.image_size == (8, 8) and table.n_images == 3
    text = table.format_table()
    assert "6x2x3x3" in text and "5x6x3x3" in text
    assert len(text.splitlines()) == 2 + len(table)  # headers, rule, one line per layer
    assert str(table) == text and f"{table[1].pearson:.3f}" in text.splitlines()[3]


def _planted_table(trained, null, std=0.01):
    return ansatz.AnsatzTable(
        "net",
        [
            ansatz.LayerResult(
                f"l{j}",
                (2, 1, 3, 3),
                t,
                0.0,
                t + 0.5,
                0.0,
                null_spectrum_pearson=m,
                null_spectrum_pearson_std=std,
                null_spectrum_pearson_sqrt=m + 0.25,
                null_spectrum_pearson_sqrt_std=std,
            )
            for j, (t, m) in enumerate(zip(trained, null, strict=True))
        ],
    )


def test_seed_gaps_pairs_each_seed_with_its_own_null():
    """Planted tables: the differences are paired by seed (each seed's trained value minus
    that seed's null), and the SD is the sample SD (ddof=1) of those differences."""
    trained = {3: [0.9, 0.5], 7: [0.8, 0.6], 11: [0.95, 0.4]}
    null = {3: [0.7, 0.5], 7: [0.75, 0.4], 11: [0.6, 0.45]}
    calls = []
    gaps = ansatz.seed_gaps(
        lambda s: calls.append(s) or _planted_table(trained[s], null[s]), [3, 7, 11]
    )
    assert calls == [3, 7, 11] and gaps.layers == ["l0", "l1"]
    expected = np.array([[0.2, 0.0], [0.05, 0.2], [0.35, -0.05]])
    np.testing.assert_allclose(gaps.differences, expected, atol=1e-12)
    np.testing.assert_allclose(gaps.mean, [0.2, 0.05], atol=1e-12)
    # sample SD by hand: sqrt(sum (d - mean)^2 / (n - 1))
    np.testing.assert_allclose(gaps.sd, [0.15, np.sqrt(0.035 / 2)], atol=1e-12)
    half = ansatz.seed_gaps(lambda s: _planted_table(trained[s], null[s]), [3, 7, 11], power=0.5)
    np.testing.assert_allclose(half.differences, expected + 0.25, atol=1e-12)
    assert str(gaps).splitlines()[1].split() == [
        "l0",
        "+0.200",
        "+0.050",
        "+0.350",
        "+0.200",
        "0.150",
    ]


def test_seed_gaps_refuses_what_it_cannot_pair():
    good = lambda s: _planted_table([0.9, 0.5], [0.7, 0.5])  # noqa: E731
    with pytest.raises(ValueError, match="at least two distinct seeds"):
        ansatz.seed_gaps(good, [0])
    with pytest.raises(ValueError, match="at least two distinct seeds"):
        ansatz.seed_gaps(good, [1, 1])
    with pytest.raises(TypeError, match="run must be a function"):
        ansatz.seed_gaps(3, [0, 1])
    with pytest.raises(TypeError, match="must return an AnsatzTable"):
        ansatz.seed_gaps(lambda s: None, [0, 1])
    with pytest.raises(ValueError, match="has layers"):
        ansatz.seed_gaps(lambda s: _planted_table([0.9] * (s + 1), [0.7] * (s + 1)), [0, 1])
    no_null = ansatz.AnsatzTable("net", [ansatz.LayerResult("l0", (2, 1, 3, 3), 0.9, 0, 0, 0)])
    with pytest.raises(ValueError, match="no spectrum-matched null"):
        ansatz.seed_gaps(lambda s: no_null, [0, 1])
    with pytest.raises(ValueError, match="power must be"):
        ansatz.seed_gaps(good, [0, 1], power=2.0)


def test_null_baselines_in_the_table():
    model, X = _small_cnn(0), _images(3, 8)[:, :2]
    table = ansatz.verify_ansatz(model, X, null_draws=4, device="cpu")
    for row in table:
        assert row.null_identity_pearson == pytest.approx(1.0)  # G = I gives W^T W itself
        # the Wishart null by hand: G = B B^T / k from the documented stream (seed 0)
        W = model.get_submodule(row.layer).weight.detach().flatten(1).double()
        k = W.shape[0]
        g = torch.Generator().manual_seed(0)
        draws = []
        for _ in range(4):
            B = torch.randn(1, k, k, generator=g, dtype=torch.float64)[0]
            draws.append(correlation(W.T @ W, W.T @ (B @ B.T / k) @ W, "pearson"))
        assert row.null_random_pearson == pytest.approx(np.mean(draws), abs=1e-10)
        assert row.null_random_pearson_std == pytest.approx(np.std(draws, ddof=1), abs=1e-10)
        G = patch_agop(model, X, layers=[row.layer], device="cpu", factored=True)[row.layer].G
        spec = null_baselines(model.get_submodule(row.layer), n_draws=4, G=G)["pearson"]
        assert row.null_spectrum_pearson == pytest.approx(spec["spectrum_mean"])
        assert row.null_spectrum_pearson_std == pytest.approx(spec["spectrum_std"])
        assert row.init_pearson is None and row.cnfm_init_vs_trained is None
    assert table.null_margins() == pytest.approx(
        [(r.pearson - r.null_spectrum_pearson) / r.null_spectrum_pearson_std for r in table]
    )
    assert table.null_margins("cosine", "random") == pytest.approx(
        [(r.cosine - r.null_random_cosine) / r.null_random_cosine_std for r in table]
    )
    with pytest.raises(ValueError, match="missing"):
        table.mean("init_pearson")
    assert table.mean("pearson") == pytest.approx(np.mean(table.column("pearson")))


@pytest.mark.parametrize("k_out,c,k,groups", [(5, 3, 3, 1), (40, 3, 3, 1), (8, 2, 3, 2)])
def test_filter_space_similarities_equal_full_matrices(k_out, c, k, groups):
    conv = nn.Conv2d(c * groups, k_out, k, groups=groups).double()
    g = torch.Generator().manual_seed(0)
    B = torch.randn(groups, k_out // groups, k_out // groups, generator=g, dtype=torch.float64)
    G = B @ B.transpose(1, 2) + 0.1 * torch.eye(k_out // groups, dtype=torch.float64)
    Wg = conv.weight.detach().reshape(groups, k_out // groups, -1)
    A = torch.einsum("gkq,gkl,glr->qr", Wg, G, Wg)  # W^T G W, summed over groups
    M = cnfm(conv)
    expected = (
        correlation(M, A),
        correlation(M, A, "cosine"),
        correlation(M, psd_power(A, 0.5)),
        correlation(M, psd_power(A, 0.5), "cosine"),
    )
    np.testing.assert_allclose(FilterSpace(conv).similarities(G), expected, atol=1e-6)


def test_sketch_accuracy_reports_exact_and_sketched():
    model, X = _small_cnn(0), _images(2, 8)[:, :2]
    rows = ch03.sketch_accuracy(model, X, ks=[2, 2000], device="cpu")
    assert [(r.k, r.layer) for r in rows] == [(2, "0"), (2, "3"), (2000, "0"), (2000, "3")]
    exact = ansatz.verify_ansatz(model, X, null_draws=0, device="cpu")
    for r in rows:
        assert r.exact_ansatz_pearson == pytest.approx(exact[r.layer].pearson, abs=1e-10)
    err = {(r.k, r.layer): r.relative_error for r in rows}
    assert all(err[(2000, layer)] < err[(2, layer)] for layer in ("0", "3"))
    assert max(err[(2000, layer)] for layer in ("0", "3")) < 0.1  # ~ 1/sqrt(k) scale


def test_layer_inputs_and_feature_maps():
    model, x = _model("vgg11_bn"), _images(1, 32)
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


def test_preprocess_matches_torchvision_transforms():
    from PIL import Image

    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, size=(90, 120, 3), dtype=np.uint8)
    ours = D.preprocess(array, size=64)
    transform = P.weights_enum("vgg11").transforms(resize_size=round(64 * 256 / 224), crop_size=64)
    theirs = transform(Image.fromarray(array))[None]
    assert ours.shape == (1, 3, 64, 64)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0.02)  # PIL vs tensor resampling
    # a gray image at the ImageNet mean is zero after normalisation
    mean = np.broadcast_to(np.array(D.IMAGENET_MEAN, dtype=np.float32), (40, 50, 3))
    assert D.preprocess(mean, size=32).abs().max() < 1e-6
    gray = D.preprocess(rng.integers(0, 256, size=(40, 40), dtype=np.uint8), size=32)
    assert gray.shape == (1, 3, 32, 32)


def test_preprocess_refuses_a_non_positive_std_and_warns_on_0_255_floats():
    """std = 0 divided by zero (inf in the result); a float image in 0..255 was clipped to
    white without a word. The warning names the range and the fix, and the fixed image gives
    the uint8 image's result."""
    rng = np.random.default_rng(2)
    array = rng.integers(0, 256, size=(40, 40, 3), dtype=np.uint8)
    for std in ((0.2, 0.0, 0.2), (0.2, -0.1, 0.2)):
        with pytest.raises(ValueError, match=r"std must be positive in every channel"):
            D.preprocess(array, size=32, std=std)
    with pytest.raises(ValueError, match="std must hold 3 numbers"):
        D.preprocess(array, size=32, std=(0.2, 0.2))
    with pytest.raises(ValueError, match=r"mean\[1\] must be a finite number"):
        D.preprocess(array, size=32, mean=(0.5, float("nan"), 0.5))
    with pytest.warns(UserWarning, match=r"float images are expected in \[0, 1\]; got values in "
                      r"\[\d+, 255\].*divide it by 255"):  # fmt: skip
        white = D.preprocess(array.astype(np.float64), size=32)
    top = (1 - np.array(D.IMAGENET_MEAN)) / np.array(D.IMAGENET_STD)
    torch.testing.assert_close(white.amax((0, 2, 3)), torch.tensor(top, dtype=torch.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the fix: no warning, the uint8 image's result
        torch.testing.assert_close(
            D.preprocess(array.astype(np.float64) / 255, size=32), D.preprocess(array, size=32)
        )


def test_load_images_from_folder_and_photographs(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(1)
    arrays = [rng.integers(0, 256, size=(50 + 10 * i, 70, 3), dtype=np.uint8) for i in range(3)]
    for i, a in enumerate(arrays):
        Image.fromarray(a).save(tmp_path / f"img{i}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    X = D.load_images(tmp_path, size=32)
    torch.testing.assert_close(X, D.preprocess(arrays, size=32))
    assert D.load_images(tmp_path, n=2, size=32).shape == (2, 3, 32, 32)
    with pytest.raises(TypeError, match="source"):
        D.load_images(None)  # type: ignore[arg-type]
    import skimage.data

    from agop_book.data import PHOTOGRAPHS, load_photographs

    photos = [getattr(skimage.data, name)() for name in PHOTOGRAPHS[:2]]  # astronaut, chelsea
    torch.testing.assert_close(load_photographs(n=2, size=32), D.preprocess(photos, size=32))
    with pytest.raises(ValueError, match="n must"):
        load_photographs(n=len(PHOTOGRAPHS) + 1)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no image file"):
        D.load_images(empty)
    with pytest.raises(ValueError, match="n=9"):
        D.load_images(tmp_path, n=9)


def test_missing_weights_offline_raise_without_network(tmp_path, monkeypatch):
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


def test_factored_path_gives_the_numbers_of_the_q_by_q_path():
    """Factors W, G against the dense W^T G W: the AGOP, every similarity, the CNFM of init vs
    trained, and both feature maps (through the convolution vs through A^{1/2}), on a grouped
    and strided small CNN and on ResNet18's strided and 1x1 layers."""
    from agop.features import FactoredAGOP, cnfm_similarity, feature_map, patch_agop

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
            expected = (
                correlation(M, A),
                correlation(M, A, "cosine"),
                correlation(M, psd_power(A, 0.5)),
                correlation(M, psd_power(A, 0.5), "cosine"),
            )
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


def test_layer_views_are_cached_and_equal_the_dense_computation(monkeypatch):
    model, X = _model("alexnet"), _images(2, 64)
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


def test_the_two_builders_of_the_ansatz_report_agree():
    """verify_ansatz (factored, in the filter space) and ansatz_table (dense AGOPs given) fill
    the same AnsatzTable: the same similarities after training and at initialisation, the same
    nulls (same seed) and the same CNFM control, to rounding."""
    from agop_book.nets import SimpleCNN

    net = SimpleCNN(3, 4, image_size=12, depth=2, width=5, seed=0).double().eval()
    init = SimpleCNN(3, 4, image_size=12, depth=2, width=5, seed=1).double().eval()
    X = torch.rand(4, 3, 12, 12, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    one = ansatz.verify_ansatz(net, X, init=init, null_draws=4, seed=5, device="cpu")
    factors = patch_agop(net, X, factored=True, device="cpu")
    two = ansatz.ansatz_table(
        net,
        {n: f.dense() for n, f in factors.items()},
        init_model=init,
        init_agops=patch_agop(init, X, device="cpu"),
        powers=(1.0,),
        n_draws=4,
        seed=5,
        G={n: f.G for n, f in factors.items()},
    )
    assert isinstance(two, ansatz.AnsatzTable) and len(one.records()) == len(two.records()) == 4
    for a, b in zip(one.records(), two.records(), strict=True):
        assert a.keys() == b.keys() and (a["layer"], a["power"], a["kind"]) == (
            b["layer"],
            b["power"],
            b["kind"],
        )
        for key, value in a.items():
            if isinstance(value, float):
                assert value == pytest.approx(b[key], rel=1e-8, abs=1e-10), key


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
