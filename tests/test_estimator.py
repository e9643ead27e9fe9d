"""agop.estimator (what the estimators share), through scikit-learn's own estimator checks on
every estimator of the packages (ConvRFM, RFM, DeepConvRFM, the CNN baseline), and the
conventions they rely on: flat rows read as images through ``image_shape``, honest input and
transformer tags.

The checks feed 2-d tabular data (``n x d`` for many ``d``). The image estimators read such
rows as one-channel, one-pixel-high images ``(1, 1, d)`` when ``image_shape=(1, 1, -1)`` (the
CNN as ``d``-channel single pixels ``(d, 1, 1)``, where its 1 x 1 convolution is a dense
layer); with ``image_shape=None`` (the default) they take images ``(n, c, H, W)`` only, say so
in their ``two_d_array`` tag, and scikit-learn then runs none of the tabular checks. RFM reads
any ``(n, ...)`` input as rows. Sizes are tiny, set through the parameters.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import DataConversionWarning, SkipTestWarning
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import check_estimator, parametrize_with_checks

from agop.deep_rfm import DeepConvRFM
from agop.rfm import RFM, ConvRFM
from agop_book.nets import CNNBaseline

ROWS = dict(image_shape=(1, 1, -1), random_state=0, device="cpu", progress=False)

ESTIMATORS = [
    ConvRFM("laplace", patch_size=3, padding=1, n_iter=1, **ROWS),
    ConvRFM("cntk", patch_size=3, padding=1, depth=1, n_iter=1, **ROWS),
    # two feature-learning layers: the second reads the first's random-feature images
    DeepConvRFM(depth=2, width=3, patch_size=1, n_iter=1, **ROWS),
    RFM(n_iter=1, random_state=0, device="cpu", progress=False),
    # one hidden layer of 8 units: enough for the checks' blobs (accuracy above 0.83)
    CNNBaseline(
        depth=1,
        width=8,
        patch_size=1,
        epochs=5,
        lr=0.05,
        batch_size=32,
        image_shape=(-1, 1, 1),
        random_state=0,
        device="cpu",
        progress=False,
    ),
]

#: checks expected to fail, by estimator, with the reason. None is: the two that do not run
#: here are skipped by scikit-learn itself (pandas is not a dependency; the array-API check
#: needs SCIPY_ARRAY_API=1 set before scipy is imported).
EXPECTED_FAILURES: dict[str, dict[str, str]] = {type(e).__name__: {} for e in ESTIMATORS}


@parametrize_with_checks(
    ESTIMATORS,
    xfail_strict=True,
    expected_failed_checks=lambda e: EXPECTED_FAILURES[type(e).__name__],
)
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # ridge sweeps on singular toy kernels
        check(estimator)


# ---- the tags -----------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [ConvRFM, DeepConvRFM, CNNBaseline])
def test_images_only_estimators_are_not_run_on_tabular_checks(cls):
    """Without image_shape the estimator takes 4-d images only: its tag says that 2-d X is
    not supported, and check_estimator skips the tabular checks instead of failing them."""
    assert get_tags(cls()).input_tags.two_d_array is False
    assert get_tags(cls(image_shape=(1, 8, 8))).input_tags.two_d_array is True
    with pytest.warns(SkipTestWarning, match="Can't test estimator"):
        check_estimator(cls())


def test_deep_convrfm_is_a_classifier_and_a_transformer():
    tags = get_tags(DeepConvRFM())
    assert tags.estimator_type == "classifier"
    assert tags.classifier_tags is not None and tags.transformer_tags is not None
    assert tags.transformer_tags.preserves_dtype == ["float64", "float32"]
    assert get_tags(ConvRFM()).transformer_tags is None  # no transform, no transformer tags
    assert get_tags(RFM()).input_tags.two_d_array is True  # rows are RFM's input


# ---- flat rows are images ------------------------------------------------------------------


def _digits(n=60):
    from agop_book.data import digits

    X, y = digits(classes=[0, 1, 2], dtype=torch.float64)
    idx = torch.randperm(X.shape[0], generator=torch.Generator().manual_seed(0))[:n]
    return X[idx].numpy(), y[idx].numpy()


def test_flat_rows_give_the_same_machine_as_images():
    X, y = _digits()
    kw = dict(
        kernel="laplace",
        patch_size=3,
        padding=1,
        n_iter=1,
        random_state=0,
        device="cpu",
        progress=False,
    )
    images = ConvRFM(**kw).fit(X, y)
    rows = ConvRFM(image_shape=(1, 8, -1), **kw).fit(X.reshape(60, 64), y)
    torch.testing.assert_close(rows.M_, images.M_, rtol=0, atol=0)
    np.testing.assert_array_equal(
        rows.decision_function(X.reshape(60, 64)), images.decision_function(X)
    )
    assert rows.n_features_in_ == images.n_features_in_ == 64
    np.testing.assert_array_equal(rows.predict(X), images.predict(X))  # images still accepted
    with pytest.raises(ValueError, match="contradicts image_shape"):
        ConvRFM(image_shape=(1, 4, 16), **kw).fit(X, y)
    with pytest.raises(ValueError, match="X has 63 features, but ConvRFM is expecting 64"):
        rows.predict(X.reshape(60, 64)[:, 1:])
    with pytest.raises(ValueError, match=r"cannot be read as images of shape"):
        ConvRFM(image_shape=(1, 8, 8), **kw).fit(X.reshape(60, 64)[:, :56], y)
    with pytest.raises(ValueError, match=r"X must have shape \(n, c, H, W\)"):
        images.predict(X.reshape(60, 64))  # without image_shape rows are an error
    for bad in [(1, 8), (1, -1, -1), (0, 8, 8), (1, 8, 8.0), (True, 8, 8)]:
        with pytest.raises(ValueError, match="image_shape"):
            ConvRFM(image_shape=bad, **kw).fit(X.reshape(60, 64), y)


def test_deep_transform_returns_rows_for_rows_and_tensors_for_tensors():
    X, y = _digits()
    kw = dict(
        depth=2, width=4, patch_size=3, n_iter=1, random_state=0, device="cpu", progress=False
    )
    images = DeepConvRFM(**kw).fit(X, y)
    rows = DeepConvRFM(image_shape=(1, 8, 8), **kw).fit(X.reshape(60, 64), y)
    torch.testing.assert_close(rows.filters_[0], images.filters_[0], rtol=0, atol=0)
    out_images = images.transform(torch.as_tensor(X))
    assert isinstance(out_images, torch.Tensor) and out_images.shape == (60, 4, 6, 6)
    out_rows = rows.transform(X.reshape(60, 64))
    assert isinstance(out_rows, np.ndarray) and out_rows.shape == (60, 4 * 6 * 6)
    np.testing.assert_array_equal(out_rows, out_images.flatten(1).numpy())
    np.testing.assert_array_equal(rows.fit_transform(X.reshape(60, 64), y), out_rows)
    np.testing.assert_array_equal(rows.predict(X.reshape(60, 64)), images.predict(X))


def test_column_vector_labels_warn_and_are_read_as_labels():
    X, y = _digits(30)
    kw = dict(
        kernel="laplace",
        patch_size=3,
        padding=1,
        n_iter=0,
        random_state=0,
        device="cpu",
        progress=False,
    )
    with pytest.warns(DataConversionWarning, match="column-vector y"):
        column = ConvRFM(**kw).fit(X, y[:, None])
    np.testing.assert_array_equal(column.predict(X), ConvRFM(**kw).fit(X, y).predict(X))
    with pytest.raises(ValueError, match="requires y to be passed"):
        ConvRFM(**kw).fit(X, None)


def test_float32_learned_metric_is_accepted_by_the_next_round():
    """Round-off makes a float32 AGOP's smallest eigenvalues slightly negative (-1.9e-6 of the
    largest in the check that found this); the kernels and the filters accept such a metric."""
    from agop.deep_rfm import random_filters
    from agop.kernels import cntk

    v = torch.tensor([1.0, 2.0, -1.0], dtype=torch.float64)
    M = torch.outer(v, v) / 6
    M32 = (M - 5e-6 * torch.eye(3, dtype=torch.float64)).float()  # eigenvalues 1-5e-6, -5e-6
    X = torch.randn(2, 3, 3, 3, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(cntk(X, None, 1, 1, M=M32)).all()
    assert random_filters(M32, 4, 3, 1, seed=0, device="cpu").shape == (4, 3, 1, 1)
    with pytest.raises(ValueError, match="positive semi-definite"):
        cntk(X.double(), None, 1, 1, M=M32.double())  # in float64 the same matrix is not PSD
    with pytest.raises(ValueError, match="positive semi-definite"):
        cntk(X, None, 1, 1, M=(M - 1e-3 * torch.eye(3, dtype=torch.float64)).float())


# Held-out style bugs


def test_random_seeds_are_numpys_draws_and_keep_int_keeps_only_the_first():
    """``random_seeds`` against numpy directly: ``RandomState(s).randint(2**31 - 1, size=n)``;
    with ``keep_int`` an integer ``s`` is the first seed and the others are the first ``n - 1``
    of those draws (distinct from ``s`` and from each other here), so that DeepConvRFM's
    layers get different filter seeds."""
    from agop.estimator import random_seeds

    draws = np.random.RandomState(11).randint(2**31 - 1, size=4).tolist()
    assert random_seeds(11, 4) == draws
    assert random_seeds(11, 4, keep_int=True) == [11, *draws[:3]]
    assert len(set(random_seeds(11, 4, keep_int=True))) == 4
    assert random_seeds(np.random.RandomState(11), 4, keep_int=True) == draws


# ---- column names of data frames -------------------------------------------------------------


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_dataframe_column_names_follow_scikit_learn(estimator):
    """scikit-learn's own check (not among check_estimator's in this version): a fit on a
    data frame keeps its column names in ``feature_names_in_``, and every method rejects a
    frame with other names, in another order or missing some, with scikit-learn's message."""
    pytest.importorskip("pandas")
    from sklearn.utils.estimator_checks import check_dataframe_column_names_consistency

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        check_dataframe_column_names_consistency(type(estimator).__name__, estimator)


