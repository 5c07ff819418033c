"""Time expressions, timestamps and time scores in memstrata.core.temporal."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from memstrata.core.temporal import (
    TimeWindow,
    find_time_expressions,
    parse_time_window,
    parse_timestamp,
    recency_score,
    temporal_score,
)

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)


def T(text: str) -> datetime:
    """A UTC datetime from a short ISO string, e.g. '2026-03-15' or '2026-03-15T18:00'."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_reference_now_is_a_sunday() -> None:
    # several expectations below (weeks, weekends, weekdays) are worked out from this
    assert NOW.strftime("%A") == "Sunday"


NOW_ISO = "2026-03-15T12:00"

# query, expected matched text, start, end (exclusive), kind
TABLE = [
    ("what did I do today", "today", "2026-03-15", "2026-03-16", "range"),
    ("yesterday", "yesterday", "2026-03-14", "2026-03-15", "range"),
    ("the day before yesterday", "the day before yesterday", "2026-03-13", "2026-03-14", "range"),
    ("tomorrow", "tomorrow", "2026-03-16", "2026-03-17", "range"),
    ("tonight", "tonight", "2026-03-15T18:00", "2026-03-16T06:00", "range"),
    ("this morning", "this morning", "2026-03-15T05:00", "2026-03-15T12:00", "range"),
    ("last night", "last night", "2026-03-14T18:00", "2026-03-15T06:00", "range"),
    ("what did we discuss last week?", "last week", "2026-03-02", NOW_ISO, "range"),
    ("This week", "This week", "2026-03-09", "2026-03-16", "range"),
    ("next week", "next week", "2026-03-16", "2026-03-23", "range"),
    ("last month", "last month", "2026-02-01", "2026-03-01", "range"),
    ("this month", "this month", "2026-03-01", "2026-04-01", "range"),
    ("next month", "next month", "2026-04-01", "2026-05-01", "range"),
    ("LAST YEAR", "LAST YEAR", "2025-01-01", "2026-01-01", "range"),
    ("this year", "this year", "2026-01-01", "2027-01-01", "range"),
    ("next year", "next year", "2027-01-01", "2028-01-01", "range"),
    ("last weekend", "last weekend", "2026-03-07", "2026-03-09", "range"),
    ("this weekend", "this weekend", "2026-03-14", "2026-03-16", "range"),
    ("next weekend", "next weekend", "2026-03-21", "2026-03-23", "range"),
    ("the week before last", "the week before last", "2026-02-23", "2026-03-02", "range"),
    ("3 days ago", "3 days ago", "2026-03-12", "2026-03-13", "range"),
    ("five days ago", "five days ago", "2026-03-10", "2026-03-11", "range"),
    ("two weeks ago", "two weeks ago", "2026-02-26", "2026-03-05", "point"),
    ("a couple of days ago", "a couple of days ago", "2026-03-12", "2026-03-14", "point"),
    ("a few weeks ago", "a few weeks ago", "2026-02-12", "2026-03-05", "point"),
    ("in the last 3 days", "in the last 3 days", "2026-03-12", "2026-03-16", "range"),
    ("over the past two weeks", "over the past two weeks", "2026-03-01", "2026-03-16", "range"),
    ("the past week", "the past week", "2026-03-08", "2026-03-16", "range"),
    ("in the last 24 hours", "in the last 24 hours", "2026-03-14T12:00", NOW_ISO, "range"),
    ("what have I been reading recently", "recently", "2026-02-13", "2026-03-16", "point"),
    ("lately", "lately", "2026-02-13", "2026-03-16", "point"),
    ("the other day", "the other day", "2026-03-08", "2026-03-15", "point"),
    ("this time last year", "this time last year", "2025-03-12", "2025-03-19", "point"),
    ("on Monday", "on Monday", "2026-03-09", "2026-03-10", "range"),
    ("last Tuesday", "last Tuesday", "2026-03-10", "2026-03-11", "range"),
    ("on Sunday", "on Sunday", "2026-03-08", "2026-03-09", "range"),
    ("next Friday", "next Friday", "2026-03-20", "2026-03-21", "range"),
    ("in March", "March", "2026-03-01", "2026-04-01", "range"),
    ("last March", "last March", "2025-03-01", "2025-04-01", "range"),
    ("next March", "next March", "2027-03-01", "2027-04-01", "range"),
    ("March 2023", "March 2023", "2023-03-01", "2023-04-01", "range"),
    ("in May", "May", "2025-05-01", "2025-06-01", "range"),
    ("what did i do this may?", "this may", "2026-05-01", "2026-06-01", "range"),
    ("in December", "December", "2025-12-01", "2026-01-01", "range"),
    ("in 2023", "2023", "2023-01-01", "2024-01-01", "range"),
    ("last summer", "last summer", "2025-06-01", "2025-09-01", "range"),
    ("last winter", "last winter", "2025-12-01", "2026-03-01", "range"),
    ("in the spring", "spring", "2026-03-01", "2026-06-01", "range"),
    ("summer 2023", "summer 2023", "2023-06-01", "2023-09-01", "range"),
    ("on 2023-05-20", "2023-05-20", "2023-05-20", "2023-05-21", "range"),
    ("on 05/20/2023", "05/20/2023", "2023-05-20", "2023-05-21", "range"),
    ("on 20/05/2023", "20/05/2023", "2023-05-20", "2023-05-21", "range"),
    ("on May 20", "May 20", "2025-05-20", "2025-05-21", "range"),
    ("20 May 2023", "20 May 2023", "2023-05-20", "2023-05-21", "range"),
    ("May 20th", "May 20th", "2025-05-20", "2025-05-21", "range"),
    ("on March 10th", "March 10th", "2026-03-10", "2026-03-11", "range"),
    ("on the 3rd of January", "the 3rd of January", "2026-01-03", "2026-01-04", "range"),
    ("earlier this year", "earlier this year", "2026-01-01", NOW_ISO, "range"),
    ("later this week", "later this week", NOW_ISO, "2026-03-16", "range"),
    ("at the beginning of the month", "at the beginning of the month", "2026-03-01", "2026-03-11", "range"),
    ("since March", "since March", "2026-03-01", NOW_ISO, "range"),
    ("since last week", "since last week", "2026-03-02", NOW_ISO, "range"),
    ("early March", "early March", "2026-03-01", "2026-03-11", "range"),
    ("mid-May", "mid-May", "2025-05-11", "2025-05-22", "range"),
    ("late last year", "late last year", "2025-09-01", "2026-01-01", "range"),
    ("the end of last month", "the end of last month", "2026-02-20", "2026-03-01", "range"),
]


