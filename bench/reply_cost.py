"""Ingest cost of reply windows: LoCoMo sessions added with and without them, alternating.

    python bench/reply_cost.py /work/shared/data/locomo_dev5.json --conversations 2

Each session of the first ``--conversations`` conversations is added in one ``add`` call (rules mode, the
default, both speakers' turns as named user messages, as ``memstrata bench locomo`` adds them) to two fresh
memories in turn, one as shipped and one with reply windows switched off, so both see the same load.
Reported: wall-clock p50 / p95 per message of ``add`` for each, and the share of turns given a reply window.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from memstrata import Memory  # noqa: E402
from memstrata.evaluation.locomo import load_locomo  # noqa: E402
from memstrata.ingest import pipeline  # noqa: E402
from memstrata.providers.embedders import default_embedder  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("path")
    p.add_argument("--conversations", type=int, default=2)
    a = p.parse_args()
    emb = default_embedder()
    emb.warm_up()
    shipped = pipeline._reply_window
    per_msg: dict[str, list[float]] = {"on": [], "off": []}
    windows = turns = 0
    with tempfile.TemporaryDirectory(prefix="memstrata-reply-") as d:
        mems = {k: Memory(f"sqlite:///{Path(d) / k}.db", embedder=emb) for k in per_msg}
        try:
            for conv in load_locomo(a.path, a.conversations):
                for session in conv.sessions:
                    msgs = [{"role": "user", "content": t.content, "name": t.name}
                            for t in session.turns if t.content.strip()]
                    if not msgs:
                        continue
                    for key in ("on", "off"):
                        pipeline._reply_window = shipped if key == "on" else (lambda *_: [])
                        t0 = time.perf_counter()
                        mems[key].add(msgs, user_id=conv.sample_id, conversation_id=session.session_id,
                                      timestamp=session.date)
                        per_msg[key].append((time.perf_counter() - t0) * 1000 / len(msgs))
                    pipeline._reply_window = shipped
                    turns += len(msgs)
                    windows += sum(
                        bool(shipped(pipeline.Candidate(m["content"], 0.5, kind=pipeline.EVIDENCE_KIND,
                                                        source_indexes=[i]),
                                     [pipeline.Message("user", x["content"], j, x["name"]) for j, x in enumerate(msgs)],
                                     m["name"]))
                        for i, m in enumerate(msgs))
        finally:
            pipeline._reply_window = shipped
            for m in mems.values():
                m.close()
    for key, xs in per_msg.items():
        xs.sort()
        print(f"reply windows {key}: add per message p50 {statistics.median(xs):.1f} ms, "
              f"p95 {xs[int(len(xs) * 0.95)]:.1f} ms over {len(xs)} sessions")
    print(f"turns given a reply window: {windows} of {turns} ({100 * windows / max(turns, 1):.0f}%)")


if __name__ == "__main__":
    sys.exit(main())
