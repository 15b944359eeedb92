# The two entry points a newcomer needs: `make run` and `make test`. CI calls `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
DATA   ?= data
STAMP  := $(VENV)/.installed
TSTAMP := $(VENV)/.installed-test
# Every dependency, direct and transitive, comes from a committed lock with hashes:
# requirements/run.txt for the service, requirements/test.txt for the tests (a superset at the
# same versions). pyproject.toml keeps the compatible ranges; `make lock` refreshes the locks.
RUN_LOCK  := requirements/run.txt
TEST_LOCK := requirements/test.txt
PIP_SYNC  = $(BIN)/python -m pip install --quiet --require-hashes --no-deps -r
PIP_SELF  = $(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
LOCK      = $(BIN)/uv pip compile --universal --python-version 3.11 --generate-hashes --quiet \
            --custom-compile-command "make lock"

.PHONY: run test lint typecheck layers unit integration e2e bench clean system-deps lock lock-upgrade docs-table

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(RUN_LOCK) pyproject.toml | $(BIN)/python
	$(PIP_SYNC) $(RUN_LOCK)
	$(PIP_SELF)
	touch $@

$(TSTAMP): $(TEST_LOCK) pyproject.toml | $(BIN)/python
	$(PIP_SYNC) $(TEST_LOCK)
	$(PIP_SELF)
	touch $@ $(STAMP)

## run: initialise ./data on first start (SQLite, local key, demo organisation), then serve
run: $(STAMP)
	$(BIN)/cardvault --data-dir $(DATA) init --demo --if-missing
	CARDVAULT_DEVELOPMENT=true $(BIN)/cardvault --data-dir $(DATA) serve

system-deps:
	scripts/install-system-deps

## test: everything CI runs — lint, types, import layers, tests on SQLite and PostgreSQL
## (system packages first: pyscard builds against libpcsclite-dev with swig); last, the fault
## tier, which starts scripts/topology and breaks parts of it on purpose (a few minutes)
test: system-deps $(TSTAMP) lint typecheck layers
	$(BIN)/python -m pytest -q -n 2 -m "not pcsc"
	$(BIN)/python -m pytest -q -m pcsc
	$(BIN)/python -m pytest -q -n 0 -m faults tests/faults

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

## docs-table: rewrite the package table of docs/architecture.md from the packages' docstrings
docs-table:
	python3 -m tests.support.package_table --write

## lock: re-resolve requirements/*.txt after a change to pyproject.toml, keeping every other pin;
## lock-upgrade: move every pin to the newest release the ranges allow. Either way, commit the
## new lock only together with a `make test` that passed on it.
lock: $(TSTAMP)
	$(LOCK) $(LOCK_UPGRADE) pyproject.toml requirements/build.in --extra test -o $(TEST_LOCK)
	$(LOCK) pyproject.toml requirements/build.in -c $(TEST_LOCK) -o $(RUN_LOCK)
	@echo "Lock refreshed. Run 'make test' on it before you commit requirements/." >&2

lock-upgrade: LOCK_UPGRADE = --upgrade
lock-upgrade: lock

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
