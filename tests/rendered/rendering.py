"""Helpers for the rendered-book tests: the site's pages, an HTML reader, headless Chromium."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())

# A chapter that says this is a placeholder and shows no figure yet (tools/make_stub.py).
PLACEHOLDER = "This chapter is not written yet"

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Offline and quiet: no update checks, no sync, no crash reporter; a fresh profile per run.
BROWSER_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-breakpad",
    "--disable-default-apps",
    "--no-first-run",
    "--hide-scrollbars",
)
WINDOW = (1200, 2000)
VIRTUAL_TIME_MS = 20_000  # virtual time: scripts, MathJax and fonts settle well before this


def toc_pages() -> list[str]:
    """Every page of _toc.yml as its path in _build/html, e.g. ``book/01_ansatz.html``."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [chapter["file"] for chapter in part.get("chapters", [])]
    files += [chapter["file"] for chapter in toc.get("chapters", [])]
    return [f"{f}.html" for f in files]


def notebook_pages() -> list[str]:
    """The pages built from a MyST notebook (jupytext front matter): the preface and chapters."""
    pages = []
    for page in toc_pages():
        source = ROOT / page.replace(".html", ".md")
        if source.exists() and "jupytext:" in source.read_text()[:400]:
            pages.append(page)
    return pages


def is_remote(url: str) -> bool:
    return bool(re.match(r"^([a-z][a-z0-9+.-]*:)?//", url, re.I)) and not url.startswith("file:")


def local_file(page: Path, url: str) -> Path:
    """The file a page-relative URL points to (query and fragment dropped)."""
    url = url.split("#", 1)[0].split("?", 1)[0]
    return (page.parent / url).resolve()


class Tags(HTMLParser):
    """Start tags with their attributes, and the page's readable text (outside scripts, styles,
    code and typeset math) for the raw-TeX check."""

    SKIP = {"script", "style", "pre", "code", "textarea", "mjx-container", "noscript", "svg"}
    VOID = {
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "source",
        "track",
        "wbr",
    }

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []  # readable text
        self.article_text: list[str] = []  # readable text of the page's <article>
        self.math_text: list[str] = []  # text left inside class="math" elements, untypeset
        self._open: list[tuple[str, bool, bool, bool]] = []  # (tag, skip, article, math)

    def _state(self) -> tuple[bool, bool, bool]:
        return self._open[-1][1:] if self._open else (False, False, False)

    def handle_starttag(self, tag, attrs):
        attrs = {k: v or "" for k, v in attrs}
        self.tags.append((tag, attrs))
        if tag in self.VOID:
            return
        skip, article, math = self._state()
        classes = attrs.get("class", "").split()
        self._open.append(
            (
                tag,
                skip or tag in self.SKIP,
                article or tag == "article",
                (math or "math" in classes) and tag != "mjx-container" and "eqno" not in classes,
            )
        )  # a labelled equation's "(1)#" is text

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag):
        if any(open_tag == tag for open_tag, *_ in self._open):
            while self._open and self._open.pop()[0] != tag:
                pass

    def handle_data(self, data):
        skip, article, math = self._state()
        if math:
            self.math_text.append(data)
        if not skip:
            self.text.append(data)
            if article:
                self.article_text.append(data)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        """Attributes of every ``tag`` whose attributes contain the given values
        (``class_`` matches one word of ``class``)."""
        found = []
        for name, have in self.tags:
            if name != tag:
                continue
            ok = True
            for key, want in attrs.items():
                if key == "class_":
                    ok &= want in have.get("class", "").split()
                else:
                    ok &= have.get(key) == want
            if ok:
                found.append(have)
        return found


def parse(html: str) -> Tags:
    tags = Tags()
    tags.feed(html)
    tags.close()
    return tags


@dataclasses.dataclass
class Rendered:
    """A page after Chromium ran its scripts: the DOM, a screenshot, the console."""

    page: str
    dom: str
    png: Path
    console: list[str]

    @property
    def tags(self) -> Tags:
        return parse(self.dom)


def find_browser() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def _run_browser(browser: str, url: str, *args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="agop-chromium-") as profile:
        return subprocess.run(
            [
                browser,
                *BROWSER_FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={WINDOW[0]},{WINDOW[1]}",
                f"--virtual-time-budget={VIRTUAL_TIME_MS}",
                "--enable-logging=stderr",
                "--v=0",
                *args,
                url,
            ],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )


def render_file(browser: str, path: Path, png: Path) -> Rendered:
    """Load ``path`` by its file:// URL, as a reader who opens the HTML does; return the DOM
    after virtual time has run out, and a screenshot."""
    url = path.resolve().as_uri()
    dom = _run_browser(browser, url, "--dump-dom")
    assert dom.returncode == 0 and "<html" in dom.stdout, (
        f"Chromium could not render {url}:\n{dom.stderr[-2000:]}"
    )
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    shot = _run_browser(browser, url, f"--screenshot={png}")
    assert shot.returncode == 0 and png.exists(), (
        f"Chromium took no screenshot of {url}:\n{shot.stderr[-2000:]}"
    )
    console = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line]
    return Rendered(str(path), dom.stdout, png, console)
