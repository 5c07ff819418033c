"""Redis short-term and working tiers and the embedding cache, on redis-servers started by the tests.

Each server here is our own (free port, no persistence): the shared one at 6379 is never touched.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis

from memstrata import HashEmbedder, Memory
from memstrata.backends.redis import RedisShortTerm, RedisWorking, short_term_from_url
from memstrata.errors import BackendUnavailableError
from memstrata.models import Scope
from memstrata.tiers.base import Turn, WorkingState
from pg_support import free_port


class RedisServer:
    """A throwaway redis-server on 127.0.0.1:port."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("the Redis tests need redis-server on PATH (apt-get install redis-server)", pytrace=False)
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_timeout=0.2, socket_connect_timeout=0.2)
        for _ in range(100):
            try:
                client.ping()
                client.close()
                return self
            except redis.exceptions.ConnectionError:
                time.sleep(0.05)
        pytest.fail(f"redis-server did not start on port {self.port}", pytrace=False)

    def shutdown(self) -> None:
        subprocess.run(["redis-cli", "-p", str(self.port), "shutdown", "nosave"], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)
        if self.proc is not None:
            self.proc.wait(timeout=10)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    s = RedisServer().start()
    yield s
    s.stop()


@pytest.fixture
def client(server: RedisServer) -> Iterator[redis.Redis]:
    c = redis.Redis(port=server.port)
    c.flushdb()
    yield c
    c.close()


def _turns(*texts: str) -> list[Turn]:
    return [Turn("user", t, 1000.0 + i, f"e{i}") for i, t in enumerate(texts)]


def test_recent_turns_round_trip_bounded_and_expire(client: redis.Redis) -> None:
    st = RedisShortTerm(client, ttl_seconds=0.4, max_turns=3)
    a = Scope.of(user_id="a")
    st.push(a, "c1", _turns("t0", "t1", "t2", "t3", "t4"))
    got = st.recent(a, "c1", 10)
    assert [t.content for t in got] == ["t2", "t3", "t4"] and got[0].episode_id == "e2" and got[0].at == 1002.0
    assert [t.content for t in st.recent(a, "c1", 2)] == ["t3", "t4"]
    assert st.recent(a, "c1", 0) == [] and st.recent(a, "nope") == []
    wk = RedisWorking(client, ttl_seconds=0.4)
    wk.put(a, "c1", WorkingState(goals=["book flights"], entities=["Lisbon"], topic="travel", notes={"k": "v"},
                                 updated_at=5.0))
    state = wk.get(a, "c1")
    assert state is not None and [g.text for g in state.goals] == ["book flights"] and state.notes == {"k": "v"}
    time.sleep(0.6)
    assert st.recent(a, "c1") == [] and wk.get(a, "c1") is None


def test_recent_is_one_bounded_lookup_by_key(client: redis.Redis) -> None:
    st = RedisShortTerm(client, max_turns=50)
    scope = Scope.of(user_id="many")
    pipe = client.pipeline()
    for c in range(2000):  # many conversations: recent() must not look at them
        pipe.rpush(st._key(scope, f"c{c}"), '{"r":"user","c":"x","t":0}')
    pipe.execute()
    st.push(scope, "target", _turns(*[f"t{i}" for i in range(200)]))
    assert client.llen(st._key(scope, "target")) == 50
    client.config_resetstat()
    assert [t.content for t in st.recent(scope, "target", 5)] == [f"t{i}" for i in range(195, 200)]
    stats = client.info("commandstats")
    assert stats["cmdstat_lrange"]["calls"] == 1
    assert not {name for name in stats if name.split("|")[0] not in ("cmdstat_lrange", "cmdstat_config",
                                                                         "cmdstat_info")}


def test_scopes_are_isolated(client: redis.Redis) -> None:
    st, wk = RedisShortTerm(client), RedisWorking(client)
    a, b = Scope.of(user_id="a|b", agent_id="c"), Scope.of(user_id="a", agent_id="b|c")
    st.push(a, "conv", _turns("mine"))
    st.push(b, "conv", _turns("theirs"))
    st.push(a, "other", _turns("mine too"))
    wk.put(a, "conv", WorkingState(topic="a"))
    wk.put(b, "conv", WorkingState(topic="b"))
    assert [t.content for t in st.recent(a, "conv")] == ["mine"]
    assert [t.content for t in st.recent(b, "conv")] == ["theirs"]
    assert st.clear(a) == 2 and wk.clear(a) == 1
    assert st.recent(a, "conv") == [] and st.recent(a, "other") == []
    assert [t.content for t in st.recent(b, "conv")] == ["theirs"]
    assert (state := wk.get(b, "conv")) is not None and state.topic == "b"
    assert st.clear(b, "conv") == 1 and st.clear(b, "conv") == 0


