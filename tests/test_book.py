"""The book's structure: every chapter follows the skeleton, pairs are in sync, the toc is whole."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jupytext
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part["chapters"]]
    return files


def notebook_chapters() -> list[Path]:
    """Chapters that are MyST notebooks (jupytext front matter), not plain pages."""
    return [p for p in sorted(BOOK.glob("[0-9][0-9]_*.md")) if "jupytext:" in p.read_text()[:400]]


CHAPTERS = notebook_chapters()
IDS = [p.stem for p in CHAPTERS]


def test_toc_lists_the_whole_book():
    files = toc_files()
    for f in files:
        assert (ROOT / f"{f}.md").exists(), f"_toc.yml lists {f}, but {f}.md does not exist"
    on_disk = {f"book/{p.stem}" for p in BOOK.glob("[0-9][0-9]_*.md")}
    assert on_disk <= set(files), f"chapters missing from _toc.yml: {sorted(on_disk - set(files))}"
    # preface; 01-06; performance and API appendices
    stems = [f.split("/")[-1][:2] for f in files]
    assert stems == ["00", "01", "02", "03", "04", "05", "06", "90", "91", "92"]


def cells(chapter: Path) -> list[dict]:
    return jupytext.read(chapter)["cells"]


def code_cells(chapter: Path) -> list[dict]:
    return [c for c in cells(chapter) if c["cell_type"] == "code"]


@pytest.mark.parametrize("chapter", CHAPTERS, ids=IDS)
def test_chapter_follows_the_skeleton(chapter: Path):
    text = chapter.read_text()
    body = text.split("---", 2)[2]
    name = chapter.name
    assert re.search(r"^# \S", body, re.M), f"{name}: no '# Title'"
    assert "colab-badge.svg" in body, f"{name}: no Colab badge"
    learn = re.search(r"\*\*What you'll learn\.?\*\*", body)
    need = re.search(r"\*\*What you'll need\.?\*\*(.*?)\n\n", body, re.S)
    assert learn, f"{name}: no 'What you'll learn'"
    assert need, f"{name}: no 'What you'll need'"
    need_text = need.group(1).lower()
    for prof in ("quick", "paper"):
        assert prof in need_text, f"{name}: 'What you'll need' does not give the {prof} profile"
    assert re.search(r"\d+\s*(second|minute|hour)", need_text), (
        f"{name}: 'What you'll need' gives no running time")
    assert "## Summary" in body, f"{name}: no '## Summary'"
    assert "## Exercises" in body, f"{name}: no '## Exercises'"
    assert re.search(r":::+\{dropdown\} Solution", body), f"{name}: no hidden solution dropdown"

    code = code_cells(chapter)
    setup = code[0]
    assert "remove-cell" in setup["metadata"].get("tags", []), f"{name}: setup cell not hidden"
    assert "google.colab" in setup["source"] and "%pip install" in setup["source"], (
        f"{name}: the first code cell must install agop only inside Colab")
    assert not re.search(r"pip install[^\n]*\btorch", setup["source"]), (
        f"{name}: the setup cell must never (re)install torch")
    params = [c for c in code if "parameters" in c["metadata"].get("tags", [])]
    assert len(params) == 1, f"{name}: needs exactly one cell tagged 'parameters'"
    assert "PROFILE" in params[0]["source"] and "SEED" in params[0]["source"], (
        f"{name}: the parameters cell must set PROFILE and SEED")
    assert "environment_report(" in code[-1]["source"], (
        f"{name}: the last cell must print the footer (agop.environment_report)")


@pytest.mark.parametrize("chapter", CHAPTERS, ids=IDS)
def test_ipynb_pair_is_in_sync(chapter: Path):
    nb_path = chapter.with_suffix(".ipynb")
    fix = f"fix with: jupytext --update --to ipynb {chapter.relative_to(ROOT)}"
    assert nb_path.exists(), f"{nb_path.name} is missing; {fix}"
    expected = jupytext.read(chapter)
    actual = json.loads(nb_path.read_text())
    want = [(c["cell_type"], c["source"], c["metadata"].get("tags", [])) for c in expected["cells"]]
    got = [(c["cell_type"], "".join(c["source"]), c["metadata"].get("tags", []))
           for c in actual["cells"]]
    assert got == want, f"{nb_path.name} differs from {chapter.name}; {fix}"
    for c in actual["cells"]:
        if c["cell_type"] == "code":
            assert not c.get("outputs"), f"{nb_path.name} is committed with outputs; {fix}"


def test_colab_badges_and_install_lines_follow_config():
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "sync_colab.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_readme_commands_and_ci_agree():
    readme = (ROOT / "README.md").read_text()
    assert "make book" in readme and "make test" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^\s*make test\b", ci, re.M), ".ci/run must run the README's test command"


def test_repository_url_in_one_place():
    """The address appears in _config.yml once; chapters derive theirs from it."""
    config = (ROOT / "_config.yml").read_text()
    url = yaml.safe_load(config)["repository"]["url"]
    assert config.count(url) == 1
    for path in [ROOT / "pyproject.toml", ROOT / "Makefile"]:
        assert url not in path.read_text(), f"{path.name} repeats the repository URL"


def test_chapter_03_pretrained_branch_runs(tmp_path, monkeypatch):
    """The chapter's pretrained path, which CI (offline) never takes otherwise: a VGG11
    checkpoint is put in a temporary torch hub cache -- torchvision's initialisation, saved
    under the file name torchvision looks for -- and the chapter runs with MODELS = ["vgg11"].
    Only the code path is checked; these weights are not ImageNet's and no number is kept."""
    import nbformat
    import torch
    from nbclient import NotebookClient

    from agop import pretrained

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("AGOP_PROFILE", "quick")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel draws inline, as in the book
    path = pretrained.weights_file("vgg11")
    assert str(path).startswith(str(tmp_path))
    path.parent.mkdir(parents=True)
    torch.save(pretrained.load_model("vgg11", pretrained=False, seed=1).state_dict(), path)

    nb = jupytext.read(BOOK / "03_pretrained.md")
    where = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    nb.cells.insert(where + 1, nbformat.v4.new_code_cell('MODELS = ["vgg11"]'))
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(BOOK)}}).execute()
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.get("outputs", []))
    assert "pretrained models loaded: ['vgg11']" in text
    figures = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
                  for o in c.get("outputs", []))
    assert figures >= 5
