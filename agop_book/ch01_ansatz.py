r"""Chapter 01, the convolutional neural feature ansatz: the ansatz report of any CNN, its
figures and its explorer.

:func:`verify_ansatz` takes a CNN (any ``torch.nn.Module`` with ``Conv2d`` layers: AlexNet, VGG,
ResNet, MobileNet, DenseNet, or your own) and a batch of images, and returns an
:class:`AnsatzTable`: for every conv layer ``l``, the similarity of its CNFM
:math:`W_l^\top W_l` with its patch-AGOP (and with :math:`\mathrm{AGOP}^{1/2}`), the same at
initialisation, the spectrum-matched, random-PSD and identity null baselines, and the similarity
of the initial and the trained CNFM. All layers' AGOPs come from the same backward passes
(:func:`agop.features.patch_agop`). :func:`ansatz_table` makes the same report from AGOPs
already computed; :func:`seed_gaps` pairs, over training seeds, each network's similarity with
its own spectrum-matched null (:class:`SeedGaps`).

Figures: :func:`plot_ansatz_controls`, :func:`plot_cnfm_agop`, :func:`plot_cnfm_agop_rows`,
:func:`plot_alpha_curves`. Explorer (:func:`ansatz_explorer`): ipywidgets core controls, as Colab supports; it redraws a figure with
the same function that draws the chapter's static twin, and opens on the view the static twin
shows."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from agop._typing import Tensor
from agop.estimator import _MAX_COUNT
from agop.features import (
    FactoredAGOP,
    cnfm,
    cnfm_similarity,
    conv_layers,
    filter_matrix,
    null_baselines,
    patch_agop,
)
from agop.linalg import correlation, psd_power
from agop.validation import (
    ArgumentTypeError,
    as_tensor,
    check_choice,
    check_finite,
    check_images,
    check_int,
    check_not_meta,
    check_real,
    check_reals,
    check_seeds,
    check_square,
)
from agop_book.plots import (
    _MAX_INCHES,
    _check_axes,
    _check_figure,
    _check_mapping,
    _check_subset,
    _check_text,
)
from agop_book.pretrained import load_model

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def n_outputs(model: nn.Module, X: torch.Tensor) -> int:
    """The number of outputs of ``model`` (run in eval mode on one image of ``X``).

    Images of a size the architecture cannot take raise ``ValueError``.

    Examples:
        >>> import torch
        >>> from agop_book.nets import SimpleCNN
        >>> net = SimpleCNN(3, 4, image_size=16, depth=2, width=4, seed=0).double().eval()
        >>> X = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0),
        ...                dtype=torch.float64)
        >>> n_outputs(net, X)
        4
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(X[:1])
    except RuntimeError as err:
        raise ValueError(
            f"X has images of shape {tuple(X.shape[1:])}, which {type(model).__name__} cannot "
            f"take (the forward pass failed: {str(err).splitlines()[0]}). Use larger images, e.g. "
            f"agop_book.data.load_photographs(size=224)"
        ) from err
    finally:
        model.train(was_training)
    return int(out.reshape(1, -1).shape[1])


@dataclasses.dataclass
class LayerResult:
    r"""The ansatz at one conv layer. Similarities are between the CNFM :math:`W^\top W` and the
    named matrix.

    ``pearson``/``cosine``: against the AGOP; ``*_sqrt``: against :math:`\mathrm{AGOP}^{1/2}`; ``init_*``: the
    same for the model at initialisation (``None`` without one); ``null_random_*``: against
    :math:`W^\top G W` for random PSD ``G`` (mean and std over draws); ``null_spectrum_*``: the
    spectrum-matched null, the trained ``G``'s eigenvalues in random eigenbases (mean and std);
    ``null_identity_*``: ``G = I``; the ``null_*_sqrt*`` fields: the same nulls against
    :math:`(W^\top G W)^{1/2}` (``None`` unless the table's ``powers`` hold ``0.5``);
    ``cnfm_init_vs_trained`` (``_cosine``): Pearson correlation (cosine similarity) of the initial
    and the trained CNFM; ``seconds``: this layer's share of the analysis after the shared
    backward passes.

    See :func:`verify_ansatz` for an example (and :func:`ansatz_table` for another).
    """

    layer: str
    weight_shape: tuple[int, ...]
    pearson: float
    cosine: float
    pearson_sqrt: float
    cosine_sqrt: float
    null_random_pearson: float | None = None
    null_random_pearson_std: float | None = None
    null_random_cosine: float | None = None
    null_random_cosine_std: float | None = None
    null_identity_pearson: float | None = None
    null_identity_cosine: float | None = None
    null_spectrum_pearson: float | None = None
    null_spectrum_pearson_std: float | None = None
    null_spectrum_cosine: float | None = None
    null_spectrum_cosine_std: float | None = None
    init_pearson: float | None = None
    init_cosine: float | None = None
    init_pearson_sqrt: float | None = None
    init_cosine_sqrt: float | None = None
    cnfm_init_vs_trained: float | None = None
    cnfm_init_vs_trained_cosine: float | None = None
    null_random_pearson_sqrt: float | None = None
    null_random_pearson_sqrt_std: float | None = None
    null_random_cosine_sqrt: float | None = None
    null_random_cosine_sqrt_std: float | None = None
    null_identity_pearson_sqrt: float | None = None
    null_identity_cosine_sqrt: float | None = None
    null_spectrum_pearson_sqrt: float | None = None
    null_spectrum_pearson_sqrt_std: float | None = None
    null_spectrum_cosine_sqrt: float | None = None
    null_spectrum_cosine_sqrt_std: float | None = None
    seconds: float = 0.0

    @property
    def q(self) -> int:
        """The patch dimension ``c * k * k`` (the side of the CNFM)."""
        return math.prod(self.weight_shape[1:])


_TEXT_COLUMNS = (
    ("layer", "layer", "{}"),
    ("weight", "weight_shape", "{}"),
    ("r", "pearson", "{:.3f}"),
    ("r sqrt", "pearson_sqrt", "{:.3f}"),
    ("cos", "cosine", "{:.3f}"),
    ("cos sqrt", "cosine_sqrt", "{:.3f}"),
    ("r init", "init_pearson", "{:.3f}"),
    ("r spec", "null_spectrum_pearson", "{:.3f}"),
    ("+-", "null_spectrum_pearson_std", "{:.3f}"),
    ("r null", "null_random_pearson", "{:.3f}"),
    ("+-", "null_random_pearson_std", "{:.3f}"),
    ("r G=I", "null_identity_pearson", "{:.3f}"),
    ("r(W0'W0,W'W)", "cnfm_init_vs_trained", "{:.3f}"),
    ("s", "seconds", "{:.2f}"),
)


