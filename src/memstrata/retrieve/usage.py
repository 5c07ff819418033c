"""Two small caches beside retrieval: query vectors (an LRU, so a repeated query is embedded once) and
which memories were returned when (written to the store in batches, so a search stays read-only on the
hot path; it feeds the recency-of-use boost)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from memstrata.errors import MemstrataError
from memstrata.models import Scope

QUERY_CACHE = 1024
TOUCH_FLUSH_SECONDS = 10.0
TOUCH_FLUSH_COUNT = 512


class QueryVectors:
    """The embeddings of the last ``size`` distinct queries. ``seen(hit)`` hears each lookup's outcome."""

    def __init__(self, embed: Callable[[list[str]], np.ndarray], size: int = QUERY_CACHE,
                 seen: Callable[[bool], None] | None = None) -> None:
        self._embed, self._size, self._seen = embed, size, seen
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, query: str) -> np.ndarray:
        with self._lock:
            vec = self._cache.get(query)
            if vec is not None:
                self._cache.move_to_end(query)
        if self._seen is not None:
            self._seen(vec is not None)
        if vec is not None:
            return vec
        vec = self._embed([query])[0]
        with self._lock:
            self._cache[query] = vec
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return vec

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def __len__(self) -> int:
        return len(self._cache)


class UsageLog:
    """Pending last-used times per scope, flushed through ``touch(scope, ids, at)`` every
    ``TOUCH_FLUSH_SECONDS`` or ``TOUCH_FLUSH_COUNT`` ids, whichever comes first."""

    def __init__(self, touch: Callable[[Scope, Sequence[str], float], None]) -> None:
        self._touch = touch
        self._touched: dict[Scope, dict[float, set[str]]] = {}  # scope → search time → ids
        self._lock = threading.Lock()
        self._last_flush = time.monotonic()

    def note(self, scope: Scope, ids: Iterable[str], at: float) -> None:
        with self._lock:
            # To the minute: a recency boost with a half-life in days needs no finer stamp, and fewer distinct
            # stamps mean fewer statements per flush.
            self._touched.setdefault(scope, {}).setdefault(at - at % 60, set()).update(ids)
            due = (time.monotonic() - self._last_flush > TOUCH_FLUSH_SECONDS
                   or sum(len(v) for by_at in self._touched.values() for v in by_at.values()) >= TOUCH_FLUSH_COUNT)
        if due:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            pending, self._touched = self._touched, {}
            self._last_flush = time.monotonic()
        for scope, by_at in pending.items():
            for at, ids in sorted(by_at.items()):
                try:
                    self._touch(scope, sorted(ids), at)
                except MemstrataError:
                    pass  # usage statistics are best effort; the next flush tries again with new data

    def forget(self, scopes: Iterable[Scope]) -> None:
        """Drop what is pending for these scopes (their data is being erased)."""
        with self._lock:
            for scope in scopes:
                self._touched.pop(scope, None)
