r"""The CNN baseline of Deep ConvRFM: a network with the kernel's architecture, trained with Adam.

Architecture (the CNTK's, see :mod:`agop.kernels`): ``depth`` VALID conv layers of ``width``
filters of size ``k x k``, no bias, ReLU, no pooling, and a fully connected read-out. It is a
thin scikit-learn layer over :class:`agop.nets.SimpleCNN` and :func:`agop.nets.train`: the
epoch kept is the one with the best *validation* accuracy (never the test set), and the
network's per-layer CNFMs :math:`W_l^\top W_l` and patch-AGOPs are exposed for comparison with the
feature matrices ``M_l`` of Deep ConvRFM.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state

from agop.estimator import OutputClassifierMixin
from agop.runtime import default_device
from agop.validation import check_choice, check_dtype, check_images, check_int, check_real


def _labels(y, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(classes, integer codes) of labels ``y`` ``(n,)`` or one-hot ``(n, C)``."""
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[0] == n and y.shape[1] > 1:
        return np.arange(y.shape[1]), y.argmax(1)
    y = y.ravel() if y.ndim == 2 and y.shape[1] == 1 else y
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"y must hold one label per image of X ({n}), got shape {y.shape}")
    classes, codes = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"y must hold at least two classes, got {len(classes)}")
    return classes, codes


def validation_split(codes: np.ndarray, val_fraction: float, random_state: Any
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
    from agop.data import train_val_split

    if not (isinstance(val_fraction, (int, float)) and 0 < val_fraction < 1):
        raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction!r}")
    n = len(codes)
    split_seed = int(check_random_state(random_state).randint(2**31 - 1, size=2)[0])
    train_idx, _, val_idx, _ = train_val_split(torch.arange(n), torch.as_tensor(codes),
                                               val_fraction, split_seed)
    if len(train_idx) < 2 or len(val_idx) < 1:
        raise ValueError(f"too few images for a validation split: n={n}, "
                         f"val_fraction={val_fraction}")
    return train_idx.numpy(), val_idx.numpy()


