"""The data subject's rights: erasure (``forget_user``), access and portability (``export_user`` /
``import_user``). Rectification is ``Memory.update``, which keeps the old text in the memory's history.

Erasure destroys the user's data key first (from then on every copy of their ciphertext, backups
included, is unreadable), then deletes their rows in every tier and compacts the storage so that no
plaintext survives in free pages, the write-ahead log or full-text index segments.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import asdict
from datetime import datetime
from typing import Any

import numpy as np

from memstrata.core.text import chunk_text
from memstrata.errors import InvalidInputError
from memstrata.models import (
    DEFAULT_ORG,
    ConflictRecord,
    EpisodeRecord,
    HistoryEvent,
    MemoryRecord,
    Scope,
    check_id,
    iso,
)
from memstrata.privacy.archive import archived_episodes
from memstrata.privacy.archive import erase_user as erase_archived
from memstrata.privacy.archive import user_scopes as archived_scopes
from memstrata.privacy.audit import Auditor
from memstrata.tiers.base import Turn, WorkingState, WriteBatch
from memstrata.tiers.privacy import privacy_tier, subject_key

EXPORT_FORMAT = "memstrata.user-export"
EXPORT_VERSION = 1
_ALL = 2**62
# Which tier each durable table belongs to, for the receipt.
_TIER_OF = {
    "episodes": "episodic", "memories": "long_term", "memory_vectors": "long_term_vectors",
    "memory_sentences": "long_term_vectors", "history": "history",
    "entities": "graph", "edges": "graph", "memory_entities": "graph", "conflicts": "conflicts",
    "archived_episodes": "archive",
}


def _org(memory: Any, org_id: str | None) -> str:
    return check_id("org_id", org_id) or memory._default_scope.get("org_id") or DEFAULT_ORG


def _drop_caches(memory: Any, base: Scope, scopes: list[Scope]) -> None:
    # Cached query vectors may embed what the user asked; their keys cannot be told apart, so all go, here and
    # in the shared cache, with every cached piece of the user's scopes (other processes drop theirs on their
    # next read).
    memory._qcache.clear()
    layers = getattr(memory, "cache_layers", None)
    if layers is not None:
        layers.forget(base.org_id, base.user_id, scopes)
    memory._usage.forget(scopes)


def forget_user(memory: Any, user_id: str, org_id: str | None = None, *, actor: str | None = None) -> dict[str, Any]:
    """Erase a user of an org (default: the memory's org) from every tier and scope; returns a receipt.

    Refused (InvalidInputError) while the user is under legal hold. Safe to run again after a crash."""
    check_id("user_id", user_id, required=True)
    org = _org(memory, org_id)
    store = memory.store
    tier = privacy_tier(store)
    hold = next((h for h in tier.legal_holds(org) if h.user_id == user_id), None)
    if hold is not None:
        raise InvalidInputError("user_id", f"{user_id!r} is under legal hold in org {org!r} since "
                                           f"{iso(hold.created_at)}; release the hold before erasing")
    archive = getattr(memory, "archive", None)
    if archive is not None:
        archive.files.manifest()  # an archive that cannot be reached fails the erasure before anything is erased
    base = Scope(org, user_id)
    subject = subject_key(base)
    key = tier.destroy_data_key(subject, time.time())
    forget_key = getattr(store.codec, "forget", None)
    if callable(forget_key):
        forget_key(subject)
    scopes = tier.user_scopes(org, user_id)
    tables: Counter[str] = Counter()
    short = working = 0
    for scope in dict.fromkeys([base, *scopes]):
        if scope in scopes:
            tables.update(memory.writer.delete_scope(scope))  # the vector tier too, when there is one
        short += memory.short_term.clear(scope)
        working += memory.working.clear(scope)
    _drop_caches(memory, base, scopes)
    archived = erase_archived(archive, org, user_id) if archive is not None else None
    if archived is not None:
        tables["archived_episodes"] += archived["episodes"]
    tiers: Counter[str] = Counter()
    for table, n in tables.items():
        tiers[_TIER_OF.get(table, table)] += n
    tiers["short_term_conversations"] = short
    tiers["working_conversations"] = working
    entry = Auditor(store, actor or memory.actor).record(
        "forget_user", scope=base,
        details={"scopes": len(scopes), "deleted": dict(tiers), "key_destroyed": key is not None},
    )
    storage = tier.compact()
    return {
        "user_id": user_id,
        "org_id": org,
        "scopes": [s.as_dict() for s in scopes],
        "deleted": dict(tiers),
        "tables": dict(tables),
        "data_key": {"existed": key is not None, "destroyed_at": iso(key.destroyed_at) if key else None},
        "storage": storage,
        "audit": {"seq": entry.seq, "hash": entry.hash},
        "completed_at": iso(time.time()),
    } | ({"archive": archived} if archived is not None else {})


# -- export ----------------------------------------------------------------------------------------


def _memory_dict(m: MemoryRecord) -> dict[str, Any]:
    out = m.to_dict()
    out.pop("hash", None)  # derived (and keyed per store); recomputed on import
    out.update(importance=m.importance, confidence=m.confidence, slot=list(m.slot) if m.slot else None,
               last_accessed_at=iso(m.last_accessed_at), access_count=m.access_count)
    return out


def export_user(memory: Any, user_id: str, org_id: str | None = None, *, actor: str | None = None) -> dict[str, Any]:
    """Everything stored about a user, every scope and tier, as JSON-ready data (portable: ``import_user``).

    Includes the audit entries about the user (who read or changed their data, and when)."""
    check_id("user_id", user_id, required=True)
    org = _org(memory, org_id)
    store = memory.store
    tier = privacy_tier(store)
    blocks = []
    totals: Counter[str] = Counter()
    archive = getattr(memory, "archive", None)
    scopes = tier.user_scopes(org, user_id)
    if archive is not None:  # a scope may live only in the archive by now
        scopes = list(dict.fromkeys([*scopes, *archived_scopes(archive, org, user_id)]))
    for scope in scopes:
        episodes = store.list_episodes(scope, limit=_ALL)
        memories = store.list_memories(scope, include_superseded=True, limit=_ALL)
        graph = tier.graph_rows(scope)
        conversations = sorted({e.conversation_id for e in episodes if e.conversation_id})
        short_term = {c: [{"role": t.role, "content": t.content, "at": iso(t.at), "episode_id": t.episode_id}
                          for t in memory.short_term.recent(scope, c, 10_000)] for c in conversations}
        working = {c: asdict(s) for c in conversations if (s := memory.working.get(scope, c)) is not None}
        block = {
            "scope": scope.as_dict(),
            "episodes": [e.to_dict() for e in episodes],
            "memories": [_memory_dict(m) for m in memories],
            "history": {mid: [h.to_dict() for h in store.history(scope, mid)]
                        for mid in tier.history_memory_ids(scope)},
            "entities": [e.to_dict() for e in store.entities(scope, _ALL)],
            "entity_links": [{"memory_id": m, "entity": n, "label": lbl} for m, n, lbl in graph.links],
            "edges": [{"subject": s, "relation": r, "object": o, "memory_id": m, "episode_id": e, "created_at": iso(at)}
                      for s, r, o, m, e, at in graph.edges],
            "conflicts": [c.to_dict() for c in store.conflicts(scope, None)],
            "short_term": {c: turns for c, turns in short_term.items() if turns},
            "working": working,
        }
        totals.update(episodes=len(episodes), memories=len(memories))
        if archive is not None:
            archived = archived_episodes(memory, scope, limit=_ALL)
            block["archived_episodes"] = [e.to_dict() for e in archived]
            totals.update(archived_episodes=len(archived))
        blocks.append(block)
    access_log = [e.to_dict() for e in tier.audit_entries(org_id=org, user_id=user_id, limit=_ALL)]
    Auditor(store, actor or memory.actor).record(
        "export_user", scope=Scope(org, user_id), details={"scopes": len(blocks), **totals})
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "exported_at": iso(time.time()),
        "org_id": org,
        "user_id": user_id,
        "scopes": blocks,
        "access_log": access_log,
    }


# -- import ----------------------------------------------------------------------------------------


def _epoch(value: str | None) -> float | None:
    if value is None:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _at(value: str | None) -> float:
    out = _epoch(value)
    if out is None:
        raise ValueError("a required timestamp is missing")
    return out


class _Ids:
    """Fresh ids for imported records, one per old id, so references between them survive (``keep``: the
    old ids themselves, for sources whose ids are already unique, such as Mem0's)."""

    def __init__(self, keep: bool = False) -> None:
        self.map: dict[str, str] = {}
        self.keep = keep

    def __call__(self, old: str) -> str:
        return self.map.setdefault(old, old if self.keep else str(uuid.uuid4()))

    def get(self, old: str | None) -> str | None:
        return None if old is None else self.map.get(old)


def _plan_scope(memory: Any, block: dict[str, Any], scope: Scope, eps: _Ids, mems: _Ids
                ) -> tuple[list[EpisodeRecord], list[WriteBatch]]:
    episodes = [
        EpisodeRecord(
            id=eps(e["id"]), scope=scope, conversation_id=e.get("conversation_id"), role=e["role"],
            content=e["content"], occurred_at=_at(e["occurred_at"]), created_at=_at(e["created_at"]),
            name=e.get("name"), metadata=dict(e.get("metadata") or {}), position=int(e.get("position", 0)),
            extraction_status=e.get("extraction_status", "done"), extraction_error=e.get("extraction_error"),
        )
        for e in [*block.get("episodes", []), *block.get("archived_episodes", [])]  # archived ones come back
    ]
    records = []
    for m in block.get("memories", []):
        slot = m.get("slot")
        records.append(MemoryRecord(
            id=mems(m["id"]), scope=scope, text=m["memory"], created_at=_at(m["created_at"]),
            updated_at=_at(m["updated_at"]), valid_from=_at(m["valid_from"]), conversation_id=m.get("conversation_id"),
            metadata=dict(m.get("metadata") or {}),
            episode_ids=[x for x in (eps.get(i) for i in m.get("episode_ids", [])) if x],
            kind=m.get("kind", "fact"), importance=float(m.get("importance", 0.5)),
            confidence=float(m.get("confidence", 1.0)), confidence_reason=m.get("confidence_reason", ""),
            source_role=(m.get("source") or {}).get("role"), valid_to=_epoch(m.get("valid_to")),
            expired_at=_epoch(m.get("expired_at")),
            superseded_by=mems(m["superseded_by"]) if m.get("superseded_by") else None,
            mention_count=int(m.get("mention_count", 1)), last_seen_at=_epoch(m.get("last_seen_at")),
            last_accessed_at=_epoch(m.get("last_accessed_at")), access_count=int(m.get("access_count", 0)),
            slot=(slot[0], slot[1], slot[2]) if slot else None, entities=list(m.get("entities", [])),
        ))
    from memstrata.core.text import normalized_hash

    windows = [chunk_text(r.text) for r in records]
    flat = memory.embedder.embed([w for ws in windows for w in ws]) if records else np.zeros((0, 1))
    batch = WriteBatch()
    row = 0
    for rec, ws in zip(records, windows, strict=True):
        rec.content_hash = normalized_hash(rec.text)
        batch.new_memories.append((rec, flat[row : row + len(ws)]))
        row += len(ws)
    for old_id, events in block.get("history", {}).items():
        batch.history.extend(
            HistoryEvent(str(uuid.uuid4()), mems(old_id), h["event"], h.get("old_memory"), h.get("new_memory"),
                         h.get("actor", "import"), h.get("reason", ""), _at(h["created_at"]),
                         dict(h.get("metadata") or {}))
            for h in events
        )
    aliases = {e["name"]: list(e.get("aliases") or []) for e in block.get("entities", [])}
    linked: dict[str, tuple[str, str]] = {}
    for link in block.get("entity_links", []):
        name, mid = link["entity"], mems(link["memory_id"])
        first = aliases.get(name) or [name]
        batch.entity_links.append((mid, name, link["label"], first[0] if name not in linked else name))
        linked.setdefault(name, (mid, link["label"]))
    batch.edges.extend(
        (e["subject"], e["relation"], e["object"], mems(e["memory_id"]) if e.get("memory_id") else None,
         eps.get(e.get("episode_id")))
        for e in block.get("edges", [])
    )
    batch.conflicts.extend(
        ConflictRecord(str(uuid.uuid4()), mems(c["new_memory_id"]), mems(c["old_memory_id"]), c["subject"],
                       c["attribute"], c["old_value"], c["new_value"], c["policy"], c["status"],
                       _at(c["created_at"]), _epoch(c.get("resolved_at")), c.get("resolution"))
        for c in block.get("conflicts", [])
    )
    batches = [batch]
    # One alias per entity per batch: the store resolves an entity once per batch.
    for extra in range(1, max((len(a) for a in aliases.values()), default=0)):
        more = [(mid, name, label, aliases[name][extra]) for name, (mid, label) in linked.items()
                if len(aliases.get(name, [])) > extra]
        if more:
            batches.append(WriteBatch(entity_links=more))
    return episodes, batches  # the writer decides their entity upserts


def import_scope(memory: Any, scope: Scope, block: dict[str, Any], *, keep_ids: bool = False) -> dict[str, int]:
    """Write one scope block of the export format (episodes, memories with their timestamps, history) into
    ``scope``; with ``keep_ids`` the records keep the ids they carry. Returns counts per kind."""
    try:
        episodes, batches = _plan_scope(memory, block, scope, _Ids(keep_ids), _Ids(keep_ids))
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise InvalidInputError("data", f"a record is malformed ({type(exc).__name__}: {exc})") from None
    memory.store.add_episodes(episodes)
    for batch in batches:
        memory.writer.apply(scope, batch)
    return {"episodes": len(episodes), "memories": len(batches[0].new_memories), "history": len(batches[0].history)}


def import_user(
    memory: Any, data: dict[str, Any], *, user_id: str | None = None, org_id: str | None = None,
    actor: str | None = None,
) -> dict[str, Any]:
    """Load an ``export_user`` document, as its user or as ``user_id``/``org_id``. Records get fresh ids
    (returned in ``id_map``), so importing never collides with what the store holds; import into an
    empty user, or the user's data is there twice. Every record is checked before anything is written."""
    if not isinstance(data, dict) or data.get("format") != EXPORT_FORMAT:
        raise InvalidInputError("data", f"is not a {EXPORT_FORMAT} document")
    if data.get("version") != EXPORT_VERSION:
        raise InvalidInputError("data", f"has version {data.get('version')!r}; this memstrata reads {EXPORT_VERSION}")
    user = check_id("user_id", user_id or data.get("user_id"), required=True)
    org = check_id("org_id", org_id or data.get("org_id")) or DEFAULT_ORG
    eps, mems = _Ids(), _Ids()
    plans = []
    try:
        for block in data.get("scopes", []):
            src = block["scope"]
            scope = Scope.of(user_id=user, agent_id=src.get("agent_id"), run_id=src.get("run_id"), org_id=org)
            plans.append((scope, block, *_plan_scope(memory, block, scope, eps, mems)))
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise InvalidInputError("data", f"a record is malformed ({type(exc).__name__}: {exc})") from None
    counts: Counter[str] = Counter()
    for scope, block, episodes, batches in plans:
        memory.store.add_episodes(episodes)
        for batch in batches:
            memory.writer.apply(scope, batch)
        for conv, turns in block.get("short_term", {}).items():
            memory.short_term.push(scope, conv, [
                Turn(t["role"], t["content"], _at(t["at"]), eps.get(t.get("episode_id"))) for t in turns])
        for conv, state in block.get("working", {}).items():
            memory.working.put(scope, conv, WorkingState.from_dict(state))
        counts.update(episodes=len(episodes), memories=len(batches[0].new_memories),
                      history=len(batches[0].history), conflicts=len(batches[0].conflicts))
    Auditor(memory.store, actor or memory.actor).record(
        "import_user", scope=Scope(org, user), memory_ids=list(mems.map.values()), details=dict(counts))
    return {"user_id": user, "org_id": org, "imported": dict(counts),
            "id_map": {"memories": mems.map, "episodes": eps.map}}
