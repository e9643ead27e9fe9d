"""Chapters are prose with short calls (the d2l / QuantEcon way), measured on every chapter source.

* The median code cell of a chapter has at most ``MEDIAN`` lines.
* No code cell has more than ``LONGEST`` lines, unless it is a *figure's call*: a cell that
  glues a figure (``glue("fig-...", fig, display=False)``) which the chapter shows in a
  numbered ``{glue:figure}`` directive; or the one cell tagged ``parameters``, the list of
  settings a reader changes, which ``make test-paper`` shrinks by re-assigning its names right
  after it (so every setting must stay in it); or a cell tagged ``from-scratch``, the method a
  chapter teaches written in plain torch (up to ``FROM_SCRATCH_LONGEST`` lines, and left out of
  the median). Nothing else exempts a cell.
* Glue bookkeeping sits in ``remove-cell`` cells: a cell the reader sees glues only figures.
* Every seed offset is named: no ``SEED + 10_000``, ``seed + 1`` or the like in a chapter; an
  offset is a named constant (``agop.runtime``, ``agop_book.ch05_deep_convrfm.TEST_SEED_OFFSET``, or the
  chapter's parameters cell).
"""

from __future__ import annotations

import ast
import re
import statistics
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
MEDIAN, LONGEST = 6, 15
FROM_SCRATCH_LONGEST = 35  # "about 30 lines", with room for the docstrings

CHAPTERS = [p for p in sorted(BOOK.glob("[0-9][0-9]_*.md")) if "jupytext:" in p.read_text()[:400]]
IDS = [p.stem for p in CHAPTERS]

_FIG_GLUE = re.compile(r"""\bglue\(\s*f?["'](fig-[\w{}\[\]. +-]*)["']""")
_ANY_GLUE = re.compile(r"^\s*glue\(", re.M)
_SEED_OFFSET = re.compile(r"\b(?:SEED|seed|seeds?\[\w+\])\s*[-+]\s*\d")
_GLUE_FIGURE = re.compile(r"^```\{glue:figure\}\s*(\S+)", re.M)


def code_cells(chapter: Path) -> list[dict]:
    return [c for c in jupytext.read(chapter)["cells"] if c["cell_type"] == "code"]


def lines(cell: dict) -> int:
    return len(cell["source"].strip().splitlines())


def hidden(cell: dict) -> bool:
    return "remove-cell" in cell["metadata"].get("tags", [])


def shown_figures(text: str) -> list[str]:
    """Names of the glued figures the chapter shows as numbered figures (an f-string name in
    the code, ``fig-x-{i}``, matches ``fig-x-0``, ``fig-x-1``...)."""
    return _GLUE_FIGURE.findall(text)


def is_figure_call(cell: dict, figures: list[str]) -> bool:
    for name in _FIG_GLUE.findall(cell["source"]):
        pattern = re.sub(r"\\\{[^}]*\\\}", r"[\\w.-]+", re.escape(name))
        if any(re.fullmatch(pattern, f) for f in figures):
            return True
    return False


def from_scratch(cell: dict) -> bool:
    return "from-scratch" in cell["metadata"].get("tags", [])


def cell_report(chapter: Path) -> dict:
    cells = code_cells(chapter)
    figures = shown_figures(chapter.read_text())
    sizes = [lines(c) for c in cells]
    return {
        "median": statistics.median(
            [n for n, c in zip(sizes, cells, strict=True) if not from_scratch(c)] or [0]
        ),
        "too_long": [
            (i, n, c["source"].splitlines()[0])
            for i, (n, c) in enumerate(zip(sizes, cells, strict=True))
            if n > (FROM_SCRATCH_LONGEST if from_scratch(c) else LONGEST)
            and not is_figure_call(c, figures)
            and "parameters" not in c["metadata"].get("tags", [])
        ],
        "visible_glue": [
            (i, c["source"].splitlines()[0])
            for i, c in enumerate(cells)
            if not hidden(c)
            and any(
                not _FIG_GLUE.match(line.strip())
                for line in c["source"].splitlines()
                if _ANY_GLUE.match(line)
            )
        ],
        "seed_offsets": [m.group(0) for c in cells for m in _SEED_OFFSET.finditer(c["source"])],
    }


@pytest.mark.parametrize("chapter", CHAPTERS, ids=IDS)
def test_median_code_cell_is_short(chapter: Path):
    median = cell_report(chapter)["median"]
    assert median <= MEDIAN, f"{chapter.name}: median code cell {median} lines > {MEDIAN}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=IDS)
