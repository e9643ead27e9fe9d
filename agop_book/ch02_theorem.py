r"""Chapter 02, Theorem 1 of the paper as code: one step of gradient descent makes the CNFM proportional to
the patch-AGOP.

The setting. A convolutional network whose first layer :math:`W` (:math:`k \times q`) is trained,

.. math:: f(x) = g(W x[1], \dots, W x[P]), \qquad g(z) = \mathrm{upper}(\phi(z)),

where :math:`x[j]` is the patch at position :math:`j` (:math:`q = c p^2`; stride 1, no padding,
so :math:`P = (H-p+1)(W-p+1)`), :math:`\phi` acts entrywise, and "upper" is a stack of bias-free
convolutions (each followed by :math:`\phi`) and a linear read-out to one output.
Squared loss :math:`L(W) = \frac{1}{2n} \sum_i (f(x_i) - y_i)^2`, full-batch gradient descent
with step :math:`\eta` from :math:`W_0 = 0`. Write :math:`v_j = \partial g / \partial z_j (0)`
(a :math:`k`-vector) and :math:`s_i = \sum_j x_i[j]`.

* If :math:`g(0) = 0` and :math:`v_j = v` for every :math:`j`, then
  :math:`W_1 = \eta\, v u^\top` with :math:`u = \frac1n \sum_i y_i s_i` (the :math:`1/n` is the
  loss's constant),
* and the patch-AGOP of :math:`f_1` at :math:`x = 0` is

  .. math:: \sum_j \nabla_{x[j]} f_1(0)\, \nabla_{x[j]} f_1(0)^\top = P \|v\|^2 W_1^\top W_1
            = P \eta^2 \|v\|^4 u u^\top.

In general :math:`\mathrm{AGOP}_0 = W^\top \bigl(\sum_j v_j v_j^\top\bigr) W` for *any* first
layer :math:`W`, because :math:`z_j = W 0 = 0` whatever :math:`W` is. :class:`TheoremNet` builds the network (tanh, constant upper layers with
circular padding satisfy the assumptions, with ``v`` given by :func:`closed_form_v`);
:func:`train_gd` trains it; :func:`check_theorem` trains it and measures with
:func:`proportionality` how far the CNFM is from proportional to the AGOP; :func:`relax` relaxes one assumption at a time.

Figures: :func:`plot_theorem_pair`, :func:`plot_relaxations`. Explorer (:func:`theorem_explorer`): ipywidgets core controls, as Colab supports; it redraws a figure with
the same function that draws the chapter's static twin, and opens on the view the static twin
shows."""

from __future__ import annotations

import copy
import inspect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from agop._typing import ArrayLike, IntPair
from agop.estimator import _MAX_COUNT
from agop.features import patch_agop
from agop.linalg import correlation
from agop.patches import extract_patches
from agop.runtime import default_device
from agop.validation import (
    ArgumentTypeError,
    _check_allocation,
    as_tensor,
    check_bool,
    check_choice,
    check_dtype,
    check_finite,
    check_images,
    check_int,
    check_int_pair,
    check_not_meta,
    check_real,
    check_seed,
    check_square,
)
from agop_book.plots import _check_figure, _check_list, _check_records, _check_subset

if TYPE_CHECKING:
    from matplotlib.figure import Figure


ACTIVATIONS = ("tanh", "relu")


class Activation(nn.Module):
    r""":math:`\phi`: ``"tanh"`` (:math:`\phi(0) = 0`, :math:`\phi'(0) = 1`) or ``"relu"``
    (:math:`\phi(0) = 0`; :math:`\phi'(0)` = ``relu_grad_at_zero``, a convention: 0 in torch,
    which is the default here).

    Examples:
        >>> import torch
        >>> phi = Activation("ReLU", relu_grad_at_zero=1.0)
        >>> t = torch.zeros(1, requires_grad=True)
        >>> phi(t).backward()
        >>> phi.grad_at_zero, t.grad.item()  # the convention, and autograd agrees
        (1.0, 1.0)
    """

    def __init__(self, name: str = "tanh", relu_grad_at_zero: float = 0.0) -> None:
        super().__init__()
        self.name = name = check_choice(name, "name", ACTIVATIONS)
        self.relu_grad_at_zero = check_real(relu_grad_at_zero, "relu_grad_at_zero")

    @property
    def grad_at_zero(self) -> float:
        """``phi'(0)``."""
        return 1.0 if self.name == "tanh" else self.relu_grad_at_zero

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        if self.name == "tanh":
            return torch.tanh(t)
        out = torch.relu(t)
        if self.relu_grad_at_zero:  # value unchanged; slope at exactly 0 becomes the convention
            out = out + self.relu_grad_at_zero * (t - t.detach()) * (t == 0).to(t.dtype)
        return out


