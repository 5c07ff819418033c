"""Microsoft Agent Framework: the memstrata context and history providers on a real ``Agent``, whose chat
client is a scripted fake that records what the model is shown."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from _support_b import open_memory, run_example
from agent_framework import Agent, BaseChatClient, ChatResponse, Content, Message

from memstrata import InvalidInputError, Memory
from memstrata.integrations.agent_framework import MemstrataContextProvider, MemstrataHistoryProvider


class ScriptedClient(BaseChatClient):
    """A chat client that answers with how many messages it got, and keeps what each request showed it."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[list[Message]] = []
        self.instructions: list[str] = []

    async def _inner_get_response(self, *, messages: Sequence[Message], stream: bool, options: Any,
                                  **kwargs: Any) -> ChatResponse:
        assert not stream
        self.seen.append(list(messages))
        self.instructions.append(str(options.get("instructions") or ""))
        return ChatResponse(messages=[Message(role="assistant", contents=[f"got {len(messages)} messages"])],
                            response_id=f"r{len(self.seen)}")

    def shown(self, call: int = -1) -> str:
        """The instructions and messages of one request."""
        return "\n".join([self.instructions[call], *(m.text or "" for m in self.seen[call])])


@pytest.fixture
def memory(store_url: str) -> Iterator[Memory]:
    """A fresh store on each backend of the main suite (SQLite, PostgreSQL + pgvector)."""
    yield from open_memory(store_url)


async def test_context_provider_recalls_across_sessions(memory: Memory) -> None:
    client = ScriptedClient()
    agent = Agent(client, instructions="Be helpful.",
                  context_providers=[MemstrataContextProvider(memory, user_id="alice")])
    await agent.run("I am allergic to shellfish.", session=agent.create_session())
    # Captured after the run, into the user's long-term scope.
    assert any("shellfish" in r["memory"] for r in memory.get_all(user_id="alice")["results"])
    await agent.run("Can you suggest a seafood dish for me?", session=agent.create_session())
    assert "allergic to shellfish" in client.shown()
    assert "What you remember" in client.shown()
    assert "What you remember" not in client.instructions[0]  # nothing was known before the first run


async def test_history_provider_keeps_a_session(memory: Memory) -> None:
    client = ScriptedClient()
    history = MemstrataHistoryProvider(memory, user_id="bob")
    agent = Agent(client, context_providers=[history])
    session = agent.create_session()
    await agent.run("Hello, I'm Bob.", session=session)
    await agent.run("What did I say first?", session=session)
    roles = [str(m.role) for m in client.seen[1]]
    assert roles == ["user", "assistant", "user"]
    assert "Hello, I'm Bob." in client.shown()
    stored = await history.get_messages(session.session_id)
    assert [m.text for m in stored] == ["Hello, I'm Bob.", "got 1 messages", "What did I say first?",
                                        "got 3 messages"]
    # The transcript lives in the session's own scope; a new session starts empty.
    assert memory.episodes(user_id="bob", run_id=session.session_id)["results"]
    fresh = agent.create_session()
    await agent.run("Who am I?", session=fresh)
    assert [str(m.role) for m in client.seen[-1]] == ["user"]


async def test_history_round_trips_tool_calls(memory: Memory) -> None:
    history = MemstrataHistoryProvider(memory, user_id="carol")
    call = Message(role="assistant", contents=[Content.from_function_call(call_id="c1", name="weather",
                                                                             arguments={"city": "Porto"})])
    result = Message(role="tool", contents=[Content.from_function_result(call_id="c1", result="sunny")])
    await history.save_messages("s-1", [Message(role="user", contents=["weather?"]), call, result])
    back = await history.get_messages("s-1")
    assert [m.to_dict() for m in back] == [m.to_dict() for m in [Message(role="user", contents=["weather?"]),
                                                                  call, result]]
    assert back[1].contents[0].type == "function_call" and back[1].contents[0].name == "weather"


async def test_agents_share_a_user_and_users_stay_apart(memory: Memory) -> None:
    """Two agents serving one user both recall what the user told either; another user's agent sees nothing."""
    teller = Agent(ScriptedClient(), context_providers=[MemstrataContextProvider(memory, user_id="dan")])
    await teller.run("My car is a blue Fiat.")
    for user, expect in [("dan", True), ("dan", True), ("erin", False)]:
        client = ScriptedClient()
        agent = Agent(client, context_providers=[MemstrataContextProvider(memory, user_id=user, capture=False)])
        await agent.run("What car do I drive?")
        assert ("blue Fiat" in client.shown()) is expect, user
    assert memory.get_all(user_id="erin")["results"] == []


async def test_history_of_one_user_is_not_read_by_another(memory: Memory) -> None:
    await MemstrataHistoryProvider(memory, user_id="fay").save_messages(
        "shared-id", [Message(role="user", contents=["secret plans"])])
    assert await MemstrataHistoryProvider(memory, user_id="gus").get_messages("shared-id") == []


async def test_bad_arguments_are_refused(memory: Memory) -> None:
    with pytest.raises(InvalidInputError, match="session"):
        await MemstrataHistoryProvider(memory, user_id="h").get_messages(None)
    with pytest.raises(InvalidInputError, match="user_id"):
        MemstrataContextProvider(memory, user_id="")


def test_example_runs_offline() -> None:
    out = run_example("agent_framework_agent.py").splitlines()
    friday = next(line for line in out if line.startswith("friday:"))
    assert "vegetarian" in friday and "Porto" in friday
    assert next(line for line in out if line.startswith("bob:")) == "bob: Noted (1 messages so far)."
