"""Explorers open on their static twin's view and redraw once per change (no timing here:
``python -m agop_book.bench --only widgets`` measures the answer times)."""

import matplotlib
import pytest
import torch
from torch import nn

from agop_book import ch01_ansatz as ch01
from agop_book import ch03_pretrained as ch03
from agop_book import ch04_edges as ch04
from agop_book import ch07_other_accounts as ch07
from agop_book.ch03_pretrained import LayerViews

matplotlib.use("Agg")
pytest.importorskip("ipywidgets")


def _controls(widget):
    from agop_book.bench.widgets import _controls as controls

    return controls(widget)


def _cnn(seed):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 5, 3, padding=1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(5, 3),
    ).eval()


def test_pretrained_explorer_opens_on_the_first_view_and_redraws_once(monkeypatch):
    models = {"a": _cnn(0), "b": _cnn(1)}
    g = torch.Generator().manual_seed(0)
    images = {"x": torch.randn(3, 12, 12, generator=g), "y": torch.randn(3, 12, 12, generator=g)}
    views = LayerViews(models, images, sketch=2)
    drawn = []
    real = ch03.plot_layer_views
    monkeypatch.setattr(
        ch03, "plot_layer_views", lambda v, *a, **k: drawn.append(a) or real(v, *a, **k)
    )
    box = ch03.pretrained_explorer(models, images, views=views)
    assert drawn == [views.first()] == [("a", "0", "x")]
    c = _controls(box)
    c["layer"].value = "2"
    c["model"].value = "b"  # the layer list changes too: still one redraw
    assert drawn[1:] == [("a", "2", "x"), ("b", "0", "x")]
    c["image"].value = "y"
    assert drawn[-1] == ("b", "0", "y") and len(drawn) == 4


def test_ansatz_explorer_opens_on_the_last_checkpoint_and_layer(monkeypatch):
    eye = torch.eye(4, dtype=torch.float64)
    matrices = {f"epoch {e}": {n: (eye * (1 + e), eye + e) for n in ("l1", "l2")} for e in (0, 5)}
    titles = []
    real = ch01.plot_cnfm_agop
    monkeypatch.setattr(
        ch01, "plot_cnfm_agop", lambda *a, **k: titles.append(k["title"]) or real(*a, **k)
    )
    box = ch01.ansatz_explorer(matrices)
    assert titles == ["l2, epoch 5"]  # the static twin's last figure
    assert not _controls(box)["power"].continuous_update


def test_emergence_explorer_opens_on_the_static_twin_and_only_selects(monkeypatch):
    def fake_view(gain, width):
        W = torch.eye(width, 6)
        return {
            "gain": gain,
            "width": width,
            "W": W,
            "eigvecs": W[:2],
            "ipr_weights": torch.ones(width),
            "ipr_agop": torch.ones(2),
            "ipr_random": 0.5,
        }

    drawn = []
    real = ch07.plot_emergence_view
    monkeypatch.setattr(
        ch07,
        "plot_emergence_view",
        lambda view, **k: drawn.append((view["gain"], view["width"])) or real(view, **k),
    )
    views = {(g, k): fake_view(g, k) for g in (0.0, 3.0, 30.0) for k in (8, 32)}
    del views[(3.0, 32)]
    box = ch07.emergence_explorer(views)
    assert drawn == [(30.0, 8)]  # the largest gain, the smallest width: the static twin
    c = _controls(box)
    assert c["gain"].options == (0.0, 3.0, 30.0) and c["width"].options == (8, 32)
    c["gain"].value = 0.0
    c["width"].value = 32
    c["gain"].value = 3.0  # not computed: says so, draws nothing
    c["gain"].value = 30.0
    assert drawn[1:] == [(0.0, 8), (0.0, 32), (30.0, 32)]
    assert drawn.count((0.0, 32)) == 1 and all(views[p]["gain"] == p[0] for p in drawn)
    with pytest.raises(ValueError, match="views"):
        ch07.emergence_explorer({})


def test_rfm_explorer_opens_on_the_last_round_and_draws_the_chosen_iterate(monkeypatch, capsys):
    """Kernels and patch sizes sorted; it opens on the first kernel, the largest patch and the
    last round of the longest run; a round past a shorter run is its last; a combination not
    run says so and draws nothing; each view is plot_operator_maps of that M_t, on one figure."""
    eye = torch.eye(9, dtype=torch.float64)
    runs = {
        ("laplace", 3): [eye, 2 * eye, 3 * eye],
        ("gaussian", 5): [
            torch.eye(25, dtype=torch.float64),
            5 * torch.eye(25, dtype=torch.float64),
        ],
        ("gaussian", 3): [4 * eye],
    }
    images = torch.rand(2, 1, 6, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    drawn = []
    real = ch04.plot_operator_maps

    def record(operators, imgs, patch_size, **kwargs):
        ((label, M),) = operators.items()
        drawn.append(
            (label, M, imgs, patch_size, kwargs["n_filters"], kwargs["map_titles"], kwargs["fig"])
        )
        return real(operators, imgs, patch_size, **kwargs)

    monkeypatch.setattr(ch04, "plot_operator_maps", record)
    box = ch04.rfm_explorer(runs, images, n_filters=2, map_titles=["a", "b"])
    c = _controls(box)
    assert c["kernel"].options == ("gaussian", "laplace") and c["kernel"].value == "gaussian"
    assert c["patch size"].options == (3, 5) and c["patch size"].value == 5
    assert (c["round t"].min, c["round t"].max, c["round t"].value) == (0, 2, 2)
    assert not c["round t"].continuous_update
    (label, M, imgs, k, n_filters, titles, fig) = drawn[0]
    assert label == "gaussian 5x5, t=1" and M is runs[("gaussian", 5)][1] and k == 5
    assert imgs is images and n_filters == 2 and titles == ["a", "b"]
    assert "Figure" in capsys.readouterr().out  # displayed
    c["kernel"].value = "laplace"  # (laplace, 5) was not run
    assert len(drawn) == 1
    assert "no run for kernel='laplace', patch size 5" in capsys.readouterr().out
    c["patch size"].value = 3
    c["round t"].value = 0
    assert [(d[0], d[3]) for d in drawn[1:]] == [("laplace 3x3, t=2", 3), ("laplace 3x3, t=0", 3)]
    assert drawn[1][1] is runs[("laplace", 3)][2] and drawn[2][1] is runs[("laplace", 3)][0]
    assert all(d[6] is fig for d in drawn) and len(fig.axes) == 2 + 2
    # three patch sizes: it opens on the largest; 6 filters by default
    runs = {("laplace", k): [torch.eye(k * k, dtype=torch.float64)] for k in (3, 5, 7)}
    box = ch04.rfm_explorer(runs, images[:1])
    assert _controls(box)["patch size"].value == 7
    assert drawn[-1][0] == "laplace 7x7, t=0" and drawn[-1][4] == 6
