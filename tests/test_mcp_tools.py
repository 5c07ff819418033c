"""The MCP tools a first-time user reaches for: every argument documented, REST's names (``messages``), the
whole memory lifecycle (get, update, delete, history, conflicts, resolve), and the documented HTTP example
working against ``memstrata serve --no-auth``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from memstrata import Memory
from memstrata.server import create_app
from test_mcp import _Server

LIFECYCLE = {"add_memory", "search_memories", "get_context", "list_memories", "get_memory", "update_memory",
             "delete_memory", "memory_history", "list_conflicts", "resolve_conflict"}


def _data(result: Any) -> Any:
    assert not result.is_error, result.content
    return result.structured_content or json.loads(result.content[0].text)


def _no_auth_app(m: Memory) -> Any:
    # What `memstrata serve --no-auth` builds: no keys, loopback Host names only.
    return create_app(m, auth=False, allowed_hosts=["127.0.0.1", "localhost"], rate_limit=None)


async def test_every_tool_argument_is_documented_and_add_takes_messages(tmp_path: Path) -> None:
    with Memory(f"sqlite:///{tmp_path}/m.db", embedder="hash") as m, _Server(_no_auth_app(m)) as base:
        async with Client(streamable_http_client(f"{base}/mcp")) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
    assert LIFECYCLE <= tools.keys()
    undocumented = [f"{name}.{arg}" for name, tool in tools.items()
                    for arg, spec in tool.input_schema.get("properties", {}).items() if not spec.get("description")]
    assert undocumented == []
    add = tools["add_memory"].input_schema
    assert "messages" in add["properties"] and "text" not in add["properties"]
    assert add["required"] == ["messages"]
    assert all(tool.description for tool in tools.values())


async def test_the_whole_lifecycle_under_no_auth_as_documented(tmp_path: Path) -> None:
    with Memory(f"sqlite:///{tmp_path}/m.db", embedder="hash") as m, _Server(_no_auth_app(m)) as base:
        # The example from docs/server.md, with no key: the server was started with --no-auth.
        async with httpx2.AsyncClient() as http, \
                Client(streamable_http_client(f"{base}/mcp", http_client=http)) as mcp:
            added = _data(await mcp.call_tool("add_memory", {
                "messages": [{"role": "user", "content": "I live in Berlin."}], "user_id": "alice",
                "timestamp": "2025-01-10T09:00:00Z"}))
            first = added["results"][0]["id"]
            _data(await mcp.call_tool("add_memory", {"messages": "I live in Lisbon.", "user_id": "alice"}))
            found = _data(await mcp.call_tool("search_memories", {"query": "where do I live?", "user_id": "alice"}))
            assert found["results"][0]["memory"] == "I live in Lisbon."

            got = _data(await mcp.call_tool("get_memory", {"memory_id": first, "user_id": "alice"}))
            assert got["memory"] == "I live in Berlin." and got["superseded_by"]
            (conflict,) = _data(await mcp.call_tool("list_conflicts", {"user_id": "alice", "status": "all"}))[
                "results"]
            resolved = _data(await mcp.call_tool("resolve_conflict", {
                "conflict_id": conflict["id"], "keep": "old", "user_id": "alice"}))
            assert resolved["resolution"] == "keep_old"
            updated = _data(await mcp.call_tool("update_memory", {
                "memory_id": first, "text": "I live in Berlin, Kreuzberg.", "user_id": "alice"}))
            assert updated["memory"] == "I live in Berlin, Kreuzberg."
            events = _data(await mcp.call_tool("memory_history", {"memory_id": first, "user_id": "alice"}))
            assert [e["event"] for e in events["results"]][0] == "ADD" and "UPDATE" in [
                e["event"] for e in events["results"]]
            gone = _data(await mcp.call_tool("delete_memory", {"memory_id": first, "user_id": "alice"}))
            assert gone["event"] == "DELETE"
            missing = await mcp.call_tool("get_memory", {"memory_id": first, "user_id": "alice"})
            assert missing.is_error and "NotFoundError" in missing.content[0].text
            no_scope = await mcp.call_tool("search_memories", {"query": "x"})
            assert no_scope.is_error and "user_id" in no_scope.content[0].text
