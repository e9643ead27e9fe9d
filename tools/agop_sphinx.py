"""Sphinx glue for the book's API pages (loaded through `sphinx: local_extensions` in _config.yml).

* A cross-reference to a name as readers call it, ``agop.ConvRFM``, resolves to where autodoc
  documents it, ``agop.rfm.ConvRFM``: the package re-exports names lazily (``agop._EXPORTS``).
* Methods that scikit-learn writes into every estimator class (``set_fit_request`` and the like,
  for metadata routing) are not part of agop's API and are left out of the reference.
* The chapters' Colab badge (an image on Google's server, so that it shows on GitHub and in
  Colab) is drawn from a local copy, tools/colab-badge.svg, so that the book shows it offline.
"""

from __future__ import annotations

from typing import Any

from docutils import nodes

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
        env, node.get("refdoc", ""), app.builder, node["reftype"], full, node, contnode)


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


def setup(app) -> dict[str, Any]:
    app.setup_extension("sphinx.ext.autodoc")
    app.connect("missing-reference", resolve_reexport)
    app.connect("autodoc-skip-member", skip_sklearn_members)
    app.connect("doctree-read", local_colab_badge, priority=400)  # image collector: 500
    return {"parallel_read_safe": True, "parallel_write_safe": True}
