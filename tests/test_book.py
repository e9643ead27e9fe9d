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
sys.path.insert(0, str(ROOT / "tools"))
from solutions import (  # noqa: E402  (tests/solutions.py)
    answer_problem,
    exercises,
    probes,
    solutions,
    title_problem,
    titles,
    words,
)


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
    # preface first, then the chapters and appendices in the order of their numbers
    stems = [f.split("/")[-1][:2] for f in files]
    assert stems[0] == "00" and stems == sorted(stems), stems
    assert {"01", "02", "03", "04", "05", "06", "90", "91", "92", "99"} <= set(stems), stems


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
        f"{name}: 'What you'll need' gives no running time"
    )
    assert "## Summary" in body, f"{name}: no '## Summary'"
    assert "## Exercises" in body, f"{name}: no '## Exercises'"
    labels = exercises(body)
    assert labels, f"{name}: no {{exercise}} with a :label:"
    sols = solutions(body)
    assert [s[0] for s in sols] == labels, (
        f"{name}: each exercise needs one {{solution}} (or solution-start) naming its label, "
        f"in order: exercises {labels}, solutions {[s[0] for s in sols]}"
    )
    for label, options, text in sols:
        assert ":class: dropdown" in options, f"{name}: solution to {label} is not hidden"
        assert probes(text), f"{name}: solution to {label} has no plain phrase to test for"
    assert "{dropdown} Solution" not in body, f"{name}: a solution is still a dropdown"

    code = code_cells(chapter)
    setup = code[0]
    assert "remove-cell" in setup["metadata"].get("tags", []), f"{name}: setup cell not hidden"
    assert "google.colab" in setup["source"] and "%pip install" in setup["source"], (
        f"{name}: the first code cell must install agop only inside Colab"
    )
    assert not re.search(r"pip install[^\n]*\btorch", setup["source"]), (
        f"{name}: the setup cell must never (re)install torch"
    )
    params = [c for c in code if "parameters" in c["metadata"].get("tags", [])]
    assert len(params) == 1, f"{name}: needs exactly one cell tagged 'parameters'"
    assert "PROFILE" in params[0]["source"] and "SEED" in params[0]["source"], (
        f"{name}: the parameters cell must set PROFILE and SEED"
    )
    assert re.search(
        r"announce\(PROFILE, quick=\"[^\"]*\d[^\"]*\",\s*paper=\"[^\"]+\"", params[0]["source"]
    ), (
        f"{name}: the parameters cell must say which profile runs and how long it takes "
        f"(agop_book.notebook.announce(PROFILE, quick=..., paper=...))"
    )
    assert "environment_report(" in code[-1]["source"], (
        f"{name}: the last cell must print the footer (agop_book.notebook.environment_report)"
    )


@pytest.mark.parametrize("chapter", CHAPTERS, ids=IDS)
def test_ipynb_pair_is_in_sync(chapter: Path):
    """The committed .ipynb is exactly what `make notebooks` writes from the .md, and its code
    cells are the .md's code cells (read independently, through jupytext), without outputs."""
    from make_notebooks import dumps, notebook

    nb_path = chapter.with_suffix(".ipynb")
    fix = "fix with: make notebooks"
    assert nb_path.exists(), f"{nb_path.name} is missing; {fix}"
    assert nb_path.read_text() == dumps(notebook(chapter)), f"{nb_path.name} has drifted; {fix}"
    actual = json.loads(nb_path.read_text())
    want = [(c["source"], c["metadata"].get("tags", [])) for c in code_cells(chapter)]
    got = [
        (re.sub(r"\A#@title [^\n]*\n", "", "".join(c["source"])), c["metadata"].get("tags", []))
        for c in actual["cells"]
        if c["cell_type"] == "code"
    ]
    assert got == want, f"{nb_path.name}: code cells differ from {chapter.name}; {fix}"
    for c in actual["cells"]:
        if c["cell_type"] == "code":
            assert not c.get("outputs"), f"{nb_path.name} is committed with outputs; {fix}"
    assert "jupytext" not in actual["metadata"], "a paired .ipynb would let Jupyter rewrite the .md"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=IDS)
