"""The layered read cache across processes: two ``Memory`` objects on one store and one Redis stand for two
servers (each has its own in-process layer; only the store and Redis are shared).

Every result read through the cache is compared with a ``Memory`` that has no cache at all, on the same store:
the cache may save work, never change an answer. Redis is a server of our own on a free port (stopping it
disturbs nobody); each test uses its own key prefix.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis
from starlette.testclient import TestClient

from memstrata import HashEmbedder, Memory
from memstrata.config import CacheLayers
from memstrata.errors import ConfigurationError
from memstrata.retrieve import layers as layers_module
from memstrata.server import create_app
from memstrata.settings import Settings
from test_backends_redis import RedisServer


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def layers(redis_server: RedisServer) -> CacheLayers:
    return CacheLayers(url=f"{redis_server.url}?prefix=t{uuid.uuid4().hex[:8]}:")


@pytest.fixture
def fast_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shorter waits after an outage, so the tests that stop Redis do not sleep for seconds."""
    monkeypatch.setattr(layers_module, "RETRY_SECONDS", 0.2)
    monkeypatch.setattr(layers_module, "SCOPE_GRACE_SECONDS", 0.6)


class Processes:
    """Two cached memories and an uncached one on one store."""

    def __init__(self, store: str, layers: CacheLayers) -> None:
        self.a = Memory(store, embedder=HashEmbedder(), cache_layers=layers)
        self.b = Memory(store, embedder=HashEmbedder(), cache_layers=layers)
        self.plain = Memory(store, embedder=HashEmbedder())

    def close(self) -> None:
        for m in (self.a, self.b, self.plain):
            m.close()


@pytest.fixture
def procs(store_url: str, layers: CacheLayers) -> Iterator[Processes]:
    p = Processes(store_url, layers)
    yield p
    p.close()


def _ids(m: Memory, query: str, **scope: Any) -> list[str]:
    return [r["id"] for r in m.search(query, **scope)["results"]]


def _texts(m: Memory, query: str, **scope: Any) -> set[str]:
    return {r["memory"] for r in m.search(query, **scope)["results"]}


def _count(m: Memory, kind: str, layer: str, outcome: str) -> int:
    return int(m.cache_layers.snapshot()["layers"][kind][layer][outcome])


def _same_as_uncached(p: Processes, query: str, **scope: Any) -> list[str]:
    """The ids both cached processes return, checked against the uncached memory (as sets: the recency of use
    that searches record may reorder equal scores)."""
    want = set(_ids(p.plain, query, **scope))
    for m in (p.a, p.b):
        assert set(_ids(m, query, **scope)) == want, query
    return sorted(want)


def test_a_write_through_one_process_is_seen_by_the_other_at_once(procs: Processes) -> None:
    u = f"u-{uuid.uuid4().hex[:6]}"
    procs.a.add("I live in Lisbon", user_id=u)
    query = "who lives in Porto?"
    _same_as_uncached(procs, query, user_id=u)
    before = _count(procs.b, "scope", "process", "hit")
    _same_as_uncached(procs, query, user_id=u)  # the second time from the cache
    assert _count(procs.b, "scope", "process", "hit") > before

    added = procs.a.add("My sister Anna lives in Porto", user_id=u)["results"][0]["id"]
    assert "My sister Anna lives in Porto" in _texts(procs.b, query, user_id=u)  # no read waits for a TTL
    assert added in _same_as_uncached(procs, query, user_id=u)

    _same_as_uncached(procs, "Braga", user_id=u)  # cached before the update names Braga
    procs.a.update(added, "My sister Anna lives in Braga", user_id=u)
    assert "My sister Anna lives in Braga" in _texts(procs.b, "Braga", user_id=u)
    assert added in _same_as_uncached(procs, "Braga", user_id=u)

    procs.b.delete(added, user_id=u)  # the other way round: b writes, a reads
    assert added not in _ids(procs.a, "Braga", user_id=u)
    _same_as_uncached(procs, "Braga", user_id=u)

    procs.a.delete_all(user_id=u)
    assert _ids(procs.b, query, user_id=u) == []


def test_a_write_that_never_bumped_the_version_is_seen_too(procs: Processes) -> None:
    """A writer without the cache (a worker started without it, or one cut off from Redis) bumps no version;
    the store's change marker, kept with every entry, still retires what the readers cached."""
    u = f"u-{uuid.uuid4().hex[:6]}"
    procs.a.add("I live in Lisbon", user_id=u)
    for _ in range(2):
        _same_as_uncached(procs, "who lives in Porto?", user_id=u)
    added = procs.plain.add("My sister Anna lives in Porto", user_id=u)["results"][0]["id"]
    assert added in _ids(procs.b, "who lives in Porto?", user_id=u)
    assert added in _same_as_uncached(procs, "who lives in Porto?", user_id=u)


