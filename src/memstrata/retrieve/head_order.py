"""The first answers to a question about the user now, put in order by a small fitted model.

The stages before this one each weigh one kind of evidence: meaning, words, time, whose statement it is, the
attribute it sets, which answer replaced which. For "Which gym do I go to?" they can still leave a
fragment ("Training Tuesday, Thursday and Saturday these days."), a long assistant reply that repeats the
query's words, or someone else's news above the statement that names the gym. How much each kind of
evidence should count against the others, when they disagree, is what a linear model over the head learns
from labelled conversations (``bench/fit_head_order.py``: which result holds the answer, scored by leaving
one set of conversations out at a time).

Each of the first :data:`SPAN` results is described by what the earlier stages recorded (its rank and
score, its cosine to the query, its stage weights), what kind of memory it is, and a few plain readings of
its words (does it name something, a number or a time where the question asks for one; is it short; is it
a question or an ending). They are then ordered by the model's score; what was outdated stays below the
first current answers (the caller puts them there again), and a pleasantry or a bare request keeps its
place. A question that speaks of someone else as "her" or "him" is left in score order. Nothing leaves the
results and no extra read or embedding is made: about 0.45 ms a search.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from memstrata.retrieve.rivals import STAGES as RIVALS

if TYPE_CHECKING:
    from memstrata.retrieve.pipeline import Hit
    from memstrata.retrieve.revisions import StatementReader

SPAN = 8  # the results put in order; the rest keep theirs
SHORT_WORDS = 4  # a result of this many words or fewer is short


class Item(NamedTuple):
    """What the model reads of one result (a search hit, or one row of ``search(..., explain=True)``)."""

    text: str
    kind: str
    role: str
    created_at: float
    score: float
    stages: dict[str, float]


FEATURES = (
    "log_rank", "score_share", "dense", "sentence", "relevance", "keyword", "recency",
    "own_subject", "other_subject", "same_attribute", "other_attribute", "revises", "outdated", "assistant",
    "message", "fact", "relationship", "log_words", "short", "names_something", "query_words", "tentative",
    "only_ended", "marks_change", "age_rank", "ended", "assistant_damped", "echo", "words_only",
    "who_name", "amount_number", "where_name", "when_time", "what_name", "lowercase_start", "first_person",
    "later_answer", "earlier_answer", "later_near", "earlier_near",
)

# Fitted by ``python bench/fit_head_order.py`` on the nineteen labelled update sets of bench/data (dev to
# heldout18: 1,910 questions about the user now, 1,328 update pairs and 582 findable statements, the two
# kinds weighing the same). Each set left out in turn: the new value came first for 79.5% of pairs against
# 72.7% in score order (78.1% without the readings of :mod:`memstrata.retrieve.rivals`), a stale answer was
# among the first three for 18.7% against 20.6% (19.5%), and a findable statement came first for 66.5%
# against 67.7% (67.0%) (bench/RESULTS.md). A conditional logit over the first SPAN results of each
# question: only differences between results count.
FITTED = {
    "log_rank": -0.300, "score_share": 0.714, "dense": 1.687, "sentence": -0.672,
    "relevance": 1.852, "keyword": 0.103, "recency": 0.487, "own_subject": -0.288,
    "other_subject": -0.305, "same_attribute": 0.218, "other_attribute": -0.156, "revises": -0.084,
    "outdated": -0.953, "assistant": -0.338, "message": 0.299, "fact": -0.038,
    "relationship": -0.048, "log_words": 0.270, "short": -0.243, "names_something": -0.013,
    "query_words": 0.290, "tentative": -0.498, "only_ended": 0.032, "marks_change": 0.036,
    "age_rank": 0.062, "ended": 0.511, "assistant_damped": -0.575, "echo": -0.237,
    "words_only": 0.478, "who_name": 0.231, "amount_number": 0.303, "where_name": 0.603,
    "when_time": 0.502, "what_name": 0.427, "lowercase_start": -0.058, "first_person": 0.080,
    "later_answer": 0.139, "earlier_answer": 0.592, "later_near": -1.681, "earlier_near": 0.137,
}
WEIGHTS = np.array([FITTED[f] for f in FEATURES])

_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b(?!I\b)[A-Z][a-z]+")
_SOMETHING = re.compile(r"\d|(?<![.!?]\s)(?<!^)\b(?!I\b)[A-Z][a-z]")
_WHEN = re.compile(r"\d|\b(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|weekends?|weekdays?|"
                   r"mornings?|evenings?|nights?|noon|midnight|am|pm)\b", re.IGNORECASE)
_DIGIT = re.compile(r"\d")
_FIRST = re.compile(r"\b(?:i|i'm|i've|my|we|our|me)\b", re.IGNORECASE)
_WORD = re.compile(r"[a-z]+")
_Q_FILLER = frozenset("i my do what which is am the a who where how me to of at for in does are with have now "
                      "currently these days".split())
_AMOUNT_Q = re.compile(r"\bhow (?:much|many|long|far|old|often)\b|\bwhat (?:time|size|level|grade)\b")
_WHEN_Q = re.compile(r"^when\b|\b(?:what|which) days?\b|\bwhat time\b")


# "What food should I cook for her?" asks about her, though the user speaks in it: the model was fitted on
# questions about the user alone.
_SOMEONE_ELSE = re.compile(r"\b(?:he|she|him|her|his|hers|they|them|their|theirs)\b", re.IGNORECASE)


def reads(query: str) -> bool:
    """Is this a question the model orders (the caller has found it asks about the user now): not one that
    speaks of someone else as "her", "him" or "them"?"""
    return not _SOMEONE_ELSE.search(query)


def query_type(query: str) -> str:
    """What kind of answer the question wants: "who", "amount", "where", "when" or "what"."""
    q = query.strip().lower()
    if q.startswith("who"):
        return "who"
    if _AMOUNT_Q.search(q):
        return "amount"
    if q.startswith("where"):
        return "where"
    return "when" if _WHEN_Q.search(q) else "what"


def head_features(items: Sequence[Item], query: str, reader: StatementReader) -> np.ndarray:
    """One row of :data:`FEATURES` per item, in the items' order."""
    if not items:
        return np.zeros((0, len(FEATURES)))
    top = max(it.score for it in items) or 1.0
    newest = sorted(range(len(items)), key=lambda i: -items[i].created_at)
    age_rank = {i: k / max(1, len(items) - 1) for k, i in enumerate(newest)}
    asked = set(_WORD.findall(query.lower())) - _Q_FILLER
    qt = query_type(query)
    rows = []
    for i, it in enumerate(items):
        st, t = it.stages, it.text
        words = len(t.split())
        named = bool(_NAME.search(t))
        f = {
            "log_rank": math.log1p(i), "score_share": it.score / top,
            "dense": st.get("dense", 0.0), "sentence": st.get("sentence", 0.0),
            "relevance": max(st.get("dense", 0.0), st.get("sentence", 0.0)), "keyword": "keyword" in st,
            "recency": st.get("recency", 0.0), "own_subject": st.get("subject", 1.0) > 1.0,
            "other_subject": st.get("subject", 1.0) < 1.0, "same_attribute": st.get("attribute", 1.0) > 1.0,
            "other_attribute": st.get("attribute", 1.0) < 1.0, "revises": "revises" in st,
            "outdated": "outdated" in st, "assistant": it.role == "assistant", "message": it.kind == "message",
            "fact": it.kind == "fact", "relationship": it.kind == "relationship", "log_words": math.log(words + 1),
            "short": words <= SHORT_WORDS, "names_something": bool(_SOMETHING.search(t)),
            "query_words": len(asked & set(_WORD.findall(t.lower()))) / (len(asked) or 1),
            "tentative": reader.tentative(t), "only_ended": reader.only_ended(t),
            "marks_change": reader.marks_change(t),
            "age_rank": age_rank[i], "ended": "ended" in st, "assistant_damped": "assistant" in st,
            "echo": it.role == "user" and reader.echoes(t), "words_only": "words_only" in st,
            "who_name": qt == "who" and named, "amount_number": qt == "amount" and bool(_DIGIT.search(t)),
            "where_name": qt == "where" and named, "when_time": qt == "when" and bool(_WHEN.search(t)),
            "what_name": qt == "what" and named, "lowercase_start": t[:1].islower(),
            "first_person": bool(_FIRST.search(t)),
            **{name: st.get(name, 0.0) for name in RIVALS},
        }
        rows.append([float(f[name]) for name in FEATURES])
    return np.asarray(rows, dtype=np.float64)


