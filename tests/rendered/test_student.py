"""The student edition (`make book-student`): no solution text in any page, exercises intact,
Colab links to the solution-free notebooks. The instructor build (`make book`) is the control:
every phrase looked for must be found there, or the check proves nothing.

`make test-book` builds both editions before these tests; without them they skip, saying so.
"""

from __future__ import annotations

import html
import json
import re
import sys
from pathlib import Path

import pytest
from rendering import HTML, ROOT

sys.path.insert(0, str(ROOT / "tests"))
from solutions import CHAPTERS, exercises, probes, solutions, words  # noqa: E402

STUDENT = ROOT / "_build" / "student" / "_build" / "html"
REFERENCE = ROOT / "book" / "_reference.json"
QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"'})


def text(page: Path) -> str:
    """A page's visible text: tags dropped, entities decoded, quotes plain, whitespace one space."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", page.read_text(), flags=re.S)
    return words(html.unescape(re.sub(r"<[^>]+>", "", body)).translate(QUOTES))


@pytest.fixture(scope="module")
def editions() -> tuple[Path, Path]:
    for site, target in ((HTML, "make book"), (STUDENT, "make book-student")):
        if not (site / "index.html").exists():
            pytest.skip(f"no built book at {site}: run `{target}` (`make test-book` does)")
    return HTML, STUDENT


@pytest.mark.parametrize(
    "chapter", CHAPTERS + [ROOT / "book" / "90_performance.md"], ids=lambda p: p.stem
)
def test_student_pages_have_exercises_and_no_solution(editions, chapter: Path):
    teacher_site, student_site = editions
    page = chapter.relative_to(ROOT).with_suffix(".html")
    teacher, student = text(teacher_site / page), text(student_site / page)
    source = chapter.read_text()
    n_ex = len(exercises(source))
    for label, _, body in solutions(source):
        for phrase in probes(body):
            assert phrase in teacher, f"control: {phrase!r} ({label}) not in instructor {page}"
            assert phrase not in student, f"student {page} shows the solution to {label}"
    assert teacher.count("Solution to") >= n_ex, f"instructor {page}: solutions missing"
    assert "Solution to" not in student, f"student {page} still has a solution title"
    # numbered per chapter as _toc.yml numbers the chapter: Exercise 4.2 in book/04_*, A.2 in
    # the first appendix, plain 2 in the preface (the built book's numbers: book/_reference.json)
    number = json.loads(REFERENCE.read_text())["pages"][chapter.stem]["chapter"]
    prefix = f"{number}." if number else ""
    for k in range(1, n_ex + 1):
        for edition, site_text in (("instructor", teacher), ("student", student)):
            assert f"Exercise {prefix}{k}" in site_text, (
                f"{edition} {page}: no Exercise {prefix}{k}"
            )
    assert f"Exercise {prefix}{n_ex + 1}" not in teacher


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_student_colab_links_open_solution_free_notebooks(editions, chapter: Path):
    teacher_site, student_site = editions
    page = chapter.relative_to(ROOT).with_suffix(".html")
    nb = chapter.relative_to(ROOT).with_suffix(".ipynb").as_posix()
    colab = r"https://colab\.research\.google\.com/github/[^\"'\s]+?\.ipynb"
    links = set(re.findall(colab, (student_site / page).read_text()))
    assert links, f"student {page}: no Colab link"
    for link in links:
        assert link.endswith(f"/student/{nb}"), f"student {page}: {link} is not the student copy"
        assert (ROOT / "student" / nb).exists()
    for link in set(re.findall(colab, (teacher_site / page).read_text())):
        assert link.endswith(f"/{nb}") and "/student/" not in link, f"instructor {page}: {link}"
