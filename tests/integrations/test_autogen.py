"""AutoGen 0.7: MemstrataMemory driven through a real AssistantAgent with AutoGen's replay model client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _support_b import open_memory, run_example
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.messages import MemoryQueryEvent
from autogen_core.memory import MemoryContent, MemoryMimeType
from autogen_core.model_context import BufferedChatCompletionContext
from autogen_core.models import SystemMessage, UserMessage
from autogen_ext.models.replay import ReplayChatCompletionClient

from memstrata import ConfigurationError, InvalidInputError, Memory
from memstrata.integrations.autogen import MemstrataMemory


@pytest.fixture
def memory(store_url: str) -> Iterator[Memory]:
    """A fresh store on each backend of the main suite (SQLite, PostgreSQL + pgvector)."""
    yield from open_memory(store_url)


def text(value: str) -> MemoryContent:
    return MemoryContent(content=value, mime_type=MemoryMimeType.TEXT)


async def test_assistant_agent_sees_recalled_memories(memory: Memory) -> None:
    store = MemstrataMemory(memory, user_id="alice")
    await store.add(text("Alice is vegetarian."))
    await store.add(MemoryContent(content={"city": "Lisbon"}, mime_type=MemoryMimeType.JSON,
                                  metadata={"kind": "profile"}))
    client = ReplayChatCompletionClient(["A vegetarian menu, then."])
    agent = AssistantAgent("chef", model_client=client, memory=[store])
    result = await agent.run(task="Plan a dinner menu for a vegetarian guest")
    events = [m for m in result.messages if isinstance(m, MemoryQueryEvent)]
    assert events and any("Alice is vegetarian." == c.content for c in events[0].content)
    seen = client.create_calls[0]["messages"]
    memo = [m for m in seen if isinstance(m, SystemMessage) and "Relevant memories" in m.content]
    assert memo and "Alice is vegetarian." in memo[0].content
    assert result.messages[-1].content == "A vegetarian menu, then."


async def test_query_returns_scored_items_with_metadata(memory: Memory) -> None:
    store = MemstrataMemory(memory, user_id="bob")
    await store.add(MemoryContent(content="Bob's flight lands at 18:40.", mime_type="text/plain",
                                  metadata={"topic": "travel"}))
    await store.add(text("Bob owns a grey cat."))
    found = await store.query("when does the flight land", limit=1)
    assert [r.content for r in found.results] == ["Bob's flight lands at 18:40."]
    meta = found.results[0].metadata or {}
    assert meta["topic"] == "travel" and meta["score"] > 0 and meta["id"]
    only_travel = await store.query(text("cat"), filters={"topic": "travel"})
    assert all((r.metadata or {})["topic"] == "travel" for r in only_travel.results)


async def test_update_context_adds_one_system_message(memory: Memory) -> None:
    store = MemstrataMemory(memory, user_id="carol")
    await store.add(text("Carol's daughter is called Inês."))
    context = BufferedChatCompletionContext(buffer_size=10)
    await context.add_message(UserMessage(content="What is my daughter's name?", source="user"))
    result = await store.update_context(context)
    messages = await context.get_messages()
    assert len(messages) == 2 and isinstance(messages[1], SystemMessage)
    assert "Inês" in messages[1].content
    assert result.memories.results[0].content == "Carol's daughter is called Inês."
    empty = BufferedChatCompletionContext(buffer_size=10)
    assert (await store.update_context(empty)).memories.results == []


async def test_clear_deletes_the_scope_only(memory: Memory) -> None:
    mine, theirs = MemstrataMemory(memory, user_id="dan"), MemstrataMemory(memory, user_id="eve")
    await mine.add(text("Dan plays the cello."))
    await theirs.add(text("Eve plays the oboe."))
    await mine.clear()
    assert (await mine.query("plays")).results == []
    assert [r.content for r in (await theirs.query("plays")).results] == ["Eve plays the oboe."]


async def test_agents_share_a_user_and_users_stay_apart(memory: Memory) -> None:
    """Two agents bound to one user share memory; agents of another user see none of it."""
    writer = MemstrataMemory(memory, user_id="frank")
    await writer.add(text("Frank's budget is 2000 euros."))
    for name, user, expect in [("planner", "frank", True), ("booker", "frank", True), ("spy", "grace", False)]:
        client = ReplayChatCompletionClient(["ok"])
        agent = AssistantAgent(name, model_client=client, memory=[MemstrataMemory(memory, user_id=user)])
        await agent.run(task="What is the budget?")
        shown = "\n".join(str(m.content) for m in client.create_calls[0]["messages"])
        assert ("2000 euros" in shown) is expect, name


async def test_infer_lets_memstrata_extract(memory: Memory) -> None:
    store = MemstrataMemory(memory, user_id="hana", infer=True)
    await store.add(text("Hi there! By the way, I moved to Berlin last month."))
    kept = {r["memory"]: r.get("kind") for r in memory.get_all(user_id="hana")["results"]}
    assert "I moved to Berlin last month." in kept  # the fact, without the greeting around it
    assert kept.get("Hi there! By the way, I moved to Berlin last month.") == "message"  # the message, as said


async def test_component_config_round_trip(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'owned.db'}"
    store = MemstrataMemory(url, user_id="ivan", limit=3)
    config = store.dump_component()
    assert config.provider == "memstrata.integrations.autogen.MemstrataMemory"
    assert config.config["store"] == url and config.config["limit"] == 3
    await store.close()
    loaded = MemstrataMemory.load_component(config)
    assert isinstance(loaded, MemstrataMemory) and loaded.dump_component().config == config.config
    await loaded.close()
    with Memory(url) as unowned, pytest.raises(ConfigurationError, match="store URL"):
        MemstrataMemory(unowned, user_id="ivan").dump_component()


async def test_bad_content_is_refused(memory: Memory) -> None:
    store = MemstrataMemory(memory, user_id="jo")
    with pytest.raises(InvalidInputError, match="mime_type"):
        await store.add(MemoryContent(content=b"\x00", mime_type=MemoryMimeType.BINARY))
    with pytest.raises(InvalidInputError, match="limit"):
        MemstrataMemory(memory, user_id="jo", limit=0)
    assert memory.get_all(user_id="jo")["results"] == []


def test_example_runs_offline() -> None:
    out = run_example("autogen_agent.py")
    chef = "alice's chef asked 'What snacks are safe?'; the model was reminded of: ['Alice is allergic to peanuts.']"
    assert chef in out
    assert "bob's planner asked 'What can I spend?'; the model was reminded of: nothing" in out