class TheoremNet(nn.Module):
    r""":math:`f(x) = g(W x[1], \dots, W x[P])`: ``Conv2d(c, k, p, bias=False)`` -> :math:`\phi` ->
    [``Conv2d(w, w', r, padding r//2)`` -> :math:`\phi`]* -> flatten -> ``Linear(., 1)``.

    Parameters
    ----------
    in_channels, image_size: ``c`` and ``(H, W)`` (or ``H`` for square images).
    width: ``k``, the number of first-layer filters.
    kernel_size: ``p``, the first layer's patch size (stride 1, no padding).
    hidden: widths of the upper convolutions (empty: the read-out follows the first layer).
    hidden_kernel_size: ``r``, their patch size; ``upper_padding_mode`` their padding
        (``"circular"`` gives every position the same ``v``; ``"zeros"`` does not).
    activation, relu_grad_at_zero: ``phi`` (see :class:`Activation`).
    init_scale: the first layer starts at ``W_0 ~ init_scale * N(0, 1)`` entrywise (0: the theorem).
    readout_bias: a constant bias ``b`` of the read-out, so that ``g(0) = b`` (0: the theorem;
        with ``train="first"`` it stays put, and the first step is that of labels ``y - b``).
    upper_noise: upper layers start at ``c_l (1 + upper_noise * N(0, 1))`` entrywise, with the
        constants ``c_l = 1 / (w_{l-1} r^2)`` (an average over the window) and :math:`a = 1 / \sqrt{k_L P}`
        for the read-out; 0 gives constant matrices (the theorem).
    seed: seeds the random initialisations.

    Examples:
        The theorem's network: :math:`W_0 = 0`, so :math:`f(x) = g(0) = 0` for every image.

        >>> import torch
        >>> net = TheoremNet(1, 5, width=4, hidden=(4,), dtype=torch.float64)
        >>> net.positions  # a 3 x 3 first layer on 5 x 5 images: P = 3 * 3
        9
        >>> net(torch.rand(2, 1, 5, 5, dtype=torch.float64)).tolist()
        [[0.0], [0.0]]
    """

    def __init__(
        self,
        in_channels: int,
        image_size: IntPair,
        width: int = 8,
        kernel_size: int = 3,
        hidden: Sequence[int] = (),
        hidden_kernel_size: int = 3,
        activation: str = "tanh",
        relu_grad_at_zero: float = 0.0,
        init_scale: float = 0.0,
        upper_noise: float = 0.0,
        readout_bias: float = 0.0,
        upper_padding_mode: str = "circular",
        seed: int = 0,
        dtype: torch.dtype | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        super().__init__()
        H, Wd = check_int_pair(image_size, "image_size")
        in_channels, width, kernel_size, hidden_kernel_size = (
            check_int(val, name, minimum=1)
            for name, val in (
                ("in_channels", in_channels),
                ("width", width),
                ("kernel_size", kernel_size),
                ("hidden_kernel_size", hidden_kernel_size),
            )
        )
        if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Iterable):
            raise ArgumentTypeError(
                f"hidden must be a sequence of widths, one per hidden layer, got {hidden!r}"
            )
        hidden = [check_int(h, f"hidden[{i}]", minimum=1) for i, h in enumerate(hidden)]
        seed = check_seed(seed)
        if kernel_size > min(H, Wd):
            raise ValueError(f"kernel_size={kernel_size} exceeds image_size={(H, Wd)}")
        if hidden and hidden_kernel_size % 2 == 0:
            raise ValueError(f"hidden_kernel_size must be odd, got {hidden_kernel_size}")
        activation = check_choice(activation, "activation", ACTIVATIONS)
        relu_grad_at_zero = check_real(relu_grad_at_zero, "relu_grad_at_zero")
        init_scale = check_real(init_scale, "init_scale", minimum=0)
        upper_noise = check_real(upper_noise, "upper_noise", minimum=0)
        readout_bias = check_real(readout_bias, "readout_bias")
        upper_padding_mode = check_choice(
            upper_padding_mode, "upper_padding_mode", ("circular", "zeros")
        )
        device = default_device(device)
        dtype = check_dtype(dtype) or torch.get_default_dtype()
        positions = (H - kernel_size + 1) * (Wd - kernel_size + 1)
        widths = [width, *hidden]
        n_weights = in_channels * width * kernel_size**2 + widths[-1] * positions
        n_weights += hidden_kernel_size**2 * sum(
            a * b for a, b in zip(widths[:-1], widths[1:], strict=True)
        )
        _check_allocation(
            n_weights,
            torch.empty(0, dtype=dtype).element_size(),
            "in_channels, width, kernel_size, hidden, hidden_kernel_size",
            "the network's weights",
        )
        self.image_size = (H, Wd)
        self.out_size = (H - kernel_size + 1, Wd - kernel_size + 1)
        self.positions = self.out_size[0] * self.out_size[1]
        self.hidden_kernel_size = hidden_kernel_size
        self.conv = nn.Conv2d(in_channels, width, kernel_size, bias=False)
        self.phi = Activation(activation, relu_grad_at_zero)
        layers: list[nn.Module] = []
        for w_in, w_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [
                nn.Conv2d(
                    w_in,
                    w_out,
                    hidden_kernel_size,
                    padding=hidden_kernel_size // 2,
                    padding_mode=cast(Any, upper_padding_mode),
                    bias=False,
                ),
                Activation(activation, relu_grad_at_zero),
            ]
        layers += [nn.Flatten(), nn.Linear(widths[-1] * self.positions, 1, bias=readout_bias != 0)]
        self.upper = nn.Sequential(*layers)
        self.to(device=device, dtype=dtype)

        gen = torch.Generator().manual_seed(seed)

        def normal(shape):
            return torch.randn(shape, generator=gen, dtype=torch.float64).to(
                device=device, dtype=dtype
            )

        with torch.no_grad():
            self.conv.weight.copy_(init_scale * normal(self.conv.weight.shape))
            for module, const in zip(self.upper_linear_maps(), self.upper_constants(), strict=True):
                module.weight.copy_(const * (1 + upper_noise * normal(module.weight.shape)))
            if readout_bias:
                cast(nn.Linear, self.upper[-1]).bias.fill_(readout_bias)
        self.eval()  # no batch norm or dropout: eval mode only spares patch_agop's warning

    def upper_linear_maps(self) -> list[nn.Conv2d | nn.Linear]:
        """The upper convolutions and the read-out, bottom to top."""
        return [m for m in self.upper if isinstance(m, nn.Conv2d | nn.Linear)]

    def upper_constants(self) -> list[float]:
        r"""The constants ``c_l = 1/(w_{l-1} r^2)`` of the upper convolutions and :math:`a = 1 / \sqrt{k_L P}`."""
        maps = self.upper_linear_maps()
        r2 = self.hidden_kernel_size**2
        convs, readout = cast(list[nn.Conv2d], maps[:-1]), cast(nn.Linear, maps[-1])
        consts = [1.0 / (m.in_channels * r2) for m in convs]
        return [*consts, 1.0 / math.sqrt(readout.in_features)]

    def g(self, z: torch.Tensor) -> torch.Tensor:
        """``g(z) = upper(phi(z))`` for first-layer outputs ``z`` of shape ``(n, k, H', W')``."""
        return self.upper(self.phi(z))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``f(x)``, shape ``(n, 1)``."""
        return self.g(self.conv(x))


def _check_net(model: Any, name: str = "model") -> TheoremNet:
    """``model`` as a :class:`TheoremNet` whose weights hold values (not on ``meta``)."""
    if not isinstance(model, TheoremNet):
        raise ArgumentTypeError(f"{name} must be a TheoremNet, got {type(model).__name__}")
    check_not_meta(model.conv.weight, f"{name}.conv.weight")
    return model


def derivative_at_zero(model: TheoremNet) -> torch.Tensor:
    r""":math:`v_j = \partial g / \partial z_j (0)` for every position, shape ``(P, k)`` (positions
    in row-major order).

    Examples:
        Constant upper layers with circular padding: the same :math:`v` at every position,
        :func:`closed_form_v`.

        >>> import torch
        >>> net = TheoremNet(1, 5, width=4, hidden=(4,), dtype=torch.float64)
        >>> V = derivative_at_zero(net)
        >>> tuple(V.shape), torch.allclose(V, closed_form_v(net).expand(9, 4))
        ((9, 4), True)
    """
    _check_net(model)
    p = next(model.parameters())
    z = torch.zeros(
        1,
        model.conv.out_channels,
        *model.out_size,
        dtype=p.dtype,
        device=p.device,
        requires_grad=True,
    )
    (grad,) = torch.autograd.grad(model.g(z).sum(), z)
    return grad[0].flatten(1).T.detach()


def closed_form_v(model: TheoremNet) -> torch.Tensor:
    r""":math:`v` for constant upper layers with circular padding, shape ``(k,)``:

    .. math:: v = \phi'(0)^{L+1}\, a \prod_l (c_l w_l r^2)\, \mathbf{1}_k

    (each upper convolution :math:`l` of width :math:`w_l` sums its :math:`w_l r^2` outputs that
    see a position; the read-out weight is :math:`a`). Raises ``ValueError`` outside that case.

    Examples:
        One upper layer of width 4 (:math:`c_1 = 1 / (4 \cdot 3^2)`, so :math:`c_1 w_1 r^2 = 1`)
        and :math:`a = 1 / \sqrt{k_L P} = 1 / \sqrt{4 \cdot 9}`:

        >>> import torch
        >>> net = TheoremNet(1, 5, width=4, hidden=(4,), dtype=torch.float64)
        >>> [round(v, 12) for v in closed_form_v(net).tolist()]  # 1/6 each
        [0.166666666667, 0.166666666667, 0.166666666667, 0.166666666667]
    """
    _check_net(model)
    maps = model.upper_linear_maps()
    consts = model.upper_constants()
    for m, const in zip(maps, consts, strict=True):
        if not torch.equal(m.weight, torch.full_like(m.weight, const)):
            raise ValueError(
                "closed_form_v needs the constant upper layers of upper_noise=0 (untrained)"
            )
    if any(isinstance(m, nn.Conv2d) and m.padding_mode != "circular" for m in maps):
        raise ValueError("closed_form_v needs circular padding in the upper convolutions")
    r2 = model.hidden_kernel_size**2
    value = consts[-1] * model.phi.grad_at_zero ** len(maps)
    for m, const in zip(cast(list[nn.Conv2d], maps[:-1]), consts[:-1], strict=True):
        value *= const * m.out_channels * r2
    p = model.conv.weight
    return torch.full((model.conv.out_channels,), value, dtype=p.dtype, device=p.device)


def _patches(X: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Patches ``x_i[j]`` of shape ``(n, P, q)`` (stride 1, no padding)."""
    return extract_patches(X, kernel_size)


