"""agop_book.ch05_deep_convrfm: the comparison of methods of Figure 5 (rows per method and layer,
the validation choice reported rather than the test-best, accuracies the estimators' own)."""

import re
import time

import numpy as np
import pytest
import torch

from agop_book.ch05_deep_convrfm import compare_methods, local_signal_task


def bars(n=120, sigma=0.5, seed=0):
    from agop_book.ch05_deep_convrfm import bars_in_noise

    X, y = bars_in_noise(n, sigma, height=8, width=12, seed=seed, device="cpu")
    return X, y


def test_compare_methods_rows():
    task = local_signal_task("bars", height=8, width=12)
    result = compare_methods(
        task,
        [0.5, 2.0],
        [0, 1],
        n_train=30,
        n_test=20,
        depth=2,
        patch_size=3,
        width=4,
        n_iter=1,
        cnn_epochs=2,
        device="cpu",
        progress=False,
    )
    assert len(result.rows) == 2 * 2 * 4
    assert {r["method"] for r in result.rows} == {"CNTK", "ConvRFM", "Deep ConvRFM", "CNN"}
    assert sorted({r["layers"] for r in result.layer_rows}) == [0, 1, 2]
    # each CNTK row is the test accuracy of the fixed kernel fitted on that seed's images
    from agop.rfm import ConvRFM
    from agop_book.ch05_deep_convrfm import TEST_SEED_OFFSET

    cntk = []
    for seed in (0, 1):
        X, y = task(30, 0.5, seed, "train")
        Xt, yt = task(20, 0.5, seed + TEST_SEED_OFFSET, "test")
        cntk.append(
            ConvRFM(
                kernel="cntk",
                depth=2,
                patch_size=3,
                n_iter=0,
                random_state=seed,
                device="cpu",
                progress=False,
            )
            .fit(X, y)
            .score(Xt, yt)
        )
        (row,) = [
            r for r in result.rows if (r["method"], r["noise"], r["seed"]) == ("CNTK", 0.5, seed)
        ]
        assert row["accuracy"] == cntk[-1]
    assert result.summary("CNTK", 0.5) == pytest.approx((np.mean(cntk), np.std(cntk, ddof=1)))
    panels = result.panels(n_images=2)
    assert [p["noise"] for p in panels] == [0.5, 2.0]
    assert panels[0]["maps"]["ConvRFM map"].shape == (2, 8, 12)


def test_comparison_reports_the_validation_choice_not_the_test_best(monkeypatch):
    """Selection-leak guard. A stub Deep ConvRFM whose validation split chose iterate 1 at both
    layers, while on the test labels another iterate of each layer, and the first layer over
    the second, score higher: the comparison must report the validation choices (CNTK =
    iterate 0 = 0.50, ConvRFM 0.65, Deep ConvRFM 0.60), not a test-best (0.95, 0.90, 0.65)."""
    from agop_book import ch05_deep_convrfm as local_signals
    from agop_book.ch05_deep_convrfm import evaluate_methods

    test_scores = [[0.50, 0.65, 0.95], [0.90, 0.60]]  # layer -> iterate -> test accuracy
    chosen = [1, 1]  # layer -> iterate with the best validation accuracy

    class Layer:
        def __init__(self, l):
            self.l, self.best_iter_ = l, chosen[l]

        def score_iterations(self, X, y):
            assert len(y) == 7  # only ever asked about the test images
            return list(test_scores[self.l])

        def score(self, X, y, sample_weight=None):
            return self.score_iterations(X, y)[self.best_iter_]

    class StubDeep:
        def __init__(self, n_layers, **kwargs):
            self.n_layers = n_layers

        def fit(self, X, y):
            self.layers_ = [Layer(l) for l in range(self.n_layers)]
            # validation accuracies as DeepConvRFM records them (the CNTK's, each layer's best)
            self.history_ = [{"val_acc_cntk": 0.55, "val_acc": 0.70}, {"val_acc": 0.65}]
            return self

        def score_layers(self, X, y):
            return [layer.score(X, y) for layer in self.layers_]

    monkeypatch.setattr(local_signals, "DeepConvRFM", StubDeep)
    X, y = torch.zeros(20, 1, 6, 6), torch.arange(20) % 2
    out = evaluate_methods(
        X,
        y,
        torch.zeros(7, 1, 6, 6),
        torch.arange(7) % 2,
        seed=0,
        depth=2,
        patch_size=3,
        methods=("CNTK", "ConvRFM", "Deep ConvRFM"),
    )
    assert out["accuracy"] == {"CNTK": 0.50, "ConvRFM": 0.65, "Deep ConvRFM": 0.60}
    assert out["layers"] == {0: 0.50, 1: 0.65, 2: 0.60}
    assert out["val_layers"] == {0: 0.55, 1: 0.70, 2: 0.65}  # validation, never test


