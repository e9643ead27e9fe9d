"""Write each chapter's `.ipynb` from its MyST `.md`, readable where myst-nb is absent.

    python tools/make_notebooks.py                 # rewrite book/NN_*.ipynb from book/NN_*.md
    python tools/make_notebooks.py --check         # exit 1 when an .ipynb has drifted (tests)

First, each chapter's source gets its Colab badge and its install line written from the one place
that names the repository, ``_config.yml`` (:func:`synced`; ``--check`` reports a chapter whose
badge or install line is out of date).

Each run also writes the student edition, ``student/book/NN_*.ipynb``: the same notebooks without
any solution (text or code), whose Colab badge and links to other chapters open the student
copies (``make book-student`` points the student HTML's Colab links there too). There, a code
cell tagged ``from-scratch`` becomes its skeleton (:func:`skeleton`: each function keeps its
signature and docstring, its body becomes ``...``), so the check cell after it fails until the
student writes the function; a tagged cell without a ``def`` is kept as it is, with a warning.

The `.md` is the one source; the numbers come from ``book/_reference.json``, which the book build
writes (tools/agop_sphinx.py) from its reference run (the quick profile, on 2 CPU cores), so that
nothing is executed here and ``--check`` is deterministic. Code cells are copied as they are
(tags kept, no outputs); a cell the book hides (``remove-cell``) or one that only glues becomes a
Colab *form*, collapsed to its ``#@title`` ("Install agop (Colab only)", "Bookkeeping: glue
values for the text", ...). Markdown cells lose every piece of MyST that Jupyter and Colab would
show raw:

* a glued value ``{glue:text}`name:.2f``` becomes its value in the reference run, formatted as
  myst-nb formats it (:func:`format_glued`); a note under the title says where the numbers come
  from and that the code recomputes them (it prints ``name = value``:
  :func:`agop_book.notebook.glue`). A glued name without a reference value raises ``ValueError``;
* ``{cite}`key``` becomes "(Author et al., year)" linked to the paper (``references.bib``:
  its ``url``, ``doi`` or an arXiv number; else a search for the title);
* figures (``{glue:figure}`` and ``{figure}`` with a ``:name:``), labelled equations
  (``$$ ... $$ (label)``) and exercises get the numbers the built book gives them (per chapter:
  Figure 4.2, (1.3), Exercise 4.1; appendices A, B, ...): a glued figure becomes
  "*Figure 4.2. caption* (drawn by the code cell above)", an equation gets ``\\tag{1.3}``, and
  ``{numref}`` / ``{eq}`` to them become "Figure 4.2" / "(1.3)";
* a reference to another page (``{numref}``, ``{eq}``, ``{ref}``, ``{doc}``, a markdown link to
  ``NN_name.md``) becomes a link that works in Colab: to that chapter's notebook in Colab, or, for
  a page without a notebook (the appendices 91, 92, 99), to the page on the book's site
  (``https://OWNER.github.io/NAME/``, from ``_config.yml``'s repository); math roles become
  ``$..$``;
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
import ast
import json
import re
import sys
import tokenize
import urllib.parse
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
STUDENT = ROOT / "student" / "book"  # the student edition's notebooks
REFERENCE = BOOK / "_reference.json"  # the book build's numbers (tools/agop_sphinx.py)
COLAB = "https://colab.research.google.com/github"

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


# --- the book's reference run -------------------------------------------------------------------


def read_reference(path: Path = REFERENCE) -> dict[str, dict]:
    """``book/_reference.json``'s pages: ``{"04_convrfm_edges": {"chapter": "4", "figures": ...,
    "equations": ..., "exercises": ..., "sections": ..., "glue": ..., "title": ...}}``."""
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: the book build writes it (make book), with the numbers the "
            "notebooks' text shows"
        )
    return json.loads(path.read_text())["pages"]


def format_glued(text: str, fmt: str) -> str:
    """A glued value's ``text/plain`` as myst-nb's ``{glue:text}`name:fmt``` shows it (a copy of
    ``myst_nb.core.variables.format_plain_text``, which needs no myst-nb here)."""
    try:
        value = ast.literal_eval(text)
    except (SyntaxError, ValueError):
        value = text
    if fmt == "":
        return str(value)
    kind = fmt[-1]
    if kind == "s":
        value = str(value)
    elif kind in "bcdoxX":
        value = int(value)
    elif kind in "eEfFgGn%":
        value = float(value)
    return format(value, fmt)


# The Colab badge and the install line of each chapter's source, from _config.yml's repository.
BADGE_RE = re.compile(r"^(COLAB_BADGE|\[!\[Open In Colab\]\(.*\)\]\(.*\))$", re.M)
SETUP_RE = re.compile(
    r"^(COLAB_SETUP|# Colab only: install agop.*?\n    %pip install [^\n]*)$", re.M | re.S
)
#: The environment variable that points the install cell elsewhere: a fork, a local checkout or
#: a wheel (``make test-colab`` sets it to a wheel built from this tree).
INSTALL_VAR = "AGOP_INSTALL"


def repository() -> tuple[str, str]:
    """The repository's address and branch, from ``_config.yml`` (named there once)."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    url = config["repository"]["url"].rstrip("/")
    branch = config["repository"].get("branch", "main")
    return url, branch


