"""The packages' namespaces resolve, and the dependencies point one way: the library ``agop`` (engine -> estimators) -> the book's
package ``agop_book`` (shared helpers -> chapter modules -> benchmarks). Every import statement
of every module of both packages (function-local ones too) is read with ``ast``; no module
imports one of a higher layer, ``agop`` imports nothing from ``agop_book``, and a chapter
module imports only from chapters before it. Function-local imports are kept for the
dependencies listed in ``LOCAL_IMPORTS`` only."""

import ast
import importlib
import pkgutil
import re
import sys
from pathlib import Path

import pytest

import agop
import agop_book

ROOT = Path(agop.__file__).resolve().parent
BOOK_ROOT = Path(agop_book.__file__).resolve().parent

# layer of each module, by the longest matching prefix
LAYERS = {
    # 0, the engine: one mathematical idea per module
    "agop._typing": 0,
    "agop.validation": 0,
    "agop.runtime": 0,
    "agop.linalg": 0,
    "agop.patches": 0,
    "agop.features": 0,
    "agop.kernels": 0,
    "agop.solve": 0,
    "agop.data": 0,
    # 1, the estimators
    "agop.estimator": 1,
    "agop.rfm": 1,
    "agop.deep_rfm": 1,
    # 2, the book's shared helpers
    "agop_book.notebook": 2,
    "agop_book.data": 2,
    "agop_book.nets": 2,
    "agop_book.views": 2,
    "agop_book.plots": 2,
    "agop_book.pretrained": 2,
    "agop_book.reference": 2,
    # 3, one module per chapter (and the package's lazy index)
    "agop_book": 3,
    "agop_book.ch": 3,
    # 4, the benchmarks
    "agop_book.bench": 4,
}
NAMES = {0: "engine", 1: "estimators", 2: "book helpers", 3: "chapters", 4: "bench"}

# third-party modules imported inside functions, and why
LOCAL_IMPORTS = {
    "torchvision": "seconds to import; agop.data, agop_book.data and agop_book.pretrained stay cheap",
    "sklearn.datasets": "about a second to import; agop_book.data stays cheap",
    "scipy.io": "0.2 s to import, only for SVHN's .mat files",
    "ipywidgets": "the explorers only",
    "IPython.display": "the explorers and glue only (a notebook's front end)",
    "myst_nb": "the book's build only",
    "pandas": "not a dependency of agop",
    "matplotlib": "notebook: glue checks figures without importing matplotlib",
    "sklearn": "notebook's environment report (its version)",
}


def layer(module: str) -> int | None:
    best = max(
        (
            p
            for p in LAYERS
            if module == p
            or module.startswith(p + ".")
            or (p.endswith(".ch") and module.startswith(p) and module.count(".") == 1)
        ),
        key=len,
        default=None,
    )
    return None if best is None else LAYERS[best]


def modules() -> list[str]:
    names = [m.name for m in pkgutil.walk_packages([str(ROOT)], "agop.")]
    names += ["agop_book"] + [m.name for m in pkgutil.walk_packages([str(BOOK_ROOT)], "agop_book.")]
    return sorted(n for n in names if not n.endswith("__main__"))


def source(module: str) -> Path:
    top = module.split(".")[0]
    root = BOOK_ROOT if top == "agop_book" else ROOT
    if top == "agop_book" and root.name != "agop_book":  # the checker's own test fakes ROOT only
        root = root.parent / "agop_book"
    path = root.joinpath(*module.split(".")[1:])
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def imports(module: str) -> list[tuple[int, str, bool]]:
    """``(line, imported agop module, inside a function)`` for every import of ``module``."""
    tree = ast.parse(source(module).read_text())
    top = set(
        map(
            id,
            ast.walk(
                ast.Module(
                    body=[
                        n
                        for n in tree.body
                        if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                    ],
                    type_ignores=[],
                )
            ),
        )
    )
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the package
                package = (
                    module.rsplit(".", node.level)[0]
                    if not source(module).name == "__init__.py"
                    else module.rsplit(".", node.level - 1)[0]
                )
                base = f"{package}.{node.module}" if node.module else package
            else:
                base = node.module or ""
            # "from agop import data": the submodule agop.data (the same for agop_book)
            targets = (
                [f"{base}.{a.name}" for a in node.names]
                if base in ("agop", "agop_book")
                else [base]
            )
        else:
            continue
        out += [(node.lineno, t, id(node) not in top) for t in targets]
    return out


MODULES = modules()


def test_every_module_has_a_layer_and_imports():
    missing = [m for m in MODULES if layer(m) is None]
    assert not missing, f"add these modules to LAYERS: {missing}"
    for m in MODULES:
        importlib.import_module(m)


