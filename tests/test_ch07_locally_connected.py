"""The locally connected network and the CNN's kernel with full overlaps Q_ij."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from one_chain import one_chain

from agop_book.ch07_other_accounts import (
    LocallyConnected,
    band_task,
    local_kernel,
    network_output,
    nngp_components,
    overlap_kernel,
    width_sweep,
)

F64 = torch.float64


def test_locally_connected_is_an_explicit_per_position_loop():
    """Each position's patch goes through its own filters: f = (NP)^-1/2 sum_ic v_ic phi(w_ic.x_i/sqrt q)."""
    g = torch.Generator().manual_seed(0)
    c, H, Wd, k, N = 2, 4, 5, 3, 3
    net = LocallyConnected(c, H, Wd, patch_size=k, width=N, seed=1).double()
    X = torch.randn(4, c, H, Wd, generator=g, dtype=F64)
    positions = [(a, b) for a in range(H - k + 1) for b in range(Wd - k + 1)]
    out = net(X)
    q, P = c * k * k, len(positions)
    for m in range(X.shape[0]):
        total = 0.0
        for i, (a, b) in enumerate(positions):
            patch = X[m, :, a : a + k, b : b + k].reshape(-1)
            for ch in range(N):
                pre = float(net.weight[i, ch].detach() @ patch) / math.sqrt(q)
                total += float(net.readout[i, ch].detach()) * math.sqrt(2) * max(pre, 0.0)
        assert out[m].item() == pytest.approx(total / math.sqrt(N * P), rel=1e-12)


def test_batched_locally_connected_output_matches_the_module():
    g = torch.Generator().manual_seed(3)
    nets = [LocallyConnected(1, 5, 4, patch_size=3, width=2, seed=s).double() for s in (0, 1)]
    X = torch.randn(2, 3, 1, 5, 4, generator=g, dtype=F64)
    U = torch.stack([torch.nn.functional.unfold(x, 3).transpose(1, 2) for x in X])
    W = torch.stack([n.weight.detach() for n in nets])
    V = torch.stack([n.readout.detach() for n in nets])
    out = network_output(W, V, U)
    for s in range(2):
        torch.testing.assert_close(out[s], nets[s](X[s]).detach(), rtol=1e-12, atol=0)


def test_locally_connected_bad_arguments_raise():
    with pytest.raises(ValueError, match="patch_size"):
        LocallyConnected(1, 2, 4, patch_size=3, width=2)
    net = LocallyConnected(1, 4, 4, patch_size=3, width=2)
    with pytest.raises(ValueError, match="patches"):
        net(torch.randn(2, 1, 5, 5))
    X, y = band_task(6, 1.0, height=4, width=4, seed=0)
    with pytest.raises(ValueError, match="patch_size"):
        one_chain(X, y, patch_size=None, shared=False)
    with pytest.raises(TypeError, match="shared"):
        one_chain(X, y, shared=1)


def test_locally_connected_prior_covariance_is_the_cnn_nngp():
    """Independent filters per position: E f(x) f(x') is still the mean of the components."""
    X, _ = band_task(3, 1.0, height=4, width=5, seed=0)
    U = torch.nn.functional.unfold(X, 3).transpose(1, 2)
    g = torch.Generator().manual_seed(2)
    S, N, P = 20_000, 3, U.shape[1]
    W = torch.randn(S, P, N, 9, generator=g, dtype=F64)
    V = torch.randn(S, P, N, generator=g, dtype=F64)
    f = network_output(W, V, U.expand(S, -1, -1, -1))
    K = nngp_components(X, patch_size=3).mean(0)
    torch.testing.assert_close(f.T @ f / S, K, atol=0.05 * float(K.max()), rtol=0)


def test_overlap_kernel_is_the_covariance_over_filters_at_fixed_readout():
    """Planted read-out v of one filter (strong off-diagonal overlaps): averaging f(x) f(z)
    over many draws of the filter gives (1/P) sum_ij Q_ij kappa(x_i, z_j), Q = v v^T."""
    X, _ = band_task(3, 1.0, height=4, width=4, seed=1)
    U = torch.nn.functional.unfold(X, 3).transpose(1, 2)
    g = torch.Generator().manual_seed(5)
    N, S = 1, 40_000
    v = torch.tensor([[1.0], [1.5], [1.0], [0.5]], dtype=F64)  # (P, N)
    W = torch.randn(S, N, 9, generator=g, dtype=F64)
    f = network_output(W, v.expand(S, -1, -1), U.expand(S, -1, -1, -1))
    K = overlap_kernel(X, None, v @ v.T / N, 3)
    torch.testing.assert_close(f.T @ f / S, K, atol=0.03 * float(K.abs().max()), rtol=0)
    diag = local_kernel(nngp_components(X, None, 3), (v * v).sum(1) / N)
    assert float((K - diag).abs().max()) > 0.2 * float(K.abs().max())  # the overlaps matter here


