"""The API reference reads like the book: every public function and class that the API page
documents carries a runnable example (``make test-doctest`` runs them all), and its formulas
are typeset, not ASCII."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

API_PAGE = Path(__file__).resolve().parents[1] / "book" / "91_api.md"
# Formulas written as ASCII inside double backticks: a transpose (``W^T W``), a sum
# (``sum_i``), a square root (``sqrt(x)``). Typeset them with :math: instead.
ASCII_FORMULA = re.compile(r"``[^`]*(\^T\b|\bsum_|\bsqrt\()[^`]*``")


def documented_members() -> list[tuple[str, object]]:
    """``(qualified name, object)`` of every function and class autodoc puts on the API page:
    the ``__all__`` of each module listed with ``:members:``, else its public functions and
    classes defined there."""
    text = API_PAGE.read_text()
    members = []
    for module_name, options in re.findall(r"\.\. automodule:: (\S+)\n((?:   :\S+:\n)*)", text):
        if ":members:" not in options:
            continue
        module = importlib.import_module(module_name)
        names = getattr(module, "__all__", None)
        if names is None:
            names = [
                n
                for n, obj in vars(module).items()
                if not n.startswith("_")
                and (inspect.isfunction(obj) or inspect.isclass(obj))
                and obj.__module__ == module_name
            ]
        for name in names:
            obj = getattr(module, name)
            if inspect.isfunction(obj) or inspect.isclass(obj):
                members.append((f"{module_name}.{name}", obj))
    return members


MEMBERS = documented_members()


def test_the_api_page_documents_the_package():
    assert len(MEMBERS) > 150
    assert "agop.features.patch_agop" in dict(MEMBERS)


@pytest.mark.parametrize("name, obj", MEMBERS, ids=[name for name, _ in MEMBERS])
def test_every_documented_function_has_an_example(name, obj):
    doc = inspect.getdoc(obj) or ""
    if inspect.isfunction(obj):
        assert ">>>" in doc, f"{name} has no example (an Examples section with >>> lines)"
    else:  # a class: its own example, or a pointer to the function whose example shows it
        assert ">>>" in doc or re.search(
            r"for\s+an\s+example|see\s+its\s+example|'s\s+example", doc
        ), f"{name} has no example and points to none"


MODULES = sorted({obj.__module__ for _, obj in MEMBERS})


@pytest.mark.parametrize("name", MODULES)
def test_module_formulas_are_typeset(name):
    doc = importlib.import_module(name).__doc__ or ""
    ascii_formulas = [m.group(0) for m in ASCII_FORMULA.finditer(doc)]
    assert not ascii_formulas, f"{name}: ASCII formulas {ascii_formulas}; use :math:"


@pytest.mark.parametrize("name, obj", MEMBERS, ids=[name for name, _ in MEMBERS])
def test_documented_formulas_are_typeset(name, obj):
    doc = inspect.getdoc(obj) or ""
    ascii_formulas = [m.group(0) for m in ASCII_FORMULA.finditer(doc)]
    assert not ascii_formulas, f"{name}: ASCII formulas {ascii_formulas}; use :math:"
