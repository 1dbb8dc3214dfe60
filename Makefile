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

# `make bench`: every benchmark at its quick size (under 5 minutes on a clean clone).
# `make bench FULL=1`: the full sizes (1M contacts, 1M follow-ups, 100k deals, ...); the
# data sets are built once (bench/data/ and bench_* schemas in PostgreSQL), then reused.
# Each benchmark prints JSON lines and appends a dated section to bench/RESULTS.md.
ifneq ($(filter 1 yes true,$(FULL)),)
BENCH_SIZE :=
BENCH_ACK := --concurrency 1,10,50
BENCH_IMPORT := --rows 100000
else
BENCH_SIZE := --quick
BENCH_ACK := --quick --concurrency 1,10
BENCH_IMPORT := --rows 20000
endif

bench: $(STAMP)
	$(BIN)/python -m bench.datagen --engine both $(BENCH_SIZE)
	$(BIN)/python -m bench.find --engine both $(BENCH_SIZE)
	$(BIN)/python -m bench.ack $(BENCH_ACK)
	$(BIN)/python -m bench.profile_ack --requests 1000 --top 0
	$(BIN)/python -m bench.sweep $(BENCH_SIZE)
	$(BIN)/python -m bench.reports --engine both $(BENCH_SIZE)
	$(BIN)/python -m bench.import_csv $(BENCH_IMPORT)
	$(BIN)/python -m bench.search_threads

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
