# ATLAS platform: `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
ATLAS_HOME := $(CURDIR)/.atlas
export ATLAS_HOME

PACKAGES := libs/events tools/devstack services/catalog services/requests \
            services/mobility services/notify services/vault services/dashboard
PYPROJECTS := $(addsuffix /pyproject.toml,$(PACKAGES))
SRC := libs/events/src tools/devstack/src $(wildcard services/*/src)
LINT_PATHS := libs tools services tests bench

.PHONY: help setup infra kafka-jars postgres-server clamd promtool chromium k8s-tools k8s-check lint format typecheck test test-fast fuzz contracts run demo bench clean

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

KUSTOMIZE_VERSION := v5.7.1
KUSTOMIZE_STAMP := $(ATLAS_HOME)/bin/.kustomize-$(KUSTOMIZE_VERSION)
CHECKOV_STAMP := $(ATLAS_HOME)/checkov/.installed

promtool: ## Install promtool (Debian package prometheus) if missing, to check the alert rules
	@command -v promtool >/dev/null || { test "$$(id -u)" = 0 || { echo "promtool missing: apt-get install prometheus as root"; exit 1; }; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus; }; }

chromium: ## Install headless Chromium and its driver (Debian packages) for the dashboard test
	@command -v chromedriver >/dev/null && command -v chromium >/dev/null || { test "$$(id -u)" = 0 || { echo "chromium missing: apt-get install chromium chromium-driver as root"; exit 1; }; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium chromium-driver || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium chromium-driver; }; }

$(KUSTOMIZE_STAMP):
	GOBIN=$(ATLAS_HOME)/bin go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)
	touch $@

# checkov's own pins clash with constraints.txt, so it gets a venv of its own.
$(CHECKOV_STAMP): requirements/checkov.txt
	test -x $(ATLAS_HOME)/checkov/bin/python || $(PYTHON) -m venv $(ATLAS_HOME)/checkov
	$(ATLAS_HOME)/checkov/bin/pip install --quiet -r requirements/checkov.txt
	touch $@

k8s-tools: setup $(KUSTOMIZE_STAMP) $(CHECKOV_STAMP) ## kustomize (go install) and checkov (own venv) into .atlas

k8s-check: k8s-tools promtool ## Dockerfiles (hadolint) and k8s overlays (kustomize, schemas, checkov, promtool)
	$(VENV)/bin/pytest tests/platform/test_deploy.py

infra: kafka-jars postgres-server clamd promtool chromium k8s-tools ## Everything the tests need besides Python packages

lint: setup ## ruff (lint + format check) and mypy
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(VENV)/bin/mypy $(SRC)

format: setup ## Format and auto-fix with ruff
	$(VENV)/bin/ruff format $(LINT_PATHS)
	$(VENV)/bin/ruff check --fix $(LINT_PATHS)

contracts: setup ## Regenerate the JSON Schemas and the AsyncAPI document from the registry
	$(PY) -m atlas_events.contracts
	$(PY) deploy/k8s/generate.py

# The suite's worker processes (pytest-xdist), 0 for one process (the default: in two workers,
# end-to-end platforms started side by side missed their readiness deadlines under CI's load). A
# module's tests stay in one worker (they share module-scoped fixtures).
TEST_WORKERS ?= 0

test: setup infra lint ## Lint, then the whole suite on a real Kafka broker and PostgreSQL
	$(VENV)/bin/pytest $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadscope)

test-fast: setup ## The suite without lint (infra is started by the fixtures)
	$(VENV)/bin/pytest -x

FUZZ_EXAMPLES ?= 50
fuzz: setup kafka-jars postgres-server clamd ## The API fuzzing and vault tamper tests with more examples (FUZZ_EXAMPLES, FUZZ_SEED)
	ATLAS_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(if $(FUZZ_SEED),ATLAS_FUZZ_SEED=$(FUZZ_SEED)) $(VENV)/bin/pytest -s tests/fuzz

run: setup kafka-jars ## Start the broker, every service and the ops dashboard (:8100) on 127.0.0.1
	$(PY) -m atlas_devstack.run

demo: setup ## Publish a handful of mutations to a running `make run` and print what happened
	$(PY) -m atlas_devstack.demo

bench: setup infra ## Benchmarks, printed as a table with ratios to raw baselines
	$(PY) -m bench

clean: ## Remove the local state (.atlas: broker data, SQLite files, keys) and caches
	rm -rf .atlas .mypy_cache .ruff_cache .pytest_cache
