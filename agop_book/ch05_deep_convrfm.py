r"""The comparison of the paper's Figures 5 and 6: CNTK, ConvRFM, Deep ConvRFM and the CNN on
one local-signal task.

:func:`compare_methods` draws ``n_train`` training images with seed ``s`` and ``n_test`` test
images with seed ``s + TEST_SEED_OFFSET`` from a task of :mod:`agop.data`
(:func:`local_signal_task`), fits every method on the same images (:func:`evaluate_methods`:
each selects its ridge, iterate or epoch on the same validation split, never on the test set)
and collects the test accuracies in a :class:`Comparison`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from agop import data
from agop._typing import ArrayLike
from agop.baseline import CNNBaseline
from agop.deep_rfm import DeepConvRFM
from agop.features import feature_map
from agop.rfm import ConvRFM
from agop.validation import check_choice

METHODS = ("CNTK", "ConvRFM", "Deep ConvRFM", "CNN")

#: test images are drawn with the training seed plus this offset (a disjoint stream)
TEST_SEED_OFFSET = 10_000


def local_signal_task(
    name: str, **options: Any
) -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
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
    name = check_choice(name, "name", ("star", "bars", "digits"))
    if name == "star":
        return lambda n, noise, seed, split="train": data.star_in_noise(
            n, noise=noise, seed=seed, device="cpu", **options
        )
    if name == "bars":
        return lambda n, noise, seed, split="train": data.bars_in_noise(
            n, noise, seed=seed, device="cpu", **options
        )
    if name == "digits":
        return lambda n, noise, seed, split="train": data.digits_in_noise(
            n, noise, split=split, seed=seed, device="cpu", **options
        )
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
        """(mean, sample standard deviation) of the test accuracy over seeds: the standard
        deviation with ``ddof=1`` (0.0 for a single seed, which has no spread to estimate)."""
        acc = [r["accuracy"] for r in self.rows if r["method"] == method and r["noise"] == noise]
        if not acc:
            raise KeyError(f"no result for method={method!r}, noise={noise!r}")
        return float(np.mean(acc)), float(np.std(acc, ddof=1)) if len(acc) > 1 else 0.0

    def paired(self, better: str, worse: str, noise: float) -> np.ndarray:
        """Per-seed differences of test accuracy, ``better`` minus ``worse``, at one noise
        level: both methods were fitted on the same images of each seed, so the difference is
        paired (its spread over seeds excludes what the two share, such as the images drawn).
        One entry per seed, in the order of the seeds; a ``KeyError`` when either method has
        no result at ``noise``.

        Examples:
            >>> rows = [{"noise": 1.0, "seed": s, "method": m, "accuracy": a}
            ...         for s, (a0, a1) in enumerate([(0.5, 0.75), (0.625, 0.75)])
            ...         for m, a in (("CNTK", a0), ("ConvRFM", a1))]
            >>> Comparison(rows, [], {}, {}).paired("ConvRFM", "CNTK", 1.0).tolist()
            [0.25, 0.125]
        """
        by_seed = {}
        for method in (better, worse):
            acc = {
                r["seed"]: r["accuracy"]
                for r in self.rows
                if r["method"] == method and r["noise"] == noise
            }
            if not acc:
                raise KeyError(f"no result for method={method!r}, noise={noise!r}")
            by_seed[method] = acc
        seeds = [s for s in by_seed[better] if s in by_seed[worse]]
        return np.array([by_seed[better][s] - by_seed[worse][s] for s in seeds])

    def panels(self, n_images: int = 4, methods: Sequence[str] = ("ConvRFM", "CNN")) -> list[dict]:
        r"""One dict per noise level for :func:`agop.viz.plot_noise_panel`: the first seed's
        first ``n_images`` test images, the first-layer feature map :math:`\|A^{1/2} x[j]\|` of each
        method in ``methods`` (``A`` = ConvRFM's ``M`` or the CNN's first CNFM; padding
        "same"), and the accuracy (mean, std over seeds) of every method."""
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
            accuracy = {
                m: self.summary(m, noise) for m in dict.fromkeys(r["method"] for r in self.rows)
            }
            out.append({"noise": noise, "images": images, "maps": maps, "accuracy": accuracy})
        return out


def evaluate_methods(
    X: ArrayLike,
    y: ArrayLike,
    X_test: ArrayLike,
    y_test: ArrayLike,
    *,
    seed: int,
    depth: int,
    patch_size: int,
    width: int = 64,
    n_iter: int = 1,
    n_layers: int | None = None,
    nonlinearity: str | Callable | None = "relu",
    cnn_epochs: int = 25,
    cnn_lr: float = 1e-3,
    cnn_batch_size: int = 64,
    methods: Sequence[str] = METHODS,
    agop_samples: int | None = None,
    ridges: Sequence[float] | None = None,
    device: str | torch.device | None = None,
) -> dict:
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
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise ValueError(f"methods must be among {METHODS}, got {sorted(unknown)}")
    out: dict = {"accuracy": {}, "layers": {}, "seconds": {}, "models": {}}
    common: dict[str, Any] = dict(
        patch_size=patch_size,
        random_state=seed,
        device=device,
        progress=False,
        agop_samples=agop_samples,
    )
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
        deep = DeepConvRFM(
            depth=depth, n_layers=L, width=width, n_iter=n_iter, nonlinearity=nonlinearity, **common
        ).fit(X, y)
        scores = deep.score_layers(X_test, y_test)
        seconds = time.perf_counter() - start
        out["n_layers"] = L
        out["layers"].update({l + 1: acc for l, acc in enumerate(scores)})
        # validation accuracy of each machine: the CNTK (iterate 0), then each layer's best
        out["val_layers"] = {
            0: deep.history_[0]["val_acc_cntk"],
            **{l + 1: h["val_acc"] for l, h in enumerate(deep.history_)},
        }
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
        cnn = CNNBaseline(
            depth=depth,
            width=width,
            patch_size=patch_size,
            epochs=cnn_epochs,
            lr=cnn_lr,
            batch_size=cnn_batch_size,
            random_state=seed,
            device=device,
            progress=False,
        ).fit(X, y)
        record("CNN", cnn.score(X_test, y_test), time.perf_counter() - start, cnn)
    return out


def compare_methods(
    task: Callable[..., tuple[torch.Tensor, torch.Tensor]],
    noise_levels: Sequence[float],
    seeds: Sequence[int],
    *,
    n_train: int,
    n_test: int,
    progress: bool = True,
    **settings: Any,
) -> Comparison:
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
            rows.append(
                {
                    "noise": noise,
                    "seed": seed,
                    "method": method,
                    "accuracy": acc,
                    "layers": layers,
                    "seconds": result["seconds"][method],
                }
            )
        val = result.get("val_layers", {})
        chosen = max(sorted(val), key=val.__getitem__) if val else None  # first best
        layer_rows += [
            {
                "noise": noise,
                "seed": seed,
                "layers": l,
                "accuracy": acc,
                "val": val.get(l),
                "chosen": l == chosen,
            }
            for l, acc in sorted(result["layers"].items())
        ]
        if seed == seeds[0]:
            test[noise] = (Xt, yt)
            models.update({(noise, m): model for m, model in result["models"].items()})
    return Comparison(rows, layer_rows, models, test)
