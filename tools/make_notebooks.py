"""Write each chapter's `.ipynb` from its MyST `.md`, readable where myst-nb is absent.

    python tools/make_notebooks.py                 # rewrite book/NN_*.ipynb from book/NN_*.md
    python tools/make_notebooks.py --check         # exit 1 when an .ipynb has drifted (tests)

Each run also writes the student edition, ``student/book/NN_*.ipynb``: the same notebooks without
any solution (text or code), whose Colab badge opens the student copy (``make book-student``
points the student HTML's Colab links there too).

The `.md` is the one source. Code cells are copied as they are (tags kept, no outputs). Markdown
cells lose every piece of MyST that Jupyter and Colab would show raw:

* a glued value ``{glue:text}`name:.2f``` becomes `` `name` ``: the code cell that computes it
  prints ``name = value`` (:func:`agop.notebook.glue`), and a note under the title says so;
* ``{cite}`key``` becomes "(Author et al., year)" linked to the paper (``references.bib``:
  its ``url``, ``doi`` or an arXiv number; else a search for the title);
* cross-references become plain text or links to the other notebook; math roles become ``$..$``;
* figures (``{glue:figure}`` and ``{figure}`` with a ``:name:``) and labelled equations
  (``$$ ... $$ (label)``) get the numbers the book gives them (Sphinx numbers both through the
  whole book, page after page in the order of ``_toc.yml``, which is the order of the file
  names, as ``tests/test_book.py`` checks): a glued figure becomes
  "*Figure N. caption* (drawn by the code cell above)", an equation gets ``\tag{N}``, and
  ``{numref}`` / ``{eq}`` to them become "Figure N" / "(N)";
* admonitions become block quotes with a bold title;
* ``:::{dropdown}`` blocks, and sphinx-exercise's ``{exercise}`` / ``{solution}`` directives
  (also the gated ``-start`` / ``-end`` forms), become the exercise in plain text and each
  solution inside a collapsed ``<details>`` block (dropped entirely in the student edition). A
  gated solution whose code cells sit between ``solution-start`` and ``solution-end`` cannot be
  folded (a notebook cannot fold across cells): it opens with a bold "Solution" line instead,
  and in the student edition its text and code cells are all left out.

Anything else that looks like MyST raises ``ValueError``, so new markup cannot slip through.
:func:`myst_markup` finds MyST left in a text (used by the tests and by `make test-colab`); it
needs only the standard library.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
STUDENT = ROOT / "student" / "book"  # the student edition's notebooks

# --- what counts as MyST-only markup ------------------------------------------------------------

_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,}|:{3,})\s*(\{([\w:-]+)\})?\s*(.*)$")
_ROLE = re.compile(r"(?<![`\w])\{([A-Za-z][\w:.-]*)\}`([^`]*)`")
_TARGET = re.compile(r"^\s*\([\w.:-]+\)=\s*$")
_EQ_LABEL = re.compile(r"\$\$\s*\(([\w.:-]+)\)\s*$")
_SUBSTITUTION = re.compile(r"\{\{[^}]*\}\}")


def _outside_code(text: str) -> list[tuple[int, str]]:
    """``(line number, line)`` for the lines outside plain fenced code blocks.

    A bare fence line closes the innermost open directive when it can (same character, at least
    as long); otherwise a backtick or tilde fence opens a code block.
    """
    out, fence, directives = [], None, []
    for i, line in enumerate(text.splitlines(), 1):
        m = _FENCE.match(line)
        if fence is not None:
            if line.strip().startswith(fence[0] * len(fence)) and not line.strip().strip(fence[0]):
                fence = None
            continue
        if m and m.group(3):
            directives.append(m.group(2))
        elif (
            m
            and directives
            and m.group(2)[0] == directives[-1][0]
            and len(m.group(2)) >= len(directives[-1])
            and not m.group(5)
        ):
            directives.pop()
        elif m and not m.group(2).startswith(":"):
            fence = m.group(2)
            continue
        out.append((i, line))
    return out


def myst_markup(text: str) -> list[str]:
    """Every piece of MyST-only markup in a markdown text, as ``'line N: ...'`` strings."""
    found = []
    for i, line in _outside_code(text):
        m = _FENCE.match(line)
        if m and m.group(3):
            found.append(f"line {i}: directive {m.group(3)}")
        if _TARGET.match(line):
            found.append(f"line {i}: target {line.strip()}")
        if _EQ_LABEL.search(line):
            found.append(f"line {i}: equation label {_EQ_LABEL.search(line).group(0)}")
        found += [f"line {i}: role {{{r.group(1)}}}`{r.group(2)}`" for r in _ROLE.finditer(line)]
        found += [f"line {i}: substitution {s.group(0)}" for s in _SUBSTITUTION.finditer(line)]
        if re.match(r"^%(?!%)", line):
            found.append(f"line {i}: MyST comment {line.strip()}")
    return found


# --- citations ----------------------------------------------------------------------------------


def read_bib(path: Path = ROOT / "references.bib") -> dict[str, dict[str, str]]:
    """``references.bib`` as ``{key: {field: value}}`` (braces and LaTeX accents removed)."""
    entries = {}
    for m in re.finditer(r"@\w+\{([^,\s]+),(.*?)\n\}", path.read_text(), re.S):
        fields = {}
        for f in re.finditer(r"(\w+)\s*=\s*\{(.*?)\}\s*,?\s*$", m.group(2), re.M):
            value = re.sub(r"\\['`^\"~]\{?(\w)\}?", r"\1", f.group(2))
            fields[f.group(1).lower()] = value.replace("{", "").replace("}", "")
        entries[m.group(1)] = fields
    return entries


def cite_link(entry: dict[str, str]) -> str:
    """Where a reader finds the work: its url, doi, arXiv number, else a search for its title."""
    if entry.get("url"):
        return entry["url"]
    if entry.get("doi"):
        return f"https://doi.org/{entry['doi']}"
    arxiv = re.search(r"arXiv:(\d{4}\.\d{4,5})", entry.get("journal", "") + entry.get("eprint", ""))
    if arxiv:
        return f"https://arxiv.org/abs/{arxiv.group(1)}"
    return "https://scholar.google.com/scholar?q=" + urllib.parse.quote_plus(entry["title"])


def cite_text(entry: dict[str, str]) -> str:
    """``Beaglehole et al., 2023`` (two authors: ``A and B``)."""
    surnames = [a.split(",")[0].strip() for a in entry["author"].split(" and ")]
    who = (
        surnames[0]
        if len(surnames) == 1
        else f"{surnames[0]} and {surnames[1]}"
        if len(surnames) == 2
        else f"{surnames[0]} et al."
    )
    return f"{who}, {entry.get('year', 'n.d.')}"


# --- roles --------------------------------------------------------------------------------------

_PY_ROLES = {"func", "class", "meth", "mod", "attr", "data", "obj", "exc", "const"}


def _role(name: str, content: str, bib: dict, labels: Labels) -> str:
    kind = name.split(":")[-1] if name.startswith("py:") else name
    if name.startswith("glue"):
        return f"`{content.split(':')[0].strip()}`"
    if name.startswith("cite"):
        keys = [k.strip() for k in content.split(",")]
        missing = [k for k in keys if k not in bib]
        if missing:
            raise ValueError(f"{{{name}}}: {missing} not in references.bib")
        if name in ("cite:t", "cite:ts"):
            return "; ".join(
                f"[{cite_text(bib[k]).replace(', ', ' (')})]({cite_link(bib[k])})" for k in keys
            )
        return "(" + "; ".join(f"[{cite_text(bib[k])}]({cite_link(bib[k])})" for k in keys) + ")"
    if kind in _PY_ROLES:
        target = content.split("<")[-1].rstrip(">").strip() if "<" in content else content
        return f"`{target.lstrip('~').split('.')[-1] if target.startswith('~') else target}`"
    if name == "math":
        return f"${content}$"
    if name in ("ref", "numref", "eq", "term", "doc"):
        text, _, target = content.partition("<")
        target = target.rstrip(">").strip() or text.strip()
        if name == "doc":
            return f"[{text.strip() if _ else target}]({Path(target).name}.ipynb)"
        if name == "eq":
            return f"({labels.equations.get(target, target)})"
        if name == "numref":
            number = labels.figures.get(target)
            if number is None:
                return (
                    text.strip().replace("%s", "").strip() if _ else "a figure in another chapter"
                )
            return text.strip().replace("%s", str(number)) if _ else f"Figure {number}"
        return text.strip() if _ else target
    if name in ("sub", "sup", "abbr", "kbd", "samp", "code"):
        return f"`{content}`" if name in ("kbd", "samp", "code") else content
    raise ValueError(f"unknown MyST role {{{name}}}`{content}`: teach tools/make_notebooks.py")


# --- directives ---------------------------------------------------------------------------------

_ADMONITIONS = {
    "note",
    "tip",
    "warning",
    "important",
    "attention",
    "caution",
    "danger",
    "error",
    "hint",
    "seealso",
    "admonition",
    "prf:theorem",
    "prf:proof",
    "prf:definition",
}


class Labels:
    """Numbers of the named figures and labelled equations of ``text``, in order of appearance."""

    def __init__(self, text: str = ""):
        self.figures: dict[str, int] = {}
        self.equations: dict[str, int] = {}
        in_figure = False
        for _, line in _outside_code(text):
            m = _FENCE.match(line)
            if m and m.group(3):
                in_figure = m.group(4) in _FIGURES
                continue
            name = re.match(r"^\s*:name:\s*(\S+)", line)
            if in_figure and name:
                self.figures.setdefault(name.group(1).strip("'\""), len(self.figures) + 1)
                in_figure = False
            for eq in _EQ_LABEL.finditer(line):
                self.equations.setdefault(eq.group(1), len(self.equations) + 1)


_FIGURES = ("figure", "glue:figure")


def book_labels(chapter: Path) -> Labels:
    """Figure and equation numbers as the book numbers them: through every page
    (``NN_*.md``) in ``chapter``'s folder, in the order of their names."""
    pages = sorted(chapter.parent.glob("[0-9][0-9]_*.md"))
    return Labels("\n\n".join(p.read_text() for p in pages))


