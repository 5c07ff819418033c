"""The ingestion queue contract: one row per queued ``add`` (an *ingestion*), whose messages are already
stored as episodes with the extraction status ``'queued'``.

The row is the unit of work a worker claims: it names the scope, the episode ids, whether to infer, and
carries the lease, the attempt count and the time of the next attempt. The episodes carry the per-message
truth: the transaction that writes a message's facts also moves its episode out of ``'queued'``, so an
ingestion processed twice (a worker died after its commit, before it closed the row) writes nothing twice.

States: ``new`` (its episodes are being written; a writer that dies leaves it for the workers once its lease
passes), ``queued`` (waiting or leased), ``done`` and ``dead`` (out of attempts, waiting for a requeue).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

STATES = ("new", "queued", "done", "dead")


@dataclass
class Ingestion:
    id: str
    scope_key: str
    episode_ids: list[str]
    infer: bool
    conversation_id: str | None
    state: str
    attempts: int = 0
    lease_until: float | None = None
    next_at: float = 0.0
    error: str | None = None
    report: dict[str, Any] | None = None
    idempotency_key: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0

    def status(self, now: float) -> str:
        """What a caller sees: pending, running, failed (waiting to retry), done or dead."""
        if self.state in ("done", "dead"):
            return self.state
        if self.state == "new" and self.attempts == 0:
            return "pending"  # its episodes are being written
        if self.lease_until is not None and self.lease_until > now:
            return "running"
        return "failed" if self.error is not None else "pending"


class IngestQueue(ABC):
    """Durable ingestions on the store's own database."""

    @abstractmethod
    def create(self, ing: Ingestion, lease: float) -> Ingestion:
        """Insert ``ing`` in state ``new`` (its lease covers the episode write). When the scope already holds
        an ingestion with the same idempotency key, insert nothing and return that one."""

    @abstractmethod
    def publish(self, ingestion_id: str, at: float) -> None:
        """The episodes are stored: ``new`` -> ``queued``, ready now."""

    @abstractmethod
    def claim(self, worker: str, limit: int, lease: float, now: float) -> list[Ingestion]:
        """Lease up to ``limit`` ready ingestions (queued and due, or new/queued whose lease has run out),
        counting one attempt each; two workers never get the same row while its lease runs."""

    @abstractmethod
    def extend(self, ids: Sequence[str], worker: str, lease: float, now: float) -> None:
        """Push the lease of rows this worker holds."""

    @abstractmethod
    def finish(self, ingestion_id: str, worker: str, report: dict[str, Any], now: float) -> None: ...

    @abstractmethod
    def retry_later(self, ingestion_id: str, worker: str, error: str, next_at: float, dead: bool,
                    now: float) -> None:
        """Release a failed attempt: due again at ``next_at``, or ``dead`` when out of attempts."""

    @abstractmethod
    def get(self, scope_key: str, ingestion_id: str) -> Ingestion | None: ...

    @abstractmethod
    def list(self, scope_key: str, states: Sequence[str] | None, limit: int) -> list[Ingestion]: ...

    @abstractmethod
    def requeue(self, scope_key: str, ingestion_id: str, now: float) -> Ingestion | None:
        """A dead (or failed) ingestion back in the queue with its attempts reset; None if unknown."""

    @abstractmethod
    def counts(self) -> dict[str, int]:
        """Rows per state, store-wide."""
