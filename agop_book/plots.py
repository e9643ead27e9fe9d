"""Figures that several chapters draw (matplotlib): feature maps of one image, layer by layer,
and the placeholder a profile leaves where it draws nothing.

Each chapter's own figures live in its module (:mod:`agop_book.ch01_ansatz`, ...); every
explorer draws with the same function as the chapter's static twin."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np
import torch

from agop._typing import Tensor
from agop.validation import ArgumentTypeError, as_tensor, check_finite, check_real

if TYPE_CHECKING:
    from matplotlib.figure import Figure


#: the largest side of a figure, in inches (matplotlib refuses to draw 2**16 pixels a side)
_MAX_INCHES = 100.0


def _check_figure(fig: Any, name: str = "fig", *, subfigure: bool = False) -> None:
    """Raise ``TypeError`` unless ``fig`` is ``None`` or a matplotlib ``Figure`` (or, with
    ``subfigure``, a ``SubFigure``)."""
    from matplotlib.figure import Figure, FigureBase

    if fig is not None and not isinstance(fig, FigureBase if subfigure else Figure):
        what = "Figure or SubFigure" if subfigure else "Figure"
        raise ArgumentTypeError(
            f"{name} must be None or a matplotlib {what}, got {type(fig).__name__}"
        )


def _check_axes(ax: Any, name: str = "ax") -> None:
    """Raise ``TypeError`` unless ``ax`` is ``None`` or a matplotlib ``Axes``."""
    from matplotlib.axes import Axes

    if ax is not None and not isinstance(ax, Axes):
        raise ArgumentTypeError(
            f"{name} must be None or a matplotlib Axes, got {type(ax).__name__}"
        )


def _check_mapping(value: Any, name: str, what: str) -> Mapping:
    """``value`` as a non-empty ``Mapping`` (``what`` describes its entries, for the error)."""
    if not isinstance(value, Mapping):
        raise ArgumentTypeError(f"{name} must be a dict {what}, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{name} must hold at least one entry {what}, got an empty one")
    return value


def _check_list(value: Any, name: str, what: str) -> list:
    """``value`` (a list, tuple or other non-string sequence) as a non-empty list."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        raise ArgumentTypeError(f"{name} must be a list of {what}, got {type(value).__name__}")
    if not len(value):
        raise ValueError(f"{name} must hold at least one of {what}, got an empty list")
    return list(value)


def _check_keys(mapping: Any, name: str, keys: Sequence[str]) -> Mapping:
    """``mapping`` as a dict holding every key of ``keys``; the first missing key is named."""
    if not isinstance(mapping, Mapping):
        raise ArgumentTypeError(
            f"{name} must be a dict with keys {list(keys)}, got {type(mapping).__name__}"
        )
    missing = [k for k in keys if k not in mapping]
    if missing:
        raise ValueError(f"{name} has no key {missing[0]!r} (needed: {list(keys)})")
    return mapping


def _check_subset(chosen: Iterable[Any], known: Sequence[Any], name: str, what: str) -> None:
    """Every entry of ``chosen`` must be one of ``known``; the first that is not is named,
    with ``what`` saying where the known ones come from (``"the settings of rows"``)."""
    unknown = [c for c in chosen if c not in known]
    if unknown:
        raise ValueError(f"{name}: {unknown[0]!r} is not one of {what} {list(known)}")


def _check_records(
    rows: Any, name: str, keys: Sequence[str], numbers: Sequence[str] = ()
) -> list[Mapping]:
    """``rows`` as a non-empty list of dicts, each holding every key of ``keys``; the values
    under ``numbers`` must be finite real numbers (``None`` where a key is not in ``keys``)."""
    rows = _check_list(rows, name, f"dicts with keys {list(keys)}")
    for i, row in enumerate(rows):
        _check_keys(row, f"{name}[{i}]", keys)
        for k in numbers:
            if k in keys or row.get(k) is not None:
                check_real(row[k], f"{name}[{i}][{k!r}]")
    return rows


