"""Sphinx glue for the book's API pages (loaded through `sphinx: local_extensions` in _config.yml).

* A cross-reference to a name as readers call it, ``agop.ConvRFM``, resolves to where autodoc
  documents it, ``agop.rfm.ConvRFM``: the package re-exports names lazily (``agop._EXPORTS``).
* Methods that scikit-learn writes into every estimator class (``set_fit_request`` and the like,
  for metadata routing) are not part of agop's API and are left out of the reference.
* The chapters' Colab badge (an image on Google's server, so that it shows on GitHub and in
  Colab) is drawn from a local copy, tools/colab-badge.svg, so that the book shows it offline.
* Exercises are numbered per chapter, after the chapter's file number: the second exercise of
  book/04_*.md is Exercise 4.2 (Sphinx would number them through the whole book).
* The student edition (``make book-student``: ``hide_solutions`` and ``repository.path_to_book:
  student``, from _config.student.yml). sphinx-exercise drops a ``{solution}`` but, for a gated
  ``{solution-start}`` ... ``{solution-end}``, only the directive: the text and code cells between
  would stay. Here they go too. And the chapters' Colab badges, like the launch buttons, open
  ``<path_to_book>/book/NN_*.ipynb``: the solution-free notebooks of tools/make_notebooks.py.
"""

from __future__ import annotations

import re
from typing import Any

from docutils import nodes
from sphinx.transforms import SphinxTransform
from sphinx_exercise.directive import SolutionStartDirective
from sphinx_exercise.nodes import solution_end_node

COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
LOCAL_BADGE = "/tools/colab-badge.svg"  # relative to the book's root


def resolve_reexport(app, env, node, contnode) -> Any:
    """``missing-reference``: retry ``agop.NAME[.attr]`` as ``<defining module>.NAME[.attr]``."""
    target = node.get("reftarget", "")
    if node.get("refdomain") != "py" or not target.startswith("agop."):
        return None
    import agop

    name, _, rest = target.removeprefix("agop.").partition(".")
    module = agop._EXPORTS.get(name)
    if module is None or module == "agop":  # not a re-export, or a submodule (already full)
        return None
    full = f"{module}.{name}" + (f".{rest}" if rest else "")
    return env.get_domain("py").resolve_xref(
        env, node.get("refdoc", ""), app.builder, node["reftype"], full, node, contnode
    )


def skip_sklearn_members(app, what, name, obj, skip, options) -> bool | None:
    """``autodoc-skip-member``: leave out members that scikit-learn defines, not agop."""
    func = getattr(obj, "__func__", obj)
    if str(getattr(func, "__module__", "") or "").startswith("sklearn."):
        return True
    return None


def local_colab_badge(app, doctree) -> None:
    """``doctree-read``, before Sphinx collects images: point the Colab badge at the local copy."""
    for image in doctree.findall(nodes.image):
        if image.get("uri") == COLAB_BADGE:
            image["uri"] = LOCAL_BADGE


def colab_edition(app, doctree) -> None:
    """``doctree-read``: a Colab badge opens the notebook under ``path_to_book`` (the edition's)."""
    prefix = (app.config.html_theme_options or {}).get("path_to_docs", "").strip("/")
    if not prefix:
        return
    for ref in doctree.findall(nodes.reference):
        uri = ref.get("refuri", "")
        if uri.startswith("https://colab.research.google.com/github/"):
            ref["refuri"] = re.sub(r"(/blob/[^/]+)/book/", rf"\1/{prefix}/book/", uri)


def number_exercises_per_chapter(app, env) -> list[str]:
    """``env-get-updated``, after Sphinx numbers enumerable nodes book-wide: exercise ``n`` of
    ``book/NN_*`` becomes ``(NN, n)``, in document order."""
    for docname, kinds in env.toc_fignumbers.items():
        chapter = re.match(r"book/(\d+)_", docname)
        if chapter and "exercise" in kinds:
            kinds["exercise"] = {
                ident: (int(chapter.group(1)), n)
                for n, ident in enumerate(kinds["exercise"], start=1)
            }
    return []


class hidden_solution(nodes.Element):
    """Where a gated solution began, in a build with ``hide_solutions``."""


class GatedSolutionStart(SolutionStartDirective):
    """sphinx-exercise's ``solution-start``, leaving a marker where it hides the solution."""

    def run(self):
        out = super().run()
        return [hidden_solution()] if self.env.app.config.hide_solutions else out


class DropHiddenSolutions(SphinxTransform):
    """Remove a hidden gated solution's content: every node from the marker to its end."""

    default_priority = 5

    def apply(self, **kwargs) -> None:
        for marker in list(self.document.findall(hidden_solution)):
            parent = marker.parent
            start = parent.index(marker)
            end = next(
                (i for i in range(start, len(parent)) if isinstance(parent[i], solution_end_node)),
                None,
            )
            if end is None:
                raise ValueError(
                    f"{self.env.docname}: solution-start without a solution-end at the same level"
                )
            del parent[start : end + 1]


def setup(app) -> dict[str, Any]:
    app.setup_extension("sphinx.ext.autodoc")
    app.setup_extension("sphinx_exercise")
    app.add_node(hidden_solution)
    app.add_directive("solution-start", GatedSolutionStart, override=True)
    app.add_transform(DropHiddenSolutions)
    app.connect("doctree-read", colab_edition)
    app.connect("env-get-updated", number_exercises_per_chapter, priority=900)  # Sphinx's: 500
    app.connect("missing-reference", resolve_reexport)
    app.connect("autodoc-skip-member", skip_sklearn_members)
    app.connect("doctree-read", local_colab_badge, priority=400)  # image collector: 500
    return {"parallel_read_safe": True, "parallel_write_safe": True}
