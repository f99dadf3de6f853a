# The front door. Every target installs what it needs into .venv (and the SAM CLI into .venv-sam).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
SAM_VENV := .venv-sam
BIN := $(VENV)/bin
SAM := $(SAM_VENV)/bin/sam
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv sam-cli run test lint typecheck unit integration template build bench soak deploy clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(BIN)/.installed: requirements-dev.txt layers/dependencies/requirements.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is required" >&2; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

$(SAM_VENV)/.installed: requirements-sam.txt
	test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/python -m pip install --quiet -r requirements-sam.txt
	touch $@

venv: $(BIN)/.installed  ## create .venv with the runtime and development dependencies

sam-cli: $(SAM_VENV)/.installed  ## install the AWS SAM CLI into .venv-sam

run: venv  ## archive the sample events end to end against a local Reply simulator and moto server
	SAM_CLI_TELEMETRY=0 $(BIN)/python -m local.demo

test: venv sam-cli lint typecheck  ## everything: lint, types, unit, integration, template and packaging tests
	SAM_CLI_TELEMETRY=0 PATH="$(CURDIR)/$(SAM_VENV)/bin:$$PATH" $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: venv  ## ruff (lint + format check)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv  ## mypy --strict on the function and the local stack
	$(BIN)/mypy --strict functions/archive_sequences local cli

unit: venv  ## unit tests only (no network)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

integration: venv  ## integration tests against moto server + the Reply simulator
	$(BIN)/python -m pytest tests/integration $(PYTEST_ARGS)

template: venv sam-cli  ## sam validate --lint, cfn-lint, sam build and the built-artifact test
	SAM_CLI_TELEMETRY=0 PATH="$(CURDIR)/$(SAM_VENV)/bin:$$PATH" $(BIN)/python -m pytest tests/template $(PYTEST_ARGS)

bench: venv  ## throughput vs Reply's ceiling, 429s, CPU per ID, init and memory; writes bench/results.json
	$(BIN)/python -m bench.run

soak: venv  ## the long fault soak: thousands of IDs through the local event source under injected faults; prints the ledger
	$(BIN)/python -m local.soak

build: sam-cli  ## sam build (function + dependencies layer) into .aws-sam/
	SAM_CLI_TELEMETRY=0 $(SAM) build

clean:  ## remove virtualenvs and build output
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .mypy_cache .pytest_cache .ruff_cache
