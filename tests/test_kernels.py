"""Patch kernels against brute-force definitions, Neural Tangents, closed forms and invariances."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from kernel_reference import (
    cnngp_patches,
    cntk_patches,
    kernel_matrix,
    laplace_patches,
    patches,
)

import agop.kernels as K

DATA = Path(__file__).parent / "data" / "neural_tangents_cntk.json"


def _images(n, c=2, H=6, W=7, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, H, W, generator=g, dtype=dtype) - 0.3


def _metric(q, seed=1, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(q, q, generator=g, dtype=dtype) / math.sqrt(q)
    return A @ A.T + 0.05 * torch.eye(q, dtype=dtype)


def test_laplace_matches_brute_force():
    X, Z, M = _images(3), _images(2, seed=2), _metric(18)
    ref = kernel_matrix(lambda a, b: laplace_patches(a, b, M, 1.7), X, Z, 3)
    torch.testing.assert_close(K.laplace(X, Z, 3, bandwidth=1.7, M=M), ref, rtol=1e-12, atol=0)


def test_cnngp_matches_brute_force_with_padding_and_zero_patches():
    """Exact zero patches (the top three rows of X[0], the padded border, all of Z[1]) count 0,
    the limit of |x|_M |z|_M kappa(t) as either norm goes to 0 (kappa is bounded); the brute
    form skips them explicitly, and the kernel is continuous there."""
    X, Z, M = _images(3), _images(2, seed=2), _metric(18)
    X[0, :, :3] = 0.0
    Z[1] = 0.0
    for padding in (0, 1):
        ref = kernel_matrix(lambda a, b: cnngp_patches(a, b, M), X, Z, 3, padding)
        out = K.cnngp(X, Z, 3, padding=padding, M=M)
        torch.testing.assert_close(out, ref, rtol=1e-10, atol=0)
        assert bool((out[:, 1] == 0).all())  # a zero image is orthogonal to everything
        assert bool(torch.isfinite(ref).all())
        for eps in (1e-4, 1e-6):  # approaching the zero patches from outside
            near = K.cnngp(X + (X == 0) * eps, Z + (Z == 0) * eps, 3, padding=padding, M=M)
            assert float((near - out).abs().max()) < 100 * eps * float(out.abs().max())
    # the zero patches are really there: X[0]'s first row of patches is zero
    assert float(patches(X[0], 3)[0].abs().max()) == 0


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("kind", ["ntk", "nngp"])
def test_cntk_matches_brute_force(depth, kind):
    X, Z, M = _images(2, H=8, W=8), _images(2, H=8, W=8, seed=2), _metric(18)
    ref = kernel_matrix(lambda a, b: cntk_patches(a, b, M, 2, 3, depth, kind), X, Z, 3)
    torch.testing.assert_close(K.cntk(X, Z, 3, depth, kind=kind, M=M), ref, rtol=1e-10, atol=0)


def _nt_cases():
    return json.loads(DATA.read_text())["cases"]


@pytest.mark.parametrize("case", range(7))
def test_cntk_matches_neural_tangents(case):
    """Reference values computed once with the real Neural Tangents (tools/neural_tangents_reference.py).

    At the coinciding pair (X[0], Z[0]) Neural Tangents' own float64 NTK carries rounding noise
    of order sqrt(eps) in the angle (about 1e-9 relative); ours is exact there.
    """
    c = _nt_cases()[case]
    X, Z, M = (torch.tensor(c[key], dtype=torch.float64) for key in ("X", "Z", "M"))
    for kind in ("nngp", "ntk"):
        ref = torch.tensor(c[f"{kind}_float64"], dtype=torch.float64)
        out = K.cntk(X, Z, c["k"], c["depth"], kind=kind, M=M)
        rel = (out - ref).abs() / ref.abs()
        assert rel[0, 0] < 1e-7
        assert rel.flatten()[1:].max() < 1e-10, (kind, rel)
        out32 = K.cntk(X.float(), Z.float(), c["k"], c["depth"], kind=kind, M=M.float())
        assert ((out32.double() - ref).abs() / ref.abs()).max() < 1e-6


def test_depth_one_closed_form_and_cnngp():
    """Depth 1: NNGP = (1/(cP)) sum_j |x_j||z_j| kappa1(t_j), NTK = NNGP + (1/(cP)) sum_j
    kappa0(t_j) <x_j, z_j>; and the CNNGP is c times the depth-1 NNGP."""
    X, Z, M = _images(3, c=3), _images(2, c=3, seed=2), _metric(27)
    R = torch.linalg.cholesky(M).T  # any factor with R^T R = M
    U = torch.einsum("rq,nhwq->nhwr", R, torch.stack([patches(x, 3) for x in X]))
    V = torch.einsum("rq,nhwq->nhwr", R, torch.stack([patches(z, 3) for z in Z]))
    dot = torch.einsum("nhwr,mhwr->nmhw", U, V)
    nx, nz = U.norm(dim=-1), V.norm(dim=-1)
    norms = nx[:, None] * nz[None]
    t = (dot / norms).clamp(-1, 1)
    theta = torch.arccos(t)
    nngp = (norms * (t * (math.pi - theta) + torch.sin(theta)) / math.pi).mean((2, 3)) / 3
    ntk = nngp + ((1 - theta / math.pi) * dot).mean((2, 3)) / 3
    torch.testing.assert_close(K.cntk(X, Z, 3, 1, kind="nngp", M=M), nngp, rtol=1e-12, atol=0)
    torch.testing.assert_close(K.cntk(X, Z, 3, 1, kind="ntk", M=M), ntk, rtol=1e-12, atol=0)
    torch.testing.assert_close(K.cnngp(X, Z, 3, M=M), 3 * nngp, rtol=1e-12, atol=0)


class _WideNet(torch.nn.Module):
    """The CNTK's network at finite width, NTK parameterisation: first layer on M^{1/2} patches
    scaled by 1/sqrt(c), then k x k convs scaled by 1/sqrt(width), ReLU*sqrt(2), read-out scaled
    by 1/sqrt(width * P)."""

    def __init__(self, c, k, depth, width, R, generator):
        super().__init__()
        q = R.shape[0]
        self.c, self.k, self.R, self.width = c, k, R, width
        self.w1 = torch.nn.Parameter(torch.randn(width, q, generator=generator, dtype=R.dtype))
        self.convs = torch.nn.ParameterList(
            [
                torch.nn.Parameter(
                    torch.randn(width, width, k, k, generator=generator, dtype=R.dtype)
                )
                for _ in range(depth - 1)
            ]
        )
        self.readout = None
        self.generator = generator

    def features(self, x):
        n, c, H, W = x.shape
        k = self.k
        cols = torch.nn.functional.unfold(x, k)  # (n, q, P)
        h = (self.w1 @ (self.R @ cols)) / math.sqrt(c)  # (n, width, P)
        h = h.view(n, self.width, H - k + 1, W - k + 1)
        h = math.sqrt(2) * torch.relu(h)
        for w in self.convs:
            h = torch.nn.functional.conv2d(h, w) / math.sqrt(self.width)
            h = math.sqrt(2) * torch.relu(h)
        return h.flatten(1)

    def forward(self, x):
        phi = self.features(x)
        if self.readout is None:
            self.readout = torch.nn.Parameter(
                torch.randn(phi.shape[1], generator=self.generator, dtype=phi.dtype)
            )
        return phi @ self.readout / math.sqrt(phi.shape[1])


def _empirical(X, k, depth, width, R, seed):
    net = _WideNet(X.shape[1], k, depth, width, R, torch.Generator().manual_seed(seed))
    out = net(X)
    phi = net.features(X)
    nngp = phi @ phi.T / phi.shape[1]
    params = [p for p in net.parameters()]
    jac = []
    for i in range(X.shape[0]):
        grads = torch.autograd.grad(out[i], params, retain_graph=True)
        jac.append(torch.cat([g.reshape(-1) for g in grads]))
    jac = torch.stack(jac)
    return nngp.detach(), (jac @ jac.T).detach()


def test_cntk_is_the_infinite_width_limit():
    """Empirical NNGP and NTK of wide random networks approach the CNTK as width grows."""
    X = _images(3, c=2, H=6, W=6, seed=5)
    M = _metric(18, seed=6)
    R = torch.linalg.cholesky(M).T
    exact = {kind: K.cntk(X, None, 3, 2, kind=kind, M=M) for kind in ("nngp", "ntk")}
    errors = {}
    for width in (32, 512):
        errs = {"nngp": [], "ntk": []}
        for seed in range(3):
            nngp, ntk = _empirical(X, 3, 2, width, R, seed)
            for kind, emp in (("nngp", nngp), ("ntk", ntk)):
                errs[kind].append(((emp - exact[kind]).norm() / exact[kind].norm()).item())
        errors[width] = {kind: sum(v) / len(v) for kind, v in errs.items()}
    for kind in ("nngp", "ntk"):
        assert errors[512][kind] < 0.5 * errors[32][kind], errors  # ~ 1/sqrt(width): 4x
        assert errors[512][kind] < 0.1, errors


def test_symmetric_and_psd():
    X, M = _images(7, H=8, W=8), _metric(18)
    for Kxx in (
        K.laplace(X, X, 3, bandwidth=2.0, M=M),
        K.cnngp(X, X, 3, M=M),
        K.cntk(X, X, 3, 2, M=M),
        K.cntk(X, None, 3, 3, kind="nngp", M=M),
    ):
        torch.testing.assert_close(Kxx, Kxx.T, rtol=0, atol=0)
        assert torch.linalg.eigvalsh(Kxx).min() > -1e-12 * Kxx.diagonal().max()
    # the symmetric path equals the general one (Z a copy of X)
    torch.testing.assert_close(
        K.cntk(X, None, 3, 2, M=M), K.cntk(X, X.clone(), 3, 2, M=M), rtol=1e-13, atol=0
    )


@pytest.mark.parametrize("name", ["laplace", "cnngp", "cntk"])
def test_tiled_equals_untiled(name):
    X, Z, M = _images(9, H=8, W=8), _images(7, H=8, W=8, seed=2), _metric(18)
    alpha = torch.randn(7, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    kern = K.get_kernel(name, patch_size=3, depth=2 if name == "cntk" else None)
    full, full_sym = kern(X, Z, M=M), kern(X, None, M=M)
    full_agop = kern.agop(X, Z, alpha, M=M)
    for budget in (150_000, 600_000):  # a few pairs per tile; the smaller one recomputes patches
        small = K.get_kernel(
            name, patch_size=3, depth=2 if name == "cntk" else None, max_memory=budget
        )
        torch.testing.assert_close(small(X, Z, M=M), full, rtol=1e-12, atol=0)
        torch.testing.assert_close(small(X, None, M=M), full_sym, rtol=1e-12, atol=0)
        torch.testing.assert_close(small.agop(X, Z, alpha, M=M), full_agop, rtol=1e-10, atol=0)


def test_metric_enters_as_a_factor():
    """K_M(x, z) = K_I(R x, R z) patchwise: with M = D^2 diagonal per channel the kernel equals
    the identity-metric kernel of the rescaled images; M = None is the identity."""
    X, Z = _images(3, c=2), _images(2, c=2, seed=2)
    scales = torch.tensor([0.5, 2.0], dtype=torch.float64)
    M = torch.diag((scales[:, None] ** 2).expand(2, 9).reshape(-1))
    Xs, Zs = X * scales[:, None, None], Z * scales[:, None, None]
    torch.testing.assert_close(K.cntk(X, Z, 3, 2, M=M), K.cntk(Xs, Zs, 3, 2), rtol=1e-12, atol=0)
    torch.testing.assert_close(
        K.laplace(X, Z, 3, M=torch.eye(18, dtype=torch.float64)),
        K.laplace(X, Z, 3),
        rtol=1e-14,
        atol=0,
    )


def test_float32_agrees_with_float64():
    X, Z, M = _images(5, H=10, W=10), _images(4, H=10, W=10, seed=2), _metric(18)
    alpha = torch.randn(4, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    for name in ("laplace", "cnngp", "cntk"):
        kern = K.get_kernel(name, patch_size=3, depth=3 if name == "cntk" else None)
        k64, k32 = kern(X, Z, M=M), kern(X.float(), Z.float(), M=M.float())
        assert k32.dtype == torch.float32
        torch.testing.assert_close(k32.double(), k64, rtol=1e-5, atol=0)
        a64, a32 = (
            kern.agop(X, Z, alpha, M=M),
            kern.agop(X.float(), Z.float(), alpha.float(), M=M.float()),
        )
        assert (a32.double() - a64).norm() < 1e-4 * a64.norm()


def test_zero_patches_and_coinciding_points_are_finite():
    X = _images(4, H=8, W=8)
    X[0] = 0.0
    X[1, :, :4] = 0.0
    Z = torch.cat([X[:2], _images(2, H=8, W=8, seed=2)])  # Z shares images with X
    alpha = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    for dtype in (torch.float32, torch.float64):
        Xd, Zd, ad = X.to(dtype), Z.to(dtype), alpha.to(dtype)
        for name in ("laplace", "cnngp", "cntk"):
            kern = K.get_kernel(name, patch_size=3, depth=3 if name == "cntk" else None)
            for out in (kern(Xd, Zd), kern(Xd), kern.agop(Xd, Zd, ad), kern.agop(Xd, Xd, ad)):
                assert torch.isfinite(out).all(), name
    # exact values at a coinciding pair: K(x, x) = |x|^2-type closed forms
    x = X[2:3]
    torch.testing.assert_close(K.laplace(x, x.clone(), 3), torch.ones(1, 1, dtype=x.dtype))
    expected = (patches(x[0], 3) ** 2).sum(-1).mean() / 2  # NNGP(x, x) = mean |x_j|^2 / c
    torch.testing.assert_close(
        K.cntk(x, x.clone(), 3, 1, kind="nngp")[0, 0], expected, rtol=1e-14, atol=0
    )


def test_one_sided_gradients_at_zero_patch_and_coinciding_point():
    """Neural Tangents' conventions: at a zero patch theta = pi/2 (kappa0 = 1/2) and the sqrt has
    zero derivative, so grad_u k(0, v) = v/2 for the CNNGP; the Laplace gradient vanishes where
    the distance does."""
    x = torch.zeros(1, 1, 5, 5, dtype=torch.float64)
    z = _images(1, c=1, H=5, W=5, seed=4)
    alpha = torch.tensor([[1.5]], dtype=torch.float64)
    V = patches(z[0], 3).reshape(-1, 9)  # (P, q)
    P = V.shape[0]
    expected = (1.5 / (2 * P)) ** 2 * V.T @ V
    torch.testing.assert_close(K.cnngp_agop(x, z, alpha, 3), expected, rtol=1e-13, atol=0)
    zero = K.laplace_agop(z, z.clone(), alpha, 3, bandwidth=2.0)
    assert zero.abs().max() == 0


@pytest.mark.parametrize("name", ["laplace", "cnngp", "cntk_nngp", "cntk_ntk"])
def test_agop_matches_autograd_of_brute_force(name):
    X, Z = _images(2, H=7, W=7), _images(3, H=7, W=7, seed=2)
    M = _metric(18)
    alpha = torch.randn(3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    if name == "laplace":
        fn, ours = (
            (lambda a, b: laplace_patches(a, b, M, 1.3)),
            K.laplace_agop(X, Z, alpha, 3, bandwidth=1.3, M=M),
        )
    elif name == "cnngp":
        fn, ours = (lambda a, b: cnngp_patches(a, b, M)), K.cnngp_agop(X, Z, alpha, 3, M=M)
    else:
        kind = name.split("_")[1]

        def fn(a, b):
            return cntk_patches(a, b, M, 2, 3, 2, kind)

        ours = K.cntk_agop(X, Z, alpha, 3, 2, kind=kind, M=M)
    from kernel_reference import agop_autograd

    ref = agop_autograd(fn, X, Z, alpha, 3)
    torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-12 * ref.abs().max().item())


class _ArccosNet(torch.autograd.Function):
    """arccos.forward with the hand-derived backward, for torch.autograd.gradcheck."""

    @staticmethod
    def forward(ctx, S1, sx1, sz, k, depth, ntk):
        from agop.kernels import arccos

        sx = arccos.diagonals(sx1, k, depth)
        szl = arccos.diagonals(sz, k, depth)
        ctx.save_for_backward(S1, sx1, sz)
        ctx.args = (k, depth, ntk)
        return arccos.forward(S1.clone(), sx, szl, k, depth, ntk, 0.0)

    @staticmethod
    def backward(ctx, grad):
        from agop.kernels import arccos

        S1, sx1, sz = ctx.saved_tensors
        k, depth, ntk = ctx.args
        _, S_bar, sx_bar = arccos.forward_backward(
            S1.clone(),
            arccos.diagonals(sx1, k, depth),
            arccos.diagonals(sz, k, depth),
            k,
            depth,
            ntk,
            0.0,
        )
        return S_bar * grad, sx_bar * grad, None, None, None, None


@pytest.mark.parametrize("ntk", [False, True])
def test_hand_backward_passes_gradcheck(ntk):
    """The CNTK tile's backward against finite differences (torch.autograd.gradcheck), one pair
    per row (tm = 1) so that the row variance is a per-pair variable."""
    X, Z = _images(3, c=1, H=7, W=7), _images(1, c=1, H=7, W=7, seed=2)
    px = torch.stack([patches(x, 3) for x in X])  # (n, 5, 5, 9)
    pz = patches(Z[0], 3)
    S1 = torch.einsum("nhwq,hwq->hwn", px, pz)[..., None].contiguous()
    sx1 = (px**2).sum(-1).permute(1, 2, 0)[..., None].contiguous()
    sz = (pz**2).sum(-1)[:, :, None, None].contiguous()
    S1.requires_grad_(True)
    sx1.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda a, b: _ArccosNet.apply(a, b, sz, 3, 2, ntk),
        (S1, sx1),
        eps=1e-6,
        atol=1e-7,
        rtol=1e-5,
    )


def test_bad_input_raises_clear_errors():
    X, Z = _images(2), _images(2, seed=2)
    with pytest.raises(ValueError, match="X must have shape"):
        K.cntk(X[0], Z, 3, 1)
    with pytest.raises(ValueError, match="channels"):
        K.laplace(X, Z[:, :1], 3)
    with pytest.raises(ValueError, match="Z must have images of X's size"):
        K.cnngp(X, Z[:, :, :5], 3)
    with pytest.raises(ValueError, match="too small for depth=3"):
        K.cntk(X, Z, 3, 3)  # 6 - 3*2 = 0 < 1
    bad = -torch.eye(18, dtype=torch.float64)
    with pytest.raises(ValueError, match="M must be positive semi-definite"):
        K.cntk(X, Z, 3, 1, M=bad)
    with pytest.raises(ValueError, match="M must be 18 x 18"):
        K.laplace(X, Z, 3, M=torch.eye(9))
    with pytest.raises(ValueError, match="kind must be"):
        K.cntk(X, Z, 3, 1, kind="gp")
    with pytest.raises(ValueError, match="dual_coef must have shape"):
        K.cntk_agop(X, Z, torch.ones(3, 2), 3, 1)
    with pytest.raises(ValueError, match="patch_size must be a positive integer"):
        K.laplace(X, Z, 0)
    with pytest.raises(ValueError, match="NaN"):
        K.laplace(X * float("nan"), Z, 3)
    with pytest.raises(ValueError, match="kernel must be one of"):
        K.get_kernel("gauss", patch_size=3)


def test_kernel_objects():
    X, Z = _images(3), _images(2, seed=2)
    kern = K.get_kernel("cntk", patch_size=3, depth=2, kind="nngp")
    assert K.get_kernel(kern) is kern
    torch.testing.assert_close(kern(X, Z), K.cntk(X, Z, 3, 2, kind="nngp"))
    torch.testing.assert_close(K.Laplace(3, bandwidth=2.0)(X, Z), K.laplace(X, Z, 3, bandwidth=2.0))
    torch.testing.assert_close(K.CNNGP(3)(X), K.cnngp(X, None, 3))


def test_progress_bar_runs():
    X = _images(5, H=8, W=8)
    torch.testing.assert_close(
        K.cntk(X, None, 3, 2, progress=True, max_memory=200_000), K.cntk(X, None, 3, 2)
    )


@pytest.mark.gpu
def test_cuda_agrees_with_cpu():
    X, Z, M = _images(6, H=10, W=10), _images(5, H=10, W=10, seed=2), _metric(18)
    alpha = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    for name in ("laplace", "cnngp", "cntk"):
        cpu = K.get_kernel(name, patch_size=3, depth=2 if name == "cntk" else None, device="cpu")
        gpu = K.get_kernel(name, patch_size=3, depth=2 if name == "cntk" else None, device="cuda")
        torch.testing.assert_close(gpu(X, Z, M=M).cpu(), cpu(X, Z, M=M), rtol=1e-10, atol=0)
        torch.testing.assert_close(
            gpu.agop(X, Z, alpha, M=M).cpu(), cpu.agop(X, Z, alpha, M=M), rtol=1e-9, atol=0
        )


def test_float32_agop_of_many_outer_products_matches_float64():
    """~10^5 outer products of 9-vectors: G is accumulated in float64, so the float32 AGOP is
    within 1e-6 (relative, max-abs) of the float64 one (summing them in float32 loses ~5 digits)."""
    g = torch.Generator().manual_seed(0)
    Z = torch.rand(60, 1, 22, 22, generator=g, dtype=torch.float64)
    alpha = torch.randn(60, 10, generator=g, dtype=torch.float64)
    X = Z[:30]
    for name in ("cntk", "laplace"):
        kern = K.get_kernel(name, patch_size=3, depth=3 if name == "cntk" else None)
        a64 = kern.agop(X, Z, alpha)
        a32 = kern.agop(X.float(), Z.float(), alpha.float())
        assert a32.dtype == torch.float32
        assert float((a32.double() - a64).abs().max() / a64.abs().max()) < 1e-6


def test_threads_override_module_default_and_cores(monkeypatch):
    from agop.kernels import _driver

    assert _driver.choose_threads(3) == 3
    out = _driver.choose_threads(np.int64(3))  # from a numpy grid: an int
    assert out == 3 and type(out) is int
    monkeypatch.setattr(_driver, "_usable_cores", lambda: 4)
    assert _driver.choose_threads() == 4
    monkeypatch.setattr(_driver, "CPU_THREADS", 1)
    assert _driver.choose_threads() == 1 and _driver.choose_threads(2) == 2
    X = _images(6, H=8, W=8, dtype=torch.float32)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="threads"):
            K.cntk(X, None, 3, 2, threads=bad)


@pytest.mark.parametrize("name", ["laplace", "cnngp", "cntk"])
@pytest.mark.parametrize("budget", [None, 150_000])  # 150 kB: no cache, a few pairs per tile
def test_worker_threads_share_tiles_without_changing_the_result(name, budget):
    """Several workers give the kernel matrix and the AGOP of one worker to float64 round-off
    (a tight budget is split between the workers' tiles, and the AGOP's sums are grouped by
    worker), cached or recomputing each tile's patches per worker; with the default budget
    the tiles are the same and the kernel matrix is equal bit for bit; torch's own thread
    setting is restored."""
    X, Z, M = _images(9, H=8, W=8), _images(7, H=8, W=8, seed=2), _metric(18)
    alpha = torch.randn(7, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))

    def kern(threads):
        depth = 2 if name == "cntk" else None
        return K.get_kernel(name, 3, depth, max_memory=budget, threads=threads)

    before = torch.get_num_threads()
    one = kern(1)(X, Z, M=M), kern(1)(X, None, M=M)
    agop_one = kern(1).agop(X, Z, alpha, M=M)
    for workers in (2, 3):
        many = kern(workers)(X, Z, M=M), kern(workers)(X, None, M=M)
        for a, b in zip(many, one, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-13, atol=0)
            assert budget is not None or torch.equal(a, b)
        torch.testing.assert_close(
            kern(workers).agop(X, Z, alpha, M=M), agop_one, rtol=1e-13, atol=0
        )
    assert torch.get_num_threads() == before


def test_run_tiles_raises_a_workers_error_and_covers_every_item():
    from agop.kernels._driver import run_tiles

    seen = []
    run_tiles(seen.append, list(range(50)), workers=3)
    assert sorted(seen) == list(range(50))

    def fail_on_7(i):
        if i == 7:
            raise RuntimeError("tile 7 failed")

    with pytest.raises(RuntimeError, match="tile 7"):
        run_tiles(fail_on_7, list(range(20)), workers=2)


def test_kernel_written_into_a_preallocated_buffer():
    X, Z = _images(5), _images(4, seed=2)
    buf = torch.full((5, 4), float("nan"), dtype=torch.float64)
    assert K.cntk(X, Z, 3, 2, out=buf) is buf
    torch.testing.assert_close(buf, K.cntk(X, Z, 3, 2), rtol=0, atol=0)
    sym = torch.empty(5, 5, dtype=torch.float64)
    K.get_kernel("laplace", patch_size=3)(X, None, out=sym)
    torch.testing.assert_close(sym, K.laplace(X, None, 3), rtol=0, atol=0)
    with pytest.raises(ValueError, match="out must be"):
        K.cntk(X, Z, 3, 2, out=torch.empty(4, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match="out must be"):
        K.cntk(X, Z, 3, 2, out=torch.empty(5, 4))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_opposite_patches_have_angle_pi(dtype):
    """Z = -X: every pair of same-position patches is opposite, theta = pi, kappa0 = 0 and
    s = 0 (up to rounding, which the snap sets to zero), so the depth-1 NNGP and NTK vanish;
    rounding that leaves sin(theta) a signed zero must not flip theta to -pi."""
    X = _images(30, H=5, W=5).to(dtype)
    for kind in ("nngp", "ntk"):
        K_opposite = K.cntk(X, -X, 3, 1, kind=kind).diagonal()
        scale = K.cntk(X, X, 3, 1, kind=kind).diagonal()
        assert (K_opposite.abs() <= 1e-6 * scale).all(), kind


def images(n=12, c=1, size=6, seed=0, dtype=torch.float64):
    return torch.rand(n, c, size, size, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def test_kernel_arguments():
    X = images()
    with pytest.raises(ValueError, match="padding must be an integer, got True"):
        K.laplace(X, None, 3, padding=True)
    with pytest.raises(ValueError, match="bandwidth must be a finite number"):
        K.laplace(X, None, 3, bandwidth=float("nan"))
    with pytest.raises(ValueError, match="bandwidth must be a positive number"):
        K.laplace(X, None, 3, bandwidth=0)
    with pytest.raises(ValueError, match="depth must be an integer"):
        K.cntk(X, None, 3, 2.0)
    assert K.cntk(X, None, 3, 1, kind="NTK").shape == (12, 12)


@pytest.mark.parametrize(
    "fn",
    [
        lambda X: K.cntk(X, None, 3, 2),
        lambda X: K.cnngp(X, None, 3),
        lambda X: K.cntk_agop(X, X, torch.ones(len(X)), 3, 1),
        lambda X: K.cnngp_agop(X, X, torch.ones(len(X)), 3),
    ],
    ids=["cntk", "cnngp", "cntk_agop", "cnngp_agop"],
)
def test_kernels_near_the_float_range_raise_instead_of_returning_nan(fn):
    # the arc-cosine kernels grow as |x| |z|: 1e40 is beyond float32 (the Laplace kernel's
    # values stay in [0, 1]; it is computed on rescaled images, round 6 below)
    X = images(6, dtype=torch.float32) * 1e20
    X[0, 0, 0, 0] = 1e20
    with pytest.raises(
        ValueError,
        match=r"is not finite: .*overflow in torch.float32.*"
        r"max \|X\| = 1e\+20.*Rescale X and Z",
    ):
        fn(X)
    fn(X.double())  # float64 holds it: no error, and
    assert bool(torch.isfinite(fn(X.double())).all())


# --------------------------------------------------------------------------------------------
# Hostile inputs, round 6
# --------------------------------------------------------------------------------------------


def _pair(seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(4, 1, 5, 5, generator=g, dtype=torch.float64)
    Z = torch.rand(3, 1, 5, 5, generator=g, dtype=torch.float64)
    alpha = torch.randn(3, 2, generator=g, dtype=torch.float64)
    return X, Z, alpha


@pytest.mark.parametrize(
    "kernel", [K.CNTK(3, depth=2, device="cpu"), K.CNNGP(3, device="cpu")], ids=["cntk", "cnngp"]
)
@pytest.mark.parametrize(
    "a, b", [(1e-200, 1.0), (1e-100, 1e-100), (1e100, 1e100), (1e-150, 1e-150)]
)
def test_arccos_kernels_keep_their_scaling_law_at_extreme_scales(kernel, a, b):
    """The bias-free ReLU kernels are positively homogeneous, K(aX, bZ) = a b K(X, Z), and
    the patch-AGOP of f = K(., bZ) alpha over aX is b^2 times that at scale 1. The fourth
    powers of the pixel scale that the recursion multiplies vanished below about 1e-80 in
    float64: a 19% (CNTK) or 5% (CNNGP) error, silently."""
    X, Z, alpha = _pair()
    torch.testing.assert_close(kernel(a * X, b * Z) / (a * b), kernel(X, Z), rtol=1e-12, atol=0)
    torch.testing.assert_close(
        kernel.agop(a * X, b * Z, alpha) / b**2, kernel.agop(X, Z, alpha), rtol=1e-12, atol=0
    )


@pytest.mark.parametrize("kernel", [K.CNTK(3, depth=2), K.CNNGP(3)], ids=["cntk", "cnngp"])
def test_arccos_kernels_of_a_tiny_metric_are_its_scale_times_the_identity_s(kernel):
    """K_{cM} = c K_M (the metric scales every inner product); M = 1e-200 I used to lose 19%."""
    X, Z, _ = _pair(1)
    M = 1e-200 * torch.eye(9, dtype=torch.float64)
    torch.testing.assert_close(kernel(X, Z, M=M) / 1e-200, kernel(X, Z), rtol=1e-12, atol=0)


@pytest.mark.parametrize("name", ["laplace", "rbf"])
@pytest.mark.parametrize("scale", [1e-30, 1e30])
def test_bandwidth_kernels_in_float32_at_extreme_scales_equal_the_unit_scale(name, scale):
    """K(cX, cZ) with bandwidth cL is K(X, Z) with L. In float32 the squared patch distances
    of images near 1e-30 vanished (the Laplace kernel then read every pair as equal: all
    ones) and near 1e30 overflowed; the AGOP scales by 1/c^2."""
    X, Z, alpha = _pair(2)
    unit = K.get_kernel(name, 3, bandwidth=2.0, device="cpu")
    scaled = K.get_kernel(name, 3, bandwidth=2.0 * scale, device="cpu")
    got = scaled((scale * X).float(), (scale * Z).float())
    torch.testing.assert_close(got.double(), unit(X, Z), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(
        scaled.agop(scale * X, scale * Z, alpha) * scale**2,
        unit.agop(X, Z, alpha),
        rtol=1e-10,
        atol=0,
    )


def test_laplace_of_float32_images_near_1e20_is_computed_not_refused():
    """The Laplace kernel's values lie in [0, 1] at any scale: images near 1e20 in float32
    (whose squared distances overflow) give the float64 answer instead of an error."""
    X = images(6, dtype=torch.float32) * 1e20
    torch.testing.assert_close(K.laplace(X, None, 3).double(), K.laplace(X.double(), None, 3))


@pytest.mark.parametrize("kernel", [K.CNTK(3, depth=2), K.CNNGP(3)], ids=["cntk", "cnngp"])
def test_arccos_kernels_take_a_metric_that_requires_grad(kernel):
    """Their tiles work in place, so they compute on values: a metric M that requires grad
    (a learned one) failed deep inside with "functions with out=... arguments don't support
    automatic differentiation"."""
    X, Z, alpha = _pair(3)
    M = torch.eye(9, dtype=torch.float64) * 2
    want, want_agop = kernel(X, Z, M=M), kernel.agop(X, Z, alpha, M=M)
    M.requires_grad_()
    torch.testing.assert_close(kernel(X, Z, M=M), want, rtol=0, atol=0)
    torch.testing.assert_close(kernel.agop(X, Z, alpha, M=M), want_agop, rtol=0, atol=0)


