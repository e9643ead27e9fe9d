"""agop_book.ch06_local_signals: the accuracy-against-noise figure draws each method's mean over
seeds with a band of one sample standard deviation, and the noise explorer opens on the panel
the chapter's static twin draws (the last one)."""

import matplotlib
import numpy as np
import pytest
import torch

from agop_book import ch06_local_signals as ch06

matplotlib.use("Agg")


# Held-out style bugs


def _rows():
    """Two methods, three seeds at each of two noise levels (listed out of order)."""
    acc = {
        ("A", 1.0): [0.5, 0.7, 0.9],
        ("A", 0.5): [0.8, 0.8, 0.95],
        ("B", 1.0): [0.6, 0.6, 0.75],
        ("B", 0.5): [1.0, 0.9, 0.7],
    }
    return [
        {"method": m, "noise": s, "seed": i, "accuracy": a}
        for (m, s), values in acc.items()
        for i, a in enumerate(values)
    ], acc


def test_accuracy_vs_noise_draws_the_mean_and_a_band_of_one_sample_sd():
    """Against the definitions written out: mean = sum / n, sd = sqrt(sum (a - mean)^2 / (n - 1))
    per method and noise level, the line sorted by noise level, the band mean +- sd."""
    import matplotlib.pyplot as plt

    rows, acc = _rows()
    ax = ch06.plot_accuracy_vs_noise(rows)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["A", "B"]
    for line, band, method in zip(ax.get_lines(), ax.collections, ("A", "B"), strict=True):
        x, y = line.get_data()
        assert list(x) == [0.5, 1.0]
        for s, mean in zip(x, y, strict=True):
            values = acc[method, s]
            expected_mean = sum(values) / len(values)
            sd = (sum((a - expected_mean) ** 2 for a in values) / (len(values) - 1)) ** 0.5
            assert mean == pytest.approx(expected_mean, abs=1e-12)
            vertices = np.concatenate([p.vertices for p in band.get_paths()])
            at = vertices[np.isclose(vertices[:, 0], s), 1]
            assert at.min() == pytest.approx(expected_mean - sd, abs=1e-12)
            assert at.max() == pytest.approx(expected_mean + sd, abs=1e-12)
    plt.close(ax.figure)


def _panel(noise):
    g = torch.Generator().manual_seed(int(10 * noise))
    images = torch.rand(2, 1, 4, 4, generator=g, dtype=torch.float64)
    return {
        "noise": noise,
        "images": images,
        "maps": {"ConvRFM": images[:, 0]},
        "accuracy": {"ConvRFM": (0.5 + noise / 10, 0.1)},
    }


def test_noise_explorer_opens_on_the_panel_the_static_twin_draws(monkeypatch):
    """The chapter draws ``plot_noise_panel(panels[-1])`` and the explorer beside it opens on
    the same panel, the last, whatever the order of the noise levels."""
    pytest.importorskip("ipywidgets")
    drawn = []
    real = ch06.plot_noise_panel
    monkeypatch.setattr(
        ch06, "plot_noise_panel", lambda p, *a, **k: drawn.append(p["noise"]) or real(p, *a, **k)
    )
    panels = [_panel(2.0), _panel(0.5), _panel(1.0)]
    box = ch06.noise_explorer(panels)
    slider = box.children[0]
    assert slider.value == 1.0 and list(slider.options) == [2.0, 0.5, 1.0]
    assert drawn and set(drawn) == {1.0}


# Hostile inputs

