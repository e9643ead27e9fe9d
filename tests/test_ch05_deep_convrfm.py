"""Comparison's statistics over seeds: the sample standard deviation and the paired per-seed
differences that the chapters' claims rest on, against values computed by hand."""

import statistics

import numpy as np
import pytest

from agop_book.ch05_deep_convrfm import Comparison


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
