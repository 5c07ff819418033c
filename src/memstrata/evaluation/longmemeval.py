"""LongMemEval retrieval benchmark: load instances, run systems in one harness, score, report.

Conventions (the paper's, as in the dataset README): one index per instance built from its own haystack in time
order; official keys are user turns only, a turn's id is ``<session_id>_<k>`` with k its 1-based position among all
turns of the session; gold = user turns with ``has_answer``; session scores come from the turn ranking by growing
the cutoff until it holds k sessions; averages are over questions that are not ``_abs`` and have a gold user turn.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from memstrata.evaluation import metrics as M
from memstrata.evaluation.baselines import (
    CONTEXT_BUDGET,
    BM25Baseline,
    FlatBaseline,
    Outcome,
    Session,
    System,
    Turn,
)

SYSTEM_ORDER = ("flat", "bm25", "memstrata", "memstrata-infer")  # memstrata: infer=False; -infer: the default add
SEARCH_LIMIT = 50

TURN_KEYS = ("turn_recall_all@5", "turn_recall_all@10", "turn_ndcg@10", "turn_recall_any@5")
SESSION_KEYS = ("session_recall_all@5", "session_recall_all@10", "session_ndcg@10")
SCORE_KEYS = (*TURN_KEYS, *SESSION_KEYS, "context_evidence")

# ---------------------------------------------------------------------------------------------- data

_DATE = re.compile(
    r"^\s*(\d{4})/(\d{1,2})/(\d{1,2})(?:\s*\(\s*[A-Za-z]+\s*\))?(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?)?\s*$"
)


def parse_date(text: str) -> datetime:
    """Parse LongMemEval's ``'2023/05/20 (Sat) 02:21'`` (weekday and time optional) as a UTC datetime."""
    m = _DATE.match(text)
    if not m:
        raise ValueError(f"not a LongMemEval date: {text!r}")
    year, month, day, hour, minute, second = (int(g) if g else 0 for g in m.groups())
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@dataclass
class Instance:
    """One LongMemEval question with its haystack; sessions are kept in the file's order."""

    question_id: str
    question_type: str
    question: str
    question_date: datetime
    answer: Any
    answer_session_ids: list[str]
    sessions: list[Session]
    gold_turns: set[str] = field(default_factory=set)
    gold_sessions: set[str] = field(default_factory=set)
    session_of: dict[str, str] = field(default_factory=dict)
    user_turns: set[str] = field(default_factory=set)

    @property
    def abstention(self) -> bool:
        return self.question_id.endswith("_abs")

    @property
    def scorable(self) -> bool:
        """Not an abstention question and at least one gold user turn."""
        return not self.abstention and bool(self.gold_turns)

    def sessions_in_time_order(self) -> list[Session]:
        """Sessions by date; equal dates keep the file's order."""
        indexed = list(enumerate(self.sessions))
        indexed.sort(key=lambda p: (p[1].date or datetime.min.replace(tzinfo=UTC), p[0]))
        return [s for _, s in indexed]


def instance_from_json(row: dict[str, Any]) -> Instance:
    """Build an Instance (turn ids, gold turns and sessions) from one decoded jsonl row."""
    sessions: list[Session] = []
    gold: set[str] = set()
    session_of: dict[str, str] = {}
    user_turns: set[str] = set()
    for sid, date, raw in zip(
        row["haystack_session_ids"], row["haystack_dates"], row["haystack_sessions"], strict=True
    ):
        turns = []
        for k, t in enumerate(raw, start=1):
            tid = f"{sid}_{k}"
            turn = Turn(tid, t["role"], t.get("content") or "", bool(t.get("has_answer", False)))
            turns.append(turn)
            session_of[tid] = sid
            if turn.role == "user":
                user_turns.add(tid)
                if turn.has_answer:
                    gold.add(tid)
        sessions.append(Session(sid, parse_date(date), turns))
    return Instance(
        question_id=row["question_id"],
        question_type=row["question_type"],
        question=row["question"],
        question_date=parse_date(row["question_date"]),
        answer=row.get("answer"),
        answer_session_ids=list(row.get("answer_session_ids", [])),
        sessions=sessions,
        gold_turns=gold,
        gold_sessions={session_of[t] for t in gold},
        session_of=session_of,
        user_turns=user_turns,
    )


