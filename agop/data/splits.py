"""Labels as one-hot targets, and a seeded (stratified) validation split."""

from __future__ import annotations

import numpy as np
import torch

from agop._typing import ArrayLike
from agop.validation import (
    ArgumentTypeError,
    _check_allocation,
    all_finite,
    as_tensor,
    check_bool,
    check_dtype,
    check_finite,
    check_int,
    check_not_meta,
    check_real,
    check_seed,
    scipy_sparse,
)


def _labels(y, name: str = "y") -> torch.Tensor:
    """``y`` as a 1-d int64 tensor of class indices; raise ``ValueError`` otherwise."""
    y = _numeric(y, name)
    if y.is_complex():
        raise ArgumentTypeError(f"{name} must hold integer class indices, got complex values")
    if y.is_floating_point() and not all_finite(y):
        raise ValueError(f"{name} must hold integer class indices, got NaN or infinity")
    if y.ndim != 1:
        raise ValueError(
            f"{name} must be a 1-d vector of class indices, got shape {tuple(y.shape)}"
        )
    if y.is_floating_point():
        if not bool((y == y.round()).all()):
            raise ValueError(f"{name} must hold integer class indices, got non-integer values")
    return y.long()


#: dtypes a one-hot matrix may take: any real floating or integer dtype
_ONE_HOT_DTYPES = (
    torch.float16,
    torch.bfloat16,
    torch.float32,
    torch.float64,
    torch.uint8,
    torch.int8,
    torch.int16,
    torch.int32,
    torch.int64,
)


def _numeric(a, name: str) -> torch.Tensor:
    """``a`` (labels or targets) as a tensor of numbers with data, else an error naming it."""
    if isinstance(a, torch.Tensor):
        return check_not_meta(a, name)
    if scipy_sparse(a):
        raise ArgumentTypeError(
            f"{name} must be a dense tensor or array, got a scipy sparse {type(a).__name__}"
        )
    try:
        arr = np.asarray(a)
    except (TypeError, ValueError) as err:
        raise ArgumentTypeError(f"{name} must be an array of numbers, got {a!r}") from err
    if arr.dtype.kind not in "biufc":
        raise ArgumentTypeError(
            f"{name} must hold numbers (class indices 0..C-1), got an array of dtype "
            f"{arr.dtype}; encode string labels first (np.unique(y, return_inverse=True))"
        )
    return torch.from_numpy(np.ascontiguousarray(arr))  # a reversed view has negative strides


def one_hot(
    y: ArrayLike, n_classes: int | None = None, *, dtype: torch.dtype | None = None
) -> torch.Tensor:
    r"""One-hot targets :math:`Y_{ic} = 1` if :math:`y_i = c`, else 0, shape ``(n, n_classes)``.

    ``y`` holds integer labels in :math:`\{0, \dots, C - 1\}`, :math:`C` = ``n_classes``
    (default :math:`\max_i y_i + 1`). The result is floating (``dtype``, default torch's default
    dtype) on ``y``'s device, ready for kernel regression
    :math:`\alpha = (K + \lambda I)^{-1} Y`.

    Examples:
        >>> one_hot([2, 0, 1], dtype=torch.float64).tolist()
        [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
        >>> one_hot([0, 1], n_classes=3).shape
        torch.Size([2, 3])
    """
    y = _labels(y)
    given = n_classes is not None
    if y.numel() and int(y.min()) < 0:
        raise ValueError(f"y must hold labels >= 0, got minimum {int(y.min())}")
    top = int(y.max()) + 1 if y.numel() else 0
    if n_classes is None:
        if not y.numel():
            raise ValueError(
                "y is empty: the number of classes cannot be read from it; pass n_classes"
            )
        n_classes = top
    n_classes = check_int(n_classes, "n_classes", minimum=1)
    if top > n_classes:
        raise ValueError(f"y holds label {top - 1}, out of range for n_classes={n_classes}")
    dtype = check_dtype(dtype, "dtype", allowed=_ONE_HOT_DTYPES)
    # a label such as 10**12 (or 2**63 - 1) asks for terabytes: refused by name up front
    _check_allocation(
        y.shape[0] * n_classes,
        torch.empty(0, dtype=dtype or torch.get_default_dtype()).element_size(),
        "n_classes" if given else "y",
        f"one_hot of {y.shape[0]} labels into n_classes={n_classes} classes "
        f"(largest label {top - 1})",
    )
    try:
        Y = torch.zeros(
            y.shape[0], n_classes, dtype=dtype or torch.get_default_dtype(), device=y.device
        )
    except (RuntimeError, MemoryError) as err:
        raise ValueError(
            f"one_hot of {y.shape[0]} labels into n_classes={n_classes} classes does not fit "
            f"in memory: y must hold class indices 0..C-1 (its largest is {top - 1})"
        ) from err
    Y[torch.arange(y.shape[0], device=y.device), y] = 1
    return Y


