"""When a statement's event happens: a month or weekday without a year resolves against the message time,
forward for plans and scheduled events ("my sister's wedding is in April", "the dentist is on Friday"),
backward for reports ("in April I ran my first 10k")."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_FUTURE = re.compile(
    r"\b(?:will|'ll|shall|going to|gonna|plan(?:ning)? (?:to|on)|intend|scheduled|booked|set for|planned for|"
    r"coming up|upcoming|due|is (?:on|in|at|this|next)|are (?:on|in|at)|'s (?:on|in|at)|starts?|begins?|"
    r"leaving|flying|heading|moved to|pushed (?:back )?to|rescheduled|postponed|hoping to|looking forward|"
    r"next|until|by)\b",
    re.IGNORECASE,
)
_PAST = re.compile(r"\b(?:was|were|went|did|had|ago|last|already|yesterday|used to|back in)\b", re.IGNORECASE)
_EXPLICIT = re.compile(r"\d{4}|\b(?:last|next|this|ago|past|coming|yesterday|tomorrow|today|tonight)\b",
                       re.IGNORECASE)
# "salary's 54k from January", "starting Monday": a change that takes effect then, said before it happens.
_TAKES_EFFECT = re.compile(r"\b(?:from|starting(?: from| in| on)?|as of|effective(?: from)?|beginning(?: in)?)\s+$",
                           re.IGNORECASE)
_RANGE_AFTER = re.compile(r"^\s*(?:to|until|till|through|-|and)\b", re.IGNORECASE)
_WEEKDAY = re.compile(r"\b(?:mon|tues|wednes|thurs|fri|satur|sun)day\b", re.IGNORECASE)


def looks_ahead(text: str) -> bool:
    """The statement is about something still to come (a plan, a scheduled event)."""
    return bool(_FUTURE.search(text)) and not _PAST.search(text)


def _takes_effect(text: str, expression: str) -> bool:
    at = text.lower().find(expression.lower())
    if at < 0:
        return False
    return bool(_TAKES_EFFECT.search(text[:at])) and not _RANGE_AFTER.match(text[at + len(expression):])


def event_time(text: str, ref: datetime | None) -> datetime | None:
    """Start of the first time expression in ``text`` (None without one), resolved against ``ref``."""
    from memstrata.core.temporal import find_time_expressions

    ref = ref or datetime.now(UTC)
    windows = [w for w in find_time_expressions(text, ref) if w.kind != "order"]
    if not windows:
        return None
    w = windows[0]
    start = w.start
    if _EXPLICIT.search(w.expression) or not (looks_ahead(text) or _takes_effect(text, w.expression)):
        return start
    day = ref.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if start >= day:
        return start
    if _WEEKDAY.search(w.expression) and w.end - w.start <= timedelta(days=1):
        while start < day:
            start += timedelta(days=7)
        return start
    if timedelta(days=27) <= w.end - w.start <= timedelta(days=32) or w.end - w.start <= timedelta(days=1):
        try:
            return start.replace(year=start.year + 1)
        except ValueError:  # 29 February
            return start + timedelta(days=365)
    return start
