"""Queued ingestion in one process: add(wait=False), the status, idempotency keys, retries with backoff, the
dead letters and their requeue, and a redelivery that stores nothing twice. On every ``--backends`` engine."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import pytest

from memstrata import Memory
from memstrata.backends.sql.queue import SQLQueue
from memstrata.errors import InvalidInputError, NotFoundError, ProviderError
from memstrata.ingest.queue import QueueWorker, WorkerConfig
from memstrata.providers.embedders import HashEmbedder


class FailingExtractor:
    """An extractor whose provider is down."""

    def extract(self, messages: Any, now: datetime) -> list[Any]:
        raise ProviderError("the model is down")


def texts(m: Memory, uid: str) -> list[str]:
    return sorted(r["memory"] for r in m.get_all(user_id=uid, limit=1000)["results"])


def test_queued_add_is_stored_at_once_and_processed_by_a_worker(mem: Memory, uid: str) -> None:
    r = mem.add("I moved to Lisbon last month. My sister Anna is a doctor.", user_id=uid, wait=False)
    assert r["status"] == "pending" and r["results"] == [] and len(r["episodes"]) == 1
    episodes = mem.episodes(user_id=uid)["results"]
    assert [e["id"] for e in episodes] == r["episodes"]  # durable before the answer
    assert mem.get_all(user_id=uid)["results"] == []
    assert mem.retry_failed(user_id=uid)["retried"] == 0  # queued episodes are the workers', not retry_failed's

    counts = mem.process_queue()
    assert counts["claimed"] == 1 and counts["done"] == 1 and counts["embedded_ahead"] >= 1
    done = mem.ingestion(r["ingestion_id"], user_id=uid)
    assert done["status"] == "done" and done["attempts"] == 1
    assert [m["episode_id"] for m in done["messages"]] == r["episodes"]
    assert done["messages"][0]["outcome"] == "kept" and done["memory_ids"]
    assert any("Lisbon" in t for t in texts(mem, uid))
    assert mem.process_queue()["claimed"] == 0


def test_a_worker_batches_across_users_and_matches_a_direct_add(mem: Memory, uid: str) -> None:
    said = ["I work as a nurse in Porto.", "I am allergic to peanuts.", "My dog is called Rex."]
    users = [f"{uid}-{i}" for i in range(3)]
    for u in users:
        for text in said:
            mem.add(text, user_id=u, wait=False)
            mem.add(text, user_id=f"ref-{u}")
    counts = mem.process_queue(batch=100)
    assert counts["claimed"] == 9 and counts["done"] == 9
    for u in users:
        assert texts(mem, u) == texts(mem, f"ref-{u}") and texts(mem, u)


def test_an_idempotency_key_stores_a_retried_add_once(mem: Memory, uid: str) -> None:
    first = mem.add("I drink green tea every morning.", user_id=uid, wait=False, idempotency_key="req-1")
    again = mem.add("I drink green tea every morning.", user_id=uid, wait=False, idempotency_key="req-1")
    assert again["ingestion_id"] == first["ingestion_id"] and again["duplicate"] is True
    assert again["episodes"] == first["episodes"]
    other = mem.add("I drink green tea every morning.", user_id=f"{uid}-b", wait=False, idempotency_key="req-1")
    assert other["ingestion_id"] != first["ingestion_id"]  # keys are per scope
    assert len(mem.episodes(user_id=uid)["results"]) == 1
    mem.process_queue()
    assert len(texts(mem, uid)) == len(set(texts(mem, uid))) > 0
    with pytest.raises(InvalidInputError):
        mem.add("x", user_id=uid, idempotency_key="req-2")  # only queued adds keep keys


def test_failures_back_off_then_go_dead_and_a_requeue_runs_them(store_url: str, uid: str) -> None:
    broken = Memory(store_url, embedder=HashEmbedder(), extractor=FailingExtractor())
    try:
        r = broken.add("I moved to Berlin in May.", user_id=uid, wait=False)
        first = broken.process_queue(max_attempts=2, backoff=30)
        assert first["retry"] == 1
        status = broken.ingestion(r["ingestion_id"], user_id=uid)
        assert status["status"] == "failed" and "model is down" in status["error"]
        assert status["next_attempt_at"] > status["updated_at"]  # backed off: not due yet
        assert broken.process_queue(max_attempts=2)["claimed"] == 0

        broken.requeue(r["ingestion_id"], user_id=uid)  # a failed one may be run now, too
        assert broken.process_queue(max_attempts=1, backoff=0)["dead"] == 1
        dead = broken.ingestions(user_id=uid, status="dead")["results"]
        assert [d["ingestion_id"] for d in dead] == [r["ingestion_id"]]
        assert broken.episodes(user_id=uid)["results"][0]["extraction_status"] == "failed"
        assert broken.ingestions(user_id=uid, status="pending")["results"] == []
    finally:
        broken.close()

    fixed = Memory(store_url, embedder=HashEmbedder())
    try:
        back = fixed.requeue(r["ingestion_id"], user_id=uid)
        assert back["status"] == "pending" and back["attempts"] == 0
        assert fixed.process_queue()["done"] == 1
        assert fixed.ingestion(r["ingestion_id"], user_id=uid)["status"] == "done"
        assert any("Berlin" in t for t in texts(fixed, uid))
        with pytest.raises(InvalidInputError):
            fixed.requeue(r["ingestion_id"], user_id=uid)  # done: nothing to requeue
        with pytest.raises(NotFoundError):
            fixed.ingestion("no-such-id", user_id=uid)
    finally:
        fixed.close()


class CrashAfterCommit(SQLQueue):
    """A worker that dies after the transaction that wrote the facts, before it closed the row."""

    def finish(self, ingestion_id: str, worker: str, report: dict[str, Any], now: float) -> None:
        raise SystemExit("killed")


def test_a_redelivered_ingestion_stores_nothing_twice(mem: Memory, uid: str) -> None:
    r = mem.add("My brother Tom lives in Madrid. I play the cello.", user_id=uid, wait=False)
    crashing = QueueWorker(mem._ingest, CrashAfterCommit(mem.store), WorkerConfig(lease=0.5))  # type: ignore[arg-type]
    with pytest.raises(SystemExit):
        crashing.run_batch()
    stored = texts(mem, uid)
    assert stored and mem.ingestion(r["ingestion_id"], user_id=uid)["status"] == "running"
    assert mem.process_queue()["claimed"] == 0  # the lease still holds
    time.sleep(0.6)
    assert mem.process_queue()["done"] == 1
    assert texts(mem, uid) == stored
    status = mem.ingestion(r["ingestion_id"], user_id=uid)
    assert status["status"] == "done" and status["attempts"] == 2


def test_deleting_a_scope_or_forgetting_a_user_drops_its_queued_adds(mem: Memory, uid: str) -> None:
    kept = mem.add("I like jazz.", user_id=f"{uid}-other", wait=False)
    mem.add("I like jazz.", user_id=uid, wait=False, idempotency_key="k")
    mem.add("I like blues.", user_id=uid, agent_id="a1", wait=False)
    assert mem.delete_all(user_id=uid)["deleted"]["ingestions"] == 1
    assert mem.ingestions(user_id=uid)["results"] == []
    mem.forget_user(uid)
    assert mem.ingestions(user_id=uid, agent_id="a1")["results"] == []
    assert mem.process_queue()["claimed"] == 1  # only the other user's is left
    assert mem.ingestion(kept["ingestion_id"], user_id=f"{uid}-other")["status"] == "done"


class StallsThenLosesItsLease(SQLQueue):
    """A worker that stalls after reading its batch; meanwhile its lease passes and another worker runs the
    same ingestion to the end."""

    def __init__(self, mem: Memory, uid: str) -> None:
        super().__init__(mem.store)  # type: ignore[arg-type]
        self.mem, self.uid, self.after_other = mem, uid, None

    def extend(self, ids: Any, worker: str, lease: float, now: float) -> None:
        if self.after_other is None:
            time.sleep(0.3)
            assert self.mem.process_queue(lease=0.2)["done"] == 1
            self.after_other = self.mem.get_all(user_id=self.uid, limit=1000)["results"]
        super().extend(ids, worker, lease, now)


def test_two_workers_on_one_ingestion_store_it_once(mem: Memory, uid: str) -> None:
    r = mem.add("My brother Tom lives in Madrid. I play the cello on Sundays.", user_id=uid, wait=False)
    overtaken = StallsThenLosesItsLease(mem, uid)
    counts = QueueWorker(mem._ingest, overtaken, WorkerConfig(lease=0.2)).run_batch()
    assert counts["claimed"] == 1 and overtaken.after_other
    after = mem.get_all(user_id=uid, limit=1000)["results"]
    assert sorted(m["id"] for m in after) == sorted(m["id"] for m in overtaken.after_other)
    assert [m.get("updated_at") for m in sorted(after, key=lambda m: m["id"])] == [
        m.get("updated_at") for m in sorted(overtaken.after_other, key=lambda m: m["id"])]
    status = mem.ingestion(r["ingestion_id"], user_id=uid)
    assert status["status"] == "done" and status["attempts"] == 2
