"""LoCoMo retrieval benchmark: dialog-level evidence recall@k per question category.

LoCoMo's file is a JSON list of samples; each has ``conversation`` (``speaker_a``, ``speaker_b``, ``session_N`` lists
of ``{speaker, dia_id, text}`` and ``session_N_date_time`` strings such as ``'1:56 pm on 8 May, 2023'``) and ``qa``
(``question``, ``answer``, ``evidence`` dia ids like ``"D1:3"``, ``category``). Each conversation gets its own
index; both speakers' turns go in as user-role messages carrying the speaker's name.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from memstrata.evaluation import metrics as M
from memstrata.evaluation.baselines import CONTEXT_BUDGET, Session, Turn
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

K = 10
# The usual reading of LoCoMo's category numbers (as in the Mem0 and LoCoMo evaluation code).
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}
# Dialog-level evidence recall@10 (%) reported for other systems; their protocols may differ from this harness.
REFERENCE = {"flat MiniLM": 46.6, "BM25": 52.8, "Mem0 OSS hybrid": 64.5, "DRAGON": 66.2}

_MONTHS = {
    m: i
    for i, names in enumerate(
        [("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"), ("may",), ("jun", "june"),
         ("jul", "july"), ("aug", "august"), ("sep", "sept", "september"), ("oct", "october"),
         ("nov", "november"), ("dec", "december")],
        start=1,
    )
    for m in names
}
_DATE = re.compile(
    r"^\s*(\d{1,2}):(\d{2})\s*([ap])\.?\s*m\.?\s+on\s+(\d{1,2})\s+([A-Za-z]+)\.?,?\s+(\d{4})\s*$", re.IGNORECASE
)
_DIA = re.compile(r"D\d+:\d+")
_SESSION = re.compile(r"^session_(\d+)$")


def parse_locomo_date(text: str) -> datetime:
    """Parse ``'1:56 pm on 8 May, 2023'`` as a UTC datetime."""
    m = _DATE.match(text)
    if not m or m.group(5).lower() not in _MONTHS:
        raise ValueError(f"not a LoCoMo date: {text!r}")
    hour, minute = int(m.group(1)) % 12, int(m.group(2))
    if m.group(3).lower() == "p":
        hour += 12
    return datetime(int(m.group(6)), _MONTHS[m.group(5).lower()], int(m.group(4)), hour, minute, tzinfo=UTC)


@dataclass
class LocomoQuestion:
    """A question with its evidence dia ids (only those present in the conversation)."""

    question: str
    answer: Any
    category: int
    evidence: list[str]
    raw_evidence: list[str] = field(default_factory=list)

    @property
    def scorable(self) -> bool:
        return bool(self.evidence)


@dataclass
class Conversation:
    """One LoCoMo sample: sessions in order and its questions."""

    sample_id: str
    speaker_a: str
    speaker_b: str
    sessions: list[Session]
    questions: list[LocomoQuestion]

    @property
    def last_date(self) -> datetime | None:
        dates = [s.date for s in self.sessions if s.date is not None]
        return max(dates) if dates else None


def _turn_text(turn: dict[str, Any]) -> str:
    text = str(turn.get("text") or "")
    caption = turn.get("blip_caption")
    # Image turns are often only a caption; keeping it gives the text something to match.
    return f"{text} [shares an image: {caption}]" if caption else text


def conversation_from_json(sample: dict[str, Any], index: int = 0) -> Conversation:
    """Build a Conversation from one decoded LoCoMo sample."""
    conv = sample["conversation"]
    numbered = sorted(
        (int(m.group(1)), key) for key in conv if (m := _SESSION.match(key)) and isinstance(conv[key], list)
    )
    sessions: list[Session] = []
    known: set[str] = set()
    for n, key in numbered:
        raw_date = conv.get(f"{key}_date_time")
        date = parse_locomo_date(raw_date) if raw_date else None
        turns = []
        for t in conv[key]:
            dia = str(t["dia_id"]).strip()
            turns.append(Turn(dia, "user", _turn_text(t), name=t.get("speaker")))
            known.add(dia)
        sessions.append(Session(f"session_{n}", date, turns))
    questions = []
    for qa in sample.get("qa", []):
        raw = [str(e) for e in qa.get("evidence", [])]
        # Some evidence entries hold several ids ("D8:6; D9:17") or stray spaces; ids absent from the chat are dropped.
        ids = [d for e in raw for d in _DIA.findall(e.replace(" ", ""))]
        evidence = [d for d in M.distinct(ids) if d in known]
        answer = qa.get("answer", qa.get("adversarial_answer"))
        questions.append(LocomoQuestion(str(qa["question"]), answer, int(qa.get("category", 0)), evidence, raw))
    return Conversation(
        str(sample.get("sample_id", f"sample-{index}")),
        str(conv.get("speaker_a", "")),
        str(conv.get("speaker_b", "")),
        sessions,
        questions,
    )


def load_locomo(path: str | Path, limit: int | None = None) -> list[Conversation]:
    """All conversations of a LoCoMo JSON file (the first ``limit`` if given)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if isinstance(data, dict):
        data = [data]
    samples = data if limit is None else data[:limit]
    return [conversation_from_json(s, i) for i, s in enumerate(samples)]


