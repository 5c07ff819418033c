"""The privacy tier: audit log, per-subject data keys, retention policies, legal holds, purges, erasure.

Four small contracts, composed into ``PrivacyTier`` the way ``Store`` composes the data tiers. Decisions
(what a policy purges, how an entry is hashed, when a key dies) are made once above this contract, in
``memstrata.privacy``; a backend stores, selects and deletes, each call atomically.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from memstrata.models import Scope, iso

GENESIS_HASH = "0" * 64
TIERS = ("short_term", "episodic", "long_term")
AUDIT_KEY_SUBJECT = "!audit"


# -- pure helpers shared by every backend ----------------------------------------------------------


def subject_key(scope: Scope) -> str:
    """Whose data key protects a scope: the user (in their org), else the agent, else the run."""
    if scope.user_id is not None:
        return "u" + Scope(scope.org_id, scope.user_id).key[:-2]
    if scope.agent_id is not None:
        return "a" + Scope(scope.org_id, None, scope.agent_id).key[:-1]
    return "r" + Scope(scope.org_id, None, None, scope.run_id).key


def user_key_range(org_id: str, user_id: str) -> tuple[str, str]:
    """[low, high) bounds on ``Scope.key`` holding exactly the scopes of one user in one org.

    A key is ``<org><user><agent><run>``, each part ``-`` or ``len:value``; after the user part comes
    ``-`` or a digit, and both sort between ``-`` and ``:``.
    """
    prefix = Scope(org_id, user_id).key[:-2]
    return prefix + "-", prefix + ":"


def parse_scope_key(key: str) -> Scope:
    """The inverse of ``Scope.key``."""
    parts: list[str | None] = []
    i = 0
    while len(parts) < 4:
        if key[i] == "-":
            parts.append(None)
            i += 1
            continue
        colon = key.index(":", i)
        n = int(key[i:colon])
        parts.append(key[colon + 1 : colon + 1 + n])
        i = colon + 1 + n
    if i != len(key) or parts[0] is None:
        raise ValueError(f"not a scope key: {key!r}")
    return Scope(parts[0], parts[1], parts[2], parts[3])


def categories_of(metadata: Mapping[str, Any]) -> set[str]:
    """A record's retention categories: its metadata ``category`` and its ``tags``, case-folded."""
    out: set[str] = set()
    for name in ("category", "tags"):
        value = metadata.get(name)
        values = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        out.update(v.casefold() for v in values if isinstance(v, str))
    return out


def in_category(metadata: Mapping[str, Any], category: str | None, exclude: Sequence[str] = ()) -> bool:
    """Whether a policy for ``category`` (None: the whole tier, minus ``exclude``) covers this record."""
    cats = categories_of(metadata)
    if category is not None:
        return category.casefold() in cats
    return not cats & {c.casefold() for c in exclude}


# -- records ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditEvent:
    """What happened, before the backend gives it a place in the chain. Never memory plaintext."""

    at: float
    actor: str
    org_id: str
    scope_key: str | None
    operation: str
    memory_ids: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)

    def chain_input(self, seq: int, prev_hash: str) -> bytes:
        """The canonical bytes an entry's hash covers: its position, its predecessor and every field."""
        return json.dumps(
            [prev_hash, seq, self.at, self.actor, self.org_id, self.scope_key, self.operation,
             list(self.memory_ids), self.details],
            sort_keys=True, separators=(",", ":"), ensure_ascii=False,
        ).encode()


@dataclass(frozen=True)
class AuditEntry:
    """One stored audit entry: an event at position ``seq`` chained to its predecessor."""

    seq: int
    event: AuditEvent
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        e = self.event
        scope = parse_scope_key(e.scope_key).as_dict() if e.scope_key else None
        return {
            "seq": self.seq, "at": iso(e.at), "actor": e.actor, "org_id": e.org_id, "scope": scope,
            "operation": e.operation, "memory_ids": list(e.memory_ids), "details": dict(e.details),
            "prev_hash": self.prev_hash, "hash": self.hash,
        }


