"""LongMemEval retrieval benchmark: load instances, run systems in one harness, score, report.

Conventions (the paper's, as in the dataset README): one index per instance built from its own haystack in time
order; official keys are user turns only, a turn's id is ``<session_id>_<k>`` with k its 1-based position among all
turns of the session; gold = user turns with ``has_answer``; session scores come from the turn ranking by growing
the cutoff until it holds k sessions; averages are over questions that are not ``_abs`` and have a gold user turn.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Sequence
from itertools import islice
from pathlib import Path
from typing import Any

from memstrata.evaluation import metrics as M
from memstrata.evaluation.baselines import CONTEXT_BUDGET, Outcome
from memstrata.evaluation.embed_cache import CachingEmbedder, close, live, stats, wrap
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
    offset: int = 0,
    workdir: str | Path | None = None,
    embedder: Any = None,
    embed_cache: str | Path | None = None,
    runs_dir: str | Path | None = None,
    merge_only: bool = False,
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
    then the question at its ``question_date``. ``offset``/``limit`` pick instances ``offset`` to
    ``offset + limit`` in file order. ``embed_cache`` is a folder for the benchmark embedding cache (None: embed
    everything). ``runs_dir`` keeps one JSON record per system and instance: a run skips the records already
    there and the summary covers every saved one in range, so a long run can be resumed or done in chunks;
    ``merge_only`` runs nothing and summarises the instances every system has a record for. ``write`` replaces
    the ``longmemeval`` section of ``results_path`` (``longmemeval-full`` with ``runs_dir``); ``out_dir``
    receives a JSON dump of per-question results (None: no dump).
    """
    from tqdm import tqdm

    from memstrata.providers.embedders import resolve_embedder

    names = [s.strip() for s in (systems.split(",") if isinstance(systems, str) else systems) if s.strip()]
    if offset < 0 or (limit is not None and limit < 0):
        raise ValueError("offset and limit must not be negative")
    if merge_only and runs_dir is None:
        raise ValueError("merge_only needs runs_dir (the saved records to summarise)")
    emb = resolve_embedder(embedder)
    config = {"preset": preset, "embedder": getattr(emb, "name", type(emb).__name__),
              "baseline_roles": list(baseline_roles), "memstrata_roles": list(memstrata_roles)}
    store = RunRecords(runs_dir, config) if runs_dir is not None else None
    if not merge_only:
        emb = wrap(emb, embed_cache)
        warm_up(emb)
    runners = make_systems(
        names, embedder=emb, preset=preset, workdir=workdir,
        baseline_roles=baseline_roles, memstrata_roles=memstrata_roles,
    )
    records: dict[str, list[dict[str, Any]]] = {s.key: [] for s in runners}
    started = time.perf_counter()
    end = None if limit is None else offset + limit
    total = max(0, count_instances(path, end) - offset)
    bar = tqdm(total=total, desc="LongMemEval", unit="q", disable=not progress or merge_only, file=sys.stderr)
    position: dict[str, int] = {}
    try:
        for pos, inst in enumerate(islice(iter_instances(path, end), offset, None), start=offset + 1):
            position.setdefault(inst.question_id, pos)
            ordered: list[Any] | None = None
            for system in runners:
                saved = store.load(system.key, inst.question_id) if store is not None else None
                if saved is None and not merge_only:
                    ordered = ordered if ordered is not None else inst.sessions_in_time_order()
                    saved = _run_one(system, inst, ordered)
                    if store is not None:
                        store.save(system.key, inst.question_id, saved)
                if saved is not None:
                    records[system.key].append(saved)
            bar.update(1)
            bar.set_postfix(_running({k: [r["row"] for r in rs] for k, rs in records.items()}), refresh=False)
    finally:
        bar.close()
        for system in runners:
            system.close()
    done = set.intersection(*({r["row"]["question_id"] for r in rs} for rs in records.values())) if records else set()
    result: dict[str, Any] = {
        "benchmark": "LongMemEval",
        "path": str(path),
        "dataset": Path(path).name,
        "available": count_instances(path),
        "offset": offset,
        "limit": limit,
        "instances": len(done),
        "positions": sorted(position[q] for q in done),
        **config,
        "seconds": round(time.perf_counter() - started, 1),
        "systems": {},
    }
    if (cache := stats(emb)) is not None:
        result["embed_cache"] = cache
    close(emb)
    finished = [r for rs in records.values() for r in rs if r["row"]["question_id"] in done]
    result["records"] = {
        "count": len(finished),
        "wall_seconds": round(sum(r["seconds"] for r in finished), 1),
        "cpu_seconds": round(sum(r["cpu_seconds"] for r in finished), 1),
        "load1_mean": M.mean([r["load1"] for r in finished]) if finished else None,
        "with_embed_cache": sum(1 for r in finished if r["embed_cache"]),
    }
    if store is not None:
        result["runs_dir"] = str(store.root)
    rows: dict[str, list[dict[str, Any]]] = {}
    for system in runners:
        kept = [r for r in records[system.key] if r["row"]["question_id"] in done]
        rows[system.key] = [r["row"] for r in kept]
        summary = summarise(rows[system.key], [x for r in kept for x in r["add_ms_per_message"]],
                            [x for r in kept for x in r["add_ms_per_session"]])
        summary["label"] = system.label
        summary["ingest_seconds"] = round(sum(r["ingest_seconds"] for r in kept), 2)
        result["systems"][system.key] = summary
    command = command or command_line()
    section = "longmemeval-full" if store is not None else "longmemeval"
    return publish(result, rows, section, render_markdown, command, out_dir=out_dir, echo=echo, write=write,
                   results_path=results_path)


