"""User export and erasure, the audit log, and the operational endpoints (health, readiness, metrics).

Export, erasure and the audit log come from memstrata's privacy modules; when the running build lacks
them these routes answer 501 with a problem that says so, instead of pretending.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response

from memstrata.errors import MemstrataError
from memstrata.models import Scope
from memstrata.secure import SecuredMemory
from memstrata.server.auth import Secured
from memstrata.server.errors import PROBLEM_RESPONSES, ProblemError
from memstrata.server.routes_memories import ok
from memstrata.server.schemas import Status

router = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES)
ops = APIRouter(tags=["operations"])


def _require(mem: SecuredMemory, name: str, what: str) -> None:
    if not mem.supports(name):
        raise ProblemError(
            501, f"{what} is not available in this memstrata build (Memory.{name} is missing)",
            slug="not-implemented",
        )


def _plain(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return jsonable_encoder(value)


def _accepted(fn: Callable[..., Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The non-None kwargs that ``fn`` takes: the audit module decides which filters it supports."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return {k: v for k, v in kwargs.items() if v is not None}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return {k: v for k, v in kwargs.items() if v is not None}
    return {k: v for k, v in kwargs.items() if v is not None and k in params}


@router.get("/users/{user_id}/export", tags=["users"], summary="Export everything about a user")
def export_user(user_id: str, mem: Secured, org_id: str | None = None) -> JSONResponse:
    """All tiers' data about a user, as JSON (GDPR access). Needs ``read`` on the user."""
    _require(mem, "export_user", "user export")
    return ok(_plain(mem.export_user(user_id, org_id=org_id)))


@router.post("/users/{user_id}/forget", tags=["users"], summary="Erase a user, with a receipt")
def forget_user(user_id: str, mem: Secured, org_id: str | None = None) -> JSONResponse:
    """Erase every trace of a user and return the deletion receipt (GDPR erasure). Needs ``admin``."""
    _require(mem, "forget_user", "user erasure")
    return ok(_plain(mem.forget_user(user_id, org_id=org_id)))


@router.get("/audit", tags=["audit"], summary="Query the audit log")
def audit_log(
    mem: Secured,
    org_id: str | None = None,
    user_id: str | None = None,
    after: Annotated[int | None, Query(ge=0, description="entries after this sequence number (paging)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="at most this many entries (1-1000)")] = 100,
) -> JSONResponse:
    """Who read or wrote what, when, oldest first. Needs ``admin`` on the org (or on the user when ``user_id`` is
    given)."""
    _require(mem, "audit_log", "the audit log")
    filters = _accepted(mem.memory.audit_log, {"after": after, "limit": limit})
    return ok(_plain(mem.audit_log(org_id=org_id, user_id=user_id, **filters)))


@router.get("/audit/verify", tags=["audit"], summary="Verify the audit log's hash chain")
def verify_audit(mem: Secured, org_id: str | None = None) -> JSONResponse:
    """Recompute the hash chain and report whether (and where) it was tampered with. Needs ``admin``."""
    _require(mem, "verify_audit", "audit verification")
    return ok(_plain(mem.verify_audit(org_id=org_id)))


@ops.get("/health", response_model=Status, summary="Liveness")
async def health() -> JSONResponse:
    """The process is up (no store access)."""
    return ok({"status": "ok"})


@ops.get("/ready", response_model=Status, summary="Readiness", responses={503: PROBLEM_RESPONSES[503]})
def ready(request: Request) -> JSONResponse:
    """The store answers a query: safe to route traffic here."""
    memory = request.app.state.memstrata.memory
    try:
        memory.store.get_memories(Scope.of(user_id="-ready-"), ["-"])
    except MemstrataError as exc:
        raise ProblemError(503, f"store: not ready: {exc}", slug="not-ready") from None
    return ok({"status": "ready"})


@ops.get("/metrics", summary="Prometheus metrics", response_class=Response,
         responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text exposition"}})
async def metrics(request: Request) -> Response:
    """Request latency per route, add and search counts, rate-limit refusals."""
    body, content_type = request.app.state.memstrata.metrics.render()
    return Response(body, media_type=content_type)