def test_student_notebook_is_in_sync_and_has_no_solution(chapter: Path):
    """student/book/NN.ipynb is what `make notebooks` writes; no phrase of any solution (prose
    or code) is in it, while every one is in the instructor's notebook (the control); its Colab
    badge opens the student copy."""
    from make_notebooks import STUDENT, dumps, notebook

    path, fix = STUDENT / chapter.with_suffix(".ipynb").name, "fix with: make notebooks"
    assert path.exists(), f"{path} is missing; {fix}"
    assert path.read_text() == dumps(notebook(chapter, solutions=False)), f"{path} drifted; {fix}"
    student = words("".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"]))
    nb = json.loads(chapter.with_suffix(".ipynb").read_text())
    teacher = words("".join("".join(c["source"]) for c in nb["cells"]))
    for label, _, text in solutions(chapter.read_text()):
        for phrase in probes(text):
            assert phrase in teacher, f"control: {phrase!r} ({label}) not in {chapter.name}"
            assert phrase not in student, f"{path.name}: solution to {label}: {phrase!r}"
    rel = path.relative_to(ROOT).as_posix()
    if "colab-badge" in student:
        assert f"/{rel})" in student, f"{path.name}: the Colab badge does not open {rel}"
    assert "/book/" + chapter.with_suffix(".ipynb").name + ")" in teacher


@pytest.mark.parametrize("chapter", CHAPTERS, ids=IDS)
def test_ipynb_markdown_has_no_myst_markup(chapter: Path):
    from make_notebooks import myst_markup

    nb = json.loads(chapter.with_suffix(".ipynb").read_text())
    for i, c in enumerate(nb["cells"]):
        if c["cell_type"] == "markdown":
            left = myst_markup("".join(c["source"]))
            assert not left, f"{chapter.stem}.ipynb cell {i}: MyST-only markup left: {left}"


def test_colab_badges_and_install_lines_follow_config():
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "make_notebooks.py"), "--check"],
        capture_output=True,
        text=True,
    )
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
    from execute import execute_notebook
    from fake_files import write_hub_checkpoint

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("AGOP_PROFILE", "quick")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel draws inline, as in the book
    assert str(write_hub_checkpoint("vgg11")).startswith(str(tmp_path))

    nb = jupytext.read(BOOK / "03_pretrained.md")
    where = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    nb.cells.insert(where + 1, nbformat.v4.new_code_cell('MODELS = ["vgg11"]'))
    execute_notebook(nb, cwd=str(BOOK), timeout=600, name="03_pretrained (vgg11 branch)")
    text = "".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    assert "pretrained models loaded: ['vgg11']" in text
    # figures shown, or glued for a numbered {glue:figure} (myst-nb stores those under a
    # prefixed mime type, "application/papermill.record/image/png")
    figures = sum(
        any(k.endswith("image/png") for k in o.get("data", {}))
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
    )
    assert figures >= 5


# --- the notebooks read as the book: its numbers, its values, its bookkeeping folded -------------

REFERENCE = json.loads((BOOK / "_reference.json").read_text())["pages"]
EDITIONS = {"book": BOOK, "student": ROOT / "student" / "book"}


def markdown(path: Path) -> str:
    nb = json.loads(path.read_text())
    return "\n\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")


def test_reference_numbers_are_the_chapters_file_numbers():
    """book/_reference.json (written by the book build) numbers chapter NN as NN, the appendices
    A, B, C... in file order, the preface not at all; every figure, equation and exercise of a
    page is numbered 1, 2, ... after its chapter's number; and it knows every label the sources
    define (a stale file would put wrong numbers in the notebooks)."""
    pages = sorted(p.stem for p in BOOK.glob("[0-9][0-9]_*.md"))
    assert sorted(REFERENCE) == pages, "book/_reference.json is stale: build the book"
    appendices = iter("ABCDEFGH")
    for stem in pages:
        page, n = REFERENCE[stem], int(stem[:2])
        want = None if n == 0 else str(n) if n < 90 else next(appendices)
        assert page["chapter"] == want, (stem, page["chapter"], want)
        text = (BOOK / f"{stem}.md").read_text()
        figures = re.findall(
            r"^[`:]{3,}\{(?:glue:)?figure\}[^\n]*\n:name: *['\"]?([\w-]+)", text, re.M
        )
        equations = re.findall(r"\$\$ *\(([\w-]+)\)\s*$", text, re.M)
        for kind, labels in (("figures", figures), ("equations", equations)):
            assert sorted(page[kind]) == sorted(labels), f"{stem} {kind}: rebuild the book"
            prefix = f"{want}." if want else ""
            numbers = sorted(page[kind].values(), key=lambda s: int(s.rsplit(".", 1)[-1]))
            assert numbers == [f"{prefix}{k}" for k in range(1, len(labels) + 1)], (stem, kind)
        assert len(page["exercises"]) == len(exercises(text)), stem


