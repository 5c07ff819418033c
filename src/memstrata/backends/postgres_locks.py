"""Write sections across servers on one PostgreSQL: a session-level advisory lock per scope.

Each section holds its advisory lock on a connection of a small pool of its own, for the length of the
section, while the section's reads and its write transaction take connections from the store's pool as
usual. A holder therefore never waits for a connection that another waiter is sitting on, however many
threads queue for one scope (and the thread lock in front lets only one per process queue here at all).

The lock is keyed ``(LOCK_CLASS, 32 bits of the scope key's digest)``: other applications' advisory locks
on the database use other classes, and scopes whose digests collide only wait for each other. A connection
that dies drops its lock with it; one whose unlock fails is closed rather than returned holding it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from memstrata.backends.postgres_pool import masked
from memstrata.backends.sql.locks import digest
from memstrata.errors import BackendError, BackendUnavailableError

LOCK_CLASS = 0x6D656D73  # "mems"
LOCK_WAIT_MS = 120_000  # a section that waits longer than this for its scope fails instead of hanging


def lock_id(scope_key: str) -> int:
    """The scope's half of the advisory lock key: a signed 32-bit number."""
    n = digest(scope_key) & 0xFFFFFFFF
    return n - 2**32 if n >= 2**31 else n


class AdvisoryLocks:
    """Advisory locks of one database, each held on a connection of its own while a section runs."""

    def __init__(self, url: str, *, max_size: int, connect_timeout: float, pool_timeout: float,
                 application_name: str) -> None:
        self.url = url
        self._pool: ConnectionPool | None = None
        self._lock = threading.Lock()
        self._max_size, self._timeout = max_size, pool_timeout
        self._kwargs = {"autocommit": True, "connect_timeout": max(1, int(round(connect_timeout))),
                        "application_name": f"{application_name}-locks", "options": f"-c lock_timeout={LOCK_WAIT_MS}"}

    def _connections(self) -> ConnectionPool:
        with self._lock:
            if self._pool is None:  # made on first use: a store that only reads never opens it
                self._pool = self._new_pool()
            return self._pool

    def _new_pool(self) -> ConnectionPool:
        pool = ConnectionPool(self.url, min_size=0, max_size=self._max_size, open=False, timeout=self._timeout,
                              name="memstrata-locks", kwargs=self._kwargs)
        pool.open(wait=False)
        return pool

    @contextmanager
    def hold(self, scope_key: str) -> Iterator[None]:
        key = (LOCK_CLASS, lock_id(scope_key))
        pool = self._connections()
        conn = self._lock_on(pool, key)
        try:
            yield
        finally:
            self._unlock(conn, key)
            pool.putconn(conn)

    def _lock_on(self, pool: ConnectionPool, key: tuple[int, int]) -> psycopg.Connection:
        """A connection of ``pool`` that holds the advisory lock ``key`` (waiting for it). An idle connection
        the server dropped (a restart) is discarded with the pool's other dead ones, and a fresh one tried."""
        for attempt in (1, 2):
            try:
                conn = pool.getconn()
            except PoolTimeout as exc:
                raise BackendUnavailableError(
                    f"postgres store: write section: no connection to {masked(self.url)} to hold the scope's lock on"
                ) from exc
            try:
                conn.execute("SELECT pg_advisory_lock(%s, %s)", key)
                return conn
            except psycopg.Error as exc:
                pool.putconn(conn)
                if isinstance(exc, psycopg.errors.LockNotAvailable):
                    raise BackendError(
                        f"postgres store: write section: the scope stayed locked for {LOCK_WAIT_MS} ms") from exc
                if attempt == 1 and conn.broken:
                    pool.check()  # drop every idle connection the restart killed, then try a new one
                    continue
                raise BackendUnavailableError(
                    f"postgres store: write section: lost the connection to {masked(self.url)}: {exc}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _unlock(conn: psycopg.Connection, key: tuple[int, int]) -> None:
        try:
            conn.execute("SELECT pg_advisory_unlock(%s, %s)", key)
        except psycopg.Error:
            if not conn.closed:
                conn.close()  # the pool discards a closed connection, and the server drops its locks

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close(timeout=1)
