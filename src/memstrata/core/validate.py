"""Input checks every face and layer shares: times, UTF-8 text and metadata."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime
from typing import Any

from memstrata.errors import InvalidInputError

MAX_METADATA_BYTES = 64 * 1024
MAX_METADATA_DEPTH = 32


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
                from memstrata.core.temporal import parse_timestamp

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
