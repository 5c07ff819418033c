"""The MCP server through the official SDK's own client: stdio (a real subprocess) and streamable HTTP (uvicorn)."""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
import uvicorn
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from memstrata import Memory
from memstrata.privacy.access import create_key
from memstrata.server import create_app

TOOLS = {"add_memory", "search_memories", "get_context", "list_memories", "delete_memory", "list_conflicts"}
# The CLI entry point with the server commands registered, whether or not cli.py registers them itself.
CLI = "from memstrata.cli import main; main()"


def _data(result: Any) -> Any:
    assert not result.is_error, result.content
    return result.structured_content or json.loads(result.content[0].text)


def _error(result: Any) -> str:
    assert result.is_error
    return result.content[0].text


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    url = f"sqlite:///{tmp_path}/m.db"
    with Memory(url, embedder="hash") as m:
        bob_memory = m.add("My sister Ana lives in Porto.", user_id="bob", infer=False)["results"][0]["id"]
        keys = {
            "bob_memory": bob_memory,
            "alice": create_key(m, None, "read,write", user_ids=["alice"])[0],
            "alice_read": create_key(m, None, "read", user_ids=["alice"])[0],
        }
    yield url, keys


async def _exercise(client: Client) -> None:
    """The same conversation over any transport, as a key bound to alice."""
    names = {t.name for t in (await client.list_tools()).tools}
    assert TOOLS <= names
    added = _data(await client.call_tool("add_memory", {"messages": "I moved to Lisbon. I love green tea."}))
    assert {r["event"] for r in added["results"]} == {"ADD"}
    found = _data(await client.call_tool("search_memories", {"query": "green tea", "limit": 3}))
    assert "green tea" in found["results"][0]["memory"] and found["results"][0]["user_id"] == "alice"
    ctx = _data(await client.call_tool("get_context", {"query": "where did I move", "token_budget": 100}))
    assert "Lisbon" in ctx["text"]
    page = _data(await client.call_tool("list_memories", {"limit": 10}))
    assert len([r for r in page["results"] if r["kind"] != "message"]) == 2  # two facts beside the message
    gone = _data(await client.call_tool("delete_memory", {"memory_id": page["results"][0]["id"]}))
    assert gone["event"] == "DELETE"
    assert _data(await client.call_tool("list_conflicts", {}))["results"] == []
    denied = _error(await client.call_tool("list_memories", {"user_id": "bob"}))
    assert "AccessDeniedError" in denied and "bob" in denied
    bad = _error(await client.call_tool("search_memories", {"query": "  "}))
    assert "query" in bad


async def test_stdio(store: tuple[str, dict[str, str]]) -> None:
    url, keys = store
    params = StdioServerParameters(
        command=sys.executable,
        args=["-c", CLI, "--store", url, "--embedder", "hash", "mcp"],
        # The child gets only a safe subset of the environment: hand it this checkout's import path.
        env={"MEMSTRATA_API_KEY": keys["alice"], "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    async with Client(params, read_timeout_seconds=30) as client:
        await _exercise(client)


class _Server:
    def __init__(self, app: Any) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    ws="none", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def http_server(store: tuple[str, dict[str, str]]) -> Iterator[tuple[str, dict[str, str]]]:
    url, keys = store
    with Memory(url, embedder="hash") as m, _Server(create_app(m)) as base:
        yield base, keys


async def test_streamable_http(http_server: tuple[str, dict[str, str]], store: tuple[str, dict[str, str]]) -> None:
    base, keys = http_server
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {keys['alice']}"}) as http:
        async with Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client:
            await _exercise(client)
            # bob's memory id, without a scope: the key bound to alice finds nothing and deletes nothing
            gone = _error(await client.call_tool("delete_memory", {"memory_id": keys["bob_memory"]}))
            assert "NotFoundError" in gone
    with Memory(store[0], embedder="hash") as m:
        assert m.get(keys["bob_memory"])["user_id"] == "bob"


async def test_http_read_key_cannot_add(http_server: tuple[str, dict[str, str]]) -> None:
    base, keys = http_server
    async with httpx2.AsyncClient(headers={"X-API-Key": keys["alice_read"]}) as http:
        async with Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client:
            assert "'write'" in _error(await client.call_tool("add_memory", {"messages": "I like tea"}))
            assert _data(await client.call_tool("list_memories", {}))["results"] == []


def test_http_without_key_is_401(http_server: tuple[str, dict[str, str]]) -> None:
    base, _ = http_server
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}}
    headers = {"Accept": "application/json, text/event-stream"}
    r = httpx.post(f"{base}/mcp", json=init, headers=headers)
    assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json")
    assert r.headers["x-request-id"]
    r = httpx.post(f"{base}/mcp", json=init, headers={**headers, "Authorization": "Bearer ms_wrong"})
    assert r.status_code == 401
