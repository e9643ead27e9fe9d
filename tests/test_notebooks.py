"""The notebook generator (tools/make_notebooks.py) and the glue helper (agop_book.notebook)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from make_notebooks import Labels, convert_markdown, myst_markup, read_bib  # noqa: E402

BIB = {
    "doe2020": {
        "author": "Doe, Jane and Roe, Rick and Poe, Edgar",
        "year": "2020",
        "title": "A Title",
        "journal": "arXiv preprint arXiv:2001.01234",
    },
    "solo2019": {
        "author": "Solo, Han",
        "year": "2019",
        "title": "Kessel Run",
        "doi": "10.1000/xyz",
    },
}


def convert(text: str, **kw) -> str:
    out = convert_markdown(text, bib=BIB, **kw)
    assert not myst_markup(out), myst_markup(out)
    return out


def test_glue_roles_show_the_reference_value():
    glue = {"sketch_err_8": "0.126", "n": "3", "who": "'the CNN'"}
    out = convert(
        "error up to {glue:text}`sketch_err_8:.2f`, and {glue}`n` for {glue:text}`who`.",
        glue=glue,
    )
    assert out == "error up to 0.13, and 3 for the CNN."
    with pytest.raises(ValueError, match="'missing' has no reference value"):
        convert_markdown("{glue:text}`missing:.2f`", bib=BIB, glue=glue)


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        ("0.93456", ".3f"),
        ("0.93456", ""),
        ("'3 of 8'", "s"),
        ("12", "d"),
        ("0.1234", ".1%"),
        ("'0.25'", ".2f"),
        ("7", ".1f"),
        ("'not a number'", "s"),
        ("np.float64(0.5)", "s"),
    ],
)
def test_glued_values_are_formatted_as_myst_nb_formats_them(text, fmt):
    variables = pytest.importorskip("myst_nb.core.variables")
    from make_notebooks import format_glued

    assert format_glued(text, fmt) == variables.format_plain_text(text, fmt)


def test_citations_become_linked_author_year():
    assert (
        convert("as {cite}`doe2020` show")
        == "as ([Doe et al., 2020](https://arxiv.org/abs/2001.01234)) show"
    )
    assert convert("{cite:t}`solo2019` says") == "[Solo (2019)](https://doi.org/10.1000/xyz) says"
    assert convert("{cite:p}`doe2020,solo2019`").count("](https://") == 2
    with pytest.raises(ValueError, match="nobody"):
        convert_markdown("{cite}`nobody`", bib=BIB)


def test_the_books_bibliography_is_read():
    bib = read_bib()
    assert bib["beaglehole2023mechanism"]["year"] == "2023"
    assert "Clement" in bib["jacot2018neural"]["author"]  # the LaTeX accent is dropped


def colab(stem: str, student: bool = False) -> str:
    from make_notebooks import repository

    url, branch = repository()
    folder = "student/book" if student else "book"
    return (
        f"https://colab.research.google.com/github/{url.split('github.com/')[1]}"
        f"/blob/{branch}/{folder}/{stem}.ipynb"
    )


def site_page(stem: str) -> str:
    from make_notebooks import repository

    owner, name = repository()[0].split("github.com/")[1].split("/")
    return f"https://{owner.lower()}.github.io/{name}/book/{stem}.html"


PAGES = {
    "01_a": {
        "chapter": "1",
        "title": "Chapter A",
        "figures": {"fig-a": "1.1", "fig-b": "1.2"},
        "equations": {"eq-cnfm": "1.1", "eq-y": "1.2"},
        "sections": {"sec-a": ["sec-a", "A"]},
    },
    "03_pretrained": {
        "chapter": "3",
        "title": "Pretrained nets",
        "figures": {"fig-elsewhere": "3.4"},
        "sections": {"sec-far": ["far-anchor", "Far away"]},
    },
    "92_kernels": {
        "chapter": "C",
        "title": "Kernels on patches",
        "equations": {"eq-kernel": "C.2"},
        "sections": {"sec-k": ["the-kernels", "The kernels"]},
    },
}


def test_cross_references_and_math_roles():
    out = convert(
        "(sec-a)=\n# A\n\nsee {ref}`the section <sec-a>`, {doc}`03_pretrained`, "
        "{math}`x^2` and {py:func}`~agop.features.patch_agop`.",
        labels=Labels(PAGES),
        page="01_a",
    )
    assert out == (
        f"# A\n\nsee the section, [Pretrained nets]({colab('03_pretrained')}), $x^2$ and "
        "`patch_agop`."
    )


def test_references_to_other_pages_link_to_their_notebook_or_the_site():
    """A chapter with a notebook opens in Colab; a page without one (an appendix) on the site."""
    out = convert(
        "{ref}`sec-far`, {ref}`sec-k`, {eq}`eq-kernel`, {doc}`the kernels <92_kernels>`, "
        "[Kernels on patches](92_kernels.md#the-kernels) and [the nets](03_pretrained.md).",
        labels=Labels(PAGES),
        page="01_a",
    )
    assert out == (
        f"[Far away]({colab('03_pretrained')}), [The kernels]({site_page('92_kernels')}"
        f"#the-kernels), [(C.2)]({site_page('92_kernels')}), [the kernels]"
        f"({site_page('92_kernels')}), [Kernels on patches]({site_page('92_kernels')}"
        f"#the-kernels) and [the nets]({colab('03_pretrained')})."
    )


def test_admonition_becomes_a_block_quote():
    out = convert(
        "```{admonition} Careful\n:class: tip\nBody with {glue:text}`x`.\n```", glue={"x": "2"}
    )
    assert out == "> **Careful**\n>\n> Body with 2."
    assert convert(":::{note}\nplain\n:::") == "> **Note**\n>\n> plain"


def test_dropdown_solutions_collapse_and_student_mode_drops_them():
    text = "1. Question?\n\n:::{dropdown} Solution\nAnswer $a$.\n:::\n\nAfter."
    out = convert(text)
    assert "<details>\n<summary>Solution</summary>\n\nAnswer $a$.\n\n</details>" in out
    assert out.startswith("1. Question?") and out.endswith("After.")
    student = convert(text, solutions=False)
    assert "Answer" not in student and "<details>" not in student
    assert "Question?" in student and "After." in student


def test_sphinx_exercise_directives():
    text = (
        "```{exercise} Ridge\n:label: ex-ridge\nSolve it.\n```\n\n"
        "```{solution} ex-ridge\n:class: dropdown\nLike this.\n```\n\n"
        "::::{exercise}\nSecond.\n::::\n\n"
        "```{solution-start} ex-2\n```\nGated answer.\n```{solution-end}\n```\nEnd."
    )
    out = convert(text)
    assert out.startswith("**Exercise 1.** Ridge\n\nSolve it.")
    assert "<summary>Solution</summary>\n\nLike this.\n\n</details>" in out
    assert "**Exercise 2.**\n\nSecond." in out
    assert "<summary>Solution</summary>\n\nGated answer.\n\n</details>\nEnd." in out
    student = convert(text, solutions=False)
    assert "Like this" not in student and "Gated answer" not in student
    assert "Solve it." in student and "Second." in student and "End." in student


GATED_CHAPTER = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  name: python3
---
# T

[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](URL/book/99_x.ipynb)

:::{exercise}
:label: ex-a
Q one.
:::

:::{solution-start} ex-a
:class: dropdown
:::

Gated words.

```{code-cell} ipython3
answer = 42
```

More gated words.

:::{solution-end}
:::

:::{exercise}
:label: ex-b
Q two.
:::
"""


