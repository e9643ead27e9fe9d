"""ipywidgets explorers (core widgets only, as Colab supports). Each one redraws a figure with
the same :mod:`agop.viz` function that draws the chapter's static twin."""

from __future__ import annotations


def theorem_explorer(X, y, kernel_size: int = 5, **net):
    """Theorem 1 interactively: step size, initial scale, upper-layer noise, number of steps and
    activation -> ``W^T W``, the patch-AGOP at 0 and over the data, and their correlation, drawn
    by :func:`agop.viz.plot_theorem_pair` (the chapter's static figure). ``net``: further
    keyword arguments of :class:`agop.theory.TheoremNet`. Returns the widget.
    """
    import ipywidgets as w
    import matplotlib.pyplot as plt

    from agop import theory, viz

    scales = [0.0, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0]
    activations = {"tanh": {"activation": "tanh"},
                   "ReLU, phi'(0) = 1": {"activation": "relu", "relu_grad_at_zero": 1.0},
                   "ReLU, phi'(0) = 0 (torch)": {"activation": "relu", "relu_grad_at_zero": 0.0}}
    controls = {
        "eta": w.FloatLogSlider(value=0.02, base=10, min=-4, max=-0.5, description="step eta"),
        "init_scale": w.SelectionSlider(options=scales, value=0.0, description="W_0 scale"),
        "upper_noise": w.SelectionSlider(options=[0.0, 0.01, 0.1, 1.0, 10.0], value=0.0,
                                         description="upper noise"),
        "steps": w.IntSlider(value=1, min=1, max=50, description="steps"),
        "activation": w.Dropdown(options=list(activations), value="tanh", description="phi"),
    }
    out = w.Output()
    fig = plt.figure(figsize=(12.4, 3.2))
    plt.close(fig)

    def draw(eta, init_scale, upper_noise, steps, activation):
        with out:
            out.clear_output(wait=True)
            try:
                check = theory.check_theorem(X, y, eta=eta, steps=steps, init_scale=init_scale,
                                             upper_noise=upper_noise, kernel_size=kernel_size,
                                             **activations[activation], **net)
            except ValueError as err:
                print(f"nothing to compare: {err}")
                return
            viz.plot_theorem_pair(check, kernel_size=kernel_size, fig=fig)
            from IPython.display import display

            display(fig)

    w.interactive_output(draw, controls)
    return w.VBox([w.HBox(list(controls.values())[:3]), w.HBox(list(controls.values())[3:]), out])


def noise_explorer(panels):
    """A local-signal task across noise levels: a slider over the noise level -> sample images,
    the learned feature maps and every method's accuracy, drawn by
    :func:`agop.viz.plot_noise_panel` (the chapter's static twin). ``panels``: a list of
    panels, one per noise level (:meth:`agop.baseline.Comparison.panels`). Returns the widget.
    """
    import ipywidgets as w
    import matplotlib.pyplot as plt

    from agop import viz

    by_noise = {p["noise"]: p for p in panels}
    slider = w.SelectionSlider(options=list(by_noise), value=list(by_noise)[-1],
                               description="noise")
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


def rfm_explorer(iterates, images, n_filters: int = 6, map_titles=None):
    """ConvRFM's learned operators: choose a kernel, a patch size and an AGOP round -> the top
    filters of ``M_t`` and its feature maps on ``images``, drawn by
    :func:`agop.viz.plot_operator_maps` (the chapter's static twin). ``iterates``:
    ``{(kernel, patch_size): [M_0, M_1, ...]}`` (for instance ``model.Ms_``). Returns the widget.
    """
    import ipywidgets as w
    import matplotlib.pyplot as plt

    from agop import viz

    kernels = sorted({kernel for kernel, _ in iterates})
    sizes = sorted({k for _, k in iterates})
    longest = max(len(Ms) for Ms in iterates.values())
    controls = {
        "kernel": w.Dropdown(options=kernels, value=kernels[0], description="kernel"),
        "patch_size": w.Dropdown(options=sizes, value=sizes[-1], description="patch size"),
        "iteration": w.IntSlider(min=0, max=longest - 1, value=longest - 1,
                                 description="round t"),
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
            viz.plot_operator_maps({f"{kernel} {patch_size}x{patch_size}, t={t}": Ms[t]},
                                   images, patch_size, n_filters=n_filters, fig=fig,
                                   map_titles=map_titles)
            from IPython.display import display

            display(fig)

    w.interactive_output(draw, controls)
    return w.VBox([w.HBox(list(controls.values())), out])
