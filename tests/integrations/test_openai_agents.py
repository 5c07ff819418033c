"""OpenAI Agents SDK: MemstrataSession and the memory tools, driven through the real ``Runner.run`` against a
local server speaking OpenAI's Chat Completions protocol."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from _support_b import OpenAIFake, call, open_memory, run_example, say, shown
from agents import Agent, OpenAIChatCompletionsModel, Runner, set_tracing_disabled
from openai import AsyncOpenAI

from memstrata import AsyncMemory, InvalidInputError, Memory
from memstrata.integrations.openai_agents import MemstrataSession, memory_tools

set_tracing_disabled(True)


@pytest.fixture
def memory(store_url: str) -> Iterator[Memory]:
    """A fresh store on each backend of the main suite (SQLite, PostgreSQL + pgvector)."""
    yield from open_memory(store_url)


def model(fake: OpenAIFake) -> OpenAIChatCompletionsModel:
    return OpenAIChatCompletionsModel(model="fake-model", openai_client=AsyncOpenAI(base_url=fake.base_url,
                                                                                    api_key="test"))


def echo(body: dict[str, Any]) -> dict[str, Any]:
    """The fake model answers with how many messages it was shown."""
    return say(f"I see {len(body['messages'])} messages")


async def test_session_keeps_the_conversation_across_runs(memory: Memory) -> None:
    with OpenAIFake(echo) as fake:
        agent = Agent(name="assistant", instructions="Be brief.", model=model(fake))
        session = MemstrataSession("chat-1", memory, user_id="alice")
        await Runner.run(agent, "My name is Alice and I live in Lisbon.", session=session)
        second = await Runner.run(agent, "Where do I live?", session=session)
    # The second request carried the first turn back from memstrata: system, user, assistant, user.
    assert [m["role"] for m in fake.requests[1]["messages"]] == ["system", "user", "assistant", "user"]
    assert "I live in Lisbon" in shown(fake.requests[1])
    assert second.final_output == "I see 4 messages"
    items = await session.get_items()
    assert [i.get("role") for i in items] == ["user", "assistant", "user", "assistant"]
    assert items[0]["content"] == "My name is Alice and I live in Lisbon."
    assert (await session.get_items(limit=1)) == items[-1:]
    # What the user said was offered to the long-term scope too, where a new session can find it.
    found = memory.search("where does Alice live", user_id="alice")["results"]
    assert any("Lisbon" in r["memory"] for r in found)


async def test_pop_item_withdraws_the_latest_and_clear_session_erases(memory: Memory) -> None:
    session = MemstrataSession("chat-2", AsyncMemory(memory.store, embedder=memory.embedder), user_id="bob")
    await session.add_items([
        {"role": "user", "content": "first"},
        {"type": "function_call", "call_id": "c1", "name": "lookup", "arguments": "{\"q\": 1}"},
        {"type": "function_call_output", "call_id": "c1", "output": "42"},
    ])
    assert (await session.pop_item()) == {"type": "function_call_output", "call_id": "c1", "output": "42"}
    items = await session.get_items()
    assert items == [
        {"role": "user", "content": "first"},
        {"type": "function_call", "call_id": "c1", "name": "lookup", "arguments": "{\"q\": 1}"},
    ]
    await session.pop_item()
    await session.pop_item()
    assert await session.get_items() == []
    assert await session.pop_item() is None
    await session.add_items([{"role": "user", "content": "again"}])
    await session.clear_session()
    assert await session.get_items() == []
    assert memory.episodes(user_id="bob", run_id="chat-2")["results"] == []


async def test_long_sessions_read_back_in_order(memory: Memory) -> None:
    session = MemstrataSession("long", memory, user_id="carol", learn=False)
    items = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i}"} for i in range(1205)]
    for start in range(0, len(items), 400):
        await session.add_items(items[start : start + 400])
    assert await session.get_items() == items
    assert await session.get_items(limit=3) == items[-3:]


async def test_recall_tool_finds_what_an_earlier_session_taught(memory: Memory) -> None:
    def model_answer(body: dict[str, Any]) -> dict[str, Any]:
        last = body["messages"][-1]
        if last["role"] == "tool":
            return say("From memory: " + last["content"])
        return call("recall_memories", query="allergies")

    first = MemstrataSession("monday", memory, user_id="dana")
    await first.add_items([{"role": "user", "content": "I am allergic to peanuts."}])
    with OpenAIFake(model_answer) as fake:
        agent = Agent(name="assistant", model=model(fake), tools=memory_tools(memory, user_id="dana"))
        result = await Runner.run(agent, "What should the cook know?", session=MemstrataSession(
            "tuesday", memory, user_id="dana"))
    tool_names = [t["function"]["name"] for t in fake.requests[0]["tools"]]
    assert sorted(tool_names) == ["recall_memories", "remember"]
    assert "allergic to peanuts" in result.final_output


async def test_remember_tool_stores_a_fact(memory: Memory) -> None:
    def model_answer(body: dict[str, Any]) -> dict[str, Any]:
        if body["messages"][-1]["role"] == "tool":
            return say("noted")
        return call("remember", fact="Erin prefers window seats.")

    with OpenAIFake(model_answer) as fake:
        agent = Agent(name="assistant", model=model(fake), tools=memory_tools(memory, user_id="erin"))
        await Runner.run(agent, "Remember my seat preference")
        assert "remember" in [t["function"]["name"] for t in fake.requests[0]["tools"]]
    stored = memory.get_all(user_id="erin")["results"]
    assert [r["memory"] for r in stored] == ["Erin prefers window seats."]


def recall_then_answer(body: dict[str, Any]) -> dict[str, Any]:
    """A model that looks in memory first, then repeats what it found."""
    last = body["messages"][-1]
    if last["role"] == "tool":
        return say("From memory: " + last["content"])
    return call("recall_memories", query=last["content"])


async def ask(fake: OpenAIFake, name: str, tools: list[Any], question: str) -> str:
    result = await Runner.run(Agent(name=name, model=model(fake), tools=tools), question)
    return str(result.final_output)


async def test_agents_share_a_users_memory_and_users_stay_apart(memory: Memory) -> None:
    """Two agents serving one user share what the user told either; another user sees none of it."""
    await MemstrataSession("s-1", memory, user_id="frank").add_items(
        [{"role": "user", "content": "My favourite city is Porto."}])
    with OpenAIFake(recall_then_answer) as fake:
        assert "Porto" in await ask(fake, "planner", memory_tools(memory, user_id="frank"), "favourite city?")
        assert "Porto" in await ask(fake, "booker", memory_tools(memory, user_id="frank"), "favourite city?")
        assert await ask(fake, "planner", memory_tools(memory, user_id="grace"), "favourite city?") == (
            "From memory: No relevant memories.")
    assert await MemstrataSession("s-1", memory, user_id="grace").get_items() == []


async def test_a_bad_item_stores_nothing(memory: Memory) -> None:
    session = MemstrataSession("s", memory, user_id="kim")
    with pytest.raises(InvalidInputError, match=r"items\[1\]\.messages\[0\]\.content"):
        await session.add_items([{"role": "user", "content": "fine"}, {"role": "user", "content": "x" * 100_001}])
    with pytest.raises(InvalidInputError, match=r"items\[0\]\.metadata"):
        await session.add_items([{"type": "reasoning", "summary": ["y" * 70_000]}])
    assert await session.get_items() == [] and memory.episodes(user_id="kim", run_id="s")["results"] == []


def test_bad_arguments_are_refused(memory: Memory) -> None:
    from memstrata import ScopeError

    with pytest.raises(ScopeError):
        MemstrataSession("", memory, user_id="x")
    with pytest.raises(ScopeError):
        MemstrataSession("ok", memory, user_id=" x")
    with pytest.raises(ValueError, match="memory"):
        MemstrataSession("ok", object(), user_id="x")


def test_example_runs_offline() -> None:
    out = run_example("openai_agents_session.py")
    assert "alice, tuesday: From what I remember: I'm training for the Lisbon marathon in April." in out
    assert "bob, tuesday: From what I remember: nothing yet." in out