class _Converter:
    def __init__(self, bib: dict, solutions: bool, labels: Labels, chapter: int | None = None):
        self.bib, self.solutions, self.exercises = bib, solutions, 0
        self.labels = labels
        self.prefix = "" if chapter is None else f"{chapter}."  # Exercise 4.2, as the book
        self.dropping = False  # inside a gated solution, student mode
        self.folds = True  # the gated solution being written ends in the same cell
        self.open_gated = False  # inside a gated solution written as a bold line

    def inline(self, line: str) -> str:
        line = _ROLE.sub(lambda m: _role(m.group(1), m.group(2), self.bib, self.labels), line)
        return _EQ_LABEL.sub(self._tag, line)

    def _tag(self, m: re.Match) -> str:
        number = self.labels.equations.get(m.group(1))
        return f"\\tag{{{number}}}$$" if number else "$$"

    def block(self, lines: list[str]) -> list[str]:
        out, i, fence = [], 0, None
        while i < len(lines):
            line = lines[i]
            m = _FENCE.match(line)
            if fence is not None:  # inside a plain code block: verbatim
                if (
                    line.strip()
                    and not line.strip().strip(fence[0])
                    and len(line.strip()) >= len(fence)
                ):
                    fence = None
                out.append(line)
                i += 1
                continue
            if m and not m.group(3):
                if not m.group(2).startswith(":"):
                    fence = m.group(2)
                    out.append(line)
                i += 1
                continue
            if m and m.group(3):
                end = self._closing(lines, i, m.group(2))
                body = lines[i + 1 : end]
                if m.group(4) == "solution-start":  # folds only if its end is in this cell
                    self.folds = any(
                        _FENCE.match(x) and (_FENCE.match(x).group(4) or "") == "solution-end"
                        for x in lines[end + 1 :]
                    )
                out += self.directive(m.group(4), m.group(5).strip(), body, m.group(1))
                i = end + 1
                continue
            if _TARGET.match(line) or re.match(r"^%(?!%)", line):
                i += 1
                continue
            if not self.dropping:
                out.append(self.inline(line))
            i += 1
        return out

    @staticmethod
    def _closing(lines: list[str], start: int, fence: str) -> int:
        depth = 0
        for j in range(start + 1, len(lines)):
            m = _FENCE.match(lines[j])
            if m and m.group(3) and m.group(2)[0] == fence[0]:
                depth += 1
            elif (
                lines[j].strip()
                and set(lines[j].strip()) == {fence[0]}
                and len(lines[j].strip()) >= len(fence)
            ):
                if depth == 0:
                    return j
                depth -= 1
        raise ValueError(f"directive at line {start + 1} is never closed: {lines[start]!r}")

    @staticmethod
    def _options(body: list[str]) -> tuple[dict[str, str], list[str]]:
        opts, k = {}, 0
        if body and body[0].strip() == "---":
            end = body.index("---", 1) if "---" in body[1:] else 0
            for opt in body[1:end]:
                key, _, value = opt.partition(":")
                opts[key.strip()] = value.strip()
            k = end + 1
        while k < len(body) and re.match(r"^\s*:[\w-]+:", body[k]):
            key, value = re.match(r"^\s*:([\w-]+):\s*(.*)$", body[k]).groups()
            opts[key] = value
            k += 1
        return opts, body[k:]

    def _details(self, summary: str, body: list[str], indent: str) -> list[str]:
        return [
            f"{indent}<details>",
            f"{indent}<summary>{summary}</summary>",
            "",
            *self.block(body),
            "",
            f"{indent}</details>",
        ]

    def directive(self, name: str, arg: str, body: list[str], indent: str) -> list[str]:
        opts, body = self._options(body)
        title = self.inline(arg)
        if name == "dropdown":
            if title.lower().startswith("solution") and not self.solutions:
                return []
            return self._details(title or "Details", body, indent)
        if name == "solution":
            return self._details("Solution", body, indent) if self.solutions else []
        if name == "exercise":
            self.exercises += 1
            head = f"**Exercise {self.prefix}{self.exercises}.**" + (f" {title}" if title else "")
            return [f"{indent}{head}", "", *self.block(body)]
        if name in ("exercise-start", "exercise-end", "solution-start", "solution-end"):
            return self._gated(name, title, indent)
        if name in _ADMONITIONS:
            head = title or name.split(":")[-1].capitalize()
            inner = self.block(body)
            return [
                f"{indent}> **{head}**",
                f"{indent}>",
                *[f"{indent}> {x}".rstrip() for x in inner],
            ]
        if name == "math":
            return [f"{indent}$$", *body, f"{indent}$$"]
        if name in ("code-block", "code", "sourcecode"):
            return [f"{indent}```{arg}", *body, f"{indent}```"]
        if name in ("figure", "image", "glue:figure"):
            caption = " ".join(x.strip() for x in self.block(body)).strip()
            number = self.labels.figures.get(opts.get("name", "").strip("'\""))
            head = f"Figure {number}." if number else "Figure:"
            if name == "glue:figure":
                return [f"{indent}*{head} {caption}* (the figure is drawn by the code cell above)"]
            if name == "figure":
                caption = f"{head} {caption}"
            return [f"{indent}![{caption or opts.get('alt', '')}]({arg})"]
        raise ValueError(f"unknown MyST directive {{{name}}}: teach tools/make_notebooks.py")

    def _gated(self, name: str, title: str, indent: str) -> list[str]:
        if name == "exercise-start":
            self.exercises += 1
            return [
                f"{indent}**Exercise {self.prefix}{self.exercises}.**"
                + (f" {title}" if title else "")
            ]
        if name == "solution-start":
            if not self.solutions:
                self.dropping = True
                return []
            if not self.folds:
                self.open_gated = True
                return [f"{indent}**Solution.**", ""]
            return [f"{indent}<details>", f"{indent}<summary>Solution</summary>", ""]
        if name == "solution-end":
            was, self.dropping = self.dropping, False
            bold, self.open_gated = self.open_gated, False
            return [] if was or bold else ["", f"{indent}</details>"]
        return []


