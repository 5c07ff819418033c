"""A message whose answer to the query was replaced since: "We live in Rathmines, the rent is €1,900 …".

A long message stays current as the record of what was said, while a fact drawn from it may have been
replaced by a later statement ("We live in Rathmines" by "Big news, we moved to Drumcondra!"). Ingestion wrote
that link (``superseded_by``); the read-time pairing of :mod:`memstrata.retrieve.revisions` may still miss it,
because the later statement can be far from the query in meaning. So, for a question about now, each of the
first results that is one of the user's messages is checked against the facts drawn from it that were
replaced: when a fact of the message that answers the query is such a fact, the message reads as outdated
(``revised_by`` the statement now current) and that statement is placed just above it, fetched when the
search had not found it. Nothing is dropped; ``as_of`` and ``include_superseded`` searches do not come here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from memstrata.core.text import query_terms
from memstrata.models import EVIDENCE_KIND, MemoryRecord, Scope
from memstrata.tiers.base import Store

if TYPE_CHECKING:
    from memstrata.retrieve.pipeline import Hit

REPLY_NOTE = "(in reply to:"  # a short user reply carries the turn it answers
CHECKED = 3  # the first results looked at: those a reader takes as the answer
SAME_TIME = 1.0  # seconds: the facts of a message were written with the message's time
REPLY_WINDOW = 3600.0  # seconds: an assistant's reply is about what the user said this long before it
# The replaced fact must answer the query, about as well as anything else drawn from the message ("We live
# in Stoneybatter" and "the rent is €1,700" both answer "where do we live?" to the embedder) ...
MIN_FACT_COSINE = 0.3
NEAR_BEST = 0.85
# ... and what replaced it must be about the same: at least this share of the fact's cosine to the query.
MIN_SUCCESSOR_RATIO = 0.5
MAX_CHAIN = 5  # "Rathmines" → "Drumcondra" → "Glasnevin": the statement current now


def replaced_parts(store: Store, scope: Scope, head: list[Hit], qvec: np.ndarray, query: str,
                   only: Sequence[str] | None = None) -> list[Hit]:
    """``head`` with each of its first :data:`CHECKED` messages whose answer to the query was replaced since
    marked outdated, and the current statement that replaced it placed just above it. A user message is read
    through the facts drawn from it (one near the query as anything drawn from it); an assistant's reply
    (or a user's short reply that carries it) through the user's facts said before it in its conversation,
    when it names what the replaced fact said and its replacement does not ("Ulster Bank charges a quarterly
    fee" after "I've banked with Ulster Bank", since replaced). ``only``: the ids a filtered search may return
    (a fetched statement outside them is not added)."""
    messages = [h for h in head[:CHECKED] if h.record.kind == EVIDENCE_KIND and h.revised_by is None
                and h.record.source_role in ("user", "assistant")]
    if not messages:
        return head
    drawn = {h.record.id: _facts_before(store, scope, h.record) for h in messages}
    if not any(f.superseded_by for facts in drawn.values() for f in facts):
        return head
    q = np.asarray(qvec, dtype=np.float32)
    fact_vecs = store.vectors(scope, list({f.id for facts in drawn.values() for f in facts}))
    asked = set(query_terms(query, 64))
    order = list(head)
    for msg in messages:
        successor = _replacement(store, scope, msg.record, drawn[msg.record.id], fact_vecs, q, asked, only)
        if successor is None:
            continue
        newer = next((h for h in order if h.record.id == successor.id), None)
        if newer is None:
            newer = type(msg)(successor, msg.score, {"revises": 1.0, "fetched": 1.0})
            order.insert(order.index(msg), newer)
        elif order.index(newer) > order.index(msg):
            order.remove(newer)
            order.insert(order.index(msg), newer)
            newer.score = max(newer.score, msg.score)
        newer.stages["revises"] = 1.0
        msg.stages["outdated"] = 1.0
        msg.revised_by = successor.id
        if "outdated" in newer.stages:  # read as outdated by an older pairing: it is the current word now
            del newer.stages["outdated"]
            newer.revised_by = None
    return order


def _replacement(store: Store, scope: Scope, msg: MemoryRecord, facts: list[MemoryRecord],
                 fact_vecs: dict[str, np.ndarray], q: np.ndarray, asked: set[str],
                 only: Sequence[str] | None) -> MemoryRecord | None:
    """The current statement that replaced what ``msg`` says in answer to the query, or None."""
    if not _replies(msg):
        episodes = set(msg.episode_ids)
        facts = [f for f in facts if episodes & set(f.episode_ids)]
    scored = sorted(((float(fact_vecs[f.id] @ q), f) for f in facts if f.id in fact_vecs), key=lambda x: -x[0])
    if not scored:
        return None
    floor = max(MIN_FACT_COSINE, NEAR_BEST * scored[0][0])  # near the best answer among them
    said = set(query_terms(msg.text, 512))
    for relevance, fact in scored:
        if relevance < floor:
            break
        if not fact.superseded_by:
            continue
        successor = _answering_successor(store, scope, fact, relevance, q, only)
        if successor is None:
            continue
        if _replies(msg):
            gone = set(query_terms(fact.text, 64)) - set(query_terms(successor.text, 64)) - asked
            if not gone & said:
                continue  # the reply is not about what the replaced fact said
        return successor
    return None


def _replies(msg: MemoryRecord) -> bool:
    """The assistant's reply, or the user's short answer stored with the turn it answers ("Very helpful, thank
    you (in reply to: SoftBank's cheaper brands …)"): both speak of what was said before them."""
    return msg.source_role == "assistant" or REPLY_NOTE in msg.text


def _facts_before(store: Store, scope: Scope, msg: MemoryRecord) -> list[MemoryRecord]:
    """The user's facts, current or replaced since, written with a user message (its time), or said before an
    assistant's reply in its conversation (within :data:`REPLY_WINDOW`)."""
    start = msg.created_at - (REPLY_WINDOW if _replies(msg) else SAME_TIME)
    where = [("created_at", "gte", start), ("created_at", "lte", msg.created_at + SAME_TIME)]
    found = store.list_memories(scope, include_superseded=True, limit=500, where=where,
                                conversation_id=msg.conversation_id)
    return [r for r in found if r.kind != EVIDENCE_KIND and r.source_role in (None, "user")]


def _answering_successor(store: Store, scope: Scope, fact: MemoryRecord, relevance: float, q: np.ndarray,
                         only: Sequence[str] | None) -> MemoryRecord | None:
    """The current statement that replaced ``fact``, when it answers the query too (and passes the filter)."""
    successor = _current_successor(store, scope, fact)
    if successor is None or only is not None and successor.id not in only:
        return None
    vec = store.vectors(scope, [successor.id]).get(successor.id)
    return successor if vec is not None and float(vec @ q) >= MIN_SUCCESSOR_RATIO * relevance else None


def _current_successor(store: Store, scope: Scope, fact: MemoryRecord) -> MemoryRecord | None:
    """The statement that replaced ``fact``, followed on to the one current now (None if none is)."""
    seen = {fact.id}
    nxt = fact.superseded_by
    for _ in range(MAX_CHAIN):
        if nxt is None or nxt in seen:
            return None
        found = store.get_memories(scope, [nxt])
        if not found:
            return None
        rec = found[0]
        if rec.current:
            return rec
        seen.add(rec.id)
        nxt = rec.superseded_by
    return None
