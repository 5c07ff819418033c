"""AutoGen 0.7: an ``autogen_core.memory.Memory`` over memstrata.

    from autogen_agentchat.agents import AssistantAgent
    from memstrata.integrations.autogen import MemstrataMemory

    memory = MemstrataMemory("sqlite:///memory.db", user_id="alice")
    agent = AssistantAgent("assistant", model_client=client, memory=[memory])

Before each model call the agent asks ``update_context``: the last message is the query, and the memories
found are added to the model context as one system message. ``add`` stores a ``MemoryContent`` (text,
markdown or JSON) in the bound scope; ``clear`` deletes that scope. Install with
``pip install 'memstrata[autogen]'``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from memstrata.errors import ConfigurationError, InvalidInputError
from memstrata.integrations._extras import require, sync_memory
from memstrata.integrations._shared import scope_args

require("autogen_core", extra="autogen", package="autogen-core")

from autogen_core import CancellationToken, Component  # noqa: E402
from autogen_core.memory import (  # noqa: E402
    Memory,
    MemoryContent,
    MemoryMimeType,
    MemoryQueryResult,
    UpdateContextResult,
)
from autogen_core.model_context import ChatCompletionContext  # noqa: E402
from autogen_core.models import SystemMessage  # noqa: E402
from pydantic import BaseModel  # noqa: E402

from memstrata.memory import Memory as StrataMemory  # noqa: E402

_TEXT_TYPES = {MemoryMimeType.TEXT.value, MemoryMimeType.MARKDOWN.value, MemoryMimeType.JSON.value}


class MemstrataMemoryConfig(BaseModel):
    """Serialisable configuration: where the store is and which scope the memory reads and writes."""

    store: str | None = None
    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None
    org_id: str | None = None
    limit: int = 5
    infer: bool = False
    name: str | None = None


def _text_of(content: MemoryContent) -> str:
    mime = content.mime_type.value if isinstance(content.mime_type, MemoryMimeType) else str(content.mime_type)
    if mime not in _TEXT_TYPES:
        raise InvalidInputError("content.mime_type", f"{mime!r} is not stored; use text, markdown or JSON")
    value = content.content
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, str):
        return value
    raise InvalidInputError("content.content", f"must be a string or a dict, got {type(value).__name__}")


class MemstrataMemory(Memory, Component[MemstrataMemoryConfig]):
    """AutoGen memory bound to one memstrata scope.

    ``memory`` is a ``Memory``/``AsyncMemory`` or a store URL (then this object owns and closes it).
    ``infer=False`` (default) keeps each added item as written; ``True`` lets memstrata extract facts from it.
    """

    component_type = "memory"
    component_provider_override = "memstrata.integrations.autogen.MemstrataMemory"
    component_config_schema = MemstrataMemoryConfig

    def __init__(
        self,
        memory: Any = None,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        org_id: str | None = None,
        limit: int = 5,
        infer: bool = False,
        name: str | None = None,
    ) -> None:
        self._scope = scope_args(user_id=user_id, agent_id=agent_id, run_id=run_id, org_id=org_id)
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise InvalidInputError("limit", "must be a positive integer")
        self._store = memory if isinstance(memory, str) or memory is None else None
        self._owned = self._store is not None or memory is None
        self._memory = StrataMemory(memory) if self._owned else sync_memory(memory)
        self._limit = limit
        self._infer = infer
        self._name = name or "memstrata"

    @property
    def name(self) -> str:
        return self._name

    async def add(self, content: MemoryContent, cancellation_token: CancellationToken | None = None) -> None:
        text = _text_of(content)
        metadata = dict(content.metadata or {})
        await asyncio.to_thread(self._memory.add, text, **self._scope, metadata=metadata, infer=self._infer)

    async def query(
        self,
        query: str | MemoryContent,
        cancellation_token: CancellationToken | None = None,
        **kwargs: Any,
    ) -> MemoryQueryResult:
        """Memories for ``query``; ``limit`` and ``filters`` (memstrata's metadata filters) may be passed."""
        text = query if isinstance(query, str) else _text_of(query)
        limit = kwargs.get("limit", self._limit)
        found = await asyncio.to_thread(
            self._memory.search, text, **self._scope, limit=limit, filters=kwargs.get("filters")
        )
        return MemoryQueryResult(
            results=[
                MemoryContent(
                    content=hit["memory"],
                    mime_type=MemoryMimeType.TEXT,
                    metadata={**hit["metadata"], "id": hit["id"], "score": hit["score"],
                              "created_at": hit["created_at"]},
                )
                for hit in found["results"]
            ]
        )

    async def update_context(self, model_context: ChatCompletionContext) -> UpdateContextResult:
        messages = await model_context.get_messages()
        if not messages:
            return UpdateContextResult(memories=MemoryQueryResult(results=[]))
        last = messages[-1].content
        query = last if isinstance(last, str) else " ".join(str(part) for part in last if isinstance(part, str))
        if not query.strip():
            return UpdateContextResult(memories=MemoryQueryResult(results=[]))
        found = await self.query(query)
        if found.results:
            lines = "\n".join(f"{i}. {m.content}" for i, m in enumerate(found.results, 1))
            await model_context.add_message(SystemMessage(content=f"Relevant memories:\n{lines}"))
        return UpdateContextResult(memories=found)

    async def clear(self) -> None:
        """Delete everything in this memory's scope."""
        await asyncio.to_thread(self._memory.delete_all, **self._scope)

    async def close(self) -> None:
        if self._owned:
            await asyncio.to_thread(self._memory.close)
        else:
            await asyncio.to_thread(self._memory.flush_usage)

    def _to_config(self) -> MemstrataMemoryConfig:
        if not self._owned:
            raise ConfigurationError(
                "MemstrataMemory: built from a Memory object, so it has no store URL to save; "
                "build it from a URL (MemstrataMemory('sqlite:///…', user_id=…)) to serialise it"
            )
        return MemstrataMemoryConfig(store=self._store, **self._scope, limit=self._limit, infer=self._infer,
                                     name=self._name)

    @classmethod
    def _from_config(cls, config: MemstrataMemoryConfig) -> MemstrataMemory:
        return cls(config.store, user_id=config.user_id, agent_id=config.agent_id, run_id=config.run_id,
                   org_id=config.org_id, limit=config.limit, infer=config.infer, name=config.name)
