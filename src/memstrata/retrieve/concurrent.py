"""Two independent reads of one search at once, for stores that declare their reads run side by side.

A search's kNN and keyword statements do not depend on each other. On a store that declares
``Capability.PARALLEL_READS`` (PostgreSQL opened with ``parallel_reads=True``: a pool of connections to a
server with cores of its own), the second runs on a worker thread while the calling thread runs the first, so
the search waits for the slower of the two instead of their sum. Each worker call runs in a copy of the
caller's context (context variables such as a store's record of the running call go with it). Other stores
run both in turn: an embedded store reads in this process, and a server on the application's own full cores
gains nothing from a second statement at once (bench/RESULTS.md, pg-parity).
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

A = TypeVar("A")
B = TypeVar("B")

WORKERS = 8  # side reads of this many searches at once; more wait their turn (the calling threads never do)

_executor: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def _workers() -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="memstrata-read")
        return _executor


def side_by_side(first: Callable[[], A], second: Callable[[], B], *, parallel: bool) -> tuple[A, B]:
    """``(first(), second())``; with ``parallel``, ``second`` runs on a worker thread meanwhile. Either error
    is raised, the first one's first, and only once both are done (no read is left running behind the call)."""
    if not parallel:
        return first(), second()
    ctx = contextvars.copy_context()
    pending = _workers().submit(ctx.run, second)
    try:
        a = first()
    except BaseException:
        pending.exception()  # wait for it, drop its outcome: the first error is the one the caller sees
        raise
    return a, pending.result()
