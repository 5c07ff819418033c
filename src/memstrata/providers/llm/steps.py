"""The vocabulary between the I/O-free exchange and its drivers, and the reply-reading helpers it uses.

The exchange (:meth:`LLMClient._exchange <memstrata.providers.llm.client.LLMClient._exchange>`) yields a
:class:`Request` or a :class:`Sleep`; a driver performs it and sends back a :class:`Reply` or a
:class:`Failure`. A wire format turns a decoded reply body into :class:`Parsed`.
"""

from __future__ import annotations

import email.utils
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from memstrata.errors import ProviderResponseError


@dataclass(frozen=True)
class Request:
    """Send ``body`` as JSON to ``path`` under the client's base URL."""

    path: str
    body: dict[str, Any]
    headers: dict[str, str] = field(repr=False)  # carries the API key


@dataclass(frozen=True)
class Reply:
    """An HTTP answer, whatever its status."""

    status: int
    headers: Mapping[str, str]
    text: str


@dataclass(frozen=True)
class Failure:
    """No HTTP answer: a timeout, or the server could not be reached."""

    timeout: bool
    detail: str


@dataclass(frozen=True)
class Sleep:
    """Wait before the next attempt."""

    seconds: float


@dataclass(frozen=True)
class Parsed:
    """What a wire format read from a 200 body: the answer and the tokens it cost."""

    payload: Any  # a dict (tool input) or a str (text that should hold JSON)
    prompt_tokens: int
    completion_tokens: int


Step = Request | Sleep
Outcome = Reply | Failure


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def mask_url(url: str) -> str:
    """The URL with any user and password replaced by ``***``, for messages and reprs."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return url


def status_error(message: str, status: int) -> ProviderResponseError:
    """A ProviderResponseError tagged with the HTTP status, so callers can tell permanent from transient."""
    exc = ProviderResponseError(message)
    exc.status = status  # type: ignore[attr-defined]
    return exc


def snippet(text: str, limit: int = 200) -> str:
    """The start of a reply body on one line, for error messages."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def token_count(usage: Any, key: str) -> int:
    """A token count from a reply's usage object; 0 when absent or not a number."""
    if not isinstance(usage, dict):
        return 0
    value = usage.get(key)
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0
