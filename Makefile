# Two commands set everything up on a fresh machine:
#   make run    create .venv, install vecdb, start the server on 127.0.0.1:50051 (data in ./vecdb-data)
#   make test   install the test extras and run the whole suite (lint, types, unit, integration,
#               property, interop)
# make bench runs the benchmarks (BENCH_ARGS=--quick for the short versions).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
BENCH_ARGS ?=
PYTEST_ARGS ?=

.PHONY: run test bench install install-test install-bench lint typecheck proto clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(VENV)/.installed $@

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test
install-bench: $(VENV)/.installed-bench

run: install
	$(BIN)/vecdb serve

tests/interop/node_modules: tests/interop/package.json
	@if command -v npm >/dev/null 2>&1; then \
		npm install --silent --no-audit --no-fund --prefix tests/interop && touch $@; \
	else echo "npm not found: the Node interop test will be skipped"; fi

lint: install-test
	$(BIN)/ruff check vecdb retrieval tests benchmarks scripts
	$(BIN)/ruff format --check vecdb retrieval tests benchmarks

typecheck: install-test
	$(BIN)/mypy vecdb retrieval

test: install-test tests/interop/node_modules lint typecheck
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install-bench
	@for script in benchmarks/serve.py benchmarks/ann.py benchmarks/tenants.py \
		benchmarks/filtered.py benchmarks/batch.py benchmarks/retrieval.py; do \
		if [ -f $$script ]; then echo "== $$script"; $(BIN)/python $$script $(BENCH_ARGS) || exit 1; fi; \
	done

proto: install-test
	PYTHON=$(BIN)/python scripts/gen_proto.sh

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache tests/interop/node_modules
