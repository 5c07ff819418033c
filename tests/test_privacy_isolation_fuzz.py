"""Isolation under random operations: no result ever carries another scope's id or text.

A Hypothesis state machine drives 24 scopes (orgs, users, agents, runs, and ids built to collide if the
scope key were ambiguous) through every public read and write, for over 10,000 steps on each backend
(SQLite, PostgreSQL), plain and encrypted. Each scope writes a marker word no other scope uses; every
answer is checked for foreign markers and foreign ids, and every id-based call aimed at another scope's
record must fail. Reads cover search (with its entity expansion), context, get, history, get_all,
episodes, entities and neighbours, working state and export; the in-process caches (query vectors,
short-term turns, working state, data keys) are shared by all scopes of one Memory. Now and then a user
is erased, which must take all of that user's scopes and nothing of anyone else's.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from memstrata import Memory, NotFoundError
from memstrata.models import DEFAULT_ORG, Scope
from memstrata.privacy.crypto import generate_master_key
from memstrata.privacy.gdpr import export_user, forget_user
from memstrata.secure import secure_memory
from memstrata.tiers.privacy import privacy_tier, subject_key
from privacy_backends import PRIVACY_BACKENDS, RawStore, raw_store

SCOPES: list[dict[str, str | None]] = [
    {"user_id": "alice"}, {"user_id": "bob"}, {"user_id": "alice", "agent_id": "planner"},
    {"user_id": "alice", "run_id": "r1"}, {"user_id": "alice", "agent_id": "planner", "run_id": "r1"},
    {"agent_id": "planner"}, {"run_id": "r1"}, {"agent_id": "alice"}, {"user_id": "alice", "org_id": "acme"},
    {"user_id": "bob", "org_id": "acme"}, {"agent_id": "planner", "org_id": "acme"},
    {"user_id": "5:alice"}, {"user_id": "a", "agent_id": "lice"}, {"user_id": "al", "agent_id": "ice"},
    {"user_id": "1:a"}, {"user_id": "-"}, {"user_id": "a|b"}, {"user_id": "a", "org_id": "b|"},
    {"user_id": "ünï", "agent_id": "☃"}, {"user_id": "ünï"}, {"user_id": "carol", "org_id": "7:default"},
    {"user_id": "carol"}, {"run_id": "r1", "org_id": "acme"}, {"user_id": "bob", "agent_id": "planner"},
]
MARKERS = [f"zq{i:02d}mark" for i in range(len(SCOPES))]
COMMON = ["coffee", "meeting", "lisbon", "garden", "piano", "budget", "friday", "sister"]
MIN_STEPS = 10_000
ERASE_EVERY = 250  # steps between two erasures in one run
KEY = generate_master_key()

scope_index = st.integers(0, len(SCOPES) - 1)
user_scope_index = st.sampled_from([i for i, s in enumerate(SCOPES) if s.get("user_id") is not None])
words = st.lists(st.sampled_from(COMMON), min_size=1, max_size=3)


def scope_of(i: int) -> dict[str, Any]:
    return {k: v for k, v in SCOPES[i].items() if v is not None}


def full_scope(i: int) -> dict[str, str | None]:
    s = SCOPES[i]
    return {"org_id": s.get("org_id") or DEFAULT_ORG, "user_id": s.get("user_id"), "agent_id": s.get("agent_id"),
            "run_id": s.get("run_id")}


def same_user(i: int) -> set[int]:
    """Every scope of scope ``i``'s user in its org (empty for a scope without a user)."""
    user, org = SCOPES[i].get("user_id"), full_scope(i)["org_id"]
    if user is None:
        return set()
    return {j for j, s in enumerate(SCOPES) if s.get("user_id") == user and full_scope(j)["org_id"] == org}


