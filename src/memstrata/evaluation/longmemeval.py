"""LongMemEval retrieval benchmark: load instances, run systems in one harness, score, report.

Conventions (the paper's, as in the dataset README): one index per instance built from its own haystack in time
order; official keys are user turns only, a turn's id is ``<session_id>_<k>`` with k its 1-based position among all
turns of the session; gold = user turns with ``has_answer``; session scores come from the turn ranking by growing
the cutoff until it holds k sessions; averages are over questions that are not ``_abs`` and have a gold user turn.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from memstrata.evaluation import metrics as M
from memstrata.evaluation.baselines import CONTEXT_BUDGET, Outcome
from memstrata.evaluation.longmemeval_data import Instance, count_instances, iter_instances
from memstrata.evaluation.report import (
    below_flat_note,
    command_line,
    flag_below_flat,
    fmt,
    provenance,
    publish,
)
from memstrata.evaluation.systems import SEARCH_LIMIT, SYSTEM_ORDER, make_systems, warm_up

TURN_KEYS = ("turn_recall_all@5", "turn_recall_all@10", "turn_ndcg@10", "turn_recall_any@5")
SESSION_KEYS = ("session_recall_all@5", "session_recall_all@10", "session_ndcg@10")
SCORE_KEYS = (*TURN_KEYS, *SESSION_KEYS, "context_evidence")

# ---------------------------------------------------------------------------------------------- scoring


def score_question(inst: Instance, out: Outcome) -> dict[str, Any]:
    """Per-question measures for one system's outcome (scores only when the question is scorable)."""
    ranked = [t for t in out.ranked if t in inst.user_turns]  # official keys: user turns only
    row: dict[str, Any] = {
        "question_id": inst.question_id,
        "question_type": inst.question_type,
        "scorable": inst.scorable,
        "search_ms": round(out.search_ms, 3),
        "cold_search_ms": None if out.cold_search_ms is None else round(out.cold_search_ms, 3),
        "top10_tokens": out.top10_tokens,
        "context_tokens": out.context_tokens,
        "ranked_user_turns": ranked[:20],
    }
    if not inst.scorable:
        return row
    gold, gold_s, sess = inst.gold_turns, inst.gold_sessions, inst.session_of
    row.update(
        {
            "gold_turns": sorted(gold),
            "gold_sessions": sorted(gold_s),
            "turn_recall_all@5": M.recall_all_at_k(ranked, gold, 5),
            "turn_recall_all@10": M.recall_all_at_k(ranked, gold, 10),
            "turn_ndcg@10": M.ndcg_at_k(ranked, gold, 10),
            "turn_recall_any@5": M.recall_any_at_k(ranked, gold, 5),
            "session_recall_all@5": M.session_metric(M.recall_all_at_k, ranked, sess, gold_s, 5),
            "session_recall_all@10": M.session_metric(M.recall_all_at_k, ranked, sess, gold_s, 10),
            "session_ndcg@10": M.session_metric(M.ndcg_at_k, ranked, sess, gold_s, 10),
            "context_evidence": 1.0 if gold <= out.context_turns else 0.0,
            "missed_at_10": sorted(gold - set(ranked[:10])),
            "gold_ranks": {t: (ranked.index(t) + 1 if t in ranked else None) for t in sorted(gold)},
        }
    )
    return row


def summarise(rows: list[dict[str, Any]], add_ms_per_msg: list[float], add_ms_per_session: list[float]) -> dict:
    """Means over scorable questions (overall and per type), token costs and latency percentiles."""
    scorable = [r for r in rows if r["scorable"]]
    agg = M.aggregate(scorable, SCORE_KEYS)
    search = [r["search_ms"] for r in rows]
    cold = [r["cold_search_ms"] for r in rows if r.get("cold_search_ms") is not None]
    return {
        "metrics": agg.get("all", {}),
        "per_type": {k: v for k, v in agg.items() if k != "all"},
        "questions": len(rows),
        "scorable": len(scorable),
        "tokens": {
            "top10_mean": M.mean([r["top10_tokens"] for r in rows]),
            "context_mean": M.mean([r["context_tokens"] for r in rows]),
        },
        "latency_ms": {
            "search_p50": M.percentile(search, 50),
            "search_p95": M.percentile(search, 95),
            "cold_search_p50": M.percentile(cold, 50),
            "cold_search_p95": M.percentile(cold, 95),
            "add_per_message_p50": M.percentile(add_ms_per_msg, 50),
            "add_per_message_p95": M.percentile(add_ms_per_msg, 95),
            "add_per_session_p50": M.percentile(add_ms_per_session, 50),
            "add_per_session_p95": M.percentile(add_ms_per_session, 95),
        },
    }


# ---------------------------------------------------------------------------------------------- runner


