r"""ConvRFM (Algorithm 1): a convolutional kernel machine that learns its patch metric :math:`M`
from the patch-AGOP of its own predictor. :math:`M_0 = I`; for :math:`t = 0, \dots, T-1`:

.. math::

   \alpha_t &= (K_{M_t}(X, X) + \lambda I)^{-1} Y
       \qquad \text{(ridge } \lambda \text{ chosen on a validation split)}, \\
   f_t(x) &= K_{M_t}(x, X)\, \alpha_t, \\
   M_{t+1} &= \operatorname{normalise}\bigl(\mathrm{AGOP}(f_t)^p\bigr), \qquad
   \mathrm{AGOP}(f) = \frac1n \sum_{i=1}^n \sum_j \sum_c
       \nabla_{x_i[j]} f_c(x_i)\, \nabla_{x_i[j]} f_c(x_i)^\top,

with :math:`p` = ``power``.

The iterate with the best *validation* accuracy is kept (never the test set). Iteration 0 is
the fixed kernel (``M = I``), so every run also reports its baseline.

:func:`rfm_iterations` runs the rounds for any kernel object (``__call__(X, Z, M=M)`` and
``.agop(X, Z, dual_coef, M=M)``: :class:`agop.kernels.Kernel`); :class:`ConvRFM` wraps it as a
scikit-learn estimator. Deep ConvRFM reuses :func:`rfm_iterations` layer by layer.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator
from tqdm.auto import tqdm

from agop._typing import ArrayLike, Device, RandomState
from agop.data import one_hot
from agop.data.splits import _train_val_split
from agop.estimator import (
    _MAX_COUNT,
    ImageInputMixin,
    OutputClassifierMixin,
    _check_labels,
    _feature_names,
    _reject_sparse,
    check_fitted,
    random_seeds,
)
from agop.kernels import Kernel, get_kernel
from agop.kernels._inputs import metric_root
from agop.kernels.objects import KERNELS, fields_of
from agop.linalg import _psd_power
from agop.runtime import default_device
from agop.solve import select_ridge
from agop.validation import (
    ArgumentTypeError,
    _check_allocation,
    _stacklevel_outside_agop,
    as_tensor,
    check_bool,
    check_choice,
    check_dtype,
    check_finite,
    check_images,
    check_int,
    check_psd,
    check_real,
    check_reals,
    low_precision,
    psd_tolerance,
)

DEFAULT_RIDGES: tuple[float, ...] = (1e-8, 1e-6, 1e-4, 1e-3, 1e-2, 1e-1)
NORMALIZATIONS = ("max_eig", "fro", None)


# --------------------------------------------------------------------------------------------
# The mathematics: one normalised feature matrix, one kernel fit, the AGOP rounds
# --------------------------------------------------------------------------------------------


def normalize_feature_matrix(
    A: torch.Tensor, normalize: str | None = "max_eig", power: float = 1.0
) -> torch.Tensor:
    r""":math:`M = A^p / s` with :math:`p` = ``power`` and :math:`s = \lambda_{\max}(A^p)`
    (``'max_eig'``), :math:`\|A^p\|_F` (``'fro'``) or 1 (``None``).

    ``A`` is symmetrised first. Raises ``ValueError`` when :math:`A^p` is zero (a constant
    predictor has no gradient, so there is no metric to learn) or not finite.

    Examples:
        >>> import torch
        >>> A = torch.diag(torch.tensor([4.0, 1.0], dtype=torch.float64))
        >>> normalize_feature_matrix(A).diagonal().tolist()
        [1.0, 0.25]
        >>> normalize_feature_matrix(A, power=0.5).diagonal().tolist()  # A^(1/2) = diag(2, 1)
        [1.0, 0.5]
        >>> normalize_feature_matrix(A, "fro").norm().item()
        1.0
    """
    normalize = check_choice(normalize, "normalize", NORMALIZATIONS)
    power = check_real(power, "power", minimum=0, strict_minimum=True)
    A = as_tensor(A, "A")
    A = A.to(torch.float32) if low_precision(A.dtype) else A  # no half-precision eigh
    return _normalize(check_psd(A, "A", rtol=psd_tolerance(A.dtype)), normalize, power)


def _check_prepared(X: Any, Y: Any, X_val: Any, Y_val: Any) -> None:
    """The shapes :func:`rfm_iterations` trusts: image tensors ``X`` ``(n, c, H, W)`` and
    ``X_val`` ``(n_val, c, H, W)`` of one dtype, targets ``(n, C)`` and ``(n_val, C)``; shapes
    only (O(1)), the values are the caller's (:meth:`ConvRFM.fit` checked them)."""
    for name, T in (("X", X), ("Y", Y), ("X_val", X_val), ("Y_val", Y_val)):
        if not isinstance(T, torch.Tensor):
            raise ArgumentTypeError(
                f"{name} must be a torch.Tensor (rfm_iterations takes prepared tensors; "
                f"ConvRFM.fit takes arrays), got {type(T).__name__}"
            )
    if X.ndim != 4 or X_val.ndim != 4 or X_val.shape[1:] != X.shape[1:] or X.dtype != X_val.dtype:
        raise ValueError(
            f"X and X_val must be images (n, c, H, W) of one shape and dtype, got "
            f"{tuple(X.shape)} {X.dtype} and {tuple(X_val.shape)} {X_val.dtype}"
        )
    if Y.ndim != 2 or Y.shape[0] != X.shape[0]:
        raise ValueError(f"Y must be targets ({X.shape[0]}, C), got shape {tuple(Y.shape)}")
    if Y_val.shape != (X_val.shape[0], Y.shape[1]):
        raise ValueError(
            f"Y_val must be targets ({X_val.shape[0]}, {Y.shape[1]}), got shape "
            f"{tuple(Y_val.shape)}"
        )


