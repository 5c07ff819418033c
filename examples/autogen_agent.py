"""An AutoGen 0.7 ``AssistantAgent`` with memstrata as its memory.

Facts go in through ``MemstrataMemory.add``; before each model call the agent's memory puts the ones that
fit the last message into the model context. Runs offline: AutoGen's replay client stands in for the model
(use ``OpenAIChatCompletionClient(model="gpt-4o-mini")`` or any model client for a real one).

    pip install 'memstrata[autogen]' autogen-ext
    python examples/autogen_agent.py
"""

from __future__ import annotations

import asyncio
import tempfile

from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.messages import MemoryQueryEvent
from autogen_core.memory import MemoryContent, MemoryMimeType
from autogen_ext.models.replay import ReplayChatCompletionClient

from memstrata import Memory
from memstrata.integrations.autogen import MemstrataMemory


async def ask(memory: MemstrataMemory, question: str) -> None:
    agent = AssistantAgent("planner", model_client=ReplayChatCompletionClient(["(the model's answer)"]),
                           memory=[memory])
    result = await agent.run(task=question)
    recalled = [str(c.content) for m in result.messages if isinstance(m, MemoryQueryEvent) for c in m.content]
    print(f"{memory.name} asked {question!r}; the model was reminded of: {recalled or 'nothing'}")


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, Memory(f"sqlite:///{tmp}/memory.db") as store:
        alice = MemstrataMemory(store, user_id="alice", name="alice's planner")
        for fact in ["Alice is allergic to peanuts.", "Alice's budget for the trip is 1500 euros.",
                     "Alice prefers trains to planes."]:
            await alice.add(MemoryContent(content=fact, mime_type=MemoryMimeType.TEXT))
        await ask(alice, "How should I travel to Madrid, and what can I spend?")
        # Another agent bound to the same user shares the memory; another user's agent does not.
        await ask(MemstrataMemory(store, user_id="alice", name="alice's chef", limit=1), "What snacks are safe?")
        await ask(MemstrataMemory(store, user_id="bob", name="bob's planner"), "What can I spend?")


if __name__ == "__main__":
    asyncio.run(main())
