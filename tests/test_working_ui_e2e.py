"""The conversation view in a real browser: messages beside the working state; close a task and pin a goal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from memstrata import Memory
from memstrata.privacy.access import create_key
from memstrata.server import create_app
from test_ui_e2e import ARGS, ARTIFACTS, CHROMIUM, _Server, pytestmark  # noqa: F401 - same skip rule

TURNS = [
    ("user", "Let's plan the Alpha project launch with John for next Monday.", "2024-03-04T09:00:00Z"),
    ("assistant", "Sure, what should the agenda be?", "2024-03-04T09:01:00Z"),
    ("user", "Budget review and hiring. I need to book the big meeting room. Keep it under one hour.",
     "2024-03-04T09:02:00Z"),
]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str]]:
    with Memory(f"sqlite:///{tmp_path}/m.db", embedder="hash") as m:
        key, _ = create_key(m, None, "read,write", user_ids=["alice"])
        with _Server(create_app(m, mcp=False)) as base:
            yield base, key


def test_conversation_view_shows_and_sets_the_working_state(served: tuple[str, str]) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, key = served
    auth = {"Authorization": f"Bearer {key}"}
    for role, text, when in TURNS:
        r = httpx.post(f"{base}/v1/memories", headers=auth, json={
            "messages": [{"role": role, "content": text}], "timestamp": when, "conversation_id": "launch"})
        assert r.status_code == 201, r.text

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{base}/ui")
            page.fill("#key", key)
            page.click("#key-form button")
            expect(page.locator("#user")).to_have_value("alice")
            page.click('button[data-tab="conversation"]')
            page.fill("#conversation", "launch")
            page.click("#conversation-form button")
            view = page.locator("#conversation-view")
            expect(view.locator("ol.messages li")).to_have_count(3)
            working = view.locator(".working")
            expect(working).to_contain_text("plan the Alpha project launch with John for next Monday")
            expect(working).to_contain_text("Topic: big meeting room")  # the item opened last
            expect(working).to_contain_text("keep it under one hour")
            expect(working).to_contain_text("In focus: Alpha project, John")
            expect(working).to_contain_text("as of 2024-03-04 09:02")  # the conversation's time

            task = working.locator("li.work-item", has_text="book the big meeting room")
            task.locator('button[data-status="done"]').click()
            expect(working.locator("li.work-item.done", has_text="book the big meeting room")).to_have_count(1)
            page.fill("#pin-text", "Hire a second designer")
            page.click("#pin-form button")
            pinned = working.locator("li.work-item", has_text="Hire a second designer")
            expect(pinned).to_contain_text("pinned")
            expect(view.locator("ol.messages li.system")).to_have_count(2)  # the edits, kept with the conversation
            page.screenshot(path=str(ARTIFACTS / "ui-conversation.png"), full_page=True)
            assert errors == []
        finally:
            browser.close()
