"""The layered read cache on a repeated-query workload: hit rates per layer and kind, search latency and CPU,
with the cache on and off.

    python bench/cache_layers.py --write                         # SQLite, 3 LoCoMo dev5 conversations
    python bench/cache_layers.py --store postgres --write        # embedded PostgreSQL + pgvector
    python bench/cache_layers.py --searches 300 --conversations 1  # quick look

Data: LoCoMo dev5 conversations (/work/shared/data, or --data), each turn stored as it was said (``infer=False``)
in one scope per conversation, with the real MiniLM embedder. Workload: searches drawn from the conversations'
own questions with Zipf-like popularity (the question at rank r is asked with weight 1/r^s), each in its
conversation's scope, sent alternately through two ``Memory`` objects on one store (two servers); with
``--write-every K`` one new message is added to a random scope after every K searches (through the other
memory, so every write must reach the other one's cache). Both modes run the same sequence on a fresh copy of
the same database: "off" is the shipped default without Redis (each process keeps an LRU of query vectors),
"on" adds the shared layers on Redis (``CacheLayers``). CPU time is this process's (both memories; the Redis and
PostgreSQL servers' work is not in it). Every "on" result is compared with the "off" result of the same search.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import redis

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent / "tests"))
from memstrata import Memory  # noqa: E402
from memstrata.config import CacheLayers  # noqa: E402
from memstrata.evaluation.locomo import load_locomo  # noqa: E402
from results_md import provenance, write_section  # noqa: E402

DATA = Path("/work/shared/data/locomo_dev5.json")


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def say(text: str) -> None:
    print(text, flush=True)


def ingest(store: str, emb: Any, conversations: list[Any]) -> list[tuple[str, list[str]]]:
    """Every turn of each conversation into its own scope; returns (user, questions) per conversation."""
    out = []
    with Memory(store, embedder=emb) as m:
        for conv in conversations:
            user = f"locomo-{conv.sample_id}"
            for session in conv.sessions:
                msgs = [{"role": "user", "content": t.content, "name": t.name} for t in session.turns
                        if t.content.strip()]
                for start in range(0, len(msgs), 32):
                    m.add(msgs[start:start + 32], user_id=user, infer=False,
                          timestamp=session.date.isoformat() if session.date else None)
            out.append((user, [q.question for q in conv.questions]))
    return out


def workload(pools: list[tuple[str, list[str]]], n: int, skew: float, write_every: int,
             seed: int) -> list[tuple[str, str, str]]:
    """(kind, user, text): searches of popular questions first, and a write after every ``write_every``."""
    rng = random.Random(seed)
    items = [(user, q) for user, questions in pools for q in questions]
    rng.shuffle(items)  # popularity unrelated to the order in the file
    weights = [1.0 / (r + 1) ** skew for r in range(len(items))]
    ops: list[tuple[str, str, str]] = []
    for i, (user, q) in enumerate(rng.choices(items, weights=weights, k=n)):
        ops.append(("search", user, q))
        if write_every and (i + 1) % write_every == 0:
            target = rng.choice(pools)[0]
            ops.append(("write", target, f"Note {i}: I moved the book club to {rng.choice(DAYS)} at the library."))
    return ops


DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def run_mode(store: str, emb: Any, layers: CacheLayers | None, ops: list[tuple[str, str, str]]
             ) -> dict[str, Any]:
    """Time the workload; with ``layers``, every search is also answered by a memory without a cache at the same
    moment (not timed), and the two answers compared."""
    pair = [Memory(store, embedder=emb, cache_layers=layers) for _ in range(2)]
    plain = Memory(store, embedder=emb) if layers is not None else None
    wall: list[float] = []
    cpu: list[float] = []
    same = same_order = 0
    try:
        turn = 0
        for kind, user, text in ops:
            m = pair[turn % 2]
            if kind == "write":
                pair[(turn + 1) % 2].add(text, user_id=user, infer=False)
                continue
            turn += 1
            c0, w0 = time.process_time(), time.perf_counter()
            found = m.search(text, user_id=user, limit=10)["results"]
            wall.append(time.perf_counter() - w0)
            cpu.append(time.process_time() - c0)
            if plain is not None:
                want = [r["id"] for r in plain.search(text, user_id=user, limit=10)["results"]]
                got = [r["id"] for r in found]
                same += set(got) == set(want)
                same_order += got == want
                if set(got) != set(want):
                    explain(m, plain, text, user, got, want)
        lookups: dict[str, dict[str, dict[str, int]]] = {}
        for m in pair:
            for kind, by_layer in m.cache_layers.snapshot()["layers"].items():
                for layer, outcomes in by_layer.items():
                    slot = lookups.setdefault(kind, {}).setdefault(layer, {})
                    for outcome, count in outcomes.items():
                        slot[outcome] = slot.get(outcome, 0) + count
    finally:
        for m in [*pair, *([plain] if plain is not None else [])]:
            m.close()
    return {
        "searches": len(wall),
        "wall_p50_ms": pct(wall, 50) * 1000, "wall_p95_ms": pct(wall, 95) * 1000,
        "wall_mean_ms": float(np.mean(wall)) * 1000, "cpu_mean_ms": float(np.mean(cpu)) * 1000,
        "lookups": lookups, "same": same, "same_order": same_order,
    }


def explain(cached: Memory, plain: Memory, query: str, user: str, got: list[str], want: list[str]) -> None:
    """Print a search whose answers differed, with the stages of the ids only one side returned, asked again."""
    say(f"differs: {query!r} in {user}: only cached {sorted(set(got) - set(want))}, "
        f"only uncached {sorted(set(want) - set(got))}")
    for name, m in (("cached", cached), ("uncached", plain)):
        again = m.search(query, user_id=user, limit=10, explain=True)["results"]
        say(f"  {name} again: " + json.dumps([(r["id"][:8], round(r["score"], 5), r["stages"]) for r in again]))


def rate(lookups: dict[str, Any], kind: str, layer: str) -> str:
    c = lookups.get(kind, {}).get(layer, {})
    seen = c.get("hit", 0) + c.get("miss", 0)
    return f"{100 * c.get('hit', 0) / seen:.1f}% of {seen:,}" if seen else "—"


@contextmanager
def stores(kind: str, workdir: Path) -> Iterator[tuple[str, Any]]:
    """The base store's URL and a function that gives a fresh copy of it."""
    if kind == "sqlite":
        base = workdir / "base.db"

        def copy(name: str) -> str:
            for suffix in ("", "-wal", "-shm"):  # the base is closed; copy whatever of its WAL is left too
                if Path(f"{base}{suffix}").exists():
                    shutil.copy(f"{base}{suffix}", workdir / f"{name}.db{suffix}")
            return f"sqlite:///{workdir / f'{name}.db'}"

        yield f"sqlite:///{base}", copy
        return
    from memstrata.backends.postgres import migrate
    from pg_support import EmbeddedPostgres

    # Durable as in bench/backends.py: fsync on, synchronous_commit off (SQLite's WAL + synchronous=NORMAL).
    pg = EmbeddedPostgres(settings={"fsync": "on", "full_page_writes": "on", "synchronous_commit": "off"}).start()
    try:
        base = pg.create_database("base")
        migrate(base, dim=384)
        yield base, lambda name: pg.create_database(name, "base")
    finally:
        pg.stop()
        pg.remove()


