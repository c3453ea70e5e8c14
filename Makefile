# `make demo`: the example app on the embedded file store (no Redis) at http://127.0.0.1:8000
# `make test`: installs everything the tests need on a fresh machine, then runs every check.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The test environment: exact versions with their hashes (`make lock` writes them).
LOCK := requirements/dev.txt
UV := UV_LINK_MODE=copy $(BIN)/uv
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements/uv.txt $(LOCK) | cksum | cut -d' ' -f1)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo demo-seed test test-deps lock lock-upgrade lint typecheck pytest js-test js-deps system-deps venv clean bench

venv: $(STAMP)

# uv installs and locks; it comes from its own hashed pin, with the pip that venv brings.
$(BIN)/uv: requirements/uv.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --require-hashes --no-deps -r requirements/uv.txt
	touch $@

# Exactly the lock: `uv pip sync` removes whatever the lock does not list, so a green run
# stays green until someone changes the lock. The package itself is built by the locked
# hatchling, without reaching the index.
$(STAMP): pyproject.toml $(LOCK) $(BIN)/uv
	$(UV) pip sync -q --python $(BIN)/python --require-hashes $(LOCK)
	$(UV) pip install -q --python $(BIN)/python --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-*
	touch $@

# `make lock`: resolve what changed in requirements/*.in or pyproject.toml, keeping every
# other pin; `make lock-upgrade`: re-resolve every range to today's newest. Each writes
# requirements/dev.txt and requirements/lowest.txt (the runtime dependencies at the lowest
# versions pyproject.toml declares, with test tools that fit them). Commit the result once
# `make test test-deps` pass.
COMPILE := $(UV) pip compile -q --universal --python-version 3.11 --generate-hashes $(LOCK_FLAGS)
lock: $(BIN)/uv
	$(COMPILE) requirements/uv.in -o requirements/uv.txt
	$(COMPILE) pyproject.toml requirements/dev.in --all-extras -o $(LOCK)
	$(UV) pip compile -q --python-version 3.11 --no-deps --no-header --no-annotate \
	  --resolution lowest-direct pyproject.toml --all-extras -o requirements/minimums.txt
	$(COMPILE) pyproject.toml requirements/dev.in --all-extras -c requirements/minimums.txt \
	  -o requirements/lowest.txt

lock-upgrade:
	$(MAKE) lock LOCK_FLAGS=--upgrade

# `make test-deps`: the suites that touch a runtime dependency (stores, listener, options,
# both middlewares, Django, the server matrix), run twice in their own venvs: with redis-py,
# Django and asgiref at the lowest versions pyproject.toml declares (requirements/lowest.txt),
# and with today's newest redis-py, Django, asgiref and servers (docs/servers.md).
test-deps: system-deps $(BIN)/uv
	requirements/test-deps lowest
	requirements/test-deps newest

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

# esbuild (js/ devDependencies) bundles the code-split builds tests/assets publishes.
js-deps: system-deps
	test -x js/node_modules/.bin/esbuild || (cd js && npm ci --no-audit --no-fund)

# pytest exits 5 when it collects nothing; say so plainly instead of failing on it.
pytest: venv system-deps js-deps
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
	rm -rf $(VENV) $(VENV)-lowest $(VENV)-newest .spa-version .pytest_cache .mypy_cache .ruff_cache
