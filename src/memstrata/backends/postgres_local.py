"""The PostgreSQL store's in-process exact kNN: SQLite's vector index (backends.vector_index), kept as a cache of
the database that several processes write.

A scope of at most ``max_rows`` vectors is searched in this process, on a NumPy matrix of its vectors, instead
of by a pgvector scan on the server. The version of a scope is the ``xmin`` of its ``scope_counts`` row (the
transaction that last wrote it): every write, purge and delete of a scope, from any process, updates or removes
that row in the transaction that changes the scope's vectors. So:

- a matrix is loaded together with that version, in one statement (one snapshot);
- a search ranks on the matrix it holds, then reads its hits' memory ids (and sentence vectors) by row id in
  one statement that also reads the version; if the version moved, another process wrote since the load, and
  the search runs again on a fresh load. The answer is always the exact ranking of the database as one
  statement saw it, and costs one round trip while nothing changed;
- a write through this store patches the matrix in place: its transaction reads the version it replaces and
  the version it leaves, and a matrix at any other version is dropped instead;
- a scope that other processes keep writing is left to pgvector for a while rather than loaded for every search.

Larger scopes, the explicit ``strategy`` "exact" / "hnsw", and stores reading from standbys keep to pgvector
(backends.postgres_knn).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from memstrata.backends.memory_vectors import unit_rows
from memstrata.backends.postgres_knn import Knn, rids_of
from memstrata.backends.vector_index import ANY, VectorIndex

if TYPE_CHECKING:
    import psycopg

# Up to this many vectors a scope is searched in process (10,000 vectors of 384 dimensions are 15 MB).
LOCAL_MAX_ROWS = 50_000
_PACK_LIMIT = 512 * 1024**2  # a scope is read as one bytea value, which PostgreSQL caps at 1 GB
_ATTEMPTS = 3  # loads in one search while other processes keep writing the scope, before pgvector answers
# A load costs about as much as 20 pgvector scans of the scope (bench: 50-140 ms against 3-8 ms for 10,000 vectors
# of 384 dimensions). A matrix that another process's write made stale before it answered this many searches is
# not loaded again at once: the scope's next searches go to pgvector, twice as many each time it happens again.
_REUSE = 16
_MAX_SKIP = 1024

# One row per scope: its version and vector count, and (within the bound) every vector as rid, active flag and
# pgvector's binary form, packed into one value so the three cannot come apart.
_LOAD = (
    "SELECT p.xmin::text, p.vectors, v.packed FROM (SELECT 1) AS one"
    " LEFT JOIN scope_counts p ON p.scope_key = %(key)s"
    " LEFT JOIN LATERAL (SELECT string_agg(int8send(memory_rid) || boolsend(active) || vector_send(embedding),"
    " ''::bytea) AS packed FROM memory_vectors WHERE scope_key = %(key)s AND p.vectors <= %(max)s) AS v ON true"
)
# The version, the vector count and the hits' memory ids (and sentence vectors) by row id: one snapshot.
_CHECK = (
    "SELECT p.xmin::text, p.vectors, h.rid, h.id{col} FROM (SELECT 1) AS one"
    " LEFT JOIN scope_counts p ON p.scope_key = %(key)s"
    " LEFT JOIN (SELECT r.rid, (SELECT m.id FROM memories m WHERE m.scope_key = %(key)s AND m.rid = r.rid) AS id{sub}"
    " FROM unnest(%(rids)b::bigint[]) AS r(rid)) AS h ON true"
)
_SENTENCES = ", (SELECT s.vectors FROM memory_sentences s WHERE s.memory_rid = r.rid) AS sent"


class _TooLarge(Exception):
    """The scope outgrew the bound: pgvector answers."""


@dataclass
class ScopeChanges:
    """What one committed write did to a scope's vectors, and the versions before and after it."""

    old: object = None
    new: object = None
    added: list[tuple[int, np.ndarray]] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)
    deactivate: list[int] = field(default_factory=list)
    activate: list[int] = field(default_factory=list)

    def flag(self, rid: int, active: bool) -> None:
        """The memory's vectors are (in)active after the write: the last flag of a memory wins."""
        undone, done = (self.deactivate, self.activate) if active else (self.activate, self.deactivate)
        if rid in undone:
            undone.remove(rid)
        done.append(rid)

    def clear(self) -> None:
        self.old = self.new = None
        for part in (self.added, self.removed, self.deactivate, self.activate):
            part.clear()


@dataclass
class _Use:
    answered: int = 0  # searches the scope's matrix answered since it was loaded
    skip: int = 0  # searches left that go to pgvector before the scope is loaded again
    backoff: int = 0  # the length of the next such run


