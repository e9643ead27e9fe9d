"""Sphinx glue for the book's API pages (loaded through `sphinx: local_extensions` in _config.yml).

* A cross-reference to a name as readers call it, ``agop.ConvRFM``, resolves to where autodoc
  documents it, ``agop.rfm.ConvRFM``: the package re-exports names lazily (``agop._EXPORTS``).
* Methods that scikit-learn writes into every estimator class (``set_fit_request`` and the like,
  for metadata routing) are not part of agop's API and are left out of the reference.
* The chapters' Colab badge (an image on Google's server, so that it shows on GitHub and in
  Colab) is drawn from a local copy, tools/colab-badge.svg, so that the book shows it offline.
* Figures, equations and exercises are numbered per chapter by Sphinx itself (``numfig`` under
  the numbered toctrees of _toc.yml: chapter 4 is book/04_*.md, its second figure Figure 4.2,
  the appendices A, B, C, D; the preface's numbers have no prefix).
* Notebooks execute through nbclient with kernel messages read in one-second polls
  (``execute.poll_in_slices``, tools/execute.py): a missed socket wake-up otherwise holds a
  cell until its 600 s timeout.
* The book's reference run, ``book/_reference.json``: after an HTML build, each chapter's number,
  the numbers Sphinx gave its figures, equations and exercises, and the value of every number it
  glued (``text/plain``, as myst-nb stores it), for tools/make_notebooks.py, which writes them
  into the notebooks' text without running anything. Rewritten only when it changed.
* The student edition (``make book-student``: ``hide_solutions`` and ``repository.path_to_book:
  student``, from _config.student.yml). sphinx-exercise drops a ``{solution}`` but, for a gated
  ``{solution-start}`` ... ``{solution-end}``, only the directive: the text and code cells between
  would stay. Here they go too. And the chapters' Colab badges, like the launch buttons, open
  ``<path_to_book>/book/NN_*.ipynb``: the solution-free notebooks of tools/make_notebooks.py.
  A code cell tagged ``from-scratch`` shows its skeleton, as the student notebooks do
  (``make_notebooks.skeleton``: each function's body emptied to ``...``); its outputs, and the
  check cell's after it, are those of the full code, which the build executed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from docutils import nodes
from execute import poll_in_slices  # tools/, on the path as a local extension
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


REFERENCE = "book/_reference.json"  # relative to the book's root
_PAGE = re.compile(r"book/\d\d_\w+$")


def _numbers(env, docname: str, figtype: str, ids: dict[str, str]) -> dict[str, str]:
    """``{label: "4.2"}``: the number Sphinx gave each node of ``figtype`` (``ids``: label to
    node id) in ``docname``."""
    numbers = env.toc_fignumbers.get(docname, {}).get(figtype, {})
    return {
        label: ".".join(map(str, numbers[node_id]))
        for label, node_id in sorted(ids.items())
        if node_id in numbers
    }


def _glued_values(app, docname: str) -> dict[str, str]:
    """The ``text/plain`` of each value ``docname`` glued (figures left out), from the glue data
    myst-nb writes beside the executed notebook."""
    path = Path(app.env.mystnb_config.output_folder, *f"{docname}.glue.json".split("/"))
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return {
        key: out["data"]["text/plain"]
        for key, out in sorted(data.items())
        if "text/plain" in out.get("data", {})
        and not any(k.startswith("image/") for k in out["data"])
    }


def reference_run(app) -> dict[str, Any]:
    """What tools/make_notebooks.py needs from the built book, per page ``book/NN_name``: its
    title, its chapter number (None for the preface), its labelled sections (anchor and title),
    its figures', equations' and exercises' numbers by label, and its glued values."""
    env = app.env
    std, math = env.get_domain("std"), env.get_domain("math")
    pages = {}
    for docname in sorted(d for d in env.found_docs if _PAGE.match(d)):
        labels = {k: v[1] for k, v in std.anonlabels.items() if v[0] == docname}
        equations = {
            k: nodes.make_id(f"equation-{k}") for k, v in math.equations.items() if v[0] == docname
        }
        secnumber = env.titles[docname].get("secnumber")
        figures = _numbers(env, docname, "figure", labels)
        exercises = _numbers(env, docname, "exercise", labels)
        sections = {i for s in env.get_doctree(docname).findall(nodes.section) for i in s["ids"]}
        pages[docname.removeprefix("book/")] = {
            "title": env.titles[docname].astext(),
            "chapter": ".".join(map(str, secnumber)) if secnumber else None,
            "sections": {
                k: [anchor, title]
                for k, (doc, anchor, title) in sorted(std.labels.items())
                if doc == docname and anchor in sections
            },
            "figures": figures,
            "equations": _numbers(env, docname, "displaymath", equations),
            "exercises": exercises,
            "glue": _glued_values(app, docname),
        }
    return {
        "about": (
            "Written by the book build (tools/agop_sphinx.py) from its reference run: the quick "
            "profile on 2 CPU cores. Read by tools/make_notebooks.py; do not edit by hand."
        ),
        "pages": pages,
    }


def write_reference(app, exception) -> None:
    """``build-finished``: write ``book/_reference.json`` when it changed (HTML builds of the
    instructor's edition only; the student edition numbers and computes the same)."""
    if exception is not None or app.builder.name != "html" or app.config.hide_solutions:
        return
    text = json.dumps(reference_run(app), indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    path = Path(app.srcdir) / REFERENCE
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


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


FROM_SCRATCH_CLASS = "tag_from-scratch"  # myst-nb's class for a cell tagged from-scratch


class SkeletonFromScratch(SphinxTransform):
    """In a build with ``hide_solutions``, show each ``from-scratch`` cell's source as its
    skeleton: the student fills the functions in."""

    default_priority = 6

    def apply(self, **kwargs) -> None:
        if not self.config.hide_solutions:
            return
        from make_notebooks import skeleton  # tools/, on the path as a local extension's folder

        for cell in self.document.findall(nodes.container):
            if FROM_SCRATCH_CLASS not in cell.get("classes", []):
                continue
            for block in cell.findall(nodes.literal_block):
                if "cell_input" not in block.parent.get("classes", []):
                    continue  # an output, not the source
                text, emptied = skeleton(block.astext())
                if emptied:
                    block.rawsource = text
                    block.children = [nodes.Text(text)]


def setup(app) -> dict[str, Any]:
    poll_in_slices()
    app.setup_extension("sphinx.ext.autodoc")
    app.setup_extension("sphinx_exercise")
    app.add_node(hidden_solution)
    app.add_directive("solution-start", GatedSolutionStart, override=True)
    app.add_transform(DropHiddenSolutions)
    app.add_transform(SkeletonFromScratch)
    app.connect("doctree-read", colab_edition)
    app.connect("build-finished", write_reference)
    app.connect("missing-reference", resolve_reexport)
    app.connect("autodoc-skip-member", skip_sklearn_members)
    app.connect("doctree-read", local_colab_badge, priority=400)  # image collector: 500
    return {"parallel_read_safe": True, "parallel_write_safe": True}
