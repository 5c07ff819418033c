"""Column lists, the values a record is written as, and the decoders that turn rows back into records,
written once for every SQL engine. Every column holding the user's text goes through the store's Codec
(see memstrata.backends.sealing)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from memstrata.backends.sealing import content_hash_of, open_opt, seal_opt, slot_columns, slot_of
from memstrata.backends.sql.dialect import Dialect
from memstrata.models import EntityRecord, EpisodeRecord, HistoryEvent, MemoryRecord, Scope
from memstrata.tiers.base import Codec

# Columns bound as JSON (``Dialect.json``) wherever a statement writes them.
JSON_COLUMNS = frozenset({"metadata", "episode_ids", "entities", "aliases", "scopes", "user_ids", "agent_ids"})

# What every engine writes for a memory; an engine adds its own full-text columns.
MEMORY_INSERT = (
    "id, scope_key, org_id, user_id, agent_id, run_id, conversation_id, text, content_hash, metadata, episode_ids,"
    " entities, kind, importance, confidence, confidence_reason, source_role, created_at, updated_at, valid_from,"
    " valid_to, expired_at, superseded_by, mention_count, last_seen_at, slot_subject, slot_attribute, slot_value"
)
MEMORY_UPDATE = (
    "text, content_hash, metadata, episode_ids, entities, importance, confidence, confidence_reason, updated_at,"
    " valid_from, valid_to, expired_at, superseded_by, mention_count, last_seen_at, slot_subject, slot_attribute,"
    " slot_value"
)
EPISODE_INSERT = (
    "id, scope_key, org_id, user_id, agent_id, run_id, conversation_id, role, name, content, metadata, position,"
    " occurred_at, created_at, extraction_status, extraction_error"
)
CONFLICT_COLUMNS = (
    "id, new_memory_id, old_memory_id, subject, attribute, old_value, new_value, policy, status, created_at,"
    " resolved_at, resolution"
)
HISTORY_COLUMNS = "id, memory_id, event, old_memory, new_memory, actor, reason, created_at, metadata"
KEY_COLUMNS = "id, org_id, name, key_hash, prefix, scopes, user_ids, agent_ids, created_at, revoked_at, last_used_at"


def marks(d: Dialect, columns: str) -> str:
    """The placeholders for ``columns`` (JSON ones cast where the engine types them)."""
    return ",".join(d.json if c.strip() in JSON_COLUMNS else "?" for c in columns.split(","))


def set_list(d: Dialect, columns: str) -> str:
    """``a = ?, b = ?, ...`` for an UPDATE of ``columns``."""
    return ", ".join(f"{c.strip()} = {d.json if c.strip() in JSON_COLUMNS else '?'}" for c in columns.split(","))


def memory_columns(d: Dialect) -> str:
    return (
        "rid, id, org_id, user_id, agent_id, run_id, conversation_id, text, content_hash, "
        f"{d.text('metadata')}, episode_ids, {d.text('entities')}, kind, importance, confidence, confidence_reason,"
        " source_role, created_at, updated_at, valid_from, valid_to, expired_at, superseded_by, mention_count,"
        " last_seen_at, last_accessed_at, access_count, slot_subject, slot_attribute, slot_value"
    )


def episode_columns(d: Dialect) -> str:
    return (
        "id, org_id, user_id, agent_id, run_id, conversation_id, role, name, content, "
        f"{d.text('metadata')}, position, occurred_at, created_at, extraction_status, extraction_error"
    )


class Rows:
    """Encoding and decoding for one store: its dialect and its codec."""

    def __init__(self, d: Dialect, codec: Codec) -> None:
        self.d = d
        self.codec = codec

    # -- values written ----------------------------------------------------------------------------

    def memory_insert(self, scope: Scope, rec: MemoryRecord) -> tuple[Any, ...]:
        c, meta = self.codec, self.d.meta_in
        return (
            rec.id, scope.key, scope.org_id, scope.user_id, scope.agent_id, scope.run_id, rec.conversation_id,
            c.seal(scope, rec.text), c.seal_hash(scope, rec.content_hash), meta(c, scope, rec.metadata),
            json.dumps(rec.episode_ids), meta(c, scope, rec.entities), rec.kind, rec.importance, rec.confidence,
            rec.confidence_reason, rec.source_role, rec.created_at, rec.updated_at, rec.valid_from, rec.valid_to,
            rec.expired_at, rec.superseded_by, rec.mention_count, rec.last_seen_at,
            *slot_columns(c, scope, rec.slot),
        )

    def memory_update(self, scope: Scope, rec: MemoryRecord) -> tuple[Any, ...]:
        c, meta = self.codec, self.d.meta_in
        return (
            c.seal(scope, rec.text), c.seal_hash(scope, rec.content_hash), meta(c, scope, rec.metadata),
            json.dumps(rec.episode_ids), meta(c, scope, rec.entities), rec.importance, rec.confidence,
            rec.confidence_reason, rec.updated_at, rec.valid_from, rec.valid_to, rec.expired_at, rec.superseded_by,
            rec.mention_count, rec.last_seen_at, *slot_columns(c, scope, rec.slot),
        )

    def episode_insert(self, e: EpisodeRecord) -> tuple[Any, ...]:
        c, s = self.codec, e.scope
        return (
            e.id, s.key, s.org_id, s.user_id, s.agent_id, s.run_id, e.conversation_id, e.role,
            seal_opt(c, s, e.name), c.seal(s, e.content), self.d.meta_in(c, s, e.metadata), e.position,
            e.occurred_at, e.created_at, e.extraction_status, seal_opt(c, s, e.extraction_error),
        )

    def history_insert(self, scope: Scope, ev: HistoryEvent) -> tuple[Any, ...]:
        seal = self.codec.seal
        return (
            ev.id, scope.key, ev.memory_id, ev.event,
            None if ev.old_memory is None else seal(scope, ev.old_memory),
            None if ev.new_memory is None else seal(scope, ev.new_memory),
            ev.actor, seal(scope, ev.reason), json.dumps(ev.metadata), ev.created_at,
        )

    # -- rows read ---------------------------------------------------------------------------------

    def memory(self, row: Sequence[Any]) -> MemoryRecord:
        c, meta = self.codec, self.d.meta_out
        scope = Scope(row[2], row[3], row[4], row[5])
        text = c.open(scope, row[7])
        return MemoryRecord(
            rid=row[0], id=row[1], scope=scope, conversation_id=row[6], text=text,
            content_hash=content_hash_of(c, text, row[8]), metadata=meta(c, scope, row[9]),
            episode_ids=self.d.json_list(row[10]), entities=list(meta(c, scope, row[11])), kind=row[12],
            importance=row[13], confidence=row[14], confidence_reason=row[15], source_role=row[16],
            created_at=row[17], updated_at=row[18], valid_from=row[19], valid_to=row[20], expired_at=row[21],
            superseded_by=row[22], mention_count=row[23], last_seen_at=row[24], last_accessed_at=row[25],
            access_count=row[26], slot=slot_of(c, scope, row[27:30]),
        )

    def episode(self, row: Sequence[Any]) -> EpisodeRecord:
        c = self.codec
        scope = Scope(row[1], row[2], row[3], row[4])
        return EpisodeRecord(
            id=row[0], scope=scope, conversation_id=row[5], role=row[6], name=open_opt(c, scope, row[7]),
            content=c.open(scope, row[8]), metadata=self.d.meta_out(c, scope, row[9]), position=row[10],
            occurred_at=row[11], created_at=row[12], extraction_status=row[13],
            extraction_error=open_opt(c, scope, row[14]),
        )

    def entity(self, scope: Scope, row: Sequence[Any]) -> EntityRecord:
        aliases = list(self.d.meta_out(self.codec, scope, row[3]))
        return EntityRecord(row[0], self.codec.open(scope, row[1]), row[2], aliases, row[4])

    def history(self, scope: Scope, r: Sequence[Any]) -> HistoryEvent:
        op = self.codec.open
        return HistoryEvent(
            r[0], r[1], r[2], None if r[3] is None else op(scope, r[3]), None if r[4] is None else op(scope, r[4]),
            r[5], op(scope, r[6]), r[7], json.loads(r[8]),
        )
