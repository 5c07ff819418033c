"""The privacy tests' view of a backend: a fresh store URL, raw SQL behind the library's back, and the
bytes the backend has written (database files and logs), for tests that grep storage for plaintext.

    @pytest.fixture(params=PRIVACY_BACKENDS)
    def raw(request, tmp_path) -> RawStore: return raw_store(request, tmp_path)

SQL is written once with ``?`` placeholders; it runs on SQLite as is and on PostgreSQL with ``%s``.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PRIVACY_BACKENDS = ["sqlite", "postgres"]


@dataclass
class RawStore:
    backend: str
    url: str
    path: Path | None = None  # the SQLite file
    data_dir: Path | None = None  # the PostgreSQL server's data directory (shared by every test database)

    def sql(self, statement: str, args: tuple[Any, ...] | list[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement outside the library (committed at once); the rows it returns, if any."""
        if self.backend == "sqlite":
            assert self.path is not None
            conn = sqlite3.connect(self.path)
            try:
                cur = conn.execute(statement, tuple(args))
                rows = cur.fetchall() if cur.description else []
                conn.commit()
                return rows
            finally:
                conn.close()
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as pg:
            found = pg.execute(statement.replace("?", "%s"), tuple(args))  # type: ignore[arg-type]
            return [tuple(r) for r in found.fetchall()] if found.description else []

    def stored_bytes(self) -> bytes:
        """Everything the backend has on disk, lower-cased: the SQLite file with its WAL and shared-memory
        index; for PostgreSQL every file of the server (tables, indexes, the WAL) after a checkpoint.

        The PostgreSQL server is shared by the whole test session, so probe with strings unique to a test."""
        if self.backend == "sqlite":
            assert self.path is not None
            parts = [self.path, self.path.with_name(self.path.name + "-wal"),
                     self.path.with_name(self.path.name + "-shm")]
            return b"".join(p.read_bytes() for p in parts if p.exists()).lower()
        assert self.data_dir is not None
        self.sql("CHECKPOINT")  # dirty pages reach the table files; the WAL already has every change
        chunks = []
        for root, _dirs, files in os.walk(self.data_dir):
            for name in files:
                try:
                    chunks.append((Path(root) / name).read_bytes())
                except OSError:
                    continue  # a file removed while we walked (a finished temp file, a recycled segment)
        return b"".join(chunks).lower()


def raw_store(request: pytest.FixtureRequest, tmp_path: Path, backend: str | None = None) -> RawStore:
    """A fresh, empty store of ``backend`` (default: the fixture's param) for one test."""
    name = backend or request.param
    if name == "sqlite":
        path = tmp_path / "memory.db"
        return RawStore("sqlite", f"sqlite:///{path}", path=path)
    if name == "postgres":
        from pg_support import fresh_database, session_server

        url = fresh_database(request)
        return RawStore("postgres", url, data_dir=session_server(request.config).data)
    raise AssertionError(f"unknown backend {name}")
