"""Emergence through the AGOP: the network AGOP against autograd and against the package's
patch-AGOP, the localisation statistics on planted vectors, and the sweep's controls."""

from __future__ import annotations

import math
import re

import pytest
import torch
from torch import nn

from agop.features import patch_agop
from agop_book.ch07_other_accounts import (
    EmergenceResult,
    TwoLayerNets,
    emergence_sweep,
    emergence_task,
    emergence_view,
    ipr,
    top_eigenvectors,
    train_two_layer,
    two_layer_agop,
)


def random_nets(E, K, D, activation, seed=0):
    g = torch.Generator().manual_seed(seed)
    return TwoLayerNets(
        *(torch.randn(*s, generator=g, dtype=torch.float64) for s in ((E, K, D), (E, K), (E, K))),
        activation=activation,
    )


def brute_agop(nets, X, e):
    """(1/n) sum_i grad f_e(x_i) grad f_e(x_i)^T, one autograd call per sample."""
    out = torch.zeros(X.shape[-1], X.shape[-1], dtype=X.dtype)
    for x in X:
        x = x.clone().requires_grad_()
        (grad,) = torch.autograd.grad(nets(x[None])[e, 0], x)
        out += torch.outer(grad, grad)
    return out / X.shape[0]


@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_network_agop_is_autograd_sample_by_sample(activation):
    nets = random_nets(3, 5, 7, activation)
    X = torch.randn(3, 11, 7, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    A = two_layer_agop(nets, X)  # each network on its own inputs
    for e in range(3):
        torch.testing.assert_close(A[e], brute_agop(nets, X[e], e), rtol=1e-10, atol=1e-12)
    shared = two_layer_agop(nets, X[0])  # all networks on the same inputs
    torch.testing.assert_close(shared[2], brute_agop(nets, X[0], 2), rtol=1e-10, atol=1e-12)


def test_network_agop_is_the_patch_agop_of_a_one_by_one_convolution():
    """A fully connected layer is a 1 x 1 convolution on (n, D, 1, 1) images: one patch, the
    whole input. The package's hook-based patch-AGOP must agree."""
    nets = random_nets(1, 4, 6, "relu", seed=2)
    conv = nn.Conv2d(6, 4, 1).double()
    read = nn.Linear(4, 1, bias=False).double()
    with torch.no_grad():
        conv.weight.copy_(nets.W[0][:, :, None, None])
        conv.bias.copy_(nets.b[0])
        read.weight.copy_(nets.a[0][None])
    model = nn.Sequential(conv, nn.ReLU(), nn.Flatten(), read).eval()
    X = torch.randn(9, 6, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    torch.testing.assert_close(model(X[:, :, None, None])[:, 0], nets(X)[0])
    A = patch_agop(model, X[:, :, None, None], device="cpu")["0"]
    torch.testing.assert_close(two_layer_agop(nets, X)[0], A, rtol=1e-10, atol=1e-12)


def test_top_eigenvectors_are_the_largest_first():
    Q = torch.linalg.qr(
        torch.randn(5, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    )[0]
    A = Q @ torch.diag(torch.tensor([1.0, 5.0, 2.0, 4.0, 3.0], dtype=torch.float64)) @ Q.T
    V = top_eigenvectors(A, 3)
    for row, col in zip(V, [1, 3, 4], strict=True):
        assert abs(float(row @ Q[:, col])) == pytest.approx(1.0, abs=1e-10)
    with pytest.raises(ValueError, match="k"):
        top_eigenvectors(A, 6)


def test_top_eigenvectors_refuse_nan_and_inf():
    """A NaN in A gave finite-looking (or NaN) eigenvectors with no error."""
    A = torch.eye(3, dtype=torch.float64)
    for bad in (float("nan"), float("inf")):
        B = A.clone()
        B[0, 1] = B[1, 0] = bad
        with pytest.raises(ValueError, match="A contains 2 non-finite values"):
            top_eigenvectors(B, 1)
        with pytest.raises(ValueError, match="A contains 2 non-finite values"):
            top_eigenvectors(torch.stack([A, B]), 1)  # one of a batch
    with pytest.raises(ValueError, match=r"A must be square matrices \(\.\.\., D, D\)"):
        top_eigenvectors(torch.ones(2, 3), 1)


def test_planted_localised_fields_give_localised_agop_eigenvectors():
    """Receptive fields planted on 3 sites each, at separate places, with distinct read-out
    weights; each input is one of the fields, so exactly one unit fires on it (bias -1/2) and
    G is diagonal: the AGOP's top eigenvectors are the fields themselves (IPR 1/3). Planted
    orthogonal Fourier modes, the same way, give the delocalised 3/(2D)."""
    D, K = 30, 4
    W = torch.zeros(1, K, D, dtype=torch.float64)
    for k in range(K):
        W[0, k, 7 * k : 7 * k + 3] = 1.0
    a = torch.tensor([[4.0, 3.0, 2.0, 1.0]], dtype=torch.float64)
    bias = torch.full((1, K), -0.5, dtype=torch.float64)
    local = TwoLayerNets(W, bias, a, "relu")
    V = top_eigenvectors(two_layer_agop(local, W[0].repeat(5, 1))[0], 3)
    torch.testing.assert_close(ipr(V), torch.full((3,), 1 / 3, dtype=torch.float64))
    for row, k in zip(V, range(3), strict=True):  # largest read-out weight first
        assert abs(float(row @ W[0, k])) / W[0, k].norm() == pytest.approx(1.0)
    sites = torch.arange(D, dtype=torch.float64)
    waves = torch.stack([torch.cos(2 * math.pi * (k + 1) * sites / D) for k in range(K)])[None]
    spread = TwoLayerNets(waves, bias, a, "relu")
    Vs = top_eigenvectors(two_layer_agop(spread, waves[0].repeat(5, 1))[0], 3)
    torch.testing.assert_close(ipr(Vs), torch.full((3,), 3 / (2 * D), dtype=torch.float64))


def test_training_learns_and_networks_are_independent():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(2, 300, 6, generator=g)
    y = torch.stack([(X[0, :, 0] > 0), (X[1, :, 3] < 0)]).long()
    nets = train_two_layer(X, y, width=8, steps=400, lr=1e-2, batch_size=64)
    acc = ((nets(X) > 0).long() == y).float().mean(1)
    assert bool((acc > 0.95).all()), acc
    # each network leans on its own label's site
    A = two_layer_agop(nets, X)
    assert int(A[0].diagonal().argmax()) == 0 and int(A[1].diagonal().argmax()) == 3
    with pytest.raises(ValueError, match=r"\(E, n, D\)"):
        train_two_layer(X[0], y[0], width=2, steps=1)
    with pytest.raises(ValueError, match="activation"):
        train_two_layer(X, y, width=2, steps=1, activation="tanh")


def test_training_refuses_non_finite_inputs_and_labels_outside_zero_one():
    """NaN inputs trained to NaN weights, and labels such as 3 or -1 (read as targets 5 and -3)
    were trained on, silently. Labels 0 and 1 as floats or bools are fine."""
    X = torch.randn(1, 20, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    y = (X[..., 0] > 0).long()
    bad = X.clone()
    bad[0, 4, 1] = float("nan")
    with pytest.raises(ValueError, match="X contains 1 non-finite values"):
        train_two_layer(bad, y, width=2, steps=1)
    for labels in (y + 2, 2 * y - 1, 0.5 * y):
        with pytest.raises(ValueError, match=r"y must hold labels in \{0, 1\}"):
            train_two_layer(X, labels, width=2, steps=1)
    ref = train_two_layer(X, y, width=2, steps=3)
    for labels in (y.double(), y.bool()):
        assert torch.equal(train_two_layer(X, labels, width=2, steps=3).W, ref.W)


def test_sweep_rows_controls_and_examples():
    res = emergence_sweep(
        [0.0, 3.0],
        [0, 1],
        D=10,
        n_train=600,
        n_test=300,
        width=8,
        steps=500,
        rfm_train=100,
        rfm_iter=1,
        lr=1e-2,
        xi=(1.0, 4.0),
    )
    assert len(res.rows) == 2 * 2 * 2
    assert set(res.examples) == {(g, lab) for g in (0.0, 3.0) for lab in ("true", "shuffled")}
    # the shuffled control cannot generalise; the true labels (correlation length) can
    assert res.summary("acc_net", 3.0, "shuffled")[0] < 0.6
    assert res.summary("acc_net", 3.0, "true")[0] > 0.6
    for r in res.rows:
        assert 1 / 10 <= r["ipr_weights"] <= 1 and 1 / 10 <= r["ipr_rfm"] <= 1
    ex = res.examples[(3.0, "true")]
    assert ex["W"].shape == (8, 10) and ex["agop"].shape == ex["M"].shape == (10, 10)
    with pytest.raises(ValueError, match="seeds"):
        emergence_sweep([0.0], [], D=10)
    with pytest.raises(KeyError, match="gain=1.0"):
        res.summary("ipr_agop", 1.0)


def test_view_sorts_fields_by_norm():
    view = emergence_view(3.0, 4, D=10, n_train=100, steps=20)
    norms = view["W"].norm(dim=1)
    assert bool((norms[:-1] >= norms[1:]).all())
    torch.testing.assert_close(view["ipr_weights"], ipr(view["W"]))


def test_view_of_a_sweep_example_is_the_view_of_its_network():
    """The explorer's cached views come from the sweep's networks: the same statistics as
    the sweep's row for that network."""
    from agop_book.ch07_other_accounts import view_of

    res = emergence_sweep(
        [3.0],
        [0],
        D=10,
        n_train=200,
        n_test=50,
        width=4,
        steps=50,
        rfm_train=50,
        rfm_iter=1,
        shuffled=False,
        n_top=2,
    )
    view = view_of(
        3.0, res.examples[(3.0, "true")]["W"], res.examples[(3.0, "true")]["agop"], n_top=2
    )
    assert float(view["ipr_weights"].mean()) == pytest.approx(res.rows[0]["ipr_weights"])
    assert float(view["ipr_agop"].mean()) == pytest.approx(res.rows[0]["ipr_agop"])


def constructed(top, shuffled, base=(0.10, 0.10), rfm_iters=(0, 2, 1)):
    """Rows of a sweep over gains 0 and 3 (two seeds each) with the given IPRs per seed,
    the same for the three statistics; ``rfm_iters``: the true labels' ``rfm_best_iter``."""
    rows = []
    for gain, labels, vals in [
        (0.0, "true", base),
        (3.0, "true", top),
        (3.0, "shuffled", shuffled),
        (0.0, "shuffled", base),
    ]:
        for seed, v in enumerate(vals):
            rows.append(
                {
                    "gain": gain,
                    "labels": labels,
                    "seed": seed,
                    "ipr_weights": v,
                    "ipr_agop": v,
                    "ipr_rfm": v,
                    "rfm_best_iter": rfm_iters[seed] if labels == "true" else 0,
                }
            )
    return EmergenceResult(rows, {}, {"D": 40})


def test_localisation_needs_a_rise_beyond_the_spread_and_above_the_control():
    # rise 0.5 > spreads 0 + 0.1, above the shuffled 0.2 by 0.4 > 0.1 + 0.1
    ok, m0, m1, ms = constructed((0.5, 0.7), (0.1, 0.3)).localisation("ipr_agop")
    assert ok and (m0, m1, ms) == pytest.approx((0.1, 0.6, 0.2))
    # the shuffled control rose as much: no localisation
    assert not constructed((0.5, 0.7), (0.5, 0.7)).localisation("ipr_agop")[0]
    # a rise of 0.3 beyond the first gain's spread 0.1 but within 0.1 + 0.3: no
    assert not constructed((0.1, 0.7), (0.0, 0.0), base=(0.0, 0.2)).localisation("ipr_agop")[0]
    # a rise of exactly the spreads (0.25 = 0.25 + 0, exact in binary) is not beyond them
    assert not constructed((0.5, 0.5), (0.0, 0.0), base=(0.0, 0.5)).localisation("ipr_agop")[0]
    # the first and last gains in the sweep's order, whatever their values
    assert constructed((0.5, 0.7), (0.1, 0.3)).gains == [0.0, 3.0]


def test_localisation_compares_the_first_gain_with_the_last():
    """Three gains in the sweep's order 0, 1, 3: the middle one (IPR 0.9) is not judged."""
    rows = [
        {"gain": g, "labels": lab, "seed": s, "ipr_agop": v}
        for g, lab, v in [
            (0.0, "true", 0.1),
            (1.0, "true", 0.9),
            (3.0, "true", 0.5),
            (3.0, "shuffled", 0.1),
        ]
        for s in (0, 1)
    ]
    sweep = EmergenceResult(rows, {}, {})
    assert sweep.gains == [0.0, 1.0, 3.0]
    ok, m0, m1, ms = sweep.localisation("ipr_agop")
    assert ok and (m0, m1, ms) == pytest.approx((0.1, 0.5, 0.1))


def test_kept_identity_counts_the_true_labels_fits_at_round_zero():
    assert constructed((0.5, 0.7), (0.1, 0.3), rfm_iters=(0, 2)).kept_identity() == 0.5
    assert constructed((0.5, 0.7), (0.1, 0.3), rfm_iters=(0, 0)).kept_identity() == 1.0
    assert constructed((0.5, 0.7), (0.1, 0.3), rfm_iters=(3, 1)).kept_identity() == 0.0


def test_sweep_measures_what_training_changed_and_the_rfm_against_m_identity():
    """W0 is the initialisation: with zero steps W - W0 is zero; after training, ipr_delta is
    the IPR of W - W0 row by row, ipr_wtw that of the top eigenvectors of W^T W, and
    acc_rfm_identity the test accuracy of the RFM's round 0 (M = I)."""
    X, y = emergence_task(300, 10, gain=3.0, seed=0)
    nets = train_two_layer(X[None], y[None], width=4, steps=0, seed=0)
    assert torch.equal(nets.W, nets.W0)
    nets = train_two_layer(X[None], y[None], width=4, steps=30, lr=1e-2, seed=0)
    g = torch.Generator().manual_seed(0)
    W0 = 0.3 / math.sqrt(10) * torch.randn(1, 4, 10, generator=g)  # the documented start
    torch.testing.assert_close(nets.W0, W0)
    res = emergence_sweep([3.0], [0], D=10, n_train=200, n_test=100, width=4, steps=30,
                          lr=1e-2, rfm_train=80, rfm_iter=1, shuffled=False)  # fmt: skip
    row, ex = res.rows[0], res.examples[(3.0, "true")]
    W = ex["W"]
    g = torch.Generator().manual_seed(0)
    W0 = 0.3 / math.sqrt(10) * torch.randn(4, 10, generator=g)
    assert row["ipr_delta"] == pytest.approx(float(ipr(W - W0).mean()), rel=1e-5)
    vecs = torch.linalg.eigh((W.T @ W).double())[1][:, -3:]
    assert row["ipr_wtw"] == pytest.approx(float(ipr(vecs.T).mean()), rel=1e-4)
    # one AGOP round: the kept iterate's accuracy is round 0's (M = I) or round 1's
    rounds = (row["acc_rfm_identity"], row["acc_rfm_last"])
    assert row["acc_rfm"] == pytest.approx(rounds[row["rfm_best_iter"]])


def test_views_of_a_batch_are_the_single_views():
    """emergence_views trains the gains together; each network is emergence_view's."""
    from agop_book.ch07_other_accounts import emergence_views

    views = emergence_views([0.0, 3.0], 3, D=8, n_train=60, steps=10)
    for g in (0.0, 3.0):
        one = emergence_view(g, 3, D=8, n_train=60, steps=10)
        torch.testing.assert_close(views[(g, 3)]["W"], one["W"], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(views[(g, 3)]["ipr_agop"], one["ipr_agop"], rtol=1e-3, atol=1e-4)


# Hostile inputs


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda C7: C7.ipr(torch.rand(3, 3), dim=5), ValueError, "dim must be"),
        (lambda C7: C7.ipr(torch.rand(3), dim=1.0), TypeError, "dim must be an integer"),
        (lambda C7: C7.summarise([], "rfm"), ValueError, "rows must hold at least one"),
        (
            lambda C7: C7.summarise([{"method": "a", "width": 1, "accuracy": 1.0}], "zz", 1),
            ValueError,
            r"rows hold \(method, width\) \[\('a', 1\)\]",
        ),
        (lambda C7: C7.ring_distance(0), ValueError, "D must be a positive"),
        (lambda C7: C7.ring_distance(4, dim=3), ValueError, "dim must be"),
        (lambda C7: C7.ring_distance(4, dim=0), ValueError, "dim must be"),
        (lambda C7: C7.ring_distance(10**6, dim=2), ValueError, "D, dim: the distances"),
        (lambda C7: C7.ring_distance(10**12), ValueError, "D, dim: the distances"),
        (lambda C7: C7.ring_distance(4.0), TypeError, "D must be an integer"),
        (lambda C7: C7.emergence_task(4, 8, gain=1.0, xi=3), TypeError, "xi must hold two"),
        (lambda C7: C7.emergence_task(4, 8, gain=1.0, xi="ab"), TypeError, "xi must hold two"),
        (lambda C7: C7.emergence_task(4, 8, gain=1.0, xi=(1.0,)), ValueError, "xi must hold two"),
        (
            lambda C7: C7.emergence_task(4, 8, gain=1.0, xi=(1.0, float("nan"))),
            ValueError,
            r"xi\[1\] must be a finite",
        ),
        (lambda C7: C7.emergence_task(4, 8, gain=1.0, dtype=torch.int64), ValueError, "dtype"),
        (lambda C7: C7.emergence_task(4, 10**6, gain=1.0, dim=2), ValueError, "n, D, dim: the"),
        (lambda C7: C7.emergence_task(4, 1, gain=1.0), ValueError, "D must be"),
        (lambda C7: C7.emergence_task(4, 8, gain=-1.0), ValueError, "gain must be"),
        (
            lambda C7: C7.nonlinear_gaussian_process(10**9, 10**3, xi=1.0, gain=1.0),
            ValueError,
            "n, D, dim: the inputs",
        ),
        (lambda C7: C7.view_of(1.0, torch.eye(2, 4), torch.eye(4), 99), ValueError, "n_top must"),
        (lambda C7: C7.view_of(1.0, torch.eye(2, 4), torch.eye(4), 0), ValueError, "n_top must"),
        (lambda C7: C7.view_of(1.0, torch.eye(2, 4), torch.eye(3)), ValueError, "agop must be 4"),
        (lambda C7: C7.view_of(1.0, torch.ones(4), torch.eye(4)), ValueError, "W must be a non"),
        (
            lambda C7: C7.view_of(1.0, torch.full((2, 4), float("nan")), torch.eye(4)),
            ValueError,
            "W contains",
        ),
        (lambda C7: C7.view_of(None, torch.eye(2, 4), torch.eye(4)), TypeError, "gain must be"),
        (lambda C7: C7.emergence_view(1.0, 2, D=8, n_top=0), ValueError, "n_top must be"),
        (lambda C7: C7.emergence_view(1.0, 2, D=8, n_top=9), ValueError, "n_top must be"),
        (lambda C7: C7.emergence_views([1.0], 2, D=8, n_top=9), ValueError, "n_top must be"),
        (  # checked before any network is trained (whose own checks would come first)
            lambda C7: C7.emergence_views([1.0], 2, D=8, n_top=0, steps=-1),
            ValueError,
            "n_top must be",
        ),
    ],
)
def test_hostile_inputs_are_refused_by_name(call, error, match):
    import agop_book.ch07_other_accounts as C7

    with pytest.raises(error, match=match):
        call(C7)


# Held-out style bugs


def test_sweep_tests_on_the_examples_after_the_training_stream(monkeypatch):
    """The test examples are the n_test draws after the n_train training ones (none of them
    trained on): the RFM is scored on exactly those, and acc_net is the accuracy there of the
    same network retrained alone."""
    import agop_book.ch07_other_accounts as C7

    scored = []

    class Recording(C7.RFM):
        def score_iterations(self, X, y):
            scored.append(torch.as_tensor(X).clone())
            return super().score_iterations(X, y)

    monkeypatch.setattr(C7, "RFM", Recording)
    kw = dict(width=3, steps=5, lr=1e-2, batch_size=10, activation="erf")
    res = emergence_sweep([3.0], [0], D=8, n_train=60, n_test=20, rfm_train=20, rfm_iter=1,
                          nfa_draws=2, shuffled=False, dtype=torch.float64, **kw)  # fmt: skip
    X, y = emergence_task(80, 8, gain=3.0, xi=(1.0, 2.0), seed=0, dtype=torch.float64)
    assert len(scored) == 1
    torch.testing.assert_close(scored[0], X[60:], rtol=0, atol=0)
    net = train_two_layer(X[None, :60], y[None, :60], seed=[0], **kw)
    expected = float(((net(X[60:])[0] > 0).long() == y[60:]).double().mean())
    assert res.rows[0]["acc_net"] == pytest.approx(expected, abs=1e-6)  # a float32 mean


# Mutation testing (`python tools/mutation.py other_accounts`, CONTRIBUTING.md): the sweep's
# options reach the trainer, the RFM and the ansatz (recording stubs), its rows are the
# statistics of planted networks, its arguments are checked by name before any work.

import numpy as np  # noqa: E402

import agop_book.ch07_other_accounts as C7  # noqa: E402


def _ipr_loop(v):
    v = [float(x) for x in v]
    return sum(x**4 for x in v) / sum(x**2 for x in v) ** 2


def _blocks(D, s):
    """10 J_s (+) diag(1, 0.9, ...): top eigenvector uniform on s sites, next e_s."""
    M = torch.zeros(D, D, dtype=torch.float64)
    M[:s, :s] = 10.0
    M[range(s, D), range(s, D)] = torch.linspace(1.0, 0.1, D - s, dtype=torch.float64)
    return M


class _Stubs:
    """Recording stand-ins for train_two_layer, RFM and fc_ansatz, with planted outputs."""

    def __init__(self, monkeypatch, zero_readout=False):
        self.train, self.rfms, self.ansatz = [], [], []
        self.zero_readout = zero_readout
        stubs = self

        def train_two_layer(X, y, **kwargs):
            stubs.train.append((X, y, kwargs))
            E, _, D = X.shape
            K, g = kwargs["width"], torch.Generator().manual_seed(len(stubs.train))
            W = torch.zeros(E, K, D, dtype=X.dtype)
            for e in range(E):
                start = 0
                for k in range(K):  # disjoint supports, norms growing with k
                    s = 2 + k % 3
                    W[e, k, start : start + s] = (k + 1) * torch.arange(1, s + 1) ** (e % 3 + 1)
                    start += s
            W0 = torch.randn(E, K, D, generator=g, dtype=X.dtype)
            a = torch.randn(E, K, generator=g, dtype=X.dtype)
            a = torch.zeros_like(a) if stubs.zero_readout else a
            b = 0.1 * torch.randn(E, K, generator=g, dtype=X.dtype)
            a0 = torch.randn(E, K, generator=g, dtype=X.dtype)
            return TwoLayerNets(W, b, a, kwargs["activation"], W0, a0)

        class RFM:
            def __init__(self, **kwargs):
                self.kwargs, self.scores = kwargs, []

            def fit(self, X, y):
                self.i, self.X, self.y = len(stubs.rfms), X, y
                stubs.rfms.append(self)
                D = X.shape[1]
                self.Ms_ = [_blocks(D, s) for s in (6, 5, 2 + self.i % 3)]
                self.best_iter_ = self.i % 3
                return self

            def score(self, X, y):
                self.scores.append(("score", X, y))
                return 0.5 + self.i / 100

            def score_iterations(self, X, y):
                self.scores.append(("rounds", X, y))
                return [0.1 + self.i / 100, 0.2, 0.3 + self.i / 100]

        def fc_ansatz(W, G, *, powers=(1.0, 0.5), n_draws=20, seed=0):
            i = len(stubs.ansatz)
            stubs.ansatz.append((W, G, n_draws, seed))
            return {
                1.0: {"trained": 10 * i + 1, "null_mean": 10 * i + 2},
                0.5: {"trained": 10 * i + 3, "null_mean": 10 * i + 4},
            }

        monkeypatch.setattr(C7, "train_two_layer", train_two_layer)
        monkeypatch.setattr(C7, "RFM", RFM)
        monkeypatch.setattr(C7, "fc_ansatz", fc_ansatz)


def _inner_loop(W, b, a, X):
    """(1/n) sum_i d_i d_i^T, d_i = a * phi'(W x_i + b), phi = erf(h / sqrt 2)."""
    G = torch.zeros(W.shape[0], W.shape[0], dtype=torch.float64)
    for x in X:
        h = W @ x + b
        d = a * math.sqrt(2 / math.pi) * torch.exp(-h * h / 2)
        G += torch.outer(d, d)
    return G / X.shape[0]


SWEEP = dict(
    D=12, n_train=30, n_test=11, xi=(1.0, 3.0), width=3, steps=8, lr=0.05, batch_size=5,
    optimizer="sgd", activation="erf", n_top=2, rfm_train=20, nfa_draws=5, rfm_iter=2,
    bandwidth=4.0, dtype=torch.float64, device="cpu",
)  # fmt: skip


@pytest.mark.parametrize("online", [False, True])
def test_sweep_passes_every_option_and_its_rows_are_the_planted_statistics(monkeypatch, online):
    stubs = _Stubs(monkeypatch)
    gains, seeds = [0.5, 2.0], [3, 1]
    res = C7.emergence_sweep(gains, seeds, online=online, **SWEEP)
    n_stream = 40 if online else 30  # online: steps * batch_size = 40 fresh examples
    conditions = [(s, lab) for s in seeds for lab in ("true", "shuffled")]
    E = len(conditions)
    assert [r["gain"] for r in res.rows] == [g for g in gains for _ in conditions]
    assert [(r["seed"], r["labels"]) for r in res.rows] == conditions * 2
    assert len(stubs.train) == 2 and len(stubs.rfms) == 2 * E and len(stubs.ansatz) == 4 * E
    for j, gain in enumerate(gains):
        X, y, kwargs = stubs.train[j]
        assert kwargs == {
            "width": 3, "steps": 8, "lr": 0.05, "batch_size": 5, "activation": "erf",
            "optimizer": "sgd", "online": online, "seed": [3, 3, 1, 1],
        }  # fmt: skip
        assert X.shape == (E, n_stream, 12) and X.dtype == torch.float64
        for e, (seed, labels) in enumerate(conditions):
            Xr, yr = emergence_task(n_stream + 11, 12, gain=gain, xi=(1.0, 3.0), seed=seed,
                                    dtype=torch.float64)  # fmt: skip
            assert torch.equal(X[e], Xr[:n_stream])
            if labels == "true":
                assert torch.equal(y[e], yr[:n_stream])
            else:  # a permutation of the true labels
                assert torch.equal(y[e].sort().values, yr[:n_stream].sort().values)
                assert not torch.equal(y[e], yr[:n_stream])
            row, rfm = res.rows[j * E + e], stubs.rfms[j * E + e]
            # the RFM: its options, the first rfm_train examples, scored on the test part
            assert rfm.kwargs["n_iter"] == 2 and rfm.kwargs["random_state"] == seed
            assert rfm.kwargs["bandwidth"] == 4.0 and rfm.kwargs["device"] == "cpu"
            assert rfm.kwargs["progress"] is False
            assert torch.equal(rfm.X, X[e][:20]) and torch.equal(rfm.y, y[e][:20])
            for _, Xt, yt in rfm.scores:
                assert torch.equal(Xt, Xr[n_stream:]) and np.array_equal(yt, yr[n_stream:].numpy())
            # the planted networks: W on disjoint supports, norms growing with the row
            W, W0 = torch.zeros(3, 12, dtype=torch.float64), None
            start = 0
            for k in range(3):
                W[k, start : start + 2 + k] = (k + 1) * torch.arange(1, 3 + k) ** (e % 3 + 1)
                start += 2 + k
            g = torch.Generator().manual_seed(j + 1)
            W0 = torch.randn(E, 3, 12, generator=g, dtype=torch.float64)[e]
            a = torch.randn(E, 3, generator=g, dtype=torch.float64)[e]
            b = 0.1 * torch.randn(E, 3, generator=g, dtype=torch.float64)[e]
            a0 = torch.randn(E, 3, generator=g, dtype=torch.float64)[e]
            assert row["ipr_weights"] == pytest.approx(np.mean([_ipr_loop(w) for w in W]))
            assert row["ipr_delta"] == pytest.approx(np.mean([_ipr_loop(w) for w in W - W0]))
            # W^T W: eigenvectors the rows, the two largest norms first (rows 2 and 1)
            assert row["ipr_wtw"] == pytest.approx((_ipr_loop(W[2]) + _ipr_loop(W[1])) / 2)
            agop = brute_agop(TwoLayerNets(W[None], b[None], a[None], "erf"), Xr[:30], 0)
            vecs = np.linalg.eigh(agop.numpy())[1][:, ::-1][:, :2].T
            assert row["ipr_agop"] == pytest.approx(np.mean([_ipr_loop(v) for v in vecs]))
            s = 2 + rfm.i % 3  # the last round's M: uniform on s sites, then one site
            assert row["ipr_rfm"] == pytest.approx((1 / s + 1) / 2)
            f = torch.stack([a @ torch.erf((W @ x + b) / math.sqrt(2)) for x in Xr[n_stream:]])
            acc = float(((f > 0).long() == yr[n_stream:]).double().mean())
            assert row["acc_net"] == pytest.approx(acc, abs=1e-6)
            i = rfm.i
            assert (row["acc_rfm"], row["acc_rfm_identity"], row["acc_rfm_last"]) == (
                0.5 + i / 100, 0.1 + i / 100, 0.3 + i / 100
            )  # fmt: skip
            assert row["rfm_best_iter"] == i % 3
            # the ansatz: the trained layer against its inner matrix, then the initial one
            c = 2 * (j * E + e)
            (Wt, Gt, nt, st), (Wi, Gi, ni, si) = stubs.ansatz[c], stubs.ansatz[c + 1]
            assert torch.equal(Wt, W) and (nt, st) == (5, seed)
            torch.testing.assert_close(Gt, _inner_loop(W, b, a, Xr[:30]))
            assert torch.equal(Wi, W0) and (ni, si) == (2, seed)
            torch.testing.assert_close(Gi, _inner_loop(W0, torch.zeros(3), a0, Xr[:30]))
            nfa = {k: row[k] for k in row if k.startswith("nfa")}
            assert nfa == {
                "nfa": 10 * c + 1, "nfa_null": 10 * c + 2, "nfa_half": 10 * c + 3,
                "nfa_half_null": 10 * c + 4, "nfa_init": 10 * c + 11, "nfa_half_init": 10 * c + 13,
            }  # fmt: skip
            assert set(row) == {
                "gain", "seed", "labels", "ipr_weights", "ipr_delta", "ipr_wtw", "ipr_agop",
                "ipr_rfm", "acc_net", "acc_rfm", "acc_rfm_last", "acc_rfm_identity",
                "rfm_best_iter", *nfa,
            }  # fmt: skip
            if seed == 3:  # the first seed's networks are the examples
                ex = res.examples[(gain, labels)]
                assert torch.equal(ex["W"], W) and torch.equal(ex["M"], _blocks(12, s))
                torch.testing.assert_close(ex["agop"], agop)
    assert set(res.examples) == {(g, lab) for g in gains for lab in ("true", "shuffled")}
    assert res.settings == {
        "D": 12, "n_train": 30, "xi": (1.0, 3.0), "width": 3, "steps": 8, "lr": 0.05,
        "batch_size": 5, "optimizer": "sgd", "online": online, "activation": "erf",
        "n_top": 2, "rfm_train": 20, "rfm_iter": 2,
    }  # fmt: skip


def test_sweep_defaults_are_the_documented_ones(monkeypatch, capsys):
    stubs = _Stubs(monkeypatch)
    res = C7.emergence_sweep([0.0], [0])
    ((X, y, kwargs),) = stubs.train
    assert kwargs == {
        "width": 8, "steps": 3000, "lr": 3e-3, "batch_size": 256, "activation": "erf",
        "optimizer": "adam", "online": False, "seed": [0, 0],
    }  # fmt: skip
    Xr, yr = emergence_task(5000, 40, gain=0.0, xi=(1.0, 2.0), seed=0)  # float32
    assert X.dtype == torch.float32 and torch.equal(X[0], Xr[:4000])
    assert [(r["seed"], r["labels"]) for r in res.rows] == [(0, "true"), (0, "shuffled")]
    rfm = stubs.rfms[0]
    assert (rfm.kwargs["n_iter"], rfm.kwargs["bandwidth"], rfm.X.shape[0]) == (3, 10.0, 1000)
    assert torch.equal(rfm.scores[0][1], Xr[4000:])  # n_test = 1000
    assert [n for _, _, n, _ in stubs.ansatz] == [20, 2, 20, 2]
    assert res.settings == {
        "D": 40, "n_train": 4000, "xi": (1.0, 2.0), "width": 8, "steps": 3000, "lr": 3e-3,
        "batch_size": 256, "optimizer": "adam", "online": False, "activation": "erf",
        "n_top": 3, "rfm_train": 1000, "rfm_iter": 3,
    }  # fmt: skip
    assert capsys.readouterr().err == ""  # no progress bar by default


def test_sweep_progress_bar_and_the_shuffled_control_on_request(monkeypatch, capsys):
    stubs = _Stubs(monkeypatch)
    small = {**SWEEP, "dtype": torch.float32}
    res = C7.emergence_sweep([0.5], [2, 4], shuffled=False, progress=True, **small)
    assert re.search(r"(?<![A-Za-z])gains: ", capsys.readouterr().err)  # the bar, named
    assert [(r["seed"], r["labels"]) for r in res.rows] == [(2, "true"), (4, "true")]
    assert stubs.train[0][0].shape[0] == 2 and stubs.train[0][2]["seed"] == [2, 4]
    assert set(res.examples) == {(0.5, "true")}


def test_sweep_network_accuracy_counts_a_zero_output_as_class_zero(monkeypatch):
    """A read-out of zeros outputs exactly 0: predicted class 0 (f > 0 is class 1)."""
    _Stubs(monkeypatch, zero_readout=True)
    res = C7.emergence_sweep([1.0], [0], shuffled=False, **SWEEP)
    _, yr = emergence_task(41, 12, gain=1.0, xi=(1.0, 3.0), seed=0, dtype=torch.float64)
    assert res.rows[0]["acc_net"] == pytest.approx(float((yr[30:] == 0).double().mean()))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"gains": [-1.0]}, ValueError, r"^gains\[0\] must be a non-negative"),
        ({"gains": 1.0}, TypeError, "^gains must be a non-empty sequence"),
        ({"seeds": [0, -1]}, ValueError, r"^seeds\[1\] must be a non-negative"),
        ({"n_top": 0}, ValueError, "^n_top must be a positive integer <= 12"),
        ({"n_top": 13}, ValueError, "^n_top must be a positive integer <= 12"),
        ({"n_top": 1.0}, TypeError, "^n_top must be an integer"),
        ({"rfm_train": 3}, ValueError, "^rfm_train must be an integer >= 4 and <= 30"),
        ({"rfm_train": 31}, ValueError, "^rfm_train must be an integer >= 4 and <= 30"),
        ({"rfm_train": 4.0}, TypeError, "^rfm_train must be an integer"),
        ({"steps": -1}, ValueError, "^steps must be a non-negative integer"),
        ({"steps": 1.0}, TypeError, "^steps must be an integer"),
        ({"batch_size": 0}, ValueError, "^batch_size must be a positive integer"),
        ({"batch_size": 2.0}, TypeError, "^batch_size must be an integer"),
    ],
)
def test_sweep_arguments_are_checked_by_name_before_any_training(monkeypatch, kwargs, error, match):
    stubs = _Stubs(monkeypatch)
    args = {"gains": [0.5], "seeds": [0], **SWEEP, **kwargs}
    with pytest.raises(error, match=match):
        C7.emergence_sweep(args.pop("gains"), args.pop("seeds"), **args)
    assert stubs.train == [] and stubs.rfms == []


