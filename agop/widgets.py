"""ipywidgets explorers (core widgets only, as Colab supports). Each one redraws a figure with
the same :mod:`agop.viz` function that draws the chapter's static twin, and opens on the view
the static twin shows.

Responsiveness: what a redraw computes is cached by its inputs, sliders whose recompute is
expensive update on release (``continuous_update=False``), and one change of a control
redraws once. ``python -m agop.bench --only widgets`` measures each explorer's answer time.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image

from agop import theory, viz
from agop._typing import ArrayLike
from agop.data import preprocess
from agop.experiments.ansatz import LayerViews
from agop.features import conv_layers


def theorem_explorer(X: ArrayLike, y: ArrayLike, kernel_size: int = 5, **net: Any) -> Any:
    r"""Theorem 1 interactively: step size, initial scale, upper-layer noise, number of steps and
    activation -> :math:`W^\top W`, the patch-AGOP at 0 and over the data, and their correlation, drawn
    by :func:`agop.viz.plot_theorem_pair` (the chapter's static figure). ``net``: further
    keyword arguments of :class:`agop.theory.TheoremNet`. Returns the widget.

    Examples:
        Outside a notebook the figure prints as text, hence the redirection:

        >>> import contextlib, io
        >>> import torch
        >>> X = torch.rand(6, 1, 7, 7, generator=torch.Generator().manual_seed(0),
        ...                dtype=torch.float64)
        >>> with contextlib.redirect_stdout(io.StringIO()):
        ...     explorer = theorem_explorer(X, [1, -1, 1, -1, 1, -1], kernel_size=3, width=4)
        >>> [w.description for row in explorer.children[:2] for w in row.children]
        ['step eta', 'W_0 scale', 'upper noise', 'steps', 'phi']
    """
    import ipywidgets as w

    scales = [0.0, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0]
    activations: dict[str, dict[str, Any]] = {
        "tanh": {"activation": "tanh"},
        "ReLU, phi'(0) = 1": {"activation": "relu", "relu_grad_at_zero": 1.0},
        "ReLU, phi'(0) = 0 (torch)": {"activation": "relu", "relu_grad_at_zero": 0.0},
    }
    slow = {"continuous_update": False}  # each value trains a network: update on release
    controls = {
        "eta": w.FloatLogSlider(
            value=0.02, base=10, min=-4, max=-0.5, description="step eta", **slow
        ),
        "init_scale": w.SelectionSlider(options=scales, value=0.0, description="W_0 scale", **slow),
        "upper_noise": w.SelectionSlider(
            options=[0.0, 0.01, 0.1, 1.0, 10.0], value=0.0, description="upper noise", **slow
        ),
        "steps": w.IntSlider(value=1, min=1, max=50, description="steps", **slow),
        "activation": w.Dropdown(options=list(activations), value="tanh", description="phi"),
    }
    out = w.Output()
    fig = plt.figure(figsize=(12.4, 3.2))
    plt.close(fig)
    checks: dict[tuple, Any] = {}

    def draw(eta, init_scale, upper_noise, steps, activation):
        with out:
            out.clear_output(wait=True)
            key = (eta, init_scale, upper_noise, steps, activation)
            if key not in checks:
                try:
                    checks[key] = theory.check_theorem(
                        X,
                        y,
                        eta=eta,
                        steps=steps,
                        init_scale=init_scale,
                        upper_noise=upper_noise,
                        kernel_size=kernel_size,
                        **activations[activation],
                        **net,
                    )
                except ValueError as err:
                    checks[key] = err
            if isinstance(checks[key], ValueError):
                print(f"nothing to compare: {checks[key]}")
                return
            viz.plot_theorem_pair(checks[key], kernel_size=kernel_size, fig=fig)
            from IPython.display import display

            display(fig)

    w.interactive_output(draw, controls)
    return w.VBox([w.HBox(list(controls.values())[:3]), w.HBox(list(controls.values())[3:]), out])


def noise_explorer(panels: Sequence[Mapping[str, Any]]) -> Any:
    """A local-signal task across noise levels: a slider over the noise level -> sample images,
    the learned feature maps and every method's accuracy, drawn by
    :func:`agop.viz.plot_noise_panel` (the chapter's static twin). ``panels``: a list of
    panels, one per noise level (:meth:`agop.experiments.local_signals.Comparison.panels`). Returns the widget.

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

    by_noise = {p["noise"]: p for p in panels}
    slider = w.SelectionSlider(
        options=list(by_noise), value=list(by_noise)[-1], description="noise"
    )
    out = w.Output()
    fig = viz.plot_noise_panel(by_noise[slider.value])
    plt.close(fig)

    def draw(noise):
        with out:
            out.clear_output(wait=True)
            viz.plot_noise_panel(by_noise[noise], fig=fig)
            from IPython.display import display

            display(fig)

    w.interactive_output(draw, {"noise": slider})
    return w.VBox([slider, out])


def ansatz_explorer(
    matrices: dict[str, dict[str, tuple[torch.Tensor, torch.Tensor]]],
    powers: Sequence[float] = (1.0, 0.75, 0.5, 0.25),
) -> Any:
    r"""The ansatz through training: choose a training checkpoint, a layer and a ``power``
    :math:`p` -> :math:`W^\top W` beside :math:`\mathrm{AGOP}^p` and their correlation, drawn by
    :func:`agop.viz.plot_cnfm_agop` (the chapter's static twin). ``matrices``:
    ``{checkpoint label: {layer: (cnfm, agop)}}``. Opens on the last checkpoint, the last
    layer and ``power = powers[0]``. Returns the widget.

    Examples:
        >>> import contextlib, io
        >>> import torch
        >>> W = torch.randn(4, 9, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        >>> G = torch.diag(torch.tensor([4.0, 3.0, 2.0, 1.0], dtype=torch.float64))
        >>> matrices = {"init": {"convs.0": (W.T @ W, W.T @ W)},
        ...             "trained": {"convs.0": (W.T @ W, W.T @ G @ W)}}
        >>> with contextlib.redirect_stdout(io.StringIO()):
        ...     explorer = ansatz_explorer(matrices)
        >>> [(w.description, w.value) for w in explorer.children[0].children]
        [('checkpoint', 'trained'), ('layer', 'convs.0'), ('power', 1.0)]
    """
    import ipywidgets as w

    checkpoints = list(matrices)
    layers = list(matrices[checkpoints[0]])
    controls = {
        "checkpoint": w.SelectionSlider(
            options=checkpoints, value=checkpoints[-1], description="checkpoint"
        ),
        "layer": w.Dropdown(options=layers, value=layers[-1], description="layer"),
        "power": w.SelectionSlider(
            options=list(powers), value=powers[0], description="power", continuous_update=False
        ),
    }
    out = w.Output()
    fig = plt.figure(figsize=(6.4, 3.4))
    plt.close(fig)

    def draw(checkpoint: str, layer: str, power: float) -> None:
        with out:
            out.clear_output(wait=True)
            C, A = matrices[checkpoint][layer]
            viz.plot_cnfm_agop(C, A, power=power, title=f"{layer}, {checkpoint}", fig=fig)
            from IPython.display import display

            display(fig)

    w.interactive_output(draw, controls)
    return w.VBox([w.HBox(list(controls.values())), out])


def rfm_explorer(
    iterates: Mapping[tuple[str, int], Sequence[torch.Tensor]],
    images: torch.Tensor | Sequence[torch.Tensor],
    n_filters: int = 6,
    map_titles: Sequence[str] | None = None,
) -> Any:
    """ConvRFM's learned operators: choose a kernel, a patch size and an AGOP round -> the top
    filters of ``M_t`` and its feature maps on ``images``, drawn by
    :func:`agop.viz.plot_operator_maps` (the chapter's static twin). ``iterates``:
    ``{(kernel, patch_size): [M_0, M_1, ...]}`` (for instance ``model.Ms_``). Returns the widget.

    Examples:
        >>> import contextlib, io
        >>> import torch
        >>> W = torch.randn(4, 9, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        >>> iterates = {("laplace", 3): [torch.eye(9, dtype=torch.float64), W.T @ W]}
        >>> with contextlib.redirect_stdout(io.StringIO()):
        ...     explorer = rfm_explorer(iterates, torch.rand(2, 1, 8, 8, dtype=torch.float64),
        ...                             n_filters=2)
        >>> [(w.description, w.value) for w in explorer.children[0].children]
        [('kernel', 'laplace'), ('patch size', 3), ('round t', 1)]
    """
    import ipywidgets as w

    kernels = sorted({kernel for kernel, _ in iterates})
    sizes = sorted({k for _, k in iterates})
    longest = max(len(Ms) for Ms in iterates.values())
    controls = {
        "kernel": w.Dropdown(options=kernels, value=kernels[0], description="kernel"),
        "patch_size": w.Dropdown(options=sizes, value=sizes[-1], description="patch size"),
        "iteration": w.IntSlider(
            min=0,
            max=longest - 1,
            value=longest - 1,
            description="round t",
            continuous_update=False,
        ),
    }
    out = w.Output()
    fig = plt.figure(figsize=(1.05 * (n_filters + len(images)) + 0.9, 1.8))
    plt.close(fig)

    def draw(kernel, patch_size, iteration):
        with out:
            out.clear_output(wait=True)
            Ms = iterates.get((kernel, patch_size))
            if Ms is None:
                print(f"no run for kernel={kernel!r}, patch size {patch_size}")
                return
            t = min(iteration, len(Ms) - 1)
            viz.plot_operator_maps(
                {f"{kernel} {patch_size}x{patch_size}, t={t}": Ms[t]},
                images,
                patch_size,
                n_filters=n_filters,
                fig=fig,
                map_titles=map_titles,
            )
            from IPython.display import display

            display(fig)

    w.interactive_output(draw, controls)
    return w.VBox([w.HBox(list(controls.values())), out])


def uploaded_files(value: Any) -> list[tuple[str, bytes]]:
    """``(name, content)`` of each file in a ``FileUpload``'s value, for ipywidgets 7 and 8.

    ipywidgets 7.x (Colab's) gives ``{name: {"metadata": ..., "content": bytes}}``; 8.x gives a
    tuple of ``{"name": ..., "content": memoryview, ...}`` (or objects with those attributes).

    Examples:
        >>> uploaded_files({"a.png": {"metadata": {}, "content": b"1"}})  # ipywidgets 7
        [('a.png', b'1')]
        >>> uploaded_files(({"name": "a.png", "content": memoryview(b"1")},))  # ipywidgets 8
        [('a.png', b'1')]
    """
    if not value:
        return []
    if isinstance(value, dict):
        return [(name, bytes(item["content"])) for name, item in value.items()]

    def field(item, key):
        return item[key] if isinstance(item, dict) else getattr(item, key)

    return [(field(item, "name"), bytes(field(item, "content"))) for item in value]


def pretrained_explorer(
    models: dict[str, torch.nn.Module],
    images: dict[str, Any],
    size: int = 96,
    sketch: int = 8,
    *,
    views: Any = None,
) -> Any:
    """A torchvision CNN, one of its conv layers and an image (or your own, uploaded) -> the
    layer's CNFM and patch-AGOP feature maps of that image and their correlation, drawn by
    :func:`agop.viz.plot_layer_view` (the chapter's static twin). ``models``:
    ``{label: module}``; ``images``: ``{label: (3, size, size) preprocessed tensor}``.

    Views come from an :class:`agop.experiments.ansatz.LayerViews` cache (``views``, to share it with
    the static twin, or a new one): the first view of a (model, image) pair runs one set of
    ``sketch``-probe backward passes for every layer at once, and any layer after that is a
    convolution and ``k_out x k_out`` products, in the filter space. Opens on
    ``views.first()``: the first model, its first conv layer, the first image. Returns the
    widget.

    Examples:
        >>> import contextlib, io
        >>> import torch
        >>> from agop.nets import SimpleCNN
        >>> net = SimpleCNN(3, 4, image_size=16, depth=2, width=4, seed=0).double().eval()
        >>> image = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(0),
        ...                    dtype=torch.float64)
        >>> with contextlib.redirect_stdout(io.StringIO()):
        ...     explorer = pretrained_explorer({"cnn": net}, {"noise": image}, size=16)
        >>> [(w.description, w.value) for row in explorer.children[:2] for w in row.children
        ...  if isinstance(w.value, str)]
        [('model', 'cnn'), ('layer', 'convs.0'), ('image', 'noise')]
    """

    import ipywidgets as w

    if views is None:
        views = LayerViews(models, images, sketch=sketch)
    first_model, first_layer, first_image = views.first()
    model_box = w.Dropdown(options=list(views.models), value=first_model, description="model")
    layer_box = w.Dropdown(
        options=list(conv_layers(views.models[first_model])), value=first_layer, description="layer"
    )
    image_box = w.Dropdown(options=list(views.images), value=first_image, description="image")
    upload = w.FileUpload(accept="image/*", multiple=False, description="your image")
    out = w.Output()
    fig = plt.figure(figsize=(7.5, 2.8))
    plt.close(fig)
    holding = [False]  # set while one change updates several boxes: draw once, at the end

    def draw(*_):
        if holding[0]:
            return
        with out:
            out.clear_output(wait=True)
            viz.plot_layer_views(views, model_box.value, layer_box.value, image_box.value, fig=fig)
            from IPython.display import display

            display(fig)

    def on_model(change):
        holding[0] = True
        try:
            layers = list(conv_layers(views.models[change["new"]]))
            layer_box.options = layers
            layer_box.value = layers[0]
        finally:
            holding[0] = False
        draw()

    def on_upload(change):

        for name, content in uploaded_files(change["new"]):
            array = np.asarray(Image.open(io.BytesIO(content)).convert("RGB"))
            views.add_image(name, preprocess(array, size=size)[0])
            holding[0] = True
            try:
                image_box.options = list(views.images)
                image_box.value = name
            finally:
                holding[0] = False
            draw()

    model_box.observe(on_model, names="value")
    upload.observe(on_upload, names="value")
    for box in (layer_box, image_box):
        box.observe(draw, names="value")
    draw()
    return w.VBox([w.HBox([model_box, layer_box]), w.HBox([image_box, upload]), out])


def emergence_explorer(views: Mapping[tuple[float, int], Any]) -> Any:
    """Emergence of localised receptive fields: a gain and a width -> one trained
    fully connected network's receptive fields and the top eigenvectors of its AGOP, with
    their IPR, drawn by :func:`agop.viz.plot_emergence_view` (the chapter's static twin).
    ``views``: ``{(gain, width): view}``, computed beforehand (the sweep's networks and
    :func:`agop.experiments.emergence.emergence_views`): the explorer trains nothing, it
    selects among them, so that every interaction is one redraw. The sliders offer the gains
    and widths of ``views``; a pair it does not hold says so. Opens on the largest gain and the
    smallest width. Returns the widget.

    Examples:
        >>> import contextlib, io
        >>> from agop.experiments.emergence import emergence_views
        >>> views = emergence_views([0.0, 3.0], 2, D=8, n_train=40, steps=2)
        >>> with contextlib.redirect_stdout(io.StringIO()):
        ...     explorer = emergence_explorer(views)
        >>> [(w.description, w.value) for w in explorer.children[0].children]
        [('gain', 3.0), ('width', 2)]
    """
    import ipywidgets as w

    if not views:
        raise ValueError("views must hold at least one (gain, width) view")
    gains = sorted({g for g, _ in views})
    widths = sorted({k for _, k in views})
    controls = {
        "gain": w.SelectionSlider(options=gains, value=gains[-1], description="gain"),
        "width": w.SelectionSlider(options=widths, value=widths[0], description="width"),
    }
    out = w.Output()
    fig = plt.figure(figsize=(9.0, 3.0))
    plt.close(fig)

    def draw(gain, width):
        with out:
            out.clear_output(wait=True)
            if (gain, width) not in views:
                print(f"no network computed at gain {gain:g} and width {width}")
                return
            viz.plot_emergence_view(views[(gain, width)], fig=fig)
            from IPython.display import display

            display(fig)

    w.interactive_output(draw, controls)
    return w.VBox([w.HBox(list(controls.values())), out])
