"""What the privacy tier does its own way on PostgreSQL (a mixin of PostgresStore); the rest is shared
(memstrata.backends.sql.privacy).

PostgreSQL's concurrency shapes these: audit appends are serialised by a transaction-scoped advisory
lock (any number of servers share one chain), a legal hold waits for purges of its org that are
running and every later purge sees it, and a purge locks the per-scope counters before the rows, in
the order ``apply`` does, so the two never deadlock.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from psycopg import sql

from memstrata.backends.sql.privacy import (
    AUDIT_COLUMNS,
    DATA_KEY_COLUMNS,
    HOLD_COLUMNS,
    POLICY_COLUMNS,
    SQLPrivacy,
    by_scope,
    data_key,
)
from memstrata.models import Scope
from memstrata.tiers.privacy import (
    GENESIS_HASH,
    AuditEntry,
    AuditEvent,
    ChainFn,
    DataKeyRecord,
    LegalHold,
    PurgeResult,
    RetentionPolicy,
    parse_scope_key,
    user_key_range,
)

if TYPE_CHECKING:
    import psycopg

# Advisory lock classes (the first key of the two-key form); the second key is 0 or the org's hash.
_AUDIT_LOCK = 0x6D730001
_HOLD_LOCK = 0x6D730002
# Rows of users under legal hold in the org are kept; the subquery runs inside the deleting statement.
_NOT_HELD = "(user_id IS NULL OR user_id NOT IN (SELECT user_id FROM legal_holds WHERE org_id = %s))"
# Every table holding a scope's rows, for ``user_scopes``; each has an index led by scope_key.
_DATA_TABLES = ("memories", "episodes", "history", "entities", "memory_entities", "edges", "conflicts")


def _c_range(column: str) -> str:
    """A bytewise range test: ``user_key_range`` bounds assume C ordering, not the database's collation."""
    return f'{column} COLLATE "C" >= %s AND {column} COLLATE "C" < %s'


def _hold_purges(conn: psycopg.Connection, org_id: str) -> None:
    """Shared with other purges, exclusive against a new legal hold of the org (see put_legal_hold)."""
    conn.execute("SELECT pg_advisory_xact_lock_shared(%s, hashtext(%s))", (_HOLD_LOCK, org_id))


