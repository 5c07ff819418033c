"""A CrewAI crew whose memory lives in memstrata.

A writer's crew learns what the client wants; a reviewer in a later crew of the same client is reminded of
it before its task; the same reviewer working for another client is told nothing. Runs offline: a small
scripted model stands in for the LLM (use ``LLM(model="gpt-4o-mini")`` or any CrewAI LLM for a real one).

    pip install 'memstrata[crewai]'
    python examples/crewai_crew.py
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from typing import Any

os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("OTEL_SDK_DISABLED", "true")

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from crewai import Agent, Crew, Task
    from crewai import Memory as CrewMemory
    from crewai.llms.base_llm import BaseLLM

from memstrata import Memory
from memstrata.integrations.crewai import MemstrataStorage


class ScriptedLLM(BaseLLM):
    """Stands in for a model: answers CrewAI's memory prompts in their JSON shape, and tasks in one line."""

    def call(self, messages: Any, *args: Any, **kwargs: Any) -> str:
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        system, prompt = messages[0]["content"], messages[-1]["content"]
        if "extract discrete, reusable memory statements" in system:
            said = prompt.split("Task:", 1)[-1].split("Agent:", 1)[0]
            return json.dumps({"memories": [s.strip() + "." for s in said.split(".") if "client" in s.lower()]})
        if "hierarchical memory system" in system:
            return json.dumps({"suggested_scope": "/client", "categories": ["preferences"], "importance": 0.8})
        if "Relevant memories:" in prompt:
            recalled = [line[line.index(")") + 2:] for line in prompt.splitlines() if line.startswith("- (score")]
            return "Final Answer: Checked the report against what we know: " + " ".join(recalled)
        if prompt.startswith("Query:"):
            return "Nothing is missing."
        return "Final Answer: Nothing on record for this client; the report goes out as drafted."


def crew_for(memory: Memory, client: str, role: str, task: str, llm: BaseLLM) -> str:
    storage = MemstrataStorage(memory, user_id=client)  # one memstrata scope per client
    agent = Agent(role=role, goal="Serve the client well", backstory="Careful and brief.", llm=llm)
    work = Task(description=task, expected_output="One sentence.", agent=agent)
    crew_memory = CrewMemory(storage=storage, embedder=storage.embedder, llm=llm)
    return Crew(agents=[agent], tasks=[work], memory=crew_memory).kickoff().raw


def main() -> None:
    llm = ScriptedLLM(model="scripted")
    with tempfile.TemporaryDirectory() as tmp, Memory(f"sqlite:///{tmp}/memory.db") as memory:
        crew_for(memory, "acme", "Writer", "Draft the status report. The client wants every report as a PDF. "
                 "The client reads Portuguese first.", llm)
        print("acme remembers:")
        for item in memory.get_all(user_id="acme")["results"]:
            print("  -", item["memory"], item["metadata"]["crewai"]["scope"])
        print("acme reviewer:", crew_for(memory, "acme", "Reviewer", "Review the status report.", llm))
        print("globex reviewer:", crew_for(memory, "globex", "Reviewer", "Review the status report.", llm))


if __name__ == "__main__":
    main()
