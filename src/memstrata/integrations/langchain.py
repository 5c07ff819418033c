"""LangChain: chat history on the episodic tier, a retriever over search/context, and memory tools.

    >>> from memstrata.integrations.langchain import MemstrataChatMessageHistory, MemstrataRetriever, memory_tools
    >>> history = MemstrataChatMessageHistory(memory, "session-1", user_id="alice")
    >>> retriever = MemstrataRetriever(memory=memory, user_id="alice", k=5)
    >>> tools = memory_tools(memory, user_id="alice")          # search_memory, add_memory

Every object is bound to one memstrata scope when it is made (``user_id``, ``agent_id``, ``run_id``,
``org_id``): a model calling a tool can choose what to search or remember, never whose memory it touches.

**History.** Messages are episodes of the scope under ``conversation_id=session_id``, verbatim and in order.
``add_messages`` is ``Memory.add``: with ``infer=True`` (the default) facts said in the chat become long-term
memories of the scope; ``infer=False`` keeps every message verbatim as a memory as well. ``clear()`` starts the
session afresh: it writes a marker and ``messages`` returns what came after it. The episodic log itself is
append-only; ``Memory.delete_all``, ``forget_user`` or a retention policy remove it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any, Literal

from memstrata.errors import InvalidInputError
from memstrata.integrations._extras import require, sync_memory

_messages = require("langchain_core.messages", "langchain")
_history = require("langchain_core.chat_history", "langchain")
_retrievers = require("langchain_core.retrievers", "langchain")
_documents = require("langchain_core.documents", "langchain")
_tools = require("langchain_core.tools", "langchain")
_pydantic = require("pydantic", "langchain")

BaseChatMessageHistory: Any = _history.BaseChatMessageHistory
BaseRetriever: Any = _retrievers.BaseRetriever
_ROLE = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}
_TYPE = {"user": "human", "assistant": "ai", "system": "system", "tool": "tool"}
_CLEARED = "cleared"
_PAGE = 1000


def _scope_ids(user_id: Any, agent_id: Any, run_id: Any, org_id: Any) -> dict[str, Any]:
    return {"user_id": user_id, "agent_id": agent_id, "run_id": run_id, "org_id": org_id}


def _text(content: Any) -> str:
    """A message's text: a string, or the text parts of a list of content blocks."""
    if isinstance(content, str):
        return content
    parts = [b if isinstance(b, str) else b.get("text", "") for b in content or [] if isinstance(b, str | dict)]
    return "\n".join(p for p in parts if p)


class MemstrataChatMessageHistory(BaseChatMessageHistory):
    """A LangChain chat history kept in memstrata's episodic tier (see the module docstring)."""

    def __init__(
        self,
        memory: Any,
        session_id: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        org_id: str | None = None,
        infer: bool = True,
    ) -> None:
        self.memory = sync_memory(memory)
        self.session_id = session_id
        self.scope = _scope_ids(user_id, agent_id, run_id, org_id)
        self.infer = infer

    @property
    def messages(self) -> list[Any]:  # type: ignore[override]
        episodes: list[dict[str, Any]] = []
        seen: set[str] = set()
        start = None
        while True:  # time-ordered pages; the next page starts at the last timestamp, repeats are skipped
            page = self.memory.episodes(conversation_id=self.session_id, start=start, limit=_PAGE, **self.scope)
            fresh = [e for e in page["results"] if e["id"] not in seen]
            episodes += fresh
            seen.update(e["id"] for e in fresh)
            if len(page["results"]) < _PAGE or not fresh:
                break
            start = page["results"][-1]["occurred_at"]
        cleared = max((i for i, e in enumerate(episodes) if self._info(e).get("type") == _CLEARED), default=-1)
        return [self._message(e) for e in episodes[cleared + 1:]]

    @staticmethod
    def _info(episode: dict[str, Any]) -> dict[str, Any]:
        entries = episode["metadata"].get("langchain") or []
        return entries[episode["position"]] if episode["position"] < len(entries) else {}

    def _message(self, episode: dict[str, Any]) -> Any:
        info = self._info(episode)
        kind = info.get("type") or _TYPE[episode["role"]]
        content = "" if info.get("empty") else episode["content"]
        fields: dict[str, Any] = {"content": content, "id": info.get("id") or episode["id"]}
        if episode.get("name"):
            fields["name"] = episode["name"]
        if kind == "ai":
            return _messages.AIMessage(**fields, tool_calls=info.get("tool_calls") or [])
        if kind == "tool":
            return _messages.ToolMessage(**fields, tool_call_id=info.get("tool_call_id") or "")
        if kind == "system":
            return _messages.SystemMessage(**fields)
        return _messages.HumanMessage(**fields)

    def add_messages(self, messages: Sequence[Any]) -> None:
        """Append messages, in order, as one ``Memory.add`` (with the history's ``infer``)."""
        rows, infos = [], []
        for i, msg in enumerate(messages):
            role = _ROLE.get(getattr(msg, "type", ""))
            if role is None:
                raise InvalidInputError(f"messages[{i}]", f"unsupported message type {getattr(msg, 'type', msg)!r}")
            text = _text(msg.content)
            info: dict[str, Any] = {"type": msg.type, "id": msg.id}
            if getattr(msg, "tool_calls", None):
                info["tool_calls"] = [dict(c) for c in msg.tool_calls]
            if role == "tool":
                info["tool_call_id"] = msg.tool_call_id
            if not text.strip():  # a tool-calling turn has no text; the episode still needs some
                info["empty"] = True
                text = json.dumps(info.get("tool_calls") or [], ensure_ascii=False) or "[]"
            rows.append({"role": role, "content": text, **({"name": msg.name} if msg.name else {})})
            infos.append(info)
        if rows:
            self.memory.add(rows, conversation_id=self.session_id, metadata={"langchain": infos},
                            infer=self.infer, **self.scope)

    def clear(self) -> None:
        """Start the session afresh (earlier messages stay in the append-only episodic log)."""
        # A system turn: extraction reads what users and assistants say, so the marker never becomes a memory.
        self.memory.add([{"role": "system", "content": "conversation cleared"}], conversation_id=self.session_id,
                        metadata={"langchain": [{"type": _CLEARED}]}, **self.scope)

    async def aget_messages(self) -> list[Any]:
        return await asyncio.to_thread(lambda: self.messages)

    async def aadd_messages(self, messages: Sequence[Any]) -> None:
        await asyncio.to_thread(self.add_messages, list(messages))

    async def aclear(self) -> None:
        await asyncio.to_thread(self.clear)