class CNNBaseline(OutputClassifierMixin, BaseEstimator):
    r"""A CNN with the kernel's architecture, trained with Adam, selected on validation.

    Parameters
    ----------
    depth, width, patch_size : ``depth`` VALID conv layers of ``width`` filters ``k x k``
        (no bias, ReLU, no pooling) and a fully connected read-out.
    epochs, lr, batch_size : Adam's schedule (the authors: 25 epochs on the toy tasks).
    val_fraction, random_state : the validation split (the same one :class:`agop.ConvRFM` draws
        with the same ``random_state``) and the seed of initialisation and batches.
    device, dtype, progress : where and in which float type to train; a progress bar.

    Attributes
    ----------
    model_ : the trained :class:`agop.nets.SimpleCNN` at its best validation epoch.
    result_ : what :func:`agop.nets.train` returned; ``history_`` its per-epoch history.
    cnfms_ : :math:`W_l^\top W_l` of every conv layer (``q_l x q_l``), in layer order;
    delta_cnfms_ : the same for ``W_l - W_l(0)``, the change from initialisation (what the
    authors drew in their Figure 4). ``best_epoch_``: the epoch kept.
    classes_ : the class labels.

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

    def __init__(self, depth: int = 3, width: int = 64, patch_size: int = 3, epochs: int = 25,
                 lr: float = 1e-3, batch_size: int = 64, val_fraction: float = 0.2,
                 random_state: Any = None, *, device: str | torch.device | None = None,
                 dtype: torch.dtype | None = None, progress: bool = True):
        self.depth = depth
        self.width = width
        self.patch_size = patch_size
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.random_state = random_state
        self.device = device
        self.dtype = dtype
        self.progress = progress

    def _check_params(self) -> None:
        for name, least in (("depth", 1), ("width", 1), ("epochs", 0), ("batch_size", 1)):
            check_int(getattr(self, name), name, minimum=least)
        check_int(self.patch_size, "patch_size", minimum=1, odd=True)
        check_real(self.lr, "lr", minimum=0, strict_minimum=True)
        check_dtype(self.dtype)

    def fit(self, X, y) -> CNNBaseline:
        """Train on images ``X`` ``(n, c, H, W)`` with labels ``y``; keep the epoch with the best
        validation accuracy. Returns ``self``."""
        from agop.features import cnfm
        from agop.nets import SimpleCNN, train

        self._check_params()
        device = default_device(self.device)
        X = check_images(X, "X", dtype=check_dtype(self.dtype), device=device)
        n, c, H, W = X.shape
        k = int(self.patch_size)
        need = int(self.depth) * (k - 1) + 1
        if min(H, W) < need:
            raise ValueError(f"X has spatial size {(H, W)}; depth={self.depth} VALID layers of "
                             f"patch_size={k} need at least {need} x {need}")
        self.classes_, codes = _labels(y, n)
        train_idx, val_idx = validation_split(codes, self.val_fraction, self.random_state)
        seed = (int(self.random_state) if isinstance(self.random_state, (int, np.integer))
                else int(check_random_state(self.random_state).randint(2**31 - 1)))
        Y = torch.zeros(n, len(self.classes_), dtype=X.dtype, device=device)
        Y[torch.arange(n, device=device), torch.as_tensor(codes, device=device)] = 1
        tr = torch.as_tensor(train_idx, device=device)
        va = torch.as_tensor(val_idx, device=device)
        model = SimpleCNN(c, len(self.classes_), (H, W), depth=int(self.depth),
                          width=int(self.width), kernel_size=k, pool=None, bias=False,
                          seed=seed).to(device=device, dtype=X.dtype)
        self.result_ = train(model, X[tr], Y[tr], X[va], Y[va], epochs=int(self.epochs),
                             lr=float(self.lr), optimizer="adam",
                             batch_size=int(self.batch_size), checkpoints=(0,), seed=seed,
                             progress=self.progress, device=device)
        self.model_ = self.result_.model.eval()
        self.history_ = self.result_.history
        self.best_epoch_ = self.result_.best_epoch
        initial = self.result_.checkpoints[0]
        self.cnfms_ = [cnfm(conv).detach() for conv in self.model_.convs]
        self.delta_cnfms_ = [
            cnfm(conv.weight.detach() - initial[f"convs.{l}.weight"].to(conv.weight))
            for l, conv in enumerate(self.model_.convs)]
        self.image_shape_ = (c, H, W)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("this CNNBaseline is not fitted yet; call fit(X, y) first")

    def _images(self, X) -> torch.Tensor:
        self._check_fitted()
        p = next(self.model_.parameters())
        X = check_images(X, "X", dtype=p.dtype, device=p.device)
        if tuple(X.shape[1:]) != self.image_shape_:
            raise ValueError(f"X must have the training images' shape (c, H, W) = "
                             f"{self.image_shape_}, got {tuple(X.shape[1:])}")
        return X

    @torch.no_grad()
    def _outputs(self, X, chunk: int = 1024) -> torch.Tensor:
        X = self._images(X)
        return torch.cat([self.model_(X[i:i + chunk]) for i in range(0, X.shape[0], chunk)])

    def layer_inputs(self, X) -> list[torch.Tensor]:
        """The input of every conv layer on images ``X``: ``X`` itself, then the activations
        after each ReLU (what each layer's CNFM acts on)."""
        X = self._images(X)
        inputs: list[torch.Tensor] = []
        hooks = [conv.register_forward_pre_hook(lambda _m, args: inputs.append(args[0].detach()))
                 for conv in self.model_.convs]
        try:
            with torch.no_grad():
                self.model_(X)
        finally:
            for h in hooks:
                h.remove()
        return inputs

    def feature_maps(self, X, subtract_init: bool = True) -> list[torch.Tensor]:
        r"""What each conv layer's CNFM makes of images ``X``: :math:`\|A_l^{1/2} x_l[j]\|` at every
        position of the layer's input ``x_l`` (``"same"`` padding), one ``(n, H_l, W_l)``
        tensor per layer, with :math:`A_l = (W_l - W_l(0))^\top (W_l - W_l(0))` (``subtract_init``,
        as the authors drew their Figure 4) or :math:`W_l^\top W_l`."""
        from agop.features import feature_map

        cnfms = self.delta_cnfms_ if subtract_init else self.cnfms_
        return [feature_map(A, x, int(self.patch_size))
                for A, x in zip(cnfms, self.layer_inputs(X), strict=True)]

    def agops(self, X, **kwargs) -> list[torch.Tensor]:
        """The patch-AGOP of every conv layer over images ``X`` (:func:`agop.features.patch_agop`),
        in layer order."""
        from agop.features import patch_agop

        self._check_fitted()
        names = {id(m): name for name, m in self.model_.named_modules()}
        found = patch_agop(self.model_, self._images(X),
                           layers=[names[id(c)] for c in self.model_.convs], **kwargs)
        return [found[names[id(c)]] for c in self.model_.convs]

    def transform_shapes(self) -> Sequence[tuple[int, int, int]]:
        """``(channels, H, W)`` of each conv layer's input."""
        self._check_fitted()
        c, H, W = self.image_shape_
        k = int(self.patch_size)
        return [(c if l == 0 else int(self.width), H - l * (k - 1), W - l * (k - 1))
                for l in range(int(self.depth))]


# --------------------------------------------------------------------------------------------
# The comparison of Figure 5: CNTK, ConvRFM, Deep ConvRFM and the CNN on one task
# --------------------------------------------------------------------------------------------

METHODS = ("CNTK", "ConvRFM", "Deep ConvRFM", "CNN")

#: test images are drawn with the training seed plus this offset (a disjoint stream)
TEST_SEED_OFFSET = 10_000


def local_signal_task(name: str, **options) -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    """``make(n, noise, seed, split) -> (X, y)`` for one of the local-signal tasks of
    :mod:`agop.data`: ``'star'`` (``noise`` is the noise std, 0.3 in the authors' run),
    ``'bars'`` (``noise`` is ``sigma``) or ``'digits'`` (``noise`` is ``sigma``; ``split``
    picks disjoint digit pools). ``options`` go to the generator (e.g. ``source='mnist'``).

    Examples:
        >>> make = local_signal_task("bars", height=8, width=8)
        >>> X, y = make(4, 2.0, 0, "train")
        >>> tuple(X.shape), sorted(y.tolist())
        ((4, 1, 8, 8), [0, 0, 1, 1])
    """
    from agop import data

    name = check_choice(name, "name", ("star", "bars", "digits"))
    if name == "star":
        return lambda n, noise, seed, split="train": data.star_in_noise(
            n, noise=noise, seed=seed, device="cpu", **options)
    if name == "bars":
        return lambda n, noise, seed, split="train": data.bars_in_noise(
            n, noise, seed=seed, device="cpu", **options)
    if name == "digits":
        return lambda n, noise, seed, split="train": data.digits_in_noise(
            n, noise, split=split, seed=seed, device="cpu", **options)
    raise ValueError(f"name must be 'star', 'bars' or 'digits', got {name!r}")


@dataclasses.dataclass
class Comparison:
    """What :func:`compare_methods` returns.

    ``rows``: one dict per (noise, seed, method) with ``accuracy`` (test), ``layers`` (number
    of feature-learning layers: 0 for the CNTK, 1 for ConvRFM, ``n_layers`` for Deep ConvRFM,
    ``None`` for the CNN) and ``seconds``; ``layer_rows``: test accuracy after each number of
    feature-learning layers (Figure 6B), with that machine's validation accuracy (``val``) and
    ``chosen``, true for the number of layers the validation split picks (the first best); ``models``: the fitted estimators of the first seed,
    by ``(noise, method)``; ``test``: that seed's test images by noise.

    See :func:`compare_methods` for an example.
    """

    rows: list[dict]
    layer_rows: list[dict]
    models: dict
    test: dict

    def summary(self, method: str, noise: float) -> tuple[float, float]:
        """(mean, standard deviation) of the test accuracy over seeds."""
        acc = [r["accuracy"] for r in self.rows if r["method"] == method and r["noise"] == noise]
        if not acc:
            raise KeyError(f"no result for method={method!r}, noise={noise!r}")
        return float(np.mean(acc)), float(np.std(acc))

    def panels(self, n_images: int = 4, methods: Sequence[str] = ("ConvRFM", "CNN")
               ) -> list[dict]:
        r"""One dict per noise level for :func:`agop.viz.plot_noise_panel`: the first seed's
        first ``n_images`` test images, the first-layer feature map :math:`\|A^{1/2} x[j]\|` of each
        method in ``methods`` (``A`` = ConvRFM's ``M`` or the CNN's first CNFM; padding
        "same"), and the accuracy (mean, std over seeds) of every method."""
        from agop.features import feature_map

        out = []
        for noise, (Xt, _) in self.test.items():
            images = Xt[:n_images]
            maps = {}
            for method in methods:
                model = self.models.get((noise, method))
                if model is None:
                    continue
                if method == "CNN":
                    A, k = model.cnfms_[0], int(model.patch_size)
                else:
                    layer = model.layers_[0] if hasattr(model, "layers_") else model
                    A, k = layer.M_, int(layer.patch_size)
                maps[f"{method} map"] = feature_map(A.double().cpu(), images.double().cpu(), k)
            accuracy = {m: self.summary(m, noise) for m in dict.fromkeys(
                r["method"] for r in self.rows)}
            out.append({"noise": noise, "images": images, "maps": maps, "accuracy": accuracy})
        return out


def evaluate_methods(X, y, X_test, y_test, *, seed: int, depth: int, patch_size: int,
                     width: int = 64, n_iter: int = 1, n_layers: int | None = None,
                     nonlinearity="relu", cnn_epochs: int = 25, cnn_lr: float = 1e-3,
                     cnn_batch_size: int = 64, methods: Sequence[str] = METHODS,
                     agop_samples: int | None = None, ridges: Sequence[float] | None = None,
                     device: str | torch.device | None = None) -> dict:
    """Fit every method in ``methods`` on ``(X, y)`` and score it on ``(X_test, y_test)``.

    The CNTK is the fixed kernel ``M = I``: iterate 0 of ConvRFM (same ridge grid, same
    validation split; a separate ``n_iter = 0`` fit only when no ConvRFM is asked for); ConvRFM and Deep ConvRFM come from one
    :class:`~agop.deep_rfm.DeepConvRFM` fit (its first layer *is* ConvRFM with a CNTK of depth
    ``depth``; with ``depth = 1`` the two coincide); the CNN is :class:`CNNBaseline` with the
    same depth, width and patch size. Each selects its ridge / iterate / epoch on the same
    validation split of ``(X, y)`` (``random_state = seed``), never on the test set.

    Returns ``{"accuracy": {method: acc}, "layers": {number of feature-learning layers
    (0 = CNTK, 1 = ConvRFM, ..., L): acc}, "val_layers": {the same: validation accuracy}
    (only with ConvRFM or Deep ConvRFM), "n_layers": L, "seconds": {method: s}, "models": {method: fitted estimator}}`` (the CNTK's ``seconds``
    only cover its scoring when it comes from the ConvRFM fit; ``models["CNTK"]`` is then
    ``None``).

    Examples:
        >>> import torch
        >>> from agop.data import bars_in_noise
        >>> X, y = bars_in_noise(40, sigma=2.0, height=8, width=8, seed=0)
        >>> X_test, y_test = bars_in_noise(40, sigma=2.0, height=8, width=8, seed=1)
        >>> out = evaluate_methods(X, y, X_test, y_test, seed=0, depth=1, patch_size=3,
        ...                        width=4, methods=("CNTK", "ConvRFM"), device="cpu")
        >>> sorted(out["accuracy"]), out["n_layers"]
        (['CNTK', 'ConvRFM'], 1)
        >>> out["layers"][0] == out["accuracy"]["CNTK"]  # 0 feature-learning layers: the CNTK
        True
    """
    from agop.deep_rfm import DeepConvRFM
    from agop.rfm import ConvRFM

    unknown = set(methods) - set(METHODS)
    if unknown:
        raise ValueError(f"methods must be among {METHODS}, got {sorted(unknown)}")
    out: dict = {"accuracy": {}, "layers": {}, "seconds": {}, "models": {}}
    common = dict(patch_size=patch_size, random_state=seed, device=device, progress=False,
                  agop_samples=agop_samples)
    if ridges is not None:
        common["ridges"] = ridges

    def record(method, accuracy, seconds, model):
        out["accuracy"][method] = float(accuracy)
        out["seconds"][method] = seconds
        out["models"][method] = model

    if "CNTK" in methods and not {"ConvRFM", "Deep ConvRFM"} & set(methods):
        start = time.perf_counter()
        m = ConvRFM(kernel="cntk", depth=depth, n_iter=0, **common).fit(X, y)
        record("CNTK", m.score(X_test, y_test), time.perf_counter() - start, m)
        out["layers"][0] = out["accuracy"]["CNTK"]
    if "ConvRFM" in methods or "Deep ConvRFM" in methods:
        start = time.perf_counter()
        L = (depth if n_layers is None else n_layers) if "Deep ConvRFM" in methods else 1
        deep = DeepConvRFM(depth=depth, n_layers=L, width=width, n_iter=n_iter,
                           nonlinearity=nonlinearity, **common).fit(X, y)
        scores = deep.score_layers(X_test, y_test)
        seconds = time.perf_counter() - start
        out["n_layers"] = L
        out["layers"].update({l + 1: acc for l, acc in enumerate(scores)})
        # validation accuracy of each machine: the CNTK (iterate 0), then each layer's best
        out["val_layers"] = {0: deep.history_[0]["val_acc_cntk"],
                             **{l + 1: h["val_acc"] for l, h in enumerate(deep.history_)}}
        if "CNTK" in methods:  # iterate 0 of the first layer is the CNTK, on the same split
            start = time.perf_counter()
            fixed = deep.layers_[0].score_iterations(X_test, y_test)[0]
            record("CNTK", fixed, time.perf_counter() - start, None)
            out["layers"][0] = fixed
        if "ConvRFM" in methods:
            record("ConvRFM", scores[0], seconds, deep.layers_[0])
        if "Deep ConvRFM" in methods:
            record("Deep ConvRFM", scores[-1], seconds, deep)
    if "CNN" in methods:
        start = time.perf_counter()
        cnn = CNNBaseline(depth=depth, width=width, patch_size=patch_size, epochs=cnn_epochs,
                          lr=cnn_lr, batch_size=cnn_batch_size, random_state=seed,
                          device=device, progress=False).fit(X, y)
        record("CNN", cnn.score(X_test, y_test), time.perf_counter() - start, cnn)
    return out


def compare_methods(task: Callable[..., tuple[torch.Tensor, torch.Tensor]],
                    noise_levels: Sequence[float], seeds: Sequence[int], *, n_train: int,
                    n_test: int, progress: bool = True, **settings) -> Comparison:
    """:func:`evaluate_methods` on ``task`` at every noise level, for every seed (Figure 5).

    Every method sees the same ``n_train`` training images (seed ``s``) and is scored on the
    same ``n_test`` test images (seed ``s + TEST_SEED_OFFSET``, ``split='test'``).
    ``settings``: the keyword arguments of :func:`evaluate_methods` (``depth``, ``patch_size``,
    ``width``, ``n_iter``, ``methods``, ...).

    Examples:
        >>> task = local_signal_task("bars", height=8, width=8)
        >>> result = compare_methods(task, noise_levels=[1.0, 4.0], seeds=[0], n_train=30,
        ...                          n_test=30, progress=False, depth=1, patch_size=3,
        ...                          width=4, methods=("CNTK", "ConvRFM"), device="cpu")
        >>> sorted({(row["noise"], row["method"]) for row in result.rows})
        [(1.0, 'CNTK'), (1.0, 'ConvRFM'), (4.0, 'CNTK'), (4.0, 'ConvRFM')]
    """
    from tqdm.auto import tqdm

    if not seeds or not noise_levels:
        raise ValueError("noise_levels and seeds must be non-empty")
    rows: list[dict] = []
    layer_rows: list[dict] = []
    models: dict = {}
    test: dict = {}
    jobs = [(noise, seed) for noise in noise_levels for seed in seeds]
    for noise, seed in tqdm(jobs, desc="noise x seed", disable=not progress):
        X, y = task(n_train, noise, seed, "train")
        Xt, yt = task(n_test, noise, seed + TEST_SEED_OFFSET, "test")
        result = evaluate_methods(X, y, Xt, yt, seed=seed, **settings)
        for method, acc in result["accuracy"].items():
            layers = {"CNTK": 0, "ConvRFM": 1, "CNN": None}.get(method, result.get("n_layers"))
            rows.append({"noise": noise, "seed": seed, "method": method, "accuracy": acc,
                         "layers": layers, "seconds": result["seconds"][method]})
        val = result.get("val_layers", {})
        chosen = max(sorted(val), key=val.__getitem__) if val else None  # first best
        layer_rows += [{"noise": noise, "seed": seed, "layers": l, "accuracy": acc,
                        "val": val.get(l), "chosen": l == chosen}
                       for l, acc in sorted(result["layers"].items())]
        if seed == seeds[0]:
            test[noise] = (Xt, yt)
            models.update({(noise, m): model for m, model in result["models"].items()})
    return Comparison(rows, layer_rows, models, test)