_PANEL = {
    "noise": 1.0,
    "images": torch.rand(3, 1, 8, 8),
    "maps": {"CNN": torch.rand(3, 8, 8)},
    "accuracy": {"CNN": (0.8, 0.05)},
}
_ROW = {"method": "CNN", "noise": 1.0, "accuracy": 0.5}


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: ch06.plot_accuracy_vs_noise([]), ValueError, "^rows must hold"),
        (lambda: ch06.plot_accuracy_vs_noise([{"method": "a"}]), ValueError, r"^rows\[0\] has no"),
        (
            lambda: ch06.plot_accuracy_vs_noise([dict(_ROW, accuracy=np.nan)]),
            ValueError,
            r"^rows\[0\]\['accuracy'\] must be a finite",
        ),
        (lambda: ch06.plot_accuracy_vs_noise([_ROW], methods=["x"]), ValueError, "^methods: 'x'"),
        (lambda: ch06.plot_accuracy_vs_noise([_ROW], methods="CNN"), TypeError, "^methods must"),
        (lambda: ch06.plot_accuracy_vs_noise([_ROW], xlabel=None), TypeError, "^xlabel must"),
        (lambda: ch06.plot_noise_panel([1]), TypeError, "^panel must be a dict"),
        (lambda: ch06.plot_noise_panel({"noise": 1.0}), ValueError, "^panel has no key 'images'"),
        (
            lambda: ch06.plot_noise_panel(dict(_PANEL, maps={"CNN": torch.rand(2, 8, 8)})),
            ValueError,
            r"^panel\['maps'\]\['CNN'\] must hold one \(H, W\) map per image",
        ),
        (
            lambda: ch06.plot_noise_panel(dict(_PANEL, maps={"CNN": torch.rand(5, 8, 8)})),
            ValueError,
            r"^panel\['maps'\]\['CNN'\] must hold one",
        ),
        (
            lambda: ch06.plot_noise_panel(dict(_PANEL, images=_PANEL["images"] * np.nan)),
            ValueError,
            r"^panel\['images'\]\[0\] contains",
        ),
        (
            lambda: ch06.plot_noise_panel(dict(_PANEL, accuracy={"CNN": (np.nan, 0.1)})),
            ValueError,
            r"^panel\['accuracy'\]\['CNN'\]\[0\]",
        ),
        (lambda: ch06.plot_noise_panel(dict(_PANEL, noise="1")), TypeError, r"^panel\['noise'\]"),
        (lambda: ch06.noise_explorer([]), ValueError, "^panels must hold"),
        (
            lambda: ch06.noise_explorer([_PANEL, _PANEL]),
            ValueError,
            r"^panels\[1\] has noise level 1",
        ),
        (
            lambda: ch06.noise_explorer([_PANEL, dict(_PANEL, maps=None)]),
            TypeError,
            r"^panels\[1\]",
        ),
    ],
)
def test_figures_and_explorer_name_a_hostile_argument(call, error, match):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    with pytest.raises(error, match=match):
        call()
    assert plt.get_fignums() == before


# Held-out style bugs, round 4


def test_accuracy_vs_noise_pairs_each_noise_level_with_its_own_mean():
    """Noise levels 9, 0.5 and 2 (a Python set holds them as 0.5, 9, 2, not sorted): the line
    runs over the sorted levels and each point is the mean of that level's accuracies, written
    out, so means listed in any other order than their levels' would fail."""
    import matplotlib.pyplot as plt

    acc = {9.0: [0.5, 0.6], 0.5: [0.9, 1.0], 2.0: [0.7, 0.8]}
    rows = [
        {"method": "A", "noise": s, "seed": i, "accuracy": a}
        for s, values in acc.items()
        for i, a in enumerate(values)
    ]
    ax = ch06.plot_accuracy_vs_noise(rows)
    (line,) = ax.get_lines()
    x, y = line.get_data()
    assert list(x) == [0.5, 2.0, 9.0]
    np.testing.assert_allclose(y, [0.95, 0.75, 0.55], atol=1e-12)
    plt.close(ax.figure)


# Held-out style bugs, round 5


def test_accuracy_vs_noise_draws_only_the_methods_asked_for_in_their_order():
    """``methods`` picks the lines and their order: asked for ``["CNN", "CNTK"]`` of three
    methods, the axes hold exactly those two, each with its own planted means."""
    import matplotlib.pyplot as plt

    means = {"CNTK": 0.6, "ConvRFM": 0.9, "CNN": 0.7}
    rows = [
        {"method": m, "noise": s, "accuracy": a + d}
        for m, a in means.items()
        for s in (1.0, 2.0)
        for d in (-0.05, 0.05)
    ]
    ax = ch06.plot_accuracy_vs_noise(rows, methods=["CNN", "CNTK"])
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["CNN", "CNTK"]
    for line, method in zip(lines, ["CNN", "CNTK"], strict=True):
        np.testing.assert_allclose(line.get_ydata(), [means[method]] * 2, atol=1e-12)
    assert len(ax.collections) == 2  # one band per method drawn
    plt.close(ax.figure)
