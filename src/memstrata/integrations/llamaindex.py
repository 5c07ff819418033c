"""LlamaIndex: a ``BaseMemoryBlock`` for ``llama_index.core.memory.Memory`` backed by memstrata.

    >>> from llama_index.core.memory import Memory as LlamaMemory
    >>> from memstrata.integrations.llamaindex import MemstrataMemoryBlock
    >>> block = MemstrataMemoryBlock(memory=memstrata_memory, user_id="alice")
    >>> chat_memory = LlamaMemory.from_defaults(session_id="s1", memory_blocks=[block])

LlamaIndex keeps the recent chat in its own short-term queue; when the queue overflows it hands the oldest
messages to each block (``aput``), and before each model call it asks every block for content (``aget``).
This block turns the first into ``Memory.add`` (episodes of the scope under ``conversation_id=session_id``,
with memstrata's extraction into long-term memory) and the second into ``Memory.context`` (or ``search``)
for the latest messages, within ``token_budget`` tokens. The block is bound to one scope when it is made.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from memstrata.integrations._extras import require, sync_memory

_memory = require("llama_index.core.memory.memory", "llamaindex")
_pydantic = require("llama_index.core.bridge.pydantic", "llamaindex")

BaseMemoryBlock: Any = _memory.BaseMemoryBlock
Field: Any = _pydantic.Field
_ROLES = {"user": "user", "assistant": "assistant", "system": "system", "tool": "tool", "function": "tool"}


def _role(message: Any) -> str:
    return _ROLES.get(str(getattr(message.role, "value", message.role)), "user")


class MemstrataMemoryBlock(BaseMemoryBlock):
    """Long-term memory from memstrata as a LlamaIndex memory block (see the module docstring)."""

    name: str = Field(default="memstrata", description="The block's name in the memory template.")
    description: str | None = Field(default="Long-term memories about the user, most relevant first.")
    memory: Any = Field(description="a memstrata Memory or AsyncMemory")
    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None
    org_id: str | None = None
    mode: Literal["context", "search"] = "context"
    token_budget: int = 500
    k: int = 8
    query_messages: int = Field(default=3, description="how many of the latest messages make the query")
    infer: bool = True

    def _ids(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "agent_id": self.agent_id, "run_id": self.run_id, "org_id": self.org_id}

    def _recall(self, query: str) -> str:
        mem = sync_memory(self.memory)
        if self.mode == "search":
            hits = mem.search(query, limit=self.k, **self._ids())["results"]
            return "\n".join(f"- {h['memory']}" for h in hits)
        ctx = mem.context(query, token_budget=self.token_budget, limit=self.k, **self._ids())
        return "\n".join(f"- {item['memory']}" for item in ctx["items"])

    async def _aget(self, messages: list[Any] | None = None, session_id: str | None = None,
                    **block_kwargs: Any) -> str:
        texts = [m.content for m in (messages or [])[-self.query_messages:] if isinstance(m.content, str)]
        query = "\n".join(t for t in texts if t and t.strip())
        if not query:
            return ""
        return await asyncio.to_thread(self._recall, query[-4000:])

    async def _aput(self, messages: list[Any]) -> None:
        rows = [{"role": _role(m), "content": m.content} for m in messages if isinstance(m.content, str)
                and m.content.strip()]
        if not rows:
            return
        session = next((m.additional_kwargs.get("session_id") for m in messages
                        if m.additional_kwargs.get("session_id")), None)
        await asyncio.to_thread(sync_memory(self.memory).add, rows, conversation_id=session, infer=self.infer,
                                **self._ids())

    async def atruncate(self, content: str, tokens_to_truncate: int) -> str | None:
        """Drop the least relevant lines (the last ones) until about ``tokens_to_truncate`` tokens are gone."""
        lines = content.splitlines()
        count = sync_memory(self.memory).embedder.count_tokens
        while lines and tokens_to_truncate > 0:
            tokens_to_truncate -= count(lines.pop())
        return "\n".join(lines) or None


__all__ = ["MemstrataMemoryBlock"]
