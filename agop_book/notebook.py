"""Run a chapter anywhere: glued values shown in the book build, in Colab and in plain Jupyter.

The book's prose cites numbers computed by the code through ``glue(name, value)``. Inside the
book build (myst-nb installed) this is ``myst_nb.glue``, which stores the value for the prose's
glue roles. Elsewhere (Colab, plain Jupyter, a script) there is no myst-nb and no role to fill,
so the value is printed in the cell's output as one readable line, ``name = value``, whatever
``display`` says: the notebook's text points at that name.

A sentence of the prose that states an outcome ("beats", "localises", "fades") is written by
a person and guarded by :func:`claim` beside the computation: in the book build and in CI
(``AGOP_CLAIMS=strict``, which the Makefile sets) a run that contradicts the sentence fails;
anywhere else (Colab, a student's own run with other parameters) it shows a visible note that
this run differs from the text, and goes on.

A matplotlib figure is glued for a numbered, captioned ``glue:figure`` block. In the book it is
stored, not shown where it is computed; elsewhere it is shown once, in the cell that draws it
(the notebook's caption says so), with no ``name = ...`` line. Either way it is then closed, so
that matplotlib's inline backend does not draw it a second time at the end of the cell.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import re
import sys
from typing import Any

import numpy as np
import torch

import agop
from agop.runtime import default_device
from agop.validation import ArgumentTypeError, check_seed

__all__ = [
    "PROFILES",
    "ClaimNotMet",
    "announce",
    "claim",
    "environment_report",
    "glue",
    "have_myst_nb",
    "in_colab",
    "offline",
    "profile",
]

PROFILES = ("quick", "paper")

# AGOP_CLAIMS=strict: a claim that the run contradicts raises; anything else: a note.
CLAIMS_ENV = "AGOP_CLAIMS"


class ClaimNotMet(AssertionError):
    """A sentence of the text that this run contradicts (raised by :func:`claim` when
    ``AGOP_CLAIMS=strict``; see its example)."""


def have_myst_nb() -> bool:
    """True when myst-nb can be imported (the book build); False in Colab or plain Jupyter.

    Examples:
        >>> import importlib.util
        >>> have_myst_nb() == (importlib.util.find_spec("myst_nb") is not None)
        True
    """
    return importlib.util.find_spec("myst_nb") is not None


def _is_figure(value: Any) -> bool:
    """True for a matplotlib figure (checked without importing matplotlib for other values)."""
    if not hasattr(value, "savefig"):
        return False
    from matplotlib.figure import Figure

    return isinstance(value, Figure)


def _readable(value: Any) -> str:
    """``value`` as a short line: numbers as they print, other objects by their ``str``."""
    text = str(value)
    return text if "\n" not in text else text.replace("\n", "\n    ")


def _non_finite_number(value: Any) -> bool:
    """Whether ``value`` is one number (a Python or numpy scalar, or an array or tensor of one
    element) that is NaN or infinite."""
    if isinstance(value, (bool, np.bool_, str, bytes)):
        return False
    if hasattr(value, "detach"):  # a tensor (one on the meta device holds no number)
        if value.numel() != 1 or value.device.type == "meta":
            return False
        value = value.detach().cpu().numpy()
    elif not isinstance(value, (int, float, complex, np.number, np.ndarray)):
        return False
    array = np.asarray(value)
    if array.size != 1 or array.dtype.kind not in "fc":
        return False
    return not bool(np.isfinite(array.reshape(-1)[0]))


#: a glue key the prose can cite (``{glue:}`name```): no spaces, backticks or line breaks
_GLUE_NAME = re.compile(r"[A-Za-z_][\w.-]*")


def glue(name: str, value: Any, display: bool = True) -> None:
    """Keep ``value`` under ``name`` for the prose: ``myst_nb.glue`` when importable.

    Without myst-nb, print ``name = value`` (always, also with ``display=False``, so that a
    reader in Colab sees each number the prose refers to) and, when ``display`` is true, show
    ``value`` itself as the cell's output would. A matplotlib figure is shown exactly once
    without myst-nb (``display`` aside: the notebook has no other place to show it), never
    printed as a line, and closed afterwards in both cases.

    A number the prose cites must be one: a NaN or an infinite ``value`` (a float, a numpy
    scalar, a one-element array or tensor) raises ``ValueError`` under ``AGOP_CLAIMS=strict``
    (the book build), and otherwise is glued with a printed note, as :func:`claim` does.

    Examples:
        >>> glue("", 1.0)
        Traceback (most recent call last):
        ...
        ValueError: name must be a non-empty string, got ''
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    if not _GLUE_NAME.fullmatch(name):
        raise ValueError(
            "name must be a key the prose can cite in a glue role: letters, digits, '_', '-' "
            f"and '.', starting with a letter or '_', got {name!r}"
        )
    if not isinstance(display, (bool, np.bool_)):
        raise ArgumentTypeError(f"display must be True or False, got {display!r}")
    figure = _is_figure(value)
    if not figure and _non_finite_number(value):
        if _strict_claims():
            raise ValueError(f"value must be a finite number for the prose to cite, got {value!r}")
        print(f"note: {name} is {value!r} in this run, not a number the text can cite")
    if have_myst_nb():
        from myst_nb import glue as myst_glue

        myst_glue(name, value, display=display)
    elif not figure:
        print(f"{name} = {_readable(value)}")
    if not have_myst_nb() and (display or figure) and not isinstance(value, (str, int, float)):
        from IPython.display import display as show

        show(value)
    if figure:
        import matplotlib.pyplot as plt

        plt.close(value)


