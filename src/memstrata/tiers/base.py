"""Narrow contracts for each tier. Every method takes the Scope first: there is no unscoped read.

Logic that is not storage (fusion, ranking, dedup decisions, conflict policy) lives above these
contracts and is written once; a backend only stores, fetches and indexes.
"""

from __future__ import annotations

import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any, ClassVar

import numpy as np

from memstrata.models import (
    ConflictRecord,
    EntityRecord,
    EpisodeRecord,
    HistoryEvent,
    MemoryRecord,
    Scope,
)


def entity_key(name: str) -> str:
    """The equality key of an entity name within a scope (what ``entities.name_key`` holds, before sealing)."""
    return name.strip().lower()


@dataclass
class EntityUpsert:
    """One entity a batch writes, already resolved above the store (memstrata.ingest.entities).

    The store upserts it by ``entity_key(name)``: a new row takes ``id``, ``label`` (or "OTHER") and
    ``aliases``; an existing row gains ``aliases`` (a set union), takes ``label`` unless it is None, and
    its mention count grows by ``mentions``. The store decides nothing else about entities."""

    name: str
    label: str | None
    aliases: tuple[str, ...] = ()
    mentions: int = 0
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def key(self) -> str:
        return entity_key(self.name)


@dataclass
class WriteBatch:
    """Everything one ingestion or edit changes, applied atomically by ``Store.apply``."""

    new_memories: list[tuple[MemoryRecord, np.ndarray]] = field(default_factory=list)
    # (memory_id, (sentences, dim) matrix): sentence vectors of a long message among new_memories
    sentence_vectors: list[tuple[str, np.ndarray]] = field(default_factory=list)
    updated_memories: list[tuple[MemoryRecord, np.ndarray | None]] = field(default_factory=list)
    deleted_memory_ids: list[str] = field(default_factory=list)
    history: list[HistoryEvent] = field(default_factory=list)
    # (memory_id, canonical name, label, alias as written)
    entity_links: list[tuple[str, str, str, str]] = field(default_factory=list)
    # (subject name, relation, object name, memory_id, episode_id)
    edges: list[tuple[str, str, str, str | None, str | None]] = field(default_factory=list)
    # One upsert per entity the links and edges name, filled by memstrata.ingest.entities.resolve_entities
    entities: list[EntityUpsert] = field(default_factory=list)
    conflicts: list[ConflictRecord] = field(default_factory=list)
    episode_status: list[tuple[str, str, str | None]] = field(
        default_factory=list
    )  # (episode_id, status, error)

    def __bool__(self) -> bool:
        return any(
            (
                self.new_memories,
                self.sentence_vectors,
                self.updated_memories,
                self.deleted_memory_ids,
                self.history,
                self.entity_links,
                self.edges,
                self.entities,
                self.conflicts,
                self.episode_status,
            )
        )


class EpisodicTier(ABC):
    """Every message verbatim; the source of truth, written first and durably."""

    @abstractmethod
    def add_episodes(self, episodes: Sequence[EpisodeRecord]) -> None: ...

    @abstractmethod
    def get_episodes(self, scope: Scope, ids: Sequence[str]) -> list[EpisodeRecord]: ...

    def episode_names(self, scope: Scope, ids: Sequence[str]) -> dict[str, str]:
        """The speaker name of each of ``ids`` that has one (a store may read the names alone)."""
        return {e.id: e.name for e in self.get_episodes(scope, ids) if e.name}

    @abstractmethod
    def list_episodes(
        self,
        scope: Scope,
        *,
        conversation_id: str | None = None,
        start: float | None = None,
        end: float | None = None,
        status: str | None = None,
        limit: int = 100,
        after: tuple[float, str] | None = None,
    ) -> list[EpisodeRecord]: ...

    @abstractmethod
    def search_episodes(
        self, scope: Scope, terms: Sequence[str] | str, limit: int = 20
    ) -> list[tuple[EpisodeRecord, float]]:
        """Episodes matching any of the query's terms (``query_terms`` of the codec's ``query_text``),
        best first. A plain string is still taken and tokenized the same way."""


