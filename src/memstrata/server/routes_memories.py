"""``/v1/memories``: add, search, context, get, list (cursor pages), update, delete, delete a scope, history.

POST bodies carry the scope ids; GET, PATCH and DELETE take them as query parameters. Every call goes through
the caller's SecuredMemory, so the library's scope and validation rules apply unchanged.
"""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from memstrata.errors import ScopeError
from memstrata.server.auth import Secured
from memstrata.server.errors import PROBLEM_RESPONSES
from memstrata.server.schemas import (
    AddRequest,
    AddResponse,
    ChangeResponse,
    ContextRequest,
    ContextResponse,
    DeleteAllResponse,
    HistoryItem,
    MemoryItem,
    MemoryPage,
    ScopeBody,
    SearchRequest,
    SearchResponse,
    UpdateRequest,
)
from memstrata.server.schemas_ingestions import IngestionOut

router = APIRouter(prefix="/v1", tags=["memories"], responses=PROBLEM_RESPONSES)
_ID_HELP = {
    "user_id": "user of the scope; defaults to the key's single bound user",
    "agent_id": "agent of the scope",
    "run_id": "run (session) of the scope",
    "org_id": "organisation; defaults to the key's org",
}


class ScopeArgs(TypedDict):
    """The four scope ids, typed, so ``**ids`` type-checks against the library's keyword parameters."""

    user_id: str | None
    agent_id: str | None
    run_id: str | None
    org_id: str | None


async def scope_query(
    user_id: Annotated[str | None, Query(description=_ID_HELP["user_id"])] = None,
    agent_id: Annotated[str | None, Query(description=_ID_HELP["agent_id"])] = None,
    run_id: Annotated[str | None, Query(description=_ID_HELP["run_id"])] = None,
    org_id: Annotated[str | None, Query(description=_ID_HELP["org_id"])] = None,
) -> ScopeArgs:
    """The scope ids of a GET/PATCH/DELETE request."""
    return {"user_id": user_id, "agent_id": agent_id, "run_id": run_id, "org_id": org_id}


ScopeIds = Annotated[ScopeArgs, Depends(scope_query)]


def body_scope(body: ScopeBody) -> ScopeArgs:
    return {"user_id": body.user_id, "agent_id": body.agent_id, "run_id": body.run_id, "org_id": body.org_id}


def ok(data: Any, status: int = 200) -> JSONResponse:
    """The library's JSON-ready dicts go out as they are (no second validation pass on the hot path)."""
    return JSONResponse(data, status_code=status)


def _metrics(request: Request) -> Any:
    return request.app.state.memstrata.metrics


@router.post("/memories", status_code=201, response_model=AddResponse, summary="Remember messages",
             responses={202: {"model": IngestionOut, "description": "queued (wait false): the messages are stored"}})
def add_memories(body: AddRequest, mem: Secured, request: Request) -> JSONResponse:
    """Write the messages to episodic memory, extract what is worth keeping, and store it. With ``"wait":
    false`` the messages are stored and the answer is ``202`` with an ``ingestion_id`` (see /v1/ingestions)."""
    messages: Any = (
        body.messages
        if isinstance(body.messages, str)
        else [m.model_dump(exclude_none=True) for m in body.messages]
    )
    result = mem.add(
        messages,
        conversation_id=body.conversation_id,
        timestamp=body.timestamp,
        metadata=body.metadata,
        infer=body.infer,
        **body_scope(body),
        wait=body.wait,
        idempotency_key=body.idempotency_key,
    )
    metrics = _metrics(request)
    metrics.add_calls.inc()
    if not body.wait:
        return ok(result, 202)
    for item in result.get("results", []):
        metrics.memories_added.labels(str(item.get("event", "ADD"))).inc()
    return ok(result, 201)


@router.post("/memories/search", response_model=SearchResponse, summary="Search memories")
def search_memories(body: SearchRequest, mem: Secured, request: Request) -> JSONResponse:
    """Ranked memories for a query (semantic + keyword + graph + time), currently true unless asked otherwise."""
    result = mem.search(
        body.query,
        limit=body.limit,
        filters=body.filters,
        now=body.now,
        as_of=body.as_of,
        conversation_id=body.conversation_id,
        preset=body.preset,
        explain=body.explain,
        include_superseded=body.include_superseded,
        **body_scope(body),
    )
    _metrics(request).searches.labels("search").inc()
    return ok(result)


@router.post("/memories/context", response_model=ContextResponse, summary="Prompt-ready context")
def memory_context(body: ContextRequest, mem: Secured, request: Request) -> JSONResponse:
    """Recent turns and the best memories for a query, trimmed to a token budget."""
    result = mem.context(
        body.query,
        conversation_id=body.conversation_id,
        token_budget=body.token_budget,
        now=body.now,
        preset=body.preset,
        limit=body.limit,
        recent_turns=body.recent_turns,
        **body_scope(body),
    )
    _metrics(request).searches.labels("context").inc()
    return ok(result)


@router.get("/memories", response_model=MemoryPage, summary="List memories (cursor pages)")
def list_memories(
    mem: Secured,
    ids: ScopeIds,
    limit: Annotated[int, Query(description="page size (1-1000)")] = 100,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    include_superseded: bool = False,
    conversation_id: str | None = None,
) -> JSONResponse:
    """Memories of a scope in creation order, one page at a time."""
    return ok(
        mem.get_all(
            limit=limit, cursor=cursor, include_superseded=include_superseded,
            conversation_id=conversation_id, **ids,
        )
    )


@router.delete("/memories", response_model=DeleteAllResponse, summary="Delete everything of a scope")
def delete_scope(mem: Secured, ids: ScopeIds) -> JSONResponse:
    """Delete every memory, episode, graph row and history event of one scope. The scope must be named."""
    if all(ids[k] is None for k in ("user_id", "agent_id", "run_id")):
        # A key bound to one user would otherwise wipe that user without naming it.
        raise ScopeError("user_id", "name the scope to delete explicitly (user_id, agent_id or run_id)")
    return ok(mem.delete_all(**ids))


@router.get("/memories/{memory_id}", response_model=MemoryItem, summary="Get one memory")
def get_memory(memory_id: str, mem: Secured, ids: ScopeIds) -> JSONResponse:
    """One memory of the scope by id."""
    return ok(mem.get(memory_id, **ids))


@router.patch("/memories/{memory_id}", response_model=ChangeResponse, summary="Update a memory")
def update_memory(memory_id: str, body: UpdateRequest, mem: Secured, ids: ScopeIds) -> JSONResponse:
    """Change a memory's text and/or metadata; the old text stays in its history."""
    return ok(mem.update(memory_id, text=body.text, metadata=body.metadata, **ids))


@router.delete("/memories/{memory_id}", response_model=ChangeResponse, summary="Delete a memory")
def delete_memory(memory_id: str, mem: Secured, ids: ScopeIds) -> JSONResponse:
    """Delete one memory; a DELETE event keeps its last text in history."""
    return ok(mem.delete(memory_id, **ids))


@router.get("/memories/{memory_id}/history", response_model=list[HistoryItem], summary="History of a memory")
def memory_history(memory_id: str, mem: Secured, ids: ScopeIds) -> JSONResponse:
    """Every event of a memory, oldest first (kept after deletion)."""
    return ok(mem.history(memory_id, **ids))