def test_kernel_threads_beyond_the_pairs_are_not_all_tried():
    """threads=10**9 hung: the planner tried every share of the memory budget from 10**9
    down. The workers are capped at the pairs of images (and the result is the same)."""
    from agop.kernels._driver import TileOps, _plan

    X, Z, _ = _pair(4)
    kernel = K.Laplace(3)
    ops = TileOps(kernel, X, 3, 0, None)
    *_, workers = _plan(ops, 4, 3, torch.device("cpu"), None, grad=False, workers=10**4)
    assert workers <= 4 * 3
    torch.testing.assert_close(
        K.laplace(X, Z, 3, threads=10**9), K.laplace(X, Z, 3, threads=1), rtol=0, atol=0
    )


def test_kernel_out_that_requires_grad_is_refused_by_name():
    X, Z, _ = _pair(5)
    out = torch.empty(4, 3, dtype=torch.float64, requires_grad=True)
    with pytest.raises(ValueError, match="^out must not require grad"):
        K.laplace(X, Z, 3, out=out)


def test_kernel_padding_that_cannot_fit_in_memory_is_refused_by_name():
    """padding=10**12 named max_memory ("cannot hold even one pair of images")."""
    X, Z, _ = _pair(6)
    with pytest.raises(ValueError, match="^padding: the padded images would need"):
        K.laplace(X, Z, 3, padding=10**12)


def test_kernel_images_smaller_than_the_patch_name_X():
    X, _, _ = _pair(7)
    with pytest.raises(ValueError, match=r"^X has images of size 2x2 \(after padding 0\)"):
        K.cnngp(X[..., :2, :2], None, 3)


def test_laplace_agop_of_tiny_float32_images_matches_float64():
    """Images near 1e-20 with a unit bandwidth: the kernel is nearly constant, its gradients
    (about alpha / L, whatever the images' scale) are not small, but the squared patch
    distances (1e-40) are subnormal in float32. Computed on rescaled images, the float32
    patch-AGOP is the float64 one."""
    X, Z, alpha = _pair(8)
    X, Z = 1e-20 * X, 1e-20 * Z
    kernel = K.Laplace(3, bandwidth=2.0, device="cpu")
    want = kernel.agop(X, Z, alpha)
    got = kernel.agop(X.float(), Z.float(), alpha.float())
    torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-6 * float(want.abs().max()))
