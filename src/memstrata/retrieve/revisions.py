"""The newer answer first: a read-time view of what changed.

Ingestion replaces an old fact when it can tell that a statement sets the same attribute again ("I work at
Monzo now" after "I work at Ocado"). Much of what people say changes without words that tell it: "salary 48k"
in March and "Got a raise to 55k" in December are far apart as vectors and share no attribute family, yet a
query such as "What's my salary?" finds both. The query is what ingestion lacked: it names the attribute.

So, after ranking, :func:`newer_first` looks at the head of the results for pairs of the user's own statements
that answer this query with different values at different times. The later statement is placed just above the
earlier one, which names the later one in its result (``revised_by``) and reads as earlier in ``context()``.
Nothing is written and nothing is dropped: both stay in the results, so a question about the past or one that
needs both ("how many engineers did I lead then, and now?") still finds them.

What counts as the user's own statement (not a question, a wish, a one-off happening or someone else's) is
linguistic knowledge that lives with ingestion; the facade hands it in as a :class:`StatementReader`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

from memstrata.core.text import query_terms

if TYPE_CHECKING:
    from memstrata.retrieve.pipeline import Hit

DAY = 86400.0
# Two statements closer than this are about different things even when one query finds both.
MIN_PAIR_COSINE = 0.3
# The later statement must itself answer the query: its cosine to the query at least this share of the
# earlier one's. (Fused scores are min-max normalised per stage, so they say little about two hits apart.)
MIN_RELEVANCE_RATIO = 0.7
# ... and the earlier one must be near the query at all: a broad query ("what should I know about this user?")
# is close to nothing in particular, and two statements it happens to find are no two answers to it.
MIN_QUERY_COSINE = 0.25

# A query about the past, or about several things, wants the history in its own order.
_PAST_OR_MANY = re.compile(
    r"\b(?:used to|before|previous(?:ly)?|formerly|former|originally|initially|at first|first|earlier|"
    r"last time|back when|when i|in the past|ago|was i|did i|had i|were|how many|how much (?:have|had|did)|"
    r"total|all|each|every|list|both|history|change[ds]?|ever)\b",
    re.IGNORECASE,
)


class StatementReader(Protocol):
    """What ranking needs to know about the words of two stored statements."""

    def states_own(self, text: str, slot_subject: str | None) -> bool:
        """Is this the user saying how things are for them (not a question, wish or supposition, nor a statement
        about someone else)?"""

    def one_off(self, text: str) -> bool:
        """A past happening that stays true ("I bought 16 kg kettlebells"): nothing later outdates it."""


def _says_other(new_text: str, old_text: str, asked: set[str]) -> bool:
    """Beyond the words of the query, does each statement say something the other does not? A repeat, or a
    later statement that only adds to the earlier one, is no other answer."""
    new_words, old_words = set(query_terms(new_text, 64)) - asked, set(query_terms(old_text, 64)) - asked
    return bool(new_words - old_words) and bool(old_words - new_words)


def wants_current(query: str) -> bool:
    """Does the query ask how things are now (not how they were, nor for a count or list over time)?"""
    return not _PAST_OR_MANY.search(query)


def newer_first(hits: list[Hit], vectors: dict[str, np.ndarray], reader: StatementReader, query: str,
                window: int) -> list[Hit]:
    """Callers pass only queries about the user ("what's my salary?"): in a conversation between people each
    speaks as "I", and a question about one of them is no question about the latest speaker.

    ``hits`` (ranked) with, inside the first ``window``, each earlier statement of the user's followed by
    the latest statement that answers the same query with another value (moved up to just above it). The
    earlier one gets the later one's id as ``revised_by`` and stage ``outdated``, the later one stage
    ``revises``."""
    if len(hits) < 2 or not wants_current(query):
        return hits
    head = hits[:window]
    own: list[Hit] = [
        h for h in head
        if h.record.source_role == "user" and h.record.id in vectors
        and reader.states_own(h.record.text, h.record.slot[0] if h.record.slot else None)
    ]
    if len(own) < 2:
        return hits
    order = [h.record.id for h in head]
    asked = set(query_terms(query))
    moved: set[str] = set()
    for old in sorted(own, key=lambda h: order.index(h.record.id)):
        if old.record.id in moved or reader.one_off(old.record.text):
            continue
        newer = _latest_revision(old, own, vectors, asked)
        if newer is None:
            continue
        old.stages["outdated"] = 1.0
        old.revised_by = newer.record.id
        newer.stages["revises"] = 1.0
        i_old, i_new = order.index(old.record.id), order.index(newer.record.id)
        if i_new > i_old:
            order.insert(i_old, order.pop(i_new))
            newer.score = max(newer.score, old.score)
        moved.add(newer.record.id)
    by_id = {h.record.id: h for h in head}
    return [by_id[i] for i in order] + hits[window:]


def _latest_revision(old: Hit, own: Sequence[Hit], vectors: dict[str, np.ndarray],
                     asked: set[str]) -> Hit | None:
    """The latest of ``own`` that says something later than ``old`` about the same thing with another value."""
    best: Hit | None = None
    ov = vectors[old.record.id]
    relevance = old.stages.get("dense", 0.0)
    if relevance < MIN_QUERY_COSINE:
        return None
    for h in own:
        if h is old or h.record.valid_from < old.record.valid_from + DAY:
            continue
        if h.stages.get("dense", 0.0) < MIN_RELEVANCE_RATIO * relevance:
            continue
        if float(np.dot(ov, vectors[h.record.id])) < MIN_PAIR_COSINE:
            continue
        if not _says_other(h.record.text, old.record.text, asked):
            continue
        if best is None or h.record.valid_from > best.record.valid_from:
            best = h
    return best