@dataclasses.dataclass
class AnsatzTable:
    """The ansatz report: one row per conv layer (:class:`LayerResult`), and how the AGOPs were
    computed (``None`` where the AGOPs were given, :func:`ansatz_table`). ``powers``: the
    powers of the AGOP whose null baselines the rows hold (1, and 1/2 for the ``*_sqrt``
    fields); :meth:`records` gives one row per (layer, power, kind), the long form that
    :func:`plot_ansatz_controls` draws.

    See :func:`verify_ansatz` for an example (and :func:`ansatz_table` for another).
    """

    model: str
    rows: list[LayerResult]
    n_images: int | None = None
    image_size: tuple[int, int] | None = None
    n_outputs: int | None = None
    sketch: int | None = None
    weights: str = "weights as given"
    agop_seconds: float | None = None
    powers: tuple[float, ...] = (1.0,)
    init_agop_seconds: float | None = None
    agops: dict[str, torch.Tensor] | None = dataclasses.field(default=None, repr=False)
    init_agops: dict[str, torch.Tensor] | None = dataclasses.field(default=None, repr=False)
    factors: dict[str, Any] | None = dataclasses.field(default=None, repr=False)
    init_factors: dict[str, Any] | None = dataclasses.field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __getitem__(self, key: int | str) -> LayerResult:
        if isinstance(key, str):
            for row in self.rows:
                if row.layer == key:
                    return row
            raise KeyError(key)
        return self.rows[key]

    def column(self, name: str) -> list:
        """One field over the layers, in order."""
        if name not in {f.name for f in dataclasses.fields(LayerResult)}:
            raise ValueError(f"name must be a field of LayerResult, got {name!r}")
        return [getattr(r, name) for r in self.rows]

    def mean(self, name: str) -> float:
        """The mean of one numeric field over the layers (``ValueError`` where it is missing)."""
        values = self.column(name)
        if any(v is None for v in values):
            raise ValueError(f"{name} is missing for some layers (no model at initialisation?)")
        return float(np.mean(values))

    def records(self, labels: str = "names") -> list[dict[str, Any]]:
        r"""One dict per (layer, power in :attr:`powers`, kind), in that order: the
        similarity of :math:`W^\top W` with :math:`\mathrm{AGOP}^p` after training
        (``trained``) and at initialisation (``init``), the initial against the trained CNFM
        (``cnfm_init``), the Wishart null (``null_mean``, ``null_std``, and ``margin``, the
        distance from it in its standard deviations, ``inf`` where the std is 0), the
        spectrum-matched null (``spectrum_mean``, ``spectrum_std``, ``spectrum_margin``) and
        ``G = I`` (``identity``); ``None`` where not measured. ``labels="index"`` names the
        layers 1, 2, ... (for deep models)."""
        if labels not in ("names", "index"):
            raise ValueError(f"labels must be 'names' or 'index', got {labels!r}")
        out = []
        for i, r in enumerate(self.rows):
            for power in self.powers:
                s = "" if power == 1 else "_sqrt"
                for kind in ("pearson", "cosine"):
                    trained = getattr(r, f"{kind}{s}")
                    null_mean = getattr(r, f"null_random_{kind}{s}")
                    null_std = getattr(r, f"null_random_{kind}{s}_std")
                    spectrum_mean = getattr(r, f"null_spectrum_{kind}{s}")
                    spectrum_std = getattr(r, f"null_spectrum_{kind}{s}_std")
                    out.append(
                        {
                            "layer": r.layer if labels == "names" else str(i + 1),
                            "power": power,
                            "kind": kind,
                            "trained": trained,
                            "init": getattr(r, f"init_{kind}{s}"),
                            "cnfm_init": (
                                r.cnfm_init_vs_trained
                                if kind == "pearson"
                                else r.cnfm_init_vs_trained_cosine
                            ),
                            "null_mean": null_mean,
                            "null_std": null_std,
                            "margin": _margin(trained, null_mean, null_std),
                            "identity": getattr(r, f"null_identity_{kind}{s}"),
                            "spectrum_mean": spectrum_mean,
                            "spectrum_std": spectrum_std,
                            "spectrum_margin": _margin(trained, spectrum_mean, spectrum_std),
                        }
                    )
        return out

    def null_margins(self, kind: str = "pearson", null: str = "spectrum") -> list[float | None]:
        """Per layer, ``(measured - null mean) / null std``: the distance of the measured
        similarity from the ``"spectrum"`` (matched, the primary) or ``"random"`` (Wishart)
        null in the null's standard deviations (``inf`` where the std is 0)."""
        if kind not in ("pearson", "cosine") or null not in ("spectrum", "random"):
            raise ValueError(
                f"kind must be 'pearson' or 'cosine' and null 'spectrum' or "
                f"'random', got kind={kind!r}, null={null!r}"
            )
        means = self.column(f"null_{null}_{kind}")
        stds = self.column(f"null_{null}_{kind}_std")
        if any(v is None for v in means):
            raise ValueError(f"the {null} null is missing (null_draws=0?)")
        return [
            _margin(getattr(r, kind), m, s) for r, m, s in zip(self.rows, means, stds, strict=True)
        ]

    def margin(self, kind: str = "pearson") -> float:
        """The mean over layers of (measured - random-``G`` null) similarity."""
        return self.mean(kind) - self.mean(f"null_random_{kind}")

    def to_records(self) -> list[dict[str, Any]]:
        return [dataclasses.asdict(r) for r in self.rows]

    def to_pandas(self) -> Any:
        """The rows as a ``pandas.DataFrame`` (needs pandas, which agop does not depend on)."""
        try:
            import pandas as pd
        except ImportError as err:
            raise ImportError(
                "to_pandas needs pandas (pip install pandas); "
                "to_records() gives the same rows as dicts"
            ) from err
        return pd.DataFrame(self.to_records()).set_index("layer")

    def format_table(self) -> str:
        """The rows as a fixed-width table of numbers under column headers (``-`` where a value
        was not measured): ``r`` = Pearson, ``cos`` = cosine similarity of the CNFM with the
        AGOP (``sqrt``: with its square root), ``init`` at initialisation, ``spec`` and ``null``
        the spectrum-matched and Wishart nulls (mean, then ``+-`` their standard deviation),
        ``G=I`` the identity control, ``r(W0'W0,W'W)`` the initial against the trained CNFM,
        ``s`` the seconds per layer. ``print(table)`` prints it."""
        lines = [[h for h, _, _ in _TEXT_COLUMNS]]
        for row in self.rows:
            cells = []
            for _, field, fmt in _TEXT_COLUMNS:
                v = getattr(row, field)
                if field == "weight_shape":
                    v = "x".join(map(str, v))
                cells.append("-" if v is None else fmt.format(v))
            lines.append(cells)
        widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
        text = []
        for k, line in enumerate(lines):
            text.append(
                "  ".join(
                    c.ljust(w) if i < 2 else c.rjust(w)
                    for i, (c, w) in enumerate(zip(line, widths, strict=True))
                )
            )
            if k == 0:
                text.append("  ".join("-" * w for w in widths))
        return "\n".join(text)

    def __str__(self) -> str:
        return self.format_table()

    def _repr_pretty_(self, p, cycle) -> None:  # IPython
        p.text(self.format_table())


