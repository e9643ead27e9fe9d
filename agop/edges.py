"""Edge statistics of a feature operator ``M`` on ``c x k x k`` patches, beside the controls
a trivial operator would need to beat.

Two questions, one per statistic:

* **Are the top eigenvectors of** ``M`` **oriented edge detectors?** Each filter ``v``
  (``c x k x k``, viewed as ``V``, ``c x k^2``) is matched against a bank of zero-mean,
  unit-norm Gabor filters ``b`` (:func:`oriented_filter_bank`): its response to ``b`` is
  ``|V b| / |v|``, the cosine with the best colour combination ``u (x) b`` (``|cos|`` for one
  channel). Per orientation ``theta`` take the best response over phases and wavelengths,
  ``r(theta)``; the **orientation selectivity** is the classical index

      OSI = (r(theta*) - r(theta* + pi/2)) / (r(theta*) + r(theta* + pi/2))   in [0, 1],

  ``theta*`` the best orientation: near 1 for an edge or bar detector (a derivative of a
  Gaussian scores about 0.9 on a 7 x 7 patch), 0 for an isotropic filter (a blob, a
  centre-surround spot) and for anything with the square grid's four-fold symmetry.
  :func:`orientation_selectivity` returns it with the best match.
* **Do its feature maps follow edges?** :func:`sobel_correlation` correlates, pixel by pixel
  away from the border, the feature map ``|M^{1/2} x[j]|`` with the Sobel gradient magnitude
  of the image.
  :func:`edge_controls` reports it for ``M``, for ``M = I``, for the local-mean-removing
  operator ``I - 11^T/q`` (no learning at all) and for ``M``'s own spectrum in Haar-random
  eigenbases (``O L O^T``; mean and standard deviation over draws).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from agop.features import feature_map, haar_rotations, top_filters
from agop.patches import _pair
from agop.validation import as_tensor, check_images, check_psd


def oriented_filter_bank(kernel_size: int, n_orientations: int = 8,
                         wavelengths=None, phases=(0.0, math.pi / 2)):
    """Gabor filters ``exp(-(u^2 + v^2) / (2 s^2)) cos(2 pi u_theta / lam + phi)`` on a
    ``k x k`` grid centred at 0, ``u_theta = u cos(theta) + v sin(theta)``, ``s = 0.5 lam``
    (at most ``k / 2``), each made zero-mean and unit-norm.

    ``theta`` runs over ``n_orientations`` angles in ``[0, pi)``, ``lam`` over
    ``wavelengths`` (default: 3 from 2.5 pixels to ``k``), ``phi`` over ``phases`` (even and
    odd: bars and edges). Returns ``(bank, theta)``: ``(n, k, k)`` float64 filters and the
    orientation of each (``(n,)``).
    """
    k = _pair(kernel_size, "kernel_size")[0]
    if k < 3:
        raise ValueError(f"kernel_size must be at least 3 for oriented filters, got {k}")
    if not isinstance(n_orientations, int) or n_orientations < 2:
        raise ValueError(f"n_orientations must be an int >= 2, got {n_orientations!r}")
    lams = np.geomspace(2.5, k, 3) if wavelengths is None else np.asarray(wavelengths, float)
    if lams.ndim != 1 or lams.size == 0 or (lams <= 0).any():
        raise ValueError(f"wavelengths must be positive numbers, got {wavelengths!r}")
    grid = torch.arange(k, dtype=torch.float64) - (k - 1) / 2
    v, u = torch.meshgrid(grid, grid, indexing="ij")  # v: row (down), u: column (right)
    bank, thetas = [], []
    for theta in np.arange(n_orientations) * math.pi / n_orientations:
        along = u * math.cos(theta) + v * math.sin(theta)
        for lam in lams:
            s = min(0.5 * lam, k / 2)
            envelope = torch.exp(-(u**2 + v**2) / (2 * s**2))
            for phi in phases:
                f = envelope * torch.cos(2 * math.pi * along / lam + phi)
                f = f - f.mean()
                norm = f.norm()
                if norm > 1e-8:
                    bank.append(f / norm)
                    thetas.append(theta)
    return torch.stack(bank), torch.tensor(thetas, dtype=torch.float64)


def _as_filters(filters) -> torch.Tensor:
    f = as_tensor(filters, "filters", dtype=torch.float64).detach().cpu()
    if f.ndim == 3:
        f = f[:, None]
    if f.ndim != 4 or f.shape[-1] != f.shape[-2]:
        raise ValueError(f"filters must be (m, c, k, k) or (m, k, k), got {tuple(f.shape)}")
    norms = f.flatten(1).norm(dim=1)
    if bool((norms == 0).any()):
        raise ValueError("filters holds an all-zero filter")
    return f / norms[:, None, None, None]


def orientation_selectivity(filters, bank=None) -> dict[str, torch.Tensor]:
    """For each filter (``(m, c, k, k)`` or ``(m, k, k)``): its best match over the bank, its
    orientation selectivity ``OSI`` and preferred orientation (module docstring).

    ``bank``: ``(bank, theta)`` from :func:`oriented_filter_bank` (default: 8 orientations on
    the filters' ``k``; an even number of orientations). Returns ``{"match", "selectivity",
    "orientation"}``, each ``(m,)`` (``orientation``: the angle of ``sum r(theta)^2
    exp(2 i theta)``, halved), and ``"profile"`` ``(m, n_orientations)``: ``r(theta)``.
    """
    f = _as_filters(filters)
    m, c, k, _ = f.shape
    B, theta = oriented_filter_bank(k) if bank is None else bank
    B = as_tensor(B, "bank", dtype=torch.float64).reshape(len(theta), -1)
    if B.shape[1] != k * k:
        raise ValueError(f"bank filters are {B.shape[1]} pixels, the filters {k} x {k}")
    response = (f.reshape(m, c, k * k) @ B.T).norm(dim=1)  # (m, n): |V b|
    angles = torch.unique(theta)
    if len(angles) % 2:
        raise ValueError("the bank needs an even number of orientations (theta and theta + "
                         f"pi/2 both in it), got {len(angles)}")
    profile = torch.stack([response[:, theta == a].amax(1) for a in angles], dim=1)
    best = profile.argmax(1)
    r_best = profile.gather(1, best[:, None])[:, 0]
    r_orth = profile.gather(1, ((best + len(angles) // 2) % len(angles))[:, None])[:, 0]
    selectivity = (r_best - r_orth) / (r_best + r_orth).clamp_min(1e-300)
    z = (profile**2 * torch.exp(2j * angles)).sum(1)  # the preferred angle, between grid points
    preferred = (torch.angle(z) / 2) % math.pi
    return {"match": response.amax(1), "selectivity": selectivity, "orientation": preferred,
            "profile": profile}


def eigen_edge_scores(M, channels: int, kernel_size: int, n_filters: int = 6,
                      bank=None) -> dict[str, torch.Tensor]:
    """:func:`orientation_selectivity` of the ``n_filters`` top eigenvectors of ``M``
    (``q x q``, ``q = channels k^2``), in order of decreasing eigenvalue, with their
    ``"eigenvalue"`` (divided by the largest)."""
    k = _pair(kernel_size, "kernel_size")[0]
    M = check_psd(as_tensor(M, "M", dtype=torch.float64).detach().cpu(), "M", channels * k * k)
    out = orientation_selectivity(top_filters(M, n_filters, channels, k), bank)
    eig = torch.linalg.eigvalsh((M + M.T) / 2).flip(0)[:n_filters]
    out["eigenvalue"] = eig / eig[0].clamp_min(1e-300)
    return out


def random_filter_scores(channels: int, kernel_size: int, n_filters: int = 200, *,
                         zero_mean: bool = False, seed: int = 0, bank=None):
    """:func:`orientation_selectivity` of Haar-random unit filters: the top eigenvectors of
    ``M = I``, or of any spectrum in a random eigenbasis (``zero_mean=False``), or of
    ``I - 11^T/q``, whose top eigenspace is the zero-mean patches (``zero_mean=True``)."""
    k = _pair(kernel_size, "kernel_size")[0]
    if not isinstance(n_filters, int) or n_filters < 1:
        raise ValueError(f"n_filters must be a positive int, got {n_filters!r}")
    g = torch.Generator().manual_seed(int(seed))
    f = torch.randn(n_filters, channels * k * k, generator=g, dtype=torch.float64)
    if zero_mean:
        f = f - f.mean(1, keepdim=True)
    return orientation_selectivity(f.reshape(n_filters, channels, k, k), bank)


def sobel_correlation(A, images, kernel_size) -> np.ndarray:
    """Per image, the Pearson correlation of ``A``'s feature map ``|A^{1/2} x[j]|``
    (:func:`agop.features.feature_map`) with the Sobel gradient magnitude of the image's channel
    mean (``skimage.filters.sobel``), over the positions whose ``k x k`` patch lies inside the
    image (the zero padding would draw the image's border as an edge that Sobel, which
    reflects, does not see)."""
    from skimage.filters import sobel

    x = check_images(as_tensor(images, "images"), "images").detach().cpu().double()
    kh, kw = _pair(kernel_size, "kernel_size")
    maps = feature_map(A, x, (kh, kw)).numpy()  # in float64: I - 11^T/q stays PSD
    gray = x.double().mean(1).numpy()
    inside = (slice(kh // 2, x.shape[2] - kh // 2), slice(kw // 2, x.shape[3] - kw // 2))
    out = []
    for fmap, img in zip(maps, gray, strict=True):
        edges = sobel(img)[inside]
        fmap = fmap[inside]
        if fmap.std() == 0 or edges.std() == 0:
            raise ValueError("the correlation is undefined for a constant image or feature map")
        out.append(float(np.corrcoef(fmap.ravel(), edges.ravel())[0, 1]))
    return np.array(out)


def edge_controls(M, images, kernel_size, n_draws: int = 5, seed: int = 0) -> dict:
    """The mean over ``images`` of :func:`sobel_correlation` for ``M`` and for its controls:
    ``"M"``, ``"identity"`` (``M = I``), ``"local_mean"`` (``I - 11^T/q``) and ``"spectrum"``
    (``O L O^T``, ``L`` the eigenvalues of ``M``, ``O`` = :func:`~agop.features.haar_rotations`
    of the ``d``-th ``randn(q, q)`` of a generator seeded with ``seed``; ``n_draws`` draws) as ``"spectrum_mean"``, ``"spectrum_std"``, ``"spectrum_draws"``."""
    if not isinstance(n_draws, int) or isinstance(n_draws, bool) or n_draws < 1:
        raise ValueError(f"n_draws must be a positive int, got {n_draws!r}")
    x = check_images(as_tensor(images, "images"), "images").detach().cpu()
    k = _pair(kernel_size, "kernel_size")
    q = x.shape[1] * k[0] * k[1]
    M = check_psd(as_tensor(M, "M", dtype=torch.float64).detach().cpu(), "M", q)
    lam = torch.linalg.eigvalsh((M + M.T) / 2).clamp_min(0)
    generator = torch.Generator().manual_seed(int(seed))
    draws = []
    for _ in range(n_draws):
        O = haar_rotations(torch.randn(q, q, generator=generator, dtype=torch.float64))
        draws.append(float(sobel_correlation((O * lam) @ O.T, x, kernel_size).mean()))
    eye = torch.eye(q, dtype=torch.float64)
    return {"M": float(sobel_correlation(M, x, kernel_size).mean()),
            "identity": float(sobel_correlation(eye, x, kernel_size).mean()),
            "local_mean": float(sobel_correlation(eye - 1 / q, x, kernel_size).mean()),
            "spectrum_mean": float(np.mean(draws)),
            "spectrum_std": float(np.std(draws, ddof=1)) if n_draws > 1 else 0.0,
            "spectrum_draws": draws}
