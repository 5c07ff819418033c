"""By-id calls with the id alone (as in Mem0): the store finds the scope that holds a memory id, on SQLite and
PostgreSQL, while keyed faces (SecuredMemory, REST) still hold a key to its bindings."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from memstrata import AccessDeniedError, AsyncMemory, InvalidInputError, Memory, NotFoundError
from memstrata.models import Scope
from memstrata.privacy.access import Principal, authenticate, create_key
from memstrata.secure import AuditedMemory, SecuredMemory
from memstrata.server import create_app


def _one(mem: Memory, text: str, **scope: str) -> str:
    return str(mem.add(text, infer=False, **scope)["results"][0]["id"])


def test_store_finds_the_scope_of_a_memory_id(mem: Memory) -> None:
    a = _one(mem, "Alice drinks green tea.", user_id="alice", agent_id="planner")
    b = _one(mem, "Bob drinks coffee.", user_id="bob", org_id="acme")
    assert mem.store.scope_of_memory(a) == Scope.of(user_id="alice", agent_id="planner")
    assert mem.store.scope_of_memory(b) == Scope.of(user_id="bob", org_id="acme")
    assert mem.store.scope_of_memory("no-such-id") is None
    mem.delete(b, user_id="bob", org_id="acme")
    # Deleted, its history is kept; the history still names the scope, so history(id) works by id alone.
    assert mem.store.scope_of_memory(b) == Scope.of(user_id="bob", org_id="acme")


def test_scope_keys_parse_back() -> None:
    for scope in (Scope.of(user_id="a|b:3"), Scope.of(agent_id="-", run_id="7:x", org_id="o"),
                  Scope.of(user_id="ünï", agent_id="a" * 128)):
        assert Scope.from_key(scope.key) == scope
    for bad in ("", "7:default", "7:default---x", "x:default---", "-" * 4, "7:default-1:a--extra"):
        with pytest.raises(InvalidInputError):
            Scope.from_key(bad)


def test_get_update_history_delete_take_the_id_alone(mem: Memory) -> None:
    mid = _one(mem, "I moved to Lisbon.", user_id="alice", agent_id="planner", run_id="r1")
    _one(mem, "I moved to Berlin.", user_id="bob")
    got = mem.get(mid)
    assert (got["memory"], got["user_id"], got["agent_id"], got["run_id"]) == (
        "I moved to Lisbon.", "alice", "planner", "r1")
    assert mem.update(mid, "I moved to Porto.")["previous_memory"] == "I moved to Lisbon."
    assert mem.get(mid)["memory"] == "I moved to Porto."
    assert mem.delete(mid)["event"] == "DELETE"
    assert [e["event"] for e in mem.history(mid)] == ["ADD", "UPDATE", "DELETE"]
    with pytest.raises(NotFoundError):
        mem.get(mid)
    with pytest.raises(NotFoundError):
        mem.get("no-such-id")
    with pytest.raises(InvalidInputError, match="memory_id"):
        mem.get("  ")
    # bob's memory was not touched by any of it
    assert [m["memory"] for m in mem.get_all(user_id="bob")["results"]] == ["I moved to Berlin."]


def test_a_named_scope_or_org_still_bounds_a_by_id_call(mem: Memory) -> None:
    mid = _one(mem, "Bob's door code is 4411.", user_id="bob", org_id="acme")
    for kwargs in ({"user_id": "alice"}, {"user_id": "bob"}, {"org_id": "other"}):
        with pytest.raises(NotFoundError):
            mem.get(mid, **kwargs)
    assert mem.get(mid, org_id="acme")["user_id"] == "bob"
    bound = Memory(mem.store, embedder="hash", user_id="alice")  # a Memory bound to alice stays in alice
    with pytest.raises(NotFoundError):
        bound.get(mid)
    with pytest.raises(NotFoundError):
        bound.delete(mid)
    assert mem.get(mid, user_id="bob", org_id="acme")["memory"] == "Bob's door code is 4411."


async def test_async_memory_by_id(tmp_path: Path) -> None:
    async with AsyncMemory(f"sqlite:///{tmp_path}/a.db", embedder="hash") as am:
        mid = (await am.add("I play the cello.", user_id="carol", infer=False))["results"][0]["id"]
        assert (await am.get(mid))["user_id"] == "carol"
        await am.update(mid, metadata={"topic": "music"})
        assert [e["event"] for e in await am.history(mid)] == ["ADD", "UPDATE"]
        await am.delete(mid)
        with pytest.raises(NotFoundError):
            await am.get(mid)


def _keyed(mem: Memory, scopes: str, **binding: object) -> SecuredMemory:
    key, _ = create_key(mem, binding.pop("org_id", None), scopes, **binding)  # type: ignore[arg-type]
    return SecuredMemory(mem, authenticate(mem, key))


def test_a_key_bound_to_alice_cannot_reach_bobs_memory_by_id(mem: Memory) -> None:
    alice_id = _one(mem, "Alice likes jazz.", user_id="alice")
    bob_id = _one(mem, "Bob's PIN is 9876.", user_id="bob")
    for key in (_keyed(mem, "read,write", user_ids=["alice"]),
                _keyed(mem, "read,write", user_ids=["alice", "carol"])):
        assert key.get(alice_id)["memory"] == "Alice likes jazz."
        for call in (key.get, key.history, key.delete, functools.partial(key.update, text="hijacked")):
            with pytest.raises(NotFoundError):
                call(bob_id)
        with pytest.raises(AccessDeniedError):
            key.get(bob_id, user_id="bob")
    # A key bound to a user covers every agent and run of that user, by id too.
    planner_id = _one(mem, "Alice's trip is in May.", user_id="alice", agent_id="planner")
    assert _keyed(mem, "read", user_ids=["alice"]).get(planner_id)["agent_id"] == "planner"
    with pytest.raises(NotFoundError):
        _keyed(mem, "read", user_ids=["alice"], agent_ids=["booker"]).get(planner_id)
    assert mem.get(bob_id)["memory"] == "Bob's PIN is 9876."  # neither read nor changed
    assert [e["event"] for e in mem.history(bob_id)] == ["ADD"]


def test_keys_by_org_and_by_operation(mem: Memory) -> None:
    mine = _one(mem, "Acme ships on Fridays.", user_id="dan", org_id="acme")
    theirs = _one(mem, "Globex ships on Mondays.", user_id="erin", org_id="globex")
    acme = _keyed(mem, "read,write", org_id="acme")
    assert acme.get(mine)["org_id"] == "acme"
    with pytest.raises(NotFoundError):
        acme.get(theirs)
    reader = _keyed(mem, "read", org_id="acme")
    assert reader.history(mine)[0]["event"] == "ADD"
    with pytest.raises(AccessDeniedError, match="'write'"):
        reader.delete(mine)
    default_org_admin = _keyed(mem, "admin")  # keys always belong to an org ("default" here)
    with pytest.raises(NotFoundError):
        default_org_admin.get(theirs)
    local = SecuredMemory(mem, Principal.local())  # a face without auth reaches any scope by id
    assert local.get(theirs)["user_id"] == "erin"


def test_audited_by_id_call_records_the_resolved_scope(mem: Memory) -> None:
    mid = _one(mem, "Frank reads sci-fi.", user_id="frank")
    audited = AuditedMemory(mem, "tester")
    audited.get(mid)
    last = audited.audit_log(user_id="frank")
    assert any(r["operation"] == "get" and r["memory_ids"] == [mid] for r in last)


def test_rest_key_bound_to_alice_gets_404_for_bobs_id(tmp_path: Path) -> None:
    with Memory(f"sqlite:///{tmp_path}/m.db", embedder="hash") as mem:
        bob_id = _one(mem, "Bob's PIN is 9876.", user_id="bob")
        alice = create_key(mem, None, "read,write", user_ids=["alice"])[0]
        admin = create_key(mem, None, "admin")[0]
        with TestClient(create_app(mem, rate_limit=None), base_url="http://127.0.0.1") as client:
            for method, path in (("GET", ""), ("GET", "/history"), ("DELETE", "")):
                r = client.request(method, f"/v1/memories/{bob_id}{path}", headers={"X-API-Key": alice})
                assert r.status_code == 404, r.text
            r = client.patch(f"/v1/memories/{bob_id}", json={"text": "x"}, headers={"X-API-Key": alice})
            assert r.status_code == 404
            r = client.get(f"/v1/memories/{bob_id}", headers={"X-API-Key": admin})
            assert r.status_code == 200 and r.json()["user_id"] == "bob"
        assert mem.get(bob_id)["memory"] == "Bob's PIN is 9876."