@pytest.mark.parametrize("edition", EDITIONS)
@pytest.mark.parametrize("chapter", CHAPTERS, ids=IDS)
def test_notebook_numbers_are_the_built_books(chapter: Path, edition: str):
    """Every figure caption, equation tag, figure and equation reference and exercise in a
    notebook's text carries the number the built book gave it (book/_reference.json)."""
    text, source = markdown(EDITIONS[edition] / f"{chapter.stem}.ipynb"), chapter.read_text()
    figures = {k: n for page in REFERENCE.values() for k, n in page["figures"].items()}
    equations = {k: n for page in REFERENCE.values() for k, n in page["equations"].items()}
    shown = re.findall(r"^[`:]{3,}\{glue:figure\}[^\n]*\n:name: *['\"]?([\w-]+)", source, re.M)
    captions = re.findall(r"^\*Figure ([\w.]+)\. ", text, re.M)
    assert captions == [figures[k] for k in shown], chapter.stem
    tags = re.findall(r"\\tag\{([\w.]+)\}", text)
    assert tags == [equations[k] for k in re.findall(r"\$\$ *\(([\w-]+)\)\s*$", source, re.M)]
    for label in re.findall(r"\{numref\}`([\w-]+)`", source):
        assert f"Figure {figures[label]}" in text, (chapter.stem, label)
    for label in re.findall(r"\{eq\}`([\w-]+)`", source):
        assert f"({equations[label]})" in text, (chapter.stem, label)
    ours = set(re.findall(r"Figure ([0-9A-Z]+\.\d+)", text))  # not the paper's "Figure 3B"
    assert ours <= set(figures.values()), (chapter.stem, ours - set(figures.values()))
    chapter_no = REFERENCE[chapter.stem]["chapter"]
    prefix = f"{chapter_no}." if chapter_no else ""
    found = re.findall(r"\*\*Exercise ([\w.]+)\.\*\*", text)
    assert found == [f"{prefix}{k}" for k in range(1, len(exercises(source)) + 1)]
    assert sorted(found) == sorted(REFERENCE[chapter.stem]["exercises"].values())


@pytest.mark.parametrize("edition", EDITIONS)
@pytest.mark.parametrize("chapter", CHAPTERS, ids=IDS)
def test_glued_values_not_names_in_the_notebook(chapter: Path, edition: str):
    """A notebook's text shows each glued number as the book does (its reference value, through
    myst-nb's own formatting), never its name in code style."""
    variables = pytest.importorskip("myst_nb.core.variables")
    text = markdown(EDITIONS[edition] / f"{chapter.stem}.ipynb")
    glue = REFERENCE[chapter.stem]["glue"]
    roles = re.findall(r"\{glue:text\}`([^`]+)`", chapter.read_text())
    assert roles, chapter.stem
    for role in roles:
        name, _, fmt = role.partition(":")
        assert f"`{name}`" not in text, f"{chapter.stem}: placeholder `{name}` left"
        value = variables.format_plain_text(glue[name], fmt or "s")
        assert value in text or edition == "student", f"{chapter.stem}: {name} = {value} missing"
    assert "reference run" in text and "2 CPU cores" in text