def test_reported_accuracies_are_the_estimators_own():
    """The comparison's CNTK and ConvRFM numbers are those of ConvRFM fitted on its own with the
    same seed (n_iter = 0 for the CNTK): same split, same ridges, scored on the same images."""
    from agop.rfm import ConvRFM
    from agop_book.ch05_deep_convrfm import evaluate_methods

    X, y = bars(40, sigma=1.0)
    Xt, yt = bars(60, sigma=1.0, seed=1)
    out = evaluate_methods(
        X,
        y,
        Xt,
        yt,
        seed=3,
        depth=1,
        patch_size=3,
        n_iter=1,
        methods=("CNTK", "ConvRFM"),
        device="cpu",
    )
    common = dict(
        kernel="cntk", depth=1, patch_size=3, random_state=3, device="cpu", progress=False
    )
    assert out["accuracy"]["CNTK"] == ConvRFM(n_iter=0, **common).fit(X, y).score(Xt, yt)
    assert out["accuracy"]["ConvRFM"] == ConvRFM(n_iter=1, **common).fit(X, y).score(Xt, yt)


def test_layer_rows_carry_the_validation_choice():
    """layer_rows give each machine's validation accuracy (the CNTK's, then each layer's, as
    the fitted Deep ConvRFM records them) and mark as chosen the first number of layers with
    the best validation accuracy: exactly one per (noise, seed)."""
    task = local_signal_task("bars", height=8, width=8)
    result = compare_methods(
        task,
        [2.0],
        [0, 1],
        n_train=60,
        n_test=20,
        depth=2,
        patch_size=3,
        width=4,
        n_iter=2,
        device="cpu",
        progress=False,
        methods=("CNTK", "ConvRFM", "Deep ConvRFM"),
    )
    deep = result.models[(2.0, "Deep ConvRFM")]
    # here the CNTK and ConvRFM validation accuracies differ (0.75, 0.83), so each is checked
    assert deep.history_[0]["val_acc_cntk"] != deep.history_[0]["val_acc"]
    first = [r for r in result.layer_rows if r["seed"] == 0]
    assert [r["val"] for r in first] == [
        deep.history_[0]["val_acc_cntk"],
        *[h["val_acc"] for h in deep.history_],
    ]
    for seed in (0, 1):
        rows = [r for r in result.layer_rows if r["seed"] == seed]
        assert sum(r["chosen"] for r in rows) == 1
        (pick,) = [r for r in rows if r["chosen"]]
        assert pick["layers"] == int(np.argmax([r["val"] for r in rows]))
    # without a ConvRFM fit there is no validation record, and nothing is chosen
    cntk_only = compare_methods(
        task,
        [1.0],
        [0],
        n_train=30,
        n_test=20,
        depth=1,
        patch_size=3,
        methods=("CNTK",),
        device="cpu",
        progress=False,
    )
    assert [(r["val"], r["chosen"]) for r in cntk_only.layer_rows] == [(None, False)]


# Mutation testing (`make mutation MODULES=local_signals`, CONTRIBUTING.md): every option of
# evaluate_methods reaches the estimator it is meant for, and the bookkeeping of
# compare_methods and Comparison.panels is checked on planted results.

from agop_book import ch05_deep_convrfm as ch05  # noqa: E402


def _record_fits(monkeypatch, *classes):
    """Each ``fit`` of these classes records the estimator's parameters, then fits."""
    fitted = []
    for cls in classes:
        real = cls.fit

        def fit(self, X, y, *args, _real=real, **kwargs):
            fitted.append((type(self).__name__, self.get_params()))
            return _real(self, X, y, *args, **kwargs)

        monkeypatch.setattr(cls, "fit", fit)
    return fitted


def _tiny(seed=0, n=24, size=6):
    return ch05.bars_in_noise(n, 0.5, height=size, width=size, seed=seed, device="cpu")


