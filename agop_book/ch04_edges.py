r"""Chapter 04, ConvRFM and edges: edge statistics of a feature operator :math:`M` on :math:`c \times k \times k` patches,
beside the controls a trivial operator would need to beat.

Two questions, one per statistic:

* **Are the top eigenvectors of** :math:`M` **oriented edge detectors?** Each filter :math:`v`
  (:math:`c \times k \times k`, viewed as :math:`V`, :math:`c \times k^2`) is matched against a
  bank of zero-mean, unit-norm Gabor filters :math:`b` (:func:`oriented_filter_bank`): its
  response to :math:`b` is :math:`\|V b\| / \|v\|`, the cosine with the best colour
  combination :math:`u \otimes b` (:math:`|\cos|` for one channel). Per orientation
  :math:`\theta` take the best response over phases and wavelengths, :math:`r(\theta)`; the
  **orientation selectivity** is the classical index

  .. math:: \mathrm{OSI} = \frac{r(\theta^*) - r(\theta^* + \pi/2)}
            {r(\theta^*) + r(\theta^* + \pi/2)} \in [0, 1],

  :math:`\theta^*` the best orientation: near 1 for an edge or bar detector (a derivative of a
  Gaussian scores about 0.9 on a 7 x 7 patch), 0 for an isotropic filter (a blob, a
  centre-surround spot) and for anything with the square grid's four-fold symmetry.
  :func:`orientation_selectivity` returns it with the best match.
* **Do its feature maps follow edges?** :func:`sobel_correlation` correlates, pixel by pixel
  away from the border, the feature map :math:`\|M^{1/2} x[j]\|` with the Sobel gradient
  magnitude of the image.
  :func:`edge_controls` reports it for :math:`M`, for :math:`M = I`, for the local-mean-removing
  operator :math:`I - \mathbf{1}\mathbf{1}^\top / q` (no learning at all) and for :math:`M`'s own
  spectrum in Haar-random eigenbases (:math:`O \Lambda O^\top`; mean and standard deviation over
  draws).

Figures: :func:`plot_operator_maps`, :func:`plot_accuracy_by_iteration`,
:func:`plot_edge_controls`. Explorer (:func:`rfm_explorer`): ipywidgets core controls, as Colab supports; it redraws a figure with
the same function that draws the chapter's static twin, and opens on the view the static twin
shows."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from skimage.filters import sobel
from sklearn.base import clone

from agop._typing import ArrayLike, Tensor
from agop.estimator import _MAX_COUNT
from agop.features import feature_map, haar_rotations
from agop.validation import (
    ArgumentTypeError,
    _check_allocation,
    as_tensor,
    check_finite,
    check_images,
    check_int,
    check_int_pair,
    check_psd,
    check_reals,
    check_seed,
)
from agop_book.plots import (
    _check_axes,
    _check_figure,
    _check_image,
    _check_list,
    _check_mapping,
    _check_mean_sd,
    _check_subset,
    _check_text,
    _image_for_display,
    _mean_sd,
)
from agop_book.views import top_filters

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def _square_kernel(kernel_size) -> int:
    """The side ``k`` of a square kernel: an integer, or a pair ``(k, k)``."""
    kh, kw = check_int_pair(kernel_size, "kernel_size")
    if kh != kw:
        raise ValueError(f"kernel_size must be square (k x k) here, got {kernel_size!r}")
    return kh


def oriented_filter_bank(
    kernel_size: int,
    n_orientations: int = 8,
    wavelengths: Sequence[float] | None = None,
    phases: Sequence[float] = (0.0, math.pi / 2),
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Gabor filters on a :math:`k \times k` grid centred at 0,

    .. math:: b(u, v) = \exp\Bigl(-\frac{u^2 + v^2}{2 s^2}\Bigr)
              \cos\Bigl(\frac{2 \pi u_\theta}{\lambda} + \varphi\Bigr), \qquad
              u_\theta = u \cos\theta + v \sin\theta,

    :math:`s = \lambda / 2` (at most :math:`k / 2`), each made zero-mean and unit-norm.

    :math:`\theta` runs over ``n_orientations`` angles in :math:`[0, \pi)`, :math:`\lambda` over
    ``wavelengths`` (default: 3 from 2.5 pixels to :math:`k`), :math:`\varphi` over ``phases``
    (even and odd: bars and edges). Returns ``(bank, theta)``: ``(n, k, k)`` float64 filters and
    the orientation of each (``(n,)``).

    Examples:
        >>> bank, theta = oriented_filter_bank(5)  # 8 orientations x 3 wavelengths x 2 phases
        >>> tuple(bank.shape), theta.unique().numel()
        ((48, 5, 5), 8)
        >>> flat = bank.flatten(1)
        >>> bool(flat.sum(1).abs().max() < 1e-12), bool((flat.norm(dim=1) - 1).abs().max() < 1e-12)
        (True, True)
    """
    k = _square_kernel(kernel_size)
    if k < 3:
        raise ValueError(f"kernel_size must be at least 3 for oriented filters, got {k}")
    n_orientations = check_int(n_orientations, "n_orientations", minimum=2)
    if wavelengths is None:
        lams = np.geomspace(2.5, k, 3)
    else:
        lams = np.asarray(check_reals(wavelengths, "wavelengths", minimum=0), float)
        if (lams <= 0).any():
            raise ValueError(f"wavelengths must be positive numbers, got {wavelengths!r}")
    phases = check_reals(phases, "phases")
    _check_allocation(  # three float64 banks live at once: f, f / norm and its kept rows
        n_orientations * len(lams) * len(phases) * k * k,
        3 * 8,
        "kernel_size, n_orientations, wavelengths, phases",
        "the filter bank",
    )
    grid = torch.arange(k, dtype=torch.float64) - (k - 1) / 2
    v, u = torch.meshgrid(grid, grid, indexing="ij")  # v: row (down), u: column (right)
    # every (theta, lambda, phi) at once, in the order theta, then lambda, then phi
    thetas = torch.from_numpy(np.arange(n_orientations) * math.pi / n_orientations)
    lam = torch.from_numpy(lams).view(1, -1, 1, 1, 1)
    phi = torch.tensor(phases, dtype=torch.float64).view(1, 1, -1, 1, 1)
    along = u * thetas.cos().view(-1, 1, 1) + v * thetas.sin().view(-1, 1, 1)  # (t, k, k)
    s = (0.5 * lam).clamp_max(k / 2)
    envelope = torch.exp(-(u**2 + v**2) / (2 * s**2))  # (1, l, 1, k, k)
    f = envelope * torch.cos(2 * math.pi * along[:, None, None] / lam + phi)  # (t, l, p, k, k)
    f = f.reshape(-1, k, k)
    f = f - f.mean((1, 2), keepdim=True)
    norm = f.flatten(1).norm(dim=1)
    keep = norm > 1e-8
    theta = thetas.repeat_interleave(len(lams) * len(phases))
    return (f / norm[:, None, None])[keep], theta[keep]


