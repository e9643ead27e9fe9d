r"""Deep ConvRFM (Algorithm 2): AGOP-learned convolutional layers stacked without
back-propagation. :math:`X_0 = X`; for :math:`l = 0, \dots, L-1`: :math:`M_l` is the best
feature matrix of ConvRFM on :math:`X_l` with a CNTK of depth ``depth`` :math:`- l` (or another
kernel, ``kernel=``), and for :math:`l < L-1`

.. math::

   W_l &= G_l M_l^{1/2} \qquad (\text{width} \times q,\ G_l \text{ i.i.d. } \mathcal N(0, 1):
       \text{rows} \sim \mathcal N(0, M_l)), \\
   X_{l+1} &= \phi(\mathrm{conv}(X_l, W_l)) \qquad (\text{VALID convolution, } \phi
       \text{ a nonlinearity});

predict with the last layer's ConvRFM on :math:`X_{L-1}`.

The total architecture matches a CNN of ``depth`` VALID conv layers of width ``width`` and
patch size ``k`` with a fully connected read-out: every featurisation uses one conv layer, and
the kernel loses one layer of depth per featurisation (so it never sees more depth than the
CNN). A kernel without a depth (the Laplace, RBF or one-layer CNNGP kernel) compares patches
once, like one conv layer: every layer uses it unchanged (its ``kernel_depth`` is 1), and
``depth`` then only bounds the number of layers. The paper's Algorithm 2 applies a nonlinearity ``phi`` to the random features; the
authors' code (``get_layer_from_M`` in their ConvRFM repository) applies none. The paper names
no particular ``phi``; the estimator's default, ``phi = ReLU`` (the CNN's activation), is our
choice; ``nonlinearity=None`` is the code's. Features come from AGOPs, models from convex solves (kernel ridge regression).

:class:`RandomFeatureConv` is the featurisation on its own, reusable with any metric ``M``;
:func:`featurize` is its one-call form. :class:`DeepConvRFM` is the scikit-learn estimator.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin

from agop._typing import ArrayLike, Device, RandomState
from agop.estimator import (
    _MAX_COUNT,
    ImageInputMixin,
    _check_labels,
    _feature_names,
    check_fitted,
    random_seeds,
)
from agop.features import feature_map
from agop.kernels import Kernel
from agop.kernels.objects import KERNELS, fields_of
from agop.linalg import _psd_power
from agop.rfm import ConvRFM
from agop.runtime import default_device
from agop.validation import (
    FLOAT_DTYPES,
    ArgumentTypeError,
    _check_allocation,
    all_finite,
    as_tensor,
    check_bool,
    check_choice,
    check_dtype,
    check_finite,
    check_images,
    check_int,
    check_psd,
    check_result,
    check_seed,
    psd_tolerance,
)

NONLINEARITIES: dict[str, Callable[[torch.Tensor], torch.Tensor] | None] = {
    "none": None,
    "relu": torch.relu,
    "abs": torch.abs,
    "tanh": torch.tanh,
}

#: bytes one chunk of featurised images may use by default (output plus im2col workspace)
DEFAULT_MAX_MEMORY = 512 * 2**20


def _nonlinearity(phi) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """``phi`` as a callable, or ``None`` for the identity (no nonlinearity)."""
    if phi is None:
        return None
    if isinstance(phi, str):
        if phi.lower() not in NONLINEARITIES:
            raise ValueError(
                f"nonlinearity must be None, a callable or one of "
                f"{sorted(NONLINEARITIES)}, got {phi!r}"
            )
        return NONLINEARITIES[phi.lower()]
    if callable(phi):
        return phi
    raise ValueError(
        f"nonlinearity must be None, a callable or one of {sorted(NONLINEARITIES)}, "
        f"got {type(phi).__name__}"
    )


def _apply(phi: Callable[[torch.Tensor], torch.Tensor], h: torch.Tensor) -> torch.Tensor:
    """``phi(h)``, checked: a finite tensor of ``h``'s shape, else a ``ValueError`` that names
    the ``nonlinearity`` (a bad custom ``phi`` would otherwise surface as bad images ``X`` of
    the next layer, or as a broadcasting error)."""
    out = phi(h)
    if not isinstance(out, torch.Tensor) or out.shape != h.shape:
        got = (
            f"shape {tuple(out.shape)}"
            if isinstance(out, torch.Tensor)
            else f"a {type(out).__name__}"
        )
        raise ValueError(
            f"nonlinearity {_name(phi)} must return a tensor of its input's shape "
            f"{tuple(h.shape)} (it is applied elementwise), got {got}"
        )
    if not all_finite(out):
        if not all_finite(h):  # the convolution itself overflowed
            check_result(h, "the convolution of X with the filters")
        bad = int((~torch.isfinite(out)).sum())
        raise ValueError(
            f"nonlinearity {_name(phi)} returned {bad} non-finite values (NaN or inf) "
            f"of {out.numel()} on finite inputs in [{float(h.min()):.3g}, {float(h.max()):.3g}]"
        )
    return out


def _name(phi: Callable) -> str:
    return repr(getattr(phi, "__name__", phi))


def _positive_int(value, name: str) -> int:
    return check_int(value, name, minimum=1)


def _odd_patch(value) -> int:
    return check_int(value, "patch_size", minimum=1, odd=True)


def random_filters(
    M: ArrayLike,
    width: int,
    channels: int,
    patch_size: int,
    *,
    seed: int = 0,
    dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """``width`` convolutional filters whose flattened rows are i.i.d. ``N(0, M)``.

    :math:`W = G M^{1/2}` with :math:`G` a width :math:`\times q` matrix of i.i.d. standard
    normals and :math:`q` = ``channels * patch_size**2``, so :math:`E[W^\top W] / \text{width} = M`. ``M = None`` means the
    identity. Returns a tensor of shape ``(width, channels, k, k)`` in the (channel, row, col)
    order of ``F.unfold`` and ``conv.weight``. ``G`` is drawn on the CPU from ``seed``, so the
    filters do not depend on the device.

    Examples:
        The sample second moment of many filters approaches :math:`M`:

        >>> import torch
        >>> M = torch.diag(torch.tensor([4.0, 1.0, 1.0, 0.0], dtype=torch.float64))
        >>> W = random_filters(M, 20000, channels=4, patch_size=1, dtype=torch.float64,
        ...                    device="cpu")
        >>> tuple(W.shape)
        (20000, 4, 1, 1)
        >>> W = W.reshape(20000, 4)
        >>> (W.T @ W / 20000).diagonal().round(decimals=1).tolist()
        [4.0, 1.0, 1.0, 0.0]
    """
    width = _positive_int(width, "width")
    channels = _positive_int(channels, "channels")
    k = _odd_patch(patch_size)
    q = channels * k * k
    # the Gaussian draws are float64, width x q: a width such as 10**12 is refused here
    _check_allocation(width * q, 8, "width", f"{width} random filters of {q} weights")
    device = default_device(device)
    seed = check_seed(seed)
    dtype = check_dtype(dtype)
    if M is None:
        dtype = dtype or torch.get_default_dtype()
        root = None
    else:
        M = as_tensor(M, "M", dtype=dtype)
        M = check_psd(M, "M", q, rtol=psd_tolerance(M.dtype))
        dtype = M.dtype
        root = _psd_power(M, 0.5)
    return _random_filters(root, width, channels, k, seed, dtype, device)


def _random_filters(
    root: torch.Tensor | None,
    width: int,
    channels: int,
    k: int,
    seed: int,
    dtype: torch.dtype,
    device: torch.device,
) -> torch.Tensor:
    """:func:`random_filters` from the factor ``root`` :math:`= M^{1/2}` and checked arguments."""
    G = torch.randn(
        width, channels * k * k, generator=torch.Generator().manual_seed(seed), dtype=torch.float64
    )
    W = G.to(dtype) if root is None else G.to(dtype) @ root.cpu()
    return W.reshape(width, channels, k, k).to(device)


class RandomFeatureConv:
    r"""The featurisation of Deep ConvRFM: :math:`x \mapsto \phi(\mathrm{conv}(x, W))` with fixed
    filters :math:`W`.

    ``conv`` is a VALID convolution with stride 1 and no bias (the CNTK's architecture), so an
    ``H x W`` image becomes ``(H - k + 1) x (W - k + 1)`` with ``width`` channels. Build it from
    a metric with :meth:`from_metric` (rows of ``W`` drawn from ``N(0, M)``) or from given
    filters. ``nonlinearity``: ``None``/``'none'`` (the authors' code: the next kernel's ReLU
    acts), ``'relu'`` (the paper's Algorithm 2 applies an unnamed ``phi``; ReLU is our choice and
    :class:`DeepConvRFM`'s default), ``'abs'``, ``'tanh'`` or a callable applied elementwise.

    Examples:
        One 1 x 1 filter, the difference of two channels, then a ReLU:

        >>> import torch
        >>> W = torch.tensor([1.0, -1.0], dtype=torch.float64).reshape(1, 2, 1, 1)
        >>> layer = RandomFeatureConv(W, nonlinearity="relu")
        >>> layer
        RandomFeatureConv(width=1, channels=2, patch_size=1, nonlinearity='relu')
        >>> x = torch.tensor([[[[3.0, 1.0]], [[0.0, 2.0]]]], dtype=torch.float64)  # (1, 2, 1, 2)
        >>> layer(x).tolist()  # relu(3 - 0), relu(1 - 2)
        [[[[3.0, 0.0]]]]
    """

    def __init__(self, filters: torch.Tensor, nonlinearity: str | Callable | None = None) -> None:
        filters = as_tensor(filters, "filters")
        if filters.ndim != 4 or filters.shape[-1] != filters.shape[-2]:
            raise ValueError(
                f"filters must have shape (width, channels, k, k), got shape {tuple(filters.shape)}"
            )
        if filters.numel() == 0 or filters.shape[-1] % 2 == 0:
            raise ValueError(
                f"filters must be non-empty with an odd side k, got shape {tuple(filters.shape)}"
            )
        self.filters = check_finite(filters, "filters")
        self.nonlinearity = nonlinearity
        self._phi = _nonlinearity(nonlinearity)

    @classmethod
    def from_metric(
        cls,
        M: ArrayLike,
        width: int,
        channels: int,
        patch_size: int,
        *,
        seed: int = 0,
        nonlinearity: str | Callable | None = None,
        dtype: torch.dtype | None = None,
        device: str | torch.device | None = None,
    ) -> RandomFeatureConv:
        """Filters from :func:`random_filters` (rows ``~ N(0, M)``)."""
        return cls(
            random_filters(M, width, channels, patch_size, seed=seed, dtype=dtype, device=device),
            nonlinearity,
        )

    @property
    def width(self) -> int:
        return int(self.filters.shape[0])

    @property
    def channels(self) -> int:
        return int(self.filters.shape[1])

    @property
    def patch_size(self) -> int:
        return int(self.filters.shape[-1])

    def output_shape(self, image_shape: Sequence[int]) -> tuple[int, int, int]:
        """``(width, H - k + 1, W - k + 1)`` for images of shape ``(c, H, W)``."""
        if not isinstance(image_shape, (tuple, list, torch.Size)) or len(image_shape) != 3:
            raise ArgumentTypeError(f"image_shape must be (c, H, W), got {image_shape!r}")
        c, H, W = (check_int(s, f"image_shape[{i}]", minimum=1) for i, s in enumerate(image_shape))
        k = self.patch_size
        if c != self.channels or min(H, W) < k:
            raise ValueError(
                f"image_shape must be (c, H, W) with c = {self.channels} channels and "
                f"H, W >= {k}, got {tuple(image_shape)}"
            )
        return self.width, H - k + 1, W - k + 1

    def __call__(self, X: ArrayLike, *, max_memory: int | None = None) -> torch.Tensor:
        """``phi(conv(X, W))`` for images ``X`` ``(n, c, H, W)``, computed in chunks of images
        whose output and im2col workspace stay within ``max_memory`` bytes."""
        X = check_images(
            X, "X", channels=self.channels, dtype=self.filters.dtype, device=self.filters.device
        )
        if max_memory is not None:
            max_memory = check_int(max_memory, "max_memory", minimum=1)
        k = self.patch_size
        if X.shape[-1] < k or X.shape[-2] < k:
            raise ValueError(
                f"X has spatial size {tuple(X.shape[-2:])}, smaller than the patch size {k}"
            )
        return self._features(X, max_memory)

    def _features(self, X: torch.Tensor, max_memory: int | None) -> torch.Tensor:
        """``phi(conv(X, W))`` of checked images (the filters' channels, dtype and device,
        at least ``k x k``); only the nonlinearity's outputs are checked."""
        k = self.patch_size
        width, Hp, Wp = self.output_shape(X.shape[1:])
        per_image = Hp * Wp * (width + self.channels * k * k) * X.element_size()
        budget = DEFAULT_MAX_MEMORY if max_memory is None else int(max_memory)
        chunk = max(1, budget // max(per_image, 1))
        out = X.new_empty((X.shape[0], width, Hp, Wp))
        for start in range(0, X.shape[0], chunk):
            h = F.conv2d(X[start : start + chunk], self.filters)
            if self._phi is None:  # _apply checks it under a nonlinearity
                h = check_result(
                    h,
                    "the convolution of X with the filters",
                    inputs={"X": X, "filters": self.filters},
                )
            out[start : start + chunk] = h if self._phi is None else _apply(self._phi, h)
        return out

    def __repr__(self) -> str:
        return (
            f"RandomFeatureConv(width={self.width}, channels={self.channels}, "
            f"patch_size={self.patch_size}, nonlinearity={self.nonlinearity!r})"
        )


def featurize(
    X: ArrayLike,
    M: ArrayLike,
    width: int,
    patch_size: int,
    nonlinearity: str | Callable | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    r""":math:`\phi(\mathrm{conv}(X, G M^{1/2}))`: images ``X`` ``(n, c, H, W)`` seen through
    ``width`` random filters with rows :math:`\sim \mathcal N(0, M)` (:math:`M` is
    :math:`q \times q`, :math:`q = c k^2`; ``None`` = identity).

    Keeps ``X``'s dtype (float32 for integer, float16 or bfloat16 input). Returns ``(n, width, H-k+1, W-k+1)``.

    Examples:
        With a rank-one :math:`M = m m^\top` every filter is a multiple of :math:`m`, so
        every output channel is a multiple of the convolution with :math:`m`:

        >>> import torch
        >>> X = torch.rand(2, 1, 5, 5, generator=torch.Generator().manual_seed(0),
        ...                dtype=torch.float64)
        >>> m = torch.zeros(9, dtype=torch.float64)
        >>> m[3], m[5] = -1.0, 1.0  # a horizontal difference across the centre
        >>> H = featurize(X, torch.outer(m, m), width=3, patch_size=3, device="cpu")
        >>> tuple(H.shape)
        (2, 3, 3, 3)
        >>> edge = torch.nn.functional.conv2d(X, m.reshape(1, 1, 3, 3))
        >>> torch.linalg.matrix_rank(torch.cat([H[0], edge[0]]).flatten(1)).item()
        1
    """
    device = default_device(device)
    X = check_images(X, "X", device=device)
    if X.dtype not in FLOAT_DTYPES:  # float16, bfloat16: the filters are float32 or float64
        X = X.float()
    transform = RandomFeatureConv.from_metric(
        M,
        width,
        X.shape[1],
        patch_size,
        seed=seed,
        nonlinearity=nonlinearity,
        dtype=X.dtype,
        device=device,
    )
    return transform(X)


class DeepConvRFM(ImageInputMixin, ClassifierMixin, TransformerMixin, BaseEstimator):
    """Deep ConvRFM (Algorithm 2) as a scikit-learn classifier.

    Parameters
    ----------
    depth : depth of the architecture: the CNTK of layer ``l`` has depth ``depth - l``.
    n_layers : number of feature-learning layers ``L`` (``1 <= L <= depth``; ``None`` = depth).
        With ``L = 1`` this is :class:`agop.ConvRFM` with the kernel (a CNTK of depth
        ``depth``).
    width : number of random filters of each featurisation.
    patch_size : odd patch side ``k`` of every layer.
    n_iter : AGOP rounds of each layer's ConvRFM (the best iterate on validation is kept).
    nonlinearity : ``phi`` of the featurisation ``phi(conv(X_l, W_l))``: ``'relu'`` (default, our
        choice: the paper's Algorithm 2 applies an unnamed nonlinearity, and ReLU is the
        activation of the CNN and of the CNTK), ``'abs'``, ``'tanh'``, a callable, or ``None``: no nonlinearity, as
        in the authors' code (``get_layer_from_M``), where the next kernel's ReLU is the only
        one.
    random_state : seed (or ``numpy`` RandomState) of the validation split, the AGOP
        subsamples and the filters. The same validation split is used at every layer.
    kernel : each layer's kernel, as in :class:`agop.ConvRFM`: a registered name
        (``'cntk'``, the default, ``'laplace'``, ``'rbf'``, ``'cnngp'``; with their default
        parameters) or a kernel object with ``patch_size`` equal to ours. A kernel with a depth
        (the CNTK) must have ``depth`` equal to ours, and layer ``l`` uses it at depth
        ``depth - l``; a kernel without one is used unchanged at every layer (kernel depth 1).
    ridges, agop_samples, normalize, power, validation_fraction, device, dtype, max_memory, progress
        passed to each layer's :class:`agop.ConvRFM` (``validation_fraction`` was
        ``val_fraction`` before 0.2, still accepted with a ``FutureWarning``).
    image_shape : ``(c, H, W)`` of the images when ``X`` holds them as flat rows
        ``(n, c H W)`` (one entry may be ``-1``, inferred); ``None``: ``X`` must be images
        ``(n, c, H, W)``. :meth:`transform` returns rows for rows and images for images.

    It is a classifier and a transformer (scikit-learn's tags say both): :meth:`transform` and
    ``fit_transform`` give the images that the last layer's ConvRFM reads.

    Attributes
    ----------
    layers_ : the fitted :class:`agop.ConvRFM` of each layer (layer ``l`` on ``X_l``).
    Ms_ : the selected feature matrix ``M_l`` of each layer; ``M_`` the last one.
    transforms_ : the :class:`RandomFeatureConv` of each featurisation (``L - 1`` of them);
    filters_ : their filters ``(width, c_l, k, k)``.
    histories_ : each layer's ConvRFM history (``history[t]`` of iterate ``t``); ``history_``
        one row per layer with its depth, best iterate and validation accuracy.
    n_features_in_ : ``c H W`` of the training images.

    Examples:
        Two layers on a small bars task: the first layer's :math:`M_0` draws 8 filters, the
        second ConvRFM (a CNTK of depth 1) reads their 8-channel feature maps.

        >>> import torch
        >>> g = torch.Generator().manual_seed(0)  # bars: a row whose sign is the class
        >>> y = torch.randint(0, 2, (60,), generator=g)
        >>> X = 0.5 * torch.randn(60, 1, 8, 8, generator=g, dtype=torch.float64)  # noise
        >>> rows = torch.randint(0, 8, (60,), generator=g)  # the bar's row, at random
        >>> X[torch.arange(60), 0, rows] = (2 * y[:, None] - 1).double() / 8**0.5
        >>> model = DeepConvRFM(depth=2, width=8, patch_size=3, n_iter=1, random_state=0,
        ...                     dtype=torch.float64, device="cpu").fit(X, y)
        >>> [tuple(M.shape) for M in model.Ms_]  # q = 1 * 3^2, then 8 * 3^2
        [(9, 9), (72, 72)]
        >>> tuple(model.transform(X).shape)
        (60, 8, 6, 6)
        >>> [(h["kernel_depth"], h["channels"], h["image_size"]) for h in model.history_]
        [(2, 1, 8), (1, 8, 6)]
    """

    def __init__(
        self,
        depth: int = 3,
        n_layers: int | None = None,
        width: int = 64,
        patch_size: int = 3,
        n_iter: int = 3,
        nonlinearity: str | Callable | None = "relu",
        random_state: RandomState = None,
        *,
        kernel: str | Kernel = "cntk",
        ridges: Sequence[float] | None = None,
        agop_samples: int | None = None,
        normalize: str | None = "max_eig",
        power: float = 1.0,
        validation_fraction: float = 0.2,
        device: Device | None = None,
        dtype: torch.dtype | None = None,
        max_memory: int | None = None,
        progress: bool = True,
        image_shape: tuple[int, int, int] | None = None,
    ) -> None:
        self.depth = depth
        self.n_layers = n_layers
        self.width = width
        self.patch_size = patch_size
        self.n_iter = n_iter
        self.nonlinearity = nonlinearity
        self.random_state = random_state
        self.kernel = kernel
        self.ridges = ridges
        self.agop_samples = agop_samples
        self.normalize = normalize
        self.power = power
        self.validation_fraction = validation_fraction
        self.device = device
        self.dtype = dtype
        self.max_memory = max_memory
        self.progress = progress
        self.image_shape = image_shape

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]  # the training dtype
        return tags

    # ---- parameters ----------------------------------------------------------------------

    def _n_layers(self) -> int:
        depth = check_int(self.depth, "depth", minimum=1, maximum=_MAX_COUNT)
        L = depth if self.n_layers is None else self.n_layers
        return check_int(L, "n_layers", minimum=1, maximum=depth)

    def _check_params(self) -> int:
        """The number of layers ``L``, after checking every parameter: its own, and those it
        passes to each layer's :class:`agop.ConvRFM` (``ridges``, ``power``...), so that a bad
        one is rejected before the first layer is fitted."""
        L = self._n_layers()
        _positive_int(self.width, "width")
        _odd_patch(self.patch_size)
        self._layer_kernel(0)
        _nonlinearity(self.nonlinearity)
        check_dtype(self.dtype)
        check_bool(self.progress, "progress")
        self._check_image_shape()
        # the layers' ConvRFMs differ only in their kernel's depth (depth - l >= 1): the
        # first and the last stand for all (a loop over every layer would not end for an
        # absurd depth before its error)
        for l in sorted({0, L - 1}):
            self._layer(l, 0)._check_params()
        return L

    def _probe_nonlinearity(self, dtype: torch.dtype, device: torch.device) -> None:
        """Apply a custom ``nonlinearity`` to a few values of both signs before any layer is
        fitted: one that fails, or returns another shape or non-finite values, is rejected
        up front (the featurisations check every output again)."""
        phi = _nonlinearity(self.nonlinearity)
        if phi is None or any(phi is f for f in NONLINEARITIES.values()):
            return
        h = torch.linspace(-2.0, 2.0, 8, dtype=dtype, device=device).reshape(1, 2, 2, 2)
        _apply(phi, h)

    def _layer_kernel(self, l: int) -> tuple[str | Kernel, int]:
        """The kernel of layer ``l``'s ConvRFM (a name or an object) and its depth: a
        kernel with a depth loses one per featurisation, one without is depth 1 throughout."""
        kernel, depth = self.kernel, int(self.depth)
        if isinstance(kernel, str):
            name = check_choice(kernel, "kernel", sorted(KERNELS))
            return name, depth - l if "depth" in fields_of(KERNELS[name]) else 1
        if not isinstance(kernel, Kernel):
            raise ArgumentTypeError(
                f"kernel must be one of {sorted(KERNELS)} or an agop.kernels.Kernel object, "
                f"got {type(kernel).__name__}"
            )
        if kernel.patch_size != self.patch_size:
            raise ValueError(
                f"kernel: the kernel object's patch_size={kernel.patch_size} differs from "
                f"patch_size={self.patch_size} (the featurisations' patch size)"
            )
        if "depth" not in fields_of(kernel):
            return kernel, 1
        own = getattr(kernel, "depth", None)
        if own != depth:
            raise ValueError(
                f"kernel: the kernel object's depth={own} differs from "
                f"depth={depth}: layer l uses it at depth - l"
            )
        return dataclasses.replace(kernel, depth=depth - l), depth - l  # type: ignore[call-arg]

    def _layer(self, l: int, seed) -> Any:
        options: dict[str, Any] = dict(
            agop_samples=self.agop_samples,
            normalize=self.normalize,
            power=self.power,
            validation_fraction=self.validation_fraction,
            device=self.device,
            dtype=self.dtype,
            max_memory=self.max_memory,
            progress=self.progress,
        )
        if self.ridges is not None:
            options["ridges"] = self.ridges
        kernel, kernel_depth = self._layer_kernel(l)
        return ConvRFM(
            kernel=kernel,
            patch_size=self.patch_size,
            depth=kernel_depth,
            n_iter=self.n_iter,
            random_state=seed,
            **options,
        )

    # ---- fit / predict -------------------------------------------------------------------

    def fit(self, X: ArrayLike, y: ArrayLike) -> DeepConvRFM:
        """Learn ``n_layers`` layers on images ``X`` ``(n, c, H, W)`` with labels ``y``
        (``(n,)`` or one-hot ``(n, C)``). Returns ``self``."""
        # Every check runs first, and the layers are fitted into locals: the fitted
        # attributes are assigned together at the end, so a rejected or failed fit (a bad
        # parameter, bad data, a nonlinearity that raises in the second layer) leaves a fitted
        # estimator as it was, and an unfitted one unfitted.
        L = self._check_params()
        k = int(self.patch_size)
        rows_shape = self._rows_shape(reset=True)
        names = _feature_names(X)
        X, _ = self._as_images(X, reset=True)
        X = check_images(X, "X", dtype=check_dtype(self.dtype)).detach()
        # L - 1 featurisations, then the last layer's kernel (its padding helps)
        last, last_depth = self._layer_kernel(L - 1)
        convs = L - 1 + last_depth
        need = convs * (k - 1) + 1 - 2 * int(getattr(last, "padding", 0))
        if min(X.shape[-2:]) < need:
            raise ValueError(
                f"X has spatial size {tuple(X.shape[-2:])}; {convs} VALID "
                f"layers of patch_size={k} (depth={self.depth}, n_layers={L}) need at "
                f"least {need} x {need}"
            )
        n, c, *size = X.shape
        width = int(self.width)
        # the fitted state holds each layer's q x q metric (q = c k^2 in the first layer,
        # width k^2 after it); every featurisation holds the n featurised training images
        q, q_next = c * k * k, width * k * k
        _check_allocation(
            q * q + (L - 1) * (q_next * q_next + width * q_next),
            X.element_size(),
            "depth, n_layers, width",
            f"the metrics and filters of {L} layers",
        )
        if L > 1:
            _check_allocation(
                n * width * (size[0] - k + 1) * (size[1] - k + 1),
                X.element_size(),
                "width",
                "the featurised images",
            )
        classes, codes, one_hot = _check_labels(y, X.shape[0], type(self).__name__)
        # the checked labels, as each layer's ConvRFM reads them (no second warning)
        y_layers = np.eye(len(classes), dtype=np.int64)[codes] if one_hot else classes[codes]
        self._probe_nonlinearity(X.dtype, default_device(self.device))
        # One integer seed for every layer's ConvRFM, so that each uses the same validation
        # split (an integer random_state is passed on unchanged: L = 1 is exactly ConvRFM).
        split_seed, *filter_seeds = random_seeds(self.random_state, L + 1, keep_int=True)

        layers: list[ConvRFM] = []
        transforms: list[RandomFeatureConv] = []
        history: list[dict[str, float]] = []
        X_l = X
        for l in range(L):
            layer = self._layer(l, split_seed).fit(X_l, y_layers)
            layers.append(layer)
            history.append(
                {
                    "layer": l,
                    "kernel_depth": self._layer_kernel(l)[1],
                    "channels": int(X_l.shape[1]),
                    "image_size": int(X_l.shape[-1]),
                    "best_iter": int(layer.best_iter_),
                    "val_acc": float(layer.history_[layer.best_iter_]["val_acc"]),
                    "val_acc_cntk": float(layer.history_[0]["val_acc"]),
                }
            )
            if l < L - 1:
                # the fitted metric and the layer's checked images are trusted: M^{1/2} once
                M = layer.M_.to(layer.X_fit_.device)
                root = _psd_power(M, 0.5)
                W = _random_filters(
                    root, int(self.width), X_l.shape[1], k, filter_seeds[l], M.dtype, M.device
                )
                transform = RandomFeatureConv(W, self.nonlinearity)
                transforms.append(transform)
                X_l = transform._features(X_l.to(device=M.device, dtype=M.dtype), self.max_memory)
        # the fitted state, assigned only now that every layer has been fitted
        self.layers_ = layers
        self.transforms_ = transforms
        self.Ms_ = [layer.M_ for layer in layers]
        self.histories_ = [layer.history_ for layer in layers]
        self.history_ = history
        self.classes_ = layers[-1].classes_
        self.filters_ = [t.filters for t in transforms]
        self.M_ = self.Ms_[-1]
        self.n_layers_ = L
        self.n_features_in_ = int(np.prod(X.shape[1:]))
        self._rows_shape_ = None if rows_shape is None else tuple(X.shape[1:])
        self._max_memory_ = self.max_memory
        self._set_feature_names(names)
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "layers_")

    def transform(self, X: ArrayLike, n_layers: int | None = None) -> Any:
        """``X`` through the first ``n_layers`` featurisations (all of them by default): the
        images that layer ``n_layers``'s ConvRFM reads, ``(n, width, H_l, W_l)``, or flattened
        to rows ``(n, width H_l W_l)`` when ``X`` came as flat rows (see ``image_shape``).
        A tensor for a tensor ``X``, else a numpy array (as scikit-learn's transformers)."""
        check_fitted(self)
        n = len(self.transforms_) if n_layers is None else n_layers
        if (
            isinstance(n, (bool, np.bool_))  # True would be read as 1 layer
            or not isinstance(n, (int, np.integer))
            or not 0 <= n <= len(self.transforms_)
        ):
            raise ValueError(f"n_layers must be in [0, {len(self.transforms_)}], got {n_layers!r}")
        tensor = isinstance(X, torch.Tensor)
        X, flat = self._input_images(X)
        X = self._featurise(X, n)
        X = X.flatten(1) if flat else X
        return X if tensor else X.detach().cpu().numpy()

    def _featurise(self, X: torch.Tensor, n: int) -> torch.Tensor:
        """Checked images ``X`` through the first ``n`` featurisations."""
        for transform in self.transforms_[:n]:
            X = transform(X, max_memory=self._max_memory_)
        return X

    def _input_images(self, X) -> tuple[torch.Tensor, bool]:
        """``X`` as checked images of the training shape, and whether it came as flat rows."""
        X, flat = self._as_images(X, reset=False)
        ref = self.layers_[0].X_fit_
        X = check_images(X, "X", dtype=ref.dtype, device=ref.device).detach()
        if tuple(X.shape[1:]) != tuple(self.layers_[0].image_shape_):
            raise ValueError(
                f"X must have the training images' shape (c, H, W) = "
                f"{tuple(self.layers_[0].image_shape_)}, got {tuple(X.shape[1:])}"
            )
        return X, flat

    def _last_inputs(self, X) -> torch.Tensor:
        """The images the last layer's ConvRFM reads (always 4-d)."""
        check_fitted(self)
        return self._featurise(self._input_images(X)[0], len(self.transforms_))

    def decision_function(self, X: ArrayLike) -> np.ndarray:
        """The last layer's ConvRFM scores on the featurised ``X`` (as ``ConvRFM``'s)."""
        X = self._last_inputs(X)
        return self.layers_[-1].decision_function(X)

    def predict(self, X: ArrayLike) -> np.ndarray:
        """The class of the largest output of the last layer, as an element of ``classes_``."""
        X = self._last_inputs(X)
        return self.layers_[-1].predict(X)

    def score(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
        """Accuracy on ``(X, y)``; ``y`` as labels or one-hot, like in :meth:`fit`."""
        X = self._last_inputs(X)
        return self.layers_[-1].score(X, y, sample_weight=sample_weight)

    def feature_maps(self, X: ArrayLike, identity: bool = False) -> list[torch.Tensor]:
        r"""What each layer's feature matrix makes of images ``X``: :math:`\|M_l^{1/2} x_l[j]\|` at
        every position ``j`` of the layer's input ``x_l`` (``"same"`` padding, so layer ``l``'s
        map has ``x_l``'s size), one ``(n, H_l, W_l)`` tensor per layer
        (:func:`agop.features.feature_map`). ``identity=True`` uses ``M_l = I`` instead: the
        plain local energy of the same inputs, the control for these maps."""
        check_fitted(self)
        identity = check_bool(identity, "identity")
        maps = []
        k = int(self.layers_[0].kernel_.patch_size)  # the fitted one (not a later parameter)
        for M, X_l in zip(self.Ms_, self._layer_inputs(X), strict=True):
            A = torch.eye(M.shape[0], dtype=M.dtype, device=M.device) if identity else M
            maps.append(feature_map(A.to(X_l), X_l, k))
        return maps

    def score_layers(self, X: ArrayLike, y: ArrayLike) -> list[float]:
        """Accuracy of the predictor after ``1, 2, ..., n_layers`` feature-learning layers
        (entry ``l`` is layer ``l``'s ConvRFM on ``X`` through ``l`` featurisations): the curve
        of accuracy against the number of feature-learning layers, from one fit."""
        check_fitted(self)  # before reading layers_
        return [
            float(layer.score(X_l, y))
            for layer, X_l in zip(self.layers_, self._layer_inputs(X), strict=True)
        ]

    def _layer_inputs(self, X):
        """``X`` as each layer's ConvRFM reads it: ``X``, then through one more featurisation
        per layer (each computed once, from the previous)."""
        check_fitted(self)
        X, _ = self._input_images(X)
        yield X
        for transform in self.transforms_[: len(self.layers_) - 1]:
            X = transform(X, max_memory=self._max_memory_)
            yield X