def test_the_table_is_big_enough() -> None:
    assert len(TABLE) >= 40


@pytest.mark.parametrize(("query", "expression", "start", "end", "kind"), TABLE, ids=[row[0] for row in TABLE])
def test_expressions_resolve_to_the_expected_window(
    query: str, expression: str, start: str, end: str, kind: str
) -> None:
    w = parse_time_window(query, NOW)
    assert w is not None, query
    assert (w.start, w.end, w.kind, w.expression) == (T(start), T(end), kind, expression)
    assert w.start.tzinfo is UTC and w.end.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "I may go to the store",
        "This may take a while",
        "We march on the capital",
        "we march 5 miles every day",
        "I'd like a second opinion",
        "I fall asleep quickly",
        "spring cleaning is done",
        "Jan said hi",
        "August Rush is a film",
        "2023 was a good number",
        "Mondays are hard",
        "I sat down and had a wed cake",
        "He will march next to me",
        "",
    ],
)
def test_false_positives_find_nothing(text: str) -> None:
    assert parse_time_window(text, NOW) is None
    assert find_time_expressions(text, NOW) == []


def test_vague_month_ago_is_a_point_around_that_time() -> None:
    w = parse_time_window("a month ago", NOW)
    assert w is not None and w.kind == "point"
    assert w.contains(T("2026-02-15"))
    assert not w.contains(T("2026-03-10")) and not w.contains(T("2026-01-10"))


def test_several_months_ago_is_wider_than_a_month_ago() -> None:
    one, several = parse_time_window("a month ago", NOW), parse_time_window("several months ago", NOW)
    assert one is not None and several is not None
    assert several.end - several.start > one.end - one.start
    assert several.end <= NOW - timedelta(days=60)


def test_all_expressions_come_back_in_text_order() -> None:
    text = "I moved to Lisbon in March 2023, started a job last week and went hiking yesterday"
    found = find_time_expressions(text, NOW)
    assert [w.expression for w in found] == ["March 2023", "last week", "yesterday"]
    assert found[0].start == T("2023-03-01") and found[2].start == T("2026-03-14")


def test_last_week_on_a_sunday_also_covers_the_past_seven_days() -> None:
    w = parse_time_window("Which concert did I go to last week?", NOW)
    assert w is not None
    assert w.contains(T("2026-03-03")) and w.contains(T("2026-03-10T20:00")) and not w.contains(T("2026-03-01"))


