"""The REST server: ``create_app(memory)`` builds a FastAPI app over a Memory, versioned under ``/v1``.

Layers, outermost first: request id → metrics → CORS → last-resort 500 → body size limit → FastAPI (problem
handlers, auth + rate limit as a dependency, routes). The MCP streamable HTTP endpoint is mounted at ``/mcp``
behind the same key check, and the browser UI at ``/ui``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from fastapi.middleware import Middleware
from fastapi.openapi.utils import get_openapi
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route
from starlette.types import Scope

from memstrata.server import errors
from memstrata.server.auth import AuthConfig, RateLimit, resolve_principal
from memstrata.server.metrics import Metrics, MetricsMiddleware
from memstrata.server.middleware import (
    BodyLimitMiddleware,
    CatchAllMiddleware,
    HostCheckMiddleware,
    RequestIdMiddleware,
)
from memstrata.server.ratelimit import build_limiter
from memstrata.server.schemas import Problem
from memstrata.settings import DEFAULT_MAX_BODY_BYTES, Settings

DEFAULT_RATE_LIMIT = RateLimit()
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")
API_DESCRIPTION = """Long-term memory for AI agents.

Authenticate with `Authorization: Bearer <key>` or `X-API-Key: <key>` (keys come from `memstrata keys create`).
A key carries scopes (`read`, `write`, `admin`), belongs to one org and may be bound to users or agents: when
it is bound to exactly one user, `user_id` may be omitted. Errors are `application/problem+json` documents
whose `detail` names the offending field.
"""


@dataclass
class ServerState:
    """What routes reach through ``request.app.state.memstrata``."""

    memory: Any
    auth: AuthConfig
    metrics: Metrics


def create_app(
    memory: Any,
    *,
    auth: bool = True,
    cors_origins: Sequence[str] = (),
    rate_limit: RateLimit | None = DEFAULT_RATE_LIMIT,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    key_pepper: bytes | str | None = None,
    allowed_hosts: Sequence[str] | None = None,
    mcp: bool = True,
    ui: bool = True,
    close_memory: bool = False,
    max_threads: int | None = None,
) -> FastAPI:
    """A FastAPI app serving ``memory``.

    ``auth=False`` accepts every request as an unrestricted caller (bind it to loopback only);
    ``rate_limit=None`` (or ``per_second <= 0``) turns rate limiting off, and when ``memory`` keeps its
    short-term tier in Redis the buckets live there, one budget per key shared by every server on that Redis
    (memstrata.server.ratelimit); ``allowed_hosts`` restricts the
    Host header (DNS-rebinding protection for a keyless local server); ``close_memory`` closes the Memory
    when the app shuts down; ``max_threads`` caps the worker threads that run the (blocking) Memory calls.
    """
    from memstrata import __version__

    if max_body_bytes < 1:
        raise ValueError("max_body_bytes must be positive")
    metrics = Metrics()
    metrics.watch_store(getattr(memory, "store", None))
    metrics.watch_cache(getattr(memory, "cache_layers", None))
    limiter = build_limiter(rate_limit, getattr(memory, "short_term", None))
    auth_config = AuthConfig(enabled=auth, key_source=memory, pepper=key_pepper, limiter=limiter)
    http_mcp = _build_mcp(memory, auth_config, max_body_bytes, allowed_hosts) if mcp else None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if max_threads is not None:
            # Searches are CPU-bound: threads beyond a few per core only trade the GIL back and forth and starve
            # the event loop (late keep-alive handling, dropped connections); waiting requests queue in order.
            anyio.to_thread.current_default_thread_limiter().total_tokens = max_threads
        try:
            if http_mcp is not None:
                async with http_mcp.manager.run():
                    yield
            else:
                yield
        finally:
            if close_memory:
                memory.close()

    stack = [Middleware(RequestIdMiddleware), Middleware(MetricsMiddleware, metrics=metrics)]
    if allowed_hosts:
        stack.append(Middleware(HostCheckMiddleware, allowed_hosts=list(allowed_hosts)))
    if cors_origins:
        stack.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(cors_origins),
                allow_methods=["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
                allow_headers=["Authorization", "X-API-Key", "Content-Type", "X-Request-ID", "Mcp-Session-Id",
                               "Mcp-Protocol-Version"],
                expose_headers=["X-Request-ID", "Retry-After", "Mcp-Session-Id"],
                max_age=600,
            )
        )
    stack += [Middleware(CatchAllMiddleware), Middleware(BodyLimitMiddleware, max_bytes=max_body_bytes)]

    app = FastAPI(
        title="memstrata",
        version=__version__,
        description=API_DESCRIPTION,
        middleware=stack,
        lifespan=lifespan,
        openapi_tags=[
            {"name": "memories", "description": "Long-term memories of a scope"},
            {"name": "episodes", "description": "Raw messages, verbatim"},
            {"name": "conflicts", "description": "When a new value met an old one"},
            {"name": "working", "description": "What a conversation is about now: goals, tasks, topic, constraints"},
            {"name": "graph", "description": "Entities and their relations"},
            {"name": "users", "description": "GDPR export and erasure"},
            {"name": "audit", "description": "The hash-chained audit log"},
            {"name": "auth", "description": "The calling key"},
            {"name": "operations", "description": "Health, readiness, metrics"},
        ],
    )
    app.state.memstrata = ServerState(memory=memory, auth=auth_config, metrics=metrics)
    errors.install(app)

    from memstrata.server.routes_admin import ops
    from memstrata.server.routes_admin import router as admin_router
    from memstrata.server.routes_ingestions import router as ingestions_router
    from memstrata.server.routes_memories import router as memories_router
    from memstrata.server.routes_scopes import router as scopes_router
    from memstrata.server.routes_working import router as working_router

    for router in (memories_router, scopes_router, working_router, ingestions_router, admin_router, ops):
        app.include_router(router)
    if ui:
        from memstrata.ui import router as ui_router

        app.include_router(ui_router)
    if http_mcp is not None:
        app.router.routes.append(Route("/mcp", endpoint=http_mcp, methods=["GET", "POST", "DELETE"]))

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes,
                tags=app.openapi_tags,
            )
            schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = Problem.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _build_mcp(memory: Any, auth_config: AuthConfig, max_body_bytes: int, allowed_hosts: Sequence[str] | None) -> Any:
    from memstrata.mcp import HttpMCP, build_mcp_server, principal_from_headers

    def client_of(scope: Scope) -> str:
        client = scope.get("client")
        return client[0] if client else "-"

    def gate(scope: Scope) -> None:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", ())}
        resolve_principal(auth_config, headers, client_of(scope))

    def resolve(headers: dict[str, str]) -> Any:
        # The gate already rate-limited this HTTP request; a tool call only needs to know who it is.
        return resolve_principal(auth_config, headers, "-", limit=False)

    server = build_mcp_server(memory, principal_from_headers(resolve))
    hosts = list(allowed_hosts or ())
    loopback = not auth_config.enabled and bool(hosts) and all(h in LOOPBACK_HOSTS for h in hosts)
    return HttpMCP(server, gate=gate, loopback_only=loopback, max_body_bytes=max_body_bytes)


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of the REST API (what ``docs/openapi.json`` holds)."""
    from memstrata.memory import Memory

    with Memory("sqlite:///:memory:", embedder="hash") as memory:
        return create_app(memory, mcp=False).openapi()


