"""The layered read cache between real servers: two ``memstrata serve`` processes on one PostgreSQL + pgvector
and one Redis behind haproxy (round robin). Each server has warmed its own cache and Redis with a query; a
write through one server is in the next search through the other, and the servers' /metrics count the hits.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from memstrata import Memory
from memstrata.privacy.access import create_key
from memstrata.providers.embedders import HashEmbedder
from multi_server_support import PEPPER, Cluster, haproxy_binary
from pg_support import fresh_database
from test_backends_redis import RedisServer

pytestmark = pytest.mark.scale


@pytest.fixture(scope="module")
def servers(request: pytest.FixtureRequest) -> Iterator[tuple[Cluster, Memory]]:
    haproxy_binary()  # before anything starts
    store = fresh_database(request)
    redis_server = RedisServer().start()
    cluster = Cluster(store, redis_server.url, ["--embedder", "hash", "--rate-limit", "0"], count=2)
    admin = Memory(store, embedder=HashEmbedder())
    try:
        cluster.start()
        yield cluster, admin
    finally:
        admin.close()
        cluster.stop()
        redis_server.stop()


def _lookups(base: str, kind: str, layer: str, outcome: str) -> float:
    text = httpx.get(f"{base}/metrics", timeout=10).text
    want = f'memstrata_cache_lookups_total{{kind="{kind}",layer="{layer}",outcome="{outcome}"}} '
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(want))


def test_a_write_through_one_server_is_in_the_next_search_through_the_other(
        servers: tuple[Cluster, Memory]) -> None:
    cluster, admin = servers
    user = f"cache-{uuid.uuid4().hex[:8]}"
    key, _ = create_key(admin, None, "read,write", [user], pepper=PEPPER)
    headers = {"Authorization": f"Bearer {key}"}
    one, two = (httpx.Client(base_url=s.url, headers=headers, timeout=60) for s in cluster.servers)
    query = {"query": "which door is my gym locker next to?", "user_id": user, "limit": 5}
    try:
        first = one.post("/v1/memories", json={"messages": "My gym locker is next to the amber door",
                                               "user_id": user, "infer": False}).json()["results"][0]["id"]
        for client in (one, two, one, two):  # each server warms its own layer; the second round hits
            found = client.post("/v1/memories/search", json=query)
            assert [m["id"] for m in found.json()["results"]] == [first], found.text
        base_one, base_two = (str(c.base_url).rstrip("/") for c in (one, two))
        assert _lookups(base_one, "scope", "process", "hit") >= 1
        assert _lookups(base_two, "scope", "redis", "hit") >= 1  # what the first server computed
        assert _lookups(base_two, "query_vector", "redis", "hit") >= 1

        second = two.post("/v1/memories", json={"messages": "My gym locker moved next to the cobalt door",
                                                "user_id": user, "infer": False}).json()["results"][0]["id"]
        found = one.post("/v1/memories/search", json=query)  # the other server, at once
        assert second in [m["id"] for m in found.json()["results"]], found.text
        gone = one.delete(f"/v1/memories/{first}", params={"user_id": user})
        assert gone.status_code == 200, gone.text
        found = two.post("/v1/memories/search", json=query)
        assert [m["id"] for m in found.json()["results"]] == [second], found.text
    finally:
        one.close()
        two.close()
