"""The write side of the tiers: every WriteBatch goes to the store in one transaction, then, when a
separate vector tier serves the kNN, into that index too.

The store is the truth and keeps every vector; the index is mirrored after the commit, so a failure in
between leaves the index stale, never the truth, and ``rebuild`` mends it.

After every change (also one that failed half-way) the read cache hears of it (``tiers.cache.Invalidation``),
so no process serves what it cached of the scope before.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager

from memstrata.errors import ConfigurationError, MemstrataError
from memstrata.ingest.entities import resolve_entities
from memstrata.models import Scope
from memstrata.tiers.base import Store, WriteBatch
from memstrata.tiers.cache import Invalidation
from memstrata.tiers.vectors import VectorTier, mirror, reindex


class Writer:
    def __init__(self, store: Store, vectors: VectorTier | None = None, cache: Invalidation | None = None) -> None:
        self.store = store
        self.vectors = vectors
        self.cache = cache

    def section(self, scope: Scope) -> AbstractContextManager[object]:
        """The scope's write section: plan from reads made inside it, and apply before leaving it."""
        return self.store.scope_lock(scope)

    def apply(self, scope: Scope, batch: WriteBatch) -> None:
        """Commit ``batch`` (its entity upserts decided from its links first), then mirror it into the
        vector tier."""
        try:
            self.store.apply(scope, resolve_entities(batch))
            if self.vectors is not None:
                mirror(self.vectors, scope, batch)
        finally:
            if self.cache is not None:
                self.cache.changed(scope)

    def mark(self, scope: Scope, episode_ids: Sequence[str], status: str, error: str | None) -> None:
        """Set the extraction status of episodes; best effort (a 'pending' one is retried all the same)."""
        try:
            self.store.apply(scope, WriteBatch(episode_status=[(i, status, error) for i in episode_ids]))
        except MemstrataError:
            pass  # the episodes stay 'pending', which retry_failed() also picks up

    def delete_scope(self, scope: Scope) -> dict[str, int]:
        try:
            counts = self.store.delete_scope(scope)
            if self.vectors is not None:
                self.vectors.drop_scope(scope)
        finally:
            if self.cache is not None:
                self.cache.erased([scope])
        return counts

    def reset(self) -> None:
        try:
            self.store.reset()
            if self.vectors is not None:
                self.vectors.reset()
        finally:
            if self.cache is not None:
                self.cache.reset()

    def purged(self, scopes: Sequence[Scope]) -> None:
        """Rows of ``scopes`` were deleted behind the writer (a retention purge)."""
        if self.cache is not None:
            for scope in scopes:
                self.cache.changed(scope)

    def rebuild(self, scope: Scope) -> int:
        """Re-index a scope's vectors in the vector tier from the store; returns memories indexed."""
        if self.vectors is None:
            raise ConfigurationError("vectors: this memory has no separate vector tier to rebuild")
        try:
            return reindex(self.store, self.vectors, scope)
        finally:
            if self.cache is not None:
                self.cache.changed(scope)
