"""The web UI as a person uses it: real uvicorn, Debian's headless Chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from memstrata import Memory
from memstrata.privacy.access import create_key
from memstrata.server import create_app

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]

# Outside CI a developer without a browser may skip this; in CI a missing browser is a failure, never a skip.
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"), reason="needs Debian's chromium (apt install chromium)"
)


class _Server:
    def __init__(self, app: Any) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    ws="none"))
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
def page() -> Iterator[Any]:
    """A fresh Chromium page; the test fails if the page's script throws."""
    from playwright.sync_api import sync_playwright

    thrown: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            tab = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
            tab.on("pageerror", lambda exc: thrown.append(str(exc)))
            yield tab
        finally:
            browser.close()
    assert thrown == [], thrown


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str]]:
    with Memory(f"sqlite:///{tmp_path}/m.db", embedder="hash") as m:
        key, _ = create_key(m, None, "read,write", user_ids=["alice"])
        with _Server(create_app(m, mcp=False)) as base:
            yield base, key


def test_search_and_browse_in_a_browser(served: tuple[str, str], page: Any) -> None:
    from playwright.sync_api import expect

    base, key = served
    auth = {"Authorization": f"Bearer {key}"}
    for text, when in [
        ("I live in Berlin.", "2025-01-10T09:00:00Z"),
        ("I live in Lisbon. I drink green tea every morning.", "2026-03-01T09:00:00Z"),  # not said as a change
        ("John works on the Alpha project with Maria.", None),
    ]:
        r = httpx.post(f"{base}/v1/memories", headers=auth, json={"messages": text, "timestamp": when})
        assert r.status_code == 201, r.text

    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(f"{base}/ui")
    expect(page.locator("#key-form")).to_be_visible()
    page.fill("#key", key)
    page.click("#key-form button")
    expect(page.locator("#user")).to_have_value("alice")
    current = httpx.get(f"{base}/v1/memories", headers=auth).json()["results"]
    assert len(current) >= 3 and not any("Berlin" in x["memory"] for x in current)
    expect(page.locator("#results tr.memory")).to_have_count(len(current))  # browse: current ones only

    page.fill("#q", "green tea")
    page.click("#search-form button")
    first = page.locator("#results tr.memory").first
    expect(first).to_contain_text("green tea")
    first.click()
    expect(page.locator("#detail h3")).to_contain_text("green tea")
    expect(page.locator("#detail table.history")).to_contain_text("ADD")
    page.screenshot(path=str(ARTIFACTS / "ui-search.png"), full_page=True)

    page.click('button[data-tab="conflicts"]')
    expect(page.locator("#conflicts")).to_contain_text("lisbon")
    page.click('button[data-tab="entities"]')
    page.locator('#entities button[data-entity]', has_text="John").click()
    expect(page.locator("#neighbourhood")).to_contain_text("works_on")
    page.screenshot(path=str(ARTIFACTS / "ui-graph.png"), full_page=True)

    page.fill("#user", "bob")
    page.dispatch_event("#user", "change")
    expect(page.locator("#error")).to_contain_text("not bound to user_id 'bob'")


class _ModelDown:
    def extract(self, messages: Any, now: Any) -> list[Any]:
        from memstrata.errors import ProviderError

        raise ProviderError("the model is down")


def test_queued_adds_dead_letters_and_requeue(served: tuple[str, str], page: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    base, key = served
    auth = {"Authorization": f"Bearer {key}"}
    body = {"messages": "I moved to Oslo in June.", "wait": False, "idempotency_key": "req-7"}
    r = httpx.post(f"{base}/v1/memories", headers=auth, json=body)
    assert r.status_code == 202 and r.json()["status"] == "pending", r.text
    ingestion = r.json()["ingestion_id"]
    again = httpx.post(f"{base}/v1/memories", headers=auth, json=body)
    assert again.status_code == 202 and again.json()["ingestion_id"] == ingestion and again.json()["duplicate"]
    assert httpx.get(f"{base}/v1/ingestions/{ingestion}", headers=auth).json()["status"] == "pending"
    assert httpx.get(f"{base}/v1/ingestions/nope", headers=auth).status_code == 404

    with Memory(f"sqlite:///{tmp_path}/m.db", embedder="hash", extractor=_ModelDown()) as broken:
        assert broken.process_queue(max_attempts=1)["dead"] == 1
    dead = httpx.get(f"{base}/v1/ingestions", headers=auth, params={"status": "dead"}).json()["results"]
    assert [d["ingestion_id"] for d in dead] == [ingestion] and "model is down" in dead[0]["error"]

    page.goto(f"{base}/ui")
    page.fill("#key", key)
    page.click("#key-form button")
    expect(page.locator("#user")).to_have_value("alice")
    page.click('button[data-tab="queue"]')
    expect(page.locator("#queue tr.ingestion")).to_contain_text("model is down")
    page.click("#queue button.requeue")
    expect(page.locator("#queue")).to_contain_text("No dead letters.")
    assert httpx.get(f"{base}/v1/ingestions/{ingestion}", headers=auth).json()["status"] == "pending"

    with Memory(f"sqlite:///{tmp_path}/m.db", embedder="hash") as worker:
        assert worker.process_queue()["done"] == 1
    done = httpx.get(f"{base}/v1/ingestions/{ingestion}", headers=auth).json()
    assert done["status"] == "done" and done["messages"][0]["outcome"] == "kept"
    page.select_option("#queue-status", "all")
    expect(page.locator("#queue tr.ingestion")).to_contain_text("done")