@pytest.mark.parametrize("module", MODULES)
def test_no_module_imports_a_higher_layer(module):
    mine = layer(module)
    upward = [
        f"line {line}: {target} ({NAMES[layer(target)]})"
        for line, target, _ in imports(module)
        if target.startswith(("agop.", "agop_book"))
        and layer(target) is not None
        and layer(target) > mine
    ]
    assert not upward, f"{module} ({NAMES[mine]}) imports a higher layer: {upward}"


def _chapter(module: str) -> int | None:
    """The chapter number of a chapter module (``agop_book.ch04_edges`` -> 4), else None."""
    name = module.split(".")[1] if module.startswith("agop_book.") else ""
    return int(name[2:4]) if name[:2] == "ch" and name[2:4].isdigit() else None


@pytest.mark.parametrize("module", [m for m in MODULES if m.startswith("agop.")])
def test_the_library_imports_nothing_from_the_book(module):
    """``agop`` is the library: no import of ``agop_book`` anywhere in it, top level or inside a
    function (its docstrings' examples may use the book's small networks and tasks)."""
    book = [f"line {line}: {t}" for line, t, _ in imports(module) if t.split(".")[0] == "agop_book"]
    assert not book, f"{module} imports the book's package: {book}"


@pytest.mark.parametrize("module", [m for m in MODULES if m.startswith("agop.")])
def test_the_library_docstrings_do_not_name_the_book(module):
    """``agop``'s docstrings (their examples above all) run and read with ``agop`` alone: none
    names ``agop_book``, whose networks and tasks a library user does not have."""
    tree = ast.parse(source(module).read_text())
    named = [
        f"line {node.body[0].lineno}: {getattr(node, 'name', module)}"
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and "agop_book" in (ast.get_docstring(node, clean=False) or "")
    ]
    assert not named, f"docstrings of {module} name agop_book: {named}"


@pytest.mark.parametrize("module", [m for m in MODULES if _chapter(m) is not None])
def test_a_chapter_imports_only_earlier_chapters(module):
    later = [
        f"line {line}: {t}"
        for line, t, _ in imports(module)
        if _chapter(t) is not None and _chapter(t) >= _chapter(module)
    ]
    assert not later, f"{module} imports its own or a later chapter's module: {later}"


@pytest.mark.parametrize("module", MODULES)
def test_function_local_imports_are_only_the_listed_ones(module):
    local = [
        f"line {line}: {target}"
        for line, target, inside in imports(module)
        if inside and not any(target == k or target.startswith(k + ".") for k in LOCAL_IMPORTS)
    ]
    assert not local, (
        f"{module} imports inside functions: {local}; import at the top of the "
        "module, or list the dependency in LOCAL_IMPORTS with the reason"
    )


def test_the_checker_sees_an_upward_and_a_local_import(tmp_path, monkeypatch):
    """The AST reader itself: an engine module that imports the book's plots inside a function,
    and a chapter module that imports a later chapter's."""
    fake = tmp_path / "agop"
    (fake / "features.py").parent.mkdir()
    (fake / "features.py").write_text("import torch\n\ndef f():\n    from agop_book import plots\n")
    (tmp_path / "agop_book").mkdir()
    (tmp_path / "agop_book" / "ch03_x.py").write_text("from agop_book.ch05_y import z\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", fake)
    monkeypatch.setattr(sys.modules[__name__], "BOOK_ROOT", tmp_path / "agop_book")
    found = imports("agop.features")
    assert found == [(1, "torch", False), (4, "agop_book.plots", True)]
    assert layer("agop_book.plots") > layer("agop.features")
    assert imports("agop_book.ch03_x") == [(1, "agop_book.ch05_y", False)]
    assert layer("agop_book.ch05_y") == 3 and _chapter("agop_book.ch05_y") == 5


