"""Latency, throughput and memory of the embedded default (SQLite + in-process exact kNN + MiniLM).

    python bench/perf.py --write                      # 1k/10k/100k in one scope, 1M over 1,000 users
    python bench/perf.py --sizes 1000 --multi 0       # quick look

Search latency includes embedding the query (every query is distinct, so no cache helps). Large scopes
are filled through the store's batch write with vectors near real MiniLM embeddings of generated text
(embedding 1.1M texts would take an hour here); the texts go through the real full-text index.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from memstrata import IngestConfig, Memory  # noqa: E402
from memstrata.models import HistoryEvent, MemoryRecord, Scope  # noqa: E402
from memstrata.providers.embedders import default_embedder  # noqa: E402
from memstrata.tiers.base import WriteBatch  # noqa: E402
from results_md import provenance, write_section  # noqa: E402

SUBJECTS = ["my sister", "my manager", "our team", "the landlord", "my dentist", "John", "Priya", "the kids",
            "my partner", "the client", "our neighbour", "my coach", "the vet", "grandma", "the band"]
VERBS = ["moved the meeting to", "booked a table for", "asked me about", "reminded me of", "cancelled",
         "recommended", "is worried about", "loved", "wants to talk about", "forgot"]
OBJECTS = ["Friday afternoon", "the Lisbon trip", "the quarterly budget", "a vegan restaurant", "the piano lessons",
           "the car insurance", "the birthday party", "the Alpha project", "a new laptop", "the marathon training",
           "the tax return", "the garden fence", "the hiking weekend", "the dentist appointment", "the wedding gift"]


def sentence(rng: random.Random) -> str:
    return f"{rng.choice(SUBJECTS).capitalize()} {rng.choice(VERBS)} {rng.choice(OBJECTS)}."


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bulk_fill(m: Memory, scope: Scope, n: int, base_texts: list[str], base_vecs: np.ndarray, rng: np.random.Generator,
              batch: int = 5000) -> None:
    """Insert n memories through the store contract, with vectors close to real embeddings."""
    now = time.time()
    for start in range(0, n, batch):
        wb = WriteBatch()
        count = min(batch, n - start)
        idx = rng.integers(0, len(base_texts), count)
        noise = rng.normal(0, 0.04, (count, base_vecs.shape[1])).astype(np.float32)
        vecs = base_vecs[idx] + noise
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        for k in range(count):
            text = f"{base_texts[idx[k]]} (note {start + k})"
            rec = MemoryRecord(id=str(uuid.uuid4()), scope=scope, text=text, created_at=now - (n - start - k),
                               updated_at=now, valid_from=now - (n - start - k), content_hash=uuid.uuid4().hex)
            wb.new_memories.append((rec, vecs[k]))
            wb.history.append(HistoryEvent(str(uuid.uuid4()), rec.id, "ADD", None, text, "bench", "bulk", now))
        m.store.apply(scope, wb)


def time_searches(m: Memory, user: str, queries: list[str], **kw: object) -> list[float]:
    out = []
    for i, q in enumerate(queries):
        t0 = time.perf_counter()
        m.search(f"{q} #{i}", user_id=user, limit=10, **kw)  # distinct text: the query cache cannot help
        out.append((time.perf_counter() - t0) * 1000)
    return out


def cold_start(url: str) -> float:
    code = (f"import time; t=time.perf_counter(); from memstrata import Memory; m=Memory({url!r}); "
            "m.search('where does my sister live?', user_id='cold'); print(time.perf_counter()-t)")
    best = []
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        best.append(time.perf_counter() - t0)
    return min(best)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--multi", type=int, default=1_000_000, help="memories spread over --users users (0: skip)")
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--template-updates", action="store_true",
                    help="add with IngestConfig(template_updates=True) (updates found by attribute template)")
    args = ap.parse_args()

    load_start = os.getloadavg()[0]
    rng = random.Random(7)
    nprng = np.random.default_rng(7)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="memstrata-perf-"))
    url = f"sqlite:///{work / 'perf.db'}"
    emb = default_embedder()
    emb.warm_up()
    rows: list[tuple[str, str, str]] = []

    texts = [sentence(rng) for _ in range(2000)]
    base_vecs = emb.embed(texts)
    # The raw rate is taken on the very texts the bulk add below embeds (each numbered, so none is a
    # duplicate): the share of it that ingest keeps is then the cost of everything around the embedder.
    msgs = [{"role": "user", "content": f"{t} ({i})"} for i, t in enumerate(texts)]
    t0 = time.perf_counter()
    emb.embed([x["content"] for x in msgs])
    raw_rate = len(msgs) / (time.perf_counter() - t0)
    rows.append(("raw embedder throughput (batched, the bulk add's messages)", f"{raw_rate:,.0f} msg/s", ""))

    m = Memory(url, embedder=emb, ingest=IngestConfig(template_updates=True) if args.template_updates else None)
    t0 = time.perf_counter()
    for i in range(0, len(msgs), 50):
        m.add(msgs[i : i + 50], user_id="bulk", infer=False)
    bulk_rate = len(msgs) / (time.perf_counter() - t0)
    rows.append(("bulk ingest, add() of 50 messages, infer=False", f"{bulk_rate:,.0f} msg/s "
                 f"({bulk_rate / raw_rate:.0%} of raw)", "≥ 70% of raw"))

    lat = []
    for i in range(300):
        t0 = time.perf_counter()
        m.add(f"{sentence(rng)} [{i}]", user_id="single", infer=False)
        lat.append((time.perf_counter() - t0) * 1000)
    rows.append(("add one message, infer=False, p50 / p95", f"{pct(lat, 50):.1f} / {pct(lat, 95):.1f} ms",
                 "p95 ≤ 25 ms"))
    try:
        lat = []
        for i in range(200):
            t0 = time.perf_counter()
            m.add(f"I just realised {sentence(rng).lower()} Remember that for next week. [{i}]", user_id="infer")
            lat.append((time.perf_counter() - t0) * 1000)
        rows.append(("add one message, infer=True (rules), p50 / p95",
                     f"{pct(lat[5:], 50):.1f} / {pct(lat[5:], 95):.1f} ms", "p95 ≤ 40 ms"))
    except ImportError as exc:
        rows.append(("add one message, infer=True", f"not measured: {exc}", ""))

    queries = [f"what did {rng.choice(SUBJECTS)} say about {rng.choice(OBJECTS)}?" for _ in range(args.queries)]
    for size in [int(s) for s in args.sizes.split(",") if s]:
        user = f"size-{size}"
        t0 = time.perf_counter()
        bulk_fill(m, Scope.of(user_id=user), size, texts, base_vecs, nprng)
        fill_s = time.perf_counter() - t0
        time_searches(m, user, queries[:5])  # load the scope's matrix once
        lat = time_searches(m, user, queries)
        target = "p95 ≤ 15 ms" if size == 100_000 else ""
        rows.append((f"search, {size:,} memories in one scope, p50 / p95", f"{pct(lat, 50):.1f} / "
                     f"{pct(lat, 95):.1f} ms (fill {fill_s:.0f} s)", target))
        lat_fast = time_searches(m, user, queries, preset="fast")
        rows.append((f"search preset=fast, {size:,} in one scope, p50 / p95",
                     f"{pct(lat_fast, 50):.1f} / {pct(lat_fast, 95):.1f} ms", ""))

    if args.multi:
        per = args.multi // args.users
        t0 = time.perf_counter()
        for u in range(args.users):
            bulk_fill(m, Scope.of(user_id=f"tenant-{u}"), per, texts, base_vecs, nprng)
        fill_s = time.perf_counter() - t0
        users = [f"tenant-{nprng.integers(0, args.users)}" for _ in range(len(queries))]
        cold = []
        for i, (q, u) in enumerate(zip(queries, users, strict=True)):
            t1 = time.perf_counter()
            m.search(f"{q} ~{i}", user_id=u, limit=10)
            cold.append((time.perf_counter() - t1) * 1000)
        warm = []
        for i, (q, u) in enumerate(zip(queries, users, strict=True)):
            t1 = time.perf_counter()
            m.search(f"{q} ^{i}", user_id=u, limit=10)
            warm.append((time.perf_counter() - t1) * 1000)
        rows.append((f"search, {args.multi:,} memories over {args.users:,} users, first touch of a user, p50 / p95",
                     f"{pct(cold, 50):.1f} / {pct(cold, 95):.1f} ms (fill {fill_s:.0f} s)", ""))
        rows.append((f"search, {args.multi:,} memories over {args.users:,} users, warm, p50 / p95",
                     f"{pct(warm, 50):.1f} / {pct(warm, 95):.1f} ms", "p95 ≤ 10 ms"))

    rows.append(("peak RSS of this benchmark process", f"{rss_mb():,.0f} MB", ""))
    db = work / "perf.db"
    rows.append(("database file", f"{db.stat().st_size / 1e6:,.0f} MB", ""))
    m.close()
    rows.append(("cold start: new process, import, open, first search (best of 3)", f"{cold_start(url):.2f} s",
                 "≤ 1.5 s"))

    table = "| measure | result | target |\n|---|---|---|\n" + "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows)
    load = (f"Load average (1 min) {load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end, "
            f"on {os.cpu_count()} cores.")
    body = "## Embedded default: latency, throughput, memory\n\n" + provenance() + "\n" + load + "\n\n" + table + "\n"
    print(body)
    if args.write:
        write_section("perf", body)
    if not args.workdir:
        for f in work.glob("perf.db*"):
            os.remove(f)


if __name__ == "__main__":
    main()
