"""PostgreSQL against SQLite on the same memories: search and keyword-search latency at one scope size.

    python bench/load.py --profile 0 --clients 1 --duration 1 --workdir /tmp/ms-load   # builds the store once
    python bench/pg_search.py /tmp/ms-load/load.db

Every memory of bench/load.py's scope is copied, with its stored vectors, into a fresh embedded PostgreSQL
(fsync on, synchronous_commit off), so both stores hold the same rows. Each search is a distinct query through
`Memory.search` (real MiniLM, balanced preset), then the same query's keyword and vector parts alone;
wall-clock medians, so quote the load average beside them.

``--analyze`` runs ANALYZE on the copy before timing: the planner statistics autovacuum gathers within about
a minute of a bulk load. Without it the searches run on a table the planner knows nothing about yet, as in
the first minute after a load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent / "tests"))
from load import USER, QuerySource  # noqa: E402
from memstrata import Memory  # noqa: E402
from memstrata.backends.postgres import PostgresStore  # noqa: E402
from memstrata.core.text import query_terms  # noqa: E402
from memstrata.providers.embedders import MiniLMEmbedder  # noqa: E402
from memstrata.tiers.base import WriteBatch  # noqa: E402
from pg_support import EmbeddedPostgres  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sqlite_file", type=Path, help="the store bench/load.py filled")
    ap.add_argument("--queries", type=int, default=150)
    ap.add_argument("--analyze", action="store_true", help="ANALYZE the copy before timing")
    args = ap.parse_args()
    if not args.sqlite_file.exists():
        raise SystemExit(f"{args.sqlite_file}: no such store (fill one with bench/load.py --workdir)")
    emb = MiniLMEmbedder(threads=1)
    emb.warm_up()
    src = Memory(f"sqlite:///{args.sqlite_file}", embedder=emb)
    scope = src._scope(USER, None, None, None)
    recs = src.store.list_memories(scope, limit=10**7)
    vecs = src.store.vectors(scope, [r.id for r in recs])
    pg = EmbeddedPostgres(settings={"fsync": "on", "synchronous_commit": "off"}).start()
    try:
        store = PostgresStore(pg.create_database("search_bench"), dim=emb.dim)
        t0 = time.perf_counter()
        for i in range(0, len(recs), 1000):
            chunk = recs[i : i + 1000]
            for r in chunk:
                r.rid = 0
            store.apply(scope, WriteBatch(new_memories=[(r, vecs[r.id]) for r in chunk]))
        copy_s = time.perf_counter() - t0
        if args.analyze:
            store._run(lambda conn: conn.execute("ANALYZE"), "analyze")
        dst = Memory(store, embedder=emb)
        texts = QuerySource(77, 0)
        queries = [texts.next() for _ in range(args.queries + 10)]
        print(f"{len(recs):,} memories in one scope, copied into PostgreSQL in {copy_s:.1f} s"
              f" (batches of 1,000){', analyzed' if args.analyze else ''}; load average {os.getloadavg()[0]:.1f}")
        for name, m in (("sqlite", src), ("postgres", dst)):
            for q in queries[:10]:
                m.search(q, user_id=USER)
            search_ms, keyword_ms, vector_ms = [], [], []
            for q in queries[10:]:
                t0 = time.perf_counter()
                m.search(q, user_id=USER)
                search_ms.append((time.perf_counter() - t0) * 1000)
                terms = query_terms(m.store.codec.query_text(scope, q), 32)
                t0 = time.perf_counter()
                m.store.keyword_search(scope, terms, 100)
                keyword_ms.append((time.perf_counter() - t0) * 1000)
                vector = emb.embed([q])[0]
                t0 = time.perf_counter()
                m.store.vector_search(scope, vector, 100)
                vector_ms.append((time.perf_counter() - t0) * 1000)
            print(f"{name:9} search p50 {statistics.median(search_ms):6.1f} ms   keyword_search(k=100) p50 "
                  f"{statistics.median(keyword_ms):6.1f} ms   vector_search(k=100) p50 "
                  f"{statistics.median(vector_ms):6.1f} ms")
        print(f"load average {os.getloadavg()[0]:.1f}")
        dst.close()
    finally:
        pg.stop()
        pg.remove()
        src.close()


if __name__ == "__main__":
    main()
