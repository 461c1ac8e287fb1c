# Every target sets up what it needs; `make help` lists them. A fresh machine needs only
# python3 (>= 3.11, with venv), a Java 17+ runtime and Maven; everything else is fetched once
# (Python packages into .venv, the Kafka jars into ~/.cache/inquiry-exchange).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Extra pytest arguments, e.g. `make test PYTEST_ARGS="-k broker -x"`.
PYTEST_ARGS ?=
# Extra `exchange bench` arguments.
BENCH_ARGS ?=

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-12s %s\n", $$1, $$2}'

# The stamp is the console script: rebuilt when pyproject.toml (the dependencies) changes.
$(BIN)/exchange: pyproject.toml
	@$(PY) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "error: Python >= 3.11 needed; run make with PY=python3.11 (or newer)")'
	@test -x $(BIN)/python || $(PY) -m venv $(VENV) || { echo "error: '$(PY) -m venv' failed; install the venv module (apt-get install python3-venv)" >&2; exit 1; }
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

.PHONY: venv
venv: $(BIN)/exchange ## Create the virtualenv and install the project with its dev tools

.PHONY: jars
jars: venv ## Fetch the pinned Kafka release's jars (Maven, once; cached per version)
	@$(BIN)/exchange broker fetch

.PHONY: lint
lint: venv ## Run ruff (lint and format check)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The tests are checked too; tests/integration/conftest.py in a run of its own, since to mypy it
# is a second top-level module named `conftest` (see [tool.mypy] in pyproject.toml).
.PHONY: typecheck
typecheck: venv ## Run mypy (strict) over the code and the tests
	$(BIN)/mypy
	$(BIN)/mypy tests/integration/conftest.py

# The sql and outbox connector tests start a PostgreSQL server of their own from its binaries;
# the Debian package is installed once when they are missing (its default cluster is not used).
.PHONY: postgres
postgres: ## Install PostgreSQL's server binaries when missing (apt-get, once)
	@ls /usr/lib/postgresql/*/bin/initdb /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || { \
	  echo "installing PostgreSQL (Debian package postgresql)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq postgresql >/dev/null; }

# The real-Prometheus and alert-rule tests need Prometheus and promtool: the Debian package,
# installed once when either is missing (the tests start their own, on a free loopback port).
.PHONY: prometheus
prometheus: ## Install Prometheus and promtool when missing (apt-get, once)
	@command -v prometheus >/dev/null && command -v promtool >/dev/null || { \
	  echo "installing Prometheus (Debian package prometheus)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }

# pytest's exit code goes to $PYTEST_STATUS_FILE when set, so .ci/run can tell "no tests
# collected" (5) from failing tests; make itself only reports "Error N".
.PHONY: test
test: venv jars postgres prometheus ## Set everything up and run every test, unit and real-broker
	@$(BIN)/pytest $(PYTEST_ARGS); rc=$$?; \
	if [ -n "$${PYTEST_STATUS_FILE:-}" ]; then echo $$rc > "$$PYTEST_STATUS_FILE"; fi; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests: the test set-up is broken" >&2; fi; \
	exit $$rc

.PHONY: test-unit
test-unit: venv prometheus ## Run only the tests that need no broker (seconds)
	$(BIN)/pytest -m "not integration" $(PYTEST_ARGS)

# Extra `exchange demo` arguments, e.g. `make demo DEMO_ARGS="--inquiries 2000 --keep-running"`.
DEMO_ARGS ?=

.PHONY: demo
demo: venv jars ## Run the whole bus with six simulated agencies and 10,000 inquiries (see docs/demo.md)
	$(BIN)/exchange demo $(DEMO_ARGS)

.PHONY: bench
bench: venv jars ## Run the benchmark (throughput, latency, memory per scenario)
	$(BIN)/exchange bench $(BENCH_ARGS)

.PHONY: broker-start
broker-start: venv jars ## Start the local broker in the background (prints bootstrap=…)
	@$(BIN)/exchange broker start

.PHONY: broker-stop
broker-stop: ## Stop the local broker
	@if [ -x $(BIN)/exchange ]; then $(BIN)/exchange broker stop; fi

.PHONY: clean
clean: broker-stop ## Stop the local broker; remove caches and build output (keeps .venv)
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

.PHONY: distclean
distclean: clean ## Also remove the virtualenv
	rm -rf $(VENV) *.egg-info