def test_feature_names_are_fitted_state():
    """``feature_names_in_`` is set by a successful fit only: a rejected refit keeps it, a refit
    on an array removes it; arrays after a frame (and frames after an array) warn; a mix of
    string and other column names is a TypeError naming X."""
    pd = pytest.importorskip("pandas")
    X, y = _digits(30)
    rows = X.reshape(30, 64)
    frame = pd.DataFrame(rows, columns=[f"p{i}" for i in range(64)])
    rfm = RFM(n_iter=1, random_state=0, device="cpu", progress=False).fit(frame, y)
    np.testing.assert_array_equal(rfm.feature_names_in_, frame.columns)
    assert rfm.feature_names_in_.dtype == object
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        rfm.predict(rows)
    with pytest.raises(ValueError, match="power"):
        rfm.set_params(power=-1.0).fit(rows, y)
    assert list(rfm.feature_names_in_) == list(frame.columns)
    rfm.set_params(power=1.0).fit(rows, y)
    assert not hasattr(rfm, "feature_names_in_")
    with pytest.warns(UserWarning, match="X has feature names, but RFM was fitted without"):
        rfm.predict(frame)
    mixed = pd.DataFrame(rows, columns=["a", *range(63)])
    with pytest.raises(TypeError, match="X: feature names are only supported if all"):
        RFM(n_iter=1, device="cpu", progress=False).fit(mixed, y)


