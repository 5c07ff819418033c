"""``/v1/ingestions``: the status of queued adds (``POST /v1/memories`` with ``"wait": false`` answers
``202 Accepted`` with an ``ingestion_id``), the dead letters, and their requeue. ``memstrata worker``
processes the queue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from memstrata.server.auth import Secured
from memstrata.server.errors import PROBLEM_RESPONSES
from memstrata.server.routes_memories import ScopeIds, body_scope, ok
from memstrata.server.schemas_ingestions import IngestionList, IngestionOut, IngestionStatus, RequeueRequest

router = APIRouter(prefix="/v1/ingestions", tags=["ingestions"], responses=PROBLEM_RESPONSES)


@router.get("", response_model=IngestionList, summary="Queued adds of a scope")
def list_ingestions(
    mem: Secured, ids: ScopeIds,
    status: Annotated[IngestionStatus | None, Query(description="only these; 'dead' lists the dead letters")] = None,
    limit: int = 100,
) -> JSONResponse:
    """Newest first."""
    return ok(mem.ingestions(status=status, limit=limit, **ids))


@router.get("/{ingestion_id}", response_model=IngestionOut, summary="A queued add's status")
def get_ingestion(ingestion_id: str, mem: Secured, ids: ScopeIds) -> JSONResponse:
    """pending, running, failed (to be retried), done (with each message's outcome) or dead."""
    return ok(mem.ingestion(ingestion_id, **ids))


@router.post("/{ingestion_id}/requeue", response_model=IngestionOut, summary="Requeue a dead letter")
def requeue_ingestion(ingestion_id: str, body: RequeueRequest, mem: Secured) -> JSONResponse:
    """Back in the queue with its attempts reset."""
    return ok(mem.requeue(ingestion_id, **body_scope(body)))