def test_gated_solution_across_cells_and_the_student_notebook(tmp_path):
    """A gated solution with a code cell inside: kept, unfolded, in the instructor's notebook;
    gone, text and code, from the student's, whose badge opens the student copy. Exercise
    numbers run on across cells."""
    from make_notebooks import notebook, repository

    url, branch = repository()
    chapter = tmp_path / "99_x.md"
    chapter.write_text(
        GATED_CHAPTER.replace("URL", f"https://colab.research.google.com/github/o/r/blob/{branch}")
    )

    def cells(solutions):
        nb = notebook(chapter, solutions=solutions, reference={"99_x": {"chapter": "99"}})
        return [(c["cell_type"], c["source"]) for c in nb["cells"]]

    teacher, student = cells(True), cells(False)
    text = "\n".join(s for _, s in teacher)
    assert ("code", "answer = 42") in teacher
    assert "**Solution.**" in text and "More gated words." in text and "<details>" not in text
    assert "**Exercise 99.1.**" in text and "**Exercise 99.2.**" in text
    text = "\n".join(s for _, s in student)
    assert all(kind == "markdown" for kind, _ in student)
    assert "Gated" not in text and "Solution" not in text and "answer" not in text
    assert "**Exercise 99.2.**\n\nQ two." in text
    assert f"/blob/{branch}/student/book/99_x.ipynb)" in text


