"""What showing long memories by their relevant part costs ``context()``: one LongMemEval instance's scope
(default path), the first 30 questions of the file asked three times each, with and without excerpts.

    python bench/context_cost.py ../shared/data/longmemeval_s_dev100.jsonl [--instance 0]
"""

from __future__ import annotations

import argparse
import sys
import time
from itertools import islice
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
import memstrata.retrieve.context as context_module  # noqa: E402
from memstrata.evaluation.embed_cache import wrap  # noqa: E402
from memstrata.evaluation.longmemeval_data import iter_instances  # noqa: E402
from memstrata.evaluation.systems import CONTEXT_BUDGET, MemstrataSystem  # noqa: E402
from memstrata.providers.embedders import default_embedder  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("path")
    p.add_argument("--instance", type=int, default=0)
    p.add_argument("--embed-cache", default=None, help="benchmark embedding cache folder (MEMSTRATA_BENCH_CACHE)")
    a = p.parse_args()
    insts = list(islice(iter_instances(a.path, 30), 0, 30))
    system = MemstrataSystem(wrap(default_embedder(), a.embed_cache), infer=True)
    inst = insts[a.instance]
    system.begin(inst.question_id)
    for session in inst.sessions_in_time_order():
        system.add_session(session)
    mem = system._mem
    questions = [i.question for i in insts]
    for q in questions:  # warm: query embeddings cached, scope loaded
        mem.context(q, user_id=inst.question_id, token_budget=CONTEXT_BUDGET, now=inst.question_date)
    real = context_module.excerpt
    for label, cut in (("with excerpts", real), ("without excerpts", lambda *args, **kw: None)):
        context_module.excerpt = cut
        times = []
        for _ in range(3):
            for q in questions:
                start = time.perf_counter()
                mem.context(q, user_id=inst.question_id, token_budget=CONTEXT_BUDGET, now=inst.question_date)
                times.append((time.perf_counter() - start) * 1000)
        times.sort()
        print(f"{label}: context() p50 {times[len(times) // 2]:.1f} ms, p95 {times[int(len(times) * 0.95)]:.1f} ms "
              f"({len(times)} calls)")
    context_module.excerpt = real
    system.close()


if __name__ == "__main__":
    main()
