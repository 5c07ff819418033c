"""Rate limits shared through Redis: burst, refill, one budget for several limiters (several processes), the
bucket's expiry, a Redis Cluster, the fallback while Redis is away, and two apps on one Redis answering 429
from one budget. Every Redis here is a real redis-server started by the tests."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from memstrata import Memory
from memstrata.backends.inprocess import InProcessShortTerm
from memstrata.backends.redis import short_term_from_url
from memstrata.privacy.access import create_key
from memstrata.providers.embedders import HashEmbedder
from memstrata.server import ratelimit
from memstrata.server.app import create_app
from memstrata.server.auth import RateLimit, TokenBucket
from memstrata.server.ratelimit import RedisTokenBucket, bucket_key, build_limiter
from redis_cluster_support import RedisCluster
from test_backends_redis import RedisServer

T0 = 1_800_000_000.0  # a fixed "now" for the tests that pass their own clock


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    s = RedisServer().start()
    yield s
    s.stop()


@pytest.fixture
def prefix() -> str:
    return f"rl-{uuid.uuid4().hex[:8]}:"


def limiter(server: RedisServer, prefix: str, per_second: float = 10.0, burst: int = 5) -> RedisTokenBucket:
    """A limiter on its own connection, as a separate server process would have."""
    return RedisTokenBucket(RateLimit(per_second, burst), redis.Redis(port=server.port), prefix=prefix)


def test_burst_then_refused_with_the_wait(server: RedisServer, prefix: str) -> None:
    lim = limiter(server, prefix)
    assert [lim.take("key:a", now=T0) for _ in range(5)] == [0.0] * 5
    assert lim.take("key:a", now=T0) == pytest.approx(0.1)  # one token at 10/s
    assert lim.take("key:b", now=T0) == 0.0  # every caller has its own bucket


def test_tokens_refill_at_the_rate_and_never_past_the_burst(server: RedisServer, prefix: str) -> None:
    lim = limiter(server, prefix)
    for _ in range(5):
        lim.take("key:a", now=T0)
    assert lim.take("key:a", now=T0 + 0.25) == 0.0  # 2.5 tokens back
    assert lim.take("key:a", now=T0 + 0.25) == 0.0
    assert lim.take("key:a", now=T0 + 0.25) == pytest.approx(0.05)  # half a token left
    # An hour idle fills the bucket to the burst, not to 36,000 tokens.
    later = T0 + 3600
    assert [lim.take("key:a", now=later) for _ in range(6)] == [0.0] * 5 + [pytest.approx(0.1)]


def test_two_limiters_share_one_budget(server: RedisServer, prefix: str) -> None:
    first, second = limiter(server, prefix), limiter(server, prefix)
    assert [first.take("key:a", now=T0) for _ in range(3)] == [0.0] * 3
    assert [second.take("key:a", now=T0) for _ in range(2)] == [0.0] * 2
    assert second.take("key:a", now=T0) > 0
    assert first.take("key:a", now=T0) > 0
    # In-process buckets would have let each process spend its own burst: ten requests, not five.
    local = [TokenBucket(RateLimit(10.0, 5)) for _ in range(2)]
    assert sum(b.take("key:a", now=T0) == 0.0 for b in local for _ in range(5)) == 10
    # A limiter with another prefix is another budget.
    assert limiter(server, prefix + "other:").take("key:a", now=T0) == 0.0


def test_redis_clock_refills_in_real_time(server: RedisServer, prefix: str) -> None:
    lim = limiter(server, prefix, per_second=20.0, burst=3)
    assert [lim.take("key:a") for _ in range(3)] == [0.0] * 3
    wait = lim.take("key:a")
    assert 0 < wait <= 0.05 + 1e-6
    time.sleep(wait + 0.06)
    assert lim.take("key:a") == 0.0


def test_bucket_is_one_tagged_key_that_expires_once_full(server: RedisServer, prefix: str) -> None:
    lim = limiter(server, prefix, per_second=2.0, burst=4)
    lim.take("key:{odd}", now=T0)
    key = bucket_key(prefix, "key:{odd}")
    assert key.startswith(f"{prefix}rl:{{") and key.endswith("}key:{odd}")
    assert key[len(prefix) + 3:].index("}") == 17  # the tag is the digest, whatever braces the caller holds
    client = redis.Redis(port=server.port)
    assert client.keys(f"{prefix}*") == [key.encode()]
    # One token spent at 2/s: full again after 0.5 s, gone a second after that.
    assert 0 < client.pttl(key) <= 1500


def test_redis_cluster_shares_the_budget() -> None:
    cluster = RedisCluster().start()
    try:
        first, second = (short_term_from_url(cluster.url)[0] for _ in range(2))
        a, b = (build_limiter(RateLimit(10.0, 4), st) for st in (first, second))
        assert isinstance(a, RedisTokenBucket) and isinstance(b, RedisTokenBucket)
        callers = [f"key:{i}" for i in range(12)]  # spread over the three masters' slots
        for caller in callers:
            assert [a.take(caller, now=T0) for _ in range(2)] == [0.0, 0.0]
            assert [b.take(caller, now=T0) for _ in range(2)] == [0.0, 0.0]
            assert a.take(caller, now=T0) > 0 and b.take(caller, now=T0) > 0
        assert not a.degraded and not b.degraded
        first.close()
        second.close()
    finally:
        cluster.stop()


def test_falls_back_to_the_process_while_redis_is_away(prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ratelimit, "RETRY_INTERVAL", 0.3)  # how soon a check tries Redis again
    own = RedisServer().start()
    lim = RedisTokenBucket(RateLimit(10.0, 3), redis.Redis(port=own.port, socket_timeout=0.5,
                                                             socket_connect_timeout=0.5), prefix=prefix)
    assert lim.take("key:a", now=T0) == 0.0
    own.stop()
    # Requests still get through, counted in this process, and the limit still holds there.
    assert [lim.take("key:a") for _ in range(3)] == [0.0] * 3
    assert lim.degraded
    assert lim.take("key:a") > 0
    restarted = RedisServer(own.port).start()
    try:
        time.sleep(0.35)
        assert lim.take("key:b", now=T0) == 0.0
        assert not lim.degraded
        assert redis.Redis(port=own.port).exists(bucket_key(prefix, "key:b")) == 1
    finally:
        restarted.stop()


def test_build_limiter_picks_the_engine(server: RedisServer) -> None:
    assert build_limiter(None) is None
    assert build_limiter(RateLimit(0, 10)) is None
    assert type(build_limiter(RateLimit(5, 10), InProcessShortTerm())) is TokenBucket
    short_term, _ = short_term_from_url(f"{server.url}?prefix=p1:")
    built = build_limiter(RateLimit(5, 10), short_term)
    assert isinstance(built, RedisTokenBucket) and built.prefix == "p1:" and built.client is short_term.client
    short_term.close()


def test_two_apps_on_one_redis_refuse_from_one_budget(server: RedisServer, tmp_path: Path, prefix: str) -> None:
    store, cache = f"sqlite:///{tmp_path / 'm.db'}", f"{server.url}?prefix={prefix}"
    with Memory(store, embedder=HashEmbedder(), cache=cache) as m1, \
            Memory(store, embedder=HashEmbedder(), cache=cache) as m2:
        key, _ = create_key(m1, None, "read", ["alice"])
        apps = [create_app(m, rate_limit=RateLimit(0.01, 6), mcp=False, ui=False) for m in (m1, m2)]
        clients = [TestClient(app) for app in apps]
        codes = [clients[i % 2].get("/v1/me", headers={"Authorization": f"Bearer {key}"}).status_code
                 for i in range(10)]
        assert codes == [200] * 6 + [429] * 4
        refused = clients[1].get("/v1/me", headers={"X-API-Key": key})
        # one token per 100 s: the wait left is 100 s less the seconds the ten requests took on a busy machine
        assert refused.status_code == 429 and 95 <= int(refused.headers["Retry-After"]) <= 100
        total = 0.0
        for client in clients:
            text = client.get("/metrics").text
            line = next(x for x in text.splitlines() if x.startswith("memstrata_rate_limited_total "))
            total += float(line.split()[1])
        assert total == 5
