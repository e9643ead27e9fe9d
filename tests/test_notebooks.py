"""The notebook generator (tools/make_notebooks.py) and the glue helper (agop.notebook)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from make_notebooks import convert_markdown, myst_markup, read_bib  # noqa: E402

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


def test_glue_roles_point_at_the_printed_name():
    out = convert("error up to {glue:text}`sketch_err_8:.2f`, and {glue}`n`.")
    assert out == "error up to `sketch_err_8`, and `n`."


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


def test_cross_references_and_math_roles():
    out = convert(
        "(sec-a)=\n# A\n\nsee {ref}`the section <sec-a>`, {doc}`03_pretrained`, "
        "{math}`x^2` and {py:func}`~agop.features.patch_agop`."
    )
    assert out == (
        "# A\n\nsee the section, [03_pretrained](03_pretrained.ipynb), $x^2$ and `patch_agop`."
    )


def test_admonition_becomes_a_block_quote():
    out = convert("```{admonition} Careful\n:class: tip\nBody with {glue:text}`x`.\n```")
    assert out == "> **Careful**\n>\n> Body with `x`."
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
    from make_notebooks import notebook
    from sync_colab import repository

    url, branch = repository()
    chapter = tmp_path / "99_x.md"
    chapter.write_text(
        GATED_CHAPTER.replace("URL", f"https://colab.research.google.com/github/o/r/blob/{branch}")
    )

    def cells(solutions):
        nb = notebook(chapter, solutions=solutions)
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
    from sync_colab import repository

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
    from agop import notebook

    monkeypatch.setattr(notebook, "have_myst_nb", lambda: False)
    notebook.glue("acc", 0.875, display=False)
    notebook.glue("where", "in Colab")
    assert capsys.readouterr().out == "acc = 0.875\nwhere = in Colab\n"
    with pytest.raises(ValueError, match="name"):
        notebook.glue("", 1)


def test_glue_with_myst_nb_hands_over(monkeypatch):
    pytest.importorskip("myst_nb")
    import myst_nb

    from agop import notebook

    calls = []
    monkeypatch.setattr(myst_nb, "glue", lambda *a, **k: calls.append((a, k)))
    notebook.glue("x", 3, display=False)
    assert calls == [(("x", 3), {"display": False})]


def test_announce_names_profile_device_and_time(capsys):
    from agop.notebook import announce

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

    from agop import notebook

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

    from agop import notebook

    calls = []
    monkeypatch.setattr(myst_nb, "glue", lambda *a, **k: calls.append(plt.fignum_exists(1)))
    plt.close("all")
    fig, _ = plt.subplots()
    notebook.glue("fig-x", fig, display=False)
    assert calls == [True]  # stored while still open
    assert not plt.fignum_exists(fig.number)


def test_figures_and_equations_are_numbered_in_the_notebook():
    text = (
        "$$\nA = W^\\top W\n$$ (eq-cnfm)\n\nBy {eq}`eq-cnfm`, see {numref}`fig-b` and "
        "{numref}`Panel %s <fig-a>`; {numref}`fig-elsewhere`.\n\n"
        "```{glue:figure} fig-a\n:name: fig-a\n\nThe **AGOP** of {cite}`solo2019`.\n```\n\n"
        ':::{glue:figure} fig-b\n:name: "fig-b"\n:align: center\n\nSecond.\n:::\n\n'
        "$$ y = 1 $$ (eq-y)"
    )
    out = convert(text)
    assert out.split("\n\n") == [
        "$$\nA = W^\\top W\n\\tag{1}$$",
        "By (1), see Figure 2 and Panel 1; a figure in another chapter.",
        "*Figure 1. The **AGOP** of ([Solo, 2019](https://doi.org/10.1000/xyz)).* "
        "(the figure is drawn by the code cell above)",
        "*Figure 2. Second.* (the figure is drawn by the code cell above)",
        "$$ y = 1 \\tag{2}$$",
    ]


def test_notebook_numbers_across_cells():
    from make_notebooks import Labels

    labels = Labels(
        "```{glue:figure} f1\n:name: f1\nA\n```\n\n```{figure} x.png\n:name: f2\nB\n```"
    )
    assert convert("see {numref}`f2`", labels=labels) == "see Figure 2"
    assert convert("```{figure} x.png\n:name: f2\nB\n```", labels=labels) == "![Figure 2. B](x.png)"


def test_chapter_numbers_figures_and_equations_across_its_cells(tmp_path):
    pytest.importorskip("jupytext")
    from make_notebooks import notebook

    chapter = tmp_path / "07_x.md"
    chapter.write_text(
        "---\njupytext:\n  text_representation:\n    extension: .md\n    format_name: myst\n"
        "kernelspec:\n  name: python3\n  display_name: Python 3\n---\n\n"
        "# Title\n\nAs {numref}`fig-late` and {eq}`eq-late` show.\n\n"
        "```{code-cell} ipython3\nx = 1\n```\n\n"
        "$$ a = b $$ (eq-late)\n\n```{glue:figure} fig-late\n:name: fig-late\n\nCap.\n```\n"
    )
    text = "\n".join(
        c["source"] for c in notebook(chapter)["cells"] if c["cell_type"] == "markdown"
    )
    assert "As Figure 1 and (1) show." in text
    assert "*Figure 1. Cap.* (the figure is drawn by the code cell above)" in text
    assert "$$ a = b \\tag{1}$$" in text


def test_numbers_run_through_the_book_as_sphinx_numbers_them(tmp_path):
    pytest.importorskip("jupytext")
    from make_notebooks import notebook

    head = (
        "---\njupytext:\n  text_representation:\n    extension: .md\n"
        "    format_name: myst\nkernelspec:\n  name: python3\n"
        "  display_name: Python 3\n---\n\n"
    )
    fig = "```{{glue:figure}} {0}\n:name: {0}\n\nCap {0}.\n```\n\n$$ {0} $$ (eq-{0})\n\n"
    (tmp_path / "01_a.md").write_text(head + "# A\n\n" + fig.format("fa") + fig.format("fb"))
    (tmp_path / "02_b.md").write_text(head + "# B\n\nSee {numref}`fa`.\n\n" + fig.format("fc"))
    text = "\n".join(c["source"] for c in notebook(tmp_path / "02_b.md")["cells"])
    assert "See Figure 1." in text
    assert "*Figure 3. Cap fc.*" in text and "$$ fc \\tag{3}$$" in text
