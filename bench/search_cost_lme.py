"""Search latency on LongMemEval-sized scopes: ``python bench/search_cost_lme.py --dir DIR [--instances 0,3,7]``.

Each chosen instance of LongMemEval dev100 is added once with the default ``add`` (rules, inference on, user
and assistant turns, sessions in time order) into its own SQLite file under ``DIR`` (kept, so that a second
run, say of other code with ``PYTHONPATH``, searches the very same stores). Then every one of the 100
questions is asked of every scope, each made distinct so that no vector or candidate cache answers it, with
``limit`` 50 as the benchmark harness asks. Printed: wall p50 / p95 and CPU per search of this process, the
1-minute load average before and after.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
from memstrata import Memory  # noqa: E402
from memstrata.evaluation.longmemeval_data import load_instances  # noqa: E402
from memstrata.evaluation.systems import MemstrataSystem  # noqa: E402
from memstrata.providers.embedders import default_embedder  # noqa: E402
from perf import pct  # noqa: E402
from scale_1m import find_data  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", required=True, help="where the stores are kept (made on the first run)")
    ap.add_argument("--instances", default="0,3,7", help="dev100 instances, by position")
    ap.add_argument("--rounds", type=int, default=1, help="times each question is asked of each scope")
    args = ap.parse_args()

    insts = load_instances(find_data())
    emb = default_embedder()
    emb.warm_up()
    work = Path(args.dir)
    work.mkdir(parents=True, exist_ok=True)
    chosen = [insts[int(i)] for i in args.instances.split(",")]
    for inst in chosen:
        db = work / f"{inst.question_id}.db"
        if db.exists():
            continue
        print(f"adding instance {inst.question_id} ({len(inst.sessions)} sessions)", flush=True)
        system = MemstrataSystem(emb, workdir=work / "tmp", infer=True)
        system.begin(inst.question_id)
        for session in inst.sessions_in_time_order():
            system.add_session(session)
        system._mem.close()  # closed first, so that the file copied holds every write
        system._mem = None
        shutil.copy(system._db, db)
        system.close()
    questions = [i.question for i in insts]
    load0 = os.getloadavg()[0]
    wall: list[float] = []
    cpu: list[float] = []
    for inst in chosen:
        m = Memory(f"sqlite:///{work / f'{inst.question_id}.db'}", embedder=emb)
        for q in questions[:5]:
            m.search(f"{q} (warm)", user_id=inst.question_id, limit=50, now=inst.question_date)
        for r in range(args.rounds):
            for n, q in enumerate(questions):
                t0, c0 = time.perf_counter(), time.process_time()
                m.search(f"{q} [{r}.{n}]", user_id=inst.question_id, limit=50, now=inst.question_date)
                wall.append((time.perf_counter() - t0) * 1000)
                cpu.append((time.process_time() - c0) * 1000)
        m.close()
    print(f"searches {len(wall)}: wall p50 {pct(wall, 50):.1f} ms, p95 {pct(wall, 95):.1f} ms; "
          f"CPU p50 {pct(cpu, 50):.1f} ms, mean {sum(cpu) / len(cpu):.1f} ms; "
          f"load average {load0:.1f} -> {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
