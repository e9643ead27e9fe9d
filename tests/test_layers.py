"""The package's dependencies point one way: engine -> estimators -> experiments -> figures and
widgets -> benchmarks. Every import statement of every module (function-local ones too) is
read with ``ast``; no module imports one of a higher layer. Function-local imports are kept
for the dependencies listed in ``LOCAL_IMPORTS`` only."""

import ast
import importlib
import pkgutil
import sys
from pathlib import Path

import pytest

import agop

ROOT = Path(agop.__file__).resolve().parent

# layer of each module, by the longest matching prefix
LAYERS = {
    # 0, the engine: one mathematical idea per module
    "agop._typing": 0,
    "agop.validation": 0,
    "agop.runtime": 0,
    "agop.linalg": 0,
    "agop.patches": 0,
    "agop.features": 0,
    "agop.kernels": 0,
    "agop.solve": 0,
    "agop.data": 0,
    "agop.nets": 0,
    "agop.pretrained": 0,
    "agop.reference": 0,
    "agop.theory": 0,
    "agop.edges": 0,
    "agop.localization": 0,
    # 1, the estimators
    "agop.estimator": 1,
    "agop.rfm": 1,
    "agop.deep_rfm": 1,
    "agop.baseline": 1,
    # 2, the paper's experiments
    "agop.experiments": 2,
    # 3, figures, widgets and the notebook helpers
    "agop.viz": 3,
    "agop.widgets": 3,
    "agop.notebook": 3,
    # 4, the benchmarks
    "agop.bench": 4,
}
NAMES = {0: "engine", 1: "estimators", 2: "experiments", 3: "viz/widgets", 4: "bench"}

# third-party modules imported inside functions, and why
LOCAL_IMPORTS = {
    "torchvision": "seconds to import; agop.data and agop.pretrained stay cheap",
    "sklearn.datasets": "about a second to import; agop.data stays cheap",
    "scipy.io": "0.2 s to import, only for SVHN's .mat files",
    "ipywidgets": "the explorers only",
    "IPython.display": "the explorers and glue only (a notebook's front end)",
    "myst_nb": "the book's build only",
    "pandas": "not a dependency of agop",
    "matplotlib": "runtime and notebook: glue checks figures without importing matplotlib",
    "sklearn": "runtime's environment report (its version)",
}


def layer(module: str) -> int | None:
    best = max(
        (p for p in LAYERS if module == p or module.startswith(p + ".")), key=len, default=None
    )
    return None if best is None else LAYERS[best]


def modules() -> list[str]:
    names = [m.name for m in pkgutil.walk_packages([str(ROOT)], "agop.")]
    return sorted(n for n in names if not n.endswith("__main__"))


def source(module: str) -> Path:
    path = ROOT.joinpath(*module.split(".")[1:])
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def imports(module: str) -> list[tuple[int, str, bool]]:
    """``(line, imported agop module, inside a function)`` for every import of ``module``."""
    tree = ast.parse(source(module).read_text())
    top = set(
        map(
            id,
            ast.walk(
                ast.Module(
                    body=[
                        n
                        for n in tree.body
                        if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                    ],
                    type_ignores=[],
                )
            ),
        )
    )
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the package
                package = (
                    module.rsplit(".", node.level)[0]
                    if not source(module).name == "__init__.py"
                    else module.rsplit(".", node.level - 1)[0]
                )
                base = f"{package}.{node.module}" if node.module else package
            else:
                base = node.module or ""
            # "from agop import data": the submodule agop.data
            targets = [f"agop.{a.name}" for a in node.names] if base == "agop" else [base]
        else:
            continue
        out += [(node.lineno, t, id(node) not in top) for t in targets]
    return out


MODULES = modules()


def test_every_module_has_a_layer_and_imports():
    missing = [m for m in MODULES if layer(m) is None]
    assert not missing, f"add these modules to LAYERS: {missing}"
    for m in MODULES:
        importlib.import_module(m)


@pytest.mark.parametrize("module", MODULES)
def test_no_module_imports_a_higher_layer(module):
    mine = layer(module)
    upward = [
        f"line {line}: {target} ({NAMES[layer(target)]})"
        for line, target, _ in imports(module)
        if target.startswith("agop.") and layer(target) is not None and layer(target) > mine
    ]
    assert not upward, f"{module} ({NAMES[mine]}) imports a higher layer: {upward}"


@pytest.mark.parametrize("module", MODULES)
def test_function_local_imports_are_only_the_listed_ones(module):
    local = [
        f"line {line}: {target}"
        for line, target, inside in imports(module)
        if inside and not any(target == k or target.startswith(k + ".") for k in LOCAL_IMPORTS)
    ]
    assert not local, (
        f"{module} imports inside functions: {local}; import at the top of the "
        "module, or list the dependency in LOCAL_IMPORTS with the reason"
    )


def test_the_checker_sees_an_upward_and_a_local_import(tmp_path, monkeypatch):
    """The AST reader itself: an engine module that imports agop.viz inside a function."""
    fake = tmp_path / "agop"
    (fake / "features.py").parent.mkdir()
    (fake / "features.py").write_text("import torch\n\ndef f():\n    from agop import viz\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", fake)
    found = imports("agop.features")
    assert found == [(1, "torch", False), (4, "agop.viz", True)]
    assert layer("agop.viz") > layer("agop.features")


def test_import_and_first_kernel_call_stay_light():
    """``import agop`` loads no plotting, widget or scikit-learn module, and the first kernel
    call imports no symbolic algebra (``torch.broadcast_shapes`` pulls in sympy on first use,
    0.3-0.8 s, which the arc-cosine step avoids)."""
    import subprocess

    code = (
        "import sys, torch, agop\n"
        "heavy = ('matplotlib', 'ipywidgets', 'sklearn', 'sympy', 'torchvision')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
        "X = torch.rand(3, 1, 6, 6, dtype=torch.float64)\n"
        "agop.kernels.get_kernel('cntk', patch_size=3, depth=2)(X)\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["[]", "[]"], out.stdout + out.stderr