def test_overlap_kernel_between_sets_matches_a_pair_loop():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(3, 1, 4, 4, generator=g, dtype=F64)
    Z = torch.randn(2, 1, 4, 4, generator=g, dtype=F64)
    Q = torch.randn(4, 4, generator=g, dtype=F64)
    ux, uz = (torch.nn.functional.unfold(t, 3).transpose(1, 2) for t in (X, Z))
    K = overlap_kernel(X, Z, Q, 3)
    for a in range(3):
        for b in range(2):
            total = 0.0
            for i in range(4):
                for j in range(4):
                    x, z = ux[a, i], uz[b, j]
                    sx, sz = float(x @ x) / 9, float(z @ z) / 9
                    cos = max(-1.0, min(1.0, float(x @ z) / 9 / math.sqrt(sx * sz)))
                    th = math.acos(cos)
                    kap = math.sqrt(sx * sz) / math.pi * (math.sin(th) + (math.pi - th) * cos)
                    total += float(Q[i, j]) * kap
            assert K[a, b].item() == pytest.approx(total / 4, rel=1e-10)
    stack = torch.stack([Q, Q.T, torch.eye(4, dtype=F64)])
    for b, one in enumerate(overlap_kernel(X, Z, stack, 3)):  # a stack: one kernel each
        torch.testing.assert_close(one, overlap_kernel(X, Z, stack[b], 3), rtol=1e-12, atol=0)
    with pytest.raises(ValueError, match="Q must be"):
        overlap_kernel(X, Z, Q[:3, :3], 3)


def test_posterior_records_the_full_overlaps():
    """Q_pairs is the mean of V V^T / N over the samples; its diagonal is Q."""
    X, y = band_task(8, 1.0, height=4, width=4, seed=0)
    post = one_chain(X, y, width=3, n_steps=12, burn_in=4, every=2)
    torch.testing.assert_close(post.Q_pairs.diagonal(dim1=1, dim2=2), post.Q, rtol=1e-6, atol=0)
    assert torch.allclose(post.Q_pairs, post.Q_pairs.transpose(1, 2))
    assert float(post.Q_pairs[0].diagonal().sum()) > 0
    assert float((post.Q_pairs[0] - torch.diag(post.Q[0])).abs().max()) > 1e-3


def test_width_sweep_measures_what_the_off_diagonal_overlaps_change():
    """The reported kernel change is ||K_full - K_diag|| / ||K_diag|| recomputed from the
    returned Q_pairs; the LCN is sampled and reported beside the CNN."""
    out = width_sweep(
        [3],
        [0],
        n_train=10,
        n_test=6,
        sigma=1.0,
        temperature=0.1,
        n_steps=20,
        step_size=1e-3,
        every=2,
        rfm=False,
        locally_connected=True,
        task={"height": 4, "width": 4, "band": (0,)},
        dtype=F64,
    )
    X, _ = band_task(10, 1.0, height=4, width=4, band=(0,), seed=0)
    X = X / X.std()
    Q = torch.as_tensor(out["Q_pairs"][3][0])
    full = overlap_kernel(X, None, Q, 3)
    diag = local_kernel(nngp_components(X, None, 3), Q.diagonal())
    want = float(torch.linalg.norm(full - diag) / torch.linalg.norm(diag))
    assert out["off_diagonal"][3]["kernel"][0] == pytest.approx(want, rel=1e-9)
    assert want > 1e-3
    assert {r["network"] for r in out["convergence"]} == {"CNN", "FC", "LCN"}
    assert out["Q_lcn"][3].shape == (1, 4) and "LCN" in out["test_mean"][3]
    assert not np.allclose(out["Q_lcn"][3], out["Q"][3])


def test_sampler_without_sharing_starts_from_a_locally_connected_prior_draw():
    """shared=False: the start is W0 (P, N, q), one filter bank per position, then V0 (P, N),
    from the seed's generator; a negligible step leaves the outputs at that network's."""
    X, y = band_task(6, 1.0, height=4, width=5, seed=0)
    U = torch.nn.functional.unfold(X, 3).transpose(1, 2)
    g = torch.Generator().manual_seed(4)
    W0 = torch.randn(1, U.shape[1], 3, 9, generator=g, dtype=F64)
    V0 = torch.randn(1, U.shape[1], 3, generator=g, dtype=F64)
    post = one_chain(X, y, width=3, shared=False, n_steps=1, step_size=1e-14, seed=4)
    want = network_output(W0, V0, U[None])
    torch.testing.assert_close(post.test_mean, want, rtol=0, atol=1e-5 * float(want.abs().max()))


# Hostile inputs


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(width=10**12), ValueError, "width, channels, height, width_px, patch_size: the"),
        (dict(height=0), ValueError, "height must be a positive"),
        (dict(width_px=2.0), TypeError, "width_px must be an integer"),
        (dict(patch_size=5), ValueError, "patch_size must be at most"),
        (dict(seed=-1), ValueError, "seed must"),
    ],
)
def test_hostile_inputs_are_refused_by_name(kwargs, error, match):
    import agop_book.ch07_other_accounts as C7

    options = dict(channels=1, height=4, width_px=4, patch_size=3, width=2, seed=0)
    with pytest.raises(error, match=f"^{match}"):
        C7.LocallyConnected(**{**options, **kwargs})


