"""Mutation testing of the estimator and experiment modules (`make mutation`).

Each module in ``MODULES`` is mutated by mutmut (pinned in pyproject's ``dev`` extra) and run
against the test files that concern it. mutmut first runs those tests once to record which tests
call which function, then runs each mutant against only the tests that reach the mutated
function, in one worker process.

Every module runs in its own scratch copy of the package and the tests,
``_build/mutation/<module>`` (git-ignored, removed by ``make clean``), from scratch each time, so
the working tree is never touched and no cached verdict survives a change to a test. The
scratch copy's pyproject.toml is the project's, with a ``[tool.mutmut]`` section naming the
module and its tests.

Usage::

    python tools/mutation.py                   # every module in MODULES
    python tools/mutation.py solve splits      # a few of them
    python tools/mutation.py --list            # the modules and their test files
    python tools/mutation.py rfm --verify      # the last run's survivors against today's tests
    python tools/mutation.py edges --only '*x_plot_*'   # the mutants of some functions only

Prints, per module, the mutants killed, the survivors (with their diffs) and the kill rate,
then a summary table. The score counts a mutant that no selected test reaches ("no tests") as
a survivor. Exit status 0 whatever the score: the survivors are judged by hand (see
CONTRIBUTING.md, "Mutation testing").
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import shutil
import subprocess
import sys
import time
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Tests that every estimator answers to: input contracts, failed fits, options against references,
# seeds (each estimator's own argument checks are in its test file).
ESTIMATOR_TESTS = [
    "tests/test_contracts_inputs.py",
    "tests/test_contracts_failed_fit.py",
    "tests/test_contracts_options.py",
    "tests/test_contracts_seeds.py",
]

# Tests that every chapter module answers to: seeds, splits, experiment statistics on planted
# inputs, options against references.
CHAPTER_CONTRACTS = [
    "tests/test_contracts_seeds.py",
    "tests/test_contracts_splits.py",
    "tests/test_contracts_experiments.py",
    "tests/test_contracts_options.py",
]

# module name -> (source file, the test files that concern it)
MODULES: dict[str, tuple[str, list[str]]] = {
    "solve": ("agop/solve.py", ["tests/test_solve.py"]),
    "splits": ("agop/data/splits.py", ["tests/test_data.py", *CHAPTER_CONTRACTS]),
    "edges": (
        "agop_book/ch04_edges.py",
        ["tests/test_ch04_edges.py", "tests/test_widget_views.py", *CHAPTER_CONTRACTS],
    ),
    "local_signals": (
        "agop_book/ch05_deep_convrfm.py",
        [
            "tests/test_ch05_tasks.py",
            "tests/test_ch05_comparison.py",
            "tests/test_ch05_deep_convrfm.py",
            *CHAPTER_CONTRACTS,
        ],
    ),
    "rfm": ("agop/rfm.py", ["tests/test_rfm.py", "tests/test_rfm_fc.py", *ESTIMATOR_TESTS]),
    "deep_rfm": ("agop/deep_rfm.py", ["tests/test_deep_rfm.py", *ESTIMATOR_TESTS]),
    "ansatz": (
        "agop_book/ch01_ansatz.py",
        [
            "tests/test_ch01_ansatz.py",
            "tests/test_ch03_pretrained.py",
            "tests/test_widget_views.py",
            *CHAPTER_CONTRACTS,
        ],
    ),
    "theorem": ("agop_book/ch02_theorem.py", ["tests/test_ch02_theorem.py", *CHAPTER_CONTRACTS]),
    "pretrained": (
        "agop_book/ch03_pretrained.py",
        [
            "tests/test_ch03_pretrained.py",
            "tests/test_book_views.py",
            "tests/test_widget_views.py",
            *CHAPTER_CONTRACTS,
        ],
    ),
    "noise_figures": (
        "agop_book/ch06_local_signals.py",
        ["tests/test_ch06_local_signals.py", "tests/test_widget_views.py", *CHAPTER_CONTRACTS],
    ),
    "other_accounts": (
        "agop_book/ch07_other_accounts.py",
        [
            "tests/test_ch07_emergence_task.py",
            "tests/test_ch07_emergence.py",
            "tests/test_ch07_ansatz.py",
            "tests/test_ch07_locally_connected.py",
            "tests/test_ch07_renormalization.py",
            "tests/test_ch07_convergence.py",
            "tests/test_widget_views.py",
            *CHAPTER_CONTRACTS,
        ],
    ),
}

# The text of the errors a public function raises for bad input is not mutated: tests pin the
# words that matter (the argument's name) with pytest.raises(match=...), and a mutant that
# upper-cases or wraps the rest of a sentence in "XX" measures nothing about the estimators.
# mutmut skips the whole statement on a matching line; the condition that raises is mutated.
DO_NOT_MUTATE = r"^\s*raise \w+\("

KILLED = {"killed", "timeout", "caught by type check", "segfault"}


def _mutmut() -> str:
    """The mutmut command line of this interpreter's environment."""
    script = Path(sys.executable).parent / "mutmut"
    if script.exists():
        return str(script)
    found = shutil.which("mutmut")
    if found is None:
        sys.exit("mutmut is not installed: pip install -e '.[dev]' (pyproject's dev extra pins it)")
    return found


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(item) for item in items) + "]"


