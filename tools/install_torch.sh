#!/usr/bin/env bash
# Install torch and torchvision into the environment of $PYTHON, once.
# Where pip is capped at torch<=2.14.1 (a machine whose torch lies on local disk), take
# exactly that pair; elsewhere keep whatever torch is there, or let pip choose.
set -euo pipefail
PYTHON=${PYTHON:-python}
if "$PYTHON" -c "import torch, torchvision" 2>/dev/null; then
  exit 0
fi
constraint=$("$PYTHON" -m pip config get global.constraint 2>/dev/null || true)
if [ -n "$constraint" ] && grep -qs 'torch<=2.14.1' "$constraint"; then
  "$PYTHON" -m pip install "torch==2.14.1" "torchvision==0.29.1"
else
  "$PYTHON" -m pip install torch torchvision
fi