def expected(chapter: Path) -> tuple[str, str]:
    """The Colab badge and the install cell's code that ``chapter``'s source should carry."""
    url, branch = repository()
    slug = url.split("github.com/", 1)[1]
    nb = chapter.relative_to(ROOT).with_suffix(".ipynb").as_posix()
    badge = (
        "[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
        f"(https://colab.research.google.com/github/{slug}/blob/{branch}/{nb})"
    )
    setup = (
        "# Colab only: install agop; Colab's own torch is kept, never reinstalled.\n"
        f"# {INSTALL_VAR}=path, wheel or pip requirement installs that instead.\n"
        "import os\n"
        "import sys\n\n"
        "AGOP = os.environ.get(\n"
        f'    "{INSTALL_VAR}", "agop @ git+{url}@{branch}")\n'
        f'if "google.colab" in sys.modules or "{INSTALL_VAR}" in os.environ:\n'
        '    %pip install --quiet "{AGOP}"'
    )
    return badge, setup


def synced(chapter: Path) -> str:
    """``chapter``'s source with its Colab badge and install line written from ``_config.yml``."""
    text = chapter.read_text()
    badge, setup = expected(chapter)
    text = BADGE_RE.sub(lambda m: badge, text, count=1)
    text = SETUP_RE.sub(lambda m: setup, text, count=1)
    return text


def site() -> str:
    """The book's published address: GitHub Pages serves github.com/OWNER/NAME at
    OWNER.github.io/NAME/ (the repository is named once, in ``_config.yml``)."""
    owner, name = repository()[0].split("github.com/", 1)[1].split("/")[:2]
    return f"https://{owner.lower()}.github.io/{name}/"


def page_link(stem: str, anchor: str = "") -> str:
    """Where a reader of a notebook finds page ``book/<stem>``: its notebook in Colab, when it is
    a chapter with one; else the page on the book's site (at ``anchor``)."""
    if stem in {p.stem for p in chapters()}:
        url, branch = repository()
        return f"{COLAB}/{url.split('github.com/', 1)[1]}/blob/{branch}/book/{stem}.ipynb"
    return f"{site()}book/{stem}.html" + (f"#{anchor}" if anchor else "")


class Labels:
    """The numbers the built book gives figures, equations and exercises, and where each label
    is: ``figures[label] == (page stem, "4.2")``, likewise ``equations`` and ``sections``
    (``(page stem, anchor, title)``); ``chapters[stem]`` is a page's number, None if it has none."""

    def __init__(self, pages: dict[str, dict] | None = None):
        pages = pages or {}
        self.pages = pages
        self.chapters = {stem: page.get("chapter") for stem, page in pages.items()}
        self.figures = {
            k: (stem, n) for stem, page in pages.items() for k, n in page.get("figures", {}).items()
        }
        self.equations = {
            k: (stem, n)
            for stem, page in pages.items()
            for k, n in page.get("equations", {}).items()
        }
        self.sections = {
            k: (stem, *v)
            for stem, page in pages.items()
            for k, v in page.get("sections", {}).items()
        }


