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


# Mutation testing, stop 35


def _drawn_panel():
    """Three images, two methods' maps (planted multiples of the images, so each map panel
    names its method by its scale), and accuracies whose value labels fall on both sides of
    the 0.86 cap."""
    g = torch.Generator().manual_seed(3)
    images = torch.rand(3, 1, 4, 5, generator=g, dtype=torch.float64)
    return {
        "noise": 1.5,
        "images": images,
        "maps": {"A": 2 * images[:, 0], "B": 3 * images[:, 0]},
        "accuracy": {"A": (0.5, 0.1), "B": (0.8, 0.05)},
    }


def test_noise_panel_draws_images_then_each_methods_maps_then_the_accuracies():
    """Panel count and order: the images in the top row, the maps of each method in its own
    row below in the dict's order (each imshow array the planted map), the row labels on the
    first column only; the grid left of the bars and as tall; bars of the means in the dict's
    order with error bars of mean +- sd, their values written at min(mean + sd + 0.03, 0.86),
    the accuracy axis 0 to 1, and the noise level in the title."""
    import matplotlib.pyplot as plt

    panel = _drawn_panel()
    fig = ch06.plot_noise_panel(panel)
    *grid, bars = fig.axes
    assert len(grid) == 3 * 3
    images, maps = panel["images"], panel["maps"]
    for ax in grid:
        spec = ax.get_subplotspec()
        assert spec.get_gridspec().get_geometry() == (3, 3)  # 1 + 2 rows, one column per image
        (row,), (col,) = spec.rowspan, spec.colspan
        want = images[col, 0] if row == 0 else maps["AB"[row - 1]][col]
        np.testing.assert_array_equal(ax.get_images()[0].get_array(), want.numpy())
        assert ax.get_ylabel() == ("" if col else ["image", "A", "B"][row])
        assert ax.get_position().x1 < bars.get_position().x0
    assert sorted((ax.get_subplotspec().rowspan[0], ax.get_subplotspec().colspan[0])
                  for ax in grid) == [(r, c) for r in range(3) for c in range(3)]  # fmt: skip
    assert bars.get_position().y0 == pytest.approx(fig.subplotpars.bottom)
    assert bars.get_position().y1 == pytest.approx(fig.subplotpars.top)
    assert [t.get_text() for t in bars.get_yticklabels()] == ["A", "B"]
    assert [p.get_width() for p in bars.patches] == [0.5, 0.8]
    assert [p.get_y() + p.get_height() / 2 for p in bars.patches] == [0, 1]
    (segments,) = [c.get_segments() for c in bars.collections]
    np.testing.assert_allclose([s[:, 0] for s in segments], [[0.4, 0.6], [0.75, 0.85]])
    assert [t.get_text() for t in bars.texts] == ["0.50", "0.80"]
    assert [t.get_position() for t in bars.texts] == [(pytest.approx(0.63), 0), (0.86, 1)]
    assert bars.get_xlim() == (0, 1) and bars.get_xlabel() == "test accuracy"
    assert fig.get_suptitle() == "noise level 1.5"
    plt.close(fig)


def test_noise_panel_of_one_image_and_a_figure_given():
    """One image is a batch (m = 1); a given figure is the one drawn into; the accuracy axis
    still starts at 0 when an error bar reaches below it (mean 0.05, sd 0.1)."""
    import matplotlib.pyplot as plt

    panel = _drawn_panel()
    panel = dict(panel, images=panel["images"][:1], maps={"A": panel["maps"]["A"][:1]})
    panel["accuracy"] = {"A": (0.05, 0.1)}
    fig = plt.figure()
    assert ch06.plot_noise_panel(panel, fig=fig) is fig
    assert len(fig.axes) == 2 + 1
    assert fig.axes[-1].get_xlim() == (0, 1)
    plt.close(fig)