@pytest.mark.parametrize("chapter", CHAPTERS, ids=IDS)
def test_bookkeeping_cells_are_collapsed_in_colab(chapter: Path):
    """The cells the book hides (remove-cell, the install cell among them) and the cells that
    only glue are Colab forms: ``cellView: form`` and a ``#@title`` first line; none else."""
    import ast

    nb = json.loads(chapter.with_suffix(".ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    for source, nb_cell in zip(code_cells(chapter), code, strict=True):
        hidden = "remove-cell" in source["metadata"].get("tags", [])
        try:
            body = ast.parse(source["source"]).body
        except SyntaxError:
            body = []
        glue_only = bool(body) and all(
            isinstance(s, ast.Expr) and getattr(getattr(s.value, "func", None), "id", "") == "glue"
            for s in body
        )
        form = nb_cell["metadata"].get("cellView") == "form"
        title = re.match(r"#@title (.+)\n", "".join(nb_cell["source"]))
        assert form == bool(title) == (hidden or glue_only), (chapter.stem, source["source"][:60])
        if "google.colab" in source["source"]:
            assert title and title.group(1) == "Install agop (Colab only)"
        elif title:
            assert title.group(1).startswith("Bookkeeping: "), title.group(1)


@pytest.mark.parametrize("edition", EDITIONS)
@pytest.mark.parametrize("chapter", CHAPTERS, ids=IDS)
def test_notebook_links_work_in_colab(chapter: Path, edition: str):
    """Colab opens a notebook alone: every link in its text is absolute (another notebook in
    Colab, in the student edition the student copy; a page without a notebook on the book's
    site), never a relative ``NN_name.md`` or ``.ipynb``."""
    text = markdown(EDITIONS[edition] / f"{chapter.stem}.ipynb")
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    relative = [u for u in links if not re.match(r"https?://|#", u)]
    assert not relative, f"{chapter.stem}: links Colab cannot follow: {relative}"
    folder = "student/book" if edition == "student" else "book"
    for url in (u for u in links if "colab.research.google.com/github/" in u):
        assert re.search(rf"/blob/[^/]+/{folder}/\d\d_\w+\.ipynb$", url), url
    if "92_kernels" in chapter.read_text():
        assert any(u.startswith("https://") and "/book/92_kernels.html" in u for u in links)


# --- exercises say how hard and how long, and their solutions answer -----------------------------

PAGES = sorted(BOOK.glob("[0-9][0-9]_*.md"))  # every page, chapters and appendices alike

# Chapters whose exercises do not comply yet (no "★★ Title (20 min)", or a solution that is a
# procedure): their authors are fixing them on other branches. The integrator removes each name
# as its chapter lands, and empties the set; a chapter listed here that complies fails the test,
# so the set cannot go stale.
PENDING: set[str] = set()


def exercise_problems(text: str) -> list[str]:
    """Every exercise whose title lacks one to three stars or a time, and every solution that
    gives no answer."""
    problems = [
        f"exercise {label}: {why}"
        for label, title in titles(text)
        if (why := title_problem(title)) is not None
    ]
    problems += [
        f"solution to {label}: {why}"
        for label, _, body in solutions(text)
        if (why := answer_problem(body)) is not None
    ]
    return problems


def test_pending_names_pages():
    assert PENDING <= {p.stem for p in PAGES}, PENDING - {p.stem for p in PAGES}


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_exercises_state_difficulty_and_time_and_solutions_answer(page: Path):
    """``:::{exercise} ★★ Title (20 min)``: one to three stars, a title, the time in minutes;
    each solution holds the answer (a number, mathematics, a glued value or a computation), not
    a procedure."""
    problems = exercise_problems(page.read_text())
    if page.stem in PENDING:
        assert problems, f"{page.stem} complies now: remove it from PENDING in {__file__}"
        pytest.xfail(f"{page.stem} is PENDING: {len(problems)} exercise problems left")
    assert not problems, f"{page.name}: " + "; ".join(problems)


@pytest.mark.parametrize(
    ("title", "ok"),
    [
        ("★★ Ridge by hand (20 min)", True),
        ("★ A (5 min)", True),
        ("★★★ Three stars (90 min)", True),
        ("", False),
        ("Ridge by hand (20 min)", False),
        ("★★★★ Four stars (20 min)", False),
        ("★★ No time", False),
        ("★★ Hours (1 h)", False),
        ("★★ (20 min)", False),
    ],
)
def test_title_rule(title: str, ok: bool):
    assert (title_problem(title) is None) == ok


@pytest.mark.parametrize(
    ("body", "ok"),
    [
        ("The ratio is $P|v|^2$.", True),
        ("It is 676.", True),
        ("Accuracy {glue:text}`acc:.2f`.", True),
        ("```{code-cell} ipython3\nrun()\n```\nChange the seed.", True),
        ("Change the pool to max and compare the 2 bars.", False),  # a number, no answer
        ("The bars get sharper.", False),
    ],
)
def test_answer_rule(body: str, ok: bool):
    assert (answer_problem(body) is None) == ok
