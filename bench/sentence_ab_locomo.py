"""Before/after on one index: ``python bench/sentence_ab_locomo.py PATH FIRST LAST [infer]``.

LoCoMo dev5, conversations FIRST..LAST-1, infer=False (or the default add with a 4th argument ``infer``): one
index per conversation, each question asked with sentence evidence and the standing lift off (the tree before)
and at their defaults, on the same index."""
import sys
import time
from collections import defaultdict

from memstrata.evaluation import metrics as M
from memstrata.evaluation.locomo import load_locomo
from memstrata.evaluation.systems import MemstrataSystem, warm_up
from memstrata.providers.embedders import resolve_embedder
from memstrata.retrieve.presets import get_preset

path, first, last = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
infer = len(sys.argv) > 4 and sys.argv[4] == "infer"  # the default add (rules extraction)
emb = resolve_embedder(None)
warm_up(emb)
sysm = MemstrataSystem(emb, roles=("user",), infer=infer)
variants = {"before": dict(sentence_weight=0.0, standing_weight=0.0), "after": {}}
rows = defaultdict(list)
for conv in load_locomo(path)[first:last]:
    t = time.time()
    sysm.begin(conv.sample_id)
    for s in conv.sessions:
        sysm.add_session(s)
    for q in conv.questions:
        if not q.scorable:
            continue
        for name, kw in variants.items():
            sysm._mem.preset = get_preset("balanced", **kw)
            r = sysm._mem.search(q.question, user_id=sysm._user, limit=50, now=conv.last_date)
            ranked = M.distinct(x for res in r["results"] for x in sysm._turns(res.get("episode_ids", [])))
            rows[name].append({"sample_id": conv.sample_id, "category": q.category,
                               "recall@10": M.recall_fraction_at_k(ranked, q.evidence, 10)})
    sysm.end()
    print(conv.sample_id, round(time.time() - t), "s", flush=True)
    for name, rs in rows.items():
        by = defaultdict(list)
        for r in rs:
            by[r["category"]].append(r["recall@10"])
        overall = [r["recall@10"] for r in rs if r["category"] != 5]
        print(" ", name, "overall(1-4)", round(100 * sum(overall) / len(overall), 1), "n", len(overall),
              {c: (round(100 * sum(v) / len(v), 1), len(v)) for c, v in sorted(by.items())}, flush=True)

