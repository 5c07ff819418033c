"""Reads that are not a ranked search: a scope's memories a page at a time, a memory's history, its raw
episodes (by time, or by full text), its conflicts, and an entity with its neighbourhood in the graph."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from memstrata.core.paging import check_limit, decode_cursor, encode_cursor
from memstrata.core.validate import parse_time
from memstrata.errors import InvalidInputError, NotFoundError
from memstrata.models import Scope
from memstrata.retrieve.filters import parse_filters
from memstrata.tiers.base import Store


def memories_page(store: Store, scope: Scope, *, limit: Any, cursor: str | None, filters: Any,
                  include_superseded: bool, conversation_id: str | None) -> dict[str, Any]:
    """Memories in creation order; ``next_cursor`` (None on the last page) fetches the next page."""
    limit = check_limit(limit)
    where = parse_filters(filters)
    after = decode_cursor(cursor) if cursor else None
    rows = store.list_memories(scope, include_superseded=include_superseded, limit=limit + 1, after=after,
                               where=where, conversation_id=conversation_id)
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "results": [r.to_dict() for r in rows],
        "next_cursor": encode_cursor(rows[-1].created_at, rows[-1].id) if more and rows else None,
    }


def episodes_page(store: Store, scope: Scope, *, query: Any, conversation_id: str | None, start: Any, end: Any,
                  limit: Any) -> dict[str, Any]:
    """Full-text matches for ``query`` (best first), else episodes in a time range in time order."""
    limit = check_limit(limit)
    if query is not None:
        if not isinstance(query, str) or not query.strip():
            raise InvalidInputError("query", "must be a non-empty string")
        found = store.search_episodes(scope, query, limit)
        return {"results": [{**e.to_dict(), "score": round(s, 6)} for e, s in found]}
    rows = store.list_episodes(
        scope, conversation_id=conversation_id, limit=limit,
        start=parse_time("start", start).timestamp() if start is not None else None,
        end=parse_time("end", end).timestamp() if end is not None else None,
    )
    return {"results": [e.to_dict() for e in rows]}


def neighbourhood(store: Store, scope: Scope, entity: Any, depth: Any) -> dict[str, Any]:
    """An entity (by id, name or alias), what it is connected to within ``depth`` hops, and its memories."""
    if not isinstance(depth, int) or not 1 <= depth <= 3:
        raise InvalidInputError("depth", "must be 1, 2 or 3")
    key = entity.strip().lower() if isinstance(entity, str) else ""
    if not key:
        raise InvalidInputError("entity", "must be a non-empty string")
    node = next((e for e in store.entities(scope, 100_000)
                 if e.id == entity or e.name.lower() == key or key in (a.lower() for a in e.aliases)), None)
    if node is None:
        raise NotFoundError("entity", entity)
    return {
        "entity": node.to_dict(),
        "neighbours": [{**n.to_dict(), "relation": rel, "hops": hops}
                       for n, rel, hops in store.neighbours(scope, node.id, depth)],
        "memories": store.memories_of_entities(scope, [node.id], 100),
    }


def history(store: Store, scope: Scope, memory_id: str) -> list[dict[str, Any]]:
    events = store.history(scope, memory_id)
    if not events:
        raise NotFoundError("memory", memory_id)
    return [e.to_dict() for e in events]


def conflicts(store: Store, scope: Callable[[], Scope], status: str | None) -> dict[str, Any]:
    """``status`` is checked before the scope is resolved (a bad status is the error a caller sees first)."""
    if status not in (None, "all", "open", "resolved"):
        raise InvalidInputError("status", f"must be 'open', 'resolved' or 'all', got {status!r}")
    return {"results": [c.to_dict() for c in store.conflicts(scope(), None if status == "all" else status)]}
