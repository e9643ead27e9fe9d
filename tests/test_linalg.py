"""agop.linalg: powers and square roots of PSD matrices, the congruence W^T G W by tiles, and the
correlation of two matrices, each against its definition (eigendecomposition, the plain product,
the formula written out)."""

import numpy as np
import pytest
import torch
from torch import nn

from agop.features import layer_correlations
from agop.linalg import congruence, correlation, psd_power, psd_sqrt
from agop.validation import (
    check_psd,
)


def small_cnn(seed=0):
    torch.manual_seed(seed)
    return (
        nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(32, 3)).double().eval()
    )


def test_correlation_is_scale_free_over_the_whole_float_range():
    g = torch.Generator().manual_seed(0)
    A, B = (
        torch.randn(6, 6, generator=g, dtype=torch.float64),
        torch.randn(6, 6, generator=g, dtype=torch.float64),
    )
    for kind in ("pearson", "cosine"):
        ref = correlation(A, B, kind)
        for s in (1e-300, 1e-150, 1e150, 1e300):
            assert correlation(s * A, B / s, kind) == pytest.approx(ref, rel=1e-12)
    with pytest.raises(ValueError, match="constant matrix"):
        correlation(torch.full((6, 6), 0.1, dtype=torch.float64), A)
    with pytest.raises(ValueError, match="B is zero"):
        correlation(A, torch.zeros(6, 6), "cosine")
    assert correlation(torch.ones(3, 3), torch.ones(3, 3), "cosine") == pytest.approx(1.0)


def test_psd_power_checks_power():
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="power must be a finite number"):
            psd_power(torch.eye(3), bad)
    with pytest.raises(ValueError, match="power must be a real number"):
        psd_power(torch.eye(3), "1/2")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_matrices_in_psd_power_and_layer_correlations(dtype):
    g = torch.Generator().manual_seed(0)
    B = torch.randn(9, 9, generator=g, dtype=torch.float64)
    A = B @ B.T
    for power in (0.5, 2.0, -1.0):
        out = psd_power(A.to(dtype), power)
        assert out.dtype == dtype
        ref = psd_power(A.to(dtype).double(), power)  # the same rounded matrix, in float64
        torch.testing.assert_close(out.double(), ref, rtol=3e-2, atol=3e-2 * float(ref.abs().max()))
    model = small_cnn()
    corr = layer_correlations(model.to(dtype), {"0": A.to(dtype)}, power=0.5)["0"]
    ref = layer_correlations(model.double(), {"0": A.to(dtype).double()}, power=0.5)["0"]
    assert corr == pytest.approx(ref, abs=2e-2)