def test_no_long_cell_but_a_figures_call(chapter: Path):
    too_long = cell_report(chapter)["too_long"]
    assert not too_long, (
        f"{chapter.name}: cells over {LONGEST} lines that draw no numbered "
        f"figure (split them, with prose between): {too_long}"
    )


@pytest.mark.parametrize("chapter", CHAPTERS, ids=IDS)
def test_glue_bookkeeping_is_hidden(chapter: Path):
    visible = cell_report(chapter)["visible_glue"]
    assert not visible, (
        f"{chapter.name}: cells a reader sees glue numbers; move the glue "
        f"calls into a cell tagged remove-cell: {visible}"
    )


@pytest.mark.parametrize("chapter", CHAPTERS, ids=IDS)
def test_seed_offsets_are_named(chapter: Path):
    offsets = cell_report(chapter)["seed_offsets"]
    assert not offsets, f"{chapter.name}: unnamed seed offsets {offsets}; name the constant"


def test_the_rules_can_fail(tmp_path):
    """A chapter that breaks each rule is caught, and a figure's call is exempt."""
    long_cell = "\n".join(f"x{i} = {i}" for i in range(20))
    figure = long_cell + '\nglue("fig-demo-{i}", fig, display=False)'
    text = (
        CHAPTERS[0].read_text().split("```{code-cell}")[0]
        + f"```{{code-cell}} ipython3\n{long_cell}\n```\n\n"
        + f"```{{code-cell}} ipython3\n{figure}\n```\n\n"
        + f"```{{code-cell}} ipython3\n:tags: [parameters]\n\n{long_cell}\n```\n\n"
        + "```{glue:figure} fig-demo-0\n:name: fig-demo-0\n\nA caption.\n```\n\n"
        + '```{code-cell} ipython3\nglue("n", 3, display=False)\nX = f(SEED + 10_000)\n```\n'
        + f"```{{code-cell}} ipython3\n:tags: [from-scratch]\n\n{long_cell}\n```\n\n"
        + f"```{{code-cell}} ipython3\n:tags: [from-scratch]\n\n{long_cell}\n{long_cell}\n```\n"
    )
    path = tmp_path / "07_demo.md"
    path.write_text(text)
    report = cell_report(path)
    assert report["median"] == 20
    # the figure's call, the parameters cell and a from-scratch cell of 20 lines are exempt;
    # a from-scratch cell of 40 is not
    assert [n for _, n, _ in report["too_long"]] == [20, 40]
    assert len(report["visible_glue"]) == 1
    assert report["seed_offsets"] == ["SEED + 1"]


@pytest.mark.parametrize("chapter", CHAPTERS, ids=IDS)
def test_every_result_figure_is_numbered_and_referenced(chapter: Path):
    """A cell that draws (``plot_``, ``plt.``, ``subplots``) glues its figure; every glued figure
    is shown by a numbered ``{glue:figure}``; and the prose refers to each by ``{numref}``."""
    text = chapter.read_text()
    figures = shown_figures(text)
    unglued = [
        c["source"].splitlines()[0]
        for c in code_cells(chapter)
        if re.search(r"\bplot_\w+\(|\bplt\.|subplots\(", c["source"])
        and not _FIG_GLUE.search(c["source"])
    ]
    assert not unglued, f"{chapter.name}: cells draw a figure they do not glue: {unglued}"
    unshown = [
        c["source"].splitlines()[0]
        for c in code_cells(chapter)
        if _FIG_GLUE.search(c["source"]) and not is_figure_call(c, figures)
    ]
    assert not unshown, f"{chapter.name}: glued figures no {{glue:figure}} shows: {unshown}"
    cited = set(re.findall(r"\{numref\}`([^`]+)`", text))
    assert not [f for f in figures if f not in cited], (
        f"{chapter.name}: figures the prose never refers to by {{numref}}: "
        f"{[f for f in figures if f not in cited]}"
    )


_MAGIC = re.compile(r"^([ \t]*)[%!].*$", re.M)
_PROSE_GLUE = re.compile(r"\{glue(?::\w+)?\}`([^`:]+)|^[`:]{3,}\{glue:figure\}\s*(\S+)", re.M)


def glue_names(chapter: Path) -> tuple[set[str], list[str]]:
    """The names a chapter's code writes out (string literals, ``dict(name=...)`` keywords), and
    the first arguments of its ``glue(...)`` calls that are f-strings (as source text)."""
    literals, fstrings = set(), []
    for cell in code_cells(chapter):
        tree = ast.parse(_MAGIC.sub(r"\1pass", cell["source"]))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                literals.add(node.value)
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "dict":
                literals.update(k.arg for k in node.keywords if k.arg)  # dict(name=value)
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "glue"
                and node.args
                and isinstance(node.args[0], ast.JoinedStr)
            ):
                fstrings.append(ast.unparse(node.args[0]))
    return literals, fstrings


