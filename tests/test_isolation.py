"""No read or write crosses a scope: two users with the same text, and every id-based call from the wrong scope."""

from __future__ import annotations

import pytest

from memstrata import Memory, NotFoundError


def test_same_text_two_users_each_sees_only_their_own(mem: Memory) -> None:
    a = mem.add("My PIN is 1234", user_id="alice", infer=False)["results"][0]["id"]
    b = mem.add("My PIN is 1234", user_id="bob", infer=False)["results"][0]["id"]
    assert a != b  # no dedup across scopes
    for user, own in (("alice", a), ("bob", b)):
        assert [x["id"] for x in mem.search("PIN", user_id=user)["results"]] == [own]
        assert [x["id"] for x in mem.get_all(user_id=user)["results"]] == [own]
        assert [x["id"] for x in mem.context("PIN", user_id=user)["items"]] == [own]


def test_id_based_calls_from_another_scope_fail(mem: Memory) -> None:
    mid = mem.add("Alice's diary entry", user_id="alice", infer=False)["results"][0]["id"]
    for call in (
        lambda: mem.get(mid, user_id="bob"),
        lambda: mem.update(mid, text="hijacked", user_id="bob"),
        lambda: mem.delete(mid, user_id="bob"),
        lambda: mem.history(mid, user_id="bob"),
        lambda: mem.get(mid, user_id="alice", org_id="other-org"),
        lambda: mem.get(mid, user_id="alice", agent_id="bot"),
    ):
        with pytest.raises(NotFoundError):
            call()
    assert mem.get(mid, user_id="alice")["memory"] == "Alice's diary entry"


def test_scope_is_the_exact_combination(mem: Memory) -> None:
    mem.add("agent-private note", user_id="alice", agent_id="planner", infer=False)
    mem.add("user-level note", user_id="alice", infer=False)
    assert [x["memory"] for x in mem.get_all(user_id="alice")["results"]] == ["user-level note"]
    assert [x["memory"] for x in mem.get_all(user_id="alice", agent_id="planner")["results"]] == ["agent-private note"]
    assert mem.get_all(agent_id="planner")["results"] == []


def test_delete_all_of_one_scope_leaves_others(mem: Memory) -> None:
    mem.add("alpha", user_id="alice", infer=False)
    mem.add("alpha", user_id="alice", run_id="r1", infer=False)
    mem.delete_all(user_id="alice")
    assert mem.get_all(user_id="alice")["results"] == []
    assert len(mem.get_all(user_id="alice", run_id="r1")["results"]) == 1


def test_scope_keys_cannot_collide_through_separators(mem: Memory) -> None:
    mem.add("first", user_id="a|b", agent_id="c", infer=False)
    mem.add("second", user_id="a", agent_id="b|c", infer=False)
    assert [x["memory"] for x in mem.get_all(user_id="a|b", agent_id="c")["results"]] == ["first"]
    assert [x["memory"] for x in mem.get_all(user_id="a", agent_id="b|c")["results"]] == ["second"]


def test_keyword_and_episode_search_stay_in_scope(mem: Memory) -> None:
    mem.add("zanzibar holiday plans", user_id="alice", infer=False)
    assert mem.search("zanzibar", user_id="bob")["results"] == []
    assert mem.episodes(user_id="bob", query="zanzibar")["results"] == []
    assert len(mem.episodes(user_id="alice", query="zanzibar")["results"]) == 1
