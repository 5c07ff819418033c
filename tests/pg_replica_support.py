"""A streaming standby of an embedded PostgreSQL, made with the wheel's own pg_basebackup.

``pg_basebackup -R`` copies the primary and writes the standby settings (``standby.signal`` and
``primary_conninfo``); the copy then starts on a port of its own and streams. A missing pg_basebackup
fails the test with the reason: the replica tests are never skipped.
"""

from __future__ import annotations

import time

import psycopg

from pg_support import EmbeddedPostgres


def start_standby(primary: EmbeddedPostgres) -> EmbeddedPostgres:
    """A hot standby of ``primary``, started and streaming."""
    standby = EmbeddedPostgres()
    tool = standby.bin / "pg_basebackup"
    if not tool.exists():
        raise RuntimeError(f"read-replica tests need pg_basebackup next to initdb, and {tool} is missing")
    standby._cmd("pg_basebackup", "-D", str(standby.data), "-h", "127.0.0.1", "-p", str(primary.port),
                 "-U", "postgres", "-R", "-X", "stream", "-c", "fast", "--no-sync", timeout=120)
    standby.start()
    wait_streaming(standby)
    return standby


def wait_streaming(standby: EmbeddedPostgres, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(standby.url(), autocommit=True, connect_timeout=2) as conn:
                row = conn.execute("SELECT status FROM pg_stat_wal_receiver").fetchone()
                status = row[0] if row else None
                if status == "streaming":
                    return
        except psycopg.OperationalError as exc:
            status = str(exc).strip()
        time.sleep(0.1)
    raise RuntimeError(f"the standby on port {standby.port} did not start streaming: {status}\n"
                       f"{standby.log.read_text()[-2000:] if standby.log.exists() else ''}")


def wait_replayed(primary_url: str, standby_url: str, timeout: float = 30.0) -> None:
    """Until the standby has replayed everything the primary wrote so far."""
    with psycopg.connect(primary_url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_current_wal_insert_lsn()").fetchone()
        assert row is not None
        target = row[0]
    deadline = time.monotonic() + timeout
    with psycopg.connect(standby_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            done = conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (str(target),)).fetchone()
            if done and done[0]:
                return
            time.sleep(0.05)
    raise RuntimeError(f"the standby did not replay up to {target} in {timeout:g} s")


def set_replay(standby_url: str, paused: bool) -> None:
    with psycopg.connect(standby_url, autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_pause()" if paused else "SELECT pg_wal_replay_resume()")
