"""LongMemEval instances: reading the dataset's JSON (a .json array or .jsonl) into sessions of turns in time
order, with the paper's turn ids (``<session_id>_<k>``, k the 1-based position in the session) and gold turns."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from memstrata.evaluation.baselines import Session, Turn

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
