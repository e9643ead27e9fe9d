"""Option contracts: every option of the patch kernels, the edge statistics, the theorem's
closed forms and the ridge solvers, each against an independent reference (the same kernel on
padded inputs, explicit loops, autograd, the definition written out, another solver path)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from kernel_reference import (
    agop_autograd,
    cnngp_patches,
    cntk_patches,
    kernel_matrix,
    laplace_patches,
)
from skimage.filters import sobel

from agop import kernels as K
from agop.solve import select_ridge
from agop_book import ch02_theorem as theory
from agop_book.ch04_edges import orientation_selectivity, sobel_correlation

F64 = torch.float64


def _images(n, c=1, H=5, W=6, seed=0):
    return torch.randn(n, c, H, W, generator=torch.Generator().manual_seed(seed), dtype=F64)


def _metric(q, seed=5):
    B = torch.randn(q, q, generator=torch.Generator().manual_seed(seed), dtype=F64)
    return B @ B.T / q + 0.5 * torch.eye(q, dtype=F64)


# --------------------------------------------------------------------------------------------
# patch kernels: padding, patch size, channels, metric, bandwidth, depth, kind
# --------------------------------------------------------------------------------------------

#: kernels with a ``padding`` option: name -> (kernel(X, Z, k, padding, M), agop(...), reference)
PADDED = {
    "laplace": (
        lambda X, Z, k, p, M: K.laplace(X, Z, k, 1.7, p, M=M),
        lambda X, Z, a, k, p, M: K.laplace_agop(X, Z, a, k, 1.7, p, M=M),
        lambda M: lambda a, b: laplace_patches(a, b, M, 1.7),
    ),
    "cnngp": (
        lambda X, Z, k, p, M: K.cnngp(X, Z, k, p, M=M),
        lambda X, Z, a, k, p, M: K.cnngp_agop(X, Z, a, k, p, M=M),
        lambda M: lambda a, b: cnngp_patches(a, b, M),
    ),
    "Laplace object": (
        lambda X, Z, k, p, M: K.get_kernel("laplace", k, bandwidth=1.7, padding=p)(X, Z, M=M),
        lambda X, Z, a, k, p, M: K.get_kernel("laplace", k, bandwidth=1.7, padding=p).agop(
            X, Z, a, M=M
        ),
        lambda M: lambda a, b: laplace_patches(a, b, M, 1.7),
    ),
    "CNNGP object": (
        lambda X, Z, k, p, M: K.get_kernel("cnngp", k, padding=p)(X, Z, M=M),
        lambda X, Z, a, k, p, M: K.get_kernel("cnngp", k, padding=p).agop(X, Z, a, M=M),
        lambda M: lambda a, b: cnngp_patches(a, b, M),
    ),
}


@pytest.mark.parametrize("padding", [1, 2])
@pytest.mark.parametrize("name", sorted(PADDED))
def test_padding_is_the_kernel_on_zero_padded_images(name, padding):
    kernel, agop, reference = PADDED[name]
    c, k = 2, 3
    X, Z = _images(2, c, seed=1), _images(3, c, seed=2)
    M = _metric(c * k * k)
    alpha = torch.randn(3, 2, generator=torch.Generator().manual_seed(3), dtype=F64)
    pad = (padding,) * 4
    ours = kernel(X, Z, k, padding, M)
    torch.testing.assert_close(ours, kernel(F.pad(X, pad), F.pad(Z, pad), k, 0, M))
    torch.testing.assert_close(ours, kernel_matrix(reference(M), X, Z, k, padding))
    G = agop(X, Z, alpha, k, padding, M)
    torch.testing.assert_close(G, agop(F.pad(X, pad), F.pad(Z, pad), alpha, k, 0, M))
    ref = agop_autograd(reference(M), X, Z, alpha, k, padding)
    torch.testing.assert_close(G, ref, rtol=1e-9, atol=1e-12 * float(ref.abs().max()))


#: every kernel on a grid of its other options, against the explicit loops
OPTIONS = {
    "laplace": [
        (dict(k=k, bandwidth=L), lambda X, Z, M, o: K.laplace(X, Z, o["k"], o["bandwidth"], M=M),
         lambda M, o, c: lambda a, b: laplace_patches(a, b, M, o["bandwidth"]))
        for k in (1, 2, 4) for L in (0.5, 3.0)
    ],
    "cnngp": [
        (dict(k=k), lambda X, Z, M, o: K.cnngp(X, Z, o["k"], M=M),
         lambda M, o, c: lambda a, b: cnngp_patches(a, b, M))
        for k in (1, 2, 4)
    ],
    "cntk": [
        (dict(k=k, depth=d, kind=kind),
         lambda X, Z, M, o: K.cntk(X, Z, o["k"], o["depth"], o["kind"], M=M),
         lambda M, o, c: lambda a, b: cntk_patches(a, b, M, c, o["k"], o["depth"], o["kind"]))
        for k, d in ((1, 1), (2, 1), (2, 2), (3, 1)) for kind in ("ntk", "nngp")
    ],
}  # fmt: skip


@pytest.mark.parametrize(
    "name, i", [(name, i) for name, grid in OPTIONS.items() for i in range(len(grid))]
)
def test_kernel_options_match_the_explicit_loops(name, i):
    options, ours, reference = OPTIONS[name][i]
    c = 2
    X, Z = _images(2, c, H=5, W=6, seed=4), _images(2, c, H=5, W=6, seed=6)
    M = _metric(c * options["k"] ** 2)
    if name == "cntk":  # the brute force takes the patches of the first layer only
        from kernel_reference import patches

        def reference_matrix():
            return torch.stack(
                [torch.stack([reference(M, options, c)(patches(x, options["k"]),
                                                       patches(z, options["k"])) for z in Z])
                 for x in X]
            )  # fmt: skip

        ref = reference_matrix()
    else:
        ref = kernel_matrix(reference(M, options, c), X, Z, options["k"])
    torch.testing.assert_close(ours(X, Z, M, options), ref, rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------------------------
# edges: colour images, colour filters, the zero-mean control
# --------------------------------------------------------------------------------------------


def test_sobel_correlation_of_colour_images_against_a_per_channel_computation():
    """Colour images and a block-diagonal operator (one block per channel): the feature map is
    :math:`\\sqrt{\\sum_c \\|A_c^{1/2} x_c[j]\\|^2}`, computed here one channel at a time by
    explicit slicing, correlated with the Sobel magnitude of the channel mean."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 9, 10, generator=g, dtype=F64)
    x[:, 1, :, 5:] += 1.0  # an edge in the second channel only
    k = 3
    blocks = [_metric(k * k, seed=s) for s in (1, 2, 3)]
    blocks[2] = 5.0 * blocks[2]  # weights differ by channel: an order mix-up shows
    A = torch.block_diag(*blocks)
    ours = sobel_correlation(A, x, k)
    ref = []
    for img in x:
        H1, W1 = img.shape[1] - k + 1, img.shape[2] - k + 1
        fmap = torch.zeros(H1, W1, dtype=F64)
        for c in range(3):
            for i in range(H1):
                for j in range(W1):
                    p = img[c, i : i + k, j : j + k].reshape(-1)
                    fmap[i, j] += p @ blocks[c] @ p
        edges = sobel(img.mean(0).numpy())[k // 2 : k // 2 + H1, k // 2 : k // 2 + W1]
        ref.append(np.corrcoef(fmap.sqrt().numpy().ravel(), edges.ravel())[0, 1])
    np.testing.assert_allclose(ours, ref, rtol=1e-10)


def test_orientation_selectivity_of_colour_filters_against_each_channel():
    """With one phase and one wavelength the colour profile is
    :math:`r(\\theta)^2 = \\sum_c (\\|f_c\\| / \\|f\\|)^2 r_c(\\theta)^2`."""
    from agop_book.ch04_edges import oriented_filter_bank

    bank = oriented_filter_bank(5, wavelengths=[4.0], phases=(0.0,))
    f = torch.randn(4, 3, 5, 5, generator=torch.Generator().manual_seed(1), dtype=F64)
    colour = orientation_selectivity(f, bank)["profile"]
    share = f.flatten(2).norm(dim=2) ** 2 / f.flatten(1).norm(dim=1, keepdim=True) ** 2
    per_channel = torch.stack(
        [orientation_selectivity(f[:, c], bank)["profile"] for c in range(3)], 1
    )
    torch.testing.assert_close(colour**2, (share[:, :, None] * per_channel**2).sum(1))


# --------------------------------------------------------------------------------------------
# the theorem's closed forms at activation slopes other than 0 and 1
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("slope", [0.3, 2.5])
@pytest.mark.parametrize("hidden", [(), (3,), (3, 2)])
def test_closed_forms_at_other_relu_slopes(slope, hidden):
    """:math:`v = \\phi'(0)^{L+1} a \\prod_l c_l w_l r^2 \\mathbf 1` against autograd at
    :math:`\\phi'(0) = ` ``slope``, and :math:`W_1 = \\eta v u^\\top` against a gradient step."""
    net = theory.TheoremNet(1, 6, width=4, hidden=hidden, activation="relu",
                            relu_grad_at_zero=slope, dtype=F64)  # fmt: skip
    v = theory.closed_form_v(net)
    consts = net.upper_constants()
    expected = slope ** (len(hidden) + 1) * consts[-1]
    for w, c in zip(hidden, consts[:-1], strict=True):
        expected *= c * w * 3**2
    torch.testing.assert_close(v, torch.full((4,), expected, dtype=F64))
    torch.testing.assert_close(theory.derivative_at_zero(net), v.expand(16, 4))
    X = _images(5, 1, H=6, W=6, seed=7)
    y = torch.tensor([1.0, -1.0, 1.0, 1.0, -1.0], dtype=F64)
    W1 = theory.first_layer(theory.train_gd(net, X, y, eta=0.05))
    torch.testing.assert_close(W1, theory.closed_form_w1(X, y, v, eta=0.05, kernel_size=3))


# --------------------------------------------------------------------------------------------
# ridge selection: every solver path picks the same ridge on ties
# --------------------------------------------------------------------------------------------

#: every way select_ridge can run: the method asked for, or the one a memory budget picks
SOLVER_PATHS = {
    "eigen": dict(method="eigen"),
    "cholesky": dict(method="cholesky"),
    "auto, budget fits eigen": dict(max_memory=10**9),
    "auto, budget forces cholesky": dict(max_memory=1),
}


def _tie_problem():
    """Targets on four separated clusters: every ridge of the grid classifies the validation
    split perfectly, so accuracy ties across the whole grid."""
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [9.0, 0.0], [0.0, 9.0], [9.0, 9.0]], dtype=F64)
    labels = torch.arange(16) % 4
    x = centres[labels] + 0.1 * torch.randn(16, 2, generator=g, dtype=F64)
    Kx = torch.exp(-torch.cdist(x, x))
    Y = torch.eye(4, dtype=F64)[labels]
    return Kx[:12, :12], Y[:12], Kx[12:, :12], Y[12:]


