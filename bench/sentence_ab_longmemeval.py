"""Before/after on one index: ``python bench/sentence_ab_longmemeval.py FILE N`` (the first N instances of FILE).

Each LongMemEval instance is ingested once (infer=False, user and assistant turns), then its question is asked
with sentence evidence and the standing lift off (w0: the ranking before them) and at several sentence weights.
Run on dev100 instances 50-99 only (a file holding those lines), so that instances 0-49 stay unseen.
"""

import sys

from memstrata.evaluation import metrics as M
from memstrata.evaluation.baselines import Outcome
from memstrata.evaluation.longmemeval import score_question
from memstrata.evaluation.longmemeval_data import iter_instances
from memstrata.evaluation.systems import MemstrataSystem, warm_up
from memstrata.providers.embedders import resolve_embedder
from memstrata.retrieve.presets import get_preset

MEASURES = ("turn_recall_all@5", "turn_recall_all@10", "turn_ndcg@10", "session_recall_all@5")
VARIANTS = {"w0": {"sentence_weight": 0.0, "standing_weight": 0.0}, "w0.3": {"sentence_weight": 0.3},
            "w0.5": {"sentence_weight": 0.5}, "w1": {"sentence_weight": 1.0}}

path, limit = sys.argv[1], int(sys.argv[2])
emb = resolve_embedder(None)
warm_up(emb)
system = MemstrataSystem(emb)
rows: dict[str, list[dict]] = {k: [] for k in VARIANTS}
for inst in iter_instances(path, limit):
    system.begin(inst.question_id)
    for session in inst.sessions_in_time_order():
        system.add_session(session)
    for name, overrides in VARIANTS.items():
        system._mem.preset = get_preset("balanced", **overrides)
        found = system._mem.search(inst.question, user_id=system._user, limit=50, now=inst.question_date)
        ranked = M.distinct(t for r in found["results"] for t in system._turns(r.get("episode_ids", [])))
        rows[name].append(score_question(inst, Outcome([str(t) for t in ranked], 0.0, 0, 0, set(), 0.0)))
    system.end()
    print(inst.question_id, inst.question_type,
          {k: (v[-1].get("turn_recall_all@5"), v[-1].get("turn_recall_all@10"), v[-1].get("gold_ranks"))
           for k, v in rows.items()}, flush=True)
for name, scored in rows.items():
    kept = [r for r in scored if r["scorable"]]
    print(name, len(kept), *(round(sum(r[m] for r in kept) / len(kept), 3) for m in MEASURES))
