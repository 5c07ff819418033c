"""Slot conflicts: two memories giving one (subject, attribute) different values, and what to do about it."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from memstrata.errors import InvalidInputError
from memstrata.ingest.candidate import Candidate, Slot
from memstrata.ingest.entities import canonical_key, same_entity


class ConflictPolicy(StrEnum):
    """What ``add`` does when a new fact contradicts a stored one."""

    LATEST_WINS = "latest_wins"  # the old memory is superseded (kept in history, no longer current)
    KEEP_BOTH = "keep_both"  # both stay current; the conflict is recorded
    MANUAL = "manual"  # both stay current and the conflict waits for a person to resolve it


LATEST_WINS = ConflictPolicy.LATEST_WINS.value
KEEP_BOTH = ConflictPolicy.KEEP_BOTH.value
MANUAL = ConflictPolicy.MANUAL.value
DEFAULT_POLICY = LATEST_WINS
POLICIES = tuple(p.value for p in ConflictPolicy)

_SPACE = re.compile(r"\s+")
_EDGE = re.compile(r"^[\W_]+|[\W_]+$", re.UNICODE)
_ARTICLE = re.compile(r"^(?:the|a|an)\s+")
_DIGIT_GROUP = re.compile(r"(?<=\d)[,\s](?=\d{3}\b)")
# evidence.evidence_candidates and finish_facts add it: "thanks (in reply to: <the turn it follows>)"
_REPLY_NOTE = re.compile(r"\s*\(in reply to:\s*(.*)\)\s*$", re.IGNORECASE | re.DOTALL)


_MONTHS = (r"january|february|march|april|(?<=\bin |\bby )may|june|july|august|september|october|november|december|"
           r"jan|feb|mar|apr|jun|jul|aug|sept?|oct|nov|dec")
_DAYS = r"(?:mon|tues|wednes|thurs|fri|satur|sun)days?"
_HEDGE = re.compile(
    r"\b(?:hopefully|probably|maybe|perhaps|possibly|likely|presumably|supposedly|ideally|apparently|"
    r"fingers\s+crossed|i\s+(?:think|guess|believe|hope|reckon|suppose)|if\s+all\s+goes\s+(?:well|to\s+plan)|"
    r"with\s+(?:any|a\s+bit\s+of)\s+luck|(?:at\s+least\s+)?for\s+now|for\s+the\s+time\s+being|more\s+or\s+less|"
    r"kind\s+of|sort\s+of)\b", re.IGNORECASE)
_TIME_PHRASE = re.compile(
    r"\b(?:(?:by|in|since|from|until|till|before|after|around|on|as\s+of|starting|at)\s+)?(?:the\s+)?(?:"
    rf"(?:end|start|beginning|middle)\s+of\s+(?:the\s+)?(?:{_MONTHS}|week|month|year|summer|winter|spring|autumn)|"
    rf"(?:early|late|mid)\s+(?:{_MONTHS})|(?:{_MONTHS})(?:\s+\d{{1,2}}(?:st|nd|rd|th)?)?(?:\s+(?:19|20)\d{{2}})?|"
    rf"(?:last|next|this|coming)\s+(?:week|month|year|weekend|summer|winter|spring|autumn|fall|{_DAYS}|{_MONTHS})|"
    r"(?:a\s+(?:few|couple(?:\s+of)?)|\d+|one|two|three|four|five|six)\s+(?:days?|weeks?|months?|years?)(?:\s+ago)?|"
    r"right\s+now|now|currently|at\s+the\s+moment|these\s+days|nowadays|today|tonight|tomorrow|yesterday|soon|"
    r"recently|lately|already|anymore|any\s+more)\b|"
    r"\b(?:in|since|by|from|until|before|after)\s+(?:19|20)\d{2}\b", re.IGNORECASE)
_LOOSE_PUNCT = re.compile(r"\s+([,;:.!?])")
_LOOSE_END = re.compile(r"^(?:and|or|but|so)\s+|\s+(?:and|or|but|so|by|in|on|from|since|until|at)$", re.IGNORECASE)
# Attributes whose value is a time: the time is the value, not a remark about it.
_TIME_VALUED = re.compile(r"birthday|date|time|day|schedul|when|anniversary|deadline|age")


def clean_value(value: str, attribute: str = "") -> str:
    """A slot value without the hedges and time phrases said around it: "lisbon hopefully by march" is the
    value "lisbon", "i currently live in berlin" is "i live in berlin". Time phrases stay in a value that is a
    time (a birthday, a schedule). A value with neither comes back unchanged; one that would be left empty too."""
    text = _HEDGE.sub(" ", value)
    if not _TIME_VALUED.search(attribute):
        text = _TIME_PHRASE.sub(" ", text)
    if text == value:
        return value
    text = _SPACE.sub(" ", _LOOSE_PUNCT.sub(r"\1", text)).strip(" ,;:-")
    text = _LOOSE_END.sub("", text).strip(" ,;:-")
    return text or value


def without_reply_note(text: str) -> str:
    """A short reply's text without the question it answered, which ``finish_facts`` appends to it."""
    return _REPLY_NOTE.sub("", text)


