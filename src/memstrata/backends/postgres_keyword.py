"""The PostgreSQL store's keyword search: BM25 computed in SQL over tsvector and its GIN index, with FTS5's
constants so that both SQL stores rank keyword hits alike, and a way to send it before the query is embedded.

For each term, one GIN scan of the scope's matching rows (every version of a memory, as FTS5 counts df) in a
LATERAL subquery whose ``count(*) OVER ()`` is the term's df, so no hit is sorted by term; tf is ``ts_rank_cd``
of the one term with unit weights (its number of occurrences), the length is ``fts_len``, and N and the average
length come from the scope's ``scope_counts`` row. A word given twice counts twice. Each memory's terms are
summed in the order of the words (``ORDER BY t.w``), so equal memories get bit-equal scores and ties fall to
the row id; only the top k are joined back for their memory ids.

Never a prepared statement: a generic plan cannot see how large the scope is and may read its every row
through its btree, testing each tsvector (2-3x slower on a freshly loaded table).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import psycopg

T = TypeVar("T")
BM25_K1, BM25_B = 1.2, 0.75  # FTS5's defaults

_STATEMENT = f"""
    WITH t AS MATERIALIZED (
        SELECT w, q, count(*) OVER (PARTITION BY w)::float8 AS mult
        FROM unnest(%(words)s::text[]) AS w, plainto_tsquery(%(cfg)s::regconfig, w) AS q
        WHERE numnode(q) > 0
    ), sc AS MATERIALIZED (
        SELECT greatest(docs, 1)::float8 AS n, greatest(doc_len::float8 / greatest(docs, 1), 1.0) AS avgdl
        FROM scope_counts WHERE scope_key = %(scope)s
    ), top AS (
        SELECT h.rid, sum(ln(1.0 + (sc.n - h.df + 0.5) / (h.df + 0.5)) * h.tf * {BM25_K1 + 1:.3f}::float8
                          / (h.tf + {BM25_K1:.3f}::float8 * ({1 - BM25_B:.3f}::float8
                             + {BM25_B:.3f}::float8 * h.len / sc.avgdl)) ORDER BY t.w) AS s
        FROM t CROSS JOIN LATERAL (
            SELECT m.rid, m.fts_len::float8 AS len, m.valid_to IS NULL AND m.superseded_by IS NULL AS cur,
                   ts_rank_cd('{{{{1,1,1,1}}}}', m.fts, t.q)::float8 AS tf,
                   count(*) OVER () * t.mult AS df{{only_hit}}
            FROM memories m WHERE m.scope_key = %(scope)s AND m.fts @@ t.q
        ) h CROSS JOIN sc
        WHERE {{keep}}
        GROUP BY h.rid ORDER BY s DESC, h.rid LIMIT %(k)s
    )
    SELECT m.id, top.s FROM top JOIN memories m ON m.rid = top.rid AND m.scope_key = %(scope)s
    ORDER BY top.s DESC, top.rid"""


def keyword_statement(
    words: Sequence[str], config: str, scope_key: str, k: int, include_superseded: bool, only: Sequence[str] | None
) -> tuple[str, dict[str, Any]]:
    """The statement and its arguments for the top ``k`` of a scope by BM25 (rows of memory id and score)."""
    keep = ["true"] if include_superseded else ["h.cur"]
    only_hit = ""
    if only is not None:
        only_hit = ", m.id = ANY(%(only)s) AS ok"
        keep.append("h.ok")
    args: dict[str, Any] = {"words": list(words), "cfg": config, "scope": scope_key, "k": k}
    if only is not None:
        args["only"] = list(only)
    return _STATEMENT.format(only_hit=only_hit, keep=" AND ".join(keep)), args


def keywords_meanwhile(
    conn: psycopg.Connection, statement: str, args: dict[str, Any], meanwhile: Callable[[], T]
) -> tuple[list[tuple[str, float]], T]:
    """The keyword statement's hits and ``meanwhile()``'s result: the statement is sent first (pipeline mode)
    and the server runs it while this process runs ``meanwhile`` (a search embeds its query and ranks its kNN,
    whose own statements on ``conn`` queue behind it)."""
    with conn.pipeline():
        cur = conn.cursor()
        # Sent as it is queued; no sync here, which would wait for the result.
        cur.execute(statement, args, prepare=False)
        made = meanwhile()
        rows = cur.fetchall()
    return [(r[0], float(r[1])) for r in rows], made
