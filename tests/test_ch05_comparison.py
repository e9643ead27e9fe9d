"""agop_book.ch05_deep_convrfm: the comparison of methods of Figure 5 (rows per method and layer,
the validation choice reported rather than the test-best, accuracies the estimators' own)."""

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
