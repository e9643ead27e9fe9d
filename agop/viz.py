"""Figures (matplotlib). Every widget draws with a function from here, so the rendered book's
static figure and the Colab reader's interactive one are the same picture."""

from __future__ import annotations
