"""kNN on pgvector for the PostgreSQL store: the exact scan and the HNSW path, chosen per query.

A scope with at most ``exact_max_rows`` vectors is scanned exactly through the btree on ``scope_key``
(always right, a few ms). A larger scope goes through the HNSW index unless it is a sliver of the table,
with pgvector's iterative scan (``relaxed_order``) so the scope filter cannot starve the result — the
trap where an HNSW scan returns ef_search rows, the WHERE clause throws most away, and k is never
reached — and the candidates are re-ranked by their exact distance. If HNSW still returns fewer than k
(pgvector < 0.8 has no iterative scan), the exact path answers.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

# Up to this many vectors a scope is always scanned exactly: ~10 ms or less, and always right
# (bench/backends.py measures it; docs/backends.md has the numbers).
EXACT_MAX_ROWS = 10_000
# A filtered HNSW scan visits about table/scope tuples per match it keeps, each costing about this many
# rows of an exact scan; above EXACT_MAX_ROWS the cheaper of the two is taken (bench: 5 to 8).
HNSW_VISIT_COST = 6.0
SIZE_CACHE_SECONDS = 5.0


def vector_literal(v: np.ndarray) -> str:
    """pgvector's text form; float32 → Python float → repr round-trips exactly."""
    return "[" + ",".join(map(repr, np.asarray(v, dtype=np.float32).ravel().tolist())) + "]"


_MEMORY_ID = "SELECT m.id FROM memories m WHERE m.scope_key = %s AND m.rid ="  # one memory's id, by its rid


def rids_of(conn: psycopg.Connection, key: str, ids: Sequence[str]) -> list[int]:
    """The row ids of the memories ``ids`` of one scope (those that exist)."""
    return [r[0] for r in conn.execute("SELECT rid FROM memories WHERE scope_key = %s AND id = ANY(%s)",
                                       (key, list(ids)))]