def test_overlapping_candidates_keep_the_longest() -> None:
    found = find_time_expressions("the day before yesterday", NOW)
    assert [w.expression for w in found] == ["the day before yesterday"]


def test_the_last_week_of_a_month_is_about_the_month() -> None:
    found = find_time_expressions("the last week of March", NOW)
    assert [w.expression for w in found] == ["March"]


@pytest.mark.parametrize("query", ["what was the first thing I said", "the latest update", "the most recent trip"])
def test_ordering_words_give_a_wide_order_window(query: str) -> None:
    w = parse_time_window(query, NOW)
    assert w is not None and w.kind == "order"
    assert w.contains(NOW) and w.contains(T("1990-01-01"))


def test_before_and_after_anchor_an_order_window() -> None:
    before = parse_time_window("what did I do before March", NOW)
    assert before is not None
    assert (before.kind, before.expression, before.end) == ("order", "before March", T("2026-03-01"))
    assert before.contains(T("2026-02-27")) and not before.contains(T("2026-03-02"))
    after = parse_time_window("and after last month?", NOW)
    assert after is not None and (after.kind, after.start) == ("order", T("2026-03-01"))
    assert not after.contains(T("2026-02-28")) and after.contains(NOW)


def test_a_range_beats_an_ordering_word() -> None:
    w = parse_time_window("what did I buy first last week?", NOW)
    assert w is not None and w.expression == "last week"
    assert [x.kind for x in find_time_expressions("what did I buy first last week?", NOW)] == ["order", "range"]


@pytest.mark.parametrize(
    ("now", "query", "start", "end"),
    [
        ("2026-01-10T09:00", "last month", "2025-12-01", "2026-01-01"),
        ("2026-01-10T09:00", "this month", "2026-01-01", "2026-02-01"),
        ("2026-01-10T09:00", "in December", "2025-12-01", "2026-01-01"),
        ("2026-01-10T09:00", "last winter", "2024-12-01", "2025-03-01"),
        ("2026-01-02T09:00", "last week", "2025-12-22", "2026-01-02T09:00"),
        ("2026-01-02T09:00", "this week", "2025-12-29", "2026-01-05"),
        ("2026-01-02T09:00", "3 days ago", "2025-12-30", "2025-12-31"),
        ("2026-01-02T09:00", "last Wednesday", "2025-12-31", "2026-01-01"),
        ("2026-01-02T09:00", "May 20", "2025-05-20", "2025-05-21"),
        ("2025-12-20T09:00", "next month", "2026-01-01", "2026-02-01"),
        ("2025-12-20T09:00", "next week", "2025-12-22", "2025-12-29"),
    ],
)
def test_year_boundaries(now: str, query: str, start: str, end: str) -> None:
    w = parse_time_window(query, T(now))
    assert w is not None and (w.start, w.end) == (T(start), T(end))


def test_naive_and_offset_now_are_read_as_utc() -> None:
    naive = parse_time_window("yesterday", NOW.replace(tzinfo=None))
    assert naive is not None and naive.start == T("2026-03-14")
    # 01:00 at +05:00 is still the 14th in UTC
    offset = parse_time_window("today", datetime(2026, 3, 15, 1, 0, tzinfo=timezone(timedelta(hours=5))))
    assert offset is not None and offset.start == T("2026-03-14")


def test_time_window_contains_and_distance() -> None:
    w = TimeWindow(T("2026-03-01"), T("2026-03-08"), "x", "range")
    assert w.contains(T("2026-03-01")) and not w.contains(T("2026-03-08"))
    assert w.contains(datetime(2026, 3, 5))  # naive is UTC
    assert w.distance_days(T("2026-03-04")) == 0.0
    assert w.distance_days(T("2026-02-27")) == pytest.approx(2.0)
    assert w.distance_days(T("2026-03-10T12:00")) == pytest.approx(2.5)


