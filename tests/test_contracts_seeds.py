"""Seed contract, written once for every seeded function of the package.

Every public function or class of ``agop`` and ``agop_book`` whose signature has a ``seed``, ``seeds``,
``random_state`` or ``generator`` parameter is found by inspection; each must have an entry in
``REGISTRY`` (a call on tiny valid arguments, as a function of the seed), or an entry in
``NOT_RUN`` that says why it cannot be run here. For every entry:

* the same seed gives bit-identical results (tensors, arrays, fitted attributes, predictions),
  whatever the global torch / numpy / ``random`` states were before the call (they must not be
  what drives the result);
* a different seed gives a different result (randomness is used: subsamples, splits, probes,
  initialisations, generated data), unless the entry says the seed has nothing to draw.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import random
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from fake_files import write_mnist_like

import agop
import agop_book

SEED_PARAMETERS = ("seed", "seeds", "random_state", "generator")


def _seeded_public_callables() -> dict[str, Any]:
    """``module.name`` of every public function/class of agop and agop_book with a seed-like
    parameter."""
    found = {}
    infos = [
        *pkgutil.walk_packages(agop.__path__, "agop."),
        *pkgutil.walk_packages(agop_book.__path__, "agop_book."),
    ]
    for info in infos:
        if any(part.startswith("_") for part in info.name.split(".")[1:]):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != info.name:
                continue
            if "__mutmut_" in name or "_mutmut_" in name:  # mutmut's copies (make mutation)
                continue
            if not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            try:
                parameters = inspect.signature(obj).parameters
            except (TypeError, ValueError):
                continue
            if any(p in parameters for p in SEED_PARAMETERS):
                found[f"{info.name}.{name}"] = obj
    return found


# --------------------------------------------------------------------------------------------
# tiny inputs
# --------------------------------------------------------------------------------------------

F64 = torch.float64


def _images(n=12, c=1, side=6, seed=100):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, c, side, side, generator=g, dtype=F64)
    y = torch.arange(n) % 2
    X[y == 1, :, 2, :] += 2.0  # a planted signal, so that fits are not degenerate
    return X, y


def _cnn(seed=0):
    from agop_book.nets import SimpleCNN

    return SimpleCNN(1, 2, 6, depth=2, width=3, seed=seed).double().eval()


_TMP: list[tempfile.TemporaryDirectory] = []


def _mnist_root() -> Path:
    """A folder with tiny MNIST files in the real format (written once per session)."""
    if not _TMP:
        _TMP.append(tempfile.TemporaryDirectory())
        write_mnist_like(Path(_TMP[0].name), "MNIST", n_train=12, n_test=8)
    return Path(_TMP[0].name)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _estimator(cls, X, y, **params):
    def run(seed):
        model = cls(**params, random_state=seed).fit(X, y)
        fitted = {k: v for k, v in vars(model).items() if k.endswith("_") and not k.startswith("_")}
        return {"decision": model.decision_function(X), "fitted": fitted}

    return run


def _registry() -> dict[str, Callable[[int], Any]]:
    from agop import deep_rfm, estimator, features, rfm, runtime
    from agop.data import splits
    from agop.kernels import CNTK
    from agop_book import ch01_ansatz as ansatz
    from agop_book import ch02_theorem as theory
    from agop_book import ch03_pretrained as ch03
    from agop_book import ch04_edges as edges
    from agop_book import ch05_deep_convrfm as local_signals
    from agop_book import ch05_deep_convrfm as tasks
    from agop_book import ch07_other_accounts as emergence
    from agop_book import ch07_other_accounts as emergence_experiment
    from agop_book import ch07_other_accounts as renormalization
    from agop_book import nets, pretrained
    from agop_book import nets as baseline
    from agop_book.bench import cnn_agop, large
    from agop_book.data import datasets, offline

    X, y = _images()
    Xc, _ = _images(n=4, c=3, side=6)
    net = _cnn()
    M9 = torch.eye(9, dtype=F64) + 0.1
    bars = local_signals.local_signal_task("bars", height=6, width=6)

    def null(seed):
        return features.null_baselines(net.convs[0], n_draws=3, seed=seed)

    def langevin(seed):
        theta = [torch.zeros(4, dtype=F64)]
        return renormalization.langevin(
            lambda t: (t**2).sum() / 2, theta, n_steps=3, step_size=0.1, generator=_gen(seed)
        )

    def iterations(seed):
        from agop.data import one_hot

        Y = one_hot(y, dtype=F64)
        return rfm.rfm_iterations(
            CNTK(3, 1, progress=False),
            X[:8],
            Y[:8],
            X[8:],
            Y[8:],
            n_iter=1,
            q=9,
            agop_samples=4,
            generator=_gen(seed),
        )

    def evaluate(seed):
        out = local_signals.evaluate_methods(
            X[:10], y[:10], X[10:], y[10:], seed=seed, depth=1, patch_size=3, width=3,
            n_iter=1, methods=("ConvRFM",), agop_samples=4, device="cpu",
        )  # fmt: skip
        return {"layers": out["layers"], "M": out["models"]["ConvRFM"].M_}

    def compare(seed):
        out = local_signals.compare_methods(
            bars, [1.0], [seed], n_train=10, n_test=6, progress=False, depth=1, patch_size=3,
            width=3, n_iter=1, methods=("ConvRFM",), agop_samples=4, device="cpu",
        )  # fmt: skip
        return {"rows": out.rows, "layer_rows": out.layer_rows, "test": out.test}

    def width_sweep(seed):
        return renormalization.width_sweep(
            [2], [seed], n_train=8, n_test=6, sigma=1.0, temperature=0.1, n_steps=4,
            step_size=1e-3, every=1, task={"height": 5, "width": 5, "band": (0,)}, rfm=False,
            locally_connected=True,
        )  # fmt: skip

    def posterior(seed):
        Xb, yb = renormalization.band_task(6, 0.5, height=5, width=5, seed=0)
        return renormalization.sample_posterior(
            Xb[None], yb[None], Xb[None], width=2, patch_size=3, temperature=0.1, n_steps=4,
            step_size=1e-3, burn_in=2, every=1, seed=seed,
        )  # fmt: skip

    def sweep(seed):
        return emergence_experiment.emergence_sweep(
            [2.0], [seed], D=6, n_train=30, n_test=10, width=2, steps=3, batch_size=10,
            n_top=1, rfm_train=12, rfm_iter=1,
        )  # fmt: skip

    def train_two_layer(seed):
        Xe, ye = emergence.emergence_task(20, 5, gain=2.0, seed=0)
        nets_ = emergence_experiment.train_two_layer(
            Xe[None], ye[None], width=2, steps=3, batch_size=5, seed=seed
        )
        return vars(nets_)

    def views(seed):
        v = ch03.LayerViews({"cnn": net}, {"x": X[0]}, sketch=2, seed=seed)
        return v.view("cnn", "convs.1", "x")

    def trained(seed):
        model = _cnn()
        result = nets.train(
            model, X[:8], y[:8], X[8:], y[8:], epochs=2, batch_size=3, seed=seed, progress=False
        )
        return {"model": result.model, "history": result.history, "best": result.best_epoch}

    return {
        "agop_book.nets.validation_split": lambda s: baseline.validation_split(
            y.numpy(), 0.3, random_state=s
        ),
        "agop_book.nets.CNNBaseline": _estimator(
            baseline.CNNBaseline,
            X,
            y,
            depth=1,
            width=2,
            epochs=2,
            batch_size=4,
            progress=False,
            dtype=F64,
        ),  # fmt: skip
        "agop_book.bench.cnn_agop.four_layer_cnn": lambda s: cnn_agop.four_layer_cnn(s),
        "agop_book.bench.large.digits_28": lambda s: large.digits_28(5, "train", s, "cpu", side=8),
        "agop_book.data.datasets.load_dataset": lambda s: vars(
            datasets.load_dataset("MNIST", 6, 4, root=_mnist_root(), seed=s, device="cpu")
        ),
        "agop_book.ch07_other_accounts.nonlinear_gaussian_process": lambda s: (
            emergence.nonlinear_gaussian_process(4, 6, xi=1.0, gain=2.0, seed=s)
        ),
        "agop_book.ch07_other_accounts.emergence_task": lambda s: emergence.emergence_task(
            6, 5, gain=2.0, seed=s
        ),
        "agop_book.data.offline.digits": lambda s: offline.digits(6, size=8, seed=s),
        "agop_book.data.offline.mnist_subset": lambda s: offline.mnist_subset(6, size=8, seed=s),
        "agop.data.splits.train_val_split": lambda s: splits.train_val_split(X, y, 0.3, s),
        "agop_book.ch05_deep_convrfm.bars_in_noise": lambda s: tasks.bars_in_noise(
            5, 1.0, height=4, width=4, seed=s
        ),
        "agop_book.ch05_deep_convrfm.digits_in_noise": lambda s: tasks.digits_in_noise(
            5, 0.5, frame=10, seed=s
        ),
        "agop_book.ch05_deep_convrfm.star_in_noise": lambda s: tasks.star_in_noise(
            3, image_size=8, seed=s
        ),
        "agop.deep_rfm.random_filters": lambda s: deep_rfm.random_filters(M9, 3, 1, 3, seed=s),
        "agop.deep_rfm.featurize": lambda s: deep_rfm.featurize(X[:3], M9, 3, 3, "relu", seed=s),
        "agop.deep_rfm.DeepConvRFM": _estimator(
            deep_rfm.DeepConvRFM,
            X,
            y,
            depth=1,
            n_layers=1,
            width=3,
            patch_size=3,
            n_iter=1,
            agop_samples=4,
            progress=False,
            dtype=F64,
        ),  # fmt: skip
        "agop_book.ch04_edges.random_filter_scores": lambda s: edges.random_filter_scores(
            1, 3, n_filters=3, seed=s
        ),
        "agop_book.ch04_edges.edge_controls": lambda s: edges.edge_controls(
            M9, X[:2], 3, n_draws=2, seed=s
        ),
        "agop_book.ch04_edges.fit_shuffled": lambda s: edges.fit_shuffled(
            agop.ConvRFM("laplace", 3, n_iter=1, random_state=0, device="cpu", progress=False),
            X,
            y,
            seed=s,
        ).Ms_[-1],
        "agop.estimator.random_seeds": lambda s: estimator.random_seeds(s, 3),
        "agop_book.ch01_ansatz.verify_ansatz": lambda s: ansatz.verify_ansatz(
            net, X[:4], sketch=2, null_draws=2, seed=s, progress=False
        ),
        "agop_book.ch01_ansatz.ansatz_table": lambda s: ansatz.ansatz_table(
            net, features.patch_agop(net, X[:4]), n_draws=2, seed=s
        ),
        "agop_book.ch03_pretrained.sketch_accuracy": lambda s: ch03.sketch_accuracy(
            net, X[:4], [2], seed=s
        ),
        "agop_book.ch03_pretrained.layer_view": lambda s: ch03.layer_view(
            net, "convs.1", X[0], sketch=2, seed=s
        ),
        "agop_book.ch03_pretrained.LayerViews": views,
        "agop_book.ch07_other_accounts.train_two_layer": train_two_layer,
        "agop_book.ch07_other_accounts.emergence_sweep": sweep,
        "agop_book.ch07_other_accounts.fc_ansatz": lambda s: emergence.fc_ansatz(
            torch.eye(2, 4, dtype=F64),
            torch.diag(torch.tensor([2.0, 1.0], dtype=F64)),
            n_draws=3,
            seed=s,
        ),
        "agop_book.ch07_other_accounts.emergence_view": lambda s: (
            emergence_experiment.emergence_view(
                2.0, 2, seed=s, D=6, n_train=20, steps=3, batch_size=5, n_top=1
            )
        ),
        "agop_book.ch07_other_accounts.emergence_views": lambda s: (
            emergence_experiment.emergence_views(
                [2.0], 2, seed=s, D=6, n_train=20, steps=3, batch_size=5, n_top=1
            )
        ),
        "agop_book.ch05_deep_convrfm.evaluate_methods": evaluate,
        "agop_book.ch05_deep_convrfm.compare_methods": compare,
        "agop_book.ch07_other_accounts.band_task": lambda s: renormalization.band_task(
            4, 0.5, height=4, width=4, seed=s
        ),
        "agop_book.ch07_other_accounts.langevin": langevin,
        "agop_book.ch07_other_accounts.sample_posterior": posterior,
        "agop_book.ch07_other_accounts.width_sweep": width_sweep,
        "agop_book.ch07_other_accounts.LocallyConnected": lambda s: (
            renormalization.LocallyConnected(1, 4, 4, patch_size=3, width=2, seed=s)
        ),
        "agop.features.patch_agop": lambda s: features.patch_agop(net, X[:4], sketch=2, seed=s),
        "agop.features.null_baselines": null,
        "agop_book.nets.SimpleCNN": lambda s: nets.SimpleCNN(1, 2, 6, depth=1, width=2, seed=s),
        "agop_book.nets.train": trained,
        "agop_book.pretrained.load_model": lambda s: pretrained.load_model(
            "squeezenet1_1", pretrained=False, seed=s, device="cpu"
        ).features[0],
        "agop.rfm.rfm_iterations": iterations,
        "agop.rfm.ConvRFM": _estimator(
            rfm.ConvRFM,
            X,
            y,
            kernel="cntk",
            patch_size=3,
            n_iter=1,
            agop_samples=4,
            progress=False,
            dtype=F64,
        ),  # fmt: skip
        "agop.rfm.RFM": _estimator(
            rfm.RFM, X.flatten(1), y, n_iter=1, agop_samples=4, progress=False, dtype=F64
        ),
        "agop.runtime.seed_everything": lambda s: torch.rand(
            3, generator=runtime.seed_everything(s)
        ),
        "agop_book.ch02_theorem.TheoremNet": lambda s: theory.TheoremNet(
            1, 5, width=2, init_scale=0.1, upper_noise=0.1, hidden=(2,), seed=s, dtype=F64
        ),
        "agop_book.ch02_theorem.train_gd": lambda s: theory.train_gd(
            theory.TheoremNet(1, 6, width=2, dtype=F64),
            X[:6],
            2.0 * y[:6] - 1,
            eta=0.1,
            steps=3,
            batch_size=2,
            seed=s,
        ),  # fmt: skip
        "agop_book.ch02_theorem.check_theorem": lambda s: theory.check_theorem(
            X[:6],
            2.0 * y[:6] - 1,
            steps=2,
            batch_size=3,
            width=2,
            seed=s,
            dtype=F64,
            init_scale=0.01,
        ),  # fmt: skip
    }


#: seeded callables that are not run here, and why (the completeness check counts them)
NOT_RUN = {
    "agop_book.bench.large.run_point": "a timed benchmark point (minutes); its data is "
    "digits_28 and its fit rfm_iterations, both in the registry",
    "agop_book.bench.large.point_in_subprocess": "run_point in a subprocess",
    "agop_book.bench.scaling.scaling_curve": "a timed benchmark in subprocesses",
    "agop_book.notebook.environment_report": "its **seeds only print the seeds the caller used",
    "agop_book.ch01_ansatz.seed_gaps": "draws nothing: it calls run(seed) for each seed and "
    "pairs the tables by seed (tests/test_ch01_ansatz.py checks it on planted tables)",
    "agop_book.ch01_ansatz.SeedGaps": "a record of seed_gaps' result; its seeds field "
    "labels the rows",
}

#: entries whose seed has nothing random to draw in the tiny call (the different-seed check
#: does not apply to them)
SEED_DOES_NOT_VARY: dict[str, str] = {}

REGISTRY = _registry()


# --------------------------------------------------------------------------------------------
# comparing results
# --------------------------------------------------------------------------------------------

_VOLATILE_KEYS = ("second", "time", "elapsed")


def _leaves(obj, path="") -> list[tuple[str, Any]]:
    """``(path, value)`` of every tensor, array and scalar inside ``obj``."""
    if isinstance(obj, torch.nn.Module):
        return _leaves(dict(obj.state_dict()), path)
    if isinstance(obj, torch.Tensor):
        return [(path, obj.detach().cpu())]
    if isinstance(obj, np.ndarray):
        return [(path, torch.from_numpy(np.ascontiguousarray(obj)))]
    if isinstance(obj, (bool, int, float, str, type(None), np.generic, torch.dtype)):
        return [(path, obj)]
    if isinstance(obj, torch.device):
        return [(path, str(obj))]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        out = []
        for key, value in obj.items():
            if isinstance(key, str) and any(v in key for v in _VOLATILE_KEYS):
                continue
            out += _leaves(value, f"{path}[{key!r}]")
        return out
    if isinstance(obj, (list, tuple)):
        return [leaf for i, value in enumerate(obj) for leaf in _leaves(value, f"{path}[{i}]")]
    if hasattr(obj, "get_params") or inspect.isroutine(obj):  # kept by identity
        return [(path, type(obj).__name__)]
    if hasattr(obj, "__dict__"):  # a result object: its attributes
        return _leaves({"<type>": type(obj).__name__, **vars(obj)}, path)
    raise TypeError(f"the seed contract cannot compare {type(obj).__name__} at {path}")


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.dtype == b.dtype and a.shape == b.shape and bool(torch.equal(a, b))
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return True
    return type(a) is type(b) and a == b


def _differences(a, b) -> list[str]:
    la, lb = _leaves(a), _leaves(b)
    if [p for p, _ in la] != [p for p, _ in lb]:
        return ["<structure>"]
    return [p for (p, x), (_, y) in zip(la, lb, strict=True) if not _same(x, y)]


def _perturb_global_state(state: int) -> None:
    torch.manual_seed(state)
    np.random.seed(state)
    random.seed(state)


# --------------------------------------------------------------------------------------------
# the contract
# --------------------------------------------------------------------------------------------


def test_every_seeded_callable_is_registered():
    found = set(_seeded_public_callables())
    missing = found - set(REGISTRY) - set(NOT_RUN)
    assert not missing, f"seeded public callables without a seed-contract entry: {sorted(missing)}"
    stale = (set(REGISTRY) | set(NOT_RUN)) - found
    assert not stale, f"seed-contract entries that are not seeded public callables: {stale}"


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_seed_contract(name):
    call = REGISTRY[name]
    _perturb_global_state(1)
    first = call(0)
    _perturb_global_state(2)
    again = call(0)
    assert not _differences(first, again), (
        f"{name}: the same seed gave different results at {_differences(first, again)[:5]} "
        "(after changing the global torch/numpy/random state)"
    )
    if name in SEED_DOES_NOT_VARY:
        return
    _perturb_global_state(1)
    other = call(1)
    assert _differences(first, other), f"{name}: seeds 0 and 1 gave bit-identical results"


# --------------------------------------------------------------------------------------------
# a sweep over seeds: each seed's rows are those of a sweep over that seed alone
# --------------------------------------------------------------------------------------------


def _sweeps():
    from agop_book import ch05_deep_convrfm as local_signals
    from agop_book import ch07_other_accounts as emergence
    from agop_book import ch07_other_accounts as renormalization

    bars = local_signals.local_signal_task("bars", height=6, width=6)
    return {
        "agop_book.ch07_other_accounts.emergence_sweep": lambda seeds: (
            emergence.emergence_sweep(
                [2.0],
                seeds,
                D=6,
                n_train=30,
                n_test=10,
                width=2,
                steps=3,
                batch_size=10,
                n_top=1,
                rfm_train=12,
                rfm_iter=1,
            ).rows
        ),  # fmt: skip
        "agop_book.ch05_deep_convrfm.compare_methods": lambda seeds: (
            local_signals.compare_methods(
                bars,
                [1.0],
                seeds,
                n_train=10,
                n_test=6,
                progress=False,
                depth=1,
                patch_size=3,
                width=3,
                n_iter=1,
                methods=("ConvRFM",),
                agop_samples=4,
                device="cpu",
            ).rows
        ),  # fmt: skip
        "agop_book.ch07_other_accounts.width_sweep": lambda seeds: renormalization.width_sweep(
            [2],
            seeds,
            n_train=8,
            n_test=6,
            sigma=1.0,
            temperature=0.1,
            n_steps=4,
            step_size=1e-3,
            every=1,
            task={"height": 5, "width": 5, "band": (0,)},
            rfm=False,
        )["rows"],  # fmt: skip
    }


SWEEPS = _sweeps()


def test_every_sweep_over_seeds_is_registered():
    seeds_parameter = {k for k, f in _seeded_public_callables().items()
                       if "seeds" in inspect.signature(f).parameters}  # fmt: skip
    assert seeds_parameter - set(NOT_RUN) == set(SWEEPS)


@pytest.mark.parametrize("name", sorted(SWEEPS))
def test_a_seeds_rows_do_not_depend_on_the_other_seeds(name):
    both = SWEEPS[name]([3, 5])
    for seed in (3, 5):
        alone = SWEEPS[name]([seed])
        mine = [r for r in both if r["seed"] == seed]
        assert mine and not _differences(mine, alone), (
            f"{name}: seed {seed}'s rows change when seed {8 - seed} is swept with it: "
            f"{_differences(mine, alone)[:5]}"
        )


def test_per_chain_and_per_network_seeds_must_match_the_stack():
    from agop_book import ch07_other_accounts as emergence
    from agop_book import ch07_other_accounts as renormalization

    X, y = renormalization.band_task(4, 0.5, height=4, width=4)
    with pytest.raises(ValueError, match="seed must be an int or 2 ints"):
        renormalization.sample_posterior(
            torch.stack([X, X]), torch.stack([y, y]), torch.stack([X, X]), width=2,
            patch_size=3, temperature=0.1, n_steps=2, step_size=1e-3, burn_in=0, seed=[1],
        )  # fmt: skip
    with pytest.raises(ValueError, match="2 generators"):
        renormalization.langevin(lambda t: t.sum(), [torch.zeros(3)], n_steps=1,
                                 step_size=0.1, generator=[_gen(0), _gen(1)])  # fmt: skip
    Xe = torch.zeros(2, 5, 3)
    with pytest.raises(ValueError, match="seed must be an int or 2 ints"):
        emergence.train_two_layer(Xe, torch.zeros(2, 5), width=2, steps=1, seed=[0, 1, 2])
