"""Everything else a scope holds: episodes (raw messages), conflicts, the entity graph, counts; and ``/v1/me``."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from memstrata.privacy.access import Principal
from memstrata.server.auth import Secured
from memstrata.server.errors import PROBLEM_RESPONSES
from memstrata.server.routes_memories import ScopeIds, body_scope, ok
from memstrata.server.schemas import (
    Conflict,
    ConflictList,
    EntityList,
    EpisodeList,
    Neighbourhood,
    PrincipalOut,
    ResolveRequest,
    ScopeList,
)

router = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES)


@router.get("/episodes", response_model=EpisodeList, tags=["episodes"], summary="Raw messages")
def list_episodes(
    mem: Secured,
    ids: ScopeIds,
    query: Annotated[str | None, Query(description="full-text search; omit for a time range")] = None,
    conversation_id: str | None = None,
    start: Annotated[str | None, Query(description="from this time (ISO 8601)")] = None,
    end: Annotated[str | None, Query(description="until this time (ISO 8601)")] = None,
    limit: Annotated[int, Query(description="at most this many (1-1000)")] = 100,
) -> JSONResponse:
    """Messages as they arrived: full-text search with ``query``, else a time range in time order."""
    return ok(
        mem.episodes(query=query, conversation_id=conversation_id, start=start, end=end, limit=limit, **ids)
    )


@router.get("/conflicts", response_model=ConflictList, tags=["conflicts"], summary="List conflicts")
def list_conflicts(
    mem: Secured, ids: ScopeIds, status: Literal["open", "resolved", "all"] = "open"
) -> JSONResponse:
    """Conflicts raised when a new value for a subject's attribute met an old one."""
    return ok(mem.conflicts(status=None if status == "all" else status, **ids))


@router.post(
    "/conflicts/{conflict_id}/resolve", response_model=Conflict, tags=["conflicts"], summary="Resolve a conflict"
)
def resolve_conflict(conflict_id: str, body: ResolveRequest, mem: Secured) -> JSONResponse:
    """Close a conflict: keep the new value (default), the old one, or both."""
    return ok(mem.resolve_conflict(conflict_id, keep=body.keep, **body_scope(body)))


@router.get("/entities", response_model=EntityList, tags=["graph"], summary="List entities")
def list_entities(
    mem: Secured, ids: ScopeIds, limit: Annotated[int, Query(description="at most this many (1-1000)")] = 100
) -> JSONResponse:
    """The scope's entity graph nodes, most mentioned first."""
    return ok(mem.entities(limit=limit, **ids))


@router.get("/entities/neighbourhood", response_model=Neighbourhood, tags=["graph"], summary="An entity's graph")
def entity_neighbourhood(
    mem: Secured,
    ids: ScopeIds,
    entity: Annotated[str, Query(description="entity id, name or alias")],
    depth: Annotated[int, Query(description="hops to follow (1-3)")] = 1,
) -> JSONResponse:
    """An entity, what it is connected to within ``depth`` hops, and the memories about it."""
    return ok(mem.neighbours(entity, depth=depth, **ids))


@router.get("/stats", tags=["memories"], summary="Counts for a scope")
def scope_stats(mem: Secured, ids: ScopeIds) -> JSONResponse:
    """Row counts of one scope (store-wide only for an unrestricted caller)."""
    return ok(mem.stats(**ids))


@router.get("/scopes", response_model=ScopeList, tags=["memories"], summary="List scopes, newest first")
def list_scopes(
    mem: Secured,
    org_id: str | None = None,
    limit: Annotated[int, Query(description="at most this many (1-1000)")] = 100,
) -> JSONResponse:
    """The users, agents and runs that hold data and that the key may read, most recently active first."""
    return ok(mem.scopes(org_id=org_id, limit=limit))


@router.get("/me", response_model=PrincipalOut, tags=["auth"], summary="The calling key")
async def whoami(mem: Secured, request: Request) -> JSONResponse:
    """What the presented key may do: its org, scopes and bound users/agents."""
    principal: Principal = mem.principal
    return ok({**principal.to_dict(), "auth": request.app.state.memstrata.auth.enabled})
