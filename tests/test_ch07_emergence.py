"""Emergence through the AGOP: the network AGOP against autograd and against the package's
patch-AGOP, the localisation statistics on planted vectors, and the sweep's controls."""

from __future__ import annotations

import math

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
        (lambda C7: C7.summarise([], "rfm"), ValueError, "method='rfm', width=None: no row"),
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
