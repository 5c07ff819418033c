"""The layered read cache on a three-master Redis Cluster (tests/redis_cluster_support.py): a scope's version,
entries and index share one slot, invalidation and erasure work across the masters, and answers stay those of
a memory without a cache.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.cluster import RedisCluster as ClusterClient
from redis.cluster import key_slot

from memstrata import HashEmbedder, Memory
from memstrata.config import CacheLayers
from redis_cluster_support import RedisCluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisCluster]:
    c = RedisCluster().start()
    yield c
    c.stop()


def _ids(m: Memory, query: str, user: str) -> set[str]:
    return {r["id"] for r in m.search(query, user_id=user)["results"]}


def test_writes_erasure_and_reset_through_a_cluster(cluster: RedisCluster, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'm.db'}"
    layers = CacheLayers(url=f"{cluster.url}&prefix=cl:")  # the URL already asks for a cluster
    a = Memory(store, embedder=HashEmbedder(), cache_layers=layers)
    b = Memory(store, embedder=HashEmbedder(), cache_layers=layers)
    plain = Memory(store, embedder=HashEmbedder())
    client = ClusterClient.from_url(cluster.url)
    users = [f"user{i}" for i in range(12)]  # enough scopes to land on every master
    try:
        for u in users:
            a.add(f"I keep my bike at station {u}", user_id=u)
        for _ in range(2):
            for u in users:
                assert _ids(b, "where is my bike?", u) == _ids(plain, "where is my bike?", u)
        assert b.cache_layers.snapshot()["layers"]["scope"]["process"]["hit"] > 0
        keys = [k.decode() for k in client.scan_iter(match="cl:s*", target_nodes=ClusterClient.PRIMARIES)]
        by_scope: dict[str, set[int]] = {}
        for key in keys:
            tag = key[key.index("{"):key.index("}") + 1]
            by_scope.setdefault(tag, set()).add(key_slot(key.encode()))
        assert all(len(slots) == 1 for slots in by_scope.values())  # version, entries and index: one slot
        nodes = {client.get_node_from_key(k).name for k in keys}
        assert len(nodes) == 3  # scopes spread over the masters

        added = a.add("My bike moved to the north station", user_id=users[0])["results"][0]["id"]
        assert added in _ids(b, "where is my bike?", users[0])
        a.forget_user(users[1])
        assert [k for k in client.scan_iter(match=f"cl:se:*{len(users[0])}:{users[0]}--*",
                                            target_nodes=ClusterClient.PRIMARIES)]  # another user's stays
        assert not [k for k in client.scan_iter(match=f"cl:se:*{len(users[1])}:{users[1]}--*",
                                                target_nodes=ClusterClient.PRIMARIES)]
        assert _ids(b, "where is my bike?", users[1]) == set()
        a.reset()
        assert not list(client.scan_iter(match="cl:se:*", target_nodes=ClusterClient.PRIMARIES))
        assert _ids(b, "where is my bike?", users[2]) == set()
    finally:
        client.close()
        for m in (a, b, plain):
            m.close()
