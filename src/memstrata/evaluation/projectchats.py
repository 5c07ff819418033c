"""Long project chats: one user and a coding assistant over several sessions (bench/data/project_chats.json).

The assistant's replies are long and full of code; the user's standing instructions, preferences and facts are
short asides inside messages about something else. Each question lists the user turns that hold its answer.
The chats are one user's projects, so they share one index (their sessions merged in date order: a question about
one project competes with the others'); every system indexes both roles (the flat baseline embeds each whole
message); questions are asked at the latest ``question_date``. The set is small (about 160 turns), so the scores
are recall_all@k (every evidence turn in the top k turns) at k = 1, 3, 5, per question type.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from memstrata.evaluation import metrics as M
from memstrata.evaluation.baselines import Session, Turn
from memstrata.evaluation.embed_cache import close, live, stats, wrap
from memstrata.evaluation.report import (
    below_flat_note,
    command_line,
    flag_below_flat,
    fmt,
    provenance,
    publish,
)
from memstrata.evaluation.systems import SYSTEM_ORDER, make_systems, warm_up

KEYS = ("recall_all@1", "recall_all@3", "recall_all@5")
ROLES = ("user", "assistant")


@dataclass
class Chat:
    chat_id: str
    sessions: list[Session]
    questions: list[dict[str, Any]]
    question_date: datetime


def load_chats(path: str | Path) -> list[Chat]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    chats = []
    for c in data["chats"]:
        sessions = [
            Session(s["id"], datetime.fromisoformat(s["date"]),
                    [Turn(t["id"], t["role"], t["content"]) for t in s["turns"]])
            for s in c["sessions"]
        ]
        chats.append(Chat(c["id"], sessions, c["questions"], datetime.fromisoformat(c["question_date"])))
    return chats


def run_projectchats(
    path: str | Path,
    systems: Sequence[str] = ("memstrata", "flat", "bm25"),
    preset: str = "balanced",
    *,
    embedder: Any = None,
    embed_cache: str | Path | None = None,
    write: bool = False,
    results_path: str | Path = "bench/RESULTS.md",
    out_dir: str | Path | None = "bench/out",
    command: str | None = None,
    echo: bool = True,
) -> dict[str, Any]:
    """Score every named system on every chat of ``path``; ``write`` replaces the results file's section."""
    from memstrata.providers.embedders import resolve_embedder

    names = [s.strip() for s in systems if s.strip()]
    emb = wrap(resolve_embedder(embedder), embed_cache)
    warm_up(emb)
    chats = load_chats(path)
    history = sorted((s for c in chats for s in c.sessions), key=lambda s: s.date or datetime.min)
    asked_at = max(c.question_date for c in chats)
    questions = [q for c in chats for q in c.questions]
    runners = make_systems(names, embedder=emb, preset=preset, baseline_roles=ROLES, memstrata_roles=ROLES)
    rows: dict[str, list[dict[str, Any]]] = {s.key: [] for s in runners}
    started = time.perf_counter()
    try:
        for system in runners:
            system.begin("project-chats")
            try:
                for session in history:
                    system.add_session(session)
                for q in questions:
                    with live(emb, [q["question"], q["question"] + " "]):  # timed: embedded for real
                        out = system.query(q["question"], asked_at)
                    gold = list(q["evidence"])
                    rows[system.key].append({
                        "question": q["question"], "type": q["type"], "evidence": gold,
                        **{key: M.recall_all_at_k(out.ranked, gold, int(key.split("@")[1])) for key in KEYS},
                        "search_ms": round(out.search_ms, 3), "ranked": out.ranked[:10],
                    })
            finally:
                system.end()
            print(f"project chats: {system.key} done", file=sys.stderr)
    finally:
        for system in runners:
            system.close()
    result: dict[str, Any] = {
        "benchmark": "project chats", "dataset": Path(path).name, "preset": preset,
        "embedder": getattr(emb, "name", type(emb).__name__), "seconds": round(time.perf_counter() - started, 1),
        "systems": {},
    }
    if (cache := stats(emb)) is not None:
        result["embed_cache"] = cache
    close(emb)
    for system in runners:
        rs = rows[system.key]
        agg = M.aggregate(rs, list(KEYS), group_by="type")
        search = [r["search_ms"] for r in rs]
        result["systems"][system.key] = {
            "label": system.label, "overall": agg.get("all", {}),
            "per_type": {k: v for k, v in agg.items() if k != "all"},
            "search_p50": M.percentile(search, 50), "search_p95": M.percentile(search, 95),
        }
    return publish(result, rows, "projectchats", render_markdown, command or command_line(), out_dir=out_dir,
                   echo=echo, write=write, results_path=results_path)


def render_markdown(result: dict[str, Any], command: str) -> str:
    systems = result["systems"]
    keys = [k for k in SYSTEM_ORDER if k in systems]
    lines = [
        "## Long project chats (own dev set)",
        "",
        provenance(command),
        f"Data: `{result['dataset']}` (bench/data, written for this project). Embedder: {result['embedder']}. "
        "Every system indexes user and assistant turns; flat = cosine over each whole message. Evidence is the "
        "user turns holding the answer; recall_all@k = every evidence turn in the top k. The three chats share one "
        "index (one user's projects), sessions in date order.",
        "",
        "| question type | n | " + " | ".join(systems[k]["label"] for k in keys) + " |",
        "|---|---|" + "---|" * len(keys),
    ]
    groups = [("all", systems[keys[0]]["overall"])] + sorted(systems[keys[0]]["per_type"].items())
    for name, agg in groups:
        per = [systems[k]["overall"] if name == "all" else systems[k]["per_type"].get(name, {}) for k in keys]
        at = [flag_below_flat([fmt(p.get(key)) for p in per], [p.get(key) for p in per], keys) for key in KEYS]
        cells = [" / ".join(col) for col in zip(*at, strict=True)]
        lines.append(f"| {name} (recall_all@1 / @3 / @5) | {int(agg.get('n', 0))} | " + " | ".join(cells) + " |")
    cells = [f"{fmt(systems[k]['search_p50'], 1)} / {fmt(systems[k]['search_p95'], 1)}" for k in keys]
    lines.append("| search p50 / p95 ms | – | " + " | ".join(cells) + " |")
    if note := below_flat_note(keys):
        lines += ["", note]
    return "\n".join(lines) + "\n"
