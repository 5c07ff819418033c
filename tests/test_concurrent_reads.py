"""retrieve.concurrent: two reads at once, with the caller's context, and errors raised only when both are done."""

from __future__ import annotations

import contextvars
import threading
import time

import pytest

from memstrata.retrieve.concurrent import side_by_side

WHO: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")


def test_the_second_read_runs_on_another_thread_with_the_callers_context() -> None:
    WHO.set("caller")
    seen: dict[str, object] = {}

    def second() -> str:
        seen["thread"] = threading.current_thread()
        return WHO.get()

    assert side_by_side(lambda: 1, second, parallel=True) == (1, "caller")
    assert seen["thread"] is not threading.current_thread()
    assert side_by_side(lambda: 1, second, parallel=False) == (1, "caller")
    assert seen["thread"] is threading.current_thread()


def test_both_run_at_once() -> None:
    started = threading.Barrier(2, timeout=5)

    def meet() -> bool:
        started.wait()  # only returns when the other side is running too
        return True

    assert side_by_side(meet, meet, parallel=True) == (True, True)


def test_an_error_is_raised_after_both_are_done() -> None:
    finished: list[str] = []

    def slow() -> None:
        time.sleep(0.05)
        finished.append("second")

    def fails() -> None:
        raise ValueError("first failed")

    with pytest.raises(ValueError, match="first failed"):
        side_by_side(fails, slow, parallel=True)
    assert finished == ["second"]

    def second_fails() -> None:
        raise KeyError("second failed")

    with pytest.raises(KeyError, match="second failed"):
        side_by_side(lambda: 1, second_fails, parallel=True)
