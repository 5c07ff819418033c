"""The conversation view in a real browser: messages beside the working state; close a task and pin a goal."""

from __future__ import annotations

from typing import Any

import httpx

from test_ui_e2e import ARTIFACTS, page, pytestmark, served  # noqa: F401 - same browser, skip rule and server

TURNS = [
    ("user", "Let's plan the Alpha project launch with John for next Monday.", "2024-03-04T09:00:00Z"),
    ("assistant", "Sure, what should the agenda be?", "2024-03-04T09:01:00Z"),
    ("user", "Budget review and hiring. I need to book the big meeting room. Keep it under one hour.",
     "2024-03-04T09:02:00Z"),
]


def test_conversation_view_shows_and_sets_the_working_state(served: tuple[str, str], page: Any) -> None:  # noqa: F811
    from playwright.sync_api import expect

    base, key = served
    for role, text, when in TURNS:
        r = httpx.post(f"{base}/v1/memories", headers={"Authorization": f"Bearer {key}"}, json={
            "messages": [{"role": role, "content": text}], "timestamp": when, "conversation_id": "launch"})
        assert r.status_code == 201, r.text

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
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui-conversation.png"), full_page=True)
