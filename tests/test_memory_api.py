"""The public Memory API on the embedded store: shapes, CRUD, history, filters, pagination, time."""

from __future__ import annotations

import uuid

import pytest

from memstrata import InvalidInputError, Memory, NotFoundError, ScopeError


def _add(mem: Memory, uid: str, *texts: str, **kw):  # type: ignore[no-untyped-def]
    return mem.add([{"role": "user", "content": t} for t in texts], user_id=uid, infer=False, **kw)


def test_add_returns_mem0_shape_and_uuid_ids(mem: Memory, uid: str) -> None:
    r = _add(mem, uid, "I like green tea", "My dog is called Rex")
    assert [x["event"] for x in r["results"]] == ["ADD", "ADD"]
    assert [x["memory"] for x in r["results"]] == ["I like green tea", "My dog is called Rex"]
    for x in r["results"]:
        assert uuid.UUID(x["id"]).version == 4
    assert len(r["episodes"]) == 2


def test_infer_false_stores_each_message_verbatim_including_assistant(mem: Memory, uid: str) -> None:
    r = mem.add(
        [
            {"role": "user", "content": "hi there"},
            {"role": "assistant", "content": "Hello! How can I help?"},
            {"role": "system", "content": "you are a bot"},
        ],
        user_id=uid,
        infer=False,
    )
    assert [x["memory"] for x in r["results"]] == ["hi there", "Hello! How can I help?"]
    assert mem.get(r["results"][1]["id"], user_id=uid)["source"]["role"] == "assistant"


def test_search_result_fields(mem: Memory, uid: str) -> None:
    _add(mem, uid, "I like green tea", metadata={"topic": "food"})
    res = mem.search("green tea", user_id=uid)["results"]
    assert res and res[0]["memory"] == "I like green tea"
    for key in ("id", "memory", "score", "created_at", "updated_at", "user_id", "metadata", "episode_ids"):
        assert key in res[0]
    assert res[0]["user_id"] == uid and res[0]["metadata"] == {"topic": "food"}


def test_get_update_history_delete(mem: Memory, uid: str) -> None:
    mid = _add(mem, uid, "I work at Acme")["results"][0]["id"]
    assert mem.get(mid, user_id=uid)["memory"] == "I work at Acme"
    mem.update(mid, text="I work at Globex", metadata={"source": "correction"}, user_id=uid)
    got = mem.get(mid, user_id=uid)
    assert got["memory"] == "I work at Globex" and got["metadata"] == {"source": "correction"}
    assert mem.search("Globex", user_id=uid)["results"][0]["id"] == mid
    assert mem.search("Acme", user_id=uid, preset="balanced")["results"][0]["memory"] != "I work at Acme"
    mem.delete(mid, user_id=uid)
    with pytest.raises(NotFoundError):
        mem.get(mid, user_id=uid)
    events = [e["event"] for e in mem.history(mid, user_id=uid)]
    assert events == ["ADD", "UPDATE", "DELETE"]
    assert mem.history(mid, user_id=uid)[1]["old_memory"] == "I work at Acme"


def test_not_found_is_a_key_error(mem: Memory, uid: str) -> None:
    with pytest.raises(KeyError):
        mem.get(str(uuid.uuid4()), user_id=uid)


def test_metadata_round_trip_and_filters(mem: Memory, uid: str) -> None:
    _add(mem, uid, "Trip to Rome in May", metadata={"topic": "travel", "year": 2025})
    _add(mem, uid, "Trip to Oslo in winter", metadata={"topic": "travel", "year": 2026})
    _add(mem, uid, "Bought a red bike", metadata={"topic": "shopping", "year": 2026})
    got = mem.get_all(user_id=uid, filters={"topic": "travel"})["results"]
    assert sorted(x["memory"] for x in got) == ["Trip to Oslo in winter", "Trip to Rome in May"]
    got = mem.get_all(user_id=uid, filters={"topic": {"in": ["shopping"]}, "year": {"gte": 2026}})["results"]
    assert [x["memory"] for x in got] == ["Bought a red bike"]
    found = [x["memory"] for x in mem.search("trip", user_id=uid, filters={"year": 2026})["results"]]
    assert found[0] == "Trip to Oslo in winter" and "Trip to Rome in May" not in found
    with pytest.raises(InvalidInputError, match="filters.topic"):
        mem.get_all(user_id=uid, filters={"topic": {"like": "x"}})


def test_timestamp_backfill_and_time_range_filter(mem: Memory, uid: str) -> None:
    _add(mem, uid, "Old news from 2023", timestamp="2023-05-20T10:00:00Z")
    _add(mem, uid, "Fresh news", timestamp="2026-03-01T10:00:00Z")
    old = mem.get_all(user_id=uid, filters={"created_at": {"lt": "2024-01-01"}})["results"]
    assert [x["memory"] for x in old] == ["Old news from 2023"]
    assert old[0]["created_at"].startswith("2023-05-20") and old[0]["valid_from"].startswith("2023-05-20")


def test_get_all_cursor_pagination_visits_everything_once(mem: Memory, uid: str) -> None:
    texts = [f"fact number {i}" for i in range(23)]
    for i, t in enumerate(texts):
        _add(mem, uid, t, timestamp=f"2026-01-01T00:00:{i:02d}Z")
    seen, cursor, pages = [], None, 0
    while True:
        page = mem.get_all(user_id=uid, limit=5, cursor=cursor)
        seen += [x["memory"] for x in page["results"]]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == texts and pages == 5
    with pytest.raises(InvalidInputError, match="cursor"):
        mem.get_all(user_id=uid, cursor="not-a-cursor!!")


