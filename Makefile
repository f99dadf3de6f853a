# The front door. Every target installs what it needs into .venv (and the SAM CLI into .venv-sam).
SHELL := /bin/bash
# PYTHON names the interpreter: a command (python3.13) or a path. tools/find-python resolves it, through pyenv
# when its shim refuses a version that is installed but not selected. Any interpreter but the default gets its
# own virtualenv (PYTHON=python3.13: .venv-python3.13), so switching never reuses the 3.11 .venv.
DEFAULT_PYTHON := python3.11
PYTHON ?= $(DEFAULT_PYTHON)
PYTHON_NAME := $(PYTHON)
VENV := $(if $(filter $(DEFAULT_PYTHON),$(PYTHON_NAME)),.venv,.venv-$(notdir $(PYTHON_NAME)))
override PYTHON := $(or $(shell tools/find-python '$(PYTHON_NAME)'),$(PYTHON_NAME))
SAM_VENV := .venv-sam
BIN := $(VENV)/bin
SAM := $(SAM_VENV)/bin/sam
CHECKOV_VENV := .venv-checkov
LOCK_VENV := .venv-lock
LAYER_LOCK := layers/dependencies/requirements.txt
# The layer's wheels for Lambda's platform, downloaded at install time: the tests' `sam build` reads only these.
WHEELHOUSE := .wheelhouse
PYTEST_ARGS ?=
# make test runs the suite on two workers (pytest-xdist), a test file per worker: the machine has 2 cores.
PYTEST_WORKERS ?= 2
GUIDED ?=
DEPLOY_ARGS ?=
# make audit AUDIT_ARGS='--warn-on-registry-problems' (what .ci/run uses; see python -m tests.security.audit --help)
AUDIT_ARGS ?=
# make stack STACK_ARGS='--port 0 --moto-port 0' (see python -m local.scenarios.stack --help)
STACK_ARGS ?=
# make bench BENCH_ARGS=--save (update the tracked bench/results.json) or BENCH_ARGS=--quick (a smoke run)
BENCH_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv sam-cli checkov-cli wheelhouse run stack test lint typecheck unit integration template security audit lock constraints build bench soak soak-backlog deploy clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(BIN)/.installed: requirements-dev.txt layers/dependencies/requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys' 2>/dev/null || { echo "$(PYTHON_NAME) is required: not found on PATH nor among pyenv's versions (PYTHON=/path/to/python also works)" >&2; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@# PYTHONWARNINGS: setuptools prints an "Editable installation" notice for every editable build
	PYTHONWARNINGS=ignore $(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

$(SAM_VENV)/.installed: requirements-sam.txt
	test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/python -m pip install --quiet -r requirements-sam.txt
	touch $@

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements-checkov.txt
	touch $@

# What aws-lambda-builders asks pip for in `sam build` (BuildMethod python3.11, x86_64), with the SAM CLI's pip:
# the closure for this machine, then Lambda's manylinux wheels for whatever was not built for it. The stamp is a
# copy of the lock the wheels were downloaded for (tests/template/conftest.py compares the two).
$(WHEELHOUSE)/requirements.txt: $(LAYER_LOCK) $(SAM_VENV)/.installed
	rm -rf $(WHEELHOUSE)
	$(SAM_VENV)/bin/python -m pip download --quiet --dest $(WHEELHOUSE) -r $(LAYER_LOCK)
	$(SAM_VENV)/bin/python -m pip download --quiet --dest $(WHEELHOUSE) --no-deps --only-binary=:all: \
	  --implementation cp --abi cp311 --python-version 3.11 --platform any --platform linux_x86_64 \
	  $(foreach tag,manylinux1 manylinux2010 manylinux2014 manylinux_2_17,--platform $(tag)_x86_64) -r $(LAYER_LOCK)
	cp $(LAYER_LOCK) $@

venv: $(BIN)/.installed  ## create .venv (PYTHON=python3.13: .venv-python3.13) with the runtime and development dependencies

sam-cli: $(SAM_VENV)/.installed  ## install the AWS SAM CLI into .venv-sam

checkov-cli: $(CHECKOV_VENV)/.installed  ## install checkov into .venv-checkov (its pins clash with the project's)

wheelhouse: $(WHEELHOUSE)/requirements.txt  ## download the layer's locked wheels for Lambda into .wheelhouse (the tests build from it offline)

run: venv  ## archive the sample events end to end against a local Reply simulator and moto server
	SAM_CLI_TELEMETRY=0 $(BIN)/python -m local.scenarios.demo

# `@`: the block the stack prints is meant to be pasted whole; an echoed command line in it would start a second stack.
stack: venv  ## Reply simulator + moto + the function on the queue, until Ctrl-C; prints the exports for a CLI campaign
	@$(BIN)/python -m local.scenarios.stack $(STACK_ARGS)

test: venv sam-cli wheelhouse checkov-cli lint typecheck  ## everything: lint, types, unit, integration, template, security and packaging tests
	SAM_CLI_TELEMETRY=0 PATH="$(CURDIR)/$(SAM_VENV)/bin:$$PATH" $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: venv  ## ruff (lint + format check)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv  ## mypy --strict on the function and the local stack
	$(BIN)/mypy --strict functions/archive_sequences local cli tools

unit: venv  ## unit tests only (no network)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

integration: venv  ## integration tests against moto server + the Reply simulator
	$(BIN)/python -m pytest tests/integration $(PYTEST_ARGS)

template: venv sam-cli wheelhouse  ## sam validate --lint, cfn-lint, sam build and the built-artifact test
	SAM_CLI_TELEMETRY=0 PATH="$(CURDIR)/$(SAM_VENV)/bin:$$PATH" $(BIN)/python -m pytest tests/template $(PYTEST_ARGS)

security: venv checkov-cli  ## checkov on template.yaml; the layer's lock complete and consistent, every audit exception justified
	$(BIN)/python -m pytest tests/security $(PYTEST_ARGS)

# Not part of `make test`: it asks PyPI, whose answers change every day. Exit 1: a known vulnerability;
# 3: the registry cannot be reached (audit not done); 4: the registry has no data for some pins (incomplete).
audit: venv  ## the layer's locked releases checked against PyPI's vulnerability data today (needs the network)
	$(BIN)/python -m tests.security.audit $(AUDIT_ARGS)

lock:  ## re-pin the layer's dependency closure: layers/dependencies/requirements.in -> requirements.txt
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet -r layers/dependencies/requirements.in
	{ echo "# The layer's full dependency closure, every distribution pinned: \`sam build\` installs exactly"; \
	  echo "# this (BuildMethod python3.11 reads requirements.txt), \`make audit\` checks it against PyPI's"; \
	  echo "# vulnerability data, and .venv installs it (requirements-dev.txt), so tests run on what Lambda gets."; \
	  echo "# GENERATED by \`make lock\` from requirements.in on CPython 3.11, Linux x86_64 (the function's"; \
	  echo "# platform): edit requirements.in, never this file."; \
	  $(LOCK_VENV)/bin/python -m pip freeze; } > $(LAYER_LOCK)
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m tools.constraints

constraints:  ## regenerate constraints.txt (the CLI's pip install constraints) from the lock and pyproject.toml
	$(PYTHON) -m tools.constraints

bench: venv  ## throughput vs Reply's ceiling, 429s, CPU per ID, init and memory; BENCH_ARGS=--save updates bench/results.json
	$(BIN)/python -m bench.run $(BENCH_ARGS)

soak: venv  ## the long fault soak: thousands of IDs through the local event source under injected faults; prints the ledger
	$(BIN)/python -m local.scenarios.soak

soak-backlog: venv  ## campaigns 5-7x Reply's hourly budget, time compressed, single and bulk mode; prints the ledger
	$(BIN)/python -m local.scenarios.soak_backlog

build: sam-cli  ## sam build (function + dependencies layer) into .aws-sam/
	SAM_CLI_TELEMETRY=0 $(SAM) build

# `sam deploy` reads samconfig.toml (stack name, capabilities, S3 bucket, parameters). --guided asks for every
# setting and saves the answers there: with GUIDED=1, or when samconfig.toml names no stack. The region is decided
# first, as AWS CLI v2 decides it (tools/deploy_region.py): DEPLOY_ARGS' --region, else samconfig.toml's, else
# AWS_REGION, AWS_DEFAULT_REGION, your profile's region, else us-east-1; it is printed, and passed as --region
# (SAM alone would ignore AWS_REGION). Extra options: DEPLOY_ARGS='--parameter-overrides AlarmEmail=ops@example.com'
# or '--no-confirm-changeset'.
deploy: sam-cli  ## sam build, then sam deploy with samconfig.toml (GUIDED=1 asks for every setting and saves them)
	@region_args="$$($(SAM_VENV)/bin/python -m tools.deploy_region -- $(DEPLOY_ARGS))" || exit 1; \
	echo "$(SAM) build"; \
	SAM_CLI_TELEMETRY=0 $(SAM) build || exit 1; \
	if [ -n "$(GUIDED)" ] || ! grep -qE '^[[:space:]]*stack_name[[:space:]]*=' samconfig.toml 2>/dev/null; then \
	  guided="--guided"; \
	fi; \
	echo "$(SAM) deploy $$guided $$region_args $(DEPLOY_ARGS)"; \
	SAM_CLI_TELEMETRY=0 $(SAM) deploy $$guided $$region_args $(DEPLOY_ARGS)

clean:  ## remove virtualenvs, build output and caches: the tree is left as `git clone` made it
	rm -rf $(VENV) .venv-python* $(SAM_VENV) $(WHEELHOUSE) $(CHECKOV_VENV) $(LOCK_VENV) .venv-sam-tmp .aws-sam .mypy_cache .pytest_cache .ruff_cache build bench/tmp
	find . -name '*.egg-info' -prune -exec rm -rf {} +
	find . -name __pycache__ -prune -exec rm -rf {} +
