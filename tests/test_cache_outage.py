"""Redis as the short-term cache goes down: writes that reached the store are acknowledged once, never failed
after the fact (a failed add invites a retry, and a retry would store the message twice)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from memstrata import HashEmbedder, Memory
from memstrata.server import create_app
from test_backends_redis import RedisServer


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer().start()  # our own server on a free port: stopping it disturbs nobody
    yield server
    server.stop()


def test_add_with_a_conversation_survives_a_redis_outage(
    own_redis: RedisServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Memory(f"sqlite:///{tmp_path / 'm.db'}", embedder=HashEmbedder(), cache=own_redis.url) as m:
        m.add("I like green tea", user_id="u", conversation_id="c")
        own_redis.shutdown()
        with caplog.at_level(logging.WARNING, logger="memstrata.memory"):
            out = m.add("My sister Anna lives in Porto", user_id="u", conversation_id="c")
        assert [r["event"] for r in out["results"]] == ["ADD"]
        assert out["warnings"] and "short-term" in out["warnings"][0]
        assert any("Redis" in r.getMessage() for r in caplog.records)
        # Exactly one copy of the message and one memory; the episode was processed, not left pending.
        episodes = m.episodes(user_id="u", conversation_id="c")["results"]
        assert [e["content"] for e in episodes].count("My sister Anna lives in Porto") == 1
        assert all(e["extraction_status"] != "pending" for e in episodes), episodes
        texts = [r["memory"] for r in m.get_all(user_id="u")["results"]]
        assert texts.count("My sister Anna lives in Porto") == 1
        # A client that retries anyway gets a merge, not a second memory.
        again = m.add("My sister Anna lives in Porto", user_id="u", conversation_id="c")
        assert [r["event"] for r in again["results"]] == ["MERGE"]
        assert len(m.get_all(user_id="u")["results"]) == 2
        # Reads that want the conversation's recent turns fall back to the stored episodes.
        ctx = m.context("where does Anna live?", user_id="u", conversation_id="c")
        assert "My sister Anna lives in Porto" in [t["content"] for t in ctx["short_term"]]
        assert m.search("Anna", user_id="u", conversation_id="c")["results"]


def test_rest_add_is_201_once_while_redis_is_down(own_redis: RedisServer, tmp_path: Path) -> None:
    with Memory(f"sqlite:///{tmp_path / 'm.db'}", embedder=HashEmbedder(), cache=own_redis.url) as m:
        own_redis.shutdown()
        app = create_app(m, auth=False, rate_limit=None, mcp=False, ui=False)
        with TestClient(app, base_url="http://127.0.0.1") as client:
            r = client.post("/v1/memories", json={"messages": "I moved to Lisbon", "user_id": "u",
                                                  "conversation_id": "c"})
            assert r.status_code == 201, r.text
            assert r.json()["results"][0]["event"] == "ADD"
            listed = client.get("/v1/memories", params={"user_id": "u"}).json()["results"]
            assert [x["memory"] for x in listed] == ["I moved to Lisbon"]
