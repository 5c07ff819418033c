"""Three ``memstrata serve`` processes on one PostgreSQL + pgvector and one Redis, behind haproxy (round robin),
all on loopback: no acknowledged write is lost under concurrent adds from several clients, a client reads its
own write from another server at once, a conversation's recent turns and API keys are the same on every
server, the audit chain stays whole under concurrent writes through all three, and a key's rate limit is one
budget across the processes.

Every part is real: the embedded PostgreSQL of pg_support, a redis-server of our own, the CLI's ``serve``, and
Debian's haproxy (the tests fail, never skip, without it). The servers use the deterministic hash embedder:
three MiniLM processes would cost this machine's memory and cores without testing anything more here.
"""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from memstrata import Memory
from memstrata.privacy.access import create_key, revoke_key
from memstrata.providers.embedders import HashEmbedder
from multi_server_support import PEPPER, Cluster
from pg_support import fresh_database
from test_backends_redis import RedisServer

pytestmark = pytest.mark.scale

RATE, BURST = 1.0, 60  # per key, for every server: the rate-limit test spends one burst, the others stay under it
WORDS = ("amber basil cobalt dune ember fjord garnet harbor indigo juniper kelp lumen maple nectar onyx pebble "
         "quartz raven sable tundra umber velvet willow yarrow zephyr").split()


@dataclass
class Stack:
    cluster: Cluster
    admin: Memory  # the operator's own handle on the shared store: makes and revokes keys

    @property
    def url(self) -> str:
        return self.cluster.url

    def key(self, scopes: str, users: list[str] | None = None) -> str:
        key, _ = create_key(self.admin, None, scopes, users, pepper=PEPPER)
        return key

    def client(self, key: str, base: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=base or self.url, headers={"Authorization": f"Bearer {key}"}, timeout=60)


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    store = fresh_database(request)
    redis_server = RedisServer().start()
    cluster = Cluster(store, redis_server.url, ["--embedder", "hash", "--audit", "--rate-limit", str(RATE),
                                                "--burst", str(BURST)])
    admin = Memory(store, embedder=HashEmbedder())
    try:
        cluster.start()
        yield Stack(cluster, admin)
    finally:
        admin.close()
        cluster.stop()
        redis_server.stop()


@pytest.fixture
def logs_on_failure(stack: Stack) -> Iterator[None]:
    """The servers' and haproxy's logs, printed when the test fails."""
    yield
    print(stack.cluster.logs())


def _text(writer: int, i: int) -> str:
    rng = random.Random(f"{writer}-{i}")
    return f"writer {writer} note {i}: the {rng.choice(WORDS)} {rng.choice(WORDS)} code is {uuid.uuid4().hex[:8]}"


def _listed(client: httpx.Client, user: str) -> list[str]:
    ids, cursor = [], None
    while True:
        params: dict[str, Any] = {"user_id": user, "limit": 25, **({"cursor": cursor} if cursor else {})}
        r = client.get("/v1/memories", params=params)
        assert r.status_code == 200, r.text
        ids += [m["id"] for m in r.json()["results"]]
        cursor = r.json()["next_cursor"]
        if not cursor:
            return ids


def test_concurrent_adds_from_several_clients_are_all_kept(stack: Stack, logs_on_failure: None) -> None:
    user, writers, per_writer = f"team-{uuid.uuid4().hex[:8]}", 4, 12
    keys = [stack.key("read,write", [user]) for _ in range(writers)]

    def write(w: int) -> tuple[dict[str, str], set[str]]:
        acked, served = {}, set()
        with stack.client(keys[w]) as client:
            for i in range(per_writer):
                text = _text(w, i)
                r = client.post("/v1/memories", json={"messages": text, "user_id": user, "infer": False,
                                                      "conversation_id": f"w{w}"})
                assert r.status_code == 201, r.text
                (item,) = r.json()["results"]
                assert item["event"] == "ADD"
                acked[item["id"]] = text
                served.add(r.headers["x-served-by"])
        return acked, served

    with ThreadPoolExecutor(writers) as pool:
        results = list(pool.map(write, range(writers)))
    acked = {k: v for part, _ in results for k, v in part.items()}
    assert len(acked) == writers * per_writer
    assert set().union(*(served for _, served in results)) == {"s1", "s2", "s3"}

    def check(w: int) -> None:
        # Each client checks another's writes, through the balancer: by id, then by search.
        theirs = results[(w + 1) % writers][0]
        with stack.client(keys[w]) as client:
            for memory_id, text in theirs.items():
                r = client.get(f"/v1/memories/{memory_id}", params={"user_id": user})
                assert r.status_code == 200, r.text
                assert r.json()["memory"] == text
                r = client.post("/v1/memories/search", json={"query": text, "user_id": user, "limit": 3})
                assert r.status_code == 200, r.text
                assert memory_id in [m["id"] for m in r.json()["results"]], text

    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(check, range(writers)))
    with stack.client(keys[0]) as client:
        listed = _listed(client, user)
    assert sorted(listed) == sorted(acked)  # every acknowledged add, once


