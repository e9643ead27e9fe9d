"""Edge statistics on planted operators: oriented derivative filters must score as oriented,
isotropic ones (blobs, centre-surround high-pass) must not; the Sobel statistic's controls
against closed forms and invariances."""

import math

import numpy as np
import pytest
import torch

from agop.edges import (
    edge_controls,
    eigen_edge_scores,
    orientation_selectivity,
    oriented_filter_bank,
    random_filter_scores,
    sobel_correlation,
)

K = 7
GRID = torch.arange(K, dtype=torch.float64) - (K - 1) / 2
V, U = torch.meshgrid(GRID, GRID, indexing="ij")
GAUSS = torch.exp(-(U**2 + V**2) / (2 * 1.5**2))


def derivative(theta):
    """First derivative of a Gaussian along theta: an oriented edge detector."""
    return -(U * math.cos(theta) + V * math.sin(theta)) * GAUSS


def centre_surround():
    """Laplacian of a Gaussian: an isotropic high-pass (zero mean)."""
    s2 = 1.5**2
    f = ((U**2 + V**2) / s2 - 2) * GAUSS
    return f - f.mean()


def test_bank_filters_are_zero_mean_unit_norm_and_match_themselves():
    bank, theta = oriented_filter_bank(K)
    assert bank.shape[1:] == (K, K) and len(theta) == len(bank)
    torch.testing.assert_close(bank.flatten(1).mean(1), torch.zeros(len(bank), dtype=torch.float64))
    torch.testing.assert_close(
        bank.flatten(1).norm(dim=1), torch.ones(len(bank), dtype=torch.float64)
    )
    out = orientation_selectivity(bank[:5])
    torch.testing.assert_close(out["match"], torch.ones(5, dtype=torch.float64))
    with pytest.raises(ValueError, match="kernel_size"):
        oriented_filter_bank(2)


@pytest.mark.parametrize("theta", [0.0, math.pi / 4, math.pi / 2, 3 * math.pi / 4, 0.3])
def test_planted_oriented_filters_are_selective_and_found_at_their_angle(theta):
    out = orientation_selectivity(derivative(theta)[None])
    assert out["selectivity"][0] > 0.7
    diff = abs(float(out["orientation"][0]) - theta) % math.pi
    assert min(diff, math.pi - diff) < math.pi / 16
    assert out["match"][0] > 0.8


def test_isotropic_filters_are_not_selective():
    out = orientation_selectivity(torch.stack([centre_surround(), GAUSS]))
    assert (out["selectivity"] < 0.1).all()


def test_rotating_a_filter_by_90_degrees_turns_its_orientation_by_pi_over_2():
    f = derivative(0.3) + 0.5 * derivative(0.3 + 0.2)
    a = float(orientation_selectivity(f[None])["orientation"][0])
    b = float(orientation_selectivity(torch.rot90(f, 1)[None])["orientation"][0])
    diff = abs(a - b) % math.pi
    assert diff == pytest.approx(math.pi / 2, abs=0.05)


def test_colour_filters_take_the_best_channel_combination():
    bank, _ = oriented_filter_bank(K)
    u = torch.tensor([0.2, -0.7, 0.4], dtype=torch.float64)
    f = u[:, None, None] * bank[3]
    out = orientation_selectivity(f[None])
    assert float(out["match"][0]) == pytest.approx(1.0)


def test_eigen_scores_of_a_planted_operator_beat_isotropic_and_random_ones():
    thetas = [0.0, math.pi / 2, math.pi / 4]
    vs = [derivative(t).flatten() for t in thetas]
    vs = [v / v.norm() for v in vs]
    oriented = sum((3 - i) * torch.outer(v, v) for i, v in enumerate(vs)) + 1e-3 * torch.eye(K * K)
    iso = centre_surround().flatten()
    iso = iso / iso.norm()
    isotropic = 3 * torch.outer(iso, iso) + 1e-3 * torch.eye(K * K)
    s_oriented = eigen_edge_scores(oriented, 1, K, n_filters=2)
    s_iso = eigen_edge_scores(isotropic, 1, K, n_filters=1)
    rand = random_filter_scores(1, K, 300, seed=0)
    assert s_oriented["selectivity"].min() > 0.7
    assert s_iso["selectivity"][0] < 0.1
    assert float(s_oriented["eigenvalue"][0]) == pytest.approx(1.0)
    assert 0.1 < float(rand["selectivity"].mean()) < 0.7  # random filters sit in between


