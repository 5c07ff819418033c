"""The shared layer of the read cache: what every process sees, between its own memory and the database.

Two kinds of entries live there. Query vectors are keyed by a digest of the embedder and the text and bound
to no scope (a vector is a function of the text alone). Scope entries belong to one scope: each scope has a
version that every write to it bumps, and an entry is stored with the version it was computed under, so a
reader that finds an older version treats the entry as missing. Versions only grow, also across a restart
of the shared cache that lost its data, so a version seen once never names other data later.

Every method may raise BackendError (BackendUnavailableError when the cache cannot be reached); the layer
above decides what a failure means (it reads from the database instead).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Protocol

from memstrata.models import Scope


class SharedCache(ABC):
    """Query vectors and versioned scope entries, shared by every process that opens the same cache."""

    @abstractmethod
    def get_vectors(self, keys: Sequence[str]) -> list[bytes | None]:
        """The stored bytes of each key (None where there is none), in order."""

    @abstractmethod
    def put_vectors(self, items: Mapping[str, bytes], ttl_seconds: float) -> None: ...

    @abstractmethod
    def drop_vectors(self) -> int:
        """Delete every query vector; returns how many went."""

    @abstractmethod
    def read_scope(self, scope: Scope, names: Sequence[str]) -> tuple[int, int, list[bytes | None]]:
        """(the erasure epoch, the scope's current version, the payload of each named entry stored under
        that version or None). A scope seen for the first time gets a version here."""

    @abstractmethod
    def put_scope(self, scope: Scope, version: int, items: Mapping[str, bytes], ttl_seconds: float) -> None:
        """Store entries computed under ``version`` (read before the data they were computed from)."""

    @abstractmethod
    def bump(self, scopes: Sequence[Scope]) -> None:
        """A new version for each scope: every entry stored before is stale for every reader."""

    @abstractmethod
    def erase(self, scopes: Sequence[Scope]) -> int:
        """Bump the scopes and delete their entries; returns the entries deleted."""

    @abstractmethod
    def erase_user(self, org_id: str, user_id: str) -> int:
        """``erase`` every scope of the user that has (or had) an entry, whether or not the store holds data
        of it, and raise the erasure epoch, so that every process drops what it holds in memory on its next
        read; returns the entries deleted."""

    @abstractmethod
    def bump_all(self) -> None:
        """A new version for every scope the cache knows and no entry left (the store was reset)."""

    def close(self) -> None:  # noqa: B027 - an optional hook
        """Release connections."""


class Invalidation(Protocol):
    """What the write side tells the read cache: a scope changed, scopes were erased, everything was reset."""

    def changed(self, scope: Scope) -> None: ...

    def erased(self, scopes: Sequence[Scope]) -> None: ...

    def reset(self) -> None: ...