# Hostile inputs, round 4


def _bars(n=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    X = torch.randn(n, 1, 6, 6, generator=g, dtype=torch.float64)
    X[y == 1, 0, 2, :] += 1.5
    return X, y


@pytest.fixture(scope="module")
def fitted_convrfm():
    X, y = _bars()
    return ConvRFM(patch_size=3, n_iter=1, random_state=0, device="cpu", progress=False).fit(X, y)


@pytest.mark.parametrize("method", ["score", "score_iterations"], ids=["score", "score_iterations"])
@pytest.mark.parametrize(
    "make_y, match",
    [
        # 24 labels in a (4, 6, 1) array: raveled, they were read silently as the labels
        (lambda y: y.reshape(4, 6, 1), r"^y must be labels of shape \(n,\) or one-hot"),
        (lambda y: y.reshape(24, 1, 1), r"^y must be labels of shape \(n,\) or one-hot"),
        # probabilities, not one-hot rows: their argmax was read silently as the labels
        (lambda y: torch.rand(24, 2, generator=torch.Generator().manual_seed(1)), "one-hot"),
        # one-hot rows of 5 columns for 2 classes: an index beyond classes_
        (lambda y: torch.nn.functional.one_hot(y, 5), r"one-hot rows \(n, 2\)"),
    ],
    ids=["(4,6,1)", "(24,1,1)", "probabilities", "5 columns"],
)
def test_score_refuses_y_that_are_not_labels_or_one_hot_rows(fitted_convrfm, method, make_y, match):
    """``fit`` takes labels ``(n,)`` or one-hot rows ``(n, C)``; ``score`` must read ``y`` by
    the same rule (scikit-learn's ``accuracy_score`` refuses continuous 2-d targets too)."""
    X, y = _bars()
    with pytest.raises(ValueError, match=match):
        getattr(fitted_convrfm, method)(X, make_y(y))


def test_score_still_takes_one_hot_rows(fitted_convrfm):
    X, y = _bars()
    one_hot = torch.nn.functional.one_hot(y, 2)
    assert fitted_convrfm.score(X, one_hot) == fitted_convrfm.score(X, y)
    assert fitted_convrfm.score_iterations(X, one_hot) == fitted_convrfm.score_iterations(X, y)


@pytest.mark.parametrize("Estimator", [ConvRFM, CNNBaseline], ids=["ConvRFM", "CNNBaseline"])
def test_fit_refuses_one_hot_rows_of_a_single_class(Estimator):
    """One-hot rows that all mark one column hold one class, as labels ``[0] * n`` do, which
    ``fit`` refuses (scikit-learn: a classifier needs two classes)."""
    X, _ = _bars()
    y = torch.nn.functional.one_hot(torch.zeros(24, dtype=torch.long), 2)
    kw = dict(device="cpu", progress=False, random_state=0)
    model = Estimator(patch_size=3, **kw) if Estimator is ConvRFM else Estimator(depth=1, **kw)
    with pytest.raises(ValueError, match="^y must hold at least two classes.*column 0 .of 2"):
        model.fit(X, y)


def test_bfloat16_labels_and_huge_sample_weights(fitted_convrfm):
    """numpy has no bfloat16 (``y.numpy()`` raised TypeError from torch); weights of 1e308
    overflowed the weighted sum of the accuracy to NaN. The accuracy is scale-free."""
    X, y = _bars()
    model = ConvRFM(patch_size=3, n_iter=1, random_state=0, device="cpu", progress=False)
    assert np.array_equal(model.fit(X, y.bfloat16()).classes_, [0.0, 1.0])
    plain = fitted_convrfm.score(X, y)
    assert fitted_convrfm.score(X, y, sample_weight=np.full(24, 1e308)) == plain
    assert fitted_convrfm.score(X, y.bfloat16()) == plain


# Hostile inputs, round 6


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_nullable_labels_are_read_and_missing_ones_refused(estimator):
    """Labels in a pandas nullable ``Int64`` Series are the integers they hold (the same fit
    as from numpy), and a missing label (``pd.NA``) is refused by the name ``y``."""
    pd = pytest.importorskip("pandas")
    from sklearn.base import clone

    X, y = _bars()
    X, y = X.reshape(len(X), -1).numpy(), y.numpy()  # rows: every estimator here reads them
    frame = pd.Series(y, dtype="Int64")
    a = clone(estimator).fit(X, y)
    b = clone(estimator).fit(X, frame)
    assert np.array_equal(a.classes_, b.classes_)
    assert np.array_equal(a.predict(X), b.predict(X))
    frame[1] = pd.NA
    with pytest.raises(ValueError, match="^y contains 1 missing value"):
        clone(estimator).fit(X, frame)


def test_score_names_y_of_the_wrong_label_type_or_with_nan(fitted_convrfm):
    """score's y reached scikit-learn's accuracy_score unchecked: string labels against the
    integer classes_ raised "Mix of label input types", and NaN "Input y_true contains NaN";
    neither names y. A wrong but well-typed label is a miss, as before."""
    X, y = _bars()
    with pytest.raises(TypeError, match="^y must hold labels of the type fit saw .numbers"):
        fitted_convrfm.score(X, np.where(y.numpy() == 1, "b", "a"))
    with pytest.raises(ValueError, match="^y contains NaN or infinity"):
        fitted_convrfm.score(X, np.full(24, np.nan))
    assert fitted_convrfm.score(X, np.full(24, 7)) == 0.0
    strings = ConvRFM(patch_size=3, n_iter=0, random_state=0, device="cpu", progress=False)
    strings.fit(X, np.where(y.numpy() == 1, "b", "a"))
    with pytest.raises(TypeError, match="^y must hold labels of the type fit saw .strings"):
        strings.score(X, y.numpy())
    labels = np.where(y.numpy() == 1, "b", "a")
    assert strings.score(X, labels) == np.mean(strings.predict(X) == labels)


def test_rows_estimator_names_a_generator_X():
    """A generator of rows reached numpy through check_array: "float() argument must be a
    string or a real number, not 'generator'", naming nothing."""
    X, y = _bars()
    rows = X.reshape(len(X), -1).numpy()
    model = RFM(n_iter=0, random_state=0, device="cpu", progress=False)
    with pytest.raises(TypeError, match="^X must be a tensor or array, got generator"):
        model.fit((r for r in rows), y)
    model.fit(rows, y)
    with pytest.raises(TypeError, match="^X must be a tensor or array, got generator"):
        model.predict(r for r in rows)
