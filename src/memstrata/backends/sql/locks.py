"""Write sections per scope (``Store.scope_lock``): a re-entrant thread lock per key, and under the outermost
hold of a thread whatever else the engine needs to shut out other processes — a byte-range lock on a file
beside a SQLite database here, an advisory lock for PostgreSQL (memstrata.backends.postgres_locks).

Keys are process-wide: two stores opened on one SQLite file in one process share their thread locks, since
the file locks of a process do not exclude each other (POSIX record locks belong to the process).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Hashable, Iterator
from contextlib import AbstractContextManager, contextmanager

from memstrata.errors import BackendError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: sections exclude this process's threads only
    fcntl = None  # type: ignore[assignment]

HAS_FILE_LOCKS = fcntl is not None
SLOTS = 2**31  # byte offsets of the lock file; scopes whose digests collide share one (they only wait longer)


def digest(text: str) -> int:
    """A stable 64-bit number for ``text`` (a scope key), the same in every process."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


class KeyedLocks:
    """Re-entrant locks by key, made on first use and dropped once nobody holds or waits for them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._locks: dict[Hashable, tuple[threading.RLock, int]] = {}
        self._mine = threading.local()

    def depth(self) -> int:
        """How many sections this thread holds (nested holds count each)."""
        return sum(getattr(self._mine, "held", {}).values())

    @contextmanager
    def hold(self, key: Hashable, outer: Callable[[], AbstractContextManager[object]]) -> Iterator[None]:
        """Hold ``key``'s lock; the outermost hold in this thread also holds ``outer()``."""
        held: dict[Hashable, int] = self._mine.__dict__.setdefault("held", {})
        if held.get(key):
            held[key] += 1
            try:
                yield
            finally:
                held[key] -= 1
            return
        with self._lock:
            lock, users = self._locks.get(key) or (threading.RLock(), 0)
            self._locks[key] = (lock, users + 1)
        try:
            with lock, outer():
                held[key] = 1
                try:
                    yield
                finally:
                    del held[key]
        finally:
            with self._lock:
                lock, users = self._locks[key]
                if users == 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)


SECTIONS = KeyedLocks()  # shared by every SQL store of the process


class FileSlots:
    """Exclusive one-byte locks at scope-chosen offsets of one lock file, across processes.

    The file is opened while any thread of this process holds a slot and closed after the last lets go:
    closing a descriptor drops every lock the process holds on the file, so it is never closed earlier.
    A thread holds a slot only under ``SECTIONS``' lock of (file, slot), so no two threads of one process
    hold the same byte."""

    _lock = threading.Lock()
    _open: dict[str, tuple[int, int]] = {}  # path -> (descriptor, holders)

    def __init__(self, path: str) -> None:
        self.path = path

    @contextmanager
    def hold(self, slot: int) -> Iterator[None]:
        if fcntl is None:  # pragma: no cover - not POSIX
            yield
            return
        fd = self._acquire_fd()
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX, 1, slot, os.SEEK_SET)
            try:
                yield
            finally:
                fcntl.lockf(fd, fcntl.LOCK_UN, 1, slot, os.SEEK_SET)
        finally:
            self._release_fd()

    def _acquire_fd(self) -> int:
        with FileSlots._lock:
            fd, users = FileSlots._open.get(self.path) or (self._open_file(), 0)
            FileSlots._open[self.path] = (fd, users + 1)
            return fd

    def _open_file(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise BackendError(f"sqlite store: cannot open the lock file {self.path} for a write: {exc}") from exc

    def _release_fd(self) -> None:
        with FileSlots._lock:
            fd, users = FileSlots._open[self.path]
            if users == 1:
                del FileSlots._open[self.path]
                os.close(fd)
            else:
                FileSlots._open[self.path] = (fd, users - 1)
