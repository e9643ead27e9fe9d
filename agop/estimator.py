"""What the book's classifiers share: scores from ``(n, C)`` outputs, classes, accuracy.

A classifier defines ``_outputs(X) -> Tensor (n, C)``, ``_check_fitted()`` and ``classes_``;
:class:`OutputClassifierMixin` turns those into scikit-learn's ``decision_function``,
``predict`` and ``score`` (labels or one-hot rows accepted).
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import ClassifierMixin


class OutputClassifierMixin(ClassifierMixin):
    """``decision_function``, ``predict`` and ``score`` from ``_outputs(X)``."""

    def decision_function(self, X) -> np.ndarray:
        """The outputs ``f(X)``: ``(n, C)`` scores, or ``(n,)`` (``f_1 - f_0``, positive for
        ``classes_[1]``) for two classes."""
        self._check_fitted()
        out = self._outputs(X).detach().cpu().numpy()
        return out[:, 1] - out[:, 0] if out.shape[1] == 2 else out

    def predict(self, X) -> np.ndarray:
        """The class of the largest output, as an element of ``classes_``."""
        self._check_fitted()
        return self.classes_[self._outputs(X).argmax(1).cpu().numpy()]

    def score(self, X, y, sample_weight=None) -> float:
        """Accuracy on ``(X, y)``; ``y`` as labels or one-hot rows."""
        self._check_fitted()
        return super().score(X, self._as_labels(y), sample_weight=sample_weight)

    def _as_labels(self, y) -> np.ndarray:
        """``y`` (labels or one-hot rows) as a flat array of elements of ``classes_``."""
        if isinstance(y, torch.Tensor):
            y = y.detach().cpu().numpy()
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] > 1:
            y = self.classes_[y.argmax(1)]
        return y.ravel()
