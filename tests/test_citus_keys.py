"""The key changes a Citus distribution needs (part 1 of backends/citus.sql), applied to a real database.

Citus itself cannot be installed here, so part 2 (create_distributed_table) is not run; what is checked is
that after part 1 every key of the per-scope tables holds scope_key, and that the store still works.
"""

from __future__ import annotations

from importlib.resources import files

import psycopg
import pytest

from memstrata import HashEmbedder, Memory
from pg_support import fresh_database

SCOPED = ("scope_counts", "episodes", "memories", "memory_vectors", "history", "entities", "memory_entities",
          "edges", "conflicts")


def _part_one() -> str:
    text = files("memstrata.backends").joinpath("citus.sql").read_text()
    start = text.index("\nBEGIN;")
    return text[start: text.index("\nCOMMIT;", start) + len("\nCOMMIT;")]


def _keys_without_scope(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT c.conrelid::regclass::text, c.conname, array_agg(a.attname::text) FROM pg_constraint c"
        " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey)"
        " WHERE c.contype IN ('p', 'u') AND c.conrelid::regclass::text = ANY(%s)"
        " GROUP BY 1, 2", (list(SCOPED),),
    ).fetchall()
    assert {r[0] for r in rows} == set(SCOPED)
    return [f"{table}.{name}" for table, name, columns in rows if "scope_key" not in columns]


def test_every_key_of_a_scoped_table_holds_the_distribution_column(request: pytest.FixtureRequest) -> None:
    url = fresh_database(request)
    with psycopg.connect(url, autocommit=True) as conn:
        assert _keys_without_scope(conn)  # today's schema does not qualify: part 1 is needed
        conn.execute(_part_one())  # type: ignore[arg-type]
        assert _keys_without_scope(conn) == []

    with Memory(url, embedder=HashEmbedder(32)) as m:
        added = m.add("I live in Lisbon and I like jazz", user_id="ana", infer=False)["results"][0]["id"]
        m.update(added, "I live in Porto and I like jazz", user_id="ana")
        assert m.search("Porto jazz", user_id="ana")["results"][0]["id"] == added
        assert [h["event"] for h in m.history(added, user_id="ana")] == ["ADD", "UPDATE"]
        m.delete(added, user_id="ana")
        assert m.get_all(user_id="ana")["results"] == []