@pytest.mark.parametrize("metric", ["accuracy", "mse"])
@pytest.mark.parametrize("path", sorted(SOLVER_PATHS))
def test_every_solver_path_breaks_ties_the_same_way(path, metric):
    Kt, Yt, Kv, Yv = _tie_problem()
    ridges = [1e-3, 1e-6, 1e-4] if metric == "accuracy" else [1e-3, 1e-3, 1e-3]
    best, dual_coef, scores = select_ridge(Kt, Yt, Kv, Yv, ridges, metric, **SOLVER_PATHS[path])
    if metric == "accuracy":
        assert scores == [1.0, 1.0, 1.0]
        assert best == 1e-3  # documented: ties go to the larger ridge
    else:
        assert len(set(scores)) == 1 and best == 1e-3
    ref = torch.linalg.solve(Kt + best * torch.eye(12, dtype=F64), Yt)
    torch.testing.assert_close(dual_coef, ref, rtol=1e-6, atol=1e-8)


def test_solver_paths_agree_on_scores_and_choice():
    Kt, Yt, Kv, Yv = _tie_problem()
    Yt, Yv = Yt[:, :1] - 0.5 + 0.1 * Kt[:, :1], Yv[:, :1] - 0.5  # an mse problem without ties
    ridges = [1e-6, 1e-3, 1e-1, 1.0]
    runs = {p: select_ridge(Kt, Yt, Kv, Yv, ridges, "mse", **o) for p, o in SOLVER_PATHS.items()}
    bests = {p: r[0] for p, r in runs.items()}
    assert len(set(bests.values())) == 1, bests
    for p, r in runs.items():
        np.testing.assert_allclose(r[2], runs["eigen"][2], rtol=1e-8, err_msg=p)
    assert math.isfinite(sum(runs["eigen"][2]))
