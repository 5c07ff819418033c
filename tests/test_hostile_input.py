"""Inputs an attacker (or an unlucky client) sends: each gets a clear 4xx / InvalidInputError, never a 500, a
crash, or a record that poisons later reads."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from memstrata import Memory
from memstrata.errors import InvalidInputError
from memstrata.privacy.access import create_key
from memstrata.secure import secure_memory
from memstrata.server import create_app


def nested(depth: int) -> dict[str, Any]:
    return functools.reduce(lambda inner, _: {"a": inner}, range(depth), {})


@pytest.fixture
def lib(tmp_path: Path) -> Iterator[Memory]:
    with Memory(f"sqlite:///{tmp_path}/m.db", embedder="hash") as m:
        yield m


@pytest.fixture
def audited(tmp_path: Path) -> Iterator[Any]:
    m = secure_memory(f"sqlite:///{tmp_path}/s.db", embedder="hash", encrypt=False)
    yield m
    m.close()


@pytest.fixture
def client(audited: Any) -> Iterator[TestClient]:
    with TestClient(create_app(audited, rate_limit=None), base_url="http://127.0.0.1") as c:
        yield c


def h(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}


@pytest.mark.parametrize("metadata", [{"k": "\ud800"}, {"\udfff": 1}, {"list": ["ok", {"deep": "\ud83d"}]}])
def test_lone_surrogates_in_metadata_are_refused(lib: Memory, metadata: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError) as err:
        lib.add("I like green tea", user_id="u", metadata=metadata)
    assert err.value.field == "metadata" and "surrogate" in str(err.value)
    assert lib.get_all(user_id="u")["results"] == []


def test_deeply_nested_metadata_is_invalid_input_not_a_recursion_error(lib: Memory) -> None:
    with pytest.raises(InvalidInputError) as err:
        lib.add("I like green tea", user_id="u", metadata=nested(5000))
    assert err.value.field == "metadata" and "deep" in str(err.value)
    lib.add("I like green tea", user_id="u", metadata=nested(10))  # modest nesting stays fine
    assert len(lib.get_all(user_id="u")["results"]) == 1


@pytest.mark.parametrize("query", ["\ud800", "tea \udc00"])
def test_search_query_with_a_lone_surrogate_is_invalid_input(lib: Memory, query: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        lib.search(query, user_id="u")
    assert err.value.field == "query"
    with pytest.raises(InvalidInputError):
        lib.context(query, user_id="u")


@pytest.mark.parametrize("stamp", ["31/12/2020", "12/11/2020", "2020-13-40"])
def test_ambiguous_or_impossible_timestamps_are_refused(lib: Memory, stamp: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        lib.add("I like green tea", user_id="u", timestamp=stamp)
    assert err.value.field == "timestamp"
    lib.add("I like green tea", user_id="u", timestamp="May 20, 2023")  # a named month is unambiguous


def test_negative_recent_turns_is_refused(lib: Memory) -> None:
    lib.add("I like green tea", user_id="u", conversation_id="c")
    for bad in (-1, -100, True, "3"):
        with pytest.raises(InvalidInputError) as err:
            lib.context("tea", user_id="u", conversation_id="c", recent_turns=bad)  # type: ignore[arg-type]
        assert err.value.field == "recent_turns"
    assert lib.context("tea", user_id="u", conversation_id="c", recent_turns=0)["short_term"] == []


def test_scoped_stats_do_not_reveal_the_store(lib: Memory) -> None:
    lib.add("I like green tea", user_id="u")
    scoped = lib.stats(user_id="u")
    assert scoped["memories"] == 1
    assert not {"path", "url", "file_bytes", "database_bytes", "vector_cache_bytes"} & scoped.keys()
    assert "path" in lib.stats()  # the operator's whole-store view keeps them


# -- REST ---------------------------------------------------------------------------------------------------


def test_surrogate_metadata_over_rest_is_422_and_reads_stay_healthy(client: TestClient, audited: Any) -> None:
    key = create_key(audited, None, "read,write", user_ids=["alice"])[0]
    r = client.post("/v1/memories", headers=h(key), json={"messages": "I like green tea"})
    assert r.status_code == 201, r.text
    for raw in ('{"messages": "I drink coffee", "metadata": {"k": "\\ud800"}}',
                '{"messages": "I drink coffee", "metadata": {"\\ud800": "v"}}'):
        r = client.post("/v1/memories", headers=h(key), content=raw.encode())
        assert r.status_code == 422, r.text
        assert r.json()["field"] == "metadata"
    assert client.get("/v1/memories", headers=h(key)).status_code == 200
    r = client.post("/v1/memories/search", headers=h(key), json={"query": "tea"})
    assert r.status_code == 200 and len(r.json()["results"]) == 1
    r = client.post("/v1/memories/search", headers=h(key), content=b'{"query": "\\ud800"}')
    assert r.status_code == 422 and r.json()["field"] == "query", r.text
    r = client.post("/v1/memories", headers=h(key), content=b'{"messages": "x", "metadata": ' + b'{"a": ' * 5000
                    + b"1" + b"}" * 5001)
    assert r.status_code in (400, 422), r.text


def test_verify_audit_with_a_user_bound_admin_key_is_refused_cleanly(client: TestClient, audited: Any) -> None:
    bound = create_key(audited, None, "admin", user_ids=["alice"])[0]
    org = create_key(audited, None, "admin")[0]
    r = client.get("/v1/audit/verify", headers=h(bound))
    assert r.status_code == 403, r.text
    assert "whole store" in r.json()["detail"]
    r = client.get("/v1/audit/verify", headers=h(org))
    assert r.status_code == 200 and r.json()["ok"] is True
    assert client.get("/v1/audit", headers=h(bound)).status_code == 200  # the user's own entries stay readable


@pytest.mark.parametrize("query", ["limit=-1", "limit=0", "limit=100000", "after=-5"])
def test_audit_paging_refuses_out_of_range_values(client: TestClient, audited: Any, query: str) -> None:
    org = create_key(audited, None, "admin")[0]
    r = client.get(f"/v1/audit?{query}", headers=h(org))
    assert r.status_code == 422, r.text
    assert r.json()["field"] in ("limit", "after")


def test_a_utf16_body_is_400(client: TestClient, audited: Any) -> None:
    key = create_key(audited, None, "read,write", user_ids=["alice"])[0]
    for body in ('{"messages": "I like tea"}'.encode("utf-16"), '{"query": "tea"}'.encode("utf-16-le")):
        r = client.post("/v1/memories", headers=h(key), content=body)
        assert r.status_code == 400, r.text
        assert "UTF-8" in r.json()["detail"]
    assert client.get("/v1/memories", headers=h(key)).json()["results"] == []


def test_stats_for_a_user_bound_key_show_only_that_scope(client: TestClient, audited: Any) -> None:
    key = create_key(audited, None, "read,write", user_ids=["alice"])[0]
    client.post("/v1/memories", headers=h(key), json={"messages": "I like green tea"})
    body = client.get("/v1/stats", headers=h(key)).json()
    assert body["memories"] == 1
    assert not {"path", "url", "file_bytes", "database_bytes", "vector_cache_bytes", "scopes"} & body.keys(), body


def test_negative_recent_turns_over_rest_is_422(client: TestClient, audited: Any) -> None:
    key = create_key(audited, None, "read,write", user_ids=["alice"])[0]
    r = client.post("/v1/memories/context", headers=h(key),
                    json={"query": "tea", "conversation_id": "c", "recent_turns": -3})
    assert r.status_code == 422, r.text


def test_recency_of_use_follows_the_searches_now_not_the_wall_clock(lib: Memory) -> None:
    """A replayed or backfilled history (searched with ``now=`` in the past) gets the boost its own timeline
    earns: use is stamped at the search's ``now``, and times after ``now`` count for nothing."""
    lib.add("I keep bees in the garden", user_id="u", timestamp="2020-01-01T00:00:00Z", infer=False)

    def recency(now: str) -> float:
        hits = lib.search("bees garden", user_id="u", now=now, explain=True)["results"]
        assert len(hits) == 1
        return float(hits[0]["stages"]["recency"])

    first = recency("2020-07-01T00:00:00Z")  # six months after the fact, never used before
    assert first < 0.9, first
    lib.flush_usage()
    later = recency("2020-12-01T00:00:00Z")  # five months after that use
    lib.flush_usage()
    assert later < 0.9, later
    assert recency("2020-12-02T00:00:00Z") > 0.9  # a day after the last use in this timeline


@pytest.mark.parametrize(("call", "field"), [
    (lambda m: m.search("tea", user_id="u", filters={"k": "\ud800"}), "filters.k.eq"),
    (lambda m: m.search("tea", user_id="u", filters={"k": {"in": ["a", "\udfff"]}}), "filters.k.in"),
    (lambda m: m.add("I like tea", user_id="\ud800"), "user_id"),
    (lambda m: m.add("I like tea", user_id="u", conversation_id="c\ud800"), "conversation_id"),
    (lambda m: m.add([{"role": "user", "content": "I like tea", "name": "\ud800"}], user_id="u"),
     "messages[0].name"),
])
def test_lone_surrogates_anywhere_are_input_errors(lib: Memory, call: Any, field: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        call(lib)
    assert err.value.field == field
