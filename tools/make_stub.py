"""Write an honest placeholder chapter that already follows the book's skeleton.

python tools/make_stub.py book/04_convrfm_edges.md "ConvRFM: edge detectors from the AGOP" "what it will hold"
"""

import sys
from pathlib import Path

TEMPLATE = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# {title}

COLAB_BADGE

**What you'll learn.** {plan}

**What you'll need.** Nothing yet: this page is a placeholder and runs in seconds in both
profiles (quick: about 5 seconds on 2 CPU cores; paper: about 5 seconds on a GPU).

```{{code-cell}} ipython3
:tags: [remove-cell]

COLAB_SETUP
```

```{{code-cell}} ipython3
import agop
import agop_book
```

```{{code-cell}} ipython3
:tags: [parameters]

PROFILE = agop_book.notebook.profile()
SEED = 0
```

This chapter is not written yet. It will hold: {plan} No result is shown here until it has
been computed by the code that the chapter runs.

## Summary

* This page is a placeholder; the chapter's content is tracked in the project's issues.

## Exercises

1. Read the corresponding section of {{cite}}`beaglehole2023mechanism` and write down the
   quantity this chapter will measure.

:::{{dropdown}} Solution
Each chapter names its quantity in its first paragraph once it is written; compare yours with it.
:::

```{{code-cell}} ipython3
agop_book.notebook.environment_report(seed=SEED);
```
"""

path, title, plan = sys.argv[1], sys.argv[2], sys.argv[3]
Path(path).write_text(TEMPLATE.format(title=title, plan=plan))
