"""Metadata filters for ``search``/``get_all``: equality, ``in``/``nin``, ``ne`` and ranges, validated up front.

{"topic": "travel", "lang": {"in": ["en", "pt"]}, "created_at": {"gte": "2026-03-01", "lt": "2026-04-01"}}
"""

from __future__ import annotations

import re
from typing import Any

from memstrata.core.validate import check_utf8, parse_time
from memstrata.errors import InvalidInputError

TIME_FIELDS = {"created_at", "updated_at", "valid_from", "valid_to"}
_KEY = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_OPS = {"eq", "ne", "gt", "gte", "lt", "lte", "in", "nin"}
_SCALAR = (str, int, float, bool)


def parse_filters(filters: Any) -> list[tuple[str, str, Any]]:
    if filters is None:
        return []
    if not isinstance(filters, dict):
        raise InvalidInputError("filters", f"must be a dict, got {type(filters).__name__}")
    out: list[tuple[str, str, Any]] = []
    for key, cond in filters.items():
        if not isinstance(key, str) or not _KEY.match(key):
            raise InvalidInputError("filters", f"key {key!r} must be 1-64 letters, digits, '_', '.' or '-'")
        if key in {"user_id", "agent_id", "run_id", "org_id"}:
            raise InvalidInputError(f"filters.{key}", "scope ids are arguments, not filters")
        ops = cond if isinstance(cond, dict) else {"eq": cond}
        if not ops:
            raise InvalidInputError(f"filters.{key}", "needs at least one operator")
        for op, value in ops.items():
            if op not in _OPS:
                raise InvalidInputError(
                    f"filters.{key}", f"unknown operator {op!r} (use {', '.join(sorted(_OPS))})"
                )
            if op in ("in", "nin"):
                if not isinstance(value, list | tuple) or not value:
                    raise InvalidInputError(f"filters.{key}.{op}", "must be a non-empty list")
                if not all(isinstance(v, _SCALAR) for v in value):
                    raise InvalidInputError(
                        f"filters.{key}.{op}", "values must be strings, numbers or booleans"
                    )
                for v in value:
                    if isinstance(v, str):
                        check_utf8(f"filters.{key}.{op}", v)
                vals = (
                    [parse_time(f"filters.{key}", v).timestamp() for v in value]
                    if key in TIME_FIELDS
                    else list(value)
                )
                out.append((key, op, vals))
                continue
            if not isinstance(value, _SCALAR):
                raise InvalidInputError(f"filters.{key}.{op}", "must be a string, number or boolean")
            if isinstance(value, str):
                check_utf8(f"filters.{key}.{op}", value)
            if key in TIME_FIELDS:
                value = parse_time(f"filters.{key}", value).timestamp()
            out.append((key, op, value))
    return out
