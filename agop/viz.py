"""Figures (matplotlib). Every widget draws with a function from here, so the rendered book's
static figure and the Colab reader's interactive one are the same picture."""

from __future__ import annotations


def plot_theorem_pair(check, kernel_size: int | None = None, fig=None):
    """Theorem 1, one run: ``W^T W`` beside the patch-AGOP at ``x = 0`` (and over the data),
    each scaled to unit largest entry, with their Pearson correlation and residual in the titles.

    ``check``: a :class:`agop.theory.TheoremCheck`. ``kernel_size`` (with one input channel)
    adds the top eigenvector of ``W^T W`` as a ``p x p`` filter. Returns the figure.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    panels = [("CNFM $W^\\top W$", check.cnfm, None),
              ("AGOP at $x=0$", check.agop0, check.at_zero)]
    if check.agop_data is not None:
        panels.append(("AGOP over the data", check.agop_data, check.on_data))
    show_filter = kernel_size is not None and kernel_size ** 2 == check.cnfm.shape[0]
    n_ax = len(panels) + int(show_filter)
    if fig is None:
        fig = plt.figure(figsize=(3.1 * n_ax, 3.2))
    fig.clear()
    axes = fig.subplots(1, n_ax, squeeze=False)[0]
    for ax, (title, A, prop) in zip(axes, panels, strict=False):
        A = A.detach().double().cpu().numpy()
        scale = np.abs(A).max()
        ax.imshow(A / scale if scale > 0 else A, cmap="RdBu_r", vmin=-1, vmax=1)
        if prop is not None:
            title += f"\npearson {prop['pearson']:.6f}, residual {prop['residual']:.1e}"
        elif title.startswith("AGOP"):
            title += "\n(zero matrix)"
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    if show_filter:
        import torch

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


def plot_relaxations(rows, fig=None, settings=None):
    """Theorem 1 relaxed one assumption at a time: Pearson correlation (top) and proportionality
    residual (bottom) of ``W^T W`` against the patch-AGOP, at ``x = 0`` (solid) and over the data
    (dashed), one column per group of settings sharing a parameter.

    ``rows``: the output of :func:`agop.theory.relax`. ``settings``: names to draw (default:
    all, in order). Points where a quantity is undefined (e.g. ReLU with ``phi'(0) = 0`` at
    ``x = 0``) are left out. Returns the figure.
    """
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r["setting"] for r in rows)) if settings is None else list(settings)
    params = list(dict.fromkeys(r["parameter"] for r in rows if r["setting"] in names))
    if fig is None:
        fig = plt.figure(figsize=(4.2 * len(params), 7.5))
    fig.clear()
    axes = fig.subplots(2, len(params), squeeze=False, sharex="col")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for col, param in enumerate(params):
        group = [n for n in names if any(r["setting"] == n and r["parameter"] == param for r in rows)]
        for i, name in enumerate(group):
            pts = [r for r in rows if r["setting"] == name and r.get("moved")]
            for suffix, style in (("0", "-o"), ("_data", "--s")):
                for row_ax, key in ((0, "pearson"), (1, "residual")):
                    xy = [(r["value"], r[key + suffix]) for r in pts if r.get(key + suffix) is not None]
                    if not xy:
                        continue
                    x, y = zip(*xy, strict=True)
                    if row_ax == 1:
                        y = [max(v, 1e-17) for v in y]
                    label = f"{name} ({'x = 0' if suffix == '0' else 'data'})"
                    axes[row_ax, col].plot(x, y, style, color=colors[i % len(colors)], ms=4,
                                           label=label, alpha=0.9)
        for row_ax in (0, 1):
            ax = axes[row_ax, col]
            if param in ("init_scale", "upper_noise", "steps"):
                ax.set_xscale("symlog", linthresh={"init_scale": 1e-4, "upper_noise": 1e-2,
                                                   "steps": 1}[param])
            ax.grid(alpha=0.3)
        axes[1, col].set_yscale("log")
        axes[1, col].set_xlabel(param)
        axes[1, col].legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.22))
    axes[0, 0].set_ylabel("Pearson correlation")
    axes[1, 0].set_ylabel("residual $|A - cB|_F / |A|_F$")
    fig.tight_layout()
    return fig
