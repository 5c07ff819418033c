"""A Microsoft Agent Framework agent with memstrata as its memory.

The context provider recalls what earlier sessions taught before each run and captures the new turn after
it; the history provider keeps each session's transcript. Runs offline: a small chat client stands in for
the model and answers with what it was told (swap in ``OpenAIChatClient()`` or any chat client for a real
one).

    pip install 'memstrata[agent-framework]'
    python examples/agent_framework_agent.py
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Sequence
from typing import Any

from agent_framework import Agent, BaseChatClient, ChatResponse, Message

from memstrata import Memory
from memstrata.integrations.agent_framework import MemstrataContextProvider, MemstrataHistoryProvider


class RecitingClient(BaseChatClient):
    """Stands in for a model: replies with the memories its instructions carry, or says it knows nothing."""

    async def _inner_get_response(self, *, messages: Sequence[Message], stream: bool, options: Any,
                                  **kwargs: Any) -> ChatResponse:
        instructions = str(options.get("instructions") or "")
        known = [line[2:] for line in instructions.splitlines() if line.startswith("- [")]
        reply = "I remember: " + " | ".join(known) if known else f"Noted ({len(messages)} messages so far)."
        return ChatResponse(messages=[Message(role="assistant", contents=[reply])])


def agent_for(memory: Memory, user: str) -> Agent:
    return Agent(RecitingClient(), name="concierge", context_providers=[
        MemstrataHistoryProvider(memory, user_id=user),
        MemstrataContextProvider(memory, user_id=user),
    ])


async def main() -> None:
    logging.getLogger("agent_framework").setLevel(logging.ERROR)  # the stand-in client calls no tools
    with tempfile.TemporaryDirectory() as tmp, Memory(f"sqlite:///{tmp}/memory.db") as memory:
        concierge = agent_for(memory, "alice")
        monday = concierge.create_session()
        print("monday:", await concierge.run("I'm vegetarian and I live in Porto.", session=monday))
        print("monday:", await concierge.run("Book me a table for Friday.", session=monday))
        # A new session, even a new agent object: the user's memory is what carries over.
        friday = agent_for(memory, "alice")
        print("friday:", await friday.run("Any restaurant ideas for tonight?", session=friday.create_session()))
        stranger = agent_for(memory, "bob")
        print("bob:", await stranger.run("Any restaurant ideas for tonight?", session=stranger.create_session()))


if __name__ == "__main__":
    asyncio.run(main())
