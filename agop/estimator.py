"""What the book's estimators share: scores from ``(n, C)`` outputs, classes, accuracy, the
fitted check and the seeds drawn from ``random_state``.

A classifier defines ``_outputs(X) -> Tensor (n, C)``, ``__sklearn_is_fitted__()`` and
``classes_``; :class:`OutputClassifierMixin` turns those into scikit-learn's
``decision_function``, ``predict`` and ``score`` (labels or one-hot rows accepted), after
:func:`check_fitted`. :class:`ImageInputMixin` lets an estimator read flat rows
``(n, c H W)`` as images (its ``image_shape`` parameter), which scikit-learn's pipelines and
estimator checks pass. :func:`random_seeds` turns ``random_state`` into integer seeds.
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import numpy as np
import scipy.sparse
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import DataConversionWarning
from sklearn.metrics import accuracy_score
from sklearn.utils import check_array, check_random_state
from sklearn.utils.validation import check_is_fitted

from agop._typing import RandomState
from agop.validation import ArgumentTypeError, _pandas_values, check_int, check_not_meta


def check_fitted(estimator: BaseEstimator) -> None:
    """scikit-learn's ``check_is_fitted`` (which asks the estimator's
    ``__sklearn_is_fitted__``): ``NotFittedError`` naming the estimator before ``fit``.

    Examples:
        >>> from agop import ConvRFM
        >>> check_fitted(ConvRFM())
        Traceback (most recent call last):
        ...
        sklearn.exceptions.NotFittedError: this ConvRFM is not fitted yet; call fit(X, y) first
    """
    check_is_fitted(estimator, msg="this %(name)s is not fitted yet; call fit(X, y) first")


def random_seeds(random_state: RandomState, n: int, *, keep_int: bool = False) -> list[int]:
    """``n`` integer seeds from scikit-learn's ``random_state`` (``None``, an integer or a numpy
    ``RandomState``): ``check_random_state(random_state).randint(2**31 - 1, size=n)``. With
    ``keep_int``, an integer ``random_state`` is itself the first seed and the other ``n - 1``
    are drawn from ``RandomState(random_state)``.

    Examples:
        >>> a = random_seeds(0, 3)
        >>> a == random_seeds(0, 3), len(set(a))
        (True, 3)
        >>> seeds = random_seeds(7, 3, keep_int=True)
        >>> seeds[0], seeds[1:] == random_seeds(7, 2)
        (7, True)
    """
    n = check_int(n, "n", minimum=0)
    state = _check_random_state(random_state)
    if keep_int and isinstance(random_state, numbers.Integral):
        return [int(random_state), *random_seeds(int(random_state), n - 1)]
    return [int(s) for s in state.randint(2**31 - 1, size=n)]


def _check_random_state(random_state: Any) -> np.random.RandomState:
    """scikit-learn's ``check_random_state``, with an error that names ``random_state`` and
    says what it takes (numpy's own names neither)."""
    if isinstance(random_state, (bool, np.bool_)) or (
        isinstance(random_state, (numbers.Integral, np.integer))
        and not 0 <= int(random_state) < 2**32
    ):
        raise ValueError(
            f"random_state must be None, an integer in [0, 2**32) or a numpy RandomState, "
            f"got {random_state!r}"
        )
    try:
        return check_random_state(random_state)
    except (TypeError, ValueError):
        raise ArgumentTypeError(
            f"random_state must be None, an integer in [0, 2**32) or a numpy RandomState, "
            f"got {random_state!r} ({type(random_state).__name__})"
        ) from None


#: the largest count (of rounds, epochs, layers) an estimator takes: an int32, so that loops,
#: progress bars and shapes never overflow (an absurd count gets a clear error, not an
#: ``OverflowError`` from deep inside)
_MAX_COUNT = 2**31 - 1


def _reject_sparse(X: Any, name: str = "X") -> None:
    """``TypeError`` for a scipy sparse matrix or array: the estimators compute on dense
    tensors (scikit-learn's estimator checks expect the word "sparse" in the message)."""
    if scipy.sparse.issparse(X):
        raise TypeError(
            f"sparse input is not supported: {name} is a scipy sparse {type(X).__name__}; "
            f"pass a dense array ({name}.toarray())"
        )


def _check_labels(y: Any, n: int, estimator: str) -> tuple[np.ndarray, np.ndarray, bool]:
    """(classes, integer codes, one_hot_input) for the labels ``y`` of ``n`` images: class
    labels ``(n,)`` (a column ``(n, 1)`` is read as labels with a ``DataConversionWarning``)
    or one-hot rows ``(n, C)``. ``ValueError`` for a missing ``y``, a wrong length, continuous
    or non-finite values, and fewer than two classes; ``estimator`` names the caller."""
    if y is None:
        raise ValueError(f"{estimator} requires y to be passed, but the target y is None")
    _reject_sparse(y, "y")
    if isinstance(y, torch.Tensor):
        y = check_not_meta(y, "y").detach().cpu()
        y = (y.float() if y.dtype == torch.bfloat16 else y).numpy()  # numpy has no bfloat16
    y = np.asarray(_pandas_values(y, "y"))
    if y.ndim == 2 and y.shape[1] == 1:
        warnings.warn(
            "A column-vector y was passed when a 1d array was expected; it is read "
            "as the labels y.ravel()",
            DataConversionWarning,
            stacklevel=3,
        )
        y = y[:, 0]
    if y.shape[:1] != (n,):
        raise ValueError(f"y must hold one label per image of X ({n}), got shape {y.shape}")
    if y.ndim == 2:
        if not (np.isin(y, (0, 1)).all() and (y.sum(1) == 1).all()):
            raise ValueError("a 2-d y must be one-hot: entries 0 or 1, exactly one 1 per row")
        classes, codes, one_hot = np.arange(y.shape[1]), y.argmax(1), True
        if len(np.unique(codes)) < 2:
            raise ValueError(
                "y must hold at least two classes, got one-hot rows that all mark "
                f"column {int(codes[0])} (of {y.shape[1]})"
            )
    elif y.ndim == 1:
        if y.dtype.kind == "c":
            raise ValueError("y must hold class labels (integers or strings), got complex values")
        if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
            raise ValueError("y contains NaN or infinity")
        if y.dtype.kind == "f" and not np.all(y == np.round(y)):
            raise ValueError(
                "y must hold class labels (integers or strings), not continuous values"
            )
        try:
            classes, codes = np.unique(y, return_inverse=True)
        except TypeError as err:  # labels of several types: 1 and 'a' do not sort
            raise ArgumentTypeError(
                f"y must hold labels of one type (integers or strings), got a mix: {err}"
            ) from None
        one_hot = False
    else:
        raise ValueError(f"y must be labels of shape (n,) or one-hot (n, C), got shape {y.shape}")
    if len(classes) < 2:
        raise ValueError(f"y must hold at least two classes, got {len(classes)} class")
    return classes, codes, one_hot


def _check_sample_weight(sample_weight: Any, n: int) -> np.ndarray:
    """``sample_weight`` as ``n`` finite, non-negative float weights, not all zero (an
    accuracy with negative weights can leave [0, 1]; NaN would make it NaN): ``TypeError`` for
    non-numbers, ``ValueError`` naming ``sample_weight`` otherwise."""
    _reject_sparse(sample_weight, "sample_weight")
    if isinstance(sample_weight, torch.Tensor):
        sample_weight = check_not_meta(sample_weight, "sample_weight").detach().cpu().numpy()
    w = np.asarray(sample_weight)
    if w.dtype.kind not in "biuf":
        raise ArgumentTypeError(f"sample_weight must hold numbers, got dtype {w.dtype}")
    w = w.astype(np.float64)
    if w.size and np.all(np.isfinite(w)) and w.max() > 0:
        w = w / w.max()  # the accuracy is scale-free; 1e308 weights would overflow its sum
    if w.shape != (n,):
        raise ValueError(
            f"sample_weight must hold one weight per image of X ({n}), got shape {w.shape}"
        )
    if not np.all(np.isfinite(w)) or np.any(w < 0) or not np.any(w > 0):
        raise ValueError(
            "sample_weight must be finite and non-negative with at least one positive "
            f"weight, got values in [{w.min():g}, {w.max():g}]"
        )
    return w


class OutputClassifierMixin(ClassifierMixin):
    r"""``decision_function``, ``predict`` and ``score`` from ``_outputs(X)``.

    Examples:
        :class:`agop.ConvRFM` is one. With two classes its score is :math:`f_1 - f_0`, and
        ``predict`` picks ``classes_[1]`` where it is positive:

        >>> import numpy as np
        >>> import torch
        >>> from agop import ConvRFM
        >>> g = torch.Generator().manual_seed(0)  # bars: a row whose sign is the class
        >>> y = torch.randint(0, 2, (30,), generator=g)
        >>> X = 0.5 * torch.randn(30, 1, 8, 8, generator=g, dtype=torch.float64)  # noise
        >>> rows = torch.randint(0, 8, (30,), generator=g)  # the bar's row, at random
        >>> X[torch.arange(30), 0, rows] = (2 * y[:, None] - 1).double() / 8**0.5
        >>> model = ConvRFM("laplace", patch_size=3, n_iter=0, random_state=0,
        ...                 device="cpu").fit(X, y)
        >>> scores = model.decision_function(X)
        >>> np.array_equal(model.predict(X), model.classes_[(scores > 0).astype(int)])
        True
        >>> bool(model.score(X, y) == np.mean(model.predict(X) == y.numpy()))
        True
    """

    def decision_function(self, X: Any) -> np.ndarray:
        """The outputs ``f(X)``: ``(n, C)`` scores, or ``(n,)`` (``f_1 - f_0``, positive for
        ``classes_[1]``) for two classes."""
        check_fitted(self)
        out = self._outputs(X).detach().cpu().numpy()
        return out[:, 1] - out[:, 0] if out.shape[1] == 2 else out

    def predict(self, X: Any) -> np.ndarray:
        """The class of the largest output, as an element of ``classes_``."""
        check_fitted(self)
        return self.classes_[self._outputs(X).argmax(1).cpu().numpy()]

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy on ``(X, y)``; ``y`` as labels or one-hot rows."""
        check_fitted(self)
        pred = self.predict(X)  # ClassifierMixin.score, with y checked against X
        labels = self._as_labels(y, len(pred))
        weights = None if sample_weight is None else _check_sample_weight(sample_weight, len(pred))
        return float(accuracy_score(labels, pred, sample_weight=weights))

    def _as_labels(self, y, n: int | None = None) -> np.ndarray:
        """``y`` (labels or one-hot rows) as a flat array of elements of ``classes_``; one per
        image of ``X`` when its count ``n`` is given."""
        _reject_sparse(y, "y")
        if isinstance(y, torch.Tensor):
            y = check_not_meta(y, "y").detach().cpu()
            y = (y.float() if y.dtype == torch.bfloat16 else y).numpy()  # numpy has no bfloat16
        y = np.asarray(_pandas_values(y, "y"))
        if y.ndim > 2:
            raise ValueError(
                f"y must be labels of shape (n,) or one-hot rows (n, C), got shape {y.shape}"
            )
        if y.ndim == 2 and y.shape[1] > 1:
            # one-hot rows, as fit takes them: one column per class of classes_ (an argmax of
            # scores or probabilities would be read silently as labels)
            C = len(self.classes_)
            if y.shape[1] != C or not (np.isin(y, (0, 1)).all() and (y.sum(1) == 1).all()):
                raise ValueError(
                    f"a 2-d y must be one-hot rows (n, {C}) over classes_: entries 0 or 1, "
                    f"exactly one 1 per row, got shape {y.shape}"
                    + ("" if y.shape[1] != C else " with other entries")
                )
            y = self.classes_[y.argmax(1)]
        y = y.ravel()
        if n is not None and y.shape[0] != n:
            raise ValueError(f"y must hold one label per image of X ({n}), got {y.shape[0]}")
        if y.dtype.kind in "fc" and not np.all(np.isfinite(y)):
            raise ValueError("y contains NaN or infinity")
        numeric = self.classes_.dtype.kind in "biuf"
        strings = [isinstance(v, (str, bytes)) for v in y.tolist()]
        if (numeric and any(strings)) or (not numeric and not all(strings)):
            raise ArgumentTypeError(
                f"y must hold labels of the type fit saw ({'numbers' if numeric else 'strings'}, "
                f"classes_ = {self.classes_.tolist()[:5]}), got "
                + ("strings" if numeric else "numbers")
            )
        return y


def _feature_names(X: Any) -> np.ndarray | None:
    """A data frame's column names as an object array when they are all strings (scikit-learn's
    ``feature_names_in_``), ``None`` for an input without names or with non-string ones, and
    ``TypeError`` for a mix of string and other names (scikit-learn's rule)."""
    columns = getattr(X, "columns", None)
    if columns is None or isinstance(X, (np.ndarray, torch.Tensor)):
        return None
    names = np.asarray(list(columns), dtype=object)
    strings = [isinstance(name, str) for name in names]
    if all(strings) and len(names):
        return names
    if any(strings):
        kinds = sorted({type(name).__name__ for name in names})
        raise ArgumentTypeError(
            "X: feature names are only supported if all input features have string names, "
            f"but its column names have types {kinds}; convert them all to str"
        )
    return None


class ImageInputMixin:
    """Images as ``(n, c, H, W)`` tensors or arrays, or as flat rows ``(n, c H W)``.

    An estimator with an ``image_shape`` parameter (``(c, H, W)``, one entry may be ``-1`` and
    is then inferred as in :func:`numpy.reshape`; ``None``: images only) reads 2-d ``X`` as
    one image per row, so that it works inside scikit-learn pipelines and its estimator checks,
    which pass tabular data. ``n_features_in_`` is ``c H W`` either way; a flat ``X`` of another
    width is rejected with scikit-learn's message. The ``two_d_array`` input tag says whether
    2-d ``X`` is accepted (only with ``image_shape``).

    Examples:
        Flat rows and images give the same machine:

        >>> import numpy as np
        >>> import torch
        >>> from agop import ConvRFM
        >>> g = torch.Generator().manual_seed(0)  # bars: a row whose sign is the class
        >>> y = torch.randint(0, 2, (30,), generator=g)
        >>> X = 0.5 * torch.randn(30, 1, 8, 8, generator=g, dtype=torch.float64)  # noise
        >>> rows = torch.randint(0, 8, (30,), generator=g)  # the bar's row, at random
        >>> X[torch.arange(30), 0, rows] = (2 * y[:, None] - 1).double() / 8**0.5
        >>> rows = ConvRFM(patch_size=3, n_iter=0, image_shape=(1, 8, -1), random_state=0,
        ...                device="cpu")
        >>> rows.fit(X.reshape(30, 64).numpy(), y.numpy()).n_features_in_
        64
        >>> images = ConvRFM(patch_size=3, n_iter=0, random_state=0, device="cpu").fit(X, y)
        >>> np.allclose(rows.decision_function(X.reshape(30, 64).numpy()),
        ...             images.decision_function(X))
        True
    """

    image_shape: Any  # the estimator's parameter
    n_features_in_: int
    _rows_shape_: tuple[int, ...] | None  # set by fit: how it read flat rows

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()  # type: ignore[misc]  # the estimator's other bases
        tags.input_tags.two_d_array = self.image_shape is not None
        return tags

    def _check_image_shape(self) -> tuple[int, int, int] | None:
        shape = self.image_shape
        if shape is None:
            return None
        ok = (
            isinstance(shape, (tuple, list))
            and len(shape) == 3
            and all(
                isinstance(s, (int, np.integer)) and not isinstance(s, bool) and (s >= 1 or s == -1)
                for s in shape
            )
            and sum(int(s) == -1 for s in shape) <= 1
        )
        if not ok:
            raise ValueError(
                f"image_shape must be None or (c, H, W): three positive integers, "
                f"one of which may be -1, got {shape!r}"
            )
        c, h, w = (int(s) for s in shape)
        return c, h, w

    def _rows_shape(self, *, reset: bool) -> tuple[int, ...] | None:
        """How flat rows are read: at ``fit`` (``reset``) the checked ``image_shape``
        parameter; after it, the images' shape ``image_shape_`` kept by the fit when it took
        rows (``None``: images only), so that a parameter set later (say, a bad one whose fit
        was rejected) does not change what the fitted estimator reads."""
        if reset:
            return self._check_image_shape()
        if "_rows_shape_" in vars(self):
            return self._rows_shape_
        return self._check_image_shape()

    def _as_images(self, X, *, reset: bool):
        """``X`` as a batch of images (4-d), and whether it came as flat rows; after ``fit``,
        a data frame's column names are checked against ``feature_names_in_`` first."""
        if not isinstance(X, torch.Tensor) and not (
            hasattr(X, "__len__") or hasattr(X, "__array__")
        ):  # a generator: numpy would fail on it with a float() message that names nothing
            raise ArgumentTypeError(f"X must be a tensor or array, got {type(X).__name__}")
        if not reset:
            self._check_column_names(X)
        return self._images_of(_pandas_values(X, "X"), reset=reset)

    def _check_column_names(self, X) -> None:
        """scikit-learn's rule for column names after ``fit``: a ``ValueError`` (with its
        message) when a data frame's names differ from those seen in ``fit``, a
        ``UserWarning`` when only one of ``fit`` and now had names. Written out here, under
        its own name, because scikit-learn moved its version from a private method of
        ``BaseEstimator`` (up to 1.5, with another signature) to a private function."""
        fitted = vars(self).get("feature_names_in_")
        names = _feature_names(X)
        cls = type(self).__name__
        if names is not None and fitted is None:
            warnings.warn(
                f"X has feature names, but {cls} was fitted without feature names",
                UserWarning,
                stacklevel=4,
            )
        elif names is None and fitted is not None:
            warnings.warn(
                f"X does not have valid feature names, but {cls} was fitted with feature names",
                UserWarning,
                stacklevel=4,
            )
        elif names is not None and fitted is not None:
            if len(names) == len(fitted) and np.array_equal(names, fitted):
                return
            message = "The feature names should match those that were passed during fit.\n"
            unseen = sorted(set(names) - set(fitted))
            missing = sorted(set(fitted) - set(names))
            for title, listed in (
                ("Feature names unseen at fit time:", unseen),
                ("Feature names seen at fit time, yet now missing:", missing),
            ):
                if listed:
                    message += title + "\n"
                    message += "".join(f"- {name}\n" for name in listed[:5])
                    message += "- ...\n" if len(listed) > 5 else ""
            if not unseen and not missing:
                message += "Feature names must be in the same order as they were in fit.\n"
            raise ValueError(message)

    def _set_feature_names(self, names: np.ndarray | None) -> None:
        """The end of a successful ``fit``: ``feature_names_in_`` = the data frame's column
        names, or no such attribute when ``X`` had none."""
        if names is None:
            vars(self).pop("feature_names_in_", None)
        else:
            self.feature_names_in_ = names

    def _images_of(self, X, *, reset: bool):
        """:meth:`_as_images` after the names: ``X`` as images, and whether it came as rows."""
        _reject_sparse(X)
        shape = self._rows_shape(reset=reset)
        if shape is None:
            return X, False
        # arrays, lists and data frames get scikit-learn's own checks and messages (sparse,
        # complex, object dtype, empty, 1-d); tensors keep their device for check_images
        x = (
            X
            if isinstance(X, torch.Tensor)
            else check_array(
                X,
                accept_sparse=False,
                dtype="numeric",
                allow_nd=True,
                ensure_all_finite=False,
                input_name="X",
            )
        )
        if x.ndim == 4:
            if any(s not in (-1, got) for s, got in zip(shape, x.shape[1:], strict=True)):
                raise ValueError(
                    f"X holds images of shape {tuple(x.shape[1:])}, which "
                    f"contradicts image_shape={shape}"
                )
            return x, False
        if x.ndim != 2:
            raise ValueError(
                f"X must hold flat rows (n, d) (read as images of shape "
                f"image_shape={shape}) or images (n, c, H, W), got shape "
                f"{tuple(x.shape)}"
            )
        n, d = x.shape
        if not reset and d != self.n_features_in_:
            raise ValueError(
                f"X has {d} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input"
            )
        known = int(np.prod([s for s in shape if s != -1]))
        if d == 0 or d % known or (-1 not in shape and d != known):
            raise ValueError(
                f"X has {d} features per row, which cannot be read as images of "
                f"shape image_shape={shape}"
            )
        return x.reshape(n, *(d // known if s == -1 else s for s in shape)), True