def test_student_config_merges_the_overlay():
    from student_config import ROOT, merge, student_config

    assert merge({"a": {"b": 1, "c": [1]}, "d": 2}, {"a": {"c": [3]}}) == {
        "a": {"b": 1, "c": [3]},
        "d": 2,
    }
    config = student_config()
    assert config["sphinx"]["config"]["hide_solutions"] is True
    assert config["repository"]["path_to_book"] == "student"
    assert config["repository"]["url"] == repository_url()
    assert config["sphinx"]["config"]["mathjax_path"]  # kept from _config.yml
    assert all(
        Path(p).is_absolute() and Path(p).is_dir()
        for p in config["sphinx"]["local_extensions"].values()
    )
    assert config["execute"]["cache"] == str(ROOT / "_build" / ".jupyter_cache")


def repository_url() -> str:
    from make_notebooks import repository

    return repository()[0]


def test_code_blocks_stay_verbatim_and_unknown_markup_fails():
    text = "```python\nx = {glue}`not a role here`\n```"
    assert convert_markdown(text, bib=BIB) == text
    with pytest.raises(ValueError, match="unknown MyST directive"):
        convert_markdown("```{mermaid}\ngraph\n```", bib=BIB)
    with pytest.raises(ValueError, match="unknown MyST role"):
        convert_markdown("{someday}`x`", bib=BIB)


def test_myst_markup_finds_every_kind():
    found = myst_markup(
        "{glue:text}`a`\n(label)=\n:::{dropdown} S\nx\n:::\n$$ y $$ (eq1)\n"
        "{{ sub }}\n% comment\n```python\n{cite}`in code`\n```\n`{cite}` is fine"
    )
    kinds = [f.split(": ")[1].split()[0] for f in found]
    assert kinds == ["role", "target", "directive", "equation", "substitution", "MyST"]


def test_glue_without_myst_nb_prints_name_and_value(monkeypatch, capsys):
    from agop_book import notebook

    monkeypatch.setattr(notebook, "have_myst_nb", lambda: False)
    notebook.glue("acc", 0.875, display=False)
    notebook.glue("where", "in Colab")
    assert capsys.readouterr().out == "acc = 0.875\nwhere = in Colab\n"
    with pytest.raises(ValueError, match="name"):
        notebook.glue("", 1)


def test_glue_with_myst_nb_hands_over(monkeypatch):
    pytest.importorskip("myst_nb")
    import myst_nb

    from agop_book import notebook

    calls = []
    monkeypatch.setattr(myst_nb, "glue", lambda *a, **k: calls.append((a, k)))
    notebook.glue("x", 3, display=False)
    assert calls == [(("x", 3), {"display": False})]


def test_announce_names_profile_device_and_time(capsys):
    from agop_book.notebook import announce

    text = announce("quick", quick="about 1 s", paper="about 2 h on a GPU")
    assert text.startswith("profile quick on ") and "expected about 1 s" in text
    assert "AGOP_PROFILE=paper" in text and "about 2 h on a GPU" in text
    assert "expected about 2 h" in announce("paper", quick="1 s", paper="about 2 h")
    with pytest.raises(ValueError, match="profile"):
        announce("fast", quick="1 s", paper="2 s")


def test_glued_figure_is_shown_once_and_closed_without_myst_nb(monkeypatch, capsys):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from IPython import display as ipd

    from agop_book import notebook

    shown = []
    monkeypatch.setattr(ipd, "display", lambda v: shown.append(v))
    monkeypatch.setattr(notebook, "have_myst_nb", lambda: False)
    fig, _ = plt.subplots()
    notebook.glue("fig-x", fig, display=False)
    assert shown == [fig]  # shown once, although display=False
    assert capsys.readouterr().out == ""  # no useless "fig-x = ..." line
    assert not plt.fignum_exists(fig.number)  # the inline backend will not redraw it


