"""The embedded default: one SQLite file in WAL mode holds episodes, memories, history and the graph.

One writer connection behind a lock, one reader connection per thread; WAL lets readers run while the
writer commits, and the busy timeout absorbs other processes' writes. Every statement carries the
scope key: no query here reads across scopes.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from memstrata.backends.scope_listing import scope_listing, scope_rows
from memstrata.backends.sealing import (
    conflict_columns,
    conflict_of,
    content_hash_of,
    open_graph,
    open_opt,
    seal_opt,
    slot_columns,
    slot_of,
)
from memstrata.backends.sqlite_keys import SQLiteKeysMixin
from memstrata.backends.sqlite_privacy import SQLitePrivacyMixin
from memstrata.backends.sqlite_schema import migrate
from memstrata.backends.vector_index import VectorIndex
from memstrata.core.text import query_terms
from memstrata.errors import BackendError, BackendUnavailableError, ConfigurationError, NotFoundError
from memstrata.models import (
    ConflictRecord,
    EntityRecord,
    EpisodeRecord,
    HistoryEvent,
    MemoryRecord,
    Scope,
)
from memstrata.tiers.base import Capability, Codec, Store, WriteBatch
from memstrata.tiers.privacy import GraphRows

_MEMORY_COLUMNS = (
    "rid, id, org_id, user_id, agent_id, run_id, conversation_id, text, content_hash, metadata, episode_ids, "
    "entities, kind, importance, confidence, confidence_reason, source_role, created_at, updated_at, valid_from, "
    "valid_to, expired_at, superseded_by, mention_count, last_seen_at, last_accessed_at, access_count, "
    "slot_subject, slot_attribute, slot_value"
)
_EPISODE_COLUMNS = (
    "id, org_id, user_id, agent_id, run_id, conversation_id, role, name, content, metadata, position, "
    "occurred_at, created_at, extraction_status, extraction_error"
)
# Columns a filter may name directly; anything else is a metadata key.
FILTER_COLUMNS = {
    "created_at",
    "updated_at",
    "valid_from",
    "valid_to",
    "conversation_id",
    "kind",
    "importance",
}
_OPS = {"eq": "=", "ne": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "in": "IN", "nin": "NOT IN"}


def fts_query(scope: Scope, text: str, *, max_terms: int = 32) -> str | None:
    """An FTS5 expression: the scope's token AND any of the query's words (each quoted, so no syntax leaks)."""
    words = query_terms(text, max_terms)
    if not words:
        return None
    terms = " OR ".join(f'"{w}"' for w in words)
    return f"scope_tok : {scope.token} AND ({terms})"


def _wrap(exc: sqlite3.Error, what: str) -> BackendError:
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and ("unable to open" in text or "disk I/O" in text):
        return BackendUnavailableError(f"sqlite store: {what}: {text}")
    return BackendError(f"sqlite store: {what}: {text}")


def _journal_wal(conn: sqlite3.Connection, timeout: float) -> None:
    """Switch to WAL. SQLite answers 'database is locked' at once, without its busy handler, while another
    process opening the same new file holds the lock, so wait here as long as a busy write would."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


