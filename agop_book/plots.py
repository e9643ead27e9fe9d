"""Figures (matplotlib). Every widget draws with a function from here, so the rendered book's
static figure and the Colab reader's interactive one are the same picture."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np
import torch

from agop._typing import Tensor
from agop.features import feature_map, top_filters
from agop.linalg import correlation, psd_power

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from agop.theory import TheoremCheck


def plot_theorem_pair(
    check: TheoremCheck, kernel_size: int | None = None, fig: Figure | None = None
) -> Figure:
    r"""Theorem 1, one run: :math:`W^\top W` beside the patch-AGOP at :math:`x = 0` (and over the data),
    each scaled to unit largest entry, with their Pearson correlation and residual in the titles.

    ``check``: a :class:`agop.theory.TheoremCheck`. ``kernel_size`` (with one input channel)
    adds the top eigenvector of :math:`W^\top W` as a :math:`p \times p` filter. Returns the figure.

    Examples:
        >>> import matplotlib.pyplot as plt
        >>> import torch
        >>> from agop.theory import check_theorem
        >>> X = torch.rand(6, 1, 5, 5, generator=torch.Generator().manual_seed(0),
        ...                dtype=torch.float64)
        >>> check = check_theorem(X, [1, -1, 1, -1, 1, -1], width=4, hidden=(4,))
        >>> fig = plot_theorem_pair(check, kernel_size=3)
        >>> title = fig.axes[1].get_title()
        >>> print(title.split(", residual")[0])
        AGOP at $x=0$
        pearson 1.000000
        >>> float(title.rsplit(" ", 1)[1]) < 1e-12  # round-off only
        True
        >>> plt.close(fig)
    """

    panels = [("CNFM $W^\\top W$", check.cnfm, None), ("AGOP at $x=0$", check.agop0, check.at_zero)]
    if check.agop_data is not None:
        panels.append(("AGOP over the data", check.agop_data, check.on_data))
    show_filter = kernel_size is not None and kernel_size**2 == check.cnfm.shape[0]
    n_ax = len(panels) + int(show_filter)
    if fig is None:
        fig = plt.figure(figsize=(3.1 * n_ax, 3.2))
    fig.clear()
    axes = fig.subplots(1, n_ax, squeeze=False)[0]
    for ax, (title, A, prop) in zip(axes, panels, strict=False):
        a = A.detach().double().cpu().numpy()
        scale = np.abs(a).max()
        ax.imshow(a / scale if scale > 0 else a, cmap="RdBu_r", vmin=-1, vmax=1)
        if prop is not None:
            title += f"\npearson {prop['pearson']:.6f}, residual {prop['residual']:.1e}"
        elif title.startswith("AGOP"):
            title += "\n(zero matrix)"
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    if show_filter:
        top = torch.linalg.eigh(check.cnfm.double().cpu())[1][:, -1]
        top = top * torch.sign(top.sum()) if top.sum() != 0 else top
        ax = axes[-1]
        lim = float(top.abs().max())
        ax.imshow(top.reshape(kernel_size, kernel_size).numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title("top eigenvector of $W^\\top W$\n(the learned filter)", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def plot_relaxations(
    rows: Sequence[Mapping[str, Any]],
    fig: Figure | None = None,
    settings: Sequence[str] | None = None,
) -> Figure:
    r"""Theorem 1 relaxed one assumption at a time: Pearson correlation (top) and proportionality
    residual (bottom) of :math:`W^\top W` against the patch-AGOP, at ``x = 0`` (solid) and over the data
    (dashed), one column per group of settings sharing a parameter.

    ``rows``: the output of :func:`agop.theory.relax`. ``settings``: names to draw (default:
    all, in order). Points where a quantity is undefined (e.g. ReLU with ``phi'(0) = 0`` at
    ``x = 0``) are left out. Returns the figure.

    Examples:
        >>> import matplotlib.pyplot as plt
        >>> import torch
        >>> from agop.theory import relax
        >>> X = torch.rand(6, 1, 5, 5, generator=torch.Generator().manual_seed(0),
        ...                dtype=torch.float64)
        >>> rows = relax(X, [1, -1, 1, -1, 1, -1],
        ...              {"initial scale": ("init_scale", (0.0, 0.1, 1.0), {})}, width=4)
        >>> fig = plot_relaxations(rows)
        >>> len(fig.axes)  # correlation and residual, one column
        2
        >>> plt.close(fig)
    """

    names = list(dict.fromkeys(r["setting"] for r in rows)) if settings is None else list(settings)
    params = list(dict.fromkeys(r["parameter"] for r in rows if r["setting"] in names))
    if fig is None:
        fig = plt.figure(figsize=(4.2 * len(params), 7.5))
    fig.clear()
    axes = fig.subplots(2, len(params), squeeze=False, sharex="col")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for col, param in enumerate(params):
        group = [
            n for n in names if any(r["setting"] == n and r["parameter"] == param for r in rows)
        ]
        for i, name in enumerate(group):
            pts = [r for r in rows if r["setting"] == name and r.get("moved")]
            for suffix, style in (("0", "-o"), ("_data", "--s")):
                for row_ax, key in ((0, "pearson"), (1, "residual")):
                    xy = [
                        (r["value"], r[key + suffix])
                        for r in pts
                        if r.get(key + suffix) is not None
                    ]
                    if not xy:
                        continue
                    x, y = zip(*xy, strict=True)
                    if row_ax == 1:
                        y = tuple(max(v, 1e-17) for v in y)
                    label = f"{name} ({'x = 0' if suffix == '0' else 'data'})"
                    axes[row_ax, col].plot(
                        x, y, style, color=colors[i % len(colors)], ms=4, label=label, alpha=0.9
                    )
        for row_ax in (0, 1):
            ax = axes[row_ax, col]
            if param in ("init_scale", "upper_noise", "steps"):
                ax.set_xscale(
                    "symlog", linthresh={"init_scale": 1e-4, "upper_noise": 1e-2, "steps": 1}[param]
                )
            ax.grid(alpha=0.3)
        axes[1, col].set_yscale("log")
        axes[1, col].set_xlabel(param)
        axes[1, col].legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.22))
    axes[0, 0].set_ylabel("Pearson correlation")
    axes[1, 0].set_ylabel("residual $|A - cB|_F / |A|_F$")
    fig.tight_layout()
    return fig


# ---- Deep ConvRFM and local signals (chapters 05 and 06) ----------------------------------


def _image_for_display(x):
    """A ``(c, H, W)`` tensor as something ``imshow`` draws: gray for one channel, RGB (each
    channel scaled to [0, 1] by the image's own range) for three."""

    x = x.detach().double().cpu().numpy()
    if x.shape[0] == 1:
        return x[0], "gray"
    x = np.moveaxis(x[:3], 0, -1)
    lo, hi = x.min(), x.max()
    return (x - lo) / (hi - lo if hi > lo else 1.0), None


def plot_accuracy_vs_noise(
    rows: Sequence[Mapping[str, Any]],
    methods: Sequence[str] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    xlabel: str = "noise level",
) -> Axes:
    """Test accuracy against the noise level, one line per method: the mean over seeds with a
    band of one sample standard deviation (``ddof=1``; Figure 5 of the paper). ``rows``: dicts with ``method``,
    ``noise`` and ``accuracy`` (e.g. the ``rows`` of an :class:`agop.experiments.local_signals.Comparison`).
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

    if ax is None:
        _, ax = plt.subplots(figsize=(4.2, 3.2))
    methods = list(dict.fromkeys(r["method"] for r in rows)) if methods is None else methods
    markers = {"CNTK": "o", "ConvRFM": "s", "Deep ConvRFM": "^", "CNN": "D"}
    for method in methods:
        noises = sorted({r["noise"] for r in rows if r["method"] == method})
        if not noises:
            continue
        acc = [
            [r["accuracy"] for r in rows if r["method"] == method and r["noise"] == s]
            for s in noises
        ]
        mean = np.array([np.mean(a) for a in acc])
        std = np.array([np.std(a, ddof=1) if len(a) > 1 else 0.0 for a in acc])
        ax.plot(noises, mean, marker=markers.get(method, "o"), ms=4, label=method)
        ax.fill_between(noises, mean - std, mean + std, alpha=0.2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def plot_layer_curve(
    layer_rows: Sequence[Mapping[str, Any]],
    ax: Axes | None = None,
    label: str | None = None,
    title: str | None = None,
) -> Axes:
    """Test accuracy against the number of feature-learning layers (0: the CNTK, 1: ConvRFM,
    more: Deep ConvRFM), mean and one sample standard deviation (``ddof=1``) over seeds
    (Figure 6B). ``layer_rows``:
    dicts with ``layers`` and ``accuracy``. Returns the axes.

    Examples:
        >>> import matplotlib.pyplot as plt
        >>> rows = [{"layers": n, "accuracy": a} for n, a in ((0, 0.6), (0, 0.62), (1, 0.8))]
        >>> ax = plot_layer_curve(rows)
        >>> [round(float(v), 2) for v in ax.get_lines()[0].get_ydata()]  # the means
        [0.61, 0.8]
        >>> plt.close(ax.figure)
    """

    if ax is None:
        _, ax = plt.subplots(figsize=(4.0, 3.0))
    layers = sorted({r["layers"] for r in layer_rows})
    acc = [[r["accuracy"] for r in layer_rows if r["layers"] == n] for n in layers]
    mean = np.array([np.mean(a) for a in acc])
    std = np.array([np.std(a, ddof=1) if len(a) > 1 else 0.0 for a in acc])
    ax.errorbar(layers, mean, yerr=std, marker="o", ms=4, capsize=3, label=label)
    ax.set_xticks(layers)
    ax.set_xlabel("feature-learning layers (0 = CNTK)")
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3)
    if label:
        ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def plot_layer_maps(
    image: Tensor,
    maps: Mapping[str, Sequence[Tensor]],
    fig: Figure | None = None,
    title: str | None = None,
) -> Figure:
    r"""Figure 4: an image, and, layer by layer, what each method's feature operator makes of it.

    ``image``: ``(c, H, W)``. ``maps``: ``{row label: [map of layer 0, map of layer 1, ...]}``,
    each map ``(H_l, W_l)`` (e.g. :math:`\|M_l^{1/2} x_l[j]\|` for Deep ConvRFM and
    :math:`\|(W_l^\top W_l)^{1/2} x_l[j]\|` for the CNN, from :func:`agop.features.feature_map`).
    Each map is scaled to its own range. Returns the figure.

    Examples:
        >>> import matplotlib.pyplot as plt
        >>> import torch
        >>> maps = {"CNN": [torch.rand(8, 8), torch.rand(6, 6)],
        ...         "Deep ConvRFM": [torch.rand(8, 8), torch.rand(6, 6)]}
        >>> fig = plot_layer_maps(torch.rand(1, 8, 8), maps)
        >>> len(fig.axes)  # the image beside 2 rows of 2 maps
        6
        >>> plt.close(fig)
    """

    labels = list(maps)
    depth = max(len(v) for v in maps.values())
    if fig is None:
        fig = plt.figure(figsize=(1.9 * (depth + 1), 2.0 * len(labels) + 0.3))
    fig.clear()
    axes = fig.subplots(len(labels), depth + 1, squeeze=False)
    shown, cmap = _image_for_display(image)
    for r, label in enumerate(labels):
        axes[r, 0].imshow(shown, cmap=cmap)
        axes[r, 0].set_ylabel(label, fontsize=9)
        if r == 0:
            axes[r, 0].set_title("input", fontsize=9)
        for l in range(depth):
            ax = axes[r, l + 1]
            if l < len(maps[label]):
                ax.imshow(maps[label][l].detach().double().cpu().numpy(), cmap="magma")
            else:
                ax.axis("off")
            if r == 0:
                ax.set_title(f"layer {l + 1}", fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_noise_panel(panel: Mapping[str, Any], fig: Figure | None = None) -> Figure:
    r"""One noise level of a local-signal task: sample test images (top row), what the learned
    feature operators make of them (one row per method: :math:`\|M^{1/2} x[j]\|`), and every method's
    test accuracy (mean and standard deviation over seeds, right).

    ``panel``: a dict with ``noise``, ``images`` ``(m, c, H, W)``, ``maps``
    ``{method: (m, H, W)}`` and ``accuracy`` ``{method: (mean, std)}`` (see
    :meth:`agop.experiments.local_signals.Comparison.panels`). Returns the figure.

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

    images, maps, accuracy = panel["images"], panel["maps"], panel["accuracy"]
    m, rows = images.shape[0], 1 + len(maps)
    if fig is None:
        fig = plt.figure(figsize=(1.5 * m + 3.6, 1.5 * rows + 0.5))
    fig.clear()
    grid = fig.add_gridspec(rows, m + 2, width_ratios=[1] * m + [0.9, 1.6])
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
    ax = fig.add_subplot(grid[:, m + 1])
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
    fig.suptitle(f"noise level {panel['noise']:g}", fontsize=10)
    fig.tight_layout()
    return fig


# ---- The ansatz (chapter 01) ---------------------------------------------------------------


def plot_cnfm_agop(
    cnfm: Tensor,
    agop: Tensor,
    power: float = 1.0,
    title: str | None = None,
    fig: Figure | None = None,
) -> Figure:
    r"""A CNFM :math:`W^\top W` beside :math:`\mathrm{AGOP}^p` (:math:`p` = ``power``), each scaled to unit largest
    entry, with their Pearson correlation and cosine similarity in the title. Returns the figure.

    Examples:
        >>> import matplotlib.pyplot as plt
        >>> import torch
        >>> from agop.linalg import correlation
        >>> W = torch.randn(4, 9, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        >>> G = torch.diag(torch.tensor([4.0, 3.0, 2.0, 1.0], dtype=torch.float64))
        >>> fig = plot_cnfm_agop(W.T @ W, W.T @ G @ W)
        >>> fig._suptitle.get_text(), round(correlation(W.T @ W, W.T @ G @ W), 3)
        ('pearson 0.942, cosine 0.943', 0.942)
        >>> plt.close(fig)
    """

    if fig is None:
        fig = plt.figure(figsize=(6.4, 3.4))
    fig.clear()
    _draw_cnfm_agop(fig, cnfm, agop, power, title)
    fig.tight_layout()
    return fig


def _draw_cnfm_agop(fig: Any, cnfm: Tensor, agop: Tensor, power: float, title: str | None) -> None:
    """Draw :func:`plot_cnfm_agop`'s two panels and title on ``fig`` (a figure or subfigure)."""
    A = psd_power(agop.detach().double().cpu(), power)
    C = cnfm.detach().double().cpu()
    axes = fig.subplots(1, 2)
    exponent = "" if power == 1 else f"$^{{{power:g}}}$"
    for ax, (label, M) in zip(axes, [("CNFM $W^\\top W$", C), (f"AGOP{exponent}", A)], strict=True):
        M = M / M.abs().max().clamp_min(1e-300)
        ax.imshow(M.numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
        ax.set_title(label, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    head = f"{title}: " if title else ""
    fig.suptitle(
        f"{head}pearson {correlation(C, A):.3f}, cosine {correlation(C, A, 'cosine'):.3f}",
        fontsize=10,
    )


def plot_cnfm_agop_rows(pairs: Mapping[str, tuple[Tensor, Tensor]], height: float = 2.8) -> Figure:
    r"""One figure with a row per entry of ``pairs`` (``{title: (cnfm, agop)}``), each row
    drawn as :func:`plot_cnfm_agop` draws one pair: a figure a chapter can number once, where a
    loop of :func:`plot_cnfm_agop` would leave one unnumbered figure per layer or checkpoint.

    Examples:
        >>> import matplotlib.pyplot as plt
        >>> import torch
        >>> W = torch.randn(4, 9, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        >>> G = torch.diag(torch.tensor([4.0, 3.0, 2.0, 1.0], dtype=torch.float64))
        >>> fig = plot_cnfm_agop_rows({"a": (W.T @ W, W.T @ G @ W), "b": (W.T @ W, W.T @ W)})
        >>> [sub._suptitle.get_text() for sub in fig.subfigs]
        ['a: pearson 0.942, cosine 0.943', 'b: pearson 1.000, cosine 1.000']
        >>> plt.close(fig)
    """
    if not pairs:
        raise ValueError("pairs must hold at least one (cnfm, agop) pair")
    fig = plt.figure(figsize=(6.4, height * len(pairs)), layout="constrained")
    subfigs = fig.subfigures(len(pairs), 1, squeeze=False)[:, 0]
    for sub, (title, (cnfm, agop)) in zip(subfigs, pairs.items(), strict=True):
        _draw_cnfm_agop(sub, cnfm, agop, 1.0, title)
    return fig


def plot_ansatz_controls(
    table: Any, kind: str = "pearson", fig: Figure | None = None, labels: str = "names"
) -> Figure:
    r"""Bars per layer: the correlation of :math:`W^\top W` with :math:`\mathrm{AGOP}^p` after training, at
    initialisation, with the trained ``G``'s spectrum in random eigenbases (the primary null;
    mean, one standard deviation as an error bar), with a random Wishart ``G`` (same) and with
    ``G = I``; and, hatched, the paper's control :math:`\operatorname{corr}(W_0^\top W_0, W^\top W)` of the initial and
    trained filters. One panel per ``power`` :math:`p`; bars whose values are all missing are left out.
    ``table``: an :class:`agop.experiments.ansatz.AnsatzTable` (:func:`~agop.experiments.ansatz.verify_ansatz`,
    :func:`~agop.experiments.ansatz.ansatz_table`), drawn from its
    :meth:`~agop.experiments.ansatz.AnsatzTable.records` (``labels="index"`` numbers the layers,
    for deep models). Returns the figure.

    Examples:
        >>> import matplotlib.pyplot as plt
        >>> import torch
        >>> from agop.experiments.ansatz import ansatz_table
        >>> from agop.features import patch_agop
        >>> from agop.nets import SimpleCNN
        >>> net = SimpleCNN(2, 3, image_size=8, depth=2, width=4, seed=0).double().eval()
        >>> X = torch.rand(5, 2, 8, 8, generator=torch.Generator().manual_seed(0),
        ...                dtype=torch.float64)
        >>> table = ansatz_table(net, patch_agop(net, X, device="cpu"), n_draws=3)
        >>> fig = plot_ansatz_controls(table)
        >>> len(fig.axes)  # one panel per power: 1 and 1/2
        2
        >>> plt.close(fig)
    """

    rows = [r for r in table.records(labels) if r["kind"] == kind]
    powers = list(dict.fromkeys(r["power"] for r in rows))
    layers = list(dict.fromkeys(r["layer"] for r in rows))
    if fig is None:
        fig = plt.figure(figsize=(4.6 * len(powers), 3.4))
    fig.clear()
    axes = fig.subplots(1, len(powers), squeeze=False)[0]
    bars = [
        ("trained", "trained", "C0", None),
        ("init", "at initialisation", "C7", None),
        ("spectrum_mean", "spectrum-matched null", "C1", "spectrum_std"),
        ("null_mean", "Wishart-$G$ null", "C3", "null_std"),
        ("identity", "$G=I$ null", "C2", None),
        ("cnfm_init", "corr($W_0^\\top W_0$, $W^\\top W$)", "C9", None),
    ]
    bars = [b for b in bars if any(r.get(b[0]) is not None for r in rows)]
    width = 0.8 / len(bars)
    for ax, power in zip(axes, powers, strict=True):
        sub = {r["layer"]: r for r in rows if r["power"] == power}
        x = np.arange(len(layers))
        lows = []
        for b, (key, label, color, std) in enumerate(bars):
            values = np.array(
                [np.nan if sub[l].get(key) is None else sub[l][key] for l in layers], dtype=float
            )
            err = None if std is None else [sub[l][std] or 0.0 for l in layers]
            ax.bar(
                x + (b - (len(bars) - 1) / 2) * width,
                values,
                width,
                yerr=err,
                capsize=2,
                color=color,
                label=label,
                hatch="//" if key == "cnfm_init" else None,
            )
            lows.append(np.nanmin(values - (np.array(err) if err is not None else 0)))
        ax.set_xticks(x, layers, fontsize=8)
        ax.set_ylim(max(-1.0, min(lows) - 0.05), 1.02)  # zoomed: read the bars against each other
        ax.set_ylabel(f"{kind} correlation")
        ax.set_title(
            "$W^\\top W$ vs AGOP" + ("" if power == 1 else f"$^{{{power:g}}}$"), fontsize=10
        )
        ax.grid(axis="y", alpha=0.3)
    axes[-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    if hasattr(fig, "tight_layout"):  # a subfigure is laid out by its parent figure
        fig.tight_layout()
    return fig


def placeholder_figure(message: str, figsize: tuple[float, float] = (6.4, 1.6)) -> Figure:
    """A figure that only says ``message``: what a numbered figure shows in a profile that does
    not draw it (e.g. "drawn in the paper profile"), so that the figure's number and caption
    stay the same in every profile and no result is pretended.

    Examples:
        >>> import matplotlib.pyplot as plt
        >>> fig = placeholder_figure("drawn in the paper profile")
        >>> [t.get_text() for t in fig.axes[0].texts], fig.axes[0].axison
        (['drawn in the paper profile'], False)
        >>> plt.close(fig)
    """
    # one blank axes holds the text: IPython draws no image of a figure without axes
    fig, ax = plt.subplots(figsize=figsize)
    ax.axis("off")
    ax.text(
        0.5,
        0.5,
        message,
        ha="center",
        va="center",
        wrap=True,
        fontsize=11,
        color="0.3",
        transform=ax.transAxes,
    )
    return fig


def plot_alpha_curves(
    powers: Sequence[float],
    curves: dict[str, Sequence[float]],
    nulls: dict[str, Sequence[float]] | None = None,
    ax: Axes | None = None,
    kind: str = "pearson",
) -> Axes:
    r"""Correlation of :math:`W^\top W` with :math:`\mathrm{AGOP}^p` against the power :math:`p`
    (``powers``; the paper's :math:`\alpha`), one line per layer
    (``curves``: ``{layer: [value per power]}``), and dashed the random-``G`` null of each layer
    (``nulls``: same layout) when given. Returns the axes.

    Examples:
        >>> import matplotlib.pyplot as plt
        >>> ax = plot_alpha_curves([0.5, 1.0], {"convs.0": [0.9, 0.8]},
        ...                        nulls={"convs.0": [0.7, 0.6]})
        >>> [[float(v) for v in line.get_ydata()] for line in ax.get_lines()]  # the layer, its null
        [[0.9, 0.8], [0.7, 0.6]]
        >>> plt.close(ax.figure)
    """

    if ax is None:
        _, ax = plt.subplots(figsize=(4.4, 3.2))
    for i, (layer, values) in enumerate(curves.items()):
        ax.plot(powers, values, marker="o", ms=3, color=f"C{i}", label=layer)
        if nulls is not None and layer in nulls:
            ax.plot(powers, nulls[layer], ls="--", color=f"C{i}", alpha=0.7)
    ax.set_xlabel("power $p$ of the AGOP")
    ax.set_ylabel(f"{kind} correlation")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, title="solid: trained, dashed: null" if nulls else None, title_fontsize=7)
    return ax


# ---- ConvRFM: filters and feature maps of learned operators (chapter 04) -----------------


def plot_operator_maps(
    operators: Mapping[str, Tensor],
    images: Tensor | Sequence[Tensor],
    patch_size: int,
    n_filters: int = 6,
    fig: Figure | None = None,
    title: str | None = None,
    map_titles: Sequence[str] | None = None,
) -> Figure:
    r"""One row per feature operator ``A`` (``{label: A}``, each ``q x q``, ``q = c k^2``): its
    ``n_filters`` top eigenvectors as ``c x k x k`` filters (eigenvalue / largest above each),
    then its feature map :math:`\|A^{1/2} x[j]\|` ("same" padding) on each image of ``images`` (a
    batch ``(n, c, H, W)`` or a list of ``(c, H, W)`` images of any sizes). Filters are drawn
    with a symmetric blue-red scale for one channel (RGB, scaled per filter, for three); maps in
    gray, each scaled to its own range. ``map_titles`` label the image columns. Returns the
    figure.

    Examples:
        >>> import matplotlib.pyplot as plt
        >>> import torch
        >>> W = torch.randn(4, 9, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        >>> operators = {"identity": torch.eye(9, dtype=torch.float64), "CNFM": W.T @ W}
        >>> fig = plot_operator_maps(operators, torch.rand(2, 1, 8, 8, dtype=torch.float64), 3,
        ...                          n_filters=2)
        >>> len(fig.axes)  # 2 rows of 2 filters and 2 maps
        8
        >>> plt.close(fig)
    """

    images = [x.detach().cpu() for x in images]
    c = images[0].shape[0]
    labels = list(operators)
    cols = n_filters + len(images)
    if fig is None:
        fig = plt.figure(figsize=(1.05 * cols + 0.9, 1.15 * len(labels) + 0.5))
    fig.clear()
    axes = fig.subplots(len(labels), cols, squeeze=False)
    for r, label in enumerate(labels):
        A = torch.as_tensor(operators[label]).detach().double().cpu()
        A = (A + A.T) / 2
        if n_filters:
            eig = torch.linalg.eigvalsh(A).flip(0)
            filters = top_filters(A, n_filters, c, patch_size)
        for i in range(n_filters):
            ax = axes[r, i]
            f = filters[i]
            if c == 1:
                v = float(f.abs().max()) or 1.0
                ax.imshow(f[0].numpy(), cmap="RdBu_r", vmin=-v, vmax=v)
            else:
                ax.imshow(_image_for_display(f)[0])
            ax.set_title(f"{float(eig[i] / eig[0]):.2f}", fontsize=7, pad=2)
        for j, x in enumerate(images):
            ax = axes[r, n_filters + j]
            ax.imshow(feature_map(A.to(x.dtype), x[None], patch_size)[0].numpy(), cmap="gray")
            if r == 0 and map_titles is not None:
                ax.set_title(str(map_titles[j]), fontsize=7, pad=2)
        axes[r, 0].set_ylabel(label, fontsize=8, rotation=0, ha="right", va="center")
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(pad=0.3, w_pad=0.2, h_pad=0.4)
    return fig


def plot_accuracy_by_iteration(
    curves: Mapping[str, Sequence[float]],
    selected: Mapping[str, int] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """Accuracy against ConvRFM round (``{label: [acc_0, acc_1, ...]}``, round 0 = the fixed
    kernel, ``M = I``), one line per curve; ``selected`` (``{label: t}``) circles the iterate
    chosen on the validation split. Returns the axes.

    Examples:
        >>> import matplotlib.pyplot as plt
        >>> ax = plot_accuracy_by_iteration({"ConvRFM": [0.63, 0.71, 0.76]},
        ...                                 selected={"ConvRFM": 2})
        >>> ax.get_lines()[0].get_ydata().tolist(), ax.get_lines()[1].get_ydata().tolist()
        ([0.63, 0.71, 0.76], [0.76])
        >>> plt.close(ax.figure)
    """

    if ax is None:
        _, ax = plt.subplots(figsize=(4.6, 3.0))
    for label, accs in curves.items():
        (line,) = ax.plot(range(len(accs)), accs, marker="o", ms=4, label=label)
        if selected and label in selected:
            t = selected[label]
            ax.plot([t], [accs[t]], "o", ms=11, mfc="none", mec=line.get_color())
    ax.set_xlabel("AGOP round $t$ (0 = fixed kernel, $M = I$)")
    ax.set_ylabel("accuracy")
    ax.xaxis.get_major_locator().set_params(integer=True)  # type: ignore[call-arg]  # MaxNLocator
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    return ax


# ---- The ansatz in torchvision CNNs (chapter 03) -------------------------------------------


def plot_sketch_accuracy(rows: Sequence[Any], ax: Axes | None = None) -> Axes:
    r"""Relative Frobenius error of the sketched patch-AGOP against the number of probes ``k``,
    one line per layer, with the :math:`1/\sqrt{k}` slope dashed. ``rows``:
    :func:`agop.experiments.ansatz.sketch_accuracy`. Returns the axes.

    Examples:
        >>> import matplotlib.pyplot as plt
        >>> from agop.experiments.ansatz import SketchAccuracy
        >>> rows = [SketchAccuracy("conv1", k, 1 / k**0.5, 0.99, 0.8, 0.8) for k in (1, 4, 16)]
        >>> ax = plot_sketch_accuracy(rows)
        >>> [line.get_label() for line in ax.get_lines()]
        ['conv1', '$\\propto 1/\\sqrt{k}$']
        >>> ax.get_lines()[1].get_ydata().tolist()  # the slope through the first point
        [1.0, 0.5, 0.25]
        >>> plt.close(ax.figure)
    """

    if ax is None:
        _, ax = plt.subplots(figsize=(4.2, 3.2))
    layers = list(dict.fromkeys(r.layer for r in rows))
    for layer in layers:
        sub = sorted((r.k, r.relative_error) for r in rows if r.layer == layer)
        ax.loglog(*zip(*sub, strict=True), marker="o", ms=4, label=layer)
    ks = np.array(sorted({r.k for r in rows}), dtype=float)
    first = np.mean([r.relative_error for r in rows if r.k == ks[0]])
    ax.loglog(ks, first * np.sqrt(ks[0] / ks), "k--", lw=1, label="$\\propto 1/\\sqrt{k}$")
    ax.set_xlabel("probes $k$")
    ax.set_ylabel("relative error of the sketch")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    return ax


def plot_layer_view(
    image: Tensor,
    cnfm_map: Tensor,
    agop_map: Tensor,
    similarity: float,
    title: str = "",
    fig: Figure | None = None,
) -> Figure:
    r"""One conv layer on one image: the image, :math:`\|(W^\top W)^{1/2} z[j]\|` and
    :math:`\|\mathrm{AGOP}^{1/2} z[j]\|` over the layer's input :math:`z`, and the CNFM-AGOP
    Pearson correlation in the title. Returns the figure.

    Examples:
        >>> import matplotlib.pyplot as plt
        >>> import torch
        >>> fig = plot_layer_view(torch.rand(1, 8, 8), torch.rand(8, 8), torch.rand(8, 8), 0.87,
        ...                       title="convs.0")
        >>> len(fig.axes), fig._suptitle.get_text()
        (3, 'convs.0  CNFM-AGOP pearson 0.870')
        >>> plt.close(fig)
    """

    if fig is None:
        fig = plt.figure(figsize=(7.5, 2.8))
    fig.clear()
    axes = fig.subplots(1, 3)
    shown, cmap = _image_for_display(image)
    axes[0].imshow(shown, cmap=cmap)
    axes[0].set_title("image", fontsize=9)
    for ax, (label, m) in zip(
        axes[1:], [("CNFM map", cnfm_map), ("AGOP map", agop_map)], strict=True
    ):
        ax.imshow(m.detach().double().cpu().numpy(), cmap="magma")
        ax.set_title(label, fontsize=9)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{title}  CNFM-AGOP pearson {similarity:.3f}", fontsize=10)
    fig.tight_layout()
    return fig


def plot_layer_views(
    views: Any, model: str, layer: str, image: str, fig: Figure | None = None
) -> Figure:
    """:func:`plot_layer_view` of one cached view of an
    :class:`agop.experiments.ansatz.LayerViews` (the pretrained explorer's figure). Returns the
    figure.

    Examples:
        >>> import matplotlib.pyplot as plt
        >>> import torch
        >>> from agop.experiments.ansatz import LayerViews
        >>> from agop.nets import SimpleCNN
        >>> net = SimpleCNN(3, 4, image_size=16, depth=2, width=4, seed=0).double().eval()
        >>> X = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0),
        ...                dtype=torch.float64)
        >>> views = LayerViews({"cnn": net}, {"noise": X[0]})
        >>> fig = plot_layer_views(views, *views.first())
        >>> fig._suptitle.get_text() == (
        ...     f"cnn convs.0  CNFM-AGOP pearson {views.view('cnn', 'convs.0', 'noise')['pearson']:.3f}")
        True
        >>> plt.close(fig)
    """
    v = views.view(model, layer, image)
    return plot_layer_view(
        v["image"], v["cnfm_map"], v["agop_map"], v["pearson"], title=f"{model} {layer}", fig=fig
    )


# ---- Other accounts (chapter 07) -----------------------------------------------------------


def plot_emergence_ipr(
    rows: Sequence[Mapping[str, Any]],
    stats: Mapping[str, str] | None = None,
    ipr_random: float | None = None,
    fig: Figure | None = None,
) -> Figure:
    """Localisation against the input gain: the mean IPR (over seeds, band of one standard
    deviation) of each statistic in ``stats`` (``{column: panel title}``; default: the
    receptive fields, the AGOP's and the RFM's top eigenvectors), for the true and the
    shuffled labels. ``rows``: the rows of :func:`agop.experiments.emergence.emergence_sweep`.
    ``ipr_random``: a dashed reference line (``3/D``, i.i.d. Gaussian entries). Returns the
    figure.

    Examples:
        >>> import matplotlib.pyplot as plt
        >>> rows = [{"gain": g, "labels": lab, "seed": s, "ipr_weights": 0.1 + g / 100}
        ...         for g in (0.0, 3.0) for lab in ("true", "shuffled") for s in (0, 1)]
        >>> fig = plot_emergence_ipr(rows, {"ipr_weights": "weights"}, ipr_random=0.075)
        >>> [line.get_label() for line in fig.axes[0].get_lines()][:2]
        ['true labels', 'shuffled labels']
        >>> plt.close(fig)
    """

    if stats is None:
        stats = {
            "ipr_weights": "network: receptive fields (rows of $W$)",
            "ipr_agop": "network: top AGOP eigenvectors",
            "ipr_rfm": "RFM: top eigenvectors of $M$",
        }
    if fig is None:
        fig = plt.figure(figsize=(3.8 * len(stats), 3.2))
    fig.clear()
    axes = fig.subplots(1, len(stats), sharey=True, squeeze=False)[0]
    gains = sorted({r["gain"] for r in rows})
    x = np.arange(len(gains))
    for ax, (stat, title) in zip(axes, stats.items(), strict=True):
        for labels, style in (("true", "-o"), ("shuffled", "--s")):
            vals = [
                [r[stat] for r in rows if r["gain"] == g and r["labels"] == labels] for g in gains
            ]
            if not any(vals):
                continue
            mean = np.array([np.mean(v) for v in vals])
            sd = np.array([np.std(v) for v in vals])
            ax.plot(x, mean, style, ms=4, label=f"{labels} labels")
            ax.fill_between(x, mean - sd, mean + sd, alpha=0.2)
        if ipr_random is not None:
            ax.axhline(ipr_random, color="gray", ls=":", lw=1, label="i.i.d. Gaussian vector")
        ax.set_xticks(x)
        ax.set_xticklabels([f"{g:g}" for g in gains])
        ax.set_xlabel("gain (0: Gaussian)")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("mean IPR")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_emergence_view(
    view: Mapping[str, Any], n_fields: int = 4, fig: Figure | None = None
) -> Figure:
    """One network of the emergence task: its ``n_fields`` largest receptive fields (rows of
    ``W``) and the top eigenvectors of its AGOP, drawn against the input site, each with its
    IPR. ``view``: a dict from :func:`agop.experiments.emergence.emergence_view`. Returns the
    figure.

    Examples:
        >>> import matplotlib.pyplot as plt
        >>> import torch
        >>> from agop.localization import ipr
        >>> W, V = torch.eye(3, 6), torch.ones(2, 6)
        >>> view = {"gain": 1.0, "width": 3, "W": W, "eigvecs": V, "ipr_weights": ipr(W),
        ...         "ipr_agop": ipr(V), "ipr_random": 0.5}
        >>> fig = plot_emergence_view(view, n_fields=2)
        >>> [ax.get_title() for ax in fig.axes]
        ['receptive fields (mean IPR 1.00)', 'AGOP eigenvectors (mean IPR 0.17)']
        >>> plt.close(fig)
    """

    if fig is None:
        fig = plt.figure(figsize=(9.0, 3.0))
    fig.clear()
    axes = fig.subplots(1, 2)
    W = view["W"][:n_fields].detach().double().cpu()
    panels = [
        (axes[0], W, view["ipr_weights"], "receptive fields", "unit"),
        (
            axes[1],
            view["eigvecs"].detach().double().cpu(),
            view["ipr_agop"],
            "AGOP eigenvectors",
            "eigenvector",
        ),
    ]
    for ax, vecs, iprs, title, what in panels:
        for i, v in enumerate(vecs):
            v = v / v.abs().max()
            v = v * (1 if v[v.abs().argmax()] > 0 else -1)  # the largest entry upwards
            ax.plot(v.numpy() - 2.2 * i, lw=1.2, label=f"{what} {i + 1}: IPR {float(iprs[i]):.2f}")
        ax.set_yticks([])
        ax.set_xlabel("input site")
        ax.set_title(f"{title} (mean IPR {float(iprs.mean()):.2f})", fontsize=9)
        ax.legend(fontsize=6, loc="upper right")
    fig.suptitle(
        f"gain {view['gain']:g}, width {view['width']}; an i.i.d. Gaussian vector "
        f"has IPR about {view['ipr_random']:.3f}",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def plot_edge_controls(
    table: Mapping[str, Mapping[str, tuple[float, float]]], title: str | None = None
) -> Figure:
    """One panel per statistic, one horizontal bar per operator: ``table[operator][statistic]``
    is ``(mean, sd)`` over seeds, drawn as a bar with an error bar of one SD. Operators whose
    name contains ``"learned"`` are drawn in a darker colour. Returns the figure.

    Examples:
        >>> import matplotlib.pyplot as plt
        >>> table = {"M = I": {"selectivity": (0.3, 0.05), "Sobel": (0.1, 0.0)},
        ...          "laplace, learned M_T": {"selectivity": (0.5, 0.1), "Sobel": (0.3, 0.05)}}
        >>> fig = plot_edge_controls(table, title="digits")
        >>> [ax.get_title() for ax in fig.axes]
        ['selectivity', 'Sobel']
        >>> plt.close(fig)
    """
    labels = list(table)
    if not labels:
        raise ValueError("table must hold at least one operator")
    names = list(table[labels[0]])
    fig, axes = plt.subplots(
        1, len(names), figsize=(3.4 * len(names) + 1.6, 0.35 * len(labels) + 1.4), sharey=True
    )
    axes = np.atleast_1d(axes)
    pos = np.arange(len(labels))[::-1]
    colours = ["tab:blue" if "learned" in label else "tab:gray" for label in labels]
    for ax, name in zip(axes, names, strict=True):
        mean = [table[label][name][0] for label in labels]
        sd = [table[label][name][1] for label in labels]
        ax.barh(pos, mean, xerr=sd, color=colours, capsize=3)
        ax.set_title(name)
        ax.axvline(0, color="black", lw=0.5)
    axes[0].set_yticks(pos, labels)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
