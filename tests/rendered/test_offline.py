"""The built book works without a network: no page loads a script, style sheet or image from
another host, and no page names a CDN. MathJax, require.js and the widget manager are served
from _build/html/vendor/ (tools/vendor.sh, `html_extra_path` in _config.yml)."""

from __future__ import annotations

import re

import pytest
from rendering import CONFIG, HTML, is_remote, local_file, parse

CDN = re.compile(
    r"https?://[^\s\"'<>]*(cdn|unpkg|jsdelivr|cdnjs|googleapis|gstatic)[^\s\"'<>]*", re.I
)
# sphinx-thebe (part of Jupyter Book 1) writes this constant into every page. It is fetched only
# when a reader starts live code, which this book does not enable and which needs Binder, and so
# a network, anyway. It is the one CDN address allowed in a page.
THEBE = re.compile(r'const THEBE_JS_URL = "https://unpkg\.com/thebe@[\d.]+/lib/index\.js"')


def html_files() -> list:
    """The site's pages: every HTML file but the theme's template macros under _static/."""
    return sorted(
        p for p in HTML.rglob("*.html") if p.relative_to(HTML).parts[0] not in ("_static", "vendor")
    )


@pytest.fixture(scope="module")
def pages(site):
    files = html_files()
    assert len(files) >= 3, f"expected a built book under {site}, found {len(files)} HTML files"
    return files


def test_vendored_assets_are_served(site):
    """The scripts _config.yml points at were copied into the site and are not empty."""
    config = CONFIG["sphinx"]["config"]
    scripts = [config["mathjax_path"], *config["nb_ipywidgets_js"]]
    for script in scripts:
        assert not is_remote(script), f"{script} in _config.yml is not a local path"
        # Sphinx serves a relative script path from _static/, so `../vendor/x` is `vendor/x`.
        path = (site / "_static" / script).resolve()
        assert path.is_file() and path.stat().st_size > 1000, (
            f"{script} (from _config.yml) is missing from {site}: run `make vendor`"
        )


def test_no_page_names_a_cdn(pages):
    offenders = {}
    for path in pages:
        text = THEBE.sub("", path.read_text(errors="replace"))
        hits = sorted({match.group(0) for match in CDN.finditer(text)})
        if hits:
            offenders[str(path.relative_to(HTML))] = hits[:5]
    assert not offenders, f"pages that would load from a CDN: {offenders}"


def test_page_assets_are_local_files(pages):
    """Every script, style sheet, icon and image a page loads is a file of the site (the
    chapters' Colab badge too: tools/agop_sphinx.py swaps in a local copy)."""
    problems = []
    for path in pages:
        tags = parse(path.read_text(errors="replace"))
        urls = [a["src"] for a in tags.find("script") if a.get("src")]
        urls += [
            a["href"]
            for a in tags.find("link")
            if a.get("href")
            and set(a.get("rel", "").split())
            & {"stylesheet", "preload", "modulepreload", "icon", "shortcut"}
        ]
        urls += [a["src"] for a in tags.find("img") if a.get("src")]
        for url in urls:
            if url.startswith("data:"):
                continue
            if is_remote(url):
                problems.append(f"{path.relative_to(HTML)}: remote {url}")
            elif not local_file(path, url).is_file():
                problems.append(f"{path.relative_to(HTML)}: missing {url}")
    assert not problems, "\n".join(problems[:30])
