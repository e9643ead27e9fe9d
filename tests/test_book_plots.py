"""agop_book.plots: the figures several chapters draw. What they show runs in the chapters
(tests/test_notebooks.py); here, what they refuse."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from agop_book import plots


def test_layer_maps_draw_each_row_and_layer_with_its_own_map():
    maps = {"A": [torch.arange(4.0).reshape(2, 2)], "B": [np.eye(3), np.ones((2, 2))]}
    fig = plots.plot_layer_maps(torch.rand(1, 4, 4), maps, title="t")
    try:
        assert len(fig.axes) == 6  # 2 rows of (image, layer 1, layer 2)
        shown = fig.axes[4].images[0].get_array()  # row B, layer 1
        np.testing.assert_array_equal(np.asarray(shown), np.eye(3))
        assert not fig.axes[2].axison  # row A has no layer 2
    finally:
        plt.close(fig)


# Hostile inputs

_IMAGE = torch.rand(1, 4, 4)
_MAP = torch.rand(3, 3)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: plots.placeholder_figure(None), TypeError, "message must be a str"),
        (lambda: plots.placeholder_figure("x", figsize=(1e6, 2)), ValueError, r"figsize\[0\]"),
        (lambda: plots.placeholder_figure("x", figsize=(2, 0)), ValueError, r"figsize\[1\]"),
        (lambda: plots.placeholder_figure("x", figsize=3), TypeError, "figsize must be a pair"),
        (
            lambda: plots.plot_layer_maps(_IMAGE, {"A": [torch.full((3, 3), float("nan"))]}),
            ValueError,
            r"maps\['A'\]\[0\] contains 9 non-finite",
        ),
        (
            lambda: plots.plot_layer_maps(_IMAGE, {"A": [torch.ones(3, 3, dtype=torch.complex64)]}),
            TypeError,
            r"maps\['A'\]\[0\] must be real",
        ),
        (
            lambda: plots.plot_layer_maps(_IMAGE, {"A": [torch.ones(0, 3)]}),
            ValueError,
            r"maps\['A'\]\[0\] must be a non-empty map",
        ),
        (
            lambda: plots.plot_layer_maps(_IMAGE, {"A": [torch.ones(2, 3, 3)]}),
            ValueError,
            r"maps\['A'\]\[0\] must be a non-empty map of shape \(H, W\)",
        ),
        (lambda: plots.plot_layer_maps(_IMAGE, {}), ValueError, "maps must hold at least one row"),
        (lambda: plots.plot_layer_maps(_IMAGE, {"A": []}), ValueError, "maps must hold at least"),
        (lambda: plots.plot_layer_maps(_IMAGE, [_MAP]), TypeError, "maps must be a dict"),
        (lambda: plots.plot_layer_maps(_IMAGE, {"A": _MAP}), TypeError, r"maps\['A'\] must be a"),
        (lambda: plots.plot_layer_maps(torch.rand(4, 4), {"A": [_MAP]}), ValueError, "image must"),
        (lambda: plots.plot_layer_maps(torch.rand(2, 4, 4), {"A": [_MAP]}), ValueError, "image"),
        (
            lambda: plots.plot_layer_maps(torch.full((1, 2, 2), float("inf")), {"A": [_MAP]}),
            ValueError,
            "image contains",
        ),
        (lambda: plots.plot_layer_maps(_IMAGE, {"A": [_MAP]}, fig=3), TypeError, "fig must be"),
        (lambda: plots.plot_layer_maps(_IMAGE, {"A": [_MAP]}, title=3), TypeError, "title must"),
    ],
)
def test_hostile_inputs_are_refused_by_name(call, error, match):
    before = plt.get_fignums()
    with pytest.raises(error, match=match):
        call()
    assert plt.get_fignums() == before  # refused before any figure is opened


def test_layer_maps_refuse_two_rows_of_one_label():
    with pytest.raises(ValueError, match="^maps has two rows labelled '1'"):
        plots.plot_layer_maps(_IMAGE, {1: [_MAP], "1": [_MAP]})


def test_placeholder_takes_a_numpy_figsize():
    fig = plots.placeholder_figure("x", figsize=np.array([2.0, 1.0]))
    try:
        assert fig.get_size_inches().tolist() == [2.0, 1.0]
    finally:
        plt.close(fig)


# The shared checks of the chapters' figures


@pytest.mark.parametrize(
    "value, error, match",
    [
        ({"a": 1, "b": 2}, None, None),
        ({"a": 1}, ValueError, r"^row has no key 'b' \(needed: \['a', 'b'\]\)$"),
        ({"b": 1}, ValueError, r"^row has no key 'a' "),
        ({}, ValueError, r"^row has no key 'a' "),
        ([("a", 1), ("b", 2)], TypeError, r"^row must be a dict with keys \['a', 'b'\], got list$"),
    ],
)
def test_check_keys_names_the_first_missing_key(value, error, match):
    if error is None:
        assert plots._check_keys(value, "row", ("a", "b")) is value
    else:
        with pytest.raises(error, match=match):
            plots._check_keys(value, "row", ("a", "b"))


@pytest.mark.parametrize(
    "chosen, match",
    [
        (["x", "z"], None),
        ({"z": 0}, None),
        (["x", "w", "v"], r"^methods: 'w' is not one of the methods of rows \['x', 'y', 'z'\]$"),
        ({"z": 0, "v": 1}, r"^methods: 'v' is not one of"),
    ],
)
def test_check_subset_names_the_first_stranger(chosen, match):
    known = ["x", "y", "z"]
    if match is None:
        assert plots._check_subset(chosen, known, "methods", "the methods of rows") is None
    else:
        with pytest.raises(ValueError, match=match):
            plots._check_subset(chosen, known, "methods", "the methods of rows")


def test_check_records_names_the_row_and_key_at_fault():
    rows = [{"a": 1, "n": 0.5}, {"a": 2, "n": float("nan")}]
    with pytest.raises(ValueError, match=r"^rows\[1\]\['n'\] must be"):
        plots._check_records(rows, "rows", ("a", "n"), ("n",))
    with pytest.raises(ValueError, match=r"^rows\[1\] has no key 'n'"):
        plots._check_records([{"a": 1, "n": 0}, {"a": 2}], "rows", ("a", "n"))
    with pytest.raises(TypeError, match=r"^rows\[0\] must be a dict with keys"):
        plots._check_records([3], "rows", ("a",))
    assert plots._check_records(rows[:1], "rows", ("a", "n"), ("n",)) == rows[:1]


def test_mean_sd_is_the_sample_spread_and_zero_for_one_seed():
    """The one rule for a spread over seeds: ``ddof=1``, and 0.0 where one seed gives none."""
    mean, sd = plots._mean_sd([1.0, 2.0, 4.0])
    assert mean == pytest.approx(7 / 3)
    assert sd == pytest.approx(
        np.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 2)
    )
    assert plots._mean_sd([0.25]) == (0.25, 0.0)
    assert plots._mean_sd(torch.tensor([3.0, 5.0])) == (4.0, pytest.approx(np.sqrt(2.0)))
