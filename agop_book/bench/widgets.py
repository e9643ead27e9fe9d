"""How fast each explorer answers: ``python -m agop_book.bench --only widgets``.

Each explorer of the chapter modules is built on inputs of the chapter's quick profile and its
controls are moved as a reader would; a row is the time from setting a control's value to the
figure rendered as PNG (what the notebook's front end receives; the rendering is forced here,
outside a notebook). ``quick`` and ``paper`` run the same problems (the target is for the quick
profile on 2 CPU cores: every answer within ``TARGET_SECONDS``). Peak MB is the process's
resident memory after the answer.

* theorem (chapter 02): 3s and 8s of scikit-learn's digits, 5 x 5 patches, 8 filters;
* ansatz (chapter 01): a 3-layer CNN of width 32 on the digits, AGOPs over 200 images;
* operators (chapter 04): random PSD ``M`` of 7 x 7 patches, three digits;
* noise (chapter 06): precomputed panels of the bars task (drawing only);
* pretrained (chapter 03): VGG11 and ResNet18 at initialisation, two photographs of 64 px,
  sketch of 8 probes: the first view, a deep layer, another image, another model (one redraw).
* emergence (chapter 07): the first view, another width, another gain, back: every view is
  computed beforehand (the chapter's run trains them), so each interaction is one redraw.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

from agop.features import cnfm, conv_layers, feature_map, patch_agop
from agop_book import ch01_ansatz as ch01
from agop_book import ch02_theorem as ch02
from agop_book import ch03_pretrained as ch03
from agop_book import ch04_edges as ch04
from agop_book import ch05_deep_convrfm as ch05
from agop_book import ch06_local_signals as ch06
from agop_book import ch07_other_accounts as ch07
from agop_book import data, nets, pretrained
from agop_book.bench import Result, _rss_bytes, benchmark
from agop_book.ch07_other_accounts import emergence_views

TARGET_SECONDS = 2.0


@contextmanager
def _rendering() -> Iterator[None]:
    """Make ``IPython.display.display(fig)`` render the figure to PNG, as a notebook would."""
    import IPython.display

    real = IPython.display.display

    def render(obj, *args, **kwargs):
        if hasattr(obj, "savefig"):
            obj.savefig(io.BytesIO(), format="png")

    IPython.display.display = render  # type: ignore[assignment]  # restored below
    try:
        yield
    finally:
        IPython.display.display = real


def _controls(widget) -> dict[str, object]:
    """Every control below ``widget`` with a description, by description."""
    found, stack = {}, [widget]
    while stack:
        w = stack.pop()
        stack.extend(getattr(w, "children", ()))
        if getattr(w, "description", ""):
            found[w.description] = w
    return found


def _timed(action: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    action()
    return time.perf_counter() - t0


def _row(explorer: str, step: str, seconds: float, size: str) -> Result:
    verdict = "within" if seconds <= TARGET_SECONDS else "OVER"
    return Result(
        problem=f"explorer {explorer}: {step}",
        size=size,
        seconds=seconds,
        peak_mb=_rss_bytes() / 2**20,
        notes=f"{verdict} the {TARGET_SECONDS:g} s target; includes rendering the figure to PNG",
    )


def _set(controls: dict, name: str, value) -> Callable[[], None]:
    def action():
        controls[name].value = value

    return action


def _session(
    explorer: str,
    size: str,
    build: Callable[[], object],
    moves: list[tuple[str, str, object]],
    first: str = "first view",
) -> Iterator[Result]:
    """A row for building the explorer (``first``), then one for each ``(step, control, value)``
    of ``moves``, in order, each setting one control of the widget built."""
    box: dict[str, Any] = {}
    yield _row(explorer, first, _timed(lambda: box.setdefault("w", build())), size)
    c = _controls(box["w"])
    for step, name, value in moves:
        yield _row(explorer, step, _timed(_set(c, name, value)), size)


def _theorem(size: str) -> Iterator[Result]:
    X, labels = data.digits(classes=(3, 8), dtype=torch.float64, device="cpu")
    y = (2 * labels - 1).to(X.dtype)
    yield from _session(
        "theorem",
        size,
        lambda: ch02.theorem_explorer(X, y, kernel_size=5, width=8, hidden=(4,)),
        [
            ("50 steps", "steps", 50),
            ("W_0 scale 1e-2", "W_0 scale", 1e-2),
            ("ReLU", "phi", "ReLU, phi'(0) = 1"),
        ],
    )


def _ansatz(size: str) -> Iterator[Result]:
    X, _ = data.digits(200, seed=0, dtype=torch.float32, device="cpu")
    matrices = {}
    for epoch in (0, 10):
        net = nets.SimpleCNN(
            1, 10, 8, depth=3, width=32, pool="max", padding="same", seed=epoch
        ).eval()
        A = patch_agop(net, X, device="cpu")
        mods = dict(net.named_modules())
        matrices[f"epoch {epoch}"] = {n: (cnfm(mods[n]), A[n]) for n in A}
    first_layer = next(iter(matrices["epoch 0"]))
    yield from _session(
        "ansatz",
        size,
        lambda: ch01.ansatz_explorer(matrices),
        [
            ("power 0.5", "power", 0.5),
            ("first layer", "layer", first_layer),
            ("checkpoint", "checkpoint", "epoch 0"),
        ],
    )


def _operators(size: str) -> Iterator[Result]:
    X, _ = data.digits(3, seed=0, dtype=torch.float32, device="cpu")
    g = torch.Generator().manual_seed(0)
    iterates = {}
    for kernel in ("cntk", "laplace"):
        for k in (5, 7):
            Ms = [torch.eye(k * k)]
            for _ in range(3):
                B = torch.randn(k * k, k * k, generator=g)
                Ms.append(B @ B.T / (k * k))
            iterates[kernel, k] = Ms
    yield from _session(
        "operators",
        size,
        lambda: ch04.rfm_explorer(iterates, list(X)),
        [
            ("round 1", "round t", 1),
            ("patch size 5", "patch size", 5),
            ("laplace", "kernel", "laplace"),
        ],
    )


def _noise(size: str) -> Iterator[Result]:
    panels = []
    g = torch.Generator().manual_seed(0)
    for noise in (0.5, 1.0, 2.0):
        X, _ = ch05.bars_in_noise(4, noise, seed=0)
        B = torch.randn(25, 25, generator=g, dtype=X.dtype)
        maps = {"ConvRFM map": feature_map(B @ B.T, X, 5), "CNN map": feature_map(B.T @ B, X, 5)}
        panels.append(
            {
                "noise": noise,
                "images": X,
                "maps": maps,
                "accuracy": {"ConvRFM": (0.9, 0.01), "CNTK": (0.6, 0.02)},
            }
        )
    yield from _session(
        "noise", size, lambda: ch06.noise_explorer(panels), [("noise 0.5", "noise", 0.5)]
    )


def _pretrained(size: str) -> Iterator[Result]:
    models = {
        f"{name} (init)": pretrained.load_model(name, pretrained=False, seed=0, device="cpu")
        for name in ("vgg11", "resnet18")
    }
    X = data.load_photographs(n=2, size=64)
    images = dict(zip(data.PHOTOGRAPHS[:2], X, strict=True))
    deepest = list(conv_layers(models["vgg11 (init)"]))[-1]
    yield from _session(
        "pretrained",
        size,
        lambda: ch03.pretrained_explorer(models, images, size=64),
        [
            (f"layer {deepest} (q = 4608)", "layer", deepest),
            ("another image", "image", data.PHOTOGRAPHS[1]),
            ("back to the first image (cached)", "image", data.PHOTOGRAPHS[0]),
            ("another model (one redraw)", "model", "resnet18 (init)"),
        ],
    )


def _emergence(size: str) -> Iterator[Result]:

    # the chapter computes its views in its run (the sweep's networks and one batch per other
    # width); the explorer only selects among them
    settings: dict[str, Any] = dict(D=40, n_train=4000, steps=3000)
    views = {**emergence_views([0.0, 3.0, 30.0], 8, **settings),
             **emergence_views([0.0, 3.0, 30.0], 32, **settings)}  # fmt: skip
    yield from _session(
        "emergence",
        size,
        lambda: ch07.emergence_explorer(views),
        [
            ("another width (precomputed)", "width", 32),
            ("another gain", "gain", 0.0),
            ("back to width 8", "width", 8),
        ],
        first="first view (precomputed)",
    )


@benchmark("widgets")
def explorers(size: str, device: torch.device) -> Iterator[Result]:
    with _rendering():
        for part in (_theorem, _ansatz, _operators, _noise, _pretrained, _emergence):
            yield from part(size)
