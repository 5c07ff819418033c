"""A service the test session starts once, on first use, and stops when pytest ends."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

import pytest

T = TypeVar("T")


class SessionService(Generic[T]):
    """``start(config)`` runs once per session (it registers its own cleanup with ``config``). If it fails, every
    test that asks for the service fails, loudly, with ``need`` saying what needed it and the error."""

    def __init__(self, need: str, start: Callable[[pytest.Config], T]) -> None:
        self._need, self._start = need, start
        self._value: T | None = None
        self._error: str | None = None
        self._lock = threading.Lock()

    def get(self, config: pytest.Config) -> T:
        with self._lock:
            if self._error is not None:
                pytest.fail(self._error, pytrace=False)
            if self._value is None:
                try:
                    self._value = self._start(config)
                except Exception as exc:  # any failure must fail the tests, loudly
                    self._error = f"{self._need}, which failed: {exc}"
                    pytest.fail(self._error, pytrace=False)
            return self._value
