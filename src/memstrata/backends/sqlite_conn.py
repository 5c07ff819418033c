"""The SQLite store's connections: one writer behind a re-entrant lock, one reader per thread.

WAL lets readers run while the writer commits; the busy timeout absorbs other processes' writes. Driver
errors leave here as memstrata's own (BackendError, BackendUnavailableError).
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from memstrata.errors import BackendError, BackendUnavailableError

T = TypeVar("T")


def wrap(exc: sqlite3.Error, what: str) -> BackendError:
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and ("unable to open" in text or "disk I/O" in text):
        return BackendUnavailableError(f"sqlite store: {what}: {text}")
    return BackendError(f"sqlite store: {what}: {text}")


def _journal_wal(conn: sqlite3.Connection, timeout: float) -> None:
    """Switch to WAL. SQLite answers 'database is locked' at once, without its busy handler, while another
    process opening the same new file holds the lock, so wait here as long as a busy write would."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


class Connections:
    """The connections of one SQLite file (``:memory:``: a private shared-cache database)."""

    def __init__(self, path: str, *, synchronous: str, busy_timeout_ms: int) -> None:
        self.path = path
        self._mem_name = uuid.uuid4().hex  # each :memory: store is its own database
        self._sync = synchronous
        self._busy = busy_timeout_ms
        self.write_lock = threading.RLock()
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self.closed = False
        self.writer = self._connect()

    def _connect(self) -> sqlite3.Connection:
        try:
            uri = self.path == ":memory:"
            target = f"file:memstrata-{self._mem_name}?mode=memory&cache=shared" if uri else self.path
            conn = sqlite3.connect(
                target, timeout=self._busy / 1000, isolation_level=None, check_same_thread=False, uri=uri
            )
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy)}")
            if not uri:
                _journal_wal(conn, self._busy / 1000)
            conn.execute(f"PRAGMA synchronous = {self._sync}")
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            raise wrap(exc, f"cannot open {self.path}") from exc
        with self._all_lock:
            self._all.append(conn)
        return conn

    def reader(self) -> sqlite3.Connection:
        if self.closed:
            raise BackendUnavailableError("sqlite store: closed")
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        conn = self.reader()
        try:
            yield conn
        except sqlite3.Error as exc:
            raise wrap(exc, "read failed") from exc

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        if self.closed:
            raise BackendUnavailableError("sqlite store: closed")
        with self.write_lock:
            conn = self.writer
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise wrap(exc, "cannot start a write") from exc
            try:
                yield conn
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                conn.execute("ROLLBACK")
                raise wrap(exc, "write failed") from exc
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def run(self, fn: Callable[[sqlite3.Connection], T], write: bool = False) -> T:
        with self.tx() if write else self.read() as conn:
            return fn(conn)

    def inside_own_write(self) -> bool:
        """Whether this thread is inside a write transaction already (a codec called from ``apply``).

        The write lock is re-entrant: taking it without blocking succeeds only for its holder or when it
        is free, and only its holder can have the writer inside a transaction."""
        if not self.write_lock.acquire(blocking=False):
            return False
        try:
            return self.writer.in_transaction
        finally:
            self.write_lock.release()

    @contextmanager
    def joined_tx(self) -> Iterator[tuple[sqlite3.Connection, bool]]:
        """A write transaction of our own, or a savepoint inside the caller's; yields (conn, nested)."""
        if not self.inside_own_write():
            with self.tx() as conn:
                yield conn, False
            return
        conn = self.writer
        conn.execute("SAVEPOINT privacy")
        try:
            yield conn, True
            conn.execute("RELEASE privacy")
        except BaseException:
            conn.execute("ROLLBACK TO privacy")
            conn.execute("RELEASE privacy")
            raise

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with self._all_lock:
            for conn in self._all:
                try:
                    conn.close()
                except sqlite3.Error:
                    pass
            self._all.clear()