def _candidates(k: int) -> int:
    return k + max(8, k // 4)  # a few spare rows, so chunks of one memory don't crowd others out


def _similarity(distance: float) -> float:
    # A zero vector has no cosine (NaN); the dot product the other backends use gives it 0.
    d = float(distance)
    return 0.0 if d != d else 1.0 - d


class Knn:
    """Picks and runs a kNN path on a connection; caches scope sizes for a few seconds."""

    def __init__(self, *, exact_max_rows: int, ef_search: int, has_hnsw: bool, iterative_scan: bool) -> None:
        self.exact_max_rows = exact_max_rows
        self.ef_search = ef_search
        self.has_hnsw = has_hnsw
        self.iterative_scan = iterative_scan
        self._sizes: dict[str, tuple[int, float]] = {}

    def forget(self, key: str | None) -> None:
        """Sizes changed (a write, a purge, a delete): drop the cached ones; None drops all."""
        if key is None:
            self._sizes.clear()
        else:
            self._sizes.pop(key, None)
            self._sizes.pop("", None)

    @staticmethod
    def scope_rows(conn: psycopg.Connection, key: str) -> int:
        """Vectors of one scope; the empty key (no scope has it) stands for the whole table."""
        if not key:
            row = conn.execute("SELECT coalesce(sum(vectors), 0) FROM scope_counts").fetchone()
        else:
            row = conn.execute("SELECT vectors FROM scope_counts WHERE scope_key = %s", (key,)).fetchone()
        return int(row[0]) if row else 0

    def scope_size(self, conn: psycopg.Connection, key: str) -> int:
        """The scope's vector count, cached for a few seconds: it only picks a path, and both are right."""
        now = time.monotonic()
        hit = self._sizes.get(key)
        if hit is not None and now - hit[1] < SIZE_CACHE_SECONDS:
            return hit[0]
        size = self.scope_rows(conn, key)
        if len(self._sizes) > 10_000:
            self._sizes.clear()
        self._sizes[key] = (size, now)
        return size

    def path(self, conn: psycopg.Connection, key: str, k: int) -> str:
        """Which kNN path a search of this scope for ``k`` neighbours takes now: "exact" or "hnsw"."""
        return "hnsw" if self._hnsw_pays(conn, self.scope_size(conn, key), k) else "exact"

    def _hnsw_pays(self, conn: psycopg.Connection, size: int, k: int) -> bool:
        """HNSW only for a big scope that is not a sliver of the table (the filter would make it crawl)."""
        if not self.has_hnsw or size <= self.exact_max_rows:
            return False
        total = max(size, self.scope_size(conn, ""))
        return size * size > HNSW_VISIT_COST * _candidates(k) * total

    def search_with_sentences(
        self, conn: psycopg.Connection, key: str, vector: np.ndarray, k: int, include_superseded: bool,
        only_rids: list[int] | None, strategy: str, sentences: bool = True,
    ) -> tuple[list[tuple[str, float]], dict[str, bytes] | None]:
        """The top k, and with ``sentences`` the stored sentence vectors of those that have some, read by the
        same statement where the exact path answers (None where they were not read: the caller reads them).
        ``only_rids``: the row ids of the memories a search is restricted to (``rids_of``)."""
        q = vector_literal(vector)
        if only_rids is not None and not only_rids:
            return [], {}
        size = len(only_rids) if only_rids is not None else self.scope_size(conn, key)
        use = strategy
        if use == "auto":
            use = "hnsw" if self._hnsw_pays(conn, size, k) else "exact"
        if use == "hnsw" and self.has_hnsw:
            hits = self._hnsw(conn, key, q, k, include_superseded, only_rids)
            if len(hits) >= k or strategy == "hnsw":
                return hits, None
        return self._exact(conn, key, q, k, include_superseded, only_rids, sentences)

    @staticmethod
    def _vector_filter(key: str, include_superseded: bool, only_rids: list[int] | None) -> tuple[str, list[Any]]:
        where = "scope_key = %s"
        args: list[Any] = [key]
        if not include_superseded:
            where += " AND active"
        if only_rids is not None:
            where += " AND memory_rid = ANY(%s)"
            args.append(only_rids)
        return where, args

    def _exact(
        self, conn: psycopg.Connection, key: str, q: str, k: int, include_superseded: bool,
        only_rids: list[int] | None, sentences: bool,
    ) -> tuple[list[tuple[str, float]], dict[str, bytes] | None]:
        where, args = self._vector_filter(key, include_superseded, only_rids)
        # The nearest rows first, a top-N sort over one pass: "+ 0" hides the ordering operator from the
        # planner, so no HNSW scan can be picked. A memory's best row comes before its other chunks, so the
        # first k distinct memories of the nearest rows are the k nearest memories.
        # The memory ids are looked up per row (a subquery the planner cannot turn into a join): without
        # planner statistics, as right after a bulk load, a join read the scope's every memory into a hash.
        # With ``sentences`` each row also carries its memory's sentence vectors (NULL for most: short texts).
        want = _candidates(k)
        extra = ", (SELECT s.vectors FROM memory_sentences s WHERE s.memory_rid = c.memory_rid)" if sentences else ""
        rows = conn.execute(
            f"SELECT ({_MEMORY_ID} c.memory_rid), c.d{extra} FROM (SELECT memory_rid,"
            f" (embedding <=> %s::vector) + 0 AS d FROM memory_vectors WHERE {where} ORDER BY d LIMIT %s) c"
            " ORDER BY c.d, c.memory_rid",
            [key, q, *args, want],
        ).fetchall()
        best: dict[str, float] = {}
        blobs: dict[str, bytes] = {}
        for row in rows:
            if row[0] is not None and row[0] not in best and len(best) < k:
                best[row[0]] = row[1]
                if sentences and row[2] is not None:
                    blobs[row[0]] = row[2]
        if len(best) < k and len(rows) == want:
            # Chunks of a few memories filled the rows: rank the memories by their nearest chunk instead.
            # min() over the chunks hides the ordering operator too.
            rows = conn.execute(
                f"SELECT ({_MEMORY_ID} v.memory_rid), v.d FROM (SELECT memory_rid, min(embedding <=> %s::vector)"
                f" AS d FROM memory_vectors WHERE {where} GROUP BY memory_rid ORDER BY d LIMIT %s) v"
                " ORDER BY v.d, v.memory_rid",
                [key, q, *args, k],
            ).fetchall()
            best = {mid: d for mid, d in rows if mid is not None}
            return [(mid, _similarity(d)) for mid, d in list(best.items())[:k]], None
        return [(mid, _similarity(d)) for mid, d in best.items()], blobs if sentences else None

    def _hnsw_plan(
        self, key: str, q: str, k: int, include_superseded: bool, only_rids: list[int] | None
    ) -> tuple[sql.Composed, str, list[Any]]:
        """The transaction-local settings (one statement) and the candidate query of the HNSW path."""
        where, args = self._vector_filter(key, include_superseded, only_rids)
        want = _candidates(k)
        settings = {"hnsw.ef_search": str(min(1000, max(self.ef_search, want)))}
        if self.iterative_scan:
            settings["hnsw.iterative_scan"] = "relaxed_order"
            settings["hnsw.max_scan_tuples"] = str(max(20_000, want * 200))
        # The scope filter must not turn this into a walk of the scope's btree plus a sort.
        settings.update({"enable_seqscan": "off", "enable_bitmapscan": "off", "enable_sort": "off"})
        set_all = sql.SQL("SELECT {}").format(
            sql.SQL(", ").join(
                sql.SQL("set_config({}, {}, true)").format(sql.Literal(name), sql.Literal(value))
                for name, value in settings.items()
            )
        )
        query = (
            "WITH c AS MATERIALIZED (SELECT memory_rid, embedding <=> %s::vector AS d FROM memory_vectors"
            f" WHERE {where} ORDER BY embedding <=> %s::vector LIMIT %s)"
            " SELECT m.id, c.d FROM c JOIN memories m ON m.rid = c.memory_rid AND m.scope_key = %s"
        )
        return set_all, query, [q, *args, q, want, key]

    def _hnsw(
        self, conn: psycopg.Connection, key: str, q: str, k: int, include_superseded: bool,
        only_rids: list[int] | None,
    ) -> list[tuple[str, float]]:
        set_all, query, args = self._hnsw_plan(key, q, k, include_superseded, only_rids)
        # One round trip for BEGIN, the settings, the query and COMMIT.
        with conn.pipeline(), conn.transaction():
            conn.execute(set_all)
            cur = conn.execute(query, args)
        rows = cur.fetchall()
        # relaxed_order may return rows slightly out of order: re-rank by the exact distances.
        best: dict[str, float] = {}
        for mid, d in rows:
            if mid not in best or float(d) < best[mid]:
                best[mid] = float(d)
        ranked = sorted(best.items(), key=lambda item: item[1])[:k]
        return [(mid, _similarity(d)) for mid, d in ranked]

    def explain(self, conn: psycopg.Connection, key: str, vector: np.ndarray, k: int) -> str:
        """The query plan of the HNSW path for this scope (operators use it to check the index is taken)."""
        set_all, query, args = self._hnsw_plan(key, vector_literal(vector), k, False, None)
        with conn.transaction():
            conn.execute(set_all)
            return "\n".join(r[0] for r in conn.execute("EXPLAIN " + query, args))
