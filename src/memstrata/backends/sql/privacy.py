"""The privacy tier's statements that read alike on both SQL engines: the audit log's reads, data keys,
retention policies and legal holds, idle conversations, and the portable graph of a scope. An engine
adds what its concurrency makes its own: appending to the audit chain, creating and destroying data
keys, writing policies and holds, purges, finding a user's scopes, and compaction."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from memstrata.backends.sealing import open_graph
from memstrata.models import Scope
from memstrata.tiers.privacy import (
    AuditEntry,
    AuditEvent,
    DataKeyRecord,
    GraphRows,
    LegalHold,
    PrivacyTier,
    PurgeResult,
    RetentionPolicy,
    in_category,
    user_key_range,
)

if TYPE_CHECKING:
    from memstrata.backends.sql.dialect import Dialect
    from memstrata.tiers.base import Codec

T = TypeVar("T")
_CHUNK = 500

AUDIT_COLUMNS = "seq, at, actor, org_id, scope_key, operation, memory_ids, details, prev_hash, hash"
DATA_KEY_COLUMNS = "subject_key, wrapped_key, master_key_id, created_at, destroyed_at"
POLICY_COLUMNS = "id, org_id, tier, category, max_age_seconds, created_at"
HOLD_COLUMNS = "org_id, user_id, reason, created_at"
# Rows of users under legal hold in the org are kept; the subquery runs inside the deleting statement.
NOT_HELD = "(user_id IS NULL OR user_id NOT IN (SELECT user_id FROM legal_holds WHERE org_id = ?))"
# Ids of every memory with history in a scope, deleted ones included, in the order they first appeared.
HISTORY_MEMORY_IDS = "SELECT memory_id FROM history WHERE scope_key = ? GROUP BY memory_id ORDER BY min(rid)"
# A scope's graph in portable form: (memory id, entity name, label) links and named edges.
GRAPH_LINKS = (
    "SELECT me.memory_id, e.name, e.label FROM memory_entities me JOIN entities e ON e.id = me.entity_id"
    " WHERE me.scope_key = ? AND e.scope_key = ? ORDER BY e.rid, me.memory_id"
)
GRAPH_EDGES = (
    "SELECT s.name, ed.relation, o.name, ed.memory_id, ed.episode_id, ed.created_at FROM edges ed"
    " JOIN entities s ON s.id = ed.subject_id JOIN entities o ON o.id = ed.object_id"
    " WHERE ed.scope_key = ? AND s.scope_key = ? AND o.scope_key = ? ORDER BY ed.rid"
)
# Entities of a scope that no memory names and no edge touches any more (after a purge).
ORPHAN_ENTITIES = (
    "DELETE FROM entities WHERE scope_key = ?"
    " AND NOT EXISTS (SELECT 1 FROM memory_entities me WHERE me.scope_key = entities.scope_key"
    "                 AND me.entity_id = entities.id)"
    " AND NOT EXISTS (SELECT 1 FROM edges e WHERE e.scope_key = entities.scope_key"
    "                 AND (e.subject_id = entities.id OR e.object_id = entities.id))"
)


def audit_entry(row: Sequence[Any]) -> AuditEntry:
    """An entry from ``AUDIT_COLUMNS``; ``memory_ids`` as JSON text (SQLite) or already decoded (jsonb)."""
    ids = row[6] if isinstance(row[6], list) else json.loads(row[6])
    event = AuditEvent(
        at=row[1], actor=row[2], org_id=row[3], scope_key=row[4], operation=row[5],
        memory_ids=tuple(ids), details=json.loads(row[7]),
    )
    return AuditEntry(seq=row[0], event=event, prev_hash=row[8], hash=row[9])


def data_key(row: Sequence[Any], committed: bool = True) -> DataKeyRecord:
    """A data key from ``DATA_KEY_COLUMNS``."""
    return DataKeyRecord(row[0], None if row[1] is None else bytes(row[1]), row[2], row[3], row[4], committed)


def by_scope(rows: Sequence[Sequence[Any]]) -> dict[Scope, list[Any]]:
    """(org, user, agent, run, item, ...) rows grouped by their scope: {scope: [item, ...]}."""
    out: dict[Scope, list[Any]] = {}
    for org, user, agent, run, item, *_ in rows:
        out.setdefault(Scope(org, user, agent, run), []).append(item)
    return out


class SQLPrivacy(PrivacyTier):
    """The engine-neutral half of memstrata.tiers.privacy.PrivacyTier on an SQL store."""

    if TYPE_CHECKING:  # provided by SQLStore
        d: ClassVar[Dialect]
        codec: Codec

        def _run(self, fn: Callable[[Any], T], what: str, *, write: bool = False) -> T: ...
        def _all(self, what: str, statement: str, args: Sequence[Any] = ()) -> list[Any]: ...

    def _change(self, what: str, statement: str, args: Sequence[Any]) -> int:
        """Run one writing statement in its own transaction; the rows it touched."""
        q = self.d.q(statement)
        return int(self._run(lambda conn: conn.execute(q, args).rowcount, what, write=True))

    def audit_entries(
        self, *, after_seq: int = 0, limit: int = 1000, org_id: str | None = None, user_id: str | None = None
    ) -> list[AuditEntry]:
        statement = f"SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq > ?"
        args: list[Any] = [after_seq]
        if org_id is not None:
            statement += " AND org_id = ?"
            args.append(org_id)
        if user_id is not None:
            if org_id is None:
                raise ValueError("audit_entries: user_id needs org_id")
            statement += " AND " + self.d.c_range("scope_key")
            args.extend(user_key_range(org_id, user_id))
        return [audit_entry(r) for r in self._all("audit entries", statement + " ORDER BY seq LIMIT ?", [*args, limit])]

    def get_data_key(self, subject_key: str) -> DataKeyRecord | None:
        rows = self._all("get data key", f"SELECT {DATA_KEY_COLUMNS} FROM data_keys WHERE subject_key = ?",
                         (subject_key,))
        return data_key(rows[0]) if rows else None

    def rewrap_data_keys(self, updates: Sequence[tuple[str, bytes, str]]) -> int:
        statement = self.d.q("UPDATE data_keys SET wrapped_key = ?, master_key_id = ?"
                             " WHERE subject_key = ? AND destroyed_at IS NULL AND wrapped_key IS NOT NULL")

        def write(conn: Any) -> int:
            return sum(conn.execute(statement, (wrapped, master_id, subject)).rowcount
                       for subject, wrapped, master_id in updates)

        return self._run(write, "rewrap data keys", write=True)

    def holds_data_keys(self) -> bool:
        return bool(self._all(
            "data keys", "SELECT 1 FROM data_keys WHERE wrapped_key IS NOT NULL AND destroyed_at IS NULL"
            " AND substr(subject_key, 1, 1) <> '!' LIMIT 1"))

    def data_keys(self) -> list[DataKeyRecord]:
        return [data_key(r) for r in self._all("data keys", f"SELECT {DATA_KEY_COLUMNS} FROM data_keys"
                                                            " ORDER BY subject_key")]

    def delete_retention_policy(self, org_id: str, tier: str, category: str | None) -> bool:
        return self._change("delete retention policy", "DELETE FROM retention_policies WHERE org_id = ? AND"
                            f" tier = ? AND category {self.d.null_eq} ?", (org_id, tier, category)) > 0

    def _by_org(self, columns: str, table: str, order: str, org_id: str | None) -> list[Any]:
        """Every row of a control table, or one org's, in ``order``."""
        where, args = (" WHERE org_id = ?", [org_id]) if org_id is not None else ("", [])
        return self._all(f"list {table}", f"SELECT {columns} FROM {table}{where} ORDER BY {order}", args)

    def retention_policies(self, org_id: str | None = None) -> list[RetentionPolicy]:
        rows = self._by_org(POLICY_COLUMNS, "retention_policies", "org_id, tier, category NULLS FIRST", org_id)
        return [RetentionPolicy(*r) for r in rows]

    def delete_legal_hold(self, org_id: str, user_id: str) -> bool:
        return self._change("delete legal hold", "DELETE FROM legal_holds WHERE org_id = ? AND user_id = ?",
                            (org_id, user_id)) > 0

    def legal_holds(self, org_id: str | None = None) -> list[LegalHold]:
        return [LegalHold(*r) for r in self._by_org(HOLD_COLUMNS, "legal_holds", "org_id, user_id", org_id)]

    def idle_conversations(self, org_id: str, older_than: float) -> list[tuple[Scope, str]]:
        rows = self._all(
            "idle conversations",
            "SELECT org_id, user_id, agent_id, run_id, conversation_id FROM episodes"
            f" WHERE org_id = ? AND conversation_id IS NOT NULL AND {NOT_HELD}"
            " GROUP BY scope_key, org_id, user_id, agent_id, run_id, conversation_id HAVING max(created_at) < ?"
            " ORDER BY scope_key, conversation_id",
            (org_id, org_id, older_than),
        )
        return [(Scope(r[0], r[1], r[2], r[3]), r[4]) for r in rows]

    def history_memory_ids(self, scope: Scope) -> list[str]:
        return [r[0] for r in self._all("history memory ids", HISTORY_MEMORY_IDS, (scope.key,))]

    def graph_rows(self, scope: Scope) -> GraphRows:
        key, q = scope.key, self.d.q

        def read(conn: Any) -> GraphRows:
            links = conn.execute(q(GRAPH_LINKS), (key, key)).fetchall()
            edges = conn.execute(q(GRAPH_EDGES), (key, key, key)).fetchall()
            return GraphRows([tuple(r) for r in links], [tuple(r) for r in edges])

        return open_graph(self.codec, scope, self._run(read, "graph rows"))

    def _drop_orphan_entities(self, conn: Any, key: str) -> int:
        return int(conn.execute(self.d.q(ORPHAN_ENTITIES), (key,)).rowcount)

    # -- purges: candidates selected once, deleted in chunks of one transaction each ----------------

    if TYPE_CHECKING:  # each engine deletes a chunk its own way (locks, counters)
        _entity_cache: Any

        def _purge_memory_rows(self, conn: Any, org_id: str, older_than: float,
                               chunk: Sequence[tuple[str, Any]]) -> PurgeResult: ...
        def _purge_episode_rows(self, conn: Any, org_id: str, older_than: float,
                                chunk: Sequence[tuple[str, Any]]) -> PurgeResult: ...
        def _scope_gone(self, key: str | None) -> None: ...

    def _candidates(
        self, table: str, key_column: str, age_column: str, org_id: str, older_than: float,
        category: str | None, exclude_categories: Sequence[str],
    ) -> list[tuple[str, Any]]:
        """(scope key, row key) of the org's rows older than the cut-off that the category test selects."""
        rows = self._all(
            f"purge {table}: select",
            f"SELECT org_id, user_id, agent_id, run_id, scope_key, {key_column}, {self.d.text('metadata')}"
            f" FROM {table} WHERE org_id = ? AND {age_column} < ? AND {NOT_HELD}",
            (org_id, older_than, org_id),
        )
        out = []
        for org, user, agent, run, key, ident, meta in rows:
            if category is not None or exclude_categories:
                # Sealed metadata is only readable here, after the codec opens it.
                if not in_category(self.d.meta_out(self.codec, Scope(org, user, agent, run), meta), category,
                                   exclude_categories):
                    continue
            out.append((key, ident))
        return out

    def _purge(
        self, table: str, key_column: str, age_column: str, org_id: str, older_than: float,
        category: str | None, exclude_categories: Sequence[str],
        delete: Callable[[Any, str, float, Sequence[tuple[str, Any]]], PurgeResult],
    ) -> PurgeResult:
        found = self._candidates(table, key_column, age_column, org_id, older_than, category, exclude_categories)
        result = PurgeResult()
        for start in range(0, len(found), _CHUNK):
            chunk = found[start : start + _CHUNK]
            result.merge(self._run(lambda conn, chunk=chunk: delete(conn, org_id, older_than, chunk),  # type: ignore[misc]
                                   f"purge {table}", write=True))
        for scope in result.deleted:
            self._entity_cache.drop(scope.key)
        return result

    def purge_memories(
        self, org_id: str, older_than: float, *, category: str | None = None, exclude_categories: Sequence[str] = ()
    ) -> PurgeResult:
        result = self._purge("memories", "rid", "updated_at", org_id, older_than, category, exclude_categories,
                             self._purge_memory_rows)
        for scope in result.deleted:
            self._scope_gone(scope.key)
        return result

    def purge_episodes(
        self, org_id: str, older_than: float, *, category: str | None = None, exclude_categories: Sequence[str] = ()
    ) -> PurgeResult:
        return self._purge("episodes", "id", "created_at", org_id, older_than, category, exclude_categories,
                           self._purge_episode_rows)

    def delete_episodes(self, org_id: str, rows: Sequence[tuple[str, str]]) -> PurgeResult:
        result = PurgeResult()
        for start in range(0, len(rows), _CHUNK):
            chunk = list(rows[start : start + _CHUNK])
            # No age bound: the caller chose the rows; the hold is still checked in the deleting transaction.
            result.merge(self._run(lambda conn, chunk=chunk: self._purge_episode_rows(conn, org_id, math.inf, chunk),  # type: ignore[misc]
                                   "delete episodes", write=True))
        for scope in result.deleted:
            self._entity_cache.drop(scope.key)
        return result
