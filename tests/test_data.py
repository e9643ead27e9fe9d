"""agop.data: one-hot targets and the stratified, seeded train/validation split (all offline).
The book's named datasets are tested in tests/test_book_data.py, the local-signal tasks of
chapter 05 in tests/test_ch05_tasks.py."""

import numpy as np
import pytest
import torch

from agop import data
from agop.data import one_hot, train_val_split

# ---------------------------------------------------------------------------------------------
# one-hot targets and the validation split


def test_one_hot():
    Y = data.one_hot(torch.tensor([2, 0, 1, 2]), 4)
    assert Y.dtype == torch.get_default_dtype()
    assert Y.tolist() == [[0, 0, 1, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]]
    assert torch.equal(Y.argmax(1), torch.tensor([2, 0, 1, 2]))
    assert data.one_hot(np.array([1, 0]), dtype=torch.float64).shape == (2, 2)
    with pytest.raises(ValueError, match="out of range"):
        data.one_hot(torch.tensor([0, 3]), 3)
    with pytest.raises(ValueError, match=">= 0"):
        data.one_hot(torch.tensor([-1, 0]), 3)
    with pytest.raises(ValueError, match="1-d"):
        data.one_hot(torch.zeros(2, 2, dtype=torch.long), 3)
    with pytest.raises(ValueError, match="n_classes"):
        data.one_hot(torch.tensor([0]), 0)


def test_train_val_split_is_a_stratified_seeded_partition():
    y = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    X = torch.arange(100, dtype=torch.float32)[:, None, None, None].expand(100, 1, 2, 2)
    Xtr, ytr, Xva, yva = data.train_val_split(X, y, 0.2, seed=3)
    ids = torch.cat([Xtr[:, 0, 0, 0], Xva[:, 0, 0, 0]]).long()
    assert sorted(ids.tolist()) == list(range(100))  # a partition
    assert torch.equal(y[ids], torch.cat([ytr, yva]))  # rows stay paired
    assert torch.bincount(yva).tolist() == [10, 6, 4]  # stratified
    again = data.train_val_split(X, y, 0.2, seed=3)
    assert torch.equal(again[2], Xva)
    assert not torch.equal(data.train_val_split(X, y, 0.2, seed=4)[2], Xva)
    assert not torch.equal(ytr, ytr.sort().values)  # output stays shuffled
    # one-hot targets split the same way as their labels
    _, Ytr, _, Yva = data.train_val_split(X, data.one_hot(y), 0.2, seed=3)
    assert torch.equal(Yva.argmax(1), yva) and torch.equal(Ytr.argmax(1), ytr)
    # unstratified
    _, _, _, yv = data.train_val_split(X, y, 0.25, seed=0, stratify=False)
    assert yv.shape == (25,)


def test_train_val_split_errors():
    X, y = torch.zeros(4, 1, 2, 2), torch.tensor([0, 1, 2, 3])
    with pytest.raises(ValueError, match="no validation sample"):
        data.train_val_split(X, y, 0.3)  # one sample per class
    with pytest.raises(ValueError, match="at least 2"):
        data.train_val_split(X[:1], y[:1], 0.5)
    with pytest.raises(ValueError, match="validation_fraction"):
        data.train_val_split(X, y, 1.0)
    with pytest.raises(ValueError, match="same number"):
        data.train_val_split(X, y[:3], 0.5)


# ---------------------------------------------------------------------------------------------
# local-signal tasks


# ---------------------------------------------------------------------------------------------
# Mutation testing (`make mutation`, CONTRIBUTING.md): tests that kill surviving mutants of
# agop/data/splits.py, against the definition Y[i, c] = 1 if y[i] = c


def _one_hot_by_definition(labels, n_classes):
    return [[1.0 if y == c else 0.0 for c in range(n_classes)] for y in labels]


def test_one_hot_float_labels_integer_valued_or_rejected():
    Y = data.one_hot(torch.tensor([0.0, 2.0, 1.0]), dtype=torch.float64)
    assert Y.dtype == torch.float64
    assert Y.tolist() == _one_hot_by_definition([0, 2, 1], 3)
    with pytest.raises(ValueError, match="^y must hold integer class indices"):
        data.one_hot(torch.tensor([0.0, 1.5]))
    with pytest.raises(ValueError, match="^y must be a 1-d vector"):
        data.one_hot([[0, 1]])


def test_one_hot_class_count_edge_cases():
    assert data.one_hot([0, 0], n_classes=1).tolist() == _one_hot_by_definition([0, 0], 1)
    empty = data.one_hot(torch.tensor([], dtype=torch.long), n_classes=3)
    assert empty.shape == (0, 3)
    with pytest.raises(ValueError, match="^y is empty: .* pass n_classes"):
        data.one_hot(torch.tensor([], dtype=torch.long))  # no label, no class count
    with pytest.raises(ValueError, match="n_classes must be an integer, got 2.0"):
        data.one_hot([0, 1], n_classes=2.0)
    previous = torch.get_default_dtype()
    try:
        torch.set_default_dtype(torch.float64)
        assert data.one_hot([1]).dtype == torch.float64
    finally:
        torch.set_default_dtype(previous)
    assert data.one_hot([1], dtype=torch.float16).dtype == torch.float16


