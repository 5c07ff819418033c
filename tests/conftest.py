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


@pytest.fixture(params=STORE_BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store URL for each backend in STORE_BACKENDS."""
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
