"""The tiers one ``Memory`` is composed of, and what the composition can do as a whole."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from memstrata.models import Scope
from memstrata.tiers.base import Capability, ShortTermTier, Store, WorkingTier
from memstrata.tiers.vectors import VectorTier

# Facts about the whole store that a caller asking about one scope has no business seeing.
STORE_WIDE_STATS = ("path", "url", "file_bytes", "database_bytes", "vector_cache_bytes", "scopes")


@dataclass
class Tiers:
    """The durable store (episodic, long-term, graph), the cache tiers, and an optional external vector
    index beside the store. Privacy and retention reach every tier through this one value."""

    store: Store
    short_term: ShortTermTier
    working: WorkingTier
    vectors: VectorTier | None = None

    def supports(self, capability: Capability | str) -> bool:
        """The store's capabilities, plus ``EXTERNAL_VECTORS`` when a vector tier serves the kNN."""
        if Capability(capability) is Capability.EXTERNAL_VECTORS:
            return self.vectors is not None
        return self.store.supports(capability)

    def stats(self, scope: Scope | None = None) -> dict[str, Any]:
        """The store's counts, plus which vector tier serves kNN and (for a scope) how many memories it holds.
        A scope's counts say nothing about where or how big the whole store is."""
        out = self.store.stats(scope)
        if self.vectors is not None:
            out["vector_backend"] = type(self.vectors).__name__
            if scope is not None:
                out["vector_index_memories"] = self.vectors.count(scope)
        if scope is not None:
            for key in STORE_WIDE_STATS:
                out.pop(key, None)
        return out

    def close(self) -> None:
        self.store.close()
        if self.vectors is not None:
            self.vectors.close()
        self.short_term.close()
