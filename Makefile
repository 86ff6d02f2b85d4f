# One command per job. Each target installs what it needs into .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test check lint typecheck format verify controlplane dev-cluster dev-cluster-stop clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

## demo: sync the seed-sized simulated inventory into an embedded PostgreSQL and verify it
demo: $(STAMP)
	$(BIN)/inventory-sync demo

## test: the whole suite (unit, integration, control plane), exactly what CI runs
test: $(STAMP)
	$(BIN)/python -m pytest

## check: lint, types, import layers, then the tests
check: lint typecheck test

lint: $(STAMP)
	$(BIN)/ruff check operator tests
	$(BIN)/ruff format --check operator tests
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format operator tests
	$(BIN)/ruff check --fix operator tests

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
