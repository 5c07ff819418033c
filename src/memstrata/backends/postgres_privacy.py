"""Audit log, data keys, retention and legal holds for the PostgreSQL store (a mixin of PostgresStore).

The same contract as the SQLite mixin, with PostgreSQL's concurrency in mind: audit appends are
serialised by a transaction-scoped advisory lock (any number of servers share one chain), a legal hold
waits for purges of its org that are running and every later purge sees it, and a purge locks the
per-scope counters before the rows, in the order ``apply`` does, so the two never deadlock.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from psycopg import sql

from memstrata.backends.privacy_sql import (
    AUDIT_COLUMNS,
    GRAPH_EDGES,
    GRAPH_LINKS,
    HISTORY_MEMORY_IDS,
    KEY_COLUMNS,
    ORPHAN_ENTITIES,
    audit_entry,
    data_key,
    pg,
)
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
    import psycopg

    from memstrata.tiers.base import Codec

T = TypeVar("T")

_POLICY_COLUMNS = "id, org_id, tier, category, max_age_seconds, created_at"
_HOLD_COLUMNS = "org_id, user_id, reason, created_at"
# Advisory lock classes (the first key of the two-key form); the second key is 0 or the org's hash.
_AUDIT_LOCK = 0x6D730001
_HOLD_LOCK = 0x6D730002
_CHUNK = 500
# Rows of users under legal hold in the org are kept; the subquery runs inside the deleting statement.
_NOT_HELD = "(user_id IS NULL OR user_id NOT IN (SELECT user_id FROM legal_holds WHERE org_id = %s))"
# Every table holding a scope's rows, for ``user_scopes``; each has an index led by scope_key.
_DATA_TABLES = ("memories", "episodes", "history", "entities", "memory_entities", "edges", "conflicts")


def _c_range(column: str) -> str:
    """A bytewise range test: ``user_key_range`` bounds assume C ordering, not the database's collation."""
    return f'{column} COLLATE "C" >= %s AND {column} COLLATE "C" < %s'


def _by_scope(rows: Sequence[Sequence[Any]]) -> dict[Scope, list[Any]]:
    """(org, user, agent, run, item, ...) rows grouped by their scope: {scope: [item, ...]}."""
    out: dict[Scope, list[Any]] = {}
    for org, user, agent, run, item, *_ in rows:
        out.setdefault(Scope(org, user, agent, run), []).append(item)
    return out


