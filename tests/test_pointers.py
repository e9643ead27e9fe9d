"""Every pointer in code, docs and scripts resolves: a repository path that a docstring, comment,
chapter or script names exists; a test file named by its name exists; a dotted ``agop.`` or
``agop_book.`` name imports; and a Sphinx cross-reference role in a module docstring names something in reach."""

from __future__ import annotations

import builtins
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import agop
import agop_book

ROOT = Path(__file__).resolve().parents[1]
SUFFIXES = {".py", ".md", ".sh", ".yml", ".yaml", ".toml", ".cfg", ".txt", ".json"}
TOP = (
    "README.md",
    "CONTRIBUTING.md",
    "Makefile",
    "pyproject.toml",
    "_config.yml",
    "_config.student.yml",
    "_toc.yml",
)

# paths that a command *writes* (named as its output), so they need not exist yet
OUTPUTS = {
    "agop_book/bench/results/bench_gpu.json": "written by `python -m agop_book.bench --device cuda`",
}

_PATH = re.compile(r"(?<![\w/.-])((?:agop_book|agop|tools|tests|book|student|\.github)/[\w./-]*\w)")
_UPPER_DOC = re.compile(r"(?<![\w/.-])([A-Z][A-Z_]+\.md)\b")
_TEST_FILE = re.compile(r"(?<![\w/.-])(test_\w+\.py)\b")
_DOTTED = re.compile(r"`~?(agop(?:_book)?(?:\.\w+)+)")  # quoted as code or in a role
_ROLE = re.compile(r":(?:py:)?(func|class|meth|mod|attr|data|obj|exc|const):`~?([\w.]+)`")


def scanned_files() -> list[Path]:
    """The sources a reader follows pointers from (CHANGELOG is history and is not scanned)."""
    found = [ROOT / name for name in TOP if (ROOT / name).exists()]
    for folder in ("agop", "agop_book", "tools", "tests", "book"):
        found += [
            p
            for p in (ROOT / folder).rglob("*")
            if p.is_file()
            and p.suffix in SUFFIXES
            and not {"node_modules", "_build", "results", "__pycache__"} & set(p.parts)
        ]
    return sorted(found)


def is_template(path: str) -> bool:
    """``book/NN_name.md``, ``book/04_`` (a prefix) or a built page: not a file pointer."""
    return "NN" in path or path.endswith("_") or path.endswith(".html")


def missing_paths(text: str) -> list[str]:
    """The repository paths named in ``text`` that do not exist."""
    out = []
    for m in _PATH.finditer(text):
        path = m.group(1).rstrip(".")
        if is_template(path) or path in OUTPUTS:
            continue
        # _toc.yml names chapters without their suffix
        if not any((ROOT / f"{path}{suffix}").exists() for suffix in ("", ".md")):
            out.append(path)
    out += [m.group(1) for m in _UPPER_DOC.finditer(text) if not (ROOT / m.group(1)).exists()]
    tests = {p.name for p in (ROOT / "tests").rglob("test_*.py")}
    out += [m.group(1) for m in _TEST_FILE.finditer(text) if m.group(1) not in tests]
    return out


def _lookup(obj, parts: list[str]):
    for part in parts:
        if not hasattr(obj, part):
            return None
        obj = getattr(obj, part)
    return obj


def resolves(name: str, module=None) -> bool:
    """Whether a dotted ``name`` names something: in ``module``'s namespace, as an attribute of
    one of its classes (a ``:meth:`` inside a class docstring), or from an importable module."""
    parts = name.split(".")
    if module is not None:
        if _lookup(module, parts) is not None:
            return True
        classes = [v for v in vars(module).values() if isinstance(v, type)]
        if any(_lookup(c, parts) is not None for c in classes):
            return True
    for i in range(len(parts), 0, -1):
        try:
            found = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        return _lookup(found, parts[i:]) is not None
    return hasattr(builtins, parts[0])


FILES = scanned_files()


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(ROOT)) for p in FILES])
def test_named_files_exist(path: Path):
    text = path.read_text(errors="ignore")
    if path.name == "test_pointers.py":
        text = text.split("OUTPUTS = {", 1)[0]
    assert not missing_paths(text), (
        f"{path.relative_to(ROOT)} points to files that do not exist: {missing_paths(text)}"
    )


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(ROOT)) for p in FILES])
def test_dotted_agop_names_import(path: Path):
    if path.suffix not in {".py", ".md"}:
        return
    # tests that check the error for a missing name name one on purpose
    text = re.sub(r"agop\.no_such_\w+", "", path.read_text(errors="ignore"))
    bad = sorted(
        {
            m.group(1).rstrip(".")
            for m in _DOTTED.finditer(text)
            if not m.group(1).endswith((".py", ".md", ".json"))
            and not resolves(m.group(1).rstrip("."))
        }
    )
    bad = [b for b in bad if b not in {"agop.NAME"}]  # a placeholder in tools/agop_sphinx.py
    assert not bad, f"{path.relative_to(ROOT)} names agop objects that do not exist: {bad}"


MODULES = ["agop", "agop_book"] + [
    m.name
    for package in (agop, agop_book)
    for m in pkgutil.walk_packages(package.__path__, f"{package.__name__}.")
]


@pytest.mark.parametrize("name", MODULES)
def test_cross_references_in_a_module_resolve(name: str):
    module = importlib.import_module(name)
    source = Path(module.__file__).read_text()
    bad = [m.group(0) for m in _ROLE.finditer(source) if not resolves(m.group(2), module)]
    assert not bad, f"{name}: cross-references to nothing: {bad}"


def test_the_scanner_sees_a_broken_pointer():
    """The checks above can fail: each kind of broken pointer is caught."""
    assert missing_paths("see tests/test_no_such_file.py") == ["tests/test_no_such_file.py"]
    assert missing_paths("see test_no_such_file.py") == ["test_no_such_file.py"]
    assert missing_paths("the notes in " + "NOTES_NOWHERE.md") == ["NOTES_NOWHERE.md"]
    assert missing_paths("book/NN_name.md and agop_book/bench/results/bench_gpu.json") == []
    assert missing_paths("agop_book/no_such_module.py") == ["agop_book/no_such_module.py"]
    assert not resolves("compare", importlib.import_module("agop_book.ch02_theorem"))
    assert resolves("check_theorem", importlib.import_module("agop_book.ch02_theorem"))
    assert not resolves("agop.linalg.no_such_function")
    assert [m.group(1) for m in _DOTTED.finditer("`agop_book.ch04_edges.edge_controls`")] == [
        "agop_book.ch04_edges.edge_controls"
    ]


def test_every_tool_has_a_readme_entry():
    """tools/README.md gives each script one line: a build step, a dev aid or provenance."""
    rows = {}
    for line in (ROOT / "tools" / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            for name in re.findall(r"`([^`]+)`", cells[0]):
                rows[name] = cells[1]
    files = {
        p.name
        for p in (ROOT / "tools").iterdir()
        if p.is_file() and p.name != "README.md" and not p.name.startswith(".")
    }
    assert files == set(rows), (
        f"tools/README.md lacks {sorted(files - set(rows))}, "
        f"lists missing {sorted(set(rows) - files)}"
    )
    kinds = {"build step", "dev aid", "provenance"}
    assert set(rows.values()) <= kinds, rows