def run_longmemeval(
    path: str | Path,
    systems: Sequence[str] = ("memstrata", "flat", "bm25"),
    limit: int | None = None,
    preset: str = "balanced",
    *,
    workdir: str | Path | None = None,
    embedder: Any = None,
    baseline_roles: Sequence[str] = ("user",),
    memstrata_roles: Sequence[str] = ("user", "assistant"),
    write: bool = False,
    results_path: str | Path = "bench/RESULTS.md",
    out_dir: str | Path | None = "bench/out",
    command: str | None = None,
    progress: bool = True,
    echo: bool = True,
) -> dict[str, Any]:
    """Run the named systems on a LongMemEval file; return (and optionally write) the summary.

    Every system sees every instance in turn: a fresh index, its sessions in time order with their dates,
    then the question at its ``question_date``. ``write`` replaces the ``longmemeval`` section of
    ``results_path``; ``out_dir`` receives a JSON dump of per-question results (None: no dump).
    """
    from tqdm import tqdm

    from memstrata.providers.embedders import resolve_embedder

    names = [s.strip() for s in (systems.split(",") if isinstance(systems, str) else systems) if s.strip()]
    emb = resolve_embedder(embedder)
    warm_up(emb)
    runners = make_systems(
        names, embedder=emb, preset=preset, workdir=workdir,
        baseline_roles=baseline_roles, memstrata_roles=memstrata_roles,
    )
    rows: dict[str, list[dict[str, Any]]] = {s.key: [] for s in runners}
    add_msg: dict[str, list[float]] = {s.key: [] for s in runners}
    add_session: dict[str, list[float]] = {s.key: [] for s in runners}
    ingest_s: dict[str, float] = {s.key: 0.0 for s in runners}
    started = time.perf_counter()
    total = count_instances(path, limit)
    bar = tqdm(total=total, desc="LongMemEval", unit="q", disable=not progress, file=sys.stderr)
    try:
        for inst in iter_instances(path, limit):
            ordered = inst.sessions_in_time_order()
            for system in runners:
                system.begin(inst.question_id)
                try:
                    for session in ordered:
                        seconds, n = system.add_session(session)
                        if n:
                            ingest_s[system.key] += seconds
                            add_session[system.key].append(seconds * 1000.0)
                            add_msg[system.key].append(seconds * 1000.0 / n)
                    out = system.query(inst.question, inst.question_date)
                finally:
                    system.end()
                rows[system.key].append(score_question(inst, out))
            bar.update(1)
            bar.set_postfix(_running(rows), refresh=False)
    finally:
        bar.close()
        for system in runners:
            system.close()
    result: dict[str, Any] = {
        "benchmark": "LongMemEval",
        "path": str(path),
        "dataset": Path(path).name,
        "limit": limit,
        "preset": preset,
        "embedder": getattr(emb, "name", type(emb).__name__),
        "baseline_roles": list(baseline_roles),
        "memstrata_roles": list(memstrata_roles),
        "seconds": round(time.perf_counter() - started, 1),
        "systems": {},
    }
    for system in runners:
        summary = summarise(rows[system.key], add_msg[system.key], add_session[system.key])
        summary["label"] = system.label
        summary["ingest_seconds"] = round(ingest_s[system.key], 2)
        result["systems"][system.key] = summary
    command = command or command_line()
    return publish(result, rows, "longmemeval", render_markdown, command, out_dir=out_dir, echo=echo, write=write,
                   results_path=results_path)


def _running(rows: dict[str, list[dict[str, Any]]]) -> dict[str, str]:
    out = {}
    for key, rs in rows.items():
        vals = [r["turn_recall_all@10"] for r in rs if r["scorable"]]
        if vals:
            out[key] = f"{sum(vals) / len(vals):.2f}"
    return out


TARGETS = {
    "turn_recall_all@5": "≥ 0.85",
    "turn_recall_all@10": "≥ 0.95",
    "turn_ndcg@10": "≥ 0.85",
    "turn_recall_any@5": "–",
    "session_recall_all@5": "≥ 0.95",
    "session_recall_all@10": "–",
    "context_evidence": "≥ 0.90",
    "tokens": "–",
    "search": "≤ 8 / 15",
    "add": "≤ 10",
}

ROWS = (
    ("turn recall_all@5", "turn_recall_all@5"),
    ("turn recall_all@10", "turn_recall_all@10"),
    ("turn ndcg@10", "turn_ndcg@10"),
    ("turn recall_any@5", "turn_recall_any@5"),
    ("session recall_all@5", "session_recall_all@5"),
    ("session recall_all@10", "session_recall_all@10"),
    (f"all evidence inside a {CONTEXT_BUDGET:,}-token context", "context_evidence"),
)


