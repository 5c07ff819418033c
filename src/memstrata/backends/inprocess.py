"""In-process short-term and working tiers: per-conversation turns with a TTL, and working state.

Thread-safe; bounded per conversation. Lost on restart by design: the episodic tier rebuilds them.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from memstrata.models import Scope
from memstrata.tiers.base import ShortTermTier, Turn, WorkingState, WorkingTier

DEFAULT_TTL_SECONDS = 24 * 3600


class InProcessShortTerm(ShortTermTier):
    def __init__(
        self,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        max_turns: int = 50,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ttl = ttl_seconds
        self.max_turns = max_turns
        self._clock = clock
        self._lock = threading.Lock()
        self._data: dict[tuple[str, str], tuple[float, deque[Turn]]] = {}

    def _expire(self, now: float) -> None:
        dead = [k for k, (touched, _) in self._data.items() if now - touched > self.ttl]
        for k in dead:
            del self._data[k]

    def push(self, scope: Scope, conversation_id: str, turns: Sequence[Turn]) -> None:
        now = self._clock()
        with self._lock:
            self._expire(now)
            _, buf = self._data.get((scope.key, conversation_id), (now, deque(maxlen=self.max_turns)))
            buf.extend(turns)
            self._data[(scope.key, conversation_id)] = (now, buf)

    def recent(self, scope: Scope, conversation_id: str, limit: int = 10) -> list[Turn]:
        now = self._clock()
        with self._lock:
            self._expire(now)
            entry = self._data.get((scope.key, conversation_id))
            if entry is None:
                return []
            return list(entry[1])[-limit:] if limit > 0 else []

    def clear(self, scope: Scope, conversation_id: str | None = None) -> int:
        with self._lock:
            keys = [
                k
                for k in self._data
                if k[0] == scope.key and (conversation_id is None or k[1] == conversation_id)
            ]
            for k in keys:
                del self._data[k]
            return len(keys)


class InProcessWorking(WorkingTier):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._data: dict[tuple[str, str], WorkingState] = {}
        self._writing: dict[tuple[str, str], tuple[threading.Lock, int]] = {}  # one writer per conversation

    def update(self, scope: Scope, conversation_id: str,
               change: Callable[[WorkingState | None], WorkingState]) -> WorkingState:
        """Read, change and store under the conversation's own lock: writers of one conversation take
        turns, while ``put`` and reads of every conversation go on."""
        key = (scope.key, conversation_id)
        with self._lock:
            lock, users = self._writing.get(key) or (threading.Lock(), 0)
            self._writing[key] = (lock, users + 1)
        try:
            with lock:
                state = change(self.get(scope, conversation_id))
                self.put(scope, conversation_id, state)
                return state
        finally:
            with self._lock:
                lock, users = self._writing[key]
                if users == 1:
                    del self._writing[key]
                else:
                    self._writing[key] = (lock, users - 1)

    def get(self, scope: Scope, conversation_id: str) -> WorkingState | None:
        with self._lock:
            return self._data.get((scope.key, conversation_id))

    def put(self, scope: Scope, conversation_id: str, state: WorkingState) -> None:
        with self._lock:
            self._data[(scope.key, conversation_id)] = state

    def clear(self, scope: Scope, conversation_id: str | None = None) -> int:
        with self._lock:
            keys = [
                k
                for k in self._data
                if k[0] == scope.key and (conversation_id is None or k[1] == conversation_id)
            ]
            for k in keys:
                del self._data[k]
            return len(keys)
