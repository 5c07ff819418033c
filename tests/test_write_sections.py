"""Writers of one scope at once — threads of one process on both engines, and processes on one SQLite file —
each plan from what the others committed: one copy of a fact, one current value, a linked edit history."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from memstrata import HashEmbedder, Memory
from memstrata.backends.sqlite import SQLiteStore
from memstrata.models import Scope
from memstrata.tiers.base import Capability

WRITERS = 6
TRIALS = 5


def _at_once(n: int, fn: Callable[[int], Any]) -> list[Any]:
    """Run ``fn(0..n-1)`` on n threads released together."""
    start = threading.Barrier(n)

    def run(i: int) -> Any:
        start.wait()
        return fn(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


@pytest.fixture
def shared(store_url: str) -> Iterator[Memory]:
    m = Memory(store_url, embedder=HashEmbedder())
    yield m
    m.close()


def _current(m: Memory, uid: str) -> list[str]:
    return [r["memory"] for r in m.get_all(user_id=uid)["results"]]


def test_identical_adds_at_once_store_one_memory(shared: Memory, uid: str) -> None:
    for trial in range(TRIALS):
        user = f"{uid}-{trial}"
        _at_once(WRITERS, lambda _, u=user: shared.add("My favourite colour is teal", user_id=u))
        kept = _current(shared, user)
        assert len(kept) == 1, kept
        # the other writers merged into it: every mention is counted once
        assert shared.get_all(user_id=user)["results"][0]["mention_count"] == WRITERS


def test_contradicting_adds_at_once_leave_one_current_value(shared: Memory, uid: str) -> None:
    cities = ["Lisbon", "Paris", "Rome"]
    for trial in range(TRIALS):
        user = f"{uid}-{trial}"
        shared.add("I live in Berlin", user_id=user)
        _at_once(len(cities), lambda i, u=user: shared.add(f"I live in {cities[i]}", user_id=u))
        homes = [t for t in _current(shared, user) if "live" in t]
        assert len(homes) == 1, homes
        assert "Berlin" not in homes[0]


def test_updates_at_once_keep_a_linked_history(shared: Memory, uid: str) -> None:
    memory_id = shared.add("draft of the note", user_id=uid, infer=False)["results"][0]["id"]
    answers = _at_once(WRITERS, lambda i: shared.update(memory_id, f"version {i} of the note", user_id=uid))
    events = shared.history(memory_id, user_id=uid)
    chain = [(e["old_memory"], e["new_memory"]) for e in events]
    assert len(chain) == 1 + WRITERS
    assert all(old == prev_new for (_, prev_new), (old, _) in zip(chain, chain[1:], strict=False)), chain
    # each caller was told the text its own change replaced
    assert sorted(a["previous_memory"] for a in answers) == sorted(old for old, _ in chain[1:])


def test_delete_while_updating_leaves_no_half_written_memory(shared: Memory, uid: str) -> None:
    memory_id = shared.add("a note to drop", user_id=uid, infer=False)["results"][0]["id"]

    def act(i: int) -> str:
        try:
            if i == 0:
                shared.delete(memory_id, user_id=uid)
            else:
                shared.update(memory_id, f"edit {i}", user_id=uid)
            return "ok"
        except Exception as exc:  # an update that comes after the delete finds nothing to change
            return type(exc).__name__

    outcomes = _at_once(WRITERS, act)
    assert set(outcomes) <= {"ok", "NotFoundError"}, outcomes
    assert _current(shared, uid) == []
    events = [e["event"] for e in shared.history(memory_id, user_id=uid)]
    assert events[-1] == "DELETE" and events.count("DELETE") == 1, events


def test_scope_lock_is_reentrant_and_per_scope(shared: Memory, uid: str) -> None:
    store = shared.store
    mine, other = Scope(user_id=uid), Scope(user_id=f"{uid}-other")
    with store.scope_lock(mine), store.scope_lock(mine):  # the holder may enter again
        done = threading.Event()

        def write_other() -> None:
            with store.scope_lock(other):
                done.set()

        t = threading.Thread(target=write_other)
        t.start()
        assert done.wait(10), "another scope's writer waited for this one"
        t.join()
        blocked = threading.Event()

        def write_mine() -> None:
            with store.scope_lock(mine):
                blocked.set()

        t = threading.Thread(target=write_mine)
        t.start()
        assert not blocked.wait(0.3), "a second writer of the scope got in while the first held it"
    assert blocked.wait(10)
    t.join()
    assert store.supports(Capability.SCOPE_LOCK)


# -- processes on one SQLite file ---------------------------------------------------------------------


def _hold_in_child(path: str, user: str, held: Any, release: Any) -> None:
    store = SQLiteStore(path, dim=HashEmbedder().dim)
    with store.scope_lock(Scope(user_id=user)):
        held.set()
        release.wait(30)
    store.close()


def _add_in_child(path: str, user: str, start: Any, text: str) -> None:
    m = Memory(path, embedder=HashEmbedder())
    start.wait(30)
    m.add(text, user_id=user)
    m.close()


def test_a_scope_held_by_another_process_waits(tmp_path: Path, uid: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    path = str(tmp_path / "shared.db")
    store = SQLiteStore(path, dim=HashEmbedder().dim)
    held, release = ctx.Event(), ctx.Event()
    child = ctx.Process(target=_hold_in_child, args=(path, uid, held, release))
    child.start()
    try:
        assert held.wait(60), "the other process never took the lock"
        t0 = time.monotonic()
        with store.scope_lock(Scope(user_id=f"{uid}-other")):
            pass  # another scope is free
        assert time.monotonic() - t0 < 5
        got = threading.Event()

        def take() -> None:
            with store.scope_lock(Scope(user_id=uid)):
                got.set()

        t = threading.Thread(target=take)
        t.start()
        assert not got.wait(0.5), "this process entered a scope another process holds"
        release.set()
        assert got.wait(30)
        t.join()
    finally:
        release.set()
        child.join(30)
        store.close()
    assert child.exitcode == 0


def test_identical_adds_from_several_processes_store_one_memory(tmp_path: Path, uid: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    path = str(tmp_path / "shared.db")
    Memory(path, embedder=HashEmbedder()).close()  # the schema exists before the writers open it
    start = ctx.Event()
    kids = [ctx.Process(target=_add_in_child, args=(path, uid, start, "My favourite colour is teal"))
            for _ in range(3)]
    for k in kids:
        k.start()
    time.sleep(1.0)  # let them open the file and wait
    start.set()
    for k in kids:
        k.join(120)
    assert [k.exitcode for k in kids] == [0, 0, 0]
    m = Memory(path, embedder=HashEmbedder())
    try:
        kept = m.get_all(user_id=uid)["results"]
        assert [r["memory"] for r in kept] == ["My favourite colour is teal"]
        assert kept[0]["mention_count"] == 3
    finally:
        m.close()


# -- working state ------------------------------------------------------------------------------------

GOALS = ["My goal is to learn Portuguese", "I need to renew my passport", "Remind me to call the bank",
         "I must finish the tax return", "My goal is to run a marathon", "I need to book a dentist"]


def test_adds_at_once_to_one_conversation_keep_every_goal_and_task(shared: Memory, uid: str) -> None:
    shared.add("Hello there", user_id=uid, conversation_id="c")
    _at_once(len(GOALS), lambda i: shared.add(GOALS[i], user_id=uid, conversation_id="c"))
    state = shared.working_state("c", user_id=uid)
    assert len(state.goals) + len(state.tasks) == len(GOALS), (state.goals, state.tasks)
