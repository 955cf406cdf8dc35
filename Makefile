# Every target bootstraps what it needs from nothing: a fresh clone needs only python3.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 9991
# The clients' venv (zulip-term 0.7.0 wants Python < 3.11; see tests/e2e/README.md).
CLIENTS_VENV := .venv-clients

.PHONY: serve test test-fast bench bench-cost lint clients services clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev,redis,sso,saml,twofactor,granian]'
	touch $@

# python-ldap has no wheels: the system headers come first (ensure-services installs
# them), so only `make test` needs them and `make serve` does not.
$(VENV)/.installed-ldap: $(VENV)/.installed
	bash .ci/ensure-services.sh
	$(BIN)/pip install --quiet -e '.[dev,redis,ldap,postgres,sso,saml,twofactor,granian]'
	touch $@

# The demo runs in development mode: /api/v1/dev_fetch_api_key and dev_list_users
# answer (docs/operations.md, "Development mode"). Never for an exposed server.
serve: $(VENV)/.installed
	KEYHOUSE_DEV_MODE=1 $(BIN)/keyhouse demo --host $(HOST) --port $(PORT)
	exec env KEYHOUSE_DEV_MODE=1 $(BIN)/keyhouse serve --host $(HOST) --port $(PORT)

clients: $(CLIENTS_VENV)/.installed

$(CLIENTS_VENV)/.installed: tests/e2e/clients-requirements.txt
	bash tests/e2e/make_clients_venv.sh $(CLIENTS_VENV)
	touch $@

services:
	bash .ci/ensure-services.sh

# The whole suite twice: on SQLite, then on PostgreSQL + Redis. pytest-django makes
# and drops test_keyhouse_test_<pid>, so simultaneous runs never share a database;
# the Redis db (12) is flushed before each test, so such runs take turns (flock).
# The real OpenID provider the SSO tests start (npm oidc-provider, pinned by its lock file).
tests/oidc/node_modules/.package-lock.json: tests/oidc/package-lock.json
	cd tests/oidc && npm ci --no-audit --no-fund --loglevel=error

test: $(VENV)/.installed-ldap $(CLIENTS_VENV)/.installed services tests/oidc/node_modules/.package-lock.json
	$(BIN)/pytest
	KEYHOUSE_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/keyhouse_test_$$$$ \
	KEYHOUSE_REDIS_URL=redis://127.0.0.1:6379/12 \
	flock /tmp/keyhouse-test-redis-12.lock $(BIN)/pytest --create-db

# The edit-run loop: unit and API tests on SQLite, nothing started or installed
# (tests/conftest.py marks what needs services). The Redis URL points at a closed
# port, so a test that reaches for Redis without saying so fails here.
test-fast: $(VENV)/.installed
	env -u KEYHOUSE_DATABASE_URL -u KEYHOUSE_REDIS_URL \
	KEYHOUSE_TEST_REDIS_URL=redis://127.0.0.1:1/0 \
	$(BIN)/pytest -q -m "not services and not e2e and not slow"

# Figures and ratios, never pass/fail (docs/performance.md). BENCH_SECONDS scales every
# duration; bench/setup.sh brings wrk (Debian) and the DRF peer's venv (bench/.venv-peer).
bench: $(VENV)/.installed
	PYTHON=$(PYTHON) bash bench/setup.sh
	$(BIN)/python bench/run.py

# Instructions per login (outside Argon2) and per users/me, by phase, counted by
# valgrind's callgrind (Debian's; installed if missing): repeatable where seconds
# are not (docs/performance.md, "Instruction counts"). Under each HTTP server in
# BENCH_COST_SERVERS, one after the other: 5 minutes each on an idle machine.
BENCH_COST_SERVERS ?= gunicorn granian
bench-cost: $(VENV)/.installed
	@if [ ! -x /usr/bin/valgrind ]; then \
	    echo "bench-cost: installing valgrind from Debian"; \
	    SUDO=""; if [ "$$(id -u)" -ne 0 ]; then SUDO=sudo; fi; \
	    $$SUDO apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq valgrind >/dev/null; \
	fi
	@for server in $(BENCH_COST_SERVERS); do \
	    echo "bench-cost: keyhouse under $$server"; \
	    KEYHOUSE_SERVER=$$server $(BIN)/python bench/cost.py || exit 1; \
	done

# ruff over everything; mypy (with django-stubs, config in pyproject.toml) over src/.
lint: $(VENV)/.installed
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(CLIENTS_VENV) .pytest_cache