class LongTermTier(ABC):
    """Facts with embeddings: exact and keyword lookup, kNN, listing and history."""

    @abstractmethod
    def get_memories(self, scope: Scope, ids: Sequence[str]) -> list[MemoryRecord]: ...

    @abstractmethod
    def list_memories(
        self,
        scope: Scope,
        *,
        include_superseded: bool = False,
        conversation_id: str | None = None,
        limit: int = 100,
        after: tuple[float, str] | None = None,
        where: Sequence[tuple[str, str, Any]] = (),
    ) -> list[MemoryRecord]: ...

    @abstractmethod
    def find_by_hash(self, scope: Scope, content_hash: str) -> list[MemoryRecord]:
        """Memories whose content hash (``normalized_hash`` of the text, unkeyed) is ``content_hash``; a
        store that keeps the column keyed (``Codec.seal_hash``) keys the probe the same way."""

    @abstractmethod
    def find_by_slot(self, scope: Scope, subject: str | None, attribute: str) -> list[MemoryRecord]:
        """Current memories with this slot attribute (and subject, unless None: aliases are resolved above)."""

    @abstractmethod
    def vector_search(
        self, scope: Scope, vector: np.ndarray, k: int, *, include_superseded: bool = False,
        only: Sequence[str] | None = None,
    ) -> list[tuple[str, float]]:
        """Top-k memory ids by cosine; ``only`` restricts the candidates (metadata filters)."""

    @abstractmethod
    def keyword_search(
        self, scope: Scope, terms: Sequence[str], k: int, *, include_superseded: bool = False,
        only: Sequence[str] | None = None,
    ) -> list[tuple[str, float]]:
        """Top-k memory ids by BM25 (or the backend's full-text rank), higher is better. ``terms`` are the
        query's words as the index holds them: ``query_terms(codec.query_text(scope, query))``."""

    @abstractmethod
    def history(self, scope: Scope, memory_id: str) -> list[HistoryEvent]: ...

    @abstractmethod
    def scope_of_memory(self, memory_id: str) -> Scope | None:
        """The scope that holds ``memory_id`` (a stored memory, or a deleted one whose history is kept);
        None when no scope does. Memory ids are unique across scopes. Reads no content."""

    @abstractmethod
    def vectors(self, scope: Scope, ids: Sequence[str]) -> dict[str, np.ndarray]: ...

    def vector_search_and_sentences(
        self, scope: Scope, vector: np.ndarray, k: int, *, include_superseded: bool = False,
        only: Sequence[str] | None = None,
    ) -> tuple[list[tuple[str, float]], dict[str, np.ndarray]]:
        """``vector_search`` and the ``sentence_vectors`` of its hits together: a store that reads over a network
        does it in one round trip where it can; this default makes the two calls."""
        hits = self.vector_search(scope, vector, k, include_superseded=include_superseded, only=only)
        return hits, self.sentence_vectors(scope, [m for m, _ in hits]) if hits else {}

    def search_candidates(
        self, scope: Scope, vector: Callable[[], np.ndarray], dense_k: int, terms: Sequence[str], keyword_k: int,
        *, include_superseded: bool = False, only: Sequence[str] | None = None, sentences: bool = True,
    ) -> tuple[list[tuple[str, float]], dict[str, np.ndarray] | None, list[tuple[str, float]]]:
        """A search's kNN hits with, where ``sentences``, their ``sentence_vectors`` (else None), and its keyword
        hits (none where ``keyword_k`` is 0). ``vector`` makes the query vector (it embeds the query): a store
        that reads over a network may send its keyword statement first and make the vector meanwhile; this
        default makes it, then runs the kNN and the keyword search in turn."""
        dense, found = self.dense_candidates(scope, vector(), dense_k, include_superseded=include_superseded,
                                             only=only, sentences=sentences)
        keyword = self.keyword_search(scope, terms, keyword_k, include_superseded=include_superseded,
                                      only=only) if keyword_k > 0 else []
        return dense, found, keyword

    def dense_candidates(
        self, scope: Scope, vector: np.ndarray, k: int, *, include_superseded: bool = False,
        only: Sequence[str] | None = None, sentences: bool = True,
    ) -> tuple[list[tuple[str, float]], dict[str, np.ndarray] | None]:
        """``vector_search_and_sentences`` where ``sentences``, else ``vector_search`` and None."""
        if sentences:
            return self.vector_search_and_sentences(scope, vector, k, include_superseded=include_superseded,
                                                    only=only)
        return self.vector_search(scope, vector, k, include_superseded=include_superseded, only=only), None

    def memories_and_vectors(
        self, scope: Scope, ids: Sequence[str]
    ) -> tuple[list[MemoryRecord], dict[str, np.ndarray]]:
        """``get_memories`` and ``vectors`` of the same ids together: a store that reads over a network does it
        in one round trip; this default makes the two calls."""
        records = self.get_memories(scope, ids)
        return records, self.vectors(scope, [r.id for r in records])

    def sentence_vectors(self, scope: Scope, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The (sentences, dim) matrix stored for each of ``ids`` that has one (long messages only); a store
        that keeps none returns {} and retrieval scores by windows alone."""
        return {}

    def count(self, scope: Scope) -> int:
        return len(self.list_memories(scope, include_superseded=True, limit=10**9))


class GraphTier(ABC):
    """Entities and relations of a scope, for entity expansion."""

    @abstractmethod
    def entities(self, scope: Scope, limit: int = 1000) -> list[EntityRecord]: ...

    @abstractmethod
    def memories_of_entities(self, scope: Scope, entity_ids: Sequence[str], limit: int = 50) -> list[str]: ...

    @abstractmethod
    def neighbours(
        self, scope: Scope, entity_id: str, depth: int = 1
    ) -> list[tuple[EntityRecord, str, int]]: ...


class Capability(StrEnum):
    """What a store can do beyond the episodic, long-term and graph contract. Callers ask
    ``store.supports(...)`` instead of probing types or attributes."""

    PRIVACY = "privacy"  # the PrivacyTier: audit chain, data keys, retention, erasure
    KEYS = "keys"  # the KeyTier: API keys
    ENCRYPTION = "encryption"  # text is sealed by an encrypting codec (per-subject keys)
    EXTERNAL_VECTORS = "external_vectors"  # kNN is served by a separate VectorTier, not the store
    SCOPE_LISTING = "scope_listing"  # ``scopes()`` lists the scopes holding data
    SCOPE_LOCK = "scope_lock"  # ``scope_lock`` excludes writers in other processes too, not just threads
    # reads from two threads at once run side by side (a pool of connections to a server), so retrieval
    # may run a search's independent reads concurrently
    PARALLEL_READS = "parallel_reads"


class Store(EpisodicTier, LongTermTier, GraphTier):
    """A backend that holds the durable tiers and applies a WriteBatch atomically."""

    #: fixed abilities of the backend class; ``supports`` adds the ones that depend on how it was opened
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    codec: Codec

    def supports(self, capability: Capability | str) -> bool:
        cap = Capability(capability)
        if cap is Capability.ENCRYPTION:
            codec = getattr(self, "codec", None)
            return bool(codec is not None and codec.encrypts)
        return cap in self.capabilities

    @abstractmethod
    def apply(self, scope: Scope, batch: WriteBatch) -> None: ...

    def scope_lock(self, scope: Scope) -> AbstractContextManager[object]:
        """The write section of ``scope``: while one writer holds it, no other plans or applies a change to
        the scope, so what it read inside is still true when its batch commits. Re-entrant in one thread.
        This default excludes the threads of this process only (every scope of the store at once); a store
        with ``Capability.SCOPE_LOCK`` excludes other processes too."""
        lock = self.__dict__.get("_scope_section")
        return lock if lock is not None else self.__dict__.setdefault("_scope_section", threading.RLock())

    @abstractmethod
    def conflicts(self, scope: Scope, status: str | None = "open") -> list[ConflictRecord]: ...

    @abstractmethod
    def resolve_conflict(
        self, scope: Scope, conflict_id: str, resolution: str, at: float
    ) -> ConflictRecord: ...

    @abstractmethod
    def touch(self, scope: Scope, ids: Sequence[str], at: float) -> None:
        """Record that memories were returned to a caller (feeds the recency-of-use boost)."""

    def change_marker(self, scope: Scope) -> object | None:
        """A value, cheap to read, that changes whenever any process commits a write to the scope, read where
        the store's reads are at least as new (the read cache keeps nothing of a scope past a change of it).
        None: the store offers none, and nothing of the scope is cached."""
        return None

    @abstractmethod
    def delete_scope(self, scope: Scope) -> dict[str, int]:
        """Delete every row of a scope in every durable tier; return counts per table."""

    @abstractmethod
    def stats(self, scope: Scope | None = None) -> dict[str, Any]: ...

    def scopes(
        self,
        org_id: str | None = None,
        user_ids: Sequence[str] | None = None,
        agent_ids: Sequence[str] | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """The scopes holding data (ids, counts, last write), most recently active first; ``user_ids`` /
        ``agent_ids`` keep only those."""
        raise NotImplementedError(f"{type(self).__name__} cannot list its scopes")

    @abstractmethod
    def reset(self) -> None:
        """Drop everything in every scope (tests and ``Memory.reset``)."""

    @abstractmethod
    def close(self) -> None: ...


@dataclass
class Turn:
    role: str
    content: str
    at: float
    episode_id: str | None = None


ITEM_KINDS = ("goal", "task")
ITEM_STATUSES = ("open", "done", "dropped")


@dataclass
class WorkItem:
    """A goal or task of a conversation. Ids derive from the episode that opened it, so a rebuild gives
    the same ids; ``revisions`` holds later changes to it as said ("make it 4pm instead")."""

    id: str
    kind: str
    text: str
    status: str = "open"
    by: str = "user"  # who opened it: user, assistant, or agent (set through the API)
    opened_at: float = 0.0
    updated_at: float = 0.0
    episode_id: str | None = None
    pinned: bool = False  # pinned items change only through the API, never by inference
    parent_id: str | None = None  # an assistant commitment made in answer to this item
    revisions: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.revisions)


@dataclass
class Constraint:
    """A limit the user set for this conversation ("keep it under 800 words")."""

    id: str
    text: str
    at: float = 0.0
    episode_id: str | None = None


@dataclass
class WorkingState:
    """What the agent focuses on in one conversation; small, typed, rebuildable from the episodic tier.

    Times are the conversation's own (message timestamps). ``cursor`` is the (time, position) of the last
    message folded in, which tells an in-order update from one that needs a rebuild."""

    goals: list[WorkItem] = field(default_factory=list)
    tasks: list[WorkItem] = field(default_factory=list)
    entities: list[str] = field(default_factory=list)
    topic: str | None = None
    topic_pinned: bool = False
    topic_turn: int = 0  # the message count when the topic was last set
    constraints: list[Constraint] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)
    updated_at: float = 0.0
    messages: int = 0
    cursor: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Older snapshots (and callers) hold goals as plain strings.
        self.goals = [_item(g, "goal", i) for i, g in enumerate(self.goals)]
        self.tasks = [_item(t, "task", i) for i, t in enumerate(self.tasks)]
        self.constraints = [
            c if isinstance(c, Constraint) else Constraint(**c) if isinstance(c, dict)
            else Constraint(f"c-legacy{i}", str(c)) for i, c in enumerate(self.constraints)
        ]

    def items(self) -> list[WorkItem]:
        return [*self.goals, *self.tasks]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorkingState:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def _item(value: Any, kind: str, n: int) -> WorkItem:
    if isinstance(value, WorkItem):
        return value
    if isinstance(value, dict):
        return WorkItem(**value)
    return WorkItem(id=f"{kind[0]}-legacy{n}", kind=kind, text=str(value), by="agent", pinned=True)


class ShortTermTier(ABC):
    """Recent turns per conversation, expiring after a TTL; O(1) by conversation id."""

    @abstractmethod
    def push(self, scope: Scope, conversation_id: str, turns: Sequence[Turn]) -> None: ...

    @abstractmethod
    def recent(self, scope: Scope, conversation_id: str, limit: int = 10) -> list[Turn]: ...

    @abstractmethod
    def clear(self, scope: Scope, conversation_id: str | None = None) -> int: ...

    def close(self) -> None:  # noqa: B027 - optional for in-process tiers
        pass


class WorkingTier(ABC):
    """Per-conversation working state."""

    @abstractmethod
    def get(self, scope: Scope, conversation_id: str) -> WorkingState | None: ...

    @abstractmethod
    def put(self, scope: Scope, conversation_id: str, state: WorkingState) -> None: ...

    def update(self, scope: Scope, conversation_id: str,
               change: Callable[[WorkingState | None], WorkingState]) -> WorkingState:
        """Store ``change(current state)`` unless another writer stored a state in between; then ``change``
        runs again on that one. Returns what was stored. This default is a plain read and write: a tier
        shared by several writers overrides it with a compare-and-set."""
        state = change(self.get(scope, conversation_id))
        self.put(scope, conversation_id, state)
        return state

    @abstractmethod
    def clear(self, scope: Scope, conversation_id: str | None = None) -> int: ...


class Codec:
    """How text and metadata are stored. This identity codec stores plaintext; the privacy layer
    supplies an encrypting one (per-user keys). ``index_text`` returns what the keyword index should
    see (None: the stored text itself) and ``query_text`` turns a query into the same vocabulary.

    A store passes every column that holds the user's text through the codec: ``seal`` what is only
    read back, ``seal_hash`` what it looks up by equality (content hashes, slot keys, entity keys)."""

    encrypts = False

    def seal(self, scope: Scope, text: str) -> str:
        return text

    def open(self, scope: Scope, stored: str) -> str:
        return stored

    def seal_hash(self, scope: Scope, value: str) -> str:
        """What an equality-lookup column stores for ``value``: a one-way value, deterministic per
        subject, so equal values of one subject (any of its scopes) still match in SQL and a lookup
        hashes its probe the same way. It cannot be opened: keep the value itself sealed elsewhere when
        it must come back. This identity codec returns ``value``."""
        return value

    def index_text(self, scope: Scope, text: str) -> str | None:
        return None

    def query_text(self, scope: Scope, query: str) -> str:
        return query

    def prepare(self, scope: Scope) -> None:
        """Get ready to seal for ``scope`` (an encrypting codec loads or creates the scope's key here)."""