def test_every_option_reaches_its_estimator(monkeypatch):
    from agop.deep_rfm import DeepConvRFM
    from agop.rfm import ConvRFM
    from agop_book.nets import CNNBaseline

    fitted = _record_fits(monkeypatch, DeepConvRFM, CNNBaseline, ConvRFM)
    (X, y), (Xt, yt) = _tiny(size=10), _tiny(1, 10, size=10)
    options = dict(seed=5, depth=2, patch_size=5, device="cpu")  # 5: not a default
    start = time.perf_counter()
    out = ch05.evaluate_methods(
        X, y, Xt, yt, **options, width=3, n_iter=2, n_layers=2, nonlinearity="tanh",
        cnn_epochs=2, cnn_lr=0.02, cnn_batch_size=8, agop_samples=7, ridges=[1e-3, 1e-1],
    )  # fmt: skip
    wall = time.perf_counter() - start
    common = dict(patch_size=5, random_state=5, device="cpu", progress=False)
    (deep_name, deep), (cnn_name, cnn) = fitted[0], fitted[-1]
    fitted = [f for f in fitted if f[0] != "ConvRFM" or f[1]["n_iter"] == 0]
    assert (deep_name, cnn_name) == ("DeepConvRFM", "CNNBaseline")
    want = dict(depth=2, n_layers=2, width=3, n_iter=2, nonlinearity="tanh", agop_samples=7)
    assert {k: deep[k] for k in [*want, *common, "ridges"]} == {
        **want, **common, "ridges": [1e-3, 1e-1]
    }  # fmt: skip
    want = dict(depth=2, width=3, epochs=2, lr=0.02, batch_size=8)
    assert {k: cnn[k] for k in [*want, *common]} == {**want, **common}
    assert out["n_layers"] == 2 and sorted(out["layers"]) == [0, 1, 2]
    model = out["models"]["CNN"]
    assert isinstance(model, CNNBaseline) and out["accuracy"]["CNN"] == model.score(Xt, yt)
    assert all(0 <= out["seconds"][m] <= wall for m in ch05.METHODS)
    # with ConvRFM asked for, the CNTK is its iterate 0: no separate n_iter = 0 fit
    assert [p["n_iter"] for name, p in fitted if name == "ConvRFM"] == []
    # the defaults: width 64, one iteration, ReLU, and the CNN's 25 epochs of Adam at 1e-3
    del fitted[:]
    everything = _record_fits(monkeypatch, DeepConvRFM, CNNBaseline)
    ch05.evaluate_methods(X, y, Xt, yt, **options, methods=("Deep ConvRFM", "CNN"))
    deep, cnn = everything[0][1], everything[-1][1]
    assert (deep["width"], deep["n_iter"], deep["nonlinearity"]) == (64, 1, "relu")
    assert (deep["agop_samples"], deep["n_layers"]) == (None, 2)  # n_layers: the depth
    assert DeepConvRFM().get_params()["ridges"] == deep["ridges"]  # the estimator's own grid
    assert (cnn["width"], cnn["epochs"], cnn["lr"], cnn["batch_size"]) == (64, 25, 1e-3, 64)


def test_the_cntk_alone_is_convrfm_at_iterate_0(monkeypatch):
    from agop.rfm import ConvRFM

    fitted = _record_fits(monkeypatch, ConvRFM)
    (X, y), (Xt, yt) = _tiny(), _tiny(1, 10)
    start = time.perf_counter()
    out = ch05.evaluate_methods(
        X, y, Xt, yt, seed=5, depth=2, patch_size=3, device="cpu", methods=("CNTK",),
        agop_samples=7, ridges=[1e-2],
    )  # fmt: skip
    assert 0 <= out["seconds"]["CNTK"] <= time.perf_counter() - start
    ((name, params),) = fitted
    assert name == "ConvRFM" and params["kernel"] == "cntk" and params["n_iter"] == 0
    assert {k: params[k] for k in ("depth", "patch_size", "random_state", "progress")} == dict(
        depth=2, patch_size=3, random_state=5, progress=False
    )
    assert (params["agop_samples"], params["ridges"], params["device"]) == (7, [1e-2], "cpu")
    model = out["models"]["CNTK"]
    assert isinstance(model, ConvRFM) and out["accuracy"]["CNTK"] == model.score(Xt, yt)
    assert out["layers"] == {0: out["accuracy"]["CNTK"]} and "n_layers" not in out
    # with ConvRFM or Deep ConvRFM asked for, the CNTK is their iterate 0: no n_iter = 0 fit
    for methods in (("CNTK", "ConvRFM"), ("CNTK", "Deep ConvRFM")):
        fitted.clear()
        out = ch05.evaluate_methods(
            X, y, Xt, yt, seed=5, depth=1, patch_size=3, device="cpu", methods=methods
        )
        assert [p["n_iter"] for _, p in fitted] == [1]  # the one layer of the one fit
        assert out["models"]["CNTK"] is None