def test_the_writer_reads_its_own_write(tmp_path: Path, layers: CacheLayers) -> None:
    with Memory(f"sqlite:///{tmp_path / 'm.db'}", embedder=HashEmbedder(), cache_layers=layers) as m:
        m.search("green tea", user_id="u")
        m.search("green tea", user_id="u")
        new = m.add("I like green tea", user_id="u")["results"][0]["id"]
        assert _ids(m, "green tea", user_id="u") == [new]


def test_hit_counters_move_per_layer_and_kind(tmp_path: Path, layers: CacheLayers) -> None:
    p = Processes(f"sqlite:///{tmp_path / 'm.db'}", layers)
    try:
        p.a.add("I work at Acme with Jon", user_id="u")
        p.a.search("where do I work?", user_id="u")
        assert _count(p.a, "query_vector", "process", "miss") == 1
        assert _count(p.a, "query_vector", "redis", "miss") == 1
        assert _count(p.a, "scope", "redis", "miss") == 1  # the candidate lists; entity names stay in process
        p.a.search("where do I work?", user_id="u")
        assert _count(p.a, "query_vector", "process", "hit") == 1
        assert _count(p.a, "scope", "process", "hit") == 2  # candidates and entity names
        p.b.search("where do I work?", user_id="u")  # another process: its own memory is empty
        assert _count(p.b, "query_vector", "process", "miss") == 1
        assert _count(p.b, "query_vector", "redis", "hit") == 1
        assert _count(p.b, "scope", "redis", "hit") == 1
        assert _count(p.b, "scope", "process", "miss") == 2

        app = create_app(p.b, auth=False, rate_limit=None, mcp=False, ui=False)
        with TestClient(app, base_url="http://127.0.0.1") as client:
            text = client.get("/metrics").text
        assert 'memstrata_cache_lookups_total{kind="scope",layer="redis",outcome="hit"} 1.0' in text
        assert 'memstrata_cache_lookups_total{kind="query_vector",layer="redis",outcome="hit"} 1.0' in text
    finally:
        p.close()


def test_query_vectors_are_shared_and_equal_to_the_embedders(tmp_path: Path, layers: CacheLayers) -> None:
    calls: list[list[str]] = []
    emb = HashEmbedder()

    def embed(texts: list[str]) -> np.ndarray:
        calls.append(list(texts))
        return emb.embed(texts)

    with Memory(f"sqlite:///{tmp_path / 'm.db'}", embedder=emb, cache_layers=layers) as first, \
            Memory(f"sqlite:///{tmp_path / 'm.db'}", embedder=emb, cache_layers=layers) as second:
        one = first.cache_layers.query_vectors(embed)
        two = second.cache_layers.query_vectors(embed)
        v = one.get("a question")
        assert np.array_equal(two.get("a question"), v) and calls == [["a question"]]
        assert np.array_equal(v, emb.embed(["a question"])[0])
        # The shared layer takes a batch and sends only what it lacks to the inner callable.
        shared = layers_module.SharedVectors(first.cache_layers, embed)
        out = shared(["a question", "another one"])
        assert calls[-1] == ["another one"] and out.shape == (2, emb.dim)
        assert np.array_equal(out[1], emb.embed(["another one"])[0])


def test_no_entry_of_one_scope_is_read_for_another(procs: Processes) -> None:
    procs.a.add("My locker code is 4471", user_id="alice")
    procs.a.add("My locker code is 9902", user_id="bob")
    procs.a.add("My locker code is 5555", user_id="alice", agent_id="helper")
    for _ in range(2):  # the second round is served from the cache
        for scope, code in (({"user_id": "alice"}, "4471"), ({"user_id": "bob"}, "9902"),
                            ({"user_id": "alice", "agent_id": "helper"}, "5555")):
            for m in (procs.a, procs.b):
                texts = _texts(m, "what is my locker code?", **scope)
                assert texts == {f"My locker code is {code}"}, (scope, texts)
    assert _count(procs.b, "scope", "process", "hit") > 0


