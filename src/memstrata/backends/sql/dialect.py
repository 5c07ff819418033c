"""What differs between the SQL engines below the statements: placeholders, JSON columns, lists, the clock,
metadata filters and the one recursive graph walk whose grouping each engine spells its own way.

Shared statements are written with ``?`` placeholders; :meth:`Dialect.q` turns them into the engine's. No
shared statement holds a literal ``?`` or ``%``, so the rewrite is a plain replacement.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from memstrata.models import Scope
from memstrata.tiers.base import Codec

# Columns a filter may name directly; anything else is a metadata key.
FILTER_COLUMNS = frozenset({"created_at", "updated_at", "valid_from", "valid_to", "conversation_id", "kind",
                            "importance"})
_TEXT_COLUMNS = {"conversation_id", "kind"}
_OPS = {"eq": "=", "ne": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def match_filter(actual: Any, op: str, value: Any) -> bool:
    """The Python twin of ``Dialect.filter_sql`` for one metadata value (where SQL cannot see the value)."""
    if op == "in":
        return actual in value
    if op == "nin":
        return actual not in value
    if op == "eq":
        return actual == value
    if op == "ne":
        return actual != value
    if actual is None or isinstance(actual, dict | list):
        return False
    try:
        return {"gt": actual > value, "gte": actual >= value, "lt": actual < value, "lte": actual <= value}[op]
    except TypeError:
        return False


class Dialect:
    """The SQLite spelling; :class:`PostgresDialect` overrides what PostgreSQL writes differently."""

    name = "sqlite"
    json = "?"  # the placeholder of a value bound for a JSON column
    now = "strftime('%s','now')"
    null_eq = "IS"  # equality that matches NULL to NULL
    # Makes SQLite pick the id (or rid) index and filter the scope afterwards; PostgreSQL needs no hint.
    scope_hint = "+scope_key"
    # A ciphertext is not JSON: where the column is typed JSON it is kept as a JSON string.
    json_typed = False

    def q(self, statement: str) -> str:
        return statement

    def text(self, column: str) -> str:
        """A JSON column read as its text."""
        return column

    def many(self, conn: Any, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        """One statement over many rows (the DB-API's executemany)."""
        if rows:
            conn.executemany(self.q(statement), rows)

    def wipe(self, tables: Sequence[str]) -> list[str]:
        """The statements that empty ``tables``."""
        return [f"DELETE FROM {t}" for t in tables]

    def in_list(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """``column`` is one of ``values`` (not empty)."""
        return f"{column} IN ({','.join('?' * len(values))})", list(values)

    def insert_ignore(self, table: str, columns: str, values: str) -> str:
        return f"INSERT OR IGNORE INTO {table} ({columns}) VALUES ({values})"

    def c_range(self, column: str) -> str:
        """A bytewise range test: scope-key bounds assume byte order, not a collation."""
        return f"{column} >= ? AND {column} < ?"

    def meta_in(self, codec: Codec, scope: Scope, value: Any) -> str:
        sealed = codec.seal(scope, json.dumps(value))
        return json.dumps(sealed) if self.json_typed and codec.encrypts else sealed

    def meta_out(self, codec: Codec, scope: Scope, raw: str) -> Any:
        if not codec.encrypts and (raw == "{}" or raw == "[]"):
            return {} if raw == "{}" else []  # most records carry no metadata or entities; every hit reads both
        stored = json.loads(raw) if self.json_typed and codec.encrypts else raw
        return json.loads(codec.open(scope, stored))

    @staticmethod
    def json_list(raw: Any) -> list[Any]:
        """A JSON list column as read: text (SQLite) or already decoded (jsonb)."""
        return list(raw) if isinstance(raw, list) else list(json.loads(raw))

    def filter_sql(self, field: str, op: str, value: Any) -> tuple[str, list[Any]]:
        """One validated filter → SQL. Metadata keys travel as bound JSON paths, never as SQL text."""
        if field in FILTER_COLUMNS:
            target, args = field, []
        else:
            target, args = "json_extract(metadata, ?)", ['$."' + field.replace('"', "") + '"']
        if op in ("in", "nin"):
            marks = ",".join("?" * len(value))
            return f"{target} {'IN' if op == 'in' else 'NOT IN'} ({marks})", [*args, *value]
        return f"{target} {_OPS[op]} ?", [*args, int(value) if isinstance(value, bool) else value]

    # Entities reachable from one, nearest first, each once; edges of superseded memories do not count.
    neighbours = """
        WITH RECURSIVE walk(entity_id, relation, hops) AS (
            SELECT ?, '', 0
            UNION
            SELECT CASE WHEN e.subject_id = w.entity_id THEN e.object_id ELSE e.subject_id END,
                   e.relation, w.hops + 1
            FROM edges e JOIN walk w ON (e.subject_id = w.entity_id OR e.object_id = w.entity_id)
            WHERE e.scope_key = ? AND w.hops < ?
              AND (e.memory_id IS NULL OR EXISTS (
                  SELECT 1 FROM memories m WHERE m.id = e.memory_id
                  AND m.valid_to IS NULL AND m.superseded_by IS NULL))
        )
        SELECT n.id, n.name, n.label, n.aliases, n.mention_count, w.relation, min(w.hops)
        FROM walk w JOIN entities n ON n.id = w.entity_id
        WHERE n.scope_key = ? AND w.hops > 0 AND n.id != ?
        GROUP BY n.id ORDER BY min(w.hops), n.mention_count DESC
        """

    def neighbours_args(self, scope: Scope, entity_id: str, depth: int) -> list[Any]:
        return [entity_id, scope.key, depth, scope.key, entity_id]


class PostgresDialect(Dialect):
    name = "postgres"
    json = "?::jsonb"
    now = "extract(epoch FROM now())"
    null_eq = "IS NOT DISTINCT FROM"
    scope_hint = "scope_key"
    json_typed = True

    def q(self, statement: str) -> str:
        return statement.replace("?", "%s")

    def text(self, column: str) -> str:
        return f"{column}::text"

    def many(self, conn: Any, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:  # a psycopg connection has no executemany; its cursors do
            conn.cursor().executemany(self.q(statement), rows)

    def wipe(self, tables: Sequence[str]) -> list[str]:
        return [f"TRUNCATE {', '.join(tables)}"]

    def in_list(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        return f"{column} = ANY(?)", [list(values)]

    def insert_ignore(self, table: str, columns: str, values: str) -> str:
        return f"INSERT INTO {table} ({columns}) VALUES ({values}) ON CONFLICT DO NOTHING"

    def c_range(self, column: str) -> str:
        return f'{column} COLLATE "C" >= ? AND {column} COLLATE "C" < ?'

    def filter_sql(self, field: str, op: str, value: Any) -> tuple[str, list[Any]]:
        if field in FILTER_COLUMNS:
            target, args = field, []

            def conv(v: Any) -> Any:
                if field in _TEXT_COLUMNS:
                    return str(v)
                return float(v) if isinstance(v, bool | int | float) else v

            cast = ""
        else:
            target, args, cast = "(metadata -> ?::text)", [field], "::jsonb"

            def conv(v: Any) -> Any:
                return json.dumps(v)

        if op in ("in", "nin"):
            clause = f"{target} = ANY(?{cast}{'[]' if cast else ''})"
            return (clause if op == "in" else f"NOT ({clause})"), [*args, [conv(v) for v in value]]
        return f"{target} {'<>' if op == 'ne' else _OPS[op]} ?{cast}", [*args, conv(value)]

    neighbours = """
        WITH RECURSIVE walk(entity_id, relation, hops) AS (
            SELECT ?::text, ''::text, 0
            UNION
            SELECT CASE WHEN e.subject_id = w.entity_id THEN e.object_id ELSE e.subject_id END,
                   e.relation, w.hops + 1
            FROM edges e JOIN walk w ON (e.subject_id = w.entity_id OR e.object_id = w.entity_id)
            WHERE e.scope_key = ? AND w.hops < ?
              AND (e.memory_id IS NULL OR EXISTS (
                  SELECT 1 FROM memories m WHERE m.scope_key = e.scope_key AND m.id = e.memory_id
                  AND m.valid_to IS NULL AND m.superseded_by IS NULL))
        ), nearest AS (
            SELECT DISTINCT ON (w.entity_id) w.entity_id, w.relation, w.hops
            FROM walk w WHERE w.hops > 0 AND w.entity_id <> ?
            ORDER BY w.entity_id, w.hops, w.relation
        )
        SELECT n.id, n.name, n.label, n.aliases::text, n.mention_count, x.relation, x.hops
        FROM nearest x JOIN entities n ON n.id = x.entity_id
        WHERE n.scope_key = ?
        ORDER BY x.hops, n.mention_count DESC, n.rid
        """

    def neighbours_args(self, scope: Scope, entity_id: str, depth: int) -> list[Any]:
        return [entity_id, scope.key, depth, entity_id, scope.key]
