"""Time expressions: "last week", "in March", "3 days ago" as UTC windows, and scores of event times against them.

Everything is resolved against an explicit ``now``; nothing here reads the clock or does I/O.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

DAY = timedelta(days=1)
# "order" windows only say which side of an anchor to look on; half a century covers any memory.
_WIDE = timedelta(days=365 * 50)


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


@dataclass(frozen=True)
class TimeWindow:
    """A span named in text: ``start`` inclusive, ``end`` exclusive, both UTC.

    ``kind`` is "range" (narrow results to it), "point" (boost results near it) or "order"
    ("first", "latest", "before X": a wide window whose useful content is the ordering).
    """

    start: datetime
    end: datetime
    expression: str
    kind: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _utc(self.start))
        object.__setattr__(self, "end", _utc(self.end))
        if self.end <= self.start:
            raise ValueError(f"empty time window {self.start.isoformat()} .. {self.end.isoformat()}")
        if self.kind not in ("range", "point", "order"):
            raise ValueError(f"kind must be 'range', 'point' or 'order', got {self.kind!r}")

    def contains(self, t: datetime) -> bool:
        """True when ``t`` (naive means UTC) lies in [start, end)."""
        return self.start <= _utc(t) < self.end

    def distance_days(self, t: datetime) -> float:
        """0 inside the window, else the distance in days to the nearest edge."""
        t = _utc(t)
        if t < self.start:
            return (self.start - t) / DAY
        if t >= self.end:
            return (t - self.end) / DAY
        return 0.0


# ---------------------------------------------------------------- calendar helpers

Span = tuple[datetime, datetime, str]


def _day(t: datetime) -> datetime:
    return t.replace(hour=0, minute=0, second=0, microsecond=0)


def _month_start(year: int, month: int, add: int = 0) -> datetime:
    i = year * 12 + month - 1 + add
    return datetime(i // 12, i % 12 + 1, 1, tzinfo=UTC)


def _shift(t: datetime, n: int, unit: str) -> datetime:
    if unit in ("hour", "day", "week"):
        return t + timedelta(hours=n) if unit == "hour" else t + n * (7 if unit == "week" else 1) * DAY
    first = _month_start(t.year, t.month, n * (12 if unit == "year" else 1))
    last_day = (_month_start(first.year, first.month, 1) - DAY).day
    return t.replace(year=first.year, month=first.month, day=min(t.day, last_day))


def _period(now: datetime, unit: str, offset: int) -> tuple[datetime, datetime]:
    if unit == "year":
        return datetime(now.year + offset, 1, 1, tzinfo=UTC), datetime(now.year + offset + 1, 1, 1, tzinfo=UTC)
    if unit == "month":
        return _month_start(now.year, now.month, offset), _month_start(now.year, now.month, offset + 1)
    monday = _day(now) - now.weekday() * DAY + offset * 7 * DAY
    if unit == "weekend":
        return monday + 5 * DAY, monday + 7 * DAY
    return monday, monday + 7 * DAY


def _third(s: datetime, e: datetime, which: int) -> tuple[datetime, datetime]:
    days = (e - s) / DAY
    if days >= 3:  # whole-day cut points: "early March" is the 1st to the 10th, not up to 10:40 on the 11th
        cuts = [s, s + round(days / 3) * DAY, s + round(2 * days / 3) * DAY, e]
    else:
        cuts = [s + (e - s) * i / 3 for i in range(4)]
    return cuts[which], cuts[which + 1]


# ---------------------------------------------------------------- vocabulary

_COUNTS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
           "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12}
_VAGUE = {"a couple of": (2, 3), "a couple": (2, 3), "couple of": (2, 3), "a few": (2, 4), "few": (2, 4),
          "several": (3, 7)}
_COUNT = "(?:" + "|".join(w.replace(" ", r"\s+") for w in sorted([*_COUNTS, *_VAGUE], key=len, reverse=True))
_COUNT += r"|\d{1,3})"
_UNIT = r"(?P<unit>hour|day|week|month|year)s?"
_UNIT_DAYS = {"hour": 1 / 24, "day": 1.0, "week": 7.0, "month": 30.44, "year": 365.25}
_REL = {"last": -1, "past": -1, "this past": -1, "this": 0, "next": 1, "coming": 1, "this coming": 1, "upcoming": 1}
_DAY_OFF = {"today": 0, "yesterday": -1, "tomorrow": 1, "this": 0, "day before yesterday": -2, "day after tomorrow": 2}
_PARTS = {"morning": (5, 12), "afternoon": (12, 18), "evening": (18, 24), "night": (18, 30)}
_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_MONTHS = {name: i + 1 for i, name in enumerate(["january", "february", "march", "april", "may", "june", "july",
                                                 "august", "september", "october", "november", "december"])}
_MONTHS.update({"jan": 1, "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "sept": 9,
                "oct": 10, "nov": 11, "dec": 12})
# Names that are also verbs, given names or plain words; they need a day, a year or a preposition.
_AMBIGUOUS = {"may", "march", "april", "june", "august"} | {k for k in _MONTHS if len(k) <= 4} - {"july"}
_CONTEXT = {"in", "during", "since", "last", "next", "this", "of", "early", "late", "mid", "before", "after",
            "until", "from", "by", "through", "throughout", "around"}
_SEASONS = {"spring": 3, "summer": 6, "autumn": 9, "fall": 9, "winter": 12}
_THIRDS = {"early": 0, "beginning": 0, "start": 0, "mid": 1, "middle": 1, "late": 2, "end": 2}
_MON = r"(?P<mon>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\b\.?"
_YEAR = r"(?P<year>(?:19|20)\d{2})(?!\d)"
_REL_RE = r"last|this\s+past|past|this\s+coming|this|next|coming|upcoming"
_FOLLOW_END = re.compile(r"\s*(?:$|[^\w\s])")
_FOLLOW_OK = re.compile(r"\s*(?:$|[^\w\s]|(?:at|in|on|and|or|to|for|i|we|when|while|the|this|that|last|next)\b)", re.I)


def _g(m: re.Match[str], name: str) -> str:
    return " ".join((m.groupdict().get(name) or "").lower().split())


def _has_context(m: re.Match[str]) -> bool:
    words = re.findall(r"[a-z]+", m.string[max(0, m.start() - 30) : m.start()].lower())
    if not words or not re.search(r"[A-Za-z][\s-]+$", m.string[: m.start()]):
        return False
    return words[-1] in _CONTEXT or (words[-1] == "the" and len(words) > 1 and words[-2] in _CONTEXT)


def _count(text: str) -> tuple[int, int]:
    word = " ".join(text.lower().split())
    if word.isdigit():
        return int(word), int(word)
    return _VAGUE[word] if word in _VAGUE else (_COUNTS[word], _COUNTS[word])


# ---------------------------------------------------------------- rule handlers


def _one_day(y: int, mo: int, d: int) -> Span | None:
    try:
        s = datetime(y, mo, d, tzinfo=UTC)
    except ValueError:
        return None
    return s, s + DAY, "range"


def _day_part(m: re.Match[str], now: datetime) -> Span:
    base = _day(now) + _DAY_OFF[_g(m, "day") or ("yesterday" if _g(m, "last") else "today")] * DAY
    h0, h1 = _PARTS[_g(m, "part") or "night"]
    return base + timedelta(hours=h0), base + timedelta(hours=h1), "range"


def _whole_day(m: re.Match[str], now: datetime) -> Span:
    s = _day(now) + _DAY_OFF[_g(m, "day").removeprefix("the ")] * DAY
    return s, s + DAY, "range"


def _calendar(m: re.Match[str], now: datetime) -> Span | None:
    if re.match(r"\s+of\b", m.string[m.end() :]):  # "the last week of March" is about March
        return None
    if _g(m, "d"):
        offset = -2 if _g(m, "d").startswith("before") else 2
    elif _g(m, "rel"):
        offset = _REL[_g(m, "rel")]
    else:  # "over the weekend": the one we are in, else the one just gone
        offset = 0 if now.weekday() >= 5 else -1
    s, e = _period(now, _g(m, "unit") or "weekend", offset)
    if _g(m, "unit") == "week" and _g(m, "rel") in ("last", "this past"):
        e = max(e, now)  # people say "last week" for the calendar week and for the past seven days; cover both
    return s, e, "range"


def _rolling(m: re.Match[str], now: datetime) -> Span | None:
    # bare "last week" is the calendar week; "the last week of March" is about March
    if (_g(m, "w") == "last" and not _g(m, "the") and not _g(m, "n")) or re.match(r"\s+of\b", m.string[m.end() :]):
        return None
    _, hi = _count(_g(m, "n") or "1")
    if _g(m, "unit") == "hour":
        return now - hi * timedelta(hours=1), now, "range"
    return _day(_shift(now, -hi, _g(m, "unit"))), _day(now) + DAY, "range"


def _ago(m: re.Match[str], now: datetime) -> Span:
    lo, hi = _count(_g(m, "n"))
    unit, sign = _g(m, "unit"), -1 if _g(m, "dir") == "ago" else 1
    a, b = _shift(now, sign * lo, unit), _shift(now, sign * hi, unit)
    if unit == "day" and lo == hi:
        return _day(a), _day(a) + DAY, "range"
    half = timedelta(days=_UNIT_DAYS[unit] / 2)
    return min(a, b) - half, max(a, b) + half, "point"


def _this_time_last(m: re.Match[str], now: datetime) -> Span:
    c = _day(_shift(now, -1, _g(m, "unit")))
    return c - 3 * DAY, c + 4 * DAY, "point"


def _earlier(m: re.Match[str], now: datetime) -> Span:
    s, e = (_day(now), _day(now) + DAY) if _g(m, "today") else _period(now, _g(m, "unit"), 0)
    return (now, e, "range") if _g(m, "w") == "later" else (s, now, "range")


def _part_of(m: re.Match[str], now: datetime) -> Span:
    return (*_third(*_period(now, _g(m, "unit"), 0), _THIRDS[_g(m, "part")]), "range")


def _weekday(m: re.Match[str], now: datetime) -> Span:
    wd, rel = _WEEKDAYS.index(_g(m, "wd")), _g(m, "rel")
    if rel in ("next", "this coming", "coming", "upcoming", "this"):
        s = _day(now) + ((wd - now.weekday()) % 7 or 7) * DAY
    else:
        s = _day(now) - ((now.weekday() - wd) % 7 or 7) * DAY
    return s, s + DAY, "range"


def _month(m: re.Match[str], now: datetime) -> Span | None:
    raw, name = m["mon"], m["mon"].lower()
    mon, day, year, rel = _MONTHS[name], _g(m, "day"), _g(m, "year"), _g(m, "rel")
    if name in _AMBIGUOUS and not (day or year or rel or _has_context(m)):
        return None
    if name in ("may", "march") and raw.islower():  # "this may help", "we march 5 miles"
        after = m.string[m.end() :]
        if rel in ("this", "next") and not (day or year) and not _FOLLOW_END.match(after):
            return None
        if day and not (year or _g(m, "suf") or _g(m, "of")) and not _FOLLOW_OK.match(after):
            return None
    if day:
        d, y = int(day), int(year) if year else now.year
        try:
            if not year and _REL.get(rel, 0) > 0 and date(y, mon, d) <= now.date():
                y += 1
            elif not year and _REL.get(rel, 0) <= 0 and date(y, mon, d) > now.date():
                y -= 1
        except ValueError:
            return None
        return _one_day(y, mon, d)
    if year:
        y = int(year)
    elif _REL.get(rel, 0) < 0:
        y = now.year if mon < now.month else now.year - 1
    elif _REL.get(rel, 0) > 0:
        y = now.year if mon > now.month else now.year + 1
    else:
        y = now.year if rel == "this" or mon <= now.month else now.year - 1
    return _month_start(y, mon), _month_start(y, mon, 1), "range"


def _mdy(m: re.Match[str], now: datetime) -> Span | None:
    a, b, y = int(m["a"]), int(m["b"]), int(m["y"])
    if a > 12 >= b:  # 20/05/2023 can only be day-first
        a, b = b, a
    return _one_day(y + 2000 if y < 100 else y, a, b)


def _year(m: re.Match[str], now: datetime) -> Span | None:
    if not _has_context(m) and not re.search(r"\b(?:year|back)\s+$", m.string[: m.start()], re.I):
        return None
    y = int(m["year"])
    return datetime(y, 1, 1, tzinfo=UTC), datetime(y + 1, 1, 1, tzinfo=UTC), "range"


def _season(m: re.Match[str], now: datetime) -> Span | None:
    rel, year = _g(m, "rel"), _g(m, "year")
    if not (rel or year or _has_context(m)):
        return None
    first = _SEASONS[_g(m, "s")]

    def occurrence(y: int) -> tuple[datetime, datetime]:
        return _month_start(y, first), _month_start(y, first, 3)

    if year:  # "winter 2024" is the winter holding January 2024
        return (*occurrence(int(year) - (first == 12)), "range")
    options = [occurrence(y) for y in range(now.year - 2, now.year + 2)]
    current = [o for o in options if o[0] <= now < o[1]]
    if _REL.get(rel, 0) < 0:
        s, e = max(o for o in options if o[1] <= now)
    elif _REL.get(rel, 0) > 0:
        s, e = min(o for o in options if o[0] > now)
    elif current:
        s, e = current[0]
    elif rel == "this":
        s, e = next(o for o in options if o[0].year == now.year)
    else:
        s, e = max(o for o in options if o[0] <= now)
    return s, e, "range"


Handler = Callable[[re.Match[str], datetime], Span | None]


def _rule(pattern: str, handler: Handler) -> tuple[re.Pattern[str], Handler]:
    return re.compile(pattern, re.I), handler


_RULES = [
    _rule(r"\b(?:(?P<day>today|yesterday|tomorrow|this)\s+(?P<part>morning|afternoon|evening|night)"
          r"|(?P<last>last)\s+night|tonight)\b", _day_part),
    _rule(r"\b(?P<day>(?:the\s+)?day\s+(?:before\s+yesterday|after\s+tomorrow)|today|yesterday|tomorrow)\b",
          _whole_day),
    _rule(r"\b(?:the\s+)?(?P<unit>week|month|year|weekend)\s+(?P<d>before\s+last|after\s+next)\b", _calendar),
    _rule(r"\b(?P<rel>last|this\s+past|this\s+coming|this|next|coming|upcoming)\s+(?P<unit>week|month|year|weekend)\b",
          _calendar),
    _rule(r"\b(?:over|on|at|during)\s+the\s+weekend\b", _calendar),
    _rule(r"\b(?:(?:in|over|during|within|for)\s+)?(?P<the>the\s+)?(?P<w>last|past)\s+(?:(?P<n>" + _COUNT + r")\s+)?"
          + _UNIT + r"\b", _rolling),
    _rule(r"\b(?P<n>" + _COUNT + r")\s+" + _UNIT + r"\s+(?P<dir>ago|from\s+now)\b", _ago),
    _rule(r"\bin\s+(?P<n>" + _COUNT + r")\s+" + _UNIT + r"\b", _ago),
    _rule(r"\b(?:recently|lately|nowadays|these\s+days|of\s+late)\b",
          lambda m, now: (_day(now) - 30 * DAY, _day(now) + DAY, "point")),
    _rule(r"\bthe\s+other\s+day\b", lambda m, now: (_day(now) - 7 * DAY, _day(now), "point")),
    _rule(r"\bthis\s+time\s+last\s+(?P<unit>week|month|year)\b", _this_time_last),
    _rule(r"\b(?P<w>earlier|later|so\s+far)\s+(?:(?P<today>today)|this\s+(?P<unit>week|month|year))\b", _earlier),
    _rule(r"\b(?:at\s+)?(?:the\s+)?(?:very\s+)?(?P<part>beginning|start|end|middle)\s+of\s+the\s+"
          r"(?P<unit>week|month|year)\b", _part_of),
    _rule(r"\b(?:(?P<rel>" + _REL_RE + r"|on)\s+)?(?P<wd>" + "|".join(_WEEKDAYS) + r")\b", _weekday),
    _rule(r"\b(?:(?P<rel>" + _REL_RE + r")\s+)?" + _MON + r"(?:\s+(?:the\s+)?(?P<day>\d{1,2})(?P<suf>st|nd|rd|th)?\b)?"
          r"(?:,?\s+" + _YEAR + ")?", _month),
    _rule(r"\b(?:the\s+)?(?P<day>\d{1,2})(?P<suf>st|nd|rd|th)?\s+(?P<of>of\s+)?" + _MON + r"(?:,?\s+" + _YEAR + ")?",
          _month),
    _rule(r"(?<![\d/.-])(?P<y>(?:19|20)\d{2})([-/.])(?P<m>\d{1,2})\2(?P<d>\d{1,2})(?!\d)",
          lambda m, now: _one_day(int(m["y"]), int(m["m"]), int(m["d"]))),
    _rule(r"(?<![\d/])(?P<a>\d{1,2})/(?P<b>\d{1,2})/(?P<y>\d{4}|\d{2})(?![\d/])", _mdy),
    _rule(r"\b" + _YEAR + r"\b(?![-/.]\d)", _year),
    _rule(r"\b(?:(?P<rel>" + _REL_RE + r")\s+)?(?P<s>spring|summer|autumn|fall|winter)\b"
          r"(?:\s+(?:of\s+)?" + _YEAR + ")?", _season),
    _rule(r"\b(?:first|earliest|oldest|latest|newest|most\s+recent(?:ly)?|last\s+time|before|after)\b",
          lambda m, now: (now - _WIDE, now + DAY, "order")),
]
_CONNECT = re.compile(r"(?:\b(?P<edge>early|late|mid)[\s-]+|\b(?:at\s+)?(?:the\s+)?(?:very\s+)?"
                      r"(?P<part>beginning|start|end|middle)\s+of\s+|\b(?P<rel>since|before|after)\s+)$", re.I)


def _compose(
    text: str, floor: int, a: int, s: datetime, e: datetime, kind: str, now: datetime
) -> tuple[int, datetime, datetime, str]:
    """Widen a match leftwards over "early"/"the end of"/"since"/"before"/"after" and adjust its span."""
    while m := _CONNECT.search(text, max(floor, a - 48), a):
        if m["rel"]:
            word = m["rel"].lower()
            if word == "since":
                return m.start(), s, now if now > s else e, "range"
            return (m.start(), s - _WIDE, s, "order") if word == "before" else (m.start(), e, e + _WIDE, "order")
        if m["edge"] and e - s < 28 * DAY:  # "late yesterday" is about lateness, not a third of a day
            break
        s, e = _third(s, e, _THIRDS[(m["edge"] or m["part"]).lower()])
        a = m.start()
    return a, s, e, kind


def find_time_expressions(text: str, now: datetime) -> list[TimeWindow]:
    """Every time expression in ``text``, resolved against ``now``, in text order and without overlaps."""
    if not isinstance(text, str) or not text.strip():
        return []
    now = _utc(now)
    found = []
    for pattern, handler in _RULES:
        for m in pattern.finditer(text):
            try:
                got = handler(m, now)
            except (ValueError, OverflowError):  # a `now` near year 1 or 9999 leaves the calendar
                continue
            if got is not None and got[1] > got[0]:
                found.append((m.start(), m.end(), *got))
    found.sort(key=lambda c: (c[0], c[0] - c[1]))  # leftmost, then longest
    picked: list[tuple[int, int, datetime, datetime, str]] = []
    for c in found:
        if not picked or c[0] >= picked[-1][1]:
            picked.append(c)
    out: list[tuple[int, int, datetime, datetime, str]] = []
    for a, b, s, e, kind in picked:
        if kind != "order":
            try:
                a, s, e, kind = _compose(text, out[-1][1] if out else 0, a, s, e, kind, now)
            except OverflowError:
                pass
            out.append((a, b, s, e, kind))
    out += [c for c in picked if c[4] == "order" and not any(c[0] < o[1] and o[0] < c[1] for o in out)]
    out.sort(key=lambda c: c[0])
    return [TimeWindow(s, e, text[a:b], kind) for a, b, s, e, kind in out]


def parse_time_window(text: str, now: datetime) -> TimeWindow | None:
    """The window a query is about: its first range or point expression, else its first ordering word, else None."""
    windows = find_time_expressions(text, now)
    return next((w for w in windows if w.kind != "order"), windows[0] if windows else None)


# ---------------------------------------------------------------- timestamps and scores

_SLASHED = re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})(?:\s*\([A-Za-z]{2,9}\))?(?:,?\s+(\d{1,2}):(\d{2})(?::(\d{2}))?)?")
_HINT = "use a datetime, a date, ISO 8601 ('2023-05-20T02:21:00Z'), epoch seconds or '2023/05/20 (Sat) 02:21'"


def _epoch(value: float) -> datetime:
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"epoch seconds {value!r} are not a representable time") from None


def parse_timestamp(value: object) -> datetime:
    """A UTC-aware datetime from a datetime, date, ISO 8601 string, epoch number or '2023/05/20 (Sat) 02:21'.

    Naive datetimes and strings without an offset are taken as UTC. Raises ValueError otherwise.
    """
    if isinstance(value, datetime):
        return _utc(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _epoch(value)
    if not isinstance(value, str):
        raise ValueError(f"cannot read a timestamp from {type(value).__name__}: {_HINT}")
    text = value.strip()
    try:
        return _utc(datetime.fromisoformat(text))
    except ValueError:
        pass
    if m := _SLASHED.fullmatch(text):
        try:
            y, mo, d, h, mi, sec = (int(x or 0) for x in m.groups())
            return datetime(y, mo, d, h, mi, sec, tzinfo=UTC)
        except ValueError as exc:
            raise ValueError(f"timestamp {value!r} has an impossible date or time ({exc})") from None
    if re.fullmatch(r"-?\d+(?:\.\d+)?", text):
        return _epoch(float(text))
    # a whole string that reads as one dated day, e.g. "May 20, 2023" or "20 May 2023"
    named = find_time_expressions(text, datetime(2000, 1, 1, tzinfo=UTC))
    # A month must be named: "31/12/2020" and "12/11/2020" read differently around the world.
    if len(named) == 1 and named[0].expression == text and re.search(r"\d{4}", text) and re.search("[A-Za-z]", text):
        if named[0].end - named[0].start == DAY:
            return named[0].start
    raise ValueError(f"unrecognised timestamp {value!r}: {_HINT}")


def temporal_score(event_time: datetime, window: TimeWindow, scale_days: float = 7.0) -> float:
    """1.0 for an event inside ``window``, falling as exp(-days outside / scale_days) beyond its edges."""
    if not scale_days > 0:
        raise ValueError(f"scale_days must be positive, got {scale_days!r}")
    return 1.0 if window.contains(event_time) else math.exp(-window.distance_days(event_time) / scale_days)


def recency_score(t: datetime, now: datetime, half_life_days: float = 30.0) -> float:
    """In (0, 1]: 1.0 at ``now`` (and for future times), halving every ``half_life_days`` of age."""
    if not half_life_days > 0:
        raise ValueError(f"half_life_days must be positive, got {half_life_days!r}")
    age = max(0.0, (_utc(now) - _utc(t)) / DAY)
    return max(0.5 ** (age / half_life_days), sys.float_info.min)  # never exactly 0, however old
