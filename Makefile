# Every target bootstraps what it needs from nothing: a fresh clone needs only python3.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 9991
# The clients' venv (zulip-term 0.7.0 wants Python < 3.11; see tests/e2e/README.md).
CLIENTS_VENV := .venv-clients

.PHONY: serve test bench lint clients services clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev,redis]'
	touch $@

# python-ldap has no wheels: the system headers come first (ensure-services installs
# them), so only `make test` needs them and `make serve` does not.
$(VENV)/.installed-ldap: $(VENV)/.installed
	bash ci/ensure-services.sh
	$(BIN)/pip install --quiet -e '.[dev,redis,ldap]'
	touch $@

serve: $(VENV)/.installed
	$(BIN)/keyhouse demo --host $(HOST) --port $(PORT)
	exec $(BIN)/keyhouse serve --host $(HOST) --port $(PORT)

clients: $(CLIENTS_VENV)/.installed

$(CLIENTS_VENV)/.installed: tests/e2e/clients-requirements.txt
	bash tests/e2e/make_clients_venv.sh $(CLIENTS_VENV)
	touch $@

services:
	bash ci/ensure-services.sh

test: $(VENV)/.installed-ldap $(CLIENTS_VENV)/.installed services
	$(BIN)/pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests bench

clean:
	rm -rf $(VENV) $(CLIENTS_VENV) .pytest_cache
