# Podium developer tasks. `make test` is the README's test command and what CI runs.
# Rules: everything installs into ./.venv from scratch; nothing is started by hand.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Tools that shell out to other tools (cython-lint -> pycodestyle) find them in the venv.
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: venv build annotate test test-compiled test-pure lint bench bench-check clean run

$(STAMP): pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip "setuptools>=77"
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# Recompile the hot path in place (editable installs do not rebuild on their own).
build: $(STAMP)
	$(PY) setup.py -q build_ext --inplace

annotate: $(STAMP)
	PODIUM_HOTPATH_DEBUG=1 $(PY) setup.py -q build_ext --inplace --force

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/cython-lint hotpath

# The whole suite on the compiled hot path, then the hot-path and core tests
# again on the pure-Python twin (the server tests also run pure in CI's second pass).
test: build lint test-compiled test-pure

test-compiled: build
	PODIUM_PURE_PYTHON=0 $(VENV)/bin/pytest -q

test-pure: build
	PODIUM_PURE_PYTHON=1 $(VENV)/bin/pytest -q tests/core tests/hotpath -p no:cacheprovider

bench: build
	$(VENV)/bin/pytest bench --benchmark-only --benchmark-disable-gc --benchmark-group-by=group --benchmark-columns=min,median,mean,rounds

bench-check: build
	$(PY) -m bench.check

run: build
	$(VENV)/bin/podium server --samples

clean:
	rm -rf build $(VENV) hotpath/*.so hotpath/*.c hotpath/*.html .pytest_cache .mypy_cache .ruff_cache
