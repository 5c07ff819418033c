"""Isolation under random operations: no result ever carries another scope's id or text.

A Hypothesis state machine drives 24 scopes (orgs, users, agents, runs, and ids built to collide if the
scope key were ambiguous) through every public read and write, plain and encrypted, for over 10,000
steps in all. Each scope writes a marker word no other scope uses; every answer is checked for foreign
markers and foreign ids, and every id-based call aimed at another scope's record must fail.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from memstrata import Memory, NotFoundError
from memstrata.models import DEFAULT_ORG
from memstrata.privacy.crypto import generate_master_key
from memstrata.privacy.gdpr import export_user
from memstrata.secure import secure_memory

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
STEPS = {"plain": 6000, "encrypted": 4200}
KEY = generate_master_key()

scope_index = st.integers(0, len(SCOPES) - 1)
words = st.lists(st.sampled_from(COMMON), min_size=1, max_size=3)


def scope_of(i: int) -> dict[str, str]:
    return {k: v for k, v in SCOPES[i].items() if v is not None}


def full_scope(i: int) -> dict[str, str | None]:
    s = SCOPES[i]
    return {"org_id": s.get("org_id") or DEFAULT_ORG, "user_id": s.get("user_id"), "agent_id": s.get("agent_id"),
            "run_id": s.get("run_id")}


class Isolation(RuleBasedStateMachine):
    encrypted: ClassVar[bool] = False
    steps: ClassVar[int] = 0

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="memstrata-fuzz-")
        url = f"sqlite:///{self.dir}/m.db"
        fast = {"synchronous": "OFF"}  # durability is not under test here; fsyncs would dominate the run time
        if self.encrypted:
            m = secure_memory(url, master_key=KEY, embedder="hash", audit=False, store_options=fast)
            assert isinstance(m, Memory)
            self.mem = m
        else:
            self.mem = Memory(url, embedder="hash", **fast)
        self.owned: list[set[str]] = [set() for _ in SCOPES]
        self.owner: dict[str, int] = {}
        self.entity_owner: dict[str, int] = {}

    def teardown(self) -> None:
        self.mem.close()
        shutil.rmtree(self.dir, ignore_errors=True)

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
        others = sorted(mid for j, ids in enumerate(self.owned) if j != i for mid in ids)
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
        self.owned[i].update(ids)

    @rule(i=scope_index, data=st.data(), ws=words)
    def update(self, i: int, data: st.DataObject, ws: list[str]) -> None:
        if self.owned[i]:
            mid = data.draw(st.sampled_from(sorted(self.owned[i])))
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
            mid = data.draw(st.sampled_from(sorted(self.owned[i])))
            self.clean(i, self.mem.delete(mid, **scope_of(i)))
            self.owned[i].discard(mid)

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

    @rule(i=scope_index, data=st.data())
    def get_and_history(self, i: int, data: st.DataObject) -> None:
        if self.owned[i]:
            mid = data.draw(st.sampled_from(sorted(self.owned[i])))
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
            assert {x["id"] for x in r["results"]} <= self.owned[i]

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

    @rule(i=scope_index)
    def export(self, i: int) -> None:
        user = SCOPES[i].get("user_id")
        if user is None:
            return
        org = full_scope(i)["org_id"]
        same_user = {j for j, s in enumerate(SCOPES) if s.get("user_id") == user and full_scope(j)["org_id"] == org}
        data = export_user(self.mem, user, org_id=org)
        self.clean(i, data, allowed=same_user)
        for block in data["scopes"]:
            self.mine(next(j for j in same_user if full_scope(j) == block["scope"]),
                      [m["id"] for m in block["memories"]])

    @invariant()
    def scope_counts_add_up(self) -> None:
        Isolation.steps += 1  # invariants run after every step
        total = self.mem.stats()["memories"]
        assert total >= sum(len(ids) for ids in self.owned)


def _run(encrypted: bool, steps: int) -> None:
    machine = type("EncryptedIsolation" if encrypted else "PlainIsolation", (Isolation,), {"encrypted": encrypted})
    Isolation.steps = 0
    run_state_machine_as_test(machine, settings=settings(
        max_examples=steps // 120, stateful_step_count=150, deadline=None, derandomize=True, database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], print_blob=False,
    ))
    assert Isolation.steps >= steps, f"only {Isolation.steps} steps"


@pytest.mark.parametrize("mode", ["plain", "encrypted"])
def test_no_operation_crosses_scopes(mode: str) -> None:
    _run(mode == "encrypted", STEPS[mode])
