r"""Views of a CNN for the book's figures: what each layer reads, a feature operator's image
through the convolution itself, and an operator's top eigenvectors as filters.

Chapters 01, 03 and 04 draw with them; the operators themselves (the CNFM, the patch-AGOP,
:func:`agop.features.feature_map`) are the library's, :mod:`agop.features`.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from agop._typing import ArrayLike, Device, IntPair
from agop.features import conv_layers
from agop.runtime import default_device
from agop.validation import (
    ArgumentTypeError,
    as_tensor,
    check_finite,
    check_images,
    check_int,
    check_int_pair,
    check_not_meta,
    check_psd,
    low_precision,
)

__all__ = ["factored_feature_map", "layer_inputs", "top_filters"]


def factored_feature_map(
    conv: nn.Conv2d, x: ArrayLike, G: torch.Tensor | None = None
) -> torch.Tensor:
    r""":func:`agop.features.feature_map` of :math:`A = \sum_g W_g^\top G_g W_g` at ``conv``'s own stride,
    padding and dilation, through the convolution instead of a :math:`q \times q` square root:
    :math:`\|A^{1/2} x[j]\|^2 = x[j]^\top A x[j] = \sum_g h_g[j]^\top G_g h_g[j]` with
    :math:`h = W x[j]` the layer's output without bias. ``G=None`` is the CNFM (:math:`G = I`):
    :math:`\|W x[j]\|`. ``x`` ``(n, c, H, W)`` or ``(c, H, W)``; returns ``(n, H', W')``.

    Examples:
        >>> import torch
        >>> from agop.features import cnfm, feature_map
        >>> conv = torch.nn.Conv2d(2, 4, 3).double()
        >>> x = torch.rand(2, 2, 8, 8, generator=torch.Generator().manual_seed(0),
        ...                dtype=torch.float64)
        >>> torch.allclose(factored_feature_map(conv, x), feature_map(cnfm(conv), x, 3, padding=0))
        True
    """
    if not isinstance(conv, nn.Conv2d):
        raise ArgumentTypeError(f"conv must be a torch.nn.Conv2d, got {type(conv).__name__}")
    if conv.padding_mode != "zeros":
        raise ValueError(
            f"conv must pad with zeros (as feature_map does), got padding_mode="
            f"{conv.padding_mode!r}"
        )
    check_not_meta(conv.weight, "conv.weight")
    x = as_tensor(x, "x")
    if x.ndim == 3:
        x = x[None]
    x = check_images(
        x, "x", channels=conv.in_channels, dtype=conv.weight.dtype, device=conv.weight.device
    )
    try:
        with torch.no_grad():
            h = F.conv2d(
                x, conv.weight, None, conv.stride, conv.padding, conv.dilation, conv.groups
            )
    except RuntimeError as err:  # images smaller than the (dilated) filter
        raise ValueError(f"x of shape {tuple(x.shape)} does not fit conv {conv}: {err}") from err
    n, k, H, W = h.shape
    if G is None:
        return h.norm(dim=1)
    g = conv.groups
    G = as_tensor(G, "G", dtype=h.dtype, device=h.device)
    if G.ndim == 2:
        G = G[None]
    if G.shape != (g, k // g, k // g):
        raise ValueError(
            f"G must have shape ({g}, {k // g}, {k // g}) for this conv, got {tuple(G.shape)}"
        )
    G = (check_finite(G, "G") + G.mT) / 2
    for i in range(g):
        check_psd(G[i], "G" if g == 1 else f"G[{i}]")
    hg = h.reshape(n, g, k // g, H * W)
    quad = torch.einsum("ngkp,gkl,nglp->np", hg, G, hg)
    return quad.clamp_min(0).sqrt().reshape(n, H, W)


def top_filters(A: ArrayLike, n_filters: int, channels: int, kernel_size: IntPair) -> torch.Tensor:
    """The ``n_filters`` top eigenvectors of ``A`` as filters ``(n_filters, channels, k, k)``.

    Ordered by decreasing eigenvalue; the sign of each is fixed so that its entry of largest
    magnitude is positive.

    Examples:
        >>> import torch
        >>> A = torch.diag(torch.arange(1.0, 10.0, dtype=torch.float64))  # largest: the last pixel
        >>> top_filters(A, 2, channels=1, kernel_size=3)[:, 0].tolist()
        [[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0]], [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]]]
    """
    kh, kw = check_int_pair(kernel_size, "kernel_size")
    q = check_int(channels, "channels", minimum=1) * kh * kw
    A = check_psd(as_tensor(A, "A"), "A", q)
    n_filters = check_int(n_filters, "n_filters", minimum=1, maximum=q)
    B = A.float() if low_precision(A.dtype) else A  # eigh takes no float16 or bfloat16
    _, vecs = torch.linalg.eigh((B + B.T) / 2)
    top = vecs[:, -n_filters:].flip(1).T
    sign = torch.sign(top.gather(1, top.abs().argmax(1, keepdim=True)))
    return (top * sign).reshape(n_filters, channels, kh, kw).to(A.dtype)


class _Captured(Exception):
    """Raised by :func:`layer_inputs`' hooks once every input is in: the forward pass stops."""


