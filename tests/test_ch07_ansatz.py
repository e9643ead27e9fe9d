"""Chapter 07's fully connected base case of the neural feature ansatz (``fc_ansatz``, on a
planted first layer with a closed-form answer and against brute-force Haar draws), the inner
matrix of a two-layer network, online SGD, and the paired differences over seeds."""

from __future__ import annotations

import math

import pytest
import torch

from agop.features import haar_rotations
from agop.linalg import correlation, psd_power
from agop_book.ch07_other_accounts import (
    EmergenceResult,
    TwoLayerNets,
    emergence_sweep,
    emergence_task,
    fc_ansatz,
    paired_difference,
    train_two_layer,
    two_layer_agop,
    two_layer_inner,
)

F64 = torch.float64


def all_active_relu(W, a):
    """ReLU units with a bias so large that every unit is active on inputs in [0, 1): phi' = 1."""
    return TwoLayerNets(W[None], torch.full((1, W.shape[0]), 100.0, dtype=F64), a[None], "relu")


def test_inner_matrix_of_all_active_relu_units_is_the_readout_outer_product():
    g = torch.Generator().manual_seed(0)
    W = torch.randn(3, 5, generator=g, dtype=F64)
    a = torch.tensor([2.0, -1.0, 0.5], dtype=F64)
    X = torch.rand(7, 5, generator=g, dtype=F64)
    G = two_layer_inner(all_active_relu(W, a), X)[0]
    torch.testing.assert_close(G, torch.outer(a, a), rtol=0, atol=1e-12)


def test_fc_ansatz_on_a_planted_layer_has_its_closed_form():
    """W = the first 3 rows of I_6 and a = e_1: W^T W is the projection on the first three sites
    and the AGOP is e_1 e_1^T (a projection too, so every power is itself). Over the 36 entries,
    Pearson = (36 * 1 - 3 * 1) / sqrt((36 * 3 - 9) (36 * 1 - 1)) = 33 / sqrt(3465)."""
    W = torch.eye(3, 6, dtype=F64)
    a = torch.tensor([1.0, 0.0, 0.0], dtype=F64)
    G = two_layer_inner(all_active_relu(W, a), torch.rand(4, 6, dtype=F64))[0]
    out = fc_ansatz(W, G, n_draws=5)
    expected = 33 / math.sqrt(3465)
    for p in (1.0, 0.5):
        assert out[p]["trained"] == pytest.approx(expected, abs=1e-12)
        assert out[p]["margin"] == pytest.approx(expected - out[p]["null_mean"], abs=1e-15)


def test_fc_ansatz_null_is_the_spectrum_in_haar_random_bases():
    """Brute force: draw d rotates G's eigenvalues by O_d = haar(B_d), B_d the d-th 1 x 3 x 3
    Gaussian draw of a generator seeded with the seed; the q x q matrices built explicitly."""
    g = torch.Generator().manual_seed(1)
    W = torch.randn(3, 7, generator=g, dtype=F64)
    G = torch.diag(torch.tensor([3.0, 2.0, 0.5], dtype=F64))
    lam = torch.linalg.eigvalsh(G)
    out = fc_ansatz(W, G, n_draws=6, seed=4)
    for p in (1.0, 0.5):
        draws = torch.Generator().manual_seed(4)
        values = []
        for _ in range(6):
            O = haar_rotations(torch.randn(1, 3, 3, generator=draws, dtype=F64))[0]
            values.append(correlation(W.T @ W, psd_power(W.T @ (O * lam) @ O.T @ W, p)))
        t = torch.tensor(values, dtype=F64)
        trained = correlation(W.T @ W, psd_power(W.T @ G @ W, p))
        assert out[p]["trained"] == pytest.approx(trained, abs=1e-10)
        assert out[p]["null_mean"] == pytest.approx(float(t.mean()), abs=1e-10)
        assert out[p]["null_sd"] == pytest.approx(float(t.std()), abs=1e-10)


def test_fc_ansatz_refuses_what_it_cannot_measure():
    W = torch.randn(3, 5, dtype=F64)
    with pytest.raises(ValueError, match=r"G must be the \(3, 3\) inner matrix"):
        fc_ansatz(W, torch.eye(4, dtype=F64))
    with pytest.raises(ValueError, match="W is zero"):
        fc_ansatz(torch.zeros(3, 5), torch.eye(3))
    with pytest.raises(ValueError, match="W must be a first layer"):
        fc_ansatz(W[None], torch.eye(3))
    with pytest.raises(ValueError, match="powers"):
        fc_ansatz(W, torch.eye(3, dtype=F64), powers=(2.0,))
    with pytest.raises(ValueError, match="G must be a non-zero positive semi-definite"):
        fc_ansatz(W, -torch.eye(3, dtype=F64))


