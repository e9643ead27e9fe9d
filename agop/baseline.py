r"""The CNN baseline of Deep ConvRFM: a network with the kernel's architecture, trained with Adam.

Architecture (the CNTK's, see :mod:`agop.kernels`): ``depth`` VALID conv layers of ``width``
filters of size ``k x k``, no bias, ReLU, no pooling, and a fully connected read-out. It is a
thin scikit-learn layer over :class:`agop.nets.SimpleCNN` and :func:`agop.nets.train`: the
epoch kept is the one with the best *validation* accuracy (never the test set), and the
network's per-layer CNFMs :math:`W_l^\top W_l` and patch-AGOPs are exposed for comparison with the
feature matrices ``M_l`` of Deep ConvRFM.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import torch
from sklearn.base import BaseEstimator

from agop._typing import ArrayLike, Device, RandomState, Tensor
from agop.data import train_val_split
from agop.estimator import (
    ImageInputMixin,
    OutputClassifierMixin,
    _check_labels,
    check_fitted,
    random_seeds,
)
from agop.features import cnfm, feature_map, layer_inputs, patch_agop
from agop.nets import SimpleCNN, train
from agop.runtime import default_device
from agop.validation import check_dtype, check_images, check_int, check_real


def validation_split(
    codes: np.ndarray, validation_fraction: float, random_state: RandomState
) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices of images with class codes ``codes``: the stratified split of
    :func:`agop.data.train_val_split`, seeded as :class:`agop.ConvRFM` seeds it from
    ``random_state`` (same ``random_state``, same held-out images; a test guards this), so
    the CNN and the kernel machines select on the same images.

    Examples:
        >>> import numpy as np
        >>> codes = np.array([0, 1] * 10)
        >>> train_idx, val_idx = validation_split(codes, 0.2, random_state=0)
        >>> len(train_idx), len(val_idx), np.bincount(codes[val_idx]).tolist()  # stratified
        (16, 4, [2, 2])
        >>> sorted(np.concatenate([train_idx, val_idx]).tolist()) == list(range(20))
        True
    """
    if not (isinstance(validation_fraction, (int, float)) and 0 < validation_fraction < 1):
        raise ValueError(f"validation_fraction must lie in (0, 1), got {validation_fraction!r}")
    n = len(codes)
    split_seed = random_seeds(random_state, 2)[0]  # ConvRFM's split seed
    train_idx, _, val_idx, _ = train_val_split(
        torch.arange(n), torch.as_tensor(codes), validation_fraction, split_seed
    )
    if len(train_idx) < 2 or len(val_idx) < 1:
        raise ValueError(
            f"too few images for a validation split: n={n}, "
            f"validation_fraction={validation_fraction}"
        )
    return train_idx.numpy(), val_idx.numpy()