def test_glued_figure_is_closed_after_myst_nb_stores_it(monkeypatch):
    pytest.importorskip("myst_nb")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import myst_nb

    from agop_book import notebook

    calls = []
    monkeypatch.setattr(myst_nb, "glue", lambda *a, **k: calls.append(plt.fignum_exists(1)))
    plt.close("all")
    fig, _ = plt.subplots()
    notebook.glue("fig-x", fig, display=False)
    assert calls == [True]  # stored while still open
    assert not plt.fignum_exists(fig.number)


def test_figures_and_equations_get_the_built_books_numbers():
    text = (
        "$$\nA = W^\\top W\n$$ (eq-cnfm)\n\nBy {eq}`eq-cnfm`, see {numref}`fig-b` and "
        "{numref}`Panel %s <fig-a>`; {numref}`fig-elsewhere`.\n\n"
        "```{glue:figure} fig-a\n:name: fig-a\n\nThe **AGOP** of {cite}`solo2019`.\n```\n\n"
        ':::{glue:figure} fig-b\n:name: "fig-b"\n:align: center\n\nSecond.\n:::\n\n'
        "$$ y = 1 $$ (eq-y)"
    )
    out = convert(text, labels=Labels(PAGES), page="01_a")
    assert out.split("\n\n") == [
        "$$\nA = W^\\top W\n\\tag{1.1}$$",
        f"By (1.1), see Figure 1.2 and Panel 1.1; [Figure 3.4]({colab('03_pretrained')}).",
        "*Figure 1.1. The **AGOP** of ([Solo, 2019](https://doi.org/10.1000/xyz)).* "
        "(the figure is drawn by the code cell above)",
        "*Figure 1.2. Second.* (the figure is drawn by the code cell above)",
        "$$ y = 1 \\tag{1.2}$$",
    ]
    for unknown in ("{numref}`fig-nowhere`", "{eq}`eq-nowhere`", "$$ x $$ (eq-nowhere)"):
        with pytest.raises(ValueError, match="nowhere.*build the book"):
            convert_markdown(unknown, bib=BIB, labels=Labels(PAGES), page="01_a")


HEAD = (
    "---\njupytext:\n  text_representation:\n    extension: .md\n    format_name: myst\n"
    "kernelspec:\n  name: python3\n  display_name: Python 3\n---\n\n"
)


def test_numbers_come_from_the_reference_not_from_file_names(tmp_path):
    """A chapter file 07_x whose built numbers are B.5 and B.6 (not 7.1): the notebook shows the
    built book's numbers, for figures, equations and exercises alike."""
    pytest.importorskip("jupytext")
    from make_notebooks import notebook

    chapter = tmp_path / "07_x.md"
    chapter.write_text(
        HEAD + "# Title\n\nAs {numref}`fig-late` and {eq}`eq-late` show, "
        "{glue:text}`acc:.3f`.\n\n"
        "```{code-cell} ipython3\nx = 1\n```\n\n"
        "$$ a = b $$ (eq-late)\n\n```{glue:figure} fig-late\n:name: fig-late\n\nCap.\n```\n\n"
        ":::{exercise}\n:label: ex-x\nQ.\n:::\n"
    )
    reference = {
        "07_x": {
            "chapter": "B",
            "figures": {"fig-late": "B.5"},
            "equations": {"eq-late": "B.6"},
            "glue": {"acc": "0.87654"},
        }
    }
    nb = notebook(chapter, reference=reference)
    text = "\n".join(c["source"] for c in nb["cells"] if c["cell_type"] == "markdown")
    assert "As Figure B.5 and (B.6) show, 0.877." in text
    assert "*Figure B.5. Cap.* (the figure is drawn by the code cell above)" in text
    assert "$$ a = b \\tag{B.6}$$" in text
    assert "**Exercise B.1.**" in text
    assert "reference run" in nb["cells"][1]["source"]  # the note under the title
    reference["07_x"]["glue"] = {}
    with pytest.raises(ValueError, match="07_x: the glued value 'acc' has no reference value"):
        notebook(chapter, reference=reference)


