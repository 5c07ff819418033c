"""The tier contracts: short-term, working, episodic, long-term and graph. Backends implement them."""

from memstrata.tiers.base import (
    EpisodicTier,
    GraphTier,
    LongTermTier,
    ShortTermTier,
    Store,
    WorkingState,
    WorkingTier,
    WriteBatch,
)

__all__ = [
    "EpisodicTier",
    "GraphTier",
    "LongTermTier",
    "ShortTermTier",
    "Store",
    "WorkingState",
    "WorkingTier",
    "WriteBatch",
]
