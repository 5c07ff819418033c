"""Working memory: goal/task extraction quality on the labelled conversations, and what reading a state costs.

    python bench/working.py                      # dev split only (the one to tune on)
    python bench/working.py --split heldout      # the held-out split
    python bench/working.py --write              # both splits + costs, into bench/RESULTS.md
    python bench/working.py --verbose            # list every miss

Each conversation is folded by the offline tracker (memstrata.working.tracker), one message at a time, with
timestamps a minute apart. A predicted item matches a labelled one of the same kind when their content words
(stemmed, stop words out) overlap with an F1 of at least 0.5; matches are made greedily, best first.

* extraction P / R / F1: goals and tasks found, by kind and text;
* tracked F1: the same, counting a match only when its final status (open / done / dropped) and whether it
  was changed also agree;
* constraints P / R / F1: the user's stated limits, matched the same way.

Costs: reading a state from the in-process working tier (a dict lookup under a lock) and from Redis (one
GET and a JSON decode), and ``Memory.working_state`` on each; a rebuild (replaying a conversation from the
episodic tier) per message.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
from memstrata.working import cues, tracker  # noqa: E402
from results_md import provenance, write_section  # noqa: E402

DATA = ROOT / "data"
SPLITS = {"dev": DATA / "working_dev.jsonl", "heldout": DATA / "working_heldout.jsonl"}
# The held-out split was scored once, after tuning on dev only (dev then stood at F1 1.000); later runs no
# longer measure unseen data. That first run, as printed then:
FIRST_HELDOUT = (
    "First held-out run (2026-12-05, before any change prompted by it): extraction P 1.000 / R 1.000 / "
    "F1 **1.000** on 40 items; tracked F1 0.975 (\"Half done.\" closed a task early, so the later \"Submitted "
    "the grant proposal\" closed the next open one); constraints P 1.000 / R 0.857 / F1 0.923. Both splits "
    "were written by the author of the rules, so this measures robustness to new wording within one writer's "
    "style, not a second labeller's. After that run two general fixes followed (partial progress such as "
    "\"half done\" closes nothing; a closing sentence that names an already closed item closes no other one): "
    "the table above is after them, so its held-out row is no longer unseen data."
)


def load(split: str) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in SPLITS[split].read_text().splitlines() if line.strip()]


def overlap(a: str, b: str) -> float:
    wa, wb = cues.content_words(a), cues.content_words(b)
    if not wa or not wb:
        return 0.0
    common = len(wa & wb)
    if not common:
        return 0.0
    p, r = common / len(wa), common / len(wb)
    return 2 * p * r / (p + r)


def match(pred: list[dict], gold: list[dict], same=lambda p, g: True) -> int:  # type: ignore[no-untyped-def,type-arg]
    pairs = sorted(
        ((overlap(p["text"], g["text"]), i, j) for i, p in enumerate(pred) for j, g in enumerate(gold)
         if p.get("kind") == g.get("kind") and same(p, g)),
        reverse=True,
    )
    used_p: set[int] = set()
    used_g: set[int] = set()
    for score, i, j in pairs:
        if score >= 0.5 and i not in used_p and j not in used_g:
            used_p.add(i)
            used_g.add(j)
    return len(used_p)


def prf(tp: int, npred: int, ngold: int) -> tuple[float, float, float]:
    p = tp / npred if npred else 1.0
    r = tp / ngold if ngold else 1.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def score(split: str, verbose: bool = False) -> dict[str, float]:
    convs = load(split)
    counts = dict(tp=0, tracked=0, pred=0, gold=0, ctp=0, cpred=0, cgold=0)
    for c in convs:
        msgs = [tracker.Said(t["role"], t["content"], 1_700_000_000.0 + 60 * i, f"{c['id']}-{i}")
                for i, t in enumerate(c["turns"])]
        state = tracker.fold(None, msgs)
        pred = [{"kind": i.kind, "text": i.text, "status": i.status, "changed": i.changed} for i in state.items()]
        gold = c["items"]
        tp = match(pred, gold)
        tracked = match(pred, gold, lambda p, g: p["status"] == g["status"] and p["changed"] == g["changed"])
        cpred = [{"text": x.text} for x in state.constraints]
        cgold = [{"text": x} for x in c["constraints"]]
        ctp = match(cpred, cgold)
        for k, v in dict(tp=tp, tracked=tracked, pred=len(pred), gold=len(gold), ctp=ctp, cpred=len(cpred),
                         cgold=len(cgold)).items():
            counts[k] += v
        if verbose and (tp != len(pred) or tp != len(gold) or tracked != tp or ctp != len(cgold) != len(cpred)):
            print(f"-- {c['id']}")
            for p in pred:
                print(f"   got   {p['kind']:4} {p['status']:7} {'*' if p['changed'] else ' '} {p['text']}")
            for g in gold:
                print(f"   want  {g['kind']:4} {g['status']:7} {'*' if g['changed'] else ' '} {g['text']}")
            if ctp != len(cgold) or ctp != len(cpred):
                print(f"   constraints got {[x['text'] for x in cpred]} want {c['constraints']}")
    p, r, f = prf(counts["tp"], counts["pred"], counts["gold"])
    tracked_f = prf(counts["tracked"], counts["pred"], counts["gold"])[2]
    cp, cr, cf = prf(counts["ctp"], counts["cpred"], counts["cgold"])
    return {"conversations": len(convs), "items": counts["gold"], "p": p, "r": r, "f1": f, "tracked_f1": tracked_f,
            "cp": cp, "cr": cr, "cf1": cf, "constraints": counts["cgold"]}


def _timed(fn, n: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Median and p99 of ``n`` calls, in microseconds."""
    fn()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e6)
    samples.sort()
    return statistics.median(samples), samples[int(0.99 * (len(samples) - 1))]