class _StubDeep:
    """A Deep ConvRFM whose layers score as planted: layer l -> 0.5 + 0.1 l on the test set."""

    fits: list = []

    def __init__(self, n_layers, **kwargs):
        self.n_layers = n_layers
        _StubDeep.fits.append(n_layers)

    def fit(self, X, y):
        self.layers_ = [_StubLayer(l) for l in range(self.n_layers)]
        self.history_ = [{"val_acc_cntk": 0.3, "val_acc": 0.4}] + [
            {"val_acc": 0.4 + 0.01 * l} for l in range(1, self.n_layers)
        ]
        return self

    def score_layers(self, X, y):
        return [0.5 + 0.1 * l for l in range(self.n_layers)]


class _StubLayer:
    def __init__(self, l):
        self.l = l

    def score_iterations(self, X, y):
        return [0.25 + self.l, 0.5 + 0.1 * self.l]


def test_layers_and_methods_bookkeeping_on_planted_scores(monkeypatch):
    """ConvRFM alone fits one layer whatever the depth; Deep ConvRFM fits ``n_layers`` (the
    depth by default) and reports its last layer; the CNTK is iterate 0 of the first layer;
    each method's seconds lie within the call's wall time."""
    monkeypatch.setattr(ch05, "DeepConvRFM", _StubDeep)
    X, y = torch.zeros(4, 1, 5, 5), torch.tensor([0, 1, 0, 1])

    def run(**kw):
        return ch05.evaluate_methods(X, y, X[:2], y[:2], seed=0, depth=2, patch_size=3, **kw)

    _StubDeep.fits = []
    out = run(methods=("ConvRFM",))
    assert _StubDeep.fits == [1] and out["n_layers"] == 1
    assert out["accuracy"] == {"ConvRFM": 0.5} and out["layers"] == {1: 0.5}
    _StubDeep.fits = []
    start = time.perf_counter()
    out = run(methods=("CNTK", "ConvRFM", "Deep ConvRFM"), n_layers=3)
    wall = time.perf_counter() - start
    assert _StubDeep.fits == [3] and out["n_layers"] == 3
    assert out["accuracy"] == pytest.approx({"CNTK": 0.25, "ConvRFM": 0.5, "Deep ConvRFM": 0.7})
    assert out["layers"] == pytest.approx({0: 0.25, 1: 0.5, 2: 0.6, 3: 0.7})
    assert out["val_layers"] == pytest.approx({0: 0.3, 1: 0.4, 2: 0.41, 3: 0.42})
    assert all(0 <= out["seconds"][m] <= wall for m in out["accuracy"])
    deep = out["models"]["Deep ConvRFM"]
    assert out["models"]["CNTK"] is None and out["models"]["ConvRFM"] is deep.layers_[0]
    _StubDeep.fits = []
    assert run(methods=("Deep ConvRFM",))["n_layers"] == 2 and _StubDeep.fits == [2]
    with pytest.raises(ValueError, match="^methods must"):
        run(methods=("ConvRFM", "SVM"))


def test_compare_methods_bookkeeping_on_planted_results(monkeypatch, capsys):
    """Each (noise, seed) draws its training images with the seed and split "train", its test
    images with seed + TEST_SEED_OFFSET and split "test", passes the settings on, and turns
    the result into rows (layers: 0 for the CNTK, 1 for ConvRFM, L for Deep ConvRFM, None for
    the CNN) and layer rows (the first best validation accuracy chosen); models and test images
    are the first seed's."""
    drawn, evaluated = [], []

    def task(n, noise, seed, split):
        drawn.append((n, noise, seed, split))
        return torch.full((n, 1, 2, 2), float(seed)), torch.full((n,), noise)

    def evaluate(X, y, Xt, yt, *, seed, **settings):
        evaluated.append((float(X[0, 0, 0, 0]), float(Xt[0, 0, 0, 0]), seed, settings))
        noise = float(y[0])
        acc = {m: noise + seed / 10 + i / 100 for i, m in enumerate(ch05.METHODS)}
        return {
            "accuracy": acc,
            "layers": {0: 0.1, 1: 0.2, 2: 0.3},
            "val_layers": {0: 0.5, 1: 0.7, 2: 0.7},  # a tie: the first best is chosen
            "n_layers": 2,
            "seconds": {m: 100 * a for m, a in acc.items()},
            "models": {m: (noise, seed, m) for m in acc},
        }

    monkeypatch.setattr(ch05, "evaluate_methods", evaluate)
    offset = ch05.TEST_SEED_OFFSET
    result = ch05.compare_methods(task, [1.0, 2.0], [3, 4], n_train=5, n_test=6, depth=9)
    assert re.search(r"(^|\r)noise x seed: ", capsys.readouterr().err)  # a bar by default
    jobs = [(1.0, 3), (1.0, 4), (2.0, 3), (2.0, 4)]
    assert drawn == [x for v, s in jobs for x in ((5, v, s, "train"), (6, v, s + offset, "test"))]
    assert evaluated == [(s, s + offset, s, {"depth": 9}) for _, s in jobs]
    layers = {"CNTK": 0, "ConvRFM": 1, "Deep ConvRFM": 2, "CNN": None}
    assert result.rows == [
        {"noise": v, "seed": s, "method": m, "accuracy": a, "layers": layers[m],
         "seconds": 100 * a}
        for v, s in jobs
        for i, m in enumerate(ch05.METHODS)
        for a in [v + s / 10 + i / 100]
    ]  # fmt: skip
    assert result.layer_rows == [
        {"noise": v, "seed": s, "layers": l, "accuracy": a, "val": val, "chosen": l == 1}
        for v, s in jobs
        for l, a, val in ((0, 0.1, 0.5), (1, 0.2, 0.7), (2, 0.3, 0.7))
    ]
    assert result.models == {(v, m): (v, 3, m) for v in (1.0, 2.0) for m in ch05.METHODS}
    assert list(result.test) == [1.0, 2.0]
    assert all(float(Xt[0, 0, 0, 0]) == 3 + offset for Xt, _ in result.test.values())
    ch05.compare_methods(task, [1.0], [3], n_train=5, n_test=6, progress=False)
    assert capsys.readouterr().err == ""
    for noise_levels, seeds, message in (
        ([1.0], [], "seeds must hold at least one seed"),
        ([], [3], "noise_levels must be non-empty"),
    ):
        with pytest.raises(ValueError, match=f"^{message}"):
            ch05.compare_methods(task, noise_levels, seeds, n_train=5, n_test=6)


