"""The embedded default: one SQLite file in WAL mode holds episodes, memories, history and the graph.

One writer connection behind a lock, one reader connection per thread; WAL lets readers run while the
writer commits, and the busy timeout absorbs other processes' writes. kNN runs on an in-process numpy
index (memstrata.backends.vector_index) kept in step by the per-scope ``scope_versions`` row; full text
is FTS5 with BM25. The statements both SQL engines share live in memstrata.backends.sql.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Hashable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from memstrata.backends.sql.dialect import Dialect
from memstrata.backends.sql.keys import SQLKeys
from memstrata.backends.sql.locks import HAS_FILE_LOCKS, SLOTS, FileSlots, digest
from memstrata.backends.sql.rows import (
    EPISODE_INSERT,
    MEMORY_INSERT,
    MEMORY_UPDATE,
    episode_columns,
    marks,
    set_list,
)
from memstrata.backends.sql.store import SQLStore
from memstrata.backends.sqlite_conn import Connections
from memstrata.backends.sqlite_privacy import SQLitePrivacy
from memstrata.backends.sqlite_schema import migrate
from memstrata.backends.vector_index import VectorIndex
from memstrata.errors import ConfigurationError, NotFoundError
from memstrata.models import EpisodeRecord, Scope
from memstrata.tiers.base import Capability, Codec, WriteBatch

T = TypeVar("T")
_D = Dialect()
_KEYWORD_SLACK = 16  # keyword matches read beyond k on the first pass, for superseded ones to drop out


def fts_query(scope: Scope, terms: Sequence[str]) -> str | None:
    """An FTS5 expression: the scope's token AND any of the terms (each quoted, so no syntax leaks)."""
    if not terms:
        return None
    return f"scope_tok : {scope.token} AND ({' OR '.join(f'{chr(34)}{w}{chr(34)}' for w in terms)})"


