# memstrata — `make run` sets up and runs the demo, `make test` sets up and runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
# The demo writes this store and the server serves it, so the web page opens on the demo's memories.
DEMO_STORE := sqlite:///$(CURDIR)/.memstrata/demo.db

.PHONY: setup run test lint bench bench-longmemeval clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Running needs only the embedded default and the server; the tools for testing come with `make test`.
$(RUN_STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e '.[server]'
	touch $(RUN_STAMP)

$(DEV_STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(DEV_STAMP) $(RUN_STAMP)

setup: $(DEV_STAMP)

# The demo shows what memory does; then the server starts on the demo's store (Ctrl-C stops it).
run: $(RUN_STAMP)
	$(BIN)/memstrata --store $(DEMO_STORE) demo --keep
	$(BIN)/memstrata --store $(DEMO_STORE) serve --no-auth --port $${PORT:-8000}

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy src/memstrata

bench: setup
	$(BIN)/python bench/perf.py --write

bench-longmemeval: setup
	$(BIN)/memstrata bench longmemeval ../shared/data/longmemeval_s_dev100.jsonl --write

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
