"""Chapter 06, local signals: accuracy against the noise level, and one noise level's images
and feature maps. The tasks and the comparison are chapter 05's
(:mod:`agop_book.ch05_deep_convrfm`).

Figures: :func:`plot_accuracy_vs_noise`, :func:`plot_noise_panel`. Explorer (:func:`noise_explorer`): ipywidgets core controls, as Colab supports; it redraws a figure with
the same function that draws the chapter's static twin, and opens on the view the static twin
shows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np

from agop.validation import ArgumentTypeError, as_tensor, check_finite, check_real
from agop_book.plots import (
    _check_axes,
    _check_figure,
    _check_image,
    _check_keys,
    _check_list,
    _check_mapping,
    _check_mean_sd,
    _check_records,
    _check_subset,
    _check_text,
    _image_for_display,
    _mean_sd,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def plot_accuracy_vs_noise(
    rows: Sequence[Mapping[str, Any]],
    methods: Sequence[str] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    xlabel: str = "noise level",
) -> Axes:
    """Test accuracy against the noise level, one line per method: the mean over seeds with a
    band of one sample standard deviation (``ddof=1``; Figure 5 of the paper). ``rows``: dicts with ``method``,
    ``noise`` and ``accuracy`` (e.g. the ``rows`` of an :class:`agop_book.ch05_deep_convrfm.Comparison`).
    Returns the axes.

    Examples:
        >>> import matplotlib.pyplot as plt
        >>> rows = [{"method": m, "noise": s, "accuracy": a} for m in ("CNTK", "ConvRFM")
        ...         for s in (1.0, 2.0) for a in (0.7, 0.8)]
        >>> ax = plot_accuracy_vs_noise(rows)
        >>> [line.get_label() for line in ax.get_lines()], ax.get_lines()[0].get_ydata().tolist()
        (['CNTK', 'ConvRFM'], [0.75, 0.75])
        >>> plt.close(ax.figure)
    """

    rows = _check_records(rows, "rows", ("method", "noise", "accuracy"), ("noise", "accuracy"))
    known = list(dict.fromkeys(r["method"] for r in rows))
    if methods is not None:
        methods = _check_list(methods, "methods", "method names")
        _check_subset(methods, known, "methods", "the methods of rows")
    _check_axes(ax)
    title = _check_text(title, "title")
    xlabel = _check_text(xlabel, "xlabel", allow_none=False) or ""
    if ax is None:
        _, ax = plt.subplots(figsize=(4.2, 3.2))
    methods = known if methods is None else methods
    markers = {"CNTK": "o", "ConvRFM": "s", "Deep ConvRFM": "^", "CNN": "D"}
    for method in methods:
        noises = sorted({r["noise"] for r in rows if r["method"] == method})
        if not noises:
            continue
        acc = [
            [r["accuracy"] for r in rows if r["method"] == method and r["noise"] == s]
            for s in noises
        ]
        mean, std = np.array([_mean_sd(a) for a in acc]).T
        ax.plot(noises, mean, marker=markers.get(method, "o"), ms=4, label=method)
        ax.fill_between(noises, mean - std, mean + std, alpha=0.2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def plot_noise_panel(panel: Mapping[str, Any], fig: Figure | None = None) -> Figure:
    r"""One noise level of a local-signal task: sample test images (top row), what the learned
    feature operators make of them (one row per method: :math:`\|M^{1/2} x[j]\|`), and every method's
    test accuracy (mean and standard deviation over seeds, right).

    ``panel``: a dict with ``noise``, ``images`` ``(m, c, H, W)``, ``maps``
    ``{method: (m, H, W)}`` and ``accuracy`` ``{method: (mean, std)}`` (see
    :meth:`agop_book.ch05_deep_convrfm.Comparison.panels`). Returns the figure.

    Examples:
        >>> import matplotlib.pyplot as plt
        >>> import torch
        >>> panel = {"noise": 1.0, "images": torch.rand(3, 1, 8, 8),
        ...          "maps": {"CNN": torch.rand(3, 8, 8), "ConvRFM": torch.rand(3, 8, 8)},
        ...          "accuracy": {"CNN": (0.8, 0.05), "ConvRFM": (0.9, 0.02)}}
        >>> fig = plot_noise_panel(panel)
        >>> len(fig.axes) >= 3 * 3  # 3 images, 2 rows of maps, and the accuracies
        True
        >>> plt.close(fig)
    """

    images, maps, accuracy, noise = _check_panel(panel, "panel")
    _check_figure(fig)
    m, rows = images.shape[0], 1 + len(maps)
    if fig is None:
        fig = plt.figure(figsize=(1.5 * m + 3.6, 1.5 * rows + 0.5))
    fig.clear()
    # the images in a grid of their own, so that the bars' long method names take room from
    # the bars' column only, not from every image column
    outer = fig.add_gridspec(1, 2, width_ratios=[m, 2.5])
    grid = outer[0].subgridspec(rows, m)
    for i in range(m):
        ax = fig.add_subplot(grid[0, i])
        shown, cmap = _image_for_display(images[i])
        ax.imshow(shown, cmap=cmap)
        ax.set_xticks([])
        ax.set_yticks([])
        if i == 0:
            ax.set_ylabel("image", fontsize=8)
        for r, (label, mp) in enumerate(maps.items(), start=1):
            ax = fig.add_subplot(grid[r, i])
            ax.imshow(mp[i].detach().double().cpu().numpy(), cmap="magma")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_ylabel(label, fontsize=8)
    ax = fig.add_subplot(outer[1])
    names = list(accuracy)
    means = [accuracy[k][0] for k in names]
    stds = [accuracy[k][1] for k in names]
    ax.barh(range(len(names)), means, xerr=stds, color="C0", alpha=0.8, capsize=3)
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("test accuracy")
    for i, (v, sd) in enumerate(zip(means, stds, strict=True)):
        ax.text(min(v + sd + 0.03, 0.86), i, f"{v:.2f}", va="center", fontsize=8)
    fig.suptitle(f"noise level {noise:g}", fontsize=10)
    fig.set_layout_engine("constrained")
    return fig


def _check_panel(panel: Any, name: str) -> tuple[Any, dict[str, Any], dict[str, Any], float]:
    """A panel's images ``(m, c, H, W)``, maps ``{method: (m, H, W)}``, accuracies
    ``{method: (mean, sd)}`` and noise level, each checked."""
    _check_keys(panel, name, ("noise", "images", "maps", "accuracy"))
    noise = check_real(panel["noise"], f"{name}['noise']")
    images = as_tensor(panel["images"], f"{name}['images']")
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(
            f"{name}['images'] must be a non-empty batch (m, c, H, W), got shape "
            f"{tuple(images.shape)}"
        )
    for i, x in enumerate(images):
        _check_image(x, f"{name}['images'][{i}]")
    m = images.shape[0]
    if not isinstance(panel["maps"], Mapping):
        raise ArgumentTypeError(
            f"{name}['maps'] must be a dict {{method: (m, H, W) maps}}, got "
            f"{type(panel['maps']).__name__}"
        )
    maps = {}
    for label, mp in panel["maps"].items():
        where = f"{name}['maps'][{label!r}]"
        mp = as_tensor(mp, where)
        if mp.ndim != 3 or mp.shape[0] != m or mp.numel() == 0:
            raise ValueError(
                f"{where} must hold one (H, W) map per image, shape ({m}, H, W), got shape "
                f"{tuple(mp.shape)}"
            )
        maps[label] = check_finite(mp, where)
    _check_mapping(panel["accuracy"], f"{name}['accuracy']", "{method: (mean, sd)}")
    accuracy = {
        k: _check_mean_sd(v, f"{name}['accuracy'][{k!r}]") for k, v in panel["accuracy"].items()
    }
    return images, maps, accuracy, noise


def noise_explorer(panels: Sequence[Mapping[str, Any]]) -> Any:
    """A local-signal task across noise levels: a slider over the noise level -> sample images,
    the learned feature maps and every method's accuracy, drawn by
    :func:`plot_noise_panel` (the chapter's static twin). ``panels``: a list of
    panels, one per noise level (:meth:`agop_book.ch05_deep_convrfm.Comparison.panels`). Returns the widget.

    Examples:
        >>> import contextlib, io
        >>> import torch
        >>> panel = {"noise": 1.0, "images": torch.rand(3, 1, 8, 8),
        ...          "maps": {"CNN": torch.rand(3, 8, 8)}, "accuracy": {"CNN": (0.8, 0.05)}}
        >>> with contextlib.redirect_stdout(io.StringIO()):
        ...     explorer = noise_explorer([panel, dict(panel, noise=2.0)])
        >>> slider = explorer.children[0]
        >>> slider.description, slider.options, slider.value
        ('noise', (1.0, 2.0), 2.0)
    """
    import ipywidgets as w

    panels = _check_list(panels, "panels", "panels (Comparison.panels)")
    by_noise: dict[float, Mapping[str, Any]] = {}
    for i, p in enumerate(panels):
        noise = _check_panel(p, f"panels[{i}]")[3]
        if noise in by_noise:
            raise ValueError(f"panels[{i}] has noise level {noise:g}, as an earlier panel has")
        by_noise[noise] = p
    slider = w.SelectionSlider(
        options=list(by_noise), value=list(by_noise)[-1], description="noise"
    )
    out = w.Output()
    fig = plot_noise_panel(by_noise[slider.value])
    plt.close(fig)

    def draw(noise):
        with out:
            out.clear_output(wait=True)
            plot_noise_panel(by_noise[noise], fig=fig)
            from IPython.display import display

            display(fig)

    w.interactive_output(draw, {"noise": slider})
    return w.VBox([slider, out])
