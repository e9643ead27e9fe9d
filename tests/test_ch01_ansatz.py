"""agop_book.ch01_ansatz: the one-call ansatz table (verify_ansatz) against the brute-force
patch-variable reference on each torchvision family (float64, random weights), the null
baselines in its rows, the seed gaps, and the two builders of the report agreeing."""

import numpy as np
import pytest
import torch
from conv_zoo import (
    bn_cnn,
    hand_cosine,
    hand_pearson,
    make,
    rgb_images,
    scipy_power,
    sequential,
    torchvision_net,
)

from agop.features import cnfm, conv_layers, null_baselines, patch_agop
from agop.linalg import correlation, psd_power
from agop_book import ch01_ansatz as ansatz
from agop_book.ch01_ansatz import ansatz_table
from agop_book.reference import brute_force_patch_agop

FAMILIES = [
    ("alexnet", 64, ["features.0", "features.3", "features.6"]),
    ("vgg11_bn", 32, ["features.0", "features.4", "features.8"]),
    ("resnet18", 32, ["conv1", "layer1.0.conv2", "layer2.0.conv1", "layer2.0.downsample.0"]),
    ("resnet50", 32, ["layer1.0.conv1", "layer2.0.conv2", "layer3.0.downsample.0"]),
]


@pytest.mark.parametrize("name,size,layers", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_one_pass_agops_equal_brute_force(name, size, layers):
    model, X = torchvision_net(name), rgb_images(2, size)
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


def test_every_conv_layer_by_default_and_init_columns():
    assert len(conv_layers(torchvision_net("resnet18"))) == 20
    model, init, X = bn_cnn(1), bn_cnn(2), rgb_images(3, 8)[:, :2]
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
    model, X = bn_cnn(0), rgb_images(3, 8)[:, :2]
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


def test_ansatz_table_rows():
    """Trained and initial columns come from their own models and AGOPs (two differently
    seeded networks here), each the similarity of W^T W with AGOP^power computed by hand."""
    model = make("padding")
    torch.manual_seed(11)  # another draw of the same architecture
    init_model = sequential(padding=1)
    init_model(torch.zeros(1, 3, 14, 14))  # materialise the lazy read-out
    init_model = init_model.double().eval()
    X = torch.randn(3, 3, 14, 14, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    agops = patch_agop(model, X, device="cpu")
    factors = patch_agop(model, X, device="cpu", factored=True)
    agops = {n: f.dense() for n, f in factors.items()}
    inner = {n: f.G for n, f in factors.items()}
    init_agops = patch_agop(init_model, X, device="cpu")
    rows = ansatz_table(
        model, agops, init_model=init_model, init_agops=init_agops, n_draws=5, G=inner
    ).records()
    assert len(rows) == 2 * 2 * 2  # layers x powers x kinds
    similarity = {"pearson": hand_pearson, "cosine": hand_cosine}
    for r in rows:
        sim, name, power = similarity[r["kind"]], r["layer"], r["power"]
        W = dict(model.named_modules())[name].weight.detach().flatten(1)
        W0 = dict(init_model.named_modules())[name].weight.detach().flatten(1)
        assert r["trained"] == pytest.approx(
            sim(W.T @ W, scipy_power(agops[name], power)), abs=1e-8
        )
        assert r["init"] == pytest.approx(
            sim(W0.T @ W0, scipy_power(init_agops[name], power)), abs=1e-8
        )
        assert abs(r["init"] - r["trained"]) > 1e-3  # the two columns are not one model's
        assert r["cnfm_init"] == pytest.approx(sim(W0.T @ W0, W.T @ W), abs=1e-8)
        nulls = null_baselines(
            dict(model.named_modules())[name], n_draws=5, power=power, G=inner[name]
        )[r["kind"]]
        assert r["null_mean"] == nulls["random_mean"]
        assert r["spectrum_margin"] == pytest.approx(
            (r["trained"] - nulls["spectrum_mean"]) / nulls["spectrum_std"]
        )
        assert r["margin"] == pytest.approx((r["trained"] - r["null_mean"]) / r["null_std"])
    without = ansatz_table(model, agops, n_draws=5).records()
    assert all(r["init"] is None for r in without)


# Hostile inputs


def _net_and_agops():
    from agop_book.nets import SimpleCNN

    net = SimpleCNN(1, 2, image_size=6, depth=2, width=2, seed=0).double().eval()
    X = torch.rand(3, 1, 6, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return net, patch_agop(net, X, device="cpu")


@pytest.mark.parametrize(
    "change, error, match",
    [
        (dict(agops={}), ValueError, "agops must hold the AGOP of at least one layer"),
        (dict(agops=[torch.eye(9)]), TypeError, "agops must be a dict"),
        (dict(agops={"zz": torch.eye(9)}), ValueError, "agops: unknown layer name 'zz'"),
        (dict(agops={"convs.0": torch.eye(5)}), ValueError, r"agops\['convs.0'\] must be 9 x 9"),
        (
            dict(agops={"convs.0": torch.eye(9)[:3]}),
            ValueError,
            r"agops\['convs.0'\] must be a squ",
        ),
        (
            dict(agops={"convs.0": torch.eye(9) * float("nan")}),
            ValueError,
            r"agops\['convs.0'\] contains",
        ),
        (dict(init_agops={"convs.0": torch.eye(9)}), ValueError, "init_agops needs init_model"),
        (
            dict(init_model=True, init_agops={"convs.0": torch.eye(3)}),
            ValueError,
            r"init_agops\['convs.0'\] must be 9 x 9",
        ),
        (
            dict(init_model=True, init_agops={"convs.1": torch.eye(18)}),
            ValueError,
            "init_agops must hold every layer",
        ),
    ],
)
def test_hostile_inputs_are_refused_by_name(change, error, match):
    net, agops = _net_and_agops()
    kwargs = dict(agops=agops, n_draws=2)
    kwargs.update(change)
    if kwargs.get("init_model") is True:
        kwargs["init_model"] = net
    with pytest.raises(error, match=f"^{match}"):
        ansatz_table(net, **kwargs)
