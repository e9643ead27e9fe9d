"""Every estimator survives a failed fit (scikit-learn's ``_fit_context`` idea).

A fit that is rejected -- bad ``X``, bad ``y``, a bad parameter -- or that fails inside after
some of its work is done must leave a fitted estimator exactly as it was: the same fitted
attributes (the same objects) and bit-identical predictions; and an estimator whose first fit
fails stays unfitted (``NotFittedError`` from every method). One registry of (estimator, tiny
valid data, a bad parameter, functions called last and mid-fit, one made to give NaN, its count
parameter) runs against every kind of rejection (``KINDS``): bad ``X`` and ``y``, bad
parameters, absurd counts, failures, Ctrl-C and NaN inside the fit. Then absurd sizes, and the
estimators' life inside scikit-learn: pickle, deepcopy, clone, grid search over numpy integers,
warm refits on other data, labels of any dtype, one and zero samples, ``score``'s weights.
"""

from __future__ import annotations

import copy
import importlib
import pickle
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import scipy.sparse
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from agop.deep_rfm import DeepConvRFM
from agop.rfm import RFM, ConvRFM
from agop_book.ch05_deep_convrfm import bars_in_noise
from agop_book.nets import CNNBaseline

CPU = dict(random_state=0, device="cpu", progress=False)


@dataclass
class Case:
    make: Callable[[], Any]
    bad_param: tuple[str, Any]  # a value the fit rejects (one predict would misuse if read)
    last_step: tuple[str, str]  # (module, name) of a function the fit calls, last of all
    middle_step: tuple[str, str, int]  # (module, attribute, k): its k-th call is mid-fit
    nan_step: tuple[str, str]  # (module, attribute) whose first result becomes NaN
    count: str  # the parameter that counts rounds or epochs


CASES = {
    "ConvRFM": Case(
        lambda: ConvRFM("laplace", patch_size=3, n_iter=2, **CPU),
        ("padding", -1),  # F.pad with -1 would crop the images at predict
        ("agop.rfm", "fit_kernel_machine"),
        ("agop.rfm", "fit_kernel_machine", 2),  # the second round
        ("agop.kernels.objects", "Kernel._agop"),
        "n_iter",
    ),
    "RFM": Case(
        lambda: RFM(n_iter=2, **CPU),
        ("bandwidth", -1.0),
        ("agop.rfm", "fit_kernel_machine"),
        ("agop.rfm", "fit_kernel_machine", 2),
        ("agop.kernels.objects", "Kernel._agop"),
        "n_iter",
    ),
    "DeepConvRFM": Case(
        lambda: DeepConvRFM(depth=2, width=3, patch_size=3, n_iter=1, **CPU),
        ("image_shape", (0, 1, 1)),  # the fitted estimator reads images, whatever it says now
        ("agop.rfm", "fit_kernel_machine"),  # its last call is in the second layer
        ("agop.rfm", "ConvRFM.fit", 2),  # the second layer
        ("agop.kernels.objects", "Kernel._agop"),
        "n_iter",
    ),
    "CNNBaseline": Case(
        lambda: CNNBaseline(depth=1, width=3, patch_size=3, epochs=3, **CPU),
        ("image_shape", (0, 1, 1)),
        ("agop_book.nets", "cnfm"),  # after the training, before the fitted state
        ("torch.optim", "Adam.step", 3),  # one batch per epoch: the third epoch
        ("torch.optim", "Adam.step"),  # weights NaN after a step: every loss still finite
        "epochs",
    ),
}


def _data() -> tuple[np.ndarray, np.ndarray]:
    X, y = bars_in_noise(24, sigma=1.0, height=6, width=6, seed=0, dtype=torch.float64)
    return X.numpy(), y.numpy()


def _planted_failure(monkeypatch, case: Case, X, y) -> None:
    """Make the fit fail at the last call of ``case.last_step`` (counted on a good fit), when
    everything but the assignment of the fitted state has run."""
    module = importlib.import_module(case.last_step[0])
    real = getattr(module, case.last_step[1])
    calls: list[int] = []

    def counted(*args, **kwargs):
        calls.append(1)
        if len(calls) == last:
            raise RuntimeError("planted failure in the last step of the fit")
        return real(*args, **kwargs)

    last = -1
    monkeypatch.setattr(module, case.last_step[1], counted)
    case.make().fit(X, y)
    last, calls[:] = len(calls), []
    assert last >= 1