def render_markdown(result: dict[str, Any], command: str) -> str:
    """The results section: provenance, the main table and the per-question-type table."""
    systems = result["systems"]
    keys = [k for k in SYSTEM_ORDER if k in systems]
    any_sys = systems[keys[0]]
    limit_note = "" if result["limit"] is None else f", first {result['limit']} instances (--limit)"
    lines = [
        "## LongMemEval retrieval",
        "",
        provenance(command),
        f"Data: `{result['dataset']}`, {any_sys['questions']} questions, {any_sys['scorable']} scorable "
        f"(not `_abs`, at least one gold user turn){limit_note}. "
        f"Embedder: {result['embedder']}. Baselines index {' + '.join(result['baseline_roles'])} turns; "
        f"memstrata ingests {' + '.join(result['memstrata_roles'])} turns per session (`memstrata`: "
        "`infer=False`; `memstrata-infer`: the default `add`, rules extraction), "
        f"one SQLite database per instance.",
        "",
        "Scoring (LongMemEval's conventions): one index per instance, sessions added in time order with their "
        "dates, the question asked at its `question_date`; keys are user turns (`<session_id>_<k>`, k counting "
        "all turns), gold = user turns with `has_answer`; a system's results are mapped to turns through "
        "provenance and only user-turn keys are ranked. recall_all@k = every gold turn in the top k; "
        "ndcg uses DCG = rel1 + Σ_{i≥2} rel_i/log2(i). Session scores grow the turn cutoff until it holds k "
        f"sessions. Context evidence: every gold turn cited by an item of `context(question, "
        f"token_budget={CONTEXT_BUDGET})` (baselines: their ranked turns packed greedily into the same budget). "
        f"Search latency is wall time around one `search(limit={SEARCH_LIMIT})` call, query embedding included, "
        "with the index resident (memstrata: the scored search is repeated, its query embedding not cached; the "
        "first search per instance, which loads the scope's vectors from SQLite, is the cold row). Add latency "
        "is one session's `add` (baselines: embedding / tokenising its turns) divided by its messages. "
        "Latencies are wall time on a shared machine, so they move between runs.",
        "",
        "| measure | " + " | ".join(systems[k]["label"] for k in keys) + " | target |",
        "|---|" + "---|" * len(keys) + "---|",
    ]
    for title, key in ROWS:
        values = [systems[k]["metrics"].get(key) for k in keys]
        cells = flag_below_flat([fmt(v) for v in values], values, keys)
        lines.append(f"| {title} | " + " | ".join(cells) + f" | {TARGETS[key]} |")
    cells = [
        f"{fmt(systems[k]['tokens']['top10_mean'], 0)} / {fmt(systems[k]['tokens']['context_mean'], 0)}"
        for k in keys
    ]
    lines.append("| mean context tokens (top-10 results / `context()`) | " + " | ".join(cells) + " | – |")
    cells = [
        f"{fmt(systems[k]['latency_ms']['search_p50'], 1)} / {fmt(systems[k]['latency_ms']['search_p95'], 1)}"
        for k in keys
    ]
    lines.append("| search p50 / p95 ms | " + " | ".join(cells) + f" | {TARGETS['search']} |")
    cells = [
        f"{fmt(systems[k]['latency_ms']['cold_search_p50'], 1)} / {fmt(systems[k]['latency_ms']['cold_search_p95'], 1)}"
        for k in keys
    ]
    lines.append("| first search after ingest (cold) p50 / p95 ms | " + " | ".join(cells) + " | – |")
    cells = [fmt(systems[k]["latency_ms"]["add_per_message_p50"], 2) for k in keys]
    lines.append("| add p50 ms per message | " + " | ".join(cells) + f" | {TARGETS['add']} |")
    lines += [
        "",
        "Per question type (turn recall_all@5 / @10, scorable questions):",
        "",
        "| question type | n | " + " | ".join(systems[k]["label"] for k in keys) + " |",
        "|---|---|" + "---|" * len(keys),
    ]
    types = sorted(any_sys["per_type"])
    for qt in types:
        n = int(any_sys["per_type"][qt]["n"])
        per = [systems[k]["per_type"].get(qt, {}) for k in keys]
        at5 = flag_below_flat([fmt(pt.get("turn_recall_all@5")) for pt in per],
                              [pt.get("turn_recall_all@5") for pt in per], keys)
        at10 = flag_below_flat([fmt(pt.get("turn_recall_all@10")) for pt in per],
                               [pt.get("turn_recall_all@10") for pt in per], keys)
        cells = [f"{a} / {b}" for a, b in zip(at5, at10, strict=True)]
        lines.append(f"| {qt} | {n} | " + " | ".join(cells) + " |")
    lines.append("")
    if note := below_flat_note(keys):
        lines += [note, ""]
    lines.append(
        "Reference points (dataset README, same conventions, dev100): BM25 turn recall_all@5 0.47, @10 0.62; "
        "flat MiniLM 0.53 / 0.73, ndcg@10 0.64, session recall_all@5 0.69, @10 0.85; Mem0 OSS (infer=False, "
        "hybrid) turn recall_all@10 0.87, @5 0.69, ndcg@10 0.73, session @5 0.84, search p50 51 ms."
    )
    return "\n".join(lines) + "\n"