def test_the_writer_reads_its_own_write_from_every_server_at_once(stack: Stack, logs_on_failure: None) -> None:
    user = f"raw-{uuid.uuid4().hex[:8]}"
    key = stack.key("read,write", [user])
    direct = [stack.client(key, s.url) for s in stack.cluster.servers]
    with stack.client(key) as client:
        for i in range(6):
            text = f"My locker number at the gym is {4000 + i}, next to the {WORDS[i]} door"
            r = client.post("/v1/memories", json={"messages": text, "user_id": user, "infer": False})
            assert r.status_code == 201, r.text
            memory_id, writer = r.json()["results"][0]["id"], r.headers["x-served-by"]
            # The very next request through the balancer goes to another server (round robin).
            got = client.get(f"/v1/memories/{memory_id}", params={"user_id": user})
            assert got.status_code == 200 and got.json()["memory"] == text, got.text
            assert got.headers["x-served-by"] != writer
            found = client.post("/v1/memories/search", json={"query": text, "user_id": user, "limit": 3})
            assert memory_id in [m["id"] for m in found.json()["results"]]
            # And straight from each server, the one that wrote it included.
            for server in direct:
                got = server.get(f"/v1/memories/{memory_id}", params={"user_id": user})
                assert got.status_code == 200 and got.json()["memory"] == text, got.text
    for server in direct:
        server.close()


def test_recent_turns_are_the_same_whichever_server_answers(stack: Stack, logs_on_failure: None) -> None:
    user = f"chat-{uuid.uuid4().hex[:8]}"
    key = stack.key("read,write", [user])
    turns = [("user", "I am planning a trip to Kyoto in April"), ("assistant", "Kyoto in April is cherry season"),
             ("user", "Book me a ryokan near Gion"), ("assistant", "I found three ryokans near Gion"),
             ("user", "The second one looks good"), ("assistant", "Booked the second ryokan")]
    servers = stack.cluster.servers
    for i, (role, content) in enumerate(turns):
        # Each turn written by the next server in turn.
        with stack.client(key, servers[i % len(servers)].url) as client:
            r = client.post("/v1/memories", json={"messages": [{"role": role, "content": content}], "user_id": user,
                                                  "conversation_id": "trip"})
            assert r.status_code == 201, r.text
    for server in servers:
        with stack.client(key, server.url) as client:
            r = client.post("/v1/memories/context", json={"query": "where am I staying?", "user_id": user,
                                                          "conversation_id": "trip", "recent_turns": 6})
            assert r.status_code == 200, r.text
            assert [(t["role"], t["content"]) for t in r.json()["short_term"]] == turns
            assert "## Recent conversation" in r.json()["text"]


