"""Is a sentence worth remembering? A weighted importance score over the features of one sentence.

The drop rules come first (:mod:`memstrata.ingest.sentence`): questions, hypotheticals, sarcasm, quoted
speech and one-off requests are never memories. What is left is scored here from independent signals
combined as a noisy-or, so two weak signals add up but never pass 1.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from memstrata.ingest.entities import PET_NOUNS, RELATION_NOUNS, EntityIndex
from memstrata.ingest.lexicon import (
    ASSIGN_VERBS,
    DATE_WORDS,
    DURABLE_VERBS,
    EVENT_NOUNS,
    FREQUENCY_ADVERBS,
    IMPLICIT,
    INTENSIFIERS,
    LIFE_EVENT_VERBS,
    LIGHT_VERBS,
    NAMED_LABELS,
    NUMBER_LABELS,
    PREFERENCE_VERBS,
    SCHEDULE_CHANGE_VERBS,
    TRANSIENT_ADJECTIVES,
)
from memstrata.ingest.sentence import SentenceFeatures, analyze, is_sarcastic, strip_emphasis
from memstrata.ingest.syntax import lemma, possessor, preference_idiom, preference_object, subject_of

if TYPE_CHECKING:
    from spacy.tokens import Doc, Span, Token


DEFAULT_THRESHOLD = 0.5

REASONS = ("explicit_cue", "preference", "plan", "schedule_change", "relationship", "new_entity", "number",
           "date", "first_person_fact", "implicit_signal", "contradiction")

# Weights are probabilities that the signal alone marks a memory; 0.5 is the default cut-off, so
# a weak signal (< 0.5) needs a second one.
WEIGHTS = {
    "explicit_cue": 0.9,
    "schedule_change": 0.8,
    "preference": 0.7,
    "plan": 0.6,
    "relationship": 0.6,
    "relationship_weak": 0.3,
    "first_person_fact": 0.6,
    "first_person_weak": 0.25,
    "third_person_fact": 0.5,
    "concrete_value": 0.35,
    "new_entity": 0.35,
    "number": 0.3,
    "date": 0.25,
    "implicit_signal": 0.2,
    "contradiction": 0.5,
}


def predicate_strength(feats: SentenceFeatures) -> str:
    """'durable' for lasting facts (jobs, homes, habits, traits), 'weak' for passing ones, '' without one."""
    pred = feats.root
    if pred is None:
        return ""
    word = lemma(pred)
    children = list(pred.children)
    deps = {c.dep_ for c in children}
    if word == "be" and not any(c.dep_ == "aux" for c in children):
        comps = [c for c in children if c.dep_ in ("attr", "acomp", "oprd")]
        preps = [c for c in children if c.dep_ == "prep"]
        if not comps:
            if any(c.dep_ == "npadvmod" and c.ent_type_ in ("DATE", "TIME") for c in children):
                return "durable"  # "my birthday is March 4"
            if not preps:
                return "weak"
            if preps[0].lower_ in ("at", "in") and feats.subject_kind == "first_person":
                return "weak"  # "I'm at home", "I'm in a meeting"
            return "durable"
        comp = comps[0]
        if comp.pos_ == "ADJ" or comp.dep_ == "acomp":
            mods = {c.lower_ for c in comp.children}
            complement = any(c.dep_ in ("prep", "xcomp") for c in comp.children) or bool(preps)
            if mods & INTENSIFIERS:
                return "weak"  # "so dramatic", "really tired": an evaluation, not an attribute
            if comp.lower_ in TRANSIENT_ADJECTIVES and not complement:
                return "weak"
            return "durable"
        if comp.lower_ in TRANSIENT_ADJECTIVES:
            return "weak"
        return "durable"
    if word in ("call", "name") and pred.tag_ == "VBN" and any(c.dep_ in ("oprd", "attr", "xcomp")
                                                                 for c in children):
        return "durable"  # "she is called Lucy"
    has_aux = any(c.dep_ == "aux" for c in children)
    present = _simple_present(pred) or (word == "have" and pred.tag_ == "VBN" and has_aux)  # "I've got"
    transient = any(t.lower_ in ("now", "currently", "moment", "today", "tonight") for t in pred.subtree)
    if present and not transient and any(c.lower_ in FREQUENCY_ADVERBS for c in children):
        return "durable"  # "I always get motion sickness": a habit, whatever the verb
    if feats.modal == "can" and word not in LIGHT_VERBS and not transient:
        return "durable"  # "I can't eat gluten", "I can speak Mandarin"
    if word in LIGHT_VERBS:
        return "weak"
    if word in LIFE_EVENT_VERBS:
        return "durable"
    if word in DURABLE_VERBS and not feats.modal:
        if present:
            return "durable"  # the simple present states a habit: "I drink two coffees a day"
        progressive = pred.tag_ == "VBG" and has_aux
        if progressive and not transient:
            return "durable"  # "I'm studying law" is an ongoing state, "I'm reading right now" is not
    if present and ("dobj" in deps or "prep" in deps):
        return "durable"
    return "weak"


def _simple_present(pred: Token) -> bool:
    """ "I eat", "she works", "I don't eat" (do-support), not "I ate" or "I am eating"."""
    auxes = [c for c in pred.children if c.dep_ in ("aux", "auxpass")]
    if pred.tag_ in ("VBP", "VBZ"):
        return not auxes
    return pred.tag_ == "VB" and len(auxes) == 1 and lemma(auxes[0]) == "do" and auxes[0].tag_ in ("VBP", "VBZ")


def _relation_phrase(span: Span) -> tuple[bool, bool]:
    """(a possessed relation noun is present, it names someone): "my boss", "my sister Anna"."""
    found = named = False
    for tok in span:
        if tok.pos_ != "NOUN" or lemma(tok) not in RELATION_NOUNS | PET_NOUNS:
            continue
        poss = possessor(tok)
        attr_of_proper = tok.dep_ == "attr" and (s := subject_of(tok.head)) is not None and s.pos_ == "PROPN"
        if poss is None and not attr_of_proper:
            continue
        found = True
        if any(c.dep_ in ("appos", "compound", "npadvmod") and c.pos_ == "PROPN" for c in tok.children):
            named = True  # "my sister Anna"
        elif tok.dep_ == "appos" and tok.head.pos_ == "PROPN":
            named = True  # "Anna, my sister"
        elif attr_of_proper or (poss is not None and poss.pos_ == "PROPN"):
            named = True  # "Anna Silva is my sister", "Tom's fiancée"
        elif tok.dep_ in ("nsubj", "nsubjpass") and any(
                c.dep_ in ("attr", "oprd") and c.pos_ == "PROPN" for c in tok.head.children):
            named = True  # "my manager is Sarah Chen", "his fiancée is called Lucy"
    return found, named


def _has_number(span: Span) -> bool:
    for t in span:
        digits = any(ch.isdigit() for ch in t.text)
        if t.ent_type_ in NUMBER_LABELS or (digits and t.ent_type_ not in ("DATE", "TIME")):
            return True
        # NER sometimes calls an amount or a code a date ("1450 euros", "my gate code is 4512")
        if digits and t.dep_ == "nummod" and t.head.lower_ not in DATE_WORDS and t.head.ent_type_ != "DATE":
            return True
        if _bare_number_date(t):
            return True
    return False


def _bare_number_date(t: Token) -> bool:
    """A lone number NER called a date although nothing makes it one ("my gate code is 4512")."""
    return t.text.isdigit() and t.ent_type_ == "DATE" and t.ent_iob_ == "B" and t.head.pos_ != "ADP" and (
        t.i + 1 >= len(t.doc) or t.doc[t.i + 1].ent_iob_ != "I")


def _concrete_value(feats: SentenceFeatures) -> bool:
    """ "The car's plate is 7KX-392", "Rent is 1450 euros": a definite thing given a specific value."""
    pred = feats.root
    if pred is None or lemma(pred) != "be" or feats.subject_kind != "thing" or feats.negated:
        return False
    subj = feats.subject
    if subj is None or subj.pos_ not in ("NOUN", "PROPN"):
        return False
    for c in pred.children:
        if c.dep_ in ("attr", "acomp", "npadvmod", "prep"):
            for t in c.subtree:
                if any(ch.isdigit() for ch in t.text) or t.ent_type_ in NAMED_LABELS | {"DATE", "TIME"}:
                    return True
    return False


def _signals(span: Span, feats: SentenceFeatures, known: EntityIndex) -> dict[str, float]:
    sig: dict[str, float] = {}
    pred = feats.root
    if pred is None:
        return sig
    word = lemma(pred)
    kind = feats.subject_kind
    ents = list(span.ents)
    if feats.explicit_cue:
        sig["explicit_cue"] = WEIGHTS["explicit_cue"]
    if kind in ("first_person", "person"):
        rather = any(c.lower_ == "rather" for c in pred.children)
        favourite = any(t.lower_ in ("favorite", "favourite", "fave") for t in span)
        object_ = preference_object(pred) is not None or any(c.dep_ in ("ccomp", "prep") for c in pred.children)
        if (word in PREFERENCE_VERBS and object_ and feats.modal != "would") or favourite or rather or (
                word == "stand" and feats.negated) or (feats.modal == "would" and feats.negated) or (
                preference_idiom(pred) is not None):
            sig["preference"] = WEIGHTS["preference"]
    if feats.future and kind not in ("vague", "second_person", "assistant", "none") and not feats.negated:
        sig["plan"] = WEIGHTS["plan"]
    if word in ASSIGN_VERBS and not feats.negated and any(c.dep_ == "xcomp" for c in pred.children) and any(
            c.dep_ in ("dobj", "nsubj") and c.lower_ in ("me", "us") for c in pred.children):
        sig["plan"] = WEIGHTS["plan"]  # "Sarah asked me to present the roadmap": a task for the user
    event_object = any(c.dep_ in ("dobj", "nsubjpass") and lemma(c) in EVENT_NOUNS for c in pred.children)
    if kind == "event" or event_object:
        if word in SCHEDULE_CHANGE_VERBS or (word == "be" and any(
                c.lower_ in ("now", "again", "instead") for c in pred.children)):
            sig["schedule_change"] = WEIGHTS["schedule_change"]
        elif any(e.label_ in ("DATE", "TIME") for e in ents) and not feats.negated:
            sig["plan"] = WEIGHTS["plan"]
    rel, named = _relation_phrase(span)
    if named:
        sig["relationship"] = WEIGHTS["relationship"]
    elif rel:
        sig["relationship"] = WEIGHTS["relationship_weak"]
    strength = predicate_strength(feats)
    if kind == "first_person" and strength:
        sig["first_person_fact"] = WEIGHTS["first_person_fact" if strength == "durable" else "first_person_weak"]
    elif kind == "person" and strength == "durable":
        sig["relationship"] = max(sig.get("relationship", 0.0), WEIGHTS["third_person_fact"])
    new = [e for e in ents if e.label_ in NAMED_LABELS and e.text not in known]
    if new:
        sig["new_entity"] = 1 - (1 - WEIGHTS["new_entity"]) ** min(len(new), 2)
    if _has_number(span):
        sig["number"] = WEIGHTS["number"]
    if any(e.label_ in ("DATE", "TIME") and not (len(e) == 1 and _bare_number_date(e[0])) for e in ents):
        sig["date"] = WEIGHTS["date"]
    implicit = WEIGHTS["implicit_signal"] if IMPLICIT.search(span.text) else 0.0
    if _concrete_value(feats):
        implicit = max(implicit, WEIGHTS["concrete_value"])
    if implicit:
        sig["implicit_signal"] = implicit
    return sig


def combine(signals: dict[str, float]) -> float:
    """Noisy-or of the signal weights."""
    miss = 1.0
    for w in signals.values():
        miss *= 1.0 - w
    return round(1.0 - miss, 4)


def score_features(span: Span, feats: SentenceFeatures, known_entities: EntityIndex | Iterable[str] = (),
                   extra: dict[str, float] | None = None) -> tuple[float, list[str]]:
    """Score an analysed sentence; ``extra`` adds caller-side signals such as a slot or a contradiction."""
    if feats.drop is not None:
        feats.signals = {}
        return 0.0, []
    known = known_entities if isinstance(known_entities, EntityIndex) else EntityIndex(known_entities)
    sig = _signals(span, feats, known)
    for name, w in (extra or {}).items():
        sig[name] = max(sig.get(name, 0.0), w)
    if feats.subject_kind in ("assistant", "second_person") and not feats.explicit_cue:
        sig = {k: v for k, v in sig.items() if k in ("new_entity", "number", "date")}
    if "explicit_cue" not in sig:
        damp = 1.0
        if feats.negated and "preference" not in sig and predicate_strength(feats) != "durable":
            damp *= 0.6  # "I didn't go" says less than "I went"; "I don't eat pork" is still a fact
        if feats.banter:
            damp *= 0.8
        if damp < 1.0:
            sig = {k: round(v * damp, 4) for k, v in sig.items()}
    feats.signals = sig
    return combine(sig), [r for r in REASONS if r in sig]


def score_importance(sentence_or_doc: str | Span | Doc, *, known_entities: EntityIndex | Iterable[str] = (),
                     role: str = "user", extra: dict[str, float] | None = None) -> tuple[float, list[str]]:
    """Importance in [0, 1] and the reasons behind it, for a sentence (or the best sentence of a text).

    Questions, hypotheticals, sarcasm, quoted speech, one-off requests and small talk score 0 with no
    reasons. ``known_entities`` are canonical names already stored for the scope ("new_entity" only counts
    others). ``extra`` lets a caller add signals it computed, e.g. ``{"contradiction": 0.5}``.
    """
    from spacy.tokens import Span as SpanType

    from memstrata.ingest import nlp as _nlp

    spans: list[Span]
    if isinstance(sentence_or_doc, str):
        raw = sentence_or_doc
        spans = list(_nlp.parse(strip_emphasis(raw)).sents)
    elif isinstance(sentence_or_doc, SpanType):
        raw = sentence_or_doc.text
        spans = [sentence_or_doc]
    else:
        raw = sentence_or_doc.text
        spans = list(sentence_or_doc.sents)
    if is_sarcastic(raw):
        return 0.0, []
    known = known_entities if isinstance(known_entities, EntityIndex) else EntityIndex(known_entities)
    best: tuple[float, list[str]] = (0.0, [])
    for span in spans:
        result = score_features(span, analyze(span, role=role), known, extra)
        if result[0] > best[0]:
            best = result
    return best