def test_working_update_is_a_compare_and_set(client: redis.Redis) -> None:
    wk = RedisWorking(client)
    scope = Scope.of(user_id="cas")
    wk.put(scope, "c", WorkingState(notes={"n": "0"}))
    seen: list[str] = []

    def bump(state: WorkingState | None) -> WorkingState:
        assert state is not None
        seen.append(state.notes["n"])
        if len(seen) == 1:  # another writer stores a state between this read and this write
            wk.put(scope, "c", WorkingState(notes={"n": "5"}))
        return WorkingState(notes={"n": str(int(state.notes["n"]) + 1)})

    assert wk.update(scope, "c", bump).notes == {"n": "6"}
    assert seen == ["0", "5"]  # the change ran again on the newer state instead of overwriting it
    assert (state := wk.get(scope, "c")) is not None and state.notes == {"n": "6"}
    # an absent state counts too: one created meanwhile is not overwritten
    created: list[WorkingState | None] = []

    def first(state: WorkingState | None) -> WorkingState:
        created.append(state)
        if len(created) == 1:
            wk.put(scope, "new", WorkingState(topic="theirs"))
        return WorkingState(topic=f"after {state.topic if state else None}")

    assert wk.update(scope, "new", first).topic == "after theirs"
    assert client.sismember(wk._index(scope), "new")


def test_working_updates_from_many_threads_all_land(client: redis.Redis) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    wk = RedisWorking(client)
    scope = Scope.of(user_id="many-writers")
    start = threading.Barrier(8)

    def add(i: int) -> None:
        start.wait()
        for j in range(10):
            wk.update(scope, "c", lambda s, k=f"{i}-{j}": WorkingState(notes={**(s.notes if s else {}), k: "x"}))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(add, range(8)))
    state = wk.get(scope, "c")
    assert state is not None and len(state.notes) == 80


def test_memory_keeps_every_goal_of_adds_at_once_on_redis(server: RedisServer, client: redis.Redis,
                                                           tmp_path) -> None:  # type: ignore[no-untyped-def]
    import threading
    from concurrent.futures import ThreadPoolExecutor

    said = ["My goal is to learn Portuguese", "I need to renew my passport", "Remind me to call the bank",
            "I must finish the tax return", "My goal is to run a marathon", "I need to book a dentist"]
    # two Memory objects on one store and one Redis: as two servers would be
    mems = [Memory(str(tmp_path / "m.db"), embedder=HashEmbedder(), working=RedisWorking(server.url),
                   short_term=RedisShortTerm(server.url)) for _ in range(2)]
    try:
        mems[0].add("Hello there", user_id="u", conversation_id="c")
        start = threading.Barrier(len(said))

        def add(i: int) -> None:
            start.wait()
            mems[i % 2].add(said[i], user_id="u", conversation_id="c")

        with ThreadPoolExecutor(len(said)) as pool:
            list(pool.map(add, range(len(said))))
        state = mems[1].working_state("c", user_id="u")
        assert len(state.goals) + len(state.tasks) == len(said), (state.goals, state.tasks)
    finally:
        for m in mems:
            m.close()


def test_memory_uses_redis_for_short_term(server: RedisServer, client: redis.Redis, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with Memory(f"sqlite:///{tmp_path / 'm.db'}", embedder=HashEmbedder(), cache=server.url) as m:
        assert isinstance(m.short_term, RedisShortTerm) and isinstance(m.working, RedisWorking)
        m.add("I like green tea", user_id="u", conversation_id="c", infer=False)
        ctx = m.context("tea", user_id="u", conversation_id="c")
        assert [t["content"] for t in ctx["short_term"]] == ["I like green tea"]
    # Another process (a new Memory) sees the same turns: they live in Redis.
    st, _ = short_term_from_url(server.url)
    assert [t.content for t in st.recent(Scope.of(user_id="u"), "c")] == ["I like green tea"]
    st.close()


def test_redis_going_away_and_coming_back(caplog: pytest.LogCaptureFixture) -> None:
    own = RedisServer().start()  # a separate server, so shutting it down disturbs nothing else
    try:
        strict, _ = short_term_from_url(own.url)
        lenient, lenient_wk = short_term_from_url(own.url + "?fallback=1")
        scope = Scope.of(user_id="u")
        strict.push(scope, "c", _turns("before"))
        own.shutdown()

        t0 = time.monotonic()
        with pytest.raises(BackendUnavailableError, match="cannot reach Redis at 127.0.0.1"):
            strict.recent(scope, "c")
        with pytest.raises(BackendUnavailableError, match="fallback=True"):
            strict.push(scope, "c", _turns("lost"))
        assert time.monotonic() - t0 < 3

        with caplog.at_level(logging.WARNING, logger="memstrata.backends.redis"):
            lenient.push(scope, "c", _turns("during"))
            lenient.push(scope, "c", _turns("during 2"))
            assert [t.content for t in lenient.recent(scope, "c")] == ["during", "during 2"]
            lenient_wk.put(scope, "c", WorkingState(topic="offline"))
            assert (state := lenient_wk.get(scope, "c")) is not None and state.topic == "offline"
        unreachable = [r for r in caplog.records if "unreachable" in r.getMessage()]
        assert len(unreachable) == 2  # once per tier, not once per call
        assert lenient.degraded

        own.start()
        assert strict.recent(scope, "c") == []  # nosave: the server came back empty, and reconnected at once
        strict.push(scope, "c", _turns("after"))
        assert [t.content for t in strict.recent(scope, "c")] == ["after"]
        time.sleep(2.1)  # the fallback tier retries Redis every RETRY_INTERVAL seconds
        lenient.push(scope, "c2", _turns("back in redis"))
        assert not lenient.degraded
        raw = redis.Redis(port=own.port)
        assert raw.llen(lenient._key(scope, "c2")) == 1
        raw.close()
        strict.close()
        lenient.close()
    finally:
        own.stop()