def _asarray(X: Any) -> np.ndarray:
    """``np.asarray(X)``, with numpy's error for a ragged nested list naming ``X``."""
    try:
        return np.asarray(X)
    except ValueError as err:
        raise ValueError(f"X must be a rectangular array of numbers: {err}") from None


def _normalize(A: torch.Tensor, normalize: str | None, power: float) -> torch.Tensor:
    """:func:`normalize_feature_matrix` of a finite ``A`` and checked options."""
    A = (A + A.T) / 2
    M = A if power == 1 else _psd_power(A, power)
    if normalize == "max_eig":
        scale = torch.linalg.eigvalsh(M)[-1]
    elif normalize == "fro":
        scale = torch.linalg.matrix_norm(M)
    else:
        scale = torch.ones((), dtype=M.dtype, device=M.device)
    if not bool(torch.isfinite(scale)) or float(scale) <= 0 or float(M.abs().max()) == 0:
        raise ValueError("the feature matrix is zero: the predictor is constant on the patches")
    return M / scale


def _scores(F_pred: torch.Tensor, Y: torch.Tensor) -> tuple[float, float]:
    """(accuracy, MSE) of predictions ``F_pred`` against one-hot ``Y``; MSE sums over outputs."""
    acc = float((F_pred.argmax(1) == Y.argmax(1)).to(torch.float64).mean())
    mse = float(((F_pred - Y) ** 2).sum(1).mean())
    return acc, mse


@dataclasses.dataclass
class KernelFit:
    r"""A kernel machine :math:`f(x) = K_M(x, X)\, \alpha / s` (:math:`s` = ``scale``) fitted with
    ridge ``ridge``, :math:`\alpha` = ``dual_coef``; see :func:`fit_kernel_machine` for an
    example."""

    dual_coef: torch.Tensor
    scale: float
    ridge: float
    train_acc: float
    val_acc: float
    train_mse: float
    val_mse: float
    kernel_seconds: float = 0.0  # K(X, X) and K(X_val, X)
    solve_seconds: float = 0.0  # the ridge sweep and the training/validation scores


def fit_kernel_machine(
    kernel: Kernel | Callable[..., torch.Tensor],
    X: torch.Tensor,
    Y: torch.Tensor,
    X_val: torch.Tensor,
    Y_val: torch.Tensor,
    M: torch.Tensor | None,
    ridges: Sequence[float],
    *,
    solve_memory: int | None = None,
) -> KernelFit:
    r"""Kernel ridge regression with ``K_M``, the ridge chosen on ``(X_val, Y_val)``.

    Both kernel matrices are divided by ``max K(X, X)`` (as the authors' code does), so one
    ridge grid serves kernels of any scale: :math:`\alpha = (K / s + \lambda I)^{-1} Y`,
    :math:`f(x) = K(x, X)\, \alpha / s`. ``solve_memory``: bytes the ridge sweep may hold beside
    ``K`` (:func:`agop.solve.select_ridge`; ``None``: the kernel's ``max_memory``, else a
    quarter of the available memory). ``kernel_seconds`` and ``solve_seconds`` time the two
    phases.

    Examples:
        >>> import torch
        >>> from agop.data import one_hot
        >>> from agop.kernels import Laplace
        >>> g = torch.Generator().manual_seed(0)  # bars: a row whose sign is the class
        >>> y = torch.randint(0, 2, (40,), generator=g)
        >>> X = 0.5 * torch.randn(40, 1, 8, 8, generator=g, dtype=torch.float64)  # noise
        >>> rows = torch.randint(0, 8, (40,), generator=g)  # the bar's row, at random
        >>> X[torch.arange(40), 0, rows] = (2 * y[:, None] - 1).double() / 8**0.5
        >>> Y = one_hot(y, dtype=torch.float64)
        >>> fit = fit_kernel_machine(Laplace(3), X[:30], Y[:30], X[30:], Y[30:], None,
        ...                          ridges=[1e-3, 1e-1])
        >>> fit.ridge in (1e-3, 1e-1), fit.scale  # K(x, x) = 1 is the largest entry
        (True, 1.0)
        >>> K = Laplace(3)(X[:30]) / fit.scale
        >>> torch.allclose((K + fit.ridge * torch.eye(30, dtype=torch.float64)) @ fit.dual_coef, Y[:30])
        True
    """
    start = time.perf_counter()
    K = kernel(X, X, M=M)
    K_val = kernel(X_val, X, M=M)
    lo, hi = (float(v) for v in torch.aminmax(K))  # one pass, no n x n temporary
    if not (math.isfinite(lo) and math.isfinite(hi)):  # aminmax propagates NaN
        check_finite(K, "K(X, X)")  # raises, counting the bad entries
    scale = max(abs(lo), abs(hi))
    if scale == 0:
        raise ValueError(
            "X gives a zero kernel matrix K(X, X) (all-zero images, or values so small that "
            "the kernel underflows in its dtype): rescale X or compute in float64"
        )
    K.div_(scale)  # in place: no second n x n matrix
    K_val.div_(scale)
    middle = time.perf_counter()
    if solve_memory is None:
        solve_memory = getattr(kernel, "max_memory", None)
    ridge, dual_coef, _ = select_ridge(K, Y, K_val, Y_val, list(ridges), max_memory=solve_memory)
    train_acc, train_mse = _scores(K @ dual_coef, Y)
    val_acc, val_mse = _scores(K_val @ dual_coef, Y_val)
    return KernelFit(
        dual_coef,
        scale,
        float(ridge),
        train_acc,
        val_acc,
        train_mse,
        val_mse,
        middle - start,
        time.perf_counter() - middle,
    )


