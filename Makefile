# Every target sets up what it needs; `make help` lists them.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: help
help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-12s %s\n", $$1, $$2}'

$(BIN)/exchange: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

.PHONY: venv
venv: $(BIN)/exchange ## Create the virtualenv and install the project

.PHONY: lint
lint: venv ## Run ruff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

.PHONY: typecheck
typecheck: venv ## Run mypy (strict)
	$(BIN)/mypy

.PHONY: test
test: venv ## Set everything up and run the tests
	$(BIN)/pytest

.PHONY: bench
bench: venv ## Benchmark each scenario side by side (~4 min); results in bench/results/
	$(BIN)/exchange bench $(BENCH_ARGS)
