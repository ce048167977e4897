# Quick start: `make demo` and `make test`. Both create .venv on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check

.PHONY: demo test bench lint typecheck clean

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

test: $(VENV)/.dev-installed
	$(BIN)/python -m pytest

bench: $(VENV)/.dev-installed
	$(BIN)/python -m benchmarks

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check edge orchestrator stacks tests

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy

clean:
	rm -rf $(VENV) cdk.out .pytest_cache .mypy_cache .ruff_cache
