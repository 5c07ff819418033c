"""The queued side of ``Memory`` (``add(..., wait=False)``): look up, list, requeue and process queued adds.
A part of the facade kept in its own module; ``Memory`` inherits it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from memstrata.core.paging import check_limit

if TYPE_CHECKING:
    from memstrata.ingest.queue import QueuedAdds
    from memstrata.models import Scope


class QueuedMethods:
    """``Memory``'s methods on queued adds; ``memstrata worker`` runs ``process_queue`` in a loop."""

    _queued: QueuedAdds

    def _check_open(self) -> None:
        raise NotImplementedError

    def _open(self, user_id: str | None, agent_id: str | None, run_id: str | None, org_id: str | None) -> Scope:
        raise NotImplementedError

    def ingestion(
        self, ingestion_id: str, *, user_id: str | None = None, agent_id: str | None = None,
        run_id: str | None = None, org_id: str | None = None,
    ) -> dict[str, Any]:
        """A queued add's status: ``pending``, ``running``, ``failed`` (to be retried), ``done`` (with each
        message's outcome) or ``dead`` (out of attempts; ``requeue`` it)."""
        scope = self._open(user_id, agent_id, run_id, org_id)
        return self._queued.lookup(scope, ingestion_id)

    def ingestions(
        self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None, status: str | None = None, limit: int = 100,
    ) -> dict[str, Any]:
        """A scope's queued adds, newest first; ``status="dead"`` lists the dead letters."""
        scope = self._open(user_id, agent_id, run_id, org_id)
        return self._queued.listing(scope, status, check_limit(limit))

    def requeue(
        self, ingestion_id: str, *, user_id: str | None = None, agent_id: str | None = None,
        run_id: str | None = None, org_id: str | None = None,
    ) -> dict[str, Any]:
        """Put a dead (or failed) queued add back in the queue with its attempts reset."""
        scope = self._open(user_id, agent_id, run_id, org_id)
        return self._queued.requeue(scope, ingestion_id)

    def process_queue(
        self, *, batch: int = 32, lease: float = 60.0, max_attempts: int = 5, backoff: float = 2.0,
    ) -> dict[str, int]:
        """Process one batch of queued adds of every scope (what ``memstrata worker`` runs in a loop).
        Returns counts; ``claimed`` 0 means nothing was ready."""
        self._check_open()
        return self._queued.process(batch=check_limit(batch), lease=lease, max_attempts=max_attempts,
                                    backoff=backoff)
