"""What the SQLite and PostgreSQL privacy tiers share: column lists, row decoders, and the statements
that read the same on both engines. Statements use ``?`` placeholders; ``pg`` turns them into psycopg's."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from memstrata.tiers.privacy import AuditEntry, AuditEvent, DataKeyRecord

AUDIT_COLUMNS = "seq, at, actor, org_id, scope_key, operation, memory_ids, details, prev_hash, hash"
KEY_COLUMNS = "subject_key, wrapped_key, master_key_id, created_at, destroyed_at"

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


def pg(statement: str) -> str:
    """A shared statement with psycopg's placeholders (none of them holds a literal ``?``)."""
    return statement.replace("?", "%s")


def audit_entry(row: Sequence[Any]) -> AuditEntry:
    """An entry from ``AUDIT_COLUMNS``; ``memory_ids`` as JSON text (SQLite) or already decoded (jsonb)."""
    ids = row[6] if isinstance(row[6], list) else json.loads(row[6])
    event = AuditEvent(
        at=row[1], actor=row[2], org_id=row[3], scope_key=row[4], operation=row[5],
        memory_ids=tuple(ids), details=json.loads(row[7]),
    )
    return AuditEntry(seq=row[0], event=event, prev_hash=row[8], hash=row[9])


def data_key(row: Sequence[Any], committed: bool = True) -> DataKeyRecord:
    """A data key from ``KEY_COLUMNS``."""
    return DataKeyRecord(row[0], None if row[1] is None else bytes(row[1]), row[2], row[3], row[4], committed)
