# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= config/example.yaml
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck layers unit clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/calgateway serve --config $(CONFIG)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

layers: $(STAMP)
	$(BIN)/lint-imports

# One worker per core (tests/README.md: the suites that go through the store
# run on SQLite and on PostgreSQL, twice the tests, in about the same time).
unit: $(STAMP)
	$(BIN)/pytest -q -n auto

test: lint typecheck layers unit

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
