"""LlamaIndex's Memory with a memstrata memory block: `python examples/llamaindex_memory.py`.

Runs offline: the embedded store and the local embedding model, no LLM. Older turns that overflow LlamaIndex's
short-term queue go to memstrata; before each model call the block adds what memstrata recalls.
"""

from __future__ import annotations

import asyncio
import os
import tempfile

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.memory import Memory as LlamaMemory

from memstrata import Memory
from memstrata.integrations.llamaindex import MemstrataMemoryBlock


async def main() -> None:
    folder = os.environ.get("MEMSTRATA_EXAMPLE_DIR") or tempfile.mkdtemp()
    with Memory(f"sqlite:///{folder}/llamaindex-example.db") as memory:
        def chat_memory(user: str, session: str) -> LlamaMemory:
            block = MemstrataMemoryBlock(memory=memory, user_id=user)
            return LlamaMemory.from_defaults(session_id=session, token_limit=60, token_flush_size=30,
                                             chat_history_token_ratio=0.5, memory_blocks=[block])

        alice = chat_memory("alice", "alice-1")
        said = ["I moved to Lisbon last month. My sister Ana lives in Porto.", "Lovely cities.",
                "I am allergic to peanuts, so please keep that in mind.", "Understood, no peanuts.",
                "Let's plan a trip.", "Sure, where to?"]
        await alice.aput_messages([ChatMessage(role="user" if i % 2 == 0 else "assistant", content=text)
                                   for i, text in enumerate(said)])
        for user, session in (("alice", "alice-2"), ("bob", "bob-1")):
            prompt = await chat_memory(user, session).aget(input="Where does my sister live?")
            recalled = "\n".join(m.content or "" for m in prompt if m.role == "system")
            print(f"{user}:", recalled.replace("\n", " ") or "(nothing recalled)")


if __name__ == "__main__":
    asyncio.run(main())