def _brute_feature_map(A, x, k):
    """``||A^(1/2) p||`` of every zero-padded ("same") k x k patch ``p`` of ``x``, by loops."""
    x = torch.nn.functional.pad(x.double(), [k // 2] * 4)
    vals, vecs = torch.linalg.eigh(A.double())
    root = vecs @ torch.diag(vals.clamp(min=0).sqrt()) @ vecs.T
    n, c, H, W = x.shape
    out = torch.zeros(n, H - k + 1, W - k + 1, dtype=torch.float64)
    for i in range(H - k + 1):
        for j in range(W - k + 1):
            out[:, i, j] = (x[:, :, i : i + k, j : j + k].flatten(1) @ root).norm(dim=1)
    return out


def test_panels_map_each_methods_first_layer():
    """The maps of ConvRFM (its ``M``), Deep ConvRFM (its first layer's ``M``) and the CNN (its
    first CNFM), on the first ``n_images`` (4) test images; the accuracies of every method."""
    from agop.deep_rfm import DeepConvRFM
    from agop.rfm import ConvRFM
    from agop_book.nets import CNNBaseline

    (X, y), (Xt, yt) = _tiny(n=20, size=8), _tiny(1, 6, size=8)
    fast = dict(patch_size=3, device="cpu", progress=False, random_state=0)
    conv = ConvRFM(kernel="cntk", n_iter=1, **fast).fit(X, y)
    deep = DeepConvRFM(depth=2, n_layers=2, width=3, n_iter=1, **fast).fit(X, y)
    cnn = CNNBaseline(depth=1, width=3, epochs=1, **fast).fit(X, y)
    rows = [
        {"noise": 1.0, "seed": s, "method": m, "accuracy": a}
        for s, (a0, a1) in enumerate([(0.5, 0.7), (0.6, 0.9)])
        for m, a in (("ConvRFM", a0), ("CNN", a1))
    ]
    models = {(1.0, "ConvRFM"): conv, (1.0, "Deep ConvRFM"): deep, (1.0, "CNN"): cnn}
    result = ch05.Comparison(rows, [], models, {1.0: (Xt, yt)})
    (panel,) = result.panels(methods=("ConvRFM", "Deep ConvRFM", "CNN"))
    assert panel["noise"] == 1.0 and torch.equal(panel["images"], Xt[:4])
    accuracy = {
        m: (np.mean(a), np.std(a, ddof=1))
        for m, a in (("ConvRFM", [0.5, 0.6]), ("CNN", [0.7, 0.9]))
    }
    assert sorted(panel["accuracy"]) == ["CNN", "ConvRFM"]
    for m, (mean, sd) in accuracy.items():
        assert panel["accuracy"][m] == pytest.approx((mean, sd))
    for method, A in (
        ("ConvRFM", conv.M_),
        ("Deep ConvRFM", deep.layers_[0].M_),
        ("CNN", cnn.cnfms_[0]),
    ):
        torch.testing.assert_close(panel["maps"][f"{method} map"], _brute_feature_map(A, Xt[:4], 3))
    assert not torch.allclose(deep.layers_[0].M_, deep.layers_[1].M_[:9, :9])
    (panel,) = result.panels(n_images=2)  # the default methods: ConvRFM and the CNN
    assert sorted(panel["maps"]) == ["CNN map", "ConvRFM map"] and len(panel["images"]) == 2
    del models[(1.0, "ConvRFM")]  # a method without a model is skipped, the next one drawn
    (panel,) = result.panels()
    assert sorted(panel["maps"]) == ["CNN map"] and len(panel["images"]) == 4


def test_layer_curve_plots_each_layers_mean_and_sample_std():
    import matplotlib.pyplot as plt

    rows = [
        {"layers": n, "accuracy": a}
        for n, a in ((2, 0.9), (0, 0.6), (1, 0.7), (0, 0.5), (1, 0.8), (0, 0.7), (2, 0.9), (3, 1.0))
    ]
    ax = ch05.plot_layer_curve(rows, label="bars", title="Figure 6B")
    line = ax.get_lines()[0]  # then the caps
    assert line.get_xdata().tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(line.get_ydata(), [0.6, 0.75, 0.9, 1.0])
    (bars,) = ax.collections  # the error bars: mean -+ one sample standard deviation
    spans = [seg[:, 1] for seg in bars.get_segments()]
    sd = [np.std([0.6, 0.5, 0.7], ddof=1), np.std([0.7, 0.8], ddof=1), 0.0, 0.0]  # one seed: 0
    np.testing.assert_allclose([hi - lo for lo, hi in spans], 2 * np.array(sd), atol=1e-12)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["bars"]
    assert ax.get_title() == "Figure 6B" and list(ax.get_xticks()) == [0, 1, 2, 3]
    assert ax.get_xlabel() == "feature-learning layers (0 = CNTK)"
    assert ax.get_ylabel() == "test accuracy"
    plt.close(ax.figure)
    fig, ax = plt.subplots()
    assert ch05.plot_layer_curve(rows[:2], ax=ax) is ax and ax.get_legend() is None
    assert ax.get_title() == ""
    plt.close(fig)


# Hostile inputs


def _sets(n=6, size=6):
    X, y = ch05.bars_in_noise(n, 0.5, height=size, width=size, seed=0, device="cpu")
    Xt, yt = ch05.bars_in_noise(n, 0.5, height=size, width=size, seed=1, device="cpu")
    return X, y, Xt, yt


_SETTINGS = dict(seed=0, depth=1, patch_size=3, width=2, device="cpu")


@pytest.mark.parametrize(
    "change, error, match",
    [
        (dict(methods=[]), ValueError, "methods must name at least one"),
        (dict(methods="CNN"), TypeError, "methods must be a sequence"),
        (dict(methods=None), TypeError, "methods must be a sequence"),
        (dict(methods=["CNTK", "SVM"]), ValueError, r"methods must be among .*'SVM'"),
        (dict(seed=-1), ValueError, "seed must"),
        (dict(methods=["CNN"], cnn_epochs=-1), ValueError, "cnn_epochs must"),
        (dict(methods=["CNN"], cnn_lr=0.0), ValueError, "cnn_lr must be a positive"),
        (dict(methods=["CNN"], cnn_batch_size=0), ValueError, "cnn_batch_size must"),
        (dict(X_test=lambda Xt: Xt[:, :, :5]), ValueError, "X_test must have the training"),
        (dict(X_test=lambda Xt: Xt * float("nan")), ValueError, "X_test contains"),
        (dict(X_test=lambda Xt: Xt[:0]), ValueError, "X_test is empty"),
        (dict(X_test=lambda Xt: Xt[0]), ValueError, r"X_test must have shape \(n, c, H, W\)"),
        (dict(y_test=lambda yt: yt[:3]), ValueError, r"y_test must hold one label per image \(6\)"),
        (dict(y_test=lambda yt: yt * float("nan")), ValueError, "y_test contains"),
        (dict(X=lambda X: X[:, :, :4]), ValueError, "X_test must have the training"),
        (dict(y=lambda y: y[:2]), ValueError, r"y must hold one label per image \(6\)"),
    ],
)
@pytest.mark.parametrize("method", ["CNTK", "ConvRFM", "CNN"])
def test_hostile_inputs_to_evaluate_methods_are_refused_by_name(change, error, match, method):
    X, y, Xt, yt = _sets()
    sets = dict(X=X, y=y, X_test=Xt, y_test=yt)
    options = dict(_SETTINGS, methods=[method])
    for key, value in change.items():
        if key in sets:
            sets[key] = value(sets[key])
        else:
            options[key] = value
    with pytest.raises(error, match=f"^{match}"):
        ch05.evaluate_methods(sets["X"], sets["y"], sets["X_test"], sets["y_test"], **options)


def _task(n, noise, seed, split="train"):
    return ch05.bars_in_noise(n, noise, height=6, width=6, seed=seed, device="cpu")


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: compare_methods(None, [1.0], [0], n_train=6, n_test=6), TypeError, "task must"),
        (
            lambda: compare_methods(lambda *a: 3, [1.0], [0], n_train=6, n_test=6, progress=False),
            TypeError,
            "task must return a pair",
        ),
        (lambda: compare_methods(_task, 1.0, [0], n_train=6, n_test=6), TypeError, "noise_levels"),
        (lambda: compare_methods(_task, [1.0], 0, n_train=6, n_test=6), TypeError, "seeds must"),
        (lambda: compare_methods(_task, [-1.0], [0], n_train=6, n_test=6), ValueError, "noise_lev"),
        (
            lambda: compare_methods(_task, [1.0], [-1], n_train=6, n_test=6),
            ValueError,
            r"seeds\[0\]",
        ),
        (lambda: compare_methods(_task, [], [0], n_train=6, n_test=6), ValueError, "noise_levels"),
        (lambda: compare_methods(_task, [1.0], [0], n_train=0, n_test=6), ValueError, "n_train"),
        (lambda: compare_methods(_task, [1.0], [0], n_train=6, n_test=None), TypeError, "n_test"),
        (
            lambda: compare_methods(_task, [1.0], [0], n_train=6, n_test=6, progress=1),
            TypeError,
            "progress",
        ),
        (
            lambda: compare_methods(_task, [1.0], [0], n_train=6, n_test=6, seed=3),
            TypeError,
            "seed: set per run",
        ),
        (
            lambda: compare_methods(_task, [1.0], [0], n_train=6, n_test=6, bogus=3),
            TypeError,
            "bogus: not a setting",
        ),
    ],
)
def test_hostile_inputs_to_compare_methods_are_refused_by_name(call, error, match):
    with pytest.raises(error, match=f"^{match}"):
        call()


