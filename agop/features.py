r"""Feature operators of a CNN: the CNFM :math:`W^\top W` and the patch-AGOP of every conv layer.

For conv layer :math:`l` with filters :math:`W` (:math:`k_\mathrm{out} \times q`), write the
network from that layer on as :math:`f(x) = g(W x[1], \dots, W x[P])`, each patch an
independent variable. Its patch-AGOP over images :math:`x_1, \dots, x_n` and outputs :math:`c` is

.. math::

   \mathrm{AGOP} &= \frac1n \sum_{i=1}^n \sum_j \sum_c
       \nabla_{x[j]} f_c(x_i)\, \nabla_{x[j]} f_c(x_i)^\top = W^\top G W, \\
   G &= \frac1n \sum_{i=1}^n \sum_j \sum_c \frac{\partial f_c}{\partial h[j]}
       \Bigl(\frac{\partial f_c}{\partial h[j]}\Bigr)^\top
       \qquad (k_\mathrm{out} \times k_\mathrm{out}),

because :math:`\nabla_{x[j]} f_c = W^\top \partial f_c / \partial h[j]` with
:math:`h[j] = W x[j]`. :func:`patch_agop`
reads ``d f_c / d h`` from hooks on the conv outputs, so every selected layer comes out of the
same backward passes, and any padding mode, stride, dilation, bias, pooling, residual
connection or batch norm (in eval mode) is handled by the model itself. With ``groups = g``
each group's patches are samples of one :math:`q = (c/g) k^2`-dimensional patch space:
:math:`\mathrm{AGOP} = \sum_g W_g^\top G_g W_g` (the cross-group blocks of :math:`G` do not
enter).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from agop._typing import ArrayLike, Device, IntPair
from agop.linalg import congruence, correlation, psd_power, psd_sqrt
from agop.patches import extract_patches, output_size
from agop.runtime import _last_level_cache, default_device
from agop.validation import (
    ArgumentTypeError,
    _check_allocation,
    all_finite,
    as_tensor,
    check_bool,
    check_choice,
    check_finite,
    check_images,
    check_int,
    check_int_pair,
    check_not_meta,
    check_psd,
    check_real,
    check_result,
    check_seed,
    psd_tolerance,
)

#: default bound, in bytes, on the batched output gradients held at once by :func:`patch_agop`
DEFAULT_MAX_MEMORY = 2**29


def conv_layers(
    model: nn.Module, layers: str | Iterable[str] | None = None
) -> dict[str, nn.Conv2d]:
    """The :class:`torch.nn.Conv2d` layers of ``model`` by qualified module name, in module
    order: all of them (``layers=None``), or those named in ``layers`` (a name, a module, or a
    list of them).

    Examples:
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3, bias=False),
        ...                     nn.ReLU(), nn.Flatten(), nn.Linear(64, 2))
        >>> list(conv_layers(net))
        ['0', '2']
        >>> conv_layers(net, "2")
        {'2': Conv2d(4, 4, kernel_size=(3, 3), stride=(1, 1), bias=False)}
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    convs = {name: m for name, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    if not convs:
        raise ValueError(
            f"model has no torch.nn.Conv2d layer ({type(model).__name__}); "
            "the patch-AGOP is defined for convolutional layers"
        )
    if layers is None:
        return convs
    if isinstance(layers, (str, nn.Module)):
        layers = [layers]
    if not isinstance(layers, Iterable):
        raise ArgumentTypeError(
            f"layers must be None, a layer name or module, or a list of "
            f"them, got {layers!r} ({type(layers).__name__})"
        )
    by_module = {id(m): name for name, m in convs.items()}
    names = []
    for layer in layers:
        if isinstance(layer, nn.Module):
            if id(layer) not in by_module:
                raise ValueError(
                    f"layers: module {type(layer).__name__} is not a Conv2d of the model"
                )
            layer = by_module[id(layer)]
        if layer not in convs:
            raise ValueError(
                f"layers: unknown layer name {layer!r}; the model's Conv2d layers are {list(convs)}"
            )
        names.append(layer)
    if not names:
        raise ValueError("layers is empty: name at least one Conv2d layer (or pass None for all)")
    return {name: convs[name] for name in dict.fromkeys(names)}


def filter_matrix(conv_or_W: nn.Module | ArrayLike) -> torch.Tensor:
    """The filters as ``(groups, k_out / groups, q)``: ``W_g``, one matrix per group.

    Accepts a :class:`torch.nn.Conv2d`, a conv weight ``(k_out, c/g, k, k)`` (one group), a
    matrix ``(k_out, q)`` or filters already grouped, ``(groups, k_out / groups, q)``.

    Examples:
        >>> import torch
        >>> conv = torch.nn.Conv2d(4, 6, 3, groups=2)  # 2 groups of 3 filters on 2 channels
        >>> W = filter_matrix(conv)
        >>> tuple(W.shape)  # q = 2 * 3 * 3
        (2, 3, 18)
        >>> torch.equal(W[1], conv.weight[3:].reshape(3, -1))
        True
    """
    return _filters(conv_or_W, "conv_or_W")


def _filters(conv_or_W: Any, name: str) -> torch.Tensor:
    """:func:`filter_matrix` of the argument ``name``: finite, non-empty filters, else an
    error naming it."""
    if isinstance(conv_or_W, nn.Conv2d):
        w, g = conv_or_W.weight.detach(), conv_or_W.groups
        check_not_meta(w, f"{name}.weight")
    elif isinstance(conv_or_W, nn.Module) or conv_or_W is None or isinstance(conv_or_W, str):
        raise ArgumentTypeError(
            f"{name} must be a torch.nn.Conv2d or its filters (a conv weight (k_out, c, k, k), "
            f"a matrix (k_out, q) or grouped filters (groups, k, q)), got "
            f"{type(conv_or_W).__name__}"
        )
    else:
        w, g = as_tensor(conv_or_W, name).detach(), 1
        if w.ndim not in (2, 3, 4):
            raise ValueError(
                f"{name} must be a Conv2d, a conv weight (k_out, c, k, k), a matrix "
                f"(k_out, q) or grouped filters (groups, k, q), got shape "
                f"{tuple(w.shape)}"
            )
    if w.numel() == 0:
        raise ValueError(f"{name} holds no filters: shape {tuple(w.shape)}")
    check_finite(w, name)
    if w.ndim == 3:  # already (groups, k_out / groups, q)
        return w
    return w.reshape(g, w.shape[0] // g, -1)


def cnfm(conv: nn.Module | ArrayLike) -> torch.Tensor:
    r"""The Convolutional Neural Feature Matrix :math:`W^\top W` (:math:`q \times q`),
    ``W = weight.reshape(k_out, -1)``.

    ``conv`` is a :class:`torch.nn.Conv2d` or its weight (or a :math:`k_\mathrm{out} \times q`
    matrix).

    Examples:
        >>> import torch
        >>> conv = torch.nn.Conv2d(3, 8, 5).double()
        >>> W = conv.weight.reshape(8, -1)
        >>> torch.allclose(cnfm(conv), W.T @ W), tuple(cnfm(conv).shape)
        (True, (75, 75))
    """
    W = _filters(conv, "conv")
    W = W.reshape(-1, W.shape[-1])
    return check_result(
        W.T @ W,
        "cnfm(conv), W^T W,",
        inputs={"conv": W},
        hint="compute it from the filters in float32 or float64 (conv.float())",
    )


def _output_matrix(out, n: int) -> torch.Tensor:
    if not isinstance(out, torch.Tensor):
        raise TypeError(
            f"the model must return one tensor of shape (n, outputs), got "
            f"{type(out).__name__}; wrap it so that it returns a tensor"
        )
    if out.ndim == 0 or out.shape[0] != n:
        raise ValueError(
            f"the model's output must have the batch as its first axis, got shape "
            f"{tuple(out.shape)} for {n} images"
        )
    return out.reshape(n, -1)


def _model_dtype(model: nn.Module, fallback: torch.dtype) -> torch.dtype:
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return fallback


def _model_device(model: nn.Module) -> torch.device | None:
    for p in model.parameters():
        return p.device
    return None


class _eval_mode:
    """Switch a model to eval mode for a computation (with a warning) and restore it after."""

    def __init__(self, model: nn.Module, what: str):
        self.model, self.what = model, what

    def __enter__(self):
        self.modes = {m: m.training for m in self.model.modules()}
        if self.model.training:
            warnings.warn(
                f"model is in training mode; {self.what} is computed in eval mode "
                "(batch norm uses its running statistics, dropout is off) and the "
                "mode is restored afterwards",
                stacklevel=3,
            )
        self.model.eval()
        return self.model

    def __exit__(self, *exc):
        for m, mode in self.modes.items():
            m.training = mode


def _probes(
    outputs: torch.Tensor, n_out: int, sketch: int | None, images: range, seed: int, dtype, device
) -> torch.Tensor:
    """Output directions ``v`` (``B x m x n_out``) for the images ``images`` of ``X``, with
    ``sum_v v v^T`` = the projector on the selected outputs (exact: one-hot rows) or, in
    expectation, ``sketch`` times it (Gaussian probes). Each image's probes come from its own
    generator, seeded by ``(seed, index)``, so that they do not depend on the chunking."""
    m = len(images)
    if sketch is None:
        eye = torch.zeros(len(outputs), n_out, dtype=dtype, device=device)
        eye[torch.arange(len(outputs)), outputs.to(device)] = 1
        return eye[:, None, :].expand(-1, m, -1)
    # torch's CPU generator keeps 32 bits of a seed: mix (seed, index) into them
    seeds = [int(np.random.SeedSequence([int(seed), i]).generate_state(1)[0]) for i in images]
    z = torch.stack(
        [
            torch.randn(
                sketch, len(outputs), dtype=dtype, generator=torch.Generator().manual_seed(s)
            )
            for s in seeds
        ],
        dim=1,
    )
    v = torch.zeros(sketch, m, n_out, dtype=dtype)
    v[..., outputs] = z
    return v.to(device)


def _direction_grads(f, hs, V, batched: bool):
    """``d <v, f> / d h`` for the directions ``v`` in ``V`` (``B x n x C``), as tuples of
    ``(b, n, ...)`` tensors, one per ``h``: all ``B`` at once through one vmapped backward
    (``batched``), or one ordinary backward pass per direction. An op without a vmap rule
    falls back to the second."""
    if batched:
        try:
            yield torch.autograd.grad(
                f, hs, grad_outputs=V, retain_graph=True, is_grads_batched=True, allow_unused=True
            )
            return
        except RuntimeError:
            pass
    for v in V:
        grads = torch.autograd.grad(f, hs, grad_outputs=v, retain_graph=True, allow_unused=True)
        yield tuple(None if grad is None else grad[None] for grad in grads)


def _is_cut(f: torch.Tensor, t: torch.Tensor, hs: Sequence[torch.Tensor]) -> bool:
    """Whether ``f`` depends on the ``hs`` only through ``t``: some path of ``f``'s autograd
    graph reaches ``t``, and none reaches a node of an ``h`` without passing through the edge
    into ``t`` (another output of ``t``'s node is an ordinary path)."""
    if f.grad_fn is None or t.grad_fn is None:
        return False
    blocked = (t.grad_fn, t.output_nr)
    targets = {h.grad_fn for h in hs if h.grad_fn is not None}
    leaves = {id(h) for h in hs if h.grad_fn is None}
    seen = {f.grad_fn}
    stack = [f.grad_fn]
    reached = False
    while stack:
        node = stack.pop()
        if node in targets or id(getattr(node, "variable", None)) in leaves:
            return False
        for edge in node.next_functions:
            reached = reached or edge == blocked
            if edge[0] is not None and edge != blocked and edge[0] not in seen:
                seen.add(edge[0])
                stack.append(edge[0])
    return reached


def _tail_grads(f: torch.Tensor, t: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    """``d <v, f> / d t`` for every direction ``v`` of ``V`` (``B x n x C``), ``(B, *t.shape)``:
    one vmapped backward through the layers after ``t`` (the read-out), which reads their
    weights once for all directions; one pass per direction when an op has no vmap rule."""
    try:
        (grad,) = torch.autograd.grad(
            f, t, grad_outputs=V, retain_graph=True, is_grads_batched=True
        )
    except RuntimeError:
        grad = torch.stack(
            [torch.autograd.grad(f, t, grad_outputs=v, retain_graph=True)[0] for v in V]
        )
    return grad


def _gram_sum(grad: torch.Tensor) -> torch.Tensor:
    """``G_g = sum_{b, p} grad[b, g, :, p] grad[b, g, :, p]^T`` for ``grad`` of shape
    ``(batch, groups, k, positions)``: one batched product per group with positions as the inner
    dimension (no transposed copy) when there are at least as many positions as channels."""
    if grad.shape[3] >= grad.shape[2]:
        return torch.stack(
            [
                torch.matmul(grad[:, i], grad[:, i].transpose(1, 2)).sum(0)
                for i in range(grad.shape[1])
            ]
        )
    return torch.einsum("bgkp,bglp->gkl", grad, grad)


def _images_per_chunk(
    model: nn.Module,
    forward,
    x1: torch.Tensor,
    max_memory: int,
    most: int = 256,
    cache: int | None = None,
) -> int:
    """As many images (at most ``most``) as keep twice their conv outputs -- the activations
    the forward graph holds and one direction's gradients -- under ``max_memory`` bytes,
    measured on one image ``x1``: by a forward pass on the ``meta`` device (shapes only, no
    arithmetic), or by an ordinary one when the model cannot run there (an op without a meta
    implementation, a value read out of a tensor).

    With ``cache`` (bytes of the CPU's last-level cache), also no more than keep the conv
    outputs within ``max(cache / 2, weight bytes)``: each direction's backward pass then works
    in the cache, and a chunk still spans enough images that reading the model's weights, once
    per pass, does not dominate (on 2 cores with 32 MB of cache: a 4-layer CNN on 32 x 32
    images 0.9 s against 1.4 s in chunks of 256; VGG11 and ResNet18 keep 2 images of 224 px,
    5 % and 15 % faster than one)."""
    sizes: list[int] = []

    def hook(module, inputs, out):
        sizes.append(out.numel() * out.element_size())

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            try:
                shapes_only = {
                    name: t.to("meta")
                    for name, t in [*model.named_parameters(), *model.named_buffers()]
                }
                torch.func.functional_call(model, shapes_only, (x1.to("meta"),), strict=False)
            except Exception:  # noqa: BLE001 -- any failure on meta: measure for real
                sizes.clear()
                forward(x1)
    finally:
        for handle in handles:
            handle.remove()
    per_image = max(sum(sizes), 1)
    if cache is not None:
        weights = sum(p.numel() * p.element_size() for p in model.parameters())
        most = min(most, max(cache // 2, weights) // per_image)
    return max(1, min(most, int(max_memory // (2 * per_image))))


class FactoredAGOP:
    r"""A patch-AGOP kept as its factors: :math:`\mathrm{AGOP} = \sum_g W_g^\top G_g W_g`.

    ``W`` ``(groups, k_out/g, q)`` is the layer's filter matrix (:func:`filter_matrix`), ``G``
    ``(groups, k_out/g, k_out/g)`` the averaged outer products of the output gradients. Every
    similarity with the CNFM lives in the filter space (:meth:`space`); :meth:`dense` forms the
    ``q x q`` matrix, only when a caller asks for it.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> _ = torch.manual_seed(0)  # a two-layer CNN, and 5 images
        >>> net = nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU(),
        ...                     nn.Flatten(), nn.Linear(64, 3)).double().eval()
        >>> X = torch.rand(5, 2, 8, 8, dtype=torch.float64)
        >>> factored = patch_agop(net, X, layers="0", factored=True)["0"]
        >>> factored
        FactoredAGOP(groups=1, k_out=4, q=18)
        >>> torch.allclose(factored.dense(), patch_agop(net, X, layers="0")["0"])
        True
        >>> from agop.linalg import correlation  # the same number, without the 18 x 18 matrix
        >>> abs(factored.pearson() - correlation(cnfm(net[0]), factored.dense())) < 1e-12
        True
    """

    def __init__(self, W: torch.Tensor, G: torch.Tensor) -> None:
        if W.ndim != 3 or G.shape != (W.shape[0], W.shape[1], W.shape[1]):
            raise ValueError(
                f"W must be (groups, k, q) and G (groups, k, k), got "
                f"{tuple(W.shape)} and {tuple(G.shape)}"
            )
        self.W, self.G = W, G
        self._space: FilterSpace | None = None

    @property
    def q(self) -> int:
        return self.W.shape[2]

    def dense(self) -> torch.Tensor:
        r"""The ``q x q`` matrix :math:`\sum_g W_g^\top G_g W_g`."""
        return congruence(self.W, self.G)

    def space(self) -> FilterSpace:
        """The filter space of ``W`` (:class:`FilterSpace`), built once."""
        if self._space is None:
            self._space = FilterSpace(self.W)
        return self._space

    def similarities(self) -> tuple[float, float, float, float]:
        r"""(pearson, cosine) of the CNFM :math:`W^\top W` with the AGOP and with :math:`\mathrm{AGOP}^{1/2}`,
        in the filter space (no ``q x q`` matrix)."""
        return self.space().similarities(self.G)

    def pearson(self) -> float:
        """The Pearson correlation of the CNFM with the AGOP (the first of
        :meth:`similarities`, without the square root's eigendecomposition)."""
        space = self.space()
        return space.similarity(space.reduce(self.G))

    def __repr__(self) -> str:
        g, k, q = self.W.shape
        return f"FactoredAGOP(groups={g}, k_out={g * k}, q={q})"


def patch_agop(
    model: nn.Module,
    X: ArrayLike,
    layers: str | Iterable[str] | None = None,
    sketch: int | None = None,
    outputs: Sequence[int] | None = None,
    chunk_size: int | None = None,
    device: Device | None = None,
    progress: bool = False,
    *,
    seed: int = 0,
    max_memory: int | None = None,
    vectorize: bool | None = None,
    factored: bool = False,
) -> dict:
    r"""The patch-AGOP :math:`W^\top G W` (:math:`q \times q`) of each selected conv layer, by
    qualified name.

    :math:`\mathrm{AGOP}_l = \frac1n \sum_i \sum_j \sum_c \nabla_{x[j]} f_c(x_i)\,
    \nabla_{x[j]} f_c(x_i)^\top`: averaged over the images ``X`` (``n, c, H, W``), summed over patch positions ``j`` and outputs ``c``
    (``outputs``: indices of the model's flattened outputs to include; ``None``: all).
    ``layers``: names (or modules) of Conv2d layers, ``None`` for all. A layer called more than
    once in the forward pass (a shared conv) has the patches of each call as its own patch
    variables, and its AGOP sums over all calls (the gradient with respect to an earlier call's
    patches includes the paths through the later calls). All layers come from the
    same backward passes, ``chunk_size`` images at a time (``None``: as many as keep twice
    their conv outputs under ``max_memory`` bytes, at most 256; on the CPU also as many as keep
    them within half the last-level cache, or within the weights' size if larger).
    ``vectorize=True`` runs the output directions through one vmapped backward
    (``is_grads_batched``), as many at once as keep the batched gradients under ``max_memory``
    bytes; ``False`` runs one ordinary backward pass per direction. ``None`` (default) vectorises on accelerators only: on the CPU the plain passes
    were faster (VGG11, ResNet18, the 4-layer CNN of the book's benchmarks) and hold one
    direction's gradients at a time. Either way, when the model's output depends on the conv
    outputs only through the input of its read-out (the first ``nn.Linear`` after the last
    conv; checked on the autograd graph), one vmapped backward takes every direction through
    the read-out, whose weights are then read once, not once per direction.

    ``sketch=k`` replaces the one-hot output directions by :math:`k` Gaussian probes
    :math:`v \sim \mathcal N(0, I)` per image: :math:`\frac1k \sum_v (J^\top v)(J^\top v)^\top` is
    unbiased for :math:`J^\top J`, with relative error :math:`O(1/\sqrt{k})`; use it for models with many outputs (``seed`` fixes them).

    The model runs in eval mode (a model in training mode is switched, with a warning, and
    restored) on ``device`` (``None``: CUDA when available), in the dtype of its parameters;
    a model on another device is copied there, never moved.
    ``factored=True`` returns, per layer, a :class:`FactoredAGOP` (its filter matrix ``W`` and
    ``G``, a ``(groups, k_out/g, k_out/g)`` tensor) and forms no ``q x q`` matrix: for VGG's deep layers (``q = 4608``) forming it
    costs more than the backward passes.

    Examples:
        Every conv layer from the same backward passes:

        >>> import torch
        >>> from torch import nn
        >>> _ = torch.manual_seed(0)  # a two-layer CNN, and 5 images
        >>> net = nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU(),
        ...                     nn.Flatten(), nn.Linear(64, 3)).double().eval()
        >>> X = torch.rand(5, 2, 8, 8, dtype=torch.float64)
        >>> agops = patch_agop(net, X, device="cpu")
        >>> {name: tuple(A.shape) for name, A in agops.items()}  # q = 2 * 9, then 4 * 9
        {'0': (18, 18), '2': (36, 36)}

        With a linear read-out right after the conv, :math:`\partial f_c / \partial h[j]` is
        the read-out's weight :math:`V_{c,:,j}` at position :math:`j`, whatever the image, so
        :math:`\mathrm{AGOP} = W^\top (\sum_{c,j} V_{c,:,j} V_{c,:,j}^\top) W`:

        >>> linear = nn.Sequential(nn.Conv2d(2, 4, 3), nn.Flatten(), nn.Linear(144, 3)).double().eval()
        >>> A = patch_agop(linear, X, device="cpu")["0"]
        >>> W = linear[0].weight.reshape(4, 18)  # (k_out, q)
        >>> V = linear[2].weight.reshape(3, 4, 36)  # output, channel, position
        >>> torch.allclose(A, W.T @ torch.einsum("ckj,clj->kl", V, V) @ W)
        True
    """
    selected = conv_layers(model, layers)
    device = default_device(device)
    dtype = _model_dtype(model, torch.get_default_dtype())
    X = check_images(X, "X", dtype=dtype)
    if X.is_inference():  # made under torch.inference_mode(): autograd cannot record it
        with torch.inference_mode(False):
            X = X.clone()
    sketch = None if sketch is None else check_int(sketch, "sketch", minimum=1)
    outputs = None if outputs is None else _output_indices(outputs)
    progress = check_bool(progress, "progress")
    factored = check_bool(factored, "factored")
    vectorize = None if vectorize is None else check_bool(vectorize, "vectorize")
    chunk_size = None if chunk_size is None else check_int(chunk_size, "chunk_size", minimum=1)
    max_memory = (
        DEFAULT_MAX_MEMORY if max_memory is None else check_int(max_memory, "max_memory", minimum=1)
    )
    seed = check_seed(seed)
    work = model
    model_device = _model_device(model)
    if model_device is not None and model_device.type == "meta":
        raise ValueError(
            "model has its parameters on the 'meta' device (shapes without values); "
            "materialise it first (model.to_empty(device=...) and load its weights)"
        )
    if model_device is not None and model_device != device:
        work = copy.deepcopy(model).to(device)
    modules = dict(work.named_modules())
    convs = {name: modules[name] for name in selected}

    selected_outputs: list[torch.Tensor] = []  # checked once, on the first chunk's outputs

    def probes(f: torch.Tensor, images: range) -> torch.Tensor:
        n_out = f.shape[1]
        if not selected_outputs:
            sel = torch.arange(n_out) if outputs is None else _check_outputs(outputs, n_out)
            selected_outputs.append(sel)
            if sketch is not None:  # B x m x n_out probes, and as many random draws
                _check_allocation(
                    2 * sketch * len(images) * n_out,
                    f.element_size(),
                    "sketch",
                    f"sketch={sketch} Gaussian probes of {n_out} outputs for {len(images)} images",
                )
        return _probes(selected_outputs[0], n_out, sketch, images, seed, f.dtype, device)

    with _eval_mode(work, "the patch-AGOP"), torch.inference_mode(False), torch.enable_grad():
        plan = _Plan.make(work, X, device, chunk_size, max_memory, vectorize)
        G = _inner_grams(work, convs, X, plan, probes, progress)
    agops: dict[str, Any] = {}
    for name, conv in convs.items():  # AGOP = W^T G W, per group
        Wg = filter_matrix(conv).to(dtype)
        g, kg, _ = Wg.shape
        Gn = G[name]
        if Gn is None:
            Gn = torch.zeros(g, kg, kg, dtype=dtype, device=device)
        Gn = Gn / (X.shape[0] * (sketch or 1))
        what = (
            f"the inner matrix G of layer {name!r}"
            if factored
            else f"the patch-AGOP of layer {name!r}"
        )
        result = check_result(
            Gn if factored else congruence(Wg, Gn),
            what,
            inputs={"X": X},
            hint="rescale X or use a float64 model",
        )
        agops[name] = FactoredAGOP(Wg.clone(), result) if factored else result
    return agops


def _inner_grams(work, convs, X, plan, probes, progress) -> dict[str, torch.Tensor | None]:
    r"""The core of :func:`patch_agop`: :math:`G = \sum_i \sum_j \sum_v
    \partial_{h[j]} \langle v, f(x_i) \rangle\, \partial_{h[j]} \langle v, f(x_i) \rangle^\top`
    per selected layer (``(groups, k, k)``), over the images ``X`` and the output directions
    ``v`` of ``probes(f, images)``: a forward pass with hooks that record each call's conv
    output :math:`h = W x[j]`, a backward pass per direction, the gram sum of the gradients.
    ``plan`` decides how: images per chunk, directions per backward pass, the read-out cut."""
    G: dict[str, torch.Tensor | None] = {name: None for name in convs}
    n = X.shape[0]
    with _Recorder(work, convs, X.shape) as recorder:
        for start in tqdm(range(0, n, plan.chunk_size), desc="patch-AGOP", disable=not progress):
            x = X[start : start + plan.chunk_size].to(plan.device)
            f, calls = recorder.forward(x)
            V = probes(f, range(start, start + x.shape[0]))
            for grads in plan.output_grads(f, [h for _, h in calls], V, recorder.cut(f)):
                for (name, h), grad in zip(calls, grads, strict=True):
                    if grad is None:
                        raise ValueError(_detached_message(name))
                    g = convs[name].groups
                    grad = grad.reshape(-1, g, h.shape[1] // g, h.shape[2] * h.shape[3])
                    contribution = _gram_sum(grad)
                    previous = G[name]
                    G[name] = contribution if previous is None else previous + contribution
            del f, calls, V  # this chunk's graph goes before the next chunk's forward
            recorder.clear()
    return G


class _Recorder:
    """Forward hooks for :func:`patch_agop`: each call's output ``h`` of every selected conv
    layer (a leaf when nothing upstream needs a gradient; the model goes on with a copy, so
    that an in-place op downstream, ``ReLU(inplace=True)`` in AlexNet and VGG, cannot
    overwrite it), and the input of every ``nn.Linear`` with the number of conv calls before
    it (the read-out's input is the first one after the last conv call)."""

    def __init__(self, model: nn.Module, convs: dict[str, nn.Module], shape: Sequence[int]):
        self.model, self.convs, self.shape = model, convs, shape
        self.recorded: dict[str, list[torch.Tensor]] = {name: [] for name in convs}
        self.conv_calls = 0
        self.linear_inputs: list[tuple[int, torch.Tensor]] = []

    def __enter__(self) -> _Recorder:
        self.handles = [
            conv.register_forward_hook(self._recorder(name)) for name, conv in self.convs.items()
        ]
        for module in self.model.modules():
            if isinstance(module, nn.Conv2d):
                self.handles.append(module.register_forward_hook(self._count_conv))
            elif isinstance(module, nn.Linear):
                self.handles.append(module.register_forward_pre_hook(self._record_linear))
        return self

    def __exit__(self, *exc: Any) -> None:
        for handle in self.handles:
            handle.remove()

    def _recorder(self, name: str):
        def hook(module, inputs, out):
            if not out.requires_grad:
                out = out.detach().requires_grad_()
            self.recorded[name].append(out)
            return out.clone()

        return hook

    def _count_conv(self, module, inputs, out) -> None:
        self.conv_calls += 1

    def _record_linear(self, module, inputs) -> None:
        self.linear_inputs.append((self.conv_calls, inputs[0]))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[tuple[str, torch.Tensor]]]:
        """The outputs ``f`` ``(m, C)`` on ``x`` and the recorded ``(layer, h)`` of every
        call of a selected layer."""
        self.clear()
        f = _forward(self.model, x, self.shape)
        if not f.is_floating_point():
            raise ValueError(
                f"the model's output must be floating to be differentiated, got {f.dtype} "
                "(return the scores, not their argmax)"
            )
        if not f.requires_grad:
            raise ValueError(
                "the model's output does not depend on X through autograd (it is detached, "
                "or computed under torch.no_grad()): its patch-AGOP cannot be read from "
                "gradients"
            )
        if not all_finite(f):
            raise ValueError(
                "the model's output on X holds NaN or inf; the patch-AGOP is undefined there"
            )
        missing = [name for name in self.convs if not self.recorded[name]]
        if missing:
            raise ValueError(f"layers {missing} were not called in the model's forward pass")
        return f, [(name, h) for name in self.convs for h in self.recorded[name]]

    def cut(self, f: torch.Tensor) -> torch.Tensor | None:
        """The read-out's input when ``f`` depends on the recorded ``h`` only through it."""
        after = [t for calls, t in self.linear_inputs if calls == self.conv_calls]
        hs = [h for name in self.convs for h in self.recorded[name]]
        return after[0] if after and _is_cut(f, after[0], hs) else None

    def clear(self) -> None:
        for name in self.convs:
            self.recorded[name] = []
        self.conv_calls = 0
        self.linear_inputs.clear()


def _forward(model: nn.Module, x: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """The model's outputs on ``x`` (images of ``X``, of shape ``shape``) as ``(m, C)``; an
    error naming ``X`` when they do not fit the model."""
    try:
        return _output_matrix(model(x), x.shape[0])
    except (RuntimeError, ValueError) as err:
        if isinstance(err, ValueError) and "model's output" in str(err):
            raise
        raise ValueError(f"X of shape {tuple(shape)} does not fit the model: {err}") from err


@dataclasses.dataclass
class _Plan:
    """How :func:`patch_agop` runs, apart from what it computes: ``chunk_size`` images per
    forward pass, on ``device``; the output directions through one vmapped backward
    (``vectorize``), as many at once as keep their gradients under ``max_memory`` bytes, or
    one ordinary backward each; and, when the model's output depends on the conv outputs only
    through the read-out's input (the cut), one vmapped backward through the read-out for
    every direction, the rest from the cut."""

    chunk_size: int
    device: torch.device
    max_memory: int
    vectorize: bool

    @classmethod
    def make(cls, model, X, device, chunk_size, max_memory, vectorize) -> _Plan:
        """The plan for ``X``: ``chunk_size`` (``None``: :func:`_images_per_chunk`, with the
        last-level cache on the CPU) and ``vectorize`` (``None``: on accelerators only)."""
        if chunk_size is None:
            cache = _last_level_cache() if device.type == "cpu" else None
            forward = functools.partial(_forward, model, shape=X.shape)
            chunk_size = _images_per_chunk(
                model, forward, X[:1].to(device), max_memory, cache=cache
            )
        if vectorize is None:
            vectorize = device.type != "cpu"
        return cls(min(X.shape[0], chunk_size), device, max_memory, vectorize)

    def output_grads(self, f, hs, V, cut):
        """``d <v, f> / d h`` for the directions ``v`` of ``V``, in batches, as tuples of
        ``(b, m, ...)`` tensors, one per ``h``; from the ``cut`` when there is one."""
        per_direction = sum(h[0].numel() for h in hs) * f.shape[0] * f.element_size()
        batch = max(1, int(self.max_memory // max(per_direction, 1)))
        root = f if cut is None else cut
        for b0 in range(0, V.shape[0], batch):
            Vb = V[b0 : b0 + batch]
            Vb = Vb.contiguous() if cut is None else _tail_grads(f, cut, Vb)
            yield from _direction_grads(root, hs, Vb, batched=self.vectorize)


def _detached_message(name: str) -> str:
    return (
        f"layer {name!r}: its output does not reach the model's output through autograd "
        "(detached, or computed under torch.no_grad() inside forward, as a frozen backbone "
        "often is), so its patch-AGOP cannot be read from gradients; it would come out "
        "zero. Freeze with requires_grad_(False) instead (the patch-AGOP needs no parameter "
        "gradients), or leave this layer out of layers="
    )


def _output_indices(outputs: Any) -> list[int]:
    """``outputs`` as a non-empty list of ints (range checked on the model's first outputs)."""
    if isinstance(outputs, (np.ndarray, torch.Tensor)) and outputs.ndim == 1:
        outputs = outputs.tolist()
    if isinstance(outputs, (str, bytes)) or not isinstance(outputs, Iterable):
        raise ArgumentTypeError(
            f"outputs must be None or a non-empty sequence of output indices, got {outputs!r}"
            + (f" (for one output, pass [{outputs!r}])" if isinstance(outputs, int) else "")
        )
    idx = [check_int(v, f"outputs[{i}]") for i, v in enumerate(outputs)]
    if not idx:
        raise ValueError("outputs must be None or a non-empty sequence of output indices, got []")
    return idx


def _check_outputs(outputs: Any, n_out: int) -> torch.Tensor:
    idx = torch.as_tensor(_output_indices(outputs), dtype=torch.long)
    if int(idx.min()) < -n_out or int(idx.max()) >= n_out:
        raise ValueError(
            f"outputs: indices must lie in [0, {n_out}) for a model with {n_out} "
            f"outputs, got {idx.tolist()}"
        )
    idx = idx % n_out
    if len(set(idx.tolist())) != idx.numel():
        raise ValueError(f"outputs holds repeated indices: {idx.tolist()}")
    return idx


def layer_correlations(
    model: nn.Module, agops: dict[str, torch.Tensor], power: float = 1.0, kind: str = "pearson"
) -> dict[str, float]:
    r"""For each layer in ``agops``: the similarity of its CNFM :math:`W^\top W` with
    :math:`\mathrm{AGOP}^p` (:math:`p` = ``power``).

    ``kind`` is ``"pearson"`` (the paper's measure) or ``"cosine"``; see
    :func:`agop.linalg.correlation`.

    Examples:
        An *untrained* network already scores high, because :math:`\mathrm{AGOP} = W^\top G W`
        shares :math:`W` with the CNFM (see :func:`null_baselines` for the controls):

        >>> import torch
        >>> from torch import nn
        >>> _ = torch.manual_seed(0)  # a two-layer CNN, and 5 images
        >>> net = nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU(),
        ...                     nn.Flatten(), nn.Linear(64, 3)).double().eval()
        >>> X = torch.rand(5, 2, 8, 8, dtype=torch.float64)
        >>> corr = layer_correlations(net, patch_agop(net, X, device="cpu"))
        >>> {name: round(value, 3) for name, value in corr.items()}
        {'0': 0.881, '2': 0.794}
    """
    if not isinstance(agops, Mapping):
        raise ArgumentTypeError(
            f"agops must be a dict of patch-AGOPs by layer name (patch_agop's result), got "
            f"{type(agops).__name__}"
        )
    power = check_real(power, "power")
    kind = check_choice(kind, "kind", ("pearson", "cosine"))
    convs = conv_layers(model)
    unknown = [name for name in agops if name not in convs]
    if unknown:
        raise ValueError(
            f"agops: {unknown[0]!r} is not a Conv2d layer of the model; its Conv2d layers are "
            f"{list(convs)}"
        )
    out = {}
    for name, A in agops.items():
        C = cnfm(convs[name])
        label = f"agops[{name!r}]"
        A = as_tensor(A.dense() if isinstance(A, FactoredAGOP) else A, label)
        A = check_psd(A, label, C.shape[0], rtol=psd_tolerance(A.dtype))
        out[name] = correlation(C, psd_power(A, power, check=False), kind=kind)
    return out


class FilterSpace:
    r"""Matrices of the form :math:`W^\top X W` (:math:`q \times q`), handled in the row space of
    the filters.

    With :math:`C = W W^\top` (:math:`k_\mathrm{out} \times k_\mathrm{out}`), :math:`R = C^{1/2}`
    and :math:`Q = W^\top R^+` (an isometry on the range of :math:`C`), every such matrix is
    :math:`Q (R X R) Q^\top`, so its Frobenius products, norms and powers are those of the
    :math:`k_\mathrm{out} \times k_\mathrm{out}` matrix :math:`R X R`, and the sum of its
    entries is :math:`u^\top (R X R) u` with :math:`u = Q^\top \mathbf 1 = R^+ W \mathbf 1`.
    The CNFM is :math:`X = I` (:math:`R R = C`), a patch-AGOP :math:`X = G`, a null baseline a
    random :math:`G`: their similarities never need a :math:`q \times q` matrix. Building it costs one ``k_out x k_out`` Gram product and one symmetric
    eigendecomposition of that size (no QR of the ``q x k_out`` filters).

    Examples:
        >>> import torch
        >>> from agop.linalg import correlation
        >>> W = torch.randn(4, 36, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        >>> G = torch.diag(torch.tensor([4.0, 3.0, 2.0, 1.0], dtype=torch.float64))
        >>> space = FilterSpace(W)
        >>> reduced = space.similarity(space.reduce(G))  # 4 x 4 products only
        >>> abs(reduced - correlation(W.T @ W, W.T @ G @ W)) < 1e-12
        True
    """

    def __init__(self, conv_or_W: nn.Module | ArrayLike) -> None:
        Wg = _filters(conv_or_W, "conv_or_W").detach()
        g, k, q = Wg.shape
        self.q, self.groups = q, g
        W = Wg.reshape(g * k, q).to(torch.float64)
        C = check_result(
            W @ W.T,
            "the filters' Gram matrix W W^T",
            inputs={"conv_or_W": W},
            hint="rescale the filters (the similarities do not depend on their scale)",
        )
        s, V = torch.linalg.eigh((C + C.T) / 2)
        s = s.clamp_min(0)
        root = s.sqrt()
        keep = s > s.max() * g * k * torch.finfo(torch.float64).eps
        inverse = torch.where(keep, root.reciprocal(), torch.zeros_like(root))
        self.R = (V * root) @ V.T
        self.u = (V * inverse) @ (V.T @ W.sum(1))
        self.cnfm = (C + C.T) / 2

    def reduce(self, G: torch.Tensor) -> torch.Tensor:
        """``R X R`` for ``X`` = ``G`` (``k_out x k_out``) or per group ``(groups, k, k)``."""
        G = check_finite(as_tensor(G, "G", dtype=self.R.dtype, device=self.R.device), "G")
        r, g = self.R.shape[0], self.groups
        if G.shape not in ((r, r), (g, r // g, r // g)):
            raise ValueError(
                f"G must be ({r}, {r}) or ({g}, {r // g}, {r // g}) for these filters, "
                f"got shape {tuple(G.shape)}"
            )
        if G.ndim == 3:
            G = torch.block_diag(*G)
        B = self.R @ G @ self.R
        return (B + B.T) / 2

    def similarity(self, B: torch.Tensor, kind: str = "pearson") -> float:
        r"""The similarity of the CNFM with :math:`Q B Q^\top` (see :func:`agop.linalg.correlation`)."""
        M = self.cnfm
        B = self._reduced(B, "B")
        kind = check_choice(kind, "kind", ("pearson", "cosine"))
        mb, mm, bb = float((M * B).sum()), float((M * M).sum()), float((B * B).sum())
        if kind == "pearson":
            sm, sb, q2 = float(self.u @ M @ self.u), float(self.u @ B @ self.u), self.q**2
            mb, mm, bb = mb - sm * sb / q2, mm - sm**2 / q2, bb - sb**2 / q2
        elif kind != "cosine":
            raise ValueError(f"kind must be 'pearson' or 'cosine', got {kind!r}")
        if mm <= 0 or bb <= 0:
            raise ValueError("the similarity is undefined for a constant matrix")
        return mb / math.sqrt(mm * bb)

    def power(self, B: torch.Tensor, power: float) -> torch.Tensor:
        r"""The reduced form of :math:`(Q B Q^\top)^p` (:math:`p` = ``power``), which is
        :math:`Q B^p Q^\top`."""
        return psd_power(self._reduced(B, "B"), check_real(power, "power"), check=False)

    def _reduced(self, B: Any, name: str) -> torch.Tensor:
        """``B`` as a finite reduced matrix of these filters (``k_out x k_out``)."""
        B = check_finite(as_tensor(B, name, dtype=self.R.dtype, device=self.R.device), name)
        r = self.R.shape[0]
        if B.shape != (r, r):
            raise ValueError(
                f"{name} must be a reduced matrix of these filters, ({r}, {r}) (from "
                f"reduce), got shape {tuple(B.shape)}"
            )
        return B

    def similarities(self, G: torch.Tensor) -> tuple[float, float, float, float]:
        r"""(pearson, cosine) of the CNFM with :math:`W^\top G W` and with :math:`(W^\top G W)^{1/2}`."""
        B = self.reduce(G)
        S = self.power(B, 0.5)
        return (
            self.similarity(B),
            self.similarity(B, "cosine"),
            self.similarity(S),
            self.similarity(S, "cosine"),
        )


def haar_rotations(B: torch.Tensor) -> torch.Tensor:
    r"""Haar-random orthogonal matrices from standard Gaussian ones ``B`` (``(..., k, k)``):
    the :math:`Q` factor of :math:`B = Q R` with the signs of :math:`\operatorname{diag}(R)` moved
    into :math:`Q`, so that the factorisation is unique and :math:`Q` is uniformly distributed on
    :math:`O(k)`.

    Examples:
        >>> import torch
        >>> B = torch.randn(2, 3, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        >>> Q = haar_rotations(B)
        >>> torch.allclose(Q @ Q.mT, torch.eye(3, dtype=torch.float64).expand(2, 3, 3))
        True
        >>> R = Q.mT @ B  # upper triangular with a positive diagonal
        >>> bool((R.diagonal(dim1=1, dim2=2) > 0).all()), torch.allclose(R, R.triu())
        (True, True)
    """
    B = check_finite(as_tensor(B, "B"), "B")
    if B.ndim < 2 or B.shape[-1] != B.shape[-2] or B.numel() == 0:
        raise ValueError(f"B must be square matrices (..., k, k) with k >= 1, got {tuple(B.shape)}")
    Q, R = torch.linalg.qr(B)
    sign = torch.sign(torch.diagonal(R, dim1=-2, dim2=-1))
    sign[sign == 0] = 1
    return Q * sign[..., None, :]


def _inner_spectra(G, g: int, k: int) -> torch.Tensor:
    """The eigenvalues ``(g, k)`` of the inner matrix ``G`` given as ``(k_out, k_out)`` (one
    group, or a block-diagonal matrix whose diagonal blocks are taken) or ``(g, k, k)``."""
    G = as_tensor(G, "G", dtype=torch.float64).detach().cpu()
    if G.ndim == 2 and G.shape == (g * k, g * k):
        G = torch.stack([G[i * k : (i + 1) * k, i * k : (i + 1) * k] for i in range(g)])
    if G.shape != (g, k, k):
        raise ValueError(
            f"G must be the layer's inner matrix, ({g * k}, {g * k}) or "
            f"({g}, {k}, {k}) for {g} group(s) of {k} filters, got shape "
            f"{tuple(G.shape)}"
        )
    if not all_finite(G):
        raise ValueError("G holds NaN or inf")
    G = (G + G.mT) / 2
    lam = torch.linalg.eigvalsh(G)
    scale = float(lam.abs().max()) if lam.numel() else 0.0
    if scale == 0 or float(lam.min()) < -1e-6 * scale:
        raise ValueError(
            "G must be a non-zero positive semi-definite matrix (the inner matrix "
            "of a patch-AGOP, the ``G`` of patch_agop(..., factored=True))"
        )
    return lam.clamp(min=0)


def cnfm_similarity(
    conv_a: nn.Module | ArrayLike, conv_b: nn.Module | ArrayLike, kind: str = "pearson"
) -> float:
    r"""The similarity (:func:`agop.linalg.correlation`) of two CNFMs :math:`A^\top A` and :math:`B^\top B`
    with filters of the same patch space, from ``k x k`` products only:
    :math:`\langle A^\top A, B^\top B \rangle_F = \|A B^\top\|_F^2`,
    :math:`\|A^\top A\|_F = \|A A^\top\|_F`, and the sum of the entries of :math:`A^\top A` is
    :math:`\|A \mathbf 1\|^2`.

    Examples:
        >>> import torch
        >>> from agop.linalg import correlation
        >>> a, b = torch.nn.Conv2d(3, 8, 3).double(), torch.nn.Conv2d(3, 8, 3).double()
        >>> direct = correlation(cnfm(a), cnfm(b))  # with the 27 x 27 matrices
        >>> abs(cnfm_similarity(a, b) - direct) < 1e-12
        True
    """
    kind = check_choice(kind, "kind", ("pearson", "cosine"))
    A = _filters(conv_a, "conv_a").detach().to(torch.float64)
    B = _filters(conv_b, "conv_b").detach().to(device=A.device, dtype=torch.float64)
    A, B = A.reshape(-1, A.shape[-1]), B.reshape(-1, B.shape[-1])
    # the similarity does not depend on either scale: unit filters keep the squares finite
    A, B = A / A.abs().max().clamp_min(1e-300), B / B.abs().max().clamp_min(1e-300)
    if A.shape[1] != B.shape[1]:
        raise ValueError(
            f"conv_a and conv_b must have filters of the same patch space, got q = "
            f"{A.shape[1]} and {B.shape[1]}"
        )
    q = A.shape[1]
    ab, aa, bb = (
        float((A @ B.T).square().sum()),
        float((A @ A.T).square().sum()),
        float((B @ B.T).square().sum()),
    )
    if kind == "pearson":
        sa, sb = float(A.sum(1).square().sum()), float(B.sum(1).square().sum())
        ab, aa, bb = ab - sa * sb / q**2, aa - sa**2 / q**2, bb - sb**2 / q**2
    elif kind != "cosine":
        raise ValueError(f"kind must be 'pearson' or 'cosine', got {kind!r}")
    if aa <= 0 or bb <= 0:
        raise ValueError(
            "correlation is undefined for a constant matrix (zero norm after centring)"
        )
    return ab / math.sqrt(aa * bb)


def null_baselines(
    conv_or_W: nn.Module | torch.Tensor,
    n_draws: int = 20,
    seed: int = 0,
    power: float = 1.0,
    *,
    G: torch.Tensor | None = None,
    space: FilterSpace | None = None,
) -> dict[str, Any]:
    r"""Controls for the ansatz: how similar :math:`W^\top W` and :math:`(W^\top G W)^p` are
    (:math:`p` = ``power``) for a :math:`G` unrelated to any training.

    :math:`\mathrm{AGOP} = W^\top G W` for every network, so the CNFM and the AGOP share ``W`` on both sides and
    correlate even when ``G`` carries no information. Since :math:`E[W^\top O \Lambda O^\top W]` is proportional
    to :math:`W^\top W` for ``O`` Haar-random, how high such a null sits is set by the spectral spread
    of ``G``. The nulls, per group ``g`` of filters (``k = k_out / groups`` filters each):

    * spectrum (only when the layer's trained inner matrix ``G`` is given; the primary null):
      :math:`G_g = O \Lambda_g O^\top` with ``L_g`` the eigenvalues of the given ``G_g`` and ``O`` a
      Haar-random ``k x k`` orthogonal matrix (:func:`haar_rotations` of ``B``, below): the
      trained ``G``'s own spectrum in a random eigenbasis;
    * random: :math:`G_g = B B^\top / k` with ``B`` a ``k x k`` standard Gaussian matrix, a Wishart
      matrix with ``k`` degrees of freedom: full rank, a spread spectrum and a Haar-random
      eigenbasis;
    * identity: ``G = I`` (then :math:`\mathrm{AGOP} = W^\top W` and the correlation at ``power = 1`` is 1).

    Draw ``d`` of both random nulls uses the same ``B_d``, the ``d``-th ``randn(g, k, k)`` of a
    ``torch.Generator`` seeded with ``seed`` (float64). Computed in the filter space
    (:class:`FilterSpace`, which ``space`` may pass in), never with a ``q x q`` matrix per draw.
    Returns ``{"pearson": {...}, "cosine": {...}, "power", "n_draws", "family"}`` where each
    kind maps ``"random_mean"``, ``"random_std"`` (over draws), ``"identity"``, ``"draws"`` (one
    value per draw) and, given ``G``, ``"spectrum_mean"``, ``"spectrum_std"`` and
    ``"spectrum_draws"``. ``G``: ``(k_out, k_out)`` or ``(groups, k, k)``, as returned by
    :func:`patch_agop` with ``factored=True``: its ``G``.

    Examples:
        The untrained network of :func:`layer_correlations`' example: its measured 0.79 in
        layer ``2`` is what the nulls give too.

        >>> import torch
        >>> from torch import nn
        >>> _ = torch.manual_seed(0)  # a two-layer CNN, and 5 images
        >>> net = nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU(),
        ...                     nn.Flatten(), nn.Linear(64, 3)).double().eval()
        >>> X = torch.rand(5, 2, 8, 8, dtype=torch.float64)
        >>> G = patch_agop(net, X, layers="2", factored=True, device="cpu")["2"].G
        >>> nulls = null_baselines(net[2], n_draws=5, G=G)["pearson"]
        >>> nulls["identity"], round(nulls["spectrum_mean"], 2), round(nulls["random_mean"], 2)
        (1.0, 0.8, 0.78)
    """
    n_draws = check_int(n_draws, "n_draws", minimum=1)
    power = check_real(power, "power", minimum=0, strict_minimum=True, maximum=1)
    seed = check_seed(seed)
    g, k, _ = _filters(conv_or_W, "conv_or_W").shape
    lam = None if G is None else _inner_spectra(G, g, k)
    if space is None:
        space = FilterSpace(conv_or_W)
    elif not isinstance(space, FilterSpace):
        raise ArgumentTypeError(f"space must be None or a FilterSpace, got {type(space).__name__}")
    elif space.R.shape[0] != g * k or space.q != filter_matrix(conv_or_W).shape[2]:
        raise ValueError(
            f"space must be the FilterSpace of conv_or_W ({g * k} filters), got one of "
            f"{space.R.shape[0]} filters with q = {space.q}"
        )
    generator = torch.Generator().manual_seed(seed)
    families = ("random",) if lam is None else ("random", "spectrum")
    # every draw's similarities are kept (Python floats in lists, about 32 bytes each)
    _check_allocation(n_draws * 2 * len(families), 32, "n_draws", f"{n_draws} draws' similarities")
    R_groups = space.R.reshape(space.R.shape[0], g, k).transpose(0, 1)  # (g, r, k)
    draws: dict[tuple[str, str], list[float]] = {
        (f, kind): [] for f in families for kind in ("pearson", "cosine")
    }
    for _ in range(n_draws):
        B = torch.randn(g, k, k, generator=generator, dtype=torch.float64)
        reduced = {"random": space.reduce(B @ B.mT / k)}
        if lam is not None:  # R O L O^T R^T as (R O) L (R O)^T, summed over groups
            P = R_groups @ haar_rotations(B)
            reduced["spectrum"] = ((P * lam[:, None, :]) @ P.mT).sum(0)
        for family, reduced_G in reduced.items():
            A = space.power(reduced_G, power)
            for kind in ("pearson", "cosine"):
                draws[family, kind].append(space.similarity(A, kind))
    identity = space.power(space.cnfm, power)
    family = "Wishart G = B B^T / k, B a k x k standard Gaussian matrix, per group"
    if lam is not None:
        family += "; spectrum: the given G's eigenvalues in Haar-random eigenbases O(B)"
    out: dict[str, Any] = {"power": power, "n_draws": n_draws, "family": family}
    for kind in ("pearson", "cosine"):
        out[kind] = {"identity": space.similarity(identity, kind)}
        for f in families:
            t = torch.tensor(draws[f, kind], dtype=torch.float64)
            out[kind][f"{f}_mean"] = float(t.mean())
            out[kind][f"{f}_std"] = float(t.std()) if n_draws > 1 else 0.0
            out[kind]["draws" if f == "random" else f"{f}_draws"] = draws[f, kind]
    return out


def feature_map(
    A: ArrayLike,
    x: ArrayLike,
    kernel_size: IntPair,
    stride: IntPair = 1,
    padding: IntPair | str | None = None,
    dilation: IntPair = 1,
    chunk_size: int = 64,
) -> torch.Tensor:
    r"""The image of a feature operator :math:`A` on ``x``: :math:`\|A^{1/2} x[j]\|` at every
    position :math:`j`.

    ``x`` is ``(n, c, H, W)`` (or one image ``(c, H, W)``), ``A`` a PSD ``q x q`` matrix with
    ``q = c k^2``. ``padding=None`` means "same" (zeros), so the map has the image's size;
    "same" needs ``stride=1`` (give integers at another stride). Returns ``(n, H', W')`` in
    ``x``'s dtype.

    Examples:
        :math:`A = I` gives the norm of each patch:

        >>> import torch
        >>> from agop.patches import extract_patches
        >>> x = torch.rand(2, 1, 6, 6, generator=torch.Generator().manual_seed(0),
        ...                dtype=torch.float64)
        >>> energy = feature_map(torch.eye(9, dtype=torch.float64), x, 3, padding=0)
        >>> tuple(energy.shape)
        (2, 4, 4)
        >>> torch.allclose(energy.flatten(1), extract_patches(x, 3).norm(dim=-1))
        True
    """
    x = as_tensor(x, "x")
    if x.ndim == 3:
        x = x[None]
    x = check_images(x, "x")
    q = x.shape[1] * math.prod(check_int_pair(kernel_size, "kernel_size"))
    chunk_size = check_int(chunk_size, "chunk_size", minimum=1)
    A = check_psd(as_tensor(A, "A", dtype=x.dtype, device=x.device), "A", q)
    S = psd_sqrt(A, check=False)
    padding = "same" if padding is None else padding
    maps = []
    for start in range(0, x.shape[0], chunk_size):
        patches = extract_patches(
            x[start : start + chunk_size], kernel_size, stride, padding, dilation
        )
        maps.append(_scaled_norm(patches @ S))
    H, W = output_size(tuple(x.shape[2:]), kernel_size, stride, padding, dilation)
    return check_result(
        torch.cat(maps).reshape(x.shape[0], H, W),
        "feature_map(A, x)",
        inputs={"A": A, "x": x},
    )


def _scaled_norm(u: torch.Tensor) -> torch.Tensor:
    """The Euclidean norms of the last axis of ``u``, each taken of the row divided by its
    largest magnitude and multiplied back: the squares of entries near ``1e30`` (or ``1e-30``)
    would overflow (or vanish) in float32 although the norm itself is representable."""
    top = u.abs().amax(dim=-1, keepdim=True)
    top = torch.where(top > 0, top, torch.ones_like(top))
    return (u / top).norm(dim=-1) * top[..., 0]
