# The README's two commands: `make demo` and `make test`. Both set up what they need and are idempotent.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP_STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed

.PHONY: setup test lint unit demo bench bench-quick clean lock

setup: $(PIP_STAMP) $(NPM_STAMP)

$(PIP_STAMP): requirements.txt requirements-dev.txt constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), f"Python 3.11 is required, found {sys.version.split()[0]}"'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	@touch $@

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

unit: setup
	$(PY) -m pytest tests/unit

test: setup lint
	$(PY) -m pytest

demo: setup
	$(PY) -m devstack demo

bench: setup
	$(PY) bench/copy_bench.py

bench-quick: setup
	$(PY) bench/copy_bench.py --quick

lock: $(PIP_STAMP)
	$(PY) -m pip freeze --exclude-editable | sed '1i # Exact versions of the whole dependency tree for tests, CI and the demo (regenerate: make lock).' > constraints.txt

clean:
	rm -rf $(VENV) node_modules .pytest_cache .ruff_cache .mypy_cache
