# Quick start: `make demo` and `make test`. Both create .venv on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check

.PHONY: demo test bench reliability synth edge-bundle openapi cli-docs lint typecheck clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "edgeshift needs Python 3.11+; set PYTHON=python3.11 or newer")'
	$(PYTHON) -m venv $(VENV)

# Stamps re-run the install whenever pyproject.toml changes.
$(VENV)/.demo-installed: pyproject.toml | $(BIN)/python
	$(PIP) -e '.[local]'
	@touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(PIP) -e '.[dev]'
	@touch $@ $(VENV)/.demo-installed

demo: $(VENV)/.demo-installed
	$(BIN)/rollout demo --scenario all

# The suite in TEST_WORKERS processes, a test file at a time each (a file's local stack
# starts once), in the order tests/conftest.py gives: the long files first. Many tests wait
# on clocks, servers and subprocesses, so three workers keep two cores busy; tests marked
# `alone` still run with nothing beside them.
TEST_WORKERS ?= 3
test: $(VENV)/.dev-installed
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

bench: $(VENV)/.dev-installed
	$(BIN)/python -m benchmarks

# The fault-injection matrix (fault, expected, observed, pass/fail); the same tests run in make test.
reliability: $(VENV)/.dev-installed
	$(BIN)/python tests/reliability/matrix.py

# The Lambda@Edge zips the edge stack deploys: edge.zip (stdlib code and its config) for
# every behaviour, edge-flags.zip (the same plus LaunchDarkly's SDK) for flag-routed ones.
edge-bundle: $(VENV)/.dev-installed
	$(BIN)/python -m stacks.bundle --out cdk.out/edge-bundle
	$(BIN)/python -m stacks.bundle --out cdk.out/edge-bundle-flags --flags

# CloudFormation templates in cdk.out/, offline and without AWS credentials.
synth: $(VENV)/.dev-installed
	JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION=1 $(BIN)/python -m stacks.app

# The committed OpenAPI document of the REST API; a test fails when it is stale.
openapi: $(VENV)/.dev-installed
	$(BIN)/python -c 'from orchestrator.local.apigw import openapi_document; print(openapi_document(), end="")' > openapi.json

# docs/cli.md from the commands' own help; a test fails when it is stale.
cli-docs: $(VENV)/.dev-installed
	$(BIN)/python -m orchestrator.cli.reference docs/cli.md

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check edge orchestrator stacks tests

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy

clean:
	rm -rf $(VENV) cdk.out .pytest_cache .mypy_cache .ruff_cache