@pytest.mark.parametrize(
    "rows, kwargs, error, match",
    [
        ([], {}, ValueError, "^layer_rows must hold"),
        ([{"layers": 0}], {}, ValueError, r"^layer_rows\[0\] has no key 'accuracy'"),
        (
            [{"layers": 0, "accuracy": float("nan")}],
            {},
            ValueError,
            r"^layer_rows\[0\]\['accuracy'\]",
        ),
        ([{"layers": -1, "accuracy": 0.5}], {}, ValueError, r"^layer_rows\[0\]\['layers'\]"),
        ([{"layers": "1", "accuracy": 0.5}], {}, TypeError, r"^layer_rows\[0\]\['layers'\]"),
        ([{"layers": 0, "accuracy": 0.5}], {"ax": 3}, TypeError, "^ax must be"),
        ([{"layers": 0, "accuracy": 0.5}], {"label": 3}, TypeError, "^label must be"),
        ([{"layers": 0, "accuracy": 0.5}], {"title": 3}, TypeError, "^title must be"),
    ],
)
def test_layer_curve_names_a_hostile_argument(rows, kwargs, error, match):
    import matplotlib.pyplot as plt

    from agop_book.ch05_deep_convrfm import plot_layer_curve

    before = plt.get_fignums()
    with pytest.raises(error, match=match):
        plot_layer_curve(rows, **kwargs)
    assert plt.get_fignums() == before


