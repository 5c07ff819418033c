"""Who is calling: API keys from ``Authorization: Bearer`` or ``X-API-Key``, and a token bucket per key.

The rules about what a key may do are not here: ``SecuredMemory`` (memstrata.secure, applying the rules of
memstrata.privacy.access) enforces them for every face. This module only turns headers into a Principal,
answers 401 and 429, and hands routes a SecuredMemory.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from memstrata.errors import AccessDeniedError
from memstrata.privacy.access import Principal, authenticate
from memstrata.secure import SecuredMemory
from memstrata.server.errors import ProblemError


@dataclass(frozen=True)
class RateLimit:
    """``per_second`` sustained requests per key with bursts of ``burst``; ``per_second <= 0`` turns it off."""

    per_second: float = 50.0
    burst: int = 100

    @property
    def enabled(self) -> bool:
        return self.per_second > 0


class Limiter(Protocol):
    """What the server asks of a rate limiter: its limit, and one token per request."""

    limit: RateLimit

    def take(self, caller: str, now: float | None = None) -> float:
        """0.0 when ``caller`` may go on, else the seconds until a token is available."""
        ...


class TokenBucket:
    """One bucket per caller id, refilled continuously, in this process (``memstrata.server.ratelimit`` shares
    them between processes through Redis). Thread-safe; idle buckets are dropped now and then."""

    def __init__(self, limit: RateLimit, max_callers: int = 100_000) -> None:
        self.limit = limit
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()
        self._max = max_callers

    def take(self, caller: str, now: float | None = None) -> float:
        """Take one token; returns 0.0 when allowed, else the seconds until one is available."""
        rate, burst = self.limit.per_second, float(max(1, self.limit.burst))
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(caller, (burst, now))
            tokens = min(burst, tokens + (now - last) * rate)
            if tokens >= 1.0:
                self._buckets[caller] = (tokens - 1.0, now)
                if len(self._buckets) > self._max:
                    self._evict(now, burst / rate)
                return 0.0
            self._buckets[caller] = (tokens, now)
            return (1.0 - tokens) / rate

    def _evict(self, now: float, full_after: float) -> None:
        # A bucket idle long enough to be full again is the same as no bucket at all.
        for caller, (_, last) in list(self._buckets.items()):
            if now - last >= full_after:
                del self._buckets[caller]


@dataclass
class AuthConfig:
    """How the server authenticates; built by create_app."""

    enabled: bool
    key_source: Any
    pepper: bytes | str | None = None
    limiter: Limiter | None = None
    local: Principal = field(default_factory=lambda: Principal.local("no-auth"))


def key_from_headers(headers: Mapping[str, str]) -> str | None:
    """The API key a request presents, from ``Authorization: Bearer`` or ``X-API-Key``."""
    auth = headers.get("authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    key = headers.get("x-api-key")
    return key.strip() if key and key.strip() else None


def unauthorized(detail: str) -> ProblemError:
    return ProblemError(401, detail, slug="unauthorized", headers={"WWW-Authenticate": 'Bearer realm="memstrata"'})


def resolve_principal(
    config: AuthConfig, headers: Mapping[str, str], client: str, *, limit: bool = True
) -> Principal:
    """Authenticate and (with ``limit``) rate-limit one request; raises ProblemError 401 or 429."""
    if not config.enabled:
        principal, caller = config.local, f"ip:{client}"
    else:
        key = key_from_headers(headers)
        if key is None:
            raise unauthorized("an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
        try:
            principal = authenticate(config.key_source, key, pepper=config.pepper)
        except AccessDeniedError as exc:
            raise unauthorized(str(exc)) from None
        caller = f"key:{principal.key_id}"
    if limit and config.limiter is not None:
        wait = config.limiter.take(caller)
        if wait > 0:
            raise ProblemError(
                429,
                f"rate limit of {config.limiter.limit.per_second:g} requests/s exceeded; retry in {wait:.2f} s",
                slug="rate-limited",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
    return principal


_bearer = HTTPBearer(auto_error=False, description="API key as a bearer token: `Authorization: Bearer ms_...`")
_header_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key in the X-API-Key header")


def get_principal(
    request: Request,
    _bearer_cred: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None,
    _header_cred: Annotated[str | None, Depends(_header_key)] = None,
) -> Principal:
    """FastAPI dependency: the calling principal (401/429 as problems)."""
    state = request.app.state.memstrata
    try:
        principal = resolve_principal(state.auth, request.headers, request.client.host if request.client else "-")
    except ProblemError as exc:
        if exc.status_code == 429:
            state.metrics.rate_limited.inc()
        raise
    request.scope.setdefault("state", {})["principal"] = principal
    return principal


async def get_secured(request: Request, principal: Annotated[Principal, Depends(get_principal)]) -> SecuredMemory:
    """FastAPI dependency: the server's Memory seen through the caller's key."""
    return SecuredMemory(request.app.state.memstrata.memory, principal)


Secured = Annotated[SecuredMemory, Depends(get_secured)]
