"""What the privacy tier does its own way on SQLite (a mixin of SQLiteStore): the audit chain and data keys
under the single writer (a key created inside ``apply`` joins its transaction), policy and hold writes,
purge deletes that keep the vector index and scope versions in step, and compaction. The rest is shared
(memstrata.backends.sql.privacy)."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from memstrata.backends.sql.privacy import (
    AUDIT_COLUMNS,
    DATA_KEY_COLUMNS,
    HOLD_COLUMNS,
    NOT_HELD,
    SQLPrivacy,
    by_scope,
    data_key,
)
from memstrata.backends.sql.store import SCOPE_TABLES
from memstrata.errors import BackendError
from memstrata.models import Scope
from memstrata.tiers import privacy as tier

if TYPE_CHECKING:
    from memstrata.backends.sqlite_conn import Connections


def _marks(n: int) -> str:
    return ",".join("?" * n)


class SQLitePrivacy(SQLPrivacy):
    """Implements the engine half of memstrata.tiers.privacy.PrivacyTier on the store's connections."""

    if TYPE_CHECKING:  # provided by SQLiteStore
        path: str
        db: Connections

    def _bump(self, conn: sqlite3.Connection, keys: Sequence[str]) -> list[int]:
        """Move each scope's version on: other processes then reload their vector index and entity cache.
        A new row starts from the clock (microseconds), so a scope deleted and written again never shows
        a version it had before."""
        start = time.time_ns() // 1000
        return [
            int(conn.execute(
                "INSERT INTO scope_versions (scope_key, version) VALUES (?, ?)"
                " ON CONFLICT (scope_key) DO UPDATE SET version = version + 1 RETURNING version",
                (key, start),
            ).fetchone()[0])
            for key in keys
        ]

    # -- audit and data keys -----------------------------------------------------------------------

    def append_audit(self, event: tier.AuditEvent, chain: tier.ChainFn) -> tier.AuditEntry:
        with self.db.tx() as conn:
            last = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
            seq, prev = (last[0] + 1, last[1]) if last else (1, tier.GENESIS_HASH)
            digest = chain(seq, prev)
            conn.execute(
                f"INSERT INTO audit_log ({AUDIT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (seq, event.at, event.actor, event.org_id, event.scope_key, event.operation,
                 json.dumps(list(event.memory_ids)), json.dumps(dict(event.details), sort_keys=True), prev, digest),
            )
        return tier.AuditEntry(seq, event, prev, digest)

    def get_data_key(self, subject_key: str) -> tier.DataKeyRecord | None:
        if self.db.inside_own_write():
            # Our own open transaction may hold the key it created a moment ago.
            row = self.db.writer.execute(
                f"SELECT {DATA_KEY_COLUMNS} FROM data_keys WHERE subject_key = ?", (subject_key,)
            ).fetchone()
            return None if row is None else data_key(row, committed=False)
        return super().get_data_key(subject_key)

    def put_data_key(self, record: tier.DataKeyRecord) -> tier.DataKeyRecord:
        with self.db.joined_tx() as (conn, nested):
            conn.execute(
                f"INSERT INTO data_keys ({DATA_KEY_COLUMNS}) VALUES (?,?,?,?,NULL) ON CONFLICT (subject_key)"
                " DO UPDATE SET wrapped_key = excluded.wrapped_key, master_key_id = excluded.master_key_id,"
                " created_at = excluded.created_at, destroyed_at = NULL"
                " WHERE data_keys.destroyed_at IS NOT NULL OR data_keys.wrapped_key IS NULL",
                (record.subject_key, record.wrapped_key, record.master_key_id, record.created_at),
            )
            row = conn.execute(
                f"SELECT {DATA_KEY_COLUMNS} FROM data_keys WHERE subject_key = ?", (record.subject_key,)
            ).fetchone()
        return data_key(row, committed=not nested)

    def destroy_data_key(self, subject_key: str, at: float) -> tier.DataKeyRecord | None:
        self._entity_cache.drop()  # names opened with the key must not outlive it in memory
        with self.db.tx() as conn:
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
            out = conn.execute(f"SELECT {DATA_KEY_COLUMNS} FROM data_keys WHERE subject_key = ?",
                               (subject_key,)).fetchone()
        return data_key(out)

    # -- retention policies and legal holds --------------------------------------------------------

    def put_retention_policy(self, policy: tier.RetentionPolicy) -> tier.RetentionPolicy:
        with self.db.tx() as conn:
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

    def put_legal_hold(self, hold: tier.LegalHold) -> tier.LegalHold:
        with self.db.tx() as conn:
            conn.execute(
                f"INSERT INTO legal_holds ({HOLD_COLUMNS}) VALUES (?,?,?,?)"
                " ON CONFLICT (org_id, user_id) DO UPDATE SET reason = excluded.reason",
                (hold.org_id, hold.user_id, hold.reason, hold.created_at),
            )
            row = conn.execute(
                f"SELECT {HOLD_COLUMNS} FROM legal_holds WHERE org_id = ? AND user_id = ?",
                (hold.org_id, hold.user_id),
            ).fetchone()
        return tier.LegalHold(*row)

    # -- purges ------------------------------------------------------------------------------------

    def _purge_memory_rows(
        self, conn: sqlite3.Connection, org_id: str, older_than: float, chunk: Sequence[tuple[str, Any]]
    ) -> tier.PurgeResult:
        result = tier.PurgeResult()
        counts = result.counts
        rids = [rid for _, rid in chunk]
        # Checked again under the write lock: an update or a new hold since the scan wins.
        rows = conn.execute(
            f"SELECT org_id, user_id, agent_id, run_id, rid, id FROM memories WHERE rid IN ({_marks(len(rids))})"
            f" AND updated_at < ? AND {NOT_HELD}",
            [*rids, older_than, org_id],
        ).fetchall()
        ids_of = by_scope([(*r[:4], r[5]) for r in rows])

        def delete(statement: str, args: Sequence[Any], table: str) -> None:
            counts[table] = counts.get(table, 0) + conn.execute(statement, args).rowcount

        for scope, rid_list in by_scope(rows).items():
            key, ids = scope.key, ids_of[scope]
            marks = _marks(len(ids))
            delete(f"DELETE FROM memory_vectors WHERE memory_rid IN ({marks})", rid_list, "memory_vectors")
            delete(f"DELETE FROM memories WHERE rid IN ({marks})", rid_list, "memories")
            for table in ("history", "memory_entities", "edges"):
                delete(f"DELETE FROM {table} WHERE scope_key = ? AND memory_id IN ({marks})", [key, *ids], table)
            delete(f"DELETE FROM conflicts WHERE scope_key = ? AND (new_memory_id IN ({marks})"
                   f" OR old_memory_id IN ({marks}))", [key, *ids, *ids], "conflicts")
            counts["entities"] = counts.get("entities", 0) + self._drop_orphan_entities(conn, key)
            result.deleted[scope] = ids
        self._bump(conn, [s.key for s in result.deleted])
        return result

    def _purge_episode_rows(
        self, conn: sqlite3.Connection, org_id: str, older_than: float, chunk: Sequence[tuple[str, Any]]
    ) -> tier.PurgeResult:
        result = tier.PurgeResult()
        counts = result.counts
        wanted: dict[str, list[str]] = {}
        for key, ident in chunk:
            wanted.setdefault(key, []).append(ident)
        for key, ids in wanted.items():
            marks = _marks(len(ids))
            rows = conn.execute(
                f"SELECT org_id, user_id, agent_id, run_id, id FROM episodes WHERE scope_key = ? AND id IN ({marks})"
                f" AND created_at < ? AND {NOT_HELD}",
                [key, *ids, older_than, org_id],
            ).fetchall()
            for scope, gone in by_scope(rows).items():
                marks = _marks(len(gone))
                counts["episodes"] = counts.get("episodes", 0) + conn.execute(
                    f"DELETE FROM episodes WHERE scope_key = ? AND id IN ({marks})", [key, *gone]
                ).rowcount
                counts["edges"] = counts.get("edges", 0) + conn.execute(
                    f"DELETE FROM edges WHERE scope_key = ? AND memory_id IS NULL AND episode_id IN ({marks})",
                    [key, *gone],
                ).rowcount
                counts["entities"] = counts.get("entities", 0) + self._drop_orphan_entities(conn, key)
                result.deleted.setdefault(scope, []).extend(gone)
        self._bump(conn, [s.key for s in result.deleted])
        return result

    # -- erasure and compaction --------------------------------------------------------------------

    def user_scopes(self, org_id: str, user_id: str) -> list[Scope]:
        low, high = tier.user_key_range(org_id, user_id)
        tables = (*(t for t in SCOPE_TABLES if t not in ("memory_sentences", "memory_vectors")), "scope_versions")
        union = " UNION ".join(f"SELECT scope_key FROM {t} WHERE scope_key >= ? AND scope_key < ?" for t in tables)
        with self.db.read() as conn:
            keys = [r[0] for r in conn.execute(union, [low, high] * len(tables)).fetchall()]
        scopes = {tier.parse_scope_key(k) for k in keys}
        return sorted((s for s in scopes if s.org_id == org_id and s.user_id == user_id), key=lambda s: s.key)

    def compact(self) -> dict[str, bool]:
        out = {"fts_optimized": False, "vacuumed": False, "wal_truncated": False}
        with self.db.write_lock:
            conn = self.db.writer
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
