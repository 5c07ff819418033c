"""memstrata as an MCP server (official ``mcp`` SDK): stdio for local agents, streamable HTTP under ``/mcp``.

Tools: ``add_memory``, ``search_memories``, ``get_context``, ``list_memories``, ``get_memory``,
``update_memory``, ``delete_memory``, ``memory_history``, ``list_conflicts``, ``resolve_conflict``,
``get_working_state``, ``update_working_state``; their
arguments carry REST's names and descriptions. Every tool runs through ``SecuredMemory``: on HTTP the
caller's API key (same headers as the REST API) decides what it may touch, and a ``user_id`` argument outside
the key's binding is refused; on stdio the principal is fixed when the process starts (unrestricted, or the
key in ``MEMSTRATA_API_KEY``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import Field
from starlette.types import Receive, Scope, Send

from memstrata.errors import MemstrataError
from memstrata.privacy.access import Principal, SecuredMemory
from memstrata.server.errors import ProblemError
from memstrata.server.middleware import send_problem

INSTRUCTIONS = (
    "Long-term memory for this conversation's user. Call search_memories or get_context before answering "
    "questions that may depend on what the user said earlier; call add_memory with facts, preferences and "
    "plans worth keeping. user_id may be omitted when the API key is bound to one user."
)
PrincipalFor = Callable[[Context], Principal]

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


def _ids(user_id: str | None, agent_id: str | None, run_id: str | None) -> dict[str, str | None]:
    return {"user_id": user_id, "agent_id": agent_id, "run_id": run_id}


def build_mcp_server(memory: Any, principal_for: PrincipalFor, *, name: str = "memstrata") -> MCPServer:
    """An MCPServer whose tools act on ``memory`` as the principal ``principal_for(ctx)`` returns."""
    from memstrata import __version__

    server = MCPServer(name, version=__version__, instructions=INSTRUCTIONS, log_level="WARNING")

    def secured(ctx: Context) -> SecuredMemory:
        return SecuredMemory(memory, principal_for(ctx))

    def run(call: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        try:
            return call()
        except MemstrataError as exc:
            # ToolError's text reaches the client; anything else is reported as an opaque crash.
            raise ToolError(f"{type(exc).__name__}: {exc}") from exc

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

    return server


def run_stdio(memory: Any, principal: Principal) -> None:
    """Serve MCP on stdin/stdout until the client closes it."""
    build_mcp_server(memory, lambda _ctx: principal).run("stdio")


class HttpMCP:
    """The streamable HTTP face: an ASGI app for ``/mcp`` plus the session manager the host's lifespan runs."""

    def __init__(self, server: MCPServer, *, gate: Callable[[Scope], None], loopback_only: bool,
                 max_body_bytes: int) -> None:
        security = (
            TransportSecuritySettings(
                enable_dns_rebinding_protection=True,
                allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost", "[::1]"],
                allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
            )
            # With auth on, the key in a header is what protects the endpoint, not the Host header.
            if loopback_only
            else TransportSecuritySettings(enable_dns_rebinding_protection=False)
        )
        # Stateless JSON mode: any worker behind a load balancer can answer any request.
        server.streamable_http_app(
            json_response=True, stateless_http=True, transport_security=security, max_request_body_size=max_body_bytes
        )
        self.manager = server.session_manager
        self._inner = StreamableHTTPASGIApp(self.manager)
        self._gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            self._gate(scope)
        except ProblemError as exc:
            await send_problem(scope, send, exc.status_code, str(exc.detail), exc.slug or "error",
                               dict(exc.headers or {}))
            return
        await self._inner(scope, receive, send)


def principal_from_headers(resolve: Callable[[dict[str, str]], Principal]) -> PrincipalFor:
    """A PrincipalFor that authenticates each tool call from its HTTP headers (``resolve`` raises when refused)."""

    def principal_for(ctx: Context) -> Principal:
        headers = ctx.headers
        if headers is None:
            raise ToolError("AccessDeniedError: no HTTP headers to authenticate this call")
        return resolve({k.lower(): v for k, v in headers.items()})

    return principal_for


__all__ = ["HttpMCP", "build_mcp_server", "principal_from_headers", "run_stdio"]