@dataclasses.dataclass
class _Round:
    """A kernel object bound to one round's metric, on checked images and parameters: its
    factor ``root`` :math:`= M^{1/2}` is computed once per round and serves every evaluation
    of it (``K(X, X)``, ``K(X_val, X)`` and the AGOP), which check nothing again."""

    kernel: Kernel
    root: torch.Tensor | None

    @property
    def max_memory(self) -> int | None:
        return self.kernel.max_memory

    def __call__(self, X: torch.Tensor, Z: torch.Tensor, M: Any = None) -> torch.Tensor:
        return self.kernel._matrix(X, Z, self.root)

    def agop(self, X: torch.Tensor, Z: torch.Tensor, dual_coef: torch.Tensor, M: Any = None):
        return self.kernel._agop(X, Z, dual_coef, self.root)


def _bind(kernel: Kernel, M: torch.Tensor | None, like: torch.Tensor) -> Kernel | _Round:
    """``kernel`` bound to the metric ``M`` (:class:`_Round`), or as it is when it is not an
    :class:`agop.kernels.Kernel` (a user's callable is evaluated with ``M``)."""
    if not isinstance(kernel, Kernel):
        return kernel
    return _Round(kernel, None if M is None else metric_root(M, like))


@dataclasses.dataclass
class RFMResult:
    """What :func:`rfm_iterations` returns: every iterate, its scores, and the best one
    (``best_fit`` and ``M`` are those of iterate ``best_iter``; see its example)."""

    Ms: list[torch.Tensor]
    fits: list[KernelFit]
    history: list[dict[str, float]]
    best_iter: int

    @property
    def best_fit(self) -> KernelFit:
        return self.fits[self.best_iter]

    @property
    def M(self) -> torch.Tensor:
        return self.Ms[self.best_iter]