def _scratch_copy(name: str, source: str, tests: list[str], workdir: Path) -> Path:
    """A fresh copy of the package and the tests, configured for one module."""
    where = workdir / name
    if where.exists():
        shutil.rmtree(where)
    where.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis", "rendered")
    shutil.copytree(ROOT / "agop", where / "agop", ignore=ignore)
    shutil.copytree(ROOT / "agop_book", where / "agop_book", ignore=ignore)
    shutil.copytree(ROOT / "tests", where / "tests", ignore=ignore)
    pyproject = (ROOT / "pyproject.toml").read_text()
    pyproject += (
        "\n[tool.mutmut]\n"
        'source_paths = ["agop", "agop_book"]\n'
        f"only_mutate = {_toml_list([source])}\n"
        f"pytest_add_cli_args_test_selection = {_toml_list(tests)}\n"
        'pytest_add_cli_args = ["-p", "no:cacheprovider"]\n'
        f"do_not_mutate_patterns = {_toml_list([DO_NOT_MUTATE])}\n"
        "use_git_change_detection = false\n"
    )
    (where / "pyproject.toml").write_text(pyproject)
    return where


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    return done.stdout + done.stderr


def _statuses(where: Path, source: str) -> dict[str, str]:
    """mutant name -> status, from mutmut's record of the run."""
    meta = json.loads((where / "mutants" / (source + ".meta")).read_text())
    codes = {
        1: "killed",
        3: "killed",
        0: "survived",
        5: "no tests",
        33: "no tests",
        34: "skipped",
        36: "timeout",
        37: "caught by type check",
        24: "timeout",
        -24: "timeout",
        152: "timeout",
        255: "timeout",
        -11: "segfault",
        -9: "segfault",
        None: "not checked",
    }
    return {key: codes.get(code, "suspicious") for key, code in meta["exit_code_by_key"].items()}


def run_module(
    name: str, workdir: Path, show_diffs: bool, report_only: bool, only: list[str] | None = None
) -> dict[str, object]:
    """Run mutmut on module ``name`` (or report its last run): every mutant, or those whose
    names match one of the ``only`` patterns (fnmatch, e.g. ``'*x_plot_*'``)."""
    source, tests = MODULES[name]
    where = workdir / name if report_only else _scratch_copy(name, source, tests, workdir)
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # mutmut puts its mutated copy first on the path
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", AGOP_OFFLINE="1", MPLBACKEND="Agg")
    env.setdefault("AGOP_PROFILE", "quick")
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    print(f"== {name}: {source} against {' '.join(tests)}", flush=True)
    start = time.monotonic()
    if report_only:
        log = (where / "mutmut-run.log").read_text() if where.exists() else "no run"
    else:
        log = _run([_mutmut(), "run", "--max-children", "1", *(only or [])], where, env)
        (where / "mutmut-run.log").write_text(log)
    seconds = time.monotonic() - start
    try:
        statuses = _statuses(where, source)
    except (OSError, ValueError, KeyError):
        print(log[-4000:])
        print(f"   mutmut failed on {name}: see {where / 'mutmut-run.log'}", flush=True)
        return {"module": name, "failed": True, "seconds": seconds}
    if only:
        statuses = {k: s for k, s in statuses.items() if any(fnmatch(k, p) for p in only)}
    killed = sorted(k for k, s in statuses.items() if s in KILLED)
    survivors = sorted(k for k, s in statuses.items() if s not in KILLED and s != "skipped")
    counted = len(killed) + len(survivors)
    rate = 100.0 * len(killed) / counted if counted else 100.0
    for key in survivors:
        print(f"   {statuses[key]}: {key}")
        if show_diffs:
            diff = _run([_mutmut(), "show", key], where, env)
            body = [line for line in diff.splitlines()[1:] if line.startswith(("-", "+", "@"))]
            print(
                "\n".join("      " + line for line in body if not line.startswith(("---", "+++")))
            )
    print(
        f"   {name}: {len(killed)}/{counted} killed ({rate:.1f} %), "
        f"{len(survivors)} survivors, {seconds:.0f} s",
        flush=True,
    )
    return {
        "module": name,
        "killed": len(killed),
        "mutants": counted,
        "rate": rate,
        "survivors": survivors,
        "seconds": seconds,
    }


