"""An external vector index for the long-term tier (Qdrant, Chroma, ...), kept beside a Store.

The Store stays the source of truth (it keeps every vector too); the vector tier is an index that can
be rebuilt from it. ``SplitVectorStore`` composes the two: every Store call goes to the base store,
kNN goes to the vector tier, and each committed WriteBatch is mirrored into the vector tier.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from memstrata.models import Scope
from memstrata.tiers.base import Capability, Store, WriteBatch


class VectorTier(ABC):
    """kNN over memory vectors, always filtered by scope (a payload/metadata field, never optional)."""

    @abstractmethod
    def upsert(self, scope: Scope, items: Sequence[tuple[str, np.ndarray, bool]]) -> None:
        """(memory_id, (chunks, dim) matrix, active) — replaces any earlier vectors of the memory."""

    @abstractmethod
    def delete(self, scope: Scope, memory_ids: Sequence[str]) -> None: ...

    @abstractmethod
    def set_active(self, scope: Scope, memory_ids: Sequence[str], active: bool) -> None: ...

    @abstractmethod
    def search(
        self, scope: Scope, vector: np.ndarray, k: int, *, include_inactive: bool = False,
        only: Sequence[str] | None = None,
    ) -> list[tuple[str, float]]:
        """Top-k memory ids by cosine similarity; a memory with several chunks scores by its best."""

    @abstractmethod
    def count(self, scope: Scope) -> int:
        """Memories (not chunks) indexed for the scope."""

    @abstractmethod
    def drop_scope(self, scope: Scope) -> None: ...

    @abstractmethod
    def reset(self) -> None: ...

    def close(self) -> None:  # noqa: B027 - optional
        pass


class SplitVectorStore(Store):
    """A Store whose kNN is served by a VectorTier; everything else by the base store."""

    def __init__(self, base: Store, vectors: VectorTier) -> None:
        self.base = base
        self.vectors_tier = vectors

    def __getattr__(self, name: str) -> Any:
        # Extra capabilities of the base (keys, privacy, codec, ...) pass through unchanged.
        return getattr(self.base, name)

    def supports(self, capability: Capability | str) -> bool:
        return Capability(capability) is Capability.EXTERNAL_VECTORS or self.base.supports(capability)

    def scopes(self, *args: Any, **kw: Any) -> list[dict[str, Any]]:
        return self.base.scopes(*args, **kw)

    # Delegated contract -------------------------------------------------------------------------
    def add_episodes(self, episodes):  # type: ignore[no-untyped-def]
        return self.base.add_episodes(episodes)

    def get_episodes(self, scope, ids):  # type: ignore[no-untyped-def]
        return self.base.get_episodes(scope, ids)

    def list_episodes(self, scope, **kw):  # type: ignore[no-untyped-def]
        return self.base.list_episodes(scope, **kw)

    def search_episodes(self, scope, query, limit=20):  # type: ignore[no-untyped-def]
        return self.base.search_episodes(scope, query, limit)

    def get_memories(self, scope, ids):  # type: ignore[no-untyped-def]
        return self.base.get_memories(scope, ids)

    def list_memories(self, scope, **kw):  # type: ignore[no-untyped-def]
        return self.base.list_memories(scope, **kw)

    def find_by_hash(self, scope, content_hash):  # type: ignore[no-untyped-def]
        return self.base.find_by_hash(scope, content_hash)

    def find_by_slot(self, scope, subject, attribute):  # type: ignore[no-untyped-def]
        return self.base.find_by_slot(scope, subject, attribute)

    def keyword_search(self, scope, query, k, **kw):  # type: ignore[no-untyped-def]
        return self.base.keyword_search(scope, query, k, **kw)

    def history(self, scope, memory_id):  # type: ignore[no-untyped-def]
        return self.base.history(scope, memory_id)

    def scope_of_memory(self, memory_id):  # type: ignore[no-untyped-def]
        return self.base.scope_of_memory(memory_id)

    def vectors(self, scope, ids):  # type: ignore[no-untyped-def]
        return self.base.vectors(scope, ids)

    def count(self, scope):  # type: ignore[no-untyped-def]
        return self.base.count(scope)

    def entities(self, scope, limit=1000):  # type: ignore[no-untyped-def]
        return self.base.entities(scope, limit)

    def memories_of_entities(self, scope, entity_ids, limit=50):  # type: ignore[no-untyped-def]
        return self.base.memories_of_entities(scope, entity_ids, limit)

    def neighbours(self, scope, entity_id, depth=1):  # type: ignore[no-untyped-def]
        return self.base.neighbours(scope, entity_id, depth)

    def conflicts(self, scope, status="open"):  # type: ignore[no-untyped-def]
        return self.base.conflicts(scope, status)

    def resolve_conflict(self, scope, conflict_id, resolution, at):  # type: ignore[no-untyped-def]
        return self.base.resolve_conflict(scope, conflict_id, resolution, at)

    def touch(self, scope, ids, at):  # type: ignore[no-untyped-def]
        return self.base.touch(scope, ids, at)

    def stats(self, scope=None):  # type: ignore[no-untyped-def]
        out = self.base.stats(scope)
        out["vector_backend"] = type(self.vectors_tier).__name__
        if scope is not None:
            out["vector_index_memories"] = self.vectors_tier.count(scope)
        return out

    # Vector-aware parts ---------------------------------------------------------------------------
    def vector_search(self, scope, vector, k, *, include_superseded=False, only=None):  # type: ignore[no-untyped-def]
        return self.vectors_tier.search(scope, vector, k, include_inactive=include_superseded, only=only)

    def apply(self, scope: Scope, batch: WriteBatch) -> None:
        self.base.apply(scope, batch)
        # Mirrored after the commit: if this fails, the index is stale, never the truth; rebuild() mends it.
        upserts = [(rec.id, np.atleast_2d(vecs), rec.current) for rec, vecs in batch.new_memories]
        upserts += [(rec.id, np.atleast_2d(vecs), rec.current) for rec, vecs in batch.updated_memories
                    if vecs is not None]
        if upserts:
            self.vectors_tier.upsert(scope, upserts)
        flips = [rec for rec, vecs in batch.updated_memories if vecs is None]
        on = [r.id for r in flips if r.current]
        off = [r.id for r in flips if not r.current]
        if on:
            self.vectors_tier.set_active(scope, on, True)
        if off:
            self.vectors_tier.set_active(scope, off, False)
        if batch.deleted_memory_ids:
            self.vectors_tier.delete(scope, batch.deleted_memory_ids)

    def rebuild(self, scope: Scope) -> int:
        """Re-index a scope's vectors from the base store; returns memories indexed."""
        self.vectors_tier.drop_scope(scope)
        records = self.base.list_memories(scope, include_superseded=True, limit=10**9)
        n = 0
        for start in range(0, len(records), 500):
            chunk = records[start : start + 500]
            vecs = self.base.vectors(scope, [r.id for r in chunk])
            self.vectors_tier.upsert(scope, [(r.id, np.atleast_2d(vecs[r.id]), r.current) for r in chunk
                                             if r.id in vecs])
            n += len(chunk)
        return n

    def delete_scope(self, scope: Scope) -> dict[str, int]:
        counts = self.base.delete_scope(scope)
        self.vectors_tier.drop_scope(scope)
        return counts

    def reset(self) -> None:
        self.base.reset()
        self.vectors_tier.reset()

    def close(self) -> None:
        self.base.close()
        self.vectors_tier.close()