class SQLiteStore(SQLiteKeysMixin, SQLitePrivacyMixin, Store):
    """The durable tiers on one SQLite file (or ``:memory:`` for throwaway use)."""

    capabilities = frozenset({Capability.PRIVACY, Capability.KEYS, Capability.SCOPE_LISTING})

    def __init__(
        self,
        path: str | Path,
        *,
        dim: int,
        synchronous: str = "NORMAL",
        busy_timeout_ms: int = 30000,
        vector_cache_bytes: int = 2 * 1024**3,
        codec: Codec | None = None,
    ) -> None:
        self.path = str(path)
        self.codec = codec or Codec()
        self._mem_name = uuid.uuid4().hex  # each :memory: store is its own database
        if self.path != ":memory:":
            try:
                Path(self.path).expanduser().parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigurationError(f"store: cannot create the folder for {self.path}: {exc}") from exc
            self.path = str(Path(self.path).expanduser())
        self.dim = dim
        self._sync = synchronous
        self._busy = busy_timeout_ms
        self._write_lock = threading.RLock()
        self._local = threading.local()
        self._all_conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._closed = False
        self.index = VectorIndex(dim, vector_cache_bytes)
        self._writer = self._connect()
        migrate(self._writer)
        self._check_dim()

    # -- connections -------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        try:
            uri = self.path == ":memory:"
            target = f"file:memstrata-{self._mem_name}?mode=memory&cache=shared" if uri else self.path
            conn = sqlite3.connect(
                target, timeout=self._busy / 1000, isolation_level=None, check_same_thread=False, uri=uri
            )
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy)}")
            if not uri:
                _journal_wal(conn, self._busy / 1000)
            conn.execute(f"PRAGMA synchronous = {self._sync}")
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            raise _wrap(exc, f"cannot open {self.path}") from exc
        with self._conns_lock:
            self._all_conns.append(conn)
        return conn

    def _reader(self) -> sqlite3.Connection:
        if self._closed:
            raise BackendUnavailableError("sqlite store: closed")
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        conn = self._reader()
        try:
            yield conn
        except sqlite3.Error as exc:
            raise _wrap(exc, "read failed") from exc

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        if self._closed:
            raise BackendUnavailableError("sqlite store: closed")
        with self._write_lock:
            conn = self._writer
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise _wrap(exc, "cannot start a write") from exc
            try:
                yield conn
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                conn.execute("ROLLBACK")
                raise _wrap(exc, "write failed") from exc
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def _check_dim(self) -> None:
        row = self._writer.execute("SELECT vector FROM memory_vectors LIMIT 1").fetchone()
        if row is not None and len(row[0]) != self.dim * 4:
            raise ConfigurationError(
                f"embedder: this store holds {len(row[0]) // 4}-dimensional vectors but the embedder makes "
                f"{self.dim}; open it with the embedder it was built with"
            )

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self._conns_lock:
            for conn in self._all_conns:
                try:
                    conn.close()
                except sqlite3.Error:
                    pass
            self._all_conns.clear()
        self.index.drop()

    # -- episodic ----------------------------------------------------------------------------------

    def add_episodes(self, episodes: Sequence[EpisodeRecord]) -> None:
        if not episodes:
            return
        c = self.codec
        rows = [
            (
                e.id,
                e.scope.key,
                e.scope.token,
                e.scope.org_id,
                e.scope.user_id,
                e.scope.agent_id,
                e.scope.run_id,
                e.conversation_id,
                e.role,
                seal_opt(c, e.scope, e.name),
                c.seal(e.scope, e.content),
                c.seal(e.scope, json.dumps(e.metadata)),
                e.position,
                e.occurred_at,
                e.created_at,
                e.extraction_status,
                seal_opt(c, e.scope, e.extraction_error),
                c.index_text(e.scope, e.content),
            )
            for e in episodes
        ]
        with self._tx() as conn:
            conn.executemany(
                "INSERT INTO episodes (id, scope_key, scope_tok, org_id, user_id, agent_id, run_id, conversation_id,"
                " role, name, content, metadata, position, occurred_at, created_at, extraction_status,"
                " extraction_error, fts_text) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                rows,
            )

    def _episode(self, row: Sequence[Any]) -> EpisodeRecord:
        scope = Scope(row[1], row[2], row[3], row[4])
        return EpisodeRecord(
            id=row[0],
            scope=scope,
            conversation_id=row[5],
            role=row[6],
            name=open_opt(self.codec, scope, row[7]),
            content=self.codec.open(scope, row[8]),
            metadata=json.loads(self.codec.open(scope, row[9])),
            position=row[10],
            occurred_at=row[11],
            created_at=row[12],
            extraction_status=row[13],
            extraction_error=open_opt(self.codec, scope, row[14]),
        )

    def get_episodes(self, scope: Scope, ids: Sequence[str]) -> list[EpisodeRecord]:
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_EPISODE_COLUMNS} FROM episodes WHERE +scope_key = ? AND id IN ({marks})",
                [scope.key, *ids],
            ).fetchall()
        by_id = {r[0]: self._episode(r) for r in rows}
        return [by_id[i] for i in ids if i in by_id]

    def list_episodes(
        self,
        scope: Scope,
        *,
        conversation_id: str | None = None,
        start: float | None = None,
        end: float | None = None,
        status: str | None = None,
        limit: int = 100,
        after: tuple[float, str] | None = None,
    ) -> list[EpisodeRecord]:
        sql = f"SELECT {_EPISODE_COLUMNS} FROM episodes WHERE scope_key = ?"
        args: list[Any] = [scope.key]
        if conversation_id is not None:
            sql += " AND conversation_id = ?"
            args.append(conversation_id)
        if start is not None:
            sql += " AND occurred_at >= ?"
            args.append(start)
        if end is not None:
            sql += " AND occurred_at < ?"
            args.append(end)
        if status is not None:
            sql += " AND extraction_status = ?"
            args.append(status)
        if after is not None:
            sql += " AND (occurred_at, id) > (?, ?)"
            args.extend(after)
        sql += " ORDER BY occurred_at, position, id LIMIT ?"
        args.append(limit)
        with self._read() as conn:
            return [self._episode(r) for r in conn.execute(sql, args).fetchall()]

    def search_episodes(self, scope: Scope, query: str, limit: int = 20) -> list[tuple[EpisodeRecord, float]]:
        expr = fts_query(scope, self.codec.query_text(scope, query))
        if expr is None:
            return []
        with self._read() as conn:
            hits = conn.execute(
                "SELECT rowid, bm25(episodes_fts, 1.0, 0.0) AS s FROM episodes_fts WHERE episodes_fts MATCH ?"
                " ORDER BY s LIMIT ?",
                (expr, limit),
            ).fetchall()
            if not hits:
                return []
            marks = ",".join("?" * len(hits))
            rows = conn.execute(
                f"SELECT rid, {_EPISODE_COLUMNS} FROM episodes WHERE +scope_key = ? AND rid IN ({marks})",
                [scope.key, *[h[0] for h in hits]],
            ).fetchall()
        by_rid = {r[0]: self._episode(r[1:]) for r in rows}
        return [(by_rid[rid], -score) for rid, score in hits if rid in by_rid]

    # -- long-term ---------------------------------------------------------------------------------

    def _memory(self, row: Sequence[Any]) -> MemoryRecord:
        c = self.codec
        scope = Scope(row[2], row[3], row[4], row[5])
        text = c.open(scope, row[7])
        return MemoryRecord(
            rid=row[0],
            id=row[1],
            scope=scope,
            conversation_id=row[6],
            text=text,
            content_hash=content_hash_of(c, text, row[8]),
            metadata=json.loads(c.open(scope, row[9])),
            episode_ids=json.loads(row[10]),
            entities=json.loads(c.open(scope, row[11])),
            kind=row[12],
            importance=row[13],
            confidence=row[14],
            confidence_reason=row[15],
            source_role=row[16],
            created_at=row[17],
            updated_at=row[18],
            valid_from=row[19],
            valid_to=row[20],
            expired_at=row[21],
            superseded_by=row[22],
            mention_count=row[23],
            last_seen_at=row[24],
            last_accessed_at=row[25],
            access_count=row[26],
            slot=slot_of(c, scope, row[27:30]),
        )

    def get_memories(self, scope: Scope, ids: Sequence[str]) -> list[MemoryRecord]:
        if not ids:
            return []
        out: dict[str, MemoryRecord] = {}
        with self._read() as conn:
            for start in range(0, len(ids), 500):
                chunk = list(ids[start : start + 500])
                marks = ",".join("?" * len(chunk))
                for r in conn.execute(
                    f"SELECT {_MEMORY_COLUMNS} FROM memories WHERE +scope_key = ? AND id IN ({marks})",
                    [scope.key, *chunk],
                ):
                    out[r[1]] = self._memory(r)
        return [out[i] for i in ids if i in out]

    def _rids_to_ids(self, conn: sqlite3.Connection, scope: Scope, rids: Sequence[int]) -> dict[int, str]:
        if not rids:
            return {}
        marks = ",".join("?" * len(rids))
        return dict(
            conn.execute(
                f"SELECT rid, id FROM memories WHERE +scope_key = ? AND rid IN ({marks})", [scope.key, *rids]
            ).fetchall()
        )

    def list_memories(
        self,
        scope: Scope,
        *,
        include_superseded: bool = False,
        conversation_id: str | None = None,
        limit: int = 100,
        after: tuple[float, str] | None = None,
        where: Sequence[tuple[str, str, Any]] = (),
    ) -> list[MemoryRecord]:
        sql = f"SELECT {_MEMORY_COLUMNS} FROM memories WHERE scope_key = ?"
        args: list[Any] = [scope.key]
        if not include_superseded:
            sql += " AND valid_to IS NULL AND superseded_by IS NULL"
        if conversation_id is not None:
            sql += " AND conversation_id = ?"
            args.append(conversation_id)
        # Sealed metadata cannot be read by SQL: those filters run here, after decryption.
        in_python = [w for w in where if self.codec.encrypts and w[0] not in FILTER_COLUMNS]
        for field, op, value in where:
            if (field, op, value) in in_python:
                continue
            clause, more = _filter_sql(field, op, value)
            sql += f" AND {clause}"
            args.extend(more)
        if after is not None:
            sql += " AND (created_at, id) > (?, ?)"
            args.extend(after)
        sql += " ORDER BY created_at, id"
        if not in_python:
            sql += " LIMIT ?"
            args.append(limit)
        with self._read() as conn:
            rows = [self._memory(r) for r in conn.execute(sql, args).fetchall()]
        if in_python:
            rows = [r for r in rows if all(match_filter(r.metadata.get(f), op, v) for f, op, v in in_python)][
                :limit
            ]
        return rows

    def count(self, scope: Scope) -> int:
        with self._read() as conn:
            return conn.execute("SELECT count(*) FROM memories WHERE scope_key = ?", (scope.key,)).fetchone()[
                0
            ]

    def find_by_hash(self, scope: Scope, content_hash: str) -> list[MemoryRecord]:
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_MEMORY_COLUMNS} FROM memories WHERE scope_key = ? AND content_hash = ?",
                (scope.key, self.codec.seal_hash(scope, content_hash)),
            ).fetchall()
        return [self._memory(r) for r in rows]

    def find_by_slot(self, scope: Scope, subject: str | None, attribute: str) -> list[MemoryRecord]:
        sql = (f"SELECT {_MEMORY_COLUMNS} FROM memories WHERE scope_key = ? AND slot_attribute = ?"
               " AND valid_to IS NULL AND superseded_by IS NULL")
        args: list[Any] = [scope.key, self.codec.seal_hash(scope, attribute)]
        if subject is not None:
            sql += " AND slot_subject = ?"
            args.append(self.codec.seal_hash(scope, subject))
        with self._read() as conn:
            rows = conn.execute(sql, args).fetchall()
        return [self._memory(r) for r in rows]

    def _scope_version(self, conn: sqlite3.Connection, scope: Scope) -> int:
        row = conn.execute("SELECT version FROM scope_versions WHERE scope_key = ?", (scope.key,)).fetchone()
        return row[0] if row else 0

    def _loader(self, scope: Scope):  # type: ignore[no-untyped-def]
        def load() -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
            conn = self._reader()
            conn.execute("BEGIN")
            try:
                version = self._scope_version(conn, scope)
                rows = conn.execute(
                    "SELECT v.memory_rid, v.vector, (m.valid_to IS NULL AND m.superseded_by IS NULL)"
                    " FROM memory_vectors v JOIN memories m ON m.rid = v.memory_rid"
                    " WHERE v.scope_key = ? AND m.scope_key = ?",
                    (scope.key, scope.key),
                ).fetchall()
            finally:
                conn.execute("COMMIT")
            if not rows:
                empty = np.zeros((0, self.dim), dtype=np.float32)
                return version, empty, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
            matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(
                len(rows), self.dim
            )
            owners = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            active = np.fromiter((bool(r[2]) for r in rows), dtype=bool, count=len(rows))
            return version, matrix.copy(), owners, active

        return load

    def vector_search(
        self,
        scope: Scope,
        vector: np.ndarray,
        k: int,
        *,
        include_superseded: bool = False,
        only: Sequence[str] | None = None,
    ) -> list[tuple[str, float]]:
        with self._read() as conn:
            version = self._scope_version(conn, scope)
            only_rids: set[int] | None = None
            if only is not None:
                only_rids = set()
                ids = list(only)
                for start in range(0, len(ids), 500):
                    chunk = ids[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    only_rids.update(
                        r[0]
                        for r in conn.execute(
                            f"SELECT rid FROM memories WHERE +scope_key = ? AND id IN ({marks})",
                            [scope.key, *chunk],
                        )
                    )
        hits = self.index.search(
            scope.key,
            version,
            self._loader(scope),
            vector,
            k,
            include_inactive=include_superseded,
            only=only_rids,
        )
        with self._read() as conn:
            names = self._rids_to_ids(conn, scope, [rid for rid, _ in hits])
        return [(names[rid], score) for rid, score in hits if rid in names]

    def keyword_search(
        self,
        scope: Scope,
        query: str,
        k: int,
        *,
        include_superseded: bool = False,
        only: Sequence[str] | None = None,
    ) -> list[tuple[str, float]]:
        expr = fts_query(scope, self.codec.query_text(scope, query))
        if expr is None:
            return []
        allowed = set(only) if only is not None else None
        with self._read() as conn:
            hits = conn.execute(
                "SELECT rowid, bm25(memories_fts, 1.0, 0.0) AS s FROM memories_fts WHERE memories_fts MATCH ?"
                " ORDER BY s LIMIT ?",
                (expr, k * 3 if (allowed is not None or not include_superseded) else k),
            ).fetchall()
            if not hits:
                return []
            marks = ",".join("?" * len(hits))
            sql = f"SELECT rid, id FROM memories WHERE +scope_key = ? AND rid IN ({marks})"
            if not include_superseded:
                sql += " AND valid_to IS NULL AND superseded_by IS NULL"
            names = dict(conn.execute(sql, [scope.key, *[h[0] for h in hits]]).fetchall())
        out = [(names[rid], -score) for rid, score in hits if rid in names]
        if allowed is not None:
            out = [(i, s) for i, s in out if i in allowed]
        return out[:k]

    def vectors(self, scope: Scope, ids: Sequence[str]) -> dict[str, np.ndarray]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT m.id, v.vector FROM memories m JOIN memory_vectors v ON v.memory_rid = m.rid"
                f" WHERE +m.scope_key = ? AND m.id IN ({marks}) AND v.chunk = 0",
                [scope.key, *ids],
            ).fetchall()
        return {r[0]: np.frombuffer(r[1], dtype=np.float32) for r in rows}

    def scope_of_memory(self, memory_id: str) -> Scope | None:
        with self._read() as conn:
            row = conn.execute(SCOPE_OF_MEMORY.replace("%s", "?"), (memory_id, memory_id)).fetchone()
        return None if row is None else Scope.from_key(row[0])

    def history(self, scope: Scope, memory_id: str) -> list[HistoryEvent]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT id, memory_id, event, old_memory, new_memory, actor, reason, created_at, metadata"
                " FROM history WHERE scope_key = ? AND memory_id = ? ORDER BY rid",
                (scope.key, memory_id),
            ).fetchall()
        op = self.codec.open
        return [
            HistoryEvent(
                r[0],
                r[1],
                r[2],
                None if r[3] is None else op(scope, r[3]),
                None if r[4] is None else op(scope, r[4]),
                r[5],
                op(scope, r[6]),
                r[7],
                json.loads(r[8]),
            )
            for r in rows
        ]

    # -- graph -------------------------------------------------------------------------------------

    def entities(self, scope: Scope, limit: int = 1000) -> list[EntityRecord]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT id, name, label, aliases, mention_count FROM entities WHERE scope_key = ?"
                " ORDER BY mention_count DESC, rid LIMIT ?",
                (scope.key, limit),
            ).fetchall()
        return [self._entity(scope, r) for r in rows]

    def _entity(self, scope: Scope, row: Sequence[Any]) -> EntityRecord:
        op = self.codec.open
        return EntityRecord(row[0], op(scope, row[1]), row[2], json.loads(op(scope, row[3])), row[4])

    def memories_of_entities(self, scope: Scope, entity_ids: Sequence[str], limit: int = 50) -> list[str]:
        if not entity_ids:
            return []
        marks = ",".join("?" * len(entity_ids))
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT me.memory_id FROM memory_entities me JOIN memories m ON m.id = me.memory_id"
                f" WHERE me.scope_key = ? AND m.scope_key = ? AND me.entity_id IN ({marks})"
                f" AND m.valid_to IS NULL AND m.superseded_by IS NULL"
                f" GROUP BY me.memory_id ORDER BY count(*) DESC, max(m.created_at) DESC LIMIT ?",
                [scope.key, scope.key, *entity_ids, limit],
            ).fetchall()
        return [r[0] for r in rows]

    def neighbours(self, scope: Scope, entity_id: str, depth: int = 1) -> list[tuple[EntityRecord, str, int]]:
        with self._read() as conn:
            rows = conn.execute(
                """
                WITH RECURSIVE walk(entity_id, relation, hops) AS (
                    SELECT ?, '', 0
                    UNION
                    SELECT CASE WHEN e.subject_id = w.entity_id THEN e.object_id ELSE e.subject_id END,
                           e.relation, w.hops + 1
                    FROM edges e JOIN walk w ON (e.subject_id = w.entity_id OR e.object_id = w.entity_id)
                    WHERE e.scope_key = ? AND w.hops < ?
                      AND (e.memory_id IS NULL OR EXISTS (
                          SELECT 1 FROM memories m WHERE m.id = e.memory_id
                          AND m.valid_to IS NULL AND m.superseded_by IS NULL))
                )
                SELECT n.id, n.name, n.label, n.aliases, n.mention_count, w.relation, min(w.hops)
                FROM walk w JOIN entities n ON n.id = w.entity_id
                WHERE n.scope_key = ? AND w.hops > 0 AND n.id != ?
                GROUP BY n.id ORDER BY min(w.hops), n.mention_count DESC
                """,
                (entity_id, scope.key, depth, scope.key, entity_id),
            ).fetchall()
        return [(self._entity(scope, r), self.codec.open(scope, r[5]), r[6]) for r in rows]

    def graph_rows(self, scope: Scope) -> GraphRows:
        return open_graph(self.codec, scope, super().graph_rows(scope))

    # -- writes ------------------------------------------------------------------------------------

    def apply(self, scope: Scope, batch: WriteBatch) -> None:
        if not batch:
            return
        key = scope.key
        added: list[tuple[int, np.ndarray]] = []
        removed: list[int] = []
        deactivate: list[int] = []
        activate: list[int] = []
        seal, index = self.codec.seal, self.codec.index_text
        with self._tx() as conn:
            old_version = self._scope_version(conn, scope)
            for rec, vecs in batch.new_memories:
                if rec.scope != scope:
                    raise BackendError("sqlite store: a memory in the batch belongs to another scope")
                cur = conn.execute(
                    "INSERT INTO memories (id, scope_key, scope_tok, org_id, user_id, agent_id, run_id,"
                    " conversation_id, text, content_hash, metadata, episode_ids, entities, kind, importance,"
                    " confidence, confidence_reason, source_role, created_at, updated_at, valid_from, valid_to,"
                    " expired_at, superseded_by, mention_count, last_seen_at, slot_subject, slot_attribute,"
                    " slot_value, fts_text) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        rec.id,
                        key,
                        scope.token,
                        scope.org_id,
                        scope.user_id,
                        scope.agent_id,
                        scope.run_id,
                        rec.conversation_id,
                        seal(scope, rec.text),
                        self.codec.seal_hash(scope, rec.content_hash),
                        seal(scope, json.dumps(rec.metadata)),
                        json.dumps(rec.episode_ids),
                        seal(scope, json.dumps(rec.entities)),
                        rec.kind,
                        rec.importance,
                        rec.confidence,
                        rec.confidence_reason,
                        rec.source_role,
                        rec.created_at,
                        rec.updated_at,
                        rec.valid_from,
                        rec.valid_to,
                        rec.expired_at,
                        rec.superseded_by,
                        rec.mention_count,
                        rec.last_seen_at,
                        *slot_columns(self.codec, scope, rec.slot),
                        index(scope, rec.text),
                    ),
                )
                rid = int(cur.lastrowid or 0)
                rec.rid = rid
                matrix = np.atleast_2d(vecs).astype(np.float32)
                conn.executemany(
                    "INSERT INTO memory_vectors (memory_rid, chunk, scope_key, vector) VALUES (?,?,?,?)",
                    [(rid, i, key, matrix[i].tobytes()) for i in range(matrix.shape[0])],
                )
                added.append((rid, matrix))
            for rec, new_vecs in batch.updated_memories:
                row = conn.execute(
                    "SELECT rid, valid_to IS NULL AND superseded_by IS NULL FROM memories"
                    " WHERE scope_key = ? AND id = ?",
                    (key, rec.id),
                ).fetchone()
                if row is None:
                    raise NotFoundError("memory", rec.id)
                rid, was_active = row
                conn.execute(
                    "UPDATE memories SET text = ?, content_hash = ?, metadata = ?, episode_ids = ?, entities = ?,"
                    " importance = ?, confidence = ?, confidence_reason = ?, updated_at = ?, valid_from = ?,"
                    " valid_to = ?, expired_at = ?, superseded_by = ?, mention_count = ?, last_seen_at = ?,"
                    " slot_subject = ?, slot_attribute = ?, slot_value = ?, fts_text = ?"
                    " WHERE scope_key = ? AND rid = ?",
                    (
                        seal(scope, rec.text),
                        self.codec.seal_hash(scope, rec.content_hash),
                        seal(scope, json.dumps(rec.metadata)),
                        json.dumps(rec.episode_ids),
                        seal(scope, json.dumps(rec.entities)),
                        rec.importance,
                        rec.confidence,
                        rec.confidence_reason,
                        rec.updated_at,
                        rec.valid_from,
                        rec.valid_to,
                        rec.expired_at,
                        rec.superseded_by,
                        rec.mention_count,
                        rec.last_seen_at,
                        *slot_columns(self.codec, scope, rec.slot),
                        index(scope, rec.text),
                        key,
                        rid,
                    ),
                )
                if new_vecs is not None:
                    matrix = np.atleast_2d(new_vecs).astype(np.float32)
                    conn.execute("DELETE FROM memory_vectors WHERE memory_rid = ?", (rid,))
                    conn.executemany(
                        "INSERT INTO memory_vectors (memory_rid, chunk, scope_key, vector) VALUES (?,?,?,?)",
                        [(rid, i, key, matrix[i].tobytes()) for i in range(matrix.shape[0])],
                    )
                    removed.append(rid)
                    added.append((rid, matrix))
                    if not rec.current:
                        deactivate.append(rid)
                elif bool(was_active) != rec.current:
                    (activate if rec.current else deactivate).append(rid)
            for memory_id in batch.deleted_memory_ids:
                row = conn.execute(
                    "SELECT rid FROM memories WHERE scope_key = ? AND id = ?", (key, memory_id)
                ).fetchone()
                if row is None:
                    raise NotFoundError("memory", memory_id)
                conn.execute("DELETE FROM memories WHERE scope_key = ? AND rid = ?", (key, row[0]))
                conn.execute(
                    "DELETE FROM memory_entities WHERE scope_key = ? AND memory_id = ?", (key, memory_id)
                )
                conn.execute("DELETE FROM edges WHERE scope_key = ? AND memory_id = ?", (key, memory_id))
                removed.append(row[0])
            for ev in batch.history:
                conn.execute(
                    "INSERT INTO history (id, scope_key, memory_id, event, old_memory, new_memory, actor, reason,"
                    " metadata, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (
                        ev.id,
                        key,
                        ev.memory_id,
                        ev.event,
                        None if ev.old_memory is None else seal(scope, ev.old_memory),
                        None if ev.new_memory is None else seal(scope, ev.new_memory),
                        ev.actor,
                        seal(scope, ev.reason),
                        json.dumps(ev.metadata),
                        ev.created_at,
                    ),
                )
            entity_ids: dict[str, str] = {}
            for memory_id, name, label, alias in batch.entity_links:
                eid = self._upsert_entity(conn, scope, name, label, alias, entity_ids)
                conn.execute(
                    "INSERT OR IGNORE INTO memory_entities (scope_key, memory_id, entity_id) VALUES (?,?,?)",
                    (key, memory_id, eid),
                )
            for subj, relation, obj, edge_memory, episode_id in batch.edges:
                sid = self._upsert_entity(conn, scope, subj, "OTHER", subj, entity_ids, count=False)
                oid = self._upsert_entity(conn, scope, obj, "OTHER", obj, entity_ids, count=False)
                conn.execute(
                    "INSERT INTO edges (scope_key, subject_id, relation, object_id, memory_id, episode_id,"
                    " created_at) VALUES (?,?,?,?,?,?, strftime('%s','now'))",
                    (key, sid, seal(scope, relation), oid, edge_memory, episode_id),
                )
            for c in batch.conflicts:
                conn.execute(
                    "INSERT INTO conflicts (id, scope_key, new_memory_id, old_memory_id, subject, attribute,"
                    " old_value, new_value, policy, status, created_at, resolved_at, resolution)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        c.id,
                        key,
                        c.new_memory_id,
                        c.old_memory_id,
                        *conflict_columns(self.codec, scope, c),
                        c.policy,
                        c.status,
                        c.created_at,
                        c.resolved_at,
                        c.resolution,
                    ),
                )
            for episode_id, status, error in batch.episode_status:
                conn.execute(
                    "UPDATE episodes SET extraction_status = ?, extraction_error = ?"
                    " WHERE scope_key = ? AND id = ?",
                    (status, seal_opt(self.codec, scope, error), key, episode_id),
                )
            new_version = old_version + 1
            conn.execute(
                "INSERT INTO scope_versions (scope_key, version) VALUES (?, ?)"
                " ON CONFLICT (scope_key) DO UPDATE SET version = excluded.version",
                (key, new_version),
            )
            # Patch the in-process index while still holding the write lock, so patches apply in commit order.
        self.index.patch(
            key, old_version, new_version, add=added, remove=removed, deactivate=deactivate, activate=activate
        )

    def _upsert_entity(
        self,
        conn: sqlite3.Connection,
        scope: Scope,
        name: str,
        label: str,
        alias: str,
        cache: dict[str, str],
        *,
        count: bool = True,
    ) -> str:
        name_key = name.strip().lower()
        if name_key in cache:
            return cache[name_key]
        c = self.codec
        stored_key = c.seal_hash(scope, name_key)
        row = conn.execute(
            "SELECT id, aliases, label FROM entities WHERE scope_key = ? AND name_key = ?",
            (scope.key, stored_key),
        ).fetchone()
        if row is None:
            eid = str(uuid.uuid4())
            conn.execute(
                "INSERT INTO entities (id, scope_key, name, name_key, label, aliases, mention_count, created_at)"
                " VALUES (?,?,?,?,?,?,?, strftime('%s','now'))",
                (
                    eid,
                    scope.key,
                    c.seal(scope, name.strip()),
                    stored_key,
                    label,
                    c.seal(scope, json.dumps(sorted({alias.strip()} - {name.strip()}))),
                    1 if count else 0,
                ),
            )
        else:
            eid = row[0]
            aliases = set(json.loads(c.open(scope, row[1])))
            if alias.strip() and alias.strip() != name.strip():
                aliases.add(alias.strip())
            new_label = row[2] if label == "OTHER" else label
            conn.execute(
                "UPDATE entities SET aliases = ?, label = ?, mention_count = mention_count + ? WHERE id = ?",
                (c.seal(scope, json.dumps(sorted(aliases))), new_label, 1 if count else 0, eid),
            )
        cache[name_key] = eid
        return eid

    def conflicts(self, scope: Scope, status: str | None = "open") -> list[ConflictRecord]:
        sql = (
            "SELECT id, new_memory_id, old_memory_id, subject, attribute, old_value, new_value, policy, status,"
            " created_at, resolved_at, resolution FROM conflicts WHERE scope_key = ?"
        )
        args: list[Any] = [scope.key]
        if status is not None:
            sql += " AND status = ?"
            args.append(status)
        with self._read() as conn:
            rows = conn.execute(sql + " ORDER BY rid", args).fetchall()
        return [conflict_of(self.codec, scope, r) for r in rows]

    def resolve_conflict(self, scope: Scope, conflict_id: str, resolution: str, at: float) -> ConflictRecord:
        with self._tx() as conn:
            cur = conn.execute(
                "UPDATE conflicts SET status = 'resolved', resolution = ?, resolved_at = ?"
                " WHERE scope_key = ? AND id = ?",
                (resolution, at, scope.key, conflict_id),
            )
            if cur.rowcount == 0:
                raise NotFoundError("conflict", conflict_id)
        return next(c for c in self.conflicts(scope, None) if c.id == conflict_id)

    def touch(self, scope: Scope, ids: Sequence[str], at: float) -> None:
        if not ids:
            return
        marks = ",".join("?" * len(ids))
        with self._tx() as conn:
            conn.execute(
                f"UPDATE memories SET last_accessed_at = ?, access_count = access_count + 1"
                f" WHERE +scope_key = ? AND id IN ({marks})",
                [at, scope.key, *ids],
            )

    def delete_scope(self, scope: Scope) -> dict[str, int]:
        key = scope.key
        counts: dict[str, int] = {}
        with self._tx() as conn:
            for table in (
                "memory_vectors",
                "memories",
                "history",
                "memory_entities",
                "edges",
                "entities",
                "conflicts",
                "episodes",
            ):
                counts[table] = conn.execute(f"DELETE FROM {table} WHERE scope_key = ?", (key,)).rowcount
            conn.execute("DELETE FROM scope_versions WHERE scope_key = ?", (key,))
        self.index.drop(key)
        return counts

    def stats(self, scope: Scope | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"backend": "sqlite", "path": self.path}
        with self._read() as conn:
            for table in ("episodes", "memories", "entities", "edges", "history", "conflicts"):
                if scope is None:
                    n = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                else:
                    n = conn.execute(
                        f"SELECT count(*) FROM {table} WHERE scope_key = ?", (scope.key,)
                    ).fetchone()[0]
                out[table] = n
            if scope is None:
                out["scopes"] = conn.execute("SELECT count(*) FROM scope_versions").fetchone()[0]
        out["vector_cache_bytes"] = self.index.resident_bytes
        if self.path != ":memory:" and Path(self.path).exists():
            out["file_bytes"] = Path(self.path).stat().st_size
        return out

    def scopes(self, org_id=None, user_ids=None, agent_ids=None, limit=100):  # type: ignore[no-untyped-def]
        statement, params = scope_listing("?", org_id, user_ids, agent_ids, limit)
        with self._read() as conn:
            return scope_rows(conn.execute(statement, params).fetchall())

    def reset(self) -> None:
        with self._tx() as conn:
            for table in (
                "memory_vectors",
                "memories",
                "history",
                "memory_entities",
                "edges",
                "entities",
                "conflicts",
                "episodes",
                "scope_versions",
            ):
                conn.execute(f"DELETE FROM {table}")
        self.index.drop()