# (seq, prev_hash) -> hash of the event at that position; called by the backend inside its transaction.
ChainFn = Callable[[int, str], str]


@dataclass(frozen=True)
class DataKeyRecord:
    """A subject's data key as stored: wrapped by a master key, or destroyed (``wrapped_key`` None).

    ``committed`` is False when the row was written or read inside the caller's own still-open write
    transaction: it may yet roll back, so it must not be cached.
    """

    subject_key: str
    wrapped_key: bytes | None
    master_key_id: str
    created_at: float
    destroyed_at: float | None = None
    committed: bool = True

    @property
    def destroyed(self) -> bool:
        return self.wrapped_key is None or self.destroyed_at is not None


@dataclass(frozen=True)
class RetentionPolicy:
    """Delete ``tier`` data of ``org_id`` (only ``category`` records, when given) older than the age."""

    id: str
    org_id: str
    tier: str
    category: str | None
    max_age_seconds: float
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "org_id": self.org_id, "tier": self.tier, "category": self.category,
            "max_age_seconds": self.max_age_seconds, "max_age_days": round(self.max_age_seconds / 86400, 3),
            "created_at": iso(self.created_at),
        }


@dataclass(frozen=True)
class LegalHold:
    """A user whose data no purge may delete until the hold is released."""

    org_id: str
    user_id: str
    reason: str
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        return {"org_id": self.org_id, "user_id": self.user_id, "reason": self.reason,
                "created_at": iso(self.created_at)}


@dataclass
class PurgeResult:
    """Rows deleted per table, and the ids of the purged records per scope (for the audit log)."""

    counts: dict[str, int] = field(default_factory=dict)
    deleted: dict[Scope, list[str]] = field(default_factory=dict)

    def merge(self, other: PurgeResult) -> None:
        for table, n in other.counts.items():
            self.counts[table] = self.counts.get(table, 0) + n
        for scope, ids in other.deleted.items():
            self.deleted.setdefault(scope, []).extend(ids)


@dataclass
class GraphRows:
    """A scope's graph in portable form: which memory names which entity, and the named edges."""

    # (memory_id, entity name, label)
    links: list[tuple[str, str, str]] = field(default_factory=list)
    # (subject name, relation, object name, memory_id, episode_id, created_at)
    edges: list[tuple[str, str, str, str | None, str | None, float]] = field(default_factory=list)


# -- contracts -------------------------------------------------------------------------------------


class AuditTier(ABC):
    """An append-only log. The backend orders entries and chains them; it never rewrites one."""

    @abstractmethod
    def append_audit(self, event: AuditEvent, chain: ChainFn) -> AuditEntry:
        """Append ``event`` at ``seq = last seq + 1`` with ``hash = chain(seq, last hash)`` (``GENESIS_HASH``
        first), reading the last entry and inserting in one write transaction, so concurrent writers
        (threads or processes) can never fork the chain."""

    @abstractmethod
    def audit_entries(
        self, *, after_seq: int = 0, limit: int = 1000, org_id: str | None = None, user_id: str | None = None
    ) -> list[AuditEntry]:
        """Entries with ``seq > after_seq`` in seq order; only one org's, and only one user's scopes
        (see ``user_key_range``; needs ``org_id``), when given."""


class DataKeyTier(ABC):
    """Wrapped per-subject data keys. The backend never sees a key in the clear."""

    @abstractmethod
    def get_data_key(self, subject_key: str) -> DataKeyRecord | None: ...

    @abstractmethod
    def put_data_key(self, record: DataKeyRecord) -> DataKeyRecord:
        """Store a new key unless the subject has a live one, and return the subject's live key (the first
        writer wins a race). A destroyed key is replaced. May be called inside the caller's own write
        transaction (a codec sealing within a batch): the row then joins it, and comes back uncommitted."""

    @abstractmethod
    def rewrap_data_keys(self, updates: Sequence[tuple[str, bytes, str]]) -> int:
        """(subject_key, new wrapped key, new master key id) for live keys, all in one transaction."""

    @abstractmethod
    def destroy_data_key(self, subject_key: str, at: float) -> DataKeyRecord | None:
        """Overwrite the wrapped key and mark it destroyed (crypto-shredding); None if there was none."""

    @abstractmethod
    def data_keys(self) -> list[DataKeyRecord]: ...

    def holds_data_keys(self) -> bool:
        """Whether a live data key of a data subject exists (the audit key does not count): the store
        holds encrypted data. Backends answer this with one indexed query."""
        return any(not k.destroyed and not k.subject_key.startswith("!") for k in self.data_keys())