def test_sweep_accepts_the_smallest_valid_arguments(monkeypatch):
    stubs = _Stubs(monkeypatch)
    small = {**SWEEP, "rfm_train": 4, "steps": 0, "batch_size": 1, "n_top": 1}
    res = C7.emergence_sweep([0.5], [0], shuffled=False, **small)
    assert stubs.rfms[0].X.shape[0] == 4 and stubs.train[0][2]["steps"] == 0
    assert stubs.train[0][2]["batch_size"] == 1
    assert res.rows[0]["ipr_rfm"] == pytest.approx(1 / 2)  # the top vector alone: 2 sites


def test_top_eigenvectors_of_a_batch_of_non_symmetric_matrices():
    """A (2, 3, 4, 4) stack of non-symmetric matrices: each its own symmetric part's
    eigenvectors, largest first, against numpy one matrix at a time; k up to D."""
    g = torch.Generator().manual_seed(0)
    A = torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64)
    V = top_eigenvectors(A, 4)
    assert V.shape == (2, 3, 4, 4)
    for i in range(2):
        for j in range(3):
            S = ((A[i, j] + A[i, j].T) / 2).numpy()
            vals, vecs = np.linalg.eigh(S)
            for r, c in enumerate(np.argsort(vals)[::-1]):
                assert abs(float(V[i, j, r].numpy() @ vecs[:, c])) == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"^A must be square matrices \(\.\.\., D, D\)"):
        top_eigenvectors(torch.ones(2, 3, 4), 1)  # shape[1] == shape[-2], yet not square
    with pytest.raises(ValueError, match="^k must be a positive integer <= 4"):
        top_eigenvectors(A, 0)
    with pytest.raises(TypeError, match="^A must be real"):
        top_eigenvectors(torch.eye(2, dtype=torch.complex128), 1)


