r"""The ansatz in torchvision CNNs: models, weights and images, then one call for every conv layer.

:func:`verify_ansatz` takes a CNN (any ``torch.nn.Module`` with ``Conv2d`` layers: AlexNet, VGG,
ResNet, MobileNet, DenseNet, or your own) and a batch of images, and returns an
:class:`AnsatzTable`: for every conv layer ``l``, the similarity of its CNFM :math:`W_l^\top W_l` with its
patch-AGOP (and with :math:`\mathrm{AGOP}^{1/2}`), the same at initialisation, the random-PSD and identity null
baselines, and the similarity of the initial and the trained CNFM. All layers' AGOPs come from the
same backward passes (:func:`agop.features.patch_agop`).

Pretrained weights come through torchvision's own weight enums. Nothing is downloaded unless
``allow_download=True``: a missing checkpoint raises :class:`WeightsUnavailable`, which names the
file it looked for and how to get it.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from agop.linalg import correlation
from agop.runtime import default_device, offline
from agop.validation import check_images, check_int

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")

#: The ImageNet classifiers of the paper's Figure 1 (torchvision names).
ARCHITECTURES = (
    "alexnet",
    "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
)

#: scikit-image's bundled photographs used when no folder is given (no download needed).
PHOTOGRAPHS = ("astronaut", "chelsea", "coffee", "rocket", "camera", "coins")


class WeightsUnavailable(RuntimeError):
    """Pretrained weights were asked for but are neither in the torch hub cache nor downloadable.

    See :func:`load_model` for an example.
    """


# --------------------------------------------------------------------------------------------
# Models and weights
# --------------------------------------------------------------------------------------------

def weights_enum(name: str, weights: str = "IMAGENET1K_V1") -> Any:
    """torchvision's weight enum member ``weights`` for architecture ``name``.

    ``IMAGENET1K_V1`` is what ``pretrained=True`` meant when the paper was written.

    Examples:
        >>> weights_enum("vgg11")
        VGG11_Weights.IMAGENET1K_V1
        >>> weights_enum("resnet18", "IMAGENET1K_V1").url
        'https://download.pytorch.org/models/resnet18-f37072fd.pth'
    """
    import torchvision

    try:
        enum = torchvision.models.get_model_weights(name)
    except ValueError as err:
        raise ValueError(f"name must be a torchvision classification model, got {name!r}") from err
    try:
        return enum[weights]
    except KeyError as err:
        raise ValueError(f"weights must be one of {[w.name for w in enum]} for {name!r}, "
                         f"got {weights!r}") from err


def weights_file(name: str, weights: str = "IMAGENET1K_V1") -> Path:
    """Where torchvision keeps the checkpoint: ``torch.hub.get_dir()/checkpoints/<file of the url>``.

    Examples:
        >>> weights_file("resnet18").name
        'resnet18-f37072fd.pth'
    """
    url = weights_enum(name, weights).url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def weights_available(name: str, weights: str = "IMAGENET1K_V1") -> bool:
    """True when the checkpoint for ``name`` is already in the local torch hub cache.

    Examples:
        >>> import tempfile
        >>> import torch
        >>> saved = torch.hub.get_dir()
        >>> empty = tempfile.TemporaryDirectory()
        >>> torch.hub.set_dir(empty.name)  # a torch hub cache without any checkpoint
        >>> weights_available("resnet18")
        False
        >>> torch.hub.set_dir(saved)
        >>> empty.cleanup()
    """
    return weights_file(name, weights).is_file()


def load_model(name: str, *, pretrained: bool = True, weights: str = "IMAGENET1K_V1",
               allow_download: bool = False, seed: int | None = 0,
               device: str | torch.device | None = None,
               dtype: torch.dtype | None = None) -> nn.Module:
    """The torchvision model ``name`` in eval mode, pretrained or at torchvision's initialisation.

    ``pretrained=True`` loads ``weights`` (a weight enum member name) from the torch hub cache;
    when the file is not there it is downloaded only if ``allow_download`` and not
    :func:`agop.runtime.offline` (``AGOP_OFFLINE=1``), otherwise :class:`WeightsUnavailable` is
    raised *before* any network access. ``pretrained=False`` builds
    the architecture with torchvision's own initialisation, drawn with ``seed`` (the global
    random state is left as it was).

    Examples:
        Without the checkpoint, and without ``allow_download``, nothing touches the network:

        >>> import tempfile
        >>> import torch
        >>> saved = torch.hub.get_dir()
        >>> empty = tempfile.TemporaryDirectory()
        >>> torch.hub.set_dir(empty.name)  # a torch hub cache without any checkpoint
        >>> load_model("resnet18")
        Traceback (most recent call last):
        ...
        agop.pretrained.WeightsUnavailable: pretrained weights for 'resnet18' ... allow_download=False...
        >>> torch.hub.set_dir(saved)
        >>> empty.cleanup()

        The architecture at torchvision's initialisation needs no file:

        >>> model = load_model("squeezenet1_1", pretrained=False, device="cpu")
        >>> model.training, len(conv_layers(model))
        (False, 26)
    """
    import torchvision

    device = default_device(device)
    if pretrained:
        enum = weights_enum(name, weights)
        path = weights_file(name, weights)
        if not path.is_file() and (not allow_download or offline()):
            why = "AGOP_OFFLINE is set" if allow_download else "allow_download=False"
            raise WeightsUnavailable(
                f"pretrained weights for {name!r} ({type(enum).__name__}.{enum.name}) are not in "
                f"the torch hub cache: {path} does not exist, and {why}. "
                f"Either run with network access and allow_download=True (as in Colab or the "
                f"paper profile), or download {enum.url} into {path.parent} (set TORCH_HOME to "
                f"use another cache folder).")
        model = torchvision.models.get_model(name, weights=enum)
    else:
        try:
            with torch.random.fork_rng(devices=[]):
                if seed is not None:
                    torch.manual_seed(int(seed))
                model = torchvision.models.get_model(name, weights=None)
        except ValueError as err:
            raise ValueError(f"name must be a torchvision model, got {name!r}") from err
    model = model.to(device=device, dtype=dtype) if dtype is not None else model.to(device)
    return model.eval()


def conv_layers(model: nn.Module, layers: Iterable[str] | None = None) -> dict[str, nn.Conv2d]:
    """The ``Conv2d`` layers of ``model`` by qualified name, in order (all, or those in ``layers``).

    Examples:
        >>> from agop.nets import SimpleCNN
        >>> net = SimpleCNN(3, 4, image_size=16, depth=3, width=4)
        >>> list(conv_layers(net)), list(conv_layers(net, ["convs.2"]))
        (['convs.0', 'convs.1', 'convs.2'], ['convs.2'])
    """
    from agop.features import select_layers

    return select_layers(model, layers)


def n_outputs(model: nn.Module, X: torch.Tensor) -> int:
    """The number of outputs of ``model`` (run in eval mode on one image of ``X``).

    Images of a size the architecture cannot take raise ``ValueError``.

    Examples:
        >>> import torch
        >>> from agop.nets import SimpleCNN
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
            f"load_images(size=224)") from err
    finally:
        model.train(was_training)
    return int(out.reshape(1, -1).shape[1])


