# agop: `make book` builds the book, `make test` runs every test.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
VENV ?= .venv
PY := $(VENV)/bin/python
export AGOP_PROFILE ?= quick
export PYDEVD_DISABLE_FILE_VALIDATION := 1
# Tests never download: datasets and pretrained weights come from disk or raise a clear error.
export AGOP_OFFLINE ?= 1
# A sentence of the prose that the run contradicts fails the build and the tests
# (agop_book.notebook.claim); in Colab or a reader's Jupyter it only shows a note.
export AGOP_CLAIMS ?= strict
# OpenMP threads sleep instead of spinning at barriers: on a small shared machine, spinning
# threads of two processes (a chapter's kernel and anything else) slow each other 10-50x.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: chromium venv book book-fresh book-student lint test test-package test-doctest \
	test-notebooks test-paper test-colab \
	test-book notebooks vendor bench mutation clean

$(VENV)/.installed: pyproject.toml tools/install_torch.sh
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	PYTHON=$(PY) tools/install_torch.sh
	$(PY) -m pip install -e ".[dev]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

venv: $(VENV)/.installed

# Offline copies of MathJax, require.js and the widget manager, served by the book itself.
# Versions: tools/package.json, pinned by tools/package-lock.json. Needs npm (and the npm
# registry) once; the built book needs neither.
_vendor/.done: tools/vendor.sh tools/package.json tools/package-lock.json
	@command -v npm >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; \
	  else echo "make vendor needs npm: install it (Debian: apt-get install npm)"; exit 1; fi; }
	tools/vendor.sh _vendor
	touch $@

vendor: _vendor/.done

# Regenerate each chapter's .ipynb from its .md (one way; the .md is the source), with plain
# markdown where the .md has MyST (glue roles, citations, dropdowns), the values and numbers of
# the last `make book` (book/_reference.json): see tools/make_notebooks.py.
notebooks: venv
	$(PY) tools/make_notebooks.py

# The chapters' kernels must draw with matplotlib's inline backend: never export
# MPLBACKEND=Agg to them, or every figure is left out of the book.
book: venv vendor
	env -u MPLBACKEND $(VENV)/bin/jupyter-book build . -W -n --keep-going

# The student edition: the same book without any solution, in the pages and in the notebooks
# its Colab links open (student/book/*.ipynb, written by `make notebooks`). _config.student.yml
# on top of _config.yml; built into _build/student/_build/html. It shares `make book`'s
# execution cache (the code is the same), so after `make book` it only re-renders (every page:
# --all, about 20 s).
book-student: venv vendor
	$(PY) tools/student_config.py _build/student/_config.yml
	env -u MPLBACKEND $(VENV)/bin/jupyter-book build . -W -n --keep-going --all \
	  --config _build/student/_config.yml --path-output _build/student

# The same build with an empty execution cache: every chapter runs from scratch.
book-fresh: venv vendor
	rm -rf _build/.jupyter_cache
	$(MAKE) book

# Static checks, configured in pyproject.toml: ruff's lint rules, ruff's formatting (checked,
# never applied here: `ruff format agop agop_book tests tools` applies it) and mypy's types.
# .pre-commit-config.yaml runs the same three commands before each commit.
lint: venv
	$(VENV)/bin/ruff check agop agop_book tests tools
	$(VENV)/bin/ruff format --check agop agop_book tests tools
	$(VENV)/bin/mypy agop agop_book

# One test may take at most TEST_TIMEOUT seconds (pytest-timeout): a hang fails that test by name.
# The slowest (chapter 07's from-scratch cells, run full and emptied) takes about 2.5 minutes
# on 2 busy cores.
TEST_TIMEOUT ?= 600

test-package: venv
	$(PY) -m pytest tests --ignore=tests/rendered --durations=10 --timeout=$(TEST_TIMEOUT)

# Every docstring's example, run as a doctest (tiny float64 inputs, about 20 s in all), on the
# CPU even where CUDA is present: the examples print CPU results and compare with CPU tensors.
test-doctest: venv
	CUDA_VISIBLE_DEVICES= $(PY) -m pytest --doctest-modules agop agop_book -p no:cacheprovider --durations=5 \
	  --timeout=$(TEST_TIMEOUT)

test-notebooks: venv
	$(PY) -m pytest --nbval-lax --nbval-cell-timeout=600 --durations=0 -p no:cacheprovider book/

# Headless Chromium renders the built pages in tests/rendered (Debian's package).
chromium:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "make test needs chromium: install it (Debian: apt-get install chromium)"; exit 1; fi; }

test-book: book-fresh book-student chromium
	$(PY) -m pytest tests/rendered --durations=5 -p no:cacheprovider --timeout=$(TEST_TIMEOUT)

# Every chapter in the paper profile at smoke scale, on fabricated files in torchvision's layouts
# and a temporary torch hub cache (tests/paper_smoke.py). No download.
test-paper: venv
	$(PY) -m pytest tests/paper_smoke.py --durations=0 -p no:cacheprovider --timeout=$(TEST_TIMEOUT)

# Every book/*.ipynb run as a Colab reader would and validated by nbval: a fresh venv without
# myst-nb, Jupyter Book or Sphinx, ipywidgets 7.7.x, agop installed from a wheel by the
# notebooks' own install cell.
test-colab: venv
	PYTHON=$(PY) tools/colab_like.sh --nbval-lax --nbval-cell-timeout=420

# test-colab validates every notebook with nbval (pytest --nbval-lax) in a fresh Colab-like venv,
# and test-book executes every chapter again in the book build; test-notebooks (nbval in this
# venv) would be a third run, so `make test` leaves it out. The static checks run first: they
# take seconds and fail fast.
test: lint test-package test-doctest test-paper test-colab test-book

bench: venv
	$(PY) -m agop_book.bench --size quick

# Mutation testing (not part of `make test`: tens of minutes per module): mutmut mutates each
# module where estimator and experiment logic live and runs the tests that concern it, one
# worker, in a scratch copy under _build/mutation; prints each module's kill rate and its
# surviving mutants. `make mutation MODULES="solve splits"` runs a few (tools/mutation.py
# --list names them). Triage of the survivors: CONTRIBUTING.md, "Mutation testing".
MODULES ?=
mutation: venv
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) tools/mutation.py $(MODULES)

clean:
	rm -rf _build