class Isolation(RuleBasedStateMachine):
    encrypted: ClassVar[bool] = False
    fresh_store: ClassVar[Callable[[], RawStore]]
    steps: ClassVar[int] = 0
    erasures: ClassVar[int] = 0

    def __init__(self) -> None:
        super().__init__()
        store = type(self).fresh_store()
        # SQLite: durability is not under test here; fsyncs would dominate the run time.
        fast: dict[str, Any] = {"synchronous": "OFF"} if store.backend == "sqlite" else {}
        if self.encrypted:
            m = secure_memory(store.url, master_key=KEY, embedder="hash", audit=False, store_options=fast)
            assert isinstance(m, Memory)
            self.mem = m
        else:
            self.mem = Memory(store.url, embedder="hash", **fast)
        # Ordered by creation, not by (random) id, so that a replayed example draws the same records.
        self.owned: list[dict[str, None]] = [{} for _ in SCOPES]
        self.owner: dict[str, int] = {}
        self.entity_owner: dict[str, int] = {}
        self.step = self.last_erasure = 0

    def teardown(self) -> None:
        self.mem.close()

    # -- checks ------------------------------------------------------------------------------------

    def clean(self, i: int, payload: Any, *, allowed: set[int] | None = None) -> None:
        """No marker of a scope outside ``allowed`` (default: just ``i``) anywhere in the answer."""
        ok = allowed or {i}
        text = json.dumps(payload, ensure_ascii=False, default=str)
        for j, marker in enumerate(MARKERS):
            assert j in ok or marker not in text, f"scope {i} saw scope {j}'s text: {text[:300]}"

    def mine(self, i: int, ids: list[str]) -> None:
        for mid in ids:
            owner = self.owner.setdefault(mid, i)
            assert owner == i, f"scope {i} got memory {mid} of scope {owner}"

    def scoped(self, i: int, rows: list[dict[str, Any]]) -> None:
        want = full_scope(i)
        for row in rows:
            assert {k: row.get(k) for k in want} == want, (i, row)

    def foreign(self, i: int, data: st.DataObject) -> str | None:
        others = [mid for j, ids in enumerate(self.owned) if j != i for mid in ids]
        return data.draw(st.sampled_from(others)) if others else None

    # -- writes ------------------------------------------------------------------------------------

    @initialize()
    def seed(self) -> None:
        for i in range(len(SCOPES)):
            self.add(i, ["coffee"], False, 1)

    @rule(i=scope_index, ws=words, conv=st.booleans(), infer=st.integers(0, 14))
    def add(self, i: int, ws: list[str], conv: bool, infer: int) -> None:
        marker = MARKERS[i]
        if infer == 0:  # the rules extractor now and then, for entities, edges and slots
            text = f"My sister {marker.capitalize()} moved to Lisbon and loves {ws[0]}."
        else:
            text = f"{marker} {' '.join(ws)}"
        r = self.mem.add(text, infer=infer == 0, conversation_id="c" if conv else None, **scope_of(i))
        self.clean(i, r)
        ids = [x["id"] for x in r["results"] if x["event"] != "DELETE"]
        self.mine(i, ids)
        self.owned[i].update(dict.fromkeys(ids))

    @rule(i=scope_index, data=st.data(), ws=words)
    def update(self, i: int, data: st.DataObject, ws: list[str]) -> None:
        if self.owned[i]:
            mid = data.draw(st.sampled_from(list(self.owned[i])))
            self.clean(i, self.mem.update(mid, text=f"{MARKERS[i]} {' '.join(ws)} edited", **scope_of(i)))
        victim = self.foreign(i, data)
        if victim is not None:
            with pytest.raises(NotFoundError):
                self.mem.update(victim, text=f"{MARKERS[i]} hijack", **scope_of(i))

    @rule(i=scope_index, data=st.data())
    def delete(self, i: int, data: st.DataObject) -> None:
        victim = self.foreign(i, data)
        if victim is not None:
            with pytest.raises(NotFoundError):
                self.mem.delete(victim, **scope_of(i))
            owner = self.owner[victim]
            assert self.mem.get(victim, **scope_of(owner))["id"] == victim
        if self.owned[i] and data.draw(st.integers(0, 3)) == 0:
            mid = data.draw(st.sampled_from(list(self.owned[i])))
            self.clean(i, self.mem.delete(mid, **scope_of(i)))
            del self.owned[i][mid]

    @precondition(lambda self: self.step - self.last_erasure >= ERASE_EVERY)  # it compacts the store: slow
    @rule(i=user_scope_index)
    def forget(self, i: int) -> None:
        """Erase scope ``i``'s user: all their scopes go, no row of anyone else does."""
        gone = same_user(i)
        user, org = SCOPES[i]["user_id"] or "", full_scope(i)["org_id"] or DEFAULT_ORG
        before = [self.mem.stats(**scope_of(j)) for j in range(len(SCOPES))]
        receipt = forget_user(self.mem, user, org_id=org)
        self.clean(i, receipt, allowed=gone)
        assert {json.dumps(s, sort_keys=True) for s in receipt["scopes"]} <= {
            json.dumps(full_scope(j), sort_keys=True) for j in gone}
        for j in range(len(SCOPES)):
            after = self.mem.stats(**scope_of(j))
            if j in gone:
                assert after["memories"] == after["episodes"] == after["history"] == after["entities"] == 0, j
                # Nothing comes back through search, the short-term turns or the query cache either.
                left = self.mem.context(f"coffee {MARKERS[j]}", conversation_id="c", **scope_of(j))
                assert MARKERS[j] not in json.dumps(left, ensure_ascii=False), j
                for mid in list(self.owned[j])[:3]:
                    with pytest.raises(NotFoundError):
                        self.mem.get(mid, **scope_of(j))
                self.owned[j].clear()
            else:
                counts = ("memories", "episodes", "history", "entities", "edges", "conflicts")
                assert {k: after[k] for k in counts} == {k: before[j][k] for k in counts}, (i, j)
        key = privacy_tier(self.mem.store).get_data_key(subject_key(Scope(org, user)))
        assert (key is not None and key.destroyed) if self.encrypted else key is None
        Isolation.erasures += 1
        self.last_erasure = self.step

    # -- reads -------------------------------------------------------------------------------------

    @rule(i=scope_index, ws=words, lure=scope_index)
    def search(self, i: int, ws: list[str], lure: int) -> None:
        r = self.mem.search(f"{' '.join(ws)} {MARKERS[lure]}", limit=20, **scope_of(i))
        self.clean(i, r)
        self.mine(i, [x["id"] for x in r["results"]])
        self.scoped(i, r["results"])

    @rule(i=scope_index, ws=words, lure=scope_index)
    def context(self, i: int, ws: list[str], lure: int) -> None:
        r = self.mem.context(f"{' '.join(ws)} {MARKERS[lure]}", conversation_id="c", **scope_of(i))
        self.clean(i, r)
        self.mine(i, [x["id"] for x in r["items"]])

    @rule(i=scope_index)
    def working_state(self, i: int) -> None:
        self.clean(i, asdict(self.mem.working_state("c", **scope_of(i))))

    @rule(i=scope_index, data=st.data())
    def get_and_history(self, i: int, data: st.DataObject) -> None:
        if self.owned[i]:
            mid = data.draw(st.sampled_from(list(self.owned[i])))
            self.clean(i, self.mem.get(mid, **scope_of(i)))
            self.clean(i, self.mem.history(mid, **scope_of(i)))
        victim = self.foreign(i, data)
        if victim is not None:
            for call in (self.mem.get, self.mem.history):
                with pytest.raises(NotFoundError):
                    call(victim, **scope_of(i))

    @rule(i=scope_index, superseded=st.booleans())
    def get_all(self, i: int, superseded: bool) -> None:
        r = self.mem.get_all(limit=1000, include_superseded=superseded, **scope_of(i))
        self.clean(i, r)
        self.mine(i, [x["id"] for x in r["results"]])
        self.scoped(i, r["results"])
        if not superseded:
            assert {x["id"] for x in r["results"]} <= self.owned[i].keys()

    @rule(i=scope_index, ws=words, lure=scope_index, by_query=st.booleans())
    def episodes(self, i: int, ws: list[str], lure: int, by_query: bool) -> None:
        query = f"{' '.join(ws)} {MARKERS[lure]}" if by_query else None
        r = self.mem.episodes(query=query, limit=200, **scope_of(i))
        self.clean(i, r)
        self.scoped(i, r["results"])

    @rule(i=scope_index, data=st.data())
    def entities_and_neighbours(self, i: int, data: st.DataObject) -> None:
        r = self.mem.entities(limit=1000, **scope_of(i))
        self.clean(i, r)
        for e in r["results"]:
            assert self.entity_owner.setdefault(e["id"], i) == i
        if r["results"]:
            node = data.draw(st.sampled_from(r["results"]))
            n = self.mem.neighbours(node["name"], depth=2, **scope_of(i))
            self.clean(i, n)
            self.mine(i, n["memories"])
            for e in n["neighbours"]:
                assert self.entity_owner.setdefault(e["id"], i) == i

    @precondition(lambda self: self.step % 3 == 0)  # the slowest read: offered one step in three
    @rule(i=user_scope_index)
    def export(self, i: int) -> None:
        allowed = same_user(i)
        data = export_user(self.mem, SCOPES[i]["user_id"] or "", org_id=full_scope(i)["org_id"])
        self.clean(i, data, allowed=allowed)
        for block in data["scopes"]:
            self.mine(next(j for j in allowed if full_scope(j) == block["scope"]),
                      [m["id"] for m in block["memories"]])

    @invariant()
    def scope_counts_add_up(self) -> None:
        Isolation.steps += 1  # invariants run after every step
        self.step += 1
        if self.step % 10:
            return  # counting the whole store each step would cost more than the step
        total = self.mem.stats()["memories"]
        assert total >= sum(len(ids) for ids in self.owned)


