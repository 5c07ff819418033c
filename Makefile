# memstrata — `make run` sets up and runs the demo, `make test` sets up and runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test lint bench bench-longmemeval clean test-integrations-b

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
	rm -rf $(VENV) $(INTB_VENV) $(CREWAI_VENV) build *.egg-info .pytest_cache
