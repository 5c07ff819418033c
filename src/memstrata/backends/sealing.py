"""The columns a store derives from the user's text, kept through its Codec so an encrypting codec
leaves no plaintext behind: slots, conflicts, the graph's names and relations, history reasons.

A column only read back is sealed; a column looked up by equality holds ``Codec.seal_hash`` of its
value (the slot's subject and attribute, an entity's name key, the content hash), and when the value
itself must come back it is also sealed into a column that is only read (the whole slot triple goes
into ``slot_value``). With the identity codec every function here returns exactly what the stores
wrote before, so a plain store keeps its schema and values. Both SQL stores encode through here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from memstrata.core.text import normalized_hash
from memstrata.models import ConflictRecord, Scope
from memstrata.tiers.base import Codec
from memstrata.tiers.privacy import GraphRows

SlotColumns = tuple[str | None, str | None, str | None]


def seal_opt(codec: Codec, scope: Scope, value: str | None) -> str | None:
    return None if value is None else codec.seal(scope, value)


def open_opt(codec: Codec, scope: Scope, stored: str | None) -> str | None:
    return None if stored is None else codec.open(scope, stored)


def slot_columns(codec: Codec, scope: Scope, slot: tuple[str, str, str] | None) -> SlotColumns:
    """(slot_subject, slot_attribute, slot_value) as stored."""
    if slot is None:
        return None, None, None
    subject, attribute, value = slot
    if not codec.encrypts:
        return subject, attribute, value
    return (
        codec.seal_hash(scope, subject),
        codec.seal_hash(scope, attribute),
        codec.seal(scope, json.dumps([subject, attribute, value])),
    )


def slot_of(codec: Codec, scope: Scope, columns: Sequence[Any]) -> tuple[str, str, str] | None:
    """The slot triple back from the three stored columns."""
    subject, attribute, value = columns
    if subject is None:
        return None
    if not codec.encrypts:
        return subject, attribute, value
    s, a, v = json.loads(codec.open(scope, value))
    return s, a, v


def content_hash_of(codec: Codec, text: str, stored: str) -> str:
    """The unkeyed content hash a record carries. A keyed column cannot be turned back, so an encrypting
    store recomputes it from the opened text: every writer sets it to ``normalized_hash(text)``."""
    return normalized_hash(text) if codec.encrypts else stored


def conflict_columns(codec: Codec, scope: Scope, c: ConflictRecord) -> tuple[str, str, str, str]:
    """(subject, attribute, old_value, new_value) as stored."""
    return (
        codec.seal(scope, c.subject),
        codec.seal(scope, c.attribute),
        codec.seal(scope, c.old_value),
        codec.seal(scope, c.new_value),
    )


def conflict_of(codec: Codec, scope: Scope, row: Sequence[Any]) -> ConflictRecord:
    """A conflict from its row: id, new and old memory ids, the four sealed columns, then the rest."""
    op = codec.open
    return ConflictRecord(
        row[0], row[1], row[2], op(scope, row[3]), op(scope, row[4]), op(scope, row[5]), op(scope, row[6]),
        *row[7:],
    )


def open_graph(codec: Codec, scope: Scope, rows: GraphRows) -> GraphRows:
    """A scope's portable graph with its entity names and relations opened."""
    if not codec.encrypts:
        return rows
    op = codec.open
    return GraphRows(
        [(memory_id, op(scope, name), label) for memory_id, name, label in rows.links],
        [(op(scope, s), op(scope, r), op(scope, o), m, e, at) for s, r, o, m, e, at in rows.edges],
    )
