"""Access control in the library layer: keys, principals and SecuredMemory, the rules every face shares, on
SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from memstrata import AccessDeniedError, InvalidInputError, Memory, NotFoundError
from memstrata.models import Scope
from memstrata.privacy.access import (
    Principal,
    authenticate,
    create_key,
    hash_key,
    list_keys,
    revoke_key,
)
from memstrata.secure import SecuredMemory
from privacy_backends import PRIVACY_BACKENDS, RawStore, raw_store


@pytest.fixture(params=PRIVACY_BACKENDS)
def raw(request: pytest.FixtureRequest, tmp_path: Path) -> RawStore:
    return raw_store(request, tmp_path)


@pytest.fixture
def mem(raw: RawStore) -> Iterator[Memory]:
    m = Memory(raw.url, embedder="hash")
    yield m
    m.close()


def secured(mem: Memory, scopes: str, **binding) -> SecuredMemory:  # type: ignore[no-untyped-def]
    key, _ = create_key(mem, binding.pop("org_id", None), scopes, **binding)
    return SecuredMemory(mem, authenticate(mem, key))


def test_key_format_and_hash_only_storage(mem: Memory, raw: RawStore) -> None:
    key, info = create_key(mem, "acme", ["read", "write"], user_ids=["alice"], name="ci")
    assert key.startswith("ms_") and len(key) > 40
    assert info.prefix == key[:11] and info.scopes == ("read", "write") and info.user_ids == ("alice",)
    mem.close()
    stored = raw.stored_bytes()  # lower-cased
    assert key.lower().encode() not in stored
    assert key[11:].lower().encode() not in stored
    assert hash_key(key).encode() in stored
    assert raw.sql("SELECT key_hash, prefix FROM api_keys") == [(hash_key(key), key[:11])]


def test_authenticate_roundtrip_and_failures(mem: Memory) -> None:
    key, info = create_key(mem, None, "read")
    p = authenticate(mem, key)
    assert (p.key_id, p.org_id, p.scopes) == (info.id, "default", frozenset({"read"}))
    for bad in ("", "ms_nope", key + "x", "Bearer " + key, None, 42, "ms_" + "a" * 500):
        with pytest.raises(AccessDeniedError):
            authenticate(mem, bad)
    assert list_keys(mem)[0].last_used_at is not None


def test_pepper_changes_the_hash(mem: Memory) -> None:
    key, _ = create_key(mem, None, "read", pepper="server-secret")
    assert authenticate(mem, key, pepper="server-secret").scopes == {"read"}
    with pytest.raises(AccessDeniedError):
        authenticate(mem, key)


def test_a_key_revoked_through_one_store_object_is_refused_by_another(mem: Memory, raw: RawStore) -> None:
    other = Memory(raw.url, embedder="hash")  # another process (its own connection pool) on the same store
    try:
        key, info = create_key(mem, "acme", "read,write", user_ids=["alice"])
        p = authenticate(other, key)
        assert (p.key_id, p.org_id, p.user_ids) == (info.id, "acme", frozenset({"alice"}))
        SecuredMemory(other, p).add("written through the other store", org_id="acme", infer=False)
        assert mem.get_all(user_id="alice", org_id="acme")["results"]
        revoke_key(mem, info.id, "acme")
        with pytest.raises(AccessDeniedError, match="revoked"):
            authenticate(other, key)
        assert list_keys(other, "acme")[0].revoked_at is not None
    finally:
        other.close()


def test_revoked_key_is_refused(mem: Memory) -> None:
    key, info = create_key(mem, "acme", "read")
    with pytest.raises(NotFoundError):
        revoke_key(mem, info.id, "other-org")
    revoked = revoke_key(mem, info.id, "acme")
    assert revoked.revoked_at is not None
    with pytest.raises(AccessDeniedError, match="revoked"):
        authenticate(mem, key)
    assert [k.id for k in list_keys(mem, "acme")] == [info.id]
    assert list_keys(mem, "other") == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"scopes": "root"}, "scopes"),
        ({"scopes": ""}, "scopes"),
        ({"scopes": "read", "user_ids": []}, "user_ids"),
        ({"scopes": "read", "user_ids": [" bad"]}, "user_ids"),
        ({"scopes": "read", "agent_ids": [""]}, "agent_ids"),
    ],
)
def test_create_key_validates(mem: Memory, kwargs: dict, field: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        create_key(mem, None, **kwargs)
    assert err.value.field == field


def test_read_key_cannot_write(mem: Memory) -> None:
    mid = mem.add("I like coffee", user_id="alice", infer=False)["results"][0]["id"]
    s = secured(mem, "read")
    with pytest.raises(AccessDeniedError, match="'write'"):
        s.add("I like tea", user_id="alice")
    with pytest.raises(AccessDeniedError, match="'write'"):
        s.update(mid, text="I like tea", user_id="alice")
    with pytest.raises(AccessDeniedError, match="'write'"):
        s.delete(mid, user_id="alice")
    with pytest.raises(AccessDeniedError, match="'write'"):
        s.delete_all(user_id="alice")
    assert [r["memory"] for r in s.get_all(user_id="alice")["results"]] == ["I like coffee"]
    assert mem.stats(user_id="alice")["episodes"] == 1  # the refused add stored nothing


def test_write_key_cannot_read(mem: Memory) -> None:
    s = secured(mem, "write")
    s.add("I like tea", user_id="alice", infer=False)
    with pytest.raises(AccessDeniedError, match="'read'"):
        s.search("tea", user_id="alice")


def test_admin_implies_read_and_write(mem: Memory) -> None:
    s = secured(mem, "admin")
    mid = s.add("I like tea", user_id="alice", infer=False)["results"][0]["id"]
    assert s.get(mid, user_id="alice")["memory"] == "I like tea"


def test_user_binding(mem: Memory) -> None:
    mem.add("Bob's secret is 42", user_id="bob", infer=False)
    s = secured(mem, "read,write", user_ids=["alice"])
    added = s.add("I like tea", infer=False)  # user_id defaults to the single bound user
    assert added["results"][0]["id"]
    assert [r["memory"] for r in s.get_all()["results"]] == ["I like tea"]
    with pytest.raises(AccessDeniedError, match="bob"):
        s.get_all(user_id="bob")
    with pytest.raises(AccessDeniedError, match="bob"):
        s.search("secret", user_id="bob")
    with pytest.raises(AccessDeniedError):
        s.delete_all(user_id="bob")
    with pytest.raises(AccessDeniedError, match="bob"):
        s.add("I am bob now", user_id="bob", infer=False)
    bob_id = mem.get_all(user_id="bob")["results"][0]["id"]
    with pytest.raises(AccessDeniedError, match="bob"):
        s.get(bob_id, user_id="bob")
    with pytest.raises(NotFoundError):
        s.get(bob_id)  # under alice's scope, bob's record does not exist
    assert [r["memory"] for r in mem.get_all(user_id="bob")["results"]] == ["Bob's secret is 42"]


def test_multi_user_binding_needs_a_user(mem: Memory) -> None:
    s = secured(mem, "read", user_ids=["alice", "carol"])
    assert s.get_all(user_id="carol")["results"] == []
    with pytest.raises(InvalidInputError):
        s.get_all()  # two bound users: nothing to default to
    with pytest.raises(AccessDeniedError, match="no user_id"):
        s.get_all(agent_id="bot")


def test_agent_binding(mem: Memory) -> None:
    s = secured(mem, "read,write", agent_ids=["bot"])
    s.add("The deploy is on Friday", user_id="alice", infer=False)
    assert mem.get_all(user_id="alice", agent_id="bot")["results"]
    with pytest.raises(AccessDeniedError, match="agent_id 'other'"):
        s.get_all(user_id="alice", agent_id="other")


def test_org_binding(mem: Memory) -> None:
    mem.add("Org B data", user_id="alice", org_id="org-b", infer=False)
    s = secured(mem, "admin", org_id="org-a")
    s.add("Org A data", user_id="alice", infer=False)
    assert mem.get_all(user_id="alice", org_id="org-a")["results"]
    with pytest.raises(AccessDeniedError, match="org-b"):
        s.get_all(user_id="alice", org_id="org-b")
    with pytest.raises(AccessDeniedError):
        s.stats()  # store-wide counts span every org


def test_principal_check_directly() -> None:
    p = Principal("k1", "k1", "acme", frozenset({"read"}), frozenset({"alice"}))
    p.check("read", Scope.of(user_id="alice", org_id="acme"))
    with pytest.raises(AccessDeniedError):
        p.check("write", Scope.of(user_id="alice", org_id="acme"))
    with pytest.raises(AccessDeniedError):
        p.check("read", Scope.of(user_id="alice", org_id="other"))
    with pytest.raises(AccessDeniedError):
        p.check("read", None)
    with pytest.raises(AccessDeniedError):
        p.check_org("read", "acme")  # a user-bound key is not an org key
    with pytest.raises(InvalidInputError):
        p.check("delete", Scope.of(user_id="alice"))
    Principal.local().check("admin", None)


def test_conflict_resolution_needs_write(mem: Memory) -> None:
    mem.add("I live in Paris.", user_id="alice")
    mem.add("I live in Lisbon.", user_id="alice")
    conflicts = mem.conflicts(user_id="alice", status="all")["results"]
    reader = secured(mem, "read", user_ids=["alice"])
    assert len(conflicts) == 1 and reader.conflicts(status="all")["results"] == conflicts
    with pytest.raises(AccessDeniedError, match="'write'"):
        reader.resolve_conflict(conflicts[0]["id"], keep="old")
    assert mem.conflicts(user_id="alice", status="all")["results"][0]["resolution"] == "policy:keep_new"
    writer = secured(mem, "write", user_ids=["alice"])
    assert writer.resolve_conflict(conflicts[0]["id"], keep="old")["resolution"] == "keep_old"


def test_optional_privacy_methods(mem: Memory) -> None:
    s = secured(mem, "admin", user_ids=["alice"])
    for name in ("export_user", "forget_user", "audit_log", "verify_audit"):
        assert s.supports(name) == callable(getattr(mem, name, None))


class _PrivacyMemory:
    """A Memory stand-in with the optional privacy methods, to check the rules around them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    def _scope(self, user_id, agent_id, run_id, org_id):  # type: ignore[no-untyped-def]
        return Scope.of(user_id=user_id, agent_id=agent_id, run_id=run_id, org_id=org_id)

    def export_user(self, user_id: str, *, org_id: str | None = None) -> dict:
        self.calls.append(("export_user", {"user_id": user_id, "org_id": org_id}))
        return {"user_id": user_id}

    def forget_user(self, user_id: str, *, org_id: str | None = None) -> dict:
        self.calls.append(("forget_user", {"user_id": user_id, "org_id": org_id}))
        return {"receipt": "r"}

    def audit_log(self, *, org_id: str | None = None, user_id: str | None = None, limit: int = 100) -> list:
        self.calls.append(("audit_log", {"org_id": org_id, "user_id": user_id}))
        return []


def test_user_and_org_operations_follow_the_binding() -> None:
    fake = _PrivacyMemory()
    reader = SecuredMemory(fake, Principal("k", "k", "acme", frozenset({"read"}), frozenset({"alice"})))
    assert reader.export_user() == {"user_id": "alice"}
    assert fake.calls[-1] == ("export_user", {"user_id": "alice", "org_id": "acme"})
    with pytest.raises(AccessDeniedError):
        reader.export_user("bob")
    with pytest.raises(AccessDeniedError, match="'admin'"):
        reader.forget_user("alice")
    with pytest.raises(AccessDeniedError):
        reader.audit_log()
    admin = SecuredMemory(fake, Principal("k", "k", "acme", frozenset({"admin"})))
    assert admin.forget_user("bob") == {"receipt": "r"}
    admin.audit_log(limit=5)
    assert fake.calls[-1] == ("audit_log", {"org_id": "acme", "user_id": None})
    with pytest.raises(AccessDeniedError):
        admin.audit_log(org_id="other")