def test_bookkeeping_cells_are_colab_forms(tmp_path):
    """The install cell, remove-cell cells and glue-only cells collapse to a titled form; a cell
    that computes and shows stays open."""
    pytest.importorskip("jupytext")
    from make_notebooks import notebook

    cell = "```{{code-cell}} ipython3\n{}\n```\n\n"
    hidden = ":tags: [remove-cell]\n\n"
    chapter = tmp_path / "05_x.md"
    chapter.write_text(
        HEAD
        + "# T\n\n"
        + cell.format(hidden + 'import sys\nif "google.colab" in sys.modules:\n    %pip install x')
        + cell.format(hidden + 'glue("acc", 0.5, display=False)\nn = 3')
        + cell.format(hidden + "import numpy as np")
        + cell.format('glue("fig-a", fig, display=False)\nglue(\n    "fig-b", fig2)')
        + cell.format('glue("n", 3)')
        + cell.format('fig = draw()\nglue("fig-a", fig, display=False)')
    )
    nb = notebook(chapter, reference={})
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    titles = [c["source"].split("\n")[0] for c in code]
    assert titles == [
        "#@title Install agop (Colab only)",
        "#@title Bookkeeping: glue values for the text",
        "#@title Bookkeeping: set-up the book hides",
        "#@title Bookkeeping: place the figures",
        "#@title Bookkeeping: glue values for the text",
        "fig = draw()",
    ]
    assert [c["metadata"].get("cellView") for c in code] == ["form"] * 5 + [None]
    assert code[1]["source"] == (
        '#@title Bookkeeping: glue values for the text\nglue("acc", 0.5, display=False)\nn = 3'
    )


# --- implement-it exercises: from-scratch cells, their checks and the student's skeletons -------


def test_skeleton_keeps_signatures_docstrings_imports_and_comments():
    from make_notebooks import skeleton

    source = (
        "import torch\n# shared by both\nimport torch.nn.functional as F\n\n\n"
        "@torch.no_grad()\ndef u_of(X, y,\n         k: int = 3) -> torch.Tensor:\n"
        '    """u = (1/n) sum_i y_i sum_j x_i[j].\n\n    Shape (q,)."""\n'
        "    # unfold: (n, q, P)\n    p = F.unfold(X, k)\n"
        '    return torch.einsum("n,nqp->q", y, p) / len(y)\n\n\n'
        "def plain(x):\n    return x + 1\n\n\ndef inline(x): return 2 * x\n"
    )
    out, n = skeleton(source)
    assert n == 3
    assert out == (
        "import torch\n# shared by both\nimport torch.nn.functional as F\n\n\n"
        "@torch.no_grad()\ndef u_of(X, y,\n         k: int = 3) -> torch.Tensor:\n"
        '    """u = (1/n) sum_i y_i sum_j x_i[j].\n\n    Shape (q,)."""\n    ...\n\n\n'
        "def plain(x):\n    ...\n\n\ndef inline(x): ...\n"
    )
    namespace: dict = {}
    exec(out, namespace)  # the skeleton is valid Python whose functions return None
    assert namespace["u_of"](None, None) is None and namespace["plain"](1) is None
    assert namespace["u_of"].__doc__.startswith("u = (1/n)")


def test_skeleton_leaves_a_cell_without_def_and_the_notebook_warns(tmp_path, capsys):
    from make_notebooks import notebook, skeleton

    assert skeleton("x = 1\nprint(x)") == ("x = 1\nprint(x)", 0)
    assert skeleton("%timeit f()") == ("%timeit f()", 0)
    chapter = tmp_path / "98_x.md"
    chapter.write_text(
        HEAD + "# T\n\n```{code-cell} ipython3\n:tags: [from-scratch]\n\nx = 1\n```\n\n"
        "```{code-cell} ipython3\n:tags: [from-scratch]\n\n"
        'def f(x):\n    """twice x."""\n    return 2 * x\n```\n'
    )
    student = notebook(chapter, solutions=False, reference={})
    teacher = notebook(chapter, reference={})
    code = [c["source"] for c in student["cells"] if c["cell_type"] == "code"]
    assert code == ["x = 1", 'def f(x):\n    """twice x."""\n    ...']
    assert "98_x.md: a cell tagged from-scratch has no top-level def" in capsys.readouterr().err
    assert [c["source"] for c in teacher["cells"] if c["cell_type"] == "code"][1].endswith(
        "return 2 * x"
    )


