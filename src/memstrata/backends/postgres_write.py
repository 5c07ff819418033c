"""One write batch of the PostgreSQL store, inside ``apply``'s transaction: memory rows with their tsvector and
length, vectors by COPY, the rows every SQL store writes alike, and the per-scope counters."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np

from memstrata.backends.postgres_knn import vector_literal
from memstrata.backends.postgres_local import ScopeChanges
from memstrata.backends.sql.dialect import PostgresDialect
from memstrata.backends.sql.rows import MEMORY_INSERT, MEMORY_UPDATE, marks, set_list
from memstrata.errors import NotFoundError
from memstrata.models import MemoryRecord, Scope
from memstrata.tiers.base import Codec, WriteBatch

if TYPE_CHECKING:
    import psycopg

    from memstrata.backends.postgres import PostgresStore

_D = PostgresDialect()
_TOKEN = re.compile(r"[^\W_]+")


def fts_len(indexed: str) -> int:
    return len(_TOKEN.findall(indexed))  # words as FTS5 counts them (stopwords included), for BM25


def fts_source(codec: Codec, scope: Scope, text: str) -> str:
    """What the tsvector of ``text`` is built from: the codec's index text (blinded tokens), else the text."""
    indexed = codec.index_text(scope, text)
    return text if indexed is None else indexed


def write_batch(
    store: PostgresStore, conn: psycopg.Connection, scope: Scope, batch: WriteBatch,
    assigned: list[tuple[MemoryRecord, int]], changes: ScopeChanges,
) -> None:
    """One batch inside ``apply``'s transaction: memory rows, vectors by COPY, the shared rest, the counters.
    ``changes`` gets what the batch did to the scope's vectors, for the in-process index (postgres_local)."""
    assigned.clear()
    changes.clear()
    key = scope.key
    cur = conn.cursor()
    # One row per scope, locked for the transaction: writes to a scope are serialised, which keeps
    # the entity upserts and the vector count race-free without locking other scopes.
    created = conn.execute("INSERT INTO scope_counts (scope_key) VALUES (%s) ON CONFLICT (scope_key) DO NOTHING"
                           " RETURNING true", (key,)).fetchone()
    row = conn.execute("SELECT xmin::text FROM scope_counts WHERE scope_key = %s FOR UPDATE", (key,)).fetchone()
    # The scope's version before this batch (postgres_local): its row's last writer, or none before this one.
    changes.old = None if created is not None or row is None else row[0]
    delta = docs = doc_len = 0
    vector_rows: list[tuple[int, int, str, bool, str]] = []
    if batch.new_memories:
        rids = [r[0] for r in conn.execute(
            "SELECT nextval(pg_get_serial_sequence('memories', 'rid')) FROM generate_series(1, %s)",
            (len(batch.new_memories),),
        )]
        memory_rows = []
        for (rec, vecs), rid in zip(batch.new_memories, rids, strict=True):
            indexed = fts_source(store.codec, scope, rec.text)
            docs += 1
            doc_len += fts_len(indexed)
            memory_rows.append((rid, *store.rows.memory_insert(scope, rec), store._fts_config, indexed,
                                fts_len(indexed)))
            matrix = np.atleast_2d(vecs)
            vector_rows += [(rid, i, key, rec.current, vector_literal(matrix[i])) for i in range(len(matrix))]
            assigned.append((rec, rid))
            changes.added.append((rid, matrix))
            if not rec.current:
                changes.flag(rid, False)
        cur.executemany(
            _D.q(f"INSERT INTO memories (rid, {MEMORY_INSERT}, fts, fts_len) VALUES (?,"
                 f" {marks(_D, MEMORY_INSERT)}, to_tsvector(?::regconfig, ?), ?)"),
            memory_rows,
        )
    update = _D.q(f"UPDATE memories SET {set_list(_D, MEMORY_UPDATE)}, fts = to_tsvector(?::regconfig, ?),"
                  " fts_len = ? WHERE scope_key = ? AND rid = ?")
    for rec, new_vecs in batch.updated_memories:
        row = conn.execute(
            "SELECT rid, valid_to IS NULL AND superseded_by IS NULL, fts_len FROM memories"
            " WHERE scope_key = %s AND id = %s FOR UPDATE",
            (key, rec.id),
        ).fetchone()
        if row is None:
            raise NotFoundError("memory", rec.id)
        rid, was_active, old_len = row
        indexed = fts_source(store.codec, scope, rec.text)
        doc_len += fts_len(indexed) - old_len
        conn.execute(update, (*store.rows.memory_update(scope, rec), store._fts_config, indexed,
                              fts_len(indexed), key, rid))
        if new_vecs is not None:
            matrix = np.atleast_2d(new_vecs)
            delta -= conn.execute("DELETE FROM memory_vectors WHERE memory_rid = %s", (rid,)).rowcount
            vector_rows += [(rid, i, key, rec.current, vector_literal(matrix[i])) for i in range(len(matrix))]
            changes.removed.append(rid)
            changes.added.append((rid, matrix))
            if not rec.current:
                changes.flag(rid, False)
        elif bool(was_active) != rec.current:
            conn.execute("UPDATE memory_vectors SET active = %s WHERE memory_rid = %s", (rec.current, rid))
            changes.flag(rid, rec.current)
    if vector_rows:
        # COPY: a third of the time of row-by-row INSERTs, which matters on bulk ingest.
        with cur.copy("COPY memory_vectors (memory_rid, chunk, scope_key, active, embedding) FROM STDIN") as cp:
            for vector_row in vector_rows:
                cp.write_row(vector_row)
        delta += len(vector_rows)
    for memory_id in batch.deleted_memory_ids:
        row = conn.execute(
            "SELECT rid, fts_len FROM memories WHERE scope_key = %s AND id = %s", (key, memory_id)
        ).fetchone()
        if row is None:
            raise NotFoundError("memory", memory_id)
        docs -= 1
        doc_len -= row[1]
        delta -= conn.execute("DELETE FROM memory_vectors WHERE memory_rid = %s", (row[0],)).rowcount
        conn.execute("DELETE FROM memories WHERE scope_key = %s AND rid = %s", (key, row[0]))
        changes.removed.append(row[0])
        store._unlink_memory(conn, _D, key, memory_id)
    store._write_rows(conn, scope, batch)
    # Always written, even with nothing to add: the new row version (its xmin) is the scope's version, which
    # other processes' entity caches and vector indexes probe.
    row = conn.execute(
        "UPDATE scope_counts SET vectors = vectors + %s, docs = docs + %s, doc_len = doc_len + %s"
        " WHERE scope_key = %s RETURNING xmin::text",
        (delta, docs, doc_len, key),
    ).fetchone()
    changes.new = None if row is None else row[0]
