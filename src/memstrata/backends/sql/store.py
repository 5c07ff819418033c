"""The durable tiers on SQL, written once for SQLite and PostgreSQL behind a :class:`Dialect`.

An engine supplies its connections (``_run``), the scope probe of the entity cache, kNN, full text, the
way it writes memory rows and vectors (its indexes and counters), and bulk statements. Everything else
— listing, lookups, history, the graph, conflicts, and the skeleton of ``apply`` — lives here. Every
statement carries the scope key: no query reads across scopes.
"""

from __future__ import annotations

import uuid
from abc import abstractmethod
from collections.abc import Callable, Hashable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any, ClassVar, TypeVar

import numpy as np

from memstrata.backends.scope_listing import scope_listing, scope_rows
from memstrata.backends.sealing import conflict_columns, conflict_of, seal_opt
from memstrata.backends.sql.dialect import FILTER_COLUMNS, Dialect, match_filter
from memstrata.backends.sql.entity_cache import EntityCache
from memstrata.backends.sql.locks import SECTIONS
from memstrata.backends.sql.rows import (
    CONFLICT_COLUMNS,
    HISTORY_COLUMNS,
    Rows,
    episode_columns,
    memory_columns,
)
from memstrata.core.text import query_terms
from memstrata.errors import BackendError, NotFoundError
from memstrata.models import ConflictRecord, EntityRecord, EpisodeRecord, HistoryEvent, MemoryRecord, Scope
from memstrata.tiers.base import Codec, EntityUpsert, Store, WriteBatch, entity_key

T = TypeVar("T")
Conn = Any  # a DB-API connection (sqlite3) or a psycopg connection: both have execute() -> cursor

# Every table holding a scope's rows, in the order a scope is deleted.
SCOPE_TABLES = ("memory_sentences", "memory_vectors", "memories", "history", "memory_entities", "edges", "entities",
                "conflicts", "episodes", "ingestions")
STAT_TABLES = ("episodes", "memories", "entities", "edges", "history", "conflicts")
_CURRENT = " AND valid_to IS NULL AND superseded_by IS NULL"
# A live memory first; else the scope its kept history names (the memory was deleted).
_SCOPE_OF_MEMORY = (
    "SELECT scope_key FROM (SELECT scope_key, 0 AS pref FROM memories WHERE id = ?"
    " UNION ALL SELECT scope_key, 1 FROM history WHERE memory_id = ?) AS found ORDER BY pref LIMIT 1"
)
_CHUNK = 500


def pack_sentences(matrix: np.ndarray) -> bytes:
    """A (sentences, dim) matrix as float16 bytes: half the space, and cosine is unchanged to about 1e-3."""
    return np.ascontiguousarray(np.atleast_2d(matrix), dtype=np.float16).tobytes()


def unpack_sentences(blob: Any, dim: int) -> np.ndarray:
    return np.frombuffer(bytes(blob), dtype=np.float16).reshape(-1, dim).astype(np.float32)


