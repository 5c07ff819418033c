"""A first-time user's path: the README's ``make run`` (the demo, then ``serve --no-auth`` on the demo's store)
opens a web page that shows the demo's memories at once, with a scope picker and no key box; the graph is
drawn as a graph; audit entries show memory ids; a new search clears the detail panel."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from memstrata import Memory
from memstrata.privacy.access import create_key
from memstrata.secure import secure_memory
from memstrata.server import create_app
from pg_support import free_port
from test_serve_stack import serving
from test_ui_e2e import ARTIFACTS, page  # noqa: F401 - the shared browser page

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from memstrata.cli import main; main()", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}


def test_make_run_serves_the_store_the_demo_wrote_and_installs_only_what_running_needs() -> None:
    make = subprocess.run(["make", "-n", "-B", "run"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    stores = re.findall(r"memstrata --store (\S+) (demo|serve)", make)
    assert [cmd for _, cmd in stores] == ["demo", "serve"], make
    assert len({store for store, _ in stores}) == 1, stores  # one store: the demo's is the one served
    installs = re.findall(r"pip install --quiet -e '([^']+)'", make)
    assert installs == [".[server]"], make
    test = subprocess.run(["make", "-n", "-B", "test"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert ".[dev]" in test


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`make run`'s two commands, on a store of our own."""
    store = f"sqlite:///{tmp_path_factory.mktemp('run') / 'demo.db'}"
    demo = subprocess.run(_cli("--store", store, "demo", "--keep"), env=_env(), capture_output=True, text=True,
                          timeout=300)
    assert demo.returncode == 0, demo.stderr
    port = free_port()
    with serving(["--store", store, "serve", "--no-auth", "--port", str(port)], port) as (base, _):
        yield base


def test_scopes_endpoint_lists_the_demo_user_first(demo_server: str) -> None:
    scopes = httpx.get(f"{demo_server}/v1/scopes").json()["results"]
    assert scopes[0]["user_id"] == "demo-user" and scopes[0]["memories"] > 5 and scopes[0]["episodes"] == 11


def test_the_web_page_opens_on_the_demos_memories(demo_server: str, page: Any) -> None:  # noqa: F811
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(f"{demo_server}/ui")
    expect(page.locator("#results tr.memory").first).to_be_visible()
    expect(page.locator("#key-form")).to_be_hidden()  # auth is off: no key box
    expect(page.locator("#error")).to_be_hidden()
    expect(page.locator("#user")).to_have_value("demo-user")
    expect(page.locator("#scope-picker option:checked")).to_contain_text("demo-user")
    expect(page.locator("#results")).to_contain_text("Lisbon")
    page.screenshot(path=str(ARTIFACTS / "first-run-memories.png"), full_page=True)

    page.fill("#q", "gate code")
    page.click("#search-form button")
    expect(page.locator("#results tr.memory").first).to_contain_text("4512")
    page.locator("#results tr.memory").first.click()
    expect(page.locator("#detail h3")).to_contain_text("4512")
    page.fill("#q", "sister")
    page.click("#search-form button")
    expect(page.locator("#detail")).to_be_empty()  # the old detail does not linger beside new results
    expect(page.locator("#results tr.memory").first).to_contain_text("Porto")

    page.click('button[data-tab="entities"]')
    graph = page.locator("#neighbourhood svg.graph")
    expect(graph).to_be_visible()
    assert graph.locator("g.node circle").count() >= 2
    assert graph.locator("g.edge line").count() >= 1
    page.screenshot(path=str(ARTIFACTS / "first-run-graph.png"), full_page=True)
    before = page.locator("#neighbourhood h3").inner_text()
    graph.locator("g.node[data-entity]").first.click()  # a node opens its own graph
    expect(page.locator("#neighbourhood h3")).not_to_have_text(before)


def test_audit_entries_show_memory_ids_as_ids(tmp_path: Path) -> None:
    m = secure_memory(f"sqlite:///{tmp_path}/s.db", embedder="hash", encrypt=False)
    try:
        key = create_key(m, None, "admin", user_ids=["alice"])[0]
        with TestClient(create_app(m, rate_limit=None, mcp=False), base_url="http://127.0.0.1") as client:
            headers = {"Authorization": f"Bearer {key}"}
            added = client.post("/v1/memories", headers=headers, json={"messages": "I keep bees"}).json()
            mid = added["results"][0]["id"]
            html = client.get("/ui/fragments/audit", headers=headers, params={"user_id": "alice"}).text
    finally:
        m.close()
    assert f'data-memory-id="{mid}"' in html and f">{mid}</code>" in html
    assert "[&#x27;" not in html and "['" not in html  # not a Python list's repr
    assert "user alice" in html


def test_scopes_are_listed_only_as_far_as_the_key_reaches(tmp_path: Path) -> None:
    with Memory(f"sqlite:///{tmp_path}/m.db", embedder="hash") as m:
        m.add("I keep bees", user_id="alice")
        m.add("I like jazz", user_id="bob", agent_id="helper")
        m.add("We ship on Friday", user_id="carol", org_id="acme")
        assert [s["user_id"] for s in m.scopes()["results"]] == ["carol", "bob", "alice"]  # newest first
        alice = create_key(m, None, "read", user_ids=["alice"])[0]
        org = create_key(m, None, "read")[0]
        acme = create_key(m, "acme", "read")[0]
        with TestClient(create_app(m, rate_limit=None, mcp=False, ui=False), base_url="http://127.0.0.1") as c:
            def users(key: str, **params: str) -> list[str | None]:
                r = c.get("/v1/scopes", headers={"Authorization": f"Bearer {key}"}, params=params)
                assert r.status_code == 200, r.text
                return [s["user_id"] for s in r.json()["results"]]

            assert users(alice) == ["alice"]
            assert users(org) == ["bob", "alice"]
            assert users(acme) == ["carol"]
            r = c.get("/v1/scopes", headers={"Authorization": f"Bearer {alice}"}, params={"org_id": "acme"})
            assert r.status_code == 403
            assert c.get("/v1/scopes").status_code == 401
