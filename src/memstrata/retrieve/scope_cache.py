"""Scope entries of the read cache: the pieces of a search worth keeping, per scope and version.

What is cached, and why these pieces and not whole results:

- ``candidates:<digest>`` — the dense (kNN) and keyword (BM25/FTS) candidate lists of one query: memory ids
  and raw scores. They are the database's heaviest work in a search (an exact kNN scans the scope's vectors;
  full-text ranks every match) and depend only on the scope's data and the query, not on the time. Everything
  after them runs live on every search: the records are read again by id (so a memory that is gone is never
  returned, and its last-use time and validity are current), recency and time expressions use this call's
  ``now``, and the conversation's recent turns feed entity expansion. Whole results would freeze all of that.
  They hold ids and numbers only, so Redis never holds a user's text. Filtered searches are not cached: their
  allow-list is built per filter and can be as large as the scope.
- ``entities`` — the scope's entity names (name or alias → entity id), read in full by every search that
  expands entities. It holds names, so it stays in the process (validated against the shared version like
  any entry) and never goes to Redis.

Each read is one round trip to Redis: the erasure epoch, the scope's version and the wanted entries come
back together; an entry stored under another version is a miss. The store's change marker of the scope
(``Store.change_marker``, a cheap read that moves with every committed write from any process) is read too
and kept with each entry: an entry is served only while both still match, so a write whose version bump
never reached Redis (Redis cut off from the writer, the writer gone, a writer started without the cache) is
still seen. A store without a marker gets no scope entries at all. When the epoch has moved since this process last
looked, some user was erased somewhere: the process drops every scope entry it holds.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from memstrata.errors import MemstrataError
from memstrata.models import Scope

if TYPE_CHECKING:
    from memstrata.retrieve.layers import ReadCache


def candidates_name(*parts: Any) -> str:
    """The entry name of one query's candidate lists: a digest of everything they depend on."""
    raw = json.dumps(parts, ensure_ascii=False, sort_keys=True, default=str)
    return "candidates:" + hashlib.sha256(raw.encode()).hexdigest()[:32]


ENTITIES = "entities"


class ScopeView:
    """The cached entries of one scope under one version, for one search. ``get`` serves an entry or computes
    it; ``commit`` stores what was computed."""

    def __init__(self, cache: ScopeCache | None, scope: Scope, version: int | None, marker: str,
                 found: dict[str, Any]) -> None:
        self.cache, self.scope, self.version, self.marker, self.found = cache, scope, version, marker, found
        self.computed: dict[str, tuple[Any, bool]] = {}

    def get(self, name: str, compute: Callable[[], Any], *, shared: bool = True) -> Any:
        if name in self.found:
            return self.found[name]
        value = compute()
        if self.cache is not None:
            self.computed[name] = (value, shared)
        return value

    def commit(self) -> None:
        if self.cache is not None and self.computed and self.version is not None:
            self.cache.store(self.scope, self.version, self.marker, self.computed)


class ScopeCache:
    """Scope entries in this process (an LRU with a short lifetime), validated against the shared versions."""

    def __init__(self, layers: ReadCache) -> None:
        self.layers = layers
        self._local: OrderedDict[tuple[Scope, str], tuple[int, str, Any, float]] = OrderedDict()
        self._lock = threading.Lock()
        self._epoch: int | None = None
        self._next_sweep = 0.0

    def open(self, scope: Scope, names: Sequence[str], shared: Iterable[str],
             marker: Callable[[Scope], object | None]) -> ScopeView:
        """The entries ``names`` of ``scope`` that are current; ``shared``: those that may live in Redis;
        ``marker``: the store's change marker of a scope."""
        stats = self.layers.stats
        store = self.layers.shared_now()
        if store is None or not self.layers.scopes_trusted():  # fail closed: no shared version, no cached entry
            stats.note("scope", "process", "bypass", len(names))
            return ScopeView(None, scope, None, "", {})
        remote = [n for n in names if n in set(shared)]
        try:
            epoch, version, raw = store.read_scope(scope, remote)
        except MemstrataError as exc:
            self.layers.went_down(exc)
            stats.note("scope", "process", "bypass", len(names))
            return ScopeView(None, scope, None, "", {})
        current = marker(scope)  # after the version, before the data: both may only be older than what is read
        if current is None:
            stats.note("scope", "process", "bypass", len(names))
            return ScopeView(None, scope, None, "", {})
        mark = str(current)
        if epoch != self._epoch:
            if self._epoch is not None:
                self.drop_local(None)  # someone was erased: no copy of theirs may stay in this process
            self._epoch = epoch
        from_redis = dict(zip(remote, raw, strict=True))
        found: dict[str, Any] = {}
        now = time.monotonic()
        if now >= self._next_sweep:
            self._sweep(now)
        with self._lock:
            for name in names:
                entry = self._local.get((scope, name))
                if entry is not None and entry[0] == version and entry[1] == mark and entry[3] > now:
                    self._local.move_to_end((scope, name))
                    found[name] = entry[2]
        for name in names:
            stats.note("scope", "process", "hit" if name in found else "miss")
            if name in found or name not in from_redis:
                continue
            payload = from_redis[name]
            stored = json.loads(payload) if payload is not None else None
            hit = isinstance(stored, list) and len(stored) == 2 and stored[0] == mark
            stats.note("scope", "redis", "hit" if hit else "miss")
            if hit:
                assert stored is not None
                found[name] = stored[1]
                self._keep(scope, name, version, mark, found[name])
        return ScopeView(self, scope, version, mark, found)

    def store(self, scope: Scope, version: int, mark: str, computed: dict[str, tuple[Any, bool]]) -> None:
        for name, (value, _) in computed.items():
            self._keep(scope, name, version, mark, value)
        remote = {name: json.dumps([mark, value], ensure_ascii=False, separators=(",", ":")).encode()
                  for name, (value, shared) in computed.items() if shared}
        store = self.layers.shared_now()
        if store is None or not remote or not self.layers.scopes_trusted():
            return
        try:
            store.put_scope(scope, version, remote, self.layers.config.scope_ttl)
        except MemstrataError as exc:
            self.layers.went_down(exc)

    def _keep(self, scope: Scope, name: str, version: int, mark: str, value: Any) -> None:
        expires = time.monotonic() + self.layers.config.local_ttl
        with self._lock:
            self._local[(scope, name)] = (version, mark, value, expires)
            self._local.move_to_end((scope, name))
            while len(self._local) > self.layers.config.local_scope_entries:
                self._local.popitem(last=False)

    def _sweep(self, now: float) -> None:
        """Let go of entries past their lifetime, so that none outlives it by much in memory either."""
        with self._lock:
            self._next_sweep = now + self.layers.config.local_ttl / 4
            for key in [k for k, (_, _, _, expires) in self._local.items() if expires <= now]:
                del self._local[key]

    def drop_local(self, scopes: Iterable[Scope] | None) -> None:
        """Forget this process's entries of ``scopes`` (None: of every scope)."""
        with self._lock:
            if scopes is None:
                self._local.clear()
                return
            gone = set(scopes)
            for key in [k for k in self._local if k[0] in gone]:
                del self._local[key]

    def drop_user(self, org_id: str, user_id: str) -> None:
        """Forget this process's entries of every scope of a user."""
        with self._lock:
            for key in [k for k in self._local if k[0].org_id == org_id and k[0].user_id == user_id]:
                del self._local[key]

    def __len__(self) -> int:
        return len(self._local)
