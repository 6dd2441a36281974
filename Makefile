# The README's two commands: `make demo` and `make test`. Both set up what they need and are idempotent.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP_STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed
# checkov pins packaging, boto3 and pycep-parser versions that clash with the project's: it gets a venv of its own.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
CHECKOV_REQS := infra/checkov/requirements.txt infra/checkov/constraints.txt

.PHONY: setup browser test test-full lint unit demo screenshot bench bench-quick bench-failover bench-failover-quick clean lock checkov lock-checkov

setup: $(PIP_STAMP) $(NPM_STAMP)

$(PIP_STAMP): requirements.txt requirements-dev.txt constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), f"Python 3.11 is required, found {sys.version.split()[0]}"'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	@touch $@

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(CHECKOV_STAMP): $(CHECKOV_REQS)
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	@echo '*' > $(CHECKOV_VENV)/.gitignore
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r infra/checkov/requirements.txt -c infra/checkov/constraints.txt
	@touch $@

# The status page's tests drive Debian's chromium through its chromedriver (selenium never downloads a browser).
# Installed only when missing; apt-get needs root (CI runs as root), else sudo.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
		$(SUDO) apt-get update && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y chromium chromium-driver; \
	fi

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

unit: setup
	$(PY) -m pytest tests/unit

# Offline policy scan of infra/ (Bicep): fails on any parse error and on findings not in infra/checkov/allowlist.json.
checkov: $(PIP_STAMP) $(CHECKOV_STAMP)
	$(PY) -m infra.checkov.gate --checkov $(CHECKOV_VENV)/bin/checkov

# Two pytest workers (pytest-xdist) by default, as many as CI's cores; each worker starts its own local stack on
# free ports. worksteal: a worker that runs out takes tests still queued at the other (the slow ones cluster).
TEST_WORKERS ?= 2
PYTEST_PARALLEL := $(if $(filter 0 1,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist worksteal)

test: setup browser lint checkov
	$(PY) -m pytest $(PYTEST_PARALLEL)

# Everything `make test` runs, plus the whole fault matrix of tests/reliability (cells marked `full`).
test-full: setup browser lint checkov
	$(PY) -m pytest $(PYTEST_PARALLEL) -m ""

# docs/img/status.png: the status page in headless chromium during a running backup (tests never write it).
screenshot: setup browser
	VFXTDR_SCREENSHOT=$(CURDIR)/docs/img/status.png $(PY) -m pytest -q tests/integration/ui/test_status_page.py -k screenshot

demo: setup
	$(PY) -m devstack demo

bench: setup
	$(PY) bench/copy_bench.py

bench-failover: setup
	$(PY) bench/failover_bench.py

bench-failover-quick: setup
	$(PY) bench/failover_bench.py --quick

bench-quick: setup
	$(PY) bench/copy_bench.py --quick

lock: $(PIP_STAMP)
	$(PY) -m pip freeze --exclude-editable | sed '1i # Exact versions of the whole dependency tree for tests, CI and the demo (regenerate: make lock).' > constraints.txt

lock-checkov: $(CHECKOV_STAMP)
	$(CHECKOV_VENV)/bin/python -m pip freeze --exclude-editable | sed '1i # Exact versions of checkov'"'"'s whole dependency tree in .venv-checkov (regenerate: make lock-checkov).' > infra/checkov/constraints.txt

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) node_modules .pytest_cache .ruff_cache .mypy_cache
