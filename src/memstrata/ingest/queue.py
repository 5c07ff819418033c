"""Queued ingestion: ``add(..., wait=False)`` stores the messages and returns; workers extract later.

``enqueue`` writes, in order, the ingestion row (state ``new``; it also takes the client's idempotency key, so
a retried request finds the first one and writes nothing), the episodes with the status ``'queued'``, and
then publishes the row. Nothing is acknowledged before the episodes are durable.

``QueueWorker.run_batch`` claims a batch of ingestions across users and conversations under a lease, embeds
every message window of the batch in one embedder call (what ``add`` embeds for a message's verbatim
evidence; facts worded apart from their message are embedded per ingestion), then runs each ingestion
through ``IngestFlow.plan``, whose one transaction writes the facts and moves the episodes out of
``'queued'``. Only episodes still ``'queued'`` are processed, so a redelivered ingestion (its worker was
killed after that commit) stores nothing twice; the status is read again inside the scope's write section,
so two workers running one ingestion at once (a stalled worker whose lease passed) store it once. A failure
releases the row for a later attempt, after an exponential backoff; past ``max_attempts`` it is dead until
``requeue``.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from memstrata.core.text import chunk_text
from memstrata.errors import ConfigurationError, InvalidInputError, NotFoundError
from memstrata.ingest.candidate import Message
from memstrata.ingest.flow import AlreadyApplied, IngestFlow
from memstrata.models import EpisodeRecord, Scope, check_id, iso
from memstrata.providers.embedders import Embedder
from memstrata.tiers.queue import Ingestion, IngestQueue

QUEUED = "queued"  # the extraction status of an episode whose ingestion waits for a worker
STATUSES = ("pending", "running", "failed", "done", "dead")
WRITE_LEASE = 60.0  # how long a writer may take to store a new ingestion's episodes


@dataclass(frozen=True)
class WorkerConfig:
    batch: int = 32  # ingestions claimed at once
    lease: float = 60.0  # seconds a claim holds before another worker may take the rows
    max_attempts: int = 5
    backoff: float = 2.0  # seconds before the second attempt; doubled each time after
    max_backoff: float = 600.0

    def delay(self, attempts: int) -> float:
        return float(min(self.max_backoff, self.backoff * 2 ** max(0, attempts - 1)))


def need_queue(queue: IngestQueue | None) -> IngestQueue:
    if queue is None:
        raise ConfigurationError("wait=False: this store keeps no ingestion queue (use SQLite or PostgreSQL)")
    return queue


def check_key(key: Any) -> str | None:
    if key is None:
        return None
    if not isinstance(key, str) or not key.strip() or len(key) > 200:
        raise InvalidInputError("idempotency_key", "must be a non-empty string of at most 200 characters")
    return key


def enqueue(flow: IngestFlow, queue: IngestQueue, scope: Scope, messages: Any, *, conversation_id: str | None,
            timestamp: Any, metadata: dict[str, Any] | None, infer: bool,
            idempotency_key: str | None) -> dict[str, Any]:
    key = check_key(idempotency_key)
    episodes, now = flow.stage(scope, messages, conversation_id=conversation_id, timestamp=timestamp,
                               metadata=metadata, infer=infer, status=QUEUED)[2:]
    ing = Ingestion(id=str(uuid.uuid4()), scope_key=scope.key, episode_ids=[e.id for e in episodes], infer=infer,
                    conversation_id=conversation_id, state="new", idempotency_key=key, created_at=now,
                    updated_at=now)
    stored = queue.create(ing, WRITE_LEASE)
    if stored.id != ing.id:  # the key was used before: that ingestion, untouched
        return {**describe(stored, now), "results": [], "episodes": stored.episode_ids, "duplicate": True}
    flow.tiers.store.add_episodes(episodes)
    queue.publish(ing.id, time.time())
    warnings = flow.follow(scope, conversation_id, episodes)  # recent turns and working state at once, as with add
    stored.state = "queued"
    out = {**describe(stored, time.time()), "results": [], "episodes": ing.episode_ids}
    out["status"] = "pending"
    if warnings:
        out["warnings"] = warnings
    return out


def describe(ing: Ingestion, now: float) -> dict[str, Any]:
    """The public view of an ingestion."""
    out: dict[str, Any] = {
        "ingestion_id": ing.id, "status": ing.status(now), "episodes": ing.episode_ids, "attempts": ing.attempts,
        "created_at": iso(ing.created_at), "updated_at": iso(ing.updated_at),
        "idempotency_key": ing.idempotency_key, "error": ing.error,
    }
    if ing.state == "queued" and ing.error is not None:
        out["next_attempt_at"] = iso(ing.next_at)
    if ing.report is not None:
        out["messages"] = ing.report.get("messages", [])
        out["memory_ids"] = ing.report.get("memory_ids", [])
    return out


def states_for(status: str | None) -> list[str] | None:
    if status is None or status == "all":
        return None
    if status not in STATUSES:
        raise InvalidInputError("status", f"must be one of {', '.join(STATUSES)} or 'all'")
    return {"pending": ["new", "queued"], "running": ["queued"], "failed": ["queued"]}.get(status, [status])


def listing(queue: IngestQueue, scope: Scope, status: str | None, limit: int) -> dict[str, Any]:
    now = time.time()
    rows = queue.list(scope.key, states_for(status), limit)
    found = [describe(r, now) for r in rows]
    return {"results": [r for r in found if status in (None, "all") or r["status"] == status]}


def lookup(queue: IngestQueue, scope: Scope, ingestion_id: str) -> dict[str, Any]:
    check_id("ingestion_id", ingestion_id, required=True)
    found = queue.get(scope.key, ingestion_id)
    if found is None:
        raise NotFoundError("ingestion", ingestion_id)
    return describe(found, time.time())


def requeue(flow: IngestFlow, queue: IngestQueue, scope: Scope, ingestion_id: str) -> dict[str, Any]:
    check_id("ingestion_id", ingestion_id, required=True)
    found = queue.get(scope.key, ingestion_id)
    if found is None:
        raise NotFoundError("ingestion", ingestion_id)
    if found.state not in ("queued", "dead"):
        raise InvalidInputError("ingestion_id", f"is {found.status(time.time())}: only a dead or failed one"
                                " can be requeued")
    eps = flow.tiers.store.get_episodes(scope, found.episode_ids)
    flow.writer.mark(scope, [e.id for e in eps if e.extraction_status == "failed"], QUEUED, None)
    again = queue.requeue(scope.key, ingestion_id, time.time())
    assert again is not None
    return describe(again, time.time())


class BatchEmbedder:
    """Serves vectors embedded ahead for a whole batch; embeds what it was not given in one call."""

    def __init__(self, inner: Embedder, texts: Sequence[str]) -> None:
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        unique = list(dict.fromkeys(texts))
        vectors = inner.embed(unique) if unique else np.zeros((0, inner.dim), dtype=np.float32)
        self.cache: dict[str, np.ndarray] = dict(zip(unique, vectors, strict=True))
        self.ahead, self.missed = len(unique), 0

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self.cache))
        if missing:
            self.missed += len(missing)
            self.cache.update(zip(missing, self.inner.embed(missing), strict=True))
        if not texts:
            return np.zeros((0, self.inner.dim), dtype=np.float32)
        return np.stack([self.cache[t] for t in texts])


class QueueWorker:
    """Claims batches of ingestions and runs them through the ingest flow."""

    def __init__(self, flow: IngestFlow, queue: IngestQueue, config: WorkerConfig | None = None,
                 name: str | None = None) -> None:
        self.flow, self.queue = flow, queue
        self.config = config or WorkerConfig()
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"

    def run_batch(self) -> dict[str, int]:
        """One claim and its processing; returns counts (``claimed`` 0: the queue had nothing ready)."""
        cfg, store = self.config, self.flow.tiers.store
        claimed = self.queue.claim(self.name, cfg.batch, cfg.lease, time.time())
        counts = {"claimed": len(claimed), "done": 0, "retry": 0, "dead": 0, "messages": 0, "embedded_ahead": 0,
                  "embedded_late": 0}
        if not claimed:
            return counts
        work: list[tuple[Ingestion, Scope, list[EpisodeRecord]]] = []
        for ing in claimed:
            scope = Scope.from_key(ing.scope_key)
            eps = [e for e in store.get_episodes(scope, ing.episode_ids) if e.extraction_status == QUEUED]
            work.append((ing, scope, sorted(eps, key=lambda e: (e.occurred_at, e.position))))
        texts = [w for _, _, eps in work for e in eps for w in chunk_text(e.content)]
        embedder = BatchEmbedder(self.flow.embedder, texts)
        counts["embedded_ahead"] = embedder.ahead
        flow = IngestFlow(self.flow.tiers, self.flow.writer, embedder, config=self.flow.config,
                          extractor=self.flow.extractor, actor=self.flow.actor, observe=self.flow.observe)
        for ing, scope, eps in work:
            self.queue.extend([ing.id], self.name, cfg.lease, time.time())
            try:
                report = self._process(flow, ing, scope, eps)
            except Exception as exc:  # noqa: BLE001 - any failure is an attempt to retry, then dead-letter
                dead = ing.attempts >= cfg.max_attempts
                error = f"{type(exc).__name__}: {exc}"
                if dead:
                    self.flow.writer.mark(scope, [e.id for e in eps], "failed", error)
                self.queue.retry_later(ing.id, self.name, error, time.time() + cfg.delay(ing.attempts), dead,
                                       time.time())
                counts["dead" if dead else "retry"] += 1
                continue
            self.queue.finish(ing.id, self.name, report, time.time())
            counts["done"] += 1
            counts["messages"] += len(eps)
        counts["embedded_late"] = embedder.missed
        self.flow.extractor = flow.extractor  # made on first use: keep it for the next batch
        return counts

    def _process(self, flow: IngestFlow, ing: Ingestion, scope: Scope, eps: list[EpisodeRecord]) -> dict[str, Any]:
        if not eps:  # every message was written by an earlier attempt: only the row was left to close
            return {"messages": [], "memory_ids": [], "redelivered": True}
        msgs = [Message(e.role, e.content, i, e.name, datetime.fromtimestamp(e.occurred_at, UTC))
                for i, e in enumerate(eps)]
        try:
            plan = flow.plan(scope, msgs, eps, eps[0].metadata, ing.conversation_id, ing.infer, time.time(),
                             expect_status=QUEUED)
        except AlreadyApplied:  # its lease passed while this worker stalled, and another worker ran it meanwhile
            return {"messages": [], "memory_ids": [], "redelivered": True}
        ids = list(dict.fromkeys(r["id"] for r in plan.results if "id" in r))
        return {"messages": plan.messages, "memory_ids": ids}



class QueuedAdds:
    """The queued side of ``Memory``: enqueue, look up, list, requeue and process, over one flow and queue
    (``None`` when the store keeps no queue: every call then says so)."""

    def __init__(self, flow: IngestFlow, queue: IngestQueue | None) -> None:
        self.flow, self._queue = flow, queue
        self._worker: QueueWorker | None = None

    @property
    def queue(self) -> IngestQueue:
        return need_queue(self._queue)

    def add(self, scope: Scope, messages: Any, **kw: Any) -> dict[str, Any]:
        return enqueue(self.flow, self.queue, scope, messages, **kw)

    def lookup(self, scope: Scope, ingestion_id: str) -> dict[str, Any]:
        return lookup(self.queue, scope, ingestion_id)

    def listing(self, scope: Scope, status: str | None, limit: int) -> dict[str, Any]:
        return listing(self.queue, scope, status, limit)

    def requeue(self, scope: Scope, ingestion_id: str) -> dict[str, Any]:
        return requeue(self.flow, self.queue, scope, ingestion_id)

    def process(self, *, batch: int, lease: float, max_attempts: int, backoff: float) -> dict[str, int]:
        """One batch of every scope's queued adds, by a worker kept while its settings stay the same."""
        config = WorkerConfig(batch=batch, lease=float(lease), max_attempts=int(max_attempts),
                              backoff=float(backoff))
        if self._worker is None or self._worker.config != config:
            self._worker = QueueWorker(self.flow, self.queue, config)
        return self._worker.run_batch()
