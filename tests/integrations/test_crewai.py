"""CrewAI 1.x: MemstrataStorage behind CrewAI's own ``Memory``, and a real ``Crew`` whose members share it.
The crew's model is a local server speaking OpenAI's Chat Completions protocol."""

from __future__ import annotations

import os

os.environ.update(CREWAI_DISABLE_TELEMETRY="true", OTEL_SDK_DISABLED="true", CREWAI_TRACING_ENABLED="false")

import json  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from datetime import datetime, timedelta  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
from _support_b import OpenAIFake, call, open_memory, run_example, say, shown  # noqa: E402

with warnings.catch_warnings():  # crewai's lazy package setup raises ImportWarning while it imports itself
    warnings.simplefilter("ignore", ImportWarning)
    from crewai import LLM, Agent, Crew, Task
    from crewai import Memory as CrewMemory
    from crewai.memory.storage.backend import StorageBackend
    from crewai.memory.types import MemoryRecord

from memstrata import ConfigurationError, InvalidInputError, Memory  # noqa: E402
from memstrata.integrations.crewai import MemstrataStorage  # noqa: E402

# CrewAI reads its own deprecated fields while it builds an agent; those warnings are its business.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:crewai.*")


def model(body: dict[str, Any]) -> dict[str, Any]:
    """The crew's model: structured answers for CrewAI's memory analysis, a memory search for a reviewer,
    plain final answers otherwise."""
    schema = ((body.get("response_format") or {}).get("json_schema") or {}).get("name")
    if schema == "ExtractedMemories":
        return say(json.dumps({"memories": ["The client wants the report as a PDF."]}))
    if schema == "MemoryAnalysis":
        return say(json.dumps({"suggested_scope": "/preferences", "categories": ["preferences"],
                               "importance": 0.7,
                               "extracted_metadata": {"entities": [], "dates": [], "topics": []}}))
    if schema is not None:
        return say("{}")
    last = body["messages"][-1]
    if last["role"] == "tool":
        return say("Thought: I checked memory\nFinal Answer: " + last["content"])
    if "Review" in body["messages"][0]["content"]:
        return call("search_memory", queries=["report format the client wants"])
    return say("Thought: done\nFinal Answer: The report is written; the client wants a PDF.")



@pytest.fixture
def fake() -> Iterator[OpenAIFake]:
    with OpenAIFake(model) as server:
        yield server


@pytest.fixture
def llm(fake: OpenAIFake) -> LLM:
    return LLM(model="openai/fake-model", base_url=fake.base_url, api_key="test")


@pytest.fixture
def memory(store_url: str) -> Iterator[Memory]:
    """A fresh store on each backend of the main suite (SQLite, PostgreSQL + pgvector)."""
    yield from open_memory(store_url)


def crew_memory(storage: MemstrataStorage, llm: LLM) -> CrewMemory:
    return CrewMemory(storage=storage, embedder=storage.embedder, llm=llm)


def test_is_a_storage_backend(memory: Memory) -> None:
    assert isinstance(MemstrataStorage(memory, user_id="acme"), StorageBackend)


def test_remember_recall_and_scopes(memory: Memory, llm: LLM) -> None:
    mem = crew_memory(MemstrataStorage(memory, user_id="acme"), llm)
    pdf = mem.remember("The client wants reports as PDF.", scope="/crew/research/agent/writer",
                       categories=["preferences"], importance=0.8)
    due = mem.remember("Quarterly numbers are due on Friday.", scope="/crew/research",
                       categories=["deadlines"], importance=0.6)
    mem.remember("The office is closed on Monday.", scope="/crew/ops", categories=["calendar"], importance=0.4)
    assert pdf is not None and due is not None
    hits = mem.recall("what format does the client want for reports", depth="shallow", limit=2)
    assert hits[0].record.id == pdf.id and hits[0].record.content == "The client wants reports as PDF."
    assert hits[0].record.categories == ["preferences"] and hits[0].record.importance == 0.8
    # A scope prefix covers its sub-scopes and nothing beside them.
    writer = mem.recall("quarterly numbers", scope="/crew/research/agent/writer", depth="shallow")
    assert [m.record.id for m in writer] == [pdf.id]
    research = {m.record.id for m in mem.recall("due friday pdf", scope="/crew/research", depth="shallow")}
    assert research == {pdf.id, due.id}
    assert mem.recall("friday", categories=["deadlines"], depth="shallow")[0].record.id == due.id
    assert mem.list_scopes("/crew") == ["/crew/ops", "/crew/research"]
    info = mem.info("/crew/research")
    assert info.record_count == 2 and info.categories == ["deadlines", "preferences"]
    assert info.child_scopes == ["/crew/research/agent"]
    assert mem.list_categories() == {"preferences": 1, "deadlines": 1, "calendar": 1}
    assert [r.id for r in mem.list_records()][0] != pdf.id  # newest first
    assert len(mem.list_records(limit=2)) == 2


