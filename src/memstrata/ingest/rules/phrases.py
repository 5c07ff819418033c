"""Values read off noun phrases and predicates: normalised phrases, attribute names, dates and times, ages.

Turns tokens into the strings a slot stores ("my new phone number" -> attribute "phone"; "June 14 at 7:45am"
-> "june 14 7:45am"), plus the prepositional-object lookups the slot and relation rules share.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import TYPE_CHECKING

from memstrata.ingest.entities import canonical_name
from memstrata.ingest.lexicon import (
    ATTRIBUTE_SYNONYMS,
    CHANGE_MODIFIERS,
    CLOCK,
    OCCUPATION_SUFFIX,
    OCCUPATIONS,
    TIME_OF_DAY,
    WEEKDAYS_MONTHS,
)
from memstrata.ingest.syntax import lemma

if TYPE_CHECKING:
    from spacy.tokens import Token


def norm(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower().strip()
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"^(?:the|a|an|my|our|your)\s+", "", text)
    return text.strip(" \t.,;:!?\"'“”‘’()*")


def snake(text: str) -> str:
    return re.sub(r"[^\w]+", "_", norm(text)).strip("_")


def value_tokens(tok: Token, *, keep_of: bool = True) -> list[Token]:
    """Tokens of the noun phrase headed by ``tok``, without determiners, possessives or change words."""
    chosen: set[int] = {tok.i}
    for c in tok.lefts:
        if c.dep_ in ("amod", "compound", "nummod", "nmod", "quantmod", "npadvmod", "advmod") and (
                c.lower_ not in CHANGE_MODIFIERS):
            chosen.update(t.i for t in c.subtree if t.dep_ not in ("det", "poss", "case", "punct"))
    for c in tok.rights:
        if c.dep_ in ("compound", "flat", "nummod", "npadvmod") or (keep_of and c.dep_ == "prep" and c.lower_ == "of"):
            chosen.update(t.i for t in c.subtree if t.dep_ not in ("det",))
    if tok.ent_type_ and tok.ent_type_ not in ("CARDINAL",):
        for ent in tok.doc.ents:
            if ent.start <= tok.i < ent.end:
                chosen.update(range(ent.start, ent.end))
    # "555-0142", "7:45am": keep a token glued to its neighbours
    doc = tok.doc
    lo, hi = min(chosen), max(chosen)
    while lo > 0 and not doc[lo - 1].whitespace_ and any(ch.isdigit() for ch in doc[lo - 1].text):
        lo -= 1
    while hi + 1 < len(doc) and not doc[hi].whitespace_ and doc[hi + 1].text not in (".", ",", "!", "?", ";",
                                                                                    ":", ")"):
        hi += 1
    chosen.update(range(lo, hi + 1))
    # "my new number" drops "new"; "New York" keeps it
    return [doc[i] for i in sorted(chosen)
            if i == tok.i or doc[i].lower_ not in CHANGE_MODIFIERS or doc[i].ent_type_ or doc[i].pos_ == "PROPN"]


def join_tokens(tokens: list[Token], replace: dict[int, str] | None = None) -> str:
    """Tokens as written (their own spacing between neighbours), optionally replacing some words."""
    out = ""
    for n, t in enumerate(tokens):
        out += (replace or {}).get(t.i, t.text)
        if n + 1 < len(tokens):
            out += t.whitespace_ if tokens[n + 1].i == t.i + 1 else " "
    return out


def phrase(tok: Token, *, lemma_head: bool = False, keep_of: bool = True) -> str:
    """A normalised noun phrase value: compounds, modifiers, an "of" complement; entities kept whole."""
    tokens = value_tokens(tok, keep_of=keep_of)
    if lemma_head and tok.pos_ == "NOUN":
        return norm(join_tokens(tokens, {tok.i: lemma(tok)}))
    return norm(canonical_name(join_tokens(tokens)) if tok.pos_ == "PROPN" else join_tokens(tokens))


def attribute(noun: Token) -> str:
    """ "my new phone number" -> "phone", "my favourite cuisine" -> "favorite_cuisine"."""
    parts: list[str] = []
    for c in noun.lefts:
        if c.dep_ in ("compound", "amod", "nmod") and c.lower_ not in CHANGE_MODIFIERS:
            parts.extend(t.lower_ for t in c.subtree if t.dep_ not in ("det", "poss", "case", "punct"))
    parts.append(noun.lower_)
    attr = snake(" ".join("favorite" if p in ("favourite", "fave") else p for p in parts))
    return ATTRIBUTE_SYNONYMS.get(attr, attr)


def time_value(pred: Token, exclude: set[int]) -> str:
    """Date and time words under a predicate ("Friday", "June 14 at 7:45am" -> "june 14 7:45am")."""
    chosen: list[Token] = []
    for t in sorted(pred.subtree, key=lambda t: t.i):
        if t.i in exclude or t.lower_ in ("now", "again", "instead", "currently", "still"):
            continue
        dated = t.ent_type_ in ("DATE", "TIME") or t.lower_ in WEEKDAYS_MONTHS
        clock = bool(CLOCK.match(t.text)) or (t.lower_ in ("am", "pm") and t.i > 0 and t.doc[t.i - 1].like_num)
        part_of_day = t.lower_ in TIME_OF_DAY and any(
            c.ent_type_ in ("DATE", "TIME") or c.lower_ in WEEKDAYS_MONTHS for c in t.children)
        if dated or part_of_day or (clock and (t.head.lower_ in ("at", "by", "until", "from", "to", "till")
                                               or t.head.ent_type_ in ("DATE", "TIME") or t.lower_ in ("am",
                                                                                                      "pm"))):
            chosen.append(t)
    chosen = [t for t in chosen if not ((t.pos_ == "ADP" and t.lower_ != "of") or t.lower_ in ("the", "a", "an"))]
    return norm(join_tokens(chosen))


def is_place(tok: Token) -> bool:
    """A named place ("Lisbon", "New York"), not "a two-bedroom apartment" or "next week".

    After "live in"/"move to" a proper noun is a place even when NER guessed PERSON ("Braga").
    """
    return tok.ent_type_ in ("GPE", "LOC", "FAC") or (tok.pos_ == "PROPN" and tok.ent_type_ not in (
        "DATE", "TIME"))


def is_occupation(noun: Token) -> bool:
    word = lemma(noun)
    return noun.pos_ in ("NOUN", "PROPN") and (word in OCCUPATIONS or bool(OCCUPATION_SUFFIX.search(word)))


def age_value(tok: Token) -> str | None:
    """ "29", "4 years old" -> the number."""
    if tok.like_num:
        return norm(tok.text)
    if tok.lower_ == "old":
        for c in tok.children:
            if c.dep_ == "npadvmod":
                nums = [g for g in c.children if g.like_num]
                if nums:
                    return norm(nums[0].text)
    return None


def first_pobj(tok: Token, preps: Iterable[str]) -> Token | None:
    wanted = set(preps)
    for c in tok.children:
        if c.dep_ in ("prep", "dative") and c.lower_ in wanted:
            for g in c.children:
                if g.dep_ == "pobj":
                    return g
    return None


def nested_pobj(tok: Token, preps: Iterable[str], depth: int = 2) -> Token | None:
    """A pobj of one of ``preps`` on ``tok`` or on a noun hanging from it ("work as a nurse at X")."""
    wanted = tuple(preps)
    found = first_pobj(tok, wanted)
    if found is not None or depth == 0:
        return found
    for c in tok.children:
        nouns = [c] if c.dep_ in ("dobj", "attr") else [g for g in c.children if g.dep_ == "pobj"] \
            if c.dep_ == "prep" else []
        for n in nouns:
            found = nested_pobj(n, wanted, depth - 1)
            if found is not None:
                return found
    return None
