# Two commands matter: `make run` and `make test`. The rest are helpers.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app app
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | sha1sum | cut -c1-12)
CATALOGS := $(wildcard */translations)

.PHONY: help install translations run worker scheduler test lint format bench screenshots services clean

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	rm -f $(VENV)/.installed-*; touch $@

install: $(STAMP) translations ## Create the virtualenv and install everything

translations: $(STAMP) ## Compile the message catalogs
	@for d in $(CATALOGS); do $(BIN)/pybabel compile -d $$d -f || exit 1; done

run: install ## Serve the demo on http://127.0.0.1:5000 with a worker and the scheduler (nothing to install)
	$(BIN)/python scripts/run.py

worker: install ## Run an RQ worker (needs REDIS_URL)
	$(FLASK) rq worker

scheduler: install ## Run the scheduler: periodic jobs and the outbox relay (needs REDIS_URL)
	$(FLASK) rq scheduler

services: ## Make sure PostgreSQL, Redis and Chromium are installed and running
	bash scripts/ensure-services.sh

test: install services ## Run the whole suite against PostgreSQL and Redis
	$(BIN)/python -m pytest

lint: $(STAMP) ## ruff check and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## Format the code
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install services ## Run the benchmarks and rewrite bench/RESULTS.md
	WMB_NEED_WRK=1 bash scripts/ensure-services.sh
	$(BIN)/python bench/run.py

screenshots: install ## PNGs of the demo's console (1366x900) and member pages (390x844, WeChat) in screenshots/
	@command -v chromium >/dev/null || { echo "chromium is missing: make services installs it"; exit 1; }
	$(BIN)/python scripts/screenshots.py --out $${SCREENSHOTS_DIR:-screenshots}

clean: ## Remove the virtualenv and local data
	rm -rf $(VENV) instance
