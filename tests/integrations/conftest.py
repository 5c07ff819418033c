"""Fixtures for the framework integrations. These tests run in their own environment (``make
test-integrations``): the frameworks are not dependencies of memstrata's main test environment."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from memstrata import Memory
from memstrata.providers.embedders import HashEmbedder


@pytest.fixture
def memory(tmp_path: Path) -> Iterator[Memory]:
    """A Memory on a fresh SQLite store with the deterministic embedder."""
    m = Memory(f"sqlite:///{tmp_path / 'memory.db'}", embedder=HashEmbedder())
    yield m
    m.close()


@pytest.fixture
def engine_memory(store_url: str) -> Iterator[Memory]:
    """A Memory on each store engine (SQLite and PostgreSQL + pgvector), deterministic embedder."""
    m = Memory(store_url, embedder=HashEmbedder())
    yield m
    m.close()


@pytest.fixture
def real_memory(tmp_path: Path, minilm) -> Iterator[Memory]:  # type: ignore[no-untyped-def]
    """A Memory with the real MiniLM embedder, for retrieval on real text."""
    m = Memory(f"sqlite:///{tmp_path / 'real.db'}", embedder=minilm)
    yield m
    m.close()


@pytest.fixture
def user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"
