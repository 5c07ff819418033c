"""Read replicas: a real streaming standby (pg_basebackup -R from the embedded binaries) behind the store.

What is proven: reads are served by the standby (with replay paused, a reader sees the standby's older
state), the writer reads its own writes while the standby lags, the lag bound sends a stale standby's
reads to the primary, and a dead standby costs nothing but the offload: reads keep working from the
primary, and the standby is used again once it is back.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest

from memstrata import HashEmbedder, Memory
from memstrata.backends.postgres import PostgresStore, migrate
from memstrata.backends.postgres_replica import ReplicaOptions, lsn, split_url
from memstrata.errors import ConfigurationError
from memstrata.settings import Settings
from pg_replica_support import set_replay, start_standby, wait_replayed, wait_streaming
from pg_support import EmbeddedPostgres

pytestmark = pytest.mark.scale
DIM = 32


@dataclass
class Cluster:
    primary: EmbeddedPostgres
    standby: EmbeddedPostgres
    primary_url: str
    standby_url: str

    def memory(self, **options: Any) -> Memory:
        return Memory(self.primary_url, embedder=HashEmbedder(DIM), replicas=[self.standby_url], **options)

    def caught_up(self) -> None:
        wait_replayed(self.primary_url, self.standby_url)
        time.sleep(0.1)  # past the router's position check interval


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    primary = EmbeddedPostgres().start()
    standby: EmbeddedPostgres | None = None
    try:
        url = primary.create_database("replicated")
        migrate(url, dim=DIM)
        standby = start_standby(primary)
        yield Cluster(primary, standby, url, standby.url("replicated"))
    finally:
        if standby is not None:
            standby.remove()
        primary.remove()


def _counts(m: Memory) -> dict[str, dict[str, int]]:
    store = m.store
    assert isinstance(store, PostgresStore)
    return store.read_counts()


def _texts(m: Memory, user: str) -> set[str]:
    return {r["memory"] for r in m.get_all(user_id=user)["results"]}


def _user() -> str:
    return f"u-{uuid.uuid4().hex[:8]}"


def test_reads_are_served_by_the_standby(cluster: Cluster) -> None:
    user = _user()
    with cluster.memory() as writer:
        first = writer.add("My sister lives in Lisbon", user_id=user, infer=False)["results"][0]["id"]
    cluster.caught_up()
    url = f"{cluster.primary_url}?replica={quote(cluster.standby_url, safe='')}&replica_max_lag=3600"
    with Memory(url, embedder=HashEmbedder(DIM)) as reader, cluster.memory() as writer:
        assert _texts(reader, user) == {"My sister lives in Lisbon"}
        assert reader.get(first, user_id=user)["memory"] == "My sister lives in Lisbon"
        assert [h["event"] for h in reader.history(first, user_id=user)] == ["ADD"]
        assert reader.search("sister Lisbon", user_id=user)["results"][0]["id"] == first
        assert reader.stats(user_id=user)["memories"] == 1
        served = _counts(reader)["replica"].get("read", 0)
        assert served >= 5, _counts(reader)
        assert reader.store.stats()["replicas"][0]["state"] == "ok"  # type: ignore[attr-defined]

        # The proof that those reads came from the standby: with replay paused, the reader sees its past.
        set_replay(cluster.standby_url, paused=True)
        try:
            writer.add("My brother lives in Porto", user_id=user, infer=False)
            time.sleep(0.1)
            assert _texts(reader, user) == {"My sister lives in Lisbon"}  # stale, but inside its lag bound
            assert _counts(reader)["replica"]["read"] > served
            assert _texts(writer, user) == {"My sister lives in Lisbon", "My brother lives in Porto"}
        finally:
            set_replay(cluster.standby_url, paused=False)
        cluster.caught_up()
        assert _texts(reader, user) == {"My sister lives in Lisbon", "My brother lives in Porto"}


def test_the_writer_reads_its_own_writes_while_the_standby_lags(cluster: Cluster) -> None:
    user, other = _user(), _user()
    with cluster.memory(replica_max_lag=3600) as writer:
        writer.add("I play the cello", user_id=other, infer=False)
        cluster.caught_up()
        assert _texts(writer, other) == {"I play the cello"}
        set_replay(cluster.standby_url, paused=True)
        try:
            added = writer.add("I moved to Berlin", user_id=user, infer=False)["results"][0]["id"]
            time.sleep(0.1)
            before = _counts(writer)
            assert _texts(writer, user) == {"I moved to Berlin"}
            assert writer.get(added, user_id=user)["memory"] == "I moved to Berlin"
            assert writer.search("Berlin", user_id=user)["results"][0]["id"] == added
            after = _counts(writer)
            assert after["primary"]["own write"] > before["primary"].get("own write", 0)
            # Only the written scope is fenced: another scope's reads still go to the standby.
            assert _texts(writer, other) == {"I play the cello"}
            assert _counts(writer)["replica"]["read"] > after["replica"].get("read", 0)
        finally:
            set_replay(cluster.standby_url, paused=False)
        cluster.caught_up()
        served = _counts(writer)["replica"]["read"]
        assert _texts(writer, user) == {"I moved to Berlin"}
        assert _counts(writer)["replica"]["read"] > served  # the fence is passed: back on the standby


def test_a_write_section_reads_the_primary_even_when_another_process_wrote(cluster: Cluster) -> None:
    """Process B has written nothing, so it holds no fence for the scope; its update must still decide from
    the primary's latest text (not the lagging standby's), or the history would skip A's version."""
    user = _user()
    with cluster.memory(replica_max_lag=3600) as a, cluster.memory(replica_max_lag=3600) as b:
        mid = a.add("I live in Berlin", user_id=user, infer=False)["results"][0]["id"]
        cluster.caught_up()
        set_replay(cluster.standby_url, paused=True)
        try:
            a.update(mid, "I live in Lisbon", user_id=user)
            before = _counts(b)["primary"].get("write section", 0)
            b.update(mid, "I live in Porto", user_id=user)
            assert _counts(b)["primary"]["write section"] > before
        finally:
            set_replay(cluster.standby_url, paused=False)
        cluster.caught_up()
        events = a.history(mid, user_id=user)
        updates = [e for e in events if e["event"] == "UPDATE"]
        assert [e["old_memory"] for e in updates] == ["I live in Berlin", "I live in Lisbon"], events