# Mutation testing, stop 34


@pytest.mark.parametrize(
    "change, error, match",
    [
        (dict(X=lambda X: X[:, 0]), ValueError, r"X must have shape \(n, c, H, W\)"),
        (dict(X=lambda X: X[:0]), ValueError, r"X is empty"),
        (dict(y=lambda y: y.to(torch.complex64)), TypeError, "y must be real"),
        (dict(y_test=lambda y: y.to(torch.complex64)), TypeError, "y_test must be real"),
        (
            dict(y=lambda y: y[:, None, None]),
            ValueError,
            re.escape("y must hold one label per image (6), got shape (6, 1, 1)"),
        ),
    ],
)
def test_evaluate_methods_names_the_training_set_and_its_labels(change, error, match):
    """The training images are named ``X`` and the labels ``y`` / ``y_test`` in every refusal,
    whatever check refuses them; labels are a vector or one-hot rows, nothing of more axes."""
    X, y, Xt, yt = _sets()
    sets = dict(X=X, y=y, X_test=Xt, y_test=yt)
    for key, value in change.items():
        sets[key] = value(sets[key])
    with pytest.raises(error, match=f"^{match}"):
        ch05.evaluate_methods(**sets, **_SETTINGS, methods=["CNTK"])


def test_one_hot_labels_are_accepted_as_one_label_per_image():
    """One-hot rows ``(n, 2)`` are labels (the CNTK's accuracy is that of the label vector)."""
    X, y, Xt, yt = _sets(n=12)
    eye = torch.eye(2)
    vector = ch05.evaluate_methods(X, y, Xt, yt, **_SETTINGS, methods=["CNTK"])
    one_hot = ch05.evaluate_methods(X, eye[y], Xt, eye[yt], **_SETTINGS, methods=["CNTK"])
    assert one_hot["accuracy"] == vector["accuracy"]


