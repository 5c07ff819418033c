"""A change that names the value it replaces: "I switched from Octopus to OVO in December", "I left Bosch and
joined Porsche", "I'm doing Brisbane to Townsville now instead of Sydney", "Doc took me off lisinopril".

No attribute family need be known: the words of the old value are in the statement, so the user's current
facts that say them are what it replaces. Only the user's own definite statements of change qualify, and
only facts of the user's own that hold the named words and are near enough in meaning to be about the same
thing ("Our energy is with Octopus", not "the octopus at the aquarium was huge").
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from memstrata.core.text import query_terms, says_words
from memstrata.ingest.evidence import EVIDENCE_KIND
from memstrata.ingest.updates import Decision, is_tentative, people_named, subject_of
from memstrata.models import MemoryRecord, Scope
from memstrata.tiers.base import Store

_VALUE = r"(?P<old>[^,.;:!?()\n]{2,40}?)"
# Not "went": "went from Paris to Rome" and "from April 15th to 22nd" are a trip and a range, not a change.
_CHANGE = r"(?:switched|changed|moved|swapped|transferred|upgraded|downgraded)"
_NAMED = [
    re.compile(rf"\b{_CHANGE}\b[^,.;!?]{{0,40}}?\bfrom (?:the |my |our )?{_VALUE} (?:to|over to|for)\b", re.I),
    re.compile(rf"\binstead of (?:the |my |our |a |an )?{_VALUE}(?=$|[,.;:!?]| (?:because|since|as|now|and)\b)",
               re.I),
    re.compile(rf"\b(?:left|quit)\b (?:my job at |my job with |the |my |our )?{_VALUE}"
               r" (?:and|to) (?:joined|started|moved|went)\b", re.I),
    re.compile(rf"\b(?:took|taken|pulled|switched) (?:me|him|her|them|us|\w+) (?:off|out of) (?:the |my )?{_VALUE}"
               r"(?=$|[,.;:!?]| (?:and|because|since)\b)", re.I),
]
_INSTEAD = 1  # the pattern of "instead of"
_TRAILING_TIME = re.compile(r"\s(?:in|on|at|last|this|back|after|before|since)\s", re.I)  # "the club in the autumn"
_FILLER = frozenset({"the", "my", "our", "a", "an", "old", "one", "it", "that", "this", "them", "there", "here"})
_ACTED_ON_ME = re.compile(r"\b(?:took|taken|switched) (?:me|us) (?:off|out of)\b", re.I)
MIN_COSINE = 0.25  # the old fact and the change are about the same thing, not only a shared word
MAX_REPLACED = 3


def named_old_values(text: str) -> list[str]:
    """The old values a statement of change names, as said ("Octopus", "Bosch", "Sydney")."""
    out: list[str] = []
    for n, pattern in enumerate(_NAMED):
        for m in pattern.finditer(text):
            words = _value_words(m.group("old"))
            if n == _INSTEAD and not any(w[:1].isupper() for w in words):
                continue  # "paper instead of plastic" is a habit, not a provider or a place replaced by name
            if words:
                out.append(" ".join(words))
    return list(dict.fromkeys(out))


def _value_words(said: str, generic: frozenset[str] = frozenset()) -> list[str]:
    """The words of a value as a change names it, without a trailing time ("the club in the autumn") or
    filler; none for a date or a number range ("from 9 to 5"), which names no value a fact holds, nor for
    more than four words or only short or ``generic`` ones."""
    value = _TRAILING_TIME.split(said.strip())[0]
    words = [w for w in value.split() if w.lower() not in _FILLER]
    if any(c.isdigit() for c in value) or not words or len(words) > 4 \
            or not any(len(w) >= 3 and w.lower() not in generic for w in words):
        return []
    return words


# Read-time only: an ending that names what ended ("sold the Corsa", "ditched the Dell XPS", "Tomas and I
# broke up"). Ingestion does not replace facts on these words alone ("sold my old bike" need not end "I ride a
# Trek"); ranking reads them against a query that both statements answer.
_END_VERB = (r"(?:sold|ditched|dumped|quit|left|cancell?ed|dropped|gave up|given up|got rid of|stopped going to|"
             r"stopped using|broke up with|split up with|moved out of|traded(?: in)?|returned)")
_ENDED = [
    re.compile(rf"\b{_END_VERB} (?:the |my |our |a |an |old )*{_VALUE}"
               r"(?=$|[,.;:!?]| (?:and|for|because|since|as|after|last|in|this|to|but|so|at|on|now)\b)", re.I),
    re.compile(r"\b(?P<old>[A-Z][a-z]+) and (?:I|me) (?:broke up|split up|separated|divorced)\b"),
]
# "I left early today", "quit my job": no value another statement would hold as the thing that ended.
_GENERIC = frozenset({"early", "late", "today", "tonight", "yesterday", "home", "work", "office", "job", "school",
                      "everything", "something", "again", "already", "behind", "town", "house", "place"})


def values_left_behind(text: str) -> list[str]:
    """What a statement says the speaker no longer has: the old values of a change it names
    (:func:`named_old_values`) and what it says ended ("sold the Corsa" -> "Corsa")."""
    out = named_old_values(text)
    for pattern in _ENDED:
        for m in pattern.finditer(text):
            if words := _value_words(m.group("old"), _GENERIC):
                out.append(" ".join(words))
    return list(dict.fromkeys(out))


def by_named_value(store: Store, scope: Scope, text: str, vec: np.ndarray, episode_ids: Sequence[str],
                   people: Sequence[str] = ()) -> list[tuple[MemoryRecord, Decision]]:
    """The user's current facts that a statement of change replaces by naming their value."""
    acted_on_me = _ACTED_ON_ME.search(text) is not None  # "Doc took me off lisinopril"
    if is_tentative(text) or "(in reply to:" in text \
            or not acted_on_me and subject_of(text, None, list(people)) != "user":
        return []
    values = named_old_values(text)
    if not values:
        return []
    out: list[tuple[MemoryRecord, Decision]] = []
    for value in values:
        terms = query_terms(store.codec.query_text(scope, value), 8)
        if not terms:
            continue
        ids = [i for i, _ in store.keyword_search(scope, terms, 20)]
        recs = [r for r in store.get_memories(scope, ids)
                if r.current and r.kind != EVIDENCE_KIND and r.source_role in (None, "user")
                and not set(r.episode_ids) & set(episode_ids) and says_words(r.text, value)]
        if not recs:
            continue
        vectors = store.vectors(scope, [r.id for r in recs])
        for rec in recs:
            old_vec = vectors.get(rec.id)
            if old_vec is None or float(np.dot(vec, old_vec)) < MIN_COSINE:
                continue
            owner = subject_of(rec.text, rec.slot[0] if rec.slot else None, people_named(rec.entities))
            if owner != "user" or is_tentative(rec.text):
                continue  # "my sister banks with AIB" is hers, "should I leave AIB?" asks
            out.append((rec, Decision(True, True, "names the old value")))
            if len(out) >= MAX_REPLACED:
                return out
    return out
