"""LlamaIndex: MemstrataMemoryBlock inside the real llama_index.core.memory.Memory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from integration_support import need, run_example

need("llama_index.core")

from llama_index.core.base.llms.types import ChatMessage  # noqa: E402
from llama_index.core.memory import Memory as LlamaMemory  # noqa: E402
from llama_index.core.memory.memory import BaseMemoryBlock  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine  # noqa: E402

from memstrata import Memory  # noqa: E402
from memstrata.integrations.llamaindex import MemstrataMemoryBlock  # noqa: E402

CHAT = [
    ChatMessage(role="user", content="I moved to Lisbon last month. My sister Ana lives in Porto."),
    ChatMessage(role="assistant", content="Lisbon and Porto are lovely cities."),
    ChatMessage(role="user", content="I am allergic to peanuts, so please keep that in mind."),
    ChatMessage(role="assistant", content="Understood, no peanuts."),
    ChatMessage(role="user", content="Let's talk about something else now."),
    ChatMessage(role="assistant", content="Sure, what would you like to talk about?"),
]


@pytest.fixture
async def engines(tmp_path: Path) -> AsyncIterator[list[AsyncEngine]]:
    """LlamaIndex's own chat store engines, disposed after the test (they hold aiosqlite connections)."""
    made: list[AsyncEngine] = []
    yield made
    for engine in made:
        await engine.dispose()


def _llama(block: MemstrataMemoryBlock, session: str, engines: list[AsyncEngine], folder: Path) -> LlamaMemory:
    engines.append(create_async_engine(f"sqlite+aiosqlite:///{folder / session}.db"))
    # A small token limit makes LlamaIndex flush older turns to the blocks after a few messages.
    return LlamaMemory.from_defaults(session_id=session, token_limit=60, token_flush_size=30,
                                     chat_history_token_ratio=0.5, memory_blocks=[block], async_engine=engines[-1])


def _system_text(messages: list[ChatMessage]) -> str:
    return "\n".join(m.content or "" for m in messages if m.role == "system")


async def test_flushed_turns_become_memories_and_come_back_in_the_prompt(
    real_memory: Memory, engines: list[AsyncEngine], tmp_path: Path
) -> None:
    block = MemstrataMemoryBlock(memory=real_memory, user_id="alice")
    assert isinstance(block, BaseMemoryBlock)
    chat = _llama(block, "s1", engines, tmp_path)
    await chat.aput_messages(CHAT)
    episodes = real_memory.episodes(user_id="alice", conversation_id="s1")["results"]
    assert episodes and episodes[0]["content"].startswith("I moved to Lisbon")  # flushed, in order
    stored = " ".join(r["memory"] for r in real_memory.get_all(user_id="alice")["results"])
    assert "Porto" in stored and "peanuts" in stored
    prompt = await chat.aget(input="Which city does my sister live in?")
    assert "Porto" in _system_text(prompt) and "<memstrata>" in _system_text(prompt)
    # A new LlamaIndex session for the same user starts with an empty chat, yet recalls the same facts.
    fresh = await _llama(MemstrataMemoryBlock(memory=real_memory, user_id="alice"), "s2", engines, tmp_path).aget(
        input="what am I allergic to?")
    assert "peanuts" in _system_text(fresh)


async def test_users_are_isolated_and_agents_of_one_user_share(memory: Memory) -> None:
    alice_planner = MemstrataMemoryBlock(memory=memory, user_id="alice", mode="search")
    await alice_planner.aput([ChatMessage(role="user", content="My sister Ana lives in Porto.")])
    # Another agent of alice (its own block and session) sees the memory; bob's block never does.
    alice_booker = MemstrataMemoryBlock(memory=memory, user_id="alice", mode="search")
    assert "Porto" in await alice_booker.aget([ChatMessage(role="user", content="where does Ana live?")])
    bob = MemstrataMemoryBlock(memory=memory, user_id="bob", mode="search")
    assert await bob.aget([ChatMessage(role="user", content="where does Ana live?")]) == ""
    # Blocks bound to an agent id keep that agent's memories to itself.
    own = MemstrataMemoryBlock(memory=memory, user_id="alice", agent_id="booker")
    await own.aput([ChatMessage(role="user", content="I prefer aisle seats on trains.")])
    assert memory.get_all(user_id="alice", agent_id="booker")["results"]
    assert "aisle" not in await alice_booker.aget([ChatMessage(role="user", content="seat preference")])


async def test_empty_input_and_truncation(memory: Memory) -> None:
    block = MemstrataMemoryBlock(memory=memory, user_id="alice", mode="search")
    assert await block.aget([]) == "" and await block.aget(None) == ""
    await block.aput([ChatMessage(role="assistant", content="  ")])
    assert memory.episodes(user_id="alice")["results"] == []
    content = "- first line of memory\n- second line\n- third line"
    assert await block.atruncate(content, 3) == "- first line of memory\n- second line"
    assert await block.atruncate(content, 10_000) is None


def test_example_runs_offline(tmp_path: Path) -> None:
    out = run_example("llamaindex_memory.py", tmp_path)
    assert "Porto" in out and "bob:" in out and "Porto" not in out.split("bob:")[1]