def test_time_window_rejects_empty_spans_and_unknown_kinds() -> None:
    with pytest.raises(ValueError, match="empty"):
        TimeWindow(T("2026-03-08"), T("2026-03-08"), "x", "range")
    with pytest.raises(ValueError, match="kind"):
        TimeWindow(T("2026-03-01"), T("2026-03-08"), "x", "fuzzy")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2023, 5, 20, 2, 21), "2023-05-20T02:21"),
        (datetime(2023, 5, 20, 4, 21, tzinfo=timezone(timedelta(hours=2))), "2023-05-20T02:21"),
        (date(2023, 5, 20), "2023-05-20"),
        ("2023-05-20T02:21:00Z", "2023-05-20T02:21"),
        ("2023-05-20T04:21:00+02:00", "2023-05-20T02:21"),
        ("2023-05-20", "2023-05-20"),
        ("  2023-05-20 02:21  ", "2023-05-20T02:21"),
        ("2023/05/20 (Sat) 02:21", "2023-05-20T02:21"),
        ("2023/05/20 (Sat) 02:21:30", "2023-05-20T02:21:30"),
        ("2023/05/20", "2023-05-20"),
        ("May 20, 2023", "2023-05-20"),
        ("20 May 2023", "2023-05-20"),
        (1684549260, "2023-05-20T02:21"),
        (1684549260.5, "2023-05-20T02:21:00.5"),
        ("1684549260", "2023-05-20T02:21"),
    ],
)
def test_parse_timestamp_formats(value: object, expected: str) -> None:
    got = parse_timestamp(value)
    assert got == T(expected)
    assert got.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("yesterday", "unrecognised timestamp"),
        ("May 2023", "unrecognised timestamp"),
        ("", "unrecognised timestamp"),
        ("2023/02/30 (Thu) 10:00", "impossible date"),
        (None, "NoneType"),
        (True, "bool"),
        ([2023, 5, 20], "list"),
        (float("nan"), "not a representable time"),
        (1e20, "not a representable time"),
    ],
)
def test_parse_timestamp_rejects_clearly(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_timestamp(value)


WEEK = TimeWindow(T("2026-03-02"), T("2026-03-09"), "last week", "range")


def test_temporal_score_is_one_inside_and_decays_monotonically_outside() -> None:
    assert temporal_score(T("2026-03-05"), WEEK) == 1.0
    after = [temporal_score(T("2026-03-09") + timedelta(days=d), WEEK) for d in (0.5, 1, 3, 10, 100)]
    before = [temporal_score(T("2026-03-02") - timedelta(days=d), WEEK) for d in (0.5, 1, 3, 10, 100)]
    for scores in (after, before):
        assert all(0.0 < s < 1.0 for s in scores)
        assert all(a > b for a, b in zip(scores, scores[1:], strict=False))
    assert after[2] == pytest.approx(before[2])  # symmetric about the window
    assert temporal_score(T("2026-03-16"), WEEK, scale_days=7.0) == pytest.approx(0.36787944, rel=1e-6)


def test_temporal_score_wider_scale_decays_slower() -> None:
    t = T("2026-03-20")
    assert temporal_score(t, WEEK, scale_days=30) > temporal_score(t, WEEK, scale_days=3)
    with pytest.raises(ValueError, match="scale_days"):
        temporal_score(t, WEEK, scale_days=0)


def test_recency_score_halves_each_half_life() -> None:
    assert recency_score(NOW, NOW) == 1.0
    assert recency_score(NOW - timedelta(days=30), NOW) == pytest.approx(0.5)
    assert recency_score(NOW - timedelta(days=60), NOW) == pytest.approx(0.25)
    assert recency_score(NOW - timedelta(days=10), NOW, half_life_days=10) == pytest.approx(0.5)
    assert recency_score(NOW + timedelta(days=5), NOW) == 1.0


def test_recency_score_is_monotone_and_never_zero() -> None:
    ages = [0, 1, 7, 30, 365, 3650, 365_000]
    scores = [recency_score(NOW - timedelta(days=a), NOW) for a in ages]
    assert all(a > b for a, b in zip(scores, scores[1:], strict=False))
    assert all(0.0 < s <= 1.0 for s in scores)
    assert recency_score(datetime(2026, 2, 13, 12), NOW) == pytest.approx(0.5)  # naive is UTC
    with pytest.raises(ValueError, match="half_life_days"):
        recency_score(NOW, NOW, half_life_days=-1)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(9999, 12, 31, tzinfo=UTC), ["last year", "before March"]),
        (datetime(1, 1, 2, tzinfo=UTC), ["next year", "999 years from now"]),
    ],
)
def test_a_now_at_the_edge_of_the_calendar_skips_what_it_cannot_reach(now: datetime, expected: list[str]) -> None:
    found = find_time_expressions("next year, last year, before March, the latest, 999 years from now", now)
    assert [w.expression for w in found] == expected
