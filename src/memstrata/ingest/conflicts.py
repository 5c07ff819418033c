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
_REPLY_NOTE = re.compile(r"\s*\(in reply to:.*\)\s*$", re.IGNORECASE | re.DOTALL)  # evidence.finish_facts adds it


def without_reply_note(text: str) -> str:
    """A short reply's text without the question it answered, which ``finish_facts`` appends to it."""
    return _REPLY_NOTE.sub("", text)


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
