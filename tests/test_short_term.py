"""Short-term and working tiers (in-process): TTL, bounds, scope isolation, and their use by Memory."""

from __future__ import annotations

from memstrata import Memory
from memstrata.backends.inprocess import InProcessShortTerm, InProcessWorking
from memstrata.models import Scope
from memstrata.tiers.base import Turn, WorkingState


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_turns_expire_after_ttl_and_are_bounded() -> None:
    clock = Clock()
    st = InProcessShortTerm(ttl_seconds=60, max_turns=3, clock=clock)
    a = Scope.of(user_id="a")
    st.push(a, "c1", [Turn("user", f"t{i}", i) for i in range(5)])
    assert [t.content for t in st.recent(a, "c1", 10)] == ["t2", "t3", "t4"]
    assert [t.content for t in st.recent(a, "c1", 2)] == ["t3", "t4"]
    clock.t += 59
    assert st.recent(a, "c1")
    clock.t += 2
    assert st.recent(a, "c1") == []


def test_short_term_and_working_are_scoped() -> None:
    st, wk = InProcessShortTerm(), InProcessWorking()
    a, b = Scope.of(user_id="a"), Scope.of(user_id="b")
    st.push(a, "c", [Turn("user", "secret", 0)])
    wk.put(a, "c", WorkingState(goals=["ship it"]))
    assert st.recent(b, "c") == [] and wk.get(b, "c") is None
    assert st.clear(a) == 1 and wk.clear(a, "c") == 1
    assert st.recent(a, "c") == [] and wk.get(a, "c") is None


def test_memory_feeds_short_term_and_rebuilds_working_state(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'm.db'}"
    with Memory(url, embedder="hash") as m:
        m.add([{"role": "user", "content": "let's plan the trip"}, {"role": "assistant", "content": "sure"}],
              user_id="u", conversation_id="c1", infer=False)
        ctx = m.context("trip", user_id="u", conversation_id="c1", token_budget=200)
        assert [t["content"] for t in ctx["short_term"]] == ["let's plan the trip", "sure"]
        assert "## Recent conversation" in ctx["text"]
    with Memory(url, embedder="hash") as fresh:  # a restart: short-term is empty until rebuilt
        assert fresh.short_term.recent(Scope.of(user_id="u"), "c1") == []
        state = fresh.working_state("c1", user_id="u")
        assert state.updated_at > 0
        assert [t.content for t in fresh.short_term.recent(Scope.of(user_id="u"), "c1")] == [
            "let's plan the trip", "sure"]
