"""The Python API, REST and the CLI agree, and results say what happened: conflicts by status (``all``
included), conflicts the policy settled are marked resolved, search returns only rows that matched, and
``import --batch`` adds in batches."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from memstrata import Memory
from memstrata.cli import main
from memstrata.config import IngestConfig
from memstrata.server import create_app


def _moved(m: Memory) -> None:
    m.add("I live in Berlin.", user_id="a", timestamp="2025-01-10T09:00:00Z")
    # said without a change cue ("now", "moved"): the policy, not the speaker, decides it is a change
    m.add("I live in Lisbon.", user_id="a", timestamp="2026-03-01T09:00:00Z")


@pytest.fixture
def latest(tmp_path: Path) -> Iterator[Memory]:
    with Memory(f"sqlite:///{tmp_path}/m.db", embedder="hash") as m:
        yield m


def test_conflicts_status_all_is_accepted_like_rest(latest: Memory) -> None:
    _moved(latest)
    every = latest.conflicts(user_id="a", status="all")["results"]
    assert len(every) == 1
    assert every == latest.conflicts(user_id="a", status=None)["results"]
    with TestClient(create_app(latest, auth=False, mcp=False, ui=False), base_url="http://127.0.0.1") as client:
        rest = client.get("/v1/conflicts", params={"user_id": "a", "status": "all"}).json()["results"]
    assert [c["id"] for c in rest] == [c["id"] for c in every]


def test_a_conflict_the_policy_settled_is_resolved_and_can_still_be_overruled(latest: Memory) -> None:
    _moved(latest)
    assert latest.conflicts(user_id="a")["results"] == []  # nothing waits for a person
    (conflict,) = latest.conflicts(user_id="a", status="resolved")["results"]
    assert conflict["policy"] == "latest_wins" and conflict["resolution"] == "policy:keep_new"
    assert conflict["resolved_at"] is not None
    out = latest.resolve_conflict(conflict["id"], keep="old", user_id="a")  # a person overrules the policy
    assert out["resolution"] == "keep_old"
    current = [r["memory"] for r in latest.get_all(user_id="a")["results"]]
    assert current == ["I live in Berlin."]
    with pytest.raises(ValueError, match="already resolved"):
        latest.resolve_conflict(conflict["id"], keep="new", user_id="a")


@pytest.mark.parametrize(("policy", "status", "resolution"),
                         [("keep_both", "resolved", "policy:keep_both"), ("manual", "open", None)])
def test_conflict_status_follows_the_policy(tmp_path: Path, policy: str, status: str, resolution: str | None) -> None:
    with Memory(f"sqlite:///{tmp_path}/m.db", embedder="hash", ingest=IngestConfig(conflict_policy=policy)) as m:
        _moved(m)
        (conflict,) = m.conflicts(user_id="a", status="all")["results"]
        assert (conflict["status"], conflict["resolution"]) == (status, resolution)


def test_search_does_not_pad_with_rows_that_scored_zero(latest: Memory) -> None:
    for text in ("I live in Lisbon now.", "My dog is called Rex.", "I like jazz music.", "We repainted the shed."):
        latest.add(text, user_id="a", infer=False)
    results = latest.search("where do I live?", user_id="a", limit=10)["results"]
    assert results and all(r["score"] > 0 for r in results), results
    assert results[0]["memory"] == "I live in Lisbon now."


def test_import_batch_adds_many_memories_per_call(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/m.db"
    lines = [json.dumps({"memory": f"Fact number {i} about the garden", "valid_from": f"2025-01-{i + 1:02d}"})
             for i in range(10)]
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    run = CliRunner().invoke(main, ["--store", store, "--embedder", "hash", "--json", "import",
                                    str(tmp_path / "in.jsonl"), "--user", "u", "--batch", "4"])
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout)["imported"] == 10
    with Memory(store, embedder="hash") as m:
        episodes = m.episodes(user_id="u", limit=100)["results"]
        assert len(episodes) == 10
        # One add() per batch: its episodes share one arrival time; 10 items in batches of 4 → 3 calls.
        assert len({e["created_at"] for e in episodes}) == 3
        valid = sorted(r["valid_from"][:10] for r in m.get_all(user_id="u")["results"])
        assert valid == [f"2025-01-{i + 1:02d}" for i in range(10)]
    bad = CliRunner().invoke(main, ["--store", store, "import", str(tmp_path / "in.jsonl"), "--user", "u",
                                    "--batch", "0"])
    assert bad.exit_code != 0 and "batch" in bad.output


def test_scopes_newest_first_with_counts_on_every_store(mem: Memory) -> None:
    mem.add("I keep bees", user_id="alice", infer=False)
    mem.add("I like jazz", user_id="bob", agent_id="helper", infer=False)
    mem.add("I like jazz", user_id="bob", agent_id="helper", infer=False)  # a merge: two episodes, one memory
    mem.add("We ship on Friday", user_id="carol", org_id="acme", infer=False)
    rows = mem.scopes()["results"]
    assert [(r["org_id"], r["user_id"], r["agent_id"]) for r in rows] == [
        ("acme", "carol", None), ("default", "bob", "helper"), ("default", "alice", None)]
    assert (rows[1]["episodes"], rows[1]["memories"]) == (2, 1) and rows[1]["last_active_at"]
    assert [r["user_id"] for r in mem.scopes(org_id="default", limit=1)["results"]] == ["bob"]
    assert [r["user_id"] for r in mem.scopes(user_ids=["alice", "carol"])["results"]] == ["carol", "alice"]
    assert mem.scopes(agent_ids=["nobody"])["results"] == []