def test_exact_duplicate_merges_instead_of_copying(mem: Memory, uid: str) -> None:
    first = _add(mem, uid, "I drink my coffee black")["results"][0]
    again = _add(mem, uid, "I drink my coffee  BLACK")["results"][0]
    assert again["event"] == "MERGE" and again["id"] == first["id"]
    rec = mem.get(first["id"], user_id=uid)
    assert rec["mention_count"] == 2 and len(rec["episode_ids"]) == 2
    assert len(mem.get_all(user_id=uid)["results"]) == 1


def test_delete_all_and_reset(mem: Memory, uid: str) -> None:
    _add(mem, uid, "one", "two")
    _add(mem, "someone-else", "three")
    r = mem.delete_all(user_id=uid)
    assert r["deleted"]["memories"] == 2 and r["deleted"]["episodes"] == 2
    assert mem.get_all(user_id=uid)["results"] == []
    assert len(mem.get_all(user_id="someone-else")["results"]) == 1
    mem.reset()
    assert mem.get_all(user_id="someone-else")["results"] == []


def test_scope_ids_are_validated(mem: Memory) -> None:
    with pytest.raises(ScopeError, match="at least one"):
        mem.add("hello", infer=False)
    for bad, msg in (
        ("", "empty"),
        ("  ", "blank"),
        (" a", "whitespace"),
        ("x" * 129, "limit"),
        (5, "string"),
        ("a\nb", "control"),
    ):
        with pytest.raises(ScopeError, match=msg):
            mem.search("hello", user_id=bad)  # type: ignore[arg-type]
    with pytest.raises(ScopeError, match="conversation_id"):
        mem.add("hello", user_id="u", conversation_id="", infer=False)


def test_metadata_cannot_override_scope(mem: Memory, uid: str) -> None:
    mid = _add(mem, uid, "secret plan", metadata={"user_id": "mallory", "org_id": "evil"})["results"][0]["id"]
    rec = mem.get(mid, user_id=uid)
    assert rec["user_id"] == uid and rec["org_id"] == "default"
    assert rec["metadata"] == {"user_id": "mallory", "org_id": "evil"}
    assert mem.get_all(user_id="mallory")["results"] == []
    with pytest.raises(InvalidInputError, match="scope ids are arguments"):
        mem.get_all(user_id=uid, filters={"user_id": "mallory"})


def test_bound_default_scope(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with Memory(f"sqlite:///{tmp_path / 'm.db'}", embedder="hash", user_id="alice") as m:
        mid = m.add("I like jazz", infer=False)["results"][0]["id"]
        assert m.get(mid)["user_id"] == "alice"
        with pytest.raises(NotFoundError):
            m.get(mid, user_id="bob")


def test_store_url_forms(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from memstrata.config import parse_store_url
    from memstrata.errors import ConfigurationError

    assert parse_store_url("sqlite:///tmp/a.db").path == "/tmp/a.db"
    assert parse_store_url("sqlite:////tmp/a.db").path == "/tmp/a.db"
    assert parse_store_url("sqlite://:memory:").path == ":memory:"
    assert (
        parse_store_url("sqlite:///~/x.db").path.endswith("/x.db")
        and "~" not in parse_store_url("sqlite:///~/x.db").path
    )
    with pytest.raises(ConfigurationError, match="unknown scheme"):
        parse_store_url("mysql://x")
    monkeypatch.setenv("MEMSTRATA_STORE", f"sqlite:///{tmp_path / 'env.db'}")
    with Memory(embedder="hash") as m:
        m.add("from env", user_id="u", infer=False)
    assert (tmp_path / "env.db").exists()


def test_context_manager_closes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from memstrata import MemstrataError

    with Memory(f"sqlite:///{tmp_path / 'm.db'}", embedder="hash") as m:
        m.add("x y z", user_id="u", infer=False)
    with pytest.raises(MemstrataError, match="closed"):
        m.search("x", user_id="u")


def test_data_survives_reopen(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'm.db'}"
    with Memory(url, embedder="hash") as m:
        mid = m.add("persist me", user_id="u", infer=False)["results"][0]["id"]
    with Memory(url, embedder="hash") as m:
        assert m.get(mid, user_id="u")["memory"] == "persist me"
        assert m.search("persist", user_id="u")["results"][0]["id"] == mid


def test_wrong_embedder_dimension_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from memstrata import ConfigurationError, HashEmbedder

    url = f"sqlite:///{tmp_path / 'm.db'}"
    with Memory(url, embedder=HashEmbedder(64)) as m:
        m.add("x", user_id="u", infer=False)
    with pytest.raises(ConfigurationError, match="64-dimensional"):
        Memory(url, embedder=HashEmbedder(32))


def test_a_short_reply_is_never_read_as_answering_a_system_turn(mem: Memory, uid: str) -> None:
    mem.add([{"role": "system", "content": "conversation cleared"}], user_id=uid, conversation_id="c")
    mem.add([{"role": "user", "content": "Hello again."}], user_id=uid, conversation_id="c")
    texts = [r["memory"] for r in mem.get_all(user_id=uid)["results"]]
    assert texts == ["Hello again."]