def test_online_sgd_is_plain_gradient_steps_on_consecutive_fresh_examples():
    """Against a by-hand reference: the start drawn as train_two_layer documents it, then
    theta <- theta - lr grad L on examples 0-1, then on examples 2-3 (never an example twice)."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(1, 9, 4, generator=g, dtype=F64)
    y = (X[..., 0] > 0).long()
    lr, init_scale = 0.3, 0.5
    nets = train_two_layer(X, y, width=3, steps=2, lr=lr, batch_size=2, init_scale=init_scale,
                           activation="erf", optimizer="sgd", online=True, seed=[5])  # fmt: skip
    start = torch.Generator().manual_seed(5)
    W = (init_scale / 2) * torch.randn(3, 4, generator=start, dtype=F64)
    a = torch.randn(3, generator=start, dtype=F64) / math.sqrt(3)
    b = torch.zeros(3, dtype=F64)
    for t in range(2):
        params = [p.clone().requires_grad_() for p in (W, b, a)]
        x, target = X[0, 2 * t : 2 * t + 2], 2.0 * y[0, 2 * t : 2 * t + 2] - 1
        f = torch.erf((x @ params[0].T + params[1]) / math.sqrt(2)) @ params[2]
        grads = torch.autograd.grad(((f - target) ** 2).mean(), params)
        W, b, a = (p.detach() - lr * q for p, q in zip(params, grads, strict=True))
    torch.testing.assert_close(nets.W[0], W, rtol=0, atol=1e-12)
    torch.testing.assert_close(nets.a[0], a, rtol=0, atol=1e-12)
    torch.testing.assert_close(nets.initial().W, nets.W0)
    with pytest.raises(ValueError, match="2 x 5 = 10 fresh examples per network, but X holds 9"):
        train_two_layer(X, y, width=3, steps=2, batch_size=5, online=True)
    with pytest.raises(ValueError, match="optimizer"):
        train_two_layer(X, y, width=3, steps=1, optimizer="rmsprop")


def test_sweep_measures_the_ansatz_of_each_network_against_its_own_agop():
    """The sweep's first network, retrained alone (a network does not depend on those trained
    with it), and its AGOP taken by two_layer_agop over the same training inputs."""
    res = emergence_sweep([3.0], [0, 1], D=8, n_train=200, n_test=50, width=4, steps=40,
                          lr=1e-2, batch_size=20, rfm_train=50, rfm_iter=1, nfa_draws=3,
                          dtype=F64)  # fmt: skip
    row = next(r for r in res.rows if r["seed"] == 0 and r["labels"] == "true")
    X, y = emergence_task(250, 8, gain=3.0, xi=(1.0, 2.0), seed=0, dtype=F64)
    net = train_two_layer(X[None, :200], y[None, :200], width=4, steps=40, lr=1e-2,
                          batch_size=20, activation="erf", seed=[0])  # fmt: skip
    W, A = net.W[0], two_layer_agop(net, X[:200])[0]
    torch.testing.assert_close(res.examples[(3.0, "true")]["W"], W)
    assert row["nfa"] == pytest.approx(correlation(W.T @ W, A), abs=1e-9)
    assert row["nfa_half"] == pytest.approx(correlation(W.T @ W, psd_power(A, 0.5)), abs=1e-9)
    W0 = net.W0[0]
    A0 = two_layer_agop(net.initial(), X[:200])[0]
    assert row["nfa_init"] == pytest.approx(correlation(W0.T @ W0, A0), abs=1e-9)


def test_sweep_online_trains_on_a_stream_and_pairs_the_seeds():
    common = dict(D=8, n_train=100, n_test=50, width=4, steps=30, batch_size=10, lr=0.1,
                  rfm_train=50, rfm_iter=1, nfa_draws=2, shuffled=False)  # fmt: skip
    online = emergence_sweep([3.0], [0, 1], optimizer="sgd", online=True, **common)
    assert online.settings["optimizer"] == "sgd" and online.settings["online"] is True
    adam = emergence_sweep([3.0], [0, 1], **common)
    mean, sd = paired_difference(online.per_seed("ipr_delta", 3.0), adam.per_seed("ipr_delta", 3.0))
    d = [online.per_seed("ipr_delta", 3.0)[s] - adam.per_seed("ipr_delta", 3.0)[s] for s in (0, 1)]
    assert mean == pytest.approx(sum(d) / 2) and sd == pytest.approx(
        abs(d[0] - d[1]) / math.sqrt(2)
    )


def test_paired_difference_pairs_by_seed_not_by_order():
    a, b = {0: 1.0, 1: 5.0, 2: 3.0}, {2: 3.0, 0: 0.0, 1: 5.0}  # differences 1, 0, 0
    mean, sd = paired_difference(a, b)
    assert mean == pytest.approx(1 / 3) and sd == pytest.approx(math.sqrt(1 / 3))
    with pytest.raises(ValueError, match="same seeds"):
        paired_difference(a, {0: 1.0, 1: 2.0})
    with pytest.raises(ValueError, match="at least 2 seeds"):
        paired_difference({0: 1.0}, {0: 2.0})
    with pytest.raises(TypeError, match="seed to its value"):
        paired_difference([1.0, 2.0], [1.0, 2.0])


def test_per_seed_selects_the_gain_and_the_labels():
    rows = [{"gain": g, "labels": lab, "seed": s, "x": 10 * g + s + (lab == "shuffled") * 100}
            for g in (0.0, 1.0) for lab in ("true", "shuffled") for s in (0, 1)]  # fmt: skip
    res = EmergenceResult(rows, {}, {})
    assert res.per_seed("x", 1.0) == {0: 10.0, 1: 11.0}
    assert res.per_seed("x", 0.0, "shuffled") == {0: 100.0, 1: 101.0}
    with pytest.raises(KeyError, match="gain=2.0"):
        res.per_seed("x", 2.0)


# Mutation testing (`python tools/mutation.py other_accounts`, CONTRIBUTING.md): fc_ansatz's
# defaults, its float64 arithmetic whatever the input dtype, and its arguments' names.


def _haar_null_mean(W, G, p, n_draws, seed):
    draws = torch.Generator().manual_seed(seed)
    lam = torch.linalg.eigvalsh(G)
    values = []
    for _ in range(n_draws):
        O = haar_rotations(torch.randn(1, 3, 3, generator=draws, dtype=F64))[0]
        values.append(correlation(W.T @ W, psd_power(W.T @ (O * lam) @ O.T @ W, p)))
    return float(torch.tensor(values, dtype=F64).mean())


def test_fc_ansatz_defaults_are_20_draws_from_seed_0():
    g = torch.Generator().manual_seed(2)
    W = torch.randn(3, 6, generator=g, dtype=F64)
    G = torch.diag(torch.tensor([2.0, 1.0, 0.25], dtype=F64))
    out = fc_ansatz(W, G)
    assert sorted(out) == [0.5, 1.0]
    for p in (1.0, 0.5):
        assert out[p]["null_mean"] == pytest.approx(_haar_null_mean(W, G, p, 20, 0), abs=1e-10)


def test_fc_ansatz_computes_in_float64_whatever_the_input_dtype():
    """float32 (and integer) inputs are exact in float64: the same answer as float64 inputs,
    to the last bit, not a float32 computation's. G is symmetrised in float64: its entries
    1 + 2^-23 and 1 average to 1 + 2^-24, which float32 rounds to 1."""
    g = torch.Generator().manual_seed(3)
    W = torch.randn(3, 6, generator=g).mul(8).round()  # integers, exact in every dtype
    u = 2.0**-23
    G = torch.tensor([[3.0, 1.0 + u, 0.0], [1.0, 2.0, 0.5], [0.0, 0.5 + u, 1.0]])
    ref = fc_ansatz(W.double(), G.double(), n_draws=3)
    rounded = fc_ansatz(W.double(), ((G.double() + G.double().T) / 2).float(), n_draws=3)
    assert rounded[1.0]["trained"] != ref[1.0]["trained"]  # the test can tell them apart
    for Wx, Gx in ((W, G), (W.long(), G)):
        out = fc_ansatz(Wx, Gx, n_draws=3)
        for p in (1.0, 0.5):
            assert out[p] == ref[p]


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"W": torch.tensor([[1.0, float("nan")]] * 3)}, ValueError, "^W contains 3 non-finite"),
        ({"W": torch.ones(3, 2, dtype=torch.complex128)}, TypeError, "^W must be real"),
        ({"G": torch.full((3, 3), float("inf"))}, ValueError, "^G contains 9 non-finite"),
        ({"G": torch.eye(3, dtype=torch.complex128)}, TypeError, "^G must be real"),
        ({"powers": 0.5}, TypeError, "^powers must be a non-empty sequence"),
        ({"powers": (1.0, -0.5)}, ValueError, r"^powers\[1\] must be a non-negative number"),
        ({"powers": (0.0,)}, ValueError, r"^powers must hold powers in \(0, 1\]"),
        ({"powers": (0.5, 0.0)}, ValueError, r"^powers must hold powers in \(0, 1\]"),
        ({"n_draws": 1}, ValueError, "^n_draws must be an integer >= 2 and <= 2147483647, got 1"),
        ({"n_draws": 2.0}, TypeError, "^n_draws must be an integer"),
    ],
)
def test_fc_ansatz_arguments_are_refused_by_name(kwargs, error, match):
    args = {"W": torch.eye(3, 2, dtype=F64) + 1, "G": torch.eye(3, dtype=F64), **kwargs}
    with pytest.raises(error, match=match):
        fc_ansatz(args.pop("W"), args.pop("G"), **args)


def test_paired_difference_refuses_either_side_not_a_mapping():
    for a, b in (({0: 1.0, 1: 2.0}, [1.0, 2.0]), ([1.0, 2.0], {0: 1.0, 1: 2.0})):
        with pytest.raises(TypeError, match="^a and b must map each seed to its value"):
            paired_difference(a, b)
