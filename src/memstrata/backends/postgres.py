"""The production store: PostgreSQL (JSONB, tsvector, monthly episode partitions) with pgvector for kNN.

Same semantics as the SQLite store, statement for statement — the shared statements live in
memstrata.backends.sql — so every query carries the scope key, each ``apply`` is one transaction, and
superseded memories drop out of search unless asked for. What is PostgreSQL's own is here: full text on
tsvector with BM25 computed in SQL, episode partitions, the per-scope ``scope_counts`` row that
serialises a scope's writes, versions it and feeds kNN and BM25, COPY for vectors. The pool is in
postgres_pool, a write batch in postgres_write, kNN in postgres_local (in process, for scopes up to a bound)
and postgres_knn (pgvector).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, TypeVar

import numpy as np

from memstrata.errors import BackendError, ConfigurationError

try:
    import psycopg
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ConfigurationError(
        "postgres store: the driver is not installed; pip install 'memstrata[postgres]' (psycopg[binary], psycopg-pool)"
    ) from exc

from memstrata.backends import postgres_schema as schema
from memstrata.backends.postgres_keyword import keyword_statement, keywords_meanwhile
from memstrata.backends.postgres_knn import EXACT_MAX_ROWS, Knn, vector_literal
from memstrata.backends.postgres_local import LOCAL_MAX_ROWS, LocalKnn, ScopeChanges, knn_path
from memstrata.backends.postgres_local import vector_search as knn_search
from memstrata.backends.postgres_locks import AdvisoryLocks
from memstrata.backends.postgres_pool import Pool, direct, masked
from memstrata.backends.postgres_privacy import PostgresPrivacy
from memstrata.backends.postgres_replica import ReplicaOptions, ReplicaRouter, route_calls, split_url
from memstrata.backends.postgres_write import fts_source, write_batch
from memstrata.backends.sql.dialect import PostgresDialect
from memstrata.backends.sql.keys import SQLKeys
from memstrata.backends.sql.rows import EPISODE_INSERT, episode_columns, marks, memory_columns
from memstrata.backends.sql.store import SQLStore, unpack_sentences
from memstrata.models import EpisodeRecord, MemoryRecord, Scope
from memstrata.tiers.base import Capability, Codec, WriteBatch

__all__ = ["EXACT_MAX_ROWS", "PostgresStore", "masked", "migrate", "schema_status", "vector_literal"]

T = TypeVar("T")
_D = PostgresDialect()
BULK_ROWS = 1000  # a batch of this many new memories may be a bulk load: see _analyze_if_unknown


def _vector(sent: bytes) -> np.ndarray:
    """pgvector's binary form (``vector_send``): a 2-byte dimension, 2 unused bytes, then big-endian float4s."""
    return np.frombuffer(sent, dtype=">f4", offset=4).astype(np.float32)