def _edge_images():
    """Step edges at several orientations, smoothed, on a constant background."""
    g = torch.arange(48, dtype=torch.float64) - 23.5
    y, x = torch.meshgrid(g, g, indexing="ij")
    imgs = [
        torch.sigmoid((x * math.cos(t) + y * math.sin(t) - 3) / 1.5) + 0.5 for t in (0.0, 0.7, 1.9)
    ]
    return torch.stack(imgs)[:, None].float()


def test_sobel_correlation_matches_the_definition_and_ranks_operators():
    from skimage.filters import sobel

    from agop.features import feature_map

    x = _edge_images()
    q = K * K
    A = torch.eye(q, dtype=torch.float64) - 1 / q
    inner = (slice(K // 2, -(K // 2)),) * 2  # positions whose patch lies inside the image
    expected = [
        np.corrcoef(
            m.double().numpy()[inner].ravel(), sobel(img[0].double().numpy())[inner].ravel()
        )[0, 1]
        for m, img in zip(feature_map(A, x.double(), K), x, strict=True)
    ]
    np.testing.assert_allclose(sobel_correlation(A, x, K), expected, atol=1e-12)
    # the local-mean-removing operator sees edges; M = I sees brightness
    assert sobel_correlation(A, x, K).mean() > sobel_correlation(torch.eye(q), x, K).mean() + 0.3
    with pytest.raises(ValueError, match="constant"):
        sobel_correlation(torch.eye(q), torch.ones(1, 1, 16, 16), K)


def test_edge_controls_of_a_multiple_of_the_identity_are_the_identity():
    """c I keeps its spectrum in every eigenbasis: every draw is the M = I control."""
    x = _edge_images()
    out = edge_controls(2.0 * torch.eye(K * K), x, K, n_draws=3, seed=1)
    assert out["M"] == pytest.approx(out["identity"], abs=1e-6)
    assert out["spectrum_mean"] == pytest.approx(out["identity"], abs=1e-6)
    assert out["spectrum_std"] < 1e-6
    # an oriented operator's own spectrum in random bases loses what it saw
    v = derivative(0.0).flatten()
    M = torch.outer(v, v) / v.norm() ** 2 + 1e-2 * torch.eye(K * K)
    planted = edge_controls(M, x, K, n_draws=3, seed=1)
    assert planted["M"] > planted["spectrum_mean"] + 3 * planted["spectrum_std"]
    # the draws against q x q matrices O L O^T built from the documented draws
    generator = torch.Generator().manual_seed(1)
    lam = torch.linalg.eigvalsh(M.double())
    for d in planted["spectrum_draws"]:
        B = torch.randn(K * K, K * K, generator=generator, dtype=torch.float64)
        Q, R = torch.linalg.qr(B)
        O = Q * torch.sign(torch.diagonal(R))
        assert d == pytest.approx(
            sobel_correlation(O @ torch.diag(lam) @ O.T, x, K).mean(), abs=1e-6
        )
    assert planted["local_mean"] == pytest.approx(
        sobel_correlation(torch.eye(K * K, dtype=torch.float64) - 1 / (K * K), x, K).mean()
    )
    assert planted["local_mean"] > planted["identity"] + 0.3
    with pytest.raises(ValueError, match="n_draws"):
        edge_controls(M, x, K, n_draws=0)
    # colour images (q = 147): the singular I - 11^T/q must pass as PSD in float32 inputs
    colour = edge_controls(torch.eye(3 * K * K), x.repeat(1, 3, 1, 1), K, n_draws=1)
    assert colour["local_mean"] > colour["identity"]


def test_numpy_sizes_are_ints_and_a_non_square_kernel_is_refused():
    """np.int64 sizes give the same scores as ints; a (k, k') kernel was silently cut to k x k."""
    ref = random_filter_scores(1, 5, n_filters=10, seed=3)
    out = random_filter_scores(np.int64(1), np.int64(5), n_filters=np.int64(10), seed=np.int64(3))
    for key in ref:
        assert torch.equal(ref[key], out[key])
    bank, theta = oriented_filter_bank(np.int64(5), n_orientations=np.int64(4))
    assert bank.shape[1:] == (5, 5) and theta.unique().numel() == 4
    with pytest.raises(ValueError, match=r"kernel_size must be square .*\(5, 3\)"):
        oriented_filter_bank((5, 3))
    with pytest.raises(TypeError, match="n_filters must be an integer, got 2.5"):
        random_filter_scores(1, 5, n_filters=2.5)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        random_filter_scores(1, 5, seed=-1)


def test_fit_shuffled_is_the_fit_on_permuted_labels_and_stays_near_its_start_on_noise():
    from agop import ConvRFM
    from agop.data import bars_in_noise
    from agop.edges import fit_shuffled

    model = ConvRFM("laplace", 3, n_iter=1, random_state=0, device="cpu", progress=False)
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(200, 1, 6, 6, generator=g, dtype=torch.float64)
    y = torch.arange(200) % 2

    def cos_identity(M):
        return float(torch.trace(M) / (M.norm() * 3))

    shuffled = [fit_shuffled(model, noise, y, seed=s).Ms_[-1] for s in range(3)]
    order = torch.randperm(200, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(
        shuffled[2], ConvRFM(**model.get_params()).fit(noise, y[order]).Ms_[-1]
    )
    # planted: bars carry the label; the true-label fit moves far from I, shuffled noise does not
    Xb, yb = bars_in_noise(
        200, sigma=2.0, height=6, width=6, seed=0, dtype=torch.float64, device="cpu"
    )
    planted = cos_identity(ConvRFM(**model.get_params()).fit(Xb, yb).Ms_[-1])
    near = np.mean([cos_identity(M) for M in shuffled])
    assert near > 0.75 and near > planted + 0.15, (near, planted)
    with pytest.raises(ValueError, match="one label per image"):
        fit_shuffled(model, noise, y[:10])


def test_label_free_operators_on_planted_patch_subspaces():
    from agop.patches import extract_patches, patch_covariance, patch_second_moment

    g = torch.Generator().manual_seed(0)
    # images that vary only down the rows: every 3x3 patch is constant along its rows, so both
    # operators live in the 3-dimensional subspace spanned by the row indicators
    x = torch.randn(5, 1, 8, 1, generator=g, dtype=torch.float64).expand(5, 1, 8, 8)
    rows = torch.kron(torch.eye(3, dtype=torch.float64), torch.ones(1, 3, dtype=torch.float64))
    proj = rows.T @ rows / 3  # projection on row-constant patches
    for A in (patch_second_moment(x, 3), patch_covariance(x, 3)):
        torch.testing.assert_close(proj @ A @ proj, A)
        assert int(torch.linalg.matrix_rank(A, rtol=1e-10)) == 3
    # brute force over images and positions, zero padding included
    p = [x[i, 0, :, :].new_zeros(10, 10) for i in range(5)]
    for i in range(5):
        p[i][1:9, 1:9] = x[i, 0]
    vecs = torch.stack(
        [p[i][r : r + 3, c : c + 3].flatten() for i in range(5) for r in range(8) for c in range(8)]
    )
    torch.testing.assert_close(patch_second_moment(x, 3, padding=1), vecs.T @ vecs / len(vecs))
    centred = vecs - vecs.mean(0)
    torch.testing.assert_close(patch_covariance(x, 3, padding=1), centred.T @ centred / len(vecs))
    assert extract_patches(x, 3, padding=1).shape[1] == 64
