# The two commands a newcomer needs: `make run` (everything up) and `make test` (the suite CI runs).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run down test test-fast lint fmt schemas clean

$(STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh
	@touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/payments up

down: $(STAMP)
	$(VENV)/bin/payments down

# One broker and one redis-server for the whole session (tests/conftest.py); every test gets its own topics.
test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider --durations=15

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy --strict

fmt: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# JSON Schema of every Kafka message into schemas/json/ (docs/contracts.md); refuses incompatible changes.
schemas: $(STAMP)
	$(VENV)/bin/payments schemas write

clean:
	rm -rf $(VENV) .devstack .mypy_cache .ruff_cache
