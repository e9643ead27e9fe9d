"""agop.pretrained: torchvision adapters, ImageNet preprocessing and the one-call ansatz table.

The per-layer AGOPs of the one-pass call are checked against the brute-force patch-variable
reference (agop.reference) on each torchvision family, in float64, with random weights.
"""

import numpy as np
import pytest
import torch
from torch import nn

from agop import pretrained as P
from agop.features import FilterSpace, cnfm, null_baselines, patch_agop
from agop.linalg import correlation, psd_power
from agop.reference import brute_force_patch_agop

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
    table = P.verify_ansatz(model, X, layers=layers, outputs=range(3), null_draws=0,
                            keep_agops=True, device="cpu")
    assert [r.layer for r in table] == layers
    for layer in layers:
        reference = brute_force_patch_agop(model, X, layer, outputs=range(3))
        A = table.agops[layer]
        assert A.dtype == torch.float64
        torch.testing.assert_close(A, reference, rtol=1e-9, atol=1e-12 * float(reference.abs().max()))
        M = cnfm(model.get_submodule(layer))
        assert table[layer].pearson == pytest.approx(correlation(M, reference), abs=1e-10)
        if M.shape[0] <= 600:  # a full eigendecomposition as the reference for AGOP^{1/2}
            assert table[layer].cosine_sqrt == pytest.approx(
                correlation(M, psd_power(reference, 0.5), "cosine"), abs=1e-6)
        assert table[layer].weight_shape == tuple(model.get_submodule(layer).weight.shape)


def _small_cnn(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(2, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(inplace=True),
                         nn.Conv2d(6, 5, 3, stride=2), nn.Flatten(), nn.Linear(5 * 3 * 3, 4)
                         ).double().eval()


def test_every_conv_layer_by_default_and_init_columns():
    assert len(P.conv_layers(_model("resnet18"))) == 20
    model, init, X = _small_cnn(1), _small_cnn(2), _images(3, 8)[:, :2]
    table = P.verify_ansatz(model, X, init=init, null_draws=0, device="cpu")
    assert [r.layer for r in table] == ["0", "3"]
    # the initial columns are the trained columns of the initial model
    init_table = P.verify_ansatz(init, X, null_draws=0, device="cpu")
    for field in ("pearson", "cosine", "pearson_sqrt", "cosine_sqrt"):
        np.testing.assert_allclose(table.column(f"init_{field}"), init_table.column(field),
                                   atol=1e-12)
    for row in table:
        M, M0 = cnfm(model.get_submodule(row.layer)), cnfm(init.get_submodule(row.layer))
        assert row.cnfm_init_vs_trained == pytest.approx(correlation(M0, M), abs=1e-12)
    assert table.n_outputs == 4 and table.image_size == (8, 8) and table.n_images == 3
    text = table.to_text()
    assert "6x2x3x3" in text and "5x6x3x3" in text
    assert len(text.splitlines()) == 3 + len(table)


def test_null_baselines_in_the_table():
    model, X = _small_cnn(0), _images(3, 8)[:, :2]
    table = P.verify_ansatz(model, X, null_draws=4, device="cpu")
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
        G = patch_agop(model, X, layers=[row.layer], device="cpu", inner=True)[1][row.layer]
        spec = null_baselines(model.get_submodule(row.layer), n_draws=4, G=G)["pearson"]
        assert row.null_spectrum_pearson == pytest.approx(spec["spectrum_mean"])
        assert row.null_spectrum_pearson_std == pytest.approx(spec["spectrum_std"])
        assert row.init_pearson is None and row.cnfm_init_vs_trained is None
    assert table.null_margins() == pytest.approx(
        [(r.pearson - r.null_spectrum_pearson) / r.null_spectrum_pearson_std for r in table])
    assert table.null_margins("cosine", "random") == pytest.approx(
        [(r.cosine - r.null_random_cosine) / r.null_random_cosine_std for r in table])
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
    expected = (correlation(M, A), correlation(M, A, "cosine"),
                correlation(M, psd_power(A, 0.5)), correlation(M, psd_power(A, 0.5), "cosine"))
    np.testing.assert_allclose(FilterSpace(conv).similarities(G), expected, atol=1e-6)


def test_sketch_accuracy_reports_exact_and_sketched():
    model, X = _small_cnn(0), _images(2, 8)[:, :2]
    rows = P.sketch_accuracy(model, X, ks=[2, 2000], device="cpu")
    assert [(r.k, r.layer) for r in rows] == [(2, "0"), (2, "3"), (2000, "0"), (2000, "3")]
    exact = P.verify_ansatz(model, X, null_draws=0, device="cpu")
    for r in rows:
        assert r.exact_ansatz_pearson == pytest.approx(exact[r.layer].pearson, abs=1e-10)
    err = {(r.k, r.layer): r.relative_error for r in rows}
    assert all(err[(2000, layer)] < err[(2, layer)] for layer in ("0", "3"))
    assert max(err[(2000, layer)] for layer in ("0", "3")) < 0.1  # ~ 1/sqrt(k) scale


def test_layer_inputs_and_feature_maps():
    model, x = _model("vgg11_bn"), _images(1, 32)
    inputs = P.layer_inputs(model, x, ["features.0", "features.4"])
    torch.testing.assert_close(inputs["features.0"], x)
    with torch.no_grad():
        torch.testing.assert_close(inputs["features.4"], model.features[:4](x))
    table = P.verify_ansatz(model, x, layers=["features.4"], outputs=range(2), null_draws=0,
                            keep_agops=True, device="cpu")
    maps = P.feature_maps(model, x[0], table.agops)
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
    ours = P.preprocess(array, size=64)
    transform = P.weights_enum("vgg11").transforms(resize_size=round(64 * 256 / 224), crop_size=64)
    theirs = transform(Image.fromarray(array))[None]
    assert ours.shape == (1, 3, 64, 64)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0.02)  # PIL vs tensor resampling
    # a gray image at the ImageNet mean is zero after normalisation
    mean = np.broadcast_to(np.array(P.IMAGENET_MEAN, dtype=np.float32), (40, 50, 3))
    assert P.preprocess(mean, size=32).abs().max() < 1e-6
    gray = P.preprocess(rng.integers(0, 256, size=(40, 40), dtype=np.uint8), size=32)
    assert gray.shape == (1, 3, 32, 32)


