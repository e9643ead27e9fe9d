"""Split contract, written once for every function that splits samples.

Each entry of ``SPLITS`` returns the ``(train, validation)`` sample indices of a split of ``n``
samples with labels ``y``; the contract: the parts are disjoint, their union is every index,
each part has no repeated index, the sizes are the documented ones (``round(f n)`` held out,
or ``round(f n_c)`` of every class ``c`` when stratified, always leaving one sample of it for
training), the same seed gives the same split and another seed another one.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from agop.data import one_hot, train_val_split
from agop_book.ch05_deep_convrfm import digits_in_noise
from agop_book.data.offline import digits
from agop_book.nets import validation_split


def _tvs(stratify: bool, onehot: bool = False):
    def split(y: np.ndarray, f: float, seed: int):
        Y = one_hot(torch.as_tensor(y)) if onehot else torch.as_tensor(y)
        X = torch.arange(len(y))[:, None].double()
        X_tr, Y_tr, X_va, Y_va = train_val_split(X, Y, f, seed, stratify=stratify)
        train, val = X_tr[:, 0].long().numpy(), X_va[:, 0].long().numpy()
        # the targets travel with their samples
        assert torch.equal(Y_tr, Y[train]) and torch.equal(Y_va, Y[val])
        return train, val

    return split


#: name -> (split(y, fraction, seed) -> (train, val), stratified)
SPLITS: dict[str, tuple[Callable, bool]] = {
    "train_val_split(stratify=True)": (_tvs(True), True),
    "train_val_split(stratify=True), one-hot Y": (_tvs(True, onehot=True), True),
    "train_val_split(stratify=False)": (_tvs(False), False),
    "train_val_split(stratify=False), one-hot Y": (_tvs(False, onehot=True), False),
    "baseline.validation_split": (lambda y, f, seed: validation_split(y, f, seed), True),
}

LABELS = {
    "balanced": np.array([0, 1] * 10),
    "unbalanced": np.array([0] * 13 + [1] * 5 + [2] * 2),
    "odd sizes": np.array([2, 0, 1, 1, 0, 2, 2, 0, 1, 1, 1]),
    "one class": np.zeros(7, dtype=np.int64),
}


def _documented_sizes(y: np.ndarray, f: float, stratified: bool) -> dict[int, int]:
    """Validation samples per class (stratified) or in all (key -1), by the docstrings."""
    if not stratified:
        return {-1: min(round(f * len(y)), len(y) - 1)}
    classes, counts = np.unique(y, return_counts=True)
    return {
        int(c): min(round(f * int(m)), int(m) - 1) for c, m in zip(classes, counts, strict=True)
    }


@pytest.mark.parametrize("labels", sorted(LABELS))
@pytest.mark.parametrize("fraction", [0.2, 0.25, 0.5, 0.7])
@pytest.mark.parametrize("name", sorted(SPLITS))
def test_split_contract(name, fraction, labels):
    split, stratified = SPLITS[name]
    y = LABELS[labels]
    n = len(y)
    sizes = _documented_sizes(y, fraction, stratified)
    if sum(sizes.values()) == 0:
        with pytest.raises(ValueError, match="validation"):
            split(y, fraction, 0)
        return
    train, val = split(y, fraction, 0)
    assert len(set(train.tolist())) == len(train) and len(set(val.tolist())) == len(val)
    assert not set(train.tolist()) & set(val.tolist()), "a sample is in both parts"
    assert sorted(train.tolist() + val.tolist()) == list(range(n)), "the parts miss a sample"
    if stratified:
        got = {c: int((y[val] == c).sum()) for c in sizes}
        assert got == sizes
        for c in sizes:  # class proportions kept within one sample
            assert abs(got[c] - fraction * int((y == c).sum())) <= 1
            assert int((y[train] == c).sum()) >= 1
    else:
        assert len(val) == sizes[-1]
    again = split(y, fraction, 0)
    assert np.array_equal(again[0], train) and np.array_equal(again[1], val)
    others = [split(y, fraction, seed) for seed in (1, 2, 3)]
    if 0 < len(val) < n - 1 or not stratified:
        assert any(not np.array_equal(np.sort(v), np.sort(val)) for _, v in others), (
            "three other seeds gave the same validation samples"
        )


def test_the_digit_pools_partition_the_digits():
    """``digits_in_noise``'s train and test pools split the 1797 digits 75 % / 25 % (as
    multisets of images, so duplicated digit images count once each)."""
    X, y = digits(dtype=torch.float64, device="cpu")
    pools = {}
    for split in ("train", "test"):
        N = {"train": 1348, "test": 449}[split]  # round(0.75 * 1797) and the rest
        Xs, ys = digits_in_noise(N, 0.0, frame=8, split=split, seed=0, device="cpu",
                                 dtype=torch.float64)  # fmt: skip
        pools[split] = torch.cat([Xs.flatten(1), ys[:, None].double()], 1)
    both = torch.cat([pools["train"], pools["test"]])
    every = torch.cat([X.flatten(1), y[:, None].double()], 1)
    assert len(both) == len(every) == 1797

    def rows(t):
        return sorted(map(tuple, t.tolist()))

    assert rows(both) == rows(every)