def _check_agops(model: Any, agops: Any, name: str = "agops") -> dict[str, nn.Conv2d]:
    """Check ``agops`` (``{layer name: (q, q) AGOP}``) against ``model``'s Conv2d layers, naming
    ``name`` in every error; return those layers. A :class:`agop.features.FactoredAGOP` passes
    as it is (it is checked where it was made)."""
    if not isinstance(agops, Mapping):
        raise ArgumentTypeError(
            f"{name} must be a dict {{layer name: AGOP (q, q)}}, got {type(agops).__name__}"
        )
    if not agops:
        raise ValueError(f"{name} must hold the AGOP of at least one layer, got an empty dict")
    every = conv_layers(model)
    for layer in agops:
        if layer not in every:
            raise ValueError(
                f"{name}: unknown layer name {layer!r}; the model's Conv2d layers are {list(every)}"
            )
    convs = {layer: every[layer] for layer in agops}
    for layer, A in agops.items():
        q = convs[layer].weight[0].numel()
        where = f"{name}[{layer!r}]"
        if isinstance(A, FactoredAGOP):  # its factors agree with each other, made together
            W = filter_matrix(convs[layer])
            if tuple(A.W.shape) != tuple(W.shape):
                raise ValueError(
                    f"{where} has factors of another layer: W of shape {tuple(A.W.shape)}, "
                    f"this layer's filter matrix is {tuple(W.shape)}"
                )
            continue
        A = check_finite(check_square(as_tensor(A, where), where, q), where)
        # cheap necessary conditions of an AGOP (a sum of outer products), here rather than
        # as a correlation's or a PSD check's error naming their own arguments later
        if not bool(A.any()):
            raise ValueError(f"{where} is zero: no gradient reached this layer")
        if float(A.diagonal().min()) < 0:
            raise ValueError(
                f"{where} must be positive semi-definite (an AGOP); its diagonal has the "
                f"negative entry {float(A.diagonal().min()):.3g}"
            )
    return convs


def _init_layers(init: Any, names: list[str], name: str) -> dict[str, nn.Conv2d]:
    """The Conv2d layers ``names`` of the network at initialisation, an error naming ``name``
    (``init`` or ``init_model``) when it lacks one."""
    every = conv_layers(init)
    missing = [n for n in names if n not in every]
    if missing:
        raise ValueError(
            f"{name} must be the same architecture as model; it has no Conv2d layer "
            f"{missing[0]!r} (its Conv2d layers are {list(every)})"
        )
    return {n: every[n] for n in names}


def _agops(
    model, X, names, sketch, outputs, chunk_size, device, progress, seed, factored: bool = False
):
    r"""``((AGOPs, G's), seconds)``: the patch-AGOPs :math:`W^\top G W` of the named layers (``q x q``,
    or :class:`agop.features.FactoredAGOP` with ``factored``) and their inner matrices ``G``,
    from one :func:`agop.features.patch_agop` call with ``factored=True``."""
    t0 = time.perf_counter()
    fa = patch_agop(
        model,
        X,
        layers=names,
        sketch=sketch,
        outputs=outputs,
        chunk_size=chunk_size,
        device=device,
        progress=progress,
        seed=seed,
        factored=True,
    )
    A = fa if factored else {n: f.dense() for n, f in fa.items()}
    if X.device.type == "cuda":
        torch.cuda.synchronize(X.device)
    return (A, {n: f.G for n, f in fa.items()}), time.perf_counter() - t0