# --- roles --------------------------------------------------------------------------------------

_PY_ROLES = {"func", "class", "meth", "mod", "attr", "data", "obj", "exc", "const"}
_MD_LINK = re.compile(
    r"\]\((?!\w+:|#)(?:\.{1,2}/)*(?:book/)?(\d\d_\w+)\.(?:md|ipynb)(?:#([\w-]+))?\)"
)


def _role(name: str, content: str, conv: _Converter) -> str:
    kind = name.split(":")[-1] if name.startswith("py:") else name
    if name in ("glue", "glue:text"):
        return conv.glued(content, name)
    if name.startswith("glue"):
        raise ValueError(f"{{{name}}}`{content}`: only {{glue:text}} is taught to make_notebooks")
    if name.startswith("cite"):
        bib = conv.bib
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
        text, explicit, target = content.partition("<")
        target = target.rstrip(">").strip() or text.strip()
        text = text.strip() if explicit else ""
        return conv.reference(name, text, target)
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


class _Converter:
    """The state of one notebook's conversion: ``page`` is its stem in ``labels`` (None for a
    text on its own), ``glue`` its glued values (``text/plain`` by name)."""

    def __init__(
        self,
        bib: dict,
        solutions: bool,
        labels: Labels,
        page: str | None = None,
        glue: dict[str, str] | None = None,
    ):
        self.bib, self.solutions, self.exercises = bib, solutions, 0
        self.labels, self.page, self.glue = labels, page, glue
        chapter = labels.chapters.get(page) if page else None
        self.prefix = f"{chapter}." if chapter else ""  # Exercise 4.2, as the book
        self.dropping = False  # inside a gated solution, student mode
        self.folds = True  # the gated solution being written ends in the same cell
        self.open_gated = False  # inside a gated solution written as a bold line

    def glued(self, content: str, role: str) -> str:
        """A glued value as the book shows it, from the reference run."""
        if "::" in content:
            raise ValueError(f"{{{role}}}`{content}`: glue from another page is not taught here")
        key, fmt = (
            content.rsplit(":", 1) if role == "glue:text" and ":" in content else (content, "s")
        )
        key = key.strip()
        where = f"{self.page or 'this text'}"
        if self.glue is None or key not in self.glue:
            raise ValueError(
                f"{where}: the glued value {key!r} has no reference value in "
                f"{REFERENCE.relative_to(ROOT)}; build the book (make book) to refresh it"
            )
        text = self.glue[key]
        return format_glued(text, fmt) if role == "glue:text" else text

    def _number(self, kind: str, target: str) -> tuple[str, str]:
        table = self.labels.figures if kind == "figure" else self.labels.equations
        if target not in table:
            raise ValueError(
                f"{self.page or 'this text'}: no {kind} {target!r} in the built book's numbers "
                f"({REFERENCE.relative_to(ROOT)}); build the book (make book) to refresh them"
            )
        return table[target]

    def _link(self, text: str, stem: str, anchor: str = "") -> str:
        return text if stem == self.page else f"[{text}]({page_link(stem, anchor)})"

    def reference(self, role: str, text: str, target: str) -> str:
        """A cross-reference: its text, linked when it points to another page."""
        if role == "numref":
            stem, number = self._number("figure", target)
            shown = text.replace("%s", number) if text else f"Figure {number}"
            return self._link(shown, stem)
        if role == "eq":
            stem, number = self._number("equation", target)
            return self._link(f"({number})", stem)
        if role == "doc":
            stem = Path(target).name
            title = self.labels.pages.get(stem, {}).get("title", stem)
            return self._link(text or title, stem)
        if role == "ref" and target in self.labels.sections:
            stem, anchor, title = self.labels.sections[target]
            return self._link(text or title, stem, anchor)
        return text or target

    def inline(self, line: str) -> str:
        line = _ROLE.sub(lambda m: _role(m.group(1), m.group(2), self), line)
        line = _MD_LINK.sub(lambda m: f"]({page_link(m.group(1), m.group(2) or '')})", line)
        return _EQ_LABEL.sub(self._tag, line)

    def _tag(self, m: re.Match) -> str:
        return f"\\tag{{{self._number('equation', m.group(1))[1]}}}$$"

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
            label = opts.get("name", "").strip("'\"")
            head = f"Figure {self._number('figure', label)[1]}." if label else "Figure:"
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
    "> **The numbers in this text** are those of the book's reference run: the quick profile "
    "(`AGOP_PROFILE=quick`), executed on 2 CPU cores when the book was built. Each code cell "
    "recomputes them and prints every number the text quotes as `name = value`, so your run "
    "may differ a little (and the paper profile, more)."
)