# Held-out style bugs


@pytest.mark.parametrize("fraction", [0.6, 0.9])
def test_stratified_split_keeps_a_training_sample_of_every_class_even_when_rounding_takes_all(
    fraction,
):
    """Per class ``c`` of ``n_c`` samples the validation part is ``round(fraction n_c)``, at
    most ``n_c - 1``: a class of 1 sample (``round(0.6) = 1``) and one of 3 (``round(2.7) =
    3`` at 0.9) keep one sample each for training; planted counts, checked per class."""
    y = torch.tensor([0, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2])
    X = torch.arange(len(y), dtype=torch.float64)[:, None]
    X_tr, y_tr, X_va, y_va = data.train_val_split(X, y, fraction, seed=3)
    for c, n_c in ((0, 1), (1, 3), (2, 10)):
        expected_val = min(int(np.round(fraction * n_c)), n_c - 1)
        assert int((y_va == c).sum()) == expected_val
        assert int((y_tr == c).sum()) == n_c - expected_val
    # the samples are a partition of the inputs, labels travelling with their samples
    assert sorted(torch.cat([X_tr, X_va])[:, 0].tolist()) == X[:, 0].tolist()
    for Xs, ys in ((X_tr, y_tr), (X_va, y_va)):
        assert torch.equal(y[Xs[:, 0].long()], ys)


# Mutation testing of the argument checks added for hostile inputs (`make mutation
# MODULES=splits`): each error starts with the argument's name, each bound is the documented one.


_X6, _y6 = torch.arange(6.0)[:, None], torch.tensor([0, 1, 0, 1, 0, 1])


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(validation_fraction=0.0), ValueError, r"^validation_fraction must be in \(0, 1\)"),
        (dict(validation_fraction=1.0), ValueError, r"^validation_fraction must be in \(0, 1\)"),
        (dict(validation_fraction=1.5), ValueError, r"^validation_fraction must be in \(0, 1\)"),
        (dict(validation_fraction="0.2"), TypeError, "^validation_fraction must be"),
        (dict(stratify="yes"), TypeError, "^stratify must be"),
        (dict(X=torch.full((6, 1), float("nan"))), ValueError, "^X "),
        (dict(Y=torch.tensor([0.0, 1, 0, 1, 0, float("inf")])), ValueError, "^Y "),
        (dict(Y=np.array(list("abcabc"))), TypeError, "^Y must hold numbers"),
        (dict(Y=[[0, 1], [1]] * 3), TypeError, "^Y must be an array of numbers"),
        (dict(Y=torch.tensor([0.5, 1, 0, 1, 0, 1])), ValueError, "^Y must hold integer class"),
        (dict(X=torch.tensor(1.0)), ValueError, "^X must have a sample axis"),
        (dict(X=torch.zeros(6, 1, device="meta")), ValueError, "^X "),
        (dict(X=[["a"]] * 6), TypeError, "^X "),
        (dict(X=_X6[:1], Y=_y6[:1]), ValueError, "^X must hold at least 2 samples"),
    ],
)
def test_split_arguments_are_named(kwargs, error, match):
    args = dict(X=_X6, Y=_y6) | kwargs
    with pytest.raises(error, match=match):
        train_val_split(args.pop("X"), args.pop("Y"), **args)


def test_split_bounds_and_defaults():
    """Two samples are enough (one each side); the validation split never takes every
    sample; the defaults are a stratified 0.2 split with seed 0."""
    X, y = torch.arange(2.0)[:, None], torch.tensor([0.0, 1.0])
    Xt, yt, Xv, yv = train_val_split(X, y, 0.5, stratify=False)
    assert (len(Xt), len(Xv)) == (1, 1)
    X3 = torch.arange(3.0)[:, None]
    Xt, _, Xv, _ = train_val_split(X3, torch.zeros(3), 0.99, stratify=False)
    assert (len(Xt), len(Xv)) == (1, 2)  # n - 1 at most
    X10, y10 = torch.arange(10.0)[:, None], torch.arange(10) % 2
    default = train_val_split(X10, y10)
    explicit = train_val_split(X10, y10, 0.2, 0, stratify=True)
    assert all(torch.equal(a, b) for a, b in zip(default, explicit, strict=True))
    assert default[3].bincount().tolist() == [1, 1]  # stratified: one of each class