def test_accuracy_vs_noise_labels_title_and_chosen_methods():
    """The default x label, an empty one kept empty, the y label, the title given, and only
    the chosen methods in the chosen order."""
    import matplotlib.pyplot as plt

    rows, acc = _rows()
    ax = ch06.plot_accuracy_vs_noise(rows, methods=["B", "A"], title="planted")
    assert ax.get_xlabel() == "noise level" and ax.get_ylabel() == "test accuracy"
    assert ax.get_title() == "planted"
    assert [line.get_label() for line in ax.get_lines()] == ["B", "A"]
    np.testing.assert_allclose(
        ax.get_lines()[0].get_ydata(), [(1.0 + 0.9 + 0.7) / 3, (0.6 + 0.6 + 0.75) / 3]
    )
    plt.close(ax.figure)
    ax = ch06.plot_accuracy_vs_noise(rows, methods=["A"], xlabel="")
    assert ax.get_xlabel() == "" and [line.get_label() for line in ax.get_lines()] == ["A"]
    plt.close(ax.figure)


def test_noise_explorer_shows_the_chosen_noise_levels_panel_in_one_figure(monkeypatch):
    """What the explorer shows for given slider values: a slider described "noise", and the
    figure it displays is the static twin's figure of that noise level, one figure redrawn."""
    pytest.importorskip("ipywidgets")
    import IPython.display

    shown = []
    monkeypatch.setattr(
        IPython.display, "display", lambda fig: shown.append((fig, fig.get_suptitle()))
    )
    box = ch06.noise_explorer([_panel(2.0), _panel(0.5)])
    slider = box.children[0]
    assert slider.description == "noise"
    slider.value = 2.0
    assert [s[1] for s in shown] == ["noise level 0.5", "noise level 2"]
    assert shown[0][0] is shown[1][0]


@pytest.mark.parametrize(
    "call, error, match",
    [
        (
            lambda: ch06.plot_noise_panel(dict(_PANEL, images="x")),
            TypeError,
            r"^panel\['images'\] must",
        ),
        (
            lambda: ch06.plot_noise_panel(dict(_PANEL, images=torch.rand(3, 8, 8))),
            ValueError,
            r"^panel\['images'\] must be a non-empty batch \(m, c, H, W\), got shape \(3, 8, 8\)$",
        ),
        (
            lambda: ch06.plot_noise_panel(dict(_PANEL, images=torch.rand(0, 1, 8, 8))),
            ValueError,
            r"^panel\['images'\] must be a non-empty batch",
        ),
        (
            lambda: ch06.plot_noise_panel(dict(_PANEL, maps={"CNN": "x"})),
            TypeError,
            r"^panel\['maps'\]\['CNN'\] must",
        ),
        (
            lambda: ch06.plot_noise_panel(dict(_PANEL, maps={"CNN": torch.rand(3, 0, 8)})),
            ValueError,
            r"^panel\['maps'\]\['CNN'\] must hold one \(H, W\) map per image",
        ),
        (
            lambda: ch06.plot_noise_panel(
                dict(_PANEL, maps={"CNN": torch.full((3, 8, 8), np.nan)})
            ),
            ValueError,
            r"^panel\['maps'\]\['CNN'\] contains",
        ),
        (
            lambda: ch06.plot_noise_panel(dict(_PANEL, accuracy=[0.5])),
            TypeError,
            r"^panel\['accuracy'\] must be a dict \{method: \(mean, sd\)\}, got list$",
        ),
        (lambda: ch06.plot_noise_panel(_PANEL, fig=1), TypeError, "^fig must be None or a"),
        (
            lambda: ch06.noise_explorer({"a": 1}),
            TypeError,
            r"^panels must be a list of panels \(Comparison\.panels\), got dict$",
        ),
        (
            lambda: ch06.plot_accuracy_vs_noise([dict(_ROW, noise=np.nan)]),
            ValueError,
            r"^rows\[0\]\['noise'\] must be a finite",
        ),
        (
            lambda: ch06.plot_accuracy_vs_noise([_ROW], methods="CNN"),
            TypeError,
            "^methods must be a list of method names, got str$",
        ),
        (
            lambda: ch06.plot_accuracy_vs_noise([_ROW], methods=["x"]),
            ValueError,
            r"^methods: 'x' is not one of the methods of rows \['CNN'\]$",
        ),
        (lambda: ch06.plot_accuracy_vs_noise([_ROW], ax=1), TypeError, "^ax must be None or a"),
        (lambda: ch06.plot_accuracy_vs_noise([_ROW], title=1), TypeError, "^title must be a str"),
    ],
)
def test_figures_and_explorer_name_a_hostile_argument_whole(call, error, match):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    with pytest.raises(error, match=match):
        call()
    assert plt.get_fignums() == before
