"""Edits a caller makes by hand, each planned as one WriteBatch with its history event: changing a memory
(``update``), deleting one, and closing a conflict the way a person (or a later change of mind) decides.

The conflict policy applied during ``add`` is ``ingest.conflicts``; this is where its decision, or a
person's, is carried out on the two memories.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np

from memstrata.core.text import chunk_text, normalized_hash
from memstrata.core.validate import check_metadata
from memstrata.errors import InvalidInputError, NotFoundError
from memstrata.ingest.conflicts import BY_POLICY
from memstrata.ingest.messages import normalize_messages
from memstrata.ingest.writer import Writer
from memstrata.models import HistoryEvent, MemoryRecord, Scope
from memstrata.tiers.base import Store, WriteBatch

KEEP = ("new", "old", "both")


def get_record(store: Store, scope: Scope, memory_id: Any) -> MemoryRecord:
    if not isinstance(memory_id, str) or not memory_id.strip():
        raise InvalidInputError("memory_id", "must be a non-empty string")
    found = store.get_memories(scope, [memory_id])
    if not found:
        raise NotFoundError("memory", memory_id)
    return found[0]


def update_memory(writer: Writer, scope: Scope, memory_id: str, text: str | None, metadata: dict[str, Any] | None,
                  embed: Callable[[list[str]], np.ndarray], actor: str) -> dict[str, Any]:
    """New text (re-embedded) and/or metadata for a memory; the old text stays in its history.

    The text is embedded first; the memory is then read again inside the scope's write section, so the
    previous text recorded is the one current when the change commits, whoever else edits it at once."""
    if text is None and metadata is None:
        raise InvalidInputError("text", "give text and/or metadata to update")
    get_record(writer.store, scope, memory_id)  # an unknown id fails before the text is looked at
    norm = vecs = None
    if text is not None:
        norm = normalize_messages([{"role": "user", "content": text}])[0].content
        vecs = embed(chunk_text(norm))
    meta = check_metadata(metadata) if metadata is not None else None
    with writer.section(scope):
        rec = get_record(writer.store, scope, memory_id)
        old = rec.text
        if norm is not None:
            rec.text, rec.content_hash = norm, normalized_hash(norm)
        if meta is not None:
            rec.metadata = meta
        rec.updated_at = time.time()
        event = HistoryEvent(str(uuid.uuid4()), rec.id, "UPDATE", old, rec.text, actor, "update() called",
                             rec.updated_at, {"metadata_changed": metadata is not None})
        writer.apply(scope, WriteBatch(updated_memories=[(rec, vecs)], history=[event]))
    return {"id": rec.id, "memory": rec.text, "event": "UPDATE", "previous_memory": old}


def delete_memory(writer: Writer, scope: Scope, memory_id: str, actor: str) -> dict[str, Any]:
    """Delete one memory; a DELETE event with its last text stays in history."""
    with writer.section(scope):
        rec = get_record(writer.store, scope, memory_id)
        event = HistoryEvent(str(uuid.uuid4()), rec.id, "DELETE", rec.text, None, actor, "delete() called",
                             time.time())
        writer.apply(scope, WriteBatch(deleted_memory_ids=[rec.id], history=[event]))
    return {"id": rec.id, "memory": rec.text, "event": "DELETE"}


def plan_resolution(old: MemoryRecord | None, new: MemoryRecord | None, keep: str, actor: str,
                    now: float) -> WriteBatch:
    """What keeping the new value, the old one, or both does to the two memories of a conflict."""
    batch = WriteBatch()

    def event(rec: MemoryRecord, kind: str) -> HistoryEvent:
        return HistoryEvent(str(uuid.uuid4()), rec.id, kind, rec.text, rec.text, actor,
                            f"conflict resolved: keep {keep}", now)

    if old is not None and new is not None:
        if keep == "new" and old.current:
            old.valid_to, old.superseded_by = new.valid_from, new.id
            batch.updated_memories.append((old, None))
            batch.history.append(event(old, "SUPERSEDE"))
        elif keep == "old":
            old.valid_to, old.superseded_by = None, None
            new.valid_to, new.superseded_by = now, old.id
            batch.updated_memories += [(old, None), (new, None)]
            batch.history.append(event(new, "SUPERSEDE"))
        elif keep == "both":
            old.valid_to, old.superseded_by = None, None
            batch.updated_memories.append((old, None))
            batch.history.append(event(old, "UPDATE"))
    for rec in (old, new):
        if rec is not None:
            rec.updated_at = now
    return batch


def resolve_conflict(writer: Writer, scope: Scope, conflict_id: str, keep: str, actor: str) -> dict[str, Any]:
    """Close an open conflict, or overrule the conflict policy's decision on one; returns the conflict."""
    if keep not in KEEP:
        raise InvalidInputError("keep", "must be 'new', 'old' or 'both'")
    store = writer.store
    with writer.section(scope):  # two people settling one conflict at once: the second finds it resolved
        conflict = next((c for c in store.conflicts(scope, None) if c.id == conflict_id), None)
        if conflict is None:
            raise NotFoundError("conflict", conflict_id)
        if conflict.status != "open" and not (conflict.resolution or "").startswith(BY_POLICY):
            raise InvalidInputError("conflict_id", f"conflict {conflict_id} is already resolved")
        recs = {r.id: r for r in store.get_memories(scope, [conflict.new_memory_id, conflict.old_memory_id])}
        now = time.time()
        writer.apply(scope, plan_resolution(recs.get(conflict.old_memory_id), recs.get(conflict.new_memory_id),
                                            keep, actor, now))
        return store.resolve_conflict(scope, conflict_id, f"keep_{keep}", now).to_dict()