def test_redis_down_reads_the_database_and_fails_nothing(tmp_path: Path, fast_retry: None) -> None:
    server = RedisServer().start()
    p = Processes(f"sqlite:///{tmp_path / 'm.db'}", CacheLayers(url=server.url))
    try:
        p.a.add("I live in Lisbon", user_id="u")
        _same_as_uncached(p, "who lives in Porto?", user_id="u")
        _same_as_uncached(p, "who lives in Porto?", user_id="u")
        server.shutdown()
        added = p.a.add("My sister Anna lives in Porto", user_id="u")["results"][0]["id"]  # no error
        assert p.a.cache_layers.snapshot()["owed_invalidations"]
        assert added in _same_as_uncached(p, "who lives in Porto?", user_id="u")
        assert _count(p.b, "scope", "process", "bypass") > 0
        assert _count(p.b, "query_vector", "redis", "bypass") + _count(p.b, "query_vector", "process", "hit") > 0
        p.a.forget_user("u")  # erasure while Redis is away: owed too, and nothing fails
        assert _same_as_uncached(p, "who lives in Porto?", user_id="u") == []

        server = RedisServer(server.port).start()  # back, empty
        p.a.add("I like green tea", user_id="v")
        deadline = time.monotonic() + 5
        while p.a.cache_layers.snapshot()["owed_invalidations"]:  # a timer delivers them, no call needed
            assert time.monotonic() < deadline, "the owed invalidations were never delivered"
            time.sleep(0.05)
        time.sleep(0.7)  # past the grace that follows an outage
        for _ in range(2):
            _same_as_uncached(p, "green tea", user_id="v")
        assert _count(p.b, "scope", "process", "hit") > 0
    finally:
        p.close()
        server.stop()


def test_forget_user_drops_every_cached_copy(tmp_path: Path, layers: CacheLayers, redis_server: RedisServer) -> None:
    p = Processes(f"sqlite:///{tmp_path / 'm.db'}", layers)
    prefix = layers.url.split("prefix=")[1] if layers.url else ""
    client = redis.Redis(port=redis_server.port)
    try:
        p.a.add("I live in Lisbon", user_id="erin")
        p.a.add("I live in Oslo", user_id="finn")
        for m in (p.a, p.b):
            m.search("where do I live?", user_id="erin")
            m.search("where do I live?", user_id="erin", agent_id="bot")
            m.search("where do I live?", user_id="finn")

        def keys(kind: str) -> list[bytes]:
            return list(client.scan_iter(match=f"{prefix}{kind}:*"))

        assert len(keys("se")) == 3 and keys("qv")
        p.a.forget_user("erin")
        left = [k.decode() for k in keys("se")]
        assert len(left) == 1 and "4:finn" in left[0], left  # finn's entry stays; erin's are gone
        assert not keys("qv")  # a query vector cannot be told apart by user: all go
        assert p.a.cache_layers.scopes is not None and p.b.cache_layers.scopes is not None
        assert len(p.a.cache_layers.scopes) == 2  # finn's two pieces; erin's dropped at once
        # The other process drops what it holds of everyone on its next read, which reads the database.
        assert _ids(p.b, "where do I live?", user_id="finn") == _ids(p.plain, "where do I live?", user_id="finn")
        assert len(p.b.cache_layers.scopes) == 2
        assert _ids(p.b, "where do I live?", user_id="erin") == []
    finally:
        client.close()
        p.close()


def test_retention_purge_is_seen_by_every_process(tmp_path: Path, layers: CacheLayers) -> None:
    from memstrata.privacy.retention import run_retention, set_policy

    p = Processes(f"sqlite:///{tmp_path / 'm.db'}", layers)
    try:
        old = p.a.add("I used to play the violin", user_id="u")["results"]
        assert old
        for _ in range(2):
            assert old[0]["id"] in _ids(p.b, "violin", user_id="u")
        set_policy(p.a, "long_term", "30d")
        run_retention(p.a, time.time() + 60 * 86400)
        assert _same_as_uncached(p, "violin", user_id="u") == []
    finally:
        p.close()


def test_settings_build_the_layers_from_the_cache_url(monkeypatch: pytest.MonkeyPatch) -> None:
    s = Settings(cache="redis://127.0.0.1:6379/3", scope_cache_ttl=30.0)
    layers = s.layers()
    assert layers is not None and layers.url == "redis://127.0.0.1:6379/3" and layers.scope_ttl == 30.0
    assert Settings(cache="redis://h/0", cache_layers_url="redis://other/1").layers().url == "redis://other/1"
    assert Settings(cache="redis://h/0", cache_layers=False).layers() is None
    assert Settings().layers() is None
    with pytest.raises(ConfigurationError, match="MEMSTRATA_SCOPE_CACHE_TTL"):
        Settings(cache="redis://h/0", scope_cache_ttl=0.0).layers()
    with pytest.raises(ConfigurationError, match="local_size"):
        CacheLayers(local_size=0)
    monkeypatch.setenv("MEMSTRATA_CACHE", "redis://h/0")
    monkeypatch.setenv("MEMSTRATA_SCOPE_CACHE", "0")
    from_env = Settings.from_env().layers()
    assert from_env is not None and from_env.scopes is False