@torch.no_grad()
def layer_inputs(
    model: nn.Module,
    X: ArrayLike,
    layers: str | nn.Module | Iterable[str | nn.Module] | None = None,
    device: Device | None = None,
    *,
    name: str = "X",
) -> dict[str, torch.Tensor]:
    """The input that each named layer reads when ``model`` runs on ``X`` (eval mode, no
    gradients): ``{name: (n, c_l, H_l, W_l)}``, e.g. to draw :func:`agop.features.feature_map` at every layer.

    ``layers``: qualified module names (any module, or the ``Conv2d`` modules themselves),
    ``None`` for every conv layer. ``device``: where to run (``None``: where the model is; a
    model elsewhere is copied there). Forward pre-hooks read each input, and the forward pass
    stops once all are captured, so the layers of a fully convolutional prefix can be read on
    images of any size that prefix accepts. A module called more than once in a forward pass
    (a shared layer) gives the input of its first call. ``name``: what errors call the images (a caller's
    own argument name).

    Examples:
        >>> import torch
        >>> from agop_book.nets import SimpleCNN
        >>> net = SimpleCNN(2, 3, image_size=8, depth=2, width=4, seed=0).double().eval()
        >>> X = torch.rand(5, 2, 8, 8, generator=torch.Generator().manual_seed(0),
        ...                dtype=torch.float64)
        >>> inputs = layer_inputs(net, X, device="cpu")
        >>> {name: tuple(x.shape) for name, x in inputs.items()}
        {'convs.0': (5, 2, 8, 8), 'convs.1': (5, 4, 6, 6)}
        >>> torch.allclose(inputs["convs.1"], torch.relu(net.convs[0](X)))
        True
    """
    if not isinstance(model, nn.Module):
        raise ArgumentTypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(name, str):
        raise ArgumentTypeError(f"name must be a str (the images' name), got {name!r}")
    if layers is not None and not isinstance(layers, (str, nn.Module, Iterable)):
        raise ArgumentTypeError(
            "layers must be a module name, a module, or a list of them (None: every conv "
            f"layer), got {layers!r}"
        )
    if layers is None:
        names = list(conv_layers(model))
    else:
        modules = dict(model.named_modules())
        by_module = {id(m): qual for qual, m in modules.items()}
        names = []
        for layer in [layers] if isinstance(layers, (str, nn.Module)) else list(layers):
            if not isinstance(layer, (str, nn.Module)):
                raise ArgumentTypeError(
                    f"layers must hold module names or modules, got {layer!r} "
                    f"({type(layer).__name__})"
                )
            qual = by_module.get(id(layer)) if isinstance(layer, nn.Module) else layer
            if qual not in modules:
                raise ValueError(f"layers: {layer!r} is not a module of the model")
            names.append(str(qual))
        names = list(dict.fromkeys(names))
        if not names:
            raise ValueError(
                "layers is empty: name at least one module (or pass None for all conv layers)"
            )
    params = list(model.parameters())
    model_device = params[0].device if params else None
    if model_device is not None and model_device.type == "meta":
        raise ValueError(
            "model has its parameters on the 'meta' device (shapes without values); "
            "materialise it first (model.to_empty(device=...) and load its weights)"
        )
    device = model_device if device is None else default_device(device)
    work = model
    if model_device is not None and device is not None and model_device != device:
        work = copy.deepcopy(model).to(device)
    dtype = next((p.dtype for p in params if p.is_floating_point()), torch.get_default_dtype())
    X = check_images(X, name, dtype=dtype, device=device)
    modules = dict(work.named_modules())
    seen: dict[str, torch.Tensor] = {}

    def hook_for(layer):
        def hook(module, inputs):
            seen.setdefault(layer, inputs[0].detach())
            if len(seen) == len(names):
                raise _Captured

        return hook

    handles = [modules[n].register_forward_pre_hook(hook_for(n)) for n in names]
    modes = {m: m.training for m in work.modules()}
    if work.training:
        warnings.warn(
            "model is in training mode; the layer inputs are computed in eval mode (batch norm "
            "uses its running statistics, dropout is off) and the mode is restored afterwards",
            stacklevel=3,
        )
    work.eval()
    try:
        work(X)
    except _Captured:
        pass
    except RuntimeError as err:  # before every layer was read: X does not fit the model
        raise ValueError(f"{name} of shape {tuple(X.shape)} does not fit the model: {err}") from err
    finally:
        for handle in handles:
            handle.remove()
        for m, mode in modes.items():
            m.training = mode
    return {n: seen[n] for n in names if n in seen}
