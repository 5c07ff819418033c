"""Every error the server answers is an RFC 9457 problem (``application/problem+json``) that names the field.

memstrata's exception tree is mapped to HTTP status codes here, once. Validation errors from the request
schema, HTTP errors from routing and anything unexpected take the same shape, so a client has one thing
to parse and never sees a traceback.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from memstrata.errors import (
    AccessDeniedError,
    BackendError,
    BackendUnavailableError,
    ConfigurationError,
    InvalidInputError,
    MemstrataError,
    NotFoundError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitedError,
)

PROBLEM_TYPE = "application/problem+json"
log = logging.getLogger("memstrata.server")

# Most specific first: the first class an exception is an instance of decides.
_MAPPING: list[tuple[type[BaseException], int, str]] = [
    (NotFoundError, 404, "not-found"),
    (InvalidInputError, 422, "invalid-input"),
    (AccessDeniedError, 403, "forbidden"),
    (BackendUnavailableError, 503, "backend-unavailable"),
    (BackendError, 500, "backend-error"),
    (ProviderTimeoutError, 504, "provider-timeout"),
    (RateLimitedError, 503, "provider-rate-limited"),
    (ProviderError, 502, "provider-error"),
    (ConfigurationError, 500, "configuration-error"),
    (MemstrataError, 500, "internal-error"),
]
TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
    500: "Internal server error",
    501: "Not implemented",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
}


class ProblemError(StarletteHTTPException):
    """An HTTP error with a problem slug and optional field; raise it anywhere in a request."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        slug: str | None = None,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status_code=status, detail=detail, headers=headers)
        self.slug = slug
        self.field = field


def request_id_of(request: Request) -> str | None:
    return request.scope.get("state", {}).get("request_id")


def problem(
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    field: str | None = None,
    request_id: str | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    """A problem+json response."""
    body: dict[str, Any] = {
        "type": f"urn:memstrata:problem:{slug}" if slug else "about:blank",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if field is not None:
        body["field"] = field
    if request_id is not None:
        body["request_id"] = request_id
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_TYPE)


def status_of(exc: BaseException) -> tuple[int, str]:
    """The HTTP status and problem slug for a memstrata error."""
    for cls, status, slug in _MAPPING:
        if isinstance(exc, cls):
            return status, slug
    return 500, "internal-error"


# Pydantic names the member of a union that failed ("messages.list[MessageIn][0].role"); callers never wrote
# those names, so they are dropped from the field path.
_UNION_TAG = re.compile(r"^(str|int|float|bool|none|bytes|(list|dict|tuple|set|literal|function-\w+)\[.*\]|[A-Z]\w*)$")


def _loc(loc: Any) -> str:
    # ("query", "limit") → "limit"; ("body", "messages", 0, "role") → "messages[0].role"
    if len(loc) > 1 and loc[0] in ("body", "query", "path", "header"):
        loc = loc[1:]
    out = ""
    for p in loc:
        if isinstance(p, int):
            out += f"[{p}]"
        elif not _UNION_TAG.match(str(p)):
            out += f".{p}" if out else str(p)
    return out or "body"


async def memstrata_error(request: Request, exc: Exception) -> JSONResponse:
    status, slug = status_of(exc)
    headers = None
    if isinstance(exc, RateLimitedError) and exc.retry_after:
        headers = {"Retry-After": str(max(1, round(exc.retry_after)))}
    if status >= 500:
        log.warning("request %s failed: %s: %s", request_id_of(request), type(exc).__name__, exc)
    return problem(
        status,
        str(exc),
        slug=slug,
        field=getattr(exc, "field", None),
        request_id=request_id_of(request),
        headers=headers,
    )


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        pos = next((e["loc"][1] for e in errors if len(e.get("loc", ())) > 1), None)
        where = f" (at character {pos})" if isinstance(pos, int) else ""
        return problem(
            400, f"body: is not valid JSON{where}", slug="invalid-json", field="body",
            request_id=request_id_of(request),
        )
    items: list[dict[str, str]] = []
    for e in errors:
        item = {"field": _loc(e.get("loc", ())), "message": str(e.get("msg", "invalid"))}
        if item not in items:
            items.append(item)
    # The deepest path is the union member that matched the input's shape: the most useful thing to name.
    items.sort(key=lambda i: -len(i["field"]))
    detail = "; ".join(f"{i['field']}: {i['message']}" for i in items[:5]) or "invalid request"
    return problem(
        422, detail, slug="invalid-input", field=items[0]["field"] if items else None,
        request_id=request_id_of(request), extra={"errors": items},
    )


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    slug, field = getattr(exc, "slug", None), getattr(exc, "field", None)
    cause = exc.__cause__
    if isinstance(cause, UnicodeDecodeError):
        detail, slug, field = f"body: is not valid UTF-8 (byte {cause.start})", "invalid-utf8", "body"
    elif exc.status_code == 400 and detail == "There was an error parsing the body":
        detail, slug, field = "body: could not be parsed as JSON", "invalid-json", "body"
    elif exc.status_code == 404 and detail == "Not Found":
        detail, slug = f"path: nothing at {request.url.path}", "not-found"
    elif exc.status_code == 405 and detail == "Method Not Allowed":
        detail, slug = f"method: {request.method} is not allowed on {request.url.path}", "method-not-allowed"
    return problem(
        exc.status_code, detail, slug=slug, field=field, request_id=request_id_of(request),
        headers=dict(exc.headers) if exc.headers else None,
    )


async def unicode_error(request: Request, exc: Exception) -> JSONResponse:
    return problem(
        400, "request: contains text that is not valid UTF-8 (lone surrogates)", slug="invalid-utf8",
        request_id=request_id_of(request),
    )


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(MemstrataError, memstrata_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(UnicodeError, unicode_error)


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {
        "description": TITLES[code],
        "content": {PROBLEM_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    for code in (400, 401, 403, 404, 413, 422, 429, 503)
}
