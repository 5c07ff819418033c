"""The layered read cache: in process, then a shared cache (Redis), then the database or the embedder.

Two kinds of things are cached:

- ``query_vector``: the embedding of a query text. A pure function of the embedder and the text, so it is
  never stale: an LRU in the process, then Redis under a digest of the embedder's name and the text, then the
  embedder (through whatever ``embed`` callable it is given, a micro-batcher for one).
- ``scope``: the expensive, query-independent or per-query pieces a search reads from the database (see
  ``retrieve.scope_cache``). Every write to a scope bumps the scope's version in Redis, and an entry is only
  served under the version it was computed with, so every process sees a write on its next read.

A cache never fails a call. When Redis cannot be reached, query vectors come from the embedder and scope
entries are not used at all (the process cannot know whether another one wrote), then Redis is tried again
after ``RETRY_SECONDS``. An invalidation that could not reach Redis is kept and delivered first thing
once Redis answers (also by a timer, so an idle process does not hold it back); until then this process
reads nothing from the scope cache, and a process that saw Redis fail trusts scope entries again only
``SCOPE_GRACE_SECONDS`` after it answers (longer than a writer's retry). Behind all of this, every scope entry
also carries the store's change marker of its scope (``retrieve.scope_cache``), so a write whose bump never
reached Redis is seen all the same.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from memstrata.config import CacheLayers
from memstrata.errors import MemstrataError
from memstrata.models import Scope
from memstrata.retrieve.usage import QueryVectors
from memstrata.tiers.cache import SharedCache

log = logging.getLogger(__name__)
RETRY_SECONDS = 2.0
# After this process saw Redis fail, scope entries wait this long after it answers again: long enough for a
# process that owes an invalidation from the same outage to deliver it (it retries every RETRY_SECONDS).
SCOPE_GRACE_SECONDS = 3 * RETRY_SECONDS
KINDS = ("query_vector", "scope")
LAYERS = ("process", "redis")


class LayerStats:
    """Lookups per kind, layer and outcome (``hit``/``miss``), and lookups that bypassed the shared layer."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str, str]] = Counter()
        self._lock = threading.Lock()

    def note(self, kind: str, layer: str, outcome: str, n: int = 1) -> None:
        if n:
            with self._lock:
                self._counts[(kind, layer, outcome)] += n

    def snapshot(self) -> dict[str, dict[str, dict[str, int]]]:
        """``{kind: {layer: {"hit": n, "miss": n, "bypass": n}}}`` for every kind and layer."""
        with self._lock:
            counts = dict(self._counts)
        return {kind: {layer: {outcome: counts.get((kind, layer, outcome), 0) for outcome in ("hit", "miss", "bypass")}
                       for layer in LAYERS} for kind in KINDS}


class SharedVectors:
    """``embed(list[str]) -> np.ndarray`` that looks in the shared cache before calling ``inner`` for what it
    lacks, and stores what ``inner`` computed."""

    def __init__(self, layers: ReadCache, inner: Callable[[list[str]], np.ndarray]) -> None:
        self.layers = layers
        self.inner = inner
        self._prefix = hashlib.sha256(layers.embedder_name.encode()).hexdigest()[:16]

    def key(self, text: str) -> str:
        return f"{self._prefix}:{hashlib.sha256(text.encode()).hexdigest()}"

    def __call__(self, texts: list[str]) -> np.ndarray:
        stats = self.layers.stats
        shared = self.layers.shared_now()
        if shared is None or not texts:
            stats.note("query_vector", "redis", "bypass", len(texts))
            return self.inner(texts)
        keys = [self.key(t) for t in texts]
        try:
            found = shared.get_vectors(keys)
        except MemstrataError as exc:
            self.layers.went_down(exc)
            stats.note("query_vector", "redis", "bypass", len(texts))
            return self.inner(texts)
        missing = [i for i, raw in enumerate(found) if raw is None]
        stats.note("query_vector", "redis", "hit", len(texts) - len(missing))
        stats.note("query_vector", "redis", "miss", len(missing))
        computed = np.asarray(self.inner([texts[i] for i in missing]), dtype=np.float32) if missing else None
        rows: list[np.ndarray] = []
        fresh: dict[str, bytes] = {}
        at = 0
        for i, raw in enumerate(found):
            if raw is not None:
                rows.append(np.frombuffer(raw, dtype=np.float32))
            else:
                assert computed is not None
                vec = computed[at]
                at += 1
                rows.append(vec)
                fresh[keys[i]] = vec.tobytes()
        if fresh:
            try:
                shared.put_vectors(fresh, self.layers.config.query_ttl)
            except MemstrataError as exc:
                self.layers.went_down(exc)
        dims = {r.shape[0] for r in rows}
        if len(dims) != 1:  # a vector of another dimension under this embedder's name: not ours, recompute
            return np.asarray(self.inner(texts), dtype=np.float32)
        return np.stack(rows)


