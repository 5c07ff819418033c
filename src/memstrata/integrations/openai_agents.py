"""OpenAI Agents SDK: a ``Session`` on memstrata's episodic tier, and long-term memory as function tools.

    from agents import Agent, Runner
    from memstrata import Memory
    from memstrata.integrations.openai_agents import MemstrataSession, memory_tools

    memory = Memory()
    agent = Agent(name="assistant", tools=memory_tools(memory, user_id="alice"))
    session = MemstrataSession("chat-42", memory, user_id="alice")
    await Runner.run(agent, "I moved to Lisbon", session=session)

The session's items are episodes of the scope ``(user_id, agent_id, run_id=session_id)``, one conversation,
each keeping the SDK's item verbatim in its metadata. What the user says is also offered to the long-term
scope ``(user_id, agent_id)`` (``learn=True``), where memstrata decides what is worth keeping and the tools
find it again from any later session. Install with ``pip install 'memstrata[openai-agents]'``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from memstrata.errors import InvalidInputError
from memstrata.integrations._extras import require, sync_memory
from memstrata.integrations._shared import check_each, conversation, first_text, scope_args

agents = require("agents", extra="openai-agents", package="openai-agents")

ITEM_KEY = "openai_agents_item"
TEXT_FIELD_KEY = "openai_agents_text_field"
WITHDRAWN_KEY = "openai_agents_withdrawn"
_ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}


def _to_episode(item: Any) -> dict[str, Any]:
    """One SDK item as a message for ``Memory.add``: readable text as content, the item in metadata.

    The item's main text (a message's content or a tool's output) is kept once, as the episode's content."""
    if not isinstance(item, dict):
        raise InvalidInputError("items", f"must be dicts (TResponseInputItem), got {type(item).__name__}")
    kind, role = item.get("type"), item.get("role")
    stored = dict(item)
    field: str | None = None
    if role in _ROLES and kind in (None, "message"):
        out_role, text = _ROLES[role], first_text(item.get("content"))
        field = "content" if isinstance(item.get("content"), str) else None
    elif kind == "function_call":
        out_role, text = "assistant", f"called {item.get('name')}({item.get('arguments', '')})"
    elif kind == "function_call_output":
        output = item.get("output")
        out_role, text = "tool", output if isinstance(output, str) else json.dumps(output)
        field = "output" if isinstance(output, str) else None
    else:
        out_role, text = "assistant", f"[{kind or role or 'item'}] {json.dumps(item)[:2000]}"
    if not text.strip():
        text, field = f"[{kind or role or 'item'}]", None
    if field is not None:
        stored.pop(field)
    meta: dict[str, Any] = {ITEM_KEY: stored}
    if field is not None:
        meta[TEXT_FIELD_KEY] = field
    return {"role": out_role, "content": text, "metadata": meta}


def _from_episode(episode: dict[str, Any]) -> dict[str, Any]:
    meta = episode["metadata"]
    item = dict(meta[ITEM_KEY])
    if TEXT_FIELD_KEY in meta:
        item[meta[TEXT_FIELD_KEY]] = episode["content"]
    return item


class MemstrataSession:
    """An Agents SDK ``Session`` whose items live in memstrata's episodic tier.

    ``pop_item`` appends a withdrawal mark rather than erasing (the episodic tier is an append-only
    record); ``clear_session`` deletes the session's scope outright. Takes a ``Memory`` or ``AsyncMemory``.
    """

    session_settings = None

    def __init__(
        self,
        session_id: str,
        memory: Any,
        *,
        user_id: str,
        agent_id: str | None = None,
        org_id: str | None = None,
        learn: bool = True,
    ) -> None:
        self.session_id = session_id
        self._memory = sync_memory(memory)
        self._scope = scope_args(user_id=user_id, agent_id=agent_id, run_id=session_id, org_id=org_id)
        self._long_term = scope_args(user_id=user_id, agent_id=agent_id, org_id=org_id)
        self._learn = learn
        self._lock = asyncio.Lock()

    def _live(self) -> list[tuple[str, dict[str, Any]]]:
        """(episode id, item) of every item not withdrawn, oldest first."""
        live: list[tuple[str, dict[str, Any]]] = []
        withdrawn: set[str] = set()
        for episode in conversation(self._memory, self._scope, self.session_id):
            meta = episode["metadata"]
            if WITHDRAWN_KEY in meta:
                withdrawn.add(meta[WITHDRAWN_KEY])
            elif ITEM_KEY in meta:
                live.append((episode["id"], _from_episode(episode)))
        return [(eid, item) for eid, item in live if eid not in withdrawn]

    async def get_items(self, limit: int | None = None) -> list[Any]:
        """The latest ``limit`` items (all when None), oldest first."""
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise InvalidInputError("limit", "must be a non-negative integer or None")
        items = [item for _, item in await asyncio.to_thread(self._live)]
        return items if limit is None else items[len(items) - limit :] if limit else []

    async def add_items(self, items: list[Any]) -> None:
        if not items:
            return
        messages = [_to_episode(item) for item in items]
        check_each([({"role": m["role"], "content": m["content"]}, m["metadata"]) for m in messages])
        async with self._lock:  # an add and a pop of one session object keep their order
            await asyncio.to_thread(self._add, messages)

    def _add(self, messages: list[dict[str, Any]]) -> None:
        for message in messages:  # metadata belongs to a whole add, and each episode keeps its own item
            self._memory.add(
                {"role": message["role"], "content": message["content"]},
                **self._scope,
                conversation_id=self.session_id,
                metadata=message["metadata"],
            )
        if self._learn:
            said = [{"role": "user", "content": m["content"]} for m in messages if m["role"] == "user"]
            if said:
                self._memory.add(said, **self._long_term, conversation_id=self.session_id,
                                 metadata={"source": "openai-agents", "session_id": self.session_id})

    async def pop_item(self) -> Any | None:
        async with self._lock:
            return await asyncio.to_thread(self._pop)

    def _pop(self) -> Any | None:
        live = self._live()
        if not live:
            return None
        episode_id, item = live[-1]
        self._memory.add(
            {"role": "system", "content": f"withdrawn: {episode_id}"},
            **self._scope,
            conversation_id=self.session_id,
            metadata={WITHDRAWN_KEY: episode_id},
            infer=False,
        )
        return item

    async def clear_session(self) -> None:
        """Delete the session's transcript (its whole scope). What was learned for the user stays."""
        await asyncio.to_thread(self._memory.delete_all, **self._scope)


def memory_tools(
    memory: Any,
    *,
    user_id: str,
    agent_id: str | None = None,
    org_id: str | None = None,
    token_budget: int = 800,
) -> list[Any]:
    """``recall_memories`` and ``remember`` as Agents SDK function tools on the long-term scope."""
    mem = sync_memory(memory)
    scope = scope_args(user_id=user_id, agent_id=agent_id, org_id=org_id)

    @agents.function_tool
    async def recall_memories(query: str) -> str:
        """Look up what is known about the user from earlier conversations.

        Args:
            query: What to look for, in plain words.
        """
        found = await asyncio.to_thread(mem.context, query, **scope, token_budget=token_budget)
        return found["text"] or "No relevant memories."

    @agents.function_tool
    async def remember(fact: str) -> str:
        """Store a fact about the user for later conversations.

        Args:
            fact: The fact, as one plain sentence.
        """
        result = await asyncio.to_thread(mem.add, fact, **scope, infer=False)
        return "; ".join(f"{r['event']}: {r['memory']}" for r in result["results"]) or "Nothing new to keep."

    return [recall_memories, remember]
