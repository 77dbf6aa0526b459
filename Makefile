# primeguard: every target sets up what it needs (venv, npm toolchain, contracts) on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
TOOLCHAIN := infra/toolchain
STAMP_PY := $(VENV)/.installed
STAMP_NPM := $(TOOLCHAIN)/node_modules/.installed
FORGE := $(TOOLCHAIN)/node_modules/@foundry-rs/forge-linux-amd64/bin/forge
PYTEST_ARGS ?=

.PHONY: setup test test-fast demo bench lint contracts clean browser

setup: $(STAMP_PY) $(STAMP_NPM)

$(STAMP_PY): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c requirements.lock -e '.[dev]'
	touch $@

$(STAMP_NPM): $(TOOLCHAIN)/package.json $(TOOLCHAIN)/package-lock.json
	# npm ci installs exactly the committed lock file and never rewrites it (npm install did, leaving
	# the work tree dirty after `make test`); it fails when package.json and the lock disagree.
	cd $(TOOLCHAIN) && npm ci --no-audit --no-fund --loglevel=error
	chmod +x $(TOOLCHAIN)/solc-shim
	test -e contracts/lib/openzeppelin/contracts  # committed symlink into the npm install
	touch $@

# Build the Foundry project and export ABIs + bytecode into the package (nothing calls forge at run time).
contracts: setup
	cd contracts && ../$(FORGE) build --offline --use ../$(TOOLCHAIN)/solc-shim
	$(PY) -m primeguard.sandbox.toolchain export

# Three workers, one test file each at a time (a file's module-scoped world is built once): most of
# the suite waits on subprocesses, anvil and sockets, so three keep two cores busy.
test: setup browser
	$(PY) -m pytest -q -n 3 --dist loadfile --no-loadscope-reorder --durations=15 $(PYTEST_ARGS)

# Debian's chromium for the dashboard's browser tests (installed when we may; skipped otherwise).
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "chromium not installed: browser tests will be skipped"

test-fast: setup
	$(PY) -m pytest -q -m "not chain and not postgres and not browser" $(PYTEST_ARGS)

demo: setup
	$(VENV)/bin/primeguard demo

# Every benchmark runs even when an earlier one misses its target; the JSON lines of all of them
# are repeated at the end, and the exit status is non-zero when any missed (or failed to run).
bench: setup
	@out=$$(mktemp); missed=""; \
	for b in tests/bench/bench_*.py; do \
	  echo "== $$b"; $(PY) $$b | tee -a "$$out"; \
	  [ "$${PIPESTATUS[0]}" = 0 ] || missed="$$missed $$b"; \
	done; \
	echo "== all results"; grep '^{' "$$out" || true; rm -f "$$out"; \
	if [ -n "$$missed" ]; then echo "missed their target or failed:$$missed"; exit 1; fi

lint: setup
	$(VENV)/bin/ruff check agent tests
	$(VENV)/bin/mypy agent/primeguard/domain agent/primeguard/policy agent/primeguard/risk

clean:
	rm -rf contracts/out contracts/cache .pytest_cache var