def label_weighted_patch_sum(
    X: ArrayLike, y: ArrayLike, kernel_size: int, chunk_size: int = 4096
) -> torch.Tensor:
    r""":math:`u = \frac1n \sum_i y_i \sum_j x_i[j]`, shape ``(q,)``: the direction of the first
    step.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> X = torch.rand(6, 1, 5, 5, generator=g, dtype=torch.float64)
        >>> y = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0, -1.0], dtype=torch.float64)
        >>> from agop.patches import extract_patches
        >>> u = label_weighted_patch_sum(X, y, kernel_size=3)
        >>> torch.allclose(u, (y[:, None] * extract_patches(X, 3).sum(1)).mean(0))
        True
    """
    X = check_images(X, "X")
    y = _check_targets(y, X)
    chunk_size = check_int(chunk_size, "chunk_size", minimum=1)
    u = torch.zeros(X.shape[1] * kernel_size**2, dtype=X.dtype, device=X.device)
    for Xc, yc in zip(X.split(chunk_size), y.split(chunk_size), strict=True):
        u += yc @ _patches(Xc, kernel_size).sum(1)
    return u / X.shape[0]


def closed_form_w1(
    X: ArrayLike, y: ArrayLike, v: torch.Tensor, eta: float, kernel_size: int, g0: float = 0.0
) -> torch.Tensor:
    r""":math:`W_1 = \eta\, v u^\top` with :math:`u = \frac1n \sum_i (y_i - g(0)) \sum_j x_i[j]`,
    shape ``(k, q)``.

    The first step of gradient descent on :math:`L = \frac{1}{2n} \sum_i (f(x_i) - y_i)^2` from
    :math:`W_0 = 0` when every position has the same :math:`v = \partial g / \partial z_j (0)`;
    ``g0`` :math:`= g(0)` (0 under the theorem's assumptions; a non-zero :math:`g(0)` only
    shifts the labels).

    Examples:
        The closed form is the step that gradient descent takes:

        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> X = torch.rand(6, 1, 5, 5, generator=g, dtype=torch.float64)
        >>> y = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0, -1.0], dtype=torch.float64)
        >>> net = TheoremNet(1, 5, width=4, hidden=(4,), dtype=torch.float64)
        >>> W1 = first_layer(train_gd(net, X, y, eta=0.1))
        >>> torch.allclose(W1, closed_form_w1(X, y, closed_form_v(net), eta=0.1, kernel_size=3))
        True
    """
    eta = check_real(eta, "eta")
    g0 = check_real(g0, "g0")
    X = check_images(X, "X")
    y = _check_targets(y, X)
    v = check_finite(as_tensor(v, "v", dtype=X.dtype, device=X.device), "v")
    if v.ndim != 1:
        raise ValueError(f"v must be a vector (k,), got shape {tuple(v.shape)}")
    return eta * torch.outer(v, label_weighted_patch_sum(X, y - g0, kernel_size))


