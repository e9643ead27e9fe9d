"""ipywidgets explorers (core widgets only, as Colab supports). Each one redraws a figure with
the same :mod:`agop.viz` function that draws the chapter's static twin."""

from __future__ import annotations
