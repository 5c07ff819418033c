"""Audit log, data keys, retention and legal holds for the SQLite store (a mixin of SQLiteStore)."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

from memstrata.backends.privacy_sql import (
    AUDIT_COLUMNS,
    GRAPH_EDGES,
    GRAPH_LINKS,
    HISTORY_MEMORY_IDS,
    KEY_COLUMNS,
    ORPHAN_ENTITIES,
    audit_entry,
    data_key,
)
from memstrata.errors import BackendError
from memstrata.models import Scope
from memstrata.tiers.privacy import (
    GENESIS_HASH,
    AuditEntry,
    AuditEvent,
    ChainFn,
    DataKeyRecord,
    GraphRows,
    LegalHold,
    PrivacyTier,
    PurgeResult,
    RetentionPolicy,
    in_category,
    parse_scope_key,
    user_key_range,
)

if TYPE_CHECKING:
    from memstrata.backends.vector_index import VectorIndex
    from memstrata.tiers.base import Codec

_SCOPED_TABLES = (
    "episodes", "memories", "history", "entities", "memory_entities", "edges", "conflicts", "scope_versions",
)
_CHUNK = 500
# Deleted by a purge: rows of users under legal hold in the org are kept, checked inside the delete.
_NOT_HELD = "(user_id IS NULL OR user_id NOT IN (SELECT user_id FROM legal_holds WHERE org_id = ?))"


def _marks(n: int) -> str:
    return ",".join("?" * n)


class SQLitePrivacyMixin(PrivacyTier):
    """Implements memstrata.tiers.privacy.PrivacyTier on the store's connections."""

    if TYPE_CHECKING:  # provided by SQLiteStore
        path: str
        codec: Codec
        index: VectorIndex
        _writer: sqlite3.Connection
        _write_lock: threading.RLock

        def _tx(self) -> AbstractContextManager[sqlite3.Connection]: ...
        def _read(self) -> AbstractContextManager[sqlite3.Connection]: ...

    # -- plumbing ----------------------------------------------------------------------------------

    def _inside_own_write(self) -> bool:
        """Whether this thread is inside a write transaction already (a codec called from ``apply``).

        The write lock is re-entrant: taking it without blocking succeeds only for its holder or when it
        is free, and only its holder can have the writer inside a transaction."""
        if not self._write_lock.acquire(blocking=False):
            return False
        try:
            return self._writer.in_transaction
        finally:
            self._write_lock.release()

    @contextmanager
    def _joined_tx(self) -> Iterator[tuple[sqlite3.Connection, bool]]:
        """A write transaction of our own, or a savepoint inside the caller's; yields (conn, nested)."""
        if not self._inside_own_write():
            with self._tx() as conn:
                yield conn, False
            return
        conn = self._writer
        conn.execute("SAVEPOINT privacy")
        try:
            yield conn, True
            conn.execute("RELEASE privacy")
        except BaseException:
            conn.execute("ROLLBACK TO privacy")
            conn.execute("RELEASE privacy")
            raise

    def _bump(self, conn: sqlite3.Connection, keys: Sequence[str]) -> None:
        # Other processes reload their vector cache when a scope's version moves.
        conn.executemany(
            "INSERT INTO scope_versions (scope_key, version) VALUES (?, 1)"
            " ON CONFLICT (scope_key) DO UPDATE SET version = version + 1",
            [(k,) for k in keys],
        )

    # -- audit -------------------------------------------------------------------------------------

    def append_audit(self, event: AuditEvent, chain: ChainFn) -> AuditEntry:
        with self._tx() as conn:
            last = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
            seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
            digest = chain(seq, prev)
            conn.execute(
                f"INSERT INTO audit_log ({AUDIT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (seq, event.at, event.actor, event.org_id, event.scope_key, event.operation,
                 json.dumps(list(event.memory_ids)), json.dumps(dict(event.details), sort_keys=True), prev, digest),
            )
        return AuditEntry(seq, event, prev, digest)

    def audit_entries(
        self, *, after_seq: int = 0, limit: int = 1000, org_id: str | None = None, user_id: str | None = None
    ) -> list[AuditEntry]:
        sql = f"SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq > ?"
        args: list[Any] = [after_seq]
        if org_id is not None:
            sql += " AND org_id = ?"
            args.append(org_id)
        if user_id is not None:
            if org_id is None:
                raise ValueError("audit_entries: user_id needs org_id")
            sql += " AND scope_key >= ? AND scope_key < ?"
            args.extend(user_key_range(org_id, user_id))
        sql += " ORDER BY seq LIMIT ?"
        args.append(limit)
        with self._read() as conn:
            return [audit_entry(r) for r in conn.execute(sql, args).fetchall()]

    # -- data keys ---------------------------------------------------------------------------------

    def get_data_key(self, subject_key: str) -> DataKeyRecord | None:
        sql = f"SELECT {KEY_COLUMNS} FROM data_keys WHERE subject_key = ?"
        if self._inside_own_write():
            # Our own open transaction may hold the key it created a moment ago.
            row = self._writer.execute(sql, (subject_key,)).fetchone()
            return None if row is None else data_key(row, committed=False)
        with self._read() as conn:
            row = conn.execute(sql, (subject_key,)).fetchone()
        return None if row is None else data_key(row)

    def put_data_key(self, record: DataKeyRecord) -> DataKeyRecord:
        with self._joined_tx() as (conn, nested):
            conn.execute(
                f"INSERT INTO data_keys ({KEY_COLUMNS}) VALUES (?,?,?,?,NULL) ON CONFLICT (subject_key) DO UPDATE"
                " SET wrapped_key = excluded.wrapped_key, master_key_id = excluded.master_key_id,"
                " created_at = excluded.created_at, destroyed_at = NULL"
                " WHERE data_keys.destroyed_at IS NOT NULL OR data_keys.wrapped_key IS NULL",
                (record.subject_key, record.wrapped_key, record.master_key_id, record.created_at),
            )
            row = conn.execute(
                f"SELECT {KEY_COLUMNS} FROM data_keys WHERE subject_key = ?", (record.subject_key,)
            ).fetchone()
        return data_key(row, committed=not nested)

    def rewrap_data_keys(self, updates: Sequence[tuple[str, bytes, str]]) -> int:
        n = 0
        with self._tx() as conn:
            for subject, wrapped, master_id in updates:
                n += conn.execute(
                    "UPDATE data_keys SET wrapped_key = ?, master_key_id = ?"
                    " WHERE subject_key = ? AND destroyed_at IS NULL AND wrapped_key IS NOT NULL",
                    (wrapped, master_id, subject),
                ).rowcount
        return n

    def destroy_data_key(self, subject_key: str, at: float) -> DataKeyRecord | None:
        with self._tx() as conn:
            row = conn.execute("SELECT length(wrapped_key) FROM data_keys WHERE subject_key = ?",
                               (subject_key,)).fetchone()
            if row is None:
                return None
            # Zeros first, then NULL: the page image that outlives the row in the WAL holds no key bytes.
            conn.execute("UPDATE data_keys SET wrapped_key = zeroblob(?) WHERE subject_key = ?",
                         (row[0] or 0, subject_key))
            conn.execute(
                "UPDATE data_keys SET wrapped_key = NULL, destroyed_at = coalesce(destroyed_at, ?)"
                " WHERE subject_key = ?",
                (at, subject_key),
            )
            out = conn.execute(f"SELECT {KEY_COLUMNS} FROM data_keys WHERE subject_key = ?",
                               (subject_key,)).fetchone()
        return data_key(out)

    def holds_data_keys(self) -> bool:
        with self._read() as conn:
            return conn.execute(
                "SELECT 1 FROM data_keys WHERE wrapped_key IS NOT NULL AND destroyed_at IS NULL"
                " AND subject_key NOT LIKE '!%' LIMIT 1"
            ).fetchone() is not None

    def data_keys(self) -> list[DataKeyRecord]:
        with self._read() as conn:
            return [data_key(r) for r in conn.execute(f"SELECT {KEY_COLUMNS} FROM data_keys ORDER BY subject_key")]

    # -- retention policies and legal holds --------------------------------------------------------

    def put_retention_policy(self, policy: RetentionPolicy) -> RetentionPolicy:
        with self._tx() as conn:
            # UNIQUE treats NULLs as distinct, so the tier-wide policy (NULL category) is matched by hand.
            conn.execute(
                "DELETE FROM retention_policies WHERE org_id = ? AND tier = ? AND category IS ?",
                (policy.org_id, policy.tier, policy.category),
            )
            conn.execute(
                "INSERT INTO retention_policies (id, org_id, tier, category, max_age_seconds, created_at)"
                " VALUES (?,?,?,?,?,?)",
                (policy.id, policy.org_id, policy.tier, policy.category, policy.max_age_seconds, policy.created_at),
            )
        return policy

    def delete_retention_policy(self, org_id: str, tier: str, category: str | None) -> bool:
        with self._tx() as conn:
            return conn.execute(
                "DELETE FROM retention_policies WHERE org_id = ? AND tier = ? AND category IS ?",
                (org_id, tier, category),
            ).rowcount > 0

    def retention_policies(self, org_id: str | None = None) -> list[RetentionPolicy]:
        sql = "SELECT id, org_id, tier, category, max_age_seconds, created_at FROM retention_policies"
        args: tuple[Any, ...] = ()
        if org_id is not None:
            sql += " WHERE org_id = ?"
            args = (org_id,)
        with self._read() as conn:
            rows = conn.execute(sql + " ORDER BY org_id, tier, category", args).fetchall()
        return [RetentionPolicy(*r) for r in rows]

    def put_legal_hold(self, hold: LegalHold) -> LegalHold:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO legal_holds (org_id, user_id, reason, created_at) VALUES (?,?,?,?)"
                " ON CONFLICT (org_id, user_id) DO UPDATE SET reason = excluded.reason",
                (hold.org_id, hold.user_id, hold.reason, hold.created_at),
            )
            row = conn.execute(
                "SELECT org_id, user_id, reason, created_at FROM legal_holds WHERE org_id = ? AND user_id = ?",
                (hold.org_id, hold.user_id),
            ).fetchone()
        return LegalHold(*row)

    def delete_legal_hold(self, org_id: str, user_id: str) -> bool:
        with self._tx() as conn:
            return conn.execute(
                "DELETE FROM legal_holds WHERE org_id = ? AND user_id = ?", (org_id, user_id)
            ).rowcount > 0

    def legal_holds(self, org_id: str | None = None) -> list[LegalHold]:
        sql = "SELECT org_id, user_id, reason, created_at FROM legal_holds"
        args: tuple[Any, ...] = ()
        if org_id is not None:
            sql += " WHERE org_id = ?"
            args = (org_id,)
        with self._read() as conn:
            return [LegalHold(*r) for r in conn.execute(sql + " ORDER BY org_id, user_id", args).fetchall()]

    # -- purges ------------------------------------------------------------------------------------

    def _candidates(
        self, table: str, age_column: str, org_id: str, older_than: float,
        category: str | None, exclude_categories: Sequence[str],
    ) -> list[int]:
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT rid, org_id, user_id, agent_id, run_id, metadata FROM {table}"
                f" WHERE org_id = ? AND {age_column} < ? AND {_NOT_HELD}",
                (org_id, older_than, org_id),
            ).fetchall()
        if category is None and not exclude_categories:
            return [r[0] for r in rows]
        out = []
        for rid, org, user, agent, run, meta in rows:
            # Sealed metadata is only readable here, after the codec opens it.
            metadata = json.loads(self.codec.open(Scope(org, user, agent, run), meta))
            if in_category(metadata, category, exclude_categories):
                out.append(rid)
        return out

    def purge_memories(
        self, org_id: str, older_than: float, *, category: str | None = None, exclude_categories: Sequence[str] = ()
    ) -> PurgeResult:
        rids = self._candidates("memories", "updated_at", org_id, older_than, category, exclude_categories)
        result = PurgeResult()
        for start in range(0, len(rids), _CHUNK):
            result.merge(self._purge_memory_rids(org_id, older_than, rids[start : start + _CHUNK]))
        return result

    def _purge_memory_rids(self, org_id: str, older_than: float, rids: Sequence[int]) -> PurgeResult:
        result = PurgeResult()
        counts = result.counts
        with self._tx() as conn:
            # Checked again under the write lock: an update or a new hold since the scan wins.
            rows = conn.execute(
                f"SELECT rid, id, org_id, user_id, agent_id, run_id FROM memories WHERE rid IN ({_marks(len(rids))})"
                f" AND updated_at < ? AND {_NOT_HELD}",
                [*rids, older_than, org_id],
            ).fetchall()
            by_scope: dict[Scope, list[tuple[int, str]]] = {}
            for rid, ident, org, user, agent, run in rows:
                by_scope.setdefault(Scope(org, user, agent, run), []).append((rid, ident))

            def delete(sql: str, args: Sequence[Any], table: str) -> None:
                counts[table] = counts.get(table, 0) + conn.execute(sql, args).rowcount

            for scope, items in by_scope.items():
                key, ids, rid_list = scope.key, [i for _, i in items], [r for r, _ in items]
                marks = _marks(len(items))
                delete(f"DELETE FROM memory_vectors WHERE memory_rid IN ({marks})", rid_list, "memory_vectors")
                delete(f"DELETE FROM memories WHERE rid IN ({marks})", rid_list, "memories")
                delete(f"DELETE FROM history WHERE scope_key = ? AND memory_id IN ({marks})", [key, *ids], "history")
                delete(f"DELETE FROM memory_entities WHERE scope_key = ? AND memory_id IN ({marks})", [key, *ids],
                    "memory_entities")
                delete(f"DELETE FROM edges WHERE scope_key = ? AND memory_id IN ({marks})", [key, *ids], "edges")
                delete(f"DELETE FROM conflicts WHERE scope_key = ? AND (new_memory_id IN ({marks})"
                    f" OR old_memory_id IN ({marks}))", [key, *ids, *ids], "conflicts")
                counts["entities"] = counts.get("entities", 0) + self._drop_orphan_entities(conn, key)
                result.deleted[scope] = ids
            self._bump(conn, [s.key for s in by_scope])
        for scope in result.deleted:
            self.index.drop(scope.key)
        return result

    def _drop_orphan_entities(self, conn: sqlite3.Connection, key: str) -> int:
        return conn.execute(ORPHAN_ENTITIES, (key,)).rowcount

    def purge_episodes(
        self, org_id: str, older_than: float, *, category: str | None = None, exclude_categories: Sequence[str] = ()
    ) -> PurgeResult:
        rids = self._candidates("episodes", "created_at", org_id, older_than, category, exclude_categories)
        result = PurgeResult()
        counts = result.counts
        for start in range(0, len(rids), _CHUNK):
            chunk = rids[start : start + _CHUNK]
            with self._tx() as conn:
                rows = conn.execute(
                    "SELECT rid, id, org_id, user_id, agent_id, run_id FROM episodes"
                    f" WHERE rid IN ({_marks(len(chunk))}) AND created_at < ? AND {_NOT_HELD}",
                    [*chunk, older_than, org_id],
                ).fetchall()
                by_scope: dict[Scope, list[tuple[int, str]]] = {}
                for rid, ident, org, user, agent, run in rows:
                    by_scope.setdefault(Scope(org, user, agent, run), []).append((rid, ident))
                for scope, items in by_scope.items():
                    marks = _marks(len(items))
                    ids = [i for _, i in items]
                    counts["episodes"] = counts.get("episodes", 0) + conn.execute(
                        f"DELETE FROM episodes WHERE rid IN ({marks})", [r for r, _ in items]
                    ).rowcount
                    counts["edges"] = counts.get("edges", 0) + conn.execute(
                        f"DELETE FROM edges WHERE scope_key = ? AND memory_id IS NULL AND episode_id IN ({marks})",
                        [scope.key, *ids],
                    ).rowcount
                    counts["entities"] = counts.get("entities", 0) + self._drop_orphan_entities(conn, scope.key)
                    result.deleted.setdefault(scope, []).extend(ids)
        return result

    def idle_conversations(self, org_id: str, older_than: float) -> list[tuple[Scope, str]]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT org_id, user_id, agent_id, run_id, conversation_id FROM episodes"
                f" WHERE org_id = ? AND conversation_id IS NOT NULL AND {_NOT_HELD}"
                " GROUP BY scope_key, conversation_id HAVING max(created_at) < ?",
                (org_id, org_id, older_than),
            ).fetchall()
        return [(Scope(r[0], r[1], r[2], r[3]), r[4]) for r in rows]

    # -- erasure and export ------------------------------------------------------------------------

    def user_scopes(self, org_id: str, user_id: str) -> list[Scope]:
        low, high = user_key_range(org_id, user_id)
        union = " UNION ".join(
            f"SELECT scope_key FROM {t} WHERE scope_key >= ? AND scope_key < ?" for t in _SCOPED_TABLES
        )
        with self._read() as conn:
            keys = [r[0] for r in conn.execute(union, [low, high] * len(_SCOPED_TABLES)).fetchall()]
        scopes = {parse_scope_key(k) for k in keys}
        return sorted((s for s in scopes if s.org_id == org_id and s.user_id == user_id), key=lambda s: s.key)

    def history_memory_ids(self, scope: Scope) -> list[str]:
        with self._read() as conn:
            rows = conn.execute(HISTORY_MEMORY_IDS, (scope.key,)).fetchall()
        return [r[0] for r in rows]

    def graph_rows(self, scope: Scope) -> GraphRows:
        key = scope.key
        with self._read() as conn:
            links = conn.execute(GRAPH_LINKS, (key, key)).fetchall()
            edges = conn.execute(GRAPH_EDGES, (key, key, key)).fetchall()
        return GraphRows([tuple(r) for r in links], [tuple(r) for r in edges])  # type: ignore[misc]

    def compact(self) -> dict[str, bool]:
        out = {"fts_optimized": False, "vacuumed": False, "wal_truncated": False}
        with self._write_lock:
            conn = self._writer
            try:
                # An FTS 'delete' only masks a term: the term stays in older segments until they merge.
                for fts in ("episodes_fts", "memories_fts"):
                    conn.execute(f"INSERT INTO {fts} ({fts}) VALUES ('optimize')")
                out["fts_optimized"] = True
                if self.path == ":memory:":
                    return out
                conn.execute("VACUUM")
                out["vacuumed"] = True
                busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
                out["wal_truncated"] = busy == 0
            except sqlite3.Error as exc:
                raise BackendError(f"sqlite store: compaction failed: {exc}") from exc
        return out
