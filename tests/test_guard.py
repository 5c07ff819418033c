"""The typed guard on real SQLite: every Memory method has an access rule, the calls a key could not make
before (store-wide ``reset`` and ``import_user``) need an unrestricted admin, ``scopes`` keeps to the key's
bindings, and guards stack (a key over an audited memory records the key as the actor)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path

import pytest

from memstrata import AccessDeniedError, Memory
from memstrata.guard import Guard
from memstrata.privacy.access import (
    BY_ID_METHODS,
    FREE_METHODS,
    ORG_METHODS,
    SCOPED_METHODS,
    STORE_METHODS,
    USER_METHODS,
    Principal,
    authenticate,
    create_key,
)
from memstrata.secure import AuditedMemory, SecuredMemory


@pytest.fixture
def mem(tmp_path: Path) -> Iterator[Memory]:
    with Memory(f"sqlite:///{tmp_path / 'g.db'}", embedder="hash") as m:
        yield m


def _keyed(mem: Memory | Guard, scopes: str, **binding: object) -> SecuredMemory:
    base = mem.base if isinstance(mem, Guard) else mem
    key, _ = create_key(base, binding.pop("org_id", "acme"), scopes, **binding)  # type: ignore[arg-type]
    return SecuredMemory(mem, authenticate(base, key))


def test_every_public_memory_method_has_an_access_rule() -> None:
    public = {n for klass in Memory.__mro__[:-1] for n, f in vars(klass).items()
              if not n.startswith("_") and inspect.isfunction(f)}
    ruled = set(SCOPED_METHODS) | set(USER_METHODS) | set(ORG_METHODS) | set(STORE_METHODS) | FREE_METHODS
    assert public == ruled | {"stats", "scopes"}
    assert BY_ID_METHODS <= set(SCOPED_METHODS)


def test_store_wide_calls_need_an_unrestricted_admin(mem: Memory) -> None:
    mem.add("I keep bees", user_id="alice", org_id="acme", infer=False)
    admin = _keyed(mem, "admin")
    with pytest.raises(AccessDeniedError, match="store-wide"):
        admin.reset()
    with pytest.raises(AccessDeniedError, match="store-wide"):
        admin.import_user({"user_id": "bob"}, user_id="bob")
    assert len(mem.get_all(user_id="alice", org_id="acme")["results"]) == 1
    SecuredMemory(mem, Principal.local()).reset()
    assert mem.get_all(user_id="alice", org_id="acme")["results"] == []


def test_scopes_keep_to_the_keys_bindings(mem: Memory) -> None:
    for user in ("alice", "bob"):
        mem.add(f"{user} keeps bees", user_id=user, org_id="acme", infer=False)
    alice = _keyed(mem, "read", user_ids=["alice"])
    assert [s["user_id"] for s in alice.scopes()["results"]] == ["alice"]
    assert [s["user_id"] for s in alice.scopes(user_ids=["alice"])["results"]] == ["alice"]
    with pytest.raises(AccessDeniedError, match="'bob'"):
        alice.scopes(user_ids=["bob"])
    with pytest.raises(AccessDeniedError):
        alice.scopes(org_id="other")
    org = _keyed(mem, "read")
    assert sorted(s["user_id"] for s in org.scopes()["results"]) == ["alice", "bob"]
    assert [s["user_id"] for s in org.scopes(user_ids=["bob"])["results"]] == ["bob"]


def test_a_key_over_an_audited_memory_is_the_recorded_actor(mem: Memory) -> None:
    audited = AuditedMemory(mem, "server")
    keyed = _keyed(audited, "read,write", user_ids=["alice"])
    assert isinstance(keyed.memory, AuditedMemory) and keyed.base is mem
    added = keyed.add("I moved to Lisbon", infer=False)  # the bound user fills the scope
    mid = added["results"][0]["id"]
    assert keyed.get(mid)["memory"] == "I moved to Lisbon"  # by id, no scope named
    with pytest.raises(AccessDeniedError):
        keyed.add("not mine", user_id="bob")
    log = audited.audit_log(org_id="acme")
    assert [(e["operation"], e["actor"]) for e in log[-2:]] == [("add", keyed.principal.key_id),
                                                                ("get", keyed.principal.key_id)]
    assert log[-1]["memory_ids"] == [mid] and log[-1]["scope"]["user_id"] == "alice"


def test_a_failed_audited_call_is_recorded_with_its_error(mem: Memory) -> None:
    audited = AuditedMemory(mem, "tester")
    with pytest.raises(KeyError):
        audited.get("no-such-id", user_id="alice")
    (entry,) = audited.audit_log()  # (the read of the log is recorded after it reads)
    assert (entry["operation"], entry["details"]) == ("get", {"error": "NotFoundError"})
