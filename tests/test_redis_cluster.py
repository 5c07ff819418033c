"""The short-term tier, working tier and embedding cache on a three-master Redis Cluster.

The cluster is started by the tests (tests/redis_cluster_support.py). Keys are hash-tagged by scope, so a
scope's keys share one slot (its multi-key transactions run on one node) while scopes spread over the
masters.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
import redis
from redis.cluster import RedisCluster as ClusterClient
from redis.cluster import key_slot

from memstrata import HashEmbedder, Memory
from memstrata.backends.redis import RedisShortTerm, RedisWorking, scope_tag, short_term_from_url
from memstrata.errors import BackendUnavailableError
from memstrata.models import Scope
from memstrata.tiers.base import Turn, WorkingState
from redis_cluster_support import RedisCluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisCluster]:
    c = RedisCluster().start()
    yield c
    c.stop()


@pytest.fixture
def tiers(cluster: RedisCluster) -> Iterator[tuple[RedisShortTerm, RedisWorking]]:
    st, wk = short_term_from_url(cluster.url)
    st.client.flushall(target_nodes=ClusterClient.PRIMARIES)
    yield st, wk
    st.close()


def _turns(*texts: str) -> list[Turn]:
    return [Turn("user", t, 1000.0 + i, f"e{i}") for i, t in enumerate(texts)]


def test_the_url_opens_a_cluster_client(tiers: tuple[RedisShortTerm, RedisWorking]) -> None:
    st, wk = tiers
    assert isinstance(st.client, ClusterClient) and wk.client is st.client
    assert len(st.client.get_primaries()) == 3


def test_turns_and_working_state_round_trip_and_clear(tiers: tuple[RedisShortTerm, RedisWorking]) -> None:
    st, wk = tiers
    a, b = Scope.of(user_id="a|b", agent_id="c"), Scope.of(user_id="a", agent_id="b|c")
    st.push(a, "conv", _turns("t0", "t1", "t2"))
    st.push(a, "other", _turns("mine too"))
    st.push(b, "conv", _turns("theirs"))
    wk.put(a, "conv", WorkingState(goals=["book flights"], topic="travel"))
    wk.put(b, "conv", WorkingState(topic="b"))
    assert [t.content for t in st.recent(a, "conv", 2)] == ["t1", "t2"]
    assert [t.content for t in st.recent(b, "conv")] == ["theirs"]
    state = wk.get(a, "conv")
    assert state is not None and [g.text for g in state.goals] == ["book flights"]
    # Clearing a scope is a multi-key transaction (index + every conversation): it must run in one slot.
    assert st.clear(a) == 2 and wk.clear(a) == 1
    assert st.recent(a, "conv") == [] and st.recent(a, "other") == [] and wk.get(a, "conv") is None
    assert [t.content for t in st.recent(b, "conv")] == ["theirs"]
    assert (kept := wk.get(b, "conv")) is not None and kept.topic == "b"
    assert st.clear(b, "conv") == 1 and st.clear(b, "conv") == 0


def test_working_state_compare_and_set_runs_in_the_scopes_slot(tiers: tuple[RedisShortTerm, RedisWorking]) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    _, wk = tiers
    scope = Scope.of(user_id="cas", agent_id="x")
    start = threading.Barrier(6)

    def add(i: int) -> None:
        start.wait()
        for j in range(5):
            wk.update(scope, "c", lambda s, k=f"{i}-{j}": WorkingState(notes={**(s.notes if s else {}), k: "x"}))

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(add, range(6)))
    state = wk.get(scope, "c")
    assert state is not None and len(state.notes) == 30  # no writer's change was overwritten
    assert wk.clear(scope) == 1  # the script indexed the conversation in the scope's set


def test_a_scope_lives_in_one_slot_and_scopes_spread_over_the_masters(
    cluster: RedisCluster, tiers: tuple[RedisShortTerm, RedisWorking]
) -> None:
    st, wk = tiers
    nodes: Counter[int] = Counter()
    for i in range(60):
        scope = Scope.of(user_id=f"user-{i}", agent_id="support" if i % 2 else None)
        keys = [st._key(scope, "c1"), st._key(scope, "c2"), st._index(scope), wk._key(scope, "c1"), wk._index(scope)]
        assert all(scope_tag(scope) in k for k in keys)
        assert len({key_slot(k.encode()) for k in keys}) == 1, keys
        nodes[cluster.node_of_key(keys[0])] += 1
    assert set(nodes) == set(cluster.ports), nodes  # every master holds some scopes
    assert min(nodes.values()) >= 8, nodes


def test_memory_keeps_recent_turns_in_the_cluster(cluster: RedisCluster, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with Memory(f"sqlite:///{tmp_path / 'm.db'}", embedder=HashEmbedder(), cache=cluster.url) as m:
        assert isinstance(m.short_term, RedisShortTerm) and isinstance(m.short_term.client, ClusterClient)
        for user in ("ana", "ben", "caro"):
            m.add(f"{user} likes green tea", user_id=user, conversation_id="c", infer=False)
        ctx = m.context("tea", user_id="ben", conversation_id="c")
        assert [t["content"] for t in ctx["short_term"]] == ["ben likes green tea"]
    # Another process (a fresh client) reads the same turns from the cluster.
    st, _ = short_term_from_url(cluster.url)
    assert [t.content for t in st.recent(Scope.of(user_id="caro"), "c")] == ["caro likes green tea"]
    st.close()


def test_a_dead_master_is_reported_or_served_locally(cluster: RedisCluster) -> None:
    """A cluster that lost a master without a replica cannot serve that master's slots: the strict tier says
    so with BackendUnavailableError, the lenient one serves from process memory. Runs last: it stops a node."""
    strict, _ = short_term_from_url(cluster.url)
    lenient, _ = short_term_from_url(cluster.url + "&fallback=1")
    victim = cluster.ports[-1]
    scope = next(s for s in (Scope.of(user_id=f"u{i}") for i in range(200))
                 if cluster.node_of_key(strict._key(s, "c")) == victim)
    strict.push(scope, "c", _turns("before"))
    cluster.procs[-1].kill()
    cluster.procs[-1].wait(timeout=10)
    with pytest.raises(BackendUnavailableError, match="Redis"):
        strict.recent(scope, "c")
    lenient.push(scope, "c", _turns("during"))
    assert [t.content for t in lenient.recent(scope, "c")] == ["during"]
    assert lenient.degraded
    for tier in (strict, lenient):
        try:
            tier.close()
        except redis.exceptions.RedisError:
            pass
