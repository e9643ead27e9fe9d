"""Widgets render offline: a page that carries widget state loads require.js and the ipywidgets
HTML manager from the site itself (nb_ipywidgets_js in _config.yml), and the manager draws the
widgets in headless Chromium without a network."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from rendering import CONFIG, HTML, ROOT, SHOTS, render_file, toc_pages

WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def widget_pages() -> list[str]:
    """Pages that show a widget: a view in an output, not only saved state (a tqdm bar that
    closed itself leaves state behind and nothing to draw)."""
    return [
        page
        for page in toc_pages()
        if (HTML / page).exists() and WIDGET_VIEW in (HTML / page).read_text(errors="replace")
    ]


def test_book_widgets_render(render):
    pages = widget_pages()
    if not pages:
        pytest.skip(
            "no page of the book carries widget state yet (test_widget_manager_works_"
            "offline checks the manager on a page built here)"
        )
    for page in pages:
        drawn = render(page).tags.find("div", class_="jupyter-widgets")
        assert drawn, f"{page} shows a widget view but no widget was drawn offline"


def test_widget_manager_works_offline(site, browser, tmp_path):
    """Build a one-cell notebook with the book's widget and math settings, then render it."""
    vendor = ROOT / "_vendor" / "html"
    assert (vendor / "vendor").is_dir(), "run `make vendor` first (`make test-book` does)"
    config = CONFIG["sphinx"]["config"]
    src, out = tmp_path / "src", tmp_path / "html"
    src.mkdir()
    (src / "conf.py").write_text(
        textwrap.dedent(f"""\
        extensions = ["myst_nb"]
        myst_enable_extensions = ["dollarmath"]
        nb_execution_mode = "force"
        mathjax_path = {config["mathjax_path"]!r}
        nb_ipywidgets_js = {config["nb_ipywidgets_js"]!r}
        html_extra_path = [{str(vendor)!r}]
        """)
    )
    (src / "index.md").write_text(
        textwrap.dedent("""\
        ---
        jupytext:
          text_representation:
            format_name: myst
        kernelspec:
          display_name: Python 3
          language: python
          name: python3
        ---
        # A widget, offline

        $$ \\langle A, B \\rangle_F = \\operatorname{tr}(A^\\top B) $$

        ```{code-cell} ipython3
        import ipywidgets as widgets
        widgets.IntSlider(value=3, min=1, max=7, description="k")
        ```
        """)
    )
    build = subprocess.run(
        [sys.executable, "-m", "sphinx", "-q", "-W", "-b", "html", str(src), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-3000:]
    html = (out / "index.html").read_text()
    assert WIDGET_STATE in html, "executing the notebook saved no widget state"
    shown = render_file(browser, out / "index.html", SHOTS / "widget_offline.png")
    assert shown.tags.find("div", class_="widget-slider"), (
        "the HTML manager drew no slider offline; console:\n" + "\n".join(shown.console[-10:])
    )
    assert shown.tags.find("mjx-container"), "MathJax typeset nothing offline"
