"""The patch-AGOP engine against the independent brute-force reference, closed forms and
Monte Carlo limits; CNFM, feature maps, top filters and the null baselines."""

import math

import numpy as np
import pytest
import torch
from conv_zoo import (
    ARCHS,
    SharedConv,
    four_similarities,
    hand_cosine,
    make,
    scipy_power,
    small_cnn,
    uniform_images,
)
from torch import nn

from agop.features import (
    FilterSpace,
    cnfm,
    feature_map,
    haar_rotations,
    layer_correlations,
    null_baselines,
    patch_agop,
)
from agop.linalg import correlation, psd_power
from agop_book.reference import brute_force_patch_agop
from agop_book.views import top_filters


@pytest.mark.parametrize("arch", ARCHS)
def test_engine_matches_brute_force(arch):
    model = make(arch)
    X = torch.randn(6, 3, 14, 14, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    agops = patch_agop(model, X, chunk_size=4, device="cpu")
    assert list(agops) == [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    for name, A in agops.items():
        R = brute_force_patch_agop(model, X, name)
        assert A.shape == R.shape and A.dtype == torch.float64
        assert float((A - R).norm() / R.norm()) <= 1e-10, name


CONV_GRID = [
    dict(stride=s, dilation=d, padding=p, padding_mode=mode)
    for s in (1, 2)
    for d in (1, 2)
    for p in (0, 1, "same")
    for mode in ("zeros", "reflect")
    if not (p == "same" and s != 1)
]


@pytest.mark.parametrize("kw", CONV_GRID, ids=[str(tuple(kw.values())) for kw in CONV_GRID])
def test_engine_matches_brute_force_on_a_conv_grid(kw):
    """stride x dilation x padding of the first conv (the second reads its output): the
    engine's AGOP of both layers against the reference's explicit patches."""
    torch.manual_seed(3)
    model = nn.Sequential(
        nn.Conv2d(2, 4, 3, **kw),
        nn.Tanh(),
        nn.Conv2d(4, 3, 3, padding=1),
        nn.Softplus(),
        nn.Flatten(),
        nn.LazyLinear(3),
    )
    X = torch.randn(4, 2, 11, 11, generator=torch.Generator().manual_seed(4))
    model(X)  # materialise the read-out
    model = model.double().eval()
    agops = patch_agop(model, X.double(), device="cpu")
    for name, A in agops.items():
        R = brute_force_patch_agop(model, X.double(), name)
        assert float((A - R).norm() / R.norm()) <= 1e-10, name


def test_selected_outputs_and_layers():
    model = make("residual-zeros")
    X = torch.randn(5, 3, 14, 14, dtype=torch.float64)
    agops = patch_agop(model, X, layers=["c3", "c1"], outputs=[4, 0], device="cpu")
    assert set(agops) == {"c1", "c3"}
    for name, A in agops.items():
        R = brute_force_patch_agop(model, X, name, outputs=[0, 4])
        assert float((A - R).norm() / R.norm()) <= 1e-10
    # the sum over outputs splits into the outputs' own AGOPs
    parts = [patch_agop(model, X, layers="c1", outputs=[c], device="cpu")["c1"] for c in range(5)]
    torch.testing.assert_close(
        sum(parts), patch_agop(model, X, layers="c1", device="cpu")["c1"], rtol=1e-12, atol=1e-14
    )


def test_chunking_does_not_change_the_result():
    model = make("residual-zeros")
    X = torch.randn(7, 3, 14, 14, dtype=torch.float64)
    a = patch_agop(model, X, device="cpu")
    b = patch_agop(model, X, chunk_size=2, max_memory=1, device="cpu")  # one direction at a time
    # each image's Gaussian probes are its own: the sketch does not depend on the chunks either
    c = patch_agop(model, X, sketch=3, seed=5, device="cpu")
    d = patch_agop(model, X, sketch=3, seed=5, chunk_size=3, device="cpu")
    e = patch_agop(model, X, sketch=3, seed=6, device="cpu")
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(c[name], d[name], rtol=1e-12, atol=1e-14)
        assert not torch.allclose(c[name], e[name])


@pytest.mark.parametrize("arch", ["groups", "residual-circular"])
def test_vectorised_and_per_direction_backward_agree(arch):
    model = make(arch)
    X = torch.randn(5, 3, 14, 14, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    a = patch_agop(model, X, device="cpu", vectorize=True)
    b = patch_agop(model, X, device="cpu", vectorize=False)
    c = patch_agop(model, X, device="cpu", vectorize=True, max_memory=1, sketch=3)
    d = patch_agop(model, X, device="cpu", vectorize=False, sketch=3)
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(c[name], d[name], rtol=1e-12, atol=1e-14)


class SkipAroundReadout(nn.Module):
    """A read-out that is not a cut: the first conv's output also reaches f around it
    (``skip="add"``), or the second half of the read-out's input split takes its own path
    (``skip="split"``: another output of the node that makes the read-out's input), or the
    read-out's output is dropped (``skip="unused"``)."""

    def __init__(self, skip):
        super().__init__()
        self.skip = skip
        self.c1 = nn.Conv2d(3, 4, 3, padding=1)
        self.c2 = nn.Conv2d(4, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8 // 2, 3)
        self.out = nn.Linear(3 * 8 * 8, 3)

    def forward(self, x):
        h = torch.tanh(self.c1(x))
        z = torch.tanh(self.c2(h)).flatten(1)
        if self.skip == "add":
            return self.fc(z[:, : z.shape[1] // 2]) + h.mean((2, 3))[:, :3] ** 2
        if self.skip == "unused":  # an auxiliary head whose output is dropped
            self.fc(z[:, : z.shape[1] // 2])
            return self.out(x.flatten(1))
        first, second = z.chunk(2, dim=1)
        return self.fc(first) + torch.sin(second[:, :3])


@pytest.mark.parametrize("skip", ["add", "split"])
def test_a_readout_that_is_not_a_cut_keeps_every_path(skip):
    """The engine takes the directions through the read-out in one batch only when f depends
    on the conv outputs through it alone; here it does not, and the paths around it count."""
    torch.manual_seed(5)
    model = SkipAroundReadout(skip).double().eval()
    X = torch.randn(4, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    for name, A in patch_agop(model, X, device="cpu").items():
        R = brute_force_patch_agop(model, X, name)
        assert float((A - R).norm() / R.norm()) <= 1e-10, name


def test_a_dropped_readout_leaves_the_conv_outputs_unreached():
    """Convs and a read-out whose results the output never uses: the engine says so."""
    model = SkipAroundReadout("unused").double().eval()
    X = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    with pytest.raises(ValueError, match="does not reach the model's output"):
        patch_agop(model, X, device="cpu")


def _conv_outputs_and_readout_input(model, X):
    hs, inputs = [], []
    hooks = [
        m.register_forward_hook(lambda m, i, o: hs.append(o))
        for m in model.modules()
        if isinstance(m, nn.Conv2d)
    ]
    hooks.append(model.fc.register_forward_pre_hook(lambda m, i: inputs.append(i[0])))
    f = model(X)
    for hook in hooks:
        hook.remove()
    return f, inputs[0], hs


def test_the_readout_of_a_sequential_net_is_a_cut():
    """Where the read-out input is a cut (every arch of the brute-force tests above), the
    engine batches the read-out; where it is not, it does not."""
    from agop.features import _is_cut

    g = torch.Generator().manual_seed(5)
    for model, side, cut in [
        (make("residual-zeros"), 14, True),
        (SkipAroundReadout("add").double(), 8, False),
        (SkipAroundReadout("split").double(), 8, False),
        (SkipAroundReadout("unused").double(), 8, False),
    ]:
        X = torch.randn(2, 3, side, side, dtype=torch.float64, generator=g)
        assert _is_cut(*_conv_outputs_and_readout_input(model, X)) is cut


def test_ops_without_a_vmap_rule_fall_back_to_one_pass_per_direction(monkeypatch):
    """Both batched backwards (through the read-out, and ``vectorize=True`` through the
    network) fall back to one pass per direction when vmap fails, with the same AGOP."""
    model = make("residual-zeros")
    X = torch.randn(3, 3, 14, 14, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    expected = patch_agop(model, X, device="cpu", vectorize=True)
    grad = torch.autograd.grad
    batched = []

    def no_vmap(*args, is_grads_batched=False, **kwargs):
        if is_grads_batched:
            batched.append(True)
            raise RuntimeError("no batching rule")
        return grad(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", no_vmap)
    got = patch_agop(model, X, device="cpu", vectorize=True)
    assert len(batched) == 2  # the read-out, then the network
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-12, atol=1e-14)


def test_linear_conv_model_closed_form(float64):
    """f(x) = R vec(W * x): d f_c / d h[j] = R[c, :, j] for every x, so
    AGOP = W^T (sum_c sum_j R[c, :, j] R[c, :, j]^T) W, independent of the data."""
    torch.manual_seed(3)
    conv = nn.Conv2d(2, 3, 3, bias=True)
    readout = nn.Linear(3 * 6 * 6, 4)
    model = nn.Sequential(conv, nn.Flatten(), readout).eval()
    W = conv.weight.reshape(3, -1)
    R = readout.weight.reshape(4, 3, 36)
    expected = W.T @ torch.einsum("ckp,clp->kl", R, R) @ W
    for seed in (0, 1):
        X = torch.randn(5, 2, 8, 8, generator=torch.Generator().manual_seed(seed))
        A = patch_agop(model, X, device="cpu")["0"]
        torch.testing.assert_close(A, expected.detach(), rtol=1e-12, atol=1e-12)


def test_sketch_error_falls_like_one_over_sqrt_k():
    model = make("residual-zeros").float()
    X = torch.randn(4, 3, 14, 14, generator=torch.Generator().manual_seed(5))
    exact = patch_agop(model.double(), X.double(), device="cpu")
    model = model.double()
    ks = [2, 8, 32, 128]
    errors = []
    for k in ks:
        errs = [
            sum(
                float((S - exact[n]).norm() / exact[n].norm())
                for n, S in patch_agop(model, X, sketch=k, seed=s, device="cpu").items()
            )
            for s in range(12)
        ]
        errors.append(np.mean(errs))
    slope = np.polyfit(np.log(ks), np.log(errors), 1)[0]
    # 12 seeds give the mean error to a few percent; the slope over a 64x range of k to ~0.05
    assert -0.6 < slope < -0.4, (slope, errors)


def test_sketch_is_unbiased():
    model = make("padding")
    X = torch.randn(3, 3, 14, 14, dtype=torch.float64)
    exact = patch_agop(model, X, device="cpu")["0"]
    mean = (
        sum(
            patch_agop(model, X, layers="0", sketch=4, seed=s, device="cpu")["0"]
            for s in range(200)
        )
        / 200
    )
    single = patch_agop(model, X, layers="0", sketch=4, seed=0, device="cpu")["0"]
    # averaging 200 independent sketches shrinks the error by about sqrt(200) ~ 14
    err_mean = float((mean - exact).norm() / exact.norm())
    err_single = float((single - exact).norm() / exact.norm())
    assert err_mean < err_single / 5, (err_mean, err_single)


def test_training_mode_is_switched_and_restored():
    model = make("residual-zeros")
    X = torch.randn(4, 3, 14, 14, dtype=torch.float64)
    expected = patch_agop(model, X, device="cpu")
    model.train()
    running = model.bn.running_mean.clone()
    with pytest.warns(UserWarning, match="training mode"):
        got = patch_agop(model, X, device="cpu")
    assert model.training and model.bn.training
    assert torch.equal(model.bn.running_mean, running)  # batch statistics were not updated
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=0, atol=0)
    assert all(not m._forward_hooks for m in model.modules())
    assert all(p.grad is None for p in model.parameters())


def test_dtype_is_kept():
    model = make("padding").float()
    agops = patch_agop(model, torch.randn(2, 3, 14, 14), device="cpu")
    assert all(A.dtype == torch.float32 for A in agops.values())


def test_errors():
    model = make("padding")
    X = torch.randn(2, 3, 14, 14, dtype=torch.float64)
    with pytest.raises(ValueError, match="no torch.nn.Conv2d"):
        patch_agop(nn.Sequential(nn.Flatten(), nn.Linear(3, 1)), X)
    with pytest.raises(ValueError, match=r"X must have shape \(n, c, H, W\)"):
        patch_agop(model, X[0])
    with pytest.raises(ValueError, match="does not fit the model"):
        patch_agop(model, torch.randn(2, 4, 14, 14), device="cpu")
    bad = X.clone()
    bad[0, 0, 0, 0] = float("inf")
    with pytest.raises(ValueError, match="non-finite"):
        patch_agop(model, bad)
    with pytest.raises(ValueError, match="unknown layer name 'conv9'"):
        patch_agop(model, X, layers=["conv9"])
    with pytest.raises(ValueError, match="sketch"):
        patch_agop(model, X, sketch=0)
    with pytest.raises(ValueError, match="outputs"):
        patch_agop(model, X, outputs=[3], device="cpu")
    with pytest.raises(ValueError, match="^layer_name must name a Conv2d layer.*got 'conv9'"):
        brute_force_patch_agop(model, X, "conv9")


def test_cnfm_is_filter_covariance():
    conv = nn.Conv2d(6, 4, 3, groups=2)
    W = conv.weight.detach().reshape(4, -1)
    torch.testing.assert_close(cnfm(conv), W.T @ W)
    assert cnfm(conv).shape == (27, 27)
    torch.testing.assert_close(cnfm(conv.weight), W.T @ W)


def test_feature_map_closed_forms(float64):
    x = torch.randn(2, 3, 9, 9)
    q = 3 * 9
    # A = I: the norm of each zero-padded patch
    norms = torch.nn.functional.unfold(x, 3, padding=1).norm(dim=1).reshape(2, 9, 9)
    torch.testing.assert_close(feature_map(torch.eye(q), x, 3), norms)
    # A = e e^T with e the centre pixel of channel 1: |x[1]|, the image itself
    e = torch.zeros(q)
    e[9 + 4] = 1
    torch.testing.assert_close(feature_map(torch.outer(e, e), x, 3), x[:, 1].abs())
    assert feature_map(torch.eye(q), x[0], 3, padding=0).shape == (1, 7, 7)


def test_null_baselines():
    conv = nn.Conv2d(3, 8, 3)
    out = null_baselines(conv, n_draws=10, seed=0)
    for kind in ("pearson", "cosine"):
        assert out[kind]["identity"] == pytest.approx(1.0, abs=1e-12)
        assert len(out[kind]["draws"]) == 10
        assert -1 <= out[kind]["random_mean"] < 1 and out[kind]["random_std"] > 0
        assert out[kind]["random_mean"] == pytest.approx(float(np.mean(out[kind]["draws"])))
    assert null_baselines(conv, n_draws=10, seed=0)["pearson"]["draws"] == out["pearson"]["draws"]
    # one filter: W^T G W = G_11 w w^T is proportional to W^T W whatever G is
    one = null_baselines(torch.randn(1, 27), n_draws=5)
    assert one["pearson"]["random_mean"] == pytest.approx(1.0, abs=1e-10)
    assert one["pearson"]["random_std"] < 1e-10
    # the square root: identity null is corr(W^T W, (W^T W)^{1/2}) < 1
    half = null_baselines(conv, n_draws=3, power=0.5)
    assert half["pearson"]["identity"] < 1
    with pytest.raises(ValueError, match="power"):
        null_baselines(conv, power=0)


@pytest.mark.parametrize(
    "shape,groups,power",
    [
        ((6, 2, 3, 3), 1, 1.0),
        ((8, 2, 3, 3), 2, 1.0),
        ((30, 3, 1, 1), 1, 1.0),
        ((8, 2, 3, 3), 2, 0.5),
        ((40, 3, 3, 3), 1, 0.5),
    ],
)
def test_null_baselines_equal_explicit_matrices(shape, groups, power):
    """The filter-space nulls against q x q matrices built from the same Wishart draws."""
    conv = nn.Conv2d(shape[1] * groups, shape[0], shape[2], groups=groups).double()
    out = null_baselines(conv, n_draws=4, seed=3, power=power)
    Wg = conv.weight.detach().reshape(groups, shape[0] // groups, -1)
    k = Wg.shape[1]
    M = cnfm(conv)
    generator = torch.Generator().manual_seed(3)
    for i in range(4):
        B = torch.randn(groups, k, k, generator=generator, dtype=torch.float64)
        A = psd_power(sum(Wg[g].T @ B[g] @ B[g].T @ Wg[g] / k for g in range(groups)), power)
        for kind in ("pearson", "cosine"):
            assert out[kind]["draws"][i] == pytest.approx(correlation(M, A, kind), abs=1e-10)
    for kind in ("pearson", "cosine"):
        assert out[kind]["identity"] == pytest.approx(
            correlation(M, psd_power(M, power), kind), abs=1e-10
        )


@pytest.mark.parametrize(
    "shape,groups,power",
    [
        ((6, 2, 3, 3), 1, 1.0),
        ((8, 2, 3, 3), 2, 1.0),
        ((30, 3, 1, 1), 1, 0.5),
        ((8, 2, 3, 3), 2, 0.5),
    ],
)
def test_spectrum_null_equals_explicit_matrices(shape, groups, power):
    """The spectrum-matched null against q x q matrices W^T O L O^T W built from the same
    draws: O is the sign-fixed Q factor of the d-th Gaussian B, L the given G's eigenvalues."""
    conv = nn.Conv2d(shape[1] * groups, shape[0], shape[2], groups=groups).double()
    k = shape[0] // groups
    C = torch.randn(groups, k, k, dtype=torch.float64)
    G = C @ C.mT + torch.diag_embed(torch.rand(groups, k, dtype=torch.float64))
    out = null_baselines(conv, n_draws=4, seed=5, power=power, G=G)
    Wg = conv.weight.detach().reshape(groups, k, -1)
    M = cnfm(conv)
    lam = torch.linalg.eigvalsh(G)
    generator = torch.Generator().manual_seed(5)
    for i in range(4):
        B = torch.randn(groups, k, k, generator=generator, dtype=torch.float64)
        Q, R = torch.linalg.qr(B)
        O = Q * torch.sign(torch.diagonal(R, dim1=-2, dim2=-1))[:, None, :]
        A = psd_power(
            sum(Wg[g].T @ O[g] @ torch.diag(lam[g]) @ O[g].T @ Wg[g] for g in range(groups)), power
        )
        for kind in ("pearson", "cosine"):
            assert out[kind]["spectrum_draws"][i] == pytest.approx(
                correlation(M, A, kind), abs=1e-10
            )
    # the Wishart null is unchanged by giving G; a block-diagonal G reads the same
    assert (
        out["pearson"]["draws"]
        == null_baselines(conv, n_draws=4, seed=5, power=power)["pearson"]["draws"]
    )
    block = null_baselines(conv, n_draws=4, seed=5, power=power, G=torch.block_diag(*G))
    assert block["pearson"]["spectrum_draws"] == pytest.approx(out["pearson"]["spectrum_draws"])


@pytest.mark.parametrize("power", [1.0, 0.5])
def test_spectrum_null_of_a_multiple_of_the_identity_is_the_identity_null(power):
    """G = c I keeps its spectrum in every eigenbasis: every draw is the G = I null."""
    conv = nn.Conv2d(3, 12, 3).double()
    out = null_baselines(conv, n_draws=6, seed=1, power=power, G=2.5 * torch.eye(12))
    for kind in ("pearson", "cosine"):
        assert out[kind]["spectrum_mean"] == pytest.approx(out[kind]["identity"], abs=1e-10)
        assert out[kind]["spectrum_std"] < 1e-10
    # a spread spectrum lowers the null below the identity's (at power = 1 that is 1)
    spread = null_baselines(
        conv, n_draws=6, seed=1, power=1.0, G=torch.diag(torch.logspace(0, 3, 12))
    )
    assert spread["pearson"]["spectrum_mean"] < 0.99
    with pytest.raises(ValueError, match="G must be the layer's inner matrix"):
        null_baselines(conv, G=torch.eye(11))
    with pytest.raises(ValueError, match="positive semi-definite"):
        null_baselines(conv, G=-torch.eye(12))


def test_haar_rotations_are_orthogonal_and_unbiased():
    """Haar measure is invariant under sign flips of rows and columns: E[O] = 0, E[O_ij^2] = 1/k."""
    B = torch.randn(4000, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    O = haar_rotations(B)
    torch.testing.assert_close(O @ O.mT, torch.eye(3, dtype=torch.float64).expand(4000, 3, 3))
    assert O.mean(0).abs().max() < 4 / math.sqrt(4000)  # 4 sd of a mean of |O_ij| <= 1
    assert (O**2).mean(0).sub(1 / 3).abs().max() < 0.03


def test_layer_correlations_match_correlation():
    model = make("padding")
    X = torch.randn(3, 3, 14, 14, dtype=torch.float64)
    agops = patch_agop(model, X, device="cpu")
    corr = layer_correlations(model, agops)
    assert set(corr) == set(agops)
    assert corr["0"] == pytest.approx(correlation(cnfm(model[0]), agops["0"]))
    W = model[2].weight.detach().flatten(1)
    assert layer_correlations(model, agops, power=0.5, kind="cosine")["2"] == pytest.approx(
        hand_cosine(W.T @ W, scipy_power(agops["2"], 0.5)), abs=1e-8
    )


def test_in_place_activations_do_not_change_the_agop(float64):
    """ReLU(inplace=True) right after a conv (as in AlexNet and VGG) must not overwrite the
    recorded conv output: the AGOP equals that of the same model with out-of-place ReLUs."""
    torch.manual_seed(0)

    def net(inplace):
        torch.manual_seed(0)
        return nn.Sequential(
            nn.Conv2d(2, 4, 3),
            nn.ReLU(inplace=inplace),
            nn.Conv2d(4, 3, 3),
            nn.ReLU(inplace=inplace),
            nn.Flatten(),
            nn.Linear(3 * 4 * 4, 2),
        )

    X = torch.randn(3, 2, 8, 8)
    a, b = patch_agop(net(True), X, device="cpu"), patch_agop(net(False), X, device="cpu")
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-12, atol=1e-12)


class ReadsAValue(nn.Module):
    """A forward that reads a number out of a tensor: it cannot run on the meta device."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        h = self.conv(x)
        return (h * float(h.detach().abs().max() > -1)).flatten(1)[:, :2]


@pytest.mark.parametrize("name", ["residual-zeros", "groups", "stride2", "reads"])
def test_chunk_size_from_shapes_equals_the_measured_one(name):
    """The chunk size comes from a shapes-only (meta) forward pass; it must equal the one
    measured by an ordinary forward pass, and a model that cannot run on meta gets it too."""
    from agop.features import _images_per_chunk

    model = ReadsAValue().double().eval() if name == "reads" else make(name)
    x1 = torch.randn(1, 3, 14, 14, dtype=torch.float64)
    calls = []

    def forward(x):
        calls.append(x.device.type)
        return model(x)

    conv_bytes = []
    hooks = [
        m.register_forward_hook(lambda m, i, o: conv_bytes.append(o.numel() * 8))
        for m in model.modules()
        if isinstance(m, nn.Conv2d)
    ]
    model(x1)
    for h in hooks:
        h.remove()
    per_image = 2 * sum(conv_bytes)
    for images in (1, 3, 10):
        budget = images * per_image + per_image // 2
        assert _images_per_chunk(model, forward, x1, budget) == images
    assert calls == (["cpu"] * 3 if name == "reads" else [])  # a real pass only when needed


def test_feature_map_and_top_filters_take_numpy_sizes_and_name_bad_ones(float64):
    """np.int64 kernel sizes (from a numpy grid) are ints; chunk_size=0 failed with "range() arg
    3 must not be zero", zero-channel images deep inside."""
    x = torch.randn(5, 2, 6, 6)
    B = torch.randn(18, 18)
    A = B @ B.T
    expected = feature_map(A, x, 3, chunk_size=2)
    torch.testing.assert_close(feature_map(A, x, np.int64(3), chunk_size=np.int64(2)), expected)
    torch.testing.assert_close(feature_map(A, x, 3, chunk_size=5), expected)
    with pytest.raises(ValueError, match="chunk_size must be a positive integer, got 0"):
        feature_map(A, x, 3, chunk_size=0)
    with pytest.raises(ValueError, match="x must have at least one channel"):
        feature_map(torch.eye(9), torch.zeros(1, 0, 6, 6), 3)
    torch.testing.assert_close(
        top_filters(A, np.int64(2), np.int64(2), np.int64(3)), top_filters(A, 2, 2, 3)
    )
    with pytest.raises(TypeError, match="n_filters must be an integer, got 2.0"):
        top_filters(A, 2.0, 2, 3)
    with pytest.raises(ValueError, match="chunk_size must be a positive integer, got 0"):
        brute_force_patch_agop(SharedConv().double(), torch.zeros(1, 2, 5, 5), "conv", chunk_size=0)


class _Detached(nn.Module):
    """A frozen first block written with .detach() or torch.no_grad() inside forward."""

    def __init__(self, how):
        super().__init__()
        torch.manual_seed(0)
        self.how = how
        self.c1 = nn.Conv2d(1, 2, 3).double()
        self.c2 = nn.Conv2d(2, 2, 1).double()
        self.fc = nn.Linear(32, 2).double()

    def forward(self, x):
        if self.how == "detach":
            h = self.c1(x).detach()
        else:
            with torch.no_grad():
                h = self.c1(x)
        return self.fc(self.c2(h).flatten(1))


@pytest.mark.parametrize("how", ["detach", "no_grad"])
def test_a_conv_outside_autograd_is_an_error_naming_it(how):
    model = _Detached(how).eval()
    X = uniform_images()
    with pytest.raises(
        ValueError,
        match="layer 'c1': its output does not reach the model's output through autograd",
    ):
        patch_agop(model, X)
    # the layers after it are fine, and equal the brute-force reference
    A = patch_agop(model, X, layers=["c2"])["c2"]
    ref = brute_force_patch_agop(model, X, "c2")
    torch.testing.assert_close(A, ref.to(A.dtype))


def test_patch_agop_under_inference_mode_matches_the_plain_call():
    model, X = small_cnn(), uniform_images()
    plain = patch_agop(model, X)
    with torch.inference_mode():
        X_inf = uniform_images()
        inside = patch_agop(model, X_inf)
    for name in plain:
        torch.testing.assert_close(inside[name], plain[name], rtol=0, atol=0)
    with torch.no_grad():
        torch.testing.assert_close(patch_agop(model, X)["0"], plain["0"], rtol=0, atol=0)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(max_memory=0), "max_memory must be a positive integer"),
        (dict(max_memory=-5), "max_memory must be a positive integer"),
        (dict(chunk_size=True), "chunk_size must be an integer, got True"),
        (dict(chunk_size=0), "chunk_size must be a positive integer"),
        (dict(layers=0), "layers must be None, a layer name or module, or a list"),
        (dict(sketch=0), "sketch must be a positive integer"),
        (dict(sketch=2.0), "sketch must be an integer"),
        (dict(seed=-1), "seed must be a non-negative integer"),
    ],
)
def test_patch_agop_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        patch_agop(small_cnn(), uniform_images(), **kw)


@pytest.mark.parametrize("k_out,c,k,groups", [(5, 3, 3, 1), (40, 3, 3, 1), (8, 2, 3, 2)])
def test_filter_space_similarities_equal_full_matrices(k_out, c, k, groups):
    conv = nn.Conv2d(c * groups, k_out, k, groups=groups).double()
    g = torch.Generator().manual_seed(0)
    B = torch.randn(groups, k_out // groups, k_out // groups, generator=g, dtype=torch.float64)
    G = B @ B.transpose(1, 2) + 0.1 * torch.eye(k_out // groups, dtype=torch.float64)
    Wg = conv.weight.detach().reshape(groups, k_out // groups, -1)
    A = torch.einsum("gkq,gkl,glr->qr", Wg, G, Wg)  # W^T G W, summed over groups
    M = cnfm(conv)
    expected = four_similarities(M, A)
    np.testing.assert_allclose(FilterSpace(conv).similarities(G), expected, atol=1e-6)


# Held-out style bugs


@pytest.mark.parametrize("kind", ["pearson", "cosine"])
def test_cnfm_similarity_equals_the_correlation_of_the_explicit_cnfms(kind):
    """``cnfm_similarity`` from ``k x k`` products against :func:`correlation` of the two
    ``q x q`` matrices ``A^T A`` and ``B^T B`` formed explicitly, for filters with fewer rows
    than columns and different row counts (so that a sum over the wrong axis of ``A`` is a
    different number); the filters have non-zero means, so that the centring matters."""
    from agop.features import cnfm_similarity

    g = torch.Generator().manual_seed(0)
    A = torch.randn(3, 7, generator=g, dtype=torch.float64) + 0.5
    B = torch.randn(5, 7, generator=g, dtype=torch.float64) - 0.3 * torch.arange(7.0)
    expected = correlation(A.T @ A, B.T @ B, kind)
    assert cnfm_similarity(A, B, kind) == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert cnfm_similarity(B, A, kind) == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_null_baselines_spreads_are_sample_standard_deviations():
    """random_std and spectrum_std are the sample SDs (n - 1 in the denominator) of the draws
    they summarise, written out: sqrt(sum (d - mean)^2 / (n - 1))."""
    g = torch.Generator().manual_seed(0)
    W = torch.randn(4, 9, generator=g, dtype=torch.float64)
    B = torch.randn(4, 4, generator=g, dtype=torch.float64)
    out = null_baselines(W, n_draws=3, seed=2, G=B @ B.T)
    for kind in ("pearson", "cosine"):
        for family, key in (("random", "draws"), ("spectrum", "spectrum_draws")):
            d = out[kind][key]
            mean = sum(d) / len(d)
            sd = math.sqrt(sum((v - mean) ** 2 for v in d) / (len(d) - 1))
            assert out[kind][f"{family}_mean"] == pytest.approx(mean, abs=1e-14)
            assert out[kind][f"{family}_std"] == pytest.approx(sd, rel=1e-12)
            assert sd > 0


# Held-out style bugs, round 3


def test_feature_map_is_the_metric_norm_of_each_patch():
    r"""``feature_map`` against its definition :math:`\|A^{1/2} x[j]\| = \sqrt{x[j]^\top A\,
    x[j]}` (no square root of a matrix needed), at every position of the zero-padded
    ("same") patches, for a random PSD ``A`` whose eigenvalues are far from 0 and 1 (a
    projector such as ``I`` or ``e e^T`` is its own square root, so it cannot tell ``A``
    from ``A^{1/2}``), and for ``A = 4 e e^T``: twice the pixel under ``e``."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 2, 5, 4, generator=g, dtype=torch.float64)
    q = 2 * 9
    B = torch.randn(q, q, generator=g, dtype=torch.float64)
    A = B @ B.T + 3 * torch.eye(q, dtype=torch.float64)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))
    expected = torch.empty(2, 5, 4, dtype=torch.float64)
    for i in range(2):
        for r in range(5):
            for c in range(4):
                p = padded[i, :, r : r + 3, c : c + 3].reshape(-1)
                expected[i, r, c] = torch.sqrt(p @ A @ p)
    torch.testing.assert_close(feature_map(A, x, 3), expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(feature_map(A, x, 3, chunk_size=1), expected, rtol=1e-10, atol=1e-12)
    e = torch.zeros(q, dtype=torch.float64)
    e[9 + 4] = 1  # the centre pixel of channel 1
    torch.testing.assert_close(
        feature_map(4 * torch.outer(e, e), x, 3), 2 * x[:, 1].abs(), rtol=1e-12, atol=1e-12
    )


# Hostile inputs, round 4


def test_cnfm_refuses_a_float16_overflow():
    """``W^T W`` of float16 filters of 300 is 180 000 > 65 504: an error naming ``conv`` and
    saying how to compute it, never a matrix of inf."""
    W = torch.full((2, 1, 3, 3), 300.0).half()
    with pytest.raises(ValueError, match=r"^cnfm\(conv\).*not finite.*float16") as err:
        cnfm(W)
    assert "max |conv| = 300" in str(err.value)
    assert torch.equal(cnfm(W.float()), torch.full((9, 9), 180000.0))  # in float32: exact


def test_cnfm_similarity_of_different_patch_spaces_names_both_convs():
    from agop.features import cnfm_similarity

    with pytest.raises(ValueError, match="^conv_a and conv_b must .* same patch space.*9 and 25"):
        cnfm_similarity(nn.Conv2d(1, 2, 3), nn.Conv2d(1, 2, 5))


def test_layer_correlations_with_an_unknown_layer_names_agops():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(32, 2))
    with pytest.raises(ValueError, match=r"^agops: 'bogus' is not a Conv2d layer .*\['0'\]"):
        layer_correlations(net, {"bogus": torch.eye(9)})


def test_patch_agop_refuses_a_sketch_beyond_memory():
    """``sketch=10**9`` probes per image ask for tens of GB: a ValueError naming ``sketch``,
    not torch's allocator error."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(32, 2)).double()
    X = torch.rand(2, 1, 6, 6, dtype=torch.float64)
    with pytest.raises(ValueError, match="^sketch: sketch=1000000000 Gaussian probes"):
        patch_agop(net, X, sketch=10**9, device="cpu")


def test_feature_map_default_same_padding_needs_stride_1():
    """``padding=None`` means "same", which torch's Conv2d takes at stride 1 only: at stride 2
    feature_map padded k - 1 per axis silently; now a ValueError naming ``padding``. Explicit
    integer padding at stride 2 still works (checked against extract_patches)."""
    from agop.patches import extract_patches

    x = torch.rand(1, 1, 6, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    eye = torch.eye(9, dtype=torch.float64)
    with pytest.raises(ValueError, match="^padding='same' needs stride 1"):
        feature_map(eye, x, 3, stride=2)
    norms = extract_patches(x, 3, stride=2, padding=1).norm(dim=-1)
    torch.testing.assert_close(feature_map(eye, x, 3, stride=2, padding=1).flatten(1), norms)


# --------------------------------------------------------------------------------------------
# Held-out style bugs, round 4


@pytest.mark.parametrize("power", [1.0, 0.5])
def test_layer_correlations_take_factored_agops_as_their_dense_matrices(power):
    """``layer_correlations`` of ``patch_agop(..., factored=True)`` (the documented form of an
    agops entry, :class:`FactoredAGOP`) equals the explicit
    ``correlation(W^T W, (W^T G W)^p)`` and the result for the dense AGOPs (was: the bound
    method ``A.dense``, not its value, went to ``as_tensor``: an ArgumentTypeError)."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(64, 3)
    ).double()
    net.eval()
    X = torch.rand(5, 2, 8, 8, dtype=torch.float64)
    factored = patch_agop(net, X, factored=True, device="cpu")
    dense = patch_agop(net, X, device="cpu")
    got = layer_correlations(net, factored, power=power)
    assert got == pytest.approx(layer_correlations(net, dense, power=power), abs=1e-12)
    for name, F in factored.items():
        W = F.W.reshape(-1, F.q)
        explicit = correlation(W.T @ W, psd_power(W.T @ F.G[0] @ W, power))
        # the square root of a rank-4 matrix turns 1e-16 differences into ~1e-8
        assert got[name] == pytest.approx(explicit, abs=1e-8 if power != 1 else 1e-12)


# --------------------------------------------------------------------------------------------
# Held-out style bugs, round 5


@pytest.mark.parametrize("vectorize", [False, True])
@pytest.mark.parametrize("batch", [2, 3])
def test_every_output_direction_counts_when_max_memory_splits_them_into_batches(vectorize, batch):
    """``max_memory`` lets ``batch`` output directions through a backward pass at a time (one
    direction holds the conv outputs' gradients, ``108 * 5`` float64 values here); with 4
    outputs the last batch is partial. The AGOP must still be the closed form of a linear
    read-out, ``W^T (sum_c sum_j R[c, :, j] R[c, :, j]^T) W``, with every output in it (was:
    a batch that dropped its last direction passed the tests at ``max_memory=1`` and the
    default, whose batches are one direction and all of them)."""
    torch.manual_seed(3)
    conv = nn.Conv2d(2, 3, 3, bias=True).double()
    readout = nn.Linear(3 * 6 * 6, 4).double()
    model = nn.Sequential(conv, nn.Flatten(), readout).eval()
    W = conv.weight.detach().reshape(3, -1)
    R = readout.weight.detach().reshape(4, 3, 36)
    expected = W.T @ torch.einsum("ckp,clp->kl", R, R) @ W
    X = torch.randn(5, 2, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    per_direction = 3 * 36 * 5 * 8  # conv outputs per image x images x bytes
    A = patch_agop(
        model,
        X,
        chunk_size=5,
        max_memory=batch * per_direction,
        vectorize=vectorize,
        device="cpu",
    )["0"]
    torch.testing.assert_close(A, expected, rtol=1e-12, atol=1e-12)


def test_negative_output_indices_count_once_as_the_output_they_wrap_to():
    """``outputs=[-1]`` is the last output (Python's indexing), ``[-1, C - 1]`` names one
    output twice and is refused as repeated (was, for a mutant that did not wrap: accepted,
    and the last output counted twice in the AGOP)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 4 * 4, 3)).double().eval()
    X = torch.randn(4, 1, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    last = patch_agop(net, X, outputs=[2], device="cpu")["0"]
    torch.testing.assert_close(patch_agop(net, X, outputs=[-1], device="cpu")["0"], last)
    with pytest.raises(ValueError, match="outputs holds repeated indices"):
        patch_agop(net, X, outputs=[-1, 2], device="cpu")


# Hostile inputs, round 6
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [1e-30, 1e30])
def test_feature_map_of_float32_images_near_the_range_ends_is_right(scale):
    """||A^{1/2} x[j]|| of patches with entries near 1e30 (1e-30) is representable in float32,
    but the squares that torch's norm sums overflowed to inf (vanished to 0): an inf map, or
    a silent map of zeros."""
    x = torch.rand(2, 1, 5, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    # the norms of the raw patches, as explicit sums in float64
    want = (x.unfold(2, 3, 1).unfold(3, 3, 1) ** 2).sum((-1, -2)).sqrt()[:, 0] * scale
    got = feature_map(torch.eye(9), (scale * x).float(), 3, padding=0)
    torch.testing.assert_close(got.double(), want, rtol=1e-6, atol=0)


def test_feature_map_that_overflows_float32_is_refused_clearly():
    """A = 1e30 I on images near 1e30: the map (about 1e45) is beyond float32; an error that
    names the inputs' sizes instead of an inf map."""
    x = torch.ones(1, 1, 3, 3) * 1e30
    with pytest.raises(ValueError, match=r"^feature_map\(A, x\) is not finite.*max \|A\| = 1e\+30"):
        feature_map(1e30 * torch.eye(9), x, 3, padding=0)


def test_null_baselines_with_more_draws_than_memory_is_refused_by_name(monkeypatch):
    """n_draws=10**12 ran until the memory ran out (each draw's similarities are kept). On a
    machine of 1 KiB, 100 draws (32 bytes for each of their 4 similarities) do not fit."""
    import agop.validation

    W = torch.randn(4, 2, 3, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    monkeypatch.setattr(agop.validation, "_memory_bytes", lambda: 1024)
    with pytest.raises(ValueError, match="^n_draws: 100 draws' similarities would need"):
        null_baselines(W, n_draws=100, G=torch.eye(4, dtype=torch.float64))