GLUE_NOTE = (
    "> Numbers in this notebook's text are computed by its code. Where the text shows a "
    "name in code style, such as `{name}`, the code cell that computes it prints "
    "`{name} = ...`."
)


def convert_markdown(
    text: str,
    *,
    bib: dict | None = None,
    solutions: bool = True,
    labels: Labels | None = None,
    conv: _Converter | None = None,
) -> str:
    """One markdown cell without MyST-only markup (see the module docstring).

    ``labels`` numbers figures and equations across the whole notebook; by default, this
    text's. ``conv``: the converter of the notebook the cell belongs to (exercise numbers,
    gated solutions that span cells, figure and equation numbers); a fresh one by default.
    """
    conv = conv or _Converter(
        read_bib() if bib is None else bib, solutions, Labels(text) if labels is None else labels
    )
    out = "\n".join(conv.block(text.splitlines()))
    return re.sub(r"\n{3,}", "\n\n", out).strip("\n")


def chapters() -> list[Path]:
    """Chapters that are MyST notebooks (jupytext front matter), not plain pages."""
    return [p for p in sorted(BOOK.glob("[0-9][0-9]_*.md")) if "jupytext:" in p.read_text()[:400]]


def _student_links(text: str) -> str:
    """Point the Colab badge of a student notebook at the student copy in the repository."""
    from sync_colab import repository

    _, branch = repository()
    return text.replace(f"/blob/{branch}/book/", f"/blob/{branch}/student/book/")


