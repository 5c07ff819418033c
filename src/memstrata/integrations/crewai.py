"""CrewAI 1.x: a ``StorageBackend`` for CrewAI's unified ``Memory``, so a crew's memory lives in memstrata.

    from crewai import Crew, Memory as CrewMemory
    from memstrata import Memory
    from memstrata.integrations.crewai import MemstrataStorage

    storage = MemstrataStorage(Memory(), user_id="acme-support")
    crew = Crew(agents=[...], tasks=[...],
                memory=CrewMemory(storage=storage, embedder=storage.embedder, llm=...))

Every record of the crew lands in one memstrata scope (``user_id`` / ``agent_id`` / ``org_id`` given
here): crew members share it, and CrewAI's own scope paths (``/crew/research/agent/writer``) organise the
records inside it. Two storages with different ``user_id`` never see each other's records.

CrewAI hands the storage query *vectors*; memstrata's retrieval (keyword, vector, entities, time) works from
the query *text*. ``storage.embedder`` is the bridge: give it to CrewAI's ``Memory(embedder=...)`` and it
embeds with memstrata's embedder and remembers which text each vector came from, so ``search`` runs
memstrata's full search on the text. Install with ``pip install 'memstrata[crewai]'``.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import numpy as np

from memstrata.errors import ConfigurationError, InvalidInputError
from memstrata.integrations._extras import require, sync_memory
from memstrata.integrations._shared import check_each, scope_args
from memstrata.memory import MAX_LIMIT

require("crewai", extra="crewai", package="crewai")

from crewai.memory.types import MemoryRecord, ScopeInfo  # noqa: E402

RECORD_KEY = "crewai"
ID_KEY = "crewai_id"
PATH_KEY = "crewai_scope_{}"  # one key per depth of the record's path, so a prefix is one equality filter
MAX_DEPTH = 16


def _path(scope: str | None) -> str:
    """``a//b/`` → ``/a/b``; empty → ``/``."""
    parts = [p for p in (scope or "").split("/") if p]
    return "/" + "/".join(parts)


def _under(path: str, prefix: str | None) -> bool:
    prefix = _path(prefix)
    return prefix == "/" or path == prefix or path.startswith(prefix + "/")


def _prefix_filter(prefix: str | None) -> dict[str, Any] | None:
    parts = [p for p in _path(prefix).split("/") if p]
    if not parts:
        return None
    depth = min(len(parts), MAX_DEPTH)
    return {PATH_KEY.format(depth): "/" + "/".join(parts[:depth])}


def _metadata(record: MemoryRecord) -> dict[str, Any]:
    path = _path(record.scope)
    parts = [p for p in path.split("/") if p]
    meta: dict[str, Any] = {
        ID_KEY: record.id,
        RECORD_KEY: {
            "scope": path,
            "categories": list(record.categories),
            "metadata": dict(record.metadata),
            "importance": record.importance,
            "created_at": record.created_at.isoformat(),
            "last_accessed": record.last_accessed.isoformat(),
            "source": record.source,
            "private": record.private,
        },
    }
    for depth in range(1, min(len(parts), MAX_DEPTH) + 1):
        meta[PATH_KEY.format(depth)] = "/" + "/".join(parts[:depth])
    return meta


def _record(item: dict[str, Any]) -> MemoryRecord:
    """A stored memstrata memory as CrewAI's record (its text is memstrata's current text)."""
    saved = item["metadata"][RECORD_KEY]
    return MemoryRecord(
        id=item["metadata"][ID_KEY],
        content=item["memory"],
        scope=saved["scope"],
        categories=saved["categories"],
        metadata=saved["metadata"],
        importance=saved["importance"],
        created_at=datetime.fromisoformat(saved["created_at"]),
        last_accessed=datetime.fromisoformat(saved["last_accessed"]),
        source=saved["source"],
        private=saved["private"],
    )


def _matches(record: MemoryRecord, categories: list[str] | None, metadata_filter: dict[str, Any] | None) -> bool:
    if categories and not any(c in record.categories for c in categories):
        return False
    return not metadata_filter or all(record.metadata.get(k) == v for k, v in metadata_filter.items())


