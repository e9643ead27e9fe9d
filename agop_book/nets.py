"""Small CNNs the book trains, and one seeded training loop.

:class:`SimpleCNN` is ``depth`` blocks ``conv -> activation [-> pool]`` and a fully connected
read-out. With ``pool=None`` and ``padding=0`` it is the architecture of the CNTK of
:mod:`agop.kernels` (VALID convs, stride 1, a Flatten read-out), so the network and its kernel
can be compared one to one.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from agop._typing import ArrayLike, Device, IntPair
from agop.patches import output_size
from agop.runtime import default_device
from agop.validation import (
    ArgumentTypeError,
    as_tensor,
    check_choice,
    check_finite,
    check_images,
    check_int,
    check_int_pair,
    check_real,
    check_seed,
)

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "identity": nn.Identity}
INITS = ("default", "kaiming", "normal")


class SimpleCNN(nn.Module):
    """``depth`` conv layers (``width`` filters of ``kernel_size``) and a linear read-out.

    ``pool``: ``None`` (the kernel's architecture), ``"max"`` or ``"avg"`` (2 x 2, stride 2,
    after each conv). ``init``: ``"default"`` (PyTorch's), ``"kaiming"`` (He normal, fan-in) or
    ``"normal"`` (``N(0, init_std^2)``; ``init_std`` a float or one value per layer, the
    read-out last, as the paper's small initialisations). Biases (off by default) start at zero
    unless ``init="default"``. ``seed`` makes the initialisation reproducible without touching
    the global generator. The conv layers are ``self.convs`` (names ``convs.0``, ``convs.1``...).

    Examples:
        >>> import torch
        >>> net = SimpleCNN(1, 2, image_size=8, depth=2, width=4, kernel_size=3, seed=0)
        >>> [name for name, _ in net.named_parameters()]  # VALID convs 8 -> 6 -> 4, no bias
        ['convs.0.weight', 'convs.1.weight', 'readout.weight']
        >>> net.readout.in_features  # 4 channels of 4 x 4
        64
        >>> again = SimpleCNN(1, 2, image_size=8, depth=2, width=4, kernel_size=3, seed=0)
        >>> torch.equal(net.convs[0].weight, again.convs[0].weight)
        True
    """

    def __init__(
        self,
        in_channels: int,
        n_classes: int,
        image_size: IntPair,
        depth: int = 2,
        width: int | Sequence[int] = 32,
        kernel_size: int = 3,
        pool: str | None = None,
        bias: bool = False,
        activation: str = "relu",
        init: str = "default",
        init_std: float | Sequence[float] | None = None,
        padding: int | str = 0,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        depth = check_int(depth, "depth", minimum=1)
        in_channels = check_int(in_channels, "in_channels", minimum=1)
        n_classes = check_int(n_classes, "n_classes", minimum=1)
        if isinstance(width, (str, bytes)) or not isinstance(width, (int, np.integer, Sequence)):
            raise ArgumentTypeError(
                f"width must be a positive int or {depth} positive ints, got {width!r}"
            )
        widths = [width] * depth if not isinstance(width, Sequence) else list(width)
        if len(widths) != depth:
            raise ValueError(
                f"width must be a positive int or {depth} positive ints, got {width!r}"
            )
        widths = [check_int(w, f"width[{i}]", minimum=1) for i, w in enumerate(widths)]
        seed = None if seed is None else check_seed(seed)
        pool = check_choice(pool, "pool", (None, "max", "avg"))
        activation = check_choice(activation, "activation", list(ACTIVATIONS))
        init = check_choice(init, "init", INITS)
        size = check_int_pair(image_size, "image_size")
        self.convs = nn.ModuleList()
        self.pool = pool
        self.activation = ACTIVATIONS[activation]()
        channels = in_channels
        for layer, w in enumerate(widths):
            self.convs.append(nn.Conv2d(channels, w, kernel_size, padding=padding, bias=bias))
            size = output_size(size, kernel_size, 1, padding)
            if pool is not None:
                size = (size[0] // 2, size[1] // 2)
            if min(size) < 1:
                raise ValueError(
                    f"image_size {image_size} is too small for {layer + 1} layers "
                    f"of kernel_size {kernel_size} with pool={pool!r}"
                )
            channels = w
        self.readout = nn.Linear(channels * size[0] * size[1], n_classes, bias=bias)
        self.feature_size = size
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
                for module in [*self.convs, self.readout]:
                    module.reset_parameters()
            self._initialise(init, init_std)

    def _initialise(self, init: str, init_std) -> None:
        layers = [*self.convs, self.readout]
        if init == "default":
            return
        if init == "normal":
            if init_std is None:
                raise ValueError("init='normal' needs init_std (a float or one per layer)")
            one = not isinstance(init_std, (Sequence, np.ndarray, torch.Tensor))
            stds = [init_std] * len(layers) if one else list(init_std)
            if len(stds) != len(layers):
                raise ValueError(
                    f"init_std must be a float or {len(layers)} floats "
                    f"(convs then read-out), got {init_std!r}"
                )
            stds = [
                check_real(s, "init_std" if one else f"init_std[{i}]", minimum=0)
                for i, s in enumerate(stds)
            ]
        for i, layer in enumerate(layers):
            if init == "kaiming":
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            else:
                nn.init.normal_(layer.weight, std=float(stds[i]))
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = self.activation(conv(x))
            if self.pool == "max":
                x = F.max_pool2d(x, 2)
            elif self.pool == "avg":
                x = F.avg_pool2d(x, 2)
        return self.readout(x.flatten(1))


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` returns; ``model`` holds the selected weights (see :func:`train`'s
    example)."""

    model: nn.Module
    history: dict[str, list[float]]
    checkpoints: dict[int, dict[str, torch.Tensor]]
    best_epoch: int
    best_val_accuracy: float | None = None


def _targets(Y, n: int, n_classes: int, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(integer labels, one-hot float targets) from labels ``(n,)`` or targets ``(n, C)``."""
    Y = torch.as_tensor(Y) if not isinstance(Y, torch.Tensor) else Y
    if Y.shape[0] != n:
        raise ValueError(f"{name} must have one row per image ({n}), got shape {tuple(Y.shape)}")
    if Y.ndim == 1:
        if Y.is_floating_point() or int(Y.min()) < 0 or int(Y.max()) >= n_classes:
            raise ValueError(
                f"{name}: labels must be integers in [0, {n_classes}), got "
                f"{Y.dtype} with range [{Y.min()}, {Y.max()}]"
            )
        labels = Y.long()
        return labels, F.one_hot(labels, n_classes).float()
    if Y.ndim == 2 and Y.shape[1] == n_classes:
        Y = check_finite(as_tensor(Y, name), name)
        return Y.argmax(1), Y
    raise ValueError(
        f"{name} must be labels (n,) or targets (n, {n_classes}), got {tuple(Y.shape)}"
    )


@torch.no_grad()
def predict(
    model: nn.Module, X: ArrayLike, batch_size: int = 512, device: Device | None = None
) -> torch.Tensor:
    """The model's outputs on ``X`` in eval mode, ``batch_size`` images at a time (on the CPU).

    Examples:
        >>> import torch
        >>> net = SimpleCNN(1, 3, image_size=8, depth=1, width=4, seed=0).double()
        >>> X = torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(0),
        ...                dtype=torch.float64)
        >>> torch.allclose(predict(net, X, batch_size=2, device="cpu"), net(X))
        True
    """
    device = default_device(device)
    dtype = next(model.parameters()).dtype
    X = check_images(X, "X", dtype=dtype)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    was_training = model.training
    model.eval()
    try:
        return torch.cat(
            [
                model(X[i : i + batch_size].to(device)).cpu()
                for i in range(0, X.shape[0], batch_size)
            ]
        )
    finally:
        model.train(was_training)


def accuracy(model: nn.Module, X: ArrayLike, Y: ArrayLike, device: Device | None = None) -> float:
    """Fraction of images whose arg-max output is the label (``Y``: labels or one-hot).

    Examples:
        >>> import torch
        >>> net = SimpleCNN(1, 3, image_size=8, depth=1, width=4, seed=0).double()
        >>> X = torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(0),
        ...                dtype=torch.float64)
        >>> labels = net(X).argmax(1)
        >>> accuracy(net, X, labels, device="cpu"), accuracy(net, X, (labels + 1) % 3, device="cpu")
        (1.0, 0.0)
    """
    out = predict(model, X, device=device)
    labels, _ = _targets(Y, out.shape[0], out.shape[1], "Y")
    return float((out.argmax(1) == labels).float().mean())


def train(
    model: nn.Module,
    X_train: ArrayLike,
    Y_train: ArrayLike,
    X_val: ArrayLike | None = None,
    Y_val: ArrayLike | None = None,
    epochs: int = 10,
    lr: float = 1e-3,
    optimizer: str = "adam",
    batch_size: int = 64,
    checkpoints: Sequence[int] = (),
    seed: int = 0,
    progress: bool = True,
    loss: str = "ce",
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    device: Device | None = None,
) -> TrainResult:
    """Train ``model`` by mini-batch ``optimizer`` (``"adam"`` or ``"sgd"``) on ``loss``
    (``"ce"``: cross-entropy, ``"mse"``: squared error to one-hot targets).

    ``checkpoints``: epochs (``0`` = before training) whose weights are kept, as CPU
    state dicts. With a validation split, the weights of the epoch with the best validation
    accuracy are loaded into ``model`` at the end (never selected on test data); without one,
    the last epoch's. The shuffling is drawn from ``seed``, so on the CPU two runs from the
    same initial weights give the same weights.

    Examples:
        >>> import torch
        >>> from agop.data import bars_in_noise
        >>> X, y = bars_in_noise(60, sigma=2.0, height=8, width=8, dtype=torch.float64,
        ...                      device="cpu")
        >>> net = SimpleCNN(1, 2, image_size=8, depth=1, width=4, seed=0).double()
        >>> start = net.convs[0].weight.detach().clone()
        >>> result = train(net, X[:48], y[:48], X[48:], y[48:], epochs=3, checkpoints=[0],
        ...                progress=False, device="cpu")
        >>> result.history["epoch"], result.best_epoch in (1, 2, 3)
        ([1, 2, 3], True)
        >>> torch.equal(result.checkpoints[0]["convs.0.weight"], start)  # epoch 0: the start
        True
    """
    device = default_device(device)
    model.to(device)
    dtype = next(model.parameters()).dtype
    X_train = check_images(X_train, "X_train", dtype=dtype)
    n = X_train.shape[0]
    n_classes = predict(model, X_train[:1], device=device).shape[1]
    labels, onehot = _targets(Y_train, n, n_classes, "Y_train")
    has_val = X_val is not None
    if has_val != (Y_val is not None):
        raise ValueError("give both X_val and Y_val, or neither")
    if has_val:
        X_val = check_images(X_val, "X_val", dtype=dtype)
        val_labels, _ = _targets(Y_val, X_val.shape[0], n_classes, "Y_val")
    epochs = check_int(epochs, "epochs", minimum=0)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    seed = check_seed(seed)
    bad = [c for c in checkpoints if not 0 <= c <= epochs]
    if bad:
        raise ValueError(f"checkpoints must be epochs in [0, {epochs}], got {bad}")
    loss = check_choice(loss, "loss", ("ce", "mse"))
    optimizer = check_choice(optimizer, "optimizer", ("adam", "sgd"))
    opt: torch.optim.Optimizer
    if optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    elif optimizer == "sgd":
        opt = torch.optim.SGD(
            model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay
        )
    else:
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")

    def snapshot() -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}

    def evaluate() -> None:
        out = predict(model, X_train, device=device)
        history["train_accuracy"].append(float((out.argmax(1) == labels).float().mean()))
        if has_val:
            assert X_val is not None
            history["val_accuracy"].append(
                float((predict(model, X_val, device=device).argmax(1) == val_labels).float().mean())
            )

    history: dict[str, list[float]] = {"epoch": [], "loss": [], "train_accuracy": []}
    if has_val:
        history["val_accuracy"] = []
    saved = {0: snapshot()} if 0 in checkpoints else {}
    generator = torch.Generator().manual_seed(seed)
    best_epoch, best_acc, best_state = epochs, None, None

    bar = tqdm(range(1, epochs + 1), desc="training", disable=not progress)
    for epoch in bar:
        model.train()
        order = torch.randperm(n, generator=generator)
        total = 0.0
        for i in range(0, n, batch_size):
            idx = order[i : i + batch_size]
            out = model(X_train[idx].to(device))
            if loss == "ce":
                value = F.cross_entropy(out, labels[idx].to(device))
            else:
                value = F.mse_loss(out, onehot[idx].to(device=device, dtype=out.dtype))
            opt.zero_grad(set_to_none=True)
            value.backward()
            opt.step()
            total += float(value.detach()) * len(idx)
        if not torch.isfinite(torch.tensor(total)):
            raise FloatingPointError(f"training diverged at epoch {epoch} (loss {total}); lower lr")
        history["epoch"].append(epoch)
        history["loss"].append(total / n)
        evaluate()
        if has_val and (best_acc is None or history["val_accuracy"][-1] > best_acc):
            best_epoch, best_acc, best_state = epoch, history["val_accuracy"][-1], snapshot()
        if epoch in checkpoints:
            saved[epoch] = snapshot()
        postfix = {"loss": f"{total / n:.3g}", "train": f"{history['train_accuracy'][-1]:.3f}"}
        if has_val:
            postfix["val"] = f"{history['val_accuracy'][-1]:.3f}"
        bar.set_postfix(postfix)
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return TrainResult(
        model=model,
        history=history,
        checkpoints=saved,
        best_epoch=best_epoch,
        best_val_accuracy=best_acc,
    )


def load_checkpoint(model: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module:
    """A copy of ``model`` with the weights of a checkpoint from :class:`TrainResult`.

    Examples:
        >>> import torch
        >>> net = SimpleCNN(1, 2, image_size=8, depth=1, width=4, seed=0)
        >>> state = {k: torch.zeros_like(v) for k, v in net.state_dict().items()}
        >>> zero = load_checkpoint(net, state)
        >>> zero.convs[0].weight.abs().max().item(), net.convs[0].weight.abs().max().item() > 0
        (0.0, True)
    """
    other = copy.deepcopy(model)
    other.load_state_dict(state)
    return other.eval()