def replied_to(text: str) -> str | None:
    """The turn a short reply follows, as its note gives it; None for a text without the note."""
    note = _REPLY_NOTE.search(text)
    return note.group(1) if note else None


def normalize_value(value: str) -> str:
    """Case, width, spacing, edge punctuation, a leading article, digit grouping and the question a short reply
    answered do not change a value."""
    text = without_reply_note(unicodedata.normalize("NFKC", str(value))).casefold().strip()
    text = _DIGIT_GROUP.sub("", _EDGE.sub("", _SPACE.sub(" ", text)))
    return _ARTICLE.sub("", text)


def normalize_attribute(attribute: str) -> str:
    return re.sub(r"[^\w]+", "_", unicodedata.normalize("NFKC", attribute).casefold()).strip("_")


def same_subject(a: str, b: str) -> bool:
    """``user`` only matches ``user``; names match by key or alias ("Anna" ~ "Anna Silva"); a lower-case
    event phrase matches a longer one it ends ("committee meeting" ~ "allotment committee meeting")."""
    if a == "user" or b == "user":
        return a == b
    if canonical_key(a) == canonical_key(b) or same_entity(a, b):
        return True
    if a != a.lower() or b != b.lower():
        return False  # names: only the alias rule above
    wa, wb = canonical_key(a).split(), canonical_key(b).split()
    short, long_ = (wa, wb) if len(wa) <= len(wb) else (wb, wa)
    return len(short) >= 2 and long_[-len(short):] == short


def same_slot(a: Slot, b: Slot) -> bool:
    """Same subject and attribute, whatever the values."""
    return normalize_attribute(a.attribute) == normalize_attribute(b.attribute) and same_subject(
        a.subject, b.subject)


def find_conflicts(new: Candidate, existing: Sequence[tuple[str, Slot]]) -> list[str]:
    """Ids of ``existing`` memories whose slot has ``new``'s subject and attribute but another value.

    Values compare after :func:`normalize_value`; an equal value is a restatement (merge), not a conflict.
    """
    if new.slot is None:
        return []
    value = normalize_value(new.slot.value)
    out: list[str] = []
    for memory_id, slot in existing:
        if slot is None or not same_slot(new.slot, slot):
            continue
        if normalize_value(slot.value) != value and memory_id not in out:
            out.append(memory_id)
    return out


@dataclass(frozen=True)
class ConflictPlan:
    """What to do with the memories a new fact conflicts with.

    ``supersede``: ids to close (valid_to = the new fact's time, superseded_by = the new id).
    ``keep_active``: ids that stay current beside the new memory. ``needs_review``: the conflict stays open
    for a person; ``status`` is the conflict record's initial status.
    """

    policy: str
    supersede: tuple[str, ...]
    keep_active: tuple[str, ...]
    needs_review: bool
    status: str


# The resolution of a conflict the policy settled on its own; a person may still overrule it.
BY_POLICY = "policy:"
AUTO_RESOLUTION = {"latest_wins": BY_POLICY + "keep_new", "keep_both": BY_POLICY + "keep_both"}


def plan_conflict(policy: str | ConflictPolicy, conflicting_ids: Sequence[str]) -> ConflictPlan:
    """The action ``policy`` prescribes for a new fact conflicting with ``conflicting_ids``.

    latest_wins supersedes them (conflict resolved); keep_both keeps all current (conflict recorded as
    resolved by policy); manual keeps all current and leaves the conflict open for review.
    """
    try:
        chosen = ConflictPolicy(policy.value if isinstance(policy, ConflictPolicy) else policy)
    except ValueError:
        raise InvalidInputError("conflict_policy", f"{policy!r} is not one of {POLICIES}") from None
    ids = tuple(dict.fromkeys(conflicting_ids))
    if not ids:
        return ConflictPlan(chosen.value, (), (), False, "none")
    if chosen is ConflictPolicy.LATEST_WINS:
        return ConflictPlan(chosen.value, ids, (), False, "resolved")
    if chosen is ConflictPolicy.KEEP_BOTH:
        return ConflictPlan(chosen.value, (), ids, False, "resolved")
    return ConflictPlan(chosen.value, (), ids, True, "open")