class MemstrataRetriever(BaseRetriever):
    """Memories of one scope as LangChain Documents.

    ``mode="search"`` returns the ``k`` best memories, one Document each (metadata: id, score, timestamps,
    episode ids); ``mode="context"`` returns one Document holding ``Memory.context``'s prompt-ready block,
    trimmed to ``token_budget`` tokens, with its items in the metadata."""

    model_config = _pydantic.ConfigDict(arbitrary_types_allowed=True)

    memory: Any
    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None
    org_id: str | None = None
    k: int = 5
    mode: Literal["search", "context"] = "search"
    filters: dict[str, Any] | None = None
    token_budget: int = 1000
    conversation_id: str | None = None

    def _ids(self) -> dict[str, Any]:
        return _scope_ids(self.user_id, self.agent_id, self.run_id, self.org_id)

    def _get_relevant_documents(self, query: str, *, run_manager: Any = None) -> list[Any]:
        memory = sync_memory(self.memory)
        doc = _documents.Document
        if self.mode == "context":
            ctx = memory.context(query, token_budget=self.token_budget, limit=max(self.k, 1),
                                 conversation_id=self.conversation_id, **self._ids())
            return [doc(page_content=ctx["text"], metadata={"items": ctx["items"], "tokens": ctx["tokens"]})]
        hits = memory.search(query, limit=self.k, filters=self.filters, conversation_id=self.conversation_id,
                             **self._ids())["results"]
        keep = ("id", "score", "created_at", "valid_from", "episode_ids", "metadata", "user_id", "agent_id")
        return [doc(page_content=h["memory"], id=h["id"], metadata={k: h.get(k) for k in keep}) for h in hits]

    async def _aget_relevant_documents(self, query: str, *, run_manager: Any = None) -> list[Any]:
        return await asyncio.to_thread(self._get_relevant_documents, query)


def memory_tools(
    memory: Any,
    *,
    user_id: str | None = None,
    agent_id: str | None = None,
    run_id: str | None = None,
    org_id: str | None = None,
    limit: int = 5,
) -> list[Any]:
    """``search_memory`` and ``add_memory`` tools bound to one scope, for a tool-calling model or agent."""
    mem = sync_memory(memory)
    ids = _scope_ids(user_id, agent_id, run_id, org_id)

    def search_memory(query: str) -> str:
        hits = mem.search(query, limit=limit, **ids)["results"]
        if not hits:
            return "No memories found."
        return "\n".join(f"- {h['memory']} (saved {str(h['created_at'])[:10]})" for h in hits)

    def add_memory(text: str) -> str:
        result = mem.add(text, **ids)
        kept = [f"{r['event']}: {r['memory']}" for r in result["results"]]
        return "Remembered:\n" + "\n".join(kept) if kept else "Saved the message; nothing new to remember in it."

    async def asearch(query: str) -> str:
        return await asyncio.to_thread(search_memory, query)

    async def aadd(text: str) -> str:
        return await asyncio.to_thread(add_memory, text)

    tool = _tools.StructuredTool.from_function
    return [
        tool(search_memory, coroutine=asearch, name="search_memory",
             description="Search the user's long-term memory for facts, preferences and past events."),
        tool(add_memory, coroutine=aadd, name="add_memory",
             description="Remember something the user said (a fact, preference or plan) for later conversations."),
    ]


__all__ = ["MemstrataChatMessageHistory", "MemstrataRetriever", "memory_tools"]
