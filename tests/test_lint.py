"""The static checks: `make lint` and the pre-commit hooks run the same commands, and every
public function of the package is annotated (arguments and return), the part of the typing
that mypy's configuration does not enforce by itself."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def makefile_recipe(target: str) -> list[str]:
    """The commands of a Makefile target, with ``$(VENV)/bin/`` dropped."""
    lines = (ROOT / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{target}:"))
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip().replace("$(VENV)/bin/", ""))
    return recipe


def test_pre_commit_runs_the_commands_of_make_lint():
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    (repo,) = config["repos"]
    assert repo["repo"] == "local"  # no hook is downloaded
    hooks = repo["hooks"]
    assert all(h["language"] == "system" and h["pass_filenames"] is False for h in hooks)
    assert (
        [h["entry"] for h in hooks]
        == makefile_recipe("lint")
        == [
            "ruff check agop agop_book tests tools",
            "ruff format --check agop agop_book tests tools",
            "mypy agop agop_book",
        ]
    )
    for hook in hooks:
        re.compile(hook["files"])
        assert re.search(hook["files"], "agop/solve.py")
        assert re.search(hook["files"], "agop_book/ch04_edges.py")


def test_make_test_runs_lint_first():
    test_line = next(
        line for line in (ROOT / "Makefile").read_text().splitlines() if line.startswith("test:")
    )
    assert test_line.split(":", 1)[1].split()[0] == "lint"


@pytest.mark.skipif(
    shutil.which("pre-commit") is None
    and not (Path(sys.executable).parent / "pre-commit").exists(),
    reason="pre-commit is not installed",
)
def test_pre_commit_accepts_the_configuration():
    exe = shutil.which("pre-commit") or str(Path(sys.executable).parent / "pre-commit")
    done = subprocess.run(
        [exe, "validate-config", ".pre-commit-config.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def public_functions_missing_annotations(package: Path) -> list[str]:
    """``module:line name: what is missing`` for every public function or method (not under
    a private name, in a module or class without a leading underscore) with an argument or
    return left unannotated (``self`` and ``cls`` excepted)."""
    missing = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package.parent)
        if any(p.startswith("_") and p not in ("__init__.py", "__main__.py") for p in rel.parts):
            continue

        def visit(body, prefix, in_class, rel=rel):
            for node in body:
                if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                    visit(node.body, f"{prefix}{node.name}.", True)
                elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    if node.name.startswith("_") and node.name not in ("__init__", "__call__"):
                        continue
                    a = node.args
                    args = [
                        *a.posonlyargs,
                        *a.args,
                        *a.kwonlyargs,
                        *([a.vararg] if a.vararg else []),
                        *([a.kwarg] if a.kwarg else []),
                    ]
                    if in_class and args and args[0].arg in ("self", "cls"):
                        args = args[1:]
                    what = [x.arg for x in args if x.annotation is None]
                    what += ["return"] if node.returns is None else []
                    if what:
                        missing.append(f"{rel}:{node.lineno} {prefix}{node.name}: {what}")

        visit(ast.parse(path.read_text()).body, "", False)
    return missing


def test_every_public_function_is_annotated():
    assert public_functions_missing_annotations(ROOT / "agop") == []
    assert public_functions_missing_annotations(ROOT / "agop_book") == []


def test_the_annotation_check_finds_what_is_missing(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "mod.py").write_text(
        "def f(x, y: int) -> int: ...\n"
        "def g(x: int): ...\n"
        "def _private(x): ...\n"
        "class C:\n"
        "    def __init__(self, a: int): ...\n"
        "    def m(self, b: int, *args, **kw: int) -> None: ...\n"
    )
    (package / "_hidden.py").write_text("def h(x): ...\n")
    assert public_functions_missing_annotations(package) == [
        "pkg/mod.py:1 f: ['x']",
        "pkg/mod.py:2 g: ['return']",
        "pkg/mod.py:5 C.__init__: ['return']",
        "pkg/mod.py:6 C.m: ['args']",
    ]