def app_from_env() -> FastAPI:
    """The factory ``memstrata serve`` runs in each worker: an app configured by the ``MEMSTRATA_*`` variables
    (docs/configuration.md), which ``serve`` sets in the environment of the process it starts."""
    from memstrata.settings import Settings

    return app_from_settings(Settings.from_env())


def app_from_settings(settings: Settings) -> FastAPI:
    """An app over the Memory ``settings`` describe (encrypted when a master key is set, audited unless turned
    off), configured by the server's own settings; it closes the Memory when it shuts down."""
    # One ONNX thread per request: under concurrent load the requests themselves fill the cores.
    memory = settings.open_memory(actor="server", audit=settings.audit, embedder_threads=settings.embed_threads)
    warm = getattr(memory.embedder, "warm_up", None)
    if callable(warm):
        warm()  # the first request should not pay for loading the model
    return create_app(
        memory,
        auth=settings.auth,
        cors_origins=settings.cors,
        rate_limit=RateLimit(settings.rate_limit, settings.rate_burst),
        max_body_bytes=settings.max_body_bytes,
        key_pepper=settings.key_pepper,
        allowed_hosts=settings.allowed_hosts or None,
        close_memory=True,
        max_threads=settings.threads or 4 * (os.cpu_count() or 2),
    )
