"""Validation of what callers pass to ``add``: messages, timestamps and metadata. Errors name the field."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from memstrata.core.validate import check_utf8, parse_time
from memstrata.errors import InvalidInputError
from memstrata.ingest.candidate import Message

ROLES = ("user", "assistant", "system", "tool")
MAX_MESSAGE_CHARS = 100_000
MAX_MESSAGES = 1_000


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


