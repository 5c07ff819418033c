"""The working-memory tracker on its own (no store): what opens, closes and changes goals and tasks, entities
and topic, constraints, edits, and that folding is deterministic. Real spaCy model throughout."""

from __future__ import annotations

import pytest

from memstrata.errors import InvalidInputError, NotFoundError
from memstrata.tiers.base import WorkingState
from memstrata.working import tracker
from memstrata.working.view import context_lines, context_section

T0 = 1_709_542_800.0  # 2024-03-04 09:00 UTC: a backfilled conversation keeps its own time


def fold(*turns: tuple[str, str], state: WorkingState | None = None, start: int = 0) -> WorkingState:
    msgs = [tracker.Said(role, text, T0 + 60 * (start + i), f"e{start + i}") for i, (role, text) in enumerate(turns)]
    return tracker.fold(state, msgs)


def test_the_three_turn_plan_has_a_goal_topic_entities_and_its_own_time() -> None:
    s = fold(("user", "Let's plan the Alpha project launch with John for next Monday."),
             ("assistant", "Sure, what should the agenda be?"),
             ("user", "Budget review and hiring."))
    assert [(g.kind, g.text, g.status) for g in s.goals] == [
        ("goal", "plan the Alpha project launch with John for next Monday", "open")]
    assert s.tasks == []
    assert s.topic == "Alpha project launch"
    assert s.entities == ["Alpha project", "John"]
    assert s.updated_at == T0 + 120 and s.goals[0].opened_at == T0
    assert s.messages == 3


@pytest.mark.parametrize(("text", "kind", "phrase"), [
    ("I need to renew my passport.", "task", "renew my passport"),
    ("Remind me to call the plumber on Friday.", "task", "call the plumber on Friday"),
    ("Could you draft the release notes?", "task", "draft the release notes"),
    ("Please book a room for the workshop.", "task", "book a room for the workshop"),
    ("Don't let me forget to pay the invoice.", "task", "pay the invoice"),
    ("I've got to finish the slides tonight.", "task", "finish the slides tonight"),
    ("We should migrate the wiki to Notion.", "goal", "migrate the wiki to Notion"),
    ("My goal is to run a marathon in October.", "goal", "run a marathon in October"),
    ("I'm trying to get better at public speaking.", "goal", "get better at public speaking"),
    ("Help me write a cover letter for the Berlin job.", "goal", "write a cover letter for the Berlin job"),
    ("I gotta call mom tonight.", "task", "call mom tonight"),
    ("Need to renew my license.", "task", "renew my license"),
    ("Please add the dentist to my calendar.", "task", "add the dentist to my calendar"),
])
def test_paraphrases_open_goals_and_tasks(text: str, kind: str, phrase: str) -> None:
    s = fold(("user", text))
    assert [(i.kind, i.text) for i in s.items()] == [(kind, phrase)]


@pytest.mark.parametrize("text", [
    "Hey, how are you today?",
    "What's the capital of Australia?",
    "If I ever wanted to visit, how long is the flight?",
    "My friend said we should climb it someday.",
    "I wanted to go but it rained.",
    "Can you believe it rained all day?",
    "I have to say, that was great.",
    "We got to see the parade.",
])
def test_small_talk_questions_hypotheticals_and_reported_speech_open_nothing(text: str) -> None:
    assert fold(("user", text)).items() == []


def test_status_moves_done_dropped_changed_and_assistant_commitments() -> None:
    s = fold(("user", "Please set up a meeting with Priya and Tom for Thursday."),
             ("assistant", "I'll send an invite for 10:30 on Thursday."),
             ("user", "Also I need to renew the domain name. Remind me to call the dentist at 3pm."),
             ("user", "Actually make it 4pm instead."),
             ("user", "The domain is renewed."),
             ("user", "Scratch that meeting, Tom is off on Thursday."))
    by_text = {i.text: i for i in s.items()}
    meeting = by_text["set up a meeting with Priya and Tom for Thursday"]
    invite = by_text["send an invite for 10:30 on Thursday"]
    assert invite.by == "assistant" and invite.parent_id == meeting.id
    assert meeting.status == invite.status == "dropped"  # dropping a request drops the commitment made for it
    assert by_text["renew the domain name"].status == "done"
    dentist = by_text["call the dentist at 3pm"]
    assert dentist.status == "open" and dentist.revisions == ["Actually make it 4pm instead."]
    assert dentist.updated_at == T0 + 180


def test_constraints_are_the_users_limits() -> None:
    s = fold(("user", "Let's write a blog post about search. Please keep it under 800 words and avoid jargon."),
             ("assistant", "Only the intro is missing."),
             ("user", "Morning works, but nothing before 10."))
    assert [c.text for c in s.constraints] == ["keep it under 800 words", "avoid jargon", "nothing before 10"]
    assert [i.text for i in s.items()] == ["write a blog post about search"]