def iter_instances(path: str | Path, limit: int | None = None) -> Iterator[Instance]:
    """Stream instances from a LongMemEval ``.jsonl`` (one object a line) or ``.json`` (a list) file."""
    path = Path(path)
    if path.suffix == ".json":
        rows = json.loads(path.read_text(encoding="utf-8"))
        for i, row in enumerate(rows):
            if limit is not None and i >= limit:
                return
            yield instance_from_json(row)
        return
    with path.open(encoding="utf-8") as fh:
        n = 0
        for line in fh:
            if not line.strip():
                continue
            if limit is not None and n >= limit:
                return
            n += 1
            yield instance_from_json(json.loads(line))


def load_instances(path: str | Path, limit: int | None = None) -> list[Instance]:
    """All instances of a LongMemEval file (the first ``limit`` if given)."""
    return list(iter_instances(path, limit))


def count_instances(path: str | Path, limit: int | None = None) -> int:
    """Number of instances in a file without decoding them (for a progress bar)."""
    path = Path(path)
    if path.suffix == ".json":
        n = len(json.loads(path.read_text(encoding="utf-8")))
    else:
        with path.open(encoding="utf-8") as fh:
            n = sum(1 for line in fh if line.strip())
    return n if limit is None else min(n, limit)


# ---------------------------------------------------------------------------------------------- memstrata


