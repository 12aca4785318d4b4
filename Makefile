# One task runner for humans and CI. `make` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PORT ?= 3000
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
TABSERVE := $(VENV)/bin/tabserve
BENTOML := $(VENV)/bin/bentoml
# The model store lives outside the repository: inside the build context it makes `bentoml build` recurse.
export BENTOML_HOME ?= $(HOME)/bentoml

.PHONY: help env profile bench-tools services docker-engine image bench-image bench-batch bench-stream bench-deploy serve train drift bench-monitoring bench-wide bench-live-drift bench-retrain bench-explain test test-unit test-integration lint format bench requirements build

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(UV):
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==$(UV_VERSION)

env: $(UV) ## create .venv with the locked dependencies
	$(UV) sync --frozen --all-extras --quiet

train: env ## train the configured model (tabserve train)
	$(TABSERVE) train

serve: env ## train the default model if the store has none, then serve it on 127.0.0.1:$(PORT)
	$(TABSERVE) serve --port $(PORT)

lint: env ## ruff (lint + format check), mypy and the import rules (import-linter)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

format: env ## apply ruff's formatting and fixes
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

services: ## start local PostgreSQL and Redis if down; install nginx (replicas test) and chromium (dashboard test) if missing
	scripts/start-services.sh
	scripts/install-nginx.sh
	scripts/install-chromium.sh

test: lint services docker-engine ## lint, type-check, start the servers and Docker, then every test
	$(PY) -m pytest

test-unit: env ## fast tests, no servers
	$(PY) -m pytest -m unit

test-integration: env services ## tests against the real service and servers
	$(PY) -m pytest -m integration

EXPORT := $(UV) export --quiet --frozen --no-dev --no-hashes --no-emit-project --no-editable --extra kafka
requirements: $(UV) ## re-export requirements/serving.txt and monitoring.txt (the two images' packages) from uv.lock
	$(EXPORT) -o requirements/serving.txt
	$(EXPORT) --extra monitoring -o requirements/monitoring.txt

bench-tools: ## install the load generator and GNU time if missing (Debian packages)
	@command -v wrk >/dev/null && test -x /usr/bin/time || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk time >/dev/null)

bench: env bench-tools ## serving benchmarks: pinned BentoML vs plain FastAPI, then unpinned workers 1/2 (wrk)
	$(PY) bench/serving.py
	$(PY) bench/scaling.py

PY_SPY_VERSION := 0.4.3
profile: env bench-tools ## py-spy profile of /predict under wrk (c=32): the worker's time by package and cost centre
	$(UV) pip install --quiet --python $(PY) py-spy==$(PY_SPY_VERSION)
	$(PY) bench/profile.py $(PROFILE_ARGS)

drift: env ## drift and quality check of the served model (tabserve monitor)
	$(TABSERVE) monitor

bench-monitoring: env ## drift job over 1,000,000 logged rows: time and peak memory
	$(PY) bench/monitoring.py

bench-wide: env bench-tools ## drift job over 1,000,000 logged rows x 200 features: main's job vs now, time and peak RSS
	$(PY) bench/wide_drift.py $(WIDE_ARGS)

bench-live-drift: env bench-tools ## live drift: one refresh at 10,000 rows; rps/p99 with the refresher off vs on
	$(PY) bench/live_drift.py

bench-retrain: env bench-tools ## one retraining loop on 100,000 labelled logged rows: time and peak memory per phase, beside tabserve train
	$(PY) bench/retrain.py $(RETRAIN_ARGS)

bench-explain: env ## explanations: per-row latency and rows/s beside predict, default model and a 300-tree forest
	$(PY) bench/explanations.py

bench-batch: env bench-tools ## file scoring vs a naive pandas script; memory from 100k to 5M rows
	$(PY) bench/batch_scoring.py

bench-deploy: env bench-tools ## routing and shadow cost on the response; memory per variant
	$(PY) bench/deployment.py

bench-soak: env ## memory under load: 12 concurrent large batches, then a soak (SOAK_MINUTES=3): RSS and p99 per minute
	$(PY) bench/soak.py

bench-stream: env services ## stream worker throughput: micro-batches vs one message at a time
	$(PY) bench/streaming.py

docker-engine: ## install (if missing) and start the Docker engine
	scripts/docker-engine.sh

image: env ## build the Bento, the serving image and the monitoring image (BASE_IMAGE=..., TAG=..., MONITORING_TAG=...)
	PY=$(PY) BENTOML=$(BENTOML) scripts/build-image.sh

bench-image: env docker-engine ## serving image before (bench/image.py --baseline-ref) and now: sizes, cold start to /readyz
	$(PY) bench/image.py

build: env ## build the Bento (model + serving code only)
	$(TABSERVE) train --if-missing
	$(BENTOML) build