def measure(kind: str, args: argparse.Namespace, emb: Any, conversations: list[Any]) -> str:
    """One store kind: ingest, run both modes, and the markdown of its results."""
    workdir = Path(tempfile.mkdtemp(prefix="memstrata-cache-bench-"))
    prefix = f"bench-cache-{uuid.uuid4().hex[:8]}:"
    client = redis.Redis.from_url(args.redis)
    load = os.getloadavg()
    modes: dict[str, dict[str, Any]] = {}
    try:
        with stores(kind, workdir) as (base, copy):
            t0 = time.perf_counter()
            pools = ingest(base, emb, conversations)
            say(f"{kind}: ingested {sum(len(c.sessions) for c in conversations)} sessions in "
                f"{time.perf_counter() - t0:.0f} s")
            ops = workload(pools, args.searches, args.skew, args.write_every, args.seed)
            for name, layers in (("off", None), ("on", CacheLayers(url=f"{args.redis}?prefix={prefix}"))):
                modes[name] = run_mode(copy(f"mode_{name}"), emb, layers, ops)
                say(f"{kind} {name}: {json.dumps(modes[name])}")
    finally:
        for key in client.scan_iter(match=f"{prefix}*", count=500):
            client.delete(key)
        client.close()
        shutil.rmtree(workdir, ignore_errors=True)
    after = os.getloadavg()
    on, off = modes["on"], modes["off"]
    writes = sum(k == "write" for k, _, _ in ops)
    distinct = len({(u, q) for k, u, q in ops if k == "search"})
    engine = "embedded PostgreSQL 18 + pgvector" if kind == "postgres" else "SQLite file (WAL)"
    return f"""### {engine}

Load average (1/5/15 min) before: {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}, after: \
{after[0]:.2f} / {after[1]:.2f} / {after[2]:.2f}. {on["searches"]:,} searches ({distinct:,} distinct), {writes} adds.

| | cache off | cache on |
|---|---|---|
| search p50 / p95 (ms, wall) | {off["wall_p50_ms"]:.1f} / {off["wall_p95_ms"]:.1f} | {on["wall_p50_ms"]:.1f} / \
{on["wall_p95_ms"]:.1f} |
| search mean (ms, wall) | {off["wall_mean_ms"]:.1f} | {on["wall_mean_ms"]:.1f} |
| CPU per search (ms, this process) | {off["cpu_mean_ms"]:.1f} | {on["cpu_mean_ms"]:.1f} |
| query vectors: in-process hit rate | {rate(off["lookups"], "query_vector", "process")} | \
{rate(on["lookups"], "query_vector", "process")} |
| query vectors: Redis hit rate (of in-process misses) | — | {rate(on["lookups"], "query_vector", "redis")} |
| scope pieces: in-process hit rate | — | {rate(on["lookups"], "scope", "process")} |
| scope candidate lists: Redis hit rate (of in-process misses) | — | {rate(on["lookups"], "scope", "redis")} |

Same answers: {on["same"]:,} of {on["searches"]:,} searches with the cache on returned the same top-10 set as a memory \
without a cache asked at the same moment ({on["same_order"]:,} in the same order).
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stores", default="sqlite", help="comma-separated: sqlite, postgres")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--conversations", type=int, default=3)
    ap.add_argument("--searches", type=int, default=1500)
    ap.add_argument("--skew", type=float, default=1.0, help="Zipf exponent of query popularity")
    ap.add_argument("--write-every", type=int, default=50, help="one add after every K searches (0: none)")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/11")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--write", action="store_true", help="write the layered-cache section of bench/RESULTS.md")
    args = ap.parse_args()
    kinds = [k.strip() for k in args.stores.split(",") if k.strip()]
    if not kinds or set(kinds) - {"sqlite", "postgres"}:
        ap.error(f"--stores: choose from sqlite, postgres (got {args.stores!r})")

    from backends import quiet_embedder

    emb = quiet_embedder()
    conversations = load_locomo(args.data, args.conversations)
    parts = [measure(kind, args, emb, conversations) for kind in kinds]
    body = f"""## Layered read cache: repeated queries, cache on and off

{provenance()}
A shared machine: wall times are noisy under its load, CPU times less so. Redis 7 on loopback; real MiniLM
embedder. Data: {len(conversations)} LoCoMo dev5 conversations, every turn stored (`infer=False`), one scope each.
Workload: searches of the conversations' own questions with Zipf popularity (s={args.skew}), alternating between
two `Memory` objects on one store, and one add after every {args.write_every} searches through the other memory.
"off": the default without Redis (a query-vector LRU per process); "on": `CacheLayers` on Redis. Both modes run
the same sequence on fresh copies of one database. Method in bench/cache_layers.py.

""" + "\n".join(parts)
    print(body)
    if args.write:
        write_section("layered-cache", body)


if __name__ == "__main__":
    main()