def costs(redis_url: str) -> list[tuple[str, float, float]]:
    from memstrata import Memory
    from memstrata.backends.inprocess import InProcessWorking
    from memstrata.backends.redis import RedisWorking
    from memstrata.models import Scope

    conv = load("dev")[1]
    rows = []
    prefix = f"bench-working-{uuid.uuid4().hex[:8]}:"
    with Memory("sqlite:///:memory:", embedder="hash") as mem:
        for i, t in enumerate(conv["turns"]):
            mem.add([t], user_id="bench", conversation_id="c", timestamp=1_700_000_000 + 60 * i)
        scope = Scope.of(user_id="bench")
        state = mem.working_state("c", user_id="bench")
        local = InProcessWorking()
        local.put(scope, "c", state)
        rows.append(("in-process tier `get`", *_timed(lambda: local.get(scope, "c"), 20_000)))
        rows.append(("`Memory.working_state`, in process", *_timed(lambda: mem.working_state("c", user_id="bench"),
                                                                 20_000)))
        remote = RedisWorking(redis_url, prefix=prefix)
        try:
            remote.put(scope, "c", state)
            rows.append(("Redis tier `get` (one GET + JSON decode)", *_timed(lambda: remote.get(scope, "c"), 5_000)))
            mem.working = remote
            rows.append(("`Memory.working_state`, Redis tier", *_timed(lambda: mem.working_state("c", user_id="bench"),
                                                                     5_000)))
            from memstrata.working import keeper

            per = len(conv["turns"])
            med, p99 = _timed(lambda: keeper.rebuild(mem, scope, "c"), 200)
            rows.append((f"rebuild from episodic ({per} messages), per message", med / per, p99 / per))
        finally:
            remote.clear(scope)
            remote.close()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", choices=sorted(SPLITS), default="dev")
    ap.add_argument("--write", action="store_true", help="score both splits, measure costs, write RESULTS.md")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = ap.parse_args()
    splits = ["dev", "heldout"] if args.write else [args.split]
    table = ["| split | conversations | items | P | R | F1 | tracked F1 | constraints P / R / F1 |",
             "|---|---|---|---|---|---|---|---|"]
    for split in splits:
        s = score(split, args.verbose)
        table.append(f"| {split} | {s['conversations']} | {s['items']} | {s['p']:.3f} | {s['r']:.3f} | "
                     f"**{s['f1']:.3f}** | {s['tracked_f1']:.3f} | {s['cp']:.3f} / {s['cr']:.3f} / {s['cf1']:.3f} |")
    print("\n".join(table))
    if not args.write:
        return
    rows = costs(args.redis)
    cost = ["| read | median µs | p99 µs |", "|---|---|---|"]
    cost += [f"| {name} | {med:.1f} | {p99:.1f} |" for name, med, p99 in rows]
    print("\n".join(cost))
    body = "\n".join([
        "## Working memory: goals and tasks, and the cost of reading a state",
        "",
        provenance("PYTHONPATH=src python bench/working.py --write"),
        "Goal/task extraction by the offline tracker on hand-labelled conversations "
        "(bench/data/working_*.jsonl; conventions in bench/data/WORKING.md). Tuned on dev only; the split was "
        "fixed before the tracker was written. *tracked F1* also needs the final status and the changed flag "
        "to agree.",
        "",
        *table,
        "",
        FIRST_HELDOUT or "",
        "",
        "Reading a working state (the dev conversation dev02, three items). The machine's two cores were shared "
        "with other jobs: over four runs on 2026-12-05 the Redis `get` median moved between 73 and 303 µs and the "
        "in-process one stayed at 1.2 µs, so read the Redis rows as one local round trip under load. A rebuild "
        "costs one spaCy parse per message (it also runs once per message in `add` with a `conversation_id`).",
        "",
        *cost,
    ])
    write_section("working", body)


if __name__ == "__main__":
    main()
