"""A working state rebuilt after a restart equals what the live process had, field by field: on SQLite and
PostgreSQL, with the in-process and the Redis short-term tier (our own redis-server), and with Redis holding
the working tier itself. The conversation is backfilled (2024 timestamps): its times must stay its own."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import fields

import pytest

from memstrata import HashEmbedder, Memory
from memstrata.backends.inprocess import InProcessShortTerm
from memstrata.backends.redis import RedisShortTerm
from memstrata.models import Scope
from memstrata.tiers.base import WorkingState
from test_backends_redis import RedisServer

T0 = 1_709_542_800  # 2024-03-04 09:00 UTC
TURNS = [
    ("user", "Let's plan the Alpha project launch with John for next Monday."),
    ("assistant", "Sure, what should the agenda be?"),
    ("user", "Budget review and hiring. Keep the agenda under one hour."),
    ("user", "I need to book the big meeting room. Can you draft the invite for Priya and Tom?"),
    ("assistant", "I'll draft the invite for Monday at 10."),
    ("user", "Actually make it 11 instead."),
    ("user", "The meeting room is booked."),
]
LATER = [("user", "Remind me to send the slides to Anna on Friday."), ("user", "Never mind the slides.")]


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    srv = RedisServer().start()
    yield srv
    srv.stop()


@pytest.fixture(params=["inprocess", "redis"])
def short_term(request: pytest.FixtureRequest) -> Callable[[], object]:
    """A factory for the short-term tier a (re)started process opens."""
    if request.param == "inprocess":
        return InProcessShortTerm
    srv = request.getfixturevalue("redis_server")
    prefix = f"t-{uuid.uuid4().hex[:8]}:"
    return lambda: RedisShortTerm(srv.url, prefix=prefix)


def _add(m: Memory, turns: list[tuple[str, str]], start: int, uid: str) -> None:
    for i, (role, text) in enumerate(turns):
        m.add([{"role": role, "content": text}], user_id=uid, conversation_id="c1", timestamp=T0 + 60 * (start + i))


def _live_conversation(m: Memory, uid: str) -> WorkingState:
    _add(m, TURNS, 0, uid)
    state = m.working_state("c1", user_id=uid)
    m.update_working_state("c1", {"op": "add_item", "kind": "goal", "text": "Hire a second designer"}, user_id=uid)
    invite = next(t for t in state.tasks if t.by == "assistant")
    m.update_working_state("c1", {"op": "update_item", "item_id": invite.id, "status": "done"}, user_id=uid)
    _add(m, LATER, len(TURNS), uid)
    # A message backfilled into the middle of the conversation: the live state must be rebuilt, not appended.
    m.add([{"role": "user", "content": "I have to order name badges for the launch."}], user_id=uid,
          conversation_id="c1", timestamp=T0 + 30)
    return m.working_state("c1", user_id=uid)


def _assert_same(after: WorkingState, live: WorkingState) -> None:
    for f in fields(WorkingState):
        assert getattr(after, f.name) == getattr(live, f.name), f.name


def test_restart_rebuilds_the_same_working_state(store_url: str, short_term: Callable[[], object]) -> None:
    uid = f"u-{uuid.uuid4().hex[:8]}"
    m = Memory(store_url, embedder=HashEmbedder(), short_term=short_term())  # type: ignore[arg-type]
    live = _live_conversation(m, uid)
    turns_before = [t.episode_id for t in m.short_term.recent(Scope.of(user_id=uid), "c1", 50)]
    m.close()

    texts = {i.text: i for i in live.items()}
    assert texts["plan the Alpha project launch with John for next Monday"].status == "open"
    assert texts["book the big meeting room"].status == "done"
    assert texts["draft the invite for Priya and Tom"].revisions == ["Actually make it 11 instead."]
    assert texts["draft the invite for Monday at 10"].status == "done"  # closed through the API
    assert texts["Hire a second designer"].pinned and texts["Hire a second designer"].by == "agent"
    assert texts["send the slides to Anna on Friday"].status == "dropped"
    assert texts["order name badges for the launch"].opened_at == T0 + 30
    assert [c.text for c in live.constraints] == ["keep the agenda under one hour"]
    assert live.entities[0] == "Anna" and {"Alpha project", "John", "Priya", "Tom"} <= set(live.entities)
    assert live.topic == "slides"
    # Times are the conversation's own, not the wall clock.
    assert live.updated_at == T0 + 60 * (len(TURNS) + len(LATER) - 1)
    assert live.goals[0].opened_at == T0

    m2 = Memory(store_url, embedder=HashEmbedder(), short_term=short_term())  # type: ignore[arg-type]
    try:
        after = m2.working_state("c1", user_id=uid)
        _assert_same(after, live)
        turns = [t.episode_id for t in m2.short_term.recent(Scope.of(user_id=uid), "c1", 50)]
        assert len(turns) == len(set(turns)), "the rebuild must not push turns the short-term tier still holds"
        if isinstance(m2.short_term, RedisShortTerm):
            assert turns == turns_before
        ctx = m2.context("when is the launch?", user_id=uid, conversation_id="c1", token_budget=400)
        assert ctx["text"].startswith("## Working state\n- goal: plan the Alpha project launch")
        assert "constraint: keep the agenda under one hour" in ctx["text"]
        assert ctx["tokens"] <= 400 and ctx["working"] == live.to_dict()
        # The rebuilt state keeps folding like the live one would.
        m2.add([{"role": "user", "content": "The name badges are ordered."}], user_id=uid, conversation_id="c1",
               timestamp=T0 + 60 * 20)
        assert next(t for t in m2.working_state("c1", user_id=uid).tasks
                    if t.text == "order name badges for the launch").status == "done"
    finally:
        m2.close()


def test_redis_working_tier_survives_a_restart_and_rebuilds_the_same(store_url: str,
                                                                     redis_server: RedisServer) -> None:
    uid = f"u-{uuid.uuid4().hex[:8]}"
    cache = f"{redis_server.url}?prefix=w-{uuid.uuid4().hex[:8]}:"
    m = Memory(store_url, embedder=HashEmbedder(), cache=cache)
    live = _live_conversation(m, uid)
    m.close()
    m2 = Memory(store_url, embedder=HashEmbedder(), cache=cache)
    try:
        _assert_same(m2.working_state("c1", user_id=uid), live)  # the snapshot Redis kept
        assert m2.working.clear(Scope.of(user_id=uid), "c1") == 1  # as if the key expired
        _assert_same(m2.working_state("c1", user_id=uid), live)  # rebuilt from the episodic tier
    finally:
        m2.working.clear(Scope.of(user_id=uid))
        m2.short_term.clear(Scope.of(user_id=uid))
        m2.close()


def test_working_state_is_scoped(store_url: str) -> None:
    with Memory(store_url, embedder=HashEmbedder()) as m:
        m.add("Let's plan the Alpha launch.", user_id="alice", conversation_id="c1", timestamp=T0)
        assert m.working_state("c1", user_id="bob").items() == []
        assert m.working_state("c1", user_id="alice", agent_id="other").items() == []
        assert [g.text for g in m.working_state("c1", user_id="alice").goals] == ["plan the Alpha launch"]


def test_encrypted_audited_store_rebuilds_edits_too(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from memstrata.secure import secure_memory

    url, key = f"sqlite:///{tmp_path}/enc.db", bytes(range(32))
    m = secure_memory(url, master_key=key, embedder="hash")
    m.add("Let's plan the Alpha launch. I need to book the venue.", user_id="u", conversation_id="c1", timestamp=T0)
    task = m.working_state("c1", user_id="u").tasks[0]
    m.update_working_state("c1", {"op": "update_item", "item_id": task.id, "status": "done"}, user_id="u")
    live = m.working_state("c1", user_id="u")
    assert any(e["operation"] == "update_working_state" for e in m.audit_log(user_id="u"))
    m.close()
    m2 = secure_memory(url, master_key=key, embedder="hash")
    try:
        _assert_same(m2.working_state("c1", user_id="u"), live)
        assert m2.working_state("c1", user_id="u").tasks[0].status == "done"
    finally:
        m2.close()
