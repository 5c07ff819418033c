# memstrata — `make run` sets up and runs the demo, `make test` sets up and runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
# The demo writes this store and the server serves it, so the web page opens on the demo's memories.
DEMO_STORE := sqlite:///$(CURDIR)/.memstrata/demo.db

.PHONY: setup run test test-ts test-scale lint bench bench-longmemeval clean test-integrations test-integrations-a \
	test-integrations-b

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

# Test processes for the main suite (pytest-xdist); TEST_WORKERS=0 runs it in this process.
TEST_WORKERS ?= 2

test: setup
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --ignore=tests/integrations
	$(MAKE) test-integrations
	$(MAKE) test-ts

# Only the multi-process tests (several servers on one PostgreSQL + Redis behind haproxy; docs/scaling.md).
# `make test` runs them too.
test-scale: setup
	$(BIN)/python -m pytest -q -m scale

# Framework integrations run on the frameworks' real packages, in environments of their own (the main one
# stays lean). A group is an environment built from a requirements file plus the test files it runs; add a
# group by writing its target and appending it to INTEGRATION_GROUPS.
INTEGRATION_GROUPS := test-integrations-a test-integrations-b
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

# CrewAI, Microsoft Agent Framework, AutoGen and the OpenAI Agents SDK, on their real packages. CrewAI's pins
# clash with the others', so it has its own environment.
INTB_VENV := .venv-integrations-b
CREWAI_VENV := .venv-integrations-crewai

$(INTB_VENV)/.installed: pyproject.toml tests/integrations/requirements-b.txt
	test -x $(INTB_VENV)/bin/python || $(PYTHON) -m venv $(INTB_VENV)
	$(INTB_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(INTB_VENV)/bin/python -m pip install --quiet -r tests/integrations/requirements-b.txt
	touch $@

$(CREWAI_VENV)/.installed: pyproject.toml tests/integrations/requirements-crewai.txt
	test -x $(CREWAI_VENV)/bin/python || $(PYTHON) -m venv $(CREWAI_VENV)
	$(CREWAI_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CREWAI_VENV)/bin/python -m pip install --quiet -r tests/integrations/requirements-crewai.txt
	touch $@

test-integrations-b: $(INTB_VENV)/.installed $(CREWAI_VENV)/.installed
	$(INTB_VENV)/bin/python -m pytest -q tests/integrations/test_agent_framework.py \
		tests/integrations/test_autogen.py tests/integrations/test_openai_agents.py
	$(CREWAI_VENV)/bin/python -m pytest -q tests/integrations/test_crewai.py

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy src/memstrata

bench: setup
	$(BIN)/python bench/perf.py --write

bench-longmemeval: setup
	$(BIN)/memstrata bench longmemeval ../shared/data/longmemeval_s_dev100.jsonl --write

clean:
	rm -rf $(VENV) $(INTA_VENV) $(INTB_VENV) $(CREWAI_VENV) build *.egg-info .pytest_cache clients/node_modules \
		clients/*/dist clients/.cache