def train_val_split(
    X: ArrayLike,
    Y: ArrayLike,
    validation_fraction: float = 0.2,
    seed: int = 0,
    *,
    stratify: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split ``(X, Y)`` into ``(X_train, Y_train, X_val, Y_val)``, seeded.

    ``Y`` is a vector of class labels ``(n,)`` or a target matrix ``(n, C)`` (one-hot: its arg-max
    is the class). With ``stratify=True`` (used when ``Y`` holds classes) every class puts
    ``round(validation_fraction * n_c)`` of its ``n_c`` samples in the validation split, always
    keeping at least one in the training split; otherwise ``round(validation_fraction * n)``
    random samples go there.
    Selection never looks at a test set: the validation split is carved from training data.

    Examples:
        >>> X = torch.arange(10.0)[:, None]
        >>> y = torch.tensor([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
        >>> X_train, y_train, X_val, y_val = train_val_split(X, y, validation_fraction=0.4)
        >>> y_val.bincount().tolist(), len(X_train)  # 2 of each class held out
        ([2, 2], 6)
        >>> sorted(torch.cat([X_train, X_val])[:, 0].tolist()) == X[:, 0].tolist()
        True
    """
    X = check_not_meta(as_tensor(X, "X") if not isinstance(X, torch.Tensor) else X, "X")
    Y = _numeric(Y, "Y")
    if Y.is_complex():
        raise ArgumentTypeError(f"Y must hold real labels or targets, got a {Y.dtype} tensor")
    check_finite(X, "X")
    check_finite(Y, "Y")
    return _train_val_split(X, Y, validation_fraction, seed, stratify=stratify)


def _train_val_split(
    X: torch.Tensor,
    Y: torch.Tensor,
    validation_fraction: float = 0.2,
    seed: int = 0,
    *,
    stratify: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`train_val_split` of tensors whose values are known finite (an estimator's
    checked images and its one-hot targets): the options and shapes are checked, the values
    not again."""
    stratify = check_bool(stratify, "stratify")
    if X.ndim == 0 or Y.ndim not in (1, 2):
        raise ValueError(
            f"X must have a sample axis and Y shape (n,) or (n, C); got X {tuple(X.shape)}, "
            f"Y {tuple(Y.shape)}"
        )
    n = X.shape[0]
    if Y.shape[0] != n:
        raise ValueError(f"X and Y must have the same number of samples, got {n} and {Y.shape[0]}")
    validation_fraction = check_real(validation_fraction, "validation_fraction")
    if not 0 < validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction!r}")
    if n < 2:
        raise ValueError(f"X must hold at least 2 samples to split, got {n}")
    g = torch.Generator().manual_seed(check_seed(seed))
    perm = torch.randperm(n, generator=g)
    if stratify:
        classes = (Y.argmax(1) if Y.ndim == 2 else _labels(Y, "Y")).cpu()[perm]
        order = torch.sort(classes, stable=True).indices  # shuffled within each class
        sorted_classes = classes[order]
        _, counts = torch.unique_consecutive(sorted_classes, return_counts=True)
        starts = torch.cumsum(counts, 0) - counts
        rank = torch.arange(n) - torch.repeat_interleave(starts, counts)
        n_val_c = torch.clamp(
            torch.round(validation_fraction * counts.double()).long(), max=counts - 1
        )
        in_val = torch.zeros(n, dtype=torch.bool)  # indexed like perm
        in_val[order[rank < torch.repeat_interleave(n_val_c, counts)]] = True
        val, train = perm[in_val], perm[~in_val]  # both stay shuffled
    else:
        n_val = min(int(round(validation_fraction * n)), n - 1)
        val, train = perm[:n_val], perm[n_val:]
    if val.numel() == 0:
        raise ValueError(
            f"validation_fraction={validation_fraction} leaves no validation sample among {n} "
            "samples"
            + (" (stratified: each class keeps one sample for training)" if stratify else "")
            + "; use more samples or a larger validation_fraction"
        )
    train, val = train.to(X.device), val.to(X.device)
    return X[train], Y[train.to(Y.device)], X[val], Y[val.to(Y.device)]