def claim(holds: Any, text: str) -> bool:
    """Guard a sentence of the prose: ``holds`` says whether this run agrees with ``text``.

    ``text`` is the sentence (or its outcome) as the prose states it. When ``holds`` is true
    nothing happens. When it is false: with the environment variable ``AGOP_CLAIMS=strict``
    (the book build and CI: the Makefile sets it) :class:`ClaimNotMet` is raised, so the book
    cannot state what its run contradicts; otherwise (Colab, a student's run) a note is printed,
    ``claim not met in this run: ...``, and the chapter goes on. Returns ``bool(holds)``.

    Examples:
        >>> import os
        >>> os.environ.pop("AGOP_CLAIMS", None) and None
        >>> claim(0.9 > 0.5, "the trained correlation clears the null")
        True
        >>> claim(0.4 > 0.5, "the trained correlation clears the null")
        claim not met in this run: the trained correlation clears the null (the text was written from the book's reference run)
        False
        >>> os.environ["AGOP_CLAIMS"] = "strict"
        >>> claim(0.4 > 0.5, "the trained correlation clears the null")
        Traceback (most recent call last):
        ...
        agop_book.notebook.ClaimNotMet: the text says "the trained correlation clears the null", and this run contradicts it
        >>> del os.environ["AGOP_CLAIMS"]
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"text must be the sentence the check guards, got {text!r}")
    holds = _truth(holds)
    strict = _strict_claims()
    if holds:
        return True
    if strict:
        raise ClaimNotMet(f'the text says "{text}", and this run contradicts it')
    print(f"claim not met in this run: {text} (the text was written from the book's reference run)")
    return False


def _truth(holds: Any) -> bool:
    """``holds`` as a bool: a bool, a numpy bool, or an array or tensor of one bool (what a
    comparison gives); anything else (``None``, a string, a number, several truth values)
    raises ``TypeError`` naming ``holds``, rather than being read as true or false."""
    if isinstance(holds, (np.ndarray, torch.Tensor)) and holds.dtype in (np.bool_, torch.bool):
        if isinstance(holds, torch.Tensor) and holds.device.type == "meta":
            raise ArgumentTypeError(
                "holds is a tensor on the 'meta' device: it has no value to check"
            )
        if holds.size == 1 if isinstance(holds, np.ndarray) else holds.numel() == 1:
            return bool(holds.item())
        shape = tuple(holds.shape)
        raise ArgumentTypeError(
            f"holds must be one truth value, got {shape} of them: reduce it with .all() or "
            ".any(), whichever the sentence says"
        )
    if isinstance(holds, (bool, np.bool_)):
        return bool(holds)
    raise ArgumentTypeError(
        f"holds must be True or False (a comparison's result), got {holds!r} "
        f"({type(holds).__name__})"
    )


def _strict_claims() -> bool:
    """Whether ``AGOP_CLAIMS`` asks for strict claims: ``strict``; ``''``, ``note`` or
    ``0``/``false``/``no``/``off`` for notes; any other value raises ``ValueError``."""
    value = os.environ.get(CLAIMS_ENV, "").strip().lower()
    if value == "strict":
        return True
    if value in ("", "note", "0", "false", "no", "off"):
        return False
    raise ValueError(
        f"{CLAIMS_ENV} must be 'strict' (a contradicted claim fails) or unset/'note' (it prints "
        f"a note), got {value!r}"
    )


def announce(profile: str, *, quick: str, paper: str) -> str:
    """Say which profile this run uses, on which device, and how long it should take.

    ``quick`` and ``paper`` give each profile's expected time (``"about 15 s on 2 CPU cores"``).
    Printed by every chapter's parameters cell, so a reader knows what they started and how to
    start the other profile (``AGOP_PROFILE=paper``, set before the parameters cell runs).

    Examples:
        >>> text = announce("quick", quick="about 15 s on 2 CPU cores", paper="about 5 min")
        profile quick on ...: expected about 15 s on 2 CPU cores
        ...
    """
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    for key, value in (("quick", quick), ("paper", paper)):
        if not isinstance(value, str) or not value.strip():
            raise ArgumentTypeError(
                f"{key} must say how long the {key} profile takes (a non-empty string), "
                f"got {value!r}"
            )
    device = default_device().type
    lines = [f"profile {profile} on {device}: expected {quick if profile == 'quick' else paper}"]
    if profile == "paper" and device == "cpu":
        lines.append("  (no GPU here: the paper profile will take much longer)")
    if profile == "quick":
        lines.append(
            f"  paper profile: {paper}; to run it, set the environment variable "
            "AGOP_PROFILE=paper before this cell (e.g. os.environ['AGOP_PROFILE'] = "
            "'paper' in a cell above)"
        )
    text = "\n".join(lines)
    print(text)
    return text


def in_colab() -> bool:
    """True inside Google Colab.

    Examples:
        >>> in_colab()
        False
    """
    return "google.colab" in sys.modules


def profile() -> str:
    """The run profile: ``AGOP_PROFILE`` if set, else ``'quick'`` (on a GPU too).

    ``quick`` runs a chapter on 2 CPU cores in a few minutes on data that needs no download;
    ``paper`` runs at the paper's scale, best on a GPU, and downloads datasets and pretrained
    weights unless :func:`offline`. It is never chosen silently: set ``AGOP_PROFILE=paper``
    (or ``os.environ["AGOP_PROFILE"] = "paper"`` before a chapter's parameters cell).

    Examples:
        >>> import os
        >>> saved = os.environ.get("AGOP_PROFILE", "")
        >>> os.environ["AGOP_PROFILE"] = "Paper"
        >>> profile()
        'paper'
        >>> os.environ["AGOP_PROFILE"] = ""  # unset: 'quick', whatever the device
        >>> profile()
        'quick'
        >>> os.environ["AGOP_PROFILE"] = saved
    """
    value = os.environ.get("AGOP_PROFILE", "").strip().lower()
    if not value:
        return "quick"
    if value not in PROFILES:
        raise ValueError(f"AGOP_PROFILE must be one of {PROFILES}, got {value!r}")
    return value


def offline() -> bool:
    """True when ``AGOP_OFFLINE`` is set to ``1``/``true``/``yes``: nothing is downloaded.

    CI sets it. Then ``load_dataset(..., download=True)`` and ``load_model(...,
    allow_download=True)`` read only what is on disk and raise their ``DatasetNotAvailable`` /
    ``WeightsUnavailable`` error for what is missing, without touching the network.

    Examples:
        >>> import os
        >>> saved = os.environ.get("AGOP_OFFLINE", "")
        >>> os.environ["AGOP_OFFLINE"] = "Yes"
        >>> offline()
        True
        >>> os.environ["AGOP_OFFLINE"] = "0"
        >>> offline()
        False
        >>> os.environ["AGOP_OFFLINE"] = saved
    """
    value = os.environ.get("AGOP_OFFLINE", "").strip().lower()
    if value in ("", "0", "false", "no"):
        return False
    if value in ("1", "true", "yes"):
        return True
    raise ValueError(f"AGOP_OFFLINE must be 1/true/yes or 0/false/no, got {value!r}")


def environment_report(**seeds: int) -> str:
    """The footer every chapter prints: profile, seeds, versions and device, one fact a line.

    Examples:
        >>> report = environment_report(data=0, init=1)
        profile      ...
        seeds        data=0, init=1
        ...
        >>> len(report.splitlines())
        10
    """
    import matplotlib
    import sklearn
    import torchvision

    seeds = {key: check_seed(value, key) for key, value in seeds.items()}
    device = default_device()
    gpu = torch.cuda.get_device_name(0) if device.type == "cuda" else "none"
    lines = [
        f"profile      {profile()}",
        f"seeds        {', '.join(f'{k}={v}' for k, v in seeds.items()) or 'none'}",
        f"device       {device.type} (GPU: {gpu}; CPU threads: {torch.get_num_threads()})",
        f"agop         {agop.__version__}",
        f"torch        {torch.__version__}",
        f"torchvision  {torchvision.__version__}",
        f"numpy        {np.__version__}",
        f"scikit-learn {sklearn.__version__}",
        f"matplotlib   {matplotlib.__version__}",
        f"python       {platform.python_version()} on {platform.machine()}",
    ]
    report = "\n".join(lines)
    print(report)
    return report
