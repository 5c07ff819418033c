"""The llm extraction mode through Memory.add, against a local server that speaks the OpenAI protocol."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fake_llm_server import FakeLLMServer, Reply
from memstrata import IngestConfig, Memory
from memstrata.ingest.llm_extract import LLMExtractor
from memstrata.providers.llm import OpenAICompatibleClient

ANSWER = {
    "memories": [
        {"text": "The user lives in Lisbon", "importance": 0.9, "reasons": ["first_person_fact"], "kind": "fact",
         "source_indexes": [0], "entities": [{"text": "Lisbon", "canonical": "Lisbon", "label": "PLACE"}],
         "relations": [{"subject": "user", "relation": "lives_in", "object": "Lisbon"}],
         "slot": {"subject": "user", "attribute": "lives_in", "value": "Lisbon"}, "event_time": None,
         "confidence": 0.9},
    ]
}


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as srv:
        yield srv


def _memory(tmp_path, server: FakeLLMServer) -> Memory:  # type: ignore[no-untyped-def]
    client = OpenAICompatibleClient(server.url, api_key="sk-test", model="test-model", max_retries=1, backoff=0.01,
                                    timeout=2.0)
    return Memory(f"sqlite:///{tmp_path / 'm.db'}", embedder="hash", ingest=IngestConfig(mode="llm"),
                  extractor=LLMExtractor(client))


def test_llm_mode_stores_what_the_model_extracted(tmp_path, server: FakeLLMServer) -> None:  # type: ignore[no-untyped-def]
    server.push(Reply.json(ANSWER))
    with _memory(tmp_path, server) as m:
        r = m.add("I've been living in Lisbon since spring.", user_id="u")
        facts = [x for x in r["results"] if x["kind"] != "message"]
        assert [x["memory"] for x in facts] == ["The user lives in Lisbon"]
        assert [x["memory"] for x in r["results"] if x["kind"] == "message"] == [
            "I've been living in Lisbon since spring."]  # the message itself stays findable as evidence
        rec = m.get(facts[0]["id"], user_id="u")
        assert rec["entities"] == ["Lisbon"] and rec["episode_ids"] == r["episodes"]
        assert [e["name"] for e in m.entities(user_id="u")["results"]][:1] == ["Lisbon"]


def test_a_failed_extraction_is_recorded_and_retried_later(tmp_path, server: FakeLLMServer) -> None:  # type: ignore[no-untyped-def]
    server.push(*[Reply.text("this is not json {")] * 2)  # the first ask and its one re-ask
    with _memory(tmp_path, server) as m:
        r = m.add("I've been living in Lisbon since spring.", user_id="u")
        assert r["results"] == [] and r["failed"]["retryable"] is True
        (episode,) = m.episodes(user_id="u")["results"]
        assert episode["extraction_status"] == "failed" and episode["extraction_error"]
        assert episode["content"] == "I've been living in Lisbon since spring."  # nothing lost
        server.push(Reply.json(ANSWER))
        out = m.retry_failed(user_id="u")
        assert out["retried"] == 1 and out["still_failed"] == 0
        assert sorted(x["memory"] for x in m.get_all(user_id="u")["results"]) == [
            "I've been living in Lisbon since spring.", "The user lives in Lisbon"]
        assert m.episodes(user_id="u")["results"][0]["extraction_status"] == "done"


def test_a_bad_key_is_not_marked_retryable(tmp_path, server: FakeLLMServer) -> None:  # type: ignore[no-untyped-def]
    server.push(Reply.status(401, '{"error": {"message": "bad key"}}'))
    with _memory(tmp_path, server) as m:
        r = m.add("I like rowing.", user_id="u")
        assert r["failed"]["retryable"] is False
        assert m.episodes(user_id="u")["results"][0]["extraction_status"] == "failed"


def _fact(text: str, action: str = "ADD", targets: list[str] | None = None, explicit: bool | None = None) -> dict:
    item = {"text": text, "importance": 0.8, "kind": "fact", "source_indexes": [0], "action": action,
            "targets": targets or []}
    if explicit is not None:
        item["explicit"] = explicit
    return {"memories": [item]}


def test_one_call_sees_the_nearest_facts_and_says_what_it_replaces(tmp_path, server: FakeLLMServer) -> None:  # type: ignore[no-untyped-def]
    server.push(Reply.json(_fact("The user works at Deloitte")),
                Reply.json(_fact("The user works at KPMG", "SUPERSEDE", ["k1"], explicit=False)),
                Reply.json(_fact("The user works at KPMG", "NOOP", ["k1"])))
    with _memory(tmp_path, server) as m:
        old = next(x for x in m.add("I work at Deloitte.", user_id="u", timestamp="2025-05-01T00:00:00Z")["results"]
                   if x["kind"] != "message")
        r = m.add("I work at KPMG.", user_id="u", timestamp="2026-01-10T00:00:00Z")
        prompt = server.requests[-1].body["messages"][-1]["content"]
        assert "Known memories:" in prompt and "[k1] The user works at Deloitte" in prompt
        assert len(server.requests) == 2  # one call per add, neighbours included
        new = next(x for x in r["results"] if x["event"] == "ADD" and x["kind"] != "message")
        assert new["supersedes"] == [old["id"]] and new["conflicts"]  # not said as a change: a conflict too
        gone = m.get(old["id"], user_id="u")
        assert gone["superseded_by"] == new["id"] and gone["valid_to"].startswith("2026-01-10")
        assert r["messages"][0]["outcome"] == "superseded" and r["messages"][0]["reason"] == "implicit_update"
        again = m.add("Yes, KPMG.", user_id="u", timestamp="2026-01-11T00:00:00Z")
        assert [x["event"] for x in again["results"] if x["kind"] != "message"] == ["MERGE"]
        assert m.get(new["id"], user_id="u")["mention_count"] == 2


def test_refs_the_model_was_not_shown_are_ignored(tmp_path, server: FakeLLMServer) -> None:  # type: ignore[no-untyped-def]
    server.push(Reply.json(_fact("The user likes tea", "SUPERSEDE", ["k7", "not-a-ref"])))
    with _memory(tmp_path, server) as m:
        r = m.add("I like tea.", user_id="u")
        fact = next(x for x in r["results"] if x["kind"] != "message")
        assert fact["event"] == "ADD" and "supersedes" not in fact
