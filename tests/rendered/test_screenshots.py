"""Each page of the book rendered offline in headless Chromium, from its file:// URL: the math is
typeset (no raw TeX left), every image is a real file of the site, written chapters show a
figure, and the page is not blank. Screenshots land in _build/screenshots/."""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image
from rendering import (
    HTML,
    PLACEHOLDER,
    is_remote,
    local_file,
    notebook_pages,
    parse,
    toc_pages,
)

PAGES = toc_pages()
NOTEBOOKS = set(notebook_pages())
RAW_TEX = re.compile(r"\$\$|\\\(|\\\)|\\\[|\\\]|\\begin\{|\\frac\b|\\sum\b")


def static(page: str):
    return parse((HTML / page).read_text(errors="replace"))


def test_toc_lists_the_preface_and_chapters():
    assert PAGES[0].startswith("book/00_"), "the book opens with its preface"
    assert len(NOTEBOOKS) >= 2, f"expected the preface and chapters as notebooks, got {NOTEBOOKS}"


def test_some_page_has_math(site):
    """The book has equations, so the math check below is not vacuous."""
    with_math = [
        page
        for page in PAGES
        if static(page).find("span", class_="math") or static(page).find("div", class_="math")
    ]
    assert with_math, "no page of the built book holds math"


@pytest.mark.parametrize("page", PAGES)
def test_math_is_typeset(render, page):
    source = static(page)
    n_math = len(source.find("span", class_="math")) + len(source.find("div", class_="math"))
    shown = render(page).tags
    readable = " ".join(shown.text)
    raw = sorted(set(RAW_TEX.findall(readable)))
    assert not raw, f"{page}: raw TeX left in the rendered text: {raw}"
    if n_math == 0:
        return
    n_typeset = len(shown.find("mjx-container"))
    assert n_typeset >= n_math, (
        f"{page}: MathJax typeset {n_typeset} of {n_math} formulas (is vendor/mathjax served?)"
    )
    leftover = "".join(shown.math_text).strip()
    assert not leftover, f"{page}: TeX not typeset: {leftover[:200]!r}"
    errors = shown.find("mjx-merror")
    assert not errors, f"{page}: {len(errors)} formulas with TeX errors: {errors[:3]}"


def _check_image(page: str, src: str) -> str | None:
    """Why the image at ``src`` would not show, or None when it is a real, non-empty image."""
    if src.startswith("data:"):
        payload = src.split(",", 1)[-1]
        data = base64.b64decode(payload) if ";base64" in src.split(",", 1)[0] else payload.encode()
        return None if data else "empty data: URI"
    if is_remote(src):
        return f"remote image {src} (not shown offline)"
    path = local_file(HTML / page, src)
    if not path.is_file() or path.stat().st_size == 0:
        return f"missing or empty file {src}"
    if path.suffix.lower() == ".svg":
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError as err:
            return f"{src} is not valid SVG: {err}"
        return None if root.tag.endswith("svg") else f"{src} is not an SVG image"
    try:
        with Image.open(path) as image:
            image.verify()
    except Exception as err:  # noqa: BLE001 - any decoding failure means a broken figure
        return f"{src} does not decode as an image: {err}"
    return None


@pytest.mark.parametrize("page", PAGES)
def test_figures_are_present(render, page):
    images = render(page).tags.find("img")
    problems = [
        f"{img.get('src')!r}: {why}"
        for img in images
        if (why := _check_image(page, img.get("src", "")))
    ]
    assert not problems, f"{page}: " + "; ".join(problems)
    figures = [
        img
        for img in images
        if "_images/" in img.get("src", "") and not img["src"].endswith("colab-badge.svg")
    ]
    written = PLACEHOLDER not in (HTML / page).read_text(errors="replace")
    if page in NOTEBOOKS and written:
        assert figures, f"{page} is a written chapter but shows no figure"


@pytest.mark.parametrize("page", PAGES)
def test_page_is_not_blank(render, page):
    shown = render(page)
    article = " ".join(" ".join(shown.tags.article_text).split())
    assert len(article) > 200, f"{page}: the page's article holds almost no text: {article!r}"
    with Image.open(shown.png) as image:
        gray = np.asarray(image.convert("L"), dtype=np.float64)
    height, width = gray.shape
    # The content column, between the navigation sidebar and the page's table of contents.
    column = gray[height // 20 :, width // 4 : (7 * width) // 10]
    background = np.median(column)
    inked = float(np.mean(np.abs(column - background) > 40))
    assert column.std() > 10 and inked > 0.01, (
        f"{page}: the screenshot {shown.png} is near-uniform "
        f"(std {column.std():.1f}, {100 * inked:.2f}% of pixels inked)"
    )
