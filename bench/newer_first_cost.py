"""CPU cost of the newer-answer-first stage of search, measured A/B in one process.

    python bench/newer_first_cost.py [--rounds 5]

Adds the development update sets (bench/data/updates_dev.jsonl and updates_heldout.jsonl, every conversation to
its own user in one SQLite store, real MiniLM), then runs every labelled question as ``search(limit=10)`` with
the balanced preset and with ``newer_first=False``, alternating by round, and reports the CPU time per search of
each (``time.process_time``, query vectors cached so the embedder is not timed).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
from memstrata import Memory  # noqa: E402
from memstrata.providers.embedders import default_embedder  # noqa: E402
from memstrata.retrieve.presets import get_preset  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args()
    convs = [json.loads(line) for split in ("dev", "heldout")
             for line in (ROOT / "data" / f"updates_{split}.jsonl").read_text().splitlines() if line.strip()]
    with tempfile.TemporaryDirectory() as d, Memory(f"sqlite:///{d}/m.db", embedder=default_embedder()) as m:
        questions = []
        for c in convs:
            for n, s in enumerate(c["sessions"]):
                m.add(s["turns"], user_id=c["id"], conversation_id=f"{c['id']}-{n}", timestamp=s["date"])
            questions += [(c["id"], u["question"], c["sessions"][-1]["date"]) for u in c["updates"]]
        on, off = get_preset("balanced"), get_preset("balanced", newer_first=False)
        for user, q, now in questions:  # warm the query-vector cache and the scopes
            m.search(q, user_id=user, limit=10, now=now)
        cost: dict[str, list[float]] = {"on": [], "off": []}
        for r in range(a.rounds):
            for name, preset in (("on", on), ("off", off)) if r % 2 == 0 else (("off", off), ("on", on)):
                m.preset = preset
                t0 = time.process_time()
                for user, q, now in questions:
                    m.search(q, user_id=user, limit=10, now=now)
                cost[name].append((time.process_time() - t0) * 1000 / len(questions))
        for name, xs in cost.items():
            print(f"newer_first {name}: CPU ms per search, median of {a.rounds} rounds over {len(questions)} "
                  f"questions: {statistics.median(xs):.2f} (rounds: {', '.join(f'{x:.2f}' for x in xs)})")


if __name__ == "__main__":
    main()
