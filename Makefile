# `make demo`: the example app on the embedded file store (no Redis) at http://127.0.0.1:8000
# `make test`: installs everything the tests need on a fresh machine, then runs every check.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements-dev.txt | cksum | cut -d' ' -f1)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo demo-seed test lint typecheck pytest js-test system-deps venv clean bench

venv: $(STAMP)

$(STAMP): pyproject.toml requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e . -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $@

# Debian packages the tests drive for real (no mocks): Redis and Sentinel, Chromium for
# the browser tests, HAProxy for the drain end-to-end test, nginx for its pinning recipe,
# faketime for a deploy host whose clock is past Python's.
# Installed only when missing.
system-deps:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v redis-sentinel >/dev/null || missing="$$missing redis-sentinel"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v haproxy >/dev/null || missing="$$missing haproxy"; \
	command -v nginx >/dev/null || missing="$$missing nginx"; \
	command -v npm >/dev/null || missing="$$missing nodejs npm"; \
	command -v openssl >/dev/null || missing="$$missing openssl"; \
	command -v wrk >/dev/null || missing="$$missing wrk"; \
	command -v faketime >/dev/null || missing="$$missing faketime"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

# The JS helper: unit tests with node:test + happy-dom, the check that the wheel's
# copy of the script-tag build is fresh, and the size budget (docs/js.md).
js-test: system-deps
	cd js && npm ci --no-audit --no-fund && npm test

# The first run seeds the store before the server starts. That bump's note "no process
# follows it yet" is true then and only alarms (README, "The CLI"): it is shown only if
# the bump fails, with the error.
demo-seed: venv
	@if [ "$$($(BIN)/spa-version get --json)" = "null" ]; then \
	  out=$$($(BIN)/spa-version bump demo-1 --note "first demo release" 2>&1 >/dev/null) \
	    || { printf '%s\n' "$$out" >&2; exit 1; }; \
	  echo "  seeded the demo store with release demo-1"; fi

demo: demo-seed
	@echo
	@echo "  spa-version demo on http://127.0.0.1:8000 (store: file://.spa-version, no Redis)"
	@echo "  try:   curl -sI http://127.0.0.1:8000/ | grep -i x-spa-version"
	@echo "  bump:  $(BIN)/spa-version bump"
	@echo
	$(BIN)/uvicorn --app-dir examples/starlette_app app:app --host 127.0.0.1 --port 8000

lint: venv
	$(BIN)/ruff check src tests examples bench
	$(BIN)/ruff format --check src tests examples bench

typecheck: venv
	$(BIN)/mypy src

# pytest exits 5 when it collects nothing; say so plainly instead of failing on it.
pytest: venv system-deps
	$(BIN)/pytest; rc=$$?; \
	if [ $$rc = 5 ]; then echo "pytest: no tests were collected"; exit 0; fi; exit $$rc

test: lint typecheck js-test pytest

# `make bench`: every benchmark (wrk throughput, in-process cost + profile, Redis commands
# per request, Django under gunicorn and uvicorn, propagation to 4 workers, fan-out to 1,000
# listeners and 64 file-store processes, drain, worker memory, a tab's cost in Chromium, JS
# sizes); tables in bench/results/, written up in docs/benchmarks.md. Takes about 10 minutes
# on 2 cores; BENCH_ARGS=--quick for a smoke run (about 3 minutes).
bench: venv system-deps
	$(BIN)/python -m bench.run_all $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .spa-version .pytest_cache .mypy_cache .ruff_cache