@pytest.mark.parametrize("options", [dict(cnn_epochs=0), dict(cnn_epochs=1, cnn_batch_size=1)])
def test_the_cnns_smallest_schedule_is_accepted_and_passed_on(options):
    """``cnn_epochs=0`` (the CNN as initialised) and ``cnn_batch_size=1`` are accepted, and the
    CNN's accuracy is that of CNNBaseline fitted on its own with the same schedule and seed."""
    from agop_book.nets import CNNBaseline

    X, y, Xt, yt = _sets()
    out = ch05.evaluate_methods(X, y, Xt, yt, **_SETTINGS, methods=["CNN"], **options)
    alone = CNNBaseline(
        depth=1, width=2, patch_size=3, epochs=options["cnn_epochs"], lr=1e-3,
        batch_size=options.get("cnn_batch_size", 64), random_state=0, device="cpu",
        progress=False,
    ).fit(X, y)  # fmt: skip
    assert out["accuracy"] == {"CNN": alone.score(Xt, yt)}


def test_compare_methods_draws_a_single_image_and_refuses_none(monkeypatch):
    """``n_train = n_test = 1`` are accepted: the task is asked for one training and one test
    image; ``n_test = 0`` is refused by its name."""
    drawn = []

    def task(n, noise, seed, split):
        drawn.append((n, noise, seed, split))
        return torch.zeros(n, 1, 2, 2), torch.zeros(n)

    def evaluate(X, y, Xt, yt, *, seed, **settings):
        return {"accuracy": {"CNN": 1.0}, "layers": {}, "seconds": {"CNN": 0.0}, "models": {}}

    monkeypatch.setattr(ch05, "evaluate_methods", evaluate)
    ch05.compare_methods(task, [0.5], [3], n_train=1, n_test=1, progress=False)
    assert drawn == [(1, 0.5, 3, "train"), (1, 0.5, 3 + ch05.TEST_SEED_OFFSET, "test")]
    with pytest.raises(ValueError, match="^n_test must be a positive integer, got 0"):
        ch05.compare_methods(task, [0.5], [3], n_train=1, n_test=0, progress=False)


# ---------------------------------------------------------------------------
# Hostile inputs, round 5


@pytest.mark.parametrize("nonlinearity", ["bogus", 3])
def test_round5_evaluate_methods_names_a_bad_nonlinearity_whatever_the_methods(nonlinearity):
    # only Deep ConvRFM applies it: with other methods a typo used to pass unnoticed
    X, y, Xt, yt = _sets()
    with pytest.raises((TypeError, ValueError), match=r"^nonlinearity must be None, a callable"):
        ch05.evaluate_methods(
            X, y, Xt, yt, methods=("CNTK",), nonlinearity=nonlinearity, **_SETTINGS
        )


@pytest.mark.parametrize(
    "noise_levels, seeds, match",
    [
        ([1.0], [0, 0], r"^seeds must be distinct"),
        ([1.0], [3, 1, 3], r"^seeds must be distinct"),
        ([1.0], [], r"^seeds must hold at least one seed"),
        ([], [0], r"^noise_levels must be non-empty"),
    ],
)
def test_round5_compare_methods_names_repeated_or_missing_seeds(noise_levels, seeds, match):
    # a repeated seed used to repeat its run: rows twice over, and a spread over seeds of 0
    task = local_signal_task("bars", height=6, width=6)
    with pytest.raises(ValueError, match=match):
        compare_methods(
            task, noise_levels, seeds, n_train=6, n_test=6, progress=False, depth=1,
            patch_size=3, width=2, methods=("CNTK",), device="cpu",
        )  # fmt: skip