def test_initial_networks_keep_the_activation_and_their_own_start():
    g = torch.Generator().manual_seed(0)
    W, W0 = torch.randn(1, 3, 4, generator=g), torch.randn(1, 3, 4, generator=g)
    a, a0 = torch.randn(1, 3, generator=g), torch.randn(1, 3, generator=g)
    nets = TwoLayerNets(W, torch.ones(1, 3), a, "relu", W0, a0)
    start = nets.initial()
    assert start.activation == "relu" and start.W0 is W0 and start.a0 is a0
    assert start.W is W0 and start.a is a0 and torch.equal(start.b, torch.zeros(1, 3))
    X = torch.randn(5, 4, generator=g)
    ref = torch.stack([a0[0] @ torch.relu(W0[0] @ x) for x in X])  # relu, zero bias
    torch.testing.assert_close(start(X)[0], ref)
    assert start.initial().W is W0  # the start's start is itself
    for partial in ({"W0": W0}, {"a0": a0}):
        with pytest.raises(ValueError, match="^these networks carry no initial state"):
            TwoLayerNets(W, torch.ones(1, 3), a, "relu", **partial).initial()


def test_training_defaults_are_the_documented_ones():
    """lr 3e-3, minibatches of 256 (of 300 examples), ReLU, Adam, seed 0."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(1, 300, 4, generator=g, dtype=torch.float64)
    y = (X[..., 0] > 0).long()
    nets = train_two_layer(X, y, width=3, steps=3)
    ref = train_two_layer(X, y, width=3, steps=3, lr=3e-3, batch_size=256, init_scale=0.3,
                          activation="relu", optimizer="adam", online=False, seed=0)  # fmt: skip
    assert torch.equal(nets.W, ref.W) and torch.equal(nets.a, ref.a)
    assert nets.activation == "relu"
    for other in ({"lr": 3.1e-3}, {"batch_size": 257}, {"seed": 1}, {"optimizer": "sgd"}):
        assert not torch.equal(train_two_layer(X, y, width=3, steps=3, **other).W, nets.W)
    with pytest.raises(TypeError, match="^X must be real"):
        train_two_layer(X.to(torch.complex128), y, width=3, steps=1)


def test_localisation_needs_the_rise_over_the_control_beyond_both_spreads():
    """m1 - ms = 0.125 = s1 + ss exactly (0 + 0.125, the sample SD of three values 0.125
    apart, exact in binary): not beyond them. The spreads are sample SDs (``ddof=1``): with
    the population SD (0.102) the same rows would localise."""
    flat = (0.0, 0.0, 0.0)
    result = constructed((0.5, 0.5, 0.5), (0.25, 0.375, 0.5), base=flat)
    ok, m0, m1, ms = result.localisation("ipr_agop")
    assert (m0, m1, ms) == (0.0, 0.5, 0.375) and not ok
    assert result.summary("ipr_agop", 3.0, "shuffled") == (0.375, 0.125)
    # beyond them by a little (0.14 > 0.12): localised
    assert constructed((0.5, 0.5, 0.5), (0.24, 0.36, 0.48), base=flat).localisation("ipr_agop")[0]
    # one seed has no spread to estimate: 0.0, not NaN
    assert constructed((0.5,), (0.3,), base=(0.0,)).summary("ipr_agop", 3.0) == (0.5, 0.0)


VIEW = dict(seed=5, D=9, n_train=25, xi=(1.5, 2.5), steps=4, lr=0.02, batch_size=7,
            activation="relu", n_top=2, dtype=torch.float64, device="cpu")  # fmt: skip
VIEW_DEFAULTS = dict(seed=0, D=40, n_train=4000, xi=(1.0, 2.0), steps=3000, lr=3e-3,
                     batch_size=256, activation="erf", n_top=3, dtype=torch.float32,
                     device=None)  # fmt: skip


def test_view_passes_every_option_to_the_batched_views(monkeypatch):
    calls = []

    def emergence_views(gains, width, **kwargs):
        calls.append((gains, width, kwargs))
        return {(g, width): ("view", g) for g in gains}

    monkeypatch.setattr(C7, "emergence_views", emergence_views)
    assert C7.emergence_view(2, 3, **VIEW) == ("view", 2.0)
    assert calls[-1] == ([2.0], 3, VIEW)
    C7.emergence_view(0.5, 4)
    gains, width, kwargs = calls[-1]
    activation = kwargs.pop("activation")
    assert activation.lower() == "erf"  # any case: train_two_layer's choice
    assert kwargs == {k: v for k, v in VIEW_DEFAULTS.items() if k != "activation"}
    with pytest.raises(ValueError, match="^gain must be a non-negative number"):
        C7.emergence_view(-1.0, 2)
    with pytest.raises(TypeError, match="^gain must be a real number"):
        C7.emergence_view("3", 2)


def _recording_trainer(monkeypatch):
    calls = []

    def train_two_layer(X, y, **kwargs):
        calls.append((X, y, kwargs))
        E, _, D = X.shape
        K = kwargs["width"]
        W = torch.zeros(E, K, D, dtype=X.dtype)
        for e in range(E):  # row k: k + 1 sites; norms growing with k; per network a scale
            for k in range(K):
                W[e, k, : k + 1] = (e + 1.0) * (k + 1)
        a = torch.ones(E, K, dtype=X.dtype)
        return TwoLayerNets(W, torch.full((E, K), 50.0, dtype=X.dtype), a, "relu", W, a)

    monkeypatch.setattr(C7, "train_two_layer", train_two_layer)
    return calls


def test_views_pass_every_option_and_view_each_network(monkeypatch):
    calls = _recording_trainer(monkeypatch)
    views = C7.emergence_views([0.5, 2.0], 3, **VIEW)
    ((X, y, kwargs),) = calls
    assert kwargs == {"width": 3, "steps": 4, "lr": 0.02, "batch_size": 7,
                      "activation": "relu", "seed": [5, 5]}  # fmt: skip
    for e, g in enumerate([0.5, 2.0]):
        Xr, yr = emergence_task(25, 9, gain=g, xi=(1.5, 2.5), seed=5, dtype=torch.float64)
        assert torch.equal(X[e], Xr) and torch.equal(y[e], yr)
        view = views[(g, 3)]
        assert view["gain"] == g and view["width"] == 3 and view["ipr_random"] == 3 / 9
        # rows sorted by norm: the 3-site row first; every unit active, so the AGOP is
        # (W^T a)(W^T a)^T, rank one: its top eigenvector is W^T a, (6, 5, 3) on sites 0-2
        assert [_ipr_loop(w) for w in view["W"]] == pytest.approx([1 / 3, 1 / 2, 1.0])
        assert view["eigvecs"].shape == (2, 9)
        top = torch.tensor([6.0, 5.0, 3.0, 0, 0, 0, 0, 0, 0], dtype=torch.float64) / 70**0.5
        assert abs(float(view["eigvecs"][0] @ top)) == pytest.approx(1.0)
    assert sorted(views) == [(0.5, 3), (2.0, 3)]


def test_views_defaults_and_arguments(monkeypatch):
    calls = _recording_trainer(monkeypatch)
    views = C7.emergence_views([1.0], 2)
    ((X, y, kwargs),) = calls
    assert kwargs.pop("activation").lower() == "erf"
    assert kwargs == {"width": 2, "steps": 3000, "lr": 3e-3, "batch_size": 256, "seed": [0]}
    Xr, _ = emergence_task(4000, 40, gain=1.0, xi=(1.0, 2.0), seed=0)
    assert X.dtype == torch.float32 and torch.equal(X[0], Xr)
    assert views[(1.0, 2)]["eigvecs"].shape == (3, 40)
    for gains, error, match in (
        ([0.5, -1.0], ValueError, r"^gains\[1\] must be a non-negative number"),
        ([], ValueError, "^gains must be a non-empty sequence"),
        (2.0, TypeError, "^gains must be a non-empty sequence"),
    ):
        with pytest.raises(error, match=match):
            C7.emergence_views(gains, 2)


def test_view_of_a_planted_network():
    """Rows sorted by norm, the AGOP's top eigenvectors (3 by default), 3 / D for a random
    vector, and the width is the number of rows (5 units on 7 sites)."""
    W = torch.zeros(5, 7, dtype=torch.float64)
    for k in range(5):
        W[k, : k + 1] = 1.0  # norms growing with k: sorted, the last row first
    agop = torch.diag(torch.tensor([1.0, 7, 2, 6, 3, 5, 4], dtype=torch.float64))
    view = C7.view_of(1.5, W, agop)
    assert set(view) == {"gain", "width", "W", "eigvecs", "ipr_weights", "ipr_agop",
                         "ipr_random"}  # fmt: skip
    assert (view["gain"], view["width"], view["ipr_random"]) == (1.5, 5, 3 / 7)
    assert torch.equal(view["W"], W.flip(0))
    assert view["eigvecs"].abs().argmax(1).tolist() == [1, 3, 5]
    assert view["ipr_weights"].tolist() == pytest.approx([1 / 5, 1 / 4, 1 / 3, 1 / 2, 1.0])
    assert view["ipr_agop"].tolist() == pytest.approx([1.0] * 3)
    assert C7.view_of(1.5, W, agop, n_top=7)["eigvecs"].shape == (7, 7)  # at most D
    with pytest.raises(ValueError, match="^n_top must be a positive integer <= 7"):
        C7.view_of(1.5, W, agop, n_top=9)


def test_ipr_figure_draws_the_mean_and_a_sample_sd_band_per_gain_and_labels():
    """Found by mutation triage: the band was the population SD (ddof 0) over seeds, where
    every other figure and table of the book uses the sample SD."""
    import matplotlib.pyplot as plt

    planted = {(0.0, "true"): [0.1, 0.2, 0.6], (3.0, "true"): [0.5, 0.7, 0.9],
               (0.0, "shuffled"): [0.1, 0.1, 0.4], (3.0, "shuffled"): [0.2]}  # fmt: skip
    rows = [
        {"gain": g, "labels": lab, "seed": s, "ipr_weights": v, "ipr_agop": 2 * v}
        for (g, lab), vals in planted.items()
        for s, v in enumerate(vals)
    ]
    stats = {"ipr_weights": "weights", "ipr_agop": "AGOP"}
    fig = C7.plot_emergence_ipr(rows, stats, ipr_random=0.05)
    assert [ax.get_title() for ax in fig.axes] == ["weights", "AGOP"]
    for ax, scale in zip(fig.axes, (1, 2), strict=True):
        true, shuffled, reference = ax.get_lines()
        assert (true.get_label(), shuffled.get_label()) == ("true labels", "shuffled labels")
        for line, lab in ((true, "true"), (shuffled, "shuffled")):
            want = [scale * np.mean(planted[(g, lab)]) for g in (0.0, 3.0)]
            np.testing.assert_allclose(line.get_ydata(), want)
        bands = ax.collections  # fill_between: mean -+ sample SD, 0 for the one-seed point
        for band, lab in zip(bands, ("true", "shuffled"), strict=True):
            top = band.get_paths()[0].vertices[:, 1].max()
            vals = scale * np.array(planted[(3.0, lab)] if lab == "true" else planted[(0.0, lab)])
            assert top == pytest.approx(vals.mean() + (vals.std(ddof=1) if len(vals) > 1 else 0))
        assert list(reference.get_ydata()) == [0.05, 0.05]
        assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "3"]
    plt.close(fig)
    only_true = [r for r in rows if r["labels"] == "true"]
    fig = C7.plot_emergence_ipr(only_true, {"ipr_weights": "w"})
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["true labels"]
    plt.close(fig)
    fig = C7.plot_emergence_ipr([dict(r, ipr_rfm=0.3) for r in rows])
    assert len(fig.axes) == 3 and fig.axes[2].get_title() == "RFM: top eigenvectors of $M$"
    plt.close(fig)


def _sgd_loop(X, y, width, steps, lr, init_scale, seeds):
    """Plain gradient descent on one example per network (n = 1, so every minibatch is that
    example), written per network: W ~ s N(0, 1/D), a ~ N(0, 1/K), b = 0, loss (f(x) - (2y-1))^2."""
    out = []
    for e, s in enumerate(seeds):
        g = torch.Generator().manual_seed(s)
        D = X.shape[-1]
        W = (init_scale / math.sqrt(D)) * torch.randn(width, D, generator=g, dtype=X.dtype)
        a = torch.randn(width, generator=g, dtype=X.dtype) / math.sqrt(width)
        b = torch.zeros(width, dtype=X.dtype)
        x, t = X[e, 0], 2.0 * float(y[e, 0]) - 1
        for _ in range(steps):
            W, b, a = (p.detach().requires_grad_() for p in (W, b, a))
            f = sum(a[k] * torch.relu(W[k] @ x + b[k]) for k in range(width))
            gW, gb, ga = torch.autograd.grad((f - t) ** 2, (W, b, a))
            W, b, a = W - lr * gW, b - lr * gb, a - lr * ga
        out.append((W.detach(), b.detach(), a.detach()))
    return out


def test_training_on_one_example_is_gradient_descent_written_out():
    X = torch.randn(2, 1, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    y = torch.tensor([[1], [0]])
    nets = train_two_layer(X, y, width=4, steps=3, lr=0.1, batch_size=5, init_scale=0.7,
                           optimizer="sgd", seed=[5, 6])  # fmt: skip
    for e, (W, b, a) in enumerate(_sgd_loop(X, y, 4, 3, 0.1, 0.7, [5, 6])):
        assert torch.allclose(nets.W[e], W) and torch.allclose(nets.b[e], b)
        assert torch.allclose(nets.a[e], a)
    # one seed for both networks: the same draws, in one (E, K, D) then one (E, K) tensor
    one = train_two_layer(X, y, width=4, steps=0, init_scale=0.7, seed=5)
    g = torch.Generator().manual_seed(5)
    W0 = (0.7 / math.sqrt(3)) * torch.randn(2, 4, 3, generator=g, dtype=torch.float64)
    a0 = torch.randn(2, 4, generator=g, dtype=torch.float64) / 2
    assert torch.equal(one.W, W0) and torch.equal(one.a, a0) and torch.equal(one.a0, a0)
    one = train_two_layer(X, y, width=4, steps=2, lr=0.1, optimizer="sgd", seed=5)  # n = 1 too
    assert torch.isfinite(one.W).all()


_TRAIN = dict(width=2, steps=1, lr=0.1, batch_size=2, init_scale=0.3)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(X=[["a"]]), TypeError, "^X must"),
        (dict(y=torch.zeros(1, 3)), ValueError, r"^X must be \(E, n, D\) and y \(E, n\)"),
        (dict(X=torch.full((1, 2, 3), float("nan"))), ValueError, "^X contains"),
        (dict(width=0), ValueError, "^width must"),
        (dict(steps=-1), ValueError, "^steps must"),
        (dict(batch_size=0), ValueError, "^batch_size must"),
        (dict(lr=0.0), ValueError, "^lr must"),
        (dict(lr=-0.1), ValueError, "^lr must"),
        (dict(init_scale=-0.1), ValueError, "^init_scale must"),
        (dict(activation="tanh"), ValueError, "^activation must"),
        (dict(optimizer="lbfgs"), ValueError, "^optimizer must"),
        (dict(seed=[-1]), ValueError, r"^seed\[e\] must"),
    ],
)
def test_training_arguments_are_refused_by_name(kwargs, error, match):
    args = dict(X=torch.ones(1, 2, 3, dtype=torch.float64), y=torch.zeros(1, 2)) | _TRAIN
    with pytest.raises(error, match=match):
        train_two_layer(**(args | kwargs))


def test_training_accepts_the_smallest_arguments():
    X, y = torch.ones(1, 2, 3, dtype=torch.float64), torch.tensor([[0, 1]])
    nets = train_two_layer(X, y, **(_TRAIN | dict(width=1, steps=0, batch_size=1, init_scale=0.0)))
    assert nets.W.shape == (1, 1, 3) and not nets.W.any()


def test_relu_derivative_at_zero_is_zero_as_autograd_takes_it():
    from agop_book.ch07_other_accounts import two_layer_inner

    # unit 0 sits exactly at h = 0 on every input, unit 1 is active: G = diag(0, a_1^2)
    nets = TwoLayerNets(torch.tensor([[[0.0, 0.0], [1.0, 0.0]]], dtype=torch.float64),
                        torch.tensor([[0.0, 5.0]], dtype=torch.float64),
                        torch.tensor([[2.0, -3.0]], dtype=torch.float64), "relu")  # fmt: skip
    X = torch.tensor([[1.0, 2.0], [-1.0, 0.5]], dtype=torch.float64)
    G = two_layer_inner(nets, X)[0]
    assert G.tolist() == [[0.0, 0.0], [0.0, 9.0]]
    assert torch.allclose(two_layer_agop(nets, X)[0], brute_agop(nets, X, 0))


@pytest.mark.parametrize(
    "view, n_fields, error, match",
    [
        ({}, 4, ValueError, "^view must be a dict from emergence_view with keys"),
        ([1, 2], 4, ValueError, "^view must be a dict from emergence_view"),
        (None, 0, ValueError, "^n_fields must be a positive integer"),
    ],
)
def test_emergence_view_figure_names_a_bad_view(view, n_fields, error, match):
    if view is None:  # a whole view, a bad count
        W = torch.eye(3, 6)
        view = {"gain": 1.0, "width": 3, "W": W, "eigvecs": W, "ipr_weights": C7.ipr(W),
                "ipr_agop": C7.ipr(W), "ipr_random": 0.5}  # fmt: skip
    with pytest.raises(error, match=match):
        C7.plot_emergence_view(view, n_fields=n_fields)


# Hostile inputs: the emergence figures and the explorer

_W, _V = torch.eye(3, 6, dtype=torch.float64), torch.ones(2, 6, dtype=torch.float64)
_VIEW = {"gain": 1.0, "width": 3, "W": _W, "eigvecs": _V, "ipr_weights": torch.ones(3),
         "ipr_agop": torch.ones(2), "ipr_random": 0.5}  # fmt: skip
_ROWS = [{"gain": 0.0, "labels": "true", "ipr_weights": 0.1}]


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda C7: C7.plot_emergence_ipr([], {"ipr_weights": "w"}), ValueError, "^rows must hold"),
        (lambda C7: C7.plot_emergence_ipr(_ROWS), ValueError, r"^rows\[0\] has no key 'ipr_agop'"),
        (lambda C7: C7.plot_emergence_ipr(_ROWS, {}), ValueError, "^stats must hold"),
        (
            lambda C7: C7.plot_emergence_ipr(
                [dict(_ROWS[0], ipr_weights=math.nan)], {"ipr_weights": "w"}
            ),
            ValueError,
            r"^rows\[0\]\['ipr_weights'\] must be a finite",
        ),
        (
            lambda C7: C7.plot_emergence_ipr([dict(_ROWS[0], labels="x")], {"ipr_weights": "w"}),
            ValueError,
            r"^rows\[0\]\['labels'\] must be 'true' or 'shuffled'",
        ),
        (
            lambda C7: C7.plot_emergence_ipr(_ROWS, {"ipr_weights": "w"}, ipr_random=math.nan),
            ValueError,
            "^ipr_random must be",
        ),
        (
            lambda C7: C7.plot_emergence_view(dict(_VIEW, W=_W * math.nan)),
            ValueError,
            r"^view\['W'\] contains",
        ),
        (
            lambda C7: C7.plot_emergence_view(dict(_VIEW, W=torch.ones(6))),
            ValueError,
            r"^view\['W'\] must be",
        ),
        (
            lambda C7: C7.plot_emergence_view(dict(_VIEW, ipr_weights=torch.ones(1))),
            ValueError,
            r"^view\['ipr_weights'\] must hold one IPR per row",
        ),
        (
            lambda C7: C7.plot_emergence_view(dict(_VIEW, eigvecs=torch.ones(2, 5))),
            ValueError,
            r"^view\['eigvecs'\] must have D = 6 columns",
        ),
        (lambda C7: C7.plot_emergence_view(dict(_VIEW, gain="1")), TypeError, r"^view\['gain'\]"),
        (lambda C7: C7.plot_emergence_view(_VIEW, fig=3), TypeError, "^fig must be"),
        (
            lambda C7: C7.emergence_explorer({1.0: _VIEW}),
            TypeError,
            "^views: each key must be a pair",
        ),
        (
            lambda C7: C7.emergence_explorer({(1.0, 3): 5}),
            ValueError,
            r"^views\[\(1.0, 3\)\] must be",
        ),
        (lambda C7: C7.emergence_views([1.0, 1.0], 2, D=8), ValueError, "^gains must be distinct"),
        (lambda C7: C7.emergence_view(1.0, 2, D=8, n_train=0), ValueError, "^n_train must be"),
    ],
)
def test_emergence_figures_and_explorer_name_a_hostile_argument(call, error, match):
    import matplotlib.pyplot as plt

    from agop_book import ch07_other_accounts as C7

    before = plt.get_fignums()
    with pytest.raises(error, match=match):
        call(C7)
    assert plt.get_fignums() == before


def test_emergence_view_draws_a_zero_receptive_field_flat():
    import matplotlib.pyplot as plt

    from agop_book import ch07_other_accounts as C7

    W = torch.zeros(2, 6, dtype=torch.float64)
    W[0, 1] = 1.0
    fig = C7.plot_emergence_view(dict(_VIEW, W=W, ipr_weights=torch.ones(2)), n_fields=2)
    try:
        ys = [line.get_ydata().tolist() for line in fig.axes[0].get_lines()]
        assert ys[1] == [-2.2] * 6  # unit 2 is zero: a flat line at its offset, no NaN
    finally:
        plt.close(fig)


def _planted_view():
    """Five receptive fields of 5 sites (the first with its largest entry negative) and two
    eigenvectors, with IPRs planted apart from the vectors (the figure shows what it is given)."""
    W = torch.tensor([[0.5, -2.0, 1.0, 0.0, 0.25], [0.0, 1.0, 3.0, -1.0, 0.0],
                      [4.0, 0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 1.0, 0.0, 0.0],
                      [1.0, 1.0, 1.0, 1.0, 1.0]], requires_grad=True)  # fmt: skip
    V = torch.tensor([[0.6, 0.0, -0.8, 0.0, 0.0], [0.1, 0.2, 0.3, 0.4, 0.5]], dtype=torch.float64)
    return {"gain": 2.5, "width": 5, "W": W, "eigvecs": V,
            "ipr_weights": torch.tensor([0.31, 0.52, 0.93, 0.2, 0.14]),
            "ipr_agop": torch.tensor([0.27, 0.69]), "ipr_random": 0.6}  # fmt: skip


def _drawn_curves(v, shift):
    """Each vector over its largest |entry|, that entry made positive, the i-th lowered 2.2 i."""
    out = []
    for i, row in enumerate(np.asarray(v, dtype=float)):
        row = row / np.abs(row).max()
        out.append(row * np.sign(row[np.abs(row).argmax()]) - shift * i)
    return out


def test_emergence_view_figure_draws_each_field_and_eigenvector_with_its_ipr():
    import matplotlib.pyplot as plt

    view = _planted_view()
    old = plt.figure()
    old.subplots(2, 2)
    fig = C7.plot_emergence_view(view, n_fields=2, fig=old)
    assert fig is old and len(fig.axes) == 2  # the given figure, cleared
    left, right = fig.axes
    assert left.get_position().x0 < right.get_position().x0  # side by side, one row
    assert left.get_position().y0 == right.get_position().y0
    fields = ["unit 1: IPR 0.31", "unit 2: IPR 0.52"]
    eigen = ["eigenvector 1: IPR 0.27", "eigenvector 2: IPR 0.69"]
    for ax, vecs, labels in (
        (left, view["W"][:2].detach(), fields),
        (right, view["eigvecs"], eigen),
    ):
        lines = ax.get_lines()
        assert [line.get_label() for line in lines] == labels
        assert [t.get_text() for t in ax.get_legend().get_texts()] == labels
        for line, want in zip(lines, _drawn_curves(vecs, 2.2), strict=True):
            np.testing.assert_array_equal(line.get_xdata(), np.arange(5))
            np.testing.assert_allclose(line.get_ydata(), want, rtol=1e-12)
        assert list(ax.get_yticks()) == [] and ax.get_xlabel() == "input site"
    # the first field's largest entry (-2) drawn upwards at +1, the second's (3) kept at +1
    assert left.get_lines()[0].get_ydata()[1] == 1.0
    assert left.get_lines()[1].get_ydata()[2] == pytest.approx(1.0 - 2.2)
    # the titles name the network's mean IPR over all its fields, not only those drawn
    assert left.get_title() == "receptive fields (mean IPR 0.42)"
    assert right.get_title() == "AGOP eigenvectors (mean IPR 0.48)"
    assert fig.get_suptitle() == (
        "gain 2.5, width 5; an i.i.d. Gaussian vector has IPR about 0.600"
    )
    plt.close(fig)
    fig = C7.plot_emergence_view(view)  # default: the 4 largest fields, a new figure
    assert [line.get_label()[:6] for line in fig.axes[0].get_lines()] == [
        "unit 1", "unit 2", "unit 3", "unit 4"]  # fmt: skip
    plt.close(fig)
    fig = C7.plot_emergence_view(view, n_fields=1)  # the smallest count
    assert len(fig.axes[0].get_lines()) == 1
    plt.close(fig)


def test_emergence_view_figure_says_which_keys_a_bad_view_holds():
    with pytest.raises(ValueError, match=r"got \['W', 'gain'\]$"):
        C7.plot_emergence_view({"gain": 1.0, "W": torch.eye(2)})
    with pytest.raises(ValueError, match="got list$"):
        C7.plot_emergence_view([1, 2])


def test_emergence_explorer_displays_the_selected_view_in_its_own_figure(monkeypatch, capsys):
    """What the explorer shows for given slider values: the figure it displays is the static
    figure of that view (its curves and its title), one figure redrawn, kept out of pyplot."""
    pytest.importorskip("ipywidgets")
    import IPython.display
    import matplotlib.pyplot as plt

    from agop_book.bench.widgets import _controls

    base = _planted_view()
    views = {(g, k): dict(base, gain=g, width=k, W=base["W"].detach()[:k].roll(int(g), 1),
                          ipr_weights=base["ipr_weights"][:k])
             for g in (0.0, 3.0) for k in (2, 4)}  # fmt: skip
    del views[(3.0, 4)]
    shown = []

    def record(fig):
        shown.append((fig, fig.get_suptitle(), [ln.get_ydata() for ln in fig.axes[0].get_lines()]))

    monkeypatch.setattr(IPython.display, "display", record)
    before = plt.get_fignums()
    box = C7.emergence_explorer(views)
    assert plt.get_fignums() == before  # the explorer's figure is not left open in pyplot
    c = _controls(box)
    c["width"].value = 4
    c["gain"].value = 0.0
    c["gain"].value = 3.0  # (3, 4) not computed: says so, shows nothing
    assert "no network computed at gain 3 and width 4" in capsys.readouterr().out
    titles = [s[1].split(";")[0] for s in shown]
    assert titles == ["gain 3, width 2", "gain 0, width 4"]
    assert shown[0][0] is shown[1][0]  # one figure, redrawn
    for (_, _, curves), key in zip(shown, [(3.0, 2), (0.0, 4)], strict=True):
        want = _drawn_curves(views[key]["W"], 2.2)
        assert len(curves) == key[1]
        for got, w in zip(curves, want, strict=True):
            np.testing.assert_allclose(got, w, rtol=1e-6)


def test_ipr_figure_default_panels_shared_axis_and_bands_of_one_and_two_seeds():
    import warnings

    import matplotlib.pyplot as plt

    planted = {
        (0.0, "shuffled"): [0.2, 0.6],
        (1.0, "shuffled"): [0.3],
        (2.0, "shuffled"): [0.1, 0.4],
    }
    rows = [{"gain": g, "labels": lab, "seed": s, "ipr_weights": v, "ipr_agop": v, "ipr_rfm": v}
            for (g, lab), vals in planted.items() for s, v in enumerate(vals)]  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ddof=1 spread of one seed (a NaN, a warning)
        fig = C7.plot_emergence_ipr(rows)
    assert [ax.get_title() for ax in fig.axes] == [
        "network: receptive fields (rows of $W$)",
        "network: top AGOP eigenvectors",
        "RFM: top eigenvectors of $M$",
    ]
    a, b, c = fig.axes
    assert a.get_shared_y_axes().joined(a, b) and a.get_shared_y_axes().joined(a, c)
    for ax in fig.axes:  # no true labels: the shuffled ones alone
        (line,) = ax.get_lines()
        assert line.get_label() == "shuffled labels"
        np.testing.assert_allclose(line.get_ydata(), [0.4, 0.3, 0.25])
        (band,) = ax.collections
        verts = band.get_paths()[0].vertices
        # the two-seed points: mean -+ sample SD; the one-seed point: a zero-width band
        for x, vals in ((0, [0.2, 0.6]), (1, [0.3]), (2, [0.1, 0.4])):
            ys = verts[np.isclose(verts[:, 0], x), 1]
            sd = np.std(vals, ddof=1) if len(vals) > 1 else 0.0
            np.testing.assert_allclose(
                [ys.min(), ys.max()], [np.mean(vals) - sd, np.mean(vals) + sd]
            )
    plt.close(fig)


def test_ipr_figure_names_its_axes_curves_and_reference_line():
    import matplotlib.pyplot as plt

    rows = [{"gain": g, "labels": lab, "seed": s, "ipr_weights": 0.1 * (s + 1) + g}
            for g in (0.0, 3.0) for lab in ("true", "shuffled") for s in (0, 1)]  # fmt: skip
    with pytest.raises(ValueError, match=r"^rows\[0\] has no key 'ipr_agop'"):
        C7.plot_emergence_ipr(rows, {"ipr_weights": "w", "ipr_agop": "a"})  # found here: a KeyError
    rows = [dict(r, ipr_agop=1.0) for r in rows]
    fig = C7.plot_emergence_ipr(rows, {"ipr_weights": "w", "ipr_agop": "a"}, ipr_random=0.05)
    ax = fig.axes[0]
    true, shuffled, reference = ax.get_lines()
    assert (true.get_linestyle(), true.get_marker()) == ("-", "o")  # solid: the true labels
    assert (shuffled.get_linestyle(), shuffled.get_marker()) == ("--", "s")
    assert reference.get_label() == "i.i.d. Gaussian vector"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "true labels", "shuffled labels", "i.i.d. Gaussian vector"]  # fmt: skip
    assert fig.axes[1].get_legend() is None  # one legend, on the first panel
    assert [a.get_xlabel() for a in fig.axes] == ["gain (0: Gaussian)"] * 2
    assert [a.get_ylabel() for a in fig.axes] == ["mean IPR", ""]
    plt.close(fig)


# Mutation testing of the figures' argument checks (stop 33): every refusal of the emergence
# figures, the explorer and emergence_views, with its whole message (the argument's exact name
# first, then the expected form the validator was given), and each minimum and maximum at its
# boundary.

_EW, _EV = torch.eye(3, 6, dtype=torch.float64), torch.ones(2, 6, dtype=torch.float64)
_EVIEW = {"gain": 1.0, "width": 3, "W": _EW, "eigvecs": _EV, "ipr_weights": torch.ones(3),
          "ipr_agop": torch.ones(2), "ipr_random": 0.5}  # fmt: skip
_EROWS = [{"gain": 0.0, "labels": "true", "ipr_weights": 0.1}]
_ESTATS = {"ipr_weights": "w"}


@pytest.mark.parametrize(
    "call, error, message",
    [
        (
            lambda C7: C7.plot_emergence_ipr(_EROWS, ["ipr_weights"]),
            TypeError,
            "stats must be a dict {column: panel title}, got list",
        ),
        (
            lambda C7: C7.plot_emergence_ipr(_EROWS, {}),
            ValueError,
            "stats must hold at least one entry {column: panel title}, got an empty one",
        ),
        (
            lambda C7: C7.plot_emergence_ipr(_EROWS[0], _ESTATS),
            TypeError,
            "rows must be a list of dicts with keys ['gain', 'labels', 'ipr_weights'], got dict",
        ),
        (
            lambda C7: C7.plot_emergence_ipr([], _ESTATS),
            ValueError,
            "rows must hold at least one of dicts with keys ['gain', 'labels', 'ipr_weights'], got an empty list",
        ),
        (
            lambda C7: C7.plot_emergence_ipr([3], _ESTATS),
            TypeError,
            "rows[0] must be a dict with keys ['gain', 'labels', 'ipr_weights'], got int",
        ),
        (
            lambda C7: C7.plot_emergence_ipr([{"gain": 0.0, "labels": "true"}], _ESTATS),
            ValueError,
            "rows[0] has no key 'ipr_weights' (needed: ['gain', 'labels', 'ipr_weights'])",
        ),
        (
            lambda C7: C7.plot_emergence_ipr([dict(_EROWS[0], gain=math.nan)], _ESTATS),
            ValueError,
            "rows[0]['gain'] must be a finite number, got nan",
        ),
        (
            lambda C7: C7.plot_emergence_ipr([dict(_EROWS[0], ipr_weights=math.inf)], _ESTATS),
            ValueError,
            "rows[0]['ipr_weights'] must be a finite number, got inf",
        ),
        (
            lambda C7: C7.plot_emergence_ipr([dict(_EROWS[0], labels="both")], _ESTATS),
            ValueError,
            "rows[0]['labels'] must be 'true' or 'shuffled', got 'both'",
        ),
        (
            lambda C7: C7.plot_emergence_ipr(_EROWS, _ESTATS, ipr_random=-0.5),
            ValueError,
            "ipr_random must be a non-negative number, got -0.5",
        ),
        (
            lambda C7: C7.plot_emergence_ipr(_EROWS, _ESTATS, fig=3),
            TypeError,
            "fig must be None or a matplotlib Figure, got int",
        ),
        (
            lambda C7: C7.plot_emergence_view([_EW], 2),
            ValueError,
            "view must be a dict from emergence_view with keys ('gain', 'width', 'W', 'eigvecs', 'ipr_weights', 'ipr_agop', 'ipr_random'), got list",
        ),
        (
            lambda C7: C7.plot_emergence_view(
                {k: v for k, v in _EVIEW.items() if k != "ipr_random"}, 2
            ),
            ValueError,
            "view must be a dict from emergence_view with keys ('gain', 'width', 'W', 'eigvecs', 'ipr_weights', 'ipr_agop', 'ipr_random'), got ['W', 'eigvecs', 'gain', 'ipr_agop', 'ipr_weights', 'width']",
        ),
        (
            lambda C7: C7.plot_emergence_view(dict(_EVIEW, W=_EW * math.nan), 2),
            ValueError,
            "view['W'] contains 18 non-finite values (NaN or inf)",
        ),
        (
            lambda C7: C7.plot_emergence_view(dict(_EVIEW, W="abc"), 2),
            TypeError,
            "view['W'] must be a tensor or array, got str",
        ),
        (
            lambda C7: C7.plot_emergence_view(dict(_EVIEW, ipr_agop="abc"), 2),
            TypeError,
            "view['ipr_agop'] must be a tensor or array, got str",
        ),
        (
            lambda C7: C7.plot_emergence_view(dict(_EVIEW, W=torch.ones(6)), 2),
            ValueError,
            "view['W'] must be a non-empty (rows, D) matrix, got shape (6,)",
        ),
        (
            lambda C7: C7.plot_emergence_view(dict(_EVIEW, eigvecs=torch.ones(2, 0)), 2),
            ValueError,
            "view['eigvecs'] must be a non-empty (rows, D) matrix, got shape (2, 0)",
        ),
        (
            lambda C7: C7.plot_emergence_view(dict(_EVIEW, eigvecs=torch.ones(2, 5)), 2),
            ValueError,
            "view['eigvecs'] must have D = 6 columns as view['W'] has, got shape (2, 5)",
        ),
        (
            lambda C7: C7.plot_emergence_view(dict(_EVIEW, ipr_weights=torch.ones(2)), 2),
            ValueError,
            "view['ipr_weights'] must hold one IPR per row of view['W'] (3), got shape (2,)",
        ),
        (
            lambda C7: C7.plot_emergence_view(dict(_EVIEW, ipr_agop=torch.ones(3)), 2),
            ValueError,
            "view['ipr_agop'] must hold one IPR per row of view['eigvecs'] (2), got shape (3,)",
        ),
        (
            lambda C7: C7.plot_emergence_view(
                dict(_EVIEW, ipr_agop=torch.tensor([1.0, math.nan])), 2
            ),
            ValueError,
            "view['ipr_agop'] contains 1 non-finite values (NaN or inf)",
        ),
        (
            lambda C7: C7.plot_emergence_view(dict(_EVIEW, gain=-1.0), 2),
            ValueError,
            "view['gain'] must be a non-negative number, got -1",
        ),
        (
            lambda C7: C7.plot_emergence_view(dict(_EVIEW, width=0), 2),
            ValueError,
            "view['width'] must be a positive integer, got 0",
        ),
        (
            lambda C7: C7.plot_emergence_view(dict(_EVIEW, ipr_random=-0.5), 2),
            ValueError,
            "view['ipr_random'] must be a non-negative number, got -0.5",
        ),
        (
            lambda C7: C7.plot_emergence_view(_EVIEW, 0),
            ValueError,
            "n_fields must be a positive integer, got 0",
        ),
        (
            lambda C7: C7.plot_emergence_view(_EVIEW, 2, fig=3),
            TypeError,
            "fig must be None or a matplotlib Figure, got int",
        ),
        (
            lambda C7: C7.emergence_explorer([_EVIEW]),
            TypeError,
            "views must be a dict {(gain, width): view}, got list",
        ),
        (
            lambda C7: C7.emergence_explorer({}),
            ValueError,
            "views must hold at least one entry {(gain, width): view}, got an empty one",
        ),
        (
            lambda C7: C7.emergence_explorer({1.0: _EVIEW}),
            TypeError,
            "views: each key must be a pair (gain, width), got 1.0",
        ),
        (
            lambda C7: C7.emergence_explorer({(1.0, 3, 0): _EVIEW}),
            TypeError,
            "views: each key must be a pair (gain, width), got (1.0, 3, 0)",
        ),
        (
            lambda C7: C7.emergence_explorer({(-1.0, 3): _EVIEW}),
            ValueError,
            "views: the gain of (-1.0, 3) must be a non-negative number, got -1",
        ),
        (
            lambda C7: C7.emergence_explorer({(1.0, 0): _EVIEW}),
            ValueError,
            "views: the width of (1.0, 0) must be a positive integer, got 0",
        ),
        (
            lambda C7: C7.emergence_explorer({(1.0, 3): dict(_EVIEW, width=-1)}),
            ValueError,
            "views[(1.0, 3)]['width'] must be a positive integer, got -1",
        ),
        (
            lambda C7: C7.emergence_views("ab", 2, D=8),
            TypeError,
            "gains must be a non-empty sequence of numbers, got 'ab'",
        ),
        (
            lambda C7: C7.emergence_views([], 2, D=8),
            ValueError,
            "gains must be a non-empty sequence of numbers, got an empty one",
        ),
        (
            lambda C7: C7.emergence_views([-1.0], 2, D=8),
            ValueError,
            "gains[0] must be a non-negative number, got -1",
        ),
        (
            lambda C7: C7.emergence_views([1.0, 1.0], 2, D=8),
            ValueError,
            "gains must be distinct (one view per gain), got [1.0, 1.0]",
        ),
        (
            lambda C7: C7.emergence_views([1.0], 2, D=8, n_train=1),
            ValueError,
            "n_train must be an integer >= 2, got 1",
        ),
        (
            lambda C7: C7.emergence_views([1.0], 2, D=1),
            ValueError,
            "D must be an integer >= 2, got 1",
        ),
        (
            lambda C7: C7.emergence_views([1.0], 2, D=8, n_top=0),
            ValueError,
            "n_top must be a positive integer <= 8, got 0",
        ),
        (
            lambda C7: C7.emergence_views([1.0], 2, D=8, n_top=9),
            ValueError,
            "n_top must be a positive integer <= 8, got 9",
        ),
    ],
)
def test_emergence_figure_argument_checks_give_the_name_and_the_expected_form(call, error, message):
    import matplotlib.pyplot as plt

    from agop_book import ch07_other_accounts as C7

    before = plt.get_fignums()
    with pytest.raises(error, match="^" + re.escape(message) + "$"):
        call(C7)
    assert plt.get_fignums() == before


def test_emergence_figure_argument_checks_accept_each_boundary_value():
    import matplotlib.pyplot as plt

    from agop_book import ch07_other_accounts as C7

    # ipr_random = 0 (its minimum) is drawn as a line at 0
    fig = C7.plot_emergence_ipr(_EROWS, _ESTATS, ipr_random=0.0)
    assert list(fig.axes[0].get_lines()[-1].get_ydata()) == [0.0, 0.0]
    plt.close(fig)
    # n_fields = 1, gain 0, width 1 and ipr_random 0 (their minimums)
    edge = dict(_EVIEW, gain=0.0, width=1, ipr_random=0.0)
    fig = C7.plot_emergence_view(edge, n_fields=1)
    assert len(fig.axes[0].get_lines()) == 1
    assert fig._suptitle.get_text().startswith("gain 0, width 1;")
    plt.close(fig)
    box = C7.emergence_explorer({(0.0, 1): edge})
    assert [(s.options, s.value) for s in box.children[0].children] == [((0.0,), 0.0), ((1,), 1)]
    plt.close("all")
    # n_train = 2 and D = 2 (their minimums), n_top = D (its maximum), gain 0
    views = C7.emergence_views([0.0], 2, D=2, n_train=2, n_top=2, steps=1, batch_size=2)
    assert list(views) == [(0.0, 2)] and tuple(views[0.0, 2]["eigvecs"].shape) == (2, 2)


# ---------------------------------------------------------------------------
# Hostile inputs, round 5


def _stream(E=1, n=20, D=4, seed=0):
    X = torch.randn(E, n, D, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return X, (X[..., 0] > 0).long()


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(steps=10**12), r"^steps must be .*<= 2147483647"),  # used to train for weeks
        (dict(width=10**12), r"^width: the networks would need"),  # the allocator's message
        # float32 networks: SGD's "value cannot be converted to type float without overflow"
        (dict(lr=1e300, optimizer="sgd", X=lambda X: X.float()), r"^lr must be .*<= 3\.4"),
        (dict(lr=1e30, optimizer="sgd", steps=20), r"^lr=1e\+30: training diverged"),  # NaN nets
        (dict(X=lambda X: X[:, :0], y=lambda y: y[:, :0]), r"^X must hold at least one example"),
    ],
)
def test_round5_train_two_layer_names_what_it_cannot_train(change, match):
    X, y = _stream()
    kw = dict(width=3, steps=3, lr=1e-2, batch_size=5)
    kw.update(change)
    X = kw.pop("X", lambda X: X)(X)
    y = kw.pop("y", lambda y: y)(y)
    with pytest.raises(ValueError, match=match):
        train_two_layer(X, y, **kw)


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: TwoLayerNets(torch.ones(1, 2, 3), torch.zeros(1, 3), torch.ones(1, 2)),
         ValueError, r"^b must be \(E, K\) = \(1, 2\)"),
        (lambda: TwoLayerNets(torch.ones(1, 2, 3), torch.zeros(1, 2), torch.ones(2)),
         ValueError, r"^a must be \(E, K\)"),
        (lambda: TwoLayerNets(torch.ones(2, 3), torch.zeros(1, 2), torch.ones(1, 2)),
         ValueError, r"^W must be \(E, K, D\)"),
        (lambda: TwoLayerNets(torch.ones(1, 2, 3), torch.zeros(1, 2), torch.ones(1, 2), "tanh"),
         ValueError, r"^activation must be one of 'relu', 'erf'"),
        (lambda: TwoLayerNets(torch.ones(1, 2, 3), torch.zeros(1, 2), torch.ones(1, 2),
                              W0=torch.ones(1, 2, 4)),
         ValueError, r"^W0 must have W's shape"),
        (lambda: TwoLayerNets([[[1.0]]], torch.zeros(1, 1), torch.ones(1, 1)),
         TypeError, r"^W must be a tensor"),
    ],
)  # fmt: skip
def test_round5_two_layer_nets_refuse_mismatched_parts(make, error, match):
    # used to build, then fail inside einsum (or compute with an unknown activation's phi)
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize(
    "X, match",
    [
        (torch.ones(5, 3, dtype=torch.float64), r"^X must be \(n, D\) or \(E, n, D\)"),
        (torch.ones(4, dtype=torch.float64), r"^X must be \(n, D\) or \(E, n, D\)"),
        (torch.ones(3, 5, 4, dtype=torch.float64), r"^X must be \(n, D\) or \(E, n, D\)"),
        (torch.ones(0, 4, dtype=torch.float64), r"^X must hold at least one input"),  # was NaN
    ],
)
def test_round5_two_layer_agop_names_inputs_that_do_not_fit(X, match):
    nets = random_nets(2, 3, 4, "erf")
    with pytest.raises(ValueError, match=match):
        two_layer_agop(nets, X)
    with pytest.raises(TypeError, match=r"^nets must be TwoLayerNets"):
        two_layer_agop(object(), torch.ones(5, 4))


def test_round5_a_gain_too_large_for_float64_is_named():
    # gain**2 used to raise OverflowError deep inside; at 1e150 (the cap) as at 1e8 the
    # inputs are signs, +-1 (erf saturated in float64)
    with pytest.raises(ValueError, match=r"^gain must be .*<= 1e\+150"):
        emergence_task(6, 16, gain=1e300, xi=(1.0, 2.0))
    X_cap, _ = emergence_task(6, 16, gain=1e150, xi=(1.0, 2.0), dtype=torch.float64)
    X_sign, _ = emergence_task(6, 16, gain=1e8, xi=(1.0, 2.0), dtype=torch.float64)
    assert torch.equal(X_cap, X_sign) and X_cap.abs().unique().tolist() == [1.0]


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(seeds=[0, 0]), r"^seeds must be distinct"),  # used to repeat the run
        (dict(n_test=0), r"^n_test must be a positive integer"),  # was "X is empty"
        (dict(nfa_draws=1), r"^nfa_draws must be an integer >= 2"),  # was "n_draws"
        (dict(steps=10**12), r"^steps must be .*<= 2147483647"),  # used to hang
    ],
)
def test_round5_emergence_sweep_names_a_bad_setting_before_training(change, match):
    kw = dict(D=8, n_train=40, n_test=20, width=2, steps=3, rfm_train=20, rfm_iter=1,
              shuffled=False, nfa_draws=2, seeds=[0])  # fmt: skip
    kw.update(change)
    with pytest.raises(ValueError, match=match):
        emergence_sweep([0.0], kw.pop("seeds"), **kw)


def test_round5_fc_ansatz_and_paired_difference_name_their_argument():
    W = torch.randn(3, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with pytest.raises(ValueError, match=r"^n_draws must be .*<= 2147483647"):
        C7.fc_ansatz(W, torch.eye(3, dtype=torch.float64), n_draws=10**12)  # used to hang
    with pytest.raises(TypeError, match=r"^a\[0\] must be a real number"):
        C7.paired_difference({0: "x", 1: 0.8}, {0: 0.5, 1: 0.5})  # was numpy's message
    with pytest.raises(ValueError, match=r"^b\[1\] must be a finite number"):
        C7.paired_difference({0: 0.9, 1: 0.8}, {0: 0.5, 1: math.nan})


# Hostile inputs, round 6


def test_view_of_names_a_zero_receptive_field():
    """A zero row of ``W`` has no participation ratio: ``view_of`` names ``W`` and the rows,
    not ``ipr``'s ``v``."""
    from agop_book.ch07_other_accounts import view_of

    W = torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 0], [0, 2.0, 0, 0], [0, 0, 0, 0]])
    with pytest.raises(ValueError, match=r"^W holds zero rows \[1, 3\]"):
        view_of(1.0, W, torch.eye(4))
    assert view_of(1.0, W[[0, 2]], torch.eye(4))["ipr_weights"].tolist() == [1.0, 1.0]