def test_a_key_made_on_the_shared_store_works_on_every_server_and_revocation_too(
    stack: Stack, logs_on_failure: None
) -> None:
    user = f"keys-{uuid.uuid4().hex[:8]}"
    # Made while the servers run, by the CLI an operator would use, on the same store and pepper.
    env = {**stack.cluster.servers[0].env}
    made = subprocess.run(
        [sys.executable, "-c", "from memstrata.cli import main; main()", "--store", stack.cluster.store,
         "--embedder", "hash", "--json", "keys", "create", "--scope", "read,write", "--user", user],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert made.returncode == 0, made.stderr
    info = json.loads(made.stdout)
    key, key_id = info["key"], info["id"]
    for server in stack.cluster.servers:
        with stack.client(key, server.url) as client:
            me = client.get("/v1/me")
            assert me.status_code == 200, me.text
            assert me.json()["key_id"] == key_id
    revoke_key(stack.admin, key_id)
    for server in stack.cluster.servers:
        with stack.client(key, server.url) as client:
            refused = client.get("/v1/me")
            assert refused.status_code == 401 and "revoked" in refused.json()["detail"]


def test_audit_chain_verifies_after_concurrent_writes_through_all_servers(
    stack: Stack, logs_on_failure: None
) -> None:
    admin_key = stack.key("read,write,admin")
    with stack.client(admin_key) as admin:
        before = admin.get("/v1/audit/verify")
        assert before.status_code == 200, before.text
        assert before.json()["ok"], before.json()
    clients, per_client = 6, 8
    users = [f"audit-{uuid.uuid4().hex[:8]}" for _ in range(clients)]
    keys = [stack.key("read,write", [u]) for u in users]

    def write(c: int) -> Counter[str]:
        served: Counter[str] = Counter()
        with stack.client(keys[c]) as client:
            for i in range(per_client):
                r = client.post("/v1/memories", json={"messages": _text(c, i), "user_id": users[c]})
                assert r.status_code == 201, r.text
                served[r.headers["x-served-by"]] += 1
        return served

    with ThreadPoolExecutor(clients) as pool:
        served = sum(pool.map(write, range(clients)), Counter())
    assert set(served) == {"s1", "s2", "s3"}
    with stack.client(admin_key) as admin:
        after = admin.get("/v1/audit/verify")
        assert after.status_code == 200, after.text
        result = after.json()
        assert result["ok"] and result["problems"] == [], result
        assert result["entries"] == result["head_seq"]  # 1..n with no gap and no repeat
        assert result["entries"] >= before.json()["entries"] + clients * per_client
        # Every add left its entry in the chain, whichever process appended it.
        for user in users:
            entries = admin.get("/v1/audit", params={"user_id": user, "limit": 1000}).json()
            assert sum(e["operation"] == "add" for e in entries) == per_client, entries


def _metric(base: str, name: str) -> float:
    text = httpx.get(f"{base}/metrics", timeout=10).text
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))