@pytest.mark.parametrize("backend", PRIVACY_BACKENDS)
@pytest.mark.parametrize("mode", ["plain", "encrypted"])
def test_no_operation_crosses_scopes(request: pytest.FixtureRequest, tmp_path: Path, backend: str,
                                     mode: str) -> None:
    runs = itertools.count()

    def fresh_store() -> RawStore:  # one empty store per Hypothesis example
        folder = tmp_path / f"run{next(runs)}"
        folder.mkdir()
        return raw_store(request, folder, backend)

    machine = type(f"{mode.capitalize()}{backend.capitalize()}Isolation", (Isolation,),
                   {"encrypted": mode == "encrypted", "fresh_store": staticmethod(fresh_store)})
    Isolation.steps = Isolation.erasures = 0
    run_state_machine_as_test(machine, settings=settings(
        max_examples=MIN_STEPS // 230, stateful_step_count=400, deadline=None, derandomize=True, database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], print_blob=False,
    ))
    assert Isolation.steps >= MIN_STEPS, f"only {Isolation.steps} steps"
    assert Isolation.erasures >= 5, f"only {Isolation.erasures} erasures"
    assert len({json.dumps(full_scope(i), sort_keys=True) for i in range(len(SCOPES))}) == len(SCOPES) >= 20
