"""``AsyncMemory``: the same methods as ``Memory``, as coroutines.

The embedded stack is SQLite plus CPU-bound embedding, neither of which has a non-blocking form, so each
call runs the sync method in a worker thread: the event loop never blocks, and there is one copy of the
logic. The parity test checks that both surfaces stay the same.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from memstrata.memory import Memory

ASYNC_METHODS = (
    "add",
    "search",
    "context",
    "get",
    "get_all",
    "update",
    "delete",
    "delete_all",
    "history",
    "reset",
    "conflicts",
    "resolve_conflict",
    "episodes",
    "entities",
    "neighbours",
    "retry_failed",
    "stats",
    "working_state",
    "update_working_state",
    "flush_usage", "forget_user", "export_user", "import_user", "audit_log", "verify_audit",
    "scopes",
)


class AsyncMemory:
    """Async face of :class:`Memory`; takes the same constructor arguments."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._sync = Memory(*args, **kwargs)

    @property
    def sync(self) -> Memory:
        """The underlying synchronous Memory."""
        return self._sync

    def __getattr__(self, name: str) -> Any:
        if name not in ASYNC_METHODS:
            raise AttributeError(name)
        method = getattr(self._sync, name)

        @functools.wraps(method)
        async def call(*args: Any, **kwargs: Any) -> Any:
            return await asyncio.to_thread(method, *args, **kwargs)

        return call

    async def close(self) -> None:
        await asyncio.to_thread(self._sync.close)

    async def __aenter__(self) -> AsyncMemory:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
