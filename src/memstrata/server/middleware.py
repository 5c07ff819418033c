"""Plain ASGI middleware: request ids, body size limit, and a last-resort 500 that still speaks problem+json.

Written against raw ASGI rather than ``BaseHTTPMiddleware`` because that one buffers and re-dispatches each
request through an extra task, which costs latency on every call.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from memstrata.server.errors import PROBLEM_TYPE, TITLES, ProblemError

log = logging.getLogger("memstrata.server")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


class RequestIdMiddleware:
    """Gives every request an id (the caller's ``X-Request-ID`` when it is sane) and echoes it on the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _header(scope, b"x-request-id")
        rid = given if given and _SAFE_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                headers.append((b"x-request-id", rid.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_id)


class BodyTooLarge(ProblemError):
    """Raised from ``receive`` once a body passes the limit; an HTTPException so FastAPI lets it through."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"body: is larger than the limit of {limit:,} bytes", slug="body-too-large",
                         field="body")


_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


class BodyLimitMiddleware:
    """413 for bodies over ``max_bytes``: at once from Content-Length, else while the body streams in."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            status = 413 if declared.isdigit() else 400
            detail = (
                f"body: is larger than the limit of {self.max_bytes:,} bytes"
                if status == 413
                else "Content-Length: is not a number"
            )
            await send_problem(scope, send, status, detail, "body-too-large" if status == 413 else "bad-request")
            return
        seen = 0
        json_body = "json" in (_header(scope, b"content-type") or "").lower()

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                if json_body and (b"\x00" in chunk or (seen == 0 and chunk[:2] in _UTF16_BOMS)):
                    # json.loads would decode UTF-16/32 by itself; the API speaks UTF-8 only.
                    raise ProblemError(400, "body: is not UTF-8 (it looks like UTF-16 or UTF-32); send UTF-8 JSON",
                                       slug="invalid-utf8", field="body")
                seen += len(chunk)
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, limited, send)


class HostCheckMiddleware:
    """400 unless the Host header names an allowed host: a keyless local server must not answer a page that
    rebinds its own domain name to 127.0.0.1 (DNS rebinding)."""

    def __init__(self, app: ASGIApp, allowed_hosts: list[str]) -> None:
        self.app = app
        self.allowed = {h.strip("[]").lower() for h in allowed_hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = (_header(scope, b"host") or "").lower()
        name = host[1:].split("]", 1)[0] if host.startswith("[") else host.rsplit(":", 1)[0] if ":" in host else host
        if name not in self.allowed:
            await send_problem(scope, send, 400, f"Host: {host or '(none)'} is not served here", "bad-host")
            return
        await self.app(scope, receive, send)


class CatchAllMiddleware:
    """Turns an unexpected exception into a 500 problem, inside the request-id middleware so it gets an id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            rid = scope.get("state", {}).get("request_id")
            log.exception("request %s failed", rid)
            if started:
                raise
            await send_problem(scope, send, 500, "the server failed to handle this request; see its log",
                               "internal-error")


async def send_problem(scope: Scope, send: Send, status: int, detail: str, slug: str,
                       headers: dict[str, str] | None = None) -> None:
    """Write a problem+json response straight to ASGI (for middleware that runs outside FastAPI)."""
    body: dict[str, Any] = {
        "type": f"urn:memstrata:problem:{slug}",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    rid = scope.get("state", {}).get("request_id")
    if rid:
        body["request_id"] = rid
    raw = json.dumps(body).encode()
    hdrs = [(b"content-type", PROBLEM_TYPE.encode()), (b"content-length", str(len(raw)).encode())]
    hdrs += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": raw})
