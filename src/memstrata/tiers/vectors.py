"""An external vector index for the long-term tier (Qdrant, Chroma, ...), kept beside a Store.

The Store stays the source of truth (it keeps every vector too); the vector tier is an index that can
be rebuilt from it (``reindex``). ``Memory`` holds the two side by side: retrieval takes its kNN from the
vector tier, and each committed WriteBatch is carried over to it (``mirror``) after the store's commit.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from memstrata.models import Scope
from memstrata.tiers.base import LongTermTier, WriteBatch


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


def mirror(vectors: VectorTier, scope: Scope, batch: WriteBatch) -> None:
    """Carry a committed WriteBatch over to the vector tier: new and re-embedded memories, activity flips
    (superseded or restored), deletions."""
    upserts = [(rec.id, np.atleast_2d(vecs), rec.current) for rec, vecs in batch.new_memories]
    upserts += [(rec.id, np.atleast_2d(vecs), rec.current) for rec, vecs in batch.updated_memories
                if vecs is not None]
    if upserts:
        vectors.upsert(scope, upserts)
    flips = [rec for rec, vecs in batch.updated_memories if vecs is None]
    on = [r.id for r in flips if r.current]
    off = [r.id for r in flips if not r.current]
    if on:
        vectors.set_active(scope, on, True)
    if off:
        vectors.set_active(scope, off, False)
    if batch.deleted_memory_ids:
        vectors.delete(scope, batch.deleted_memory_ids)


def reindex(store: LongTermTier, vectors: VectorTier, scope: Scope) -> int:
    """Re-index a scope's vectors from the store, which keeps every vector; returns memories indexed."""
    vectors.drop_scope(scope)
    records = store.list_memories(scope, include_superseded=True, limit=10**9)
    n = 0
    for start in range(0, len(records), 500):
        chunk = records[start : start + 500]
        vecs = store.vectors(scope, [r.id for r in chunk])
        vectors.upsert(scope, [(r.id, np.atleast_2d(vecs[r.id]), r.current) for r in chunk if r.id in vecs])
        n += len(chunk)
    return n