# Mutation testing (`python tools/mutation.py other_accounts`, CONTRIBUTING.md): the module's
# seed and argument names; overlap_kernel's default patch, dtypes and names.


def test_locally_connected_default_seed_and_arguments():
    net, ref = (
        LocallyConnected(1, 4, 5, patch_size=3, width=2),
        LocallyConnected(1, 4, 5, patch_size=3, width=2, seed=0),
    )
    assert torch.equal(net.weight, ref.weight) and torch.equal(net.readout, ref.readout)
    assert not torch.equal(LocallyConnected(1, 4, 5, patch_size=3, width=2, seed=1).weight,
                           net.weight)  # fmt: skip
    # a patch as large as the image: one position per row of patches
    whole = LocallyConnected(1, 3, 4, patch_size=3, width=2)
    assert whole.weight.shape == (2, 2, 9)
    for kwargs, match in (
        ({"channels": 0}, "^channels must be a positive integer"),
        ({"width": 0}, "^width must be a positive integer"),
        ({"patch_size": 0}, "^patch_size must be a positive integer"),
    ):
        args = {"channels": 1, "width": 2, "patch_size": 3, **kwargs}
        with pytest.raises(ValueError, match=match):
            LocallyConnected(args.pop("channels"), 4, 5, **args)


def test_overlap_kernel_default_patch_and_overlaps_of_any_dtype():
    X = torch.randn(3, 1, 5, 5, generator=torch.Generator().manual_seed(0), dtype=F64)
    Q = torch.eye(9, dtype=F64) + 0.25
    ref = overlap_kernel(X, None, Q, patch_size=3)
    assert torch.equal(overlap_kernel(X, None, Q), ref)  # 3 x 3 patches by default
    torch.testing.assert_close(overlap_kernel(X, None, Q.tolist()), ref)  # a list: float64
    torch.testing.assert_close(overlap_kernel(X, None, Q.float()), ref)
    bad = Q.clone()
    bad[0, 1] = float("nan")
    with pytest.raises(ValueError, match="^Q contains 1 non-finite"):
        overlap_kernel(X, None, bad)


def test_nngp_patches_of_one_pixel_the_whole_image_and_the_largest_square():
    """``_patches`` through ``nngp_components``: with 1 x 1 patches the ReLU NNGP of two pixels
    is ``max(x z, 0)`` (theta is 0 or pi); ``None`` is one patch of every channel and pixel;
    a patch may be as large as the image's shorter side, not larger."""
    g = torch.Generator().manual_seed(1)
    X = torch.randn(2, 2, 3, 5, generator=g, dtype=F64)
    Z = torch.randn(3, 2, 3, 5, generator=g, dtype=F64)
    K = nngp_components(X, Z, patch_size=1)
    assert K.shape == (15, 2, 3)  # one position per pixel, q = 2 channels
    x, z = X.flatten(2).permute(2, 0, 1), Z.flatten(2).permute(2, 0, 1)  # (15, n, 2)
    S = torch.einsum("pnc,pmc->pnm", x, z) / 2
    Sx, Sz = (x * x).sum(-1) / 2, (z * z).sum(-1) / 2
    cos = (S / (Sx[:, :, None] * Sz[:, None, :]).sqrt()).clamp(-1, 1)
    theta = torch.arccos(cos)
    want = (
        (Sx[:, :, None] * Sz[:, None, :]).sqrt()
        / math.pi
        * (torch.sin(theta) + (math.pi - theta) * cos)
    )
    torch.testing.assert_close(K, want, rtol=1e-10, atol=1e-12)
    one = nngp_components(X[:, :1], Z[:, :1], patch_size=1)  # one channel: max(x z, 0)
    torch.testing.assert_close(one, (x[..., 0, None] * z[..., 0][:, None, :]).clamp_min(0)
                               .reshape(15, 2, 3), rtol=1e-10, atol=1e-12)  # fmt: skip
    whole = nngp_components(X, Z, patch_size=None)
    u, v = X.flatten(1), Z.flatten(1)
    S, Su, Sv = u @ v.T / 30, (u * u).sum(1) / 30, (v * v).sum(1) / 30
    cos = (S / (Su[:, None] * Sv[None, :]).sqrt()).clamp(-1, 1)
    theta = torch.arccos(cos)
    want = (
        (Su[:, None] * Sv[None, :]).sqrt() / math.pi * (torch.sin(theta) + (math.pi - theta) * cos)
    )
    assert whole.shape == (1, 2, 3)
    torch.testing.assert_close(whole[0], want, rtol=1e-10, atol=1e-12)
    assert nngp_components(X, Z, patch_size=3).shape == (3, 2, 3)  # 3 = the height: 1 x 3
    for bad, match in ((4, "^patch_size must be at most the images' height and width"),
                       (0, "^patch_size must be a positive integer")):  # fmt: skip
        with pytest.raises(ValueError, match=match):
            nngp_components(X, Z, patch_size=bad)
    for args, match in (((torch.ones(2, 3), None), "^X must"), ((X, torch.ones(2, 3)), "^Z must")):
        with pytest.raises(ValueError, match=match):
            nngp_components(*args, patch_size=1)
