"""``AsyncMemory`` on real SQLite: the bounded worker pool, ``async with`` / ``aclose``, and what cancelling a
call does (a queued call never runs; a running one finishes before the store closes)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from memstrata import AsyncMemory, InvalidInputError, Memory, MemstrataError
from memstrata.providers.embedders import HashEmbedder


class GatedEmbedder(HashEmbedder):
    """The hash embedder, but ``embed`` waits at a gate while it is shut: a call can be held inside its worker."""

    def __init__(self) -> None:
        super().__init__()
        self.open = threading.Event()
        self.open.set()
        self.lock = threading.Lock()
        self.inside = 0
        self.most_inside = 0
        self.waiting = threading.Semaphore(0)  # released once per call that reached the gate

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        with self.lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        self.waiting.release()
        try:
            assert self.open.wait(10), "the gate was never opened"
            return super().embed(texts)
        finally:
            with self.lock:
                self.inside -= 1


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'a.db'}"


async def _reached_gate(emb: GatedEmbedder, count: int = 1) -> None:
    for _ in range(count):
        assert await asyncio.to_thread(emb.waiting.acquire, True, 10)


async def test_async_with_closes_the_store(tmp_path: Path) -> None:
    async with AsyncMemory(_url(tmp_path), embedder="hash") as am:
        await am.add("I keep bees in the garden", user_id="u", infer=False)
        assert len((await am.get_all(user_id="u"))["results"]) == 1
    with pytest.raises(MemstrataError, match="closed"):
        am.sync.get_all(user_id="u")
    with pytest.raises(MemstrataError, match="closed"):
        await am.get_all(user_id="u")
    await am.aclose()  # idempotent


async def test_calls_run_on_a_bounded_pool_and_the_loop_stays_free(tmp_path: Path) -> None:
    emb = GatedEmbedder()
    am = AsyncMemory.from_memory(Memory(_url(tmp_path), embedder=emb), max_workers=2)
    try:
        emb.open.clear()
        calls = [asyncio.create_task(am.add(f"fact number {i} about bees", user_id="u", infer=False))
                 for i in range(5)]
        await _reached_gate(emb, 2)
        await asyncio.sleep(0.05)  # the loop runs while both workers are held
        assert emb.inside == 2
        emb.open.set()
        await asyncio.gather(*calls)
        assert emb.most_inside == 2
        assert len((await am.get_all(user_id="u"))["results"]) == 5
    finally:
        emb.open.set()
        await am.aclose()


async def test_cancelling_drops_a_queued_call_and_lets_a_running_one_finish(tmp_path: Path) -> None:
    emb = GatedEmbedder()
    am = AsyncMemory.from_memory(Memory(_url(tmp_path), embedder=emb), max_workers=1)
    emb.open.clear()
    running = asyncio.create_task(am.add("I moved to Lisbon", user_id="u", infer=False))
    await _reached_gate(emb)
    queued = asyncio.create_task(am.add("I play the cello", user_id="u", infer=False))
    await asyncio.sleep(0)
    for task in (queued, running):
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    emb.open.set()
    await am.aclose()  # waits for the running add; the queued one never starts
    with Memory(_url(tmp_path), embedder="hash") as m:
        assert [r["memory"] for r in m.get_all(user_id="u")["results"]] == ["I moved to Lisbon"]
        assert [e["content"] for e in m.episodes(user_id="u")["results"]] == ["I moved to Lisbon"]


async def test_errors_and_results_come_back_as_from_memory(tmp_path: Path) -> None:
    async with AsyncMemory(_url(tmp_path), embedder="hash") as am:
        with pytest.raises(InvalidInputError):
            await am.search("", user_id="u")
        state = await am.working_state("c1", user_id="u")
        assert state.to_dict() == am.sync.working_state("c1", user_id="u").to_dict()
        await am.reset()
        assert (await am.get_all(user_id="u"))["results"] == []
    with Memory(_url(tmp_path), embedder="hash") as m, pytest.raises(InvalidInputError):
        AsyncMemory.from_memory(m, max_workers=0)
