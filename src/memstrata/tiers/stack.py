"""The tiers one ``Memory`` is composed of, and what the composition can do as a whole."""

from __future__ import annotations

from dataclasses import dataclass

from memstrata.tiers.base import Capability, ShortTermTier, Store, WorkingTier
from memstrata.tiers.vectors import VectorTier


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
