"""PostgreSQL + pgvector specifics: partitions, the two kNN paths, migrations, restarts, errors.

The tier contract (codecs included) runs over every SQL store in tests/contract; the Memory API over
every backend runs from conftest's parametrized ``store_url``.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import click
import numpy as np
import psycopg
import pytest
from click.testing import CliRunner

from memstrata import HashEmbedder, Memory
from memstrata.backends import postgres_schema as schema
from memstrata.backends.postgres import PostgresStore, migrate
from memstrata.cli.backends import register
from memstrata.errors import BackendError, BackendUnavailableError, ConfigurationError
from memstrata.models import EpisodeRecord, MemoryRecord, Scope
from memstrata.tiers.base import Capability, WriteBatch
from pg_support import EmbeddedPostgres, pg_store, session_server

DIM = 32


@pytest.fixture
def store(pg_url: str) -> Iterator[PostgresStore]:
    yield from pg_store(pg_url, DIM)


def _episode(scope: Scope, when: float, text: str = "hello") -> EpisodeRecord:
    return EpisodeRecord(id=str(uuid.uuid4()), scope=scope, conversation_id="c", role="user", content=text,
                         occurred_at=when, created_at=time.time())


def _where(conn: psycopg.Connection, episode_id: str) -> str:
    row = conn.execute("SELECT tableoid::regclass::text FROM episodes WHERE id = %s", (episode_id,)).fetchone()
    assert row is not None
    return str(row[0])


def test_partitions_exist_ahead_and_are_made_on_backfill(store: PostgresStore, pg_url: str) -> None:
    now = datetime.now(UTC)
    ahead = {schema.partition_name(y, m) for y, m in schema.window_months(now, schema.PARTITION_WINDOW_MONTHS)}
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert ahead <= schema.existing_partitions(conn)
        assert "episodes_default" in schema.existing_partitions(conn)
        # A row that reached DEFAULT before its month had a partition (e.g. written by an older process).
        stray = str(uuid.uuid4())
        conn.execute(
            "INSERT INTO episodes (id, scope_key, org_id, role, content, occurred_at, created_at)"
            " VALUES (%s, 'k', 'default', 'user', 'old', %s, 0)",
            (stray, datetime(2019, 2, 3, tzinfo=UTC).timestamp()),
        )
        assert _where(conn, stray) == "episodes_default"

    scope = Scope.of(user_id="backfill")
    old = _episode(scope, datetime(2023, 5, 20, 10, tzinfo=UTC).timestamp())
    older = _episode(scope, datetime(2019, 2, 14, tzinfo=UTC).timestamp())
    ancient = _episode(scope, datetime(1900, 1, 1, tzinfo=UTC).timestamp())
    store.add_episodes([old, older, ancient])
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert _where(conn, old.id) == "episodes_y2023m05"
        assert _where(conn, older.id) == "episodes_y2019m02"
        assert _where(conn, stray) == "episodes_y2019m02"  # moved out of DEFAULT with its partition
        assert _where(conn, ancient.id) == "episodes_default"  # outside the placeable years: the safety net
    got = store.list_episodes(scope, start=datetime(2023, 5, 1, tzinfo=UTC).timestamp(),
                              end=datetime(2023, 6, 1, tzinfo=UTC).timestamp())
    assert [e.id for e in got] == [old.id]
    # A second store (another process) that does not know the partition yet must not trip over it.
    other = PostgresStore(pg_url, dim=DIM)
    other._partitions.discard("episodes_y2023m05")
    other.add_episodes([_episode(scope, datetime(2023, 5, 21, tzinfo=UTC).timestamp())])
    other.close()
    assert len(store.list_episodes(scope, limit=10)) == 4


def test_memory_backfill_from_2023_through_the_api(pg_url: str) -> None:
    with Memory(pg_url, embedder=HashEmbedder(DIM)) as m:
        m.add("Old news from 2023", user_id="u", infer=False, timestamp="2023-05-20T10:00:00Z")
        eps = m.episodes(user_id="u", start="2023-05-01T00:00:00Z", end="2023-06-01T00:00:00Z")["results"]
        assert [e["content"] for e in eps] == ["Old news from 2023"]
        assert [e["content"] for e in m.episodes(user_id="u", query="news")["results"]] == ["Old news from 2023"]


def _clustered(rng: np.random.Generator, n: int, centers: np.ndarray) -> np.ndarray:
    x = centers[rng.integers(0, len(centers), n)] + rng.normal(0, 0.35, (n, centers.shape[1]))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _fill(store: PostgresStore, scope: Scope, vectors: np.ndarray) -> list[str]:
    ids = []
    now = time.time()
    for start in range(0, len(vectors), 1000):
        batch = WriteBatch()
        for i in range(start, min(start + 1000, len(vectors))):
            rec = MemoryRecord(id=str(uuid.uuid4()), scope=scope, text=f"note {i}", created_at=now, updated_at=now,
                               valid_from=now, content_hash=uuid.uuid4().hex)
            batch.new_memories.append((rec, vectors[i]))
            ids.append(rec.id)
        store.apply(scope, batch)
    return ids


def test_hnsw_path_matches_exact_on_a_large_scope(pg_url: str) -> None:
    rng = np.random.default_rng(3)
    centers = rng.normal(0, 1, (40, DIM))
    store = PostgresStore(pg_url, dim=DIM, exact_max_rows=500, vector_cache_rows=0)  # pgvector's paths only
    try:
        big, small, other = Scope.of(user_id="big"), Scope.of(user_id="small"), Scope.of(user_id="other")
        big_ids = _fill(store, big, _clustered(rng, 1500, centers))
        _fill(store, other, _clustered(rng, 1500, centers))
        small_ids = _fill(store, small, _clustered(rng, 50, centers))
        assert store.knn_path(big, 10) == "hnsw" and store.knn_path(small, 10) == "exact"
        assert store.knn_path(big, 1000) == "exact"  # k this large makes a filtered HNSW scan dearer than a scan
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("ANALYZE memory_vectors")

        recalls = []
        for q in _clustered(rng, 30, centers):
            exact = store.vector_search(big, q, 10, strategy="exact")
            auto = store.vector_search(big, q, 10)
            assert len(auto) == 10 and all(i in set(big_ids) for i, _ in auto)
            recalls.append(len({i for i, _ in exact} & {i for i, _ in auto}) / 10)
            scores = [s for _, s in auto]
            assert scores == sorted(scores, reverse=True)  # re-ranked by exact distance
        assert np.mean(recalls) >= 0.95, recalls

        # The filtered-search trap: a small scope inside a big table still gets all k of its rows.
        q = _clustered(rng, 1, centers)[0]
        hits = store.vector_search(small, q, 50)
        assert len(hits) == 50 and {i for i, _ in hits} == set(small_ids)
        # Superseded memories leave the HNSW path too.
        top = store.vector_search(big, q, 5)
        rec = store.get_memories(big, [top[0][0]])[0]
        rec.valid_to, rec.superseded_by = time.time(), top[1][0]
        store.apply(big, WriteBatch(updated_memories=[(rec, None)]))
        assert rec.id not in {i for i, _ in store.vector_search(big, q, 5)}
        assert rec.id in {i for i, _ in store.vector_search(big, q, 5, include_superseded=True)}
        # "only" restricts either path.
        allowed = big_ids[100:110]
        assert {i for i, _ in store.vector_search(big, q, 20, only=allowed)} <= set(allowed)
    finally:
        store.close()


def test_exact_path_ranks_memories_by_their_nearest_chunk(store: PostgresStore) -> None:
    rng = np.random.default_rng(11)
    scope = Scope.of(user_id="chunks")
    q = rng.normal(0, 1, DIM).astype(np.float32)
    now = time.time()
    batch, chunks = WriteBatch(), {}
    for i in range(60):
        # The first three memories have 40 chunks each, all close to the query: their rows crowd the nearest
        # rows, so the ranking must still come out one entry per memory.
        n = 40 if i < 3 else 1
        near = q + rng.normal(0, 0.3 if i < 3 else 1.5, (n, DIM))
        vecs = (near / np.linalg.norm(near, axis=1, keepdims=True)).astype(np.float32)
        rec = MemoryRecord(id=f"m{i:02d}", scope=scope, text=f"note {i}", created_at=now, updated_at=now,
                           valid_from=now, content_hash=uuid.uuid4().hex)
        batch.new_memories.append((rec, vecs))
        chunks[rec.id] = vecs
    store.apply(scope, batch)
    unit = q / np.linalg.norm(q)
    truth = sorted(chunks, key=lambda mid: (-float((chunks[mid] @ unit).max()), mid))
    for k in (2, 5, 20, 60):
        hits = store.vector_search(scope, q, k, strategy="exact")
        assert [mid for mid, _ in hits] == truth[:k]
        assert len({mid for mid, _ in hits}) == k
        best = float((chunks[hits[0][0]] @ unit).max())
        assert abs(hits[0][1] - best) < 1e-5


def test_hnsw_query_plan_uses_the_index(store: PostgresStore) -> None:
    scope = Scope.of(user_id="plan")
    _fill(store, scope, _clustered(np.random.default_rng(1), 300, np.eye(DIM)))
    plan = store.explain_vector_search(scope, np.full(DIM, 0.1, dtype=np.float32))
    assert "memory_vectors_hnsw" in plan and "Sort" not in plan.split("CTE Scan")[0].split("Limit")[1]


def test_keyword_index_migration_flushes_the_pending_list(pg_url: str) -> None:
    store = PostgresStore(pg_url, dim=DIM)
    scope = Scope.of(user_id="fts")
    # The database as the previous version left it: a GIN index with a pending list, rows waiting in it.
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("ALTER INDEX memories_fts SET (fastupdate = on)")
        conn.execute("DELETE FROM schema_migrations WHERE version = %s", (len(schema.MIGRATIONS),))
    ids = _fill(store, scope, np.eye(DIM, dtype=np.float32)[np.arange(40) % DIM])
    store.close()
    store = PostgresStore(pg_url, dim=DIM)  # opening migrates
    try:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            options = conn.execute("SELECT reloptions FROM pg_class WHERE relname = 'memories_fts'").fetchone()
            # Nothing left to flush: the migration already moved every pending entry into the index.
            flushed = conn.execute("SELECT gin_clean_pending_list('memories_fts'::regclass)").fetchone()
            version = schema.schema_version(conn)
        assert options is not None and "fastupdate=off" in options[0]
        assert flushed is not None and flushed[0] == 0
        assert version == len(schema.MIGRATIONS)
        hits = store.keyword_search(scope, ["note", "7"], 5)
        assert hits and hits[0][0] == ids[7]
        assert {i for i, _ in store.keyword_search(scope, ["note"], 100)} == set(ids)
    finally:
        store.close()


def test_migrate_command_is_idempotent(request: pytest.FixtureRequest) -> None:
    server = session_server(request.config)
    name = f"m_{uuid.uuid4().hex[:10]}"
    url = server.create_database(name)  # empty: no template
    request.addfinalizer(lambda: server.drop_database(name))

    @click.group()
    def cli() -> None:
        """test group"""

    register(cli)
    runner = CliRunner()
    first = runner.invoke(cli, ["migrate", "--store", url])
    assert first.exit_code == 0, first.output
    assert f"schema version {len(schema.MIGRATIONS)}: applied {len(schema.MIGRATIONS)}" in first.output
    second = runner.invoke(cli, ["migrate", "--store", url, "--dim", "16"])
    assert second.exit_code == 0 and "already up to date" in second.output
    assert migrate(url) == len(schema.MIGRATIONS)
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
    assert [r[0] for r in rows] == list(range(1, len(schema.MIGRATIONS) + 1))
    with pytest.raises(ConfigurationError, match="16-dimensional"):
        PostgresStore(url, dim=8)
    bad = runner.invoke(cli, ["migrate", "--store", "sqlite:///tmp/x.db"])
    assert bad.exit_code != 0 and isinstance(bad.exception, ConfigurationError)


def test_server_restart_mid_run() -> None:
    server = EmbeddedPostgres().start()  # its own server: stopping the session's would disturb other tests
    try:
        url = server.create_database("restart")
        m = Memory(url, embedder=HashEmbedder(DIM), connect_timeout=1, pool_timeout=1.5)
        acked = [m.add(f"fact number {i}", user_id="u", infer=False)["results"][0]["id"] for i in range(5)]
        server.stop("immediate")  # a crash: no clean shutdown, WAL replay on start

        t0 = time.monotonic()
        with pytest.raises(BackendUnavailableError, match="cannot reach|lost the connection"):
            m.add("written while the server is down", user_id="u", infer=False)
        with pytest.raises(BackendUnavailableError, match="cannot reach|lost the connection"):
            m.search("fact", user_id="u")
        assert time.monotonic() - t0 < 12

        server.start()
        acked.append(m.add("fact after the restart", user_id="u", infer=False)["results"][0]["id"])
        kept = {x["id"] for x in m.get_all(user_id="u", limit=100)["results"]}
        assert set(acked) <= kept
        assert "written while the server is down" not in {x["memory"] for x in m.get_all(user_id="u")["results"]}
        assert m.search("restart", user_id="u")["results"][0]["id"] == acked[-1]
        m.close()
    finally:
        server.remove()


def test_unreachable_server_fails_fast_with_a_clear_error() -> None:
    from pg_support import free_port

    t0 = time.monotonic()
    with pytest.raises(BackendUnavailableError, match=r"cannot reach postgresql://u:\*\*\*@127\.0\.0\.1"):
        PostgresStore(f"postgresql://u:secret@127.0.0.1:{free_port()}/x", dim=DIM, connect_timeout=1,
                      pool_timeout=1)
    assert time.monotonic() - t0 < 8


def test_missing_pgvector_rights_are_a_configuration_error(request: pytest.FixtureRequest) -> None:
    server = session_server(request.config)
    name = f"n_{uuid.uuid4().hex[:10]}"
    role = f"r_{uuid.uuid4().hex[:8]}"
    server.sql(f"CREATE ROLE {role} LOGIN")
    server.sql(f'CREATE DATABASE "{name}"')
    request.addfinalizer(lambda: (server.drop_database(name), server.sql(f"DROP ROLE {role}")))
    url = f"postgresql://{role}@127.0.0.1:{server.port}/{name}"
    with pytest.raises(ConfigurationError, match="CREATE EXTENSION vector"):
        PostgresStore(url, dim=DIM)


def test_an_application_role_without_ddl_rights_can_run(request: pytest.FixtureRequest, pg_url: str,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    server = session_server(request.config)
    role = f"app_{uuid.uuid4().hex[:8]}"
    database = pg_url.rsplit("/", 1)[1]
    server.sql(f"CREATE ROLE {role} LOGIN")
    request.addfinalizer(lambda: server.sql(f"DROP OWNED BY {role}; DROP ROLE {role}", database))
    migrate(pg_url, dim=DIM)  # the owner migrates; the application only reads and writes rows
    server.sql(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role};"
               f" GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}", database)
    app = PostgresStore(f"postgresql://{role}@127.0.0.1:{server.port}/{database}", dim=DIM)
    try:
        scope = Scope.of(user_id="app")
        with caplog.at_level("WARNING", logger="memstrata.backends.postgres_schema"):
            app.add_episodes([_episode(scope, datetime(2019, 7, 1, tzinfo=UTC).timestamp(), "old")])
        assert "episodes_y2019m07" in caplog.text
        with psycopg.connect(pg_url) as conn:
            assert _where(conn, app.list_episodes(scope)[0].id) == "episodes_default"
        ids = _fill(app, scope, _clustered(np.random.default_rng(2), 3, np.eye(DIM)))
        assert {i for i, _ in app.vector_search(scope, np.eye(DIM, dtype=np.float32)[0], 3)} == set(ids)
    finally:
        app.close()


def test_driver_errors_are_translated(store: PostgresStore) -> None:
    scope = Scope.of(user_id="errors")
    with pytest.raises(BackendError, match="postgres store: list memories"):
        store.list_memories(scope, where=[("importance", "gt", "not a number")])
    store.close()
    with pytest.raises(BackendUnavailableError, match="closed"):
        store.get_memories(scope, ["x"])


def test_search_reads_kNN_and_keywords_side_by_side_with_the_same_results(pg_url: str) -> None:
    texts = ["Anna moved to Braga last spring", "Anna likes green tea in the morning", "The boat needs new paint",
             "Bruno teaches violin on Tuesdays", "Green tea and oat porridge for breakfast"]
    with Memory(PostgresStore(pg_url, dim=DIM), embedder=HashEmbedder(DIM)) as plain:
        plain.add([{"role": "user", "content": t} for t in texts], user_id="u", infer=False)
    # Both searched before either writes its last-use times (on close), so they see the same rows.
    with Memory(PostgresStore(pg_url, dim=DIM, parallel_reads=True), embedder=HashEmbedder(DIM)) as m, \
            Memory(PostgresStore(pg_url, dim=DIM), embedder=HashEmbedder(DIM)) as plain:
        store = m.store
        assert store.supports(Capability.PARALLEL_READS)
        assert not plain.store.supports(Capability.PARALLEL_READS)  # off unless asked for
        threads: dict[str, set[str]] = {"vector": set(), "keyword": set()}
        vector_search, keyword_search = store.vector_search, store.keyword_search

        def vector_spy(*args: object, **kwargs: object) -> list[tuple[str, float]]:
            threads["vector"].add(threading.current_thread().name)
            return vector_search(*args, **kwargs)  # type: ignore[arg-type]

        def keyword_spy(*args: object, **kwargs: object) -> list[tuple[str, float]]:
            threads["keyword"].add(threading.current_thread().name)
            return keyword_search(*args, **kwargs)  # type: ignore[arg-type]

        store.vector_search, store.keyword_search = vector_spy, keyword_spy  # type: ignore[method-assign]
        now = datetime(2030, 1, 1, tzinfo=UTC)
        queries = ["green tea", "Where does Anna live?", "violin lessons", "paint for the boat"]
        side_by_side = [m.search(q, user_id="u", now=now)["results"] for q in queries]
        assert threads["vector"].isdisjoint(threads["keyword"]) and threads["keyword"]
        in_turn = [plain.search(q, user_id="u", now=now)["results"] for q in queries]
        assert [[(h["id"], h["score"]) for h in r] for r in side_by_side] == \
            [[(h["id"], h["score"]) for h in r] for r in in_turn]
        assert all(side_by_side)


def test_a_bulk_load_into_tables_without_statistics_analyzes_them(pg_url: str) -> None:
    def reltuples() -> dict[str, float]:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            return dict(conn.execute("SELECT relname::text, reltuples FROM pg_class"
                                     " WHERE relname IN ('memories', 'memory_vectors')").fetchall())

    store = PostgresStore(pg_url, dim=DIM)
    try:
        scope = Scope.of(user_id="bulk")
        rng = np.random.default_rng(3)
        _fill(store, scope, _clustered(rng, 10, rng.normal(size=(2, DIM))))
        assert set(reltuples().values()) == {-1.0}  # a small write leaves them to autovacuum
        _fill(store, scope, _clustered(rng, 1000, rng.normal(size=(2, DIM))))
        assert reltuples() == {"memories": 1010.0, "memory_vectors": 1010.0}
    finally:
        store.close()
