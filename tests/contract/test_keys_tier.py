"""KeyTier: API keys stored by hash, listed per org, revoked once, touched on use."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from tier_support import needs

from memstrata.errors import NotFoundError
from memstrata.tiers.base import Capability, Store
from memstrata.tiers.keys import KeyRecord


def _key(org: str, *, users: tuple[str, ...] | None = None, at: float = 1.0) -> KeyRecord:
    return KeyRecord(id=str(uuid.uuid4()), org_id=org, name="ci", key_hash=uuid.uuid4().hex, prefix="ms_",
                     scopes=("read", "write"), user_ids=users, agent_ids=None, created_at=at)


def test_keys_round_trip_revoke_and_touch(store: Store) -> None:
    needs(store, Capability.KEYS)
    keys: Any = store
    a, b = _key("org-a", users=("u1", "u2")), _key("org-b", at=2.0)
    keys.put_key(a)
    keys.put_key(b)
    assert keys.find_key_by_hash(a.key_hash) == a and keys.find_key_by_hash("nope") is None
    assert [k.id for k in keys.list_keys(None)] == [a.id, b.id]
    assert [k.id for k in keys.list_keys("org-b")] == [b.id]
    revoked = keys.revoke_key("org-a", a.id, 5.0)
    assert revoked.revoked_at == 5.0 and keys.revoke_key("org-a", a.id, 9.0).revoked_at == 5.0
    with pytest.raises(NotFoundError):
        keys.revoke_key("org-b", a.id, 5.0)  # another org's key is not found
    keys.touch_key(b.id, 7.0)
    assert keys.find_key_by_hash(b.key_hash).last_used_at == 7.0