def _as_filters(filters) -> torch.Tensor:
    f = as_tensor(filters, "filters", dtype=torch.float64).detach().cpu()
    if f.ndim == 3:
        f = f[:, None]
    if f.ndim != 4 or f.shape[-1] != f.shape[-2]:
        raise ValueError(f"filters must be (m, c, k, k) or (m, k, k), got {tuple(f.shape)}")
    if f.numel() == 0:
        raise ValueError(f"filters is empty: shape {tuple(f.shape)}")
    check_finite(f, "filters")
    norms = f.flatten(1).norm(dim=1)
    if bool((norms == 0).any()):
        raise ValueError("filters holds an all-zero filter")
    return f / norms[:, None, None, None]


def _check_bank(bank: Any, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``bank`` as ``(filters (n, k * k), theta (n,))``, finite, for filters of side ``k``."""
    if not isinstance(bank, (tuple, list)) or len(bank) != 2:
        raise ArgumentTypeError(
            "bank must be a pair (filters, theta), as oriented_filter_bank returns, "
            f"got {type(bank).__name__}"
        )
    B = check_finite(as_tensor(bank[0], "bank[0]", dtype=torch.float64).detach().cpu(), "bank[0]")
    theta = as_tensor(bank[1], "bank[1]", dtype=torch.float64).detach().cpu()
    check_finite(theta, "bank[1]")
    if theta.ndim != 1 or theta.numel() == 0:
        raise ValueError(
            f"bank[1] must be the filters' orientations, shape (n,), got {tuple(theta.shape)}"
        )
    if B.ndim < 2 or B.shape[0] != theta.numel() or B[0].numel() != k * k:
        raise ValueError(
            f"bank[0] must hold {theta.numel()} filters of {k} x {k} (shape ({theta.numel()}, "
            f"{k}, {k})) to match bank[1] and the filters, got shape {tuple(B.shape)}"
        )
    return B.reshape(len(theta), k * k), theta


def orientation_selectivity(
    filters: ArrayLike, bank: tuple[torch.Tensor, torch.Tensor] | None = None
) -> dict[str, torch.Tensor]:
    """For each filter (``(m, c, k, k)`` or ``(m, k, k)``): its best match over the bank, its
    orientation selectivity ``OSI`` and preferred orientation (module docstring).

    ``bank``: ``(bank, theta)`` from :func:`oriented_filter_bank` (default: 8 orientations on
    the filters' ``k``; an even number of orientations). Returns ``{"match", "selectivity",
    "orientation"}``, each ``(m,)`` (``orientation``: the angle of ``sum r(theta)^2
    exp(2 i theta)``, halved), and ``"profile"`` ``(m, n_orientations)``: ``r(theta)``.

    Examples:
        A vertical edge, the same edge turned horizontal, and an isotropic blob:

        >>> import torch
        >>> edge = torch.zeros(5, 5, dtype=torch.float64)
        >>> edge[:, :2], edge[:, 3:] = -1.0, 1.0
        >>> grid = torch.arange(5.0, dtype=torch.float64) - 2
        >>> blob = torch.exp(-grid[:, None] ** 2 - grid[None] ** 2)
        >>> scores = orientation_selectivity(torch.stack([edge, edge.T, blob]))
        >>> scores["selectivity"].tolist()
        [1.0, 1.0, 0.0]
        >>> [round(a, 4) for a in scores["orientation"].tolist()[:2]]  # 0 and pi/2
        [0.0, 1.5708]
    """
    f = _as_filters(filters)
    m, c, k, _ = f.shape
    if bank is None:
        if k < 3:
            raise ValueError(
                f"filters must be at least 3 x 3 for the default oriented bank, got {k} x {k} "
                "(pass bank= for smaller ones)"
            )
        B, theta = oriented_filter_bank(k)
        B = B.reshape(len(theta), k * k)
    else:
        B, theta = _check_bank(bank, k)
    response = (f.reshape(m, c, k * k) @ B.T).norm(dim=1)  # (m, n): |V b|
    angles = torch.unique(theta)
    if len(angles) % 2:
        raise ValueError(
            "the bank needs an even number of orientations (theta and theta + "
            f"pi/2 both in it), got {len(angles)}"
        )
    profile = torch.stack([response[:, theta == a].amax(1) for a in angles], dim=1)
    best = profile.argmax(1)
    r_best = profile.gather(1, best[:, None])[:, 0]
    r_orth = profile.gather(1, ((best + len(angles) // 2) % len(angles))[:, None])[:, 0]
    selectivity = (r_best - r_orth) / (r_best + r_orth).clamp_min(1e-300)
    z = (profile**2 * torch.exp(2j * angles)).sum(1)  # the preferred angle, between grid points
    preferred = (torch.angle(z) / 2) % math.pi
    return {
        "match": response.amax(1),
        "selectivity": selectivity,
        "orientation": preferred,
        "profile": profile,
    }


def eigen_edge_scores(
    M: ArrayLike,
    channels: int,
    kernel_size: int,
    n_filters: int = 6,
    bank: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """:func:`orientation_selectivity` of the ``n_filters`` top eigenvectors of ``M``
    (``q x q``, ``q = channels k^2``), in order of decreasing eigenvalue, with their
    ``"eigenvalue"`` (divided by the largest).

    Examples:
        An operator whose top eigenvector is a vertical edge:

        >>> import torch
        >>> edge = torch.zeros(5, 5, dtype=torch.float64)
        >>> edge[:, :2], edge[:, 3:] = -1.0, 1.0
        >>> M = torch.outer(edge.flatten(), edge.flatten()) + torch.eye(25, dtype=torch.float64)
        >>> scores = eigen_edge_scores(M, channels=1, kernel_size=5, n_filters=2)  # 21, 1, 1, ...
        >>> round(scores["selectivity"][0].item(), 4), round(scores["eigenvalue"][1].item(), 4)
        (1.0, 0.0476)
    """
    k = _square_kernel(kernel_size)
    channels = check_int(channels, "channels", minimum=1)
    M = check_psd(as_tensor(M, "M", dtype=torch.float64).detach().cpu(), "M", channels * k * k)
    out = orientation_selectivity(top_filters(M, n_filters, channels, k), bank)
    eig = torch.linalg.eigvalsh((M + M.T) / 2).flip(0)[:n_filters]
    out["eigenvalue"] = eig / eig[0].clamp_min(1e-300)
    return out


def random_filter_scores(
    channels: int,
    kernel_size: int,
    n_filters: int = 200,
    *,
    seed: int = 0,
    bank: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    r""":func:`orientation_selectivity` of Haar-random unit filters: the top eigenvectors of
    ``M = I``, or of any spectrum in a random eigenbasis. (Removing each filter's mean changes
    nothing: the bank is zero-mean and the index is a ratio.)

    Examples:
        Random filters are far less selective than an edge (whose index is 1):

        >>> scores = random_filter_scores(1, 5, n_filters=100)
        >>> round(scores["selectivity"].mean().item(), 2)
        0.26
    """
    k = _square_kernel(kernel_size)
    if bank is None and k < 3:
        raise ValueError(
            f"kernel_size must be at least 3 for the default oriented bank, got {k} "
            "(pass bank= for smaller filters)"
        )
    n_filters = check_int(n_filters, "n_filters", minimum=1)
    channels = check_int(channels, "channels", minimum=1)
    _check_allocation(
        n_filters * channels * k * k, 8, "n_filters, channels, kernel_size", "the filters"
    )
    g = torch.Generator().manual_seed(check_seed(seed))
    f = torch.randn(n_filters, channels * k * k, generator=g, dtype=torch.float64)
    return orientation_selectivity(f.reshape(n_filters, channels, k, k), bank)


def sobel_correlation(
    A: ArrayLike, images: ArrayLike, kernel_size: int | tuple[int, int]
) -> np.ndarray:
    r"""Per image, the Pearson correlation of ``A``'s feature map :math:`\|A^{1/2} x[j]\|`
    (:func:`agop.features.feature_map`) with the Sobel gradient magnitude of the image's channel
    mean (``skimage.filters.sobel``), over the positions whose ``k x k`` patch lies inside the
    image (the zero padding would draw the image's border as an edge that Sobel, which
    reflects, does not see).

    Examples:
        A step edge: the local-mean-removing operator :math:`I - \mathbf{1}\mathbf{1}^\top / q`
        lights up where Sobel does; the identity's map (the patch norm) does not:

        >>> import torch
        >>> image = torch.zeros(1, 1, 12, 12, dtype=torch.float64)
        >>> image[..., 6:] = 1.0
        >>> image += 0.01 * torch.randn(1, 1, 12, 12, generator=torch.Generator().manual_seed(0),
        ...                             dtype=torch.float64)
        >>> eye = torch.eye(9, dtype=torch.float64)
        >>> sobel_correlation(eye - 1 / 9, image, 3).round(3), sobel_correlation(eye, image, 3).round(3)
        (array([1.]), array([0.17]))
    """
    x = check_images(as_tensor(images, "images"), "images").detach().cpu().double()
    kh, kw = check_int_pair(kernel_size, "kernel_size")
    inside = (slice(kh // 2, x.shape[2] - kh // 2), slice(kw // 2, x.shape[3] - kw // 2))
    n_inside = max(0, x.shape[2] - 2 * (kh // 2)) * max(0, x.shape[3] - 2 * (kw // 2))
    if n_inside < 2:
        raise ValueError(
            f"images must be larger than the {kh} x {kw} kernel: a correlation needs at least "
            f"2 positions whose patch lies inside, got images of {x.shape[2]} x {x.shape[3]}"
        )
    maps = feature_map(A, x, (kh, kw)).numpy()  # in float64: I - 11^T/q stays PSD
    gray = x.double().mean(1).numpy()
    out = []
    for i, (fmap, img) in enumerate(zip(maps, gray, strict=True)):
        edges = sobel(img)[inside]
        fmap = fmap[inside]
        # constant up to round-off (a ramp's Sobel magnitude is sqrt 2 everywhere, with a
        # standard deviation of 1e-16 from rounding): the correlation is undefined
        for a, what in (
            (edges, f"images[{i}]: its Sobel magnitude"),
            (fmap, f"A: its map of images[{i}]"),
        ):
            if np.ptp(a) <= 1e-12 * np.abs(a).max():
                raise ValueError(
                    f"{what} is constant (a constant or linear image, say): the correlation "
                    "is undefined"
                )
        out.append(float(np.corrcoef(fmap.ravel(), edges.ravel())[0, 1]))
    return np.array(out)


def edge_controls(
    M: ArrayLike,
    images: ArrayLike,
    kernel_size: int | tuple[int, int],
    n_draws: int = 5,
    seed: int = 0,
) -> dict[str, Any]:
    r"""The mean over ``images`` of :func:`sobel_correlation` for ``M`` and for its controls:
    ``"M"``, ``"identity"`` (``M = I``), ``"local_mean"`` (:math:`I - \mathbf{1}\mathbf{1}^\top / q`) and ``"spectrum"``
    (:math:`O \Lambda O^\top`, ``L`` the eigenvalues of ``M``, ``O`` = :func:`~agop.features.haar_rotations`
    of the ``d``-th ``randn(q, q)`` of a generator seeded with ``seed``; ``n_draws`` draws) as
    ``"spectrum_mean"``, ``"spectrum_std"``, ``"spectrum_draws"``.

    Examples:
        The image of :func:`sobel_correlation`'s example, and :math:`M = I - \mathbf{1}\mathbf{1}^\top / q`:
        its own spectrum in random eigenbases does not follow the edge.

        >>> import torch
        >>> image = torch.zeros(1, 1, 12, 12, dtype=torch.float64)
        >>> image[..., 6:] = 1.0
        >>> image += 0.01 * torch.randn(1, 1, 12, 12, generator=torch.Generator().manual_seed(0),
        ...                             dtype=torch.float64)
        >>> M = torch.eye(9, dtype=torch.float64) - 1 / 9
        >>> controls = edge_controls(M, image, 3, n_draws=3)
        >>> {k: round(v, 2) for k, v in controls.items() if k != "spectrum_draws"}
        {'M': 1.0, 'identity': 0.17, 'local_mean': 1.0, 'spectrum_mean': 0.18, 'spectrum_std': 0.02}
    """
    n_draws = check_int(n_draws, "n_draws", minimum=1, maximum=_MAX_COUNT)
    seed = check_seed(seed)
    x = check_images(as_tensor(images, "images"), "images").detach().cpu()
    k = check_int_pair(kernel_size, "kernel_size")
    q = x.shape[1] * k[0] * k[1]
    M = check_psd(as_tensor(M, "M", dtype=torch.float64).detach().cpu(), "M", q)
    lam = torch.linalg.eigvalsh((M + M.T) / 2).clamp_min(0)
    generator = torch.Generator().manual_seed(seed)
    draws = []
    for _ in range(n_draws):
        O = haar_rotations(torch.randn(q, q, generator=generator, dtype=torch.float64))
        draws.append(float(sobel_correlation((O * lam) @ O.T, x, kernel_size).mean()))
    eye = torch.eye(q, dtype=torch.float64)
    spectrum_mean, spectrum_std = _mean_sd(draws)
    return {
        "M": float(sobel_correlation(M, x, kernel_size).mean()),
        "identity": float(sobel_correlation(eye, x, kernel_size).mean()),
        "local_mean": float(sobel_correlation(eye - 1 / q, x, kernel_size).mean()),
        "spectrum_mean": spectrum_mean,
        "spectrum_std": spectrum_std,
        "spectrum_draws": draws,
    }


def fit_shuffled(estimator: Any, X: ArrayLike, y: ArrayLike, seed: int = 0) -> Any:
    r"""A clone of ``estimator`` (unfitted, same parameters) fitted on ``X`` with the labels
    ``y`` randomly permuted (seeded): the same procedure with the link between images and
    labels cut. Its learned operator (``Ms_``, ``M_`` of a :class:`agop.ConvRFM`) is the
    shuffled-label control of the operator learned on the true labels.

    Examples:
        It is the same estimator fitted on ``y[torch.randperm(n)]``, the permutation drawn
        from a generator seeded with ``seed``:

        >>> import torch
        >>> from agop import ConvRFM
        >>> g = torch.Generator().manual_seed(0)
        >>> X = torch.randn(40, 1, 6, 6, generator=g, dtype=torch.float64)
        >>> y = torch.arange(40) % 2
        >>> model = ConvRFM("laplace", 3, n_iter=1, random_state=0, device="cpu", progress=False)
        >>> M = fit_shuffled(model, X, y, seed=1).Ms_[-1]
        >>> order = torch.randperm(40, generator=torch.Generator().manual_seed(1))
        >>> torch.equal(M, ConvRFM(**model.get_params()).fit(X, y[order]).Ms_[-1])
        True
        >>> hasattr(model, "M_")  # the estimator passed in stays unfitted
        False
    """
    if not hasattr(estimator, "fit"):
        raise TypeError(f"estimator must have a fit method, got {type(estimator).__name__}")
    labels = np.asarray(y)
    n = len(X)  # type: ignore[arg-type]
    if labels.ndim == 0 or labels.shape[0] != n:
        raise ValueError(f"y must have one label per image ({n}), got shape {labels.shape}")
    g = torch.Generator().manual_seed(check_seed(seed))
    order = torch.randperm(n, generator=g).numpy()
    return clone(estimator).fit(X, labels[order])


def plot_operator_maps(
    operators: Mapping[str, Tensor],
    images: Tensor | Sequence[Tensor],
    patch_size: int,
    n_filters: int = 6,
    fig: Figure | None = None,
    title: str | None = None,
    map_titles: Sequence[str] | None = None,
) -> Figure:
    r"""One row per feature operator ``A`` (``{label: A}``, each ``q x q``, ``q = c k^2``): its
    ``n_filters`` top eigenvectors as ``c x k x k`` filters (eigenvalue / largest above each),
    then its feature map :math:`\|A^{1/2} x[j]\|` ("same" padding) on each image of ``images`` (a
    batch ``(n, c, H, W)`` or a list of ``(c, H, W)`` images of any sizes). Filters are drawn
    with a symmetric blue-red scale for one channel (RGB, scaled per filter, for three); maps in
    gray, each scaled to its own range. ``map_titles`` label the image columns. Returns the
    figure.

    Examples:
        >>> import matplotlib.pyplot as plt
        >>> import torch
        >>> W = torch.randn(4, 9, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        >>> operators = {"identity": torch.eye(9, dtype=torch.float64), "CNFM": W.T @ W}
        >>> fig = plot_operator_maps(operators, torch.rand(2, 1, 8, 8, dtype=torch.float64), 3,
        ...                          n_filters=2)
        >>> len(fig.axes)  # 2 rows of 2 filters and 2 maps
        8
        >>> plt.close(fig)
    """

    images, patch_size, n_filters, map_titles = _check_map_inputs(
        images, patch_size, n_filters, map_titles
    )
    c = images[0].shape[0]
    _check_mapping(operators, "operators", "{label: q x q operator}")
    operators = {
        label: _check_operator(A, f"operators[{label!r}]", c * patch_size**2, n_filters)
        for label, A in operators.items()
    }
    _check_figure(fig)
    title = _check_text(title, "title")
    labels = list(operators)
    cols = n_filters + len(images)
    if fig is None:
        fig = plt.figure(figsize=(1.05 * cols + 0.9, 1.15 * len(labels) + 0.5))
    fig.clear()
    axes = fig.subplots(len(labels), cols, squeeze=False)
    for r, label in enumerate(labels):
        A = torch.as_tensor(operators[label]).detach().double().cpu()
        A = (A + A.T) / 2
        if n_filters:
            eig = torch.linalg.eigvalsh(A).flip(0)
            filters = top_filters(A, n_filters, c, patch_size)
        for i in range(n_filters):
            ax = axes[r, i]
            f = filters[i]
            if c == 1:
                v = float(f.abs().max()) or 1.0
                ax.imshow(f[0].numpy(), cmap="RdBu_r", vmin=-v, vmax=v)
            else:
                ax.imshow(_image_for_display(f)[0])
            ax.set_title(f"{float(eig[i] / eig[0]):.2f}", fontsize=7, pad=2)
        for j, x in enumerate(images):
            ax = axes[r, n_filters + j]
            ax.imshow(feature_map(A.to(x.dtype), x[None], patch_size)[0].numpy(), cmap="gray")
            if r == 0 and map_titles is not None:
                ax.set_title(str(map_titles[j]), fontsize=7, pad=2)
        axes[r, 0].set_ylabel(label, fontsize=8, rotation=0, ha="right", va="center")
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(pad=0.3, w_pad=0.2, h_pad=0.4)
    return fig


def _check_map_inputs(
    images: Any, patch_size: Any, n_filters: Any, map_titles: Any
) -> tuple[list[torch.Tensor], int, int, list[str] | None]:
    """:func:`plot_operator_maps`' images (as a list of ``(c, H, W)`` tensors, all with the same
    ``c``), patch size, number of filters (at most ``c k^2``) and map titles (one per image)."""
    if isinstance(images, (torch.Tensor, np.ndarray)):
        batch = as_tensor(images, "images")
        if batch.ndim != 4 or batch.shape[0] == 0:
            raise ValueError(
                "images must be a non-empty batch (n, c, H, W) or a list of (c, H, W) images, "
                f"got shape {tuple(batch.shape)}"
            )
        images = list(batch)
    images = _check_list(images, "images", "(c, H, W) images")
    images = [_check_image(x, f"images[{j}]").detach().cpu() for j, x in enumerate(images)]
    c = images[0].shape[0]
    for j, x in enumerate(images):
        if x.shape[0] != c:
            raise ValueError(
                f"images[{j}] must have {c} channels as images[0] has, got shape {tuple(x.shape)}"
            )
    patch_size = check_int(patch_size, "patch_size", minimum=1)
    n_filters = check_int(n_filters, "n_filters", minimum=0, maximum=c * patch_size**2)
    if map_titles is not None:
        map_titles = [str(t) for t in _check_list(map_titles, "map_titles", "titles")]
        if len(map_titles) != len(images):
            raise ValueError(
                f"map_titles must hold one title per image ({len(images)}), got {len(map_titles)}"
            )
    return images, patch_size, n_filters, map_titles


def _check_operator(A: Any, name: str, q: int, n_filters: int) -> torch.Tensor:
    """``A`` as a ``q x q`` positive semi-definite float64 operator, not zero if it is to show
    ``n_filters > 0`` top filters (each drawn with its eigenvalue over the largest)."""
    A = check_psd(as_tensor(A, name, dtype=torch.float64), name, q)
    if n_filters and not A.abs().max() > 0:
        raise ValueError(f"{name} is zero: it has no top filters to draw (pass n_filters=0)")
    return A


def plot_accuracy_by_iteration(
    curves: Mapping[str, Sequence[float]],
    selected: Mapping[str, int] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """Accuracy against ConvRFM round (``{label: [acc_0, acc_1, ...]}``, round 0 = the fixed
    kernel, ``M = I``), one line per curve; ``selected`` (``{label: t}``) circles the iterate
    chosen on the validation split. Returns the axes.

    Examples:
        >>> import matplotlib.pyplot as plt
        >>> ax = plot_accuracy_by_iteration({"ConvRFM": [0.63, 0.71, 0.76]},
        ...                                 selected={"ConvRFM": 2})
        >>> ax.get_lines()[0].get_ydata().tolist(), ax.get_lines()[1].get_ydata().tolist()
        ([0.63, 0.71, 0.76], [0.76])
        >>> plt.close(ax.figure)
    """

    _check_mapping(curves, "curves", "{label: [accuracy per round]}")
    curves = {k: check_reals(v, f"curves[{k!r}]") for k, v in curves.items()}
    if selected is not None:
        if not isinstance(selected, Mapping):
            raise ArgumentTypeError(
                f"selected must be None or a dict {{label: round}}, got {type(selected).__name__}"
            )
        _check_subset(selected, list(curves), "selected", "the labels of curves")
        selected = {
            k: check_int(t, f"selected[{k!r}]", minimum=0, maximum=len(curves[k]) - 1)
            for k, t in selected.items()
        }
    _check_axes(ax)
    title = _check_text(title, "title")
    if ax is None:
        _, ax = plt.subplots(figsize=(4.6, 3.0))
    for label, accs in curves.items():
        (line,) = ax.plot(range(len(accs)), accs, marker="o", ms=4, label=label)
        if selected and label in selected:
            t = selected[label]
            ax.plot([t], [accs[t]], "o", ms=11, mfc="none", mec=line.get_color())
    ax.set_xlabel("AGOP round $t$ (0 = fixed kernel, $M = I$)")
    ax.set_ylabel("accuracy")
    ax.xaxis.get_major_locator().set_params(integer=True)  # type: ignore[call-arg]  # MaxNLocator
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def plot_edge_controls(
    table: Mapping[str, Mapping[str, tuple[float, float]]], title: str | None = None
) -> Figure:
    """One panel per statistic, one horizontal bar per operator: ``table[operator][statistic]``
    is ``(mean, sd)`` over seeds, drawn as a bar with an error bar of one SD. Operators whose
    name contains ``"learned"`` are drawn in a darker colour. Returns the figure.

    Examples:
        >>> import matplotlib.pyplot as plt
        >>> table = {"M = I": {"selectivity": (0.3, 0.05), "Sobel": (0.1, 0.0)},
        ...          "laplace, learned M_T": {"selectivity": (0.5, 0.1), "Sobel": (0.3, 0.05)}}
        >>> fig = plot_edge_controls(table, title="digits")
        >>> [ax.get_title() for ax in fig.axes]
        ['selectivity', 'Sobel']
        >>> plt.close(fig)
    """
    _check_mapping(table, "table", "{operator: {statistic: (mean, sd)}}")
    labels = list(table)
    names: list[str] = []
    for label in labels:
        where = f"table[{label!r}]"
        _check_mapping(table[label], where, "{statistic: (mean, sd)}")
        if not names:
            names = list(table[label])
        elif list(table[label]) != names:
            raise ValueError(
                f"{where} has statistics {list(table[label])}, table[{labels[0]!r}] has {names}: "
                "every operator must have the same"
            )
        for name in names:
            _check_mean_sd(table[label][name], f"{where}[{name!r}]")
    title = _check_text(title, "title")
    fig, axes = plt.subplots(
        1, len(names), figsize=(3.4 * len(names) + 1.6, 0.35 * len(labels) + 1.4), sharey=True
    )
    axes = np.atleast_1d(axes)
    pos = np.arange(len(labels))[::-1]
    colours = ["tab:blue" if "learned" in label else "tab:gray" for label in labels]
    for ax, name in zip(axes, names, strict=True):
        mean = [table[label][name][0] for label in labels]
        sd = [table[label][name][1] for label in labels]
        ax.barh(pos, mean, xerr=sd, color=colours, capsize=3)
        ax.set_title(name)
        ax.axvline(0, color="black", lw=0.5)
    axes[0].set_yticks(pos, labels)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def rfm_explorer(
    iterates: Mapping[tuple[str, int], Sequence[torch.Tensor]],
    images: torch.Tensor | Sequence[torch.Tensor],
    n_filters: int = 6,
    map_titles: Sequence[str] | None = None,
) -> Any:
    """ConvRFM's learned operators: choose a kernel, a patch size and an AGOP round -> the top
    filters of ``M_t`` and its feature maps on ``images``, drawn by
    :func:`plot_operator_maps` (the chapter's static twin). ``iterates``:
    ``{(kernel, patch_size): [M_0, M_1, ...]}`` (for instance ``model.Ms_``). Returns the widget.

    Examples:
        >>> import contextlib, io
        >>> import torch
        >>> W = torch.randn(4, 9, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        >>> iterates = {("laplace", 3): [torch.eye(9, dtype=torch.float64), W.T @ W]}
        >>> with contextlib.redirect_stdout(io.StringIO()):
        ...     explorer = rfm_explorer(iterates, torch.rand(2, 1, 8, 8, dtype=torch.float64),
        ...                             n_filters=2)
        >>> [(w.description, w.value) for w in explorer.children[0].children]
        [('kernel', 'laplace'), ('patch size', 3), ('round t', 1)]
    """
    import ipywidgets as w

    _check_mapping(iterates, "iterates", "{(kernel, patch_size): [M_0, M_1, ...]}")
    checked: dict[tuple[str, int], list[torch.Tensor]] = {}
    for key, Ms in iterates.items():
        where = f"iterates[{key!r}]"
        if not isinstance(key, tuple) or len(key) != 2 or not isinstance(key[0], str):
            raise ArgumentTypeError(
                f"iterates: each key must be a pair (kernel name, patch size), got {key!r}"
            )
        k = check_int(key[1], f"iterates: the patch size of {key!r}", minimum=1)
        shown, k, n_filters, map_titles = _check_map_inputs(images, k, n_filters, map_titles)
        q = shown[0].shape[0] * k**2
        Ms = _check_list(Ms, where, "q x q operators, one per round")
        checked[key[0], k] = [
            _check_operator(M, f"{where}[{t}]", q, n_filters) for t, M in enumerate(Ms)
        ]
    iterates = checked
    kernels = sorted({kernel for kernel, _ in iterates})
    sizes = sorted({k for _, k in iterates})
    longest = max(len(Ms) for Ms in iterates.values())
    controls = {
        "kernel": w.Dropdown(options=kernels, value=kernels[0], description="kernel"),
        "patch_size": w.Dropdown(options=sizes, value=sizes[-1], description="patch size"),
        "iteration": w.IntSlider(
            min=0,
            max=longest - 1,
            value=longest - 1,
            description="round t",
            continuous_update=False,
        ),
    }
    out = w.Output()
    fig = plt.figure(figsize=(1.05 * (n_filters + len(images)) + 0.9, 1.8))
    plt.close(fig)

    def draw(kernel, patch_size, iteration):
        with out:
            out.clear_output(wait=True)
            Ms = iterates.get((kernel, patch_size))
            if Ms is None:
                print(f"no run for kernel={kernel!r}, patch size {patch_size}")
                return
            t = min(iteration, len(Ms) - 1)
            plot_operator_maps(
                {f"{kernel} {patch_size}x{patch_size}, t={t}": Ms[t]},
                images,
                patch_size,
                n_filters=n_filters,
                fig=fig,
                map_titles=map_titles,
            )
            from IPython.display import display

            display(fig)

    w.interactive_output(draw, controls)
    return w.VBox([w.HBox(list(controls.values())), out])
