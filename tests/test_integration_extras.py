"""Each framework integration is an optional extra: importing memstrata never imports a framework, and importing
an integration whose framework is missing says which extra to install."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from memstrata import ConfigurationError

# (integration module, the framework's top-level package, the extra that installs it)
INTEGRATIONS = [
    ("langgraph", "langgraph", "langgraph"),
    ("langchain", "langchain_core", "langchain"),
    ("llamaindex", "llama_index", "llamaindex"),
    ("crewai", "crewai", "crewai"),
    ("agent_framework", "agent_framework", "agent-framework"),
    ("autogen", "autogen_core", "autogen"),
    ("openai_agents", "agents", "openai-agents"),
]


@pytest.mark.parametrize(("module", "package", "extra"), INTEGRATIONS)
def test_missing_framework_names_the_extra(module: str, package: str, extra: str,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(sys.modules):
        if name == package or name.startswith(package + "."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, package, None)  # what an environment without the package looks like
    monkeypatch.delitem(sys.modules, f"memstrata.integrations.{module}", raising=False)
    with pytest.raises(ConfigurationError, match=rf"pip install 'memstrata\[{extra}\]'"):
        importlib.import_module(f"memstrata.integrations.{module}")


def test_importing_memstrata_imports_no_framework() -> None:
    code = ("import sys, memstrata, memstrata.integrations; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "{'langgraph', 'langchain_core', 'llama_index', 'crewai', 'agents', 'autogen_core'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