def rfm_iterations(
    kernel: Kernel,
    X: torch.Tensor,
    Y: torch.Tensor,
    X_val: torch.Tensor,
    Y_val: torch.Tensor,
    *,
    n_iter: int,
    q: int,
    ridges: Sequence[float] = DEFAULT_RIDGES,
    agop_samples: int | None = None,
    normalize: str | None = "max_eig",
    power: float = 1.0,
    generator: torch.Generator | None = None,
    progress: bool = False,
    desc: str = "ConvRFM",
    solve_memory: int | None = None,
) -> RFMResult:
    r"""Algorithm 1 for a kernel object on prepared tensors (images ``X``, one-hot ``Y``).

    The tensors are trusted: finite images ``(n, c, H, W)`` of one dtype and device, as
    :meth:`ConvRFM.fit` passes them after its checks; the kernel's parameters are checked
    once against ``X``, and each round's metric factor :math:`M_t^{1/2}` is computed once and
    serves the round's three kernel evaluations.

    :math:`M_0 = I_q`; for :math:`t = 0, \dots,` ``n_iter``: fit kernel ridge regression with
    :math:`K_{M_t}` (ridge chosen on the validation split), score it, and (for
    :math:`t <` ``n_iter``) set ``M_{t+1} = normalize_feature_matrix(kernel.agop(X_s, X,
    dual_coef_t / s_t, M=M_t))`` with ``X_s`` a random subsample of ``agop_samples`` training images
    (all when ``None``).
    The best iterate has the highest validation accuracy (ties: lower validation MSE, then the
    earlier iterate). ``history[t]`` holds train/validation accuracy and MSE, the ridge, and
    the seconds spent on round ``t`` (its kernel fit plus the AGOP that makes ``M_{t+1}``),
    split into ``kernel_seconds``, ``solve_seconds`` and ``agop_seconds``. ``solve_memory``
    goes to :func:`fit_kernel_machine`.
    If an AGOP is zero the rounds stop early with a warning.

    Examples:
        >>> import torch
        >>> from agop.data import one_hot
        >>> from agop.kernels import Laplace
        >>> g = torch.Generator().manual_seed(0)  # bars: a row whose sign is the class
        >>> y = torch.randint(0, 2, (40,), generator=g)
        >>> X = 0.5 * torch.randn(40, 1, 8, 8, generator=g, dtype=torch.float64)  # noise
        >>> rows = torch.randint(0, 8, (40,), generator=g)  # the bar's row, at random
        >>> X[torch.arange(40), 0, rows] = (2 * y[:, None] - 1).double() / 8**0.5
        >>> Y = one_hot(y, dtype=torch.float64)
        >>> result = rfm_iterations(Laplace(3), X[:30], Y[:30], X[30:], Y[30:], n_iter=2, q=9)
        >>> len(result.Ms), len(result.history), result.best_iter in (0, 1, 2)
        (3, 3, True)
        >>> torch.equal(result.Ms[0], torch.eye(9, dtype=torch.float64))
        True
        >>> round(torch.linalg.eigvalsh(result.Ms[1])[-1].item(), 12)  # normalised: max_eig
        1.0
    """
    n_iter = check_int(n_iter, "n_iter", minimum=0, maximum=_MAX_COUNT)
    progress = check_bool(progress, "progress")
    normalize = check_choice(normalize, "normalize", NORMALIZATIONS)
    power = check_real(power, "power", minimum=0, strict_minimum=True)
    ridges = check_reals(ridges, "ridges", minimum=0)
    agop_samples = (
        None if agop_samples is None else check_int(agop_samples, "agop_samples", minimum=1)
    )
    q = check_int(q, "q", minimum=1)
    _check_prepared(X, Y, X_val, Y_val)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ArgumentTypeError(
            f"generator must be None or a torch.Generator, got {type(generator).__name__}"
        )
    if isinstance(kernel, Kernel):
        k = kernel._check(X)
        if q != X.shape[1] * k * k:
            raise ValueError(
                f"q must be the patch dimension c k^2 = {X.shape[1]} * {k}^2 = "
                f"{X.shape[1] * k * k} of X and the kernel's patch_size, got {q}"
            )
    elif not callable(kernel) or not callable(getattr(kernel, "agop", None)):
        raise ArgumentTypeError(
            f"kernel must be an agop.kernels.Kernel (or a callable with an agop method), got "
            f"{type(kernel).__name__}; get_kernel({kernel!r}, patch_size) builds one by name"
        )
    n = X.shape[0]
    M: torch.Tensor | None = None  # the identity, without the cost of applying it
    Ms = [torch.eye(q, dtype=X.dtype, device=X.device)]
    history: list[dict[str, float]] = []
    fits: list[KernelFit] = []
    best_iter, best_key = 0, None
    bar = tqdm(range(n_iter + 1), desc=desc, disable=not progress, leave=False)
    for t in bar:
        start = time.perf_counter()
        bound = _bind(kernel, M, X)
        fit = fit_kernel_machine(bound, X, Y, X_val, Y_val, M, ridges, solve_memory=solve_memory)
        fits.append(fit)
        agop_seconds = 0.0
        key = (fit.val_acc, -fit.val_mse)
        if best_key is None or key > best_key:
            best_iter, best_key = t, key
        stop = False
        if t < n_iter:
            if agop_samples is None or agop_samples >= n:
                X_s = X
            else:
                idx = torch.randperm(n, generator=generator)[:agop_samples].to(X.device)
                X_s = X[idx]
            agop_start = time.perf_counter()
            A = bound.agop(X_s, X, fit.dual_coef / fit.scale, M=M)
            agop_seconds = time.perf_counter() - agop_start
            # a kernel's own AGOP checks its result; a user's callable may return NaN or inf,
            # which is an error (not a "zero" AGOP that would stop the rounds with a warning)
            check_finite(A, f"the AGOP of round {t} (kernel.agop)")
            try:
                M = _normalize(A, normalize, power).to(X.dtype)
                Ms.append(M)
            except ValueError as err:
                warnings.warn(
                    f"ConvRFM stopped after round {t}: {err}",
                    RuntimeWarning,
                    stacklevel=_stacklevel_outside_agop(),
                )
                stop = True
        history.append(
            {
                "iteration": t,
                "train_acc": fit.train_acc,
                "val_acc": fit.val_acc,
                "train_mse": fit.train_mse,
                "val_mse": fit.val_mse,
                "ridge": fit.ridge,
                "seconds": time.perf_counter() - start,
                "kernel_seconds": fit.kernel_seconds,
                "solve_seconds": fit.solve_seconds,
                "agop_seconds": agop_seconds,
            }
        )
        bar.set_postfix(val_acc=f"{fit.val_acc:.3f}")
        if stop:
            break
    bar.close()
    return RFMResult(Ms=Ms[: len(history)], fits=fits, history=history, best_iter=best_iter)


