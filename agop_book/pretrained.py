r"""Pretrained torchvision CNNs: their weights and :func:`load_model`.

Pretrained weights come through torchvision's own weight enums. Nothing is downloaded unless
``allow_download=True``: a missing checkpoint raises :class:`WeightsUnavailable`, which names the
file it looked for and how to get it. torchvision is imported on first use (it takes seconds to
import). The ansatz in these networks is measured by :func:`agop_book.ch01_ansatz.verify_ansatz`,
on images from :func:`agop_book.data.load_images` (the book's: :func:`agop_book.data.load_photographs`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from agop.runtime import default_device
from agop.validation import ArgumentTypeError, check_bool, check_seed
from agop_book.notebook import offline

#: The ImageNet classifiers of the paper's Figure 1 (torchvision names).
ARCHITECTURES = (
    "alexnet",
    "vgg11",
    "vgg13",
    "vgg16",
    "vgg19",
    "vgg11_bn",
    "vgg13_bn",
    "vgg16_bn",
    "vgg19_bn",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
)


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

    if not isinstance(name, str):
        raise ArgumentTypeError(
            f"name must be a torchvision model name (a str), got {name!r} ({type(name).__name__})"
        )
    if not isinstance(weights, str):
        raise ArgumentTypeError(
            f"weights must be a weight enum member name (a str), got {weights!r} "
            f"({type(weights).__name__})"
        )
    try:
        enum = torchvision.models.get_model_weights(name)
    except ValueError as err:
        raise ValueError(f"name must be a torchvision classification model, got {name!r}") from err
    try:
        return enum[weights]
    except KeyError as err:
        raise ValueError(
            f"weights must be one of {[w.name for w in enum]} for {name!r}, got {weights!r}"
        ) from err


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


def load_model(
    name: str,
    *,
    pretrained: bool = True,
    weights: str = "IMAGENET1K_V1",
    allow_download: bool = False,
    seed: int | None = 0,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> nn.Module:
    """The torchvision model ``name`` in eval mode, pretrained or at torchvision's initialisation.

    ``pretrained=True`` loads ``weights`` (a weight enum member name) from the torch hub cache;
    when the file is not there it is downloaded only if ``allow_download`` and not
    :func:`agop_book.notebook.offline` (``AGOP_OFFLINE=1``), otherwise :class:`WeightsUnavailable` is
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
        agop_book.pretrained.WeightsUnavailable: pretrained weights for 'resnet18' ... allow_download=False...
        >>> torch.hub.set_dir(saved)
        >>> empty.cleanup()

        The architecture at torchvision's initialisation needs no file:

        >>> from agop.features import conv_layers
        >>> model = load_model("squeezenet1_1", pretrained=False, device="cpu")
        >>> model.training, len(conv_layers(model))
        (False, 26)
    """
    import torchvision

    if not isinstance(name, str):
        raise ArgumentTypeError(
            f"name must be a torchvision model name (a str), got {name!r} ({type(name).__name__})"
        )
    pretrained = check_bool(pretrained, "pretrained")
    allow_download = check_bool(allow_download, "allow_download")
    seed = None if seed is None else check_seed(seed)
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
                f"use another cache folder)."
            )
        model = torchvision.models.get_model(name, weights=enum)
    else:
        if name.lower() not in torchvision.models.list_models():
            raise ValueError(f"name must be a torchvision model, got {name!r}")
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            model = torchvision.models.get_model(name, weights=None)
    model = model.to(device=device, dtype=dtype) if dtype is not None else model.to(device)
    return model.eval()