def test_one_hot_dtype_is_named():
    with pytest.raises(ValueError, match="^dtype must be one of torch.float16"):
        one_hot(torch.tensor([0, 1]), dtype=torch.complex64)
    with pytest.raises((TypeError, ValueError), match="^dtype must be"):
        one_hot(torch.tensor([0, 1]), dtype="complex64")


def test_labels_are_named_and_lists_split_like_tensors():
    import scipy.sparse

    for y, match in [
        (np.array(["a", "b"]), "^y must hold numbers"),
        (torch.zeros(2, dtype=torch.int64, device="meta"), "^y "),
        (scipy.sparse.csr_matrix(np.eye(2)), "^y must be a dense tensor or array, got a scipy"),
    ]:
        with pytest.raises((TypeError, ValueError), match=match):
            one_hot(y)
    from_lists = train_val_split(_X6.tolist(), _y6.tolist())
    from_tensors = train_val_split(_X6, _y6)
    assert all(torch.equal(a, b) for a, b in zip(from_lists, from_tensors, strict=True))


def test_the_estimators_split_is_stratified_by_default():
    """ConvRFM calls the private split without ``stratify``: it must be the stratified one."""
    from agop.data.splits import _train_val_split

    X10, y10 = torch.arange(10.0)[:, None], torch.tensor([0] * 7 + [1] * 3)
    private = _train_val_split(X10, y10, 0.2, 0)
    public = train_val_split(X10, y10, 0.2, 0, stratify=True)
    assert all(torch.equal(a, b) for a, b in zip(private, public, strict=True))


# Hostile inputs, round 4


def test_one_hot_of_an_empty_y_asks_for_n_classes():
    """An empty ``y`` has no largest label: the error names ``y`` (not an ``n_classes`` the
    caller never passed), and with ``n_classes`` given the answer is the empty ``(0, C)``."""
    with pytest.raises(ValueError, match="^y is empty.*pass n_classes"):
        one_hot(torch.zeros(0, dtype=torch.long))
    assert one_hot(torch.zeros(0, dtype=torch.long), 3).shape == (0, 3)


@pytest.mark.parametrize("n", [0, 1])
def test_train_val_split_of_too_few_samples_names_X(n):
    X, Y = torch.zeros(n, 1, 2, 2), torch.zeros(n)
    with pytest.raises(ValueError, match=f"^X must hold at least 2 samples to split, got {n}"):
        train_val_split(X, Y)


# Held-out style bugs, round 5


@pytest.mark.parametrize("stratify", [True, False])
def test_the_split_leaves_the_global_generators_alone(stratify):
    """The split draws from its own ``torch.Generator`` seeded with ``seed``: torch's, NumPy's
    and Python's global generators are where the caller left them, so that the caller's own
    draws after a split are those it would have made without it (was: ``torch.manual_seed``
    reset the global stream to ``seed``, an identical split and a silent side effect)."""
    import random

    torch.manual_seed(12345)
    np.random.seed(12345)
    random.seed(12345)
    before = torch.get_rng_state(), np.random.get_state(), random.getstate()
    X, y = torch.arange(20.0)[:, None], torch.tensor([0, 1] * 10)
    train_val_split(X, y, 0.3, seed=0, stratify=stratify)
    assert torch.equal(torch.get_rng_state(), before[0])
    np_state = np.random.get_state()
    assert np_state[0] == before[1][0] and np.array_equal(np_state[1], before[1][1])
    assert np_state[2:] == before[1][2:]
    assert random.getstate() == before[2]


# --------------------------------------------------------------------------------------------
# Hostile inputs, round 6
# --------------------------------------------------------------------------------------------


def test_one_hot_of_the_largest_int64_label_is_refused_by_name():
    """A label 2**63 - 1 asks for 2**63 columns: torch.zeros failed with "Overflow when
    unpacking long long" (a TypeError naming nothing) instead of the memory check."""
    with pytest.raises(
        ValueError, match="^y: one_hot of 1 labels into n_classes=9223372036854775808"
    ):
        one_hot(np.array([2**63 - 1]))
    with pytest.raises(
        ValueError, match="^n_classes: one_hot of 2 labels into n_classes=10000000000000"
    ):
        one_hot([0, 1], n_classes=10**13)


def test_one_hot_and_split_read_reversed_numpy_views():
    """Negative strides (y[::-1]) failed in torch.from_numpy, naming nothing."""
    y = np.array([0, 1, 2, 2])
    assert one_hot(y[::-1]).tolist() == one_hot(y[::-1].copy()).tolist()
    X, Y = np.arange(20.0).reshape(10, 2), np.array([0] * 5 + [1] * 5)
    got = train_val_split(X[::-1], Y[::-1], seed=3)
    want = train_val_split(X[::-1].copy(), Y[::-1].copy(), seed=3)
    for a, b in zip(got, want, strict=True):
        assert torch.equal(a, b)