class MemstrataStorage:
    """CrewAI ``StorageBackend`` over one memstrata scope. Takes a ``Memory`` or ``AsyncMemory``.

    Records are stored as written (``infer=False``): CrewAI has already decided what to remember. An exact
    repeat of a record's text in the same scope is merged by memstrata into the existing record, whose id
    the new record then takes.
    """

    def __init__(
        self,
        memory: Any,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        org_id: str | None = None,
        query_cache: int = 4096,
    ) -> None:
        self._memory = sync_memory(memory)
        self._scope = scope_args(user_id=user_id, agent_id=agent_id, run_id=run_id, org_id=org_id)
        self._texts: OrderedDict[bytes, str] = OrderedDict()
        self._cache_size = query_cache
        self._lock = threading.Lock()

    # -- the embedder CrewAI should use -----------------------------------------------------------

    @staticmethod
    def _key(vector: Any) -> bytes:
        return hashlib.blake2b(np.asarray(vector, dtype=np.float32).tobytes(), digest_size=16).digest()

    def embedder(self, texts: list[str]) -> list[list[float]]:
        """CrewAI's embedder callable: memstrata's embedder, remembering each vector's text for ``search``."""
        vectors = np.asarray(self._memory.embedder.embed(list(texts)), dtype=np.float32)
        with self._lock:
            for text, vector in zip(texts, vectors, strict=True):
                key = self._key(vector)
                self._texts[key] = text
                self._texts.move_to_end(key)
            while len(self._texts) > self._cache_size:
                self._texts.popitem(last=False)
        return [v.tolist() for v in vectors]

    def _query_text(self, query_embedding: list[float]) -> str:
        with self._lock:
            text = self._texts.get(self._key(query_embedding))
        if text is None:
            raise ConfigurationError(
                "crewai memory: this query vector was not made by MemstrataStorage.embedder; build CrewAI's "
                "Memory with embedder=storage.embedder so memstrata can search on the query's text"
            )
        return text

    # -- reading ----------------------------------------------------------------------------------

    def _items(self, scope_prefix: str | None = None, extra: dict[str, Any] | None = None) -> Iterator[dict]:
        """Every stored memory of this storage under ``scope_prefix``, oldest first."""
        filters = {**(_prefix_filter(scope_prefix) or {}), **(extra or {})}
        cursor = None
        while True:
            page = self._memory.get_all(**self._scope, limit=MAX_LIMIT, cursor=cursor, filters=filters or None)
            for item in page["results"]:
                if ID_KEY in item["metadata"] and _under(item["metadata"][RECORD_KEY]["scope"], scope_prefix):
                    yield item
            cursor = page["next_cursor"]
            if cursor is None:
                return

    def _find(self, record_id: str) -> dict[str, Any] | None:
        if not isinstance(record_id, str) or not record_id:
            raise InvalidInputError("record_id", "must be a non-empty string")
        return next(self._items(extra={ID_KEY: record_id}), None)

    def get_record(self, record_id: str) -> MemoryRecord | None:
        item = self._find(record_id)
        return None if item is None else _record(item)

    def search(
        self,
        query_embedding: list[float],
        scope_prefix: str | None = None,
        categories: list[str] | None = None,
        metadata_filter: dict[str, Any] | None = None,
        limit: int = 10,
        min_score: float = 0.0,
    ) -> list[tuple[MemoryRecord, float]]:
        """memstrata's ranked search on the query's text; each score is the cosine similarity of the query
        and the record (what CrewAI weighs with recency and importance)."""
        text = self._query_text(query_embedding)
        wanted = limit * 3 if categories or metadata_filter else limit
        found = self._memory.search(
            text, **self._scope, limit=min(max(wanted, 1), MAX_LIMIT), filters=_prefix_filter(scope_prefix)
        )["results"]
        hits = [
            (item, record)
            for item in found
            if ID_KEY in item["metadata"] and _under(item["metadata"][RECORD_KEY]["scope"], scope_prefix)
            and _matches(record := _record(item), categories, metadata_filter)
        ]
        if not hits:
            return []
        vectors = np.asarray(self._memory.embedder.embed([item["memory"] for item, _ in hits]), dtype=np.float32)
        query = np.asarray(query_embedding, dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1) * (np.linalg.norm(query) or 1.0)
        scores = (vectors @ query) / np.where(norms == 0, 1.0, norms)
        out = [(record, float(max(0.0, s))) for (_, record), s in zip(hits, scores, strict=True)]
        return [(r, s) for r, s in out if s >= min_score][:limit]

    def list_records(self, scope_prefix: str | None = None, limit: int = 200, offset: int = 0) -> list[MemoryRecord]:
        """Newest first."""
        records = sorted((_record(i) for i in self._items(scope_prefix)), key=lambda r: r.created_at, reverse=True)
        return records[offset : offset + limit]

    def get_scope_info(self, scope: str) -> ScopeInfo:
        path = _path(scope)
        records = [_record(i) for i in self._items(path)]
        return ScopeInfo(
            path=path,
            record_count=len(records),
            categories=sorted({c for r in records for c in r.categories}),
            oldest_record=min((r.created_at for r in records), default=None),
            newest_record=max((r.created_at for r in records), default=None),
            child_scopes=self._children(path, records),
        )

    @staticmethod
    def _children(parent: str, records: list[MemoryRecord]) -> list[str]:
        base = "" if parent == "/" else parent
        children = set()
        for record in records:
            rest = record.scope[len(base):].strip("/") if _under(record.scope, parent) else ""
            if rest:
                children.add(f"{base}/{rest.split('/', 1)[0]}")
        return sorted(children)

    def list_scopes(self, parent: str = "/") -> list[str]:
        path = _path(parent)
        return self._children(path, [_record(i) for i in self._items(path)])

    def list_categories(self, scope_prefix: str | None = None) -> dict[str, int]:
        counts: dict[str, int] = {}
        for item in self._items(scope_prefix):
            for category in item["metadata"][RECORD_KEY]["categories"]:
                counts[category] = counts.get(category, 0) + 1
        return counts

    def count(self, scope_prefix: str | None = None) -> int:
        return sum(1 for _ in self._items(scope_prefix))

    # -- writing ----------------------------------------------------------------------------------

    def save(self, records: list[MemoryRecord]) -> None:
        entries = [({"role": "user", "content": r.content}, _metadata(r)) for r in records]
        check_each(entries)
        for record, (_, metadata) in zip(records, entries, strict=True):
            result = self._memory.add(record.content, **self._scope, infer=False, metadata=metadata)
            stored = result["results"][0] if result["results"] else None
            if stored is not None and stored["event"] != "ADD":
                kept = self._memory.get(stored["id"], **self._scope)
                record.id = kept["metadata"].get(ID_KEY, record.id)

    def update(self, record: MemoryRecord) -> None:
        item = self._find(record.id)
        if item is None:
            raise KeyError(f"crewai memory: no record {record.id!r} in this storage")
        text = record.content if record.content != item["memory"] else None
        self._memory.update(item["id"], text, _metadata(record), **self._scope)

    def delete(
        self,
        scope_prefix: str | None = None,
        categories: list[str] | None = None,
        record_ids: list[str] | None = None,
        older_than: datetime | None = None,
        metadata_filter: dict[str, Any] | None = None,
    ) -> int:
        wanted = set(record_ids) if record_ids is not None else None
        doomed = [
            item["id"]
            for item in self._items(scope_prefix)
            if (wanted is None or item["metadata"][ID_KEY] in wanted)
            and _matches(record := _record(item), categories, metadata_filter)
            and (older_than is None or record.created_at < older_than)
        ]
        for memory_id in doomed:
            self._memory.delete(memory_id, **self._scope)
        return len(doomed)

    def reset(self, scope_prefix: str | None = None) -> None:
        """Delete the records under ``scope_prefix``. Without one, when the scope holds only this storage's
        records, the whole scope goes (``delete_all``: the episodes that carried the records too); when other
        memories share the scope, only the records go and the rest is left alone."""
        if _path(scope_prefix) != "/" or not self._scope_is_ours():
            self.delete(scope_prefix=scope_prefix)
        else:
            self._memory.delete_all(**self._scope)

    def _scope_is_ours(self) -> bool:
        cursor = None
        while True:
            page = self._memory.get_all(**self._scope, limit=MAX_LIMIT, cursor=cursor)
            if any(ID_KEY not in item["metadata"] for item in page["results"]):
                return False
            cursor = page["next_cursor"]
            if cursor is None:
                return True

    # -- async twins: the same calls in a worker thread --------------------------------------------

    async def asave(self, records: list[MemoryRecord]) -> None:
        await asyncio.to_thread(self.save, records)

    async def asearch(self, *args: Any, **kwargs: Any) -> list[tuple[MemoryRecord, float]]:
        """``search``'s arguments."""
        return await asyncio.to_thread(self.search, *args, **kwargs)

    async def adelete(self, *args: Any, **kwargs: Any) -> int:
        """``delete``'s arguments."""
        return await asyncio.to_thread(self.delete, *args, **kwargs)
