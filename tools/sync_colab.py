"""Write every chapter's Colab badge and Colab install line from `_config.yml`'s repository URL.

The repository's address lives in one place, `_config.yml`. Run this after changing it:

    python tools/sync_colab.py          # rewrite book/*.md in place
    python tools/sync_colab.py --check  # exit 1 when a chapter is out of date (used by tests)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BADGE_RE = re.compile(r"^(COLAB_BADGE|\[!\[Open In Colab\]\(.*\)\]\(.*\))$", re.M)
SETUP_RE = re.compile(
    r"^(COLAB_SETUP|# Colab only: install agop.*?\n    %pip install [^\n]*)$", re.M | re.S
)
#: The environment variable that points the install cell elsewhere: a fork, a local checkout or
#: a wheel (``make test-colab`` sets it to a wheel built from this tree).
INSTALL_VAR = "AGOP_INSTALL"


def repository() -> tuple[str, str]:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    url = config["repository"]["url"].rstrip("/")
    branch = config["repository"].get("branch", "main")
    return url, branch


def expected(chapter: Path) -> tuple[str, str]:
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
    text = chapter.read_text()
    badge, setup = expected(chapter)
    text = BADGE_RE.sub(lambda m: badge, text, count=1)
    text = SETUP_RE.sub(lambda m: setup, text, count=1)
    return text


def chapters() -> list[Path]:
    return sorted((ROOT / "book").glob("[0-9]*.md"))


def main() -> int:
    check = "--check" in sys.argv
    stale = []
    for chapter in chapters():
        new = synced(chapter)
        if new != chapter.read_text():
            stale.append(chapter.relative_to(ROOT).as_posix())
            if not check:
                chapter.write_text(new)
    if check and stale:
        print(
            "Colab badge or install line out of date in: "
            + ", ".join(stale)
            + "\nFix: python tools/sync_colab.py && make notebooks"
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