class MemstrataSystem:
    """memstrata through its public API: one SQLite database and one user scope per history.

    Results are mapped back to turns through their ``episode_ids``, using the episode ids ``add`` returns
    in message order.
    """

    key = "memstrata"

    def __init__(
        self,
        embedder: Any,
        preset: str = "balanced",
        workdir: str | Path | None = None,
        roles: Sequence[str] = ("user", "assistant"),
        search_limit: int = SEARCH_LIMIT,
        infer: bool = False,
    ) -> None:
        from memstrata import Memory  # imported here so the baselines run without the full package

        self._memory_cls = Memory
        self.embedder = embedder
        self.preset = preset
        self.infer = infer
        self.key = "memstrata-infer" if infer else "memstrata"
        self.label = f"memstrata ({preset}, infer={'on' if infer else 'off'})"
        self.roles = tuple(roles)
        self.search_limit = search_limit
        self._own_dir = workdir is None
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="memstrata-bench-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._mem: Any = None
        self._db: Path | None = None
        self._user = ""
        self._turn_of: dict[str, str] = {}

    def begin(self, scope: str) -> None:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", scope)
        self._db = self.workdir / f"{safe}.db"
        _remove_db(self._db)
        self._mem = self._memory_cls(store=f"sqlite:///{self._db}", embedder=self.embedder, preset=self.preset)
        self._user = scope
        self._turn_of = {}

    def add_session(self, session: Session) -> tuple[float, int]:
        # The API refuses empty messages; positions still come from the turn ids, so skipping them is safe.
        turns = [t for t in session.turns if t.role in self.roles and t.content.strip()]
        if not turns:
            return 0.0, 0
        messages = []
        for t in turns:
            msg = {"role": t.role, "content": t.content}
            if t.name:
                msg["name"] = t.name
            messages.append(msg)
        start = time.perf_counter()
        r = self._mem.add(
            messages, user_id=self._user, conversation_id=session.session_id, timestamp=session.date,
            infer=self.infer,
        )
        elapsed = time.perf_counter() - start
        episodes = r.get("episodes", [])
        if len(episodes) != len(turns):
            raise RuntimeError(f"add returned {len(episodes)} episode ids for {len(turns)} messages")
        for ep, t in zip(episodes, turns, strict=True):
            self._turn_of[ep] = t.turn_id
        return elapsed, len(turns)

    def _turns(self, episode_ids: Sequence[str]) -> list[str]:
        return [self._turn_of[e] for e in episode_ids if e in self._turn_of]

    def query(self, question: str, now: datetime | None) -> Outcome:
        start = time.perf_counter()
        s = self._mem.search(question, user_id=self._user, limit=self.search_limit, now=now)
        cold_ms = (time.perf_counter() - start) * 1000.0
        results = s["results"]
        ranked = M.distinct(t for r in results for t in self._turns(r.get("episode_ids", [])))
        count = self.embedder.count_tokens
        top10 = sum(count(r["memory"]) for r in results[:10])
        c = self._mem.context(question, user_id=self._user, token_budget=CONTEXT_BUDGET, now=now)
        cited = {t for item in c["items"] for t in self._turns(item.get("episode_ids", []))}
        # The scored search above also loaded this scope's vectors from disk. Steady-state latency is timed on
        # the same search again; the trailing space misses the query-embedding cache but tokenizes identically,
        # so the timing still includes embedding the query.
        start = time.perf_counter()
        self._mem.search(question + " ", user_id=self._user, limit=self.search_limit, now=now)
        warm_ms = (time.perf_counter() - start) * 1000.0
        return Outcome([str(t) for t in ranked], warm_ms, top10, int(c["tokens"]), cited, cold_ms)

    def end(self) -> None:
        if self._mem is not None:
            self._mem.close()
            self._mem = None
        if self._db is not None:
            _remove_db(self._db)
            self._db = None

    def close(self) -> None:
        self.end()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _remove_db(db: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


def make_systems(
    names: Sequence[str],
    *,
    embedder: Any = None,
    preset: str = "balanced",
    workdir: str | Path | None = None,
    baseline_roles: Sequence[str] = ("user",),
    memstrata_roles: Sequence[str] = ("user", "assistant"),
) -> list[System]:
    """Instantiate the named systems (``memstrata``, ``flat``, ``bm25``) sharing one embedder, in table order."""
    from memstrata.providers.embedders import resolve_embedder

    emb = resolve_embedder(embedder)
    unknown = [n for n in names if n not in SYSTEM_ORDER]
    if unknown:
        raise ValueError(f"unknown system(s) {', '.join(unknown)}; choose from {', '.join(SYSTEM_ORDER)}")
    systems: list[System] = []
    for key in SYSTEM_ORDER:
        if key not in names:
            continue
        if key == "flat":
            systems.append(FlatBaseline(emb, baseline_roles))
        elif key == "bm25":
            systems.append(BM25Baseline(emb, baseline_roles))
        else:
            systems.append(MemstrataSystem(emb, preset, workdir, memstrata_roles, infer=key == "memstrata-infer"))
    return systems


def warm_up(embedder: Any) -> None:
    """Load the model before anything is timed."""
    if hasattr(embedder, "warm_up"):
        embedder.warm_up()
    embedder.embed(["warm up"])
    embedder.count_tokens("warm up")


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
    command = command or _command_line()
    if out_dir is not None:
        result["dump"] = str(dump_json(result, rows, out_dir, "longmemeval"))
    markdown = render_markdown(result, command)
    if echo:
        print(markdown)
    if write:
        write_section(results_path, "longmemeval", markdown)
    return result


def _running(rows: dict[str, list[dict[str, Any]]]) -> dict[str, str]:
    out = {}
    for key, rs in rows.items():
        vals = [r["turn_recall_all@10"] for r in rs if r["scorable"]]
        if vals:
            out[key] = f"{sum(vals) / len(vals):.2f}"
    return out


def dump_json(result: dict[str, Any], rows: dict[str, list[dict[str, Any]]], out_dir: str | Path, name: str) -> Path:
    """Write the summary and every per-question row to ``out_dir/<name>-<systems>.json`` for error analysis."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{name}-{'-'.join(result['systems'])}.json"
    target.write_text(json.dumps({**result, "questions": rows}, indent=1, default=_json_default), encoding="utf-8")
    return target


def _json_default(value: Any) -> Any:
    if isinstance(value, set):
        return sorted(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


# ---------------------------------------------------------------------------------------------- report


def machine() -> str:
    """Cores, CPU model, Python and OS, for the provenance line of a results section."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, {platform.platform()}"


def _command_line() -> str:
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else "python"
    path = Path(argv0)
    if path.parent.name == "evaluation" and path.parent.parent.name == "memstrata":
        prog = f"python -m memstrata.evaluation.{path.stem}"
    elif path.suffix == ".py":
        # Relative to the working directory when possible, so the line is reproducible from the repo root.
        try:
            prog = f"python {path.resolve().relative_to(Path.cwd())}"
        except ValueError:
            prog = f"python {argv0}"
    else:
        prog = path.name
    return " ".join([prog, *sys.argv[1:]])


def provenance(command: str) -> str:
    """The command / date / machine lines every results section starts with."""
    return (
        f"Command: `{command}`  \nDate: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  \nMachine: {machine()}\n"
    )


def fmt(value: float | None, digits: int = 2) -> str:
    """A number for a table cell; NaN or None as a dash."""
    if value is None or value != value:
        return "–"
    return f"{value:.{digits}f}"


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
        cells = [fmt(systems[k]["metrics"].get(key)) for k in keys]
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
        cells = []
        for k in keys:
            pt = systems[k]["per_type"].get(qt, {})
            cells.append(f"{fmt(pt.get('turn_recall_all@5'))} / {fmt(pt.get('turn_recall_all@10'))}")
        lines.append(f"| {qt} | {n} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        "Reference points (dataset README, same conventions, dev100): BM25 turn recall_all@5 0.47, @10 0.62; "
        "flat MiniLM 0.53 / 0.73, ndcg@10 0.64, session recall_all@5 0.69, @10 0.85; Mem0 OSS (infer=False, "
        "hybrid) turn recall_all@10 0.87, @5 0.69, ndcg@10 0.73, session @5 0.84, search p50 51 ms."
    )
    return "\n".join(lines) + "\n"


HEADER = "# Benchmark results\n\nEvery section says the command that produced it and the machine it ran on.\n"


def write_section(path: str | Path, name: str, body: str) -> None:
    """Replace the text between ``<!-- name:start -->`` and ``<!-- name:end -->`` in ``path`` (append if absent)."""
    path = Path(path)
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else HEADER
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


# ---------------------------------------------------------------------------------------------- CLI


def build_parser(default_path: str | None = None) -> argparse.ArgumentParser:
    """Arguments shared by ``bench/longmemeval.py`` and ``python -m memstrata.evaluation.longmemeval``."""
    p = argparse.ArgumentParser(description="LongMemEval retrieval benchmark (memstrata vs flat MiniLM vs BM25)")
    p.add_argument("path", nargs="?" if default_path else None, default=default_path, help="LongMemEval .jsonl")
    p.add_argument("--limit", type=int, default=None, help="only the first N instances")
    p.add_argument("--systems", default="memstrata,flat,bm25", help="comma-separated: memstrata,flat,bm25")
    p.add_argument("--preset", default="balanced", help="memstrata retrieval preset")
    p.add_argument("--embedder", default=None, help="'minilm' (default) or 'hash' (fast, meaningless)")
    p.add_argument("--workdir", default=None, help="folder for the per-instance databases (default: a tempdir)")
    p.add_argument("--baseline-roles", default="user", help="turn roles the baselines index (user or user,assistant)")
    p.add_argument("--memstrata-roles", default="user,assistant", help="turn roles added to memstrata")
    p.add_argument("--write", action="store_true", help="write the section of bench/RESULTS.md")
    p.add_argument("--results", default="bench/RESULTS.md", help="the results file --write updates")
    p.add_argument("--out", default="bench/out", help="folder for the per-question JSON dump")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None, **defaults: Any) -> dict[str, Any]:
    """Command-line entry point; ``defaults`` override the parser's (the bench script sets its paths)."""
    parser = build_parser(defaults.pop("path", None))
    parser.set_defaults(**defaults)
    a = parser.parse_args(argv)
    return run_longmemeval(
        a.path,
        systems=a.systems.split(","),
        limit=a.limit,
        preset=a.preset,
        workdir=a.workdir,
        embedder=a.embedder,
        baseline_roles=tuple(a.baseline_roles.split(",")),
        memstrata_roles=tuple(a.memstrata_roles.split(",")),
        write=a.write,
        results_path=a.results,
        out_dir=a.out,
        progress=not a.no_progress,
    )


if __name__ == "__main__":  # pragma: no cover
    main()
