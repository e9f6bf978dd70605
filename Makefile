# Two commands do all of the set-up on a fresh machine: `make run` and `make test`.
# Set-up (once): .venv with the package in editable mode + test extras, and Delta Lake's jars
# fetched once from Maven Central into .cache/delta-jars.  Later runs reuse both and need no network.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
JARS   := .cache/delta-jars/MANIFEST
MLFLOW_PORT ?= 5000

.PHONY: setup jars run test test-fast lint ui bench clean clean-state

setup: $(STAMP) $(JARS)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -c constraints.txt -e ".[local,test]"
	@touch $(STAMP)

jars: $(JARS)

$(JARS): $(STAMP)
	$(PY) build-support/fetch_delta_jars.py .cache/delta-jars

run: setup
	$(VENV)/bin/pricing run

# Everything: lint, types, and every test (the end-to-end workflow, the standalone cluster, the fault injections).
# Two test processes (pytest-xdist): one alone leaves about half of two cores idle (Spark's driver, Python
# workers and subprocess jobs wait on each other).  Each test module runs whole in one process (tests/conftest.py
# schedules them).
TEST_WORKERS ?= 2
XDIST := -n $(TEST_WORKERS)

test: lint
	$(VENV)/bin/pytest $(XDIST)

# The fast lane while iterating: lint, types and the unit tests (no end-to-end workflow, no cluster), a few minutes.
test-fast: lint
	$(VENV)/bin/pytest $(XDIST) -m "not slow"

lint: setup
	$(VENV)/bin/ruff check pricing jobs features tests build-support bench
	$(VENV)/bin/mypy

# Benchmarks (never part of `make test`): BENCH_SIZES=100k,1m,10m make bench
BENCH_STAMP := $(VENV)/.bench-installed
BENCH_SIZES ?= 100k,1m

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -c constraints.txt -e ".[local,test,bench]"
	@touch $(BENCH_STAMP)

bench: setup $(BENCH_STAMP)
	$(PY) bench/run.py --sizes $(BENCH_SIZES)

ui: setup
	@mkdir -p .pricing
	$(VENV)/bin/mlflow ui --host 127.0.0.1 --port $(MLFLOW_PORT) \
		--backend-store-uri sqlite:///$(CURDIR)/.pricing/mlflow.db \
		--default-artifact-root file://$(CURDIR)/.pricing/mlartifacts

clean-state:
	rm -rf .pricing

clean: clean-state
	rm -rf $(VENV) .cache
