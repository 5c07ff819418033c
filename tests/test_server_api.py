"""The REST API end to end through its ASGI app: every endpoint, auth, bindings, pagination, bad input."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from memstrata import Memory
from memstrata.privacy.access import create_key, revoke_key
from memstrata.server import RateLimit, create_app

PROBLEM = "application/problem+json"


@pytest.fixture
def mem(tmp_path: Path) -> Iterator[Memory]:
    m = Memory(f"sqlite:///{tmp_path}/m.db", embedder="hash")
    yield m
    m.close()


@pytest.fixture
def keys(mem: Memory) -> dict[str, str]:
    return {
        "admin": create_key(mem, None, "admin")[0],
        "alice": create_key(mem, None, "read,write", user_ids=["alice"])[0],
        "alice_read": create_key(mem, None, "read", user_ids=["alice"])[0],
        "bob": create_key(mem, None, "read,write", user_ids=["bob"])[0],
        "org_b": create_key(mem, "org-b", "admin")[0],
    }


@pytest.fixture
def client(mem: Memory) -> Iterator[TestClient]:
    with TestClient(create_app(mem, rate_limit=None), base_url="http://127.0.0.1") as c:
        yield c


def h(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def assert_problem(r, status: int, field: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.headers["x-request-id"]
    body = r.json()
    assert body["status"] == status and body["detail"] and body["title"]
    if field is not None:
        assert body.get("field") == field, body
    return body


def test_operational_endpoints_need_no_key(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json() == {"status": "ready"}
    assert client.get("/metrics").status_code == 200
    assert client.get("/openapi.json").json()["info"]["title"] == "memstrata"


def test_auth_failures(client: TestClient, mem: Memory, keys: dict[str, str]) -> None:
    body = assert_problem(client.post("/v1/memories/search", json={"query": "x", "user_id": "a"}), 401)
    assert "API key" in body["detail"]
    assert client.get("/v1/me").headers["www-authenticate"].startswith("Bearer")
    assert_problem(client.get("/v1/me", headers=h("ms_not-a-key")), 401)
    assert_problem(client.get("/v1/me", headers={"Authorization": "Basic abc"}), 401)
    key, info = create_key(mem, None, "read")
    assert client.get("/v1/me", headers={"X-API-Key": key}).json()["key_id"] == info.id
    revoke_key(mem, info.id)
    assert "revoked" in assert_problem(client.get("/v1/me", headers={"X-API-Key": key}), 401)["detail"]


def test_memory_lifecycle(client: TestClient, keys: dict[str, str]) -> None:
    alice = h(keys["alice"])
    r = client.post("/v1/memories", headers=alice, json={
        "messages": [{"role": "user", "content": "I moved to Lisbon last month. I love green tea."}],
        "conversation_id": "c1", "metadata": {"source": "chat"},
    })
    assert r.status_code == 201, r.text
    added = r.json()
    assert len(added["episodes"]) == 1 and {x["event"] for x in added["results"]} == {"ADD"}
    tea = next(x["id"] for x in added["results"] if "tea" in x["memory"])

    found = client.post("/v1/memories/search", headers=alice, json={"query": "green tea", "explain": True}).json()
    assert found["results"][0]["id"] == tea and "stages" in found["results"][0]
    ctx = client.post("/v1/memories/context", headers=alice, json={"query": "tea", "token_budget": 200}).json()
    assert "green tea" in ctx["text"] and ctx["tokens"] <= 200

    item = client.get(f"/v1/memories/{tea}", headers=alice).json()
    assert item["user_id"] == "alice" and item["metadata"] == {"source": "chat"}
    upd = client.patch(f"/v1/memories/{tea}", headers=alice, json={"text": "I love jasmine tea."})
    assert upd.json()["event"] == "UPDATE"
    history = client.get(f"/v1/memories/{tea}/history", headers=alice).json()
    assert [e["event"] for e in history] == ["ADD", "UPDATE"]
    assert client.delete(f"/v1/memories/{tea}", headers=alice).json()["event"] == "DELETE"
    assert_problem(client.get(f"/v1/memories/{tea}", headers=alice), 404)
    assert client.get(f"/v1/memories/{tea}/history", headers=alice).json()[-1]["event"] == "DELETE"

    assert_problem(client.delete("/v1/memories", headers=alice), 422, "user_id")
    wiped = client.delete("/v1/memories", headers=alice, params={"user_id": "alice"}).json()
    assert wiped["deleted"]["memories"] >= 1
    assert client.get("/v1/memories", headers=alice).json()["results"] == []


def test_read_key_cannot_write(client: TestClient, keys: dict[str, str]) -> None:
    body = assert_problem(client.post("/v1/memories", headers=h(keys["alice_read"]), json={"messages": "hi"}), 403)
    assert "'write'" in body["detail"]
    assert client.get("/v1/memories", headers=h(keys["alice_read"])).status_code == 200


def test_binding_to_alice_cannot_read_bob(client: TestClient, keys: dict[str, str]) -> None:
    bob_id = client.post("/v1/memories", headers=h(keys["bob"]),
                         json={"messages": "My PIN is 1234", "infer": False}).json()["results"][0]["id"]
    alice = h(keys["alice"])
    assert "bob" in assert_problem(client.get("/v1/memories", headers=alice, params={"user_id": "bob"}), 403)["detail"]
    assert_problem(client.get(f"/v1/memories/{bob_id}", headers=alice, params={"user_id": "bob"}), 403)
    assert_problem(client.get(f"/v1/memories/{bob_id}", headers=alice), 404)  # alice's scope holds no such id
    assert_problem(client.post("/v1/memories/search", headers=alice, json={"query": "PIN", "user_id": "bob"}), 403)
    assert_problem(client.delete(f"/v1/memories/{bob_id}", headers=alice, params={"user_id": "bob"}), 403)
    assert_problem(client.get("/v1/memories", headers=h(keys["org_b"]), params={"user_id": "bob",
                                                                                 "org_id": "default"}), 403)
    assert client.get(f"/v1/memories/{bob_id}", headers=h(keys["admin"]), params={"user_id": "bob"}).status_code == 200


def test_pagination(client: TestClient, keys: dict[str, str]) -> None:
    alice = h(keys["alice"])
    texts = [f"note number {i}" for i in range(7)]
    for t in texts:
        client.post("/v1/memories", headers=alice, json={"messages": t, "infer": False})
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/memories", headers=alice, params=params).json()
        seen += [x["memory"] for x in page["results"]]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == texts and pages == 3
    assert_problem(client.get("/v1/memories", headers=alice, params={"cursor": "garbage!"}), 422, "cursor")
    assert_problem(client.get("/v1/memories", headers=alice, params={"limit": 0}), 422, "limit")
    assert_problem(client.get("/v1/memories", headers=alice, params={"limit": "many"}), 422, "limit")


def test_episodes_conflicts_entities_stats(client: TestClient, keys: dict[str, str]) -> None:
    alice = h(keys["alice"])
    client.post("/v1/memories", headers=alice, json={"messages": "John works on the Alpha project with Maria."})
    client.post("/v1/memories", headers=alice, json={"messages": "I live in Berlin.", "timestamp": "2025-01-10"})
    client.post("/v1/memories", headers=alice, json={"messages": "I live in Lisbon.", "timestamp": 1772355600})

    eps = client.get("/v1/episodes", headers=alice).json()["results"]
    assert len(eps) == 3
    ranged = client.get("/v1/episodes", headers=alice, params={"start": "2025-01-01", "end": "2025-12-31"}).json()
    assert [e["content"] for e in ranged["results"]] == ["I live in Berlin."]
    hits = client.get("/v1/episodes", headers=alice, params={"query": "Alpha"}).json()["results"]
    assert hits[0]["content"].startswith("John") and "score" in hits[0]

    assert client.get("/v1/conflicts", headers=alice).json()["results"] == []  # settled by the policy
    (conflict,) = client.get("/v1/conflicts", headers=alice, params={"status": "resolved"}).json()["results"]
    assert (conflict["old_value"], conflict["new_value"]) == ("berlin", "lisbon")
    assert conflict["resolution"] == "policy:keep_new"
    assert_problem(client.post(f"/v1/conflicts/{conflict['id']}/resolve", headers=h(keys["alice_read"]),
                               json={"keep": "old"}), 403)
    resolved = client.post(f"/v1/conflicts/{conflict['id']}/resolve", headers=alice, json={"keep": "old"}).json()
    assert resolved["status"] == "resolved" and resolved["resolution"] == "keep_old"
    assert client.get("/v1/conflicts", headers=alice).json()["results"] == []
    assert len(client.get("/v1/conflicts", headers=alice, params={"status": "all"}).json()["results"]) == 1
    assert_problem(client.post("/v1/conflicts/nope/resolve", headers=alice, json={}), 404)

    names = [e["name"] for e in client.get("/v1/entities", headers=alice).json()["results"]]
    assert "John" in names
    hood = client.get("/v1/entities/neighbourhood", headers=alice, params={"entity": "john"}).json()
    assert hood["entity"]["name"] == "John" and hood["neighbours"][0]["relation"] == "works_on"
    assert_problem(client.get("/v1/entities/neighbourhood", headers=alice, params={"entity": "Nobody"}), 404)
    assert_problem(client.get("/v1/entities/neighbourhood", headers=alice, params={"entity": "John", "depth": 9}),
                   422, "depth")

    assert client.get("/v1/stats", headers=alice).json()["memories"] >= 3
    assert_problem(client.get("/v1/stats", headers=h(keys["org_b"])), 403)
    me = client.get("/v1/me", headers=alice).json()
    assert me["user_ids"] == ["alice"] and me["scopes"] == ["read", "write"] and me["auth"] is True


def test_privacy_endpoints_exist_or_say_501(client: TestClient, mem: Memory, keys: dict[str, str]) -> None:
    admin = h(keys["admin"])
    for method, path, name in [
        ("GET", "/v1/users/alice/export", "export_user"),
        ("POST", "/v1/users/alice/forget", "forget_user"),
        ("GET", "/v1/audit", "audit_log"),
        ("GET", "/v1/audit/verify", "verify_audit"),
    ]:
        r = client.request(method, path, headers=admin)
        if callable(getattr(mem, name, None)):
            assert r.status_code == 200, r.text
        else:
            assert "not available" in assert_problem(r, 501)["detail"]
    assert client.get("/v1/audit").status_code == 401


@pytest.mark.parametrize(
    ("path", "payload", "status", "field"),
    [
        ("/v1/memories/search", {"query": "x", "limit": "ten"}, 422, "limit"),
        ("/v1/memories/search", {"query": 42}, 422, "query"),
        ("/v1/memories/search", {"limit": 3}, 422, "query"),
        ("/v1/memories/search", {"query": "   "}, 422, "query"),
        ("/v1/memories/search", {"query": "x", "limit": 10**30}, 422, "limit"),
        ("/v1/memories/search", {"query": "x", "surprise": 1}, 422, "surprise"),
        ("/v1/memories/search", {"query": "x", "user_id": "a\u0000b"}, 422, "user_id"),
        ("/v1/memories/search", {"query": "x", "filters": {"created_at": {"bogus": 1}}}, 422, None),
        ("/v1/memories", {"messages": 42}, 422, None),
        ("/v1/memories", {"messages": []}, 422, "messages"),
        ("/v1/memories", {"messages": [{"role": "robot", "content": "x"}]}, 422, "messages[0].role"),
        ("/v1/memories", {"messages": "x", "metadata": [1]}, 422, "metadata"),
        ("/v1/memories", {"messages": "x", "timestamp": "yesterday-ish"}, 422, "timestamp"),
        ("/v1/memories", {"messages": "x", "infer": "yes"}, 422, "infer"),
        ("/v1/memories", [1, 2], 422, None),
        ("/v1/memories/context", {"query": "x", "token_budget": -1}, 422, "token_budget"),
    ],
)
def test_bad_input_is_a_problem_naming_the_field(
    client: TestClient, keys: dict[str, str], path: str, payload: object, status: int, field: str | None
) -> None:
    assert_problem(client.post(path, headers=h(keys["alice"]), json=payload), status, field)


def test_bad_bodies_never_500(client: TestClient, keys: dict[str, str]) -> None:
    alice = {**h(keys["alice"]), "Content-Type": "application/json"}
    assert_problem(client.post("/v1/memories", headers=alice, content=b'{"messages": '), 400, "body")
    utf8 = assert_problem(client.post("/v1/memories", headers=alice, content=b'{"messages": "\xff\xfe"}'), 400)
    assert "UTF-8" in utf8["detail"]
    assert_problem(client.post("/v1/memories", headers=alice, content=b'{"messages": "\\ud800"}'), 422)
    assert_problem(client.post("/v1/memories", headers=alice, content=b""), 422)
    assert_problem(client.post("/v1/memories", headers=alice, content=b"null"), 422)
    plain = client.post("/v1/memories", headers={**h(keys["alice"]), "Content-Type": "text/plain"},
                        content=b'{"messages": "hi"}')
    assert 400 <= plain.status_code < 500
    assert_problem(client.get("/v1/nothing-here", headers=alice), 404)
    assert_problem(client.put("/v1/memories", headers=alice), 405)


def test_huge_bodies_get_413(mem: Memory, keys: dict[str, str]) -> None:
    with TestClient(create_app(mem, max_body_bytes=1000, rate_limit=None), base_url="http://127.0.0.1") as c:
        big = json.dumps({"messages": "x" * 5000}).encode()
        body = assert_problem(c.post("/v1/memories", headers=h(keys["alice"]), content=big), 413)
        assert "1,000 bytes" in body["detail"]

        def chunks():  # type: ignore[no-untyped-def]
            for _ in range(10):
                yield b" " * 500

        assert_problem(c.post("/v1/memories", headers={**h(keys["alice"]), "Content-Type": "application/json"},
                              content=chunks()), 413)
        assert c.post("/v1/memories", headers=h(keys["alice"]), json={"messages": "short one"}).status_code == 201


def test_request_ids(client: TestClient, keys: dict[str, str]) -> None:
    r = client.get("/health", headers={"X-Request-ID": "trace-123"})
    assert r.headers["x-request-id"] == "trace-123"
    r = client.get("/health", headers={"X-Request-ID": "bad id\twith tab"})
    assert r.headers["x-request-id"] != "bad id\twith tab" and len(r.headers["x-request-id"]) == 32
    p = client.get("/v1/memories", headers={**h(keys["alice"]), "X-Request-ID": "abc"}, params={"user_id": "bob"})
    assert p.json()["request_id"] == "abc" == p.headers["x-request-id"]


def test_rate_limit(mem: Memory, keys: dict[str, str]) -> None:
    app = create_app(mem, rate_limit=RateLimit(per_second=0.5, burst=3))
    with TestClient(app, base_url="http://127.0.0.1") as c:
        codes = [c.get("/v1/me", headers=h(keys["alice"])).status_code for _ in range(5)]
        assert codes == [200, 200, 200, 429, 429]
        r = c.get("/v1/me", headers=h(keys["alice"]))
        assert_problem(r, 429)
        assert int(r.headers["retry-after"]) >= 1
        assert c.get("/v1/me", headers=h(keys["bob"])).status_code == 200  # buckets are per key
        assert "memstrata_rate_limited_total 3.0" in c.get("/metrics").text


def test_no_auth_mode_and_cors(mem: Memory) -> None:
    app = create_app(mem, auth=False, cors_origins=["http://ui.example"], allowed_hosts=["127.0.0.1", "localhost"])
    with TestClient(app, base_url="http://127.0.0.1") as c:
        assert c.post("/v1/memories", json={"messages": "hi there", "user_id": "u", "infer": False}).status_code == 201
        me = c.get("/v1/me").json()
        assert me["auth"] is False and me["key_id"] is None
        pre = c.options("/v1/memories", headers={"Origin": "http://ui.example", "Access-Control-Request-Method": "POST",
                                                 "Access-Control-Request-Headers": "authorization"})
        assert pre.headers["access-control-allow-origin"] == "http://ui.example"
        assert "x-request-id" in c.get("/health", headers={"Origin": "http://ui.example"}).headers[
            "access-control-expose-headers"].lower()
        assert_problem(c.get("/health", headers={"Host": "evil.example"}), 400)
        assert c.get("/health", headers={"Host": "localhost:8000"}).status_code == 200


def test_metrics_count_routes_adds_and_searches(client: TestClient, keys: dict[str, str]) -> None:
    alice = h(keys["alice"])
    client.post("/v1/memories", headers=alice, json={"messages": "I like tea.", "infer": False})
    client.post("/v1/memories/search", headers=alice, json={"query": "tea"})
    client.get("/v1/memories/does-not-exist", headers=alice)
    text = client.get("/metrics").text
    assert 'route="/v1/memories/search"' in text and 'route="/v1/memories/{memory_id}"' in text
    assert "does-not-exist" not in text
    assert "memstrata_add_requests_total 1.0" in text
    assert 'memstrata_search_requests_total{kind="search"} 1.0' in text
    assert 'memstrata_memories_added_total{event="ADD"} 1.0' in text


def test_ui_fragments_follow_the_key(client: TestClient, mem: Memory, keys: dict[str, str]) -> None:
    client.post("/v1/memories", headers=h(keys["alice"]), json={"messages": "<script>x</script> I like tea",
                                                                   "infer": False})
    page = client.get("/ui")
    assert page.status_code == 200 and 'data-auth="1"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/ui/static/app.js").status_code == 200
    assert_problem(client.get("/ui/static/secret.py"), 404)
    frag = client.get("/ui/fragments/memories", headers=h(keys["alice"]))
    assert "&lt;script&gt;" in frag.text and "<script>" not in frag.text
    assert_problem(client.get("/ui/fragments/memories"), 401)
    assert_problem(client.get("/ui/fragments/memories", headers=h(keys["alice"]), params={"user_id": "bob"}), 403)
    for path in ("conflicts", "entities"):
        assert client.get(f"/ui/fragments/{path}", headers=h(keys["alice"])).status_code == 200
    audit = client.get("/ui/fragments/audit", headers=h(keys["alice"]))
    assert audit.status_code == (403 if callable(getattr(mem, "audit_log", None)) else 200)  # admin only
    assert client.get("/ui/fragments/audit", headers=h(keys["admin"])).status_code == 200


def test_privacy_endpoints_on_an_audited_memory(tmp_path: Path) -> None:
    import memstrata.secure as secure
    m = secure.secure_memory(f"sqlite:///{tmp_path}/a.db", encrypt=False, audit=True, embedder="hash")
    admin_key, _ = create_key(m, None, "admin")
    alice_key, alice = create_key(m, None, "read,write", user_ids=["alice"])
    try:
        with TestClient(create_app(m, rate_limit=None), base_url="http://127.0.0.1") as c:
            c.post("/v1/memories", headers=h(alice_key), json={"messages": "I like jasmine tea", "infer": False})
            exported = c.get("/v1/users/alice/export", headers=h(alice_key))
            assert exported.status_code == 200 and "jasmine" in exported.text
            assert_problem(c.get("/v1/users/bob/export", headers=h(alice_key)), 403)
            assert_problem(c.post("/v1/users/alice/forget", headers=h(alice_key)), 403)
            assert_problem(c.get("/v1/audit", headers=h(alice_key)), 403)

            entries = c.get("/v1/audit", headers=h(admin_key), params={"limit": 1000}).json()
            assert any(e.get("actor") == alice.id and e.get("operation") == "add" for e in entries), entries
            assert c.get("/v1/audit/verify", headers=h(admin_key)).json()["ok"] is True
            receipt = c.post("/v1/users/alice/forget", headers=h(admin_key))
            assert receipt.status_code == 200, receipt.text
            assert c.get("/v1/memories", headers=h(alice_key)).json()["results"] == []
    finally:
        m.close()


def test_serve_command_runs_the_app(tmp_path: Path) -> None:
    from test_serve_stack import serving

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = ["--store", f"sqlite:///{tmp_path}/s.db", "--embedder", "hash", "serve", "--no-auth", "--host", "0.0.0.0",
            "--port", str(port), "--log-level", "warning"]
    with serving(args, port) as (base, log):
        r = httpx.post(f"{base}/v1/memories", json={"messages": "I like tea", "user_id": "u", "infer": False})
        assert r.status_code == 201, r.text
        assert httpx.get(f"{base}/v1/me").json()["auth"] is False
    text = "".join(log)
    assert "--no-auth binds to 127.0.0.1" in text and "curl" in text