def test_load_images_from_folder_and_photographs(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(1)
    arrays = [rng.integers(0, 256, size=(50 + 10 * i, 70, 3), dtype=np.uint8) for i in range(3)]
    for i, a in enumerate(arrays):
        Image.fromarray(a).save(tmp_path / f"img{i}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    X = P.load_images(tmp_path, size=32)
    torch.testing.assert_close(X, P.preprocess(arrays, size=32))
    assert P.load_images(tmp_path, n=2, size=32).shape == (2, 3, 32, 32)
    photos = P.load_images(n=2, size=32)
    assert photos.shape == (2, 3, 32, 32) and torch.isfinite(photos).all()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no image file"):
        P.load_images(empty)
    with pytest.raises(ValueError, match="n=9"):
        P.load_images(tmp_path, n=9)


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
        P.verify_ansatz("alexnet", _images(1, 64))


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
    for (name, a), (_, b) in zip(source.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_initialisation_is_seeded_and_leaves_global_state():
    state = torch.random.get_rng_state()
    a, b = P.load_model("alexnet", pretrained=False, seed=5), P.load_model("alexnet", pretrained=False, seed=5)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(a.features[0].weight, b.features[0].weight)
    c = P.load_model("alexnet", pretrained=False, seed=6)
    assert not torch.equal(a.features[0].weight, c.features[0].weight)


def test_clear_errors():
    with pytest.raises(ValueError, match="no torch.nn.Conv2d"):
        P.verify_ansatz(nn.Sequential(nn.Flatten(), nn.Linear(12, 2)), torch.randn(2, 3, 2, 2))
    with pytest.raises(ValueError, match="cannot take"):
        P.verify_ansatz(P.load_model("alexnet", pretrained=False), torch.randn(1, 3, 32, 32))
    with pytest.raises(ValueError, match="cannot take"):
        P.verify_ansatz(P.load_model("resnet18", pretrained=False), torch.randn(1, 1, 32, 32))
    model = P.load_model("resnet18", pretrained=False)
    with pytest.raises(ValueError, match="layer"):
        P.verify_ansatz(model, torch.randn(1, 3, 32, 32), layers=["fc"])
    with pytest.raises(ValueError, match="sketch"):
        P.verify_ansatz(model, torch.randn(1, 3, 32, 32), sketch=0)
    with pytest.raises(ValueError, match="init must be the same architecture"):
        P.verify_ansatz(model, torch.randn(1, 3, 32, 32), init=P.load_model("resnet50", pretrained=False),
                        layers=["layer1.0.conv1"], null_draws=0)
    with pytest.raises(ValueError, match="torchvision"):
        P.load_model("not_a_model", pretrained=False)
    with pytest.raises(ValueError, match="weights must be one of"):
        P.weights_file("vgg11", "IMAGENET1K_V9")
    with pytest.raises(ValueError, match="X must have shape"):
        P.verify_ansatz(model, torch.randn(3, 32, 32))