def test_a_keys_rate_limit_is_one_budget_across_the_servers(stack: Stack, logs_on_failure: None) -> None:
    key = stack.key("read")
    servers = stack.cluster.servers
    counted_before = sum(_metric(s.url, "memstrata_rate_limited_total") for s in servers)
    sent = 150  # in-process buckets would let all of them through: three bursts of 60 are 180

    def calls(n: int) -> list[tuple[int, str]]:
        with stack.client(key) as client:
            return [(r.status_code, r.headers.get("x-served-by", "?")) for r in (client.get("/v1/me")
                                                                              for _ in range(n))]

    start = time.monotonic()
    with ThreadPoolExecutor(6) as pool:
        answers = [a for part in pool.map(calls, [sent // 6] * 6) for a in part]
    elapsed = time.monotonic() - start
    codes = Counter(code for code, _ in answers)
    assert set(codes) <= {200, 429}, codes
    # One burst, plus what the rate refilled while the requests ran.
    assert BURST <= codes[200] <= BURST + math.ceil(elapsed * RATE) + 1, (codes, elapsed)
    refused_by = {server for code, server in answers if code == 429}
    assert len(refused_by) >= 2, refused_by  # refused by several processes: the budget is shared
    counted = sum(_metric(s.url, "memstrata_rate_limited_total") for s in servers) - counted_before
    assert counted == codes[429]


# -- Races ------------------------------------------------------------------------------------------------
# Requests released together through different servers, each step one that reads and then writes what it
# read: dedup and supersession (planned inside the scope's write section, an advisory lock on PostgreSQL),
# an update's previous text (read again inside it), and the working state (a compare-and-set on Redis).
# A race that happens not to fire in one trial proves little, so each test runs several.

RACE_TRIALS = 6


def _race(stack: Stack, key: str, requests: list[tuple[str, str, dict[str, Any]]]) -> list[httpx.Response]:
    """The requests (method, path, body) sent at the same moment, each to the next server in turn."""
    servers = stack.cluster.servers
    start = threading.Barrier(len(requests))

    def send(i: int) -> httpx.Response:
        method, path, body = requests[i]
        with stack.client(key, servers[i % len(servers)].url) as client:
            start.wait()
            return client.request(method, path, json=body)

    with ThreadPoolExecutor(len(requests)) as pool:
        answers = list(pool.map(send, range(len(requests))))
    assert all(r.is_success for r in answers), [r.text for r in answers]
    return answers


def _current(stack: Stack, key: str, user: str) -> list[str]:
    with stack.client(key) as client:
        return [m["memory"] for m in client.get("/v1/memories", params={"user_id": user}).json()["results"]]


def test_race_identical_adds_at_once_keep_one_memory(stack: Stack, logs_on_failure: None) -> None:
    copies = []
    for _ in range(RACE_TRIALS):
        user = f"dup-{uuid.uuid4().hex[:8]}"
        key = stack.key("read,write", [user])
        _race(stack, key, [("POST", "/v1/memories", {"messages": "My favourite colour is teal", "user_id": user})] * 3)
        copies.append(len(_current(stack, key, user)))
    assert copies == [1] * RACE_TRIALS, f"copies of one fact per trial: {copies}"


def test_race_contradicting_adds_at_once_leave_one_current_value(stack: Stack, logs_on_failure: None) -> None:
    current = []
    for _ in range(RACE_TRIALS):
        user = f"city-{uuid.uuid4().hex[:8]}"
        key = stack.key("read,write", [user])
        with stack.client(key) as client:
            first = client.post("/v1/memories", json={"messages": "I live in Berlin", "user_id": user})
            assert first.status_code == 201, first.text
        _race(stack, key, [("POST", "/v1/memories", {"messages": f"I live in {city}", "user_id": user})
                           for city in ("Lisbon", "Paris", "Rome")])
        current.append(sorted(m for m in _current(stack, key, user) if "live" in m))
    assert all(len(c) == 1 for c in current), f"current homes per trial: {current}"


def test_race_updates_at_once_keep_a_linked_history(stack: Stack, logs_on_failure: None) -> None:
    user = f"edit-{uuid.uuid4().hex[:8]}"
    key = stack.key("read,write", [user])
    broken = []
    for trial in range(RACE_TRIALS // 2):
        with stack.client(key) as client:
            r = client.post("/v1/memories", json={"messages": f"draft {trial} of the note", "user_id": user,
                                                  "infer": False})
            memory_id = r.json()["results"][0]["id"]
        _race(stack, key, [("PATCH", f"/v1/memories/{memory_id}?user_id={user}", {"text": f"version {i} of note"})
                           for i in range(3)])
        with stack.client(key) as client:
            events = client.get(f"/v1/memories/{memory_id}/history", params={"user_id": user}).json()
        chain = [(e["old_memory"], e["new_memory"]) for e in events]
        # Each event starts from the text the one before it left.
        if any(old != prev_new for (_, prev_new), (old, _) in zip(chain, chain[1:], strict=False)):
            broken.append(chain)
    assert not broken, broken


def test_race_working_state_keeps_every_goal_and_task(stack: Stack, logs_on_failure: None) -> None:
    said = ["My goal is to learn Portuguese", "I need to renew my passport", "Remind me to call the bank",
            "I must finish the tax return", "My goal is to run a marathon", "I need to book a dentist"]
    kept = []
    for _ in range(RACE_TRIALS // 2):
        user = f"plan-{uuid.uuid4().hex[:8]}"
        key = stack.key("read,write", [user])
        with stack.client(key) as client:  # the conversation has a state before the race
            client.post("/v1/memories", json={"messages": "Hello there", "user_id": user, "conversation_id": "c"})
        _race(stack, key, [("POST", "/v1/memories", {"messages": m, "user_id": user, "conversation_id": "c"})
                           for m in said])
        with stack.client(key) as client:
            state = client.post("/v1/memories/context", json={"query": "what now", "user_id": user,
                                                              "conversation_id": "c"}).json()["working"]
        kept.append(len(state["goals"]) + len(state["tasks"]))
    assert kept == [len(said)] * len(kept), f"goals and tasks kept per trial, of {len(said)}: {kept}"