def test_a_standby_past_the_lag_bound_is_not_used(cluster: Cluster) -> None:
    user = _user()
    with cluster.memory() as writer, cluster.memory(replica_max_lag=0.5) as reader:
        writer.add("I drink green tea", user_id=user, infer=False)
        cluster.caught_up()
        assert _texts(reader, user) == {"I drink green tea"}
        set_replay(cluster.standby_url, paused=True)
        try:
            writer.add("I quit coffee", user_id=user, infer=False)
            time.sleep(1.0)  # replay has stood still for longer than the bound
            lagged = _counts(reader)["primary"].get("lag", 0)
            assert _texts(reader, user) == {"I drink green tea", "I quit coffee"}  # not the stale copy
            assert _counts(reader)["primary"]["lag"] > lagged
            assert reader.store.stats()["replicas"][0]["state"] == "lag"  # type: ignore[attr-defined]
        finally:
            set_replay(cluster.standby_url, paused=False)
        cluster.caught_up()
        served = _counts(reader)["replica"].get("read", 0)
        assert _texts(reader, user) == {"I drink green tea", "I quit coffee"}
        assert _counts(reader)["replica"]["read"] > served


def test_reads_survive_a_dead_standby_and_return_to_it(cluster: Cluster) -> None:
    user = _user()
    with cluster.memory(replica_retry=0.3) as m:
        m.add("I work as a nurse", user_id=user, infer=False)
        cluster.caught_up()
        assert _texts(m, user) == {"I work as a nurse"}
        cluster.standby.stop("immediate")
        try:
            started = time.monotonic()
            for _ in range(3):
                assert _texts(m, user) == {"I work as a nurse"}
                assert m.search("nurse", user_id=user)["results"]
            assert time.monotonic() - started < 3.0  # one short wait to find it dead, then straight to the primary
            assert _counts(m)["primary"]["down"] >= 3
            m.add("I work nights", user_id=user, infer=False)  # writes never needed the standby
        finally:
            cluster.standby.start()
            wait_streaming(cluster.standby)
        cluster.caught_up()
        time.sleep(0.3)  # the retry interval
        served = _counts(m)["replica"].get("read", 0)
        assert _texts(m, user) == {"I work as a nurse", "I work nights"}
        assert _counts(m)["replica"]["read"] > served