class PostgresPrivacy(SQLPrivacy):
    """Implements the engine half of memstrata.tiers.privacy.PrivacyTier on the store's pool."""

    # -- audit and data keys -----------------------------------------------------------------------

    def append_audit(self, event: AuditEvent, chain: ChainFn) -> AuditEntry:
        def write(conn: psycopg.Connection) -> AuditEntry:
            # Held to COMMIT: the next appender reads this entry as its predecessor, never the same one.
            conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (_AUDIT_LOCK,))
            last = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
            seq, prev = (int(last[0]) + 1, last[1]) if last else (1, GENESIS_HASH)
            digest = chain(seq, prev)
            conn.execute(
                f"INSERT INTO audit_log ({AUDIT_COLUMNS}) VALUES (%s,%s,%s,%s,%s,%s,%s::jsonb,%s,%s,%s)",
                (seq, event.at, event.actor, event.org_id, event.scope_key, event.operation,
                 json.dumps(list(event.memory_ids)), json.dumps(dict(event.details), sort_keys=True), prev, digest),
            )
            return AuditEntry(seq, event, prev, digest)

        return self._run(write, "append audit", write=True)

    def put_data_key(self, record: DataKeyRecord) -> DataKeyRecord:
        def write(conn: psycopg.Connection) -> DataKeyRecord:
            # ON CONFLICT waits for a concurrent first writer and then keeps its key: one key per subject.
            conn.execute(
                f"INSERT INTO data_keys ({DATA_KEY_COLUMNS}) VALUES (%s,%s,%s,%s,NULL) ON CONFLICT (subject_key)"
                " DO UPDATE SET wrapped_key = excluded.wrapped_key, master_key_id = excluded.master_key_id,"
                " created_at = excluded.created_at, destroyed_at = NULL"
                " WHERE data_keys.destroyed_at IS NOT NULL OR data_keys.wrapped_key IS NULL",
                (record.subject_key, record.wrapped_key, record.master_key_id, record.created_at),
            )
            row = conn.execute(
                f"SELECT {DATA_KEY_COLUMNS} FROM data_keys WHERE subject_key = %s", (record.subject_key,)
            ).fetchone()
            assert row is not None
            return data_key(row)

        # Always a transaction of its own (committed when it returns): PostgresStore.apply has the codec
        # prepare a scope's key before its own transaction starts.
        return self._run(write, "put data key", write=True)

    def destroy_data_key(self, subject_key: str, at: float) -> DataKeyRecord | None:
        self._entity_cache.drop()  # names opened with the key must not outlive it in memory
        row = self._run(
            lambda conn: conn.execute(
                "UPDATE data_keys SET wrapped_key = NULL, destroyed_at = coalesce(destroyed_at, %s)"
                f" WHERE subject_key = %s RETURNING {DATA_KEY_COLUMNS}",
                (at, subject_key),
            ).fetchone(),
            "destroy data key",
            write=True,
        )
        return None if row is None else data_key(row)

    # -- retention policies and legal holds --------------------------------------------------------

    def put_retention_policy(self, policy: RetentionPolicy) -> RetentionPolicy:
        row = self._run(
            lambda conn: conn.execute(
                f"INSERT INTO retention_policies ({POLICY_COLUMNS}) VALUES (%s,%s,%s,%s,%s,%s)"
                " ON CONFLICT (org_id, tier, (coalesce(category, ''))) DO UPDATE SET id = excluded.id,"
                " max_age_seconds = excluded.max_age_seconds, created_at = excluded.created_at"
                f" RETURNING {POLICY_COLUMNS}",
                (policy.id, policy.org_id, policy.tier, policy.category, policy.max_age_seconds, policy.created_at),
            ).fetchone(),
            "put retention policy",
            write=True,
        )
        assert row is not None
        return RetentionPolicy(*row)

    def put_legal_hold(self, hold: LegalHold) -> LegalHold:
        def write(conn: psycopg.Connection) -> Sequence[Any]:
            # Exclusive against the org's purges: one running now finishes first, any later one sees the hold.
            conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_HOLD_LOCK, hold.org_id))
            row = conn.execute(
                f"INSERT INTO legal_holds ({HOLD_COLUMNS}) VALUES (%s,%s,%s,%s) ON CONFLICT (org_id, user_id)"
                f" DO UPDATE SET reason = excluded.reason RETURNING {HOLD_COLUMNS}",
                (hold.org_id, hold.user_id, hold.reason, hold.created_at),
            ).fetchone()
            assert row is not None
            return row

        return LegalHold(*self._run(write, "put legal hold", write=True))

    # -- purges ------------------------------------------------------------------------------------

    def _purge_memory_rows(
        self, conn: psycopg.Connection, org_id: str, older_than: float, chunk: Sequence[tuple[str, int]]
    ) -> PurgeResult:
        result = PurgeResult()
        counts = result.counts
        _hold_purges(conn, org_id)
        # The scope counters first, in key order: the order apply() locks in, so the two cannot deadlock.
        conn.execute(
            "SELECT 1 FROM scope_counts WHERE scope_key = ANY(%s) ORDER BY scope_key FOR UPDATE",
            (sorted({k for k, _ in chunk}),),
        )
        # Checked again under the locks: an update or a new hold since the scan wins.
        rows = conn.execute(
            "SELECT org_id, user_id, agent_id, run_id, rid, id, fts_len FROM memories WHERE rid = ANY(%s)"
            " AND updated_at < %s AND " + _NOT_HELD + " FOR UPDATE",
            ([rid for _, rid in chunk], older_than, org_id),
        ).fetchall()
        ids_of = by_scope([(r[0], r[1], r[2], r[3], r[5]) for r in rows])
        rids_of = by_scope(rows)
        doc_len_of: dict[Scope, int] = {}
        for org, user, agent, run, _rid, _id, fts_len in rows:
            scope = Scope(org, user, agent, run)
            doc_len_of[scope] = doc_len_of.get(scope, 0) + int(fts_len)

        def delete(table: str, where: str, args: Sequence[Any]) -> int:
            n = conn.execute(sql.SQL("DELETE FROM {} WHERE " + where).format(sql.Identifier(table)), args).rowcount
            counts[table] = counts.get(table, 0) + n
            return n

        for scope, ids in ids_of.items():
            key, rids = scope.key, rids_of[scope]
            vectors = delete("memory_vectors", "memory_rid = ANY(%s)", (rids,))
            delete("memories", "scope_key = %s AND rid = ANY(%s)", (key, rids))
            delete("history", "scope_key = %s AND memory_id = ANY(%s)", (key, ids))
            delete("memory_entities", "scope_key = %s AND memory_id = ANY(%s)", (key, ids))
            delete("edges", "scope_key = %s AND memory_id = ANY(%s)", (key, ids))
            delete("conflicts", "scope_key = %s AND (new_memory_id = ANY(%s) OR old_memory_id = ANY(%s))",
                   (key, ids, ids))
            counts["entities"] = counts.get("entities", 0) + self._drop_orphan_entities(conn, key)
            conn.execute(
                "UPDATE scope_counts SET vectors = vectors - %s, docs = docs - %s, doc_len = doc_len - %s"
                " WHERE scope_key = %s",
                (vectors, len(ids), doc_len_of[scope], key),
            )
            result.deleted[scope] = list(ids)
        return result

    def _purge_episode_rows(
        self, conn: psycopg.Connection, org_id: str, older_than: float, chunk: Sequence[tuple[str, str]]
    ) -> PurgeResult:
        result = PurgeResult()
        counts = result.counts
        _hold_purges(conn, org_id)
        wanted: dict[str, list[str]] = {}
        for key, ident in chunk:
            wanted.setdefault(key, []).append(ident)
        # The scope counters first, as apply() locks them: the update below moves each scope's entity probe.
        conn.execute("SELECT 1 FROM scope_counts WHERE scope_key = ANY(%s) ORDER BY scope_key FOR UPDATE",
                     (sorted(wanted),))
        for key, ids in wanted.items():
            rows = conn.execute(
                "DELETE FROM episodes WHERE scope_key = %s AND id = ANY(%s) AND created_at < %s AND " + _NOT_HELD
                + " RETURNING org_id, user_id, agent_id, run_id, id",
                (key, ids, older_than, org_id),
            ).fetchall()
            if not rows:
                continue
            gone = [r[4] for r in rows]
            counts["episodes"] = counts.get("episodes", 0) + len(gone)
            counts["edges"] = counts.get("edges", 0) + conn.execute(
                "DELETE FROM edges WHERE scope_key = %s AND memory_id IS NULL AND episode_id = ANY(%s)", (key, gone)
            ).rowcount
            counts["entities"] = counts.get("entities", 0) + self._drop_orphan_entities(conn, key)
            conn.execute("UPDATE scope_counts SET vectors = vectors WHERE scope_key = %s", (key,))
            scope = Scope(rows[0][0], rows[0][1], rows[0][2], rows[0][3])
            result.deleted.setdefault(scope, []).extend(gone)
        return result

    # -- erasure and compaction --------------------------------------------------------------------

    def user_scopes(self, org_id: str, user_id: str) -> list[Scope]:
        low, high = user_key_range(org_id, user_id)
        # Every write of a derived row goes through apply(), which registers its scope in scope_counts;
        # episodes are written apart and carry the user in a column. A candidate counts if it still has rows.
        held = " OR ".join(
            f"EXISTS (SELECT 1 FROM {t} WHERE {t}.scope_key = c.k)" for t in _DATA_TABLES
        )
        rows = self._run(
            lambda conn: conn.execute(
                "SELECT k FROM (SELECT scope_key AS k FROM scope_counts WHERE " + _c_range("scope_key")
                + " UNION SELECT DISTINCT scope_key FROM episodes WHERE org_id = %s AND user_id = %s) c"
                f" WHERE {held}",
                (low, high, org_id, user_id),
            ).fetchall(),
            "user scopes",
        )
        scopes = {parse_scope_key(r[0]) for r in rows}
        return sorted((s for s in scopes if s.org_id == org_id and s.user_id == user_id), key=lambda s: s.key)

    def compact(self) -> dict[str, bool]:
        """VACUUM the data tables (dead row versions become free space) and rewrite the data key table.

        What PostgreSQL keeps beyond this — WAL segments until they are recycled, WAL archives, replicas'
        copies, base backups — is outside a store's reach; with encryption on it holds only ciphertext,
        which the destroyed data key made unreadable (docs/security.md)."""
        out = {"vacuumed": False, "data_keys_rewritten": False}

        def run(conn: psycopg.Connection) -> None:
            # Autocommit connection: VACUUM cannot run inside a transaction block.
            conn.execute("VACUUM (FULL) data_keys")
            out["data_keys_rewritten"] = True
            conn.execute(
                "VACUUM memories, memory_vectors, episodes, history, entities, memory_entities, edges, conflicts"
            )
            out["vacuumed"] = True

        self._run(run, "compact")
        return out
