"""Reading a spaCy parse: lemmas, subjects, possessors, modality, negation and preference objects.

Small questions asked of tokens that the drop rules, the importance score and the rules extractor all need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from memstrata.ingest.entities import PET_NOUNS, RELATION_NOUNS
from memstrata.ingest.lexicon import (
    EVENT_NOUNS,
    FIRST_PERSON,
    FIRST_POSSESSIVE,
    KNOWN_VERBS,
    PREFERENCE_IDIOMS,
    SECOND_PERSON,
    THIRD_PERSON,
    VAGUE_SUBJECTS,
)

if TYPE_CHECKING:
    from spacy.tokens import Token


def lemma(tok: Token) -> str:
    """Lower-case lemma; repairs "hates" -> "hat", "rides" -> "rid", and reads "I've got" as "have"."""
    base = (tok.lemma_ or tok.text).lower()
    if tok.pos_ in ("VERB", "AUX") and base not in KNOWN_VERBS and base + "e" in KNOWN_VERBS:
        return base + "e"
    if base == "get" and tok.tag_ == "VBN" and any(
            c.dep_ == "aux" and c.lower_ in ("'ve", "have", "'s", "has", "ve") for c in tok.children):
        return "have"
    return base


def has_subject(tok: Token) -> bool:
    return any(c.dep_ in ("nsubj", "nsubjpass", "expl") for c in tok.children)


def stranded_subject(pred: Token) -> Token | None:
    """The subject the parser hung on the clause before: in "My old boss moved to the Leeds depot in February
    and Ruth is my manager now" the small model reads "February and Ruth" as one phrase and gives "is" the
    boss for subject. A coordinated predicate with no subject of its own, right after a noun coordinated
    into the clause before, is that noun's."""
    if pred.dep_ != "conj" or has_subject(pred) or pred.i == 0 or pred.left_edge.i != pred.i:
        return None
    prev = pred.doc[pred.i - 1]
    if prev.dep_ != "conj" or prev.pos_ not in ("PROPN", "NOUN", "PRON") or prev.head.pos_ not in ("PROPN", "NOUN") \
            or prev.head.dep_ in ("nsubj", "nsubjpass") or not any(c.dep_ == "cc" for c in prev.head.children):
        return None
    return prev


def subject_of(pred: Token) -> Token | None:
    """The nominal subject of a predicate, following conj and xcomp links to a shared subject."""
    tok = pred
    for _ in range(4):
        for c in tok.children:
            if c.dep_ in ("nsubj", "nsubjpass", "expl", "csubj"):
                return c
        if (stranded := stranded_subject(tok)) is not None:
            return stranded
        if tok.dep_ in ("conj", "xcomp") and tok.head != tok:
            tok = tok.head
        else:
            return None
    return None


def possessor(noun: Token) -> Token | None:
    """``my`` in "my boss", ``Anna`` in "Anna's birthday"."""
    for c in noun.children:
        if c.dep_ == "poss":
            return c
    return None


def classify_subject(subj: Token | None) -> str:
    """first_person | second_person | person | event | thing | vague | none."""
    if subj is None:
        return "none"
    low = subj.lower_
    if low in FIRST_PERSON:
        return "first_person"
    if low in SECOND_PERSON:
        return "second_person"
    if low in THIRD_PERSON:
        return "person"
    if low in VAGUE_SUBJECTS:
        return "vague"
    head = lemma(subj)
    poss = possessor(subj)
    if subj.ent_type_ in ("PERSON", "NORP") or head in RELATION_NOUNS or head in PET_NOUNS:
        return "person"
    if any(c.dep_ in ("appos", "compound") and c.ent_type_ == "PERSON" for c in subj.children):
        return "person"
    if head in EVENT_NOUNS:
        return "event"
    if poss is not None and poss.lower_ in FIRST_POSSESSIVE:
        return "first_person"  # "my gate code is 4512" is a fact about the user
    if poss is not None and poss.lower_ in SECOND_PERSON:
        return "second_person"
    if poss is not None and (poss.lower_ in ("his", "her", "their") or poss.ent_type_ == "PERSON"
                             or lemma(poss) in RELATION_NOUNS):
        return "person"
    if subj.pos_ == "PROPN" and subj.ent_type_ in ("", "PERSON"):
        return "person"
    return "thing"


def modal_of(pred: Token) -> str | None:
    """The modal auxiliary of a predicate, normalised ("'d" -> "would")."""
    for c in pred.children:
        if c.dep_ == "aux" and c.tag_ == "MD":
            return {"'d": "would", "wo": "will", "'ll": "will", "ca": "can", "sha": "shall"}.get(
                c.lower_, lemma(c))
    return None


def is_negated(pred: Token) -> bool:
    return any(c.dep_ == "neg" for c in pred.children)


def preference_object(pred: Token) -> Token | None:
    """What a preference verb is about: the object, or a mis-parsed word after the verb ("I hate cilantro"
    comes out of the tagger as an adverb)."""
    for c in pred.rights:
        if c.lower_ in VAGUE_SUBJECTS | {"them", "him", "her", "you", "me", "us"}:
            continue
        if c.dep_ in ("dobj", "xcomp"):
            return c
        if c.dep_ in ("advmod", "acomp", "npadvmod", "oprd", "attr") and c.pos_ in ("NOUN", "PROPN", "ADJ"):
            return c
    return None


def preference_idiom(pred: Token) -> Token | None:
    """The attribute noun of "horror movies are not my thing" / "jazz is my jam", else None."""
    if lemma(pred) != "be":
        return None
    for c in pred.children:
        if c.dep_ == "attr" and c.lower_ in PREFERENCE_IDIOMS:
            poss = possessor(c) or (possessor(c.head) if c.head.dep_ == "pobj" else None)
            if poss is not None and poss.lower_ in FIRST_POSSESSIVE:
                return c
    return None