def convert_markdown(
    text: str,
    *,
    bib: dict | None = None,
    solutions: bool = True,
    labels: Labels | None = None,
    page: str | None = None,
    glue: dict[str, str] | None = None,
    conv: _Converter | None = None,
) -> str:
    """One markdown cell without MyST-only markup (see the module docstring).

    ``labels``: the built book's numbers (:func:`read_reference`); ``page``: the stem of the
    page the text is on (references to it are not links; its chapter number prefixes exercise
    numbers); ``glue``: its glued values by name (``text/plain``). ``conv``: the converter of the
    notebook the cell belongs to (exercise numbers, gated solutions that span cells); a fresh one
    by default.
    """
    conv = conv or _Converter(
        read_bib() if bib is None else bib,
        solutions,
        Labels() if labels is None else labels,
        page,
        glue,
    )
    out = "\n".join(conv.block(text.splitlines()))
    return re.sub(r"\n{3,}", "\n\n", out).strip("\n")


def chapters() -> list[Path]:
    """Chapters that are MyST notebooks (jupytext front matter), not plain pages."""
    return [p for p in sorted(BOOK.glob("[0-9][0-9]_*.md")) if "jupytext:" in p.read_text()[:400]]


def _student_links(text: str) -> str:
    """Point a student notebook's Colab badge, and its links to other notebooks, at the student
    copies in the repository."""
    _, branch = repository()
    return text.replace(f"/blob/{branch}/book/", f"/blob/{branch}/student/book/")


INSTALL_TITLE = "Install agop (Colab only)"
GLUE_TITLE = "Bookkeeping: glue values for the text"
FIGURE_TITLE = "Bookkeeping: place the figures"
HIDDEN_TITLE = "Bookkeeping: set-up the book hides"


def _glue_calls(source: str) -> list[ast.Call] | None:
    """The ``glue(...)`` calls that make up ``source``; None when it has anything else."""
    try:
        body = ast.parse(source).body
    except SyntaxError:  # IPython magics: not a glue-only cell
        return None
    calls = [s.value for s in body if isinstance(s, ast.Expr) and isinstance(s.value, ast.Call)]
    if not body or len(calls) != len(body):
        return None
    if not all(isinstance(c.func, ast.Name) and c.func.id == "glue" for c in calls):
        return None
    return calls


def form_title(source: str, tags: list[str]) -> str | None:
    """The ``#@title`` under which Colab collapses a code cell (a *form*), or None to show it: the
    install cell, a cell the book hides (``remove-cell``) and a cell that only glues."""
    calls = _glue_calls(source)
    if "remove-cell" not in tags and calls is None:
        return None
    if "google.colab" in source and "%pip install" in source:
        return INSTALL_TITLE
    if calls is not None:
        names = [c.args[0].value for c in calls if c.args and isinstance(c.args[0], ast.Constant)]
        if names and len(names) == len(calls) and all(str(n).startswith("fig-") for n in names):
            return FIGURE_TITLE
        return GLUE_TITLE
    return GLUE_TITLE if re.search(r"^\s*glue\(", source, re.M) else HIDDEN_TITLE


FROM_SCRATCH = "from-scratch"  # the tag of a cell that writes a method in plain torch