def _mean_sd(values: Any) -> tuple[float, float]:
    """The mean and the sample standard deviation (``ddof=1``) of ``values`` over seeds;
    0.0 for a single seed, which has no spread to estimate. The one rule for every spread over
    seeds in the book."""
    v = np.asarray(values, dtype=float)
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def _check_mean_sd(value: Any, name: str) -> tuple[float, float]:
    """``value`` as ``(mean, sd)``: two finite numbers, ``sd >= 0``."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        raise ArgumentTypeError(f"{name} must be a pair (mean, sd), got {value!r}")
    return check_real(value[0], f"{name}[0]"), check_real(value[1], f"{name}[1]", minimum=0)


def _check_text(value: Any, name: str, *, allow_none: bool = True) -> str | None:
    """``value`` as a ``str`` (or ``None`` if ``allow_none``); ``TypeError`` otherwise."""
    if (value is None and allow_none) or isinstance(value, str):
        return value
    raise ArgumentTypeError(
        f"{name} must be a str{' or None' if allow_none else ''}, got {value!r} "
        f"({type(value).__name__})"
    )


def _check_figsize(figsize: Any, name: str = "figsize") -> tuple[float, float]:
    """``figsize`` as ``(width, height)`` in inches, each positive and at most ``_MAX_INCHES``."""
    if isinstance(figsize, np.ndarray) and figsize.ndim == 1:
        figsize = figsize.tolist()
    if not isinstance(figsize, (tuple, list)) or len(figsize) != 2:
        raise ArgumentTypeError(f"{name} must be a pair (width, height) in inches, got {figsize!r}")
    width, height = (
        check_real(v, f"{name}[{i}]", minimum=0, strict_minimum=True, maximum=_MAX_INCHES)
        for i, v in enumerate(figsize)
    )
    return width, height


def _check_map(x: Any, name: str) -> torch.Tensor:
    """``x`` as a finite, non-empty real ``(H, W)`` tensor."""
    x = as_tensor(x, name)
    if x.ndim != 2 or x.numel() == 0:
        raise ValueError(
            f"{name} must be a non-empty map of shape (H, W), got shape {tuple(x.shape)}"
        )
    return check_finite(x, name)


def _check_image(x: Any, name: str = "image") -> torch.Tensor:
    """``x`` as a finite, non-empty real ``(c, H, W)`` image with one channel or at least three."""
    x = as_tensor(x, name)
    if x.ndim != 3 or x.numel() == 0 or x.shape[0] == 2:
        raise ValueError(
            f"{name} must be a non-empty image of shape (c, H, W) with c = 1 (gray) or c >= 3 "
            f"(RGB), got shape {tuple(x.shape)}"
        )
    return check_finite(x, name)


def _image_for_display(x):
    """A ``(c, H, W)`` tensor as something ``imshow`` draws: gray for one channel, RGB (each
    channel scaled to [0, 1] by the image's own range) for three."""

    x = x.detach().double().cpu().numpy()
    if x.shape[0] == 1:
        return x[0], "gray"
    x = np.moveaxis(x[:3], 0, -1)
    lo, hi = x.min(), x.max()
    return (x - lo) / (hi - lo if hi > lo else 1.0), None


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

    image = _check_image(image)
    if not isinstance(maps, Mapping):
        raise ArgumentTypeError(
            f"maps must be a dict {{row label: [map of layer 0, ...]}}, got {type(maps).__name__}"
        )
    if not maps:
        raise ValueError(
            "maps must hold at least one row {row label: [map of layer 0, ...]}, got {}"
        )
    checked: dict[str, list[torch.Tensor]] = {}
    for label, row in maps.items():
        where = f"maps[{label!r}]"
        if isinstance(row, (str, bytes, torch.Tensor, np.ndarray)) or not isinstance(row, Sequence):
            raise ArgumentTypeError(
                f"{where} must be a list of (H, W) maps, one per layer, got {type(row).__name__}"
            )
        if str(label) in checked:
            raise ValueError(f"maps has two rows labelled {str(label)!r}; give each its own")
        checked[str(label)] = [_check_map(m, f"{where}[{l}]") for l, m in enumerate(row)]
    maps = checked
    _check_figure(fig)
    title = _check_text(title, "title")
    labels = list(maps)
    depth = max(len(v) for v in maps.values())
    if depth == 0:
        raise ValueError("maps must hold at least one map; every row is empty")
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
    text = _check_text(message, "message", allow_none=False) or ""
    figsize = _check_figsize(figsize)
    # one blank axes holds the text: IPython draws no image of a figure without axes
    fig, ax = plt.subplots(figsize=figsize)
    ax.axis("off")
    ax.text(
        0.5,
        0.5,
        text,
        ha="center",
        va="center",
        wrap=True,
        fontsize=11,
        color="0.3",
        transform=ax.transAxes,
    )
    return fig
