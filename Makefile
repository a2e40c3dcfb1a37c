# ATLAS platform: `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
ATLAS_HOME := $(CURDIR)/.atlas
export ATLAS_HOME

PACKAGES := libs/events tools/devstack services/catalog services/requests \
            services/mobility services/notify services/vault
PYPROJECTS := $(addsuffix /pyproject.toml,$(PACKAGES))
SRC := libs/events/src tools/devstack/src $(wildcard services/*/src)
LINT_PATHS := libs tools services tests bench

.PHONY: help setup infra kafka-jars postgres-server clamd lint format typecheck test test-fast contracts run bench clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[1m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.installed: requirements/constraints.txt $(PYPROJECTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements/constraints.txt
	$(PY) -m pip install --quiet --no-deps $(addprefix -e ,$(PACKAGES))
	touch $@

setup: $(VENV)/.installed ## Create the virtualenv with the pinned dependencies

requirements/constraints.txt: requirements/base.in requirements/dev.in
	$(PY) -m piptools compile --quiet --strip-extras --no-header --allow-unsafe -o $@ requirements/dev.in

kafka-jars: setup ## Fetch the Kafka broker jars from Maven Central into .atlas/kafka/libs
	$(PY) -m atlas_devstack.kafka fetch

postgres-server: setup ## Install PostgreSQL (Debian package) if missing
	$(PY) -m atlas_devstack.postgres install

clamd: setup ## Install ClamAV's daemon (Debian package) for the vault's malware scanning
	$(PY) -m atlas_vault.devinfra install-clamd

infra: kafka-jars postgres-server clamd ## Everything the tests need besides Python packages

lint: setup ## ruff (lint + format check) and mypy
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(VENV)/bin/mypy $(SRC)

format: setup ## Format and auto-fix with ruff
	$(VENV)/bin/ruff format $(LINT_PATHS)
	$(VENV)/bin/ruff check --fix $(LINT_PATHS)

contracts: setup ## Regenerate the JSON Schemas and the AsyncAPI document from the registry
	$(PY) -m atlas_events.contracts

test: setup infra lint ## Lint, then the whole suite on a real Kafka broker and PostgreSQL
	$(VENV)/bin/pytest

test-fast: setup ## The suite without lint (infra is started by the fixtures)
	$(VENV)/bin/pytest -x

run: setup kafka-jars ## Start the broker and every service on 127.0.0.1 (Ctrl-C stops all)
	$(PY) -m atlas_devstack.run

bench: setup infra ## Benchmarks, printed as a table with ratios to raw baselines
	$(PY) -m bench

clean: ## Remove the local state (.atlas: broker data, SQLite files, keys) and caches
	rm -rf .atlas .mypy_cache .ruff_cache .pytest_cache
