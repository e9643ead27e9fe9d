"""Write the student edition's Jupyter Book configuration: _config.yml with _config.student.yml
merged on top (mappings merged key by key, anything else replaced).

    python tools/student_config.py OUT.yml

Paths that Jupyter Book resolves against the configuration file's folder (local extensions) or
the output folder (the execution cache) are made absolute, so that the student build finds the
book's extension and reuses the instructor build's execution cache (`make book`): the code is
the same in both editions, only markup differs.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]


def merge(base: Any, over: Any) -> Any:
    """``over`` on top of ``base``: dicts key by key (recursively), anything else replaced."""
    if isinstance(base, dict) and isinstance(over, dict):
        return {**base, **{k: merge(base.get(k), v) for k, v in over.items()}}
    return over


def student_config() -> dict:
    config = merge(
        yaml.safe_load((ROOT / "_config.yml").read_text()),
        yaml.safe_load((ROOT / "_config.student.yml").read_text()),
    )
    sphinx = config.setdefault("sphinx", {})
    sphinx["local_extensions"] = {
        name: str((ROOT / path).resolve())
        for name, path in sphinx.get("local_extensions", {}).items()
    }
    config.setdefault("execute", {})["cache"] = str(ROOT / "_build" / ".jupyter_cache")
    return config


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    Path(argv[0]).parent.mkdir(parents=True, exist_ok=True)
    Path(argv[0]).write_text(yaml.safe_dump(student_config(), sort_keys=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
