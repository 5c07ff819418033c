"""Search throughput against the number of ``memstrata serve`` processes behind haproxy.

    python bench/scale_servers.py --write
    python bench/scale_servers.py --servers 1,2 --seconds 10     # quicker

One embedded PostgreSQL 18 + pgvector and one redis-server of our own; 1, 2 then 3 ``memstrata serve``
processes (real MiniLM embedder, ``--cache`` on the Redis, an API key, loopback only) behind Debian's haproxy,
round robin, as tests/test_multi_server.py runs them. The store holds ``--users`` users with ``--per-user``
memories each, bulk-loaded (COPY, as in bench/scale_1m.py) with real MiniLM vectors of LongMemEval
sentences. A load client in this process keeps ``--clients`` requests in flight for ``--seconds`` seconds:
``POST /v1/memories/search`` with a distinct LongMemEval question (numbered, so the servers embed every query)
for a random user. Reported: requests/s, latency p50 / p99 at the client, and the servers' CPU seconds
(every server process and its children, from /proc) per request.

This machine has 2 cores, shared with other work: more server processes cannot use more than those 2
cores, and the load client runs on them too.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import psutil

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent / "tests"))
from backends import real_sentences, say  # noqa: E402
from memstrata import Memory  # noqa: E402
from memstrata.backends.postgres import PostgresStore  # noqa: E402
from memstrata.privacy.access import create_key  # noqa: E402
from memstrata.providers.embedders import HashEmbedder, default_embedder  # noqa: E402
from multi_server_support import PEPPER, Cluster  # noqa: E402
from perf import pct  # noqa: E402
from pg_support import EmbeddedPostgres  # noqa: E402
from results_md import provenance, write_section  # noqa: E402
from scale_1m import find_data, load_scopes, rows_for  # noqa: E402
from test_backends_redis import RedisServer  # noqa: E402

PG_SETTINGS = {"fsync": "on", "synchronous_commit": "off", "shared_buffers": "512MB", "max_connections": "200"}


def server_cpu(cluster: Cluster) -> float:
    total = 0.0
    for server in cluster.servers:
        assert server.proc is not None
        proc = psutil.Process(server.proc.pid)
        for p in [proc, *proc.children(recursive=True)]:
            t = p.cpu_times()
            total += t.user + t.system
    return total


def pg_cpu(pg: EmbeddedPostgres) -> float:
    """CPU seconds of the PostgreSQL server and its backends (those alive now; connections are pooled)."""
    proc = psutil.Process(int((pg.data / "postmaster.pid").read_text().split()[0]))
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
    return total


def load(url: str, key: str, users: list[str], questions: list[str], clients: int, seconds: float, tag: str,
         ) -> tuple[list[float], int, float]:
    """Latencies (ms) of the searches answered 200, the count of other answers, and the elapsed seconds."""
    lat: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.perf_counter() + seconds
    counter = iter(range(10**9))

    def client(seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {key}"}) as http:
            while time.perf_counter() < stop:
                n = next(counter)
                body = {"query": f"{questions[n % len(questions)]} ({tag}{n})", "user_id": rng.choice(users),
                        "limit": 10}
                t0 = time.perf_counter()
                r = http.post("/v1/memories/search", json=body)
                ms = (time.perf_counter() - t0) * 1000
                with lock:
                    if r.status_code == 200:
                        lat.append(ms)
                    else:
                        errors[0] += 1

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return lat, errors[0], time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--servers", default="1,2,3")
    ap.add_argument("--clients", type=int, default=6, help="requests in flight")
    ap.add_argument("--seconds", type=float, default=40.0)
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--per-user", type=int, default=1000)
    ap.add_argument("--pool", type=int, default=1000)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    emb = default_embedder()
    data = find_data()
    pool = real_sentences(data, args.pool)
    pool_vecs = np.vstack([emb.embed(pool[i : i + 256]) for i in range(0, len(pool), 256)])
    questions = [json.loads(line)["question"] for line in data.open()]
    users = [f"u{i:06d}" for i in range(args.users)]
    rng = np.random.default_rng(3)
    pg = EmbeddedPostgres(settings=PG_SETTINGS).start()
    redis_server = RedisServer().start()
    rows = []
    try:
        store = pg.create_database("servers")
        PostgresStore(store, dim=emb.dim).close()
        for g in range(0, len(users), 50):
            texts, vecs = rows_for(pool, pool_vecs, len(users[g : g + 50]) * args.per_user, g * args.per_user, rng)
            load_scopes(store, users[g : g + 50], texts, vecs)
        say(f"{len(users) * args.per_user:,} memories loaded")
        with Memory(store, embedder=HashEmbedder(emb.dim)) as admin:
            key, _ = create_key(admin, None, "read", None, pepper=PEPPER)
        for count in (int(c) for c in args.servers.split(",")):
            cluster = Cluster(store, redis_server.url, [], count=count)
            cluster.start()
            try:
                load(cluster.url, key, users, questions, args.clients, 5.0, f"w{count}-")  # model and caches warm
                cpu0, db0, wall0 = server_cpu(cluster), pg_cpu(pg), time.perf_counter()
                lat, errors, elapsed = load(cluster.url, key, users, questions, args.clients, args.seconds,
                                            f"m{count}-")
                cpu, db = server_cpu(cluster) - cpu0, pg_cpu(pg) - db0
                wall = time.perf_counter() - wall0
            finally:
                cluster.stop()
            n = len(lat)
            say(f"{count} server(s): {n / elapsed:.1f} req/s, p50 {pct(lat, 50):.0f} ms, p99 {pct(lat, 99):.0f} ms,"
                f" {cpu / max(1, n) * 1000:.1f} ms server CPU per request, {errors} errors")
            rows.append((count, n / elapsed, pct(lat, 50), pct(lat, 99), cpu / max(1, n) * 1000,
                         db / max(1, n) * 1000, cpu / wall, errors, n))
    finally:
        redis_server.stop()
        pg.remove()
    la = os.getloadavg()
    body = (
        "## Scale: search throughput against the number of server processes\n\n" + provenance()
        + f"Load average at the end: {la[0]:.1f} / {la[1]:.1f} / {la[2]:.1f} on 2 cores (a shared machine).\n\n"
        f"1 to {max(r[0] for r in rows)} `memstrata serve` processes (real MiniLM, `--cache` on one Redis, API"
        " keys on) on one"
        f" embedded PostgreSQL 18 + pgvector, behind haproxy round robin. {args.users} users x {args.per_user:,}"
        " memories (COPY, real MiniLM vectors of LongMemEval sentences plus small noise). The client keeps"
        f" {args.clients} searches in flight for {args.seconds:.0f} s after a 5 s warm-up; every query text is"
        " distinct, so each request embeds its query. Server CPU is every server process's user + system time"
        " over the run, from /proc; PostgreSQL's is its server"
        " and backend processes' (Redis and haproxy are not counted).\n\n"
        "**This machine has 2 cores, shared with other work.** More server processes cannot use more than those"
        " 2 cores, and the load client, PostgreSQL, Redis and haproxy run on the same cores; so this shows the"
        " overhead of more processes at a fixed CPU budget, not the scaling a machine with a core per server"
        " would show. The CPU per request is the number to carry to bigger machines: searches/s per core is"
        " about 1000 / (server + PostgreSQL CPU ms).\n\n"
        "| servers | req/s | p50 ms | p99 ms | server CPU ms per request | PostgreSQL CPU ms per request |"
        " server cores busy | errors | searches |\n|---|---|---|---|---|---|---|---|---|\n"
        + "\n".join(f"| {c} | {r:.1f} | {p50:.0f} | {p99:.0f} | {cpu:.1f} | {db:.1f} | {busy:.2f} | {e} | {n:,} |"
                    for c, r, p50, p99, cpu, db, busy, e, n in rows) + "\n\n"
        + f"Searches per second per core of server + PostgreSQL CPU: about {1000 / (rows[0][4] + rows[0][5]):.0f}"
        " with one server. Throughput follows the share of the 2 cores the servers got (the 'busy' column), not"
        " their number.\n"
    )
    print(body)
    if args.write:
        write_section("scale-servers", body)


if __name__ == "__main__":
    main()
