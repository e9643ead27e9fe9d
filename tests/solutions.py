"""The chapters' exercises and solutions, read from the MyST sources with plain regular
expressions (independently of tools/make_notebooks.py and of sphinx-exercise), and phrases of
each solution to look for in a built page or notebook."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("0[0-9]_*.md"))

EXERCISE = re.compile(
    r"^(:{3,}|`{3,})\{exercise\}[ \t]*([^\n]*)\n:label: ([\w-]+)\n(.*?)^\1[ \t]*$", re.M | re.S
)
SOLUTION = re.compile(
    r"^(:{3,}|`{3,})\{solution\} ([\w-]+)\n((?::[\w-]+:[^\n]*\n)*)(.*?)^\1[ \t]*$", re.M | re.S
)
GATED = re.compile(
    r"^(:{3,})\{solution-start\} ([\w-]+)\n((?::[\w-]+:[^\n]*\n)*)\1[ \t]*\n(.*?)"
    r"^:{3,}\{solution-end\}\s*\n:{3,}\s*$",
    re.M | re.S,
)


def exercises(text: str) -> list[str]:
    return [m.group(3) for m in EXERCISE.finditer(text)]


def titles(text: str) -> list[tuple[str, str]]:
    """``(label, title)`` of every exercise; the title is what follows ``{exercise}`` on its
    line (empty when there is none)."""
    return [(m.group(3), m.group(2).strip()) for m in EXERCISE.finditer(text)]


# ``:::{exercise} ★★ Title (20 min)``: one to three stars first, the time last
TITLE = re.compile(r"^(★{1,3}) (?=\S)(?!★)[^★]*\S \((\d+) min\)$")


def title_problem(title: str) -> str | None:
    """What is wrong with an exercise's title (None when it states difficulty and time)."""
    if not title:
        return "no title"
    if not TITLE.match(title):
        return f"{title!r} is not '★ Title (N min)' with one to three stars"
    return None


# a solution that only says what to do ("Change X and compare") gives no answer
PROCEDURE = re.compile(
    r"\A\s*(?:change|compare|run|rerun|try|vary|repeat|plot|set|use|increase|decrease|replace)\b",
    re.I,
)


def answer_problem(body: str) -> str | None:
    """Why a solution's body is not an answer (None when it is one): it must hold a number,
    some mathematics, a glued value or a code cell that computes the answer, and a solution
    without code must not open with an instruction."""
    computes = "{code-cell}" in body
    if not computes and PROCEDURE.match(body):
        return f"it opens with an instruction, not an answer: {body.strip()[:60]!r}"
    if not (computes or re.search(r"\d|\$|\{glue", body)):
        return "it holds no number, mathematics, glued value or computation"
    return None


def solutions(text: str) -> list[tuple[str, str, str]]:
    """``(label, options, body)`` of every solution, plain and gated, in order of appearance."""
    found = [(m.start(), m.group(2), m.group(3), m.group(4)) for m in SOLUTION.finditer(text)]
    found += [(m.start(), m.group(2), m.group(3), m.group(4)) for m in GATED.finditer(text)]
    return [f[1:] for f in sorted(found)]


def words(text: str) -> str:
    """Whitespace-normalised text."""
    return " ".join(text.split())


def probes(body: str) -> list[str]:
    """Phrases a rendering of ``body`` keeps verbatim: the longest run of plain words of its
    prose, and the first line of each of its code cells."""
    out = []
    code = re.findall(r"```\{code-cell\}[^\n]*\n(.*?)```", body, re.S)
    # a cell the page hides (glue bookkeeping) shows nothing to look for
    code = [
        c for c in code if not re.search(r"\A(?::[\w-]+:[^\n]*\n)*:tags:.*remove-(cell|input)", c)
    ]
    # a cell's options (``:tags: [remove-cell]``) are metadata, not source: skip them
    code = [re.sub(r"\A(?::[\w-]+:[^\n]*\n)+", "", c) for c in code]
    out += [words(c.strip().splitlines()[0]) for c in code if c.strip()]
    prose = re.sub(r"```.*?```", " ", body, flags=re.S)
    prose = re.sub(r"\$[^$]*\$|\{[\w:-]+\}`[^`]*`|`[^`]*`|\([^)]*\)", " | ", prose)
    runs = re.findall(r"(?:[A-Za-z][a-z']*[ \n]+){4,}[A-Za-z][a-z']*", prose)
    if runs:
        out.append(words(max(runs, key=len)))
    return out