def scratch_pairs(chapter: Path) -> list[tuple[list, int]]:
    """``(code cells, index)`` of each ``from-scratch`` cell of a chapter (its check is the
    next code cell)."""
    import jupytext

    code = [c for c in jupytext.read(chapter).cells if c.cell_type == "code"]
    return [(code, i) for i, c in enumerate(code) if "from-scratch" in c.metadata.get("tags", [])]


def _namespace(code: list, upto: int, *, whole: bool) -> dict:
    """What a check cell may use: the imports of the chapter's earlier cells and its
    parameters cell; with ``whole``, every earlier cell executed (cells with IPython magics,
    such as the install cell, are left out)."""
    import ast

    import matplotlib

    matplotlib.use("Agg")
    namespace: dict = {"__name__": "__chapter__"}
    for cell in code[:upto]:
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        if not whole and "parameters" not in cell.metadata.get("tags", []):
            tree.body = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        exec(compile(tree, "<earlier cell>", "exec"), namespace)
    return namespace


def run_pair(code: list, i: int) -> tuple[BaseException | None, BaseException | None, bool]:
    """Run a from-scratch cell and its check twice, as the instructor (the full cell) and as
    the student (its skeleton) would, each in a fresh namespace: ``(instructor's error,
    student's error, whole)``, where ``whole`` says that the check needed the chapter's earlier
    cells executed (a NameError with the imports and parameters alone)."""
    import contextlib
    import io

    from make_notebooks import skeleton

    made: dict[bool, dict] = {}  # each namespace built once, then copied for each attempt

    def attempt(scratch: str, whole: bool) -> BaseException | None:
        with contextlib.redirect_stdout(io.StringIO()):
            if whole not in made:
                made[whole] = _namespace(code, i, whole=whole)
            namespace = dict(made[whole])
            try:
                exec(compile(scratch, "<from-scratch>", "exec"), namespace)
                exec(compile(code[i + 1].source, "<check>", "exec"), namespace)
            except Exception as error:  # noqa: BLE001  (any failure of the check counts)
                return error
        return None

    whole = False
    teacher = attempt(code[i].source, whole)
    if isinstance(teacher, NameError):
        whole = True
        teacher = attempt(code[i].source, whole)
    return teacher, attempt(skeleton(code[i].source)[0], whole), whole


def pair_problems(chapter: Path) -> list[str]:
    """What is wrong with a chapter's implement-it cells: a from-scratch cell without a def or
    without a check after it, a check that fails on the instructor's code, or one that passes
    on the student's skeleton (it would check nothing)."""
    from make_notebooks import skeleton

    problems = []
    for code, i in scratch_pairs(chapter):
        where = f"{chapter.stem} code cell {i}"
        if not skeleton(code[i].source)[1]:
            problems.append(f"{where}: a from-scratch cell without a top-level def")
            continue
        if i + 1 == len(code):
            problems.append(f"{where}: no check cell after the from-scratch cell")
            continue
        teacher, student, _ = run_pair(code, i)
        if teacher is not None:
            problems.append(f"{where}: the check fails on the full code: {teacher!r}")
        if student is None:
            problems.append(f"{where}: the check passes on the student's skeleton")
        elif isinstance(student, (SyntaxError, NameError)):
            problems.append(f"{where}: the skeleton breaks the cell itself: {student!r}")
    return problems


SCRATCH_CHAPTER = (
    HEAD
    + "# T\n\n```{code-cell} ipython3\nimport torch\n```\n\n"
    + "```{code-cell} ipython3\n:tags: [parameters]\n\nN = 5\n```\n\n"
    + "```{code-cell} ipython3\nx = torch.arange(N, dtype=torch.float64)\n```\n\n"
    + "```{code-cell} ipython3\n:tags: [from-scratch]\n\nimport math\n\n\n"
    + 'def norm2(x):\n    """sqrt(sum_i x_i^2)."""\n    return math.sqrt(float((x * x).sum()))\n```\n\n'
    + "```{code-cell} ipython3\nCHECK\n```\n"
)