# --------------------------------------------------------------------------------------------
# The scikit-learn estimator
# --------------------------------------------------------------------------------------------


class ConvRFM(ImageInputMixin, OutputClassifierMixin, BaseEstimator):
    r"""Convolutional Recursive Feature Machine (Algorithm 1) as a scikit-learn classifier.

    Parameters
    ----------
    kernel : a registered kernel name (``'laplace'``, ``'rbf'``, ``'cnngp'``, ``'cntk'``, any
        case; :func:`agop.kernels.get_kernel`) or a kernel object (see :mod:`agop.kernels`;
        then ``patch_size``, ``depth`` and ``bandwidth`` are its own, with a warning for each of
        ours that differs).
    patch_size : odd patch side ``k``; ``M`` is ``q x q`` with ``q = c k^2``.
    depth : depth of the CNTK (a kernel with a ``depth``; other kernels: 1, else
        ``ValueError``).
    n_iter : number of AGOP rounds; 0 fits the fixed kernel (``M = I``) only.
    random_state : seed (or ``numpy`` RandomState) of the validation split and AGOP subsamples.
    padding : zeros added on each side of every image before patches are taken.
    ridges : ridge values; each round picks the best on the validation split.
    agop_samples : training images over which the AGOP is averaged (``None``: all).
    normalize : ``'max_eig'``, ``'fro'`` or ``None``: how each new ``M`` is scaled.
    power : :math:`M_{t+1} = \mathrm{AGOP}^p` before normalising. In the authors' ConvRFM code the
        ``-sqrtM`` flag multiplies the patches by :math:`\mathrm{AGOP}^{1/2}`, a metric ``M = AGOP``
        (``power = 1``, the default); without the flag the patches are multiplied by ``AGOP``,
        a metric ``M = AGOP^2`` (``power = 2``).
    validation_fraction : share of the training images held out to choose ridges and the
        iterate (``val_fraction`` before 0.2, accepted with a ``FutureWarning``).
    bandwidth : bandwidth ``L`` of the Laplace or RBF kernel (``None``: the kernel's default;
        other kernels: None, else ``ValueError``).
    device, dtype : where to compute (``None``: CUDA if present) and in which float type,
        float32 or float64 (``None``: that of ``X`` when it is one of them, else float32).
    max_memory : bytes a kernel block may use (``None``: the kernel's default).
    progress : show a tqdm progress bar over the rounds.
    image_shape : ``(c, H, W)`` of the images when ``X`` holds them as flat rows
        ``(n, c H W)`` (one entry may be ``-1``, inferred); ``None``: ``X`` must be images
        ``(n, c, H, W)``.

    Attributes
    ----------
    M_ : the best feature matrix (highest validation accuracy); ``Ms_`` every iterate
    (``Ms_[0]`` is the identity); ``history_`` one dict per iterate with ``train_acc``,
    ``val_acc``, ``train_mse``, ``val_mse``, ``ridge`` and ``seconds``; ``best_iter_``;
    ``classes_``; ``kernel_`` the kernel object; ``dual_coef_``, ``ridge_`` and ``X_fit_`` the
    fitted machine ``f(x) = K_{M_}(x, X_fit_) dual_coef_``, trained on the training split
    (``dual_coefs_[t]`` that of iterate ``t``, see :meth:`score_iterations`); ``image_shape_`` the
    ``(c, H, W)`` of the images (before padding); ``n_features_in_`` its size ``c H W``.

    Examples:
        Karp et al.'s bars task (a row of one sign in noise), small: two AGOP rounds lift the
        test accuracy above the fixed Laplace kernel's.

        >>> import torch
        >>> g = torch.Generator().manual_seed(0)  # bars: a row whose sign is the class
        >>> y = torch.randint(0, 2, (160,), generator=g)
        >>> X = 0.5 * torch.randn(160, 1, 8, 8, generator=g, dtype=torch.float64)  # noise
        >>> rows = torch.randint(0, 8, (160,), generator=g)  # the bar's row, at random
        >>> X[torch.arange(160), 0, rows] = (2 * y[:, None] - 1).double() / 8**0.5
        >>> X, y, X_test, y_test = X[:60], y[:60], X[60:], y[60:]
        >>> model = ConvRFM("laplace", patch_size=3, n_iter=2, random_state=0,
        ...                 dtype=torch.float64, device="cpu").fit(X, y)
        >>> model.score_iterations(X_test, y_test)  # iterate 0 is the fixed kernel
        [0.63, 0.7, 0.74]
        >>> model.best_iter_, model.score(X_test, y_test)  # the iterate the validation split picks
        (1, 0.7)
        >>> tuple(model.M_.shape)  # q = c k^2 = 9
        (9, 9)
    """

    def __init__(
        self,
        kernel: str | Kernel = "laplace",
        patch_size: int = 7,
        depth: int = 1,
        n_iter: int = 3,
        random_state: RandomState = None,
        *,
        padding: int = 0,
        ridges: Sequence[float] = DEFAULT_RIDGES,
        agop_samples: int | None = None,
        normalize: str | None = "max_eig",
        power: float = 1.0,
        validation_fraction: float = 0.2,
        bandwidth: float | None = None,
        device: Device | None = None,
        dtype: torch.dtype | None = None,
        max_memory: int | None = None,
        progress: bool = True,
        image_shape: tuple[int, int, int] | None = None,
    ) -> None:
        self.kernel = kernel
        self.patch_size = patch_size
        self.depth = depth
        self.n_iter = n_iter
        self.random_state = random_state
        self.padding = padding
        self.ridges = ridges
        self.agop_samples = agop_samples
        self.normalize = normalize
        self.power = power
        self.validation_fraction = validation_fraction
        self.bandwidth = bandwidth
        self.device = device
        self.dtype = dtype
        self.max_memory = max_memory
        self.progress = progress
        self.image_shape = image_shape

    # ---- input ---------------------------------------------------------------------------

    def _dtype_for(self, X) -> torch.dtype:
        dtype = check_dtype(self.dtype)
        if dtype is not None:
            return dtype
        x = X if isinstance(X, torch.Tensor) else _asarray(X)
        floating = x.is_floating_point() if isinstance(x, torch.Tensor) else x.dtype.kind == "f"
        if floating:
            dtype = (
                x.dtype
                if isinstance(x, torch.Tensor)
                else torch.from_numpy(np.empty(0, x.dtype)).dtype
            )
            return dtype if dtype in (torch.float32, torch.float64) else torch.float32
        return torch.float32

    def _pad(self, X: torch.Tensor, padding: int | None = None) -> torch.Tensor:
        """``X`` with ``padding`` zeros on each side (``None``: the fitted padding)."""
        if padding is None:
            padding = self._padding_ if "_padding_" in vars(self) else int(self.padding)
        return F.pad(X, (padding,) * 4) if padding else X

    def _check_params(self) -> dict[str, Any]:
        """The parameters, checked and converted (numpy scalars to Python, names to their
        canonical case); ``ValueError`` (or :class:`agop.validation.ArgumentTypeError`) names
        the first bad one."""
        p = {
            "patch_size": check_int(self.patch_size, "patch_size", minimum=1, odd=True),
            "depth": check_int(self.depth, "depth", minimum=1),
            "padding": check_int(self.padding, "padding", minimum=0),
            "n_iter": check_int(self.n_iter, "n_iter", minimum=0, maximum=_MAX_COUNT),
            "validation_fraction": check_real(
                self.validation_fraction,
                "validation_fraction",
                minimum=0,
                strict_minimum=True,
                maximum=1,
            ),
            "ridges": check_reals(self.ridges, "ridges", minimum=0),
            "agop_samples": None
            if self.agop_samples is None
            else check_int(self.agop_samples, "agop_samples", minimum=1),
            "normalize": check_choice(self.normalize, "normalize", NORMALIZATIONS),
            "power": check_real(self.power, "power", minimum=0, strict_minimum=True),
            "bandwidth": None
            if self.bandwidth is None
            else check_real(self.bandwidth, "bandwidth", minimum=0, strict_minimum=True),
            "max_memory": None
            if self.max_memory is None
            else check_int(self.max_memory, "max_memory", minimum=1),
        }
        if p["validation_fraction"] == 1:
            raise ValueError("validation_fraction must lie in (0, 1), got 1")
        check_dtype(self.dtype)
        check_bool(self.progress, "progress")
        return p

    def _make_kernel(self, device: torch.device, p: dict[str, Any]):
        """The kernel object: built from its name with the checked parameters ``p`` (an
        argument the kernel does not use, such as ``bandwidth`` with a CNTK or ``depth > 1``
        with the Laplace kernel, raises ``ValueError``), or the given object, with a warning
        for each of ``patch_size``, ``depth`` and ``bandwidth`` that differs from its own."""
        if not isinstance(self.kernel, str):
            # a copy: the fitted machine must not change when the caller mutates the
            # parameter's object later (or the failed fit of another estimator sharing it)
            kernel = copy.deepcopy(get_kernel(self.kernel))
            for name in ("patch_size", "depth", "bandwidth"):
                ours, theirs = p[name], getattr(kernel, name, 1 if name == "depth" else None)
                if ours is not None and ours != theirs:
                    warnings.warn(
                        f"{name}={ours} is ignored: the kernel object "
                        f"{type(kernel).__name__} has {name}={theirs}, which is used",
                        UserWarning,
                        stacklevel=_stacklevel_outside_agop(),
                    )
            return kernel
        name = check_choice(self.kernel, "kernel", sorted(KERNELS))
        options: dict[str, Any] = {"device": device, "progress": None if self.progress else False}
        if p["max_memory"] is not None:
            options["max_memory"] = p["max_memory"]
        if p["bandwidth"] is not None:
            options["bandwidth"] = p["bandwidth"]
        return get_kernel(
            name,
            patch_size=p["patch_size"],
            depth=p["depth"] if "depth" in fields_of(KERNELS[name]) or p["depth"] != 1 else None,
            **options,
        )

    # ---- fit / predict -------------------------------------------------------------------

    def fit(self, X: ArrayLike, y: ArrayLike) -> ConvRFM:
        """Run ``n_iter`` AGOP rounds on images ``X`` ``(n, c, H, W)`` with labels ``y``
        (``(n,)`` class labels or ``(n, C)`` one-hot); keep the best iterate on a validation
        split of ``validation_fraction`` of the images. Returns ``self``."""
        # Everything is computed into locals; the fitted attributes are assigned together at
        # the end, so a rejected or failed fit leaves a fitted estimator as it was.
        p = self._check_params()
        rows_shape = self._rows_shape(reset=True)
        names = _feature_names(X)
        X, _ = self._as_images(X, reset=True)
        device = default_device(self.device)
        dtype = self._dtype_for(X)
        X = check_images(X, "X", dtype=dtype, device=device).detach()  # values, not a graph
        image_shape = tuple(X.shape[1:])
        n, c, H, W = X.shape
        pad = 2 * p["padding"]
        _check_allocation(
            n * c * (H + pad) * (W + pad), X.element_size(), "padding", "the padded images"
        )
        X = self._pad(X, p["padding"])
        classes, codes, _ = _check_labels(y, n, type(self).__name__)
        n_classes = len(classes)

        split_seed, agop_seed = random_seeds(self.random_state, 2)
        Y = one_hot(torch.as_tensor(codes, device=device), n_classes, dtype=dtype)
        X_tr, Y_tr, X_va, Y_va = _train_val_split(X, Y, p["validation_fraction"], split_seed)
        if X_tr.shape[0] < 2:
            raise ValueError(
                f"too few images for a validation split: n={n} with "
                f"validation_fraction={self.validation_fraction} leaves {X_tr.shape[0]} for training (need 2)"
            )
        generator = torch.Generator().manual_seed(agop_seed)

        kernel = self._make_kernel(device, p)
        k = int(getattr(kernel, "patch_size", p["patch_size"]))
        # a kernel object's own padding (zeros it adds around each image) counts too
        room = 2 * int(getattr(kernel, "padding", 0))
        if X.shape[-1] + room < k or X.shape[-2] + room < k:
            raise ValueError(
                f"X (after padding={self.padding}) has spatial size "
                f"{tuple(X.shape[-2:])}, smaller than the patch size {k} (patch_size={k})"
            )
        result = rfm_iterations(
            kernel,
            X_tr,
            Y_tr,
            X_va,
            Y_va,
            n_iter=p["n_iter"],
            q=X.shape[1] * k * k,
            ridges=p["ridges"],
            agop_samples=p["agop_samples"],
            normalize=p["normalize"],
            power=p["power"],
            generator=generator,
            progress=self.progress,
        )
        dual_coefs = [fit.dual_coef / fit.scale for fit in result.fits]
        # the fitted state, assigned only now that every check has passed and the rounds ran
        self.classes_, self.image_shape_, self.kernel_ = classes, image_shape, kernel
        self.Ms_ = result.Ms
        self.history_ = result.history
        self.best_iter_ = result.best_iter
        self.M_ = result.M
        self.dual_coefs_ = dual_coefs
        self.dual_coef_ = dual_coefs[result.best_iter]
        self.ridge_ = result.best_fit.ridge
        self.X_fit_ = X_tr
        self.n_iter_ = len(result.history) - 1
        self.n_features_in_ = int(np.prod(image_shape))
        self._padding_ = p["padding"]
        self._rows_shape_ = None if rows_shape is None else image_shape
        self._set_feature_names(names)
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "M_")

    def _outputs(self, X, iteration: int | None = None) -> torch.Tensor:
        check_fitted(self)
        t = self.best_iter_ if iteration is None else iteration
        if not isinstance(t, (int, np.integer)) or not 0 <= t < len(self.Ms_):
            raise ValueError(f"iteration must be in [0, {len(self.Ms_) - 1}], got {iteration!r}")
        return self._predict(self._checked_images(X), int(t))

    def _checked_images(self, X) -> torch.Tensor:
        """``X`` as checked, padded images of the training shape, dtype and device."""
        X, _ = self._as_images(X, reset=False)
        X = check_images(X, "X", dtype=self.X_fit_.dtype, device=self.X_fit_.device).detach()
        if tuple(X.shape[1:]) != self.image_shape_:
            raise ValueError(
                f"X must have the training images' shape (c, H, W) = "
                f"{self.image_shape_}, got {tuple(X.shape[1:])}"
            )
        return self._pad(X)

    def _predict(self, X: torch.Tensor, t: int) -> torch.Tensor:
        """The outputs of iterate ``t`` on checked images ``X``: ``K_{M_t}(X, X_fit_)
        dual_coef_t``, the fitted kernel and metric trusted."""
        root = None if t == 0 else metric_root(self.Ms_[t], X)
        return self.kernel_._matrix(X, self.X_fit_, root) @ self.dual_coefs_[t]

    def score_iterations(self, X: ArrayLike, y: ArrayLike) -> list[float]:
        """Accuracy on ``(X, y)`` of the machine of every iterate ``t = 0..n_iter_`` (entry 0 is
        the fixed kernel): the curve of accuracy against AGOP rounds, from one fit. Selection
        stays with the validation split; use this on held-out data to *report*."""
        check_fitted(self)
        X = self._checked_images(X)
        y = self._as_labels(y, X.shape[0])
        return [
            float(np.mean(self.classes_[self._predict(X, t).argmax(1).cpu().numpy()] == y))
            for t in range(len(self.Ms_))
        ]


