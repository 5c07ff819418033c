"""How ranking reads stored statements: the rules ingestion uses to tell a new value from a question, a wish, a
one-off happening or someone else's, offered to ``memstrata.retrieve.revisions`` as its ``StatementReader``."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

import numpy as np

from memstrata.core.text import split_sentences
from memstrata.ingest.asides import sentence_units
from memstrata.ingest.conflicts import replied_to
from memstrata.ingest.named_old import values_left_behind
from memstrata.ingest.named_values import named_values
from memstrata.ingest.prototypes import family_by_meaning, family_table
from memstrata.ingest.updates import (
    _FIRST_PERSON,
    _NEW_VALUE,
    _ONLY_SUPPOSES,
    _WAS_MINE,
    _WISHES,
    ENDING_CUE,
    has_change_cue,
    is_tentative,
    reports_event,
    subject_of,
)


class StatementWords:
    """How ranking reads stored statements (``memstrata.retrieve.revisions.StatementReader``), with the same
    rules ingestion uses to tell a new value from a question, a wish, a one-off happening or someone else's.
    Each reading is kept for the texts seen last: a search reads the same few dozen memories again and again.
    ``embed``: the model the stored vectors came from, for the attribute a vector sits in (none: no attribute
    is ever named)."""

    def __init__(self, embed: Callable[[list[str]], np.ndarray] | None = None) -> None:
        self._embed = embed

    def attribute(self, vec: np.ndarray) -> str | None:
        return family_by_meaning(vec, self._embed)

    def attributes(self, vecs: np.ndarray) -> tuple[list[str], np.ndarray]:
        if self._embed is None:
            return [], np.zeros((len(vecs), 0), dtype=np.float32)
        return family_table(vecs, self._embed)

    def states_own(self, text: str, slot_subject: str | None) -> bool:
        return _states_own(text, slot_subject)

    def one_off(self, text: str) -> bool:
        return _one_off(text)

    def tentative(self, text: str) -> bool:
        return _tentative(text)

    def marks_change(self, text: str) -> bool:
        return _marks_change(text)

    def speaks_of_self(self, text: str) -> bool:
        return _speaks_of_self(text)

    def whose(self, text: str) -> str:
        return _whose(text)

    def only_ended(self, text: str) -> bool:
        return _only_ended(text)

    def sentences(self, text: str) -> list[str]:
        return list(_sentences(text))

    def echoes(self, text: str) -> bool:
        return _echoes(text)

    def values_left(self, text: str) -> list[str]:
        return list(_values_left(text))

    def named_values(self, text: str) -> list[str]:
        return list(named_values(text))


READINGS_KEPT = 4096


@lru_cache(maxsize=READINGS_KEPT)
def _states_own(text: str, slot_subject: str | None) -> bool:
    if subject_of(text, slot_subject) != "user":
        return False
    if not is_tentative(text):
        return True
    # A message that states and then asks ("our mortgage is €1,350 a month. Is overpaying smart?") still
    # states: one of its sentences that is no question, wish or supposition is enough.
    parts = split_sentences(text)
    return len(parts) > 1 and any(not p.endswith("?") and not is_tentative(p) for p in parts) \
        or _states_then_asks(text)


@lru_cache(maxsize=READINGS_KEPT)
def _one_off(text: str) -> bool:
    return reports_event(text)


@lru_cache(maxsize=READINGS_KEPT)
def _tentative(text: str) -> bool:
    # Only a message that is all question or supposition: "I was thinking of taking the train, a friend
    # says it's only $10" still says something; "Any tips? I'm in Denver" does too.
    body = text.strip()
    asks = body.endswith("?") and not re.search(r"[.!;]\s", body) and not _states_then_asks(body)
    return asks or bool(_ONLY_SUPPOSES.match(body) or _WISHES.search(body)) or _asks_for_help(body)


# "The Octavia's boot fits two suitcases and a cooler, right?", "Dr Mensah said I need a filling, is that a big
# deal?": a statement, then a short question about it. The statement stands (not "Is it worth it, given the
# cost?", which asks from the start, nor "If I moved, would it be cheaper?", which supposes).
_ASKS_FROM_THE_START = re.compile(
    r"^\W*(?:what|which|who|whom|whose|where|when|why|how|is|are|am|was|were|do|does|did|can|could|should|"
    r"would|will|shall|have|has|had|if|any|anyone|anybody|suppose|what's|isn't|aren't|don't|doesn't)\b",
    re.IGNORECASE)
STATED_MIN_WORDS = 3
TAG_MAX_WORDS = 7


def _states_then_asks(body: str) -> bool:
    if not body.endswith("?") or "," not in body:
        return False
    head, tail = body.rsplit(",", 1)
    return (len(head.split()) >= STATED_MIN_WORDS and len(tail.split()) <= TAG_MAX_WORDS
            and not _ASKS_FROM_THE_START.match(head) and not is_tentative(head + "."))


# A request that names only its topic ("hey! can you help me make a study schedule?", "Quick one about the
# car.", "I need help understanding my health insurance") says nothing of how things are.
_REQUEST = re.compile(
    r"^\W*(?:(?:hey|hi|hello|hiya|morning|evening|afternoon|ok|okay|so|right|also|and|again)\b[\s,!.]*)*"
    r"(?:(?:can|could|would|will) you (?:please )?(?:help|give|tell|explain|check|look|suggest|recommend|"
    r"make|write|draft|sort)\b|(?:please )?help me\b|i (?:need|want|would like|'d like) (?:some |a bit of |"
    r"your )?(?:help|advice|tips|ideas|a hand)\b|(?:a |another |one more )?quick (?:one|question|q)\b|"
    r"(?:a |another )?(?:question|q) (?:about|on|re)\b|[a-z]+ question\W*$)",
    re.IGNORECASE,
)
REQUEST_MAX_WORDS = 14
_NAME_OR_NUMBER = re.compile(r"\d|(?<![.!?]\s)(?<!^)\b(?!I\b)[A-Z][a-z]")


def _asks_for_help(body: str) -> bool:
    """Is this a short request to the assistant that names no one, no place and no number (which could be
    the very thing asked about later: "can you help me plan my trip to Lisbon?")?"""
    return (len(body.split()) <= REQUEST_MAX_WORDS and bool(_REQUEST.match(body))
            and not _NAME_OR_NUMBER.search(body))


@lru_cache(maxsize=READINGS_KEPT)
def _marks_change(text: str) -> bool:
    return has_change_cue(text)


@lru_cache(maxsize=READINGS_KEPT)
def _speaks_of_self(text: str) -> bool:
    return bool(_FIRST_PERSON.search(text)) and subject_of(text) == "user"


@lru_cache(maxsize=READINGS_KEPT)
def _whose(text: str) -> str:
    return subject_of(text)


@lru_cache(maxsize=READINGS_KEPT)
def _echoes(text: str) -> bool:
    turn = replied_to(text)
    return turn is not None and "?" not in turn


@lru_cache(maxsize=READINGS_KEPT)
def _values_left(text: str) -> tuple[str, ...]:
    return tuple(values_left_behind(text))


@lru_cache(maxsize=READINGS_KEPT)
def _sentences(text: str) -> tuple[str, ...]:
    return tuple(sentence_units(text))


@lru_cache(maxsize=READINGS_KEPT)
def _only_ended(text: str) -> bool:
    if len(text.split()) <= CHANGED_MAX_WORDS and _CHANGED_PLURAL.search(text) and not re.search(r"\d", text) \
            and not _NEW_VALUE.search(text):
        return True  # "I moved hospitals in the autumn": it changed, and another sentence says to what
    return bool(ENDING_CUE.search(text) or _WAS_MINE.search(text)) and not _NEW_VALUE.search(text)


# A change said with the plural of what changed names no new value: "I switched programs", "changed GP practices".
_CHANGED_PLURAL = re.compile(r"\b(?:changed|switched|swapped|moved|changing|switching)\s+(?:my\s+|our\s+)?"
                             r"(?:[A-Za-z]+\s+)?(?!(?:to|into|from|over|back|in|on|out|house)\b)[a-z]+s\b(?!\s+(?:to|for)\b)",
                             re.IGNORECASE)
CHANGED_MAX_WORDS = 9