class LocalKnn:
    """Exact cosine kNN over cached scope matrices, checked against the database on every search."""

    def __init__(self, dim: int, max_bytes: int, max_rows: int) -> None:
        self.dim = dim
        self.index = VectorIndex(dim, max_bytes)
        # The packed row: rid, active flag, then vector_send (2-byte dimension, 2 unused bytes, float4s).
        self._row = np.dtype([("rid", ">i8"), ("active", "u1"), ("head", ">i4"), ("vector", ">f4", (dim,))])
        self.max_rows = max(0, min(max_rows, _PACK_LIMIT // self._row.itemsize))
        self._use: dict[str, _Use] = {}
        self._use_lock = threading.Lock()

    def answers(self, conn: psycopg.Connection, knn: Knn, key: str, *, searching: bool = False) -> bool:
        """Whether a search of this scope runs here (its size as ``knn`` caches it, for a scope not held);
        ``searching``: for a search, which counts down the searches left to pgvector after a wasted load."""
        with self._use_lock:
            use = self._use.get(key)
            if use is not None and use.skip > 0:
                if searching:
                    use.skip -= 1
                return False
        return self.index.holds(key) or knn.scope_size(conn, key) <= self.max_rows

    def _count(self, key: str, *, loaded: bool = False) -> None:
        with self._use_lock:
            if len(self._use) > 100_000:
                self._use.clear()
            use = self._use.setdefault(key, _Use())
            use.answered = 0 if loaded else use.answered + 1

    def _reload_pays(self, key: str) -> bool:
        """After another process's write: load the scope again now, or leave the next searches to pgvector."""
        with self._use_lock:
            use = self._use.setdefault(key, _Use())
            if use.answered >= _REUSE:
                use.backoff = 0
                return True
            use.backoff = min(_MAX_SKIP, max(_REUSE, use.backoff * 2))
            use.skip = use.backoff
            return False

    def _load(self, conn: psycopg.Connection, key: str) -> tuple[object, np.ndarray, np.ndarray, np.ndarray]:
        row = conn.cursor(binary=True).execute(_LOAD, {"key": key, "max": self.max_rows}).fetchone()
        version, size, packed = row if row is not None else (None, 0, None)
        if size is not None and size > self.max_rows:
            raise _TooLarge
        rows = np.frombuffer(packed or b"", dtype=self._row)
        if np.any(rows["head"] >> 16 != self.dim):
            raise _TooLarge  # vectors of another size: leave them to pgvector, which reports it
        matrix = unit_rows(rows["vector"].astype(np.float32))
        self._count(key, loaded=True)
        return version, matrix, rows["rid"].astype(np.int64), rows["active"].astype(bool)

    def search(
        self, conn: psycopg.Connection, key: str, vector: np.ndarray, k: int, include_superseded: bool,
        only_rids: list[int] | None, sentences: bool,
    ) -> tuple[list[tuple[str, float]], dict[str, bytes]] | None:
        """The top k (and the hits' packed sentence vectors with ``sentences``); None where pgvector must answer."""
        query = unit_rows(np.asarray(vector, dtype=np.float32).reshape(1, -1))[0]
        only = None if only_rids is None else set(only_rids)
        statement = _CHECK.format(col=", h.sent" if sentences else "", sub=_SENTENCES if sentences else "")
        want: object = ANY
        for _ in range(_ATTEMPTS):
            try:
                used, top = self.index.query(key, want, lambda: self._load(conn, key), query, k,
                                             include_inactive=include_superseded, only=only)
            except _TooLarge:
                self.index.drop(key)
                return None
            rows = conn.cursor(binary=True).execute(
                statement, {"key": key, "rids": [rid for rid, _ in top]}).fetchall()
            version, size = rows[0][0], rows[0][1]
            if size is not None and size > self.max_rows:
                self.index.drop(key)  # grown past the bound (by this process's writes): pgvector from now on
                if version != used:
                    return None
            if version == used:
                self._count(key)
                return _answer(top, rows, sentences)
            if not self._reload_pays(key):
                self.index.drop(key)
                return None
            want = version
        return None

    def patch(self, key: str, changes: ScopeChanges) -> None:
        """This store's committed write (``changes``): applied to the scope's matrix if it holds the version the
        write replaced, else the matrix is dropped."""
        added = [(rid, unit_rows(np.atleast_2d(np.asarray(m, dtype=np.float32)))) for rid, m in changes.added]
        self.index.patch(key, changes.old, changes.new, add=added, remove=changes.removed,
                         deactivate=changes.deactivate, activate=changes.activate)

    def drop(self, key: str | None) -> None:
        self.index.drop(key)
        with self._use_lock:
            if key is None:
                self._use.clear()
            else:
                self._use.pop(key, None)


def _answer(
    top: list[tuple[int, float]], rows: Sequence[Any], sentences: bool
) -> tuple[list[tuple[str, float]], dict[str, bytes]]:
    ids = {r[2]: r[3] for r in rows if r[3] is not None}
    blobs = {r[3]: r[4] for r in rows if sentences and r[3] is not None and r[4] is not None}
    return [(ids[rid], score) for rid, score in top if rid in ids], blobs


def vector_search(
    conn: psycopg.Connection, knn: Knn, local: LocalKnn | None, key: str, vector: np.ndarray, k: int,
    include_superseded: bool, only: Sequence[str] | None, strategy: str, sentences: bool,
) -> tuple[list[tuple[str, float]], dict[str, bytes] | None]:
    """A scope's kNN on one connection: in process where ``local`` answers ("auto" only), else on pgvector.
    The sentence vectors come back packed, or None where they were not read (the caller reads them)."""
    only_rids = None
    if only is not None:
        only_rids = rids_of(conn, key, only)
        if not only_rids:
            return [], {}
    if local is not None and strategy == "auto" and local.answers(conn, knn, key, searching=True):
        found = local.search(conn, key, vector, k, include_superseded, only_rids, sentences)
        if found is not None:
            return found
    return knn.search_with_sentences(conn, key, vector, k, include_superseded, only_rids, strategy, sentences)


def knn_path(conn: psycopg.Connection, knn: Knn, local: LocalKnn | None, key: str, k: int) -> str:
    """Which kNN path a search of this scope for ``k`` neighbours takes now: "local", "exact" or "hnsw"."""
    if local is not None and local.answers(conn, knn, key):
        return "local"
    return knn.path(conn, key, k)
