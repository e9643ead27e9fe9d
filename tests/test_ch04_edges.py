"""Edge statistics on planted operators: oriented derivative filters must score as oriented,
isotropic ones (blobs, centre-surround high-pass) must not; the Sobel statistic's controls
against closed forms and invariances."""

import math

import numpy as np
import pytest
import torch

from agop_book.ch04_edges import (
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
    from agop_book.ch04_edges import fit_shuffled
    from agop_book.ch05_deep_convrfm import bars_in_noise

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


# Mutation testing: each test below kills survivors of `make mutation MODULES=edges`
# (CONTRIBUTING.md, "Mutation testing"), against a reference written out independently.


def _gabor_by_definition(k, theta, lam, phi):
    """One bank filter from the documented formula, pixel by pixel, zero-mean and unit-norm."""
    s = min(lam / 2, k / 2)
    c = (k - 1) / 2
    f = np.empty((k, k))
    for row in range(k):
        for col in range(k):
            u, v = col - c, row - c
            along = u * math.cos(theta) + v * math.sin(theta)
            f[row, col] = math.exp(-(u * u + v * v) / (2 * s * s)) * math.cos(
                2 * math.pi * along / lam + phi
            )
    f -= f.mean()
    return f / np.linalg.norm(f)


@pytest.mark.parametrize(
    ("k", "n_orientations", "wavelengths", "phases"),
    [
        (5, 8, None, (0.0, math.pi / 2)),  # defaults: 2.5, sqrt(2.5 k), k
        (3, 2, [3.0, 8.0, 0.8], (0.0, math.pi / 2, 1.0)),  # k = 3 allowed; s capped at k / 2
        (4, 4, [2.5], (0.3,)),  # even k: the grid's centre between pixels
    ],
)
def test_bank_is_the_documented_gabor_formula(k, n_orientations, wavelengths, phases):
    bank, theta = oriented_filter_bank(k, n_orientations, wavelengths, phases)
    lams = [2.5, math.sqrt(2.5 * k), k] if wavelengths is None else wavelengths
    expected, angles = [], []
    for i in range(n_orientations):
        t = i * math.pi / n_orientations
        for lam in lams:
            for phi in phases:
                expected.append(_gabor_by_definition(k, t, lam, phi))
                angles.append(t)
    np.testing.assert_allclose(bank.numpy(), np.stack(expected), atol=1e-12)
    np.testing.assert_allclose(theta.numpy(), angles, atol=1e-15)
    assert bank.dtype == theta.dtype == torch.float64


def test_bank_drops_vanishing_filters_and_refuses_bad_sizes():
    """On odd k the grid is integer: the odd filter of wavelength 2 is sin(pi u) = 0 at
    theta = 0 and pi / 2, so only the two even ones remain."""
    bank, theta = oriented_filter_bank(5, 2, [2.0])
    assert bank.shape == (2, 5, 5)
    np.testing.assert_allclose(theta.numpy(), [0.0, math.pi / 2])
    np.testing.assert_allclose(bank[0].numpy(), _gabor_by_definition(5, 0.0, 2.0, 0.0), atol=1e-12)
    for bad in ([], [0.0], [1.0, -2.0], [[2.0, 3.0]]):
        with pytest.raises(ValueError, match="wavelengths"):
            oriented_filter_bank(5, wavelengths=bad)
    with pytest.raises(ValueError, match="n_orientations"):
        oriented_filter_bank(5, n_orientations=1)
    with pytest.raises(ValueError, match="kernel_size"):
        oriented_filter_bank(0)


def _selectivity_by_definition(filters, bank, theta):
    """The module docstring's statistics with loops: per filter v (c x k^2) and bank filter b,
    |V b| / |v|; per orientation the best; OSI at the best orientation and the one pi/2 away;
    the preferred angle of sum r^2 exp(2 i theta), halved."""
    angles = sorted(set(theta.tolist()))
    half = len(angles) // 2
    out = {"match": [], "selectivity": [], "orientation": [], "profile": []}
    for f in filters:
        V = f.reshape(f.shape[0], -1).numpy()
        V = V / np.linalg.norm(V)
        resp = [np.linalg.norm(V @ b.flatten().numpy()) for b in bank]
        r = [max(x for x, t in zip(resp, theta.tolist(), strict=True) if t == a) for a in angles]
        best = int(np.argmax(r))
        r_best, r_orth = r[best], r[(best + half) % len(angles)]
        z = sum(
            ri**2 * complex(math.cos(2 * a), math.sin(2 * a))
            for ri, a in zip(r, angles, strict=True)
        )
        out["match"].append(max(resp))
        out["selectivity"].append((r_best - r_orth) / (r_best + r_orth))
        out["orientation"].append((math.atan2(z.imag, z.real) / 2) % math.pi)
        out["profile"].append(r)
    return out


def test_selectivity_is_the_documented_index_on_random_colour_filters():
    g = torch.Generator().manual_seed(5)
    filters = 3.0 * torch.randn(4, 2, 5, 5, generator=g, dtype=torch.float64)  # not unit norm
    bank = oriented_filter_bank(5, n_orientations=4, wavelengths=[2.5, 4.0])
    default = oriented_filter_bank(5)  # the default: 8 orientations on the filters' own k
    for out, ref in (
        (orientation_selectivity(filters, bank), _selectivity_by_definition(filters, *bank)),
        (orientation_selectivity(filters), _selectivity_by_definition(filters, *default)),
    ):
        for key in ("match", "selectivity", "orientation", "profile"):
            np.testing.assert_allclose(out[key].numpy(), np.array(ref[key]), atol=1e-12)
    # (m, k, k) filters are one-channel filters; float32 filters and banks are computed in float64
    torch.testing.assert_close(
        orientation_selectivity(filters[:, 0], bank)["profile"],
        orientation_selectivity(filters[:, :1], bank)["profile"],
    )
    low = orientation_selectivity(filters.float(), (bank[0].float(), bank[1]))["profile"]
    assert low.dtype == torch.float64
    torch.testing.assert_close(low, orientation_selectivity(filters, bank)["profile"])


def test_selectivity_refuses_malformed_filters_and_banks():
    bank, theta = oriented_filter_bank(5, n_orientations=4)
    with pytest.raises(ValueError, match="all-zero"):
        orientation_selectivity(torch.stack([torch.ones(5, 5), torch.zeros(5, 5)]))
    with pytest.raises(ValueError, match="filters must be"):
        orientation_selectivity(torch.ones(2, 1, 5, 4))
    with pytest.raises(ValueError, match="filters must be"):
        orientation_selectivity(torch.ones(5, 5))
    with pytest.raises(ValueError, match=r"bank\[0\] must hold .* filters of 3 x 3"):
        orientation_selectivity(torch.ones(1, 3, 3), (bank, theta))
    odd = theta != theta.unique()[-1]  # 3 orientations left
    with pytest.raises(ValueError, match="even number"):
        orientation_selectivity(torch.ones(1, 5, 5), (bank[odd], theta[odd]))


def test_errors_name_the_argument_at_fault():
    """Each error starts with the name of the argument at fault (the validators are passed it)."""
    x = _edge_images()[:1, :, :12, :12]
    eye = torch.eye(9, dtype=torch.float64)
    cases = [
        ("kernel_size", lambda: oriented_filter_bank(0)),
        ("n_orientations", lambda: oriented_filter_bank(5, n_orientations=1)),
        ("filters", lambda: orientation_selectivity("abc")),
        ("bank", lambda: orientation_selectivity(torch.ones(1, 5, 5), ("abc", torch.zeros(2)))),
        ("M", lambda: eigen_edge_scores("abc", 1, 3)),
        ("M", lambda: eigen_edge_scores(torch.eye(8), 1, 3)),  # q = 9
        ("kernel_size", lambda: eigen_edge_scores(eye, 1, 0)),
        ("n_filters", lambda: random_filter_scores(1, 3, n_filters=0)),
        ("channels", lambda: random_filter_scores(0, 3)),
        ("images", lambda: sobel_correlation(eye, "abc", 3)),
        ("images", lambda: sobel_correlation(eye, x[0], 3)),
        ("kernel_size", lambda: sobel_correlation(eye, x, 0)),
        ("n_draws", lambda: edge_controls(eye, x, 3, n_draws=0)),
        ("images", lambda: edge_controls(eye, "abc", 3)),
        ("images", lambda: edge_controls(eye, x[0], 3)),
        ("kernel_size", lambda: edge_controls(eye, x, 0)),
        ("M", lambda: edge_controls("abc", x, 3)),
        ("M", lambda: edge_controls(torch.eye(8), x, 3)),
    ]
    for name, call in cases:
        with pytest.raises((TypeError, ValueError), match=f"^{name}"):
            call()


def test_eigen_scores_are_the_selectivity_of_planted_eigenvectors():
    """M = sum_i l_i v_i v_i^T with planted orthonormal v_i and l_1 < 1: the scores are those of
    the v_i (a custom bank used), the eigenvalues l_i / l_1; the default is 6 filters; integer
    and float32 M are computed in float64."""
    g = torch.Generator().manual_seed(3)
    Q, _ = torch.linalg.qr(torch.randn(9, 9, generator=g, dtype=torch.float64))
    lam = torch.tensor([0.5, 0.4, 0.3, 0.2, 0.15, 0.1, 0.05, 0.02, 0.01], dtype=torch.float64)
    M = (Q * lam) @ Q.T
    bank = oriented_filter_bank(3, n_orientations=4)
    out = eigen_edge_scores(M, 1, 3, n_filters=3, bank=bank)
    ref = orientation_selectivity(Q.T[:3].reshape(3, 1, 3, 3), bank)  # sign-free statistics
    for key in ref:
        torch.testing.assert_close(out[key], ref[key])
    torch.testing.assert_close(out["eigenvalue"], lam[:3] / lam[0])
    assert len(eigen_edge_scores(M, 1, 3)["eigenvalue"]) == 6
    D = torch.diag(torch.arange(9, 0, -1)).tolist()  # integers: eigenvectors the pixels
    out = eigen_edge_scores(D, 1, 3, n_filters=2, bank=bank)
    torch.testing.assert_close(out["eigenvalue"], torch.tensor([1.0, 8 / 9], dtype=torch.float64))
    low = eigen_edge_scores(M.float(), 1, 3, n_filters=3, bank=bank)
    high = eigen_edge_scores(M.float().double(), 1, 3, n_filters=3, bank=bank)
    for key in high:
        torch.testing.assert_close(low[key], high[key], rtol=0, atol=1e-12)


def test_random_filter_scores_are_the_documented_draws():
    """The filters are randn(n_filters, c k^2) of a generator seeded with seed, in float64;
    defaults 200 filters and seed 0."""
    bank = oriented_filter_bank(3, n_orientations=4)
    out = random_filter_scores(2, 3, n_filters=1, seed=4, bank=bank)
    f = torch.randn(1, 18, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    ref = orientation_selectivity(f.reshape(1, 2, 3, 3), bank)
    for key in ref:
        torch.testing.assert_close(out[key], ref[key], rtol=0, atol=1e-12)
    out = random_filter_scores(1, 3)
    f = torch.randn(200, 9, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(
        out["profile"], orientation_selectivity(f.reshape(200, 1, 3, 3))["profile"]
    )


def _small_images():
    """Two 2-channel 10 x 14 images (non-square): a smoothed step plus noise."""
    g = torch.Generator().manual_seed(7)
    cols = torch.arange(14, dtype=torch.float64)
    step = torch.sigmoid(cols - 6.5).expand(10, 14)
    noise = 0.3 * torch.randn(2, 2, 10, 14, generator=g, dtype=torch.float64)
    return step + noise


def test_sobel_correlation_on_colour_non_square_images_and_kernels_is_the_definition():
    """Brute force: the feature map ||A^(1/2) p|| of every zero-padded kh x kw patch p, against
    skimage's Sobel of the channel mean, over the positions whose patch lies inside."""
    from skimage.filters import sobel

    x = _small_images()
    kh, kw = 3, 5
    q = 2 * kh * kw
    g = torch.Generator().manual_seed(8)
    B = torch.randn(q, q, generator=g, dtype=torch.float64)
    A = B @ B.T / q
    w, Q = torch.linalg.eigh(A)
    root = (Q * w.clamp_min(0).sqrt()) @ Q.T
    expected = []
    for img in x:
        padded = torch.nn.functional.pad(img, (kw // 2, kw // 2, kh // 2, kh // 2))
        fmap = np.zeros((10, 14))
        for r in range(10):
            for c in range(14):
                fmap[r, c] = float((root @ padded[:, r : r + kh, c : c + kw].flatten()).norm())
        edges = sobel(img.mean(0).numpy())
        inside = (slice(1, 9), slice(2, 12))
        expected.append(np.corrcoef(fmap[inside].ravel(), edges[inside].ravel())[0, 1])
    np.testing.assert_allclose(sobel_correlation(A, x, (kh, kw)), expected, atol=1e-10)
    out = edge_controls(A, x, (kh, kw), n_draws=2)
    assert out["M"] == pytest.approx(np.mean(expected), abs=1e-10)
    # a float32 M is computed in float64: the same as its exact float64 copy
    low, high = (edge_controls(M, x, (kh, kw), n_draws=2) for M in (A.float(), A.float().double()))
    for key in ("M", "spectrum_mean", "spectrum_std"):
        assert low[key] == pytest.approx(high[key], abs=1e-12)


def test_sobel_correlation_is_undefined_for_a_constant_map_or_gradient():
    x = _small_images()[:1, :1]
    with pytest.raises(ValueError, match="constant"):  # M = 0: a constant feature map
        sobel_correlation(torch.zeros(9, 9), x, 3)
    # a diagonal ramp: Sobel's magnitude is exactly 2 inside, the patch norm is not constant
    rows, cols = torch.meshgrid(torch.arange(10.0), torch.arange(14.0), indexing="ij")
    ramp = (rows + cols).double().expand(1, 1, 10, 14)
    with pytest.raises(ValueError, match="constant"):
        sobel_correlation(torch.eye(9), ramp, 3)


def test_edge_controls_spectrum_statistics_are_the_mean_and_sample_std_of_the_draws():
    """Defaults: 5 draws from seed 0; spectrum_std the sample standard deviation (ddof 1), 0 for
    one draw; integer M computed in float64."""
    x = _small_images()[:1, :1]
    M = torch.diag(torch.arange(1, 10)).tolist()  # integers
    out = edge_controls(M, x, 3)
    generator = torch.Generator().manual_seed(0)
    lam = torch.arange(1, 10, dtype=torch.float64)
    draws = []
    for _ in range(5):
        B = torch.randn(9, 9, generator=generator, dtype=torch.float64)
        Q, R = torch.linalg.qr(B)
        O = Q * torch.sign(torch.diagonal(R))
        draws.append(float(sobel_correlation(O @ torch.diag(lam) @ O.T, x, 3)[0]))
    np.testing.assert_allclose(out["spectrum_draws"], draws, atol=1e-10)
    assert out["spectrum_mean"] == pytest.approx(sum(draws) / 5, abs=1e-10)
    sample_std = math.sqrt(sum((d - sum(draws) / 5) ** 2 for d in draws) / 4)
    assert out["spectrum_std"] == pytest.approx(sample_std, abs=1e-10)
    assert out["M"] == pytest.approx(float(sobel_correlation(torch.diag(lam), x, 3)[0]), abs=1e-12)
    two = edge_controls(M, x, 3, n_draws=2)
    assert two["spectrum_std"] == pytest.approx(abs(draws[0] - draws[1]) / math.sqrt(2), abs=1e-10)
    assert edge_controls(M, x, 3, n_draws=1)["spectrum_std"] == 0.0


def test_fit_shuffled_defaults_to_seed_0():
    """A recording estimator: the labels it is fitted on are y[randperm(n)] of seed 0."""
    from sklearn.base import BaseEstimator

    from agop_book.ch04_edges import fit_shuffled

    class Recorder(BaseEstimator):
        def fit(self, X, y):
            self.y_ = np.asarray(y)
            return self

    y = np.arange(12)
    order = torch.randperm(12, generator=torch.Generator().manual_seed(0)).numpy()
    np.testing.assert_array_equal(fit_shuffled(Recorder(), np.zeros((12, 2)), y).y_, y[order])


def test_sobel_correlation_refuses_a_ramp_whose_gradient_is_constant_up_to_round_off():
    """A ramp along one axis has Sobel magnitude sqrt 2 at every inner pixel; rounding gives
    its magnitudes a standard deviation of about 1e-16, which must not pass for an edge map."""
    ramp = torch.arange(14, dtype=torch.float64).expand(1, 1, 10, 14) / 13
    with pytest.raises(ValueError, match=r"images\[0\]: its Sobel magnitude is constant"):
        sobel_correlation(torch.eye(9, dtype=torch.float64), ramp, 3)


# Hostile inputs


@pytest.mark.parametrize("phases", [[], [float("nan")], "0", 0.0])
def test_hostile_phases_are_refused_by_name(phases):
    with pytest.raises(ValueError, match="phases"):
        oriented_filter_bank(3, phases=phases)


_EYE9 = torch.eye(9, dtype=torch.float64)
_IMAGE = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
_THETA = torch.tensor([0.0, math.pi / 2])


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: oriented_filter_bank(10**6), ValueError, "kernel_size, n_orientations.*filter"),
        (lambda: oriented_filter_bank(3, 10**10), ValueError, "kernel_size, n_orientations"),
        (lambda: oriented_filter_bank(3, wavelengths=[float("nan")]), ValueError, "wavelengths"),
        (lambda: oriented_filter_bank(3, wavelengths="ab"), TypeError, "wavelengths must be"),
        (lambda: oriented_filter_bank(3, wavelengths=[0.0]), ValueError, "wavelengths must be pos"),
        (lambda: random_filter_scores(1, 3, n_filters=10**12), ValueError, "n_filters, channels"),
        (lambda: random_filter_scores(10**12, 3), ValueError, "n_filters, channels"),
        (lambda: eigen_edge_scores(_EYE9, 0, 3), ValueError, "channels must be a positive"),
        (lambda: eigen_edge_scores(_EYE9, 1, 3, bank=3), TypeError, "bank must be a pair"),
        (
            lambda: eigen_edge_scores(_EYE9, 1, 3, bank=(torch.rand(3, 3, 3), _THETA)),
            ValueError,
            r"bank\[0\] must hold 2 filters of 3 x 3",
        ),
        (
            lambda: orientation_selectivity(torch.rand(2, 3, 3), (torch.rand(2, 5, 5), _THETA)),
            ValueError,
            r"bank\[0\] must hold 2 filters of 3 x 3",
        ),
        (
            lambda: orientation_selectivity(
                torch.rand(2, 3, 3), (torch.rand(2, 3, 3), torch.tensor([0.0, float("nan")]))
            ),
            ValueError,
            r"bank\[1\] contains",
        ),
        (
            lambda: orientation_selectivity(
                torch.rand(2, 3, 3), (torch.full((2, 3, 3), float("inf")), _THETA)
            ),
            ValueError,
            r"bank\[0\] contains",
        ),
        (
            lambda: orientation_selectivity(
                torch.rand(2, 3, 3), (torch.rand(2, 3, 3), _THETA[:, None])
            ),
            ValueError,
            r"bank\[1\] must be the filters' orientations",
        ),
        (lambda: orientation_selectivity(torch.rand(0, 3, 3)), ValueError, "filters is empty"),
        (
            lambda: orientation_selectivity(torch.full((2, 3, 3), float("nan"))),
            ValueError,
            "filters contains",
        ),
        (
            lambda: orientation_selectivity(torch.rand(2, 2, 2)),
            ValueError,
            "filters must be at least 3",
        ),
        (
            lambda: sobel_correlation(_EYE9, torch.rand(1, 1, 2, 2), 3),
            ValueError,
            "images must be larger than the 3 x 3 kernel",
        ),
        (lambda: sobel_correlation(_EYE9, torch.rand(1, 1, 3, 3), 3), ValueError, "images must be"),
        (lambda: sobel_correlation(_EYE9, torch.rand(1, 1, 3, 4), 3), None, None),
        (lambda: edge_controls(_EYE9, torch.rand(1, 1, 2, 2), 3), ValueError, "images must be"),
        (
            lambda: sobel_correlation(_EYE9, torch.ones(1, 1, 8, 8), 3),
            ValueError,
            r"images\[0\]: its Sobel magnitude is constant",
        ),
        (
            lambda: sobel_correlation(torch.zeros(9, 9), _IMAGE, 3),
            ValueError,
            r"A: its map of images\[0\] is constant",
        ),
    ],
)
def test_hostile_inputs_are_refused_by_name(call, error, match):
    if error is None:  # the smallest valid case: two positions inside
        assert call().shape == (1,)
        return
    with pytest.raises(error, match=match):
        call()


# Mutation testing of the argument checks added for hostile inputs (stop 32)


def test_a_bank_is_read_in_float64_from_any_layout():
    """The bank's orientations are read in float64 whatever their dtype, its filters as
    (n, k, k) or flattened (n, k * k); every part is named in its error."""
    from agop_book.ch04_edges import orientation_selectivity, oriented_filter_bank

    B, theta = oriented_filter_bank(5)
    filters = torch.randn(3, 1, 5, 5, generator=torch.Generator().manual_seed(0)).double()
    want = orientation_selectivity(filters, (B, theta))
    got = orientation_selectivity(filters, (B.reshape(len(theta), 25), theta))
    assert all(torch.equal(got[k], want[k]) for k in want)
    got = orientation_selectivity(filters, (B, theta.float()))
    assert got["orientation"].dtype == torch.float64
    for bank, match in (((B, "abc"), r"^bank\[1\]"), ((B, theta[:, None]), r"^bank\[1\] must")):
        with pytest.raises((TypeError, ValueError), match=match):
            orientation_selectivity(filters, bank)
    for kwargs, match in (
        (dict(wavelengths=[-2.0]), "^wavelengths"),
        (dict(phases="x"), "^phases"),
    ):
        with pytest.raises((TypeError, ValueError), match=match):
            oriented_filter_bank(5, **kwargs)


# Figures: what each figure draws, against the numbers it is given


def _planted_operator(q, eigenvalues, seed):
    """``Q diag(eigenvalues) Q^T`` for a seeded orthonormal ``Q``, and ``Q``'s columns."""
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(q, q, generator=g, dtype=torch.float64))
    lam = torch.tensor(eigenvalues, dtype=torch.float64)
    return (Q * lam) @ Q.T, Q.T


def _signed(v):
    """The sign convention of the drawn filters: the entry of largest magnitude is positive."""
    return v * torch.sign(v[v.abs().argmax()])


def _map_by_definition(A, image, k):
    """``||A^{1/2} p_j||`` over the zero-padded ``k x k`` patches ``p_j`` of one ``(c, H, W)``
    image, as ``sqrt(p^T A p)``, position by position."""
    c, H, W = image.shape
    x = torch.nn.functional.pad(image, (k // 2, k // 2, k // 2, k // 2))
    out = np.zeros((H, W))
    for i in range(H):
        for j in range(W):
            p = x[:, i : i + k, j : j + k].reshape(-1)
            out[i, j] = math.sqrt(max(float(p @ A @ p), 0.0))
    return out


def test_operator_maps_draw_each_operators_top_eigenvectors_and_maps():
    """Row r: the top eigenvectors of the r-th operator (sign fixed, symmetric colour scale,
    eigenvalue ratio above each), then its map on each image (any sizes); labels, map titles on
    the first row only, the suptitle."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from agop_book.ch04_edges import plot_operator_maps

    k = 3
    A1, V1 = _planted_operator(9, [4.0, 3.0, 1.0, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05], seed=0)
    A2, V2 = _planted_operator(9, [2.0, 0.2, 1.8, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1], seed=1)
    g = torch.Generator().manual_seed(2)
    images = [
        torch.randn(1, 5, 6, generator=g, dtype=torch.float64),
        torch.randn(1, 4, 4, generator=g, dtype=torch.float64),
    ]
    old = plt.figure()
    old.add_subplot(1, 1, 1)
    fig = plot_operator_maps(
        {"first": A1, "second": A2},
        images,
        k,
        n_filters=2,
        fig=old,
        title="the title",
        map_titles=["im a", 7],
    )
    assert fig is old and len(fig.axes) == 2 * 4
    axes = np.array(fig.axes).reshape(2, 4)
    wanted = {
        "first": (A1, [V1[0], V1[1]], ["1.00", "0.75"]),
        "second": (A2, [V2[0], V2[2]], ["1.00", "0.90"]),
    }
    for row, (label, (A, vecs, titles)) in zip(axes, wanted.items(), strict=True):
        assert row[0].get_ylabel() == label
        for ax, v, t in zip(row[:2], vecs, titles, strict=True):
            (im,) = ax.images
            f = _signed(v).reshape(k, k).numpy()
            np.testing.assert_allclose(im.get_array(), f, atol=1e-12)
            m = np.abs(f).max()
            np.testing.assert_allclose(im.get_clim(), (-m, m))
            assert im.get_cmap().name == "RdBu_r" and ax.get_title() == t
        for ax, image in zip(row[2:], images, strict=True):
            (im,) = ax.images
            np.testing.assert_allclose(im.get_array(), _map_by_definition(A, image, k), atol=1e-10)
            assert im.get_cmap().name == "gray"
        for ax in row:
            assert list(ax.get_xticks()) == [] and list(ax.get_yticks()) == []
    assert [ax.get_title() for ax in axes[0, 2:]] == ["im a", "7"]
    assert [ax.get_title() for ax in axes[1, 2:]] == ["", ""]
    assert fig._suptitle.get_text() == "the title"
    plt.close(fig)


def test_operator_maps_of_colour_filters_and_without_filters():
    """Three channels: each filter drawn in RGB scaled to its own range; a batch of images;
    ``n_filters=0``: the maps alone, the row labelled on its first map; no title, no suptitle."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from agop_book.ch04_edges import plot_operator_maps

    k, q = 3, 27
    A, V = _planted_operator(q, [5.0, 2.0] + [1.0] * (q - 2), seed=3)
    x = torch.randn(2, 3, 4, 5, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    fig = plot_operator_maps({"rgb": A}, x, k, n_filters=2)
    assert len(fig.axes) == 4 and fig._suptitle is None
    for ax, v, t in zip(fig.axes[:2], V[:2], ["1.00", "0.40"], strict=True):
        f = np.moveaxis(_signed(v).reshape(3, k, k).numpy(), 0, -1)
        np.testing.assert_allclose(
            ax.images[0].get_array(), (f - f.min()) / (f.max() - f.min()), atol=1e-12
        )
        assert ax.get_title() == t
    for ax, image in zip(fig.axes[2:], x, strict=True):
        np.testing.assert_allclose(ax.images[0].get_array(), _map_by_definition(A, image, k))
        assert ax.get_title() == ""
    plt.close(fig)
    fig = plot_operator_maps({"alone": A}, x, k, n_filters=0, map_titles=["a", "b"])
    assert len(fig.axes) == 2 and fig.axes[0].get_ylabel() == "alone"
    assert [ax.get_title() for ax in fig.axes] == ["a", "b"]
    np.testing.assert_allclose(fig.axes[1].images[0].get_array(), _map_by_definition(A, x[1], k))
    plt.close(fig)
    fig = plot_operator_maps({"one image": A}, x[:1], k)  # 6 filters by default
    assert len(fig.axes) == 6 + 1
    np.testing.assert_allclose(fig.axes[6].images[0].get_array(), _map_by_definition(A, x[0], k))
    plt.close(fig)


def test_accuracy_by_iteration_draws_each_curve_and_circles_the_selected_round():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from agop_book.ch04_edges import plot_accuracy_by_iteration

    curves = {"ConvRFM": [0.5, 0.6, 0.55, 0.7], "other": [0.4, 0.45]}
    _, given = plt.subplots()
    ax = plot_accuracy_by_iteration(curves, selected={"ConvRFM": 2}, ax=given, title="acc")
    assert ax is given
    lines = ax.get_lines()
    assert len(lines) == 3
    first, circle, second = lines
    assert first.get_xdata().tolist() == [0, 1, 2, 3]
    assert first.get_ydata().tolist() == curves["ConvRFM"]
    assert second.get_xdata().tolist() == [0, 1] and second.get_ydata().tolist() == [0.4, 0.45]
    assert circle.get_xdata().tolist() == [2] and circle.get_ydata().tolist() == [0.55]
    assert circle.get_marker() == "o" and circle.get_linestyle() == "None"
    assert circle.get_markeredgecolor() == first.get_color() != second.get_color()
    assert circle.get_markerfacecolor() == "none"
    assert first.get_marker() == "o" and second.get_marker() == "o"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["ConvRFM", "other"]
    assert ax.get_title() == "acc" and ax.get_ylabel() == "accuracy"
    assert ax.get_xlabel().startswith("AGOP round")
    assert ax.xaxis.get_major_locator()._integer
    plt.close(ax.figure)
    ax = plot_accuracy_by_iteration({"one": [0.1, 0.2]})  # its own axes, nothing circled
    assert len(ax.get_lines()) == 1 and ax.get_title() == ""
    plt.close(ax.figure)


def test_edge_controls_figure_draws_each_mean_and_sd_per_statistic():
    """One panel per statistic (the first operator's order), one bar per operator, top to
    bottom in the table's order, of length the mean, with an error bar of one SD; learned
    operators in blue, the others in gray; the operators named on the shared y axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgba
    from matplotlib.container import BarContainer

    from agop_book.ch04_edges import plot_edge_controls

    table = {
        "M = I": {"selectivity": (0.3, 0.05), "Sobel": (-0.1, 0.02)},
        "learned M": {"selectivity": (0.6, 0.1), "Sobel": (0.4, 0.0)},
        "spectrum": {"selectivity": (0.2, 0.03), "Sobel": (0.15, 0.07)},
    }
    fig = plot_edge_controls(table, title="digits")
    assert len(fig.axes) == 2 and fig._suptitle.get_text() == "digits"
    labels = list(table)
    for ax, name in zip(fig.axes, ["selectivity", "Sobel"], strict=True):
        assert ax.get_title() == name
        (bars,) = [c for c in ax.containers if isinstance(c, BarContainer)]
        mean = [table[label][name][0] for label in labels]
        sd = [table[label][name][1] for label in labels]
        np.testing.assert_allclose([p.get_width() for p in bars.patches], mean)
        np.testing.assert_allclose([p.get_x() for p in bars.patches], 0.0)
        centres = [p.get_y() + p.get_height() / 2 for p in bars.patches]
        np.testing.assert_allclose(centres, [2, 1, 0])
        (segments,) = bars.errorbar.lines[2]
        np.testing.assert_allclose(
            [s[:, 0] for s in segments.get_segments()],
            [[m - s, m + s] for m, s in zip(mean, sd, strict=True)],
        )
        np.testing.assert_allclose(
            [s[:, 1] for s in segments.get_segments()], [[y, y] for y in centres]
        )
        colours = [p.get_facecolor() for p in bars.patches]
        assert colours == [to_rgba("tab:gray"), to_rgba("tab:blue"), to_rgba("tab:gray")]
        assert any(list(line.get_xdata()) == [0, 0] for line in ax.get_lines())
    assert fig.axes[0].get_yticks().tolist() == [2, 1, 0]
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == labels
    assert fig.axes[0].get_shared_y_axes().joined(fig.axes[0], fig.axes[1])
    left, right = (ax.get_position() for ax in fig.axes)  # side by side, in one row
    assert left.x1 < right.x0 and (left.y0, left.y1) == (right.y0, right.y1)
    plt.close(fig)
    fig = plot_edge_controls({"only": {"Sobel": (0.2, 0.1)}})
    assert len(fig.axes) == 1 and fig._suptitle is None
    assert [p.get_width() for p in fig.axes[0].patches] == [0.2]
    plt.close(fig)
    with pytest.raises(ValueError, match="^table"):
        plot_edge_controls({})


# Mutation testing of the last survivors outside the figures (issue #28)


def test_memory_checks_count_every_value_of_the_bank_and_the_filters(monkeypatch):
    """The bank needs ``n_orientations * len(wavelengths) * len(phases) * k^2`` float64 values,
    three times (the bank, normalised, its kept rows),
    the random filters ``n_filters * channels * k^2``: accepted with exactly that many bytes of
    memory, refused by the arguments' names with one byte less."""
    import agop.validation

    bank = oriented_filter_bank(3)  # the filters' scores need a bank: built before
    for call, need, match in (
        (
            lambda: oriented_filter_bank(3, 4, wavelengths=[2.0, 3.0, 4.0], phases=[0.0, 1.0]),
            4 * 3 * 2 * 9 * 8 * 3,  # three banks at once: f, f / norm, its kept rows
            r"^kernel_size, n_orientations, wavelengths, phases: the filter bank would need",
        ),
        (
            lambda: random_filter_scores(2, 3, n_filters=5, bank=bank),
            5 * 2 * 9 * 8,
            r"^n_filters, channels, kernel_size: the filters would need",
        ),
    ):
        monkeypatch.setattr(agop.validation, "_memory_bytes", lambda need=need: need)
        call()
        monkeypatch.setattr(agop.validation, "_memory_bytes", lambda need=need: need - 1)
        with pytest.raises(ValueError, match=match):
            call()


def test_bank_orientations_are_read_in_float64_and_an_empty_or_single_one_is_refused():
    """float32 orientations give the preferred angles of their float64 values, to the last
    digits; an empty bank is refused by ``bank[1]``'s name, a one-filter bank (one orientation)
    for its odd number of orientations."""
    B, theta = oriented_filter_bank(5)
    filters = torch.randn(
        4, 1, 5, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )
    rounded = theta.float()
    got = orientation_selectivity(filters, (B, rounded))["orientation"]
    want = orientation_selectivity(filters, (B, rounded.double()))["orientation"]
    torch.testing.assert_close(got, want, rtol=1e-13, atol=1e-13)
    with pytest.raises(ValueError, match=r"^bank\[1\] must be the filters' orientations"):
        orientation_selectivity(filters, (B[:0], theta[:0]))
    with pytest.raises(ValueError, match="even number of orientations"):
        orientation_selectivity(filters, (B[:1], theta[:1]))


@pytest.mark.parametrize(
    ("shape", "kernel_size"), [((4, 10), (5, 3)), ((10, 4), (3, 5)), ((2, 10), 3), ((10, 2), 3)]
)
def test_sobel_correlation_counts_the_inside_positions_along_each_side(shape, kernel_size):
    """No position of a 4 x 10 image has its 5 x 3 patch inside (rows: 4 - 2 * 2 = 0), nor of a
    2 x 10 image its 3 x 3 one, nor of the transposed cases: refused by the images' name."""
    x = torch.randn(1, 1, *shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    with pytest.raises(ValueError, match="^images must be larger"):
        sobel_correlation(torch.eye(kh * kw, dtype=torch.float64), x, kernel_size)


def test_sobel_correlation_is_scale_invariant_down_to_tiny_images():
    """Pearson's correlation, a feature map linear in the image and Sobel's linear filter: a
    tiny image (Sobel magnitudes near 1e-14) and a tiny operator give the same correlation, not
    a 'constant' verdict (the round-off test is relative to the values' size)."""
    x = _small_images()
    A = torch.eye(2 * 15, dtype=torch.float64) - 1 / 30
    want = sobel_correlation(A, x, (3, 5))
    np.testing.assert_allclose(sobel_correlation(A, 1e-14 * x, (3, 5)), want, rtol=1e-9)
    np.testing.assert_allclose(sobel_correlation(1e-28 * A, x, (3, 5)), want, rtol=1e-9)


# Hostile inputs: the operator figures and the explorer

_OPS = {"I": torch.eye(9, dtype=torch.float64)}
_IMS = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda C4: C4.plot_operator_maps({}, _IMS, 3), ValueError, "^operators must hold"),
        (
            lambda C4: C4.plot_operator_maps({"a": torch.eye(4)}, _IMS, 3),
            ValueError,
            r"^operators\['a'\] must be 9 x 9",
        ),
        (
            lambda C4: C4.plot_operator_maps({"a": torch.eye(9) * math.nan}, _IMS, 3),
            ValueError,
            r"^operators\['a'\] contains",
        ),
        (
            lambda C4: C4.plot_operator_maps({"z": torch.zeros(9, 9)}, _IMS, 3, n_filters=2),
            ValueError,
            r"^operators\['z'\] is zero",
        ),
        (
            lambda C4: C4.plot_operator_maps(_OPS, _IMS[:0], 3),
            ValueError,
            "^images must be a non-empty",
        ),
        (lambda C4: C4.plot_operator_maps(_OPS, [], 3), ValueError, "^images must hold"),
        (
            lambda C4: C4.plot_operator_maps(_OPS, [_IMS[0], torch.rand(3, 8, 8)], 3),
            ValueError,
            r"^images\[1\] must have 1 channels",
        ),
        (lambda C4: C4.plot_operator_maps(_OPS, _IMS, "3"), TypeError, "^patch_size must be"),
        (lambda C4: C4.plot_operator_maps(_OPS, _IMS, 3, n_filters=10), ValueError, "^n_filters"),
        (
            lambda C4: C4.plot_operator_maps(_OPS, _IMS, 3, n_filters=2, map_titles=["a"]),
            ValueError,
            "^map_titles must hold one title per image",
        ),
        (
            lambda C4: C4.plot_operator_maps(_OPS, _IMS, 3, n_filters=2, map_titles=["a"] * 3),
            ValueError,
            "^map_titles must hold one title per image",
        ),
        (lambda C4: C4.plot_accuracy_by_iteration({}), ValueError, "^curves must hold"),
        (
            lambda C4: C4.plot_accuracy_by_iteration({"R": [math.nan]}),
            ValueError,
            r"^curves\['R'\]",
        ),
        (
            lambda C4: C4.plot_accuracy_by_iteration({"R": [0.6, 0.7]}, selected={"R": 5}),
            ValueError,
            r"^selected\['R'\] must be a non-negative integer <= 1",
        ),
        (
            lambda C4: C4.plot_accuracy_by_iteration({"R": [0.6, 0.7]}, selected={"R": -1}),
            ValueError,
            r"^selected\['R'\]",
        ),
        (
            lambda C4: C4.plot_accuracy_by_iteration({"R": [0.6]}, selected={"Q": 0}),
            ValueError,
            "^selected: 'Q' is not one of the labels",
        ),
        (lambda C4: C4.plot_accuracy_by_iteration({"R": [0.6]}, ax=3), TypeError, "^ax must be"),
        (
            lambda C4: C4.plot_edge_controls({"a": {"s": (1, 0)}, "b": {"t": (1, 0)}}),
            ValueError,
            r"^table\['b'\] has statistics \['t'\]",
        ),
        (
            lambda C4: C4.plot_edge_controls({"a": {"s": (1, 0)}, "b": {"s": (1, 0), "t": (1, 0)}}),
            ValueError,
            r"^table\['b'\] has statistics",
        ),
        (
            lambda C4: C4.plot_edge_controls({"a": {"s": (math.nan, 0)}}),
            ValueError,
            r"^table\['a'\]\['s'\]\[0\]",
        ),
        (
            lambda C4: C4.plot_edge_controls({"a": {"s": 0.5}}),
            TypeError,
            r"^table\['a'\]\['s'\] must be a pair",
        ),
        (lambda C4: C4.rfm_explorer({}, _IMS), ValueError, "^iterates must hold"),
        (
            lambda C4: C4.rfm_explorer({("laplace", 3): []}, _IMS),
            ValueError,
            r"^iterates\[\('laplace', 3\)\]",
        ),
        (
            lambda C4: C4.rfm_explorer({"laplace": [_OPS["I"]]}, _IMS),
            TypeError,
            "^iterates: each key",
        ),
        (
            lambda C4: C4.rfm_explorer({("laplace", 3): [torch.eye(4)]}, _IMS),
            ValueError,
            r"^iterates\[\('laplace', 3\)\]\[0\] must be 9 x 9",
        ),
        (
            lambda C4: C4.rfm_explorer({("laplace", 3): [_OPS["I"]]}, None),
            TypeError,
            "^images must",
        ),
    ],
)
def test_operator_figures_and_explorer_name_a_hostile_argument(call, error, match):
    import matplotlib.pyplot as plt

    from agop_book import ch04_edges as C4

    before = plt.get_fignums()
    with pytest.raises(error, match=match):
        call(C4)
    assert plt.get_fignums() == before


# Mutation testing of the figures' argument checks (stop 33): every refusal of the figures and
# the explorer, with its whole message (the argument's exact name first, then the expected form
# the validator was given), and each minimum and maximum at its boundary.

_I9 = torch.eye(9, dtype=torch.float64)
_T = {"a": {"s": (1.0, 0.0)}}
_IT = {("laplace", 3): [_I9]}


@pytest.mark.parametrize(
    "call, error, message",
    [
        (
            lambda C4: C4.plot_operator_maps([_I9], _IMS, 3),
            TypeError,
            "operators must be a dict {label: q x q operator}, got list",
        ),
        (
            lambda C4: C4.plot_operator_maps({}, _IMS, 3),
            ValueError,
            "operators must hold at least one entry {label: q x q operator}, got an empty one",
        ),
        (
            lambda C4: C4.plot_operator_maps(_OPS, _IMS[0], 3),
            ValueError,
            "images must be a non-empty batch (n, c, H, W) or a list of (c, H, W) images, got shape (1, 8, 8)",
        ),
        (
            lambda C4: C4.plot_operator_maps(_OPS, _IMS[:0], 3),
            ValueError,
            "images must be a non-empty batch (n, c, H, W) or a list of (c, H, W) images, got shape (0, 1, 8, 8)",
        ),
        (
            lambda C4: C4.plot_operator_maps(_OPS, "ab", 3),
            TypeError,
            "images must be a list of (c, H, W) images, got str",
        ),
        (
            lambda C4: C4.plot_operator_maps(_OPS, [], 3),
            ValueError,
            "images must hold at least one of (c, H, W) images, got an empty list",
        ),
        (
            lambda C4: C4.plot_operator_maps(_OPS, [_IMS[0], torch.rand(2, 8, 8)], 3),
            ValueError,
            "images[1] must be a non-empty image of shape (c, H, W) with c = 1 (gray) or c >= 3 (RGB), got shape (2, 8, 8)",
        ),
        (
            lambda C4: C4.plot_operator_maps(_OPS, [_IMS[0], torch.rand(3, 8, 8)], 3),
            ValueError,
            "images[1] must have 1 channels as images[0] has, got shape (3, 8, 8)",
        ),
        (
            lambda C4: C4.plot_operator_maps(_OPS, _IMS, 0),
            ValueError,
            "patch_size must be a positive integer, got 0",
        ),
        (
            lambda C4: C4.plot_operator_maps(_OPS, _IMS, 3, n_filters=-1),
            ValueError,
            "n_filters must be a non-negative integer <= 9, got -1",
        ),
        (
            lambda C4: C4.plot_operator_maps(_OPS, _IMS, 3, n_filters=10),
            ValueError,
            "n_filters must be a non-negative integer <= 9, got 10",
        ),
        (
            lambda C4: C4.plot_operator_maps(_OPS, _IMS, 3, map_titles="ab"),
            TypeError,
            "map_titles must be a list of titles, got str",
        ),
        (
            lambda C4: C4.plot_operator_maps(_OPS, _IMS, 3, map_titles=[]),
            ValueError,
            "map_titles must hold at least one of titles, got an empty list",
        ),
        (
            lambda C4: C4.plot_operator_maps(_OPS, _IMS, 3, map_titles=["a"]),
            ValueError,
            "map_titles must hold one title per image (2), got 1",
        ),
        (
            lambda C4: C4.plot_operator_maps({"z": torch.zeros(9, 9)}, _IMS, 3, n_filters=1),
            ValueError,
            "operators['z'] is zero: it has no top filters to draw (pass n_filters=0)",
        ),
        (
            lambda C4: C4.plot_operator_maps({"a": torch.eye(4)}, _IMS, 3),
            ValueError,
            "operators['a'] must be 9 x 9, got shape (4, 4)",
        ),
        (
            lambda C4: C4.plot_operator_maps({"a": "abc"}, _IMS, 3),
            TypeError,
            "operators['a'] must be a tensor or array, got str",
        ),
        (
            lambda C4: C4.plot_operator_maps(_OPS, np.array([[[["a"]]]]), 3),
            TypeError,
            "images must hold numbers, got an array of dtype <U1",
        ),
        (
            lambda C4: C4.plot_operator_maps(_OPS, _IMS, 3, title=3),
            TypeError,
            "title must be a str or None, got 3 (int)",
        ),
        (
            lambda C4: C4.plot_operator_maps(_OPS, _IMS, 3, fig=3),
            TypeError,
            "fig must be None or a matplotlib Figure, got int",
        ),
        (
            lambda C4: C4.plot_accuracy_by_iteration([0.5]),
            TypeError,
            "curves must be a dict {label: [accuracy per round]}, got list",
        ),
        (
            lambda C4: C4.plot_accuracy_by_iteration({}),
            ValueError,
            "curves must hold at least one entry {label: [accuracy per round]}, got an empty one",
        ),
        (
            lambda C4: C4.plot_accuracy_by_iteration({"R": [0.5, math.nan]}),
            ValueError,
            "curves['R'][1] must be a finite number, got nan",
        ),
        (
            lambda C4: C4.plot_accuracy_by_iteration({"R": [0.5, 0.6]}, selected=[1]),
            TypeError,
            "selected must be None or a dict {label: round}, got list",
        ),
        (
            lambda C4: C4.plot_accuracy_by_iteration({"R": [0.5, 0.6]}, selected={"R": 2}),
            ValueError,
            "selected['R'] must be a non-negative integer <= 1, got 2",
        ),
        (
            lambda C4: C4.plot_accuracy_by_iteration({"R": [0.5, 0.6]}, selected={"R": -1}),
            ValueError,
            "selected['R'] must be a non-negative integer <= 1, got -1",
        ),
        (
            lambda C4: C4.plot_accuracy_by_iteration({"R": [0.5, 0.6]}, selected={"Q": 0}),
            ValueError,
            "selected: 'Q' is not one of the labels of curves ['R']",
        ),
        (
            lambda C4: C4.plot_accuracy_by_iteration({"R": [0.5]}, ax=3),
            TypeError,
            "ax must be None or a matplotlib Axes, got int",
        ),
        (
            lambda C4: C4.plot_accuracy_by_iteration({"R": [0.5]}, title=3),
            TypeError,
            "title must be a str or None, got 3 (int)",
        ),
        (
            lambda C4: C4.plot_edge_controls([("a", 1)]),
            TypeError,
            "table must be a dict {operator: {statistic: (mean, sd)}}, got list",
        ),
        (
            lambda C4: C4.plot_edge_controls({}),
            ValueError,
            "table must hold at least one entry {operator: {statistic: (mean, sd)}}, got an empty one",
        ),
        (
            lambda C4: C4.plot_edge_controls({"a": 0.5}),
            TypeError,
            "table['a'] must be a dict {statistic: (mean, sd)}, got float",
        ),
        (
            lambda C4: C4.plot_edge_controls({"a": {}}),
            ValueError,
            "table['a'] must hold at least one entry {statistic: (mean, sd)}, got an empty one",
        ),
        (
            lambda C4: C4.plot_edge_controls({"a": {"s": (1, 0)}, "b": {"t": (1, 0)}}),
            ValueError,
            "table['b'] has statistics ['t'], table['a'] has ['s']: every operator must have the same",
        ),
        (
            lambda C4: C4.plot_edge_controls({"a": {"s": (1, 0)}, "b": {"s": (1, 0), "t": (1, 0)}}),
            ValueError,
            "table['b'] has statistics ['s', 't'], table['a'] has ['s']: every operator must have the same",
        ),
        (
            lambda C4: C4.plot_edge_controls({"a": {"s": (1, 0)}, "b": {"s": 0.5}}),
            TypeError,
            "table['b']['s'] must be a pair (mean, sd), got 0.5",
        ),
        (
            lambda C4: C4.plot_edge_controls({"a": {"s": (1, -0.5)}}),
            ValueError,
            "table['a']['s'][1] must be a non-negative number, got -0.5",
        ),
        (
            lambda C4: C4.plot_edge_controls(_T, title=3),
            TypeError,
            "title must be a str or None, got 3 (int)",
        ),
        (
            lambda C4: C4.rfm_explorer([_I9], _IMS),
            TypeError,
            "iterates must be a dict {(kernel, patch_size): [M_0, M_1, ...]}, got list",
        ),
        (
            lambda C4: C4.rfm_explorer({}, _IMS),
            ValueError,
            "iterates must hold at least one entry {(kernel, patch_size): [M_0, M_1, ...]}, got an empty one",
        ),
        (
            lambda C4: C4.rfm_explorer({"laplace": [_I9]}, _IMS),
            TypeError,
            "iterates: each key must be a pair (kernel name, patch size), got 'laplace'",
        ),
        (
            lambda C4: C4.rfm_explorer({("laplace", 3, 1): [_I9]}, _IMS),
            TypeError,
            "iterates: each key must be a pair (kernel name, patch size), got ('laplace', 3, 1)",
        ),
        (
            lambda C4: C4.rfm_explorer({(3, 3): [_I9]}, _IMS),
            TypeError,
            "iterates: each key must be a pair (kernel name, patch size), got (3, 3)",
        ),
        (
            lambda C4: C4.rfm_explorer({("laplace", 0): [_I9]}, _IMS),
            ValueError,
            "iterates: the patch size of ('laplace', 0) must be a positive integer, got 0",
        ),
        (
            lambda C4: C4.rfm_explorer({("laplace", 3): _I9}, _IMS),
            TypeError,
            "iterates[('laplace', 3)] must be a list of q x q operators, one per round, got Tensor",
        ),
        (
            lambda C4: C4.rfm_explorer({("laplace", 3): []}, _IMS),
            ValueError,
            "iterates[('laplace', 3)] must hold at least one of q x q operators, one per round, got an empty list",
        ),
        (
            lambda C4: C4.rfm_explorer({("laplace", 3): [_I9, torch.eye(4)]}, _IMS),
            ValueError,
            "iterates[('laplace', 3)][1] must be 9 x 9, got shape (4, 4)",
        ),
        (
            lambda C4: C4.rfm_explorer(
                {("laplace", 3): [_I9, torch.zeros(9, 9)]}, _IMS, n_filters=1
            ),
            ValueError,
            "iterates[('laplace', 3)][1] is zero: it has no top filters to draw (pass n_filters=0)",
        ),
        (
            lambda C4: C4.rfm_explorer(_IT, _IMS, n_filters=10),
            ValueError,
            "n_filters must be a non-negative integer <= 9, got 10",
        ),
        (
            lambda C4: C4.rfm_explorer(_IT, _IMS, map_titles=["a"]),
            ValueError,
            "map_titles must hold one title per image (2), got 1",
        ),
        (
            lambda C4: C4.rfm_explorer(_IT, []),
            ValueError,
            "images must hold at least one of (c, H, W) images, got an empty list",
        ),
    ],
)
def test_figure_argument_checks_give_the_name_and_the_expected_form(call, error, message):
    import re

    import matplotlib.pyplot as plt

    from agop_book import ch04_edges as C4

    before = plt.get_fignums()
    with pytest.raises(error, match="^" + re.escape(message) + "$"):
        call(C4)
    assert plt.get_fignums() == before


def test_figure_argument_checks_accept_each_boundary_value():
    import matplotlib.pyplot as plt

    from agop_book import ch04_edges as C4

    one = torch.rand(1, 1, 5, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    # patch_size = 1 (its minimum) and n_filters = c k^2 = 1 (its maximum), a batch of one image
    fig = C4.plot_operator_maps({"a": 2 * torch.eye(1, dtype=torch.float64)}, one, 1, n_filters=1)
    assert len(fig.axes) == 2
    plt.close(fig)
    # n_filters = 9 = c k^2 for k = 3; a numpy batch is read as a batch
    fig = C4.plot_operator_maps(_OPS, _IMS.numpy(), 3, n_filters=9, map_titles=["x", "y"])
    assert len(fig.axes) == 9 + 2 and fig.axes[9].get_title() == "x"
    plt.close(fig)
    # an operator given as a list of Python floats is read in float64, not rounded to float32
    A = torch.rand(9, 9, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    A = A @ A.T / 3
    fig = C4.plot_operator_maps({"a": A.tolist()}, _IMS[:1], 3, n_filters=0)
    want = C4.feature_map(A, _IMS[:1], 3)[0].numpy()
    np.testing.assert_allclose(fig.axes[0].get_images()[0].get_array(), want, rtol=1e-12)
    plt.close(fig)
    # n_filters = 0 (its minimum): a zero operator has nothing to refuse, only its maps are drawn
    fig = C4.plot_operator_maps({"z": torch.zeros(9, 9, dtype=torch.float64)}, _IMS, 3, n_filters=0)
    assert len(fig.axes) == 2
    plt.close(fig)
    # the first and the last round are selectable
    for t in (0, 1):
        ax = C4.plot_accuracy_by_iteration({"R": [0.5, 0.75]}, selected={"R": t})
        assert ax.get_lines()[1].get_ydata().tolist() == [[0.5, 0.75][t]]
        plt.close(ax.figure)
    # an SD of 0 is allowed
    fig = C4.plot_edge_controls(_T)
    assert [p.get_width() for p in fig.axes[0].patches] == [1.0]
    plt.close(fig)
    # the explorer takes patch size 1 and a zero operator when it draws no filters
    box = C4.rfm_explorer(
        {("laplace", 1): [torch.eye(1, dtype=torch.float64)], ("gauss", 3): [torch.zeros(9, 9)]},
        _IMS,
        n_filters=0,
    )
    assert [w.options for w in box.children[0].children[:2]] == [("gauss", "laplace"), (1, 3)]
    plt.close("all")


# ---------------------------------------------------------------------------
# Hostile inputs, round 5


def test_round5_random_filter_scores_names_kernel_size_for_the_default_bank():
    # used to blame "filters", which the caller never passed
    with pytest.raises(ValueError, match=r"^kernel_size must be at least 3 for the default"):
        random_filter_scores(1, 1, n_filters=2)
    with pytest.raises(ValueError, match=r"^kernel_size must be at least 3 for the default"):
        random_filter_scores(1, (2, 2), n_filters=2)


def test_round5_edge_controls_refuses_draw_counts_beyond_any_run():
    image = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    M = torch.eye(9, dtype=torch.float64) - 1 / 9
    with pytest.raises(ValueError, match=r"^n_draws must be .*<= 2147483647"):
        edge_controls(M, image, 3, n_draws=10**12)  # used to draw for days
