"""Records and helpers the tier contract tests build their data with."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import numpy as np
import pytest

from memstrata.core.text import normalized_hash
from memstrata.models import EpisodeRecord, HistoryEvent, MemoryRecord, Scope
from memstrata.providers.embedders import HashEmbedder
from memstrata.tiers.base import Capability, Store

DIM = 32
_EMBED = HashEmbedder(DIM)
StoreFactory = Callable[..., Store]  # opens another store object on the test's database


def needs(store: Store, capability: Capability) -> None:
    if not store.supports(capability):
        pytest.skip(f"{type(store).__name__} does not declare {capability.value}")


def vec(text: str) -> np.ndarray:
    return _EMBED.embed([text])[0]


def memory(scope: Scope, text: str, *, at: float | None = None, **fields: object) -> MemoryRecord:
    now = time.time() if at is None else at
    return MemoryRecord(id=str(uuid.uuid4()), scope=scope, text=text, created_at=now, updated_at=now,
                        valid_from=now, content_hash=normalized_hash(text), **fields)  # type: ignore[arg-type]


def added(rec: MemoryRecord) -> HistoryEvent:
    return HistoryEvent(str(uuid.uuid4()), rec.id, "ADD", None, rec.text, "test", "added", rec.created_at)


def episode(scope: Scope, content: str, *, at: float, conversation_id: str = "c1", **fields: object) -> EpisodeRecord:
    return EpisodeRecord(id=str(uuid.uuid4()), scope=scope, conversation_id=conversation_id, role="user",
                         content=content, occurred_at=at, created_at=at, **fields)  # type: ignore[arg-type]