@pytest.mark.parametrize(
    ("check", "problem", "whole"),
    [
        # self-contained: runs on the imports and the parameters cell alone
        ("v = torch.ones(N)\nassert abs(norm2(v) - torch.linalg.norm(v)) < 1e-12", None, False),
        # uses x from an earlier cell: the chapter's earlier cells are executed first
        ("assert abs(norm2(x) - torch.linalg.norm(x)) < 1e-12", None, True),
        # wrong from the start: fails on the instructor's code too
        ("assert norm2(torch.ones(N)) == 0", "fails on the full code", False),
        # checks nothing: passes on the skeleton
        ("print(norm2(x))", "passes on the student's skeleton", True),
    ],
)
def test_from_scratch_mechanism_on_a_synthetic_chapter(tmp_path, check, problem, whole):
    """The instructor's pair passes and the student's fails; the checker catches a check that
    is wrong or that checks nothing, and runs the chapter's earlier cells only when needed."""
    chapter = tmp_path / "97_x.md"
    chapter.write_text(SCRATCH_CHAPTER.replace("CHECK", check))
    ((code, i),) = scratch_pairs(chapter)
    problems = pair_problems(chapter)
    if problem is None:
        assert problems == []
        teacher, student, needed = run_pair(code, i)
        assert teacher is None and isinstance(student, TypeError) and needed == whole
    else:
        assert len(problems) == 1 and problem in problems[0], problems


BOOK_SCRATCH = [
    p
    for p in sorted((ROOT / "book").glob("[0-9][0-9]_*.md"))
    if "jupytext:" in p.read_text()[:400] and scratch_pairs(p)
]


def test_the_book_has_from_scratch_cells():
    """Chapter 2 at least (the first step of Theorem 1): the test below is not vacuous."""
    assert "02_theorem" in [p.stem for p in BOOK_SCRATCH]


@pytest.mark.parametrize("chapter", BOOK_SCRATCH, ids=[p.stem for p in BOOK_SCRATCH])
def test_every_from_scratch_cell_passes_its_check_and_its_skeleton_fails(chapter):
    """For every from-scratch cell of the book: with the instructor's code its check cell
    passes, with the student edition's skeleton (bodies emptied to ``...``) it fails."""
    assert pair_problems(chapter) == []


@pytest.mark.parametrize("hide_solutions", [True, False])
def test_student_pages_show_the_skeleton(hide_solutions):
    """tools/agop_sphinx.py: in the student build (``hide_solutions``) the source of a cell
    tagged from-scratch, as myst-nb lays it out, becomes its skeleton; its outputs, other cells
    and the instructor's build are left alone."""
    pytest.importorskip("sphinx_exercise")
    from types import SimpleNamespace

    from agop_sphinx import SkeletonFromScratch
    from docutils import nodes
    from docutils.utils import new_document

    full = 'def f(x):\n    """twice x."""\n    return 2 * x'
    document = new_document("page")
    document.settings.env = SimpleNamespace(config=SimpleNamespace(hide_solutions=hide_solutions))

    def cell(tags: list[str], source: str, output: str) -> nodes.container:
        classes = ["cell"] + [f"tag_{t}" for t in tags]
        source_box = nodes.container(
            "", nodes.literal_block(source, source), classes=["cell_input"]
        )
        output_box = nodes.container(
            "", nodes.literal_block(output, output), classes=["cell_output"]
        )
        return nodes.container("", source_box, output_box, classes=classes)

    printed = "def g(y):\n    return y"  # an output that reads as code stays as it is
    document += cell(["from-scratch"], full, printed)
    document += cell([], full, "")
    SkeletonFromScratch(document).apply()
    blocks = [b.astext() for b in document.findall(nodes.literal_block)]
    emptied = 'def f(x):\n    """twice x."""\n    ...'
    first = emptied if hide_solutions else full
    assert blocks == [first, printed, full, ""]


def test_a_chapters_badge_and_install_line_are_rewritten_from_the_config(tmp_path, monkeypatch):
    import make_notebooks as mk

    url, branch = mk.repository()
    chapter = tmp_path / "book" / "04_x.md"
    chapter.parent.mkdir()
    old = (
        "# Title\n\n[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
        "(https://colab.research.google.com/github/someone/else/blob/dev/book/04_x.ipynb)\n"
    )
    chapter.write_text(old + "\ntext\n")
    (tmp_path / "_config.yml").write_text((mk.ROOT / "_config.yml").read_text())
    monkeypatch.setattr(mk, "ROOT", tmp_path)
    new = mk.synced(chapter)
    slug = url.split("github.com/", 1)[1]
    assert f"github/{slug}/blob/{branch}/book/04_x.ipynb)" in new
    assert "someone/else" not in new and new.endswith("\ntext\n")
