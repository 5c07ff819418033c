# memstrata — `make run` sets up and runs the demo, `make test` sets up and runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test test-ts lint bench bench-longmemeval clean test-integrations test-integrations-a

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
	$(BIN)/python -m pytest -q --ignore=tests/integrations
	$(MAKE) test-integrations
	$(MAKE) test-ts

# Framework integrations run on the frameworks' real packages, in environments of their own (the main one
# stays lean). A group is an environment built from a requirements file plus the test files it runs; add a
# group by writing its target and appending it to INTEGRATION_GROUPS.
INTEGRATION_GROUPS := test-integrations-a
INTA_VENV := .venv-integrations
INTA_TESTS := tests/integrations/test_langgraph.py tests/integrations/test_langchain.py \
	tests/integrations/test_llamaindex.py

$(INTA_VENV)/.installed: pyproject.toml tests/integrations/requirements.txt
	test -x $(INTA_VENV)/bin/python || $(PYTHON) -m venv $(INTA_VENV)
	$(INTA_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(INTA_VENV)/bin/python -m pip install --quiet -r tests/integrations/requirements.txt
	touch $@

# LangGraph, LangChain and LlamaIndex.
test-integrations-a: $(INTA_VENV)/.installed
	$(INTA_VENV)/bin/python -m pytest -q $(INTA_TESTS)

test-integrations: $(INTEGRATION_GROUPS)

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
	rm -rf $(VENV) $(INTA_VENV) build *.egg-info .pytest_cache clients/node_modules clients/*/dist clients/.cache
