"""agop_book.ch01_ansatz: the one-call ansatz table (verify_ansatz) against the brute-force
patch-variable reference on each torchvision family (float64, random weights), the null
baselines in its rows, the seed gaps, and the two builders of the report agreeing."""

import math
import os

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
@pytest.mark.skipif(
    "MUTANT_UNDER_TEST" in os.environ,
    reason="seconds per mutant under mutmut; test_verify_ansatz_on_small_nets_equals_brute_force "
    "pins the same numbers on small networks",
)
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
    with pytest.raises(ValueError, match=r"^seeds must hold at least 2 distinct seeds"):
        ansatz.seed_gaps(good, [0])
    with pytest.raises(ValueError, match="^seeds must be distinct"):
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


# Mutation testing (`make mutation MODULES=ansatz`, CONTRIBUTING.md): the report's bookkeeping
# on planted rows, and the arguments of verify_ansatz and ansatz_table.

from agop_book.ch01_ansatz import AnsatzTable, LayerResult, SeedGaps, seed_gaps  # noqa: E402


def _planted_rows():
    a = LayerResult(
        "conv1", (4, 3, 3, 3), 0.9, 0.8, 0.7, 0.6, null_random_pearson=0.5,
        null_random_pearson_std=0.1, null_random_cosine=0.4, null_random_cosine_std=0.2,
        null_identity_pearson=0.3, null_identity_cosine=0.35, null_spectrum_pearson=0.6,
        null_spectrum_pearson_std=0.15, null_spectrum_cosine=0.5, null_spectrum_cosine_std=0.0,
        init_pearson=0.55, init_cosine=0.45, init_pearson_sqrt=0.52, init_cosine_sqrt=0.42,
        cnfm_init_vs_trained=0.25, cnfm_init_vs_trained_cosine=0.75, null_random_pearson_sqrt=0.61,
        null_random_pearson_sqrt_std=0.05, null_identity_pearson_sqrt=0.31,
        null_spectrum_pearson_sqrt=0.66, null_spectrum_pearson_sqrt_std=0.02, seconds=1.5,
    )  # fmt: skip
    b = LayerResult("layer2.conv", (2, 4, 1, 1), 0.2, 0.3, 0.4, 0.5)  # nothing else measured
    return [a, b]


def test_records_are_each_layer_power_and_kind_with_its_margins():
    table = AnsatzTable("net", _planted_rows(), powers=(1.0, 0.5))
    records = table.records()
    assert [(r["layer"], r["power"], r["kind"]) for r in records] == [
        (layer, p, k)
        for layer in ("conv1", "layer2.conv")
        for p in (1.0, 0.5)
        for k in ("pearson", "cosine")
    ]
    first = records[0]
    assert first == {
        "layer": "conv1", "power": 1.0, "kind": "pearson", "trained": 0.9, "init": 0.55,
        "cnfm_init": 0.25, "null_mean": 0.5, "null_std": 0.1,
        "margin": pytest.approx((0.9 - 0.5) / 0.1), "identity": 0.3, "spectrum_mean": 0.6,
        "spectrum_std": 0.15, "spectrum_margin": pytest.approx((0.9 - 0.6) / 0.15),
    }  # fmt: skip
    cosine = records[1]
    assert (cosine["trained"], cosine["init"], cosine["cnfm_init"]) == (0.8, 0.45, 0.75)
    assert (cosine["identity"], cosine["spectrum_margin"]) == (0.35, math.inf)  # std 0
    sqrt = records[2]
    assert (sqrt["trained"], sqrt["init"], sqrt["null_mean"], sqrt["identity"]) == (
        0.7, 0.52, 0.61, 0.31
    )  # fmt: skip
    assert sqrt["spectrum_margin"] == pytest.approx((0.7 - 0.66) / 0.02)
    empty = records[4]  # layer 2: no null, no init
    assert [empty[k] for k in ("init", "null_mean", "margin", "spectrum_margin")] == [None] * 4
    assert [r["layer"] for r in table.records("index")[::4]] == ["1", "2"]
    with pytest.raises(ValueError, match="^labels must be 'names' or 'index'"):
        table.records("Index")


def test_null_margins_and_missing_values():
    table = AnsatzTable("net", _planted_rows()[:1])
    assert table.null_margins() == [pytest.approx((0.9 - 0.6) / 0.15)]
    assert table.null_margins("cosine") == [math.inf]  # the spectrum null's std is 0
    assert table.null_margins("pearson", "random") == [pytest.approx(4.0)]
    assert table.null_margins("cosine", "random") == [pytest.approx(2.0)]
    for kind, null in (("spearman", "spectrum"), ("pearson", "wishart")):
        with pytest.raises(ValueError, match="^kind must be 'pearson' or 'cosine' and null"):
            table.null_margins(kind, null)
    with pytest.raises(ValueError, match="the spectrum null is missing"):
        AnsatzTable("net", _planted_rows()[1:]).null_margins()
    # a margin needs the value, the null mean and its std
    for missing in ("null_random_pearson", "null_random_pearson_std"):
        row = _planted_rows()[0]
        setattr(row, missing, None)
        (record,) = [r for r in AnsatzTable("n", [row]).records() if r["kind"] == "pearson"]
        assert record["margin"] is None


def test_format_table_aligns_names_left_and_numbers_right():
    text = AnsatzTable("net", _planted_rows()).format_table().splitlines()
    head = [h for h, _, _ in ansatz._TEXT_COLUMNS]
    cells = [
        ["conv1", "4x3x3x3", "0.900", "0.700", "0.800", "0.600", "0.550", "0.600", "0.150",
         "0.500", "0.100", "0.300", "0.250", "1.50"],
        ["layer2.conv", "2x4x1x1", "0.200", "0.400", "0.300", "0.500", *["-"] * 7, "0.00"],
    ]  # fmt: skip
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(head)]

    def line(row):
        return "  ".join(
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )

    assert text == [line(head), "  ".join("-" * w for w in widths), *map(line, cells)]
    assert text[2].startswith("conv1        4x3x3x3  0.900")
    assert str(AnsatzTable("net", _planted_rows())) == "\n".join(text)


def test_seed_gaps_table_and_arguments():
    gaps = SeedGaps([3, 7], ["conv1", "b"], np.array([[0.9, 0.5], [0.7, 0.25]]), np.zeros((2, 2)))
    assert gaps.format_table().splitlines() == [
        "layer  seed 3  seed 7    mean     sd",
        "conv1  +0.900  +0.700  +0.800  0.141",
        "b      +0.500  +0.250  +0.375  0.177",
    ]
    planted = {s: AnsatzTable("net", _planted_rows()[:1]) for s in (0, 1)}
    for power, kind, trained, null in (
        (1.0, "cosine", 0.8, 0.5), (0.5, "pearson", 0.7, 0.66)
    ):  # fmt: skip
        g = seed_gaps(planted.__getitem__, [0, 1], power=power, kind=kind)
        assert (g.power, g.kind) == (power, kind)
        assert g.differences.dtype == np.float64
        np.testing.assert_allclose(g.differences, [[trained - null]] * 2)
    with pytest.raises(ValueError, match=r"^seeds\[1\] must be"):
        seed_gaps(planted.__getitem__, [0, -1])
    with pytest.raises(ValueError, match="^kind must be 'pearson' or 'cosine', got 'COSINE'"):
        seed_gaps(planted.__getitem__, [0, 1], kind="COSINE")