def test_update_forget_and_reset(memory: Memory, llm: LLM) -> None:
    storage = MemstrataStorage(memory, user_id="acme")
    mem = crew_memory(storage, llm)
    rec = mem.remember("Deploys happen on Tuesdays.", scope="/ops", categories=["process"], importance=0.5)
    assert rec is not None
    mem.update(rec.id, content="Deploys happen on Thursdays.", importance=0.9)
    got = storage.get_record(rec.id)
    assert got is not None and got.content == "Deploys happen on Thursdays." and got.importance == 0.9
    history = memory.history(memory.get_all(user_id="acme")["results"][0]["id"], user_id="acme")
    assert [e["event"] for e in history] == ["ADD", "UPDATE"]
    other = mem.remember("Standup is at 9.", scope="/team", categories=["calendar"], importance=0.5)
    assert other is not None
    assert mem.forget(scope="/ops") == 1
    assert storage.get_record(rec.id) is None and storage.count() == 1
    assert storage.delete(record_ids=[other.id], older_than=datetime.utcnow() - timedelta(days=1)) == 0
    assert storage.delete(record_ids=[other.id]) == 1
    mem.remember("Something else.", scope="/x", categories=["misc"], importance=0.5)
    mem.reset()  # the scope held only the crew's records: all of it goes, episodes included
    assert storage.count() == 0 and memory.episodes(user_id="acme")["results"] == []
    memory.add("Not the crew's: stored by another part of the app.", user_id="acme", infer=False)
    mem.remember("The crew's.", scope="/x", categories=["misc"], importance=0.5)
    mem.reset()  # now only the crew's records go
    assert storage.count() == 0
    assert [m["memory"] for m in memory.get_all(user_id="acme")["results"]] == [
        "Not the crew's: stored by another part of the app."]


def test_an_exact_repeat_is_one_record(memory: Memory) -> None:
    storage = MemstrataStorage(memory, user_id="acme")
    first = MemoryRecord(content="The API key rotates monthly.", scope="/ops")
    again = MemoryRecord(content="The API key rotates monthly.", scope="/ops")
    storage.save([first])
    storage.save([again])
    assert again.id == first.id and storage.count() == 1


def test_a_bad_record_stores_nothing(memory: Memory) -> None:
    storage = MemstrataStorage(memory, user_id="acme")
    with pytest.raises(InvalidInputError, match=r"items\[1\]"):
        storage.save([MemoryRecord(content="fine"), MemoryRecord(content="x", metadata={"blob": "y" * 70_000})])
    assert storage.count() == 0


def test_search_needs_the_paired_embedder(memory: Memory) -> None:
    storage = MemstrataStorage(memory, user_id="acme")
    with pytest.raises(ConfigurationError, match="embedder=storage.embedder"):
        storage.search([0.1] * 8)


async def test_async_twins(memory: Memory) -> None:
    storage = MemstrataStorage(memory, user_id="acme")
    await storage.asave([MemoryRecord(content="Async works too.", scope="/a", categories=["t"])])
    [vector] = storage.embedder(["does async work"])
    [(record, score)] = await storage.asearch(vector)
    assert record.content == "Async works too." and 0 < score <= 1
    assert await storage.adelete(categories=["t"]) == 1


def test_crew_members_share_memory_and_crews_of_other_users_do_not(memory: Memory, fake: OpenAIFake, llm: LLM) -> None:
    """A writer's crew run leaves a memory; a reviewer in another crew of the same user finds it through
    CrewAI's memory tool; the same crew serving another user finds nothing."""

    def run(user: str, role: str, task: str) -> str:
        storage = MemstrataStorage(memory, user_id=user)
        agent = Agent(role=role, goal="Serve the client", backstory="Careful.", llm=llm)
        work = Task(description=task, expected_output="One sentence.", agent=agent)
        return Crew(agents=[agent], tasks=[work], memory=crew_memory(storage, llm)).kickoff().raw

    run("acme", "Writer", "Write the client report.")
    stored = memory.get_all(user_id="acme")["results"]
    assert [s["memory"] for s in stored] == ["The client wants the report as a PDF."]
    review = run("acme", "Reviewer", "Review the report format.")
    assert "Found memories:" in review and "The client wants the report as a PDF." in review
    assert "No relevant memories found." in run("globex", "Reviewer", "Review the report format.")
    # Before each task CrewAI recalls by the task's description and puts what it finds in the prompt.
    prompts = [shown(b) for b in fake.requests if "Current Task: Review the report format." in shown(b)
               and b["messages"][-1]["role"] == "user"]
    assert len(prompts) == 2
    assert "Relevant memories" in prompts[0] and "The client wants the report as a PDF." in prompts[0]
    assert "Relevant memories" not in prompts[1]
    # The reviewer's own result was remembered too: as one merged record for acme (an exact repeat).
    assert len(memory.get_all(user_id="acme")["results"]) == 1


def test_example_runs_offline() -> None:
    out = run_example("crewai_crew.py")
    assert "  - The client wants every report as a PDF. /client" in out
    assert "acme reviewer: Checked the report against what we know:" in out and "Portuguese" in out
    assert "globex reviewer: Nothing on record for this client" in out
