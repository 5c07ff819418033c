"""The backend registry: built-in schemes, third-party schemes registered in code or by an entry point."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from memstrata import Memory
from memstrata.backends import registry
from memstrata.backends.inprocess import InProcessShortTerm, InProcessWorking
from memstrata.backends.memory_vectors import NumpyVectors
from memstrata.backends.sqlite import SQLiteStore
from memstrata.errors import ConfigurationError
from memstrata.tiers.base import ShortTermTier, Store, WorkingTier
from memstrata.tiers.vectors import VectorTier


@pytest.fixture(autouse=True)
def _isolated_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test registers into copies of the tables and loads entry points afresh."""
    monkeypatch.setattr(registry, "_stores", dict(registry._stores))
    monkeypatch.setattr(registry, "_vectors", dict(registry._vectors))
    monkeypatch.setattr(registry, "_caches", dict(registry._caches))
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    yield


def _path_of(url: str) -> str:
    return url.split("://", 1)[1]


def test_a_registered_store_scheme_serves_memory(tmp_path: Path) -> None:
    opened: list[tuple[str, int]] = []

    def factory(url: str, dim: int, **options: Any) -> Store:
        opened.append((url, dim))
        return SQLiteStore(_path_of(url), dim=dim, **options)

    registry.register_store("MyScheme", factory)
    url = f"myscheme://{tmp_path / 'mine.db'}"
    with Memory(url, embedder="hash") as m:
        added = m.add("I live in Lisbon.", user_id="u", infer=False)["results"][0]["id"]
        assert m.search("Lisbon", user_id="u")["results"][0]["id"] == added
        assert isinstance(m.store, SQLiteStore)
    assert opened == [(url, m.embedder.dim)]
    assert (tmp_path / "mine.db").exists()
    with Memory(f"sqlite:///{tmp_path / 'mine.db'}", embedder="hash") as plain:  # the same file, by the built-in
        assert [r["id"] for r in plain.get_all(user_id="u")["results"]] == [added]


def test_registered_vector_and_cache_schemes(tmp_path: Path) -> None:
    made: dict[str, Any] = {}

    def vectors(url: str, dim: int) -> VectorTier:
        made["vectors"] = NumpyVectors(dim)
        return made["vectors"]  # type: ignore[no-any-return]

    def cache(url: str, ttl: float) -> tuple[ShortTermTier, WorkingTier]:
        made["ttl"] = ttl
        made["short"] = InProcessShortTerm(ttl)
        return made["short"], InProcessWorking()

    registry.register_vectors("numpy", vectors)
    registry.register_cache("local", cache)
    with Memory(f"sqlite:///{tmp_path}/m.db", embedder="hash", vectors="numpy://", cache="local://x",
                short_term_ttl=60) as m:
        assert m.vectors is made["vectors"] and m.short_term is made["short"] and made["ttl"] == 60
        added = m.add("I live in Lisbon.", user_id="u", conversation_id="c")["results"][0]["id"]
        assert made["vectors"].count(m._scope("u", None, None, None)) >= 1
        assert added in [r["id"] for r in m.search("where do I live?", user_id="u")["results"]]
        assert m.short_term.recent(m._scope("u", None, None, None), "c", 5)[0].content == "I live in Lisbon."


def test_unknown_schemes_name_what_is_supported() -> None:
    with pytest.raises(ConfigurationError, match="unknown scheme 'nosuch'"):
        registry.open_store("nosuch://x", 8)
    with pytest.raises(ConfigurationError, match=r"vectors: unknown scheme .*qdrant"):
        registry.open_vector_tier("nosuch://x", 8)
    with pytest.raises(ConfigurationError, match=r"cache: unknown scheme .*redis"):
        registry.open_cache("nosuch://x", 60)
    with pytest.raises(ConfigurationError, match="bare scheme"):
        registry.register_store("bad://", lambda url, dim, **o: SQLiteStore(":memory:", dim=dim))


def test_a_plugin_registers_through_an_entry_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "memstrata_plugin_demo.py").write_text(
        "from memstrata.backends.registry import register_store\n"
        "from memstrata.backends.sqlite import SQLiteStore\n"
        "calls = []\n"
        "def register():\n"
        "    calls.append('register')\n"
        "    register_store('demo', lambda url, dim, **o: SQLiteStore(url.split('://', 1)[1], dim=dim, **o))\n"
    )
    dist = tmp_path / "memstrata_plugin_demo-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: memstrata-plugin-demo\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        f"[{registry.ENTRY_POINT_GROUP}]\ndemo = memstrata_plugin_demo:register\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with Memory(f"demo://{tmp_path / 'p.db'}", embedder="hash") as m:
        m.add("hello", user_id="u", infer=False)
        assert m.stats(user_id="u")["memories"] == 1
    plugin = sys.modules["memstrata_plugin_demo"]
    assert plugin.calls == ["register"]
    registry.open_store(f"demo://{tmp_path / 'q.db'}", 8).close()  # loaded once, not per lookup
    assert plugin.calls == ["register"]


def test_the_encrypted_store_refusal_applies_to_every_scheme(tmp_path: Path) -> None:
    from memstrata.secure import secure_memory

    path = tmp_path / "sealed.db"
    with secure_memory(f"sqlite:///{path}", embedder="hash", master_key=b"k" * 32) as sealed:
        sealed.add("I live in Lisbon.", user_id="u", infer=False)
    registry.register_store("mine", lambda url, dim, **o: SQLiteStore(_path_of(url), dim=dim, **o))
    with pytest.raises(ConfigurationError, match="encrypted"):
        Memory(f"mine://{path}", embedder="hash")