def run_locomo(
    path: str | Path,
    systems: Sequence[str] = ("memstrata", "flat", "bm25"),
    limit: int | None = None,
    preset: str = "balanced",
    *,
    k: int = K,
    exclude_categories: Sequence[int] = (5,),
    workdir: str | Path | None = None,
    embedder: Any = None,
    embed_cache: str | Path | None = None,
    write: bool = False,
    results_path: str | Path = "bench/RESULTS.md",
    out_dir: str | Path | None = "bench/out",
    command: str | None = None,
    progress: bool = True,
    echo: bool = True,
) -> dict[str, Any]:
    """Dialog-level evidence recall@k (share of a question's evidence turns in the top k) per category.

    ``overall`` leaves out ``exclude_categories`` (adversarial questions by default); per-category rows show all.
    """
    from tqdm import tqdm

    from memstrata.providers.embedders import resolve_embedder

    names = [s.strip() for s in (systems.split(",") if isinstance(systems, str) else systems) if s.strip()]
    emb = wrap(resolve_embedder(embedder), embed_cache)
    warm_up(emb)
    convs = load_locomo(path, limit)
    # Both speakers are user-role messages here, so every system indexes every turn.
    runners = make_systems(
        names, embedder=emb, preset=preset, workdir=workdir, baseline_roles=("user",), memstrata_roles=("user",)
    )
    rows: dict[str, list[dict[str, Any]]] = {s.key: [] for s in runners}
    add_msg: dict[str, list[float]] = {s.key: [] for s in runners}
    started = time.perf_counter()
    total = sum(sum(q.scorable for q in c.questions) for c in convs)
    bar = tqdm(total=total * len(runners), desc="LoCoMo", unit="q", disable=not progress, file=sys.stderr)
    try:
        for conv in convs:
            now = conv.last_date
            for system in runners:
                system.begin(conv.sample_id)
                try:
                    for session in conv.sessions:
                        seconds, n = system.add_session(session)
                        if n:
                            add_msg[system.key].append(seconds * 1000.0 / n)
                    for qi, q in enumerate(conv.questions):
                        if not q.scorable:
                            continue
                        with live(emb, [q.question, q.question + " "]):  # timed: embedded for real
                            out = system.query(q.question, now)
                        rows[system.key].append(
                            {
                                "sample_id": conv.sample_id,
                                "question_index": qi,
                                "question": q.question,
                                "category": q.category,
                                "evidence": q.evidence,
                                f"recall@{k}": M.recall_fraction_at_k(out.ranked, q.evidence, k),
                                f"recall_all@{k}": M.recall_all_at_k(out.ranked, q.evidence, k),
                                "context_evidence": 1.0 if set(q.evidence) <= out.context_turns else 0.0,
                                "search_ms": round(out.search_ms, 3),
                                "top10_tokens": out.top10_tokens,
                                "ranked": out.ranked[:20],
                            }
                        )
                        bar.update(1)
                finally:
                    system.end()
    finally:
        bar.close()
        for system in runners:
            system.close()
    result: dict[str, Any] = {
        "benchmark": "LoCoMo",
        "path": str(path),
        "dataset": Path(path).name,
        "limit": limit,
        "preset": preset,
        "k": k,
        "exclude_categories": list(exclude_categories),
        "embedder": getattr(emb, "name", type(emb).__name__),
        "seconds": round(time.perf_counter() - started, 1),
        "systems": {},
    }
    if (cache := stats(emb)) is not None:
        result["embed_cache"] = cache
    close(emb)
    for system in runners:
        rs = rows[system.key]
        kept = [r for r in rs if r["category"] not in exclude_categories]
        measures = [f"recall@{k}", f"recall_all@{k}", "context_evidence"]
        per_cat = M.aggregate(rs, measures, group_by="category")
        per_cat.pop("all", None)
        search = [r["search_ms"] for r in rs]
        result["systems"][system.key] = {
            "label": system.label,
            "overall": M.aggregate(kept, measures, group_by="category").get("all", {}),
            "all_categories": M.aggregate(rs, measures, group_by="category").get("all", {}),
            "per_category": per_cat,
            "questions": len(rs),
            "latency_ms": {
                "search_p50": M.percentile(search, 50),
                "search_p95": M.percentile(search, 95),
                "add_per_message_p50": M.percentile(add_msg[system.key], 50),
            },
            "top10_tokens_mean": M.mean([r["top10_tokens"] for r in rs]),
        }
    command = command or command_line()
    return publish(result, rows, "locomo", render_markdown, command, out_dir=out_dir, echo=echo, write=write,
                   results_path=results_path)