def _check_targets(y, X: torch.Tensor) -> torch.Tensor:
    y = check_finite(as_tensor(y, "y", dtype=X.dtype, device=X.device), "y")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must have shape (n,) = ({X.shape[0]},), got {tuple(y.shape)}")
    return y


def squared_loss(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r""":math:`L = \frac{1}{2n} \sum_{i=1}^n (f(x_i) - y_i)^2`.

    Examples:
        The theorem's network starts at :math:`f = 0`, so :math:`L = \frac{1}{2n} \sum_i y_i^2`:

        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> X = torch.rand(6, 1, 5, 5, generator=g, dtype=torch.float64)
        >>> y = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0, -1.0], dtype=torch.float64)
        >>> net = TheoremNet(1, 5, width=4, hidden=(4,), dtype=torch.float64)
        >>> squared_loss(net, X, y).item()
        0.5
    """
    if not isinstance(model, nn.Module):
        raise ArgumentTypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    param = next(model.parameters(), None)
    X = check_images(X, "X", dtype=None if param is None else param.dtype)
    y = _check_targets(y, X)
    return 0.5 * (model(X)[:, 0] - y).pow(2).mean()


def _check_fits(model: TheoremNet, X: torch.Tensor) -> None:
    """``ValueError`` naming ``X`` when its images are not ``model``'s ``(c, H, W)``."""
    want = (model.conv.in_channels, *model.image_size)
    if tuple(X.shape[1:]) != want:
        raise ValueError(
            f"X must hold images of shape {want} (the model's in_channels and image_size), "
            f"got {tuple(X.shape[1:])}"
        )


def train_gd(
    model: TheoremNet,
    X: ArrayLike,
    y: ArrayLike,
    eta: float,
    steps: int = 1,
    batch_size: int | None = None,
    train: str = "first",
    seed: int = 0,
) -> TheoremNet:
    r"""A trained copy of ``model``: ``steps`` steps of (S)GD on
    :math:`L = \frac{1}{2n} \sum_i (f(x_i) - y_i)^2`.

    :math:`W_{t+1} = W_t - \eta \nabla L_B(W_t)`, with :math:`B` the whole data (``batch_size=None``) or
    consecutive minibatches of a fresh random order each epoch. ``train="first"`` moves only the
    first layer (the theorem's setting); ``"all"`` moves every layer.

    Examples:
        One step from :math:`W_0 = 0` lowers the loss; ``model`` itself is left as it was:

        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> X = torch.rand(6, 1, 5, 5, generator=g, dtype=torch.float64)
        >>> y = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0, -1.0], dtype=torch.float64)
        >>> net = TheoremNet(1, 5, width=4, hidden=(4,), dtype=torch.float64)
        >>> trained = train_gd(net, X, y, eta=0.1)
        >>> bool(squared_loss(trained, X, y) < squared_loss(net, X, y))
        True
        >>> float(first_layer(net).abs().max())
        0.0
    """
    _check_net(model)
    if not isinstance(model, TheoremNet):
        raise TypeError(f"model must be a TheoremNet, got {type(model).__name__}")
    X = check_images(X, "X")
    _check_fits(model, X)
    y = _check_targets(y, X)
    steps = check_int(steps, "steps", minimum=0, maximum=_MAX_COUNT)
    eta = check_real(eta, "eta", minimum=0, strict_minimum=True)
    train = check_choice(train, "train", ("first", "all"))
    n = X.shape[0]
    if batch_size is not None:
        batch_size = check_int(batch_size, "batch_size", minimum=1, maximum=n)
    seed = check_seed(seed)
    model = copy.deepcopy(model)
    p = next(model.parameters())
    X, y = X.to(device=p.device, dtype=p.dtype), y.to(device=p.device, dtype=p.dtype)
    params = [model.conv.weight] if train == "first" else list(model.parameters())
    gen = torch.Generator().manual_seed(seed)
    batches: list[torch.Tensor] = []
    for _ in range(steps):
        if batch_size is None:
            idx = None
        else:
            if not batches:
                order = torch.randperm(n, generator=gen).to(X.device)
                batches = list(order.split(batch_size))
            idx = batches.pop(0)
        Xb, yb = (X, y) if idx is None else (X[idx], y[idx])
        grads = torch.autograd.grad(squared_loss(model, Xb, yb), params)
        with torch.no_grad():
            for param, grad in zip(params, grads, strict=True):
                param -= eta * grad
    return model


def first_layer(model: TheoremNet) -> torch.Tensor:
    r""":math:`W`, the first layer as a :math:`k \times q` matrix.

    Examples:
        >>> import torch
        >>> net = TheoremNet(3, 8, width=4, kernel_size=3, init_scale=1.0)
        >>> first_layer(net).shape  # k = 4 filters, q = 3 * 3 * 3
        torch.Size([4, 27])
    """
    _check_net(model)
    return model.conv.weight.detach().reshape(model.conv.out_channels, -1)


def agop_at_zero(model: TheoremNet) -> torch.Tensor:
    r""":math:`\sum_j \nabla_{x[j]} f(0)\, \nabla_{x[j]} f(0)^\top` (:math:`q \times q`): the
    patch-AGOP at :math:`x = 0`.

    Examples:
        Theorem 1: after one step, :math:`P \|v\|^2 W_1^\top W_1` (here
        :math:`P \|v\|^2 = 9 \cdot 4 / 36 = 1`):

        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> X = torch.rand(6, 1, 5, 5, generator=g, dtype=torch.float64)
        >>> y = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0, -1.0], dtype=torch.float64)
        >>> net = TheoremNet(1, 5, width=4, hidden=(4,), dtype=torch.float64)
        >>> trained = train_gd(net, X, y, eta=0.1)
        >>> W1, v = first_layer(trained), closed_form_v(net)
        >>> torch.allclose(agop_at_zero(trained), 9 * v.norm() ** 2 * W1.T @ W1)
        True
    """
    _check_net(model)
    p = next(model.parameters())
    x0 = torch.zeros(1, model.conv.in_channels, *model.image_size, dtype=p.dtype, device=p.device)
    return patch_agop(model, x0, layers=["conv"], device=p.device)["conv"]


def agop_on_data(model: TheoremNet, X: ArrayLike) -> torch.Tensor:
    r"""The patch-AGOP of the first layer averaged over the images ``X`` (:math:`q \times q`).

    Examples:
        After one step from :math:`W_0 = 0` the first layer has rank one,
        :math:`W_1 = \eta\, v u^\top`, so the AGOP over any data, :math:`W_1^\top G W_1`, is a
        multiple of :math:`u u^\top` too:

        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> X = torch.rand(6, 1, 5, 5, generator=g, dtype=torch.float64)
        >>> y = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0, -1.0], dtype=torch.float64)
        >>> net = TheoremNet(1, 5, width=4, hidden=(4,), dtype=torch.float64)
        >>> trained = train_gd(net, X, y, eta=0.1)
        >>> W1 = first_layer(trained)
        >>> proportionality(agop_on_data(trained, X), W1.T @ W1)["residual"] < 1e-12
        True
    """
    _check_net(model)
    p = next(model.parameters())
    X = check_images(X, "X", dtype=p.dtype, device=p.device)
    return patch_agop(model, X, layers=["conv"], device=p.device)["conv"]


def proportionality(A: ArrayLike, B: ArrayLike) -> dict[str, float]:
    r"""How far ``A`` is from a multiple of ``B``.

    ``ratio`` :math:`r = \operatorname{tr} A / \operatorname{tr} B`; ``residual``
    :math:`= \|A - r B\|_F / \|A\|_F` (0 iff :math:`A = r B`); ``pearson`` and ``cosine`` from
    :func:`agop.linalg.correlation`.

    Examples:
        >>> import torch
        >>> B = torch.tensor([[2.0, 1.0], [1.0, 3.0]], dtype=torch.float64)
        >>> proportionality(3 * B, B)
        {'ratio': 3.0, 'residual': 0.0, 'pearson': 1.0, 'cosine': 1.0}
    """
    A = check_finite(as_tensor(A, "A"), "A").to(torch.float64)
    B = check_finite(as_tensor(B, "B"), "B").to(device=A.device, dtype=torch.float64)
    A, B = check_square(A, "A"), check_square(B, "B")
    if A.shape != B.shape:
        raise ValueError(
            f"A and B must have the same shape, got {tuple(A.shape)} and {tuple(B.shape)}"
        )
    trA, trB, nA = torch.trace(A), torch.trace(B), A.norm()
    if trB == 0 or nA == 0:
        zero = " and ".join(name for name, v in (("A", nA), ("B", trB)) if v == 0)
        raise ValueError(f"{zero}: proportionality is undefined for a zero matrix ({zero} is 0)")
    for M, label in ((A, "A"), (B, "B")):
        if M.numel() > 1 and bool((M == M.reshape(-1)[0]).all()):
            raise ValueError(
                f"{label} is constant (every entry {float(M.reshape(-1)[0]):g}): its pearson "
                "correlation is undefined"
            )
    ratio = trA / trB
    return {
        "ratio": float(ratio),
        "residual": float((A - ratio * B).norm() / nA),
        "pearson": correlation(A, B, "pearson"),
        "cosine": correlation(A, B, "cosine"),
    }


@dataclass
class TheoremCheck:
    """The matrices of one run and how proportional they are (see :func:`check_theorem`).

    Examples:
        >>> import torch
        >>> X = torch.rand(4, 1, 5, 5, generator=torch.Generator().manual_seed(0))
        >>> result = check_theorem(X, [1, -1, 1, -1], width=4, on_data=False)
        >>> tuple(result.W1.shape), tuple(result.cnfm.shape), result.agop_data
        ((4, 9), (9, 9), None)
    """

    W0: torch.Tensor  # first layer at initialisation, (k, q)
    W1: torch.Tensor  # first layer after training, (k, q)
    cnfm: torch.Tensor  # W1^T W1
    agop0: torch.Tensor  # patch-AGOP of f_1 at x = 0
    agop_data: torch.Tensor | None  # patch-AGOP of f_1 over the data (None if not asked)
    v: torch.Tensor  # dg/dz_j(0) of the trained network, (P, k)
    at_zero: dict[str, float] | None  # proportionality(agop0, cnfm); None when agop0 = 0
    on_data: dict[str, float] | None  # proportionality(agop_data, cnfm)
    settings: dict = field(default_factory=dict)


def check_theorem(
    X: ArrayLike,
    y: ArrayLike,
    eta: float = 0.02,
    steps: int = 1,
    batch_size: int | None = None,
    train: str = "first",
    on_data: bool = True,
    seed: int = 0,
    dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
    **net: Any,
) -> TheoremCheck:
    r"""Build :class:`TheoremNet` (``**net``: its keyword arguments), train it with
    :func:`train_gd`, and compare :math:`W_1^\top W_1` with the patch-AGOP at 0 (and over ``X``).

    Raises ``ValueError`` when the first layer is still 0 (e.g. ReLU with ``phi'(0) = 0`` from
    ``W_0 = 0``: nothing moves). ``at_zero`` is None when the AGOP at 0 is the zero matrix
    (ReLU with ``phi'(0) = 0``: every gradient at ``x = 0`` vanishes, whatever ``W``).

    Examples:
        Under the theorem's assumptions the CNFM and the AGOP at 0 are proportional to float64
        precision:

        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> X = torch.rand(6, 1, 5, 5, generator=g, dtype=torch.float64)
        >>> y = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0, -1.0], dtype=torch.float64)
        >>> result = check_theorem(X, y, width=4, hidden=(4,))
        >>> result.at_zero["residual"] < 1e-12, round(result.at_zero["pearson"], 12)
        (True, 1.0)
    """
    takes = set(inspect.signature(TheoremNet.__init__).parameters) - {"self"}
    for key in net:
        if key not in takes or key in ("in_channels", "image_size"):
            raise ArgumentTypeError(
                f"net: {key!r} is not a keyword of TheoremNet that check_theorem passes on "
                f"(in_channels and image_size come from X)"
            )
    on_data = check_bool(on_data, "on_data")
    dtype = dtype or (
        X.dtype  # X's own precision; a half-precision X is computed in the default dtype
        if isinstance(X, torch.Tensor) and X.dtype in (torch.float32, torch.float64)
        else torch.get_default_dtype()
    )
    device = default_device(device)
    X = check_images(X, "X", dtype=dtype, device=device)
    y = _check_targets(y, X)
    if not bool(y.abs().max() > 0):
        raise ValueError("y must hold a non-zero target: with y = 0 no gradient moves W")
    model = TheoremNet(X.shape[1], tuple(X.shape[2:]), seed=seed, dtype=dtype, device=device, **net)
    W0 = first_layer(model).clone()
    if isinstance(steps, int) and steps == 0 and not bool(W0.abs().max() > 0):
        raise ValueError(
            "steps must be at least 1 when W_0 = 0 (init_scale=0): untrained, the first layer "
            "and its CNFM are 0"
        )
    model = train_gd(model, X, y, eta, steps=steps, batch_size=batch_size, train=train, seed=seed)
    W1 = first_layer(model)
    if not bool(W1.abs().max() > 0):
        raise ValueError(
            "the first layer is still 0 after training: with W_0 = 0 it only moves "
            "if phi'(0) != 0 (torch's ReLU has relu'(0) = 0) and the labels are not 0"
        )
    cnfm = W1.T @ W1
    agop0 = agop_at_zero(model)
    agop_d = agop_on_data(model, X) if on_data else None
    if agop_d is not None and not bool(agop_d.abs().max() > 0):
        _raise_saturated(model, X, eta)
    zero = not bool(agop0.abs().max() > 0)
    settings = dict(eta=eta, steps=steps, batch_size=batch_size, train=train, seed=seed, **net)
    return TheoremCheck(
        W0=W0,
        W1=W1,
        cnfm=cnfm,
        agop0=agop0,
        agop_data=agop_d,
        v=derivative_at_zero(model),
        at_zero=None if zero else proportionality(agop0, cnfm),
        on_data=None if agop_d is None else proportionality(agop_d, cnfm),
        settings=settings,
    )


def _raise_saturated(model: TheoremNet, X: torch.Tensor, eta: float) -> None:
    """The patch-AGOP over ``X`` is zero although ``W_1 != 0``: say why (``phi`` is flat at
    the first layer's pre-activations) and what to change."""
    with torch.no_grad():
        reach = float(model.conv(X).abs().max())
    raise ValueError(
        f"the patch-AGOP of f_1 over X is zero although the first layer moved: its "
        f"pre-activations W_1 x[j] reach {reach:.3g} (max |X| = {float(X.abs().max()):.3g}, "
        f"eta = {eta:g}), where {model.phi.name}' is 0"
        + (
            f" to {X.dtype} precision (tanh saturates beyond about 9 in float32, 19 in float64)"
            if model.phi.name == "tanh"
            else " (every unit is off)"
        )
        + ". Scale X to [0, 1] or lower eta; on_data=False compares at x = 0 only"
    )


#: One assumption relaxed at a time: setting name -> (parameter, values, fixed keywords).
RELAXATIONS: dict[str, tuple[str, tuple, dict]] = {
    "initial scale": ("init_scale", (0.0, 1e-4, 1e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0), {}),
    "upper-layer noise": ("upper_noise", (0.0, 0.01, 0.1, 0.3, 1.0, 3.0, 10.0), {}),
    "steps (W_0 = 0)": ("steps", (1, 2, 5, 10, 20, 50), {}),
    "steps (W_0 small)": ("steps", (1, 2, 5, 10, 20, 50), {"init_scale": 1e-2}),
    "minibatch SGD steps": ("steps", (1, 2, 5, 10, 20, 50), {"batch_size": 32, "init_scale": 1e-2}),
    "ReLU (phi'(0)=1), initial scale": (
        "init_scale",
        (0.0, 1e-4, 1e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0),
        {"activation": "relu", "relu_grad_at_zero": 1.0},
    ),
    "ReLU (phi'(0)=0), initial scale": (
        "init_scale",
        (1e-4, 1e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0),
        {"activation": "relu"},
    ),
}


def relax(
    X: ArrayLike,
    y: ArrayLike,
    relaxations: Mapping[str, tuple[str, Iterable, dict]] | None = None,
    eta: float = 0.02,
    on_data: bool = True,
    progress: bool = False,
    **base: Any,
) -> list[dict]:
    """Relax one assumption at a time; one row per (setting, value).

    ``relaxations``: name -> ``(parameter, values, fixed keywords)`` (default
    :data:`RELAXATIONS`); each run is :func:`check_theorem` with ``base`` keywords, then the
    fixed ones, then ``parameter=value``. A row holds ``setting``, ``parameter``, ``value`` and
    the Pearson correlation and residual at 0 (``pearson0``, ``residual0``) and over the data
    (``pearson_data``, ``residual_data``), ``init_to_update = |W_0|_F / |W_1 - W_0|_F``
    (how large the start is against what training added), None where undefined (a zero AGOP), and ``moved``
    (False, with no numbers, when the first layer stayed at 0).

    Examples:
        A large random start breaks the proportionality:

        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> X = torch.rand(6, 1, 5, 5, generator=g, dtype=torch.float64)
        >>> y = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0, -1.0], dtype=torch.float64)
        >>> rows = relax(X, y, {"initial scale": ("init_scale", (0.0, 1.0), {})},
        ...              width=4, hidden=(4,))
        >>> [(row["value"], round(row["pearson0"], 2)) for row in rows]
        [(0.0, 1.0), (1.0, 0.24)]
    """
    relaxations = RELAXATIONS if relaxations is None else relaxations
    if not isinstance(relaxations, Mapping):
        raise TypeError(
            "relaxations must be a dict {name: (parameter, values, fixed keywords)}, got "
            f"{type(relaxations).__name__}"
        )
    if not relaxations:
        raise ValueError("relaxations must hold at least one setting, got an empty dict")
    takes = _THEOREM_KEYWORDS
    for key in base:
        if key not in takes:
            raise TypeError(f"{key}: not a keyword of check_theorem or TheoremNet")
    jobs = []
    for name, entry in relaxations.items():
        where = f"relaxations[{name!r}]"
        if not isinstance(entry, (tuple, list)) or len(entry) != 3:
            raise TypeError(
                f"{where} must be a triple (parameter, values, fixed keywords), got {entry!r}"
            )
        param, values, fixed = entry
        if not isinstance(param, str) or param not in takes:
            raise ValueError(f"{where}: {param!r} is not a keyword of check_theorem or TheoremNet")
        if not isinstance(fixed, Mapping):
            raise TypeError(f"{where}: the fixed keywords must be a dict, got {fixed!r}")
        for key in fixed:
            if key not in takes:
                raise ValueError(
                    f"{where}: {key!r} is not a keyword of check_theorem or TheoremNet"
                )
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            raise TypeError(f"{where}: the values must be a sequence, got {values!r}")
        values = list(values)
        if not values:
            raise ValueError(f"{where}: the values are empty")
        jobs += [(name, param, value, fixed) for value in values]
    rows = []
    for name, param, value, fixed in tqdm(jobs, disable=not progress, desc="relax"):
        kw = {"eta": eta, "on_data": on_data, **base, **fixed, param: value}
        row = {"setting": name, "parameter": param, "value": value}
        try:
            res = check_theorem(X, y, **kw)
        except ValueError as err:
            if "still 0" not in str(err):
                raise
            rows.append({**row, "moved": False})
            continue
        row["moved"] = True
        row["init_to_update"] = float(res.W0.norm() / (res.W1 - res.W0).norm())
        for suffix, prop in (("0", res.at_zero), ("_data", res.on_data)):
            row["pearson" + suffix] = None if prop is None else prop["pearson"]
            row["residual" + suffix] = None if prop is None else prop["residual"]
        rows.append(row)
    return rows


#: the keywords check_theorem takes (its own and TheoremNet's), for relax to check at once
_THEOREM_KEYWORDS = frozenset(
    (set(inspect.signature(check_theorem).parameters) - {"X", "y", "net"})
    | (
        set(inspect.signature(TheoremNet.__init__).parameters)
        - {"self", "in_channels", "image_size"}
    )
)


def plot_theorem_pair(
    check: TheoremCheck, kernel_size: int | None = None, fig: Figure | None = None
) -> Figure:
    r"""Theorem 1, one run: :math:`W^\top W` beside the patch-AGOP at :math:`x = 0` (and over the data),
    each scaled to unit largest entry, with their Pearson correlation and residual in the titles.

    ``check``: a :class:`agop_book.ch02_theorem.TheoremCheck`. ``kernel_size`` (with one input channel)
    adds the top eigenvector of :math:`W^\top W` as a :math:`p \times p` filter. Returns the figure.

    Examples:
        >>> import matplotlib.pyplot as plt
        >>> import torch
        >>> from agop_book.ch02_theorem import check_theorem
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

    if not isinstance(check, TheoremCheck):
        raise ArgumentTypeError(
            f"check must be a TheoremCheck (check_theorem), got {type(check).__name__}"
        )
    q = check.cnfm.shape[0]
    if kernel_size is not None:
        kernel_size = check_int(kernel_size, "kernel_size", minimum=1)
        if q % kernel_size**2:
            raise ValueError(
                f"kernel_size must fit the check's W^T W of side {q} (channels * kernel_size**2), "
                f"got {kernel_size}"
            )
    _check_figure(fig)
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

    ``rows``: the output of :func:`agop_book.ch02_theorem.relax`. ``settings``: names to draw (default:
    all, in order). Points where a quantity is undefined (e.g. ReLU with ``phi'(0) = 0`` at
    ``x = 0``) are left out. Returns the figure.

    Examples:
        >>> import matplotlib.pyplot as plt
        >>> import torch
        >>> from agop_book.ch02_theorem import relax
        >>> X = torch.rand(6, 1, 5, 5, generator=torch.Generator().manual_seed(0),
        ...                dtype=torch.float64)
        >>> rows = relax(X, [1, -1, 1, -1, 1, -1],
        ...              {"initial scale": ("init_scale", (0.0, 0.1, 1.0), {})}, width=4)
        >>> fig = plot_relaxations(rows)
        >>> len(fig.axes)  # correlation and residual, one column
        2
        >>> plt.close(fig)
    """

    numbers = ("pearson0", "residual0", "pearson_data", "residual_data")
    rows = _check_records(rows, "rows", ("setting", "parameter", "value"), numbers)
    known = list(dict.fromkeys(r["setting"] for r in rows))
    if settings is not None:
        settings = _check_list(settings, "settings", "setting names")
        _check_subset(settings, known, "settings", "the settings of rows")
    _check_figure(fig)
    names = known if settings is None else list(settings)
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


def theorem_explorer(X: ArrayLike, y: ArrayLike, kernel_size: int = 5, **net: Any) -> Any:
    r"""Theorem 1 interactively: step size, initial scale, upper-layer noise, number of steps and
    activation -> :math:`W^\top W`, the patch-AGOP at 0 and over the data, and their correlation, drawn
    by :func:`plot_theorem_pair` (the chapter's static figure). ``net``: further
    keyword arguments of :class:`agop_book.ch02_theorem.TheoremNet`. Returns the widget.

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
    unknown = sorted(set(net) - _THEOREM_KEYWORDS)
    if unknown:
        raise ArgumentTypeError(
            f"net: {unknown[0]!r} is not a keyword of check_theorem or TheoremNet"
        )
    chosen = sorted(set(net) & (set(controls) | {"activation", "relu_grad_at_zero"}))
    if chosen:
        raise ValueError(f"net: {chosen[0]!r} is set by the explorer's controls; leave it out")
    # the opening view, computed here so that bad X, y, kernel_size or net raise at once
    first = tuple(c.value for c in controls.values())
    checks[first] = check_theorem(
        X,
        y,
        eta=first[0],
        init_scale=first[1],
        upper_noise=first[2],
        steps=first[3],
        kernel_size=kernel_size,
        **activations[first[4]],
        **net,
    )

    def draw(eta, init_scale, upper_noise, steps, activation):
        with out:
            out.clear_output(wait=True)
            key = (eta, init_scale, upper_noise, steps, activation)
            if key not in checks:
                try:
                    checks[key] = check_theorem(
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
            plot_theorem_pair(checks[key], kernel_size=kernel_size, fig=fig)
            from IPython.display import display

            display(fig)

    w.interactive_output(draw, controls)
    return w.VBox([w.HBox(list(controls.values())[:3]), w.HBox(list(controls.values())[3:]), out])