class PostgresPrivacyMixin(PrivacyTier):
    """Implements memstrata.tiers.privacy.PrivacyTier on the store's connection pool."""

    if TYPE_CHECKING:  # provided by PostgresStore
        codec: Codec
        _sizes: dict[str, tuple[int, float]]

        def _run(self, fn: Callable[[psycopg.Connection], T], what: str, *, write: bool = False) -> T: ...
        def _meta_out(self, scope: Scope, raw: str) -> Any: ...

    # -- audit -------------------------------------------------------------------------------------

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

    def audit_entries(
        self, *, after_seq: int = 0, limit: int = 1000, org_id: str | None = None, user_id: str | None = None
    ) -> list[AuditEntry]:
        query = f"SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq > %s"
        args: list[Any] = [after_seq]
        if org_id is not None:
            query += " AND org_id = %s"
            args.append(org_id)
        if user_id is not None:
            if org_id is None:
                raise ValueError("audit_entries: user_id needs org_id")
            query += " AND " + _c_range("scope_key")
            args.extend(user_key_range(org_id, user_id))
        query += " ORDER BY seq LIMIT %s"
        args.append(limit)
        rows = self._run(lambda conn: conn.execute(query, args).fetchall(), "audit entries")  # type: ignore[arg-type]
        return [audit_entry(r) for r in rows]

    # -- data keys ---------------------------------------------------------------------------------

    def get_data_key(self, subject_key: str) -> DataKeyRecord | None:
        row = self._run(
            lambda conn: conn.execute(
                f"SELECT {KEY_COLUMNS} FROM data_keys WHERE subject_key = %s", (subject_key,)
            ).fetchone(),
            "get data key",
        )
        return None if row is None else data_key(row)

    def put_data_key(self, record: DataKeyRecord) -> DataKeyRecord:
        def write(conn: psycopg.Connection) -> DataKeyRecord:
            # ON CONFLICT waits for a concurrent first writer and then keeps its key: one key per subject.
            conn.execute(
                f"INSERT INTO data_keys ({KEY_COLUMNS}) VALUES (%s,%s,%s,%s,NULL) ON CONFLICT (subject_key)"
                " DO UPDATE SET wrapped_key = excluded.wrapped_key, master_key_id = excluded.master_key_id,"
                " created_at = excluded.created_at, destroyed_at = NULL"
                " WHERE data_keys.destroyed_at IS NOT NULL OR data_keys.wrapped_key IS NULL",
                (record.subject_key, record.wrapped_key, record.master_key_id, record.created_at),
            )
            row = conn.execute(
                f"SELECT {KEY_COLUMNS} FROM data_keys WHERE subject_key = %s", (record.subject_key,)
            ).fetchone()
            assert row is not None
            return data_key(row)

        # Always a transaction of its own (committed when it returns): PostgresStore.apply has the codec
        # prepare a scope's key before its own transaction starts.
        return self._run(write, "put data key", write=True)

    def rewrap_data_keys(self, updates: Sequence[tuple[str, bytes, str]]) -> int:
        def write(conn: psycopg.Connection) -> int:
            n = 0
            for subject, wrapped, master_id in updates:
                n += conn.execute(
                    "UPDATE data_keys SET wrapped_key = %s, master_key_id = %s"
                    " WHERE subject_key = %s AND destroyed_at IS NULL AND wrapped_key IS NOT NULL",
                    (wrapped, master_id, subject),
                ).rowcount
            return n

        return self._run(write, "rewrap data keys", write=True)

    def destroy_data_key(self, subject_key: str, at: float) -> DataKeyRecord | None:
        row = self._run(
            lambda conn: conn.execute(
                "UPDATE data_keys SET wrapped_key = NULL, destroyed_at = coalesce(destroyed_at, %s)"
                f" WHERE subject_key = %s RETURNING {KEY_COLUMNS}",
                (at, subject_key),
            ).fetchone(),
            "destroy data key",
            write=True,
        )
        return None if row is None else data_key(row)

    def holds_data_keys(self) -> bool:
        row = self._run(
            lambda conn: conn.execute(
                "SELECT 1 FROM data_keys WHERE wrapped_key IS NOT NULL AND destroyed_at IS NULL"
                " AND NOT starts_with(subject_key, '!') LIMIT 1"
            ).fetchone(),
            "data keys",
        )
        return row is not None

    def data_keys(self) -> list[DataKeyRecord]:
        rows = self._run(
            lambda conn: conn.execute(f"SELECT {KEY_COLUMNS} FROM data_keys ORDER BY subject_key").fetchall(),
            "data keys",
        )
        return [data_key(r) for r in rows]

    # -- retention policies and legal holds --------------------------------------------------------

    def put_retention_policy(self, policy: RetentionPolicy) -> RetentionPolicy:
        row = self._run(
            lambda conn: conn.execute(
                f"INSERT INTO retention_policies ({_POLICY_COLUMNS}) VALUES (%s,%s,%s,%s,%s,%s)"
                " ON CONFLICT (org_id, tier, (coalesce(category, ''))) DO UPDATE SET id = excluded.id,"
                " max_age_seconds = excluded.max_age_seconds, created_at = excluded.created_at"
                f" RETURNING {_POLICY_COLUMNS}",
                (policy.id, policy.org_id, policy.tier, policy.category, policy.max_age_seconds, policy.created_at),
            ).fetchone(),
            "put retention policy",
            write=True,
        )
        assert row is not None
        return RetentionPolicy(*row)

    def delete_retention_policy(self, org_id: str, tier: str, category: str | None) -> bool:
        return self._run(
            lambda conn: conn.execute(
                "DELETE FROM retention_policies WHERE org_id = %s AND tier = %s AND category IS NOT DISTINCT FROM %s",
                (org_id, tier, category),
            ).rowcount > 0,
            "delete retention policy",
            write=True,
        )

    def _by_org(self, columns: str, table: str, order: str, org_id: str | None) -> list[tuple[Any, ...]]:
        """Every row of a control table, or one org's, in ``order``."""
        where, args = (" WHERE org_id = %s", [org_id]) if org_id is not None else ("", [])
        query = f"SELECT {columns} FROM {table}{where} ORDER BY {order}"
        return self._run(lambda conn: conn.execute(query, args).fetchall(), f"list {table}")  # type: ignore[arg-type]

    def retention_policies(self, org_id: str | None = None) -> list[RetentionPolicy]:
        rows = self._by_org(_POLICY_COLUMNS, "retention_policies", "org_id, tier, category NULLS FIRST", org_id)
        return [RetentionPolicy(*r) for r in rows]

    def put_legal_hold(self, hold: LegalHold) -> LegalHold:
        def write(conn: psycopg.Connection) -> Sequence[Any]:
            # Exclusive against the org's purges: one running now finishes first, any later one sees the hold.
            conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_HOLD_LOCK, hold.org_id))
            row = conn.execute(
                f"INSERT INTO legal_holds ({_HOLD_COLUMNS}) VALUES (%s,%s,%s,%s) ON CONFLICT (org_id, user_id)"
                f" DO UPDATE SET reason = excluded.reason RETURNING {_HOLD_COLUMNS}",
                (hold.org_id, hold.user_id, hold.reason, hold.created_at),
            ).fetchone()
            assert row is not None
            return row

        return LegalHold(*self._run(write, "put legal hold", write=True))

    def delete_legal_hold(self, org_id: str, user_id: str) -> bool:
        return self._run(
            lambda conn: conn.execute(
                "DELETE FROM legal_holds WHERE org_id = %s AND user_id = %s", (org_id, user_id)
            ).rowcount > 0,
            "delete legal hold",
            write=True,
        )

    def legal_holds(self, org_id: str | None = None) -> list[LegalHold]:
        return [LegalHold(*r) for r in self._by_org(_HOLD_COLUMNS, "legal_holds", "org_id, user_id", org_id)]

    # -- purges ------------------------------------------------------------------------------------

    def _candidates(
        self, table: str, key_column: str, age_column: str, org_id: str, older_than: float,
        category: str | None, exclude_categories: Sequence[str],
    ) -> list[tuple[str, Any]]:
        """(scope key, row key) of the org's rows older than the cut-off that the category test selects."""
        rows = self._run(
            lambda conn: conn.execute(
                sql.SQL(
                    "SELECT org_id, user_id, agent_id, run_id, scope_key, {}, metadata::text FROM {}"
                    " WHERE org_id = %s AND {} < %s AND " + _NOT_HELD
                ).format(sql.Identifier(key_column), sql.Identifier(table), sql.Identifier(age_column)),
                (org_id, older_than, org_id),
            ).fetchall(),
            f"purge {table}: select",
        )
        out = []
        for org, user, agent, run, key, ident, meta in rows:
            if category is not None or exclude_categories:
                # Sealed metadata is only readable here, after the codec opens it.
                metadata = self._meta_out(Scope(org, user, agent, run), meta)
                if not in_category(metadata, category, exclude_categories):
                    continue
            out.append((key, ident))
        return out

    @staticmethod
    def _hold_purges(conn: psycopg.Connection, org_id: str) -> None:
        """Shared with other purges, exclusive against a new legal hold of the org (see put_legal_hold)."""
        conn.execute("SELECT pg_advisory_xact_lock_shared(%s, hashtext(%s))", (_HOLD_LOCK, org_id))

    def _purge(
        self, table: str, key_column: str, age_column: str, org_id: str, older_than: float,
        category: str | None, exclude_categories: Sequence[str],
        delete: Callable[[psycopg.Connection, str, float, Sequence[tuple[str, Any]]], PurgeResult],
    ) -> PurgeResult:
        """Select the candidates once, then delete them in chunks, each chunk one transaction."""
        found = self._candidates(table, key_column, age_column, org_id, older_than, category, exclude_categories)
        result = PurgeResult()
        for start in range(0, len(found), _CHUNK):
            chunk = found[start : start + _CHUNK]
            result.merge(self._run(lambda conn, chunk=chunk: delete(conn, org_id, older_than, chunk),  # type: ignore[misc]
                                   f"purge {table}", write=True))
        return result

    def purge_memories(
        self, org_id: str, older_than: float, *, category: str | None = None, exclude_categories: Sequence[str] = ()
    ) -> PurgeResult:
        result = self._purge("memories", "rid", "updated_at", org_id, older_than, category, exclude_categories,
                             self._purge_memory_rows)
        for scope in result.deleted:
            self._sizes.pop(scope.key, None)
        self._sizes.pop("", None)
        return result

    def _purge_memory_rows(
        self, conn: psycopg.Connection, org_id: str, older_than: float, chunk: Sequence[tuple[str, int]]
    ) -> PurgeResult:
        result = PurgeResult()
        counts = result.counts
        self._hold_purges(conn, org_id)
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
        ids_of = _by_scope([(r[0], r[1], r[2], r[3], r[5]) for r in rows])
        rids_of = _by_scope(rows)
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

    @staticmethod
    def _drop_orphan_entities(conn: psycopg.Connection, key: str) -> int:
        return conn.execute(pg(ORPHAN_ENTITIES), (key,)).rowcount

    def purge_episodes(
        self, org_id: str, older_than: float, *, category: str | None = None, exclude_categories: Sequence[str] = ()
    ) -> PurgeResult:
        return self._purge("episodes", "id", "created_at", org_id, older_than, category, exclude_categories,
                           self._purge_episode_rows)

    def _purge_episode_rows(
        self, conn: psycopg.Connection, org_id: str, older_than: float, chunk: Sequence[tuple[str, str]]
    ) -> PurgeResult:
        result = PurgeResult()
        counts = result.counts
        self._hold_purges(conn, org_id)
        wanted: dict[str, list[str]] = {}
        for key, ident in chunk:
            wanted.setdefault(key, []).append(ident)
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
            scope = Scope(rows[0][0], rows[0][1], rows[0][2], rows[0][3])
            result.deleted.setdefault(scope, []).extend(gone)
        return result

    def idle_conversations(self, org_id: str, older_than: float) -> list[tuple[Scope, str]]:
        rows = self._run(
            lambda conn: conn.execute(
                "SELECT org_id, user_id, agent_id, run_id, conversation_id FROM episodes"
                " WHERE org_id = %s AND conversation_id IS NOT NULL AND " + _NOT_HELD
                + " GROUP BY scope_key, org_id, user_id, agent_id, run_id, conversation_id HAVING max(created_at) < %s"
                " ORDER BY scope_key, conversation_id",
                (org_id, org_id, older_than),
            ).fetchall(),
            "idle conversations",
        )
        return [(Scope(r[0], r[1], r[2], r[3]), r[4]) for r in rows]

    # -- erasure and export ------------------------------------------------------------------------

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

    def history_memory_ids(self, scope: Scope) -> list[str]:
        rows = self._run(
            lambda conn: conn.execute(pg(HISTORY_MEMORY_IDS), (scope.key,)).fetchall(),
            "history memory ids",
        )
        return [r[0] for r in rows]

    def graph_rows(self, scope: Scope) -> GraphRows:
        key = scope.key

        def read(conn: psycopg.Connection) -> GraphRows:
            links = conn.execute(pg(GRAPH_LINKS), (key, key)).fetchall()
            edges = conn.execute(pg(GRAPH_EDGES), (key, key, key)).fetchall()
            return GraphRows([tuple(r) for r in links], [tuple(r) for r in edges])  # type: ignore[misc]

        return self._run(read, "graph rows")

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
