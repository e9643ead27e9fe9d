"""The files a published project carries: citation, changelog, contributing guide, type marker,
and the workflow that publishes the book, all consistent with the one address in _config.yml."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def repository_url() -> str:
    return yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"].rstrip("/")


def pages_url(url: str) -> str:
    """GitHub Pages serves github.com/OWNER/NAME at OWNER.github.io/NAME/."""
    owner, name = url.split("github.com/", 1)[1].split("/")[:2]
    return f"https://{owner}.github.io/{name}/"


def check_schema(path: Path, schema: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)],
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize(
    "path, schema",
    [
        (".github/workflows/book.yml", "vendor.github-workflows"),
        ("CITATION.cff", "vendor.citation-file-format"),
    ],
)
def test_file_follows_its_schema(path, schema):
    result = check_schema(ROOT / path, schema)
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_rejects_a_broken_workflow(tmp_path):
    """Negative control: the schema check does fail on a workflow without jobs."""
    broken = tmp_path / "broken.yml"
    broken.write_text("name: book\non:\n  push:\n    branches: [main]\njbos: {}\n")
    assert check_schema(broken, "vendor.github-workflows").returncode != 0


def test_citation_and_readme_follow_the_repository_address():
    url = repository_url()
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["repository-code"] == url
    assert citation["url"] == pages_url(url)
    assert citation["version"] == __import__("agop").__version__
    assert "2309.00570" in (ROOT / "CITATION.cff").read_text(), "cite the paper reproduced"
    assert pages_url(url) in (ROOT / "README.md").read_text(), "README must link the book"


def test_workflow_builds_the_book_and_deploys_pages():
    workflow = yaml.safe_load((ROOT / ".github/workflows/book.yml").read_text())
    steps = [s.get("run", "") + s.get("uses", "") for s in workflow["jobs"]["build"]["steps"]]
    assert any("make book" in s for s in steps)
    assert any(s.startswith("actions/upload-pages-artifact") for s in steps)
    assert workflow["jobs"]["deploy"]["steps"][0]["uses"].startswith("actions/deploy-pages")


def test_package_ships_its_type_hints():
    assert (ROOT / "agop" / "py.typed").exists()
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert "py.typed" in pyproject, "py.typed must be package data"


def test_changelog_and_contributing_exist():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in changelog
    contributing = (ROOT / "CONTRIBUTING.md").read_text()
    for topic in ("make notebooks", "Add a kernel", "Add a dataset", "AGOP_PROFILE"):
        assert topic in contributing


def test_every_bibliography_entry_has_author_title_and_year():
    """A citation reads "(Author et al., year)" in the notebooks: an entry without a year
    would print 'n.d.' (tools/make_notebooks.py's cite_text)."""
    sys.path.insert(0, str(ROOT / "tools"))
    from make_notebooks import read_bib

    bib = read_bib(ROOT / "references.bib")
    assert len(bib) >= 10
    for key, fields in bib.items():
        missing = [f for f in ("author", "title", "year") if not fields.get(f)]
        assert not missing, f"references.bib: {key} has no {missing}"
        assert re.fullmatch(r"(19|20)\d\d", fields["year"]), (key, fields["year"])


def test_the_colab_like_wheel_is_built_from_every_package():
    """tools/colab_like.sh builds agop's wheel from a copy of the tree: the copy must hold every
    package the distribution ships (pyproject's ``packages.find``), or the Colab-like run tests
    a wheel without the book's package."""
    import fnmatch

    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = [
        p.name
        for p in ROOT.iterdir()
        if (p / "__init__.py").exists() and any(fnmatch.fnmatch(p.name, pat) for pat in patterns)
    ]
    copy = next(
        line
        for line in (ROOT / "tools" / "colab_like.sh").read_text().splitlines()
        if line.startswith("cp -r ")
    )
    assert {"agop", "agop_book"} <= set(packages), packages
    missing = [p for p in packages if f'"$ROOT/{p}"' not in copy.split()]
    assert not missing, f"tools/colab_like.sh does not copy {missing} into the wheel's source"


def test_every_mutation_module_names_files_that_exist():
    """``make mutation`` mutates each module of tools/mutation.py against its test files: a
    renamed module or test file would make mutmut mutate nothing, or count every mutant as
    reached by no test."""
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import mutation
    finally:
        sys.path.remove(str(ROOT / "tools"))
    missing = [
        path
        for source, tests in mutation.MODULES.values()
        for path in (source, *tests)
        if not (ROOT / path).is_file()
    ]
    assert not missing, f"tools/mutation.py names files that do not exist: {missing}"
    modules = {source for source, _ in mutation.MODULES.values()}
    assert {"agop/rfm.py", "agop/deep_rfm.py", "agop/solve.py"} <= modules


def test_mutation_only_counts_the_mutants_it_names(tmp_path, capsys):
    """``--only PATTERN`` scores the mutants whose names match (the others were not run, so
    mutmut records no exit code for them and they would count as survivors)."""
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import mutation
    finally:
        sys.path.remove(str(ROOT / "tools"))
    source = mutation.MODULES["solve"][0]
    meta = tmp_path / "solve" / "mutants" / (source + ".meta")
    meta.parent.mkdir(parents=True)
    codes = {"agop.solve.x_ridge__mutmut_1": 1, "agop.solve.x_ridge__mutmut_2": 0}
    codes |= {"agop.solve.x_select_ridge__mutmut_1": None, "agop.solve.x_other__mutmut_1": 0}
    meta.write_text(json.dumps({"exit_code_by_key": codes}))
    (tmp_path / "solve" / "mutmut-run.log").write_text("")
    only = mutation.run_module("solve", tmp_path, False, True, ["*x_ridge__*"])
    assert (only["killed"], only["mutants"]) == (1, 2)
    assert only["survivors"] == ["agop.solve.x_ridge__mutmut_2"]
    every = mutation.run_module("solve", tmp_path, False, True)
    assert (every["killed"], every["mutants"]) == (1, 4)


def test_every_pytest_run_of_make_test_has_a_per_test_timeout():
    """A hanging test fails by name after ``TEST_TIMEOUT`` seconds (pytest-timeout, in the test
    extra) instead of holding CI until its own limit: every ``pytest`` line of the targets
    ``make test`` runs passes ``--timeout`` (nbval's runs bound each cell instead)."""
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^TEST_TIMEOUT \?= \d+$", makefile, re.M)
    assert "pytest-timeout" in (ROOT / "pyproject.toml").read_text()
    targets = re.findall(r"^test: (.*)$", makefile, re.M)[0].split()
    for target in targets:
        body = re.search(rf"^{target}:.*\n((?:\t.*\n)+)", makefile, re.M)
        assert body, target
        recipe = body.group(1).replace("\\\n", " ")
        for line in recipe.splitlines():
            if "-m pytest" in line:
                assert "--timeout=$(TEST_TIMEOUT)" in line or "--nbval-cell-timeout" in line, (
                    target,
                    line,
                )
            if "colab_like.sh" in line:
                assert "--nbval-cell-timeout=" in line
