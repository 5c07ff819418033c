"""Exact and near-duplicate detection for memory texts.

A near duplicate says the same thing in other words; a changed value ("gate code 4512" -> "4513"), a
flipped negation or a different entity is new information (often a conflict), never a duplicate.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

import numpy as np

from memstrata.core.text import normalize_text, normalized_hash  # noqa: F401 (re-exported for ingest)
from memstrata.ingest.candidate import Slot
from memstrata.ingest.conflicts import normalize_value, same_slot
from memstrata.ingest.entities import canonical_key, same_entity

# Measured with MiniLM on bench/data/ingest_labelled.jsonl (sweep in bench/RESULTS.md): paraphrases of one
# fact score 0.75-0.98, different facts on one topic up to 0.83 ("I love"/"I hate spicy food") and a changed
# number 0.99. 0.85 is the lowest threshold with no false merge; the value, negation and entity checks
# below catch what cosine cannot, and same-slot evidence (below) recovers the low-scoring paraphrases.
DEFAULT_THRESHOLD = 0.85
# When both texts assert the same slot with the same value ("I moved to Lisbon" / "I live in Lisbon now")
# the slot is the evidence; the cosine only has to rule out an extraction accident.
SAME_SLOT_THRESHOLD = 0.7

_DIGIT_GROUP = re.compile(r"(?<=\d)[,\s](?=\d{3}\b)")
_NUMBER = re.compile(r"\d+(?:[.:]\d+)*")
_CLOCK = re.compile(r"\b(\d{1,2})(?::(\d{2}))?\s*([ap])\.?m\b\.?", re.IGNORECASE)
_NUMBER_WORDS = frozenset({
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
    "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty",
    "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety", "hundred", "thousand", "million",
    "half", "once", "twice", "first", "second", "third", "fourth", "fifth",
})
_CALENDAR = frozenset({
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "january", "february",
    "march", "april", "may", "june", "july", "august", "september", "october", "november", "december",
    "today", "tomorrow", "tonight", "yesterday", "morning", "afternoon", "evening", "night", "weekend",
    "am", "pm", "noon", "midnight",
})
_NEGATION = re.compile(r"\b(?:not|no|never|none|nobody|nothing|neither|nor|without|anymore|no\s+longer)\b|n't\b",
                       re.IGNORECASE)
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?", re.UNICODE)
_SENTENCE_START = re.compile(r"(?:^|[.!?]\s+)([^\W_]+)")


def value_tokens(text: str) -> frozenset[str]:
    """Numbers, number words and calendar words: the values whose change makes a new fact."""
    text = _DIGIT_GROUP.sub("", unicodedata.normalize("NFKC", text))
    out = {m.group(0).lstrip("0") or "0" for m in _NUMBER.finditer(text)}
    for m in _CLOCK.finditer(text):  # "3pm" and "3 p.m." are one value; "3am" is another
        out.add(f"{int(m.group(1))}:{m.group(2) or '00'}{m.group(3).lower()}m")
    for word in _WORD.findall(text.casefold()):
        base = word[:-1] if word.endswith("s") and word[:-1] in _CALENDAR else word
        if base in _NUMBER_WORDS or base in _CALENDAR:
            out.add(base)
    return frozenset(out)


def _negations(text: str) -> int:
    return len(_NEGATION.findall(text))


def _proper_words(text: str) -> frozenset[str]:
    """Capitalised words not at a sentence start, lower-cased: a cheap stand-in for names."""
    starts = {m.start(1) for m in _SENTENCE_START.finditer(text)}
    return frozenset(m.group(0).casefold() for m in _WORD.finditer(text)
                     if m.group(0)[:1].isupper() and m.start() not in starts and m.group(0) != "I")


def _names(entities: Iterable[object] | None) -> list[str]:
    out: list[str] = []
    for e in entities or ():
        name = getattr(e, "canonical", e)
        if isinstance(name, str) and canonical_key(name):
            out.append(name)
    return out


def same_entities(a: Iterable[object] | None, b: Iterable[object] | None) -> bool:
    """Every entity on each side has a counterpart on the other (aliases such as "Anna"/"Anna Silva" match)."""
    na, nb = _names(a), _names(b)
    return all(any(same_entity(x, y) for y in nb) for x in na) and all(
        any(same_entity(y, x) for x in na) for y in nb)


def is_near_duplicate(new_text: str, new_vec: np.ndarray | None, new_entities: Iterable[object] | None,
                      old_text: str, old_vec: np.ndarray | None, old_entities: Iterable[object] | None,
                      threshold: float = DEFAULT_THRESHOLD, *, new_slot: Slot | None = None,
                      old_slot: Slot | None = None) -> bool:
    """Whether ``new_text`` restates ``old_text`` closely enough to merge into it.

    Vectors are L2-normalised embeddings (dot product = cosine); entities are canonical names or
    ``EntityMention`` objects. Requires cosine >= ``threshold``, the same entities when both sides name
    some, the same numbers/dates, and the same polarity. Equal normalised texts always match.

    With both slots given: one slot with different values is never a duplicate (it is a conflict, even
    for "I prefer tea over coffee" / "I prefer coffee over tea", which embed alike), and one slot with
    one value needs only ``SAME_SLOT_THRESHOLD``.
    """
    if normalize_text(new_text) == normalize_text(old_text):
        return True
    if new_vec is None or old_vec is None:
        return False
    slot_match = False
    if new_slot is not None and old_slot is not None and same_slot(new_slot, old_slot):
        if normalize_value(new_slot.value) != normalize_value(old_slot.value):
            return False
        slot_match = True
    cosine = float(np.dot(np.asarray(new_vec, dtype=np.float32).ravel(),
                          np.asarray(old_vec, dtype=np.float32).ravel()))
    if cosine < (min(threshold, SAME_SLOT_THRESHOLD) if slot_match else threshold):
        return False
    if not slot_match and value_tokens(new_text) != value_tokens(old_text):
        return False  # "gate code 4512" vs "4513", "Thursday" vs "Friday": a new value, not a restatement
    if (_negations(new_text) > 0) != (_negations(old_text) > 0):
        return False  # "I like X" vs "I don't like X"
    new_names, old_names = _names(new_entities), _names(old_entities)
    if new_names and old_names:
        return same_entities(new_names, old_names)
    if not new_names and not old_names:
        pa, pb = _proper_words(new_text), _proper_words(old_text)
        if pa and pb and pa != pb:
            return False
    return True
