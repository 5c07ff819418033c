"""Pure data: scopes, stored memories, episodes, history events, entities and conflicts."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from memstrata.errors import ScopeError

DEFAULT_ORG = "default"
MAX_ID_LENGTH = 128
_ID_OK = re.compile(r"^[^\x00-\x1f\x7f]+$")


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_epoch(t: datetime) -> float:
    return t.timestamp()


def from_epoch(x: float | None) -> datetime | None:
    return None if x is None else datetime.fromtimestamp(x, UTC)


def iso(x: float | None) -> str | None:
    t = from_epoch(x)
    return None if t is None else t.isoformat().replace("+00:00", "Z")


def check_id(field_name: str, value: Any, *, required: bool = False) -> str | None:
    """Validate one scope id: a non-empty string without control characters or edge whitespace, ≤128 chars."""
    if value is None:
        if required:
            raise ScopeError(field_name, "is required")
        return None
    if not isinstance(value, str):
        raise ScopeError(field_name, f"must be a string, got {type(value).__name__}")
    if value == "":
        raise ScopeError(field_name, "must not be empty")
    if value.strip() != value or not value.strip():
        raise ScopeError(field_name, "must not be blank or start/end with whitespace")
    if len(value) > MAX_ID_LENGTH:
        raise ScopeError(field_name, f"is {len(value)} characters long; the limit is {MAX_ID_LENGTH}")
    if not _ID_OK.match(value):
        raise ScopeError(field_name, "must not contain control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ScopeError(field_name, "contains a lone surrogate, which is not valid UTF-8") from None
    return value


@dataclass(frozen=True)
class Scope:
    """Who a memory belongs to. Two scopes are the same only when all four ids are equal.

    A scope is the isolation boundary: every storage read and write carries its ``key``, and nothing
    (metadata included) can move a row to another scope.
    """

    org_id: str = DEFAULT_ORG
    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None

    @classmethod
    def of(
        cls,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        org_id: str | None = None,
    ) -> Scope:
        org = check_id("org_id", org_id) or DEFAULT_ORG
        user = check_id("user_id", user_id)
        agent = check_id("agent_id", agent_id)
        run = check_id("run_id", run_id)
        if user is None and agent is None and run is None:
            raise ScopeError("user_id", "at least one of user_id, agent_id or run_id is required")
        return cls(org, user, agent, run)

    @property
    def key(self) -> str:
        """A stable, unambiguous string for the four ids (a length prefix keeps 'a|b' from colliding)."""
        parts = [self.org_id, self.user_id, self.agent_id, self.run_id]
        return "".join("-" if p is None else f"{len(p)}:{p}" for p in parts)

    @classmethod
    def from_key(cls, key: str) -> Scope:
        """The scope whose ``key`` is ``key`` (the inverse of ``key``); ScopeError when it is not one."""
        parts: list[str | None] = []
        i = 0
        while i < len(key) and len(parts) < 4:
            if key[i] == "-":
                parts.append(None)
                i += 1
                continue
            colon = key.find(":", i)
            if colon <= i or not key[i:colon].isdigit():
                break
            end = colon + 1 + int(key[i:colon])
            parts.append(key[colon + 1 : end])
            i = end
        if len(parts) != 4 or i != len(key) or parts[0] is None:
            raise ScopeError("scope_key", f"is not a stored scope key: {key!r}")
        return cls.of(org_id=parts[0], user_id=parts[1], agent_id=parts[2], run_id=parts[3])

    @property
    def token(self) -> str:
        """An alphanumeric token for the scope, used to confine full-text queries to it."""
        return "s" + hashlib.blake2b(self.key.encode(), digest_size=12).hexdigest()

    def as_dict(self) -> dict[str, str | None]:
        return {
            "org_id": self.org_id,
            "user_id": self.user_id,
            "agent_id": self.agent_id,
            "run_id": self.run_id,
        }


@dataclass
class EpisodeRecord:
    """One message, verbatim, as it arrived."""

    id: str
    scope: Scope
    conversation_id: str | None
    role: str
    content: str
    occurred_at: float
    created_at: float
    name: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    position: int = 0
    extraction_status: str = "done"  # done | pending | failed | skipped
    extraction_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            **self.scope.as_dict(),
            "conversation_id": self.conversation_id,
            "role": self.role,
            "name": self.name,
            "content": self.content,
            "occurred_at": iso(self.occurred_at),
            "created_at": iso(self.created_at),
            "metadata": self.metadata,
            "position": self.position,
            "extraction_status": self.extraction_status,
            "extraction_error": self.extraction_error,
        }


# The kind of a memory that holds one message verbatim, as evidence (facts drawn from it are other kinds).
EVIDENCE_KIND = "message"


@dataclass
class MemoryRecord:
    """A long-term memory as stored.

    ``valid_from``/``valid_to`` are world time; ``created_at``/``expired_at`` are system time.
    """

    id: str
    scope: Scope
    text: str
    created_at: float
    updated_at: float
    valid_from: float
    conversation_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    episode_ids: list[str] = field(default_factory=list)
    kind: str = "fact"
    importance: float = 0.5
    confidence: float = 1.0
    confidence_reason: str = "stated verbatim"
    source_role: str | None = None
    valid_to: float | None = None
    expired_at: float | None = None
    superseded_by: str | None = None
    mention_count: int = 1
    last_seen_at: float | None = None
    last_accessed_at: float | None = None
    access_count: int = 0
    content_hash: str = ""
    slot: tuple[str, str, str] | None = None
    entities: list[str] = field(default_factory=list)
    rid: int = 0

    @property
    def current(self) -> bool:
        return self.valid_to is None and self.superseded_by is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "memory": self.text,
            "hash": self.content_hash,
            "metadata": self.metadata,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            **self.scope.as_dict(),
            "conversation_id": self.conversation_id,
            "episode_ids": list(self.episode_ids),
            "kind": self.kind,
            "importance": round(self.importance, 4),
            "confidence": round(self.confidence, 4),
            "confidence_reason": self.confidence_reason,
            "source": {"role": self.source_role, "episode_ids": list(self.episode_ids)},
            "valid_from": iso(self.valid_from),
            "valid_to": iso(self.valid_to),
            "expired_at": iso(self.expired_at),
            "superseded_by": self.superseded_by,
            "mention_count": self.mention_count,
            "last_seen_at": iso(self.last_seen_at),
            "entities": list(self.entities),
        }


@dataclass
class HistoryEvent:
    """One change to a memory: ADD, UPDATE, MERGE, SUPERSEDE or DELETE."""

    id: str
    memory_id: str
    event: str
    old_memory: str | None
    new_memory: str | None
    actor: str
    reason: str
    created_at: float
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "memory_id": self.memory_id,
            "event": self.event,
            "old_memory": self.old_memory,
            "new_memory": self.new_memory,
            "actor": self.actor,
            "reason": self.reason,
            "created_at": iso(self.created_at),
            "metadata": self.metadata,
        }


@dataclass
class EntityRecord:
    """A canonical node in a scope's graph."""

    id: str
    name: str
    label: str
    aliases: list[str] = field(default_factory=list)
    mention_count: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "label": self.label,
            "aliases": self.aliases,
            "mention_count": self.mention_count,
        }


@dataclass
class ConflictRecord:
    """Two memories that assign different values to one (subject, attribute)."""

    id: str
    new_memory_id: str
    old_memory_id: str
    subject: str
    attribute: str
    old_value: str
    new_value: str
    policy: str
    status: str  # open | resolved
    created_at: float
    resolved_at: float | None = None
    resolution: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "new_memory_id": self.new_memory_id,
            "old_memory_id": self.old_memory_id,
            "subject": self.subject,
            "attribute": self.attribute,
            "old_value": self.old_value,
            "new_value": self.new_value,
            "policy": self.policy,
            "status": self.status,
            "created_at": iso(self.created_at),
            "resolved_at": iso(self.resolved_at),
            "resolution": self.resolution,
        }