def _filter_sql(field: str, op: str, value: Any) -> tuple[str, list[Any]]:
    """One validated filter → SQL. Metadata keys travel as bound JSON paths, never as SQL text."""
    sql_op = _OPS[op]
    if field in FILTER_COLUMNS:
        target = field
        args: list[Any] = []
    else:
        target = "json_extract(metadata, ?)"
        args = ['$."' + field.replace('"', "") + '"']
    if op in ("in", "nin"):
        marks = ",".join("?" * len(value))
        return f"{target} {sql_op} ({marks})", [*args, *value]
    if isinstance(value, bool):
        value = int(value)
    return f"{target} {sql_op} ?", [*args, value]


# A live memory first; else the scope its kept history names (the memory was deleted).
SCOPE_OF_MEMORY = (
    "SELECT scope_key FROM (SELECT scope_key, 0 AS pref FROM memories WHERE id = %s"
    " UNION ALL SELECT scope_key, 1 FROM history WHERE memory_id = %s) AS found ORDER BY pref LIMIT 1"
)


def match_filter(actual: Any, op: str, value: Any) -> bool:
    """The Python twin of ``_filter_sql`` for one metadata value (used where SQL cannot see the value)."""
    if op == "in":
        return actual in value
    if op == "nin":
        return actual not in value
    if op == "eq":
        return actual == value
    if op == "ne":
        return actual != value
    if actual is None or isinstance(actual, dict | list):
        return False
    try:
        return {"gt": actual > value, "gte": actual >= value, "lt": actual < value, "lte": actual <= value}[
            op
        ]
    except TypeError:
        return False
