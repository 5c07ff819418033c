"""Microsoft Agent Framework: a context provider (recall before a run, capture after it) and a history
provider that keeps a session's messages in memstrata's episodic tier.

    from agent_framework import Agent
    from memstrata import Memory
    from memstrata.integrations.agent_framework import MemstrataContextProvider, MemstrataHistoryProvider

    memory = Memory()
    agent = Agent(client, context_providers=[
        MemstrataHistoryProvider(memory, user_id="alice"),
        MemstrataContextProvider(memory, user_id="alice"),
    ])

The context provider reads and writes the long-term scope ``(user_id, agent_id)``: every session of the
user sees what earlier ones taught it. The history provider keeps each session's transcript in its own
scope ``(user_id, agent_id, run_id=session_id)``. Install with ``pip install 'memstrata[agent-framework]'``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from memstrata.errors import InvalidInputError
from memstrata.integrations._extras import require, sync_memory
from memstrata.integrations._shared import ScopeArgs, check_each, conversation, scope_args

af = require("agent_framework", extra="agent-framework", package="agent-framework-core")

MESSAGE_KEY = "agent_framework_message"
_ROLES = ("user", "assistant", "system", "tool")


def _role(message: Any) -> str:
    role = str(getattr(message.role, "value", message.role))
    return role if role in _ROLES else "assistant"


def _said(messages: Sequence[Any]) -> list[dict[str, str]]:
    """The plain text turns of user and assistant, as memstrata messages."""
    out = []
    for message in messages:
        role, text = _role(message), (message.text or "").strip()
        if role in ("user", "assistant") and text:
            out.append({"role": role, "content": text})
    return out


class MemstrataContextProvider(af.ContextProvider):  # type: ignore[misc, name-defined]
    """Recall: before each run, the memories that fit the new input join the instructions (within
    ``token_budget`` tokens). Capture: after the run, the user's and the agent's words are added to memory,
    where memstrata decides what is worth keeping (``capture=False`` turns it off)."""

    DEFAULT_SOURCE_ID = "memstrata"

    def __init__(
        self,
        memory: Any,
        *,
        user_id: str,
        agent_id: str | None = None,
        org_id: str | None = None,
        source_id: str = DEFAULT_SOURCE_ID,
        token_budget: int = 800,
        capture: bool = True,
    ) -> None:
        super().__init__(source_id)
        self._memory = sync_memory(memory)
        self._scope = scope_args(user_id=user_id, agent_id=agent_id, org_id=org_id)
        self._budget = token_budget
        self._capture = capture

    async def before_run(self, *, agent: Any, session: Any, context: Any, state: dict[str, Any]) -> None:
        query = "\n".join(m["content"] for m in _said(context.input_messages) if m["role"] == "user")
        if not query:
            return
        found = await asyncio.to_thread(
            self._memory.context, query[-4000:], **self._scope, token_budget=self._budget
        )
        state["recalled"] = [item["id"] for item in found["items"]]
        if found["text"]:
            context.extend_instructions(
                self.source_id, "What you remember from earlier conversations with this user:\n" + found["text"]
            )

    async def after_run(self, *, agent: Any, session: Any, context: Any, state: dict[str, Any]) -> None:
        if not self._capture:
            return
        turns = list(context.input_messages)
        if context.response is not None:
            turns += list(context.response.messages)
        said = _said(turns)
        if said:
            await asyncio.to_thread(
                self._memory.add, said, **self._scope, conversation_id=context.session_id,
                metadata={"source": "agent-framework"},
            )


class MemstrataHistoryProvider(af.HistoryProvider):  # type: ignore[misc, name-defined]
    """A session's messages, kept verbatim (tool calls included) in memstrata's episodic tier."""

    DEFAULT_SOURCE_ID = "memstrata_history"

    def __init__(
        self,
        memory: Any,
        *,
        user_id: str,
        agent_id: str | None = None,
        org_id: str | None = None,
        source_id: str = DEFAULT_SOURCE_ID,
        **flags: Any,
    ) -> None:
        super().__init__(source_id, **flags)
        self._memory = sync_memory(memory)
        self._owner = scope_args(user_id=user_id, agent_id=agent_id, org_id=org_id)

    def _scope(self, session_id: str | None) -> ScopeArgs:
        if session_id is None:
            raise InvalidInputError("session_id", "history needs a session: pass session=agent.create_session()")
        return scope_args(user_id=self._owner["user_id"], agent_id=self._owner["agent_id"], run_id=session_id,
                          org_id=self._owner["org_id"])

    async def get_messages(
        self, session_id: str | None, *, state: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[Any]:
        scope = self._scope(session_id)
        assert session_id is not None
        episodes = await asyncio.to_thread(lambda: list(conversation(self._memory, scope, session_id)))
        return [af.Message.from_dict(e["metadata"][MESSAGE_KEY]) for e in episodes if MESSAGE_KEY in e["metadata"]]

    async def save_messages(
        self, session_id: str | None, messages: Sequence[Any], *, state: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        scope = self._scope(session_id)
        await asyncio.to_thread(self._save, scope, session_id, list(messages))

    def _save(self, scope: ScopeArgs, session_id: str | None, messages: list[Any]) -> None:
        entries = []
        for message in messages:
            text = (message.text or "").strip() or "[" + ", ".join(c.type for c in message.contents) + "]"
            entries.append(({"role": _role(message), "content": text}, {MESSAGE_KEY: message.to_dict()}))
        check_each(entries)
        for said, metadata in entries:  # metadata belongs to a whole add, and each episode keeps its own message
            self._memory.add(said, **scope, conversation_id=session_id, metadata=metadata)