def _owner(module: str, attribute: str) -> tuple[Any, str]:
    """The object that holds ``module.attribute`` (a class for ``Class.method``) and the name."""
    owner = importlib.import_module(module)
    *path, name = attribute.split(".")
    for part in path:
        owner = getattr(owner, part)
    return owner, name


def _fail_at(monkeypatch, module: str, attribute: str, k: int, error: BaseException) -> None:
    """``module.attribute`` raises ``error`` on its ``k``-th call (the others run)."""
    owner, name = _owner(module, attribute)
    real = getattr(owner, name)
    calls: list[int] = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == k:
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, failing)


def _nan_from(monkeypatch, module: str, attribute: str) -> None:
    """The first call of ``module.attribute`` makes NaN: its result (a kernel's AGOP) is NaN,
    or, for an optimizer's step, the weights it updated are."""
    owner, name = _owner(module, attribute)
    real = getattr(owner, name)
    calls: list[int] = []

    def poisoned(*args, **kwargs):
        out = real(*args, **kwargs)
        calls.append(1)
        if len(calls) > 1:
            return out
        if isinstance(out, torch.Tensor):
            return torch.full_like(out, torch.nan)
        with torch.no_grad():  # an optimizer: args[0] is it, its parameters just stepped
            for group in args[0].param_groups:
                for p in group["params"]:
                    p.fill_(torch.nan)
        return out

    monkeypatch.setattr(owner, name, poisoned)


