"""Queued ingestion end to end: ``add(..., wait=False)`` then ``memstrata worker`` at several batch sizes.

    python bench/scale_workers.py --write
    python bench/scale_workers.py --messages 100 --batches 1,32      # quicker

For each batch size a fresh database on one embedded PostgreSQL (fsync on, synchronous_commit off) gets
``--messages`` real conversation turns (LongMemEval questions 50 to 99, their haystack sessions in order),
each one ``Memory.add(turn, wait=False)`` of one message in its user's conversation (``--users`` users,
round robin by session). Then one ``memstrata worker --batch B --once`` process drains the queue with the
real MiniLM embedder and the default extraction; its wall time and CPU time (worker process alone) give
messages/s. A worker started on an empty queue measures the start-up (interpreter, model load), reported
apart and subtracted for the steady rate.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent / "tests"))
from backends import say  # noqa: E402
from memstrata import Memory  # noqa: E402
from memstrata.providers.embedders import HashEmbedder  # noqa: E402
from pg_support import EmbeddedPostgres  # noqa: E402
from results_md import provenance, write_section  # noqa: E402
from scale_1m import find_data  # noqa: E402

PG_SETTINGS = {"fsync": "on", "full_page_writes": "on", "synchronous_commit": "off", "shared_buffers": "512MB"}


def turns(limit: int, users: int) -> list[tuple[str, str, dict[str, str]]]:
    """(user, conversation, message) in order: each session a conversation of one of ``users`` users."""
    out: list[tuple[str, str, dict[str, str]]] = []
    sessions = 0
    for line in [x for x in find_data().read_text().split("\n") if x.strip()][50:]:  # not splitlines: U+2028 in text
        for session in json.loads(line)["haystack_sessions"]:
            user = f"user{sessions % users}"
            for turn in session:
                out.append((user, f"s{sessions}", {"role": turn["role"], "content": turn["content"]}))
                if len(out) >= limit:
                    return out
            sessions += 1
    return out


def run_worker(url: str, batch: int) -> tuple[float, float, str]:
    """Wall and CPU seconds of one ``memstrata worker --once`` process, and its last line."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", "from memstrata.cli import main; main()", "--store", url, "worker",
                           "--batch", str(batch), "--once"], env=env, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu, (done.stdout.strip().splitlines() or [""])[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=128)
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--batches", default="1,8,32,128")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    work = turns(args.messages, args.users)
    chars = sum(len(m["content"]) for _, _, m in work)
    pg = EmbeddedPostgres(settings=PG_SETTINGS).start()
    rows = []
    try:
        empty = pg.create_database("empty")
        Memory(empty, embedder=HashEmbedder(384)).close()  # migrated, nothing queued
        start_wall, start_cpu, _ = run_worker(empty, 32)
        say(f"worker start-up on an empty queue: {start_wall:.1f} s wall, {start_cpu:.1f} s CPU")
        for batch in (int(b) for b in args.batches.split(",")):
            url = pg.create_database(f"b{batch}")
            # Enqueueing embeds nothing: the hash embedder only binds the store's vector dimension (MiniLM's 384).
            with Memory(url, embedder=HashEmbedder(384)) as m:
                t0, c0 = time.perf_counter(), time.process_time()
                for user, conv, msg in work:
                    m.add([msg], user_id=user, conversation_id=conv, wait=False)
                enqueue_s, enqueue_cpu = time.perf_counter() - t0, time.process_time() - c0
            wall, cpu, last = run_worker(url, batch)
            with Memory(url, embedder=HashEmbedder(384)) as m:
                pending = sum(len(m.ingestions(user_id=f"user{u}", status="pending")["results"])
                              for u in range(args.users))
            with psycopg.connect(url) as conn:
                stored = conn.execute("SELECT count(*) FROM memories").fetchone()[0]  # type: ignore[index]
            if pending:
                raise SystemExit(f"batch {batch}: {pending} ingestions still pending after the worker")
            steady = max(1e-9, wall - start_wall)
            say(f"batch {batch}: {wall:.1f} s wall, {cpu:.1f} s CPU, {stored} memories; {last}")
            enq = f"{len(work) / enqueue_s:,.1f} ({enqueue_cpu / len(work) * 1000:.0f} ms)"
            rows.append((batch, enq, wall, cpu, len(work) / wall, len(work) / steady,
                         len(work) / max(1e-9, cpu - start_cpu), stored))
    finally:
        pg.remove()
    load = os.getloadavg()
    body = (
        "## Scale: queued ingestion, worker throughput against batch size\n\n" + provenance()
        + f"Load average at the end: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on 2 cores (a shared machine:"
        " the wall-clock rates move with the load; the CPU rates much less).\n\n"
        f"{len(work):,} real turns ({chars / len(work):,.0f} characters on average) of LongMemEval conversations"
        f" (questions 50-99), each enqueued as `add([turn], wait=False)` for {args.users} users, then drained by"
        " one `memstrata worker --batch B --once` process (real MiniLM, default extraction) on embedded"
        " PostgreSQL 18 + pgvector (fsync on, synchronous_commit off). A worker started on an empty queue (interpreter"
        f" and store, no model load) took {start_wall:.1f} s wall, {start_cpu:.1f} s CPU; 'steady' subtracts it.\n\n"
        "| batch | enqueue msg/s (client CPU per add) | worker wall s | worker CPU s | msg/s end to end |"
        " msg/s steady (wall) | msg/s per worker CPU second | memories stored |\n|---|---|---|---|---|---|---|---|\n"
        + "\n".join(f"| {b} | {e} | {w:.1f} | {c:.1f} | {r:.1f} | {s:.1f} | {pc:.1f} | {n:,} |"
                    for b, e, w, c, r, s, pc, n in rows) + "\n\n"
        + f"CPU per message: {', '.join(f'batch {r[0]}: {r[3] / len(work) * 1000:.0f} ms' for r in rows)}. Most of"
        " it is embedding the turns' windows (bench/bulk_bucketing.py has the embedder's own rate), so larger"
        " claims save round trips and embedder calls but cannot pass the embedder's rate; one worker per core at"
        " the CPU rate is the capacity estimate.\n"
    )
    print(body)
    if args.write:
        write_section("scale-workers", body)


if __name__ == "__main__":
    main()
