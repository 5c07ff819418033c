"""Validation of what callers pass to ``add``: messages, timestamps and metadata. Errors name the field."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime
from typing import Any

from memstrata.errors import InvalidInputError
from memstrata.ingest.candidate import Message

ROLES = ("user", "assistant", "system", "tool")
MAX_MESSAGE_CHARS = 100_000
MAX_MESSAGES = 1_000
MAX_METADATA_BYTES = 64 * 1024
MAX_METADATA_DEPTH = 32


def _check_text(field: str, value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInputError(field, f"is not valid UTF-8 (byte {exc.start})") from None
    if not isinstance(value, str):
        raise InvalidInputError(field, f"must be a string, got {type(value).__name__}")
    check_utf8(field, value)
    if "\x00" in value:
        raise InvalidInputError(field, "contains a NUL character")
    if not value.strip():
        raise InvalidInputError(field, "must not be empty")
    if len(value) > MAX_MESSAGE_CHARS:
        raise InvalidInputError(field, f"is {len(value):,} characters long; the limit is {MAX_MESSAGE_CHARS:,}")
    return value


def normalize_messages(messages: Any, timestamp: datetime | None = None) -> list[Message]:
    """Accept a string, one message dict, or a list of them; return validated Messages."""
    if isinstance(messages, str | bytes | bytearray):
        messages = [{"role": "user", "content": messages}]
    elif isinstance(messages, dict):
        messages = [messages]
    if not isinstance(messages, list | tuple):
        raise InvalidInputError("messages", f"must be a string, a message dict or a list of them, "
                                            f"got {type(messages).__name__}")
    if not messages:
        raise InvalidInputError("messages", "must not be empty")
    if len(messages) > MAX_MESSAGES:
        raise InvalidInputError("messages", f"holds {len(messages)} messages; the limit per call is {MAX_MESSAGES}")
    out = []
    for i, m in enumerate(messages):
        field = f"messages[{i}]"
        if not isinstance(m, dict):
            raise InvalidInputError(field, f"must be a dict with 'role' and 'content', got {type(m).__name__}")
        role = m.get("role", "user")
        if role not in ROLES:
            raise InvalidInputError(f"{field}.role", f"must be one of {', '.join(ROLES)}, got {role!r}")
        if "content" not in m:
            raise InvalidInputError(f"{field}.content", "is missing")
        content = _check_text(f"{field}.content", m["content"])
        name = m.get("name")
        if name is not None and not isinstance(name, str):
            raise InvalidInputError(f"{field}.name", "must be a string")
        if name is not None:
            check_utf8(f"{field}.name", name)
        when = parse_time(f"{field}.timestamp", m["timestamp"]) if m.get("timestamp") is not None else timestamp
        out.append(Message(role=role, content=content, index=i, name=name, timestamp=when))
    return out


def parse_time(field: str, value: Any) -> datetime:
    """datetime / date / ISO-8601 string / epoch seconds → aware UTC datetime."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, bool):
        raise InvalidInputError(field, "must be a datetime, an ISO-8601 string or epoch seconds, got bool")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise InvalidInputError(field, "must be a finite number of seconds")
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            raise InvalidInputError(field, f"{value} seconds since 1970 is outside the supported years") from None
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            try:
                from memstrata.retrieve.temporal import parse_timestamp

                parsed = parse_timestamp(text)
            except (ImportError, ValueError):
                example = "2026-03-02T10:00:00Z"
                raise InvalidInputError(field, f"{value!r} is not an ISO-8601 time such as {example}") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    kind = type(value).__name__
    raise InvalidInputError(field, f"must be a datetime, an ISO-8601 string or epoch seconds, got {kind}")


def _check_json_tree(metadata: dict[str, Any]) -> None:
    """Walk the metadata without recursion: bounded depth, and no string (key or value) that UTF-8 cannot hold.

    A lone surrogate is valid JSON (``"\\ud800"``) but no store can return it as UTF-8, so it would break every
    later read of the record."""
    stack: list[tuple[Any, int]] = [(metadata, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list | tuple):
            if depth > MAX_METADATA_DEPTH:
                raise InvalidInputError("metadata", f"is nested too deep; the limit is {MAX_METADATA_DEPTH} levels")
            items = value.items() if isinstance(value, dict) else ((None, v) for v in value)
            for key, item in items:
                if isinstance(key, str):
                    check_utf8("metadata", key)
                stack.append((item, depth + 1))
        elif isinstance(value, str):
            check_utf8("metadata", value)


def check_utf8(field: str, value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(
            field, f"contains a lone surrogate ({value[exc.start]!a}), which is not valid UTF-8"
        ) from None


def check_metadata(metadata: Any) -> dict[str, Any]:
    """Metadata is a JSON object of bounded size. It is data about a memory, never about its scope."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise InvalidInputError("metadata", f"must be a dict, got {type(metadata).__name__}")
    for key in metadata:
        if not isinstance(key, str) or not key:
            raise InvalidInputError("metadata", f"keys must be non-empty strings, got {key!r}")
    _check_json_tree(metadata)
    try:
        encoded = json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError("metadata", f"must be JSON-serialisable: {exc}") from None
    if len(encoded) > MAX_METADATA_BYTES:
        raise InvalidInputError("metadata", f"is {len(encoded):,} bytes as JSON; the limit is {MAX_METADATA_BYTES:,}")
    return json.loads(encoded)