def render_markdown(result: dict[str, Any], command: str) -> str:
    """The LoCoMo results section: provenance, overall and per-category recall, reference numbers."""
    systems = result["systems"]
    keys = [key for key in SYSTEM_ORDER if key in systems]
    k = result["k"]
    excluded = ", ".join(f"{c} ({CATEGORIES.get(c, '?')})" for c in result["exclude_categories"]) or "none"
    lines = [
        "## LoCoMo retrieval",
        "",
        provenance(command),
        f"Data: `{result['dataset']}`. Embedder: {result['embedder']}. One index per conversation; both speakers' "
        "turns added as user-role messages with the speaker's name, sessions in order with their dates; questions "
        f"asked at the last session's date. Measure: dialog-level evidence recall@{k} = share of a question's "
        f"evidence dia ids among the top {k} turns (memstrata results mapped to turns through provenance), "
        f"in %, averaged over questions whose evidence is in the conversation; context: the share of questions whose "
        f"evidence turns are all cited by a {CONTEXT_BUDGET:,}-token `context()` (the baselines pack their ranked "
        f"turns into the same budget). Overall leaves out category {excluded}.",
        "",
        "| measure | " + " | ".join(systems[key]["label"] for key in keys) + " |",
        "|---|" + "---|" * len(keys),
    ]

    def pct(v: float | None) -> str:
        return fmt(None if v is None else 100.0 * v, 1)

    def row(title: str, values: list[float | None]) -> None:
        cells = flag_below_flat([pct(v) for v in values], values, keys)
        lines.append(f"| {title} | " + " | ".join(cells) + " |")

    row(f"evidence recall@{k}, overall", [systems[x]["overall"].get(f"recall@{k}") for x in keys])
    if result["exclude_categories"]:  # the dataset's own convention quotes every category as well
        row(f"evidence recall@{k}, all categories",
            [systems[x].get("all_categories", {}).get(f"recall@{k}") for x in keys])
    row(f"all evidence in top {k}, overall", [systems[x]["overall"].get(f"recall_all@{k}") for x in keys])
    row(f"all evidence inside a {CONTEXT_BUDGET:,}-token context, overall",
        [systems[x]["overall"].get("context_evidence") for x in keys])
    cats = sorted({c for x in keys for c in systems[x]["per_category"]}, key=lambda c: int(c))
    for cat in cats:
        n = int(systems[keys[0]]["per_category"].get(cat, {}).get("n", 0))
        name = CATEGORIES.get(int(cat), "?")
        row(f"recall@{k}, category {cat} ({name}, n={n})",
            [systems[x]["per_category"].get(cat, {}).get(f"recall@{k}") for x in keys])
    cells = [
        f"{fmt(systems[x]['latency_ms']['search_p50'], 1)} / {fmt(systems[x]['latency_ms']['search_p95'], 1)}"
        for x in keys
    ]
    lines.append("| search p50 / p95 ms | " + " | ".join(cells) + " |")
    lines.append(
        "| mean tokens of the top-10 results | " + " | ".join(fmt(systems[x]["top10_tokens_mean"], 0) for x in keys)
        + " |"
    )
    refs = ", ".join(f"{name} {value}" for name, value in REFERENCE.items())
    if note := below_flat_note(keys):
        lines += ["", note]
    lines += ["", f"Reference dialog-level recall@10 (%) reported elsewhere (protocols may differ): {refs}."]
    return "\n".join(lines) + "\n"
