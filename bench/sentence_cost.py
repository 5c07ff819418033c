"""Ingest cost and storage of sentence vectors: one-message adds of real user turns, with and without them.

    python bench/sentence_cost.py /work/shared/data/longmemeval_s_dev100.jsonl --skip 50 --messages 120

User turns are taken in file order from the instances after the first ``--skip`` and added one message per
``add`` call (rules mode, the default, and ``infer=False``), alternating between a memory with sentence
vectors on and one with them off, so both see the same load. Reported per group of messages (ordinary:
under 40 words, which get no sentence vectors; long: 40 words or more): wall-clock p50 / p95 per add and
CPU time of this process per add (p50 / p95 / mean), and the bytes the sentence vectors take in the database.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from memstrata import Memory  # noqa: E402
from memstrata.config import IngestConfig  # noqa: E402
from memstrata.ingest.asides import LONG_MESSAGE_WORDS  # noqa: E402
from memstrata.providers.embedders import default_embedder  # noqa: E402


def user_turns(path: str, skip: int, want: int) -> list[str]:
    """Up to ``want`` user turns, half ordinary and half long, from the instances after the first ``skip``."""
    short: list[str] = []
    long: list[str] = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh):
            if n < skip:
                continue
            for session in json.loads(line)["haystack_sessions"]:
                for turn in session:
                    text = turn["content"].strip()
                    if turn["role"] != "user" or not text or len(text) > 4000:
                        continue
                    bucket = long if len(text.split()) >= LONG_MESSAGE_WORDS else short
                    if len(bucket) < want // 2:
                        bucket.append(text)
            if len(short) >= want // 2 and len(long) >= want // 2:
                break
    return short + long


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("path")
    ap.add_argument("--skip", type=int, default=50, help="instances to leave out at the start of the file")
    ap.add_argument("--messages", type=int, default=120)
    args = ap.parse_args()
    emb = default_embedder()
    emb.warm_up()
    texts = user_turns(args.path, args.skip, args.messages)
    workdir = Path(tempfile.mkdtemp(prefix="sentence-cost-"))
    print(f"{len(texts)} messages; load average {os.getloadavg()}")
    for infer in (True, False):
        mems = {on: Memory(f"sqlite:///{workdir}/{infer}-{on}.db", embedder=emb,
                           ingest=IngestConfig(sentence_vectors=on)) for on in (True, False)}
        for m in mems.values():  # the first add loads the extractor's models: not part of any timing
            m.add([{"role": "user", "content": "I live in Lisbon with my sister Anna."}], user_id="warm-up",
                  infer=infer)
        timings: dict[tuple[bool, str], list[tuple[float, float]]] = {}
        for i, text in enumerate(texts):
            group = "long" if len(text.split()) >= LONG_MESSAGE_WORDS else "ordinary"
            order = (True, False) if i % 2 == 0 else (False, True)
            for on in order:
                wall, cpu = time.perf_counter(), time.process_time()
                mems[on].add([{"role": "user", "content": text}], user_id="u", infer=infer)
                timings.setdefault((on, group), []).append(
                    ((time.perf_counter() - wall) * 1000.0, (time.process_time() - cpu) * 1000.0))
        for (on, group), rows in sorted(timings.items()):
            walls = [w for w, _ in rows]
            cpus = [c for _, c in rows]
            print(f"infer={infer} sentence_vectors={on} {group:8s} n={len(rows):3d} wall p50 {pct(walls, .5):6.1f}"
                  f" p95 {pct(walls, .95):6.1f} ms; CPU p50 {pct(cpus, .5):6.1f} p95 {pct(cpus, .95):6.1f}"
                  f" mean {statistics.mean(cpus):6.1f} ms")
        store = mems[True].store
        with store.db.read() as conn:  # type: ignore[attr-defined]
            n, size, sentences = conn.execute("SELECT count(*), coalesce(sum(length(vectors)), 0),"
                                              " coalesce(sum(n), 0) FROM memory_sentences").fetchone()
        print(f"infer={infer} stored sentence vectors: {sentences} sentences of {n} messages, {size:,} bytes"
              f" ({size / max(1, n):,.0f} bytes per long message)")
        for m in mems.values():
            m.close()
    print(f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
