"""The five retrieval stages over the tier contracts.

1. short-term context   recent turns of the conversation (also feed entity detection)
2. semantic search      kNN and BM25, fused by weighted reciprocal rank
3. entity expansion     entities named in the query or recent turns → their memories and graph neighbours
4. temporal relevance   time expressions in the query, ``as_of``, recency of creation and use
5. dedup and rank       one score, near-duplicates collapsed, optional MMR, then the caller trims

Each result carries the contribution of every stage, so ``explain=True`` can say why it came back.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from memstrata.core.salience import LOW_IMPORTANCE, asks_assistant
from memstrata.core.text import query_terms
from memstrata.models import EVIDENCE_KIND, MemoryRecord, Scope
from memstrata.providers.embedders import Embedder
from memstrata.retrieve import head_order
from memstrata.retrieve.attribute_fit import fit_attribute
from memstrata.retrieve.concurrent import side_by_side
from memstrata.retrieve.fusion import collapse_duplicates, linear, mmr, rrf
from memstrata.retrieve.left_behind import left_behind
from memstrata.retrieve.presets import Preset
from memstrata.retrieve.query_words import (
    SINGULAR_Q,
    asks_about_user,
    asks_after,
    names_in,
    persons_in,
    relatives_in,
    with_past_forms,
)
from memstrata.retrieve.replaced_parts import replaced_parts
from memstrata.retrieve.revisions import (
    StatementReader,
    answering_parts,
    asks_past,
    current_first,
    newer_first,
    wants_current,
)
from memstrata.retrieve.rivals import mark_rivals
from memstrata.retrieve.scope_cache import ENTITIES, ScopeCache, ScopeView, candidates_name
from memstrata.retrieve.standing import STANDING_KINDS, asks_standing
from memstrata.tiers.base import Capability, Store, Turn
from memstrata.tiers.vectors import VectorTier

_WORDS = re.compile(r"[\w'-]+", re.UNICODE)
MAX_ENTITY_NGRAM = 4


@dataclass
class Hit:
    record: MemoryRecord
    score: float
    stages: dict[str, float] = field(default_factory=dict)
    revised_by: str | None = None  # a later statement of the user's that answers the query otherwise


@dataclass
class SearchRequest:
    scope: Scope
    query: str
    limit: int
    now: datetime
    preset: Preset
    filters: Sequence[tuple[str, str, object]] = ()
    as_of: datetime | None = None
    conversation_id: str | None = None
    recent_turns: Sequence[Turn] = ()
    include_superseded: bool = False
    query_vector: np.ndarray | None = None
    embed: Callable[[str], np.ndarray] | None = None  # makes the query vector where none is given


def entities_in_text(text: str, names: dict[str, str]) -> list[str]:
    """Entity ids whose name or alias appears in ``text`` as whole words (n-gram lookup, not a regex per entity)."""
    words = [w.lower() for w in _WORDS.findall(text)]
    found: list[str] = []
    for n in range(MAX_ENTITY_NGRAM, 0, -1):
        for i in range(len(words) - n + 1):
            eid = names.get(" ".join(words[i : i + n]))
            if eid is not None and eid not in found:
                found.append(eid)
    return found


_STOP_ENTITY = {"i", "me", "my", "you", "we", "it", "user", "the", "a"}


class Retriever:
    """``knn``: the vector tier that serves the dense stage when the memory has one (else the store);
    ``cache``: where the candidate lists and entity names of hot scopes are kept (``retrieve.scope_cache``);
    ``reader``: how statements are read to put the newer of two answers first (``retrieve.revisions``)."""

    def __init__(self, store: Store, embedder: Embedder, knn: VectorTier | None = None,
                 cache: ScopeCache | None = None, reader: StatementReader | None = None) -> None:
        self.store = store
        self.embedder = embedder
        self.knn = knn
        self.cache = cache
        self.reader = reader

    def _entity_names(self, scope: Scope) -> dict[str, str]:
        names: dict[str, str] = {}
        for ent in self.store.entities(scope, limit=5000):
            for name in [ent.name, *ent.aliases]:
                key = name.strip().lower()
                if key and key not in _STOP_ENTITY:
                    names.setdefault(key, ent.id)
        return names

    def search(self, req: SearchRequest) -> list[Hit]:
        p = req.preset
        scope = req.scope
        # A question about the past ("what did I work on at Skyscanner?") may be answered by what has been
        # replaced since: such results come marked (``valid_to``, ``superseded_by``), never as current.
        history = p.newer_first and req.as_of is None and asks_past(req.query)
        want_all = req.include_superseded or req.as_of is not None or history
        only: list[str] | None = None
        if req.filters:
            only = [
                m.id
                for m in self.store.list_memories(
                    scope, include_superseded=want_all, limit=10**7, where=req.filters
                )
            ]
            if not only:
                return []
        embedded: list[np.ndarray] = []

        def qvec() -> np.ndarray:  # the query vector, made once (on a cache miss, while the store reads)
            if not embedded:
                embedded.append(req.query_vector if req.query_vector is not None
                                else req.embed(req.query) if req.embed is not None
                                else self.embedder.embed([req.query])[0])
            return embedded[0]

        pool = max(req.limit * 3, 10)
        dense_k, keyword_k = max(p.dense_k, pool), max(p.keyword_k, pool) if p.keyword_k > 0 else 0
        expand = p.expand_entities and p.entity_weight > 0
        cname = "" if req.filters else candidates_name(req.query, self.embedder.name, dense_k, keyword_k, want_all,
                                                        "index" if self.knn is not None else "store")
        view = self._open_cache(scope, cname, expand)

        parallel = self.store.supports(Capability.PARALLEL_READS)
        # Read with the candidates (on a cache miss): the sentence vectors of the kNN's, the entity stage's list.
        sentences: dict[str, np.ndarray] | None = None
        linked: list[str] | None = None

        def dense_part() -> tuple[tuple[str, float], ...]:
            nonlocal sentences
            if self.knn is None and p.sentence_weight > 0:
                found, sentences = self.store.vector_search_and_sentences(
                    scope, qvec(), dense_k, include_superseded=want_all, only=only)
            elif self.knn is None:
                found = self.store.vector_search(scope, qvec(), dense_k, include_superseded=want_all, only=only)
            else:
                found = self.knn.search(scope, qvec(), dense_k, include_inactive=want_all, only=only)
                if p.sentence_weight > 0 and found:
                    sentences = self.store.sentence_vectors(scope, [m for m, _ in found])
            return tuple((m, float(x)) for m, x in found)

        def terms() -> list[str]:
            if keyword_k <= 0:
                return []
            return query_terms(self.store.codec.query_text(scope, with_past_forms(req.query)), 32)

        def keyword_part() -> tuple[tuple[str, float], ...]:
            if keyword_k <= 0:
                return ()
            found = self.store.keyword_search(scope, terms(), keyword_k, include_superseded=want_all, only=only)
            return tuple((m, float(x)) for m, x in found)

        def side_part() -> tuple[tuple[str, float], ...]:
            nonlocal linked
            found = keyword_part()
            if expand:  # the entity stage needs only the query: its reads go beside the kNN too
                linked = self._linked(req, view, only)
            return found

        def candidates() -> tuple[tuple[tuple[str, float], ...], tuple[tuple[str, float], ...]]:
            nonlocal sentences, linked
            if parallel or self.knn is not None:
                return side_by_side(dense_part, side_part, parallel=parallel)
            # One call, so that a store may send its keyword statement before the query is embedded here; a
            # remote embedding is made first, so that no pooled connection waits on a network call.
            if not getattr(self.embedder, "in_process", False):
                qvec()
            found, sentences, keyword = self.store.search_candidates(
                scope, qvec, dense_k, terms(), keyword_k, include_superseded=want_all, only=only,
                sentences=p.sentence_weight > 0)
            if expand:
                linked = self._linked(req, view, only)
            return tuple((m, float(x)) for m, x in found), tuple((m, float(x)) for m, x in keyword)

        found = view.get(cname, candidates) if view is not None and cname else candidates()
        dense = [(str(m), float(x)) for m, x in found[0]]
        keyword = [(str(m), float(x)) for m, x in found[1]]
        best_sentence: dict[str, float] = {}
        if p.sentence_weight > 0 and dense:
            if sentences is None:  # the candidates came from the cache
                sentences = self.store.sentence_vectors(scope, [m for m, _ in dense])
            dense, best_sentence = self._blend_sentences(qvec(), dense, sentences, p.sentence_weight)
        fused: dict[str, float] = {}
        stages: dict[str, dict[str, float]] = {}
        for name, ranked, weight in (
            ("dense", dense, p.dense_weight),
            ("keyword", keyword, p.keyword_weight),
        ):
            contribs = linear(ranked, weight) if p.fusion == "linear" else rrf([m for m, _ in ranked], p.rrf_k, weight)
            for mid, raw in ranked:
                contrib = contribs[mid]
                fused[mid] = fused.get(mid, 0.0) + contrib
                st = stages.setdefault(mid, {})
                st[name] = round(raw, 4)
                st[f"{name}_fused"] = round(contrib, 5)

        for mid, best in best_sentence.items():
            stages[mid]["sentence"] = round(best, 4)
        for mid, st in stages.items():
            # a word in common and nothing in meaning ("second place" for "who do I share my place with?")
            if "keyword_fused" in st and "dense" in st and max(st["dense"], st.get("sentence", -1.0)) < WORDS_ONLY:
                fused[mid] -= (1.0 - WORDS_ONLY_SCALE) * st["keyword_fused"]
                st["words_only"] = WORDS_ONLY_SCALE

        if expand:
            if linked is None:  # the candidates came from the cache
                linked = self._linked(req, view, only)
            scale = (p.rrf_k + 1) if p.fusion == "linear" else 1.0  # rank 1 earns the full weight
            for mid, contrib in rrf(linked, p.rrf_k, p.entity_weight * scale).items():
                fused[mid] = fused.get(mid, 0.0) + contrib
                stages.setdefault(mid, {})["entity_fused"] = round(contrib, 5)

        if view is not None:
            view.commit()
        if not fused:
            return []
        # Boosts are bounded, so only the head of the fused list can still reach the top.
        by_score = sorted(fused, key=lambda i: -fused[i])
        head_ids = by_score if p.neighbour_weight > 0 else by_score[: max(req.limit * 6, 60)]
        known: dict[str, np.ndarray] = {}
        if p.neighbour_weight > 0:  # every candidate's record, for its neighbours; the head's vectors come later
            found = self.store.get_memories(scope, head_ids)
        else:  # the head is at most these records: their vectors come with them
            found, known = self.store.memories_and_vectors(scope, head_ids)
        records = {r.id: r for r in found}
        asked = set(records) if p.neighbour_weight <= 0 else set()
        if p.neighbour_weight > 0:
            _spread_to_neighbours(fused, stages, records, p.neighbour_weight)
        window = _time_window(req.query, req.now)
        asks_own = asks_about_user(req.query)
        asks_we = bool(asks_own) and not SINGULAR_Q.search(req.query)
        now_q = req.as_of is None and p.newer_first and wants_current(req.query)
        standing = p.standing_weight > 0 and asks_standing(req.query)
        asks_asst = asks_assistant(req.query)
        damp_pleasantries = p.pleasantry_weight != 1.0 and not asks_asst
        # "what phone do I have?" is answered by what the user said; the assistant's reply only talks about it
        echo_weight = ASSISTANT_ECHO if now_q and asks_own and not asks_asst else 1.0
        hits: list[Hit] = []
        now_ts = req.now.timestamp()
        as_of = req.as_of.timestamp() if req.as_of else None
        matched = {mid for mid, _ in keyword}  # a keyword match is a match even when it ranks last
        for mid, base in fused.items():
            if base <= 0 and mid not in matched:
                # The dense stage's weakest neighbours, below its floor: padding, unless near the query in
                # their own right. In a small scope that may be a plain answer said in other words ("pay
                # goes to 66k" for "what is my salary?"); it comes after everything that scored.
                if stages[mid].get("dense", 0.0) < TAIL_COSINE:
                    continue
                base = TAIL_SCALE * stages[mid]["dense"]
            rec = records.get(mid)
            if rec is None:
                continue
            if as_of is not None and not _held_at(rec, as_of):
                continue
            if as_of is None and not want_all and not rec.current:
                continue
            st = stages[mid]
            boost = 1.0
            if window is not None and p.temporal_weight > 0:
                t_score = _temporal_score(rec.valid_from, window)
                st["temporal"] = round(t_score, 4)
                boost *= 1.0 + p.temporal_weight * t_score
            if p.recency_weight > 0:
                # Only what happened by ``now`` counts: a replayed history must not borrow today's timestamps.
                seen = (rec.created_at, rec.last_accessed_at or 0.0, rec.valid_from)
                last = max((t for t in seen if t <= now_ts), default=rec.valid_from)
                r_score = _recency(last, now_ts, p.recency_half_life_days)
                st["recency"] = round(r_score, 4)
                boost *= 1.0 + p.recency_weight * r_score
            if asks_own is not None and rec.slot is not None:
                own = rec.slot[0] == "user"
                # "we" takes in the people the user lives and works with: their facts are no one else's
                if own != asks_own and not asks_we and rec.slot[0].lower() not in req.query.lower():
                    boost *= OTHER_SUBJECT
                    st["subject"] = OTHER_SUBJECT
                elif own and asks_own:
                    boost *= SAME_SUBJECT
                    st["subject"] = SAME_SUBJECT
            elif asks_own and rec.source_role == "user":
                if len(rec.text.split()) <= TENTATIVE_MAX_WORDS and self.reader is not None \
                        and self.reader.tentative(rec.text):
                    boost *= TENTATIVE  # "would my rent be cheaper?" asks; it does not say what the rent is
                    st["tentative"] = TENTATIVE
                elif now_q and self.reader is not None and self.reader.speaks_of_self(rec.text):
                    boost *= SAME_SUBJECT  # the user's own words about themselves, kept as said
                    st["subject"] = SAME_SUBJECT
                elif not asks_we and self.reader is not None and rec.kind != EVIDENCE_KIND \
                        and (who := self.reader.whose(rec.text)) != "user" and not asks_after(who, req.query):
                    boost *= OTHER_SUBJECT  # "My sister Ines lives here" answers where she lives, not the user
                    st["subject"] = OTHER_SUBJECT
            if now_q and asks_own and rec.source_role == "user" and self.reader is not None \
                    and self.reader.only_ended(rec.text):
                boost *= ENDED  # "what course am I doing?": "dropped the evening course" says what I am not
                st["ended"] = ENDED
            if echo_weight != 1.0 and (rec.source_role == "assistant" or rec.source_role == "user"
                                       and self.reader is not None and self.reader.echoes(rec.text)):
                boost *= echo_weight
                st["assistant"] = echo_weight
            if standing and rec.kind in STANDING_KINDS:
                boost *= 1.0 + p.standing_weight
                st["standing"] = round(1.0 + p.standing_weight, 3)
            if damp_pleasantries and rec.importance < LOW_IMPORTANCE:
                boost *= p.pleasantry_weight
                st["pleasantry"] = p.pleasantry_weight
            hits.append(Hit(rec, base * boost, st))
        hits.sort(key=lambda h: (-h.score, h.record.created_at, h.record.id))
        named = names_in(req.query)
        names_speaker = bool(named)
        if p.speaker_weight > 0:
            names_speaker = self._match_speakers(scope, named, hits, max(req.limit * 2, 40), p.speaker_weight)

        head = hits[: max(req.limit * 4, 40)]
        vectors = {h.record.id: known[h.record.id] for h in head if h.record.id in known}
        if missing := [h.record.id for h in head if h.record.id not in asked]:
            vectors.update(self.store.vectors(scope, missing))
        if p.dedup_threshold <= 1.0:
            kept, dropped = collapse_duplicates([h.record.id for h in head], vectors, p.dedup_threshold)
            by_id = {h.record.id: h for h in head}
            for gone, keeper in dropped.items():
                by_id[keeper].stages.setdefault("merged", 0)
                by_id[keeper].stages["merged"] += 1
                by_id[keeper].record.episode_ids = list(
                    dict.fromkeys([*by_id[keeper].record.episode_ids, *by_id[gone].record.episode_ids])
                )
            head = [by_id[i] for i in kept]
        if self.reader is not None and now_q and not req.include_superseded:
            about = None if asks_own or names_speaker else persons_in(req.query, named) | relatives_in(req.query)
            if asks_own or about:  # about: "which school does Leo go to?", someone the user talks about
                texts, said_vectors = answering_parts(head, vectors, sentences, qvec(), self.reader)
                span = max(req.limit * 2, 10)
                if asks_own:
                    head = fit_attribute(head, said_vectors, qvec(), self.reader, span)
                head = newer_first(head, said_vectors, self.reader, req.query, span, about=about or None, texts=texts)
                head = left_behind(head, texts, said_vectors, sentences, qvec(), self.reader, span)
                if asks_own:
                    head = replaced_parts(self.store, scope, head, qvec(), req.query, only)
                head = current_first(head)
                if asks_own:
                    mark_rivals(head, said_vectors, texts, self.reader, head_order.SPAN)
                if asks_own and p.head_order and head_order.reads(req.query):
                    head = current_first(head_order.order_head(head, req.query, self.reader))
        if p.mmr_lambda is not None and len(head) > 1:
            order = mmr(
                [h.record.id for h in head],
                {h.record.id: h.score for h in head},
                vectors,
                p.mmr_lambda,
                req.limit,
            )
            by_id = {h.record.id: h for h in head}
            head = [by_id[i] for i in order]
        return head[: req.limit]

    def _linked(self, req: SearchRequest, view: ScopeView | None, only: list[str] | None) -> list[str]:
        """The entity stage's memories, best first: those of the entities named in the query or the recent
        turns, and of their graph neighbours."""
        scope = req.scope
        names = (view.get(ENTITIES, lambda: self._entity_names(scope), shared=False) if view is not None
                 else self._entity_names(scope))
        if not names:
            return []
        ents = entities_in_text(req.query, names)
        recent_ents = [e for t in req.recent_turns for e in entities_in_text(t.content, names)]
        seeds = list(dict.fromkeys([*ents, *recent_ents]))
        for eid in list(seeds[:8]):
            seeds.extend(n.id for n, _, _ in self.store.neighbours(scope, eid, depth=1)[:5])
        seeds = list(dict.fromkeys(seeds))
        if not seeds:
            return []
        linked = self.store.memories_of_entities(scope, seeds, limit=req.preset.entity_k)
        if only is not None:
            allowed = set(only)
            linked = [m for m in linked if m in allowed]
        return linked

    @staticmethod
    def _blend_sentences(qvec: np.ndarray, dense: list[tuple[str, float]], sentences: dict[str, np.ndarray],
                         weight: float) -> tuple[list[tuple[str, float]], dict[str, float]]:
        """Each dense candidate that has sentence vectors (a long message) moves ``weight`` of the way from its
        window score up to its best sentence's cosine; the others keep their score. Re-sorted, with the best
        sentence cosine of each candidate that has sentences."""
        if not sentences:
            return dense, {}
        q = np.asarray(qvec, dtype=np.float32)
        out: list[tuple[str, float]] = []
        best_of: dict[str, float] = {}
        for mid, score in dense:
            mat = sentences.get(mid)
            if mat is not None and len(mat):
                best = best_of[mid] = float((mat @ q).max())
                score += weight * max(0.0, best - score)
            out.append((mid, score))
        out.sort(key=lambda x: -x[1])
        return out, best_of

    def _open_cache(self, scope: Scope, cname: str, expand: bool) -> ScopeView | None:
        """The scope's cached pieces for this search (None: no cache). ``cname``: the entry of the query's
        candidate lists, empty for a filtered search, which keeps them to itself."""
        names = [n for n, wanted in ((cname, bool(cname)), (ENTITIES, expand)) if wanted]
        if self.cache is None or not names:
            return None
        return self.cache.open(scope, names, shared=[cname] if cname else [], marker=self.store.change_marker)

    def _match_speakers(self, scope: Scope, named: set[str], hits: list[Hit], head: int, weight: float) -> bool:
        """Lift the head's memories said by a person the query names in the third person ("What did Caroline
        research?"). Speakers are the stored messages' names; nothing happens when the query names none of them,
        or names every speaker in the head (then the name does not tell the memories apart). True when the
        query names a speaker."""
        if not named:
            return False
        top = hits[:head]
        episode_ids = list(dict.fromkeys(e for h in top for e in h.record.episode_ids))
        speaker_of = {i: name.strip().lower() for i, name in self.store.episode_names(scope, episode_ids).items()
                      if name.strip()}
        speakers = set(speaker_of.values())
        asked = {s for s in speakers if s in named or s.split()[0] in named}  # "Jon" names "Jon Smith"
        if not asked or asked == speakers:
            return bool(asked)
        for h in top:
            if any(speaker_of.get(e) in asked for e in h.record.episode_ids):
                h.score *= 1.0 + weight
                h.stages["speaker"] = round(1.0 + weight, 3)
        top.sort(key=lambda h: (-h.score, h.record.created_at, h.record.id))
        hits[:head] = top
        return True


OTHER_SUBJECT = 0.5  # a fact about someone else, when the query asks about the user (or the reverse)
TAIL_COSINE = 0.3  # below the dense floor, a candidate this close to the query is still a (last) result
TAIL_SCALE = 0.01
# A short question, wish or supposition of the user's, when the query asks how things are for the user. (A long
# message that ends in a question usually says a good deal before it, so it keeps its score.)
TENTATIVE = 0.4
TENTATIVE_MAX_WORDS = 25
# What the user said has ended, when the query asks how things are now: part of the answer, not the answer.
ENDED = 0.6
SAME_SUBJECT = 1.25  # a fact the user stated about themselves, when the query asks about the user
# The assistant's turns, when the query asks how things are for the user now and not what the assistant said.
ASSISTANT_ECHO = 0.7
WORDS_ONLY = 0.15  # below this cosine (message or best sentence), a keyword match is words only
WORDS_ONLY_SCALE = 0.3  # ... and its keyword share counts this much


def _held_at(rec: MemoryRecord, t: float) -> bool:
    """What was believed at ``t``: recorded by then, valid from before it, not yet ended."""
    return rec.created_at <= t and rec.valid_from <= t and (rec.valid_to is None or rec.valid_to > t)


def _time_window(query: str, now: datetime):  # type: ignore[no-untyped-def]
    try:
        from memstrata.core.temporal import parse_time_window
    except ImportError:  # pragma: no cover - the module ships with the package
        return None
    return parse_time_window(query, now if now.tzinfo else now.replace(tzinfo=UTC))


def _temporal_score(event_ts: float, window) -> float:  # type: ignore[no-untyped-def]
    from memstrata.core.temporal import temporal_score

    if getattr(window, "kind", "range") == "order":
        return 0.0
    return float(temporal_score(datetime.fromtimestamp(event_ts, UTC), window))


def _recency(ts: float, now: float, half_life_days: float) -> float:
    age_days = max(0.0, (now - ts) / 86400.0)
    return float(0.5 ** (age_days / half_life_days))


def _spread_to_neighbours(fused: dict[str, float], stages: dict[str, dict[str, float]],
                          records: dict[str, MemoryRecord], weight: float) -> None:
    """A turn borrows part of its adjacent turns' score: the reply often names what the turn was about.

    Neighbours are memories of the same conversation written by one add() call (same time), adjacent
    in insertion order. Only candidates already in the pool take part, so no extra query is made.
    """
    by_rid = {r.rid: r for r in records.values()}
    base = dict(fused)
    for rec in records.values():
        best = 0.0
        for rid in (rec.rid - 1, rec.rid + 1):
            other = by_rid.get(rid)
            if other is None or other.conversation_id != rec.conversation_id or other.created_at != rec.created_at:
                continue
            best = max(best, base.get(other.id, 0.0))
        if best > 0:
            fused[rec.id] += weight * best
            stages[rec.id]["neighbour"] = round(weight * best, 5)

