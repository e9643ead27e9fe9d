"""The rendered book, as a reader sees it offline: pages of _build/html in headless Chromium.

`make test-book` builds the book first (`make book`), then runs these tests. Without
_build/html they skip, saying so; without Chromium they fail, saying how to install it.
Screenshots are kept in _build/screenshots/ to be looked at.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rendering import HTML, SHOTS, Rendered, find_browser, render_file


@pytest.fixture(scope="session")
def site() -> Path:
    if not (HTML / "index.html").exists():
        pytest.skip(f"no built book at {HTML}: run `make book` first (`make test-book` does)")
    return HTML


@pytest.fixture(scope="session")
def browser() -> str:
    path = find_browser()
    if path is None:
        pytest.fail(
            "headless Chromium is needed to render the book: "
            "`apt-get install -y chromium` (Debian/Ubuntu)",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def render(site, browser):
    """``render("book/01_ansatz.html")``: the page rendered once per session (cached)."""
    cache: dict[str, Rendered] = {}

    def _render(page: str) -> Rendered:
        if page not in cache:
            path = site / page
            assert path.exists(), f"{page} is in _toc.yml but was not built"
            png = SHOTS / (Path(page).stem + ".png")
            cache[page] = render_file(browser, path, png)
        return cache[page]

    return _render