def _reject(kind: str, case: Case, est, X, y, monkeypatch) -> tuple[type, str]:
    """Attempt the bad fit ``kind`` on ``est``; return the expected error and message."""
    n = len(y)
    if kind == "X_shape":
        bad = (X.ravel(), y), ValueError, r"X|array"
    elif kind == "X_nan":
        Xb = X.copy()
        Xb[3, 0, 2, 2] = np.nan
        bad = (Xb, y), ValueError, r"non-finite|NaN"
    elif kind == "X_sparse":
        bad = (scipy.sparse.csr_matrix(X.reshape(n, -1)), y), TypeError, "sparse"
    elif kind == "y_length":
        bad = (X, y[:-1]), ValueError, "one label per image"
    elif kind == "one_class":
        bad = (X, np.zeros(n, dtype=int)), ValueError, "at least two classes"
    elif kind == "continuous":
        bad = (X, y + np.linspace(0.1, 0.4, n)), ValueError, "continuous"
    elif kind == "param":
        name, value = case.bad_param
        est.set_params(**{name: value})
        bad = (X, y), ValueError, name
    elif kind == "mid_fit":
        _planted_failure(monkeypatch, case, X, y)
        bad = (X, y), RuntimeError, "planted failure"
    elif kind == "X_inf":
        Xb = X.copy()
        Xb[5, 0, 1, 4] = -np.inf
        bad = (Xb, y), ValueError, r"X contains 1 non-finite"
    elif kind == "X_ragged":  # a nested list whose rows differ in length
        bad = ([[0.5, 1.0], [2.0]] * (n // 2), y), ValueError, r"^X must be a (rect|tensor)"
    elif kind == "X_empty":
        bad = (X[:0], y[:0]), ValueError, r"X is empty|0 sample"
    elif kind == "y_nan":
        bad = (X, np.where(np.arange(n) == 4, np.nan, y)), ValueError, "y contains NaN"
    elif kind == "progress":  # "no" would be true, and show a bar
        est.set_params(progress="no")
        bad = (X, y), TypeError, "progress must be True or False"
    elif kind == "count":  # an absurd number of rounds or epochs: no OverflowError, no hang
        est.set_params(**{case.count: 10**30})
        bad = (X, y), ValueError, rf"{case.count} must be a non-negative integer <= 2147483647"
    elif kind == "middle":
        module, attribute, k = case.middle_step
        _fail_at(monkeypatch, module, attribute, k, RuntimeError("planted failure mid-fit"))
        bad = (X, y), RuntimeError, "planted failure mid-fit"
    elif kind == "interrupt":  # Ctrl-C in the middle of the fit
        module, attribute, k = case.middle_step
        _fail_at(monkeypatch, module, attribute, k, KeyboardInterrupt())
        bad = (X, y), KeyboardInterrupt, "^$"
    elif kind == "nan_inside":
        _nan_from(monkeypatch, *case.nan_step)
        bad = (X, y), (ValueError, FloatingPointError), r"AGOP of round 0|weights overflowed"
    else:
        raise AssertionError(kind)
    (Xb, yb), error, match = bad
    with pytest.raises(error, match=match):
        est.fit(Xb, yb)
    return error, match


KINDS = [
    "X_shape",
    "X_nan",
    "X_sparse",
    "y_length",
    "one_class",
    "continuous",
    "param",
    "mid_fit",
    "X_inf",
    "X_ragged",
    "X_empty",
    "y_nan",
    "progress",
    "count",
    "middle",
    "interrupt",
    "nan_inside",
]


def _fitted_state(est) -> dict[str, Any]:
    return {k: v for k, v in vars(est).items() if k.endswith("_")}


def _same(a: Any, b: Any) -> bool:
    """``a`` and ``b`` hold the same values, to the bit (tensors, arrays, modules, containers
    and objects, recursively): a deep copy taken before a failed fit equals the state after."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, torch.nn.Module):
        return _same(a.state_dict(), b.state_dict())
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    if hasattr(a, "__dict__") and not callable(getattr(a, "__func__", None)) and vars(a):
        return type(a) is type(b) and _same(vars(a), vars(b))
    return a is b or a == b


def _everything(est, X, y) -> dict[str, Any]:
    """Every answer of the fitted estimator on ``(X, y)``."""
    out = {"predict": est.predict(X), "decision_function": est.decision_function(X)}
    out["score"] = est.score(X, y)
    for name in ("predict_proba", "transform"):
        if hasattr(est, name):
            out[name] = getattr(est, name)(X)
    for name in ("score_layers", "score_iterations"):
        if hasattr(est, name):
            out[name] = getattr(est, name)(X, y)
    return out


#: every method that needs a fitted estimator, with the arguments it takes
FITTED_METHODS = [
    ("predict", "X"),
    ("decision_function", "X"),
    ("predict_proba", "X"),
    ("score", "Xy"),
    ("transform", "X"),
    ("score_layers", "Xy"),
    ("score_iterations", "Xy"),
    ("feature_maps", "X"),
    ("layer_inputs", "X"),
    ("agops", "X"),
    ("transform_shapes", ""),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_a_rejected_refit_leaves_the_fitted_estimator_as_it_was(name, kind, monkeypatch):
    case = CASES[name]
    X, y = _data()
    est = case.make().fit(X, y)
    answers = _everything(est, X, y)
    state, values, params = _fitted_state(est), copy.deepcopy(_fitted_state(est)), est.get_params()
    _reject(kind, case, est, X, y, monkeypatch)
    monkeypatch.undo()  # the planted failures are for the fit only
    after = _fitted_state(est)
    assert after.keys() == state.keys()
    changed = [k for k in state if after[k] is not state[k]]
    assert not changed, f"fitted attributes replaced by the failed fit: {changed}"
    changed = [k for k in state if not _same(after[k], values[k])]
    assert not changed, f"fitted attributes changed in place by the failed fit: {changed}"
    set_now = {case.bad_param[0], "progress", case.count}
    assert {k: v for k, v in est.get_params().items() if k not in set_now} == {
        k: v for k, v in params.items() if k not in set_now
    }
    again = _everything(est, X, y)
    assert again.keys() == answers.keys()
    for method, answer in answers.items():
        assert _same(again[method], answer), method


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_a_failed_first_fit_leaves_the_estimator_unfitted(name, kind, monkeypatch):
    case = CASES[name]
    X, y = _data()
    est = case.make()
    _reject(kind, case, est, X, y, monkeypatch)
    monkeypatch.undo()
    assert _fitted_state(est) == {}
    methods = [(m, args) for m, args in FITTED_METHODS if hasattr(est, m)]
    assert len(methods) >= 4
    for method, args in methods:
        with pytest.raises(NotFittedError, match="not fitted yet"):
            getattr(est, method)(*{"X": (X,), "Xy": (X, y), "": ()}[args])


def _nan_beyond(h: torch.Tensor) -> torch.Tensor:
    """ReLU that gives NaN on large inputs: fine on the up-front probe, not on the data."""
    return torch.where(h.abs() > 2.5, torch.nan, torch.relu(h))


def _flattens(h: torch.Tensor) -> torch.Tensor:
    return h.flatten(1)


def _raises_on_data(h: torch.Tensor) -> torch.Tensor:
    if h.numel() > 8:  # the probe has 8 values
        raise RuntimeError("nonlinearity broke on the data")
    return h


# ---- validation comes first -----------------------------------------------------------------

UP_FRONT = [
    ("ConvRFM", "agop.rfm", "rfm_iterations", dict(ridges=[]), "ridges"),
    ("RFM", "agop.rfm", "rfm_iterations", dict(power=0.0), "power"),
    # Deep ConvRFM checks what it passes on to its layers before fitting the first one
    ("DeepConvRFM", "agop.rfm", "ConvRFM.fit", dict(ridges=[1e-3, -1.0]), r"ridges\[1\]"),
    ("DeepConvRFM", "agop.rfm", "ConvRFM.fit", dict(power=0.0), "power"),
    ("DeepConvRFM", "agop.rfm", "ConvRFM.fit", dict(validation_fraction=1.5), "validation"),
    ("DeepConvRFM", "agop.rfm", "ConvRFM.fit", dict(y=np.arange(24) + 0.5), "continuous"),
    ("DeepConvRFM", "agop.rfm", "ConvRFM.fit", dict(nonlinearity=_flattens), "nonlinearity"),
    ("CNNBaseline", "agop_book.nets", "train", dict(validation_fraction=1.5), "validation"),
]


@pytest.mark.parametrize("name, module, heavy, params, match", UP_FRONT)
def test_bad_parameters_are_rejected_before_any_work(
    name, module, heavy, params, match, monkeypatch
):
    """Deep ConvRFM passes most parameters on to its layers' ConvRFMs; it checks them (and the
    labels) itself before the first layer is fitted, and probes a custom nonlinearity; the
    other estimators check theirs before their rounds or their training."""

    def not_reached(*args, **kwargs):
        raise AssertionError(f"{heavy} ran before the parameters were checked")

    owner = importlib.import_module(module)
    *path, attr = heavy.split(".")
    for part in path:
        owner = getattr(owner, part)
    monkeypatch.setattr(owner, attr, not_reached)
    X, y = _data()
    params = dict(params)
    y = params.pop("y", y)
    with pytest.raises(ValueError, match=match):
        CASES[name].make().set_params(**params).fit(X, y)


# ---- Deep ConvRFM's custom nonlinearity ------------------------------------------------------


@pytest.mark.parametrize(
    "phi, error, match",
    [
        (_nan_beyond, ValueError, r"nonlinearity '_nan_beyond' returned \d+ non-finite values"),
        (_flattens, ValueError, r"nonlinearity '_flattens' must return a tensor of its input's"),
        (_raises_on_data, RuntimeError, "broke on the data"),
    ],
)
def test_a_bad_custom_nonlinearity_fails_the_fit_and_keeps_the_old_one(phi, error, match):
    """The nonlinearity is applied between the first and the second layer, after the first
    layer is fitted (a wrong shape is caught up front already). Its failure names it (not
    ``X``) and leaves the fitted estimator as it was; a fresh one stays unfitted."""
    X, y = _data()
    est = CASES["DeepConvRFM"].make().fit(X, y)
    predicted, state = est.predict(X), _fitted_state(est)
    with pytest.raises(error, match=match):
        est.set_params(nonlinearity=phi).fit(X, y)
    assert all(_fitted_state(est)[k] is v for k, v in state.items())
    np.testing.assert_array_equal(est.predict(X), predicted)
    fresh = clone(est)
    with pytest.raises(error, match=match):
        fresh.fit(X, y)
    with pytest.raises(NotFittedError):
        fresh.predict(X)


# ---- absurd sizes are rejected before any work -----------------------------------------------

ABSURD = [
    # (estimator, parameters, (module, function) that must not run, the message)
    ("ConvRFM", dict(padding=10**9), ("agop.rfm", "rfm_iterations"), r"^padding: the padded"),
    ("ConvRFM", dict(padding=10**5), ("agop.rfm", "rfm_iterations"), r"^padding: the padded"),
    ("DeepConvRFM", dict(width=10**30), ("agop.rfm", "ConvRFM.fit"), "width: the metrics and"),
    ("DeepConvRFM", dict(depth=10**30), ("agop.rfm", "ConvRFM.fit"), r"depth must .* 2147483647"),
    # 1 x 1 patches: the images never get too small, so the size of the layers decides
    ("DeepConvRFM", dict(depth=10**9, patch_size=1), ("agop.rfm", "ConvRFM.fit"), "n_layers"),
    ("DeepConvRFM", dict(depth=10**9), ("agop.rfm", "ConvRFM.fit"), "need at least"),
    ("CNNBaseline", dict(depth=10**9, patch_size=1), ("agop_book.nets", "SimpleCNN"), "depth,"),
    ("CNNBaseline", dict(width=10**9), ("agop_book.nets", "SimpleCNN"), "depth, width: the"),
]


@pytest.mark.parametrize("name, params, heavy, match", ABSURD)
def test_absurd_sizes_get_an_error_naming_them_before_any_work(
    name, params, heavy, match, monkeypatch
):
    """A size that cannot fit in memory (padding, width, the layers of a huge depth) is an
    error that names it, raised before the work it would size starts (not an allocator's
    failure, an overflow in a shape, or a loop over 10**9 layers), and the fitted estimator
    is left as it was."""
    X, y = _data()
    est = CASES[name].make().fit(X, y)
    scores = est.decision_function(X)

    def not_reached(*args, **kwargs):
        raise AssertionError(f"{heavy} ran before the size was checked")

    monkeypatch.setattr(*_owner(*heavy), not_reached)
    with pytest.raises(ValueError, match=match):
        est.set_params(**params).fit(X, y)
    np.testing.assert_array_equal(est.decision_function(X), scores)


# ---- life inside scikit-learn ----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CASES))
def test_pickle_deepcopy_and_clone(name):
    """A pickled or deep-copied fitted estimator answers everything exactly as the original;
    a clone is unfitted, with the same parameters, and its fit gives the same answers."""
    X, y = _data()
    est = CASES[name].make().fit(X, y)
    answers = _everything(est, X, y)
    for other in (pickle.loads(pickle.dumps(est)), copy.deepcopy(est)):
        assert _same(_fitted_state(other), _fitted_state(est))
        again = _everything(other, X, y)
        assert all(_same(again[k], answers[k]) for k in answers)
    twin = clone(est)
    assert _fitted_state(twin) == {} and twin.get_params() == est.get_params()
    again = _everything(twin.fit(X, y), X, y)
    assert all(_same(again[k], answers[k]) for k in answers)


@pytest.mark.parametrize("name", sorted(CASES))
def test_grid_search_over_numpy_integers(name):
    """GridSearchCV with numpy integers (int64, uint8) for the count of rounds or epochs picks
    a value and refits: the same machine as the estimator built with the Python int."""
    X, y = _data()
    count = CASES[name].count
    grid = {count: np.array([1, 2], dtype=np.uint8)}
    search = GridSearchCV(CASES[name].make(), grid, cv=2, error_score="raise").fit(X, y)
    best = int(search.best_params_[count])
    direct = CASES[name].make().set_params(**{count: best}).fit(X, y)
    np.testing.assert_array_equal(
        search.best_estimator_.decision_function(X), direct.decision_function(X)
    )
    scores = cross_val_score(
        CASES[name].make().set_params(**{count: np.int64(1)}), X, y, cv=2, error_score="raise"
    )
    assert scores.shape == (2,) and np.all((scores >= 0) & (scores <= 1))


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_refit_on_other_data_is_a_fresh_fit(name):
    """A warm refit with three classes, two channels and another image size, or in float32
    after float64, gives exactly the estimator fitted on that data from scratch; the old
    shape is then rejected."""
    X, y = _data()
    X3, _ = bars_in_noise(36, sigma=1.0, height=7, width=6, seed=1, dtype=torch.float64)
    X3 = torch.cat([X3, X3.flip(-1)], 1).numpy()  # two channels, 7 x 6
    y3 = np.arange(36) % 3
    est = CASES[name].make().fit(X, y).fit(X3, y3)
    fresh = CASES[name].make().fit(X3, y3)
    np.testing.assert_array_equal(est.classes_, [0, 1, 2])
    assert est.n_features_in_ == 2 * 7 * 6
    np.testing.assert_array_equal(est.decision_function(X3), fresh.decision_function(X3))
    with pytest.raises(ValueError, match=r"training images' shape \(c, H, W\)|expecting 84"):
        est.predict(X)
    est.fit(X.astype(np.float32), y)
    fresh = CASES[name].make().fit(X.astype(np.float32), y)
    assert est.decision_function(X).dtype == np.float32
    np.testing.assert_array_equal(est.decision_function(X), fresh.decision_function(X))


LABELS = {
    "str": lambda y: np.array(["cat", "dog"])[y],
    "object": lambda y: np.array(["a", "b"], dtype=object)[y],
    "uint8": lambda y: (y * 200).astype(np.uint8),
    "bool": lambda y: y.astype(bool),
    "int8": lambda y: (2 * y - 1).astype(np.int8),
    "torch.bool": lambda y: torch.as_tensor(y.astype(bool)),
    "one-hot bool": lambda y: np.eye(2, dtype=bool)[y],
}


@pytest.mark.parametrize("kind", sorted(LABELS))
@pytest.mark.parametrize("name", sorted(CASES))
def test_labels_of_any_kind_are_classes_of_their_own_dtype(name, kind):
    """Labels of any kind give the machine of the integer codes 0, 1 (np.unique's order):
    ``classes_`` is the sorted labels in their own dtype, ``predict`` maps the codes through it
    and the scores are the same, bit for bit."""
    X, y = _data()
    labels = LABELS[kind](y)
    codes = CASES[name].make().fit(X, y)
    est = CASES[name].make().fit(X, labels)
    plain = labels.numpy() if isinstance(labels, torch.Tensor) else labels
    expected = np.arange(2) if plain.ndim == 2 else np.unique(plain)
    np.testing.assert_array_equal(est.classes_, expected)
    assert est.classes_.dtype == expected.dtype
    np.testing.assert_array_equal(est.decision_function(X), codes.decision_function(X))
    np.testing.assert_array_equal(est.predict(X), expected[codes.predict(X)])
    assert est.score(X, labels) == codes.score(X, y)


@pytest.mark.parametrize("name", sorted(CASES))
def test_one_sample_and_no_samples(name):
    """One image gets its row of the batch's answer; zero images are an error naming X, in
    every method that reads images (the same for the four estimators)."""
    X, y = _data()
    est = CASES[name].make().fit(X, y)
    np.testing.assert_array_equal(est.predict(X[5:6]), est.predict(X)[5:6])
    np.testing.assert_allclose(
        est.decision_function(X[5:6]), est.decision_function(X)[5:6], rtol=1e-12, atol=1e-14
    )
    for method, args in FITTED_METHODS:
        if hasattr(est, method) and args:
            with pytest.raises(ValueError, match=r"X is empty|0 sample"):
                getattr(est, method)(*{"X": (X[:0],), "Xy": (X[:0], y[:0])}[args])


SAMPLE_WEIGHTS = [
    (np.ones(5), ValueError, r"one weight per image of X \(24\)"),
    (-np.ones(24), ValueError, "non-negative"),
    (np.where(np.arange(24) == 0, -1.0, 1.0), ValueError, "non-negative"),
    (np.full(24, np.nan), ValueError, "finite"),
    (np.zeros(24), ValueError, "at least one positive"),
    (np.array(["1"] * 24), TypeError, "sample_weight must hold numbers"),
]


@pytest.mark.parametrize("name", sorted(CASES))
def test_score_takes_valid_sample_weights_only(name):
    """``score``'s weights: a weighted mean of correct predictions (np.average), and a clear
    error naming ``sample_weight`` for a wrong length, a negative weight (which could take the
    accuracy out of [0, 1]), NaN, all zeros or strings."""
    X, y = _data()
    est = CASES[name].make().fit(X, y)
    w = np.linspace(0.0, 2.0, len(y))
    assert est.score(X, y, sample_weight=w) == pytest.approx(
        np.average(est.predict(X) == y, weights=w), abs=1e-15
    )
    for weights, error, match in SAMPLE_WEIGHTS:
        with pytest.raises(error, match=match):
            est.score(X, y, sample_weight=weights)


def test_a_kernel_object_parameter_is_copied_by_the_fit():
    """Mutating the kernel object given as a parameter after the fit (or refitting another
    estimator that shares it) does not change the fitted machine."""
    from agop.kernels import Laplace

    X, y = _data()
    kernel = Laplace(3)
    est = ConvRFM(kernel, patch_size=3, n_iter=1, **CPU).fit(X, y)
    scores = est.decision_function(X)
    assert est.kernel_ is not kernel and est.kernel_ == kernel
    kernel.bandwidth = 0.01
    np.testing.assert_array_equal(est.decision_function(X), scores)


def test_an_overflowing_optimizer_step_is_an_error_naming_lr():
    """With one epoch and lr=1e308 every loss is finite (each is taken before its step), but
    the weights after the last step are not: the fit raises, naming lr, and keeps nothing."""
    X, y = _data()
    est = CASES["CNNBaseline"].make().set_params(epochs=1, lr=1e308)
    with pytest.raises(FloatingPointError, match=r"weights overflowed .* \(lr=1e\+308\); lower lr"):
        est.fit(X, y)
    assert _fitted_state(est) == {}


def test_rfm_in_a_pipeline_is_rfm_on_the_transformed_rows():
    """RFM after a StandardScaler in a Pipeline is RFM fitted on the scaled rows."""
    X, y = _data()
    rows = X.reshape(len(y), -1)
    pipe = make_pipeline(StandardScaler(), RFM(n_iter=1, **CPU)).fit(rows, y)
    scaled = StandardScaler().fit_transform(rows)
    direct = RFM(n_iter=1, **CPU).fit(scaled, y)
    np.testing.assert_array_equal(pipe.decision_function(rows), direct.decision_function(scaled))
    assert pipe.score(rows, y) == direct.score(scaled, y)


@pytest.mark.parametrize("name", sorted(CASES))
def test_read_only_arrays_are_read_without_a_warning(name):
    """A read-only array (a pandas frame's values, a memory map) gives the machine of a
    writable copy, with no warning from torch about non-writable arrays."""
    X, y = _data()
    frozen = X.copy()
    frozen.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = CASES[name].make().fit(frozen, y)
        scores = est.decision_function(frozen)
    np.testing.assert_array_equal(scores, CASES[name].make().fit(X, y).decision_function(X))


@pytest.mark.parametrize("name", sorted(CASES))
def test_half_precision_images_are_fitted_in_float32(name):
    """With ``dtype=None`` float16 images are fitted in float32 (the kernels' and Adam's
    half-precision arithmetic under- and overflows): the machine of the same values given in
    float32."""
    X, y = _data()
    half = X.astype(np.float16)
    est = CASES[name].make().fit(half, y)
    same = CASES[name].make().fit(half.astype(np.float32), y)
    assert est.decision_function(half).dtype == np.float32
    np.testing.assert_array_equal(est.decision_function(half), same.decision_function(half))