def _header_end(source: str, node: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[int, int]:
    """``(line, column)`` just after the colon that ends a ``def``'s signature."""
    lines = source.splitlines(keepends=True)[node.lineno - 1 :]
    depth = 0
    for tok in tokenize.generate_tokens(iter(lines).__next__):
        if tok.type == tokenize.OP and tok.string in "([{":
            depth += 1
        elif tok.type == tokenize.OP and tok.string in ")]}":
            depth -= 1
        elif tok.type == tokenize.OP and tok.string == ":" and depth == 0:
            return node.lineno + tok.end[0] - 1, tok.end[1]
    raise ValueError(f"no end to the signature of {node.name}")  # unreachable for parsed code


def skeleton(source: str) -> tuple[str, int]:
    """A ``from-scratch`` cell as the student edition shows it, and how many functions it
    emptied: every top-level ``def`` keeps its decorators, signature and docstring, and its body
    (with the comments inside it) becomes ``...``; everything else (imports, comments, blank
    lines between the functions) is kept as written.

    A cell that does not parse (an IPython magic) or has no top-level ``def`` comes back as it
    is, with 0.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source, 0
    lines = source.splitlines(keepends=True)
    defs = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    for node in reversed(defs):  # from the bottom up, so earlier line numbers stay valid
        first = node.body[0]
        doc = (
            isinstance(first, ast.Expr)
            and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)
        )
        line, col = _header_end(source, node)
        if first.lineno == line:  # the body shares the signature's line: def f(x): return x
            head = lines[line - 1][:col]
            tail = f" {ast.get_source_segment(source, first)}; ..." if doc else " ..."
            lines[line - 1 : node.end_lineno] = [head + tail + "\n"]
            continue
        indent = " " * first.col_offset
        keep = first.end_lineno if doc else line  # the signature, and the docstring if any
        lines[keep : node.end_lineno] = [f"{indent}...\n"]
    out = "".join(lines)
    return (out if source.endswith("\n") else out.rstrip("\n")), len(defs)


def _code_cell(cell, *, solutions: bool = True, where: str = "") -> dict:
    tags = cell.metadata.get("tags", [])
    meta, source = dict(cell.metadata), cell.source
    if not solutions and FROM_SCRATCH in tags:
        source, emptied = skeleton(source)
        if not emptied:
            print(
                f"warning: {where}: a cell tagged {FROM_SCRATCH} has no top-level def; the "
                "student edition shows it as it is",
                file=sys.stderr,
            )
    title = form_title(source, tags)
    if title:
        meta["cellView"] = "form"
        source = f"#@title {title}\n{source}"
    return {
        "cell_type": "code",
        "execution_count": None,
        "metadata": meta,
        "outputs": [],
        "source": source,
    }


def notebook(chapter: Path, *, solutions: bool = True, reference: dict | None = None) -> dict:
    """The chapter as an nbformat 4 notebook (a plain dict), without outputs. ``reference``: the
    built book's pages (:func:`read_reference`, by default ``book/_reference.json``)."""
    import jupytext

    pages = read_reference() if reference is None else reference
    source = jupytext.read(chapter)
    stem = chapter.stem
    conv = _Converter(
        read_bib(), solutions, Labels(pages), stem, pages.get(stem, {}).get("glue", {})
    )
    cells, glued = [], False
    for cell in source.cells:
        if cell.cell_type == "markdown":
            glued = glued or bool(re.search(r"\{glue(?::text)?\}`", cell.source))
            text = convert_markdown(cell.source, conv=conv)
            if not solutions:
                text = _student_links(text)
            if not text.strip():
                continue
            cells.append({"cell_type": "markdown", "metadata": dict(cell.metadata), "source": text})
        elif not conv.dropping:  # a student edition drops a gated solution's code
            cells.append(_code_cell(cell, solutions=solutions, where=chapter.name))
    if glued:
        note = {"cell_type": "markdown", "metadata": {}, "source": GLUE_NOTE}
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
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when an .ipynb or a chapter's badge drifted"
    )
    parser.add_argument("chapters", nargs="*", type=Path)
    args = parser.parse_args(argv)
    stale, reference = [], read_reference()
    for chapter in args.chapters or chapters():
        chapter = chapter.resolve()
        name = chapter.with_suffix(".ipynb").name
        source = synced(chapter)  # its Colab badge and install line follow _config.yml
        if source != chapter.read_text():
            stale.append(chapter.relative_to(ROOT).as_posix())
            if not args.check:
                chapter.write_text(source)
        for solutions, path in ((True, chapter.with_suffix(".ipynb")), (False, STUDENT / name)):
            text = dumps(notebook(chapter, solutions=solutions, reference=reference))
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
