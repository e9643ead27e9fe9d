"""agop.kernels.objects, one way to add a kernel: the registry, the autograd patch-AGOP of a kernel's block, every
hand-derived fast path against it, the Gaussian (RBF) kernel against brute force, and the
estimators (ConvRFM, DeepConvRFM) taking any registered kernel by name."""

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from kernel_reference import agop_autograd, kernel_matrix, rbf_patches

import agop.kernels as K
from agop import ConvRFM
from agop.deep_rfm import DeepConvRFM
from agop.kernels.objects import KERNELS, Kernel, fields_of
from agop_book.ch05_deep_convrfm import bars_in_noise


def _images(n, c=2, H=6, W=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, H, W, generator=g, dtype=torch.float64) - 0.3


def _metric(q, seed=1):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(q, q, generator=g, dtype=torch.float64) / math.sqrt(q)
    return A @ A.T + 0.05 * torch.eye(q, dtype=torch.float64)


def _variants():
    """Every registered kernel, with padding 1 and depth 2 where it has them, each ``kind``."""
    out = []
    for name in sorted(KERNELS):
        fields = fields_of(KERNELS[name])
        kw = {"padding": 1} if "padding" in fields else {}
        kw |= {"depth": 2} if "depth" in fields else {}
        kw |= {"bandwidth": 1.3} if "bandwidth" in fields else {}
        kinds = [{"kind": "ntk"}, {"kind": "nngp"}] if "kind" in fields else [{}]
        out += [(name, kw | kind) for kind in kinds]
    return out