def _run_one(system: Any, inst: Instance, ordered: list[Any]) -> dict[str, Any]:
    """One system on one instance: its record (the scored row, add latencies, wall and CPU seconds)."""
    wall, cpu = time.perf_counter(), time.process_time()
    add_msg: list[float] = []
    add_session: list[float] = []
    ingest = 0.0
    system.begin(inst.question_id)
    try:
        for session in ordered:
            seconds, n = system.add_session(session)
            if n:
                ingest += seconds
                add_session.append(seconds * 1000.0)
                add_msg.append(seconds * 1000.0 / n)
        # The question is embedded for real even with the benchmark cache: search latency includes it.
        with live(system.embedder, [inst.question, inst.question + " "]):
            out = system.query(inst.question, inst.question_date)
    finally:
        system.end()
    return {
        "row": score_question(inst, out),
        "add_ms_per_message": add_msg,
        "add_ms_per_session": add_session,
        "ingest_seconds": ingest,
        "seconds": time.perf_counter() - wall,
        "cpu_seconds": time.process_time() - cpu,
        "load1": os.getloadavg()[0],
        "embed_cache": isinstance(system.embedder, CachingEmbedder),
    }


class RunRecords:
    """One JSON file per system and instance under ``root/<system>/``, with the settings that produced it.

    A record made under other settings (preset, embedder, roles) is refused rather than mixed in."""

    def __init__(self, root: str | Path, config: dict[str, Any]) -> None:
        self.root = Path(root)
        self.config = config

    def _file(self, system: str, question_id: str) -> Path:
        return self.root / system / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', question_id)}.json"

    def load(self, system: str, question_id: str) -> dict[str, Any] | None:
        path = self._file(system, question_id)
        if not path.exists():
            return None
        record = json.loads(path.read_text(encoding="utf-8"))
        if record.get("config") != self.config:
            raise ValueError(f"{path} was made with {record.get('config')}, not {self.config}; "
                             "use another runs folder")
        return dict(record["record"])

    def save(self, system: str, question_id: str, record: dict[str, Any]) -> None:
        path = self._file(system, question_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"config": self.config, "record": record}, default=str), encoding="utf-8")
        tmp.replace(path)  # whole or absent: an interrupted run leaves no half-written record


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


def _coverage_note(result: dict[str, Any]) -> str:
    """How many of the file's instances the tables cover, when not all of them."""
    n, available, positions = result.get("instances"), result.get("available"), result.get("positions")
    if n and available is not None and positions and n < available:
        return (f"; **{n} of the {available} instances** (file positions {_spans(positions)}: those every system "
                "finished; the rest were not run)")
    if result["limit"] is not None:
        return f", first {result['limit']} instances (--limit)"
    return ""


def _spans(positions: list[int]) -> str:
    """``[1, 2, 3, 7]`` as ``1–3, 7``."""
    out: list[str] = []
    start = prev = positions[0]
    for p in [*positions[1:], None]:
        if p is not None and p == prev + 1:
            prev = p
            continue
        out.append(str(start) if start == prev else f"{start}–{prev}")
        if p is not None:
            start = prev = p
    return ", ".join(out)


def _cache_note(result: dict[str, Any]) -> str:
    rec = result.get("records") or {}
    if not rec.get("with_embed_cache"):
        return ""
    cache = result.get("embed_cache")
    counts = "" if not cache else (f"; this process read {cache['hits']:,} texts back and embedded "
                                   f"{cache['misses']:,}")
    return (f" {rec['with_embed_cache']} of the {rec['count']} system × instance runs embedded stored texts through "
            f"the benchmark embedding cache{counts}: their add latency leaves out most embedding time and is not a "
            "measure of `add`; questions were always embedded for real, so search latency includes it.")


def _run_note(result: dict[str, Any]) -> str:
    rec = result.get("records") or {}
    if not rec.get("count"):
        return ""
    load = "–" if rec.get("load1_mean") is None else f"{rec['load1_mean']:.1f}"
    return (f"Run time: {rec['wall_seconds'] / 60:.0f} min wall ({rec['cpu_seconds'] / 60:.0f} min CPU) summed over "
            f"the {rec['count']} system × instance runs; mean 1-minute load average while they ran {load}, "
            f"at publication {os.getloadavg()[0]:.1f}.")


def render_markdown(result: dict[str, Any], command: str) -> str:
    """The results section: provenance, the main table and the per-question-type table."""
    systems = result["systems"]
    keys = [k for k in SYSTEM_ORDER if k in systems]
    any_sys = systems[keys[0]]
    limit_note = _coverage_note(result)
    lines = [
        "## LongMemEval retrieval" + ("" if "runs_dir" not in result else
                                        f": {result['instances']} of {result['available']} instances"),
        "",
        provenance(command),
        *([_run_note(result), ""] if _run_note(result) else []),
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
        "Latencies are wall time on a shared machine, so they move between runs." + _cache_note(result),
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