def test_verify_ansatz_loads_a_named_model_with_its_arguments(monkeypatch):
    calls = []
    net, init = bn_cnn(1), bn_cnn(2)

    def load_model(arch, pretrained, seed=0, allow_download=False, device=None):
        calls.append((arch, pretrained, seed, allow_download, device))
        return net if pretrained else init

    monkeypatch.setattr(ansatz, "load_model", load_model)
    X = rgb_images(2, 8)[:, :2]
    table = ansatz.verify_ansatz("vgg11", X, null_draws=0, seed=4, allow_download=True,
                                 device="cpu")  # fmt: skip
    assert calls == [("vgg11", True, 0, True, "cpu"), ("vgg11", False, 4, False, "cpu")]
    assert (table.model, table.weights) == ("vgg11", "IMAGENET1K_V1")
    assert table.init_agop_seconds is not None and table.agops is None
    calls.clear()
    ansatz.verify_ansatz("vgg11", X, null_draws=0, device="cpu")  # allow_download: False
    assert calls[0][3] is False


def test_verify_ansatz_defaults(monkeypatch):
    """20 null draws and no progress bar by default; the AGOPs are not kept."""
    seen = {}
    real = ansatz.null_baselines

    def null_baselines(conv, n_draws, **kwargs):
        seen["n_draws"] = n_draws
        return real(conv, n_draws=2, **kwargs)

    monkeypatch.setattr(ansatz, "null_baselines", null_baselines)
    real_agops = ansatz._agops

    def _agops(*args, **kwargs):
        seen["progress"] = args[7]
        return real_agops(*args, **kwargs)

    monkeypatch.setattr(ansatz, "_agops", _agops)
    table = ansatz.verify_ansatz(bn_cnn(1), rgb_images(2, 8)[:, :2], device="cpu")
    assert seen == {"n_draws": 20, "progress": False}
    assert table.agops is None and table.model == "Sequential"


def test_ansatz_table_rows_follow_agops_and_its_arguments():
    """The rows are the layers of ``agops`` (a subset, in its order), ``powers`` must be 1 and/or
    1/2, the report is named after the model's class unless ``name`` is given, and each row's
    seconds are its own time."""
    model, X = bn_cnn(1), rgb_images(3, 8)[:, :2]
    agops = patch_agop(model, X, device="cpu")
    last = list(agops)[-1]
    table = ansatz_table(model, {last: agops[last]}, n_draws=2)
    assert [r.layer for r in table] == [last] and table.model == "Sequential"
    assert ansatz_table(model, agops, n_draws=2, name="mine").model == "mine"
    assert 0 < table.rows[0].seconds < 60
    init = bn_cnn(2)
    init_agops = patch_agop(init, X, device="cpu")
    row = ansatz_table(model, agops, init_model=init, init_agops=init_agops, n_draws=2)[last]
    M0, M = cnfm(init.get_submodule(last)), cnfm(model.get_submodule(last))
    assert row.init_cosine == pytest.approx(correlation(M0, init_agops[last], "cosine"))
    assert row.cnfm_init_vs_trained == pytest.approx(correlation(M0, M))
    no_init = ansatz_table(model, agops, init_model=init, n_draws=2)[last]
    assert no_init.init_pearson is None and no_init.cnfm_init_vs_trained is not None
    for powers in ([], [2.0], (1.0, 0.25)):
        with pytest.raises(ValueError, match="^powers must hold 1.0 and/or 0.5"):
            ansatz_table(model, agops, powers=powers)


def test_controls_figure_draws_each_records_value_and_error_bar():
    """Each panel (one per power) has one bar series per measured control, at the records'
    values, in the documented order; the two nulls carry one standard deviation as error bars;
    a series no layer has (here none is missing) is left out."""
    import matplotlib.pyplot as plt
    from matplotlib.container import BarContainer

    def series(ax):
        return [c for c in ax.containers if isinstance(c, BarContainer)]

    table = AnsatzTable("net", _planted_rows(), powers=(1.0, 0.5))
    fig = ansatz.plot_ansatz_controls(table)
    keys = ["trained", "init", "spectrum_mean", "null_mean", "identity", "cnfm_init"]
    assert len(fig.axes) == 2
    for ax, power in zip(fig.axes, (1.0, 0.5), strict=True):
        records = [r for r in table.records() if r["kind"] == "pearson" and r["power"] == power]
        heights = [[p.get_height() for p in c.patches] for c in series(ax)]
        want = [[np.nan if r[k] is None else r[k] for r in records] for k in keys]
        np.testing.assert_allclose(heights, want)
        offsets = [[p.get_x() + p.get_width() / 2 for p in c.patches] for c in series(ax)]
        width = 0.8 / len(keys)
        np.testing.assert_allclose(
            offsets, [[x + (b - 2.5) * width for x in (0, 1)] for b in range(len(keys))]
        )
        errors = {c.get_label(): c.errorbar for c in series(ax)}
        for label, std in (("spectrum-matched null", "spectrum_std"), ("Wishart", "null_std")):
            (bar,) = [v for k, v in errors.items() if k.startswith(label)]
            (lines,) = bar.lines[2]
            seg = lines.get_segments()[0]  # layer 1 (layer 2 has no value to bar)
            assert seg[1, 1] - seg[0, 1] == pytest.approx(2 * records[0][std])
            assert (seg[1, 1] + seg[0, 1]) / 2 == pytest.approx(
                records[0][std.replace("std", "mean")]
            )
        assert [t.get_text() for t in ax.get_xticklabels()] == ["conv1", "layer2.conv"]
        assert ax.get_ylabel() == "pearson correlation"
    assert fig.axes[1].get_title().endswith("$^{0.5}$") and fig.axes[0].get_title()[-4:] == "AGOP"
    plt.close(fig)
    # cosine, layers by index, and a table with no init: that series is left out
    rows = _planted_rows()
    for r in rows:
        r.init_cosine = r.init_cosine_sqrt = None
    fig = ansatz.plot_ansatz_controls(AnsatzTable("net", rows), "cosine", labels="index")
    (ax,) = fig.axes
    assert len(series(ax)) == 5 and ax.get_ylabel() == "cosine correlation"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2"]
    assert [p.get_height() for p in series(ax)[0].patches] == [0.8, 0.3]
    plt.close(fig)


def test_alpha_curves_draw_each_layer_and_its_null():
    import matplotlib.pyplot as plt

    curves = {"a": [0.9, 0.8, 0.7], "b": [0.5, 0.4, 0.3]}
    ax = ansatz.plot_alpha_curves([0.25, 0.5, 1.0], curves, nulls={"b": [0.1, 0.2, 0.3]})
    lines = ax.get_lines()
    assert [list(map(float, line.get_ydata())) for line in lines] == [
        [0.9, 0.8, 0.7], [0.5, 0.4, 0.3], [0.1, 0.2, 0.3]
    ]  # fmt: skip
    assert all(list(line.get_xdata()) == [0.25, 0.5, 1.0] for line in lines)
    assert [line.get_linestyle() for line in lines] == ["-", "-", "--"]
    assert lines[2].get_color() == lines[1].get_color() != lines[0].get_color()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]
    plt.close(ax.figure)


