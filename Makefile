PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint types unit demo bench clean

$(STAMP): pyproject.toml
	@command -v $(PY) >/dev/null 2>&1 || { echo "need $(PY) on PATH (or: make PY=python3 ...)"; exit 2; }
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check crmbot tests

types: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

test: lint types unit

demo: $(STAMP)
	$(BIN)/crmbot demo

# Every benchmark at its quick size; each appends its figures to bench/RESULTS.md.
bench: $(STAMP)
	$(BIN)/python -m bench.find --quick
	$(BIN)/python -m bench.ack --quick --concurrency 1,10
	$(BIN)/python -m bench.sweep --quick
	$(BIN)/python -m bench.reports --quick
	$(BIN)/python -m bench.import_csv --rows 20000

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
