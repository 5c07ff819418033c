"""Changes nobody announced: a conflict record when a statement seems to give something of the user's a new value.

"I'm 34, about 71 kg …" in January and "I'm 66 kg and feeling fitter" in April say the weight changed, though
no word says so and the two share no attribute family the word patterns know. Ingestion cannot be sure: the
same shape fits "I run on Tuesdays" and "I swim on Fridays", which are both true. So nothing is superseded
here. Each sentence of a new user message is set beside its nearest earlier statements of the user (by
vector, sentence by sentence inside long messages), each pair is scored by a small linear model over generic
signals (how near the two are and how clearly nearest, whether both give numbers, days or names and whether
those differ, whether the new one states something of the user's own, how much of each the other says), and
a pair scoring above :data:`THRESHOLD` becomes an open conflict record for a person (or an agent) to settle.
Read-time ranking (``memstrata.retrieve.revisions``) still decides the order of answers on its own.

The weights were fitted by ``bench/fit_implicit_changes.py`` on the labelled update conversations of
``bench/data`` that were development data by then (``dev`` and ``heldout`` to ``heldout9``; ``heldout10`` was
scored only after); the script prints the fit and its leave-one-set-out precision.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from memstrata.core.text import query_terms
from memstrata.ingest.candidate import Message
from memstrata.ingest.prototypes import family_by_meaning, family_scores
from memstrata.ingest.statement_words import StatementWords
from memstrata.models import EVIDENCE_KIND, ConflictRecord, MemoryRecord, Scope
from memstrata.tiers.base import Store, WriteBatch

Embed = Callable[[list[str]], np.ndarray]
DAY = 86400.0
NEAREST = 6  # earlier statements looked at per new sentence
MAX_SENTENCES = 8  # new sentences read per message (a long message's first ones)
MIN_WORDS = 4  # a sentence shorter than this gives no value with a frame around it
MIN_COSINE = 0.35  # below this cosine, two statements are about different things

_NUMBER = re.compile(r"(?:[£$€₹]\s?)?\d+(?:[.,]\d+)?\s?(?:k\b|kg|km|mg|lbs?|pounds|am|pm|%|mins?|minutes|hours?|"
                     r"years?)?", re.IGNORECASE)
_WEEKDAY = re.compile(r"\b(mon|tue|wed|thu|fri|sat|sun)[a-z]*day", re.IGNORECASE)
_NAME = re.compile(r"(?<=[a-z,;:] )[A-Z][\w'&-]+")
_NEGATION = re.compile(r"\b(?:not|no longer|never|anymore|any more|stopped|quit|gave up)\b|n't", re.IGNORECASE)

FEATURES = ("cosine", "margin", "nearest", "overlap", "new_only", "old_only", "numbers", "numbers_differ",
            "days", "days_differ", "names", "names_differ", "new_names", "old_states_own", "old_tentative",
            "asks", "new_one_off", "old_one_off", "new_of_self", "old_of_self", "negation_flips",
            "new_length", "old_length", "shared_family", "same_family", "same_unit_other_number", "old_is_fact")

# Fitted by bench/fit_implicit_changes.py (standardised features: (x - MEAN) / SCALE, then WEIGHTS, then BIAS).
MEAN = np.array([
    0.4969, 0.1644, 0.5641, 0.09661, 0.8348, 0.8238, 0.2331, 0.2308, 0.04429, 0.0373, 0.4685, 0.4569, 0.5338,
    0.9231, 0.0373, 0.1352, 0.05128, 0.03497, 0.683, 0.8228, 0.04662, 2.467, 2.446, 0.3593, 0.4779, 0.1119,
    0.6061
])
SCALE = np.array([
    0.1196, 0.1578, 0.4959, 0.1081, 0.1647, 0.178, 0.4228, 0.4213, 0.2057, 0.1895, 0.499, 0.4981, 0.4989,
    0.2665, 0.1895, 0.3419, 0.2206, 0.1837, 0.4653, 0.3818, 0.2108, 0.507, 0.525, 0.1321, 0.4995, 0.3152, 0.4886
])
WEIGHTS = np.array([
    -0.1789, 0.1352, 0.4426, 0.1288, -0.4009, -0.02683, 0.2941, 0.05647, 0.5193, -0.3573, -0.1095, 0.6453,
    -0.2734, 0.4081, 0.1599, 0.5377, -0.6482, -0.4677, -0.03721, 0.2721, 0.1533, 0.331, -0.1104, 0.6866, 0.2278,
    0.342, -0.06326
])
BIAS = -0.992
THRESHOLD = 0.5


@dataclass
class Pair:
    """A new sentence beside one earlier statement of the user's."""

    old: MemoryRecord
    old_text: str  # the old memory's sentence nearest the new one (all of it when it is short)
    new_text: str
    cosine: float
    margin: float  # how much nearer than the next earlier statement
    rank: int
    old_vec: np.ndarray | None = None  # the vector of ``old_text``
    new_vec: np.ndarray | None = None
    features: np.ndarray | None = None
    score: float = 0.0


_reader = StatementWords()


