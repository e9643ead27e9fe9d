import numpy as np
import pytest
import torch

import agop
from agop.linalg import congruence, correlation, psd_power, psd_sqrt
from agop.validation import check_images, check_psd
from agop_book import notebook  # the profile, the offline switch and the footer


def test_profile_reads_environment(monkeypatch):
    monkeypatch.setenv("AGOP_PROFILE", "paper")
    assert notebook.profile() == "paper"
    monkeypatch.setenv("AGOP_PROFILE", "quick")
    assert notebook.profile() == "quick"
    monkeypatch.delenv("AGOP_PROFILE")
    assert notebook.profile() == "quick"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert notebook.profile() == "quick"  # never paper silently, also on a GPU
    monkeypatch.setenv("AGOP_PROFILE", "fast")
    with pytest.raises(ValueError, match="AGOP_PROFILE"):
        notebook.profile()


def test_offline_switch(monkeypatch):
    monkeypatch.delenv("AGOP_OFFLINE", raising=False)
    assert notebook.offline() is False
    for value, expected in [("1", True), ("true", True), ("0", False), ("no", False)]:
        monkeypatch.setenv("AGOP_OFFLINE", value)
        assert notebook.offline() is expected
    monkeypatch.setenv("AGOP_OFFLINE", "maybe")
    with pytest.raises(ValueError, match="AGOP_OFFLINE"):
        notebook.offline()


def test_default_device():
    assert agop.default_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        assert agop.default_device().type == "cpu"
        with pytest.raises(ValueError, match="CUDA"):
            agop.default_device("cuda")


def test_environment_report_names_profile_and_seed(capsys):
    text = notebook.environment_report(seed=3)
    assert "seed=3" in text and "torch" in text and "profile" in text


def test_unknown_attribute():
    with pytest.raises(AttributeError, match="no_such_thing"):
        agop.no_such_thing  # noqa: B018


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


def test_check_images_errors():
    with pytest.raises(ValueError, match=r"X must have shape \(n, c, H, W\)"):
        check_images(torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match="non-finite"):
        check_images(torch.full((1, 1, 2, 2), float("nan")))
    with pytest.raises(ValueError, match="3 channels"):
        check_images(torch.zeros(1, 1, 2, 2), channels=3)


def test_every_public_name_resolves():
    for name in agop.__all__:
        assert getattr(agop, name) is not None, name


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


def test_seed_everything_takes_seeds_below_two_to_the_63():
    """2**64 failed inside torch ("Overflow when unpacking long long"); a float was refused
    with a message that did not say why. numpy integers are seeds."""
    from agop.runtime import seed_everything

    a = torch.rand(3, generator=seed_everything(np.int64(2**63 - 1)))
    assert torch.equal(a, torch.rand(3, generator=torch.Generator().manual_seed(2**63 - 1)))
    with pytest.raises(ValueError, match=r"seed must be .*below 2\*\*63.*got 18446744073709551616"):
        seed_everything(2**64)
    with pytest.raises(TypeError, match="seed must be an integer, got 1.5"):
        seed_everything(1.5)


def test_congruence_block_is_a_positive_integer():
    """block=0 failed inside range(); a numpy integer is an int."""
    W = torch.randn(2, 3, 5, dtype=torch.float64)
    G = torch.eye(3, dtype=torch.float64).expand(2, 3, 3)
    torch.testing.assert_close(congruence(W, G, block=np.int64(2)), congruence(W, G))
    with pytest.raises(ValueError, match="block must be a positive integer, got 0"):
        congruence(W, G, block=0)
