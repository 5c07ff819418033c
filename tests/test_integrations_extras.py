"""Each framework integration names its extra when the framework is missing."""

from __future__ import annotations

import importlib
import sys

import pytest

from memstrata import ConfigurationError

INTEGRATIONS = [
    ("crewai", "crewai", "crewai"),
    ("agent_framework", "agent_framework", "agent-framework"),
    ("autogen", "autogen_core", "autogen"),
    ("openai_agents", "agents", "openai-agents"),
]


@pytest.mark.parametrize(("module", "framework", "extra"), INTEGRATIONS)
def test_missing_framework_names_the_extra(monkeypatch: pytest.MonkeyPatch, module: str, framework: str,
                                           extra: str) -> None:
    monkeypatch.setitem(sys.modules, framework, None)  # as if it were not installed
    monkeypatch.delitem(sys.modules, f"memstrata.integrations.{module}", raising=False)
    with pytest.raises(ConfigurationError, match=rf"pip install 'memstrata\[{extra}\]'"):
        importlib.import_module(f"memstrata.integrations.{module}")

