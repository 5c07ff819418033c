"""memstrata as an MCP server (official ``mcp`` SDK): stdio for local agents, streamable HTTP under ``/mcp``.

The tools are in ``memstrata.mcp.tools``; their arguments carry REST's names and descriptions. Every tool runs
through ``SecuredMemory``: on HTTP the caller's API key (same headers as the REST API) decides what it may
touch, and a ``user_id`` argument outside the key's binding is refused; on stdio the principal is fixed when
the process starts (unrestricted, or the key in ``MEMSTRATA_API_KEY``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import Receive, Scope, Send

from memstrata.errors import MemstrataError
from memstrata.mcp.tools import register_tools
from memstrata.privacy.access import Principal
from memstrata.secure import SecuredMemory
from memstrata.server.errors import ProblemError
from memstrata.server.middleware import send_problem

INSTRUCTIONS = (
    "Long-term memory for this conversation's user. Call search_memories or get_context before answering "
    "questions that may depend on what the user said earlier; call add_memory with facts, preferences and "
    "plans worth keeping. user_id may be omitted when the API key is bound to one user."
)
PrincipalFor = Callable[[Context], Principal]


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

    register_tools(server, secured, run)
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

