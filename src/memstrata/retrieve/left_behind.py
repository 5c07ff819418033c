"""A later statement that names what it left behind: "We switched from Virgin Media to Community Fibre", "sold
the Corsa, got a used Yaris", "Tomas and I broke up".

Ingestion replaces the user's facts that hold such a named value, but the messages they were drawn from stay
current as the record of what was said, and so do the assistant's replies about them ("Virgin Media usually
raises prices every April"). For a question about now, a result whose answer to the query
names a value that a later statement of the user's says is gone, when that statement answers the query
about as well, reads as earlier: it is marked ``revised_by`` the later statement, which is placed just above
it. Both stay in the results; the outdated one then comes after the first current ones
(:func:`memstrata.retrieve.revisions.current_first`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from memstrata.core.text import says_words
from memstrata.retrieve.revisions import MIN_RELEVANCE_RATIO, StatementReader

if TYPE_CHECKING:
    from memstrata.retrieve.pipeline import Hit

SAME_TIME = 1.0  # seconds: what was drawn from the statement itself was written with it
# The later statement must answer the query (the read-time pairing's floor) ...
MIN_CHANGE_COSINE = 0.25
# ... and the earlier result's words that name the value must be about it at all: a lower floor, since naming
# the very value that was left behind already says it is about the same thing ("Virgin Media's retentions team …").
MIN_QUERY_COSINE = 0.15
# ... and be what that result says in answer to the query, about as near it as its best part: "I cycle my old
# Raleigh to work" inside a message whose answer to "which climbing wall do I go to?" is "I joined The Depot".
NEAR_BEST = 0.85


def left_behind(hits: Sequence[Hit], texts: dict[str, str], vectors: dict[str, np.ndarray],
                sentences: dict[str, np.ndarray] | None, qvec: np.ndarray, reader: StatementReader,
                window: int) -> list[Hit]:
    """``hits`` with, inside the first ``window``, each result that names, where it is about the query, a
    value that a later statement of the user's, answering the query too, says is gone: marked outdated, the
    later statement just above. ``texts`` and ``vectors``: the part of each hit that answers the query and
    its vector (:func:`memstrata.retrieve.revisions.answering_parts`); ``sentences``: the stored sentence
    vectors of long messages, by id."""
    head = list(hits[:window])
    q = np.asarray(qvec, dtype=np.float32)
    relevance = {h.record.id: float(vectors[h.record.id] @ q) for h in head if h.record.id in vectors}
    changes = [(h, values) for h in head if relevance.get(h.record.id, 0.0) >= MIN_CHANGE_COSINE
               and h.record.source_role == "user" and (values := _left(reader, texts.get(h.record.id, h.record.text)))]
    if not changes:
        return list(hits)
    for new, values in sorted(changes, key=lambda c: -c[0].record.created_at):
        for old in list(head):
            if old is new or "outdated" in old.stages or old.record.created_at >= new.record.created_at - SAME_TIME:
                continue
            near = _naming_relevance(old, values, relevance, sentences, q, reader)
            if near is None or near < max(MIN_QUERY_COSINE, NEAR_BEST * relevance.get(old.record.id, 0.0)) \
                    or relevance[new.record.id] < MIN_RELEVANCE_RATIO * near:
                continue
            old.stages["outdated"] = 1.0
            if new.revised_by is not None:  # itself replaced since: what replaced it is the current word
                old.revised_by = new.revised_by
                continue
            old.revised_by = new.record.id
            new.stages["revises"] = 1.0
            if head.index(new) > head.index(old):
                head.remove(new)
                head.insert(head.index(old), new)
                new.score = max(new.score, old.score)
    return head + list(hits[window:])


def _naming_relevance(hit: Hit, values: list[str], relevance: dict[str, float],
                      sentences: dict[str, np.ndarray] | None, q: np.ndarray, reader: StatementReader) -> float | None:
    """How near the query the words of ``hit`` that name one of ``values`` are: the best of its sentences
    that name one (a long message with stored sentence vectors), else the hit's own; None if none names one."""
    mat = (sentences or {}).get(hit.record.id)
    if mat is not None and len(mat):
        parts = reader.sentences(hit.record.text)
        if len(parts) == len(mat):
            naming = [i for i, part in enumerate(parts) if any(says_words(part, v) for v in values)]
            return max(float(mat[i] @ q) for i in naming) if naming else None
    if not any(says_words(hit.record.text, v) for v in values):
        return None
    return relevance.get(hit.record.id)


def _left(reader: StatementReader, text: str) -> list[str]:
    """The values the user's statement says are gone; none for a question, a wish or a reply that echoes."""
    values = reader.values_left(text)
    if not values or reader.tentative(text) or reader.echoes(text) or not reader.states_own(text, None):
        return []
    return values
