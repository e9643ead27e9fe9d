"""The built book's numbers are the ones the notebooks carry: every figure caption and equation
number on a page is the one book/_reference.json (written by the same build) gives it, per
chapter (Fig. 4.2 on book/04_*, A.1 in the first appendix)."""

from __future__ import annotations

import html
import json
import re

import pytest
from rendering import HTML, ROOT

REFERENCE = json.loads((ROOT / "book" / "_reference.json").read_text())["pages"]


@pytest.mark.parametrize("stem", sorted(REFERENCE))
def test_page_numbers_are_the_reference_numbers(site, stem: str):
    page = html.unescape((HTML / "book" / f"{stem}.html").read_text())
    ref = REFERENCE[stem]
    for kind, pattern in (
        (
            "figures",
            r'<figure class="[^"]*" id="([\w-]+)">.*?class="caption-number">[^<\s]+\s([\w.]+)',
        ),
        ("equations", r'id="equation-([\w-]+)">.*?<span class="eqno">\(([\w.]+)\)'),
    ):
        found = dict(re.findall(pattern, page, re.S))
        assert found == ref[kind], f"{stem} {kind}: page {found}, reference {ref[kind]}"
    chapter = ref["chapter"]
    if chapter:
        assert re.search(rf'<h1>\s*<span class="section-number">{chapter}\. </span>', page), stem