def _apply(source: str, name: str, diff: str) -> str | None:
    """``source`` with the mutation of ``mutmut show NAME``'s ``diff`` applied: each hunk's old
    text replaced by its new text, searched from the mutated function's ``def`` on (mutmut
    prints methods dedented by one level). ``None`` if a hunk is not found (the code changed)."""
    qualified = name.rsplit("__mutmut_", 1)[0].split(".")[-1]  # x_f or x\u01c1Class\u01c1f
    owner, _, function = qualified[1:].rpartition("\u01c1")
    owner, function = owner.strip("\u01c1"), function if owner else qualified[2:]
    start = source.find(f"class {owner}(") if owner else 0
    start = source.find(f"def {function}(", max(start, 0))
    if start < 0:
        return None
    start = source.rfind("\n", 0, start) + 1  # the line of the def, indentation included
    hunks: list[tuple[list[str], list[str]]] = []
    for line in diff.splitlines():
        if line.startswith("@@"):
            hunks.append(([], []))
        elif hunks and line[:1] in (" ", "-", "+") and not line.startswith(("---", "+++")):
            old, new = hunks[-1]
            if line[0] != "+":
                old.append(line[1:])
            if line[0] != "-":
                new.append(line[1:])
    for old, new in hunks:
        while old and new and old[0] == new[0] == "":  # blank context before the def
            old.pop(0), new.pop(0)
        # the context lines as shown, then without them: a docstring's lines keep their
        # indentation in mutmut's dedented method, so a hunk that opens in one matches neither
        trimmed_old, trimmed_new = list(old), list(new)
        while trimmed_old and trimmed_new and trimmed_old[0] == trimmed_new[0]:
            trimmed_old.pop(0), trimmed_new.pop(0)
        while trimmed_old and trimmed_new and trimmed_old[-1] == trimmed_new[-1]:
            trimmed_old.pop(), trimmed_new.pop()
        tries = [(old, new, indent) for indent in ("", "    ")]
        if trimmed_old:
            tries += [(trimmed_old, trimmed_new, indent) for indent in ("", "    ")]
        for old_lines, new_lines, indent in tries:
            before = "\n".join(indent + x if x else x for x in old_lines)
            at = source.find(before, start)
            if at >= 0:
                after = "\n".join(indent + x if x else x for x in new_lines)
                source = source[:at] + after + source[at + len(before) :]
                break
        else:
            return None
    return source


