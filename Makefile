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
	$(VENV)/bin/lint-imports

fmt: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# JSON Schema of every Kafka message into schemas/json/ (docs/contracts.md); refuses incompatible changes.
schemas: $(STAMP)
	$(VENV)/bin/payments schemas write

# Fault-injection campaign (docs/chaos.md): N seeds from SEED, scenarios in turn; reports in chaos-results/.
# About 30 s a seed on this 2-core machine. `make test` runs a bounded one (tests/e2e/test_chaos_campaign.py).
.PHONY: chaos
N ?= 10
SEED ?= 1
chaos: $(STAMP)
	$(VENV)/bin/payments chaos --seed $(SEED) --runs $(N) --scenario all --out chaos-results

# Benchmarks (bench/README.md): our system and the FastAPI + PostgreSQL baseline side by side on this
# machine. bench-quick takes about 2 minutes, bench up to 10; results go to bench/results/.
.PHONY: bench bench-quick
BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP) pyproject.toml bench/setup_postgres.sh
	$(PY) -m pip install -q -e '.[dev,bench]'
	bash bench/setup_postgres.sh
	@touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(VENV)/bin/payments bench full

bench-quick: $(BENCH_STAMP)
	$(VENV)/bin/payments bench quick

# Restore time of the processor's state with 1M historical payments, unpruned vs pruned (about 5 min).
.PHONY: bench-restore
bench-restore: $(BENCH_STAMP)
	$(PY) -m bench.restore_bench --payments 1000000 --accounts 10000

clean:
	rm -rf $(VENV) .devstack .mypy_cache .ruff_cache