@pytest.mark.parametrize(
    "name, kw", _variants(), ids=[f"{n}-{'-'.join(map(str, kw.values()))}" for n, kw in _variants()]
)
def test_fast_path_agop_equals_autograd_of_the_same_block(name, kw, monkeypatch):
    """A kernel that overrides ``grad_block`` (a hand-derived fast path) gives the patch-AGOP
    that autograd through its own ``block`` gives (the base class's ``grad_block``), in a
    non-identity metric, with padding where the kernel has it, over several tiles."""
    cls = KERNELS[name]
    if cls.grad_block is Kernel.grad_block:
        pytest.skip(f"{name} has no fast path: its AGOP is the autograd one")
    X, Z = _images(3), _images(4, seed=2)
    alpha = torch.randn(4, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    M = _metric(18)
    kernel = cls(3, max_memory=100_000, **kw)
    fast = kernel.agop(X, Z, alpha, M=M)
    monkeypatch.setattr(cls, "grad_block", Kernel.grad_block)
    auto = kernel.agop(X, Z, alpha, M=M)
    torch.testing.assert_close(fast, auto, rtol=1e-10, atol=1e-10 * auto.abs().max().item())


def test_autograd_grad_block_matches_the_closed_form_of_a_new_kernel():
    """A kernel defined by its block alone, registered by its class statement: found by name
    by get_kernel and the estimators, and its autograd patch-AGOP is the closed form. For
    K = (1/P) sum_j <x[j], z[j]>_M the gradient in x[j] is (1/P) M sum_z alpha_z z[j], the
    same for every x."""
    try:

        @dataclasses.dataclass
        class Linear(Kernel, name="test_linear"):
            def block(self, S, sx, sz, grid):
                return S.mean(0)

        kernel = K.get_kernel("TEST_LINEAR", 3)
        assert type(kernel) is Linear and Linear.name == "test_linear"
        X, Z, M = _images(2), _images(3, seed=2), _metric(18)
        alpha = torch.randn(3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
        pz = F.unfold(Z, 3)  # (m, q, P)
        P = pz.shape[-1]
        grad = torch.einsum("ab,mbp,mc->cpa", M, pz, alpha) / P  # (C, P, q), any x
        expected = X.shape[0] * torch.einsum("cpa,cpb->ab", grad, grad) / X.shape[0]
        torch.testing.assert_close(kernel.agop(X, Z, alpha, M=M), expected, rtol=1e-12, atol=0)
        torch.testing.assert_close(
            kernel(X, Z, M=M), torch.einsum("nap,ab,mbp->nm", F.unfold(X, 3), M, pz) / P
        )
        Xb, yb = bars_in_noise(24, sigma=1.0, height=7, width=7, seed=0)
        model = ConvRFM(kernel="test_linear", patch_size=3, n_iter=1, random_state=0)
        model.set_params(dtype=torch.float64, device="cpu", progress=False).fit(Xb, yb)
        assert isinstance(model.kernel_, Linear)
        deep = DeepConvRFM(depth=2, width=4, patch_size=3, n_iter=1, random_state=0,
                           kernel="test_linear", dtype=torch.float64, device="cpu",
                           progress=False).fit(Xb, yb)  # fmt: skip
        assert all(isinstance(layer.kernel_, Linear) for layer in deep.layers_)
    finally:
        KERNELS.pop("test_linear", None)


def test_registering_checks_the_name():
    with pytest.raises(ValueError, match="already registered"):

        @dataclasses.dataclass
        class Other(Kernel, name="laplace"):
            pass

    with pytest.raises(ValueError, match="lower-case"):

        @dataclasses.dataclass
        class Upper(Kernel, name="Upper"):
            pass

    assert "Upper" not in KERNELS and KERNELS["laplace"] is K.Laplace

    @dataclasses.dataclass
    class Unnamed(Kernel):
        def block(self, S, sx, sz, grid):
            return S.mean(0)

    assert Unnamed.name is None and Unnamed not in KERNELS.values()


def test_rbf_matches_brute_force_with_padding_and_metric():
    """K and the patch-AGOP of the RBF kernel against explicit loops over images and patch
    positions (kernel_reference), the AGOP by autograd over explicit patch variables."""
    X, Z, M = _images(3), _images(2, seed=2), _metric(18)
    L = 1.1
    kernel = K.RBF(3, bandwidth=L, padding=1)

    def fn(a, b):
        return rbf_patches(a, b, M, L)

    torch.testing.assert_close(
        kernel(X, Z, M=M), kernel_matrix(fn, X, Z, 3, padding=1), rtol=1e-12, atol=0
    )
    KXX = kernel(X, M=M)
    torch.testing.assert_close(KXX, kernel_matrix(fn, X, X, 3, padding=1), rtol=1e-12, atol=0)
    assert torch.equal(KXX.diagonal(), torch.ones(3, dtype=torch.float64))
    # K(x, x) = 1 exactly even where rounding of |x|^2 + |x|^2 - 2 <x, x> would show
    big = K.RBF(3, bandwidth=0.05, padding=1)(1000 * _images(6, seed=4))
    assert torch.equal(big.diagonal(), torch.ones(6, dtype=torch.float64))
    alpha = torch.randn(2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    ref = agop_autograd(fn, X, Z, alpha, 3, padding=1)
    torch.testing.assert_close(kernel.agop(X, Z, alpha, M=M), ref, rtol=1e-10, atol=0)


def test_rbf_is_the_laplace_convention_with_squared_distances():
    """The RBF block is the Laplace block with d^2 / (2 L^2) for d / L, at the
    same distance in the same metric: exp(-d^2 / 2) = exp(-d) exactly where d
    is 0 or 2 (L = 1), which one-position images at such distances pin down."""
    X = torch.zeros(1, 1, 1, 1, dtype=torch.float64)
    Z = torch.tensor([0.0, 2.0, 1.0], dtype=torch.float64).reshape(3, 1, 1, 1)
    rbf, lap = K.RBF(1, bandwidth=1.0)(X, Z), K.Laplace(1, bandwidth=1.0)(X, Z)
    torch.testing.assert_close(rbf[0, :2], lap[0, :2], rtol=1e-15, atol=0)
    torch.testing.assert_close(rbf[0, 2], torch.tensor(math.exp(-0.5), dtype=torch.float64))


def test_rbf_parameters_are_checked():
    X = _images(2)
    with pytest.raises(ValueError, match="bandwidth"):
        K.RBF(3, bandwidth=0.0)(X)
    with pytest.raises(ValueError, match="depth does not apply to the 'rbf' kernel"):
        K.get_kernel("rbf", 3, depth=2)
    assert K.get_kernel("RBF", 3, bandwidth=2.0) == K.RBF(3, bandwidth=2.0)
    Xb, yb = bars_in_noise(12, sigma=1.0, height=5, width=5, seed=0)
    model = ConvRFM(kernel="rbf", bandwidth=2.0, patch_size=3, n_iter=0, progress=False)
    assert type(model.fit(Xb, yb).kernel_) is K.RBF and model.kernel_.bandwidth == 2.0


@pytest.mark.parametrize("name", ["laplace", "rbf"])
def test_deep_convrfm_takes_a_kernel_without_depth(name):
    """DeepConvRFM(kernel=...) with a depth-less kernel: every layer's ConvRFM uses it unchanged
    (kernel depth 1), it fits and predicts; with the RBF kernel, its first layer's learned M is
    the normalised patch-AGOP computed by brute force (autograd over explicit patches; the
    Laplace kernel's brute force has no derivative at the coinciding pairs of K(X, X))."""
    X, y = bars_in_noise(16, sigma=1.0, height=6, width=6, seed=0)
    X = torch.as_tensor(X, dtype=torch.float64)
    model = DeepConvRFM(depth=2, width=3, patch_size=3, n_iter=1, random_state=0, kernel=name,
                        dtype=torch.float64, device="cpu", progress=False).fit(X, y)  # fmt: skip
    assert [type(layer.kernel_) for layer in model.layers_] == [type(K.get_kernel(name, 3))] * 2
    assert [h["kernel_depth"] for h in model.history_] == [1, 1]
    assert set(model.predict(X)) <= set(model.classes_)
    assert model.score(X, y) == model.layers_[-1].score(model.transform(X), y)
    if name != "rbf":
        return
    first = model.layers_[0]
    L, I = first.kernel_.bandwidth, torch.eye(9, dtype=torch.float64)
    A = agop_autograd(
        lambda a, b: rbf_patches(a, b, I, L), first.X_fit_, first.X_fit_, first.dual_coefs_[0], 3
    )
    torch.testing.assert_close(first.Ms_[1], A / torch.linalg.eigvalsh(A)[-1], rtol=1e-9, atol=0)


def test_deep_convrfm_kernel_objects_and_bad_kernels():
    """A CNTK object of the model's depth is the named kernel (layer l at depth - l); a depth or
    patch size that does not fit, or a kernel that is not one, is refused before fitting."""
    X, y = bars_in_noise(20, sigma=1.0, height=7, width=7, seed=0)
    common = dict(depth=2, width=3, patch_size=3, n_iter=1, random_state=0,
                  dtype=torch.float64, device="cpu", progress=False)  # fmt: skip
    named = DeepConvRFM(**common).fit(X, y)
    obj = DeepConvRFM(kernel=K.CNTK(3, depth=2), **common).fit(X, y)
    assert [layer.kernel_.depth for layer in obj.layers_] == [2, 1]
    for a, b in zip(named.Ms_, obj.Ms_, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=0)
    with pytest.raises(ValueError, match="depth=3 differs from depth=2"):
        DeepConvRFM(kernel=K.CNTK(3, depth=3), **common).fit(X, y)
    with pytest.raises(ValueError, match="patch_size=5 differs"):
        DeepConvRFM(kernel=K.Laplace(5), **common).fit(X, y)
    with pytest.raises(TypeError, match="kernel must be one of"):
        DeepConvRFM(kernel=3, **common).fit(X, y)
    with pytest.raises(ValueError, match="kernel must be one of"):
        DeepConvRFM(kernel="gauss", **common).fit(X, y)
    # a depth-less kernel needs one conv per layer: 2 layers fit 6 x 6 (not 3)
    small = X[:, :, :6, :6]
    two = DeepConvRFM(kernel="rbf", **common | {"depth": 3, "n_layers": 2}).fit(small, y)
    assert [h["image_size"] for h in two.history_] == [6, 4]
    with pytest.raises(ValueError, match="need at least 7 x 7"):
        DeepConvRFM(kernel="rbf", **common | {"depth": 3}).fit(small, y)


# Hostile inputs, round 4


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_kernel_objects_check_progress_as_the_estimators_do(name):
    """``progress`` of a kernel object is checked where its other parameters are, at the call
    (``kernel(X)``, ``kernel.agop``, the kernel functions, an estimator's fit): True, False or
    None (a bar for long runs only), never a string or a number whose truth would be taken
    silently (``progress='no'`` drew a bar). The accepted values give the same matrix."""
    g = torch.Generator().manual_seed(0)
    X = torch.rand(3, 1, 6, 6, generator=g, dtype=torch.float64)
    depth = 2 if name == "cntk" else None
    reference = K.get_kernel(name, 3, depth=depth)(X)
    for ok in (True, False, None, np.bool_(False)):
        assert torch.equal(K.get_kernel(name, 3, depth=depth, progress=ok)(X), reference)
    for bad in ("x", "no", 1, 0):
        kernel = K.get_kernel(name, 3, depth=depth, progress=bad)
        with pytest.raises(TypeError, match="^progress must be True, False or None"):
            kernel(X)
        with pytest.raises(TypeError, match="^progress must be True, False or None"):
            kernel.agop(X, X, torch.ones(3, dtype=torch.float64))
    with pytest.raises(TypeError, match="^progress must be True, False or None"):
        ConvRFM(K.get_kernel(name, 3, depth=depth, progress="x"), patch_size=3, depth=depth or 1,
                n_iter=0, device="cpu", progress=False).fit(X.repeat(4, 1, 1, 1),
                                                             torch.arange(12) % 2)  # fmt: skip
    with pytest.raises(TypeError, match="^progress must be True, False or None"):
        K.laplace(X, None, 3, progress="x")
