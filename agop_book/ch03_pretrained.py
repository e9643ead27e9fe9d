"""Chapter 03, the ansatz in pretrained ImageNet classifiers: how close the sketched AGOP comes
to the exact one (:func:`sketch_accuracy`), the feature maps of one image at every layer
(:func:`feature_maps`, :func:`layer_view`, :class:`LayerViews`), their figures and the
pretrained explorer.

The ansatz report itself is chapter 01's (:func:`agop_book.ch01_ansatz.verify_ansatz`), and the
weights come from :mod:`agop_book.pretrained`.

Figures: :func:`plot_sketch_accuracy`, :func:`plot_layer_view`, :func:`plot_layer_views`. Explorer (:func:`pretrained_explorer`): ipywidgets core controls, as Colab supports; it redraws a figure with
the same function that draws the chapter's static twin, and opens on the view the static twin
shows."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image
from torch import nn

from agop._typing import Tensor
from agop.features import FactoredAGOP, cnfm, conv_layers, feature_map, patch_agop
from agop.linalg import correlation
from agop.runtime import default_device
from agop.validation import (
    ArgumentTypeError,
    as_tensor,
    check_finite,
    check_images,
    check_int,
    check_real,
    check_seed,
)
from agop_book.ch01_ansatz import _agops, _check_agops
from agop_book.data import preprocess
from agop_book.plots import (
    _check_axes,
    _check_figure,
    _check_image,
    _check_list,
    _check_map,
    _check_mapping,
    _check_subset,
    _check_text,
    _image_for_display,
)
from agop_book.views import factored_feature_map, layer_inputs

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


@dataclasses.dataclass
class SketchAccuracy:
    """The sketched AGOP with ``k`` probes against the exact one, at one layer.

    See :func:`sketch_accuracy` for an example.
    """

    layer: str
    k: int
    relative_error: float  # |A_k - A|_F / |A|_F
    pearson_with_exact: float  # corr(A_k, A)
    ansatz_pearson: float  # corr(W^T W, A_k)
    exact_ansatz_pearson: float  # corr(W^T W, A)


def sketch_accuracy(
    model: nn.Module,
    X: Any,
    ks: Sequence[int],
    *,
    layers: Iterable[str] | None = None,
    outputs: Sequence[int] | None = None,
    seed: int = 0,
    chunk_size: int | None = None,
    device: str | torch.device | None = None,
) -> list[SketchAccuracy]:
    r"""For each ``k`` in ``ks`` and each layer: how far the ``k``-probe sketch is from the exact
    patch-AGOP over the same ``outputs``, and the ansatz correlation each gives.

    Examples:
        The error falls like :math:`1/\sqrt{k}`: 64 probes are about 8 times closer than one.

        >>> import torch
        >>> from agop_book.nets import SimpleCNN
        >>> net = SimpleCNN(3, 4, image_size=16, depth=2, width=4, seed=0).double().eval()
        >>> X = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0),
        ...                dtype=torch.float64)
        >>> rows = sketch_accuracy(net, X, [1, 64])
        >>> [(row.layer, row.k, round(row.relative_error, 2)) for row in rows]
        [('convs.0', 1, 0.52), ('convs.1', 1, 0.52), ('convs.0', 64, 0.06), ('convs.1', 64, 0.07)]
    """
    if isinstance(ks, (str, bytes)) or not isinstance(ks, Iterable):
        raise ArgumentTypeError(f"ks must be a sequence of probe counts, got {ks!r}")
    ks = list(ks)
    if not ks:
        raise ValueError("ks must hold at least one probe count, got an empty sequence")
    for i, k in enumerate(ks):
        check_int(k, f"ks[{i}]", minimum=1)
    convs = conv_layers(model, layers)
    names = list(convs)
    param = next(model.parameters())
    X = check_images(X, "X", dtype=param.dtype, device=param.device)
    (exact, _), _ = _agops(model, X, names, None, outputs, chunk_size, device, False, seed)
    out = []
    for i, k in enumerate(ks):
        try:
            (sk, _), _ = _agops(
                model, X, names, int(k), outputs, chunk_size, device, False, seed + int(k)
            )
        except ValueError as err:  # patch_agop's memory check names its sketch: here ks[i]
            if str(err).startswith("sketch:"):
                raise ValueError(f"ks[{i}]:{str(err)[len('sketch:') :]}") from None
            raise
        for n, conv in convs.items():
            A, Ak = exact[n], sk[n]
            M = cnfm(conv).to(A)
            out.append(
                SketchAccuracy(
                    layer=n,
                    k=int(k),
                    relative_error=float(
                        (Ak - A).norm() / A.norm().clamp_min(torch.finfo(A.dtype).tiny)
                    ),
                    pearson_with_exact=correlation(Ak, A),
                    ansatz_pearson=correlation(M, Ak),
                    exact_ansatz_pearson=correlation(M, A),
                )
            )
    return out


def feature_maps(
    model: nn.Module, x: Any, agops: dict[str, Any], layers: Iterable[str] | None = None
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    r"""``layer -> (CNFM map, AGOP map)`` of one image ``x`` (``(c, H, W)`` or ``(1, c, H, W)``).

    Each map replaces every patch ``z[j]`` of the layer's *input* by :math:`\|A^{1/2} z[j]\|`
    (:func:`agop.features.feature_map`), with ``A`` the layer's CNFM or its AGOP from ``agops``,
    at the layer's own stride, padding (its ``padding_mode`` too: a reflect-padded layer's
    border patches are reflected, not zeros) and dilation. An AGOP given by its factors
    (:class:`agop.features.FactoredAGOP`) is drawn through the convolution,
    :math:`\|A^{1/2} z[j]\|^2 = h[j]^\top G h[j]` with ``h = W z[j]``
    (:func:`agop_book.views.factored_feature_map`), and so is the CNFM, ``|W z[j]|``: no
    ``q x q`` matrix.

    Examples:
        >>> import torch
        >>> from agop_book.nets import SimpleCNN
        >>> net = SimpleCNN(3, 4, image_size=16, depth=2, width=4, seed=0).double().eval()
        >>> X = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0),
        ...                dtype=torch.float64)
        >>> from agop.features import feature_map, patch_agop
        >>> agops = patch_agop(net, X, factored=True, device="cpu")
        >>> maps = feature_maps(net, X[0], agops)
        >>> {layer: tuple(m[1].shape) for layer, m in maps.items()}  # VALID convs: 14, then 12
        {'convs.0': (14, 14), 'convs.1': (12, 12)}
        >>> dense = feature_map(agops["convs.0"].dense(), X[:1], 3, padding=0)[0]
        >>> torch.allclose(maps["convs.0"][1], dense)
        True
    """
    _check_agops(model, agops)
    names = list(agops) if layers is None else _check_list(layers, "layers", "layer names")
    _check_subset(names, list(agops), "layers", "the layers of agops")
    convs = conv_layers(model, names)
    param = next(model.parameters())
    x = as_tensor(x, "x")
    if x.ndim == 3:
        x = x[None]
    x = check_images(x, "x", dtype=param.dtype, device=param.device)[:1]
    inputs = layer_inputs(model, x, names, name="x")
    out = {}
    for n, conv in convs.items():
        z = inputs[n]
        if isinstance(agops[n], FactoredAGOP) and conv.padding_mode == "zeros":
            out[n] = (
                factored_feature_map(conv, z)[0],
                factored_feature_map(conv, z, agops[n].G)[0],
            )
            continue
        A = agops[n].dense() if isinstance(agops[n], FactoredAGOP) else agops[n]
        padding: Any = conv.padding
        if conv.padding_mode != "zeros":  # the patches the layer reads: padded its own way
            z = nn.functional.pad(z, conv._reversed_padding_repeated_twice, conv.padding_mode)
            padding = 0
        kw: dict[str, Any] = dict(
            kernel_size=conv.kernel_size,
            stride=conv.stride,
            padding=padding,
            dilation=conv.dilation,
        )
        M = cnfm(conv).to(z)
        out[n] = (feature_map(M, z, **kw)[0], feature_map(A.to(z), z, **kw)[0])
    return out


def layer_view(
    model: nn.Module,
    layer: str,
    x: Any,
    *,
    sketch: int | None = 8,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> dict[str, Any]:
    """One conv layer on one image ``x`` (``(c, H, W)``): the layer's CNFM and patch-AGOP on that
    image alone (sketched with ``sketch`` probes), their feature maps
    (:func:`feature_maps`) and their Pearson correlation, all from the AGOP's factors
    (no ``q x q`` matrix). What the chapter's explorer draws (:class:`LayerViews` caches it; :func:`plot_layer_views` draws it).

    Examples:
        >>> import torch
        >>> from agop_book.nets import SimpleCNN
        >>> net = SimpleCNN(3, 4, image_size=16, depth=2, width=4, seed=0).double().eval()
        >>> X = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0),
        ...                dtype=torch.float64)
        >>> view = layer_view(net, "convs.1", X[0])
        >>> sorted(view), tuple(view["agop_map"].shape)
        (['agop_map', 'cnfm_map', 'factors', 'image', 'pearson'], (12, 12))
    """
    if not isinstance(model, nn.Module):
        raise ArgumentTypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    views = LayerViews(
        {"model": model}, {"image": _check_view_image(x, "x")}, sketch=sketch, seed=seed,
        device=device,
    )  # fmt: skip
    views._names = {"image": "x"}
    return views.view("model", layer, "image")


def _check_view_image(x: Any, name: str) -> torch.Tensor:
    """``x`` as a finite, non-empty ``(c, H, W)`` image."""
    x = as_tensor(x, name)
    if x.ndim != 3 or x.numel() == 0:
        raise ValueError(f"{name} must be a non-empty image (c, H, W), got shape {tuple(x.shape)}")
    return check_finite(x, name)


class LayerViews:
    """What the pretrained explorer draws, cached: ``view(model, layer, image)`` for models
    ``{label: module}`` and images ``{label: (c, H, W) tensor}``.

    The first view of a (model, image) pair runs one set of backward passes for *every* conv
    layer (:func:`agop.features.patch_agop` with ``factored=True``, ``sketch`` probes) and one
    forward pass for every layer's input; each (model, layer, image) view is then a
    convolution and a few ``k_out x k_out`` products, computed once and kept. The Pearson
    correlation is computed in the filter space.

    Examples:
        >>> import torch
        >>> from agop_book.nets import SimpleCNN
        >>> net = SimpleCNN(3, 4, image_size=16, depth=2, width=4, seed=0).double().eval()
        >>> X = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0),
        ...                dtype=torch.float64)
        >>> views = LayerViews({"cnn": net}, {"noise": X[0]})
        >>> views.first()
        ('cnn', 'convs.0', 'noise')
        >>> views.view("cnn", "convs.1", "noise") is views.view("cnn", "convs.1", "noise")  # cached
        True
    """

    def __init__(
        self,
        models: dict[str, nn.Module],
        images: dict[str, Any],
        *,
        sketch: int | None = 8,
        seed: int = 0,
        device: str | torch.device | None = None,
    ) -> None:
        _check_mapping(models, "models", "{label: torch.nn.Module}")
        for label, model in models.items():
            if not isinstance(model, nn.Module):
                raise ArgumentTypeError(
                    f"models[{label!r}] must be a torch.nn.Module, got {type(model).__name__}"
                )
            try:
                conv_layers(model)
            except ValueError as err:
                raise ValueError(f"models[{label!r}]: {err}") from None
        _check_mapping(images, "images", "{label: (c, H, W) image}")
        self.models = dict(models)
        self.images = {k: _check_view_image(v, f"images[{k!r}]") for k, v in images.items()}
        if sketch is not None:
            sketch = check_int(sketch, "sketch", minimum=1)
        default_device(device)  # a device torch does not know, or cannot use here, raises now
        self.sketch, self.seed, self.device = sketch, check_seed(seed), device
        self._names: dict[str, str] = {}  # the argument an image came in (for errors)
        self._factors: dict[tuple[str, str], dict[str, Any]] = {}
        self._inputs: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
        self._views: dict[tuple[str, str, str], dict[str, Any]] = {}

    def first(self) -> tuple[str, str, str]:
        """The view an explorer opens on: the first model, its first conv layer, the first
        image."""
        model = next(iter(self.models))
        return model, next(iter(conv_layers(self.models[model]))), next(iter(self.images))

    def add_image(self, label: str, x: Any) -> None:
        self.images[label] = _check_view_image(x, "x")
        for key in [k for k in self._factors if k[1] == label]:
            self._factors.pop(key)
            self._inputs.pop(key, None)
        for view in [k for k in self._views if k[2] == label]:
            self._views.pop(view)

    def _image(self, model: nn.Module, label: str) -> torch.Tensor:
        param = next(model.parameters())
        return check_images(self.images[label][None], "x", dtype=param.dtype, device=param.device)

    def view(self, model: str, layer: str, image: str) -> dict[str, Any]:
        """``{"image", "cnfm_map", "agop_map", "pearson", "factors"}`` for one layer."""
        key = (model, layer, image)
        if key in self._views:
            return self._views[key]
        for name, value, known in (("model", model, self.models), ("image", image, self.images)):
            if value not in known:
                raise ValueError(f"{name} must be one of {list(known)}, got {value!r}")
        net = self.models[model]
        convs = conv_layers(net)
        if layer not in convs:
            raise ValueError(f"layer must be a conv layer of {model!r}, got {layer!r}")
        x = self._image(net, image)
        pair = (model, image)
        if pair not in self._factors:
            try:
                self._factors[pair] = patch_agop(
                    net, x, sketch=self.sketch, seed=self.seed, device=self.device, factored=True
                )
                self._inputs[pair] = layer_inputs(net, x, list(convs))
            except ValueError as err:
                name = self._names.get(image, f"images[{image!r}]")
                raise ValueError(
                    f"{name} of shape {tuple(x.shape[1:])} does not fit model {model!r}: {err}"
                ) from None
        factors, z, conv = self._factors[pair][layer], self._inputs[pair][layer], convs[layer]
        if not bool(factors.G.any()):
            name = self._names.get(image, f"images[{image!r}]")
            raise ValueError(
                f"{name} gives layer {layer!r} of model {model!r} a zero AGOP (no gradient "
                "reaches it, e.g. an image of zeros behind ReLUs): its correlation with the "
                "CNFM is undefined"
            )
        if conv.padding_mode == "zeros":
            maps = (factored_feature_map(conv, z)[0], factored_feature_map(conv, z, factors.G)[0])
        else:
            maps = feature_maps(net, x, {layer: factors})[layer]
        self._views[key] = {
            "image": x[0],
            "cnfm_map": maps[0],
            "agop_map": maps[1],
            "pearson": factors.pearson(),
            "factors": factors,
        }
        return self._views[key]


def plot_sketch_accuracy(rows: Sequence[Any], ax: Axes | None = None) -> Axes:
    r"""Relative Frobenius error of the sketched patch-AGOP against the number of probes ``k``,
    one line per layer, with the :math:`1/\sqrt{k}` slope dashed. ``rows``:
    :func:`agop_book.ch03_pretrained.sketch_accuracy`. Returns the axes.

    Examples:
        >>> import matplotlib.pyplot as plt
        >>> from agop_book.ch03_pretrained import SketchAccuracy
        >>> rows = [SketchAccuracy("conv1", k, 1 / k**0.5, 0.99, 0.8, 0.8) for k in (1, 4, 16)]
        >>> ax = plot_sketch_accuracy(rows)
        >>> [line.get_label() for line in ax.get_lines()]
        ['conv1', '$\\propto 1/\\sqrt{k}$']
        >>> ax.get_lines()[1].get_ydata().tolist()  # the slope through the first point
        [1.0, 0.5, 0.25]
        >>> plt.close(ax.figure)
    """

    rows = _check_list(rows, "rows", "SketchAccuracy rows (sketch_accuracy)")
    for i, r in enumerate(rows):
        if not isinstance(r, SketchAccuracy):
            raise ArgumentTypeError(
                f"rows[{i}] must be a SketchAccuracy (sketch_accuracy), got {type(r).__name__}"
            )
        check_int(r.k, f"rows[{i}].k", minimum=1)
        check_real(r.relative_error, f"rows[{i}].relative_error", minimum=0, strict_minimum=True)
    _check_axes(ax)
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

    image = _check_image(image)
    cnfm_map, agop_map = _check_map(cnfm_map, "cnfm_map"), _check_map(agop_map, "agop_map")
    if isinstance(similarity, (torch.Tensor, np.ndarray)) and similarity.ndim == 0:
        similarity = similarity.item()
    similarity = check_real(similarity, "similarity", minimum=-1 - 1e-6, maximum=1 + 1e-6)
    title = _check_text(title, "title") or ""
    _check_figure(fig)
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
    :class:`agop_book.ch03_pretrained.LayerViews` (the pretrained explorer's figure). Returns the
    figure.

    Examples:
        >>> import matplotlib.pyplot as plt
        >>> import torch
        >>> from agop_book.ch03_pretrained import LayerViews
        >>> from agop_book.nets import SimpleCNN
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
    if not isinstance(views, LayerViews):
        raise ArgumentTypeError(f"views must be a LayerViews, got {type(views).__name__}")
    _check_figure(fig)
    v = views.view(model, layer, image)
    return plot_layer_view(
        v["image"], v["cnfm_map"], v["agop_map"], v["pearson"], title=f"{model} {layer}", fig=fig
    )


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
    if value is None or (isinstance(value, (dict, tuple, list)) and not value):
        return []
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, (tuple, list)):
        items = list(enumerate(value))
    else:
        raise ArgumentTypeError(
            "value must be a FileUpload's value (a dict for ipywidgets 7, a tuple for 8), "
            f"got {type(value).__name__}"
        )

    def field(item, key, where):
        try:
            return item[key] if isinstance(item, dict) else getattr(item, key)
        except (KeyError, AttributeError):
            raise ValueError(f"{where} must have a {key!r} field, as FileUpload gives") from None

    out = []
    for key, item in items:
        where = f"value[{key!r}]"
        name = key if isinstance(value, dict) else field(item, "name", where)
        content = field(item, "content", where)
        if not isinstance(content, (bytes, bytearray, memoryview)):
            raise ArgumentTypeError(
                f"{where}: its content must be bytes, got {type(content).__name__}"
            )
        out.append((str(name), bytes(content)))
    return out


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
    :func:`plot_layer_view` (the chapter's static twin). ``models``:
    ``{label: module}``; ``images``: ``{label: (3, size, size) preprocessed tensor}``.

    Views come from an :class:`agop_book.ch03_pretrained.LayerViews` cache (``views``, to share it with
    the static twin, or a new one): the first view of a (model, image) pair runs one set of
    ``sketch``-probe backward passes for every layer at once, and any layer after that is a
    convolution and ``k_out x k_out`` products, in the filter space. Opens on
    ``views.first()``: the first model, its first conv layer, the first image. Returns the
    widget.

    Examples:
        >>> import contextlib, io
        >>> import torch
        >>> from agop_book.nets import SimpleCNN
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

    size = check_int(size, "size", minimum=1)
    if views is None:
        views = LayerViews(models, images, sketch=sketch)
    elif not isinstance(views, LayerViews):
        raise ArgumentTypeError(f"views must be None or a LayerViews, got {type(views).__name__}")
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
            plot_layer_views(views, model_box.value, layer_box.value, image_box.value, fig=fig)
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
