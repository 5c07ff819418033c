"""The tier contract suite: the same tests over every SQL store, chosen with ``--backends`` (default: all).

A test asks for ``store`` (a fresh store of the engine) or ``open_store`` (more store objects on the same
database, as other processes would open it). Tests skip only when the store does not declare the
capability they need (``store.supports(...)``), never by engine name.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tier_support import DIM, StoreFactory

from memstrata.models import Scope
from memstrata.tiers.base import Codec, Store


@pytest.fixture
def open_store(sql_backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Opens store objects on this test's database (one fresh database per test); closes them after."""
    opened: list[Store] = []
    target: dict[str, str] = {}

    def open_one(codec: Codec | None = None) -> Store:
        if sql_backend == "sqlite":
            from memstrata.backends.sqlite import SQLiteStore

            store: Store = SQLiteStore(tmp_path / "contract.db", dim=DIM, codec=codec)
        else:
            from memstrata.backends.postgres import PostgresStore
            from pg_support import fresh_database

            if "url" not in target:
                target["url"] = fresh_database(request)
            store = PostgresStore(target["url"], dim=DIM, codec=codec, pool_max=4)
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: StoreFactory) -> Store:
    return open_store()


@pytest.fixture
def scope() -> Scope:
    return Scope.of(user_id=f"u-{uuid.uuid4().hex[:8]}", agent_id="agent")