@pytest.mark.parametrize("chapter", CHAPTERS, ids=IDS)
def test_glue_names_are_literal_strings(chapter: Path):
    """A reader who meets a glued number (a value in the notebook's text, a ``name = value`` line
    in a cell's output) finds where it is computed by searching the code for its name: no glue
    name is built by an f-string, and every name the prose shows is a literal in the code."""
    literals, fstrings = glue_names(chapter)
    assert not fstrings, f"{chapter.name}: glue names built by f-strings: {fstrings}"
    used = {a or b for a, b in _PROSE_GLUE.findall(chapter.read_text())}
    missing = sorted(used - literals)
    assert not missing, f"{chapter.name}: glued names not written out in the code: {missing}"


def test_an_f_string_glue_name_is_caught(tmp_path):
    path = tmp_path / "07_demo.md"
    path.write_text(
        CHAPTERS[0].read_text().split("```{code-cell}")[0]
        + '```{code-cell} ipython3\n%matplotlib inline\nfor k in "ab":\n'
        + '    glue(f"acc_{k}", 1, display=False)\nglue("n", 2)\n```\n\n'
        + "{glue:text}`acc_a` and {glue:text}`n:d`\n"
    )
    literals, fstrings = glue_names(path)
    assert fstrings == ["f'acc_{k}'"]
    assert "n" in literals and "acc_a" not in literals


def _agop_aliases_and_uses(chapter: Path) -> tuple[dict[str, str], list[tuple[str, list[str]]]]:
    """The names a chapter binds to agop or agop_book modules, and every ``alias.attr...`` chain."""
    aliases: dict[str, str] = {}
    uses: list[tuple[str, list[str]]] = []
    for cell in code_cells(chapter):
        source = "\n".join(
            line for line in cell["source"].splitlines() if not line.lstrip().startswith(("%", "!"))
        )
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.split(".")[0] in {"agop", "agop_book"}:
                        aliases[a.asname or a.name.split(".")[0]] = (
                            a.name if a.asname else a.name.split(".")[0]
                        )
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in {
                "agop",
                "agop_book",
            }:
                for a in node.names:
                    uses.append((f"from {node.module}", [a.name]))
                    aliases.setdefault(a.asname or a.name, f"{node.module}.{a.name}")
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                chain, base = [], node
                while isinstance(base, ast.Attribute):
                    chain.append(base.attr)
                    base = base.value
                if isinstance(base, ast.Name):
                    uses.append((base.id, chain[::-1]))
    return aliases, uses


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_every_agop_name_a_chapter_uses_exists(chapter: Path):
    """A name moved or renamed in agop or agop_book fails here, not ten minutes into the book
    build: every ``from agop... import x`` and every ``module.attr`` chain on an imported
    module resolves."""
    import importlib
    import types

    aliases, uses = _agop_aliases_and_uses(chapter)
    missing = []
    for base, chain in uses:
        if base in {"agop", "agop_book"} and base not in aliases and "." not in base:
            missing.append(f"{base} (used, never imported)")
            continue
        path = aliases.get(base, base).removeprefix("from ")
        if path.split(".")[0] not in {"agop", "agop_book"}:
            continue
        try:
            obj: object = importlib.import_module(path)
        except ImportError:
            continue  # an imported function or class, not a module: nothing to follow
        for part in chain:
            if hasattr(obj, part):
                obj, path = getattr(obj, part), f"{path}.{part}"
                continue
            try:
                obj, path = importlib.import_module(f"{path}.{part}"), f"{path}.{part}"
            except ImportError:
                if isinstance(obj, types.ModuleType):
                    missing.append(f"{path}.{part}")
                break
            if not isinstance(obj, types.ModuleType):
                break
    assert not missing, f"{chapter.name} uses names that do not exist: {sorted(set(missing))}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_code_lines_fit_the_page(chapter: Path):
    """Book code cells fit the page, in the rendered book and in Colab: at most 80 characters."""
    long = [
        (i, len(line))
        for i, cell in enumerate(code_cells(chapter))
        for line in cell["source"].splitlines()
        if len(line) > 80
    ]
    assert not long, f"{chapter.name}: (code cell, characters) over 80: {long}"