def verify_ansatz(
    model: nn.Module | str,
    X: Any,
    *,
    init: nn.Module | None = None,
    layers: Iterable[str] | None = None,
    sketch: int | None = None,
    outputs: Sequence[int] | None = None,
    null_draws: int = 20,
    seed: int = 0,
    chunk_size: int | None = None,
    allow_download: bool = False,
    name: str | None = None,
    weights: str | None = None,
    keep_agops: bool = False,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> AnsatzTable:
    r"""The CNFA at every conv layer of ``model`` on images ``X``, in one call.

    For each conv layer ``l`` with weight ``W_l`` (``k_out x q``): the CNFM :math:`W_l^\top W_l`, the
    patch-AGOP :math:`\mathrm{AGOP}_l = W_l^\top G_l W_l` (all layers from the same backward passes; exact over
    ``outputs`` in chunks, or unbiased with ``sketch`` Gaussian output probes), their Pearson and
    cosine similarity (also against :math:`\mathrm{AGOP}_l^{1/2}`), the null baselines (``G_l``'s spectrum in
    random eigenbases, ``G`` random PSD, ``G = I``;
    :func:`agop.features.null_baselines`), and, given ``init`` (the same architecture at its
    initialisation), the same similarities there and :math:`\operatorname{corr}(W_0^\top W_0, W_l^\top W_l)`.

    ``model``: a module (batch norm is put in eval mode for the computation), or a torchvision
    name such as ``"vgg11"``, which loads its pretrained weights (:func:`load_model`, with
    ``allow_download``) and, unless ``init`` is given, the architecture at torchvision's
    initialisation drawn with ``seed``. ``X``: ``(n, c, H, W)`` images (see :func:`agop_book.data.load_images`).
    ``null_draws=0`` skips the null baselines. Every similarity is computed in the filter space
    from the factors ``W_l`` and ``G_l`` (:class:`agop.features.FactoredAGOP`, kept in
    ``table.factors`` and ``table.init_factors``); no ``q x q`` matrix is formed unless
    ``keep_agops``, which also keeps the AGOPs themselves (``table.agops``,
    ``table.init_agops``; ``q x q`` each, up to ~300 MB for VGG in float32).

    Examples:
        Any CNN works; here an untrained one, whose measured similarity (``r``) sits within the
        nulls (``r spec``, ``r null``):

        >>> import torch
        >>> from agop_book.nets import SimpleCNN
        >>> net = SimpleCNN(3, 4, image_size=16, depth=2, width=4, seed=0).double().eval()
        >>> X = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0),
        ...                dtype=torch.float64)
        >>> table = verify_ansatz(net, X, null_draws=3)
        >>> print(table)
        layer    weight       r  r sqrt    cos  cos sqrt  r init  r spec     +-  r null     +-  r G=I  r(W0'W0,W'W) ...
        -------  -------  -----  ------  -----  --------  ------  ------  -----  ------  -----  -----  ------------ ...
        convs.0  4x3x3x3  0.838   0.916  0.838     0.916       -   0.872  0.051   0.761  0.129  1.000             - ...
        convs.1  4x4x3x3  0.836   0.919  0.835     0.919       -   0.895  0.021   0.752  0.034  1.000             - ...
        >>> row = table.rows[0]
        >>> row.layer, round(row.pearson, 3), row.null_identity_pearson
        ('convs.0', 0.838, 1.0)
    """
    name = _check_text(name, "name")
    if isinstance(model, str):
        import torchvision  # only for a model named by a string

        if model not in torchvision.models.list_models(module=torchvision.models):
            raise ValueError(
                "model must be an nn.Module or the name of a torchvision classification model "
                f"(such as 'vgg11'), got {model!r}"
            )
        arch = model
        model = load_model(arch, pretrained=True, allow_download=allow_download, device=device)
        if init is None:
            init = load_model(arch, pretrained=False, seed=seed, device=device)
        name = name or arch
        weights = weights or "IMAGENET1K_V1"
    convs = conv_layers(model, layers)
    names = list(convs)
    param = check_not_meta(next(model.parameters()), "model")
    X = check_images(X, "X", dtype=param.dtype, device=param.device)
    sketch = None if sketch is None else check_int(sketch, "sketch", minimum=1)
    null_draws = check_int(null_draws, "null_draws", minimum=0, maximum=_MAX_COUNT)
    n_out = n_outputs(model, X)
    n_out = len(outputs) if outputs is not None else n_out
    init_convs = None
    if init is not None:
        init_convs = _init_layers(init, names, "init")
        for n, conv in convs.items():
            if init_convs[n].weight.shape != conv.weight.shape:
                raise ValueError(
                    f"init must be the same architecture as model; layer {n!r} has "
                    f"weight {tuple(init_convs[n].weight.shape)} in init and "
                    f"{tuple(conv.weight.shape)} in model"
                )

    (A, G), seconds = _agops(
        model, X, names, sketch, outputs, chunk_size, device, progress, seed, factored=True
    )
    A0 = G0 = seconds0 = None
    if init is not None:
        X0 = X.to(dtype=next(init.parameters()).dtype, device=next(init.parameters()).device)
        (A0, G0), seconds0 = _agops(
            init, X0, names, sketch, outputs, chunk_size, device, progress, seed, factored=True
        )

    rows = []
    for n, conv in convs.items():
        t0 = time.perf_counter()
        nulls = {}
        if null_draws:
            nulls[1.0] = null_baselines(
                conv, n_draws=int(null_draws), seed=seed, space=A[n].space(), G=G[n]
            )
        rows.append(
            _layer_row(
                n,
                conv,
                A[n].similarities(),
                nulls,
                init_conv=None if init_convs is None else init_convs[n],
                init_similarities=None
                if init_convs is None or A0 is None
                else A0[n].similarities(),
                t0=t0,
            )
        )
    return AnsatzTable(
        model=name or type(model).__name__,
        rows=rows,
        n_images=X.shape[0],
        image_size=(X.shape[2], X.shape[3]),
        n_outputs=n_out,
        sketch=sketch,
        weights=weights or "weights as given",
        agop_seconds=seconds,
        init_agop_seconds=seconds0,
        agops={k: f.dense() for k, f in A.items()} if keep_agops else None,
        init_agops={k: f.dense() for k, f in A0.items()} if keep_agops and A0 else None,
        factors=A,
        init_factors=A0,
    )


def _margin(value: float | None, mean: float | None, std: float | None) -> float | None:
    """``(value - mean) / std`` (``inf`` where ``std`` is 0, ``None`` where the null is)."""
    if value is None or mean is None or std is None:
        return None
    return (value - mean) / std if std > 0 else math.inf


def _layer_row(
    name: str,
    conv: nn.Conv2d,
    similarities: tuple[float, float, float, float],
    nulls: dict[float, dict],
    *,
    init_conv: nn.Conv2d | None = None,
    init_similarities: tuple[float, float, float, float] | None = None,
    t0: float | None = None,
) -> LayerResult:
    """One :class:`LayerResult` from the layer's (pearson, cosine, pearson_sqrt, cosine_sqrt)
    after training and at initialisation, and its :func:`agop.features.null_baselines` by
    power (``{1.0: ..., 0.5: ...}``)."""
    row = LayerResult(name, tuple(conv.weight.shape), *similarities)
    for power, null in nulls.items():
        s = "" if power == 1 else "_sqrt"
        for kind in ("pearson", "cosine"):
            values = null[kind]
            setattr(row, f"null_random_{kind}{s}", values["random_mean"])
            setattr(row, f"null_random_{kind}{s}_std", values["random_std"])
            setattr(row, f"null_identity_{kind}{s}", values["identity"])
            setattr(row, f"null_spectrum_{kind}{s}", values.get("spectrum_mean"))
            setattr(row, f"null_spectrum_{kind}{s}_std", values.get("spectrum_std"))
    if init_similarities is not None:
        (row.init_pearson, row.init_cosine, row.init_pearson_sqrt, row.init_cosine_sqrt) = (
            init_similarities
        )
    if init_conv is not None:
        row.cnfm_init_vs_trained = cnfm_similarity(init_conv, conv, "pearson")
        row.cnfm_init_vs_trained_cosine = cnfm_similarity(init_conv, conv, "cosine")
    if t0 is not None:
        row.seconds = time.perf_counter() - t0
    return row


def ansatz_table(
    model: nn.Module,
    agops: dict[str, torch.Tensor],
    init_model: nn.Module | None = None,
    init_agops: dict[str, torch.Tensor] | None = None,
    powers: Sequence[float] = (1.0, 0.5),
    n_draws: int = 20,
    seed: int = 0,
    *,
    G: dict[str, torch.Tensor] | None = None,
    name: str | None = None,
) -> AnsatzTable:
    r"""The ansatz report of :func:`verify_ansatz` from AGOPs already computed: the
    :class:`AnsatzTable` of the layers in ``agops`` (``q x q`` each, of ``model``), with the
    null baselines at each power in ``powers`` (1 and 1/2).

    Per layer: the similarities of :math:`W^	op W` with :math:`\mathrm{AGOP}` and
    :math:`\mathrm{AGOP}^{1/2}`; the same at initialisation (``init_model`` and its
    ``init_agops``), if given; the paper's control, the initial against the trained CNFM
    (``init_model``); and :func:`agop.features.null_baselines` at each power (``n_draws``
    draws, ``seed``), with the spectrum-matched null when ``G`` (the layers' inner matrices,
    :func:`agop.features.patch_agop` with ``factored=True``: each ``.G``) is given.
    :meth:`AnsatzTable.records` lists them by (layer, power, kind).

    Examples:
        An untrained network: its measured similarity sits inside the nulls (margins near 0).

        >>> import torch
        >>> from agop.features import patch_agop
        >>> from agop_book.nets import SimpleCNN
        >>> net = SimpleCNN(2, 3, image_size=8, depth=2, width=4, seed=0).double().eval()
        >>> X = torch.rand(5, 2, 8, 8, generator=torch.Generator().manual_seed(0),
        ...                dtype=torch.float64)
        >>> agops = patch_agop(net, X, device="cpu")
        >>> G = {k: v.G for k, v in patch_agop(net, X, factored=True, device="cpu").items()}
        >>> rows = ansatz_table(net, agops, n_draws=3, G=G).records()
        >>> len(rows)  # 2 layers x 2 powers x 2 kinds
        8
        >>> row = rows[0]
        >>> row["layer"], row["power"], row["kind"], round(row["trained"], 3)
        ('convs.0', 1.0, 'pearson', 0.758)
        >>> abs(row["spectrum_margin"]) < 2, abs(row["margin"]) < 2
        (True, True)
    """
    n_draws = check_int(n_draws, "n_draws", minimum=0, maximum=_MAX_COUNT)
    name = _check_text(name, "name")
    powers = tuple(float(a) for a in powers)
    if not powers or any(a not in (1.0, 0.5) for a in powers):
        raise ValueError(
            f"powers must hold 1.0 and/or 0.5 (the AGOP and its square root), got {powers!r}"
        )
    convs = _check_agops(model, agops)
    init_convs = None if init_model is None else _init_layers(init_model, list(agops), "init_model")
    if init_agops is not None:
        if init_model is None:
            raise ValueError("init_agops needs init_model, the network they were measured on")
        _check_agops(init_model, init_agops, "init_agops")
        missing = [layer for layer in agops if layer not in init_agops]
        if missing:
            raise ValueError(f"init_agops must hold every layer of agops; it lacks {missing}")
    if G is not None and set(G) != set(agops):
        raise ValueError(
            f"G must hold the inner matrix of every layer in agops ({list(agops)}), got {list(G)}"
        )

    def similarities(conv, A):
        W, A = cnfm(conv), torch.as_tensor(A)
        A1, S = psd_power(A, 1.0), psd_power(A, 0.5)
        return (
            correlation(W, A1),
            correlation(W, A1, kind="cosine"),
            correlation(W, S),
            correlation(W, S, kind="cosine"),
        )

    rows = []
    for n, A in agops.items():
        t0 = time.perf_counter()
        nulls = {
            a: null_baselines(
                convs[n], n_draws=n_draws, seed=seed, power=a, G=None if G is None else G[n]
            )
            for a in powers
        }
        init_conv = None if init_convs is None else init_convs[n]
        init = (
            None
            if init_conv is None or init_agops is None
            else similarities(init_conv, init_agops[n])
        )
        rows.append(
            _layer_row(
                n,
                convs[n],
                similarities(convs[n], A),
                nulls,
                init_conv=init_conv,
                init_similarities=init,
                t0=t0,
            )
        )
    return AnsatzTable(model=name or type(model).__name__, rows=rows, powers=powers)


@dataclasses.dataclass
class SeedGaps:
    r"""Per training seed and layer, the measured similarity of :math:`W^\top W` with
    :math:`\mathrm{AGOP}^p` (``trained``) and the spectrum-matched null's mean (``null``),
    both ``(n_seeds, n_layers)``; ``differences`` is ``trained - null``, the paired
    difference of each seed, ``mean`` and ``sd`` its mean and sample standard deviation
    (``ddof=1``) over seeds, per layer.

    See :func:`seed_gaps` for an example.
    """

    seeds: list[int]
    layers: list[str]
    trained: np.ndarray
    null: np.ndarray
    power: float = 1.0
    kind: str = "pearson"

    @property
    def differences(self) -> np.ndarray:
        """``trained - null``, ``(n_seeds, n_layers)``."""
        return self.trained - self.null

    @property
    def mean(self) -> np.ndarray:
        """The mean paired difference per layer."""
        return self.differences.mean(axis=0)

    @property
    def sd(self) -> np.ndarray:
        """The sample standard deviation (``ddof=1``) of the paired differences per layer."""
        return self.differences.std(axis=0, ddof=1)

    def format_table(self) -> str:
        """A fixed-width table: one row per layer, the difference of each seed, then the
        mean and the sample SD. ``print(gaps)`` prints it."""
        head = ["layer", *(f"seed {s}" for s in self.seeds), "mean", "sd"]
        body = [
            [n, *(f"{v:+.3f}" for v in self.differences[:, j]), f"{self.mean[j]:+.3f}"]
            + [f"{self.sd[j]:.3f}"]
            for j, n in enumerate(self.layers)
        ]
        widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
        return "\n".join(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
            for r in [head, *body]
        )

    def __str__(self) -> str:
        return self.format_table()


def seed_gaps(
    run: Any, seeds: Sequence[int], *, power: float = 1.0, kind: str = "pearson"
) -> SeedGaps:
    r"""The ansatz over training seeds: ``run(seed)`` for each seed in ``seeds`` returns the
    :class:`AnsatzTable` of a network trained with that seed (:func:`ansatz_table` with ``G``, or
    :func:`verify_ansatz`, so that it holds the spectrum-matched null); per layer, the
    :class:`SeedGaps` of the measured ``kind`` similarity with :math:`\mathrm{AGOP}^p`
    (``power`` 1 or 1/2) minus the null's mean, paired by seed.

    Examples:
        Planted tables: layer ``a`` clears its null by 0.1, 0.2 and 0.3, layer ``b`` by none.

        >>> planted = {s: AnsatzTable("net", [
        ...     LayerResult("a", (2, 1, 3, 3), 0.5 + 0.1 * s, 0.0, 0.0, 0.0,
        ...                 null_spectrum_pearson=0.5, null_spectrum_pearson_std=0.01),
        ...     LayerResult("b", (2, 2, 3, 3), 0.7, 0.0, 0.0, 0.0,
        ...                 null_spectrum_pearson=0.7, null_spectrum_pearson_std=0.01)])
        ...     for s in (1, 2, 3)}
        >>> gaps = seed_gaps(planted.__getitem__, [1, 2, 3])
        >>> gaps.mean.round(3).tolist(), gaps.sd.round(3).tolist()
        ([0.2, 0.0], [0.1, 0.0])
        >>> print(gaps)
        layer  seed 1  seed 2  seed 3    mean     sd
        a      +0.100  +0.200  +0.300  +0.200  0.100
        b      +0.000  +0.000  +0.000  +0.000  0.000
    """
    if not callable(run):
        raise TypeError(f"run must be a function seed -> AnsatzTable, got {type(run).__name__}")
    seeds = check_seeds(seeds, at_least=2)
    if power not in (1.0, 0.5):
        raise ValueError(f"power must be 1.0 or 0.5, got {power!r}")
    if kind not in ("pearson", "cosine"):
        raise ValueError(f"kind must be 'pearson' or 'cosine', got {kind!r}")
    s = "" if power == 1 else "_sqrt"
    trained, null, layers = [], [], None
    for seed in seeds:
        table = run(seed)
        if not isinstance(table, AnsatzTable):
            raise TypeError(f"run({seed}) must return an AnsatzTable, got {type(table).__name__}")
        names = [r.layer for r in table]
        if layers is None:
            layers, model = names, table.model
        elif table.model != model:
            raise ValueError(
                f"run({seed}) is a table of model {table.model!r}, the first seed's was {model!r}"
            )
        elif names != layers:
            raise ValueError(f"run({seed}) has layers {names}, the first seed's were {layers}")
        means = table.column(f"null_spectrum_{kind}{s}")
        if any(m is None for m in means):
            raise ValueError(
                f"run({seed})'s table has no spectrum-matched null at power {power} "
                "(pass G to ansatz_table, and that power in its powers)"
            )
        measured = table.column(f"{kind}{s}")
        if not (
            np.isfinite(np.asarray(measured, float)).all()
            and np.isfinite(np.asarray(means, float)).all()
        ):
            raise ValueError(
                f"run({seed})'s table holds a non-finite similarity or null mean: "
                f"{measured} and {means}"
            )
        trained.append(measured)
        null.append(means)
    return SeedGaps(
        seeds, layers or [], np.asarray(trained, float), np.asarray(null, float), power, kind
    )


def plot_cnfm_agop(
    cnfm: Tensor,
    agop: Tensor,
    power: float = 1.0,
    title: str | None = None,
    fig: Figure | None = None,
) -> Figure:
    r"""A CNFM :math:`W^\top W` beside :math:`\mathrm{AGOP}^p` (:math:`p` = ``power``), each scaled to unit largest
    entry, with their Pearson correlation and cosine similarity in the title. Returns the figure.

    Examples:
        >>> import matplotlib.pyplot as plt
        >>> import torch
        >>> from agop.linalg import correlation
        >>> W = torch.randn(4, 9, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        >>> G = torch.diag(torch.tensor([4.0, 3.0, 2.0, 1.0], dtype=torch.float64))
        >>> fig = plot_cnfm_agop(W.T @ W, W.T @ G @ W)
        >>> fig._suptitle.get_text(), round(correlation(W.T @ W, W.T @ G @ W), 3)
        ('pearson 0.942, cosine 0.943', 0.942)
        >>> plt.close(fig)
    """

    cnfm, agop = _check_pair(cnfm, agop, "cnfm", "agop")
    power = check_real(power, "power", minimum=0)
    title = _check_text(title, "title")
    _check_figure(fig)
    if fig is None:
        fig = plt.figure(figsize=(6.4, 3.4))
    fig.clear()
    _draw_cnfm_agop(fig, cnfm, agop, power, title)
    fig.tight_layout()
    return fig


def _check_pair(cnfm: Any, agop: Any, cnfm_name: str, agop_name: str) -> tuple[Tensor, Tensor]:
    """``cnfm`` and ``agop`` as finite, non-empty square float64 matrices of the same side."""
    C = check_square(as_tensor(cnfm, cnfm_name, dtype=torch.float64), cnfm_name)
    A = check_square(as_tensor(agop, agop_name, dtype=torch.float64), agop_name, C.shape[0])
    for M, label in ((C, cnfm_name), (A, agop_name)):
        if bool((M == M.reshape(-1)[0]).all()):  # a zero layer, or a 1 x 1 matrix
            raise ValueError(
                f"{label} is constant (every entry {float(M.reshape(-1)[0]):g}): its pearson "
                "correlation with the other matrix is undefined"
            )
    return C, A


def _check_pairs(pairs: Any, name: str) -> dict[Any, tuple[Tensor, Tensor]]:
    """``pairs`` (``{label: (cnfm, agop)}``, non-empty) with each pair checked."""
    _check_mapping(pairs, name, "{label: (cnfm, agop)}")
    out = {}
    for label, pair in pairs.items():
        where = f"{name}[{label!r}]"
        if isinstance(pair, (str, bytes, torch.Tensor, np.ndarray)) or not isinstance(
            pair, Sequence
        ):
            raise ArgumentTypeError(
                f"{where} must be a pair (cnfm, agop), got {type(pair).__name__}"
            )
        if len(pair) != 2:
            raise ValueError(f"{where} must be a pair (cnfm, agop), got {len(pair)} items")
        out[label] = _check_pair(pair[0], pair[1], f"{where}[0]", f"{where}[1]")
    return out


def _draw_cnfm_agop(fig: Any, cnfm: Tensor, agop: Tensor, power: float, title: str | None) -> None:
    """Draw :func:`plot_cnfm_agop`'s two panels and title on ``fig`` (a figure or subfigure)."""
    A = psd_power(agop.detach().double().cpu(), power)
    C = cnfm.detach().double().cpu()
    axes = fig.subplots(1, 2)
    exponent = "" if power == 1 else f"$^{{{power:g}}}$"
    for ax, (label, M) in zip(axes, [("CNFM $W^\\top W$", C), (f"AGOP{exponent}", A)], strict=True):
        M = M / M.abs().max().clamp_min(1e-300)
        ax.imshow(M.numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
        ax.set_title(label, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    head = f"{title}: " if title else ""
    fig.suptitle(
        f"{head}pearson {correlation(C, A):.3f}, cosine {correlation(C, A, 'cosine'):.3f}",
        fontsize=10,
    )


def plot_cnfm_agop_rows(pairs: Mapping[str, tuple[Tensor, Tensor]], height: float = 2.8) -> Figure:
    r"""One figure with a row per entry of ``pairs`` (``{title: (cnfm, agop)}``), each row
    drawn as :func:`plot_cnfm_agop` draws one pair: a figure a chapter can number once, where a
    loop of :func:`plot_cnfm_agop` would leave one unnumbered figure per layer or checkpoint.

    Examples:
        >>> import matplotlib.pyplot as plt
        >>> import torch
        >>> W = torch.randn(4, 9, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        >>> G = torch.diag(torch.tensor([4.0, 3.0, 2.0, 1.0], dtype=torch.float64))
        >>> fig = plot_cnfm_agop_rows({"a": (W.T @ W, W.T @ G @ W), "b": (W.T @ W, W.T @ W)})
        >>> [sub._suptitle.get_text() for sub in fig.subfigs]
        ['a: pearson 0.942, cosine 0.943', 'b: pearson 1.000, cosine 1.000']
        >>> plt.close(fig)
    """
    pairs = _check_pairs(pairs, "pairs")
    height = check_real(
        height, "height", minimum=0, strict_minimum=True, maximum=_MAX_INCHES / len(pairs)
    )
    fig = plt.figure(figsize=(6.4, height * len(pairs)), layout="constrained")
    subfigs = fig.subfigures(len(pairs), 1, squeeze=False)[:, 0]
    for sub, (title, (C, A)) in zip(subfigs, pairs.items(), strict=True):
        _draw_cnfm_agop(sub, C, A, 1.0, title)
    return fig


def plot_ansatz_controls(
    table: Any, kind: str = "pearson", fig: Figure | None = None, labels: str = "names"
) -> Figure:
    r"""Bars per layer: the correlation of :math:`W^\top W` with :math:`\mathrm{AGOP}^p` after training, at
    initialisation, with the trained ``G``'s spectrum in random eigenbases (the primary null;
    mean, one standard deviation as an error bar), with a random Wishart ``G`` (same) and with
    ``G = I``; and, hatched, the paper's control :math:`\operatorname{corr}(W_0^\top W_0, W^\top W)` of the initial and
    trained filters. One panel per ``power`` :math:`p`; bars whose values are all missing are left out.
    ``table``: an :class:`agop_book.ch01_ansatz.AnsatzTable` (:func:`~agop_book.ch01_ansatz.verify_ansatz`,
    :func:`~agop_book.ch01_ansatz.ansatz_table`), drawn from its
    :meth:`~agop_book.ch01_ansatz.AnsatzTable.records` (``labels="index"`` numbers the layers,
    for deep models). Returns the figure.

    Examples:
        >>> import matplotlib.pyplot as plt
        >>> import torch
        >>> from agop_book.ch01_ansatz import ansatz_table
        >>> from agop.features import patch_agop
        >>> from agop_book.nets import SimpleCNN
        >>> net = SimpleCNN(2, 3, image_size=8, depth=2, width=4, seed=0).double().eval()
        >>> X = torch.rand(5, 2, 8, 8, generator=torch.Generator().manual_seed(0),
        ...                dtype=torch.float64)
        >>> table = ansatz_table(net, patch_agop(net, X, device="cpu"), n_draws=3)
        >>> fig = plot_ansatz_controls(table)
        >>> len(fig.axes)  # one panel per power: 1 and 1/2
        2
        >>> plt.close(fig)
    """

    if not isinstance(table, AnsatzTable):
        raise ArgumentTypeError(
            f"table must be an AnsatzTable (ansatz_table, verify_ansatz), got {type(table).__name__}"
        )
    if not table.rows:
        raise ValueError("table must hold at least one layer, got an empty AnsatzTable")
    kind = check_choice(kind, "kind", ("pearson", "cosine"))
    labels = check_choice(labels, "labels", ("names", "index"))
    _check_figure(fig, subfigure=True)
    rows = [r for r in table.records(labels) if r["kind"] == kind]
    powers = list(dict.fromkeys(r["power"] for r in rows))
    layers = list(dict.fromkeys(r["layer"] for r in rows))
    if fig is None:
        fig = plt.figure(figsize=(4.6 * len(powers), 3.4))
    fig.clear()
    axes = fig.subplots(1, len(powers), squeeze=False)[0]
    bars = [
        ("trained", "trained", "C0", None),
        ("init", "at initialisation", "C7", None),
        ("spectrum_mean", "spectrum-matched null", "C1", "spectrum_std"),
        ("null_mean", "Wishart-$G$ null", "C3", "null_std"),
        ("identity", "$G=I$ null", "C2", None),
        ("cnfm_init", "corr($W_0^\\top W_0$, $W^\\top W$)", "C9", None),
    ]
    bars = [b for b in bars if any(r.get(b[0]) is not None for r in rows)]
    width = 0.8 / len(bars)
    for ax, power in zip(axes, powers, strict=True):
        sub = {r["layer"]: r for r in rows if r["power"] == power}
        x = np.arange(len(layers))
        lows = []
        for b, (key, label, color, std) in enumerate(bars):
            values = np.array(
                [np.nan if sub[l].get(key) is None else sub[l][key] for l in layers], dtype=float
            )
            err = None if std is None else [sub[l][std] or 0.0 for l in layers]
            ax.bar(
                x + (b - (len(bars) - 1) / 2) * width,
                values,
                width,
                yerr=err,
                capsize=2,
                color=color,
                label=label,
                hatch="//" if key == "cnfm_init" else None,
            )
            lows.append(np.nanmin(values - (np.array(err) if err is not None else 0)))
        ax.set_xticks(x, layers, fontsize=8)
        ax.set_ylim(max(-1.0, min(lows) - 0.05), 1.02)  # zoomed: read the bars against each other
        ax.set_ylabel(f"{kind} correlation")
        ax.set_title(
            "$W^\\top W$ vs AGOP" + ("" if power == 1 else f"$^{{{power:g}}}$"), fontsize=10
        )
        ax.grid(axis="y", alpha=0.3)
    axes[-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    if hasattr(fig, "tight_layout"):  # a subfigure is laid out by its parent figure
        fig.tight_layout()
    return fig


def plot_alpha_curves(
    powers: Sequence[float],
    curves: dict[str, Sequence[float]],
    nulls: dict[str, Sequence[float]] | None = None,
    ax: Axes | None = None,
    kind: str = "pearson",
) -> Axes:
    r"""Correlation of :math:`W^\top W` with :math:`\mathrm{AGOP}^p` against the power :math:`p`
    (``powers``; the paper's :math:`\alpha`), one line per layer
    (``curves``: ``{layer: [value per power]}``), and dashed the random-``G`` null of each layer
    (``nulls``: same layout) when given. Returns the axes.

    Examples:
        >>> import matplotlib.pyplot as plt
        >>> ax = plot_alpha_curves([0.5, 1.0], {"convs.0": [0.9, 0.8]},
        ...                        nulls={"convs.0": [0.7, 0.6]})
        >>> [[float(v) for v in line.get_ydata()] for line in ax.get_lines()]  # the layer, its null
        [[0.9, 0.8], [0.7, 0.6]]
        >>> plt.close(ax.figure)
    """

    powers = check_reals(powers, "powers")
    n = len(powers)
    _check_mapping(curves, "curves", "{layer: [value per power]}")
    curves = {k: _check_series(v, f"curves[{k!r}]", n) for k, v in curves.items()}
    if nulls is not None:
        _check_mapping(nulls, "nulls", "{layer: [value per power]}")
        _check_subset(nulls, list(curves), "nulls", "the layers of curves")
        nulls = {k: _check_series(v, f"nulls[{k!r}]", n) for k, v in nulls.items()}
    _check_axes(ax)
    kind = check_choice(kind, "kind", ("pearson", "cosine"))
    if ax is None:
        _, ax = plt.subplots(figsize=(4.4, 3.2))
    for i, (layer, values) in enumerate(curves.items()):
        ax.plot(powers, values, marker="o", ms=3, color=f"C{i}", label=layer)
        if nulls is not None and layer in nulls:
            ax.plot(powers, nulls[layer], ls="--", color=f"C{i}", alpha=0.7)
    ax.set_xlabel("power $p$ of the AGOP")
    ax.set_ylabel(f"{kind} correlation")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, title="solid: trained, dashed: null" if nulls else None, title_fontsize=7)
    return ax


def _check_series(values: Any, name: str, length: int) -> list[float]:
    """``values`` as ``length`` finite numbers (one per power)."""
    values = check_reals(values, name)
    if len(values) != length:
        raise ValueError(f"{name} must hold one value per power ({length}), got {len(values)}")
    return values


def ansatz_explorer(
    matrices: dict[str, dict[str, tuple[torch.Tensor, torch.Tensor]]],
    powers: Sequence[float] = (1.0, 0.75, 0.5, 0.25),
) -> Any:
    r"""The ansatz through training: choose a training checkpoint, a layer and a ``power``
    :math:`p` -> :math:`W^\top W` beside :math:`\mathrm{AGOP}^p` and their correlation, drawn by
    :func:`plot_cnfm_agop` (the chapter's static twin). ``matrices``:
    ``{checkpoint label: {layer: (cnfm, agop)}}``. Opens on the last checkpoint, the last
    layer and ``power = powers[0]``. Returns the widget.

    Examples:
        >>> import contextlib, io
        >>> import torch
        >>> W = torch.randn(4, 9, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        >>> G = torch.diag(torch.tensor([4.0, 3.0, 2.0, 1.0], dtype=torch.float64))
        >>> matrices = {"init": {"convs.0": (W.T @ W, W.T @ W)},
        ...             "trained": {"convs.0": (W.T @ W, W.T @ G @ W)}}
        >>> with contextlib.redirect_stdout(io.StringIO()):
        ...     explorer = ansatz_explorer(matrices)
        >>> [(w.description, w.value) for w in explorer.children[0].children]
        [('checkpoint', 'trained'), ('layer', 'convs.0'), ('power', 1.0)]
    """
    import ipywidgets as w

    _check_mapping(matrices, "matrices", "{checkpoint: {layer: (cnfm, agop)}}")
    matrices = {c: _check_pairs(m, f"matrices[{c!r}]") for c, m in matrices.items()}
    checkpoints = list(matrices)
    layers = list(matrices[checkpoints[0]])
    for c, m in matrices.items():
        if list(m) != layers:
            raise ValueError(
                f"matrices[{c!r}] has layers {list(m)}, matrices[{checkpoints[0]!r}] has {layers}: "
                "every checkpoint must hold the same layers"
            )
    powers = check_reals(powers, "powers", minimum=0)
    controls = {
        "checkpoint": w.SelectionSlider(
            options=checkpoints, value=checkpoints[-1], description="checkpoint"
        ),
        "layer": w.Dropdown(options=layers, value=layers[-1], description="layer"),
        "power": w.SelectionSlider(
            options=list(powers), value=powers[0], description="power", continuous_update=False
        ),
    }
    out = w.Output()
    fig = plt.figure(figsize=(6.4, 3.4))
    plt.close(fig)

    def draw(checkpoint: str, layer: str, power: float) -> None:
        with out:
            out.clear_output(wait=True)
            C, A = matrices[checkpoint][layer]
            plot_cnfm_agop(C, A, power=power, title=f"{layer}, {checkpoint}", fig=fig)
            from IPython.display import display

            display(fig)

    w.interactive_output(draw, controls)
    return w.VBox([w.HBox(list(controls.values())), out])
