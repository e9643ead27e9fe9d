r"""Patches of images: the vectors :math:`x[j] \in \mathbb{R}^q`, :math:`q = c k^2`, that a
convolution reads.

A convolution is :math:`h[j] = W x[j]` with ``W = conv.weight.reshape(out_channels, -1)``; the
patch entries are ordered (channel, row, col), the order of :func:`torch.nn.functional.unfold`
and of that reshape.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from agop._typing import ArrayLike, IntPair
from agop.validation import (
    ArgumentTypeError,
    _check_allocation,
    check_choice,
    check_images,
    check_int,
    check_int_pair,
)

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def padding_amounts(
    padding: IntPair | str, kernel_size: IntPair, dilation: IntPair = 1
) -> tuple[int, int, int, int]:
    """Padding as ``(left, right, top, bottom)``, the order of :func:`torch.nn.functional.pad`.

    ``padding`` is an int, a pair ``(rows, cols)``, a 4-tuple ``(left, right, top, bottom)``,
    ``"valid"`` (none) or ``"same"`` (``dilation (k - 1)`` in total per axis, the extra pixel
    on the right/bottom, as :class:`torch.nn.Conv2d` does; :func:`extract_patches` and
    :func:`output_size` take ``"same"`` at stride 1 only, as it does).

    Examples:
        >>> padding_amounts(1, 3)
        (1, 1, 1, 1)
        >>> padding_amounts((0, 2), 3)  # (rows, cols)
        (2, 2, 0, 0)
        >>> padding_amounts("same", 4)  # 3 pixels per axis, the extra one right and bottom
        (1, 2, 1, 2)
    """
    kh, kw = check_int_pair(kernel_size, "kernel_size")
    dh, dw = check_int_pair(dilation, "dilation")
    if isinstance(padding, str):
        padding = padding.lower()
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding == "same":
            th, tw = dh * (kh - 1), dw * (kw - 1)
            return (tw // 2, tw - tw // 2, th // 2, th - th // 2)
        raise ValueError(f"padding must be an int, a tuple, 'valid' or 'same', got {padding!r}")
    if isinstance(padding, (tuple, list)) and len(padding) == 4:
        left, right, top, bottom = (
            check_int(p, f"padding[{i}]", minimum=0) for i, p in enumerate(padding)
        )
        return (left, right, top, bottom)
    if not isinstance(padding, (tuple, list, int, np.integer)) or isinstance(padding, bool):
        raise ArgumentTypeError(
            f"padding must be an int, a pair (rows, cols), a 4-tuple (left, right, top, bottom), "
            f"'valid' or 'same', got {padding!r}"
        )
    ph, pw = check_int_pair(padding, "padding", minimum=0)
    return (pw, pw, ph, ph)


def _check_stride(stride: IntPair, padding: IntPair | str) -> tuple[int, int]:
    """``stride`` as a checked pair; ``ValueError`` naming ``padding`` when it is ``"same"``
    and ``stride`` is not 1: the output of a strided convolution cannot have the input's size,
    and :class:`torch.nn.Conv2d` refuses it ("padding='same' is not supported for strided
    convolutions")."""
    stride = check_int_pair(stride, "stride")
    if isinstance(padding, str) and padding.lower() == "same" and stride != (1, 1):
        raise ValueError(
            f"padding={padding!r} needs stride 1, as torch.nn.Conv2d does (a strided "
            f"convolution's output cannot keep the input's size), got stride={stride}; "
            "give the padding as integers"
        )
    return stride


def pad(
    x: torch.Tensor, amounts: tuple[int, int, int, int], padding_mode: str = "zeros"
) -> torch.Tensor:
    """Pad images ``(n, c, H, W)`` by ``(left, right, top, bottom)`` in a conv's ``padding_mode``.

    Examples:
        >>> import torch
        >>> x = torch.tensor([[[[1.0, 2.0]]]])
        >>> pad(x, (1, 1, 0, 0)).tolist()
        [[[[0.0, 1.0, 2.0, 0.0]]]]
        >>> pad(x, (1, 1, 0, 0), "circular").tolist()
        [[[[2.0, 1.0, 2.0, 1.0]]]]
    """
    x = check_images(x, "x")
    padding_mode = check_choice(padding_mode, "padding_mode", PADDING_MODES)
    if isinstance(amounts, (np.ndarray, torch.Tensor)):
        amounts = amounts.tolist()
    if not isinstance(amounts, (tuple, list)) or len(amounts) != 4:
        raise ArgumentTypeError(
            f"amounts must be four integers (left, right, top, bottom), got {amounts!r}"
        )
    left, right, top, bottom = (
        check_int(a, f"amounts[{i}]", minimum=0) for i, a in enumerate(amounts)
    )
    checked = _check_amounts((left, right, top, bottom), padding_mode, tuple(x.shape[2:]))
    _check_padded_size(x, checked, "amounts")
    return _pad(x, checked, padding_mode)


def _check_amounts(
    amounts: tuple[int, int, int, int], padding_mode: str, size: tuple[int, ...]
) -> tuple[int, int, int, int]:
    """``amounts`` if ``padding_mode`` can pad images of ``size`` ``(H, W)`` by them: reflect
    needs each amount below the side, circular at most the side."""
    if padding_mode in ("reflect", "circular"):
        H, W = size
        limit = {"reflect": "< ", "circular": "<= "}[padding_mode]
        for amount, side, axis in zip(amounts, (W, W, H, H), ("W", "W", "H", "H"), strict=True):
            if amount > side - (padding_mode == "reflect"):
                raise ValueError(
                    f"padding of {amount} in padding_mode={padding_mode!r} needs images with "
                    f"{axis} > {amount - (padding_mode != 'reflect')}: each amount must be "
                    f"{limit}{axis} = {side}, got images of size {tuple(size)}"
                )
    return amounts


def _check_padded_size(x: torch.Tensor, amounts: tuple[int, int, int, int], name: str) -> None:
    """``ValueError`` naming ``name`` when ``x`` padded by ``amounts`` would not fit in memory
    (an error up front, not the allocator's deep inside ``F.pad``)."""
    n, c, H, W = x.shape
    left, right, top, bottom = amounts
    _check_allocation(
        n * c * (H + top + bottom) * (W + left + right), x.element_size(), name, "the padded images"
    )


def _pad(x: torch.Tensor, amounts: tuple[int, int, int, int], padding_mode: str) -> torch.Tensor:
    """:func:`pad` of checked images and amounts, in a checked ``padding_mode``."""
    if not any(amounts):
        return x
    if padding_mode == "zeros":
        return F.pad(x, amounts, mode="constant", value=0.0)
    return F.pad(x, amounts, mode=padding_mode)


def extract_patches(
    x: ArrayLike,
    kernel_size: IntPair,
    stride: IntPair = 1,
    padding: IntPair | str = 0,
    dilation: IntPair = 1,
    padding_mode: str = "zeros",
) -> torch.Tensor:
    r"""The patches :math:`x[j]` of every image: a tensor ``(n, P, q)``, :math:`q = c k_h k_w`.

    Row :math:`j` of image :math:`i` is the vector a convolution with these settings multiplies
    at output position :math:`j` (row-major over the output grid), entries in (channel, row, col)
    order, so that :math:`\mathrm{conv}(x_i)[:, j] = W x_i[j] + b`. Padding is applied explicitly in
    ``padding_mode`` (``zeros``, ``reflect``, ``replicate`` or ``circular``).

    Examples:
        >>> import torch
        >>> x = torch.arange(9.0).reshape(1, 1, 3, 3)
        >>> extract_patches(x, 2).tolist()  # 4 positions, 2 x 2 patches in (row, col) order
        [[[0.0, 1.0, 3.0, 4.0], [1.0, 2.0, 4.0, 5.0], [3.0, 4.0, 6.0, 7.0], [4.0, 5.0, 7.0, 8.0]]]

        A convolution multiplies each patch by its flattened weight:

        >>> conv = torch.nn.Conv2d(1, 2, 2, bias=False)
        >>> W = conv.weight.reshape(2, -1)
        >>> h = extract_patches(x, 2) @ W.T  # (n, P, out_channels)
        >>> torch.allclose(h.transpose(1, 2), conv(x).flatten(2), atol=1e-6)
        True
    """
    x = check_images(x, "x")
    amounts = padding_amounts(padding, kernel_size, dilation)
    stride = _check_stride(stride, padding)
    padding_mode = check_choice(padding_mode, "padding_mode", PADDING_MODES)
    amounts = _check_amounts(amounts, padding_mode, tuple(x.shape[2:]))
    _check_padded_size(x, amounts, "padding")
    x = _pad(x, amounts, padding_mode)
    kernel_size, dilation = (
        check_int_pair(kernel_size, "kernel_size"),
        check_int_pair(dilation, "dilation"),
    )
    span = [d * (k - 1) + 1 for d, k in zip(dilation, kernel_size, strict=True)]
    if span[0] > x.shape[2] or span[1] > x.shape[3]:
        raise ValueError(
            f"kernel_size={kernel_size} with dilation={dilation} (a span of {tuple(span)} "
            f"pixels) does not fit in the images x of size {tuple(x.shape[2:])} after padding"
        )
    cols = F.unfold(x, kernel_size, dilation=dilation, stride=stride)  # (n, q, P)
    return cols.transpose(1, 2)


def output_size(
    size: tuple[int, ...],
    kernel_size: IntPair,
    stride: IntPair = 1,
    padding: IntPair | str = 0,
    dilation: IntPair = 1,
) -> tuple[int, int]:
    r"""Output grid :math:`(H', W')` of a convolution with these settings on images of ``size``:
    :math:`H' = \lfloor (H + p_\mathrm{top} + p_\mathrm{bottom} - d (k - 1) - 1) / s \rfloor + 1`,
    and likewise :math:`W'`.

    Examples:
        >>> output_size((32, 32), 3, stride=2, padding=1)
        (16, 16)
        >>> output_size((7, 9), 3, padding="same")
        (7, 9)
    """
    left, right, top, bottom = padding_amounts(padding, kernel_size, dilation)
    (kh, kw), (sh, sw), (dh, dw) = (
        check_int_pair(kernel_size, "kernel_size"),
        _check_stride(stride, padding),
        check_int_pair(dilation, "dilation"),
    )
    if isinstance(size, (np.ndarray, torch.Tensor, torch.Size)):
        size = tuple(size.tolist()) if not isinstance(size, torch.Size) else tuple(size)
    if not isinstance(size, (tuple, list)) or len(size) < 2:
        raise ArgumentTypeError(
            f"size must be the images' (H, W) (or a shape ending in them), got {size!r}"
        )
    H, W = check_int(size[-2], "size[-2]", minimum=1), check_int(size[-1], "size[-1]", minimum=1)
    out = (
        (H + top + bottom - dh * (kh - 1) - 1) // sh + 1,
        (W + left + right - dw * (kw - 1) - 1) // sw + 1,
    )
    if min(out) < 1:
        raise ValueError(
            f"kernel_size={(kh, kw)} with dilation={(dh, dw)} does not fit in images of "
            f"size (H, W) = {(H, W)} after padding {(left, right, top, bottom)}"
        )
    return out


def conv_padding(conv: nn.Conv2d) -> tuple[int, int, int, int]:
    """The ``(left, right, top, bottom)`` padding that ``conv`` applies to its input.

    Examples:
        >>> import torch
        >>> conv_padding(torch.nn.Conv2d(3, 8, (3, 5), padding=(1, 2)))
        (2, 2, 1, 1)
    """
    if not isinstance(conv, nn.Conv2d):
        raise ArgumentTypeError(f"conv must be a torch.nn.Conv2d, got {type(conv).__name__}")
    return padding_amounts(conv.padding, conv.kernel_size, conv.dilation)


def conv_patches(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """The patches ``(n, P, c k_h k_w)`` that ``conv`` reads from ``x``, with all its settings.

    With ``groups = g`` the last axis holds the ``g`` groups' patches one after another, each of
    size :math:`q = (c/g) k_h k_w`.

    Examples:
        >>> import torch
        >>> conv = torch.nn.Conv2d(2, 4, 3, stride=2, padding=1, bias=False)
        >>> x = torch.randn(1, 2, 5, 5, generator=torch.Generator().manual_seed(0))
        >>> patches = conv_patches(conv, x)
        >>> tuple(patches.shape)  # 3 x 3 output positions, q = 2 * 3 * 3
        (1, 9, 18)
        >>> W = conv.weight.reshape(4, -1)
        >>> torch.allclose((patches @ W.T).transpose(1, 2), conv(x).flatten(2), atol=1e-6)
        True
    """
    if not isinstance(conv, nn.Conv2d):
        raise ArgumentTypeError(f"conv must be a torch.nn.Conv2d, got {type(conv).__name__}")
    x = check_images(x, "x", channels=conv.in_channels)
    return extract_patches(
        x, conv.kernel_size, conv.stride, conv_padding(conv), conv.dilation, conv.padding_mode
    )


def patch_second_moment(
    x: ArrayLike, kernel_size: IntPair, padding: IntPair | str = 0
) -> torch.Tensor:
    r"""The patches' second-moment matrix :math:`\frac{1}{nP} \sum_i \sum_j x_i[j]\, x_i[j]^\top`
    (``q x q``, float64), over the :math:`n` images and :math:`P` positions of
    :func:`extract_patches` (zero ``padding``). A label-free operator on patches: it sees the
    images, never the labels.

    Examples:
        Images that vary only down the rows have patches that are constant along each row, so
        the second moment has rank at most ``k``:

        >>> import torch
        >>> x = torch.randn(4, 1, 6, 1, generator=torch.Generator().manual_seed(0)).expand(4, 1, 6, 6)
        >>> S = patch_second_moment(x, 3)
        >>> int(torch.linalg.matrix_rank(S, rtol=1e-10))
        3
        >>> p = extract_patches(x, 3).double().flatten(0, 1)
        >>> torch.allclose(S, p.T @ p / len(p))
        True
    """
    p = extract_patches(x, kernel_size, padding=padding).double().flatten(0, 1)
    return p.T @ p / p.shape[0]


def patch_covariance(
    x: ArrayLike, kernel_size: IntPair, padding: IntPair | str = 0
) -> torch.Tensor:
    r"""The patches' covariance :math:`\frac{1}{nP} \sum_{i, j} (x_i[j] - \mu)(x_i[j] - \mu)^\top`,
    :math:`\mu` the mean patch (``q x q``, float64): the matrix whose eigenvectors are the
    patches' principal components (PCA). Label-free, like :func:`patch_second_moment`, which it
    equals minus :math:`\mu \mu^\top`.

    Examples:
        Constant images :math:`c_i \mathbf{1}` have constant patches: the covariance is
        :math:`\mathrm{var}(c)\, \mathbf{1}\mathbf{1}^\top`:

        >>> import torch
        >>> c = torch.tensor([1.0, 2.0, 4.0])
        >>> C = patch_covariance(c[:, None, None, None].expand(3, 1, 5, 5), 3)
        >>> torch.allclose(C, c.double().var(unbiased=False) * torch.ones(9, 9, dtype=torch.float64))
        True
    """
    p = extract_patches(x, kernel_size, padding=padding).double().flatten(0, 1)
    p = p - p.mean(0)
    return p.T @ p / p.shape[0]
