"""The working state over REST (``/v1/conversations/{id}/working``) and MCP: read, pin a goal, close a task,
pin the topic, constraints; problem+json errors; the key's scope binding applies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from mcp import Client

from memstrata import Memory
from memstrata.mcp import build_mcp_server
from memstrata.privacy.access import Principal, create_key
from memstrata.server import create_app

T0 = 1_709_542_800
BASE = "/v1/conversations/c1/working"


@pytest.fixture
def mem(tmp_path: Path) -> Iterator[Memory]:
    m = Memory(f"sqlite:///{tmp_path}/m.db", embedder="hash")
    m.add([{"role": "user", "content": "Let's plan the Alpha launch. I need to book the venue."}],
          user_id="alice", conversation_id="c1", timestamp=T0)
    yield m
    m.close()


@pytest.fixture
def keys(mem: Memory) -> dict[str, str]:
    return {
        "alice": create_key(mem, None, "read,write", user_ids=["alice"])[0],
        "alice_read": create_key(mem, None, "read", user_ids=["alice"])[0],
        "bob": create_key(mem, None, "read,write", user_ids=["bob"])[0],
    }


@pytest.fixture
def client(mem: Memory) -> Iterator[TestClient]:
    with TestClient(create_app(mem, rate_limit=None, mcp=False), base_url="http://127.0.0.1") as c:
        yield c


def h(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def problem(r: Any, status: int, field: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    if field is not None:
        assert body.get("field") == field, body
    return body


def test_read_and_set_over_rest(client: TestClient, mem: Memory, keys: dict[str, str]) -> None:
    r = client.get(BASE, headers=h(keys["alice"]))
    assert r.status_code == 200, r.text
    state = r.json()
    assert [g["text"] for g in state["goals"]] == ["plan the Alpha launch"]
    task = state["tasks"][0]
    assert task["text"] == "book the venue" and task["status"] == "open" and task["opened_at"] == T0

    r = client.post(f"{BASE}/items", headers=h(keys["alice"]), json={"kind": "goal", "text": "Keep costs flat"})
    assert r.status_code == 201, r.text
    pinned = next(g for g in r.json()["goals"] if g["text"] == "Keep costs flat")
    assert pinned["pinned"] and pinned["by"] == "agent" and pinned["opened_at"] == T0  # the conversation's time

    r = client.patch(f"{BASE}/items/{task['id']}", headers=h(keys["alice"]), json={"status": "done"})
    assert r.status_code == 200 and r.json()["tasks"][0]["status"] == "done"

    r = client.put(f"{BASE}/topic", headers=h(keys["alice"]), json={"topic": "launch logistics"})
    assert r.json()["topic"] == "launch logistics" and r.json()["topic_pinned"] is True
    r = client.post(f"{BASE}/constraints", headers=h(keys["alice"]), json={"text": "no weekend dates"})
    assert r.status_code == 201
    cid = r.json()["constraints"][0]["id"]
    r = client.delete(f"{BASE}/constraints/{cid}", headers=h(keys["alice"]))
    assert r.status_code == 200 and r.json()["constraints"] == []

    # The edits are part of the conversation: a fresh process rebuilds them.
    mem.working.clear(mem._scope("alice", None, None, None))
    assert client.get(BASE, headers=h(keys["alice"])).json() == r.json()


def test_errors_are_problems(client: TestClient, keys: dict[str, str]) -> None:
    problem(client.patch(f"{BASE}/items/t-nope", headers=h(keys["alice"]), json={"status": "done"}), 404)
    problem(client.patch(f"{BASE}/items/t-nope", headers=h(keys["alice"]), json={"status": "finished"}), 422)
    problem(client.patch(f"{BASE}/items/t-nope", headers=h(keys["alice"]), json={}), 422, "status")
    problem(client.post(f"{BASE}/items", headers=h(keys["alice"]), json={"kind": "goal", "text": "  "}), 422, "text")
    problem(client.post(f"{BASE}/items", headers=h(keys["alice"]), json={"kind": "wish", "text": "x"}), 422)
    problem(client.post(f"{BASE}/items", headers=h(keys["alice"]),
                        json={"kind": "goal", "text": "x", "timestamp": T0 - 5}), 422, "timestamp")
    problem(client.delete(f"{BASE}/constraints/c-nope", headers=h(keys["alice"])), 404)
    problem(client.get("/v1/conversations/bad%20id%0A/working", headers=h(keys["alice"])), 422, "conversation_id")


def test_auth_scoping(client: TestClient, keys: dict[str, str]) -> None:
    problem(client.get(BASE), 401)
    problem(client.get(BASE, params={"user_id": "alice"}, headers=h(keys["bob"])), 403)
    # bob's own conversation c1 is a different one: empty, and alice's goals never leak into it
    assert client.get(BASE, headers=h(keys["bob"])).json()["goals"] == []
    problem(client.post(f"{BASE}/items", headers=h(keys["alice_read"]), json={"kind": "goal", "text": "x"}), 403)
    problem(client.post(f"{BASE}/items", headers=h(keys["bob"]),
                        json={"kind": "goal", "text": "x", "user_id": "alice"}), 403)


async def test_mcp_tools(mem: Memory) -> None:
    alice = Principal(key_id=None, name="alice", org_id=None, scopes=frozenset({"read", "write"}),
                      user_ids=frozenset({"alice"}), agent_ids=None)
    async with Client(build_mcp_server(mem, lambda _ctx: alice)) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"get_working_state", "update_working_state"} <= names

        async def call(name: str, args: dict[str, Any]) -> Any:
            result = await client.call_tool(name, args)
            assert not result.is_error, result.content
            return result.structured_content or json.loads(result.content[0].text)

        state = await call("get_working_state", {"conversation_id": "c1"})
        task_id = state["tasks"][0]["id"]
        state = await call("update_working_state", {"conversation_id": "c1", "op": "update_item",
                                                    "item_id": task_id, "status": "dropped"})
        assert state["tasks"][0]["status"] == "dropped"
        state = await call("update_working_state", {"conversation_id": "c1", "op": "add_item", "kind": "goal",
                                                    "text": "Ship the beta"})
        assert [g["text"] for g in state["goals"]] == ["plan the Alpha launch", "Ship the beta"]
        bad = await client.call_tool("update_working_state", {"conversation_id": "c1", "op": "explode"})
        assert bad.is_error and "op" in bad.content[0].text
        denied = await client.call_tool("get_working_state", {"conversation_id": "c1", "user_id": "bob"})
        assert denied.is_error and "AccessDeniedError" in denied.content[0].text