@route_calls
class PostgresStore(SQLKeys, PostgresPrivacy, SQLStore):
    """The durable tiers on PostgreSQL ≥ 13 with pgvector ≥ 0.5 (``postgresql://user:pw@host/db``).

    ``replicas`` (or ``?replica=postgresql://…`` in the URL, percent-encoded) names streaming standbys that
    serve reads; ``replica_max_lag`` (seconds), ``replica_max_lag_bytes`` and ``replica_retry`` (seconds)
    bound their use (memstrata.backends.postgres_replica). ``parallel_reads`` lets a search run its kNN and
    keyword statements at once on two connections (``Capability.PARALLEL_READS``): worth it where the server
    has cores of its own; on a machine whose cores the application and the server already fill, it was slower
    (bench/RESULTS.md, pg-parity), so it is off unless asked for.

    A scope of at most ``vector_cache_rows`` vectors is searched in this process on a cached matrix, checked
    against the database on every search (memstrata.backends.postgres_local), within ``vector_cache_bytes``
    of memory; either set to 0 turns it off, and it is off with ``replicas``. Larger scopes are searched by
    pgvector: exactly up to ``exact_max_rows`` vectors, else through HNSW where that pays.
    """

    d = _D
    scope_table = "scope_counts"
    capabilities = frozenset({Capability.PRIVACY, Capability.KEYS, Capability.SCOPE_LISTING, Capability.SCOPE_LOCK})

    def __init__(
        self,
        url: str,
        *,
        dim: int,
        codec: Codec | None = None,
        pool_min: int = 1,
        pool_max: int = 8,
        connect_timeout: float = 5.0,
        pool_timeout: float = 5.0,
        exact_max_rows: int = EXACT_MAX_ROWS,
        ef_search: int = 200,
        application_name: str = "memstrata",
        replicas: Sequence[str] = (),
        replica_max_lag: float | None = None,
        replica_max_lag_bytes: int | None = None,
        replica_retry: float | None = None,
        parallel_reads: bool = False,
        vector_cache_rows: int = LOCAL_MAX_ROWS,
        vector_cache_bytes: int = 2 * 1024**3,
    ) -> None:
        url, from_url = split_url(url)
        given = {"max_lag_seconds": replica_max_lag, "max_lag_bytes": replica_max_lag_bytes,
                 "retry_seconds": replica_retry}
        from_url.update({k: v for k, v in given.items() if v is not None})
        from_url["replicas"] = (*from_url.get("replicas", ()), *replicas)
        replica_options = ReplicaOptions(**from_url)
        self.url = url
        self.dim = dim
        self._init_sql(codec)
        self._fts_config = "simple" if self.codec.encrypts else "english"
        self._lock = threading.Lock()
        self._statistics_checked = False
        self._parallel_reads = parallel_reads
        # Migrate on a direct connection first: an unreachable server fails here at once, with libpq's reason.
        self._partitions, version, has_hnsw = direct(url, connect_timeout, "open", lambda conn: _prepare(conn, dim))
        self.knn = Knn(exact_max_rows=exact_max_rows, ef_search=ef_search, has_hnsw=has_hnsw,
                       iterative_scan=version >= schema.ITERATIVE_SCAN_PGVECTOR)
        pool_args: dict[str, Any] = {"pool_min": pool_min, "pool_max": pool_max, "connect_timeout": connect_timeout,
                                     "pool_timeout": pool_timeout, "application_name": application_name}
        self.pool = Pool(url, **pool_args)
        self.router = ReplicaRouter(self.pool, replica_options, pool_args) if replica_options.replicas else None
        # Not behind standbys: a search could check a matrix against one standby and the next load another.
        cached = vector_cache_rows > 0 and vector_cache_bytes > 0 and self.router is None
        self.local = LocalKnn(dim, vector_cache_bytes, vector_cache_rows) if cached else None
        # Write sections: an advisory lock per scope, on connections of their own (postgres_locks).
        self.locks = AdvisoryLocks(url, max_size=max(pool_max, 16), connect_timeout=connect_timeout,
                                   pool_timeout=max(pool_timeout, 30.0), application_name=application_name)

    def supports(self, capability: Capability | str) -> bool:
        if Capability(capability) is Capability.PARALLEL_READS:
            return self._parallel_reads
        return super().supports(capability)

    def _other_processes(self, scope: Scope) -> AbstractContextManager[object]:
        return self.locks.hold(scope.key)

    def _run(self, fn: Callable[[Any], T], what: str, *, write: bool = False) -> T:
        if self.router is not None:
            # A write section decides what to write from its reads: they must see the latest commit.
            return self.router.run(fn, what, write=write, primary=self.in_write_section())
        return self.pool.run(fn, what, write=write)

    def read_counts(self) -> dict[str, dict[str, int]]:
        """Reads served by the standbys and by the primary (with why), since the store opened."""
        return self.router.read_counts() if self.router is not None else {"replica": {}, "primary": {}}

    def close(self) -> None:
        if self.router is not None:
            self.router.close()
        self.locks.close()
        self.pool.close()
        if self.local is not None:
            self.local.drop(None)

    def change_marker(self, scope: Scope) -> object | None:
        """None while reads may go to a standby: what a search reads there can be older than the primary's
        probe, and the read cache must not keep it under that probe."""
        return None if self.router is not None else super().change_marker(scope)

    def _scope_probe(self, conn: psycopg.Connection, scope: Scope) -> object:
        """The transaction id that last wrote the scope's counter row: every batch and purge updates it."""
        row = conn.execute("SELECT xmin::text FROM scope_counts WHERE scope_key = %s", (scope.key,)).fetchone()
        return None if row is None else row[0]

    # -- episodic ----------------------------------------------------------------------------------

    def add_episodes(self, episodes: Sequence[EpisodeRecord]) -> None:
        if not episodes:
            return
        months = {schema.month_of(e.occurred_at) for e in episodes}
        missing = {m for m in months if schema.placeable(*m) and schema.partition_name(*m) not in self._partitions}
        if missing:
            made = self._run(lambda conn: schema.ensure_partitions(conn, missing), "create episode partitions")
            with self._lock:
                self._partitions |= made
        rows = [(*self.rows.episode_insert(e), self._fts_config, fts_source(self.codec, e.scope, e.content))
                for e in episodes]
        statement = _D.q(f"INSERT INTO episodes ({EPISODE_INSERT}, fts) VALUES ({marks(_D, EPISODE_INSERT)},"
                         " to_tsvector(?::regconfig, ?))")
        self._run(lambda conn: conn.cursor().executemany(statement, rows), "add episodes", write=True)

    def search_episodes(
        self, scope: Scope, terms: Sequence[str] | str, limit: int = 20
    ) -> list[tuple[EpisodeRecord, float]]:
        words = self._terms(scope, terms)
        if not words:
            return []
        # query_terms yields letters and digits only, so quoting each word cannot break the syntax.
        tsq = " | ".join(f"'{w}'" for w in words)
        rows = self._run(
            lambda conn: conn.execute(
                f"SELECT {episode_columns(_D)}, ts_rank_cd(e.fts, q) AS s"
                " FROM episodes e, to_tsquery(%s::regconfig, %s) q"
                " WHERE e.scope_key = %s AND e.fts @@ q ORDER BY s DESC, e.occurred_at, e.id LIMIT %s",
                (self._fts_config, tsq, scope.key, limit),
            ).fetchall(),
            "search episodes",
        )
        return [(self.rows.episode(r[:-1]), float(r[-1])) for r in rows]

    # -- long-term: pgvector kNN and BM25 on tsvector -----------------------------------------------

    def vector_search(
        self, scope: Scope, vector: np.ndarray, k: int, *, include_superseded: bool = False,
        only: Sequence[str] | None = None, strategy: str = "auto",
    ) -> list[tuple[str, float]]:
        """Top-k memory ids by cosine similarity. ``strategy``: "auto", or pgvector's "exact" or "hnsw" (tests,
        benchmarks)."""
        if strategy not in ("auto", "exact", "hnsw"):
            raise ValueError(f"strategy must be 'auto', 'exact' or 'hnsw', got {strategy!r}")
        if k <= 0 or (only is not None and not only):
            return []
        return self._run(
            lambda conn: knn_search(conn, self.knn, self.local, scope.key, vector, k, include_superseded, only,
                                    strategy, False)[0],
            "vector search",
        )

    def vector_search_and_sentences(
        self, scope: Scope, vector: np.ndarray, k: int, *, include_superseded: bool = False,
        only: Sequence[str] | None = None,
    ) -> tuple[list[tuple[str, float]], dict[str, np.ndarray]]:
        """The in-process and the exact kNN read the hits' sentence vectors in their own statement; the HNSW path
        reads them after."""
        if k <= 0 or (only is not None and not only):
            return [], {}
        hits, blobs = self._run(
            lambda conn: knn_search(conn, self.knn, self.local, scope.key, vector, k, include_superseded, only,
                                    "auto", True),
            "vector search",
        )
        if blobs is None:
            return hits, self.sentence_vectors(scope, [m for m, _ in hits]) if hits else {}
        return hits, {m: unpack_sentences(b, self.dim) for m, b in blobs.items()}

    def knn_path(self, scope: Scope, k: int = 100) -> str:
        """Which kNN path a search of this scope for ``k`` neighbours takes now: "local" (in this process),
        "exact" or "hnsw" (pgvector)."""
        return self._run(lambda conn: knn_path(conn, self.knn, self.local, scope.key, k), "kNN path")

    def scope_vectors(self, scope: Scope) -> int:
        """Vectors (chunks, superseded included) held for a scope: what picks the kNN path."""
        return self._run(lambda conn: self.knn.scope_rows(conn, scope.key), "count vectors")

    def explain_vector_search(self, scope: Scope, vector: np.ndarray, k: int = 10) -> str:
        """The query plan of the HNSW path for this scope (operators use it to check the index is taken)."""
        return self._run(lambda conn: self.knn.explain(conn, scope.key, vector, k), "explain")

    def keyword_search(
        self, scope: Scope, terms: Sequence[str], k: int, *, include_superseded: bool = False,
        only: Sequence[str] | None = None,
    ) -> list[tuple[str, float]]:
        """BM25 over the scope, in SQL (memstrata.backends.postgres_keyword)."""
        words = self._terms(scope, terms)
        if not words or k <= 0 or (only is not None and not only):
            return []
        text, args = keyword_statement(words, self._fts_config, scope.key, k, include_superseded, only)
        rows = self._run(lambda conn: conn.execute(text, args, prepare=False).fetchall(), "keyword search")
        return [(r[0], float(r[1])) for r in rows]

    def search_candidates(
        self, scope: Scope, vector: Callable[[], np.ndarray], dense_k: int, terms: Sequence[str], keyword_k: int,
        *, include_superseded: bool = False, only: Sequence[str] | None = None, sentences: bool = True,
    ) -> tuple[list[tuple[str, float]], dict[str, np.ndarray] | None, list[tuple[str, float]]]:
        """The keyword statement goes first, in pipeline mode: the server runs it while this process makes the
        query vector (the embedding) and ranks the kNN, whose statement follows on the same connection. The
        vector is made first while other calls queue for the pool's connections; behind standbys, as the
        default does."""
        words = self._terms(scope, terms)
        if self.router is not None or not words or keyword_k <= 0 or dense_k <= 0 or (only is not None and not only):
            return super().search_candidates(scope, vector, dense_k, words, keyword_k,
                                             include_superseded=include_superseded, only=only, sentences=sentences)
        text, args = keyword_statement(words, self._fts_config, scope.key, keyword_k, include_superseded, only)
        if not self.pool.spare():  # searches queue for connections: none waits on an embedding meanwhile
            made = vector()
            vector = lambda: made  # noqa: E731

        def run(conn: psycopg.Connection) -> tuple[list[tuple[str, float]], tuple[Any, Any]]:
            return keywords_meanwhile(conn, text, args, lambda: knn_search(
                conn, self.knn, self.local, scope.key, vector(), dense_k, include_superseded, only, "auto", sentences))

        keyword, (dense, blobs) = self._run(run, "search candidates")
        if not sentences:
            return dense, None, keyword
        if blobs is None:  # the HNSW path reads them after
            return dense, self.sentence_vectors(scope, [m for m, _ in dense]) if dense else {}, keyword
        return dense, {m: unpack_sentences(b, self.dim) for m, b in blobs.items()}, keyword

    def vectors(self, scope: Scope, ids: Sequence[str]) -> dict[str, np.ndarray]:
        if not ids:
            return {}
        # vector_send read straight into an array is half the time of a real[] decoded into Python floats.
        rows = self._run(
            lambda conn: conn.cursor(binary=True).execute(
                "SELECT m.id, vector_send(v.embedding) FROM memories m JOIN memory_vectors v ON v.memory_rid = m.rid"
                " WHERE m.scope_key = %s AND m.id = ANY(%s) AND v.chunk = 0",
                (scope.key, list(ids)),
            ).fetchall(),
            "get vectors",
        )
        return {r[0]: _vector(r[1]) for r in rows}

    def memories_and_vectors(
        self, scope: Scope, ids: Sequence[str]
    ) -> tuple[list[MemoryRecord], dict[str, np.ndarray]]:
        """The records and first-chunk vectors of ``ids`` in one statement (a search reads both for its head)."""
        if not ids:
            return [], {}
        # Each id by the id index: with ``scope_key = ? AND id = ANY(?)`` the planner may walk the scope's index
        # instead (a skip scan of memories_scope_created, 3 ms against 1 for 60 ids here). In binary: the ids go
        # without quoting and the vectors come as their bytes rather than as hex text.
        statement = (f"SELECT m.*, (SELECT vector_send(v.embedding) FROM memory_vectors v"
                     " WHERE v.memory_rid = m.rid AND v.chunk = 0) FROM unnest(%b::text[]) AS u(id),"
                     f" LATERAL (SELECT {memory_columns(_D)} FROM memories"
                     " WHERE memories.id = u.id AND memories.scope_key = %s) AS m")
        rows = self._run(lambda conn: conn.cursor(binary=True).execute(statement, (list(ids), scope.key)).fetchall(),
                         "get memories and vectors")
        by_id = {r[1]: self.rows.memory(r[:-1]) for r in rows}
        vectors = {r[1]: _vector(r[-1]) for r in rows if r[-1] is not None}
        return [by_id[i] for i in ids if i in by_id], vectors

    # -- writes ------------------------------------------------------------------------------------

    def _write_batch(self, scope: Scope, batch: WriteBatch) -> None:
        assigned: list[tuple[MemoryRecord, int]] = []
        changes = ScopeChanges()
        # A scope's first sealed write creates its data key, on a connection of its own: before the
        # batch's transaction holds one, so a pool of one connection cannot deadlock on it.
        self.codec.prepare(scope)
        try:
            self._run(lambda conn: write_batch(self, conn, scope, batch, assigned, changes), "apply", write=True)
        finally:
            self.knn.forget(scope.key)
        if self.local is not None:
            self.local.patch(scope.key, changes)
        for rec, rid in assigned:  # only once committed: a retried transaction draws new rids
            rec.rid = rid
        if len(batch.new_memories) >= BULK_ROWS and not self._statistics_checked:
            self._analyze_if_unknown()

    def _analyze_if_unknown(self) -> None:
        """After a bulk write into tables the planner has no statistics for yet (a fresh store being loaded):
        gather them now. Until autovacuum does, about a minute later, the planner guesses that a scope is a
        sliver of the table and a search reads the whole scope through its index (bench/RESULTS.md,
        pg-parity). Once per store object; statistics only speed reads up, so a failure here fails nothing."""
        self._statistics_checked = True

        def run(conn: psycopg.Connection) -> None:
            row = conn.execute("SELECT bool_or(reltuples < 0) FROM pg_class"
                               " WHERE oid IN ('memories'::regclass, 'memory_vectors'::regclass)").fetchone()
            if row is not None and row[0]:
                conn.execute("ANALYZE memories, memory_vectors, memory_sentences")

        try:
            self._run(run, "analyze", write=True)
        except BackendError:
            pass

    def _scope_gone(self, key: str | None) -> None:
        self.knn.forget(key)
        if self.local is not None:
            self.local.drop(key)

    def stats(self, scope: Scope | None = None) -> dict[str, Any]:
        def read(conn: psycopg.Connection) -> dict[str, Any]:
            out: dict[str, Any] = {"backend": "postgresql", "url": masked(self.url), **self._table_counts(conn, scope)}
            if scope is None:
                row = conn.execute("SELECT count(*) FROM scope_counts").fetchone()
                out["scopes"] = int(row[0]) if row else 0
                out["episode_partitions"] = len(schema.existing_partitions(conn))
                row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
                out["database_bytes"] = int(row[0]) if row else 0
            else:
                out["vectors"] = self.knn.scope_rows(conn, scope.key)
                out["vector_search"] = knn_path(conn, self.knn, self.local, scope.key, 100)  # balanced k
            return out

        out = self._run(read, "stats")
        if self.local is not None:
            out["vector_cache_bytes"] = self.local.index.resident_bytes
        if self.router is not None:
            out["replicas"] = self.router.describe()
        return out

    def __repr__(self) -> str:
        return f"PostgresStore({masked(self.url)!r}, dim={self.dim})"


def _prepare(conn: psycopg.Connection, dim: int) -> tuple[set[str], tuple[int, ...], bool]:
    schema.migrate(conn)
    version = schema.ensure_pgvector(conn)
    has_hnsw = schema.bind_dimension(conn, dim)
    return schema.existing_partitions(conn), version, has_hnsw


def migrate(url: str, *, dim: int | None = None, connect_timeout: float = 5.0) -> int:
    """Bring the database at ``url`` to the current schema (idempotent); fix the vector size if ``dim``."""

    def run(conn: psycopg.Connection) -> int:
        version = schema.migrate(conn)
        if dim is not None:
            schema.bind_dimension(conn, dim)
        return version

    return direct(url, connect_timeout, "migration", run)


def schema_status(url: str, *, connect_timeout: float = 5.0) -> int:
    """The schema version of the database at ``url`` (0: never migrated)."""
    return direct(url, connect_timeout, "reading the schema version", schema.schema_version)