def test_cnfm_agop_figure_shows_both_matrices_scaled_and_their_similarities():
    import matplotlib.pyplot as plt

    W = torch.randn(4, 9, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    G = torch.diag(torch.tensor([4.0, 3.0, 2.0, 1.0], dtype=torch.float64))
    C, A = W.T @ W, W.T @ G @ W
    fig = ansatz.plot_cnfm_agop(C, A, power=0.5, title="conv1")
    S = psd_power(A, 0.5)
    left, right = (ax.get_images()[0].get_array() for ax in fig.axes)
    np.testing.assert_allclose(left, (C / C.abs().max()).numpy())
    np.testing.assert_allclose(right, (S / S.abs().max()).numpy(), atol=1e-12)
    assert fig._suptitle.get_text() == (
        f"conv1: pearson {correlation(C, S):.3f}, cosine {correlation(C, S, 'cosine'):.3f}"
    )
    assert fig.axes[1].get_title() == "AGOP$^{0.5}$"
    plt.close(fig)
    fig = ansatz.plot_cnfm_agop(C, A)  # power 1 by default: the AGOP itself
    assert fig.axes[1].get_title() == "AGOP" and fig._suptitle.get_text().startswith(
        f"pearson {correlation(C, A):.3f}"
    )
    plt.close(fig)
    with pytest.raises(ValueError, match="^pairs must hold at least one"):
        ansatz.plot_cnfm_agop_rows({})


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


def test_margin_records_pandas_and_pretty_printing():
    rows = _planted_rows()
    rows[1].null_random_pearson, rows[1].null_random_cosine = 0.1, 0.2
    table = AnsatzTable("net", rows)
    assert table.margin() == pytest.approx((0.9 + 0.2) / 2 - (0.5 + 0.1) / 2)
    assert table.margin("cosine") == pytest.approx((0.8 + 0.3) / 2 - (0.4 + 0.2) / 2)
    records = table.to_records()
    assert [r["layer"] for r in records] == ["conv1", "layer2.conv"]
    assert records[0]["seconds"] == 1.5 and records[1]["init_pearson"] is None
    pd = pytest.importorskip("pandas")
    frame = table.to_pandas()
    assert isinstance(frame, pd.DataFrame) and list(frame.index) == ["conv1", "layer2.conv"]
    assert frame.loc["conv1", "pearson"] == 0.9

    class Printer:  # IPython's pretty printer, as far as _repr_pretty_ uses it
        def __init__(self):
            self.out = []

        def text(self, s):
            self.out.append(s)

    printer = Printer()
    table._repr_pretty_(printer, cycle=False)
    assert printer.out == [table.format_table()]


def test_agops_and_init_layers_are_named_and_n_draws_defaults_to_20(monkeypatch):
    model, X = bn_cnn(1), rgb_images(3, 8)[:, :2]
    agops = patch_agop(model, X, device="cpu")
    small = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3))  # no layer "3"
    with pytest.raises(ValueError, match="^agops: unknown layer name 'nope'"):
        ansatz_table(model, {"nope": agops["0"]})
    with pytest.raises(ValueError, match="^init_model must be the same architecture.*'3'"):
        ansatz_table(model, agops, init_model=small)
    with pytest.raises(ValueError, match="^init must be the same architecture.*'3'"):
        ansatz.verify_ansatz(model, X, init=small, null_draws=0, device="cpu")
    draws = []
    real = ansatz.null_baselines
    monkeypatch.setattr(
        ansatz, "null_baselines", lambda conv, n_draws, **kw: draws.append(n_draws) or real(
            conv, n_draws=2, **kw)
    )  # fmt: skip
    ansatz_table(model, agops, powers=(1.0,))
    assert draws == [20, 20]


# Hostile inputs: the figures and the explorer name the argument before drawing anything

_C = torch.eye(4, dtype=torch.float64)
_NAN = torch.full((4, 4), float("nan"), dtype=torch.float64)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: ansatz.plot_cnfm_agop(None, _C), TypeError, "^cnfm must be a tensor"),
        (lambda: ansatz.plot_cnfm_agop(_C, _NAN), ValueError, "^agop contains 16 non-finite"),
        (lambda: ansatz.plot_cnfm_agop(_C, torch.eye(3)), ValueError, "^agop must be 4 x 4"),
        (lambda: ansatz.plot_cnfm_agop(_C, _C, power=-1.0), ValueError, "^power must be"),
        (lambda: ansatz.plot_cnfm_agop(_C, _C, title=3), TypeError, "^title must be a str"),
        (lambda: ansatz.plot_cnfm_agop(_C, _C, fig=3), TypeError, "^fig must be None or"),
        (lambda: ansatz.plot_cnfm_agop_rows([(_C, _C)]), TypeError, "^pairs must be a dict"),
        (lambda: ansatz.plot_cnfm_agop_rows({"a": _C}), TypeError, r"^pairs\['a'\] must be a pair"),
        (lambda: ansatz.plot_cnfm_agop_rows({"a": (_C, _C)}, height=0), ValueError, "^height"),
        (lambda: ansatz.plot_cnfm_agop_rows({"a": (_C, _C)}, height=1e9), ValueError, "^height"),
        (lambda: ansatz.plot_ansatz_controls({"a": 1}), TypeError, "^table must be an AnsatzTable"),
        (
            lambda: ansatz.plot_ansatz_controls(ansatz.AnsatzTable("net", [])),
            ValueError,
            "^table must hold at least one layer",
        ),
        (lambda: ansatz.plot_alpha_curves([0.5, 1.0], {"a": [0.9]}), ValueError, r"^curves\['a'\]"),
        (
            lambda: ansatz.plot_alpha_curves([0.5, 1.0], {"a": [0.9, 0.8]}, nulls={"b": [1, 2]}),
            ValueError,
            "^nulls: 'b' is not one of the layers",
        ),
        (lambda: ansatz.plot_alpha_curves([1.0], {"a": [float("nan")]}), ValueError, r"^curves"),
        (lambda: ansatz.plot_alpha_curves([1.0], {}), ValueError, "^curves must hold"),
        (lambda: ansatz.plot_alpha_curves([1.0], {"a": [1.0]}, ax=3), TypeError, "^ax must be"),
        (lambda: ansatz.ansatz_explorer({}), ValueError, "^matrices must hold"),
        (
            lambda: ansatz.ansatz_explorer({"i": {"c": (_C, _C)}, "t": {"d": (_C, _C)}}),
            ValueError,
            r"^matrices\['t'\] has layers \['d'\]",
        ),
        (lambda: ansatz.ansatz_explorer({"i": {"c": (_C, _NAN)}}), ValueError, r"^matrices\['i'\]"),
        (lambda: ansatz.ansatz_explorer({"i": {"c": (_C, _C)}}, powers=()), ValueError, "^powers"),
    ],
)
def test_figures_and_explorer_name_a_hostile_argument(call, error, match):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    with pytest.raises(error, match=match):
        call()
    assert plt.get_fignums() == before  # refused before any figure is opened


def test_alpha_curves_draw_numpy_inputs_as_given():
    import matplotlib.pyplot as plt

    ax = ansatz.plot_alpha_curves(np.array([0.5, 1.0]), {"a": np.array([0.9, 0.8])})
    try:
        assert ax.get_lines()[0].get_ydata().tolist() == [0.9, 0.8]
    finally:
        plt.close(ax.figure)


# The one-call report on small networks (fast; under mutmut the torchvision families above and
# chapter 03's pretrained-network tests are skipped, and these pin verify_ansatz, _agops and
# _layer_row instead): every number against the brute-force patch-AGOP and the definitions.


def _hand_four(M, A):
    """(pearson, cosine, pearson_sqrt, cosine_sqrt) of M with A and A^{1/2}, by hand."""
    S = scipy_power(A, 0.5)
    return hand_pearson(M, A), hand_cosine(M, A), hand_pearson(M, S), hand_cosine(M, S)


