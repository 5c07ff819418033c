"""Bad input gets a MemstrataError subclass naming the field, and nothing is written."""

from __future__ import annotations

import pytest

from memstrata import InvalidInputError, Memory, MemstrataError


@pytest.mark.parametrize(
    ("messages", "field"),
    [
        ([], "messages"),
        ("   ", "messages[0].content"),
        ([{"role": "user"}], "messages[0].content"),
        ([{"role": "robot", "content": "x"}], "messages[0].role"),
        ([{"role": "user", "content": 42}], "messages[0].content"),
        ([{"role": "user", "content": "x" * 100_001}], "messages[0].content"),
        ([{"role": "user", "content": b"\xff\xfe bad"}], "messages[0].content"),
        ([{"role": "user", "content": "bad \udc80 surrogate"}], "messages[0].content"),
        ([{"role": "user", "content": "nul\x00byte"}], "messages[0].content"),
        (["just a string in a list"], "messages[0]"),
        (12, "messages"),
    ],
)
def test_bad_messages_are_refused_and_nothing_is_written(mem: Memory, uid: str, messages, field) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInputError) as info:
        mem.add(messages, user_id=uid, infer=False)
    assert info.value.field == field
    assert isinstance(info.value, ValueError) and isinstance(info.value, MemstrataError)
    assert mem.stats(user_id=uid)["episodes"] == 0


def test_utf8_bytes_are_accepted(mem: Memory, uid: str) -> None:
    r = mem.add([{"role": "user", "content": "Olá, São Paulo".encode()}], user_id=uid, infer=False)
    assert r["results"][0]["memory"] == "Olá, São Paulo"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"timestamp": "yesterday-ish"}, "timestamp"),
        ({"timestamp": float("nan")}, "timestamp"),
        ({"metadata": "not a dict"}, "metadata"),
        ({"metadata": {"x": object()}}, "metadata"),
        ({"metadata": {"x": "y" * 70_000}}, "metadata"),
        ({"infer": "yes"}, "infer"),
    ],
)
def test_bad_add_arguments(mem: Memory, uid: str, kwargs, field) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInputError) as info:
        mem.add("hello there", user_id=uid, **kwargs)
    assert info.value.field == field
    assert mem.stats(user_id=uid)["episodes"] == 0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"query": ""}, "query"),
        ({"query": None}, "query"),
        ({"query": "x" * 10_001}, "query"),
        ({"query": "ok", "limit": 0}, "limit"),
        ({"query": "ok", "limit": "5"}, "limit"),
        ({"query": "ok", "filters": []}, "filters"),
        ({"query": "ok", "preset": "turbo"}, "preset"),
        ({"query": "ok", "now": "not a time"}, "now"),
        ({"query": "ok", "as_of": {}}, "as_of"),
    ],
)
def test_bad_search_arguments(mem: Memory, uid: str, kwargs, field) -> None:  # type: ignore[no-untyped-def]
    kwargs = dict(kwargs)  # the parameter dict is shared by every backend's run
    query = kwargs.pop("query")
    with pytest.raises(InvalidInputError) as info:
        mem.search(query, user_id=uid, **kwargs)
    assert info.value.field == field


def test_bad_context_budget(mem: Memory, uid: str) -> None:
    for bad in (0, -5, "100", 2.5, True):
        with pytest.raises(InvalidInputError, match="token_budget"):
            mem.context("anything", user_id=uid, token_budget=bad)  # type: ignore[arg-type]


def test_update_needs_something(mem: Memory, uid: str) -> None:
    mid = mem.add("x y", user_id=uid, infer=False)["results"][0]["id"]
    with pytest.raises(InvalidInputError, match="text"):
        mem.update(mid, user_id=uid)
    with pytest.raises(InvalidInputError, match="memory_id"):
        mem.get("", user_id=uid)


def test_unknown_store_scheme_and_embedder() -> None:
    from memstrata import ConfigurationError

    with pytest.raises(ConfigurationError, match="scheme"):
        Memory("mongodb://x", embedder="hash")
    with pytest.raises(ConfigurationError, match="embedder"):
        Memory("sqlite://:memory:", embedder="word2vec")


def test_epoch_out_of_range_is_refused(mem: Memory, uid: str) -> None:
    with pytest.raises(InvalidInputError, match="supported years"):
        mem.add("hello there", user_id=uid, timestamp=1e18)
