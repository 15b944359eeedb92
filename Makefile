# The two entry points a newcomer needs: `make run` and `make test`. CI calls `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
DATA   ?= data
STAMP  := $(VENV)/.installed
TSTAMP := $(VENV)/.installed-test

.PHONY: run test lint typecheck layers unit integration e2e bench clean system-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(TSTAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(STAMP)

## run: initialise ./data on first start (SQLite, local key, demo organisation), then serve
run: $(STAMP)
	$(BIN)/cardvault --data-dir $(DATA) init --demo --if-missing
	CARDVAULT_DEVELOPMENT=true $(BIN)/cardvault --data-dir $(DATA) serve

system-deps:
	scripts/install-system-deps

## test: everything CI runs — lint, types, import layers, tests on SQLite and PostgreSQL
## (system packages first: pyscard builds against libpcsclite-dev with swig)
test: system-deps $(TSTAMP) lint typecheck layers
	$(BIN)/python -m pytest -q -n 2 -m "not pcsc"
	$(BIN)/python -m pytest -q -m pcsc

lint: $(TSTAMP)
	$(BIN)/ruff check src tests $(wildcard bench)
	$(BIN)/ruff format --check src tests $(wildcard bench)

typecheck: $(TSTAMP)
	$(BIN)/mypy

layers: $(TSTAMP)
	$(BIN)/lint-imports

unit: $(TSTAMP)
	$(BIN)/python -m pytest -q tests/unit

bench: $(STAMP)
	$(BIN)/python bench/open_card.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
