# memstrata — `make run` sets up and runs the demo, `make test` sets up and runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test test-ts lint bench bench-longmemeval clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# The demo shows what memory does; then the server starts on the embedded store (Ctrl-C stops it).
run: setup
	$(BIN)/memstrata --store sqlite:///$(CURDIR)/.memstrata/demo.db demo --keep
	$(BIN)/memstrata --store sqlite:///$(CURDIR)/.memstrata/memory.db serve --no-auth --port $${PORT:-8000}

test: setup
	$(BIN)/python -m pytest -q
	$(MAKE) test-ts

# The TypeScript SDK and OpenClaw plugin (clients/): npm ci, build, type-check, tests against live servers.
test-ts: setup
	MEMSTRATA_PYTHON=$(CURDIR)/$(BIN)/python clients/run-tests.sh

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy src/memstrata

bench: setup
	$(BIN)/python bench/perf.py --write

bench-longmemeval: setup
	$(BIN)/memstrata bench longmemeval ../shared/data/longmemeval_s_dev100.jsonl --write

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache clients/node_modules clients/*/dist clients/.cache