def new_sentences(text: str, window: np.ndarray, sentence_vectors: np.ndarray | None) -> list[tuple[str, np.ndarray]]:
    """The sentences of a new user message that could state a value, with their vectors."""
    parts = _reader.sentences(text)
    if sentence_vectors is not None and len(parts) == len(sentence_vectors) and parts:
        units = list(zip(parts, sentence_vectors, strict=True))
    else:
        units = [(text, window)]
    return [(t, np.asarray(v, dtype=np.float32)) for t, v in units[:MAX_SENTENCES] if _could_state(t)]


def _could_state(text: str) -> bool:
    return (len(text.split()) >= MIN_WORDS and _reader.states_own(text, None) and not _reader.tentative(text)
            and not _reader.echoes(text) and not _reader.marks_change(text))  # a said change is for revise.py


Known = dict[str, tuple[MemoryRecord, np.ndarray | None]]


def candidate_pairs(store: Store, scope: Scope, text: str, vec: np.ndarray, said: float,
                    episode_ids: Sequence[str], known: Known | None = None) -> list[Pair]:
    """The user's earlier statements nearest ``text`` (said at ``said``), each read by its sentence nearest it,
    nearest first: said on an earlier day, current, not from the same message, one per sentence said.
    ``known``: records and vectors read for the message's other sentences, reused and added to."""
    hits, sentences = store.vector_search_and_sentences(scope, vec, NEAREST * 2)
    known = {} if known is None else known
    if missing := [i for i, _ in hits if i not in known]:
        records = store.get_memories(scope, missing)
        vectors = store.vectors(scope, [r.id for r in records])  # also for a message whose sentences split anew
        known.update((r.id, (r, vectors.get(r.id))) for r in records)
    old = [known[i][0] for i, _ in hits if i in known]
    old = [r for r in old if r.current and r.source_role == "user" and r.created_at // DAY < said // DAY
           and not set(r.episode_ids) & set(episode_ids)]
    seen: set[str] = set()
    pairs: list[Pair] = []
    for r in sorted(old, key=lambda r: r.kind != EVIDENCE_KIND):  # a message first: it holds all it said
        part, part_vec = _nearest_part(r, vec, sentences.get(r.id), known[r.id][1])
        key = part.lower()
        if part_vec is None or key in seen:
            continue
        seen.add(key)
        pairs.append(Pair(r, part, text, float(np.dot(part_vec, vec)), 0.0, 0, part_vec))
    pairs.sort(key=lambda p: -p.cosine)
    pairs = pairs[:NEAREST]
    for n, p in enumerate(pairs):
        p.rank = n
        p.margin = p.cosine - (pairs[n + 1].cosine if n + 1 < len(pairs) else 0.0)
    return [p for p in pairs if p.cosine >= MIN_COSINE]


def _nearest_part(r: MemoryRecord, vec: np.ndarray, mat: np.ndarray | None, whole: np.ndarray | None
                  ) -> tuple[str, np.ndarray | None]:
    """A long message's sentence nearest ``vec`` with its stored vector; anything else whole."""
    if mat is not None and len(mat):
        parts = _reader.sentences(r.text)
        if len(parts) == len(mat):
            rows = np.asarray(mat, dtype=np.float32)
            best = int(np.argmax(rows @ vec))
            return parts[best], rows[best]
    return r.text, None if whole is None else np.asarray(whole, dtype=np.float32)


def features(p: Pair, new_vec: np.ndarray, embed: Embed | None) -> np.ndarray:
    """The signals :data:`FEATURES` names, for one pair."""
    old, new = p.old_text, p.new_text
    wo, wn = set(query_terms(old, 64)), set(query_terms(new, 64))
    union = wo | wn
    no, nn = _numbers(old), _numbers(new)
    do, dn = {d.lower() for d in _WEEKDAY.findall(old)}, {d.lower() for d in _WEEKDAY.findall(new)}
    co, cn = set(_NAME.findall(old)), set(_NAME.findall(new))
    shared, same = _families(p.old_vec, new_vec, embed)
    return np.array([
        p.cosine, p.margin, float(p.rank == 0),
        len(wo & wn) / len(union) if union else 0.0,
        len(wn - wo) / len(wn) if wn else 0.0, len(wo - wn) / len(wo) if wo else 0.0,
        float(bool(no and nn)), float(bool(nn - no) and bool(no - nn)),
        float(bool(do and dn)), float(bool(do and dn and do != dn)),
        float(bool(co and cn)), float(bool(co and cn and co != cn)), float(bool(cn - co)),
        float(_reader.states_own(old, None)), float(_reader.tentative(old)), float("?" in new),
        float(_reader.one_off(new)), float(_reader.one_off(old)),
        float(_reader.speaks_of_self(new)), float(_reader.speaks_of_self(old)),
        float(bool(_NEGATION.search(new)) != bool(_NEGATION.search(old))),
        math.log1p(len(new.split())), math.log1p(len(old.split())), shared, same,
        float(_other_number_same_unit(old, new)), float(p.old.kind != EVIDENCE_KIND),
    ], dtype=np.float64)


