# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= config/example.yaml
STAMP := $(VENV)/.installed
# The demo's admin in config/example.yaml (tests/test_demo.py checks the hash).
DEMO_ADMIN := admin
DEMO_PASSWORD := demo-password

.PHONY: run test lint typecheck layers unit clean messages language lock docs

# Runtime dependencies exactly as the lock pins them (hashes checked), the
# same as in docker/Dockerfile; then the project without resolving again;
# then the test tools, unpinned (the runtime ones are satisfied already).
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
ifeq ($(CONFIG),config/example.yaml)
	@echo "Demo: admin console at http://127.0.0.1:8080/ -- sign in as $(DEMO_ADMIN) / $(DEMO_PASSWORD)"
	@echo "      (a fake Google runs on 127.0.0.1:8090; see the README's demo section)"
endif
	$(BIN)/calgateway serve --config $(CONFIG)

# requirements.lock: every runtime dependency of pyproject.toml, pinned with
# the hashes of all of its files on PyPI (pip-tools' pip-compile, run with the
# venv's Python: 3.11, as in the Docker image). Run it after changing the
# dependencies in pyproject.toml and commit the result. Only PyPI is asked
# (no local pip configuration), so the hashes are the ones Docker meets.
# pip-tools runs in a venv of its own, thrown away after.
lock:
	tools=$$(mktemp -d) && $(PYTHON) -m venv $$tools && \
	$$tools/bin/pip install --quiet pip-tools && \
	env -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null $$tools/bin/pip-compile --quiet --generate-hashes \
	    --strip-extras --allow-unsafe --index-url https://pypi.org/simple --no-emit-index-url \
	    --output-file requirements.lock pyproject.toml ; \
	status=$$? ; rm -rf $$tools ; exit $$status

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

layers: $(STAMP)
	$(BIN)/lint-imports

# config/README.md's key tables, rewritten from the settings models
# (gateway/settings/docs.py; the meanings are in gateway/settings/meanings.py).
# tests/test_config_docs.py fails until this has run after a settings change.
docs: $(STAMP)
	$(BIN)/python -m gateway.settings.docs

# One worker per core (tests/README.md: the suites that go through the store
# run on SQLite and on PostgreSQL, twice the tests, in about the same time).
unit: $(STAMP)
	$(BIN)/pytest -q -n auto

test: lint typecheck layers unit

# The translation catalogs (gateway/look/locales, README "Languages"): extract
# every text bookers read (babel.cfg says where) and merge it into each
# language's messages.po; then translate the new and the fuzzy entries.
# `make language CODE=fr` starts a catalog for a new language. Not part of
# `make test` (tests/look/test_catalogs.py checks the catalogs are complete).
LOCALES := gateway/look/locales

messages: $(STAMP)
	pot=$$(mktemp) && \
	$(BIN)/pybabel extract -F babel.cfg --no-location --project=calgateway -o $$pot . && \
	$(BIN)/pybabel update -i $$pot -d $(LOCALES) --ignore-obsolete --ignore-pot-creation-date ; \
	status=$$? ; rm -f $$pot ; exit $$status

language: $(STAMP)
	@test -n "$(CODE)" || { echo "usage: make language CODE=fr"; exit 2; }
	pot=$$(mktemp) && \
	$(BIN)/pybabel extract -F babel.cfg --no-location --project=calgateway -o $$pot . && \
	$(BIN)/pybabel init -i $$pot -d $(LOCALES) -l $(CODE) ; \
	status=$$? ; rm -f $$pot ; exit $$status

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
