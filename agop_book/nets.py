r"""Small CNNs the book trains, and one seeded training loop.

:class:`SimpleCNN` is ``depth`` blocks ``conv -> activation [-> pool]`` and a fully connected
read-out. With ``pool=None`` and ``padding=0`` it is the architecture of the CNTK of
:mod:`agop.kernels` (VALID convs, stride 1, a Flatten read-out), so the network and its kernel
can be compared one to one.

The CNN baseline of Deep ConvRFM: a network with the kernel's architecture, trained with Adam.

Architecture (the CNTK's, see :mod:`agop.kernels`): ``depth`` VALID conv layers of ``width``
filters of size ``k x k``, no bias, ReLU, no pooling, and a fully connected read-out. It is a
thin scikit-learn layer over :class:`agop_book.nets.SimpleCNN` and :func:`agop_book.nets.train`: the
epoch kept is the one with the best *validation* accuracy (never the test set), and the
network's per-layer CNFMs :math:`W_l^\top W_l` and patch-AGOPs are exposed for comparison with the
feature matrices ``M_l`` of Deep ConvRFM."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator
from torch import nn
from tqdm.auto import tqdm

from agop._typing import ArrayLike, Device, IntPair, RandomState, Tensor
from agop.data import train_val_split
from agop.estimator import (
    _MAX_COUNT,
    ImageInputMixin,
    OutputClassifierMixin,
    _check_labels,
    _feature_names,
    check_fitted,
    random_seeds,
)
from agop.features import cnfm, feature_map, patch_agop
from agop.patches import output_size
from agop.runtime import default_device
from agop.validation import (
    ArgumentTypeError,
    _check_allocation,
    all_finite,
    as_tensor,
    check_bool,
    check_choice,
    check_dtype,
    check_finite,
    check_images,
    check_int,
    check_int_pair,
    check_real,
    check_seed,
)
from agop_book.views import layer_inputs

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
        if not isinstance(bias, (bool, np.bool_)):
            raise ArgumentTypeError(f"bias must be True or False, got {bias!r}")
        k = check_int(kernel_size, "kernel_size", minimum=1)
        if isinstance(padding, str):
            check_choice(padding, "padding", ("same", "valid"))
        else:
            check_int_pair(padding, "padding", minimum=0)
        sizes = [in_channels, *widths]
        n_weights = sum(a * b * k * k for a, b in zip(sizes, sizes[1:], strict=False))
        _check_allocation(n_weights, 4, "width", "the convolution weights")
        self.convs = nn.ModuleList()
        self.pool = pool
        self.activation = ACTIVATIONS[activation]()
        channels = in_channels
        for layer, w in enumerate(widths):
            self.convs.append(nn.Conv2d(channels, w, kernel_size, padding=padding, bias=bias))
            try:  # a kernel larger than the (pooled) images: the message below
                size = output_size(size, kernel_size, 1, padding)
            except ValueError:
                size = (0, 0)
            if pool is not None:
                size = (size[0] // 2, size[1] // 2)
            if min(size) < 1:
                raise ValueError(
                    f"image_size {image_size} is too small for {layer + 1} layers "
                    f"of kernel_size {kernel_size} with pool={pool!r}"
                )
            channels = w
        _check_allocation(
            channels * size[0] * size[1] * n_classes, 4, "image_size", "the read-out weights"
        )
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
    if not isinstance(Y, torch.Tensor):
        Y = np.asarray(Y)
        if Y.dtype.kind not in "biuf":
            raise ArgumentTypeError(
                f"{name} must hold integer class labels or float targets, got dtype {Y.dtype}"
            )
        Y = torch.as_tensor(Y)
    if Y.ndim == 0 or Y.shape[0] != n:
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
    _check_model(model)
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
    except RuntimeError as err:  # wrong channels or size for the network
        raise ValueError(f"X of shape {tuple(X.shape)} does not fit the model: {err}") from err
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
    same initial weights give the same weights. ``history["loss"]`` holds each epoch's training
    loss averaged over the images (each batch's mean weighted by its size).

    Examples:
        >>> import torch
        >>> from agop_book.ch05_deep_convrfm import bars_in_noise
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
    _check_model(model, trainable=True)
    lr = check_real(lr, "lr", minimum=0, strict_minimum=True)
    weight_decay = check_real(weight_decay, "weight_decay", minimum=0)
    momentum = check_real(momentum, "momentum", minimum=0)
    if momentum >= 1:
        raise ValueError(f"momentum must lie in [0, 1), got {momentum:g}")
    if isinstance(checkpoints, (str, bytes)) or not isinstance(checkpoints, Iterable):
        raise ArgumentTypeError(f"checkpoints must be a list of epochs, got {checkpoints!r}")
    checkpoints = [check_int(c, f"checkpoints[{i}]") for i, c in enumerate(checkpoints)]
    device = default_device(device)
    model.to(device)
    dtype = next(model.parameters()).dtype
    X_train = check_images(X_train, "X_train", dtype=dtype)
    n = X_train.shape[0]
    n_classes = predict(model, X_train[:1], device=device).shape[1]
    labels, onehot = _targets(Y_train, n, n_classes, "Y_train")
    has_val = X_val is not None
    if has_val != (Y_val is not None):
        given, missing = ("X_val", "Y_val") if has_val else ("Y_val", "X_val")
        raise ValueError(
            f"{missing} must be given with {given}: give both X_val and Y_val, or neither"
        )
    if has_val:
        X_val = check_images(X_val, "X_val", dtype=dtype)
        if tuple(X_val.shape[1:]) != tuple(X_train.shape[1:]):
            raise ValueError(
                f"X_val must hold images of the shape of X_train's, "
                f"{tuple(X_train.shape[1:])}, got {tuple(X_val.shape[1:])}"
            )
        val_labels, _ = _targets(Y_val, X_val.shape[0], n_classes, "Y_val")
    epochs = check_int(epochs, "epochs", minimum=0, maximum=_MAX_COUNT)
    progress = check_bool(progress, "progress")
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

    def evaluate(epoch: int) -> None:
        out = predict(model, X_train, device=device)
        if not all_finite(out):
            # finite weights can still be huge (Adam's steps with lr=1e300): outputs that
            # overflow would make every later prediction an argmax of NaN or inf
            raise FloatingPointError(
                f"training diverged at epoch {epoch}: the network's outputs on the training "
                f"images overflowed to NaN or inf (lr={lr:g}); lower lr or rescale X_train"
            )
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
        if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
            # the loss is taken before each step: the last step of an epoch can overflow the
            # weights (lr=1e308) with every loss finite, and NaN weights must not be kept
            raise FloatingPointError(
                f"training diverged at epoch {epoch}: the weights overflowed to NaN or inf "
                f"after the optimizer's step (lr={lr:g}); lower lr"
            )
        history["epoch"].append(epoch)
        history["loss"].append(total / n)
        evaluate(epoch)
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
    _check_model(model)
    if not isinstance(state, Mapping):
        raise ArgumentTypeError(
            f"state must be a state dict (a mapping), got {type(state).__name__}"
        )
    other = copy.deepcopy(model)
    try:
        other.load_state_dict(state)
    except RuntimeError as err:  # missing or unexpected keys, wrong shapes
        raise ValueError(f"state does not fit the model: {err}") from err
    return other.eval()


def _check_model(model: Any, *, trainable: bool = False) -> None:
    """Raise ``TypeError`` naming ``model`` unless it is a torch module with parameters;
    ``ValueError`` when they are on the ``meta`` device (shapes without values) or, with
    ``trainable``, when none of them requires a gradient (nothing to train)."""
    if not isinstance(model, nn.Module) or next(model.parameters(), None) is None:
        raise ArgumentTypeError(
            f"model must be a torch.nn.Module with parameters, got {type(model).__name__}"
        )
    if any(p.device.type == "meta" for p in model.parameters()):
        raise ValueError(
            "model has parameters on the 'meta' device (shapes without values); "
            "materialise it first (model.to_empty(device=...) and load its weights)"
        )
    if trainable and not any(p.requires_grad for p in model.parameters()):
        raise ValueError(
            "model has no parameter that requires a gradient (all frozen): nothing to train; "
            "unfreeze some with p.requires_grad_(True)"
        )


def _check_random_state(random_state: Any, name: str = "random_state") -> None:
    """Raise naming ``name`` unless it is ``None``, a numpy ``RandomState`` or an integer
    seed in ``[0, 2**32)`` (numpy's range), as scikit-learn's ``check_random_state`` takes."""
    if random_state is None or isinstance(random_state, np.random.RandomState):
        return
    check_int(random_state, name, minimum=0, maximum=2**32 - 1)


def validation_split(
    codes: np.ndarray, validation_fraction: float, random_state: RandomState
) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices of images with class codes ``codes``: the stratified split of
    :func:`agop.data.train_val_split`, seeded as :class:`agop.ConvRFM` seeds it from
    ``random_state`` (same ``random_state``, same held-out images; a test guards this), so
    the CNN and the kernel machines select on the same images.

    Examples:
        >>> import numpy as np
        >>> codes = np.array([0, 1] * 10)
        >>> train_idx, val_idx = validation_split(codes, 0.2, random_state=0)
        >>> len(train_idx), len(val_idx), np.bincount(codes[val_idx]).tolist()  # stratified
        (16, 4, [2, 2])
        >>> sorted(np.concatenate([train_idx, val_idx]).tolist()) == list(range(20))
        True
    """
    fraction = check_real(
        validation_fraction, "validation_fraction", minimum=0, strict_minimum=True
    )
    if fraction >= 1:
        raise ValueError(f"validation_fraction must lie in (0, 1), got {validation_fraction!r}")
    _check_random_state(random_state)
    codes = np.asarray(codes)
    if codes.ndim != 1 or codes.dtype.kind not in "iu" or (codes.size and codes.min() < 0):
        raise ValueError(
            "codes must be a 1-d array of non-negative integer class codes, got "
            f"{codes.dtype} of shape {codes.shape}"
        )
    if codes.size < 2:
        raise ValueError(f"codes must hold at least 2 images for a split, got {codes.size}")
    n = len(codes)
    split_seed = random_seeds(random_state, 2)[0]  # ConvRFM's split seed
    train_idx, _, val_idx, _ = train_val_split(
        torch.arange(n), torch.as_tensor(codes), validation_fraction, split_seed
    )
    if len(train_idx) < 2 or len(val_idx) < 1:
        raise ValueError(
            f"too few images for a validation split: n={n}, "
            f"validation_fraction={validation_fraction}"
        )
    return train_idx.numpy(), val_idx.numpy()


class CNNBaseline(ImageInputMixin, OutputClassifierMixin, BaseEstimator):
    r"""A CNN with the kernel's architecture, trained with Adam, selected on validation.

    Parameters
    ----------
    depth, width, patch_size : ``depth`` VALID conv layers of ``width`` filters ``k x k``
        (no bias, ReLU, no pooling) and a fully connected read-out.
    epochs, lr, batch_size : Adam's schedule (the authors: 25 epochs on the toy tasks).
    validation_fraction, random_state : the validation split (the same one
        :class:`agop.ConvRFM` draws with the same ``random_state``) and the seed of
        initialisation and batches (``val_fraction`` before 0.2, accepted with a
        ``FutureWarning``).
    device, dtype, progress : where and in which float type to train; a progress bar.
    image_shape : ``(c, H, W)`` of the images when ``X`` holds them as flat rows
        ``(n, c H W)`` (one entry may be ``-1``, inferred); ``None``: ``X`` must be images
        ``(n, c, H, W)`` (see :class:`agop.estimator.ImageInputMixin`).

    Attributes
    ----------
    model_ : the trained :class:`agop_book.nets.SimpleCNN` at its best validation epoch.
    result_ : what :func:`agop_book.nets.train` returned; ``history_`` its per-epoch history.
    cnfms_ : :math:`W_l^\top W_l` of every conv layer (``q_l x q_l``), in layer order;
    delta_cnfms_ : the same for ``W_l - W_l(0)``, the change from initialisation (what the
    authors drew in their Figure 4). ``best_epoch_``: the epoch kept.
    classes_ : the class labels; ``image_shape_`` the ``(c, H, W)`` of the training images and
    ``n_features_in_`` its size ``c H W``.

    Examples:
        >>> import torch
        >>> from agop_book.ch05_deep_convrfm import bars_in_noise
        >>> X, y = bars_in_noise(40, sigma=2.0, height=8, width=8, dtype=torch.float64)
        >>> cnn = CNNBaseline(depth=1, width=4, patch_size=3, epochs=2, random_state=0,
        ...                   device="cpu", dtype=torch.float64).fit(X, y)
        >>> W = cnn.model_.convs[0].weight.reshape(4, -1)
        >>> torch.allclose(cnn.cnfms_[0], W.T @ W)  # the CNFM of the trained layer
        True
        >>> cnn.predict(X[:3]).shape
        (3,)
    """

    def __init__(
        self,
        depth: int = 3,
        width: int = 64,
        patch_size: int = 3,
        epochs: int = 25,
        lr: float = 1e-3,
        batch_size: int = 64,
        validation_fraction: float = 0.2,
        random_state: RandomState = None,
        *,
        device: Device | None = None,
        dtype: torch.dtype | None = None,
        progress: bool = True,
        image_shape: tuple[int, int, int] | None = None,
    ) -> None:
        self.depth = depth
        self.width = width
        self.patch_size = patch_size
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.device = device
        self.dtype = dtype
        self.progress = progress
        self.image_shape = image_shape

    def _check_params(self) -> None:
        for name, least in (("depth", 1), ("width", 1), ("epochs", 0), ("batch_size", 1)):
            check_int(getattr(self, name), name, minimum=least, maximum=_MAX_COUNT)
        check_int(self.patch_size, "patch_size", minimum=1, odd=True)
        check_real(self.lr, "lr", minimum=0, strict_minimum=True)
        fraction = check_real(
            self.validation_fraction, "validation_fraction", minimum=0, strict_minimum=True
        )
        if fraction >= 1:
            raise ValueError(f"validation_fraction must lie in (0, 1), got {fraction:g}")
        check_dtype(self.dtype)
        check_bool(self.progress, "progress")
        self._check_image_shape()

    def fit(self, X: ArrayLike, y: ArrayLike) -> CNNBaseline:
        """Train on images ``X`` ``(n, c, H, W)`` with labels ``y``; keep the epoch with the best
        validation accuracy. Returns ``self``."""
        # Every check runs first and the network is trained into locals: the fitted
        # attributes are assigned together at the end, so a rejected or failed fit leaves a
        # fitted estimator as it was, and an unfitted one unfitted.
        self._check_params()
        rows_shape = self._rows_shape(reset=True)
        device = default_device(self.device)
        names = _feature_names(X)
        X, _ = self._as_images(X, reset=True)
        # dtype None: that of X when it is float32 or float64, else float32 (as ConvRFM's):
        # Adam in half precision diverges or underflows
        dtype = check_dtype(self.dtype)
        X = check_images(X, "X", dtype=dtype, device=device)
        if dtype is None and X.dtype not in (torch.float32, torch.float64):
            X = X.to(torch.float32)
        n, c, H, W = X.shape
        k = int(self.patch_size)
        need = int(self.depth) * (k - 1) + 1
        if min(H, W) < need:
            raise ValueError(
                f"X has spatial size {(H, W)}; depth={self.depth} VALID layers of "
                f"patch_size={k} need at least {need} x {need}"
            )
        depth, width = int(self.depth), int(self.width)
        # the network's weights, and a torch module per layer (kilobytes each, however small):
        # an absurd depth with 1 x 1 patches gets this error, not hours of building modules
        _check_allocation(
            (c + (depth - 1) * width) * width * k * k + depth * 2**10,
            X.element_size(),
            "depth, width",
            "the network's layers",
        )
        classes, codes, _ = _check_labels(y, n, type(self).__name__)
        train_idx, val_idx = validation_split(
            codes, float(self.validation_fraction), self.random_state
        )
        seed = random_seeds(self.random_state, 1, keep_int=True)[0]
        Y = torch.zeros(n, len(classes), dtype=X.dtype, device=device)
        Y[torch.arange(n, device=device), torch.as_tensor(codes, device=device)] = 1
        tr = torch.as_tensor(train_idx, device=device)
        va = torch.as_tensor(val_idx, device=device)
        model = SimpleCNN(
            c,
            len(classes),
            (H, W),
            depth=int(self.depth),
            width=int(self.width),
            kernel_size=k,
            pool=None,
            bias=False,
            seed=seed,
        ).to(device=device, dtype=X.dtype)
        result = train(
            model,
            X[tr],
            Y[tr],
            X[va],
            Y[va],
            epochs=int(self.epochs),
            lr=float(self.lr),
            optimizer="adam",
            batch_size=int(self.batch_size),
            checkpoints=(0,),
            seed=seed,
            progress=self.progress,
            device=device,
        )
        trained = cast(SimpleCNN, result.model.eval())
        initial = result.checkpoints[0]
        cnfms = [cnfm(conv).detach() for conv in trained.convs]
        delta_cnfms = [
            cnfm(w.detach() - initial[f"convs.{l}.weight"].to(w))
            for l, w in enumerate(cast(Tensor, conv.weight) for conv in trained.convs)
        ]
        # the fitted state, assigned only now that the network is trained
        self.classes_ = classes
        self.result_ = result
        self.model_: SimpleCNN = trained
        self.history_ = result.history
        self.best_epoch_ = result.best_epoch
        self.cnfms_ = cnfms
        self.delta_cnfms_ = delta_cnfms
        self.image_shape_ = (c, H, W)
        self.n_features_in_ = c * H * W
        self._rows_shape_ = None if rows_shape is None else (c, H, W)
        self._set_feature_names(names)
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "model_")

    def _images(self, X) -> torch.Tensor:
        check_fitted(self)
        p = next(self.model_.parameters())
        X, _ = self._as_images(X, reset=False)
        X = check_images(X, "X", dtype=p.dtype, device=p.device)
        if tuple(X.shape[1:]) != self.image_shape_:
            raise ValueError(
                f"X must have the training images' shape (c, H, W) = "
                f"{self.image_shape_}, got {tuple(X.shape[1:])}"
            )
        return X

    @torch.no_grad()
    def _outputs(self, X, chunk: int = 1024) -> torch.Tensor:
        X = self._images(X)
        return torch.cat([self.model_(X[i : i + chunk]) for i in range(0, X.shape[0], chunk)])

    def layer_inputs(self, X: ArrayLike) -> list[torch.Tensor]:
        """The input of every conv layer on images ``X``: ``X`` itself, then the activations
        after each ReLU (what each layer's CNFM acts on)."""
        X = self._images(X)
        return list(layer_inputs(self.model_, X, list(self.model_.convs)).values())

    def feature_maps(self, X: ArrayLike, subtract_init: bool = True) -> list[torch.Tensor]:
        r"""What each conv layer's CNFM makes of images ``X``: :math:`\|A_l^{1/2} x_l[j]\|` at every
        position of the layer's input ``x_l`` (``"same"`` padding), one ``(n, H_l, W_l)``
        tensor per layer, with :math:`A_l = (W_l - W_l(0))^\top (W_l - W_l(0))` (``subtract_init``,
        as the authors drew their Figure 4) or :math:`W_l^\top W_l`."""
        check_fitted(self)
        cnfms = self.delta_cnfms_ if subtract_init else self.cnfms_
        return [
            feature_map(A, x, self._kernel_size())
            for A, x in zip(cnfms, self.layer_inputs(X), strict=True)
        ]

    def _kernel_size(self) -> int:
        """The trained network's patch side (not the parameter, which may have changed)."""
        return int(cast(Tensor, self.model_.convs[0].weight).shape[-1])

    def agops(self, X: ArrayLike, **kwargs: Any) -> list[torch.Tensor]:
        """The patch-AGOP of every conv layer over images ``X`` (:func:`agop.features.patch_agop`),
        in layer order."""
        check_fitted(self)
        names = {id(m): name for name, m in self.model_.named_modules()}
        found = patch_agop(
            self.model_, self._images(X), layers=[names[id(c)] for c in self.model_.convs], **kwargs
        )
        return [found[names[id(c)]] for c in self.model_.convs]

    def transform_shapes(self) -> Sequence[tuple[int, int, int]]:
        """``(channels, H, W)`` of each conv layer's input."""
        check_fitted(self)
        _, H, W = self.image_shape_
        k = self._kernel_size()
        return [
            (int(cast(Tensor, conv.weight).shape[1]), H - l * (k - 1), W - l * (k - 1))
            for l, conv in enumerate(self.model_.convs)
        ]