_UNIT = re.compile(r"(\d+(?:[.,]\d+)?)\s?(k\b|kg|km|mg|lbs?|pounds|quid|euros?|dollars|am|pm|%|mins?|minutes|hours?|"
                   r"days?|weeks?|times|miles|[a-z]+)", re.IGNORECASE)


def _other_number_same_unit(old: str, new: str) -> bool:
    """Does the new statement give another number of something the old one counts ("20 minutes" / "45
    minutes", "£900 a month" / "£950 a month")?"""
    units_old = {(u.lower(), n) for n, u in _UNIT.findall(old)}
    units_new = {(u.lower(), n) for n, u in _UNIT.findall(new)}
    return any(u == v and n != m for u, n in units_old for v, m in units_new)


def _numbers(text: str) -> set[str]:
    return {re.sub(r"[\s,]", "", m.group(0).lower()) for m in _NUMBER.finditer(text)}


def _families(old_vec: np.ndarray | None, new_vec: np.ndarray, embed: Embed | None) -> tuple[float, float]:
    """How near both statements are to one attribute family's examples, and whether their nearest is one."""
    if old_vec is None or embed is None:
        return 0.0, 0.0
    so, sn = dict(family_scores(old_vec, embed)), dict(family_scores(new_vec, embed))
    if not so or not sn:
        return 0.0, 0.0
    shared = max(min(so[f], sn[f]) for f in so)
    return shared, float(max(so, key=so.__getitem__) == max(sn, key=sn.__getitem__))


def score(x: np.ndarray) -> float:
    z = float(((x - MEAN) / SCALE) @ WEIGHTS + BIAS)
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


def implicit_changes(store: Store, scope: Scope, text: str, window: np.ndarray, sentence_vectors: np.ndarray | None,
                     said: float, episode_ids: Sequence[str], embed: Embed | None) -> list[Pair]:
    """The earlier statements a new user message seems to give a new value, best pair per old memory, each
    with its score (at least :data:`THRESHOLD`)."""
    best: dict[str, Pair] = {}
    known: Known = {}  # one read of each earlier statement per message
    for sentence, vec in new_sentences(text, window, sentence_vectors):
        pairs = candidate_pairs(store, scope, sentence, vec, said, episode_ids, known)
        if not pairs:
            continue
        for p in pairs:
            p.new_vec = vec
            p.features = features(p, vec, embed)
            p.score = score(p.features)
        top = max(pairs, key=lambda p: p.score)
        if top.score >= THRESHOLD and top.score > best.get(top.old.id, top).score - 1e-9:
            best[top.old.id] = top
    return sorted(best.values(), key=lambda p: -p.score)


def raise_implicit(batch: WriteBatch, results: list[dict], store: Store, scope: Scope, messages: Sequence[Message],
                   episode_ids: Sequence[str], embed: Embed | None, policy: str, now: float) -> None:
    """An open conflict record (nothing superseded) for each earlier statement a new user message of this
    batch seems to give a new value without saying so; the message's entry in ``results`` names it. The new
    memory is the one that holds the whole message (its evidence, or the fact said as all of it)."""
    if embed is None:
        return
    vectors = {rec.id: vecs for rec, vecs in batch.new_memories}
    sentence_vectors = dict(batch.sentence_vectors)
    closed = {m.id for m, _ in batch.updated_memories if m.superseded_by} | {
        c.old_memory_id for c in batch.conflicts}
    by_id = {r.get("id"): r for r in results}
    for msg in messages:
        if msg.role != "user" or not 0 <= msg.index < len(episode_ids):
            continue
        rec = _whole_message(batch, episode_ids[msg.index])
        if rec is None or rec.id not in vectors:
            continue
        for p in implicit_changes(store, scope, msg.content, vectors[rec.id][0], sentence_vectors.get(rec.id),
                                  msg.timestamp.timestamp() if msg.timestamp else now, rec.episode_ids, embed):
            if p.old.id in closed:  # replaced or already in conflict in this batch
                continue
            closed.add(p.old.id)
            family = family_by_meaning(p.new_vec, embed) or family_by_meaning(p.old_vec, embed) or "unnamed"
            conflict = ConflictRecord(
                id=str(uuid.uuid4()), new_memory_id=rec.id, old_memory_id=p.old.id, subject="user",
                attribute=family, old_value=p.old_text, new_value=p.new_text, policy=policy,
                status="open",  # a guess: a person or an agent settles it (nothing was superseded)
                created_at=now)
            batch.conflicts.append(conflict)
            entry = by_id.get(rec.id)
            if entry is not None:
                entry.setdefault("conflicts", []).append(conflict.id)


def _whole_message(batch: WriteBatch, episode_id: str) -> MemoryRecord | None:
    """The new memory holding all of one message: its verbatim evidence, else its longest fact."""
    mine = [rec for rec, _ in batch.new_memories if rec.source_role == "user" and rec.episode_ids == [episode_id]]
    evidence = [r for r in mine if r.kind == EVIDENCE_KIND]
    ranked = evidence or sorted(mine, key=lambda r: -len(r.text))
    return ranked[0] if ranked else None