class CNNBaseline(ImageInputMixin, OutputClassifierMixin, BaseEstimator):
    r"""A CNN with the kernel's architecture, trained with Adam, selected on validation.

    Parameters
    ----------
    depth, width, patch_size : ``depth`` VALID conv layers of ``width`` filters ``k x k``
        (no bias, ReLU, no pooling) and a fully connected read-out.
    epochs, lr, batch_size : Adam's schedule (the authors: 25 epochs on the toy tasks).
    validation_fraction, random_state : the validation split (the same one
        :class:`agop.ConvRFM` draws with the same ``random_state``) and the seed of
        initialisation and batches (``val_fraction`` before 0.2, accepted with a
        ``FutureWarning``).
    device, dtype, progress : where and in which float type to train; a progress bar.
    image_shape : ``(c, H, W)`` of the images when ``X`` holds them as flat rows
        ``(n, c H W)`` (one entry may be ``-1``, inferred); ``None``: ``X`` must be images
        ``(n, c, H, W)`` (see :class:`agop.estimator.ImageInputMixin`).

    Attributes
    ----------
    model_ : the trained :class:`agop.nets.SimpleCNN` at its best validation epoch.
    result_ : what :func:`agop.nets.train` returned; ``history_`` its per-epoch history.
    cnfms_ : :math:`W_l^\top W_l` of every conv layer (``q_l x q_l``), in layer order;
    delta_cnfms_ : the same for ``W_l - W_l(0)``, the change from initialisation (what the
    authors drew in their Figure 4). ``best_epoch_``: the epoch kept.
    classes_ : the class labels; ``image_shape_`` the ``(c, H, W)`` of the training images and
    ``n_features_in_`` its size ``c H W``.

    Examples:
        >>> import torch
        >>> from agop.data import bars_in_noise
        >>> X, y = bars_in_noise(40, sigma=2.0, height=8, width=8, dtype=torch.float64)
        >>> cnn = CNNBaseline(depth=1, width=4, patch_size=3, epochs=2, random_state=0,
        ...                   device="cpu", dtype=torch.float64).fit(X, y)
        >>> W = cnn.model_.convs[0].weight.reshape(4, -1)
        >>> torch.allclose(cnn.cnfms_[0], W.T @ W)  # the CNFM of the trained layer
        True
        >>> cnn.predict(X[:3]).shape
        (3,)
    """

    def __init__(
        self,
        depth: int = 3,
        width: int = 64,
        patch_size: int = 3,
        epochs: int = 25,
        lr: float = 1e-3,
        batch_size: int = 64,
        validation_fraction: float = 0.2,
        random_state: RandomState = None,
        *,
        device: Device | None = None,
        dtype: torch.dtype | None = None,
        progress: bool = True,
        image_shape: tuple[int, int, int] | None = None,
    ) -> None:
        self.depth = depth
        self.width = width
        self.patch_size = patch_size
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.device = device
        self.dtype = dtype
        self.progress = progress
        self.image_shape = image_shape

    def _check_params(self) -> None:
        for name, least in (("depth", 1), ("width", 1), ("epochs", 0), ("batch_size", 1)):
            check_int(getattr(self, name), name, minimum=least)
        check_int(self.patch_size, "patch_size", minimum=1, odd=True)
        check_real(self.lr, "lr", minimum=0, strict_minimum=True)
        fraction = check_real(
            self.validation_fraction, "validation_fraction", minimum=0, strict_minimum=True
        )
        if fraction >= 1:
            raise ValueError(f"validation_fraction must lie in (0, 1), got {fraction:g}")
        check_dtype(self.dtype)
        self._check_image_shape()

    def fit(self, X: ArrayLike, y: ArrayLike) -> CNNBaseline:
        """Train on images ``X`` ``(n, c, H, W)`` with labels ``y``; keep the epoch with the best
        validation accuracy. Returns ``self``."""
        # Every check runs first and the network is trained into locals: the fitted
        # attributes are assigned together at the end, so a rejected or failed fit leaves a
        # fitted estimator as it was, and an unfitted one unfitted.
        self._check_params()
        rows_shape = self._rows_shape(reset=True)
        device = default_device(self.device)
        X, _ = self._as_images(X, reset=True)
        X = check_images(X, "X", dtype=check_dtype(self.dtype), device=device)
        n, c, H, W = X.shape
        k = int(self.patch_size)
        need = int(self.depth) * (k - 1) + 1
        if min(H, W) < need:
            raise ValueError(
                f"X has spatial size {(H, W)}; depth={self.depth} VALID layers of "
                f"patch_size={k} need at least {need} x {need}"
            )
        classes, codes, _ = _check_labels(y, n, type(self).__name__)
        train_idx, val_idx = validation_split(
            codes, float(self.validation_fraction), self.random_state
        )
        seed = random_seeds(self.random_state, 1, keep_int=True)[0]
        Y = torch.zeros(n, len(classes), dtype=X.dtype, device=device)
        Y[torch.arange(n, device=device), torch.as_tensor(codes, device=device)] = 1
        tr = torch.as_tensor(train_idx, device=device)
        va = torch.as_tensor(val_idx, device=device)
        model = SimpleCNN(
            c,
            len(classes),
            (H, W),
            depth=int(self.depth),
            width=int(self.width),
            kernel_size=k,
            pool=None,
            bias=False,
            seed=seed,
        ).to(device=device, dtype=X.dtype)
        result = train(
            model,
            X[tr],
            Y[tr],
            X[va],
            Y[va],
            epochs=int(self.epochs),
            lr=float(self.lr),
            optimizer="adam",
            batch_size=int(self.batch_size),
            checkpoints=(0,),
            seed=seed,
            progress=self.progress,
            device=device,
        )
        trained = cast(SimpleCNN, result.model.eval())
        initial = result.checkpoints[0]
        cnfms = [cnfm(conv).detach() for conv in trained.convs]
        delta_cnfms = [
            cnfm(w.detach() - initial[f"convs.{l}.weight"].to(w))
            for l, w in enumerate(cast(Tensor, conv.weight) for conv in trained.convs)
        ]
        # the fitted state, assigned only now that the network is trained
        self.classes_ = classes
        self.result_ = result
        self.model_: SimpleCNN = trained
        self.history_ = result.history
        self.best_epoch_ = result.best_epoch
        self.cnfms_ = cnfms
        self.delta_cnfms_ = delta_cnfms
        self.image_shape_ = (c, H, W)
        self.n_features_in_ = c * H * W
        self._rows_shape_ = None if rows_shape is None else (c, H, W)
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "model_")

    def _images(self, X) -> torch.Tensor:
        check_fitted(self)
        p = next(self.model_.parameters())
        X, _ = self._as_images(X, reset=False)
        X = check_images(X, "X", dtype=p.dtype, device=p.device)
        if tuple(X.shape[1:]) != self.image_shape_:
            raise ValueError(
                f"X must have the training images' shape (c, H, W) = "
                f"{self.image_shape_}, got {tuple(X.shape[1:])}"
            )
        return X

    @torch.no_grad()
    def _outputs(self, X, chunk: int = 1024) -> torch.Tensor:
        X = self._images(X)
        return torch.cat([self.model_(X[i : i + chunk]) for i in range(0, X.shape[0], chunk)])

    def layer_inputs(self, X: ArrayLike) -> list[torch.Tensor]:
        """The input of every conv layer on images ``X``: ``X`` itself, then the activations
        after each ReLU (what each layer's CNFM acts on)."""
        X = self._images(X)
        return list(layer_inputs(self.model_, X, list(self.model_.convs)).values())

    def feature_maps(self, X: ArrayLike, subtract_init: bool = True) -> list[torch.Tensor]:
        r"""What each conv layer's CNFM makes of images ``X``: :math:`\|A_l^{1/2} x_l[j]\|` at every
        position of the layer's input ``x_l`` (``"same"`` padding), one ``(n, H_l, W_l)``
        tensor per layer, with :math:`A_l = (W_l - W_l(0))^\top (W_l - W_l(0))` (``subtract_init``,
        as the authors drew their Figure 4) or :math:`W_l^\top W_l`."""
        check_fitted(self)
        cnfms = self.delta_cnfms_ if subtract_init else self.cnfms_
        return [
            feature_map(A, x, self._kernel_size())
            for A, x in zip(cnfms, self.layer_inputs(X), strict=True)
        ]

    def _kernel_size(self) -> int:
        """The trained network's patch side (not the parameter, which may have changed)."""
        return int(cast(Tensor, self.model_.convs[0].weight).shape[-1])

    def agops(self, X: ArrayLike, **kwargs: Any) -> list[torch.Tensor]:
        """The patch-AGOP of every conv layer over images ``X`` (:func:`agop.features.patch_agop`),
        in layer order."""
        check_fitted(self)
        names = {id(m): name for name, m in self.model_.named_modules()}
        found = patch_agop(
            self.model_, self._images(X), layers=[names[id(c)] for c in self.model_.convs], **kwargs
        )
        return [found[names[id(c)]] for c in self.model_.convs]

    def transform_shapes(self) -> Sequence[tuple[int, int, int]]:
        """``(channels, H, W)`` of each conv layer's input."""
        check_fitted(self)
        _, H, W = self.image_shape_
        k = self._kernel_size()
        return [
            (int(cast(Tensor, conv.weight).shape[1]), H - l * (k - 1), W - l * (k - 1))
            for l, conv in enumerate(self.model_.convs)
        ]