def test_import_and_first_kernel_call_stay_light():
    """``import agop`` loads no plotting, widget or scikit-learn module, and the first kernel
    call imports no symbolic algebra (``torch.broadcast_shapes`` pulls in sympy on first use,
    0.3-0.8 s, which the arc-cosine step avoids)."""
    import subprocess

    code = (
        "import sys, torch, agop\n"
        "heavy = ('matplotlib', 'ipywidgets', 'sklearn', 'sympy', 'torchvision')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
        "X = torch.rand(3, 1, 6, 6, dtype=torch.float64)\n"
        "agop.kernels.get_kernel('cntk', patch_size=3, depth=2)(X)\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["[]", "[]"], out.stdout + out.stderr


def test_import_agop_book_stays_light():
    """``import agop_book`` loads none of its chapter modules (each on first use), and no
    plotting, widget or scikit-learn module."""
    import subprocess

    code = (
        "import sys, agop_book\n"
        "heavy = ('matplotlib', 'ipywidgets', 'sklearn', 'torchvision')\n"
        "print(sorted(m for m in sys.modules if m.startswith('agop_book.') or m in heavy))\n"
        "agop_book.ch02_theorem\n"
        "print(sorted(m for m in sys.modules if m.startswith('agop_book.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    lines = out.stdout.split("\n")
    assert lines[0] == "[]", out.stdout + out.stderr
    assert "agop_book.ch02_theorem" in lines[1], out.stdout + out.stderr


def test_unknown_attribute():
    with pytest.raises(AttributeError, match="no_such_thing"):
        agop.no_such_thing  # noqa: B018


def test_every_public_name_resolves():
    for name in agop.__all__:
        assert getattr(agop, name) is not None, name


# --------------------------------------------------------------------------------------------
# Tests mirror the source tree (CONTRIBUTING.md, "Where a module's tests live")
# --------------------------------------------------------------------------------------------

TESTS = Path(__file__).resolve().parent
#: test files named after no module: contracts across modules, and the project as a whole
PROJECT_TESTS = {
    "test_book.py",  # the book's sources and build
    "test_chapter_cells.py",
    "test_docstrings.py",
    "test_execute.py",  # tools/execute.py
    "test_layers.py",
    "test_lint.py",
    "test_notebooks.py",
    "test_pointers.py",
    "test_project_files.py",
    "test_properties.py",  # Hypothesis over the validators and the kernels
    "test_widget_versions.py",  # the explorers with the installed ipywidgets
    "test_widget_views.py",
}
#: modules without a test file of their own yet, and where they run instead
NOT_YET: set[str] = set()


def units() -> list[str]:
    """Every public module and subpackage directly under ``agop`` and ``agop_book``."""
    return sorted(
        f"{package.__name__}.{info.name}"
        for package in (agop, agop_book)
        for info in pkgutil.iter_modules(package.__path__)
        if not info.name.startswith("_")
    )


def test_stem(unit: str) -> str:
    """A module X of agop -> X, a chapter chNN_name of agop_book -> chNN, any other X -> book_X."""
    package, name = unit.split(".")
    if package == "agop":
        return name
    return name[:4] if re.fullmatch(r"ch\d\d_\w+", name) else f"book_{name}"


test_stem.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def test_files(unit: str, folder: Path = TESTS) -> list[str]:
    stem = test_stem(unit)
    return sorted(
        p.name for p in folder.glob("test_*.py") if re.fullmatch(rf"test_{stem}(_\w+)?\.py", p.name)
    )


test_files.__test__ = False  # type: ignore[attr-defined]


def contributing_table() -> dict[str, list[str]]:
    text = (ROOT.parent / "CONTRIBUTING.md").read_text()
    rows = re.findall(r"^\| `((?:agop|agop_book)\.\w+)` \| (.*) \|$", text, flags=re.M)
    return {
        module: []
        if files.startswith("none yet")
        else sorted(re.findall(r"`tests/(test_\w+\.py)`", files))
        for module, files in rows
    }


@pytest.mark.parametrize("unit", units())
def test_every_module_has_its_test_file_listed_in_contributing(unit):
    table = contributing_table()
    assert unit in table, f"CONTRIBUTING.md's table of test files has no row for {unit}"
    found = test_files(unit)
    if unit in NOT_YET:
        assert not found, f"{unit} has {found}: list them and drop it from NOT_YET"
        assert table[unit] == [], f"{unit} is listed with {table[unit]} but has no test file"
        return
    assert found, f"{unit} has no tests/test_{test_stem(unit)}*.py"
    assert table[unit] == found, (
        f"CONTRIBUTING.md lists {table[unit]} for {unit}, tests/ has {found}"
    )


def test_every_test_file_is_a_modules_or_the_projects():
    owned = {name for unit in units() for name in test_files(unit)}
    stray = sorted(
        p.name
        for p in TESTS.glob("test_*.py")
        if p.name not in owned
        and p.name not in PROJECT_TESTS
        and not p.name.startswith("test_contracts_")
    )
    assert not stray, f"test files named after no module (see CONTRIBUTING.md): {stray}"
    assert set(contributing_table()) == set(units())


def test_the_naming_rule_finds_a_missing_or_stray_file(tmp_path):
    for name in (
        "test_rfm_fc.py",
        "test_ch07_convergence.py",
        "test_book_data_loaders.py",
        "test_lint.py",
    ):
        (tmp_path / name).write_text("")
    assert test_files("agop.rfm", tmp_path) == ["test_rfm_fc.py"]
    assert test_files("agop_book.ch07_other_accounts", tmp_path) == ["test_ch07_convergence.py"]
    assert test_files("agop_book.data", tmp_path) == ["test_book_data_loaders.py"]
    assert test_files("agop.linalg", tmp_path) == []  # deleted: the module test fails
    assert test_files("agop_book.nets", tmp_path) == []