def item_of(h: Hit) -> Item:
    r = h.record
    return Item(r.text, r.kind, r.source_role or "", r.created_at, h.score, h.stages)


def model_order(scores: Sequence[float], held: Sequence[bool]) -> list[int]:
    """Positions in the model's order: the results not ``held`` by the model's score (ties keep their order)
    in the places they had among them; a held result keeps its own place."""
    free = [i for i in range(len(scores)) if not held[i]]
    ranked = iter(sorted(free, key=lambda i: (-scores[i], i)))
    return [i if held[i] else next(ranked) for i in range(len(scores))]


def held_in_place(stages: dict[str, float]) -> bool:
    """A result an earlier stage damped for what it is, not for how near it is: a pleasantry ("Congratulations
    on the move!") or a request that names only its topic ("I need help with my health insurance"). The
    model, fitted on heads where they are rare, would weigh their nearness to the query and lift them again."""
    return "pleasantry" in stages or "tentative" in stages


def order_head(head: list[Hit], query: str, reader: StatementReader, weights: np.ndarray = WEIGHTS,
               span: int = SPAN) -> list[Hit]:
    """``head`` with its first ``span`` results ordered by the model's score (stage ``head_order``; ties keep
    their order; a result :func:`held_in_place` keeps its place). The scores those results had are handed out
    again in the new order, so that scores still fall down the list."""
    top = head[:span]
    if len(top) < 2 or not weights.any():
        return head
    scores = head_features([item_of(h) for h in top], query, reader) @ weights
    for h, s in zip(top, scores, strict=True):
        h.stages["head_order"] = round(float(s), 4)
    order = model_order(scores.tolist(), [held_in_place(h.stages) for h in top])
    kept = sorted((h.score for h in top), reverse=True)
    out = [top[i] for i in order]
    for h, s in zip(out, kept, strict=True):
        h.score = s
    return out + head[span:]