def verify(name: str, workdir: Path, mutants: list[str], tests: list[str]) -> dict[str, str]:
    """Each mutant of ``mutants`` (default: the survivors of the last run of module ``name``)
    applied in memory to this tree's module (its functions' code objects and defaults swapped
    for the mutated ones, the files untouched) and run against ``tests`` (default: the
    module's) with ``pytest -x -q``, all in this process: mutant -> killed, survived or
    "does not apply" (the function changed since the run)."""
    import importlib

    import pytest

    source_file, module_tests = MODULES[name]
    where = workdir / name
    if not mutants:
        statuses = _statuses(where, source_file)
        mutants = sorted(k for k, s in statuses.items() if s == "survived")
    tests = tests or module_tests
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    dotted = source_file.removesuffix(".py").replace("/", ".")
    live = importlib.import_module(dotted)
    source = (ROOT / source_file).read_text()
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    verdicts: dict[str, str] = {}
    for key in mutants:
        mutated = _apply(source, key, _run([_mutmut(), "show", key], where, env))
        if mutated is None:
            verdicts[key] = "does not apply"
            print(f"   does not apply: {key}", flush=True)
            continue
        scratch = type(live)(dotted + "_mutant")
        scratch.__dict__["__file__"] = live.__file__
        sys.modules[scratch.__name__] = scratch  # dataclasses look their module up
        exec(compile(mutated, live.__file__, "exec"), scratch.__dict__)
        swapped = []
        for attr, obj in vars(scratch).items():  # swap the functions whose code differs
            targets = [(obj, getattr(live, attr, None))]
            if isinstance(obj, type):
                targets = [(v, vars(getattr(live, attr)).get(k)) for k, v in vars(obj).items()]
            for new, old in targets:
                new = getattr(new, "fget", getattr(new, "__func__", new))
                old = getattr(old, "fget", getattr(old, "__func__", old))
                # scikit-learn wraps a transformer's ``transform`` (set_output): the wrapper's
                # code is the same for both, the function it calls is the mutated one
                new, old = inspect.unwrap(new), inspect.unwrap(old)
                if not (hasattr(new, "__code__") and hasattr(old, "__code__")):
                    continue
                if getattr(old, "__module__", None) != dotted:
                    continue
                state = (old.__code__, old.__defaults__, old.__kwdefaults__)
                if (new.__code__, new.__defaults__, new.__kwdefaults__) != state:
                    swapped.append((old, state))
                    old.__code__ = new.__code__
                    old.__defaults__, old.__kwdefaults__ = new.__defaults__, new.__kwdefaults__
        try:
            code = pytest.main(
                [*tests, "-x", "-q", "--tb=no", "-p", "no:cacheprovider", "--no-header"]
            )
        finally:
            for old, (code_, defaults, kwdefaults) in swapped:
                old.__code__, old.__defaults__, old.__kwdefaults__ = code_, defaults, kwdefaults
        verdicts[key] = "survived" if code == 0 else "killed"
        print(f"   {verdicts[key]}: {key}", flush=True)
    counts = {v: sum(1 for x in verdicts.values() if x == v) for v in set(verdicts.values())}
    print(f"   {name}: {len(verdicts)} mutants re-checked: {counts}", flush=True)
    return verdicts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help=f"among {', '.join(MODULES)} (default: all)")
    parser.add_argument("--list", action="store_true", help="list the modules and their tests")
    parser.add_argument("--workdir", type=Path, default=ROOT / "_build" / "mutation")
    parser.add_argument("--no-diffs", action="store_true", help="name the survivors only")
    parser.add_argument(
        "--report", action="store_true", help="report the last run again, without running"
    )
    parser.add_argument("--json", type=Path, help="also write the scores to this file")
    parser.add_argument(
        "--verify",
        nargs="*",
        metavar="MUTANT",
        help="without running mutmut: apply these mutants (default: the last run's survivors) "
        "of one module to this tree in memory and run the module's tests (or --tests)",
    )
    parser.add_argument("--tests", nargs="*", default=[], help="the test files for --verify")
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="PATTERN",
        help="run and count only the mutants whose names match these patterns "
        "(fnmatch: '*x_plot_*' for every function whose name starts with plot_)",
    )
    args = parser.parse_args(argv)
    if args.list:
        for name, (source, tests) in MODULES.items():
            print(f"{name:16} {source:38} {' '.join(tests)}")
        return 0
    names = [m for chunk in args.modules for m in chunk.replace(",", " ").split()] or list(MODULES)
    unknown = [m for m in names if m not in MODULES]
    if unknown:
        parser.error(f"unknown module(s) {', '.join(unknown)}: choose among {', '.join(MODULES)}")
    if args.verify is not None:
        if len(names) != 1:
            parser.error("--verify takes one module")
        verdicts = verify(names[0], args.workdir, args.verify, args.tests)
        if args.json is not None:
            args.json.write_text(json.dumps(verdicts, indent=1) + "\n")
        return 0
    results = [
        run_module(name, args.workdir, not args.no_diffs, args.report, args.only) for name in names
    ]
    print("\nmodule            killed / mutants   kill rate   survivors   time")
    for r in results:
        if r.get("failed"):
            print(f"{r['module']:16}  mutmut failed (log in {args.workdir / str(r['module'])})")
            continue
        print(
            f"{r['module']:16}  {r['killed']:>6} / {r['mutants']:<7}  {r['rate']:8.1f} %"
            f"   {len(r['survivors']):>9}   {r['seconds']:.0f} s"
        )
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