class SQLiteStore(SQLKeys, SQLitePrivacy, SQLStore):
    """The durable tiers on one SQLite file (or ``:memory:`` for throwaway use)."""

    d = _D
    scope_table = "scope_versions"
    capabilities = frozenset({Capability.PRIVACY, Capability.KEYS, Capability.SCOPE_LISTING,
                              *([Capability.SCOPE_LOCK] if HAS_FILE_LOCKS else [])})

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
        self._init_sql(codec)
        if self.path != ":memory:":
            try:
                Path(self.path).expanduser().parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigurationError(f"store: cannot create the folder for {self.path}: {exc}") from exc
            self.path = str(Path(self.path).expanduser())
        self.dim = dim
        self.index = VectorIndex(dim, vector_cache_bytes)
        # Write sections of a file store: a byte of this file per scope, locked by the process that writes.
        self._slots = None if self.path == ":memory:" else FileSlots(f"{self.path}-scopes.lock")
        self._real_path = os.path.realpath(self.path)
        self.db = Connections(self.path, synchronous=synchronous, busy_timeout_ms=busy_timeout_ms)
        migrate(self.db.writer)
        row = self.db.writer.execute("SELECT vector FROM memory_vectors LIMIT 1").fetchone()
        if row is not None and len(row[0]) != self.dim * 4:
            raise ConfigurationError(
                f"embedder: this store holds {len(row[0]) // 4}-dimensional vectors but the embedder makes "
                f"{self.dim}; open it with the embedder it was built with"
            )

    def _run(self, fn: Callable[[Any], T], what: str, *, write: bool = False) -> T:
        return self.db.run(fn, write)

    def _slot(self, scope: Scope) -> int:
        return digest(scope.key) % SLOTS

    def _section_key(self, scope: Scope) -> Hashable:
        if self._slots is None:
            return super()._section_key(scope)
        return ("sqlite", self._real_path, self._slot(scope))

    def _other_processes(self, scope: Scope) -> AbstractContextManager[object]:
        if self._slots is None:
            return super()._other_processes(scope)
        return self._slots.hold(self._slot(scope))

    def close(self) -> None:
        if not self.db.closed:
            self.db.close()
            self.index.drop()

    def _scope_probe(self, conn: sqlite3.Connection, scope: Scope) -> int:
        """The scope's version (0: none yet): the vector index and the entity cache both check it."""
        row = conn.execute("SELECT version FROM scope_versions WHERE scope_key = ?", (scope.key,)).fetchone()
        return int(row[0]) if row else 0

    # -- episodic: FTS5 ----------------------------------------------------------------------------

    def add_episodes(self, episodes: Sequence[EpisodeRecord]) -> None:
        if not episodes:
            return
        rows = [(*self.rows.episode_insert(e), e.scope.token, self.codec.index_text(e.scope, e.content))
                for e in episodes]
        statement = (f"INSERT INTO episodes ({EPISODE_INSERT}, scope_tok, fts_text)"
                     f" VALUES ({marks(_D, EPISODE_INSERT)},?,?)")
        self._run(lambda conn: conn.executemany(statement, rows), "add episodes", write=True)

    def search_episodes(
        self, scope: Scope, terms: Sequence[str] | str, limit: int = 20
    ) -> list[tuple[EpisodeRecord, float]]:
        expr = fts_query(scope, self._terms(scope, terms))
        if expr is None:
            return []
        with self.db.read() as conn:
            hits = conn.execute(
                "SELECT rowid, bm25(episodes_fts, 1.0, 0.0) AS s FROM episodes_fts WHERE episodes_fts MATCH ?"
                " ORDER BY s LIMIT ?",
                (expr, limit),
            ).fetchall()
            if not hits:
                return []
            marks_ = ",".join("?" * len(hits))
            rows = conn.execute(
                f"SELECT rid, {episode_columns(_D)} FROM episodes WHERE +scope_key = ? AND rid IN ({marks_})",
                [scope.key, *[h[0] for h in hits]],
            ).fetchall()
        by_rid = {r[0]: self.rows.episode(r[1:]) for r in rows}
        return [(by_rid[rid], -score) for rid, score in hits if rid in by_rid]

    # -- long-term: numpy kNN and FTS5 -------------------------------------------------------------

    def _rids(self, conn: sqlite3.Connection, scope: Scope, column: str, values: Sequence[Any],
              extra: str = "") -> dict[Any, Any]:
        """{rid: id} (``column`` "rid") or {id: rid} (``column`` "id") for ``values`` of one scope."""
        out: dict[Any, Any] = {}
        other = "id" if column == "rid" else "rid"
        for start in range(0, len(values), 500):
            chunk = list(values[start : start + 500])
            out.update(conn.execute(
                f"SELECT {column}, {other} FROM memories WHERE +scope_key = ? AND {column} IN"
                f" ({','.join('?' * len(chunk))}){extra}", [scope.key, *chunk]).fetchall())
        return out

    def vector_search(
        self, scope: Scope, vector: np.ndarray, k: int, *, include_superseded: bool = False,
        only: Sequence[str] | None = None,
    ) -> list[tuple[str, float]]:
        def load() -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
            conn = self.db.reader()
            conn.execute("BEGIN")
            try:
                version = self._scope_probe(conn, scope)
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
            matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), self.dim)
            owners = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            active = np.fromiter((bool(r[2]) for r in rows), dtype=bool, count=len(rows))
            return version, matrix.copy(), owners, active

        with self.db.read() as conn:
            version = self._scope_probe(conn, scope)
            only_rids = None if only is None else set(self._rids(conn, scope, "id", list(only)).values())
        hits = self.index.search(scope.key, version, load, vector, k,
                                 include_inactive=include_superseded, only=only_rids)
        with self.db.read() as conn:
            names = self._rids(conn, scope, "rid", [rid for rid, _ in hits])
        return [(names[rid], score) for rid, score in hits if rid in names]

    def keyword_search(
        self, scope: Scope, terms: Sequence[str], k: int, *, include_superseded: bool = False,
        only: Sequence[str] | None = None,
    ) -> list[tuple[str, float]]:
        expr = fts_query(scope, terms)
        if expr is None or k <= 0:
            return []
        allowed = set(only) if only is not None else None
        # The best ``limit`` matches by BM25, joined to their memories in the same statement (a row that is
        # filtered out comes back without an id). Most matches are current, so the first pass reads a few
        # more than ``k``; when superseded ones crowd those out, a second pass filters before it ranks.
        current = "" if include_superseded else " AND m.valid_to IS NULL AND m.superseded_by IS NULL"
        top = (
            "SELECT m.id, h.s FROM (SELECT rowid AS r, bm25(memories_fts, 1.0, 0.0) AS s FROM memories_fts"
            " WHERE memories_fts MATCH ? ORDER BY s, rowid LIMIT ?) AS h"
            f" LEFT JOIN memories m ON m.rid = h.r AND +m.scope_key = ?{current} ORDER BY h.s, h.r"
        )
        limit = k * 3 if allowed is not None else k + _KEYWORD_SLACK
        with self.db.read() as conn:
            rows = conn.execute(top, (expr, limit, scope.key)).fetchall()
            out = [(mid, -score) for mid, score in rows if mid is not None]
            if allowed is None and len(out) < k and len(rows) == limit:
                rows = conn.execute(
                    "SELECT m.id, bm25(memories_fts, 1.0, 0.0) AS s FROM memories_fts"
                    " JOIN memories m ON m.rid = memories_fts.rowid"
                    f" WHERE memories_fts MATCH ? AND +m.scope_key = ?{current} ORDER BY s, m.rid LIMIT ?",
                    (expr, scope.key, k),
                ).fetchall()
                out = [(mid, -score) for mid, score in rows]
        if allowed is not None:
            out = [(i, s) for i, s in out if i in allowed]
        return out[:k]

    def vectors(self, scope: Scope, ids: Sequence[str]) -> dict[str, np.ndarray]:
        if not ids:
            return {}
        with self.db.read() as conn:
            rows = conn.execute(
                "SELECT m.id, v.vector FROM memories m JOIN memory_vectors v ON v.memory_rid = m.rid"
                f" WHERE +m.scope_key = ? AND m.id IN ({','.join('?' * len(ids))}) AND v.chunk = 0",
                [scope.key, *ids],
            ).fetchall()
        return {r[0]: np.frombuffer(r[1], dtype=np.float32) for r in rows}

    # -- writes ------------------------------------------------------------------------------------

    def _write_batch(self, scope: Scope, batch: WriteBatch) -> None:
        key = scope.key
        added: list[tuple[int, np.ndarray]] = []
        removed: list[int] = []
        deactivate: list[int] = []
        activate: list[int] = []
        index = self.codec.index_text

        def put_vectors(conn: sqlite3.Connection, rid: int, vecs: np.ndarray) -> None:
            matrix = np.atleast_2d(vecs).astype(np.float32)
            conn.executemany("INSERT INTO memory_vectors (memory_rid, chunk, scope_key, vector) VALUES (?,?,?,?)",
                             [(rid, i, key, matrix[i].tobytes()) for i in range(matrix.shape[0])])
            added.append((rid, matrix))

        with self.db.tx() as conn:
            old_version = self._scope_probe(conn, scope)
            insert = (f"INSERT INTO memories ({MEMORY_INSERT}, scope_tok, fts_text)"
                      f" VALUES ({marks(_D, MEMORY_INSERT)},?,?)")
            for rec, vecs in batch.new_memories:
                cur = conn.execute(insert, (*self.rows.memory_insert(scope, rec), scope.token, index(scope, rec.text)))
                rec.rid = int(cur.lastrowid or 0)
                put_vectors(conn, rec.rid, vecs)
            update = f"UPDATE memories SET {set_list(_D, MEMORY_UPDATE)}, fts_text = ? WHERE scope_key = ? AND rid = ?"
            for rec, new_vecs in batch.updated_memories:
                row = conn.execute("SELECT rid, valid_to IS NULL AND superseded_by IS NULL FROM memories"
                                   " WHERE scope_key = ? AND id = ?", (key, rec.id)).fetchone()
                if row is None:
                    raise NotFoundError("memory", rec.id)
                rid, was_active = row
                conn.execute(update, (*self.rows.memory_update(scope, rec), index(scope, rec.text), key, rid))
                if new_vecs is not None:
                    conn.execute("DELETE FROM memory_vectors WHERE memory_rid = ?", (rid,))
                    removed.append(rid)
                    put_vectors(conn, rid, new_vecs)
                    if not rec.current:
                        deactivate.append(rid)
                elif bool(was_active) != rec.current:
                    (activate if rec.current else deactivate).append(rid)
            for memory_id in batch.deleted_memory_ids:
                row = conn.execute("SELECT rid FROM memories WHERE scope_key = ? AND id = ?",
                                   (key, memory_id)).fetchone()
                if row is None:
                    raise NotFoundError("memory", memory_id)
                conn.execute("DELETE FROM memories WHERE scope_key = ? AND rid = ?", (key, row[0]))
                self._unlink_memory(conn, _D, key, memory_id)
                removed.append(row[0])
            self._write_rows(conn, scope, batch)
            new_version = self._bump(conn, [key])[0]
        self.index.patch(key, old_version, new_version, add=added, remove=removed, deactivate=deactivate,
                         activate=activate)

    def _scope_gone(self, key: str | None) -> None:
        self.index.drop(key)

    def stats(self, scope: Scope | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"backend": "sqlite", "path": self.path}
        with self.db.read() as conn:
            out.update(self._table_counts(conn, scope))
            if scope is None:
                out["scopes"] = conn.execute("SELECT count(*) FROM scope_versions").fetchone()[0]
        out["vector_cache_bytes"] = self.index.resident_bytes
        if self.path != ":memory:" and Path(self.path).exists():
            out["file_bytes"] = Path(self.path).stat().st_size
        return out
