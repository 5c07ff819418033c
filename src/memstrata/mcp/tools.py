"""The MCP tools: ``add_memory``, ``search_memories``, ``get_context``, ``list_memories``, ``get_memory``,
``update_memory``, ``delete_memory``, ``memory_history``, ``list_conflicts``, ``resolve_conflict``,
``get_working_state`` and ``update_working_state``. Their arguments carry REST's names and descriptions; each
runs through the ``SecuredMemory`` of its caller."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, TypedDict

from mcp.server.mcpserver import Context, MCPServer
from pydantic import Field

from memstrata.secure import SecuredMemory

Secured = Callable[[Context], SecuredMemory]
Run = Callable[[Callable[[], dict[str, Any]]], dict[str, Any]]

# The arguments most tools share, described once (a client shows these descriptions to the model).
UserId = Annotated[str | None, Field(description="the user the memories belong to (may be omitted when the API key "
                                                  "is bound to one user)")]
AgentId = Annotated[str | None, Field(description="the agent the memories belong to, alone or with user_id")]
RunId = Annotated[str | None, Field(description="one run or session, alone or with user_id / agent_id")]
ConversationId = Annotated[str | None, Field(description="the conversation, for its recent turns")]
MemoryId = Annotated[str, Field(description="the memory's id, from add_memory, search_memories or list_memories")]
Messages = Annotated[str | list[dict[str, Any]], Field(
    description='what was said: a text, or a list of {"role": "user"|"assistant"|"system"|"tool", "content": '
                '"...", "name"?: "...", "timestamp"?: "ISO 8601"} (the same as the REST API\'s messages)')]


class ScopeIds(TypedDict):
    """A tool's scope ids, typed, so ``**ids`` type-checks against the library's keyword parameters."""

    user_id: str | None
    agent_id: str | None
    run_id: str | None


def _ids(user_id: str | None, agent_id: str | None, run_id: str | None) -> ScopeIds:
    return {"user_id": user_id, "agent_id": agent_id, "run_id": run_id}


def register_tools(server: MCPServer, secured: Secured, run: Run) -> None:
    """Add every tool to ``server``: ``secured(ctx)`` is the caller's view of the Memory, ``run(call)`` turns
    memstrata errors into tool errors."""

    @server.tool()
    def add_memory(
        messages: Messages,
        ctx: Context,
        user_id: UserId = None,
        agent_id: AgentId = None,
        run_id: RunId = None,
        conversation_id: ConversationId = None,
        timestamp: Annotated[str | None, Field(description="when this was said (ISO 8601); default now")] = None,
        metadata: Annotated[dict[str, Any] | None, Field(description="a JSON object kept with the memories")] = None,
        infer: Annotated[bool, Field(description="extract facts (true) or store each message verbatim (false)")]
        = True,
    ) -> dict[str, Any]:
        """Remember what was said. Facts, preferences and plans worth keeping are extracted; every message is
        also kept verbatim as an episode. Returns the memories added, merged or superseded."""
        return run(lambda: secured(ctx).add(
            messages, conversation_id=conversation_id, timestamp=timestamp, metadata=metadata, infer=infer,
            **_ids(user_id, agent_id, run_id),
        ))

    @server.tool()
    def search_memories(
        query: Annotated[str, Field(description="what to look for, in plain words")],
        ctx: Context,
        user_id: UserId = None,
        agent_id: AgentId = None,
        run_id: RunId = None,
        limit: Annotated[int, Field(description="at most this many results (1-1000)")] = 10,
        conversation_id: ConversationId = None,
    ) -> dict[str, Any]:
        """Memories relevant to a query, best first, each with its score, validity and source episodes."""
        return run(lambda: secured(ctx).search(
            query, limit=limit, conversation_id=conversation_id, **_ids(user_id, agent_id, run_id)
        ))

    @server.tool()
    def get_context(
        query: Annotated[str, Field(description="the task or question the context is for")],
        ctx: Context,
        user_id: UserId = None,
        agent_id: AgentId = None,
        run_id: RunId = None,
        token_budget: Annotated[int, Field(description="the most tokens the returned text may take")] = 2000,
        conversation_id: ConversationId = None,
    ) -> dict[str, Any]:
        """A prompt-ready block of recent turns and relevant memories that fits in token_budget tokens."""
        return run(lambda: secured(ctx).context(
            query, token_budget=token_budget, conversation_id=conversation_id, **_ids(user_id, agent_id, run_id)
        ))

    @server.tool()
    def list_memories(
        ctx: Context,
        user_id: UserId = None,
        agent_id: AgentId = None,
        run_id: RunId = None,
        limit: Annotated[int, Field(description="memories per page (1-1000)")] = 50,
        cursor: Annotated[str | None, Field(description="next_cursor from the previous page; omit for the first")]
        = None,
    ) -> dict[str, Any]:
        """Memories of a scope, oldest first, a page at a time (pass next_cursor back as cursor)."""
        return run(lambda: secured(ctx).get_all(limit=limit, cursor=cursor, **_ids(user_id, agent_id, run_id)))

    @server.tool()
    def get_memory(
        memory_id: MemoryId, ctx: Context, user_id: UserId = None, agent_id: AgentId = None, run_id: RunId = None,
    ) -> dict[str, Any]:
        """One memory by id, with its validity, confidence, source and metadata."""
        return run(lambda: secured(ctx).get(memory_id, **_ids(user_id, agent_id, run_id)))

    @server.tool()
    def update_memory(
        memory_id: MemoryId,
        ctx: Context,
        text: Annotated[str | None, Field(description="the new text; omit to keep it")] = None,
        metadata: Annotated[dict[str, Any] | None, Field(description="new metadata (replaces the old)")] = None,
        user_id: UserId = None,
        agent_id: AgentId = None,
        run_id: RunId = None,
    ) -> dict[str, Any]:
        """Change a memory's text and/or metadata; the old text stays in its history."""
        return run(lambda: secured(ctx).update(memory_id, text, metadata, **_ids(user_id, agent_id, run_id)))

    @server.tool()
    def delete_memory(
        memory_id: MemoryId, ctx: Context, user_id: UserId = None, agent_id: AgentId = None, run_id: RunId = None,
    ) -> dict[str, Any]:
        """Delete one memory by id (its history is kept)."""
        return run(lambda: secured(ctx).delete(memory_id, **_ids(user_id, agent_id, run_id)))

    @server.tool()
    def memory_history(
        memory_id: MemoryId, ctx: Context, user_id: UserId = None, agent_id: AgentId = None, run_id: RunId = None,
    ) -> dict[str, Any]:
        """Every change to a memory, oldest first: ADD, UPDATE, MERGE, SUPERSEDE, DELETE."""
        return run(lambda: {"results": secured(ctx).history(memory_id, **_ids(user_id, agent_id, run_id))})

    @server.tool()
    def list_conflicts(
        ctx: Context,
        user_id: UserId = None,
        agent_id: AgentId = None,
        run_id: RunId = None,
        status: Annotated[Literal["open", "resolved", "all"], Field(
            description="open (waiting for a decision), resolved (by a person or the policy) or all")] = "open",
    ) -> dict[str, Any]:
        """Conflicts raised when a new value for a subject's attribute met an old one."""
        return run(lambda: secured(ctx).conflicts(status=status, **_ids(user_id, agent_id, run_id)))

    @server.tool()
    def resolve_conflict(
        conflict_id: Annotated[str, Field(description="the conflict's id, from list_conflicts")],
        ctx: Context,
        keep: Annotated[Literal["new", "old", "both"], Field(
            description="which value holds from now on: the new one, the old one, or both")] = "new",
        user_id: UserId = None,
        agent_id: AgentId = None,
        run_id: RunId = None,
    ) -> dict[str, Any]:
        """Decide a conflict (or overrule the decision the conflict policy took)."""
        return run(lambda: secured(ctx).resolve_conflict(conflict_id, keep=keep, **_ids(user_id, agent_id, run_id)))

    @server.tool()
    def get_working_state(
        conversation_id: Annotated[str, Field(description="the conversation whose state to read")],
        ctx: Context,
        user_id: UserId = None,
        agent_id: AgentId = None,
        run_id: RunId = None,
    ) -> dict[str, Any]:
        """What a conversation is about now: goals and tasks with status (open, done, dropped), entities in
        focus (latest first), topic and the user's constraints."""
        return run(lambda: secured(ctx).working_state(conversation_id, **_ids(user_id, agent_id, run_id)).to_dict())

    @server.tool()
    def update_working_state(
        conversation_id: Annotated[str, Field(description="the conversation whose state to change")],
        op: Annotated[Literal["add_item", "update_item", "set_topic", "add_constraint", "remove_constraint"],
                      Field(description="what to change")],
        ctx: Context,
        user_id: UserId = None,
        agent_id: AgentId = None,
        run_id: RunId = None,
        kind: Annotated[Literal["goal", "task"] | None, Field(description="add_item: a goal or a task")] = None,
        text: Annotated[str | None, Field(description="add_item, add_constraint: the wording; update_item: "
                                                      "new wording")] = None,
        item_id: Annotated[str | None, Field(description="update_item: the item's id, from get_working_state")]
        = None,
        status: Annotated[Literal["open", "done", "dropped"] | None, Field(
            description="update_item: done or dropped closes the item, open reopens it")] = None,
        pinned: Annotated[bool | None, Field(description="add_item, update_item: pinned items change only "
                                                         "through this tool")] = None,
        topic: Annotated[str | None, Field(description="set_topic: the topic; omit to unpin it")] = None,
        constraint_id: Annotated[str | None, Field(description="remove_constraint: the constraint's id")] = None,
    ) -> dict[str, Any]:
        """Set a conversation's working state. op: add_item (kind goal|task, text, pinned: pin a goal),
        update_item (item_id; status open|done|dropped to close a task, text, pinned), set_topic (topic; omit
        to unpin), add_constraint (text) or remove_constraint (constraint_id). Returns the new state."""
        given = {"kind": kind, "text": text, "item_id": item_id, "status": status, "pinned": pinned,
                 "topic": topic, "constraint_id": constraint_id}
        edit: dict[str, Any] = {"op": op, **{k: v for k, v in given.items() if v is not None}}
        if op == "set_topic":
            edit["topic"] = topic
        return run(lambda: secured(ctx).update_working_state(
            conversation_id, edit, **_ids(user_id, agent_id, run_id)
        ).to_dict())