class SQLStore(Store):
    """The shared part of the SQL stores. Subclasses set ``d`` and implement the abstract methods."""

    d: ClassVar[Dialect]
    #: the engine's own table with one row per written scope (its version or its counters)
    scope_table: ClassVar[str]
    codec: Codec
    rows: Rows
    dim: int
    _entity_cache: EntityCache

    def _init_sql(self, codec: Codec | None) -> None:
        self.codec = codec or Codec()
        self.rows = Rows(self.d, self.codec)
        self._entity_cache = EntityCache()
        self._section_id = uuid.uuid4().hex

    # -- what an engine supplies -------------------------------------------------------------------

    @abstractmethod
    def _run(self, fn: Callable[[Conn], T], what: str, *, write: bool = False) -> T:
        """Run ``fn`` on a connection (in one transaction when ``write``), translating driver errors."""

    @abstractmethod
    def _scope_probe(self, conn: Conn, scope: Scope) -> object:
        """A cheap value that changes whenever any process commits a write to the scope (entity cache)."""

    def change_marker(self, scope: Scope) -> object | None:
        """The scope's probe (the entity cache's)."""
        return self._run(lambda conn: self._scope_probe(conn, scope), "change marker")

    @abstractmethod
    def _write_batch(self, scope: Scope, batch: WriteBatch) -> None:
        """Write ``batch`` in one transaction: the engine's memory rows, vectors and counters, and
        :meth:`_write_rows` for the rest; then bring in-process indexes up to date."""

    @abstractmethod
    def _scope_gone(self, key: str | None) -> None:
        """After a scope (None: every scope) was deleted or purged: drop in-process state for it."""

    def _section_key(self, scope: Scope) -> Hashable:
        """Which thread lock a write section of ``scope`` takes (the process-wide table of sql.locks)."""
        return (self._section_id, scope.key)

    def _other_processes(self, scope: Scope) -> AbstractContextManager[object]:
        """What shuts out other processes' writers of ``scope``, held by the outermost section of a thread."""
        return nullcontext()

    # -- small helpers -----------------------------------------------------------------------------

    def _all(self, what: str, statement: str, args: Sequence[Any] = ()) -> list[Any]:
        return self._run(lambda conn: conn.execute(self.d.q(statement), args).fetchall(), what)

    def _memories(self, what: str, statement: str, args: Sequence[Any]) -> list[MemoryRecord]:
        return [self.rows.memory(r) for r in self._all(what, statement, args)]

    def _by_ids(self, what: str, table_columns: str, ids: Sequence[str], scope: Scope) -> list[Any]:
        """Rows of ``SELECT {table_columns} WHERE scope AND id IN ids``, in chunks (SQLite's bound limit)."""
        out: list[Any] = []
        for start in range(0, len(ids), _CHUNK):
            clause, args = self.d.in_list("id", ids[start : start + _CHUNK])
            out += self._all(what, f"SELECT {table_columns} WHERE {self.d.scope_hint} = ? AND {clause}",
                             [scope.key, *args])
        return out

    def _terms(self, scope: Scope, terms: Sequence[str] | str) -> list[str]:
        """Query terms as given; a raw query (older callers of ``search_episodes``) is tokenized the way
        retrieval does it, through the codec's query vocabulary."""
        if isinstance(terms, str):
            return query_terms(self.codec.query_text(scope, terms), 32)
        return list(terms)

    # -- episodic ----------------------------------------------------------------------------------

    def get_episodes(self, scope: Scope, ids: Sequence[str]) -> list[EpisodeRecord]:
        if not ids:
            return []
        rows = self._by_ids("get episodes", f"{episode_columns(self.d)} FROM episodes", list(ids), scope)
        by_id = {r[0]: self.rows.episode(r) for r in rows}
        return [by_id[i] for i in ids if i in by_id]

    def episode_names(self, scope: Scope, ids: Sequence[str]) -> dict[str, str]:
        if not ids:
            return {}
        rows = self._by_ids("episode names", "id, name FROM episodes", list(ids), scope)
        return {r[0]: name for r in rows if r[1] is not None and (name := self.codec.open(scope, r[1]))}

    def list_episodes(
        self,
        scope: Scope,
        *,
        conversation_id: str | None = None,
        start: float | None = None,
        end: float | None = None,
        status: str | None = None,
        limit: int = 100,
        after: tuple[float, str] | None = None,
    ) -> list[EpisodeRecord]:
        statement = f"SELECT {episode_columns(self.d)} FROM episodes WHERE scope_key = ?"
        args: list[Any] = [scope.key]
        for clause, value in ((" AND conversation_id = ?", conversation_id), (" AND occurred_at >= ?", start),
                              (" AND occurred_at < ?", end), (" AND extraction_status = ?", status)):
            if value is not None:
                statement += clause
                args.append(float(value) if isinstance(value, int | float) else value)
        if after is not None:
            statement += " AND (occurred_at, id) > (?, ?)"
            args.extend((float(after[0]), after[1]))
        statement += " ORDER BY occurred_at, position, id LIMIT ?"
        return [self.rows.episode(r) for r in self._all("list episodes", statement, [*args, limit])]

    # -- long-term ---------------------------------------------------------------------------------

    def get_memories(self, scope: Scope, ids: Sequence[str]) -> list[MemoryRecord]:
        if not ids:
            return []
        rows = self._by_ids("get memories", f"{memory_columns(self.d)} FROM memories", list(ids), scope)
        by_id = {r[1]: self.rows.memory(r) for r in rows}
        return [by_id[i] for i in ids if i in by_id]

    def list_memories(
        self,
        scope: Scope,
        *,
        include_superseded: bool = False,
        conversation_id: str | None = None,
        limit: int = 100,
        after: tuple[float, str] | None = None,
        where: Sequence[tuple[str, str, Any]] = (),
    ) -> list[MemoryRecord]:
        statement = f"SELECT {memory_columns(self.d)} FROM memories WHERE scope_key = ?"
        args: list[Any] = [scope.key]
        if not include_superseded:
            statement += _CURRENT
        if conversation_id is not None:
            statement += " AND conversation_id = ?"
            args.append(conversation_id)
        # Sealed metadata cannot be read by SQL: those filters run here, after decryption.
        in_python = [w for w in where if self.codec.encrypts and w[0] not in FILTER_COLUMNS]
        for field, op, value in where:
            if (field, op, value) not in in_python:
                clause, more = self.d.filter_sql(field, op, value)
                statement += f" AND {clause}"
                args.extend(more)
        if after is not None:
            statement += " AND (created_at, id) > (?, ?)"
            args.extend((float(after[0]), after[1]))
        statement += " ORDER BY created_at, id"
        if not in_python:
            statement += " LIMIT ?"
            args.append(limit)
        rows = self._memories("list memories", statement, args)
        if in_python:
            rows = [r for r in rows if all(match_filter(r.metadata.get(f), op, v) for f, op, v in in_python)][:limit]
        return rows

    def count(self, scope: Scope) -> int:
        rows = self._all("count memories", "SELECT count(*) FROM memories WHERE scope_key = ?", (scope.key,))
        return int(rows[0][0]) if rows else 0

    def find_by_hash(self, scope: Scope, content_hash: str) -> list[MemoryRecord]:
        return self._memories(
            "find by hash",
            f"SELECT {memory_columns(self.d)} FROM memories WHERE scope_key = ? AND content_hash = ? ORDER BY rid",
            (scope.key, self.codec.seal_hash(scope, content_hash)),
        )

    def find_by_slot(self, scope: Scope, subject: str | None, attribute: str) -> list[MemoryRecord]:
        statement = f"SELECT {memory_columns(self.d)} FROM memories WHERE scope_key = ? AND slot_attribute = ?"
        args: list[Any] = [scope.key, self.codec.seal_hash(scope, attribute)]
        if subject is not None:
            statement += " AND slot_subject = ?"
            args.append(self.codec.seal_hash(scope, subject))
        return self._memories("find by slot", statement + _CURRENT + " ORDER BY rid", args)

    def scope_of_memory(self, memory_id: str) -> Scope | None:
        rows = self._all("scope of memory", _SCOPE_OF_MEMORY, (memory_id, memory_id))
        return Scope.from_key(rows[0][0]) if rows else None

    def history(self, scope: Scope, memory_id: str) -> list[HistoryEvent]:
        columns = HISTORY_COLUMNS.replace("metadata", self.d.text("metadata"))
        rows = self._all(
            "history", f"SELECT {columns} FROM history WHERE scope_key = ? AND memory_id = ? ORDER BY rid",
            (scope.key, memory_id),
        )
        return [self.rows.history(scope, r) for r in rows]

    # -- graph -------------------------------------------------------------------------------------

    def entities(self, scope: Scope, limit: int = 1000) -> list[EntityRecord]:
        """The scope's entities, most mentioned first; served from the per-scope cache while the scope's
        probe is unchanged (memstrata.backends.sql.entity_cache)."""
        cache = self._entity_cache
        probe = self._run(lambda conn: self._scope_probe(conn, scope), "entities")
        hit = cache.get(scope.key, probe, limit)
        if hit is not None:
            return hit
        statement = self.d.q(
            f"SELECT id, name, label, {self.d.text('aliases')}, mention_count FROM entities WHERE scope_key = ?"
            " ORDER BY mention_count DESC, rid LIMIT ?"
        )

        def read(conn: Conn) -> tuple[object, list[Any]]:
            return self._scope_probe(conn, scope), conn.execute(statement, (scope.key, limit)).fetchall()

        probe, rows = self._run(read, "entities")
        found = [self.rows.entity(scope, r) for r in rows]
        cache.put(scope.key, probe, limit, found)
        return list(found)

    def memories_of_entities(self, scope: Scope, entity_ids: Sequence[str], limit: int = 50) -> list[str]:
        if not entity_ids:
            return []
        clause, args = self.d.in_list("me.entity_id", entity_ids)
        rows = self._all(
            "memories of entities",
            "SELECT me.memory_id FROM memory_entities me"
            " JOIN memories m ON m.scope_key = me.scope_key AND m.id = me.memory_id"
            f" WHERE me.scope_key = ? AND {clause} AND m.valid_to IS NULL AND m.superseded_by IS NULL"
            " GROUP BY me.memory_id ORDER BY count(*) DESC, max(m.created_at) DESC, me.memory_id LIMIT ?",
            [scope.key, *args, limit],
        )
        return [r[0] for r in rows]

    def neighbours(self, scope: Scope, entity_id: str, depth: int = 1) -> list[tuple[EntityRecord, str, int]]:
        rows = self._all("neighbours", self.d.neighbours, self.d.neighbours_args(scope, entity_id, depth))
        return [(self.rows.entity(scope, r), self.codec.open(scope, r[5]), r[6]) for r in rows]

    # -- writes ------------------------------------------------------------------------------------

    def scope_lock(self, scope: Scope) -> AbstractContextManager[object]:
        """The scope's write section (see ``Store.scope_lock``): a thread lock, then the engine's lock
        across processes."""
        return SECTIONS.hold(self._section_key(scope), lambda: self._other_processes(scope))

    @staticmethod
    def in_write_section() -> bool:
        """Whether this thread holds a write section: its reads must see the latest commit."""
        return SECTIONS.depth() > 0

    def apply(self, scope: Scope, batch: WriteBatch) -> None:
        if not batch:
            return
        for rec, _ in batch.new_memories:
            if rec.scope != scope:
                raise BackendError(f"{self.d.name} store: a memory in the batch belongs to another scope")
        try:
            self._write_batch(scope, batch)
        finally:
            self._entity_cache.drop(scope.key)

    def _write_rows(self, conn: Conn, scope: Scope, batch: WriteBatch) -> None:
        """What follows the memory rows in every engine: sentence vectors, history, the graph, conflicts,
        episode status."""
        d, key, seal = self.d, scope.key, self.codec.seal
        self._write_sentences(conn, scope, batch)
        self.d.many(conn, f"INSERT INTO history (id, scope_key, memory_id, event, old_memory, new_memory, actor,"
                   f" reason, metadata, created_at) VALUES (?,?,?,?,?,?,?,?,{d.json},?)",
                   [self.rows.history_insert(scope, ev) for ev in batch.history])
        if batch.entity_links or batch.edges:
            ids = {up.key: self._upsert_entity(conn, scope, up) for up in batch.entities}

            def eid(name: str) -> str:
                try:
                    return ids[entity_key(name)]
                except KeyError:
                    raise BackendError(f"{d.name} store: the batch names the entity {name!r} without an upsert"
                                       " for it (memstrata.ingest.entities.resolve_entities)") from None

            link = d.q(d.insert_ignore("memory_entities", "scope_key, memory_id, entity_id", "?,?,?"))
            for memory_id, name, _label, _alias in batch.entity_links:
                conn.execute(link, (key, memory_id, eid(name)))
            edge = d.q("INSERT INTO edges (scope_key, subject_id, relation, object_id, memory_id, episode_id,"
                       f" created_at) VALUES (?,?,?,?,?,?, {d.now})")
            for subj, relation, obj, edge_memory, episode_id in batch.edges:
                conn.execute(edge, (key, eid(subj), seal(scope, relation), eid(obj), edge_memory, episode_id))
        self.d.many(
            conn,
            "INSERT INTO conflicts (id, scope_key, new_memory_id, old_memory_id, subject, attribute, old_value,"
            " new_value, policy, status, created_at, resolved_at, resolution) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [(c.id, key, c.new_memory_id, c.old_memory_id, *conflict_columns(self.codec, scope, c), c.policy,
              c.status, c.created_at, c.resolved_at, c.resolution) for c in batch.conflicts],
        )
        self.d.many(
            conn, "UPDATE episodes SET extraction_status = ?, extraction_error = ? WHERE scope_key = ? AND id = ?",
            [(status, seal_opt(self.codec, scope, error), key, episode_id)
             for episode_id, status, error in batch.episode_status],
        )

    def _upsert_entity(self, conn: Conn, scope: Scope, up: EntityUpsert) -> str:
        """Write one resolved entity (see ``EntityUpsert``); returns the stored id."""
        d, c = self.d, self.codec
        stored_key = c.seal_hash(scope, up.key)
        row = conn.execute(
            d.q(f"SELECT id, {d.text('aliases')}, label FROM entities WHERE scope_key = ? AND name_key = ?"),
            (scope.key, stored_key),
        ).fetchone()
        if row is None:
            conn.execute(
                d.q("INSERT INTO entities (id, scope_key, name, name_key, label, aliases, mention_count, created_at)"
                    f" VALUES (?,?,?,?,?,{d.json},?, {d.now})"),
                (up.id, scope.key, c.seal(scope, up.name), stored_key, up.label or "OTHER",
                 d.meta_in(c, scope, sorted(set(up.aliases))), up.mentions),
            )
            return up.id
        aliases = set(d.meta_out(c, scope, row[1])) | set(up.aliases)
        conn.execute(
            d.q(f"UPDATE entities SET aliases = {d.json}, label = ?, mention_count = mention_count + ? WHERE id = ?"),
            (d.meta_in(c, scope, sorted(aliases)), up.label or row[2], up.mentions, row[0]),
        )
        return str(row[0])

    @staticmethod
    def _unlink_memory(conn: Conn, d: Dialect, key: str, memory_id: str) -> None:
        """A deleted memory's graph links and edges."""
        for table in ("memory_entities", "edges"):
            conn.execute(d.q(f"DELETE FROM {table} WHERE scope_key = ? AND memory_id = ?"), (key, memory_id))

    def conflicts(self, scope: Scope, status: str | None = "open") -> list[ConflictRecord]:
        statement = f"SELECT {CONFLICT_COLUMNS} FROM conflicts WHERE scope_key = ?"
        args: list[Any] = [scope.key]
        if status is not None:
            statement += " AND status = ?"
            args.append(status)
        return [conflict_of(self.codec, scope, r) for r in self._all("conflicts", statement + " ORDER BY rid", args)]

    def resolve_conflict(self, scope: Scope, conflict_id: str, resolution: str, at: float) -> ConflictRecord:
        def write(conn: Conn) -> None:
            cur = conn.execute(
                self.d.q("UPDATE conflicts SET status = 'resolved', resolution = ?, resolved_at = ?"
                         " WHERE scope_key = ? AND id = ?"),
                (resolution, at, scope.key, conflict_id),
            )
            if cur.rowcount == 0:
                raise NotFoundError("conflict", conflict_id)

        self._run(write, "resolve conflict", write=True)
        return next(c for c in self.conflicts(scope, None) if c.id == conflict_id)

    def touch(self, scope: Scope, ids: Sequence[str], at: float) -> None:
        if not ids:
            return
        clause, args = self.d.in_list("id", ids)
        statement = self.d.q("UPDATE memories SET last_accessed_at = ?, access_count = access_count + 1"
                             f" WHERE {self.d.scope_hint} = ? AND {clause}")
        self._run(lambda conn: conn.execute(statement, [at, scope.key, *args]), "touch", write=True)

    def delete_scope(self, scope: Scope) -> dict[str, int]:
        key = scope.key

        def write(conn: Conn) -> dict[str, int]:
            counts = {t: conn.execute(self.d.q(f"DELETE FROM {t} WHERE scope_key = ?"), (key,)).rowcount
                      for t in SCOPE_TABLES}
            conn.execute(self.d.q(f"DELETE FROM {self.scope_table} WHERE scope_key = ?"), (key,))
            return counts

        try:
            return self._run(write, "delete scope", write=True)
        finally:
            self._entity_cache.drop(key)
            self._scope_gone(key)

    def reset(self) -> None:
        def wipe(conn: Conn) -> None:
            for statement in self.d.wipe([*SCOPE_TABLES, self.scope_table]):
                conn.execute(statement)

        try:
            self._run(wipe, "reset", write=True)
        finally:
            self._entity_cache.drop()
            self._scope_gone(None)

    def _write_sentences(self, conn: Conn, scope: Scope, batch: WriteBatch) -> None:
        """Sentence vectors of new memories (one row per memory, float16); a memory whose text was
        re-embedded loses its old ones."""
        key = scope.key
        for rec, vecs in batch.updated_memories:
            if vecs is not None:
                conn.execute(self.d.q("DELETE FROM memory_sentences WHERE memory_rid IN"
                                      " (SELECT rid FROM memories WHERE scope_key = ? AND id = ?)"), (key, rec.id))
        if not batch.sentence_vectors:
            return
        rid_of: dict[str, int] = {}
        ids = [i for i, _ in batch.sentence_vectors]
        for start in range(0, len(ids), _CHUNK):
            clause, args = self.d.in_list("id", ids[start : start + _CHUNK])
            rid_of.update(conn.execute(self.d.q(f"SELECT id, rid FROM memories WHERE scope_key = ? AND {clause}"),
                                       (key, *args)).fetchall())
        self.d.many(conn, "INSERT INTO memory_sentences (memory_rid, scope_key, n, vectors) VALUES (?,?,?,?)",
                    [(rid_of[i], key, len(m), pack_sentences(m)) for i, m in batch.sentence_vectors])

    def sentence_vectors(self, scope: Scope, ids: Sequence[str]) -> dict[str, np.ndarray]:
        if not ids:
            return {}
        clause, args = self.d.in_list("m.id", list(ids))
        statement = self.d.q("SELECT m.id, s.vectors FROM memories m JOIN memory_sentences s ON s.memory_rid = m.rid"
                             f" WHERE m.scope_key = ? AND {clause}")
        rows = self._run(lambda conn: conn.execute(statement, (scope.key, *args)).fetchall(), "get sentence vectors")
        return {r[0]: unpack_sentences(r[1], self.dim) for r in rows}

    def _table_counts(self, conn: Conn, scope: Scope | None) -> dict[str, int]:
        if scope is None:
            return {t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in STAT_TABLES}
        where = self.d.q("WHERE scope_key = ?")
        return {t: int(conn.execute(f"SELECT count(*) FROM {t} {where}", (scope.key,)).fetchone()[0])
                for t in STAT_TABLES}

    def scopes(self, org_id=None, user_ids=None, agent_ids=None, limit=100):  # type: ignore[no-untyped-def]
        statement, params = scope_listing(self.d.q("?"), org_id, user_ids, agent_ids, limit)
        return self._run(lambda conn: scope_rows(conn.execute(statement, params).fetchall()), "list scopes")