# --------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------

def _as_uint8_rgb(image: Any) -> torch.Tensor:
    """One image (path, PIL image, or array ``(H, W)``, ``(H, W, 3|4)``) as a ``(3, H, W)`` float in [0, 1]."""
    if isinstance(image, (str, Path)):
        from PIL import Image

        with Image.open(image) as im:
            image = np.asarray(im.convert("RGB"))
    elif type(image).__module__.startswith("PIL"):
        image = np.asarray(image.convert("RGB"))
    a = np.asarray(image)
    if a.dtype == bool:
        a = a.astype(np.float32)
    elif np.issubdtype(a.dtype, np.integer):
        a = a.astype(np.float32) / 255.0
    a = a.astype(np.float32)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise ValueError(f"an image must have shape (H, W), (H, W, 3) or (H, W, 4), got {a.shape}")
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    a = a[:, :, :3]
    if not np.isfinite(a).all():
        raise ValueError("an image contains non-finite values")
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)


def preprocess(images: Any, size: int = 224, resize: int | None = None,
               mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
    r"""torchvision's ImageNet preprocessing: resize the shorter side to ``resize`` (default
    ``round(size * 256 / 224)``), crop the central ``size x size``, scale to [0, 1] and
    normalise each channel, ``(x - mean) / std``. Returns ``(n, 3, size, size)``.

    ``images``: one image or a list of them (file paths, PIL images, ``(H, W)`` or ``(H, W, 3)``
    arrays, uint8 in 0..255 or floats in [0, 1]).

    Examples:
        A black image becomes :math:`-\mu / \sigma` in every channel:

        >>> import numpy as np
        >>> x = preprocess(np.zeros((100, 150, 3), dtype=np.uint8), size=32)
        >>> tuple(x.shape), [round(v, 4) for v in x[0, :, 0, 0].tolist()]
        ((1, 3, 32, 32), [-2.1179, -2.0357, -1.8044])
    """
    from torchvision.transforms.v2 import functional as TF

    if not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    resize = round(size * 256 / 224) if resize is None else resize
    if resize < size:
        raise ValueError(f"resize ({resize}) must be at least size ({size})")
    if isinstance(images, (str, Path, np.ndarray)) or type(images).__module__.startswith("PIL"):
        images = [images]
    out = []
    for image in images:
        x = _as_uint8_rgb(image)
        x = TF.resize(x, [resize], antialias=True)
        x = TF.center_crop(x, [size, size])
        out.append(x)
    if not out:
        raise ValueError("images is empty")
    X = torch.stack(out).clamp(0, 1)
    X = (X - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    return X.to(dtype)


def image_files(folder: str | Path) -> list[Path]:
    """The image files directly in ``folder``, sorted by name.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     for name in ("b.png", "a.jpg", "notes.txt"):
        ...         _ = (Path(folder) / name).write_bytes(b"")
        ...     print([f.name for f in image_files(folder)])
        ['a.jpg', 'b.png']
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"folder must be an existing directory, got {str(folder)!r}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"folder {str(folder)!r} holds no image file ({', '.join(IMAGE_SUFFIXES)})")
    return files


def photograph_arrays(names: Sequence[str] = PHOTOGRAPHS) -> dict[str, np.ndarray]:
    """scikit-image's bundled photographs (no download), by name.

    Examples:
        >>> {name: a.shape for name, a in photograph_arrays(["camera", "coffee"]).items()}
        {'camera': (512, 512), 'coffee': (400, 600, 3)}
    """
    import skimage.data

    out = {}
    for name in names:
        loader = getattr(skimage.data, name, None)
        if loader is None:
            raise ValueError(f"{name!r} is not a scikit-image photograph; try one of {PHOTOGRAPHS}")
        out[name] = loader()
    return out


def load_images(source: str | Path | Sequence[Any] | None = None, n: int | None = None,
                size: int = 224, resize: int | None = None,
                dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Images for the ansatz, preprocessed as for ImageNet: ``(n, 3, size, size)``.

    ``source``: a folder of image files, a list of files/arrays, or ``None`` for scikit-image's
    bundled photographs (:data:`PHOTOGRAPHS`, offline). ``n`` keeps the first ``n``.

    Examples:
        >>> load_images(n=1, size=32).shape  # the astronaut, cropped to a square
        torch.Size([1, 3, 32, 32])
    """
    if source is None:
        images: list[Any] = list(photograph_arrays().values())
    elif isinstance(source, (str, Path)):
        images = image_files(source)
    else:
        images = list(source)
    if n is not None:
        if n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        if n > len(images):
            raise ValueError(f"n={n} images asked for, but the source holds {len(images)}")
        images = images[:n]
    return preprocess(images, size=size, resize=resize, dtype=dtype)


# --------------------------------------------------------------------------------------------
# Feature operators
# --------------------------------------------------------------------------------------------

def layer_inputs(model: nn.Module, X: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
    """The input of each named layer when ``model`` runs on ``X`` (forward hooks, no gradients).

    The forward pass stops once every input is captured, so layers in a fully convolutional
    prefix can be read on images of any size the prefix accepts.

    Examples:
        >>> import torch
        >>> from agop.nets import SimpleCNN
        >>> net = SimpleCNN(3, 4, image_size=16, depth=2, width=4, seed=0).double().eval()
        >>> X = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0),
        ...                dtype=torch.float64)
        >>> inputs = layer_inputs(net, X, ["convs.1"])
        >>> torch.allclose(inputs["convs.1"], torch.relu(net.convs[0](X)))
        True
    """
    layers = list(layers)
    modules = dict(model.named_modules())
    found: dict[str, torch.Tensor] = {}

    class _Done(Exception):
        pass

    def hook(name):
        def fn(module, args):
            found[name] = args[0].detach()
            if len(found) == len(layers):
                raise _Done
        return fn

    handles = []
    for name in layers:
        if name not in modules:
            raise ValueError(f"layers: {name!r} is not a module of the model")
        handles.append(modules[name].register_forward_pre_hook(hook(name)))
    try:
        with torch.no_grad():
            model(X)
    except _Done:
        pass
    finally:
        for h in handles:
            h.remove()
    return {n: found[n] for n in layers}


# --------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------

@dataclasses.dataclass
class LayerResult:
    r"""The ansatz at one conv layer. Similarities are between the CNFM :math:`W^\top W` and the
    named matrix.

    ``pearson``/``cosine``: against the AGOP; ``*_sqrt``: against :math:`\mathrm{AGOP}^{1/2}`; ``init_*``: the
    same for the model at initialisation (``None`` without one); ``null_random_*``: against
    :math:`W^\top G W` for random PSD ``G`` (mean and std over draws); ``null_spectrum_*``: the
    spectrum-matched null, the trained ``G``'s eigenvalues in random eigenbases (mean and std);
    ``null_identity_*``: ``G = I``; ``cnfm_init_vs_trained``: Pearson correlation of the initial and the trained CNFM;
    ``seconds``: this layer's share of the analysis after the shared backward passes.

    See :func:`verify_ansatz` for an example.
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
    seconds: float = 0.0

    @property
    def q(self) -> int:
        """The patch dimension ``c * k * k`` (the side of the CNFM)."""
        return math.prod(self.weight_shape[1:])


_TEXT_COLUMNS = (
    ("layer", "layer", "{}"), ("weight", "weight_shape", "{}"),
    ("r", "pearson", "{:.3f}"), ("r sqrt", "pearson_sqrt", "{:.3f}"),
    ("cos", "cosine", "{:.3f}"), ("cos sqrt", "cosine_sqrt", "{:.3f}"),
    ("r init", "init_pearson", "{:.3f}"), ("r spec", "null_spectrum_pearson", "{:.3f}"),
    ("+-", "null_spectrum_pearson_std", "{:.3f}"), ("r null", "null_random_pearson", "{:.3f}"),
    ("+-", "null_random_pearson_std", "{:.3f}"), ("r G=I", "null_identity_pearson", "{:.3f}"),
    ("r(W0'W0,W'W)", "cnfm_init_vs_trained", "{:.3f}"), ("s", "seconds", "{:.2f}"),
)


@dataclasses.dataclass
class AnsatzTable:
    """One row per conv layer (:class:`LayerResult`), and how the AGOPs were computed.

    See :func:`verify_ansatz` for an example.
    """

    model: str
    rows: list[LayerResult]
    n_images: int
    image_size: tuple[int, int]
    n_outputs: int
    sketch: int | None
    weights: str
    agop_seconds: float
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

    def control_rows(self, labels: str = "names") -> list[dict[str, Any]]:
        """The rows :func:`agop.viz.plot_ansatz_controls` draws (``power = 1``, Pearson and
        cosine). ``labels="index"`` names the layers 1, 2, ... (for deep models)."""
        rows = []
        for i, r in enumerate(self.rows):
            layer = r.layer if labels == "names" else str(i + 1)
            for kind in ("pearson", "cosine"):
                rows.append({"layer": layer, "power": 1.0, "kind": kind,
                             "trained": getattr(r, kind), "init": getattr(r, f"init_{kind}"),
                             "null_mean": getattr(r, f"null_random_{kind}"),
                             "null_std": getattr(r, f"null_random_{kind}_std"),
                             "identity": getattr(r, f"null_identity_{kind}"),
                             "spectrum_mean": getattr(r, f"null_spectrum_{kind}"),
                             "spectrum_std": getattr(r, f"null_spectrum_{kind}_std"),
                             "cnfm_init": (r.cnfm_init_vs_trained if kind == "pearson"
                                           else None)})
        return rows

    def null_margins(self, kind: str = "pearson", null: str = "spectrum") -> list[float]:
        """Per layer, ``(measured - null mean) / null std``: the distance of the measured
        similarity from the ``"spectrum"`` (matched, the primary) or ``"random"`` (Wishart)
        null in the null's standard deviations (``inf`` where the std is 0)."""
        if kind not in ("pearson", "cosine") or null not in ("spectrum", "random"):
            raise ValueError(f"kind must be 'pearson' or 'cosine' and null 'spectrum' or "
                             f"'random', got kind={kind!r}, null={null!r}")
        means = self.column(f"null_{null}_{kind}")
        stds = self.column(f"null_{null}_{kind}_std")
        if any(v is None for v in means):
            raise ValueError(f"the {null} null is missing (null_draws=0?)")
        return [(getattr(r, kind) - m) / s if s > 0 else math.inf
                for r, m, s in zip(self.rows, means, stds, strict=True)]

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
            raise ImportError("to_pandas needs pandas (pip install pandas); "
                              "to_records() gives the same rows as dicts") from err
        return pd.DataFrame(self.to_records()).set_index("layer")

    def describe(self) -> str:
        how = f"sketched with {self.sketch} probes" if self.sketch else "exact"
        init = ("" if self.init_agop_seconds is None
                else f", at initialisation {self.init_agop_seconds:.1f} s")
        return (f"{self.model} ({self.weights}): {len(self.rows)} conv layers, {self.n_images} "
                f"images of {self.image_size[0]}x{self.image_size[1]}, {self.n_outputs} outputs, "
                f"AGOP {how}; shared backward passes {self.agop_seconds:.1f} s{init}")

    def to_text(self) -> str:
        """A plain-text table: r = Pearson, cos = cosine similarity of CNFM and AGOP (or AGOP^1/2)."""
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
        text = [self.describe()]
        for k, line in enumerate(lines):
            text.append("  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                                  for i, (c, w) in enumerate(zip(line, widths, strict=True))))
            if k == 0:
                text.append("  ".join("-" * w for w in widths))
        return "\n".join(text)

    def __str__(self) -> str:
        return self.to_text()

    def _repr_pretty_(self, p, cycle) -> None:  # IPython
        p.text(self.to_text())


def _agops(model, X, names, sketch, outputs, chunk_size, device, progress, seed,
           factored: bool = False):
    r"""``((AGOPs, G's), seconds)``: the patch-AGOPs :math:`W^\top G W` of the named layers (``q x q``,
    or :class:`agop.features.FactoredAGOP` with ``factored``) and their inner matrices ``G``,
    from one :func:`agop.features.patch_agop` call with ``factored=True``."""
    from agop.features import patch_agop

    t0 = time.perf_counter()
    fa = patch_agop(model, X, layers=names, sketch=sketch, outputs=outputs,
                   chunk_size=chunk_size, device=device, progress=progress, seed=seed,
                   factored=True)
    A = fa if factored else {n: f.dense() for n, f in fa.items()}
    if X.device.type == "cuda":
        torch.cuda.synchronize(X.device)
    return (A, {n: f.G for n, f in fa.items()}), time.perf_counter() - t0


def verify_ansatz(model: nn.Module | str, X: Any, *, init: nn.Module | None = None,
                  layers: Iterable[str] | None = None, sketch: int | None = None,
                  outputs: Sequence[int] | None = None, null_draws: int = 20, seed: int = 0,
                  chunk_size: int | None = None, allow_download: bool = False,
                  name: str | None = None, weights: str | None = None,
                  keep_agops: bool = False, device: str | torch.device | None = None,
                  progress: bool = False) -> AnsatzTable:
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
    initialisation drawn with ``seed``. ``X``: ``(n, c, H, W)`` images (see :func:`load_images`).
    ``null_draws=0`` skips the null baselines. Every similarity is computed in the filter space
    from the factors ``W_l`` and ``G_l`` (:class:`agop.features.FactoredAGOP`, kept in
    ``table.factors`` and ``table.init_factors``); no ``q x q`` matrix is formed unless
    ``keep_agops``, which also keeps the AGOPs themselves (``table.agops``,
    ``table.init_agops``; ``q x q`` each, up to ~300 MB for VGG in float32).

    Examples:
        Any CNN works; here an untrained one, whose measured similarity (``r``) sits within the
        nulls (``r spec``, ``r null``):

        >>> import torch
        >>> from agop.nets import SimpleCNN
        >>> net = SimpleCNN(3, 4, image_size=16, depth=2, width=4, seed=0).double().eval()
        >>> X = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0),
        ...                dtype=torch.float64)
        >>> table = verify_ansatz(net, X, null_draws=3)
        >>> print(table)
        SimpleCNN (weights as given): 2 conv layers, 3 images of 16x16, 4 outputs, AGOP exact; ...
        layer    weight       r  r sqrt    cos  cos sqrt  r init  r spec     +-  r null     +-  r G=I  r(W0'W0,W'W) ...
        -------  -------  -----  ------  -----  --------  ------  ------  -----  ------  -----  -----  ------------ ...
        convs.0  4x3x3x3  0.838   0.916  0.838     0.916       -   0.872  0.051   0.761  0.129  1.000             - ...
        convs.1  4x4x3x3  0.836   0.919  0.835     0.919       -   0.895  0.021   0.752  0.034  1.000             - ...
        >>> row = table.rows[0]
        >>> row.layer, round(row.pearson, 3), row.null_identity_pearson
        ('convs.0', 0.838, 1.0)
    """
    if isinstance(model, str):
        arch = model
        model = load_model(arch, pretrained=True, allow_download=allow_download, device=device)
        if init is None:
            init = load_model(arch, pretrained=False, seed=seed, device=device)
        name = name or arch
        weights = weights or "IMAGENET1K_V1"
    convs = conv_layers(model, layers)
    names = list(convs)
    param = next(model.parameters())
    X = check_images(X, "X", dtype=param.dtype, device=param.device)
    sketch = None if sketch is None else check_int(sketch, "sketch", minimum=1)
    null_draws = check_int(null_draws, "null_draws", minimum=0)
    n_out = n_outputs(model, X)
    n_out = len(outputs) if outputs is not None else n_out
    init_convs = None
    if init is not None:
        init_convs = conv_layers(init, names)
        for n, conv in convs.items():
            if init_convs[n].weight.shape != conv.weight.shape:
                raise ValueError(f"init must be the same architecture as model; layer {n!r} has "
                                 f"weight {tuple(init_convs[n].weight.shape)} in init and "
                                 f"{tuple(conv.weight.shape)} in model")

    (A, G), seconds = _agops(model, X, names, sketch, outputs, chunk_size, device, progress,
                             seed, factored=True)
    A0 = G0 = seconds0 = None
    if init is not None:
        X0 = X.to(dtype=next(init.parameters()).dtype, device=next(init.parameters()).device)
        (A0, G0), seconds0 = _agops(init, X0, names, sketch, outputs, chunk_size, device,
                                    progress, seed, factored=True)

    from agop.features import cnfm_similarity, null_baselines

    rows = []
    for n, conv in convs.items():
        t0 = time.perf_counter()
        space = A[n].space()
        p, c, ps, cs = A[n].similarities()
        row = LayerResult(layer=n, weight_shape=tuple(conv.weight.shape), pearson=p, cosine=c,
                          pearson_sqrt=ps, cosine_sqrt=cs)
        if null_draws:
            nulls = null_baselines(conv, n_draws=int(null_draws), seed=seed, space=space,
                                   G=G[n])
            for field, value in _null_fields(nulls).items():
                setattr(row, field, value)
        if init_convs is not None:
            assert A0 is not None
            (row.init_pearson, row.init_cosine, row.init_pearson_sqrt,
             row.init_cosine_sqrt) = A0[n].similarities()
            row.cnfm_init_vs_trained = cnfm_similarity(init_convs[n], conv, "pearson")
        row.seconds = time.perf_counter() - t0
        rows.append(row)
    return AnsatzTable(
        model=name or type(model).__name__, rows=rows, n_images=X.shape[0],
        image_size=(X.shape[2], X.shape[3]), n_outputs=n_out, sketch=sketch,
        weights=weights or "weights as given", agop_seconds=seconds, init_agop_seconds=seconds0,
        agops={k: f.dense() for k, f in A.items()} if keep_agops else None,
        init_agops={k: f.dense() for k, f in A0.items()} if keep_agops and A0 else None,
        factors=A, init_factors=A0)


def _null_fields(nulls: dict) -> dict[str, float]:
    """The null baselines of :func:`agop.features.null_baselines` as :class:`LayerResult` fields."""
    p, c = nulls["pearson"], nulls["cosine"]
    return dict(
        null_random_pearson=p["random_mean"], null_random_pearson_std=p["random_std"],
        null_random_cosine=c["random_mean"], null_random_cosine_std=c["random_std"],
        null_identity_pearson=p["identity"], null_identity_cosine=c["identity"],
        null_spectrum_pearson=p.get("spectrum_mean"), null_spectrum_pearson_std=p.get("spectrum_std"),
        null_spectrum_cosine=c.get("spectrum_mean"), null_spectrum_cosine_std=c.get("spectrum_std"),
    )


# --------------------------------------------------------------------------------------------
# How close the sketch comes to exact
# --------------------------------------------------------------------------------------------

@dataclasses.dataclass
class SketchAccuracy:
    """The sketched AGOP with ``k`` probes against the exact one, at one layer.

    See :func:`sketch_accuracy` for an example.
    """

    layer: str
    k: int
    relative_error: float  # |A_k - A|_F / |A|_F
    pearson_with_exact: float  # corr(A_k, A)
    ansatz_pearson: float  # corr(W^T W, A_k)
    exact_ansatz_pearson: float  # corr(W^T W, A)


def sketch_accuracy(model: nn.Module, X: Any, ks: Sequence[int], *,
                    layers: Iterable[str] | None = None, outputs: Sequence[int] | None = None,
                    seed: int = 0, chunk_size: int | None = None,
                    device: str | torch.device | None = None) -> list[SketchAccuracy]:
    r"""For each ``k`` in ``ks`` and each layer: how far the ``k``-probe sketch is from the exact
    patch-AGOP over the same ``outputs``, and the ansatz correlation each gives.

    Examples:
        The error falls like :math:`1/\sqrt{k}`: 64 probes are about 8 times closer than one.

        >>> import torch
        >>> from agop.nets import SimpleCNN
        >>> net = SimpleCNN(3, 4, image_size=16, depth=2, width=4, seed=0).double().eval()
        >>> X = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0),
        ...                dtype=torch.float64)
        >>> rows = sketch_accuracy(net, X, [1, 64])
        >>> [(row.layer, row.k, round(row.relative_error, 2)) for row in rows]
        [('convs.0', 1, 0.52), ('convs.1', 1, 0.52), ('convs.0', 64, 0.06), ('convs.1', 64, 0.07)]
    """
    from agop.features import cnfm

    convs = conv_layers(model, layers)
    names = list(convs)
    param = next(model.parameters())
    X = check_images(X, "X", dtype=param.dtype, device=param.device)
    (exact, _), _ = _agops(model, X, names, None, outputs, chunk_size, device, False, seed)
    out = []
    for k in ks:
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"ks must hold positive integers, got {k!r}")
        (sk, _), _ = _agops(model, X, names, int(k), outputs, chunk_size, device, False,
                            seed + int(k))
        for n, conv in convs.items():
            A, Ak = exact[n], sk[n]
            M = cnfm(conv).to(A)
            out.append(SketchAccuracy(
                layer=n, k=int(k),
                relative_error=float((Ak - A).norm() / A.norm().clamp_min(torch.finfo(A.dtype).tiny)),
                pearson_with_exact=correlation(Ak, A), ansatz_pearson=correlation(M, Ak),
                exact_ansatz_pearson=correlation(M, A)))
    return out


# --------------------------------------------------------------------------------------------
# Feature maps at several depths (the paper's Figure 2)
# --------------------------------------------------------------------------------------------

def feature_maps(model: nn.Module, x: Any, agops: dict[str, Any],
                 layers: Iterable[str] | None = None) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    r"""``layer -> (CNFM map, AGOP map)`` of one image ``x`` (``(c, H, W)`` or ``(1, c, H, W)``).

    Each map replaces every patch ``z[j]`` of the layer's *input* by :math:`\|A^{1/2} z[j]\|`
    (:func:`agop.features.feature_map`), with ``A`` the layer's CNFM or its AGOP from ``agops``,
    at the layer's own stride, padding and dilation. An AGOP given by its factors
    (:class:`agop.features.FactoredAGOP`) is drawn through the convolution,
    :math:`\|A^{1/2} z[j]\|^2 = h[j]^\top G h[j]` with ``h = W z[j]``
    (:func:`agop.features.factored_feature_map`), and so is the CNFM, ``|W z[j]|``: no
    ``q x q`` matrix.

    Examples:
        >>> import torch
        >>> from agop.nets import SimpleCNN
        >>> net = SimpleCNN(3, 4, image_size=16, depth=2, width=4, seed=0).double().eval()
        >>> X = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0),
        ...                dtype=torch.float64)
        >>> from agop.features import feature_map, patch_agop
        >>> agops = patch_agop(net, X, factored=True, device="cpu")
        >>> maps = feature_maps(net, X[0], agops)
        >>> {layer: tuple(m[1].shape) for layer, m in maps.items()}  # VALID convs: 14, then 12
        {'convs.0': (14, 14), 'convs.1': (12, 12)}
        >>> dense = feature_map(agops["convs.0"].dense(), X[:1], 3, padding=0)[0]
        >>> torch.allclose(maps["convs.0"][1], dense)
        True
    """
    from agop.features import FactoredAGOP, cnfm, factored_feature_map, feature_map

    names = list(agops) if layers is None else list(layers)
    convs = conv_layers(model, names)
    param = next(model.parameters())
    x = torch.as_tensor(x)
    if x.ndim == 3:
        x = x[None]
    x = check_images(x, "x", dtype=param.dtype, device=param.device)[:1]
    inputs = layer_inputs(model, x, names)
    out = {}
    for n, conv in convs.items():
        z = inputs[n]
        if isinstance(agops[n], FactoredAGOP) and conv.padding_mode == "zeros":
            out[n] = (factored_feature_map(conv, z)[0],
                      factored_feature_map(conv, z, agops[n].G)[0])
            continue
        A = agops[n].dense() if isinstance(agops[n], FactoredAGOP) else agops[n]
        kw: dict[str, Any] = dict(kernel_size=conv.kernel_size, stride=conv.stride,
                                  padding=conv.padding, dilation=conv.dilation)
        M = cnfm(conv).to(z)
        out[n] = (feature_map(M, z, **kw)[0], feature_map(A.to(z), z, **kw)[0])
    return out


def layer_view(model: nn.Module, layer: str, x: Any, *, sketch: int | None = 8, seed: int = 0,
               device: str | torch.device | None = None) -> dict[str, Any]:
    """One conv layer on one image ``x`` (``(c, H, W)``): the layer's CNFM and patch-AGOP on that
    image alone (sketched with ``sketch`` probes), their feature maps
    (:func:`feature_maps`) and their Pearson correlation, all from the AGOP's factors
    (no ``q x q`` matrix). What the chapter's explorer draws (:class:`LayerViews` caches it).

    Examples:
        >>> import torch
        >>> from agop.nets import SimpleCNN
        >>> net = SimpleCNN(3, 4, image_size=16, depth=2, width=4, seed=0).double().eval()
        >>> X = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0),
        ...                dtype=torch.float64)
        >>> view = layer_view(net, "convs.1", X[0])
        >>> sorted(view), tuple(view["agop_map"].shape)
        (['agop_map', 'cnfm_map', 'factors', 'image', 'pearson'], (12, 12))
    """
    return LayerViews({"model": model}, {"image": x}, sketch=sketch, seed=seed,
                      device=device).view("model", layer, "image")


class LayerViews:
    """What the pretrained explorer draws, cached: ``view(model, layer, image)`` for models
    ``{label: module}`` and images ``{label: (c, H, W) tensor}``.

    The first view of a (model, image) pair runs one set of backward passes for *every* conv
    layer (:func:`agop.features.patch_agop` with ``factored=True``, ``sketch`` probes) and one
    forward pass for every layer's input; each (model, layer, image) view is then a
    convolution and a few ``k_out x k_out`` products, computed once and kept. The Pearson
    correlation is computed in the filter space.

    Examples:
        >>> import torch
        >>> from agop.nets import SimpleCNN
        >>> net = SimpleCNN(3, 4, image_size=16, depth=2, width=4, seed=0).double().eval()
        >>> X = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0),
        ...                dtype=torch.float64)
        >>> views = LayerViews({"cnn": net}, {"noise": X[0]})
        >>> views.first()
        ('cnn', 'convs.0', 'noise')
        >>> views.view("cnn", "convs.1", "noise") is views.view("cnn", "convs.1", "noise")  # cached
        True
    """

    def __init__(self, models: dict[str, nn.Module], images: dict[str, Any], *,
                 sketch: int | None = 8, seed: int = 0,
                 device: str | torch.device | None = None) -> None:
        if not models:
            raise ValueError("models must hold at least one model")
        self.models, self.images = dict(models), dict(images)
        self.sketch, self.seed, self.device = sketch, seed, device
        self._factors: dict[tuple[str, str], dict[str, Any]] = {}
        self._inputs: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
        self._views: dict[tuple[str, str, str], dict[str, Any]] = {}

    def first(self) -> tuple[str, str, str]:
        """The view an explorer opens on: the first model, its first conv layer, the first
        image."""
        model = next(iter(self.models))
        return model, next(iter(conv_layers(self.models[model]))), next(iter(self.images))

    def add_image(self, label: str, x: Any) -> None:
        self.images[label] = x
        for key in [k for k in self._factors if k[1] == label]:
            self._factors.pop(key)
            self._inputs.pop(key, None)
        for view in [k for k in self._views if k[2] == label]:
            self._views.pop(view)

    def _image(self, model: nn.Module, label: str) -> torch.Tensor:
        param = next(model.parameters())
        x = torch.as_tensor(self.images[label])
        x = x[None] if x.ndim == 3 else x[:1]
        return check_images(x, "x", dtype=param.dtype, device=param.device)

    def view(self, model: str, layer: str, image: str) -> dict[str, Any]:
        """``{"image", "cnfm_map", "agop_map", "pearson", "factors"}`` for one layer."""
        key = (model, layer, image)
        if key in self._views:
            return self._views[key]
        from agop.features import factored_feature_map, patch_agop

        net = self.models[model]
        convs = conv_layers(net)
        if layer not in convs:
            raise ValueError(f"layer must be a conv layer of {model!r}, got {layer!r}")
        x = self._image(net, image)
        pair = (model, image)
        if pair not in self._factors:
            self._factors[pair] = patch_agop(net, x, sketch=self.sketch, seed=self.seed,
                                             device=self.device, factored=True)
            self._inputs[pair] = layer_inputs(net, x, list(convs))
        factors, z, conv = self._factors[pair][layer], self._inputs[pair][layer], convs[layer]
        if conv.padding_mode == "zeros":
            maps = (factored_feature_map(conv, z)[0], factored_feature_map(conv, z, factors.G)[0])
        else:
            maps = feature_maps(net, x, {layer: factors})[layer]
        self._views[key] = {"image": x[0], "cnfm_map": maps[0], "agop_map": maps[1],
                            "pearson": factors.pearson(), "factors": factors}
        return self._views[key]

    def plot(self, model: str, layer: str, image: str, fig: Any = None) -> Any:
        """:func:`agop.viz.plot_layer_view` of :meth:`view` (the explorer's figure)."""
        from agop.viz import plot_layer_view

        v = self.view(model, layer, image)
        return plot_layer_view(v["image"], v["cnfm_map"], v["agop_map"], v["pearson"],
                               title=f"{model} {layer}", fig=fig)
