"""Does the default ``add`` remember what changed? Scored on the labelled multi-session update set.

    python bench/update_quality.py --split dev               # tune on this part only
    python bench/update_quality.py --split heldout --write   # score the held-out part, write bench/RESULTS.md
    python bench/update_quality.py --split heldout2 --write  # a second held-out set, written apart from the first
    python bench/update_quality.py --split heldout3 --write  # a third one, terse and typo-ish, scored once at the end
    python bench/update_quality.py --split heldout4 --write  # a fourth one, written before the attribute templates
    python bench/update_quality.py --split heldout5 --write  # a fifth one, written blind before any scoring of it
    python bench/update_quality.py --split heldout6 --write  # a sixth one, written blind before any scoring of it
    python bench/update_quality.py --split heldout7 --write  # a seventh one, written blind before any scoring of it
    python bench/update_quality.py --split heldout8 --write  # an eighth one, written blind before any scoring of it
    python bench/update_quality.py --split heldout9 --write  # a ninth one, written blind before any scoring of it
    python bench/update_quality.py --split heldout10 --write # a tenth one, written blind before any scoring of it
    python bench/update_quality.py --split heldout11 --write # an eleventh one, written blind before any scoring of it
    python bench/update_quality.py --split heldout12 --write # a twelfth one, written blind before any scoring of it
    python bench/update_quality.py --split heldout13 --write # a thirteenth one, written blind before any scoring of it
    python bench/update_quality.py --split heldout14 --write # a fourteenth one, written blind before any scoring of it
    python bench/update_quality.py --split heldout15 --write # a fifteenth one, written blind before any scoring of it
    python bench/update_quality.py --split heldout16 --write # a sixteenth one, written blind before any scoring of it
    python bench/update_quality.py --split heldout17 --write # a seventeenth one, written blind before any scoring of it
    python bench/update_quality.py --split heldout18 --write # an eighteenth one, written blind before any scoring of it
    python bench/update_quality.py --split heldout19 --write # a nineteenth one, written blind before any scoring of it
    python bench/update_quality.py --split heldout20 --write # a twentieth one, written blind before any scoring of it

Each conversation of ``bench/data/updates_<split>.jsonl`` is added session by session (its dates, one
conversation id per session) to a fresh SQLite store with the real MiniLM embedder, through the public API.
Then, per labelled update pair (old value -> new value, for one kind of fact):

* new value first: the top result of ``search(question)`` holds the new value;
* old value presented as current: a current memory holding the old value (and not the new one) is among the
  top 3 results of ``search(question)`` (also counted apart: those not marked ``revised_by`` a later statement);
* old value kept: ``search(question, as_of=<day after the first session>)`` finds the old value (top 5);
* conflict records: for changes the user did not mark as a change (``explicit: false``) a conflict record must
  link a memory holding the old value to one holding the new one (recall); every conflict record raised must
  be such a pair (precision).

Every labelled statement must be found by ``search(query, limit=10)`` (findable), and messages labelled as no
fact must not be reported as ``kept`` or ``superseded`` by ``add``. Latency: rules-mode ``add`` per message.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
from memstrata import IngestConfig, Memory  # noqa: E402
from memstrata.providers.embedders import default_embedder  # noqa: E402
from results_md import provenance, write_section  # noqa: E402


def holds(text: str, value: str) -> bool:
    """Does ``text`` say ``value``, as whole words ("Ren" is not in "rent"; "7" is in "7am")?"""
    tail = r"(?!\w)" if value[-1:].isalpha() else ""
    return re.search(r"(?<!\w)" + re.escape(value) + tail, text, re.IGNORECASE) is not None


def score_conversation(conv: dict, embedder, verbose: bool = False,  # type: ignore[no-untyped-def]
                       ingest: IngestConfig | None = None) -> dict:
    out = {"updates": [], "findable": [], "no_fact": [], "conflicts_raised": 0, "conflicts_matched": 0,
           "add_ms_per_message": []}
    with tempfile.TemporaryDirectory(prefix="memstrata-upd-") as d, \
            Memory(f"sqlite:///{Path(d) / 'm.db'}", embedder=embedder, ingest=ingest) as m:
        user = conv["id"]
        outcome: dict[str, str] = {}
        for n, session in enumerate(conv["sessions"]):
            msgs = session["turns"]
            t0 = time.perf_counter()
            r = m.add(msgs, user_id=user, conversation_id=f"{user}-s{n}", timestamp=session["date"])
            out["add_ms_per_message"].append((time.perf_counter() - t0) * 1000 / len(msgs))
            for msg, rep in zip(msgs, r["messages"], strict=True):
                outcome[msg["content"]] = rep["outcome"]
        first_day = datetime.fromisoformat(conv["sessions"][0]["date"].replace("Z", "+00:00")) + timedelta(days=1)
        now = conv["sessions"][-1]["date"]
        for u in conv["updates"]:
            hits = m.search(u["question"], user_id=user, limit=5, now=now)["results"]
            top = [h["memory"] for h in hits]
            new_first = bool(top) and holds(top[0], u["new"])
            stale = any(holds(t, u["old"]) and not holds(t, u["new"]) for t in top[:3])
            unmarked = any(holds(h["memory"], u["old"]) and not holds(h["memory"], u["new"])
                           and "revised_by" not in h for h in hits[:3])
            then = m.search(u["question"], user_id=user, limit=5, as_of=first_day.isoformat())["results"]
            kept_old = any(holds(h["memory"], u["old"]) for h in then)
            out["updates"].append({**u, "new_first": new_first, "old_current": stale, "old_unmarked": unmarked,
                                   "old_as_of": kept_old, "top": top[:3]})
        raised = m.conflicts(user_id=user, status=None)["results"]
        implicit = [u for u in conv["updates"] if not u["explicit"]]
        found = set()
        for c in raised:
            old = m.get(c["old_memory_id"], user_id=user)["memory"]
            new = m.get(c["new_memory_id"], user_id=user)["memory"]
            match = next((i for i, u in enumerate(implicit) if holds(old, u["old"]) and holds(new, u["new"])), None)
            if match is not None:
                found.add(match)
                out["conflicts_matched"] += 1
            elif verbose:
                print(f"  [{user}] conflict not labelled: {old!r} -> {new!r}")
        out["conflicts_raised"] = len(raised)
        for i, u in enumerate(implicit):
            out["updates"][conv["updates"].index(u)]["conflict"] = i in found
        for f in conv["findable"]:
            hits = m.search(f["query"], user_id=user, limit=10, now=now)["results"]
            out["findable"].append({**f, "found": any(holds(h["memory"], f["expect"]) for h in hits)})
        for nf in conv["no_fact"]:
            out["no_fact"].append({**nf, "became_fact": outcome.get(nf["text"]) in ("kept", "superseded")})
    return out


def summarise(rows: list[dict]) -> dict:
    ups = [u for r in rows for u in r["updates"]]
    implicit = [u for u in ups if not u["explicit"]]
    raised = sum(r["conflicts_raised"] for r in rows)
    matched = sum(r["conflicts_matched"] for r in rows)
    findable = [f for r in rows for f in r["findable"]]
    nofact = [x for r in rows for x in r["no_fact"]]
    lat = sorted(x for r in rows for x in r["add_ms_per_message"])

    def pct(xs: list[bool]) -> float:
        return round(100.0 * sum(xs) / len(xs), 1) if xs else 0.0

    return {
        "conversations": len(rows), "updates": len(ups), "kinds": len({u["kind"] for u in ups}),
        "new_first": pct([u["new_first"] for u in ups]),
        "old_current": pct([u["old_current"] for u in ups]),
        "old_unmarked": pct([u["old_unmarked"] for u in ups]),
        "old_as_of": pct([u["old_as_of"] for u in ups]),
        "implicit": len(implicit),
        "conflict_recall": (round(sum(u.get("conflict", False) for u in implicit) / len(implicit), 3)
                            if implicit else None),
        "conflict_precision": round(matched / raised, 3) if raised else None,
        "conflicts_raised": raised,
        "findable": pct([f["found"] for f in findable]), "statements": len(findable),
        "no_fact_kept_out": pct([not x["became_fact"] for x in nofact]), "no_fact": len(nofact),
        "add_ms_p50": round(lat[len(lat) // 2], 1) if lat else None,
        "add_ms_p95": round(lat[int(len(lat) * 0.95)], 1) if lat else None,
        "per_kind": {k: pct([u["new_first"] for u in ups if u["kind"] == k]) for k in sorted({u["kind"] for u in ups})},
    }


def render(split: str, s: dict, command: str, label: str, config: str = "") -> str:
    return "\n".join([
        f"## Knowledge updates ({split}){label}",
        "",
        provenance(command),
        f"Data: `bench/data/updates_{split}.jsonl` — {s['conversations']} conversations, {s['updates']} update pairs "
        f"over {s['kinds']} kinds of fact ({s['implicit']} not said as a change), {s['statements']} statements that "
        f"must stay findable, {s['no_fact']} messages that are no facts. "
        f"{'`add` with ' + config if config else 'Default `add`'} (rules, inference on), "
        "real MiniLM embedder, SQLite. Method in the script's docstring.",
        "",
        "| measure | value | target |",
        "|---|---|---|",
        f"| new value ranks first | {s['new_first']}% | ≥ 90% |",
        f"| old value still presented as current (top 3) | {s['old_current']}% | ≤ 5% |",
        f"| … of which not marked `revised_by` a later statement | {s['old_unmarked']}% | — |",
        f"| old value found with `as_of` | {s['old_as_of']}% | — |",
        f"| every statement findable (top 10) | {s['findable']}% | 100% |",
        f"| conflict records for changes not said as such: recall | {s['conflict_recall']} | ≥ 0.85 |",
        f"| conflict records: precision ({s['conflicts_raised']} raised) | {s['conflict_precision']} | ≥ 0.9 |",
        f"| messages that are no facts kept out of facts | {s['no_fact_kept_out']}% | — |",
        f"| `add` per message p50 / p95 (ms, whole session per call) | {s['add_ms_p50']} / {s['add_ms_p95']} | — |",
        "",
        "New value first, per kind: " + ", ".join(f"{k} {v}%" for k, v in s["per_kind"].items()) + ".",
        "",
    ])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--split", choices=("dev", "heldout", "heldout2", "heldout3", "heldout4", "heldout5", "heldout6",
                                       "heldout7", "heldout8", "heldout9", "heldout10", "heldout11",
                                       "heldout12", "heldout13", "heldout14",
                                       "heldout15", "heldout16", "heldout17", "heldout18", "heldout19",
                                       "heldout20"),
                   default="dev")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--write", action="store_true")
    p.add_argument("--label", default="", help="suffix for the section title, e.g. ' — first held-out score'")
    p.add_argument("--section", default=None,
                   help="name of the RESULTS.md section to write (default updates-<split>); keeps older ones")
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--template-updates", action="store_true",
                   help="score with IngestConfig(template_updates=True) (updates found by attribute template)")
    a = p.parse_args()
    ingest = IngestConfig(template_updates=True) if a.template_updates else None
    path = ROOT / "data" / f"updates_{a.split}.jsonl"
    convs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()][: a.limit]
    emb = default_embedder()
    emb.warm_up()
    rows = []
    for conv in convs:
        row = score_conversation(conv, emb, a.verbose, ingest)
        rows.append(row)
        if a.verbose:
            for u in row["updates"]:
                bad = [k for k, good in (("new_first", True), ("old_current", False), ("conflict", True))
                       if k in u and u[k] != good and (k != "conflict" or not u["explicit"])]
                if bad:
                    print(f"[{conv['id']}] {u['kind']}: {','.join(bad)} | {u['question']} -> {u['top']}")
            for f in row["findable"]:
                if not f["found"]:
                    print(f"[{conv['id']}] NOT FOUND {f['query']!r} ({f['expect']})")
            for x in row["no_fact"]:
                if x["became_fact"]:
                    print(f"[{conv['id']}] became a fact: {x['text']!r}")
    s = summarise(rows)
    command = "python bench/update_quality.py " + " ".join(sys.argv[1:])
    md = render(a.split, s, command, a.label, "IngestConfig(template_updates=True)" if a.template_updates else "")
    print(md)
    if a.write:
        write_section(a.section or f"updates-{a.split}", md)


if __name__ == "__main__":
    main()
