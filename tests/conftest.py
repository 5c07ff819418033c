"""Shared fixtures. Backends are parametrized here; every test gets its own database and scope ids."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from memstrata import Memory
from memstrata.providers.embedders import HashEmbedder, default_embedder

STORE_BACKENDS = ["sqlite", "postgres"]


def make_sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'memory.db'}"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backends", default=",".join(STORE_BACKENDS),
        help="the SQL engines that store-backed tests and the contract suite run on, comma-separated"
             f" (default: {','.join(STORE_BACKENDS)})",
    )


def selected_backends(config: pytest.Config) -> list[str]:
    names = [b.strip() for b in str(config.getoption("--backends")).split(",") if b.strip()]
    unknown = sorted(set(names) - set(STORE_BACKENDS))
    if unknown or not names:
        raise pytest.UsageError(f"--backends: choose from {', '.join(STORE_BACKENDS)} (got {unknown or 'none'})")
    return names


def pytest_configure(config: pytest.Config) -> None:
    selected_backends(config)  # a bad --backends stops the run before collection


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Every test that uses a store URL, directly or through a fixture, runs once per selected engine.
    for name in ("store_url", "sql_backend"):
        if name in metafunc.fixturenames:
            metafunc.parametrize(name, selected_backends(metafunc.config), indirect=True)
            return


@pytest.fixture
def sql_backend(request: pytest.FixtureRequest) -> str:
    """The name of the SQL engine this test runs on (one of ``--backends``)."""
    return str(request.param)


@pytest.fixture
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store URL for each backend in ``--backends``."""
    if request.param == "sqlite":
        return make_sqlite_url(tmp_path)
    if request.param == "postgres":
        from pg_support import fresh_database

        return fresh_database(request)
    raise AssertionError(f"unknown backend {request.param}")


@pytest.fixture
def mem(store_url: str) -> Iterator[Memory]:
    """A Memory on a fresh store with the fast deterministic embedder."""
    m = Memory(store_url, embedder=HashEmbedder())
    yield m
    m.close()


@pytest.fixture(scope="session")
def minilm():  # type: ignore[no-untyped-def]
    emb = default_embedder()
    emb.warm_up()
    return emb


@pytest.fixture
def real_mem(store_url: str, minilm) -> Iterator[Memory]:  # type: ignore[no-untyped-def]
    """A Memory with the real MiniLM embedder (quality tests)."""
    m = Memory(store_url, embedder=minilm)
    yield m
    m.close()


@pytest.fixture
def uid() -> str:
    """A unique user id, so tests never share a scope."""
    return f"user-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> str:
    """A new, migrated PostgreSQL database (embedded, with pgvector) for one test, dropped after it."""
    from pg_support import fresh_database

    return fresh_database(request)