def test_verify_ansatz_on_small_nets_equals_brute_force():
    """A residual block (BatchNorm, dilated grouped conv, stride) and its re-seeded twin as the
    initialisation, two of three layers, two of five outputs: the AGOPs kept equal the
    brute-force patch-AGOP, each similarity its definition, each null and control its own."""
    model, init = make("residual-zeros"), make("residual-zeros")
    with torch.no_grad():
        for p in init.parameters():
            p.mul_(-0.5).add_(0.1)  # another network of the same architecture
    X = rgb_images(2, 14)
    layers, outputs = ["c1", "c3"], [1, 3]
    table = ansatz.verify_ansatz(
        model, X, init=init, layers=layers, outputs=outputs, null_draws=3, seed=4,
        keep_agops=True, device="cpu", name="res", weights="w",
    )  # fmt: skip
    assert [r.layer for r in table] == layers and list(table.agops) == layers
    assert (table.model, table.weights, table.n_outputs, table.sketch) == ("res", "w", 2, None)
    assert (table.n_images, table.image_size) == (2, (14, 14))
    assert table.agop_seconds > 0 and table.init_agop_seconds > 0
    for layer in layers:
        conv, conv0 = model.get_submodule(layer), init.get_submodule(layer)
        A = brute_force_patch_agop(model, X, layer, outputs=outputs)
        A0 = brute_force_patch_agop(init, X, layer, outputs=outputs)
        torch.testing.assert_close(table.agops[layer], A, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(table.init_agops[layer], A0, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(table.factors[layer].dense(), A, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(table.init_factors[layer].dense(), A0, rtol=1e-9, atol=1e-12)
        W = conv.weight.detach().flatten(1)
        W0 = conv0.weight.detach().flatten(1)
        row = table[layer]
        assert row.weight_shape == tuple(conv.weight.shape) and row.seconds > 0
        got = (row.pearson, row.cosine, row.pearson_sqrt, row.cosine_sqrt)
        np.testing.assert_allclose(got, _hand_four(W.T @ W, A), atol=1e-8)
        got0 = (row.init_pearson, row.init_cosine, row.init_pearson_sqrt, row.init_cosine_sqrt)
        np.testing.assert_allclose(got0, _hand_four(W0.T @ W0, A0), atol=1e-8)
        assert row.cnfm_init_vs_trained == pytest.approx(hand_pearson(W0.T @ W0, W.T @ W))
        assert row.cnfm_init_vs_trained_cosine == pytest.approx(hand_cosine(W0.T @ W0, W.T @ W))
        # the nulls: null_baselines of this layer with the layer's own inner matrix G
        G = patch_agop(model, X, layers=[layer], outputs=outputs, factored=True, device="cpu")
        nulls = null_baselines(conv, n_draws=3, seed=4, G=G[layer].G)
        for kind in ("pearson", "cosine"):
            n = nulls[kind]
            assert getattr(row, f"null_random_{kind}") == pytest.approx(n["random_mean"])
            assert getattr(row, f"null_random_{kind}_std") == pytest.approx(n["random_std"])
            assert getattr(row, f"null_identity_{kind}") == pytest.approx(n["identity"])
            assert getattr(row, f"null_spectrum_{kind}") == pytest.approx(n["spectrum_mean"])
            assert getattr(row, f"null_spectrum_{kind}_std") == pytest.approx(n["spectrum_std"])
            assert getattr(row, f"null_random_{kind}_sqrt") is None  # only power 1 here
        assert row.null_identity_pearson == pytest.approx(hand_pearson(W.T @ W, W.T @ W))
    # without init and keep_agops: no initial columns, no dense matrices
    plain = ansatz.verify_ansatz(model, X, layers=layers, null_draws=0, device="cpu")
    assert plain.agops is None and plain.init_agops is None and plain.init_factors is None
    assert plain.init_agop_seconds is None and plain.n_outputs == 5
    assert (plain.model, plain.weights) == ("Residual", "weights as given")
    assert all(r.init_pearson is None and r.cnfm_init_vs_trained is None for r in plain)
    assert all(r.null_random_pearson is None for r in plain)  # null_draws=0


def test_verify_ansatz_sketch_and_seed_reach_the_agop():
    """``sketch`` Gaussian output probes drawn with ``seed``: the report's AGOPs are
    patch_agop's with the same sketch and seed (and differ from another seed's)."""
    model, X = bn_cnn(1), rgb_images(3, 8)[:, :2]
    table = ansatz.verify_ansatz(
        model, X, sketch=2, seed=3, null_draws=0, keep_agops=True, device="cpu"
    )
    assert table.sketch == 2
    same = patch_agop(model, X, sketch=2, seed=3, device="cpu")
    other = patch_agop(model, X, sketch=2, seed=4, device="cpu")
    for layer, A in table.agops.items():
        torch.testing.assert_close(A, same[layer], rtol=1e-12, atol=1e-14)
        assert not torch.allclose(A, other[layer])
        W = model.get_submodule(layer).weight.detach().flatten(1)
        assert table[layer].pearson == pytest.approx(hand_pearson(W.T @ W, A), abs=1e-10)


def test_private_agops_dense_or_factored_with_inner_matrices():
    """``_agops``: the patch-AGOPs of the named layers (dense, or factored as W^T G W) and
    their inner matrices G, over the outputs given, with the seconds it took."""
    model, X = make("stride2"), rgb_images(2, 14)
    names = ["2", "0"]
    (A, G), seconds = ansatz._agops(model, X, names, None, [0, 2], None, "cpu", False, 0)
    assert list(A) == list(G) == names and seconds > 0
    for n in names:
        reference = brute_force_patch_agop(model, X, n, outputs=[0, 2])
        torch.testing.assert_close(A[n], reference, rtol=1e-9, atol=1e-12)
        W = model.get_submodule(n).weight.detach().flatten(1)
        torch.testing.assert_close(W.T @ G[n][0] @ W, reference, rtol=1e-9, atol=1e-12)
    (F, G2), _ = ansatz._agops(model, X, names, 2, None, None, "cpu", False, 5, factored=True)
    sketched = patch_agop(model, X, sketch=2, seed=5, device="cpu")
    for n in names:
        torch.testing.assert_close(F[n].dense(), sketched[n], rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(G2[n], F[n].G)


def test_verify_ansatz_arguments_are_checked_and_passed_on(monkeypatch):
    """X is read in the model's dtype (and init's own), non-square images keep (H, W), sketch
    must be >= 1 and null_draws >= 0 (errors naming them), and layers, sketch, outputs,
    chunk_size, device, progress and seed reach patch_agop for both networks."""
    import time

    model, X = bn_cnn(1), rgb_images(3, 8)[:, :2]
    exact = ansatz.verify_ansatz(model, X, null_draws=0, device="cpu")
    as32 = ansatz.verify_ansatz(model, X.float(), null_draws=0, device="cpu")
    assert as32.column("pearson") == pytest.approx(exact.column("pearson"), abs=1e-12)
    init32 = bn_cnn(2).float()  # the initial network in float32: X is cast to its dtype
    mixed = ansatz.verify_ansatz(model, X, init=init32, null_draws=0, device="cpu")
    init64 = ansatz.verify_ansatz(bn_cnn(2), X, null_draws=0, device="cpu")
    assert mixed.column("init_pearson") == pytest.approx(init64.column("pearson"), abs=1e-4)
    with pytest.raises(ValueError, match="^X must"):
        ansatz.verify_ansatz(model, X[0], null_draws=0, device="cpu")
    for bad, error, match in (
        (dict(sketch=0), ValueError, "^sketch must"),
        (dict(sketch=1.5), TypeError, "^sketch must"),
        (dict(null_draws=-1), ValueError, "^null_draws must"),
        (dict(null_draws=2.0), TypeError, "^null_draws must"),
    ):
        with pytest.raises(error, match=match):
            ansatz.verify_ansatz(model, X, device="cpu", **{"null_draws": 0, **bad})
    assert ansatz.verify_ansatz(model, X, sketch=1, null_draws=0, device="cpu").sketch == 1
    # (H, W) as given: 6 x 9 images
    wide = (
        torch.nn.Sequential(
            torch.nn.Conv2d(2, 3, 3), torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 7, 2)
        )
        .double()
        .eval()
    )
    assert ansatz.verify_ansatz(wide, rgb_images(2, 9)[:, :2, :6], null_draws=0,
                                device="cpu").image_size == (6, 9)  # fmt: skip
    calls = []
    real = ansatz.patch_agop

    def patch_agop(model, X, **kw):
        calls.append({k: kw[k] for k in ("layers", "sketch", "outputs", "chunk_size", "device",
                                          "progress", "seed")})  # fmt: skip
        return real(model, X, **{**kw, "progress": False})

    monkeypatch.setattr(ansatz, "patch_agop", patch_agop)
    before = time.perf_counter()
    table = ansatz.verify_ansatz(
        model, X, init=bn_cnn(2), layers=["3"], sketch=2, outputs=[0, 1, 3], chunk_size=2,
        device="cpu", progress=True, seed=6, null_draws=0,
    )  # fmt: skip
    elapsed = time.perf_counter() - before
    want = dict(layers=["3"], sketch=2, outputs=[0, 1, 3], chunk_size=2, device="cpu",
                progress=True, seed=6)  # fmt: skip
    assert calls == [want, want]  # the trained network, then the initial one
    assert 0 < table.agop_seconds < elapsed and 0 < table.init_agop_seconds < elapsed


# What the figures draw, against the numbers they are given (mutation testing of the figures
# and the explorer; their looks, sizes and colours are not pinned: "styling" in CONTRIBUTING).


def _bar_series(ax):
    from matplotlib.container import BarContainer

    return [c for c in ax.containers if isinstance(c, BarContainer)]


def test_controls_figure_series_widths_limits_labels_and_legend():
    """Each series' bars are 0.8 / (number of series) wide, at the layer positions; only the
    two nulls carry error bars (a missing std is drawn as 0); the hatched series is the CNFM
    control; the y-axis runs from the lowest bar or error bar minus 0.05 (not below -1) to
    1.02; the legend, on the last panel only, names the series in order; a figure given is
    cleared and reused."""
    import matplotlib.pyplot as plt

    rows = _planted_rows()
    rows[1].null_random_pearson = 0.05  # a mean without its std: a zero error bar
    table = AnsatzTable("net", rows, powers=(1.0, 0.5))
    given = plt.figure()
    given.add_subplot(3, 3, 1)
    fig = ansatz.plot_ansatz_controls(table, fig=given)
    assert fig is given and len(fig.axes) == 2
    labels = ["trained", "at initialisation", "spectrum-matched null", "Wishart-$G$ null",
              "$G=I$ null", "corr($W_0^\\top W_0$, $W^\\top W$)"]  # fmt: skip
    for ax, power in zip(fig.axes, (1.0, 0.5), strict=True):
        series = _bar_series(ax)
        assert [c.get_label() for c in series] == labels
        assert all(p.get_width() == pytest.approx(0.8 / 6) for c in series for p in c.patches)
        assert [c.errorbar is not None for c in series] == [False, False, True, True, False,
                                                             False]  # fmt: skip
        hatches = [{p.get_hatch() for p in c.patches} for c in series]
        assert hatches == [{None}] * 5 + [{"//"}]
        records = [r for r in table.records() if r["kind"] == "pearson" and r["power"] == power]
        lows = []
        for r in records:
            for k, s in (
                ("trained", None),
                ("init", None),
                ("spectrum_mean", "spectrum_std"),
                ("null_mean", "null_std"),
                ("identity", None),
                ("cnfm_init", None),
            ):
                if r[k] is not None:
                    lows.append(r[k] - ((r[s] or 0.0) if s else 0.0))
        assert ax.get_ylim() == pytest.approx((max(-1.0, min(lows) - 0.05), 1.02))
        assert list(ax.get_xticks()) == [0, 1]
    wishart = _bar_series(fig.axes[0])[3]
    (lines,) = wishart.errorbar.lines[2]
    seg = lines.get_segments()[1]  # layer 2: mean 0.05, no std
    assert seg[0, 1] == seg[1, 1] == pytest.approx(0.05)
    assert fig.axes[0].get_legend() is None
    assert [t.get_text() for t in fig.axes[1].get_legend().get_texts()] == labels
    assert fig.axes[0].get_title() == "$W^\\top W$ vs AGOP"
    assert fig.axes[1].get_title() == "$W^\\top W$ vs AGOP$^{0.5}$"
    plt.close(fig)
    # a bar far below the others lowers the axis, but never below -1
    low = _planted_rows()[:1]
    low[0].null_identity_pearson = -0.4
    (ax,) = ansatz.plot_ansatz_controls(AnsatzTable("n", low)).axes
    assert ax.get_ylim() == pytest.approx((-0.45, 1.02))
    plt.close(ax.figure)
    low[0].null_identity_pearson = -0.99
    (ax,) = ansatz.plot_ansatz_controls(AnsatzTable("n", low)).axes
    assert ax.get_ylim() == pytest.approx((-1.0, 1.02))
    plt.close(ax.figure)
    low[0].null_identity_pearson, low[0].null_spectrum_pearson_std = 0.3, 0.7  # 0.6 - 0.7
    (ax,) = ansatz.plot_ansatz_controls(AnsatzTable("n", low)).axes
    assert ax.get_ylim() == pytest.approx((-0.15, 1.02))
    plt.close(ax.figure)
    # a subfigure: drawn there, laid out by its parent
    parent = plt.figure()
    (sub,) = parent.subfigures(1, 1, squeeze=False)[0]
    assert ansatz.plot_ansatz_controls(AnsatzTable("n", _planted_rows()), fig=sub) is sub
    assert len(sub.axes) == 1
    plt.close(parent)


def test_alpha_curves_on_given_axes_with_labels_and_legend_title():
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2)
    ax = ansatz.plot_alpha_curves([0.5, 1.0], {"a": [0.9, 0.8], "b": [0.5, 0.4]},
                                  ax=right, kind="cosine")  # fmt: skip
    assert ax is right and not left.get_lines() and len(right.get_lines()) == 2
    assert [line.get_linestyle() for line in ax.get_lines()] == ["-", "-"]  # no nulls given
    assert [line.get_color() for line in ax.get_lines()] == ["C0", "C1"]
    assert ax.get_xlabel() == "power $p$ of the AGOP" and ax.get_ylabel() == "cosine correlation"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]
    assert ax.get_legend().get_title().get_text() == ""
    plt.close(fig)
    ax = ansatz.plot_alpha_curves([0.5, 1.0], {"a": [0.9, 0.8]}, nulls={"a": [0.2, 0.1]})
    assert ax.get_ylabel() == "pearson correlation"
    assert ax.get_legend().get_title().get_text() == "solid: trained, dashed: null"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a"]  # the null: no entry
    plt.close(ax.figure)


def test_cnfm_agop_panels_scale_titles_and_reused_figure():
    """Both panels on the colour scale [-1, 1] with no ticks, titled by what they show; the
    power in the AGOP panel's title; a figure given is cleared and reused; one row per pair,
    in order, each drawn as plot_cnfm_agop draws it, at ``height`` inches per row."""
    import matplotlib.pyplot as plt

    W = torch.randn(3, 6, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    G = torch.diag(torch.tensor([3.0, 2.0, 0.5], dtype=torch.float64))
    C, A = W.T @ W, W.T @ G @ W
    given = plt.figure()
    given.add_subplot(2, 2, 1)
    fig = ansatz.plot_cnfm_agop(C, A, power=0.25, fig=given)
    assert fig is given and len(fig.axes) == 2
    left_box, right_box = (ax.get_position() for ax in fig.axes)
    assert left_box.y0 == pytest.approx(right_box.y0) and right_box.x0 > left_box.x1  # beside
    for ax in fig.axes:
        assert ax.get_images()[0].get_clim() == (-1, 1)
        assert len(ax.get_xticks()) == 0 and len(ax.get_yticks()) == 0
    assert [ax.get_title() for ax in fig.axes] == ["CNFM $W^\\top W$", "AGOP$^{0.25}$"]
    S = psd_power(A, 0.25)
    np.testing.assert_allclose(fig.axes[1].get_images()[0].get_array(),
                               (S / S.abs().max()).numpy(), atol=1e-12)  # fmt: skip
    assert fig._suptitle.get_text() == (
        f"pearson {correlation(C, S):.3f}, cosine {correlation(C, S, 'cosine'):.3f}"
    )
    plt.close(fig)
    # a negative entry largest in size: scaled by the largest absolute entry
    N = torch.tensor([[1.0, -4.0], [-4.0, 2.0]], dtype=torch.float64)
    fig = ansatz.plot_cnfm_agop(N, torch.eye(2, dtype=torch.float64))
    np.testing.assert_allclose(fig.axes[0].get_images()[0].get_array(), (N / 4).numpy())
    assert fig.axes[0].get_images()[0].get_clim() == (-1, 1)  # not the data's (-1, 0.5)
    plt.close(fig)
    fig = ansatz.plot_cnfm_agop(N / 100, torch.eye(2, dtype=torch.float64) / 1000)  # scaled up
    np.testing.assert_allclose(fig.axes[0].get_images()[0].get_array(), (N / 4).numpy())
    np.testing.assert_allclose(fig.axes[1].get_images()[0].get_array(), np.eye(2))
    plt.close(fig)
    pairs = {"first": (C, A), "second": (A, C)}
    fig = ansatz.plot_cnfm_agop_rows(pairs, height=1.5)
    assert fig.get_size_inches()[1] == pytest.approx(3.0)
    assert [sub._suptitle.get_text() for sub in fig.subfigs] == [
        f"{t}: pearson {correlation(c, a):.3f}, cosine {correlation(c, a, 'cosine'):.3f}"
        for t, (c, a) in pairs.items()
    ]
    for sub, (c, a) in zip(fig.subfigs, pairs.values(), strict=True):
        left, right = (ax.get_images()[0].get_array() for ax in sub.axes)
        np.testing.assert_allclose(left, (c / c.abs().max()).numpy(), atol=1e-12)
        np.testing.assert_allclose(right, (a / a.abs().max()).numpy(), atol=1e-12)
        assert [ax.get_title() for ax in sub.axes] == ["CNFM $W^\\top W$", "AGOP"]
    plt.close(fig)


def test_explorer_controls_and_redraws_the_chosen_pair(monkeypatch):
    """The three controls (checkpoint, layer, power) with their options, opening on the last
    checkpoint, the last layer and the first power; each change redraws plot_cnfm_agop with
    that checkpoint's pair of that layer, at that power, titled "layer, checkpoint", on one
    reused figure."""
    pytest.importorskip("ipywidgets")
    from agop_book.bench.widgets import _controls

    eye = torch.eye(3, dtype=torch.float64)
    matrices = {
        c: {n: (eye * (1 + i + 10 * j), eye + i + 10 * j) for i, n in enumerate(("l0", "l1", "l2"))}
        for j, c in enumerate(("init", "mid", "end"))
    }
    calls = []
    real = ansatz.plot_cnfm_agop

    def plot(C, A, power=1.0, title=None, fig=None):
        calls.append((C, A, power, title, fig))
        return real(C, A, power=power, title=title, fig=fig)

    monkeypatch.setattr(ansatz, "plot_cnfm_agop", plot)
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", shown.append)
    box = ansatz.ansatz_explorer(matrices, powers=(0.5, 1.0))
    c = _controls(box)
    assert [w.description for w in box.children[0].children] == ["checkpoint", "layer", "power"]
    assert not c["power"].continuous_update
    assert list(c["checkpoint"].options) == ["init", "mid", "end"]
    assert list(c["layer"].options) == ["l0", "l1", "l2"] and list(c["power"].options) == [0.5, 1.0]
    assert (c["checkpoint"].value, c["layer"].value, c["power"].value) == ("end", "l2", 0.5)
    c["checkpoint"].value = "mid"
    c["layer"].value = "l1"
    c["power"].value = 1.0
    assert [(p, t) for _, _, p, t, _ in calls] == [
        (0.5, "l2, end"), (0.5, "l2, mid"), (0.5, "l1, mid"), (1.0, "l1, mid")
    ]  # fmt: skip
    for (C, A, *_), key in zip(calls, [("end", "l2"), ("mid", "l2"), ("mid", "l1"),
                                                 ("mid", "l1")], strict=True):  # fmt: skip
        assert C is matrices[key[0]][key[1]][0] and A is matrices[key[0]][key[1]][1]
    figures = {id(f) for *_, f in calls}
    assert len(figures) == 1 and calls[0][4] is not None
    assert len(shown) == 4 and all(f is calls[0][4] for f in shown)  # the figure drawn
    one = ansatz.ansatz_explorer({"only": matrices["end"]})  # a single checkpoint
    assert _controls(one)["layer"].value == "l2" and calls[-1][3] == "l2, only"


def test_check_agops_reads_every_layer_after_a_factored_one_and_one_filter_layers():
    """A FactoredAGOP passes as it is, and the dense AGOPs after it are still checked; a layer
    with one filter has q = its filter's size; a value that is no matrix is named."""
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.Conv2d(3, 1, 3)).double().eval()
    X = rgb_images(2, 7)[:, :2]
    factored = patch_agop(model, X, factored=True, device="cpu")
    with pytest.raises(ValueError, match=r"^agops\['1'\] must be 27 x 27"):
        ansatz._check_agops(model, {"0": factored["0"], "1": torch.eye(3)})
    assert list(ansatz._check_agops(model, {"1": factored["1"].dense()})) == ["1"]
    with pytest.raises((TypeError, ValueError), match=r"^agops\['0'\]"):
        ansatz._check_agops(model, {"0": "not a matrix"})


# Mutation testing of the figures' argument checks (stop 33): every refusal of the figures and
# the explorer, with its whole message (the argument's exact name first, then the expected form
# the validator was given), and each minimum and maximum at its boundary.

_TABLE = ansatz.AnsatzTable("net", [LayerResult("l0", (2, 1, 2, 2), 0.9, 0.8, 0.7, 0.6)])
_MATRICES = {"i": {"c": (_C, _C)}}


@pytest.mark.parametrize(
    "call, error, message",
    [
        (
            lambda: ansatz.plot_cnfm_agop(None, _C),
            TypeError,
            "cnfm must be a tensor or array, got NoneType",
        ),
        (
            lambda: ansatz.plot_cnfm_agop(_C, None),
            TypeError,
            "agop must be a tensor or array, got NoneType",
        ),
        (
            lambda: ansatz.plot_cnfm_agop(torch.ones(4, 3), _C),
            ValueError,
            "cnfm must be a square matrix, got shape (4, 3)",
        ),
        (
            lambda: ansatz.plot_cnfm_agop(_C, torch.eye(3)),
            ValueError,
            "agop must be 4 x 4, got shape (3, 3)",
        ),
        (
            lambda: ansatz.plot_cnfm_agop(_NAN, _C),
            ValueError,
            "cnfm contains 16 non-finite values (NaN or inf)",
        ),
        (
            lambda: ansatz.plot_cnfm_agop(_C, _C, power=-0.5),
            ValueError,
            "power must be a non-negative number, got -0.5",
        ),
        (
            lambda: ansatz.plot_cnfm_agop(_C, _C, power="1"),
            TypeError,
            "power must be a real number, got '1' (str)",
        ),
        (
            lambda: ansatz.plot_cnfm_agop(_C, _C, title=3),
            TypeError,
            "title must be a str or None, got 3 (int)",
        ),
        (
            lambda: ansatz.plot_cnfm_agop(_C, _C, fig=3),
            TypeError,
            "fig must be None or a matplotlib Figure, got int",
        ),
        (
            lambda: ansatz.plot_cnfm_agop_rows([(_C, _C)]),
            TypeError,
            "pairs must be a dict {label: (cnfm, agop)}, got list",
        ),
        (
            lambda: ansatz.plot_cnfm_agop_rows({}),
            ValueError,
            "pairs must hold at least one entry {label: (cnfm, agop)}, got an empty one",
        ),
        (
            lambda: ansatz.plot_cnfm_agop_rows({"a": _C}),
            TypeError,
            "pairs['a'] must be a pair (cnfm, agop), got Tensor",
        ),
        (
            lambda: ansatz.plot_cnfm_agop_rows({"a": "ab"}),
            TypeError,
            "pairs['a'] must be a pair (cnfm, agop), got str",
        ),
        (
            lambda: ansatz.plot_cnfm_agop_rows({"a": (_C,)}),
            ValueError,
            "pairs['a'] must be a pair (cnfm, agop), got 1 items",
        ),
        (
            lambda: ansatz.plot_cnfm_agop_rows({"a": (_C, _C, _C)}),
            ValueError,
            "pairs['a'] must be a pair (cnfm, agop), got 3 items",
        ),
        (
            lambda: ansatz.plot_cnfm_agop_rows({"a": (None, _C)}),
            TypeError,
            "pairs['a'][0] must be a tensor or array, got NoneType",
        ),
        (
            lambda: ansatz.plot_cnfm_agop_rows({"a": (_C, torch.eye(3))}),
            ValueError,
            "pairs['a'][1] must be 4 x 4, got shape (3, 3)",
        ),
        (
            lambda: ansatz.plot_cnfm_agop_rows({"a": (_C, _C)}, height=0),
            ValueError,
            "height must be a positive number, got 0",
        ),
        (
            lambda: ansatz.plot_cnfm_agop_rows({"a": (_C, _C), "b": (_C, _C)}, height=50.5),
            ValueError,
            "height must be <= 50, got 50.5",
        ),
        (
            lambda: ansatz.plot_ansatz_controls({"a": 1}),
            TypeError,
            "table must be an AnsatzTable (ansatz_table, verify_ansatz), got dict",
        ),
        (
            lambda: ansatz.plot_ansatz_controls(ansatz.AnsatzTable("net", [])),
            ValueError,
            "table must hold at least one layer, got an empty AnsatzTable",
        ),
        (
            lambda: ansatz.plot_ansatz_controls(_TABLE, kind="spearman"),
            ValueError,
            "kind must be one of 'pearson', 'cosine' (case-insensitive), got 'spearman'",
        ),
        (
            lambda: ansatz.plot_ansatz_controls(_TABLE, labels="numbers"),
            ValueError,
            "labels must be one of 'names', 'index' (case-insensitive), got 'numbers'",
        ),
        (
            lambda: ansatz.plot_ansatz_controls(_TABLE, fig=3),
            TypeError,
            "fig must be None or a matplotlib Figure or SubFigure, got int",
        ),
        (
            lambda: ansatz.plot_alpha_curves("ab", {"a": [0.9]}),
            TypeError,
            "powers must be a non-empty sequence of numbers, got 'ab'",
        ),
        (
            lambda: ansatz.plot_alpha_curves([1.0], [0.9]),
            TypeError,
            "curves must be a dict {layer: [value per power]}, got list",
        ),
        (
            lambda: ansatz.plot_alpha_curves([1.0], {}),
            ValueError,
            "curves must hold at least one entry {layer: [value per power]}, got an empty one",
        ),
        (
            lambda: ansatz.plot_alpha_curves([0.5, 1.0], {"a": [0.9]}),
            ValueError,
            "curves['a'] must hold one value per power (2), got 1",
        ),
        (
            lambda: ansatz.plot_alpha_curves([0.5, 1.0], {"a": [0.9, 0.8, 0.7]}),
            ValueError,
            "curves['a'] must hold one value per power (2), got 3",
        ),
        (
            lambda: ansatz.plot_alpha_curves([1.0], {"a": [float("nan")]}),
            ValueError,
            "curves['a'][0] must be a finite number, got nan",
        ),
        (
            lambda: ansatz.plot_alpha_curves([1.0], {"a": [0.9]}, nulls=[0.5]),
            TypeError,
            "nulls must be a dict {layer: [value per power]}, got list",
        ),
        (
            lambda: ansatz.plot_alpha_curves([1.0], {"a": [0.9]}, nulls={}),
            ValueError,
            "nulls must hold at least one entry {layer: [value per power]}, got an empty one",
        ),
        (
            lambda: ansatz.plot_alpha_curves([1.0], {"a": [0.9]}, nulls={"b": [0.5]}),
            ValueError,
            "nulls: 'b' is not one of the layers of curves ['a']",
        ),
        (
            lambda: ansatz.plot_alpha_curves([1.0], {"a": [0.9]}, nulls={"a": [0.5, 0.4]}),
            ValueError,
            "nulls['a'] must hold one value per power (1), got 2",
        ),
        (
            lambda: ansatz.plot_alpha_curves([1.0], {"a": [0.9]}, ax=3),
            TypeError,
            "ax must be None or a matplotlib Axes, got int",
        ),
        (
            lambda: ansatz.plot_alpha_curves([1.0], {"a": [0.9]}, kind="spearman"),
            ValueError,
            "kind must be one of 'pearson', 'cosine' (case-insensitive), got 'spearman'",
        ),
        (
            lambda: ansatz.ansatz_explorer([("c", (_C, _C))]),
            TypeError,
            "matrices must be a dict {checkpoint: {layer: (cnfm, agop)}}, got list",
        ),
        (
            lambda: ansatz.ansatz_explorer({}),
            ValueError,
            "matrices must hold at least one entry {checkpoint: {layer: (cnfm, agop)}}, got an empty one",
        ),
        (
            lambda: ansatz.ansatz_explorer({"i": [(_C, _C)]}),
            TypeError,
            "matrices['i'] must be a dict {label: (cnfm, agop)}, got list",
        ),
        (
            lambda: ansatz.ansatz_explorer({"i": {}}),
            ValueError,
            "matrices['i'] must hold at least one entry {label: (cnfm, agop)}, got an empty one",
        ),
        (
            lambda: ansatz.ansatz_explorer({"i": {"c": _C}}),
            TypeError,
            "matrices['i']['c'] must be a pair (cnfm, agop), got Tensor",
        ),
        (
            lambda: ansatz.ansatz_explorer({"i": {"c": (_C, _NAN)}}),
            ValueError,
            "matrices['i']['c'][1] contains 16 non-finite values (NaN or inf)",
        ),
        (
            lambda: ansatz.ansatz_explorer({"i": {"c": (_C, _C)}, "t": {"d": (_C, _C)}}),
            ValueError,
            "matrices['t'] has layers ['d'], matrices['i'] has ['c']: every checkpoint must hold the same layers",
        ),
        (
            lambda: ansatz.ansatz_explorer(_MATRICES, powers=()),
            ValueError,
            "powers must be a non-empty sequence of numbers, got an empty one",
        ),
        (
            lambda: ansatz.ansatz_explorer(_MATRICES, powers=(1.0, -0.5)),
            ValueError,
            "powers[1] must be a non-negative number, got -0.5",
        ),
    ],
)
def test_figure_argument_checks_give_the_name_and_the_expected_form(call, error, message):
    import re

    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    with pytest.raises(error, match="^" + re.escape(message) + "$"):
        call()
    assert plt.get_fignums() == before


def test_figure_argument_checks_accept_each_boundary_value():
    import matplotlib.pyplot as plt

    # power = 0 (its minimum): AGOP^0 of a full-rank AGOP is the identity, as the CNFM here
    fig = ansatz.plot_cnfm_agop(
        _C, torch.diag(torch.tensor([4.0, 3, 2, 1], dtype=torch.float64)), 0
    )
    assert fig._suptitle.get_text() == "pearson 1.000, cosine 1.000"
    plt.close(fig)
    # matrices given as lists of Python floats are read in float64, not rounded to float32
    W = torch.rand(3, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    C, A = W.T @ W / 3, W.T @ W @ W.T @ W / 7
    fig = ansatz.plot_cnfm_agop(C.tolist(), A.tolist())
    for ax, M in zip(fig.axes, (C, A), strict=True):
        want = (M / M.abs().max()).numpy()
        np.testing.assert_allclose(ax.get_images()[0].get_array(), want, rtol=1e-12)
    plt.close(fig)
    # height = 100 inches / 2 rows (its maximum), and a tiny positive one
    for height in (50.0, 1e-3):
        fig = ansatz.plot_cnfm_agop_rows({"a": (_C, _C), "b": (_C, _C)}, height=height)
        assert fig.get_size_inches()[1] == pytest.approx(2 * height)
        plt.close(fig)
    # the controls figure draws into a subfigure
    parent = plt.figure()
    (sub,) = parent.subfigures(1, 1, squeeze=False)[0]
    assert ansatz.plot_ansatz_controls(_TABLE, fig=sub) is sub and len(sub.axes) == 1  # power 1
    plt.close(parent)
    # the explorer takes power 0 (its minimum)
    box = ansatz.ansatz_explorer(_MATRICES, powers=(0.0,))
    assert box.children[0].children[2].value == 0.0
    plt.close("all")


# Held-out style bugs, round 4


def test_table_mean_and_margin_are_arithmetic_means_over_the_layers():
    """Planted rows with skewed values (0.1, 0.2, 0.9): ``mean`` is their arithmetic mean,
    0.4 (the median would be 0.2), and ``margin`` the mean measured minus the mean Wishart
    null, written out."""
    rows = [
        ansatz.LayerResult(f"l{i}", (2, 1, 3, 3), p, 0.0, 0.0, 0.0, null_random_pearson=n)
        for i, (p, n) in enumerate([(0.1, 0.0), (0.2, 0.1), (0.9, 0.05)])
    ]
    table = ansatz.AnsatzTable("net", rows)
    assert table.mean("pearson") == pytest.approx((0.1 + 0.2 + 0.9) / 3, abs=1e-15)
    assert table.margin("pearson") == pytest.approx(0.4 - 0.15 / 3, abs=1e-15)


# ---------------------------------------------------------------------------
# Hostile inputs, round 5


def test_round5_draw_counts_beyond_any_run_are_refused_before_drawing():
    # 10**12 null draws used to loop for hours; now refused by name up front
    net, agops = _net_and_agops()
    X = torch.rand(2, 1, 6, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with pytest.raises(ValueError, match=r"^null_draws must be .*<= 2147483647"):
        ansatz.verify_ansatz(net, X, null_draws=10**12)
    with pytest.raises(ValueError, match=r"^n_draws must be .*<= 2147483647"):
        ansatz_table(net, agops, n_draws=10**12)


def _round5_table(value, null=0.5):
    return AnsatzTable(
        "net",
        [
            LayerResult(
                "a", (2, 1, 3, 3), value, 0.0, 0.0, 0.0,
                null_spectrum_pearson=null, null_spectrum_pearson_std=0.01,
            )
        ],
    )  # fmt: skip


@pytest.mark.parametrize("value, null", [(math.nan, 0.5), (0.5, math.inf)])
def test_round5_seed_gaps_refuses_a_non_finite_table_by_run(value, null):
    # a NaN similarity used to come back as a NaN gap, mean and sd
    with pytest.raises(ValueError, match=r"^run\(1\)'s table holds a non-finite"):
        seed_gaps(lambda s: _round5_table(*((value, null) if s == 1 else (0.6, 0.5))), [0, 1])


def test_round5_seed_gaps_names_kind_and_power_apart():
    run = {s: _round5_table(0.5 + 0.1 * s) for s in (0, 1)}.__getitem__
    # the message used to name power and kind together, whichever was wrong
    with pytest.raises(ValueError, match=r"^kind must be 'pearson' or 'cosine', got 'spearman'"):
        seed_gaps(run, [0, 1], kind="spearman")
    with pytest.raises(ValueError, match=r"^power must be 1.0 or 0.5, got 0.25"):
        seed_gaps(run, [0, 1], power=0.25)
    assert seed_gaps(run, [0, 1]).differences[:, 0].round(12).tolist() == [0.0, 0.1]


# Hostile inputs, round 6


def _tiny_net_and_agops():
    from agop_book.nets import SimpleCNN

    net = SimpleCNN(2, 3, image_size=8, depth=2, width=4, seed=0).double().eval()
    X = torch.rand(5, 2, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return net, patch_agop(net, X, device="cpu")


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda A: torch.zeros_like(A), r"^agops\['convs.0'\] is zero"),
        (lambda A: -A, r"^agops\['convs.0'\] must be positive semi-definite"),
    ],
)
def test_ansatz_table_names_an_agop_that_cannot_be_one(change, match):
    """A zero AGOP failed in the correlation (``B is constant``), a negated one in a PSD check
    naming ``A``: neither is an argument of ``ansatz_table``."""
    net, agops = _tiny_net_and_agops()
    agops = {k: change(v) for k, v in agops.items()}
    with pytest.raises(ValueError, match=match):
        ansatz_table(net, agops, n_draws=2)


def test_plot_cnfm_agop_names_a_constant_matrix():
    """A zero CNFM (a dead layer) or a 1 x 1 pair failed in the correlation, naming its ``A``."""
    W = torch.randn(4, 9, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with pytest.raises(ValueError, match="^cnfm is constant"):
        ansatz.plot_cnfm_agop(torch.zeros(9, 9, dtype=torch.float64), W.T @ W)
    with pytest.raises(ValueError, match=r"^pairs\['a'\]\[1\] is constant"):
        ansatz.plot_cnfm_agop_rows({"a": (W.T @ W, torch.ones(9, 9, dtype=torch.float64))})


def test_seed_gaps_names_seeds_that_are_no_list_and_tables_of_another_model():
    """``seeds=1`` failed iterating an int; tables of two models were averaged as one."""
    row = ansatz.LayerResult(
        "a",
        (2, 1, 3, 3),
        0.6,
        0.0,
        0.0,
        0.0,
        null_spectrum_pearson=0.5,
        null_spectrum_pearson_std=0.01,
    )
    tables = {1: ansatz.AnsatzTable("n", [row]), 2: ansatz.AnsatzTable("m", [row])}
    with pytest.raises(TypeError, match="^seeds must be a sequence of seeds"):
        ansatz.seed_gaps(tables.__getitem__, 1)
    with pytest.raises(
        ValueError, match=r"^run\(2\) is a table of model 'm', the first seed's was 'n'"
    ):
        ansatz.seed_gaps(tables.__getitem__, [1, 2])


def test_verify_ansatz_names_an_unknown_model_name_a_meta_model_and_a_name_not_a_str():
    """An unknown torchvision name was refused as ``name`` (``load_model``'s argument), a model
    on the meta device failed inside ``.item()``, and ``name=5`` was accepted."""
    from agop_book.nets import SimpleCNN

    X = torch.rand(2, 3, 16, 16, dtype=torch.float64)
    net = SimpleCNN(3, 4, image_size=16, depth=1, width=4, seed=0).double().eval()
    with pytest.raises(ValueError, match=r"^model must be an nn\.Module or the name .* 'nope'"):
        ansatz.verify_ansatz("nope", X)
    with pytest.raises(ValueError, match="^model is on the 'meta' device"):
        ansatz.verify_ansatz(SimpleCNN(3, 4, image_size=16, depth=1, width=4).to("meta"), X)
    for call in (
        lambda: ansatz.verify_ansatz(net, X, name=5, null_draws=0),
        lambda: ansatz.ansatz_table(net, {"convs.0": torch.eye(27)}, name=5),
    ):
        with pytest.raises(TypeError, match="^name must be a str or None, got 5"):
            call()
    assert ansatz.verify_ansatz(net, X, name="mine", null_draws=0).model == "mine"
