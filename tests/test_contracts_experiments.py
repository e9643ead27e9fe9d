"""Experiment bookkeeping on planted inputs with a known answer: which positions see the band,
which axis the empirical kernel sums over (and that float32 samples are averaged without
float32 round-off), how chains are pooled per seed, and which round's metric is reported when
validation keeps round 0."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from agop_book import ch07_other_accounts as rn
from agop_book.ch05_deep_convrfm import bars_in_noise, evaluate_methods

F64 = torch.float64
TINY = dict(n_train=8, n_test=6, sigma=1.0, temperature=0.1, n_steps=4, step_size=1e-3, every=1,
            rfm=False)  # fmt: skip


@pytest.mark.parametrize(
    "height, width, band, patch_size",
    [(8, 6, (0, 1), 3), (8, 5, (3, 4), 3), (6, 5, (5,), 2), (7, 5, (0, 6), 4)],
)
def test_band_positions_are_the_patches_that_overlap_the_band(height, width, band, patch_size):
    """Brute force: a patch position sees the band when its patch of an image that is 1 on the
    band rows and 0 elsewhere is not all zero (positions in row-major order)."""
    out = rn.width_sweep([2], [0], patch_size=patch_size,
                         task={"height": height, "width": width, "band": band}, **TINY)  # fmt: skip
    marker = torch.zeros(1, 1, height, width, dtype=F64)
    marker[..., list(band), :] = 1.0
    patches = torch.nn.functional.unfold(marker, patch_size)[0].T  # (P, k*k), row-major
    expected = (patches.abs().sum(1) > 0).numpy()
    assert out["grid"] == (height - patch_size + 1, width - patch_size + 1)
    np.testing.assert_array_equal(out["band_positions"], expected)
    assert out["Q"][2].shape == (1, len(expected))


def _spy_samples(monkeypatch):
    """Record the parameters of every sample ``sample_posterior`` keeps."""
    seen: list = []
    original = rn.langevin

    def spy(energy, params, *, callback=None, **kw):
        def record(t, p):
            seen.append((t, [q.detach().clone() for q in p]))
            callback(t, p)

        return original(energy, params, callback=record, **kw)

    monkeypatch.setattr(rn, "langevin", spy)
    return seen


def _brute_force_posterior(samples, X, X_test, target, patch_size):
    """Posterior means by explicit loops over chains, neurons and positions, in float64."""
    from agop.patches import extract_patches

    def g(W, V, x):  # g_c(x) = P^{-1/2} sum_i v_ci phi(w_c . x_i / sqrt q), for every c
        u = extract_patches(x[None].double(), patch_size)[0]  # (P, q)
        P, q = u.shape
        h = math.sqrt(2.0) * torch.relu(u @ W.double().T / math.sqrt(q))  # (P, N)
        return (V.double() * h).sum(0) / math.sqrt(P)

    S, N = samples[0][0].shape[0], samples[0][0].shape[1]
    n, m = X.shape[1], X_test.shape[1]
    kernel, Q = torch.zeros(S, n, n, dtype=F64), torch.zeros(S, samples[0][1].shape[1], dtype=F64)
    test, loss = torch.zeros(S, m, dtype=F64), torch.zeros(S, dtype=F64)
    for W, V in samples:
        for s in range(S):
            G = torch.stack([g(W[s], V[s], x) for x in X[s]])  # (n, N)
            for a in range(n):
                for b in range(n):
                    kernel[s, a, b] += sum(G[a, c] * G[b, c] for c in range(N)) / N
            Q[s] += (V[s].double() ** 2).mean(1)
            f_test = torch.stack([g(W[s], V[s], x).sum() / math.sqrt(N) for x in X_test[s]])
            test[s] += f_test
            f = G.sum(1) / math.sqrt(N)
            loss[s] += ((target[s] - f) ** 2).mean()
    k = len(samples)
    return kernel / k, Q / k, test / k, loss / k


@pytest.mark.parametrize("dtype, rtol", [(torch.float64, 1e-12), (torch.float32, 2e-6)])
def test_posterior_averages_against_explicit_loops(monkeypatch, dtype, rtol):
    """The empirical kernel :math:`\\frac1N \\sum_c g_c(x) g_c(x')` sums over neurons ``c``
    (not positions), ``Q_i`` averages :math:`v_{ci}^2` over neurons, for every kept sample;
    float32 samples are averaged without float32 round-off (the tolerance sees it)."""
    seen = _spy_samples(monkeypatch)
    X, y = rn.band_task(5, 0.5, height=5, width=5, seed=0)
    Xt, _ = rn.band_task(3, 0.5, height=5, width=5, seed=1)
    X2, y2 = torch.stack([X, X.flip(0)]), torch.stack([y, y.flip(0)])
    Xt2 = torch.stack([Xt, Xt])
    post = rn.sample_posterior(X2, y2, Xt2, width=3, patch_size=3, temperature=0.5, n_steps=60,
                               step_size=1e-2, burn_in=20, every=2, seed=3, dtype=dtype)  # fmt: skip
    kept = [p for t, p in seen if t >= 20 and (t - 20) % 2 == 0]
    assert post.n_samples == len(kept) == 20
    target = 2.0 * y2.double() - 1
    kernel, Q, test, loss = _brute_force_posterior(kept, X2.to(dtype), Xt2.to(dtype), target, 3)
    # float32 samples: each sample's value carries float32 round-off (relative 1e-7), the sum of
    # 20 samples in float32 would add ~1e-6 on top; in float64 it adds nothing
    torch.testing.assert_close(post.kernel, kernel, rtol=rtol, atol=0)
    torch.testing.assert_close(post.Q, Q, rtol=rtol, atol=0)
    torch.testing.assert_close(post.test_mean, test, rtol=rtol, atol=rtol * float(test.abs().max()))
    torch.testing.assert_close(post.train_loss, loss, rtol=rtol, atol=0)


def test_chains_are_pooled_per_seed(monkeypatch):
    """Planted posterior: each chain returns exp(its data set's first pixel) as ``Q`` and
    ``test_mean``, so pooling the ``chains`` chains of a seed must give back that seed's pixel
    (chains of different seeds mixed in a pool would average different pixels)."""
    chains, seeds = 3, [0, 1, 2]
    task = {"height": 5, "width": 5, "band": (0,)}

    def fake(X, y, X_test, *, width, patch_size, seed, **kw):
        S = X.shape[0]
        first = X[:, 0, 0, 0, 0].double().exp()  # identifies the data set; Q_i > 0
        P = 1 if patch_size is None else 9
        return rn.Posterior(
            test_mean=first[:, None].expand(S, X_test.shape[1]).clone(),
            Q=first[:, None].expand(S, P).clone(),
            kernel=torch.eye(X.shape[1], dtype=F64).expand(S, -1, -1).clone(),
            train_loss=first,
            n_samples=5,
            Q_trace=first[:, None, None].expand(S, 5, P).clone(),
            test_trace=first[:, None, None].expand(S, 5, min(100, X_test.shape[1])).clone(),
        )

    monkeypatch.setattr(rn, "sample_posterior", fake)
    out = rn.width_sweep([2], seeds, chains=chains, task=task, **TINY)
    pixels = []
    for seed in seeds:  # each seed's images divided by their own standard deviation
        X, _ = rn.band_task(TINY["n_train"], TINY["sigma"], seed=seed, **task)
        pixels.append(math.exp(float(X[0, 0, 0, 0] / X.std())))
    np.testing.assert_allclose(out["Q"][2], np.array(pixels)[:, None].repeat(9, 1), rtol=1e-6)
    np.testing.assert_allclose(out["Q_fc"][2], pixels, rtol=1e-6)


def test_the_reported_metric_is_the_kept_rounds():
    """A planted case where validation keeps round 0 of both layers: ConvRFM *is* the CNTK then
    (same test accuracy, same validation accuracy), and every layer reports its kept round."""
    X, y = bars_in_noise(30, sigma=3.0, height=7, width=7, seed=0, dtype=F64)
    Xt, yt = bars_in_noise(30, sigma=3.0, height=7, width=7, seed=100, dtype=F64)
    out = evaluate_methods(X, y, Xt, yt, seed=0, depth=2, patch_size=3, width=4, n_iter=2,
                           methods=("CNTK", "ConvRFM", "Deep ConvRFM"), agop_samples=8,
                           device="cpu")  # fmt: skip
    deep = out["models"]["Deep ConvRFM"]
    assert [layer.best_iter_ for layer in deep.layers_] == [0, 0]  # the planted case
    first = deep.layers_[0]
    assert first.history_[1]["val_acc"] < first.history_[0]["val_acc"]  # a later round is worse
    assert out["accuracy"]["ConvRFM"] == out["accuracy"]["CNTK"] == out["layers"][0]
    assert out["val_layers"][1] == out["val_layers"][0] == first.history_[0]["val_acc"]
    X_layers = list(deep._layer_inputs(Xt))
    for l, layer in enumerate(deep.layers_):
        kept = layer.best_iter_
        assert out["val_layers"][l + 1] == layer.history_[kept]["val_acc"]
        assert deep.history_[l]["val_acc"] == layer.history_[kept]["val_acc"]
        assert out["layers"][l + 1] == layer.score_iterations(X_layers[l], yt)[kept]
    assert out["accuracy"]["Deep ConvRFM"] == out["layers"][2]
