"""Every estimator survives a failed fit (scikit-learn's ``_fit_context`` idea).

A fit that is rejected -- bad ``X``, bad ``y``, a bad parameter -- or that fails inside after
some of its work is done must leave a fitted estimator exactly as it was: the same fitted
attributes (the same objects) and bit-identical predictions; and an estimator whose first fit
fails stays unfitted (``NotFittedError``). One registry of (estimator, tiny valid data, a
bad parameter, a function called last in the fit) runs against every kind of rejection.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import scipy.sparse
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

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


CASES = {
    "ConvRFM": Case(
        lambda: ConvRFM("laplace", patch_size=3, n_iter=1, **CPU),
        ("padding", -1),  # F.pad with -1 would crop the images at predict
        ("agop.rfm", "fit_kernel_machine"),
    ),
    "RFM": Case(
        lambda: RFM(n_iter=1, **CPU), ("bandwidth", -1.0), ("agop.rfm", "fit_kernel_machine")
    ),
    "DeepConvRFM": Case(
        lambda: DeepConvRFM(depth=2, width=3, patch_size=3, n_iter=1, **CPU),
        ("image_shape", (0, 1, 1)),  # the fitted estimator reads images, whatever it says now
        ("agop.rfm", "fit_kernel_machine"),  # its last call is in the second layer
    ),
    "CNNBaseline": Case(
        lambda: CNNBaseline(depth=1, width=3, patch_size=3, epochs=2, **CPU),
        ("image_shape", (0, 1, 1)),
        ("agop_book.nets", "cnfm"),  # after the training, before the fitted state
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
    else:
        raise AssertionError(kind)
    (Xb, yb), error, match = bad
    with pytest.raises(error, match=match):
        est.fit(Xb, yb)
    return error, match


KINDS = ["X_shape", "X_nan", "X_sparse", "y_length", "one_class", "continuous", "param", "mid_fit"]


def _fitted_state(est) -> dict[str, Any]:
    return {k: v for k, v in vars(est).items() if k.endswith("_")}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_a_rejected_refit_leaves_the_fitted_estimator_as_it_was(name, kind, monkeypatch):
    case = CASES[name]
    X, y = _data()
    est = case.make().fit(X, y)
    predicted, scores = est.predict(X), est.decision_function(X)
    state = _fitted_state(est)
    _reject(kind, case, est, X, y, monkeypatch)
    after = _fitted_state(est)
    assert after.keys() == state.keys()
    changed = [k for k in state if after[k] is not state[k]]
    assert not changed, f"fitted attributes replaced by the failed fit: {changed}"
    np.testing.assert_array_equal(est.predict(X), predicted)
    np.testing.assert_array_equal(est.decision_function(X), scores)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_a_failed_first_fit_leaves_the_estimator_unfitted(name, kind, monkeypatch):
    case = CASES[name]
    X, y = _data()
    est = case.make()
    _reject(kind, case, est, X, y, monkeypatch)
    assert _fitted_state(est) == {}
    with pytest.raises(NotFittedError, match="not fitted yet"):
        est.predict(X)


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