def notebook(chapter: Path, *, solutions: bool = True) -> dict:
    """The chapter as an nbformat 4 notebook (a plain dict), without outputs."""
    import jupytext

    source = jupytext.read(chapter)
    number = re.match(r"(\d+)_", chapter.name)
    conv = _Converter(
        read_bib(), solutions, book_labels(chapter), int(number.group(1)) if number else None
    )
    cells, glued = [], None
    for cell in source.cells:
        if cell.cell_type == "markdown":
            glued = glued or re.search(r"\{glue(?::\w+)?\}`([^`:]+)", cell.source)
            text = convert_markdown(cell.source, conv=conv)
            if not solutions:
                text = _student_links(text)
            if not text.strip():
                continue
            cells.append({"cell_type": "markdown", "metadata": dict(cell.metadata), "source": text})
        elif not conv.dropping:  # a student edition drops a gated solution's code
            cells.append(
                {
                    "cell_type": "code",
                    "execution_count": None,
                    "metadata": dict(cell.metadata),
                    "outputs": [],
                    "source": cell.source,
                }
            )
    if glued:
        note = {
            "cell_type": "markdown",
            "metadata": {},
            "source": GLUE_NOTE.format(name=glued.group(1).strip()),
        }
        cells.insert(1 if cells and cells[0]["cell_type"] == "markdown" else 0, note)
    for i, cell in enumerate(cells):
        cell["id"] = f"cell-{i}"
    meta = {
        "kernelspec": dict(source.metadata.get("kernelspec", {})),
        "language_info": {"name": "python"},
    }
    return {"cells": cells, "metadata": meta, "nbformat": 4, "nbformat_minor": 5}


def dumps(nb: dict) -> str:
    """The notebook as Jupyter writes it (one-space indent, sorted keys, source as lines)."""
    nb = json.loads(json.dumps(nb))
    for cell in nb["cells"]:
        cell["source"] = cell["source"].splitlines(keepends=True)
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when an .ipynb has drifted")
    parser.add_argument("chapters", nargs="*", type=Path)
    args = parser.parse_args(argv)
    stale = []
    for chapter in args.chapters or chapters():
        chapter = chapter.resolve()
        name = chapter.with_suffix(".ipynb").name
        for solutions, path in ((True, chapter.with_suffix(".ipynb")), (False, STUDENT / name)):
            text = dumps(notebook(chapter, solutions=solutions))
            if not path.exists() or path.read_text() != text:
                stale.append(path.relative_to(ROOT).as_posix())
                if not args.check:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(text)
    if args.check and stale:
        print("out of date: " + ", ".join(stale) + "\nFix: make notebooks", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