class RetentionTier(ABC):
    """Policies, holds and the purge queries that enforce them."""

    @abstractmethod
    def put_retention_policy(self, policy: RetentionPolicy) -> RetentionPolicy:
        """Insert, or replace the age of the policy with the same (org, tier, category)."""

    @abstractmethod
    def delete_retention_policy(self, org_id: str, tier: str, category: str | None) -> bool: ...

    @abstractmethod
    def retention_policies(self, org_id: str | None = None) -> list[RetentionPolicy]: ...

    @abstractmethod
    def put_legal_hold(self, hold: LegalHold) -> LegalHold: ...

    @abstractmethod
    def delete_legal_hold(self, org_id: str, user_id: str) -> bool: ...

    @abstractmethod
    def legal_holds(self, org_id: str | None = None) -> list[LegalHold]: ...

    @abstractmethod
    def purge_episodes(
        self, org_id: str, older_than: float, *, category: str | None = None, exclude_categories: Sequence[str] = ()
    ) -> PurgeResult:
        """Delete the org's episodes created before ``older_than`` that ``in_category`` selects (with
        their full-text rows and their memory-less graph edges). Rows of users under legal hold are
        never deleted: the hold is checked in the deleting transaction."""

    def delete_episodes(self, org_id: str, rows: Sequence[tuple[str, str]]) -> PurgeResult:
        """Delete the org's episodes given as (scope key, episode id), as ``purge_episodes`` deletes them
        (what archival moves out); rows of users under legal hold stay."""
        raise NotImplementedError(f"{type(self).__name__} cannot delete episodes by id")

    @abstractmethod
    def purge_memories(
        self, org_id: str, older_than: float, *, category: str | None = None, exclude_categories: Sequence[str] = ()
    ) -> PurgeResult:
        """Delete the org's memories last written before ``older_than`` that ``in_category`` selects, with
        their vectors, full-text rows, history, graph links and conflicts, and entities left orphaned.
        Legal holds as for ``purge_episodes``."""

    @abstractmethod
    def idle_conversations(self, org_id: str, older_than: float) -> list[tuple[Scope, str]]:
        """(scope, conversation id) of the org whose newest episode is older than ``older_than``, users
        under legal hold left out: what short-term retention clears."""


class ErasureTier(ABC):
    """What export and erasure need beyond the data tiers' scoped reads."""

    @abstractmethod
    def user_scopes(self, org_id: str, user_id: str) -> list[Scope]:
        """Every scope with rows in any durable table whose org and user are these."""

    @abstractmethod
    def history_memory_ids(self, scope: Scope) -> list[str]:
        """Ids of every memory with history in the scope, deleted ones included."""

    @abstractmethod
    def graph_rows(self, scope: Scope) -> GraphRows: ...

    @abstractmethod
    def compact(self) -> dict[str, bool]:
        """Make deleted rows unrecoverable from the storage files (free pages, logs, index segments)."""


class PrivacyTier(AuditTier, DataKeyTier, RetentionTier, ErasureTier):
    """Everything the privacy layer needs from a backend."""


def privacy_tier(store: object) -> PrivacyTier:
    """The store as a PrivacyTier (every durable tier of it, audit and keys included), if it is one."""
    if isinstance(store, PrivacyTier):
        return store
    from memstrata.errors import ConfigurationError

    raise ConfigurationError(f"store: {type(store).__name__} has no privacy tier (audit, keys, retention)")
