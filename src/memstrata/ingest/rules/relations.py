"""Graph edges from a clause: subject-verb-object relations whose object is a named entity, and co-mentions.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from memstrata.ingest.candidate import Candidate, Relation
from memstrata.ingest.entities import canonical_key
from memstrata.ingest.lexicon import GRAPH_LABELS, JOB_NOUNS
from memstrata.ingest.rules.mentions import Mention, mention_at
from memstrata.ingest.rules.phrases import first_pobj, nested_pobj, snake
from memstrata.ingest.sentence import SentenceFeatures
from memstrata.ingest.syntax import lemma

if TYPE_CHECKING:
    from spacy.tokens import Token


RELATION_MAP = {
    ("live", "in"): "lives_in", ("live", "at"): "lives_in", ("reside", "in"): "lives_in",
    ("move", "to"): "lives_in", ("relocate", "to"): "lives_in", ("base", "in"): "lives_in",
    ("work", "at"): "works_at", ("work", "for"): "works_at", ("intern", "at"): "works_at",
    ("join", ""): "works_at", ("bear", "in"): "born_in", ("bear", "on"): "born_on",
}


def _third_singular(verb: str) -> str:
    irregular = {"be": "is", "have": "has", "do": "does", "go": "goes"}
    if verb in irregular:
        return irregular[verb]
    if re.search(r"(?:s|sh|ch|x|z|o)$", verb):
        return verb + "es"
    if re.search(r"[^aeiou]y$", verb):
        return verb[:-1] + "ies"
    return verb + "s"


def _relation_name(verb: Token, prep: str) -> str:
    word = lemma(verb)
    mapped = RELATION_MAP.get((word, prep))
    if mapped:
        return mapped
    if word == "be":
        return f"is_{prep}" if prep else "is"
    base = _third_singular(snake(word))
    return f"{base}_{prep}" if prep else base


def clause_relations(pred: Token, who: str | None, feats: SentenceFeatures,
               mentions: list[Mention]) -> list[Relation]:
    """Subject–verb–object edges whose object is a named entity; the preposition joins the relation name."""
    if who is None or feats.negated or feats.subject_kind in ("assistant", "second_person", "vague"):
        return []
    if feats.modal in ("would", "could", "might", "may", "should"):
        return []
    out: list[Relation] = []

    def obj_name(tok: Token) -> str | None:
        m = mention_at(tok, mentions)
        if m is None or m.label not in GRAPH_LABELS or m.mention.canonical == who:
            return None
        return m.mention.canonical

    word = lemma(pred)
    for c in pred.children:
        if c.dep_ == "dobj" and (name := obj_name(c)):
            out.append(Relation(who, _relation_name(pred, ""), name))
        if c.dep_ == "prep":
            for g in c.children:
                if g.dep_ == "pobj" and (name := obj_name(g)):
                    rel = _relation_name(pred, c.lower_)
                    place = mention_at(g, mentions)
                    if rel == "lives_in" and (place is None or place.label != "PLACE"):
                        continue
                    out.append(Relation(who, rel, name))
        if c.dep_ in ("dobj", "pobj") and lemma(c) in JOB_NOUNS:
            org = first_pobj(c, ("at", "with"))
            if org is not None and (name := obj_name(org)):
                out.append(Relation(who, "works_at", name))
    if word == "work":
        org = nested_pobj(pred, ("at", "for"))
        if org is not None and (name := obj_name(org)):
            out.append(Relation(who, "works_at", name))
    return out


def add_co_mentions(first: Candidate, produced: list[Candidate], mentions: list[Mention]) -> None:
    """Named entities mentioned in one message are linked ("mentioned_with"), once per pair."""
    names = sorted({m.mention.canonical for m in mentions if m.label in GRAPH_LABELS and not m.unnamed},
                   key=canonical_key)
    seen = {(r.subject, r.object) for c in produced for r in c.relations}
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if (a, b) not in seen and (b, a) not in seen:
                first.relations.append(Relation(a, "mentioned_with", b))