def test_psd_power_matches_eigendecomposition(float64):
    g = torch.Generator().manual_seed(0)
    B = torch.randn(6, 4, generator=g)
    A = B @ B.T  # rank 4, PSD
    root = psd_sqrt(A)
    torch.testing.assert_close(root @ root, A, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(psd_power(A, 1.0), A)
    torch.testing.assert_close(psd_power(A, 0.25) @ psd_power(A, 0.75), A, rtol=1e-9, atol=1e-9)


def test_psd_checks_reject_indefinite_and_asymmetric():
    with pytest.raises(ValueError, match="positive semi-definite"):
        psd_sqrt(torch.diag(torch.tensor([1.0, -1.0])))
    with pytest.raises(ValueError, match="symmetric"):
        check_psd(torch.tensor([[1.0, 2.0], [0.0, 1.0]]), "M")
    with pytest.raises(ValueError, match="M must be a square matrix"):
        check_psd(torch.ones(2, 3), "M")


def test_correlation_scale_invariant_and_bounded():
    g = torch.Generator().manual_seed(1)
    A, B = torch.randn(5, 5, generator=g), torch.randn(5, 5, generator=g)
    for kind in ("pearson", "cosine"):
        r = correlation(A, B, kind)
        a, b = A.flatten().double(), B.flatten().double()
        if kind == "pearson":
            a, b = a - a.mean(), b - b.mean()
        assert r == pytest.approx(float(a @ b / (a.norm() * b.norm())), abs=1e-6)
        assert correlation(3.0 * A, 0.5 * B, kind) == pytest.approx(r, abs=1e-6)
        assert correlation(A, A, kind) == pytest.approx(1.0)
    # pearson ignores a constant shift, cosine does not
    assert correlation(A + 7, B, "pearson") == pytest.approx(correlation(A, B, "pearson"))
    with pytest.raises(ValueError, match="kind"):
        correlation(A, B, "spearman")
    with pytest.raises(ValueError, match="same shape"):
        correlation(A, torch.ones(4, 4))
    with pytest.raises(ValueError, match="non-finite"):
        correlation(A, torch.full((5, 5), float("nan")))


@pytest.mark.parametrize("q, block", [(7, 512), (23, 5), (24, 8)])
def test_congruence_is_the_symmetric_sandwich(float64, q, block):
    """sum_g W_g^T G_g W_g by tiles equals the plain product and is exactly symmetric."""
    gen = torch.Generator().manual_seed(q)
    W = torch.randn(3, 4, q, generator=gen)
    B = torch.randn(3, 4, 4, generator=gen)
    G = B @ B.mT
    A = congruence(W, G, block=block)
    torch.testing.assert_close(
        A, sum(W[g].T @ G[g] @ W[g] for g in range(3)), rtol=1e-12, atol=1e-12
    )
    assert torch.equal(A, A.T)
    torch.testing.assert_close(congruence(W[0], G[0]), W[0].T @ G[0] @ W[0])
    with pytest.raises(ValueError, match="W must be"):
        congruence(W, G[:, :3, :3])


def test_congruence_block_is_a_positive_integer():
    """block=0 failed inside range(); a numpy integer is an int."""
    W = torch.randn(2, 3, 5, dtype=torch.float64)
    G = torch.eye(3, dtype=torch.float64).expand(2, 3, 3)
    torch.testing.assert_close(congruence(W, G, block=np.int64(2)), congruence(W, G))
    with pytest.raises(ValueError, match="block must be a positive integer, got 0"):
        congruence(W, G, block=0)


# --------------------------------------------------------------------------------------------
# Held-out style bugs, round 4


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_power_is_the_float32_power_rounded_once(dtype):
    """A float16/bfloat16 matrix is decomposed *and recombined* in float32, then rounded to its
    own dtype once: ``psd_power(A, p)`` is bit for bit ``psd_power(A.float(), p)`` cast back.
    (A cast of the eigenvectors back to half precision before the product rounds every term.)"""
    g = torch.Generator().manual_seed(0)
    B = torch.randn(12, 12, generator=g)
    A = (B @ B.T / 12).to(dtype)
    A = (A + A.T) / 2  # exactly symmetric in its own dtype
    for power in (0.5, 2.0, -1.0):
        reference = psd_power(A.float(), power, check=False).to(dtype)
        out = psd_power(A, power, check=False)
        assert out.dtype == dtype
        assert torch.equal(out, reference), power


# Held-out style bugs, round 5


@pytest.mark.parametrize("power", [-1.0, -0.5])
@pytest.mark.parametrize("v", [[1.0, 2.0, 3.0], [0.3, 0.7, 1.1, 2.9]])
def test_a_negative_power_of_a_rank_one_matrix_is_its_pseudo_inverse_power(v, power):
    """``(v v^T)^p = |v|^{2p} v v^T / |v|^2`` for ``p < 0`` (the pseudo-inverse power, the
    docstring's promise), and ``torch.linalg.pinv`` at ``p = -1``. The eigenvalues of ``v v^T``
    that should be zero come out of ``eigh`` as round-off of either sign (``+1e-16``); was: a
    positive one was raised to ``p`` (entries near ``1e15``). A zero eigenvalue that is exactly
    zero (``diag(4, 0)``) stays zero too (was, for a mutant keeping ``>= 0``: ``inf``)."""
    e = torch.tensor(v, dtype=torch.float64)[:, None]
    A = e @ e.T
    norm2 = float(e.square().sum())
    expected = norm2**power * A / norm2
    torch.testing.assert_close(psd_power(A, power), expected, rtol=1e-10, atol=1e-12)
    if power == -1.0:
        torch.testing.assert_close(
            psd_power(A, power), torch.linalg.pinv(A), rtol=1e-10, atol=1e-12
        )
    D = torch.diag(torch.tensor([4.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(
        psd_power(D, power), torch.diag(torch.tensor([4.0**power, 0.0], dtype=torch.float64))
    )
