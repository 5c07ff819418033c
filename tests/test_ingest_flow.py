"""The add flow on its own (no facade), and the writer that keeps a separate vector tier in step with the
store for every writer: add, edits, import, erasure."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from memstrata import Memory
from memstrata.backends.inprocess import InProcessShortTerm, InProcessWorking
from memstrata.backends.memory_vectors import NumpyVectors
from memstrata.backends.sqlite import SQLiteStore
from memstrata.config import IngestConfig
from memstrata.errors import ConfigurationError, ProviderError
from memstrata.ingest.candidate import Candidate, Message
from memstrata.ingest.flow import IngestFlow
from memstrata.ingest.rules import RulesExtractor
from memstrata.ingest.writer import Writer
from memstrata.models import EpisodeRecord, Scope
from memstrata.providers.embedders import resolve_embedder
from memstrata.tiers.base import Capability
from memstrata.tiers.stack import Tiers

SCOPE = Scope.of(user_id="u")


class FlakyExtractor:
    """The rules extractor behind a switch that makes it fail the way a model provider does."""

    def __init__(self) -> None:
        self.down = True
        self.rules = RulesExtractor()

    def extract(self, messages: Sequence[Message], now: datetime) -> list[Candidate]:
        if self.down:
            raise ProviderError("the model is down")
        return self.rules.extract(messages, now)


@pytest.fixture
def flow(tmp_path: Path) -> Iterator[tuple[IngestFlow, list[tuple[Scope, str, list[EpisodeRecord]]]]]:
    embedder = resolve_embedder("hash")
    store = SQLiteStore(str(tmp_path / "m.db"), dim=embedder.dim)
    tiers = Tiers(store, InProcessShortTerm(60), InProcessWorking())
    seen: list[tuple[Scope, str, list[EpisodeRecord]]] = []
    flow = IngestFlow(tiers, Writer(store), embedder, config=IngestConfig(), extractor=FlakyExtractor(),
                      actor="test", observe=lambda scope, conv, eps: seen.append((scope, conv, eps)))
    yield flow, seen
    store.close()


def test_episodes_are_durable_and_retried_after_a_provider_failure(flow: Any) -> None:
    ingest, seen = flow
    out = ingest.add(SCOPE, "I live in Lisbon.", conversation_id="c", timestamp=None, metadata=None, infer=True)
    assert out["results"] == [] and out["failed"] == {"reason": "the model is down", "retryable": True}
    store = ingest.tiers.store
    (episode,) = store.list_episodes(SCOPE)
    assert episode.id == out["episodes"][0] and episode.extraction_status == "failed"
    assert ingest.tiers.short_term.recent(SCOPE, "c", 5)[0].episode_id == episode.id  # the cache saw it too
    assert seen[0][0] == SCOPE and seen[0][1] == "c" and [e.id for e in seen[0][2]] == [episode.id]
    assert ingest.retry_failed(SCOPE)["still_failed"] == 1

    ingest.extractor.down = False
    again = ingest.retry_failed(SCOPE)
    assert again["retried"] == 1 and again["still_failed"] == 0
    assert any("Lisbon" in r["memory"] for r in again["results"])
    assert store.list_episodes(SCOPE)[0].extraction_status == "done"
    assert ingest.retry_failed(SCOPE)["retried"] == 0


def test_a_cache_outage_is_a_warning_not_a_failure(flow: Any) -> None:
    from memstrata.errors import BackendUnavailableError

    ingest, _ = flow
    ingest.extractor.down = False

    def broken(scope: Scope, conv: str, eps: list[EpisodeRecord]) -> None:
        raise BackendUnavailableError("working tier unreachable")

    ingest.observe = broken
    out = ingest.add(SCOPE, "I live in Lisbon.", conversation_id="c", timestamp=None, metadata=None, infer=True)
    assert out["results"] and out["warnings"] == ["working memory was not updated: working tier unreachable"]


def test_llm_mode_without_an_extractor_is_refused_after_the_episode_is_stored(tmp_path: Path) -> None:
    with Memory(f"sqlite:///{tmp_path}/m.db", embedder="hash", ingest=IngestConfig(mode="llm")) as m:
        with pytest.raises(ConfigurationError, match="extractor=LLMExtractor"):
            m.add("I live in Lisbon.", user_id="u")
        assert [e["extraction_status"] for e in m.episodes(user_id="u")["results"]] == ["failed"]


@pytest.fixture
def split(tmp_path: Path) -> Iterator[Memory]:
    with Memory(f"sqlite:///{tmp_path}/m.db", embedder="hash", vectors=NumpyVectors(resolve_embedder("hash").dim)) as m:
        yield m


def test_the_vector_tier_is_declared_and_follows_every_writer(split: Memory, tmp_path: Path) -> None:
    m = split
    assert m.tiers.supports(Capability.EXTERNAL_VECTORS) and m.tiers.supports(Capability.PRIVACY)
    assert m.stats()["vector_backend"] == "NumpyVectors"
    scope = m._scope("ann", None, None, None)
    index = m.vectors
    assert index is not None
    m.add("I live in Berlin.", user_id="ann")
    m.add("My dog is called Rex.", user_id="ann")
    assert index.count(scope) == 2 == m.stats(user_id="ann")["vector_index_memories"]

    exported = m.export_user("ann")
    m.forget_user("ann")  # erasure reaches the index, not only the store
    assert index.count(scope) == 0 and m.get_all(user_id="ann")["results"] == []
    m.import_user(exported)  # and an import fills it again
    assert index.count(scope) == 2
    vec = m.embedder.embed(["I live in Berlin."])[0]
    top = index.search(scope, vec, 1)[0][0]  # an import gives new ids
    assert m.get(top, user_id="ann")["memory"] == "I live in Berlin."
    assert m.search("Berlin", user_id="ann")["results"][0]["id"] == top


def test_rebuild_needs_a_vector_tier(tmp_path: Path) -> None:
    with Memory(f"sqlite:///{tmp_path}/m.db", embedder="hash") as m:
        assert m.vectors is None and not m.tiers.supports("external_vectors")
        with pytest.raises(ConfigurationError, match="no separate vector tier"):
            m.writer.rebuild(SCOPE)