class ReadCache:
    """The layers of one memory: build it with ``open_read_cache``. ``shared`` is None without Redis."""

    def __init__(self, config: CacheLayers, shared: SharedCache | None, embedder_name: str) -> None:
        from memstrata.retrieve.scope_cache import ScopeCache

        self.config = config
        self.shared = shared
        self.embedder_name = embedder_name
        self.stats = LayerStats()
        self.scopes = ScopeCache(self) if shared is not None and config.scopes else None
        self._vectors: QueryVectors | None = None
        self._down_until = 0.0
        self._trust_after = 0.0
        self._down_since: float | None = None
        self._lock = threading.Lock()
        self._pending_bumps: set[Scope] = set()
        self._pending_erase: set[Scope] = set()
        self._pending_users: set[tuple[str, str]] = set()
        self._pending_reset = False
        self._pending_vectors = False
        self._timer: threading.Timer | None = None

    # -- the shared layer's health ---------------------------------------------------------------

    def shared_now(self) -> SharedCache | None:
        """The shared cache when it may be used now; invalidations that are still owed go first."""
        if self.shared is None or time.monotonic() < self._down_until:
            return None
        if self.owes() and not self._deliver():
            return None
        return self.shared

    def scopes_trusted(self) -> bool:
        """Whether scope entries may be served now (not right after an outage this process saw)."""
        return time.monotonic() >= self._trust_after

    def owes(self) -> bool:
        """Invalidations this process could not deliver yet (its own scope reads wait for them)."""
        return bool(self._pending_bumps or self._pending_erase or self._pending_users or self._pending_reset
                    or self._pending_vectors)

    def went_down(self, exc: Exception) -> None:
        with self._lock:
            self._down_until = time.monotonic() + RETRY_SECONDS
            self._trust_after = time.monotonic() + SCOPE_GRACE_SECONDS
            if self._down_since is None:
                self._down_since = time.monotonic()
                log.warning("layered cache: Redis is unreachable (%s); reading from the database until it returns",
                            exc)

    def _came_back(self) -> None:
        if self._down_since is not None:
            with self._lock:
                if self._down_since is not None:
                    log.warning("layered cache: Redis is back after %.0f s", time.monotonic() - self._down_since)
                    self._down_since = None

    def _deliver(self) -> bool:
        """Send the owed invalidations; False (and a retry scheduled) when Redis still cannot take them."""
        shared = self.shared
        assert shared is not None
        with self._lock:
            reset, erase, users, bumps, vectors = (self._pending_reset, list(self._pending_erase),
                                                   list(self._pending_users), list(self._pending_bumps),
                                                   self._pending_vectors)
        try:
            if reset:
                shared.bump_all()
            if erase:
                shared.erase(erase)
            for org_id, user_id in users:
                shared.erase_user(org_id, user_id)
            if bumps:
                shared.bump(bumps)
            if vectors:
                shared.drop_vectors()
        except MemstrataError as exc:
            self.went_down(exc)
            self._schedule_retry()
            return False
        with self._lock:
            self._pending_reset = self._pending_reset and not reset
            self._pending_erase.difference_update(erase)
            self._pending_users.difference_update(users)
            self._pending_bumps.difference_update(bumps)
            self._pending_vectors = self._pending_vectors and not vectors
        self._came_back()
        return True

    def _schedule_retry(self) -> None:
        with self._lock:
            if self._timer is not None and self._timer.is_alive():
                return
            self._timer = threading.Timer(RETRY_SECONDS, self._retry)
            self._timer.daemon = True
            self._timer.start()

    def _retry(self) -> None:
        with self._lock:
            self._timer = None
            self._down_until = 0.0
        if self.owes():
            self._deliver()

    # -- the query-vector layers -----------------------------------------------------------------

    def query_vectors(self, embed: Callable[[list[str]], np.ndarray]) -> QueryVectors:
        """The process LRU in front of the shared layer in front of ``embed`` (an embedder's ``embed``, or a
        batching callable around it)."""
        inner = SharedVectors(self, embed) if self.shared is not None and self.config.query_vectors else embed
        self._vectors = QueryVectors(inner, self.config.local_size,
                                     seen=lambda hit: self.stats.note("query_vector", "process",
                                                                      "hit" if hit else "miss"))
        return self._vectors

    # -- invalidation: every write, erasure and reset ----------------------------------------------

    def changed(self, scope: Scope) -> None:
        """A write to ``scope`` committed: every process's entries of the scope are stale from now."""
        self._invalidate(bumps=[scope])

    def erased(self, scopes: Sequence[Scope]) -> None:
        """The scopes' data is gone: their entries go too, here and in Redis (another process's copies are
        stale by the version and expire; ``forget`` drops them everywhere)."""
        if self.scopes is not None:
            self.scopes.drop_local(scopes)
        self._invalidate(erase=list(scopes))

    def forget(self, org_id: str, user_id: str, scopes: Sequence[Scope]) -> None:
        """A data subject is erased: ``erased`` for ``scopes`` and for every scope of the user that has an
        entry (also one the store never held data of), and every query vector, in this process and in Redis (a
        vector may embed what the user asked, and its key does not say whose it was)."""
        if self._vectors is not None:
            self._vectors.clear()
        if self.scopes is not None:
            self.scopes.drop_local(scopes)
            self.scopes.drop_user(org_id, user_id)
        self._invalidate(erase=list(scopes), users=[(org_id, user_id)], vectors=True)

    def reset(self) -> None:
        """Every scope's data is gone."""
        if self._vectors is not None:
            self._vectors.clear()
        if self.scopes is not None:
            self.scopes.drop_local(None)
        self._invalidate(reset=True)

    def _invalidate(self, *, bumps: Sequence[Scope] = (), erase: Sequence[Scope] = (),
                    users: Sequence[tuple[str, str]] = (), reset: bool = False, vectors: bool = False) -> None:
        if self.shared is None:
            return
        with self._lock:
            self._pending_bumps.update(bumps)
            self._pending_erase.update(erase)
            self._pending_users.update(users)
            self._pending_reset = self._pending_reset or reset
            self._pending_vectors = self._pending_vectors or vectors
        if time.monotonic() < self._down_until:
            self._schedule_retry()  # Redis was away a moment ago: do not make the write wait on it again
            return
        self._deliver()

    def snapshot(self) -> dict[str, Any]:
        """Lookups per kind and layer, and whether the shared layer is in use."""
        return {"layers": self.stats.snapshot(), "shared": self.shared is not None,
                "shared_down": self._down_since is not None, "owed_invalidations": self.owes()}

    def close(self) -> None:
        with self._lock:
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        if self.owes() and self.shared is not None:
            self._deliver()
        if self.shared is not None:
            self.shared.close()


def open_read_cache(layers: CacheLayers | str | None, embedder_name: str) -> ReadCache:
    """The read cache a ``Memory`` uses: ``layers`` is a ``CacheLayers``, a Redis URL (the defaults with it), or
    None (only the in-process query-vector LRU)."""
    config = CacheLayers(url=layers) if isinstance(layers, str) else layers or CacheLayers()
    shared: SharedCache | None = None
    if config.url is not None and (config.query_vectors or config.scopes):
        from memstrata.backends.redis_layers import layers_from_url

        shared = layers_from_url(config.url)
    return ReadCache(config, shared, embedder_name)
