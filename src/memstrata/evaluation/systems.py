"""The systems a benchmark compares, in one harness: memstrata through its public API beside the in-process
baselines (flat MiniLM, BM25) of ``baselines``."""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from memstrata.evaluation import metrics as M
from memstrata.evaluation.baselines import CONTEXT_BUDGET, BM25Baseline, FlatBaseline, Outcome, Session, System

SYSTEM_ORDER = ("flat", "bm25", "memstrata", "memstrata-infer")  # memstrata: infer=False; -infer: the default add
SEARCH_LIMIT = 50


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
        cited = {t for item in [*c["items"], *c.get("standing", [])] for t in self._turns(item.get("episode_ids", []))}
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
