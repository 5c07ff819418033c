"""Page sizes and the opaque cursor of paged listings."""

from __future__ import annotations

import base64
import json
from typing import Any

from memstrata.errors import InvalidInputError

MAX_LIMIT = 1000


def check_limit(limit: Any) -> int:
    if not isinstance(limit, int) or isinstance(limit, bool):
        raise InvalidInputError("limit", f"must be an integer, got {type(limit).__name__}")
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInputError("limit", f"must be between 1 and {MAX_LIMIT}, got {limit}")
    return limit


def encode_cursor(created_at: float, ident: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([created_at, ident]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, ident = json.loads(raw)
        return float(created_at), str(ident)
    except (ValueError, TypeError):
        raise InvalidInputError("cursor", "is not a cursor returned by get_all") from None
