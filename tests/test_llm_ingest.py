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
        assert [x["memory"] for x in r["results"]] == ["The user lives in Lisbon"]
        rec = m.get(r["results"][0]["id"], user_id="u")
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
        assert [x["memory"] for x in m.get_all(user_id="u")["results"]] == ["The user lives in Lisbon"]
        assert m.episodes(user_id="u")["results"][0]["extraction_status"] == "done"


def test_a_bad_key_is_not_marked_retryable(tmp_path, server: FakeLLMServer) -> None:  # type: ignore[no-untyped-def]
    server.push(Reply.status(401, '{"error": {"message": "bad key"}}'))
    with _memory(tmp_path, server) as m:
        r = m.add("I like rowing.", user_id="u")
        assert r["failed"]["retryable"] is False
        assert m.episodes(user_id="u")["results"][0]["extraction_status"] == "failed"