class RFM(ConvRFM):
    r"""Recursive Feature Machine on whole inputs: the fully connected RFM of Radhakrishnan et
    al. (2024), as :class:`ConvRFM` whose one patch is the whole input.

    With each input flattened to :math:`x \in \mathbb{R}^D`,

    .. math::

       K_M(x, z) &= \exp(-\|x - z\|_M / L), \qquad \|v\|_M = \sqrt{v^\top M v}, \\
       M_{t+1} &= \operatorname{normalise}\bigl(\mathrm{AGOP}(f_t)^p\bigr), \\
       \mathrm{AGOP}(f) &= \frac1n \sum_i \sum_c \nabla f_c(x_i)\, \nabla f_c(x_i)^\top
           \qquad (D \times D).

    It is exactly :class:`ConvRFM` with the Laplace kernel on ``(n, D, 1, 1)`` images and
    ``1 x 1`` patches (``q = D``, one position), so it shares ConvRFM's solver, its ridge
    selection and its choice of the iterate on a validation split. Inputs of any shape
    ``(n, ...)`` are flattened. ``M_`` is ``D x D``; its top eigenvectors are the directions of
    input space the machine learned to use.

    Parameters and attributes are those of :class:`ConvRFM` without the convolutional ones
    (``kernel``, ``patch_size``, ``depth``, ``padding``, ``image_shape``); ``bandwidth`` is the
    Laplace bandwidth ``L``.

    Examples:
        It is ConvRFM on ``(n, D, 1, 1)`` images with 1 x 1 patches, to the last bit:

        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> X = torch.randn(60, 8, generator=g, dtype=torch.float64)
        >>> y = (X[:, 0] * X[:, 1] > 0).long()  # the sign of a product of two coordinates
        >>> rfm = RFM(n_iter=1, random_state=0, device="cpu", progress=False).fit(X, y)
        >>> tuple(rfm.M_.shape), len(rfm.Ms_)
        ((8, 8), 2)
        >>> conv = ConvRFM("laplace", patch_size=1, n_iter=1, random_state=0, device="cpu",
        ...                progress=False).fit(X.reshape(60, 8, 1, 1), y)
        >>> torch.equal(rfm.Ms_[1], conv.Ms_[1])
        True
    """

    # the convolutional parameters of ConvRFM, fixed: one patch, the whole input
    kernel = "laplace"
    patch_size = 1
    depth = 1
    padding = 0
    image_shape = (-1, 1, 1)

    def __init__(
        self,
        n_iter: int = 3,
        random_state: RandomState = None,
        *,
        bandwidth: float = 10.0,
        ridges: Sequence[float] = DEFAULT_RIDGES,
        agop_samples: int | None = None,
        normalize: str | None = "max_eig",
        power: float = 1.0,
        validation_fraction: float = 0.2,
        device: Device | None = None,
        dtype: torch.dtype | None = None,
        max_memory: int | None = None,
        progress: bool = True,
    ) -> None:
        self.n_iter = n_iter
        self.random_state = random_state
        self.bandwidth = bandwidth
        self.ridges = ridges
        self.agop_samples = agop_samples
        self.normalize = normalize
        self.power = power
        self.validation_fraction = validation_fraction
        self.device = device
        self.dtype = dtype
        self.max_memory = max_memory
        self.progress = progress

    def _images_of(self, X, *, reset: bool):
        """``X`` ``(n, ...)`` flattened to rows ``(n, D)``, read as ``(n, D, 1, 1)`` images."""
        _reject_sparse(X)
        x = X if isinstance(X, torch.Tensor) else _asarray(X)
        if isinstance(x, np.ndarray) and x.dtype.kind in "USV":  # complex, object: sklearn's
            raise ArgumentTypeError(f"X must hold numbers, got an array of dtype {x.dtype}")
        if x.ndim > 2:  # the row width from the shape (-1 cannot be inferred for 0 rows)
            x = x.reshape(x.shape[0], int(np.prod(x.shape[1:])))
        return super()._images_of(x, reset=reset)
