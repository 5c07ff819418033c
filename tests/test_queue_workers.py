"""Workers as real processes: ``kill -9`` one in the middle of a batch, let a second ``memstrata worker``
finish, and check that every acknowledged add was processed once — nothing lost, nothing stored twice.
On every ``--backends`` engine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from memstrata import Memory
from memstrata.providers.embedders import HashEmbedder

SRC = str(Path(__file__).resolve().parents[1] / "src")
# A worker whose embedder and extractor take their time, so that it is surely killed with a batch in hand.
SLOW_WORKER = textwrap.dedent("""
    import sys, time
    from memstrata import Memory
    from memstrata.cli.worker import loop
    from memstrata.ingest.rules import RulesExtractor
    from memstrata.providers.embedders import HashEmbedder

    class Slow(HashEmbedder):
        def embed(self, texts):
            time.sleep(0.4)
            return super().embed(texts)

    class SlowRules(RulesExtractor):
        def extract(self, *args, **kw):
            time.sleep(0.3)
            return super().extract(*args, **kw)

    loop(Memory(sys.argv[1], embedder=Slow(), extractor=SlowRules()), batch=8, lease=3.0, poll=0.1)
""")
PLACES = ["Lisbon", "Porto", "Madrid", "Berlin", "Oslo", "Vienna", "Prague", "Dublin", "Athens", "Rome"]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}


def said(i: int) -> list[dict[str, str]]:
    place = PLACES[i % len(PLACES)]
    return [{"role": "user", "content": f"I visited the old library in {place} with my cousin number {i}."},
            {"role": "assistant", "content": "That sounds lovely."},
            {"role": "user", "content": f"My colleague Rita{i} collects stamps from {place}."}]


def statuses(m: Memory, users: list[str]) -> dict[str, str]:
    return {r["ingestion_id"]: r["status"] for u in users
            for r in m.ingestions(user_id=u, limit=1000)["results"]}


def wait_for(check, seconds: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_kill_9_mid_batch_loses_nothing_and_stores_nothing_twice(store_url: str, uid: str, tmp_path: Path) -> None:
    m = Memory(store_url, embedder=HashEmbedder())
    users = [f"{uid}-{k}" for k in range(4)]
    acknowledged: dict[str, str] = {}
    for i in range(32):
        u = users[i % 4]
        r = m.add(said(i), user_id=u, conversation_id=f"c{i}", wait=False)
        acknowledged[r["ingestion_id"]] = u
        m.add(said(i), user_id=f"ref-{u}", conversation_id=f"c{i}")  # the same, processed directly
    slow = subprocess.Popen([sys.executable, "-c", SLOW_WORKER, store_url], env=env())
    second = None
    try:
        wait_for(lambda: "done" in statuses(m, users).values(), 60, "the first worker's first add")
        os.kill(slow.pid, signal.SIGKILL)
        slow.wait(10)
        mid = statuses(m, users)
        assert "running" in mid.values(), mid  # killed with claims in hand
        assert 0 < list(mid.values()).count("done") < len(acknowledged)

        log = tmp_path / "worker.log"
        with log.open("w") as sink:
            second = subprocess.Popen([sys.executable, "-m", "memstrata.cli", "--store", store_url, "--embedder",
                                       "hash", "worker", "--lease", "3", "--poll", "0.1", "--batch", "5"],
                                      env=env(), stdout=sink, stderr=subprocess.STDOUT)
        wait_for(lambda: set(statuses(m, users).values()) == {"done"} or second.poll() is not None, 120,
                 "every add to be done")
        second.send_signal(signal.SIGTERM)
        second.wait(30)
        assert second.returncode == 0, log.read_text()
        assert "processed" in log.read_text()
    finally:
        for proc in (slow, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)

    final = statuses(m, users)
    assert set(final) == set(acknowledged) and set(final.values()) == {"done"}
    redelivered = [i for i in final if m.ingestion(i, user_id=acknowledged[i])["attempts"] > 1]
    assert redelivered  # the killed worker's claims went to the second one
    for u in users:
        episodes = m.episodes(user_id=u, limit=1000)["results"]
        assert len(episodes) == 8 * 3 and len({e["id"] for e in episodes}) == 24  # every message once
        assert {e["extraction_status"] for e in episodes} <= {"done", "skipped"}
        mine = [r["memory"] for r in m.get_all(user_id=u, limit=1000)["results"]]
        ref = [r["memory"] for r in m.get_all(user_id=f"ref-{u}", limit=1000)["results"]]
        assert len(mine) == len(set(mine))  # nothing stored twice
        assert sorted(mine) == sorted(ref) and mine
    m.close()