def test_entities_latest_mention_first() -> None:
    s = fold(("user", "I met Anna in Lisbon."), ("user", "Then I called John about the Beta release."))
    assert s.entities[:2] == ["John", "Beta release"] and "Anna" in s.entities and "Lisbon" in s.entities
    assert s.entities.index("Anna") < s.entities.index("Lisbon")


def test_a_long_reply_is_read_for_its_named_things_from_its_opening_and_never_its_code() -> None:
    filler = " ".join(f"Step {i} keeps the build reproducible across machines." for i in range(40))
    reply = ("Anna's Kestrel project should move to Postgres first. " + filler
             + "\n```python\nclient = Zephyr(url)\n```\n" + "Later on Marseille comes up too.")
    assert len(reply) > 3 * tracker.FOCUS_CHARS
    head = tracker.focus_text(reply)
    assert len(head) <= tracker.FOCUS_CHARS and head.endswith(".") and "Zephyr" not in head
    s = fold(("user", "Can you plan the database move?"), ("assistant", reply))
    assert "Kestrel project" in s.entities and "Zephyr" not in s.entities and "Marseille" not in s.entities
    short = "I met Anna in Lisbon.\n```\nZephyr()\n```"
    assert tracker.focus_text(short).strip() == "I met Anna in Lisbon."


def test_folding_is_deterministic_and_order_independent_of_batching() -> None:
    turns = [("user", "I want to learn Spanish. I have to buy a textbook."), ("assistant", "I'll find a tutor."),
             ("user", "Bought the textbook!")]
    whole = fold(*turns)
    stepwise = None
    for i, t in enumerate(turns):
        stepwise = fold(t, state=stepwise, start=i)
    assert stepwise is not None and stepwise.to_dict() == whole.to_dict()
    assert tracker.in_order(whole, [tracker.Said("user", "x", T0 + 500, "z")])
    assert not tracker.in_order(whole, [tracker.Said("user", "x", T0, "z")])


def test_edits_pin_close_and_are_checked() -> None:
    s = fold(("user", "I need to file the tax return."))
    task = s.tasks[0]
    tracker.apply_edit(s, tracker.check_edit({"op": "add_item", "kind": "goal", "text": "Ship v2"}), T0 + 90, "x1")
    goal = s.goals[0]
    assert goal.pinned and goal.by == "agent" and goal.opened_at == T0 + 90
    tracker.apply_edit(s, tracker.check_edit({"op": "update_item", "item_id": task.id, "status": "done"}), T0 + 91,
                       "x2")
    assert s.tasks[0].status == "done"
    s = tracker.fold(s, [tracker.Said("user", "Never mind, forget it.", T0 + 120, "e9")])
    assert s.goals[0].status == "open"  # a pinned goal is not closed by inference
    with pytest.raises(NotFoundError):
        tracker.apply_edit(s, tracker.check_edit({"op": "update_item", "item_id": "t-nope", "status": "done"}),
                           T0, "x3")
    for bad, field in [({"op": "explode"}, "op"), ({"op": "add_item", "kind": "wish", "text": "x"}, "kind"),
                       ({"op": "add_item", "kind": "goal", "text": " "}, "text"),
                       ({"op": "update_item", "item_id": task.id}, "status"),
                       ({"op": "update_item", "item_id": task.id, "status": "finished"}, "status"),
                       ({"op": "set_topic", "topic": "x", "colour": "red"}, "colour"), ("add", "edit")]:
        with pytest.raises(InvalidInputError) as exc:
            tracker.check_edit(bad)
        assert exc.value.field == field, bad


def test_context_section_fits_the_budget_whole_lines_first() -> None:
    s = fold(("user", "Let's plan the offsite in Porto. I need to book the venue. Keep it under 5000 euros."))
    lines = context_lines(s)
    assert lines[0].startswith("- goal: plan the offsite in Porto")
    text, used = context_section(s, 1000, lambda t: len(t.split()))
    assert text.startswith("## Working state\n") and "constraint: keep it under 5000 euros" in text
    small, used_small = context_section(s, 12, lambda t: len(t.split()))
    assert used_small <= 12 and "goal" in small and "constraint" not in small
    assert context_section(s, 2, lambda t: len(t.split())) == ("", 0)


def test_old_snapshots_with_string_goals_still_load() -> None:
    s = WorkingState.from_dict({"goals": ["book flights"], "entities": ["Lisbon"], "topic": "travel",
                                "updated_at": 5.0, "unknown_field": 1})
    assert s.goals[0].text == "book flights" and s.goals[0].kind == "goal" and s.entities == ["Lisbon"]
    assert WorkingState.from_dict(s.to_dict()) == s


def test_partial_progress_closes_nothing_and_a_closed_item_is_not_closed_twice() -> None:
    s = fold(("user", "I have to write the quarterly report."), ("user", "It's almost done."),
             ("user", "I also need to email the auditors."), ("user", "The report is finished."),
             ("user", "Finished the report, really!"))
    status = {i.text: i.status for i in s.tasks}
    assert status == {"write the quarterly report": "done", "email the auditors": "open"}