def test_a_store_opened_while_its_standby_is_down_uses_the_primary(cluster: Cluster) -> None:
    dead = EmbeddedPostgres().url("replicated")  # a free port: nothing listens there
    with Memory(cluster.primary_url, embedder=HashEmbedder(DIM), replicas=[dead]) as m:
        user = _user()
        m.add("I keep bees", user_id=user, infer=False)
        started = time.monotonic()
        assert _texts(m, user) == {"I keep bees"}
        assert time.monotonic() - started < 2.0  # no pool left waiting out its timeout on a dead standby
        assert _counts(m)["primary"]["down"] >= 1
        assert _counts(m)["replica"] == {}


def test_reads_take_turns_over_several_standbys(cluster: Cluster) -> None:
    second = start_standby(cluster.primary)
    try:
        second_url = second.url("replicated")
        user = _user()
        with cluster.memory() as writer, Memory(cluster.primary_url, embedder=HashEmbedder(DIM),
                                                replicas=[cluster.standby_url, second_url],
                                                replica_max_lag=3600) as reader:
            writer.add("I grow tomatoes", user_id=user, infer=False)
            wait_replayed(cluster.primary_url, second_url)
            cluster.caught_up()
            set_replay(second_url, paused=True)  # only the second standby falls behind
            try:
                writer.add("I grow basil", user_id=user, infer=False)
                wait_replayed(cluster.primary_url, cluster.standby_url)
                time.sleep(0.1)
                seen = [frozenset(_texts(reader, user)) for _ in range(6)]
            finally:
                set_replay(second_url, paused=False)
        # Each standby answered some of the reads: the first with both memories, the paused one with its past.
        assert set(seen) == {frozenset({"I grow tomatoes", "I grow basil"}), frozenset({"I grow tomatoes"})}
    finally:
        second.remove()


def test_metrics_count_reads_by_where_they_ran(cluster: Cluster) -> None:
    from starlette.testclient import TestClient

    from memstrata.server.app import create_app

    user = _user()
    with cluster.memory() as m:
        m.add("I collect stamps", user_id=user, infer=False)
        cluster.caught_up()
        with TestClient(create_app(m, auth=False, rate_limit=None), base_url="http://127.0.0.1") as client:
            listed = client.get("/v1/memories", params={"user_id": user})
            assert listed.status_code == 200, listed.text
            text = client.get("/metrics").text
    served = _counts(m)["replica"]["read"]
    assert served >= 1
    assert f'memstrata_store_reads_total{{reason="read",target="replica"}} {float(served)}' in text


def test_replica_options_in_the_url_and_in_settings() -> None:
    standby = "postgresql://u:pw@replica:5432/db?sslmode=require"
    url, options = split_url(f"postgresql://u:pw@primary/db?sslmode=disable&replica={quote(standby, safe='')}"
                             "&replica_max_lag=2.5&replica_max_lag_bytes=1024&replica_retry=9")
    assert url == "postgresql://u:pw@primary/db?sslmode=disable"
    assert options == {"replicas": (standby,), "max_lag_seconds": 2.5, "max_lag_bytes": 1024, "retry_seconds": 9.0}
    with pytest.raises(ConfigurationError, match="replica_max_lag"):
        split_url("postgresql://primary/db?replica_max_lag=soon")
    with pytest.raises(ConfigurationError, match="postgresql://"):
        ReplicaOptions(replicas=("redis://x",))
    assert lsn("16/B374D848") == (0x16 << 32) | 0xB374D848

    settings = Settings.from_env({"MEMSTRATA_STORE": "postgresql://primary/db",
                                  "MEMSTRATA_REPLICAS": "postgresql://r1/db,postgresql://r2/db",
                                  "MEMSTRATA_REPLICA_MAX_LAG": "3"})
    assert settings.replicas == ("postgresql://r1/db", "postgresql://r2/db")
    assert settings.store_options() == {"replicas": ["postgresql://r1/db", "postgresql://r2/db"],
                                        "replica_max_lag": 3.0}
    with pytest.raises(ConfigurationError, match="MEMSTRATA_REPLICAS"):
        Settings.from_env({"MEMSTRATA_STORE": "sqlite:///tmp/x.db", "MEMSTRATA_REPLICAS": "postgresql://r/db"})
