"""The API-key tier: where hashed API keys live. Only hashes are stored; the plaintext never reaches a backend."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass(frozen=True)
class KeyRecord:
    """One API key as stored: its hash, never the key itself."""

    id: str
    org_id: str
    name: str
    key_hash: str
    prefix: str
    scopes: tuple[str, ...]
    user_ids: tuple[str, ...] | None
    agent_ids: tuple[str, ...] | None
    created_at: float
    revoked_at: float | None = None
    last_used_at: float | None = None


class KeyTier(ABC):
    """Storage of API keys, looked up by hash. Keys belong to an org; revocation is a timestamp, not a delete."""

    @abstractmethod
    def put_key(self, record: KeyRecord) -> None:
        """Store a new key; its id and hash are unique."""

    @abstractmethod
    def find_key_by_hash(self, key_hash: str) -> KeyRecord | None:
        """The key with this hash, revoked or not; None when there is none."""

    @abstractmethod
    def list_keys(self, org_id: str | None) -> list[KeyRecord]:
        """Keys of one org (every org when ``org_id`` is None), oldest first."""

    @abstractmethod
    def revoke_key(self, org_id: str, key_id: str, at: float) -> KeyRecord:
        """Mark a key of ``org_id`` revoked at ``at``; NotFoundError when the org has no such key."""

    @abstractmethod
    def touch_key(self, key_id: str, at: float) -> None:
        """Record that the key was used at ``at``."""
