"""A per-scope cache of ``Store.entities``: every add and every search asks for a scope's entities (up to
5,000), and decoding them (decrypting, with an encrypting codec) costs more than the question.

Correctness across processes rests on a *probe*: a value the engine reads cheaply for one scope that
changes on every committed write to the scope's entities, from any process. SQLite reads the scope's
row of ``scope_versions`` (its version grows with every write batch and every purge; a scope created
anew starts from the clock, so a deleted and rebuilt scope never shows an old version again).
PostgreSQL reads the system column ``xmin`` of the scope's ``scope_counts`` row: every write batch and
purge updates that row, and each update gives it a new transaction id. A missing row probes as None.

A hit needs the stored probe to equal the current one; the probe is read before the entities, so a
write landing between the two leaves a stale probe behind and the next call reloads. This process's
own writes also drop the scope at once (``apply``, ``delete_scope``, ``reset``, purges and erasure).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from memstrata.models import EntityRecord


@dataclass
class _Entry:
    probe: object
    limit: int
    rows: list[EntityRecord]


class EntityCache:
    """Probe-validated entity lists per scope key, least recently used dropped past ``max_scopes``."""

    def __init__(self, max_scopes: int = 256) -> None:
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.max_scopes = max_scopes
        self.hits = 0
        self.misses = 0

    def get(self, key: str, probe: object, limit: int) -> list[EntityRecord] | None:
        with self._lock:
            entry = self._entries.get(key)
            # A shorter list than its limit is the whole scope; else it serves only smaller limits.
            if entry is None or entry.probe != probe or (limit > entry.limit and len(entry.rows) >= entry.limit):
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return list(entry.rows[:limit])

    def put(self, key: str, probe: object, limit: int, rows: list[EntityRecord]) -> None:
        with self._lock:
            self._entries[key] = _Entry(probe, limit, list(rows))
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_scopes:
                self._entries.popitem(last=False)

    def drop(self, key: str | None = None) -> None:
        """Forget one scope, or every scope when ``key`` is None."""
        with self._lock:
            if key is None:
                self._entries.clear()
            else:
                self._entries.pop(key, None)
