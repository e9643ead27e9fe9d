"""Patches against torch's own convolution: ``conv(x)[i, :, j] = W x_i[j] + b``."""

import numpy as np
import pytest
import torch
from torch import nn

from agop.patches import conv_patches, extract_patches, output_size, padding_amounts


def conv_from_patches(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    p = conv_patches(conv, x)  # (n, P, g q)
    n, P, _ = p.shape
    g = conv.groups
    W = conv.weight.reshape(g, conv.out_channels // g, -1)
    h = torch.einsum("npgq,gkq->npgk", p.reshape(n, P, g, -1), W).reshape(n, P, -1)
    if conv.bias is not None:
        h = h + conv.bias
    return h


def _grid():
    """stride x dilation x padding, every combination torch's Conv2d accepts ("same" padding
    only at stride 1), with square and rectangular kernels."""
    cases = []
    for stride in (1, 2, (2, 3)):
        for dilation in (1, 2, (1, 3)):
            for padding in (0, 1, (2, 1), "same"):
                if padding == "same" and stride != 1:
                    continue
                for kernel_size in (3, (2, 3)):
                    cases.append(
                        dict(
                            kernel_size=kernel_size,
                            stride=stride,
                            dilation=dilation,
                            padding=padding,
                        )
                    )
    return cases


GRID = _grid()


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")
@pytest.mark.parametrize("padding_mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("kw", GRID, ids=[str(tuple(kw.values())) for kw in GRID])
def test_patches_reproduce_conv2d_on_a_grid(float64, padding_mode, kw):
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, padding_mode=padding_mode, **kw)
    x = torch.randn(2, 2, 11, 12)
    out = conv(x)
    h = conv_from_patches(conv, x)
    assert out.shape[2:] == output_size(
        (11, 12), conv.kernel_size, conv.stride, kw["padding"], conv.dilation
    )
    torch.testing.assert_close(h, out.flatten(2).transpose(1, 2), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize(
    "kw",
    [
        dict(kernel_size=(3, 5), padding=(1, 2), groups=2),
        dict(kernel_size=4, padding="same"),  # asymmetric: 1 left, 2 right
        dict(kernel_size=3, padding="same", dilation=2, bias=False),
        dict(kernel_size=3, stride=2, dilation=2, padding=1, groups=2),
    ],
)
def test_patches_reproduce_grouped_and_asymmetric_conv2d(float64, padding_mode, kw):
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, padding_mode=padding_mode, **kw)
    x = torch.randn(3, 4, 11, 12)
    torch.testing.assert_close(
        conv_from_patches(conv, x), conv(x).flatten(2).transpose(1, 2), rtol=1e-12, atol=1e-12
    )


def test_patches_by_hand_strided_dilated():
    """Patch j of a stride-2, dilation-2 3x3 conv, sliced by hand: rows 2a + 2r, cols 2b + 2s."""
    x = torch.arange(1 * 2 * 9 * 10, dtype=torch.float64).reshape(1, 2, 9, 10)
    p = extract_patches(x, 3, stride=2, dilation=2)
    assert p.shape == (1, 3 * 3, 18)  # output grid (9 - 5) // 2 + 1 by (10 - 5) // 2 + 1
    for a in range(3):
        for b in range(3):
            by_hand = x[0, :, 2 * a : 2 * a + 5 : 2, 2 * b : 2 * b + 5 : 2].reshape(-1)
            assert torch.equal(p[0, 3 * a + b], by_hand)


def test_patch_order_is_channel_row_col():
    x = torch.arange(2 * 3 * 3, dtype=torch.float32).reshape(1, 2, 3, 3)
    p = extract_patches(x, 3)  # one position, the whole image
    assert p.shape == (1, 1, 18)
    assert torch.equal(p[0, 0], x.flatten())


def test_padding_amounts():
    assert padding_amounts(1, 3) == (1, 1, 1, 1)
    assert padding_amounts((1, 2), 3) == (2, 2, 1, 1)
    assert padding_amounts("same", 4) == (1, 2, 1, 2)
    assert padding_amounts("valid", 5) == (0, 0, 0, 0)
    with pytest.raises(ValueError, match="padding"):
        padding_amounts("full", 3)
    with pytest.raises(ValueError, match="padding"):
        padding_amounts(-1, 3)


def test_extract_patches_errors():
    with pytest.raises(ValueError, match=r"x must have shape \(n, c, H, W\)"):
        extract_patches(torch.zeros(3, 8, 8), 3)
    with pytest.raises(ValueError, match="non-finite"):
        extract_patches(torch.full((1, 1, 8, 8), float("nan")), 3)
    with pytest.raises(ValueError, match="does not fit"):
        extract_patches(torch.zeros(1, 1, 4, 4), 5)
    with pytest.raises(ValueError, match="padding_mode"):
        extract_patches(torch.zeros(1, 1, 4, 4), 3, padding=1, padding_mode="mirror")
    with pytest.raises(TypeError, match="Conv2d"):
        conv_patches(nn.Linear(3, 3), torch.zeros(1, 1, 4, 4))


def test_numpy_integer_sizes_give_the_same_patches_as_ints(float64):
    """Sizes from a numpy grid (np.int64) are ints: they failed with "'numpy.int64' object is
    not iterable". Against torch's conv with the same settings as Python ints."""
    x = torch.randn(2, 3, 9, 8)
    conv = nn.Conv2d(3, 4, (3, 2), stride=(2, 1), padding=(1, 2), dilation=(1, 2))
    kw = dict(stride=(np.int64(2), np.int32(1)), padding=(np.int64(1), 2), dilation=(1, np.int8(2)))
    patches = extract_patches(x, (np.int64(3), np.int64(2)), **kw)
    W = conv.weight.reshape(4, -1)
    torch.testing.assert_close(
        (patches @ W.T + conv.bias).transpose(1, 2).reshape(2, 4, *conv(x).shape[2:]), conv(x)
    )
    square = extract_patches(x, np.int64(3), stride=np.int64(2), padding=np.int64(1))
    torch.testing.assert_close(square, extract_patches(x, 3, stride=2, padding=1))
    assert output_size((9, 8), np.int64(3), np.int64(2), np.int64(1)) == (5, 4)
    assert padding_amounts((np.int64(0), np.int64(1), 2, 3), np.int64(3)) == (0, 1, 2, 3)


def test_size_errors_name_the_argument():
    x = torch.zeros(1, 1, 8, 8)
    with pytest.raises(TypeError, match=r"kernel_size must be an integer or a pair .*got 3.0"):
        extract_patches(x, 3.0)
    with pytest.raises(ValueError, match=r"stride\[1\] must be a positive integer, got 0"):
        extract_patches(x, 3, stride=(1, 0))
    with pytest.raises(TypeError, match=r"padding must be an int, a pair .*got None"):
        extract_patches(x, 3, padding=None)
    with pytest.raises(ValueError, match=r"padding\[2\] must be a non-negative integer, got -1"):
        padding_amounts((0, 0, -1, 0), 3)


# Held-out style bugs


def test_patch_covariance_is_the_covariance_about_the_mean_patch():
    """``patch_covariance`` against its definition, written out on random images (not
    constant ones, whose patches are constant): every patch ``x_i[j]`` minus the mean patch
    ``mu`` over all images and positions, outer products averaged over the ``n P`` patches;
    it equals the second moment minus ``mu mu^T``."""
    from agop.patches import patch_covariance, patch_second_moment

    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 2, 5, 4, generator=g, dtype=torch.float64) + torch.arange(5.0)[:, None]
    k = 2
    patches = []
    for img in x:
        for r in range(5 - k + 1):
            for c in range(4 - k + 1):
                patches.append(img[:, r : r + k, c : c + k].reshape(-1))
    p = torch.stack(patches)
    mu = p.mean(0)
    expected = sum(torch.outer(v - mu, v - mu) for v in p) / len(p)
    torch.testing.assert_close(patch_covariance(x, k), expected, rtol=1e-12, atol=1e-12)
    second = patch_second_moment(x, k)
    torch.testing.assert_close(second - torch.outer(mu, mu), expected, rtol=1e-12, atol=1e-12)


# Held-out style bugs, round 3


def test_patch_moments_read_the_zero_padded_patches():
    """``patch_second_moment`` and ``patch_covariance`` with ``padding`` against their
    definitions on images zero-padded by hand: every ``k x k`` window of the padded image,
    outer products averaged over the ``n P`` windows (the border windows, which hold zeros,
    included). A moment that ignored ``padding`` would average over the interior windows
    only, another set and another count."""
    from agop.patches import patch_covariance, patch_second_moment

    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 2, 4, 5, generator=g, dtype=torch.float64) + 1.0
    k, pad = 3, 1
    padded = torch.zeros(2, 2, 4 + 2 * pad, 5 + 2 * pad, dtype=torch.float64)
    padded[:, :, pad : pad + 4, pad : pad + 5] = x
    windows = [
        img[:, r : r + k, c : c + k].reshape(-1)
        for img in padded
        for r in range(padded.shape[2] - k + 1)
        for c in range(padded.shape[3] - k + 1)
    ]
    assert len(windows) == 2 * 4 * 5  # "same" output size at this padding
    p = torch.stack(windows)
    second = sum(torch.outer(v, v) for v in p) / len(p)
    mu = p.mean(0)
    cov = sum(torch.outer(v - mu, v - mu) for v in p) / len(p)
    torch.testing.assert_close(patch_second_moment(x, k, padding=pad), second, rtol=1e-12, atol=0)
    torch.testing.assert_close(patch_covariance(x, k, padding=pad), cov, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(
        patch_second_moment(x, k, padding="same"), second, rtol=1e-12, atol=0
    )


# Hostile inputs, round 4


@pytest.mark.parametrize("padding", [10**6, (10**10, 0), (0, 0, 0, 10**12)])
def test_extract_patches_refuses_padding_beyond_memory(padding):
    """A padding that would need terabytes gets a ValueError naming ``padding`` up front, not
    the allocator's RuntimeError from inside ``F.pad``."""
    with pytest.raises(ValueError, match="^padding: the padded images would need"):
        extract_patches(torch.zeros(2, 1, 6, 6), 3, padding=padding)


def test_pad_refuses_amounts_beyond_memory():
    from agop.patches import pad

    with pytest.raises(ValueError, match="^amounts: the padded images would need"):
        pad(torch.zeros(2, 1, 6, 6), (0, 10**9, 0, 10**9))


@pytest.mark.parametrize("stride", [2, (1, 2), (3, 1)])
def test_same_padding_needs_stride_1_as_in_torch(stride):
    """torch's Conv2d refuses ``padding='same'`` with a stride above 1 (its output cannot keep
    the input's size); extract_patches and output_size padded k - 1 per axis silently. Now a
    ValueError naming ``padding``, as torch's, at both."""
    with pytest.raises((ValueError, RuntimeError), match="padding='same' is not supported"):
        nn.Conv2d(1, 1, 3, stride=stride, padding="same")  # the reference: torch refuses it
    x = torch.rand(1, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    for padding in ("same", "SAME"):
        with pytest.raises(ValueError, match=f"^padding='{padding}' needs stride 1"):
            extract_patches(x, 3, stride=stride, padding=padding)
        with pytest.raises(ValueError, match=f"^padding='{padding}' needs stride 1"):
            output_size((6, 6), 3, stride=stride, padding=padding)
    conv = nn.Conv2d(1, 1, 3, padding="same", bias=False)  # at stride 1 it is torch's "same"
    torch.testing.assert_close(conv_from_patches(conv, x)[0, :, 0], conv(x).flatten())
    assert output_size((6, 6), 3, stride=1, padding="same") == (6, 6)
