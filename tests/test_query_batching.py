"""Query embeddings of concurrent searches merged into batched calls (memstrata.retrieve.batching)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from memstrata import Memory
from memstrata.errors import ConfigurationError
from memstrata.providers.embedders import HashEmbedder
from memstrata.retrieve.batching import QueryBatcher, length_groups


class Recording:
    """A hash embedder that records every call; ``hold`` keeps the first call running until released."""

    def __init__(self, hold: bool = False, fail_on: str | None = None) -> None:
        self.inner = HashEmbedder(dim=32)
        self.calls: list[list[str]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        if not hold:
            self.release.set()
        self.fail_on = fail_on

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        self.entered.set()
        self.release.wait(10)
        if self.fail_on is not None and self.fail_on in texts:
            raise RuntimeError(f"cannot embed {self.fail_on!r}")
        return self.inner.embed(texts)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)


def wait_until(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def run_behind_a_held_call(rec: Recording, batcher: QueryBatcher, target, texts: list[str]) -> None:  # type: ignore[no-untyped-def]
    """Calls ``target(text)`` for each text on its own thread: the first call enters the (held) embedder, the
    others queue behind it, then the embedder is released and every thread finishes."""
    threads = [threading.Thread(target=target, args=(t,)) for t in texts]
    threads[0].start()
    assert rec.entered.wait(10)
    for t in threads[1:]:
        t.start()
    wait_until(lambda: len(batcher._queue) == len(texts) - 1)
    rec.release.set()
    for t in threads:
        t.join(10)


def test_a_lone_query_is_embedded_at_once_and_unchanged() -> None:
    rec = Recording()
    batcher = QueryBatcher(rec.embed, rec.count_tokens, window=0.5)
    t0 = time.monotonic()
    for q in ["where does my sister live?", "what do I drink in the morning?"]:
        row = batcher([q])
        assert row.shape == (1, 32)
        assert np.array_equal(row[0], rec.inner.embed([q])[0])
    # No window was waited out: nobody else was queued (0.5 s per query would show).
    assert time.monotonic() - t0 < 0.4
    assert rec.calls == [["where does my sister live?"], ["what do I drink in the morning?"]]


def test_queries_arriving_during_an_embedding_share_the_next_call() -> None:
    rec = Recording(hold=True)
    batcher = QueryBatcher(rec.embed, rec.count_tokens, window=0.0)
    queries = [f"who lives in city number {i}?" for i in range(6)]
    results: dict[str, np.ndarray] = {}

    def search(q: str) -> None:
        results[q] = batcher([q])[0]

    first = threading.Thread(target=search, args=(queries[0],))
    first.start()
    assert rec.entered.wait(10)  # the first query is being embedded, alone
    rest = [threading.Thread(target=search, args=(q,)) for q in queries[1:]]
    for t in rest:
        t.start()
    wait_until(lambda: len(batcher._queue) == 5)
    rec.release.set()
    for t in [first, *rest]:
        t.join(10)
    assert rec.calls[0] == [queries[0]]
    assert sorted(rec.calls[1]) == sorted(queries[1:])  # the five queued queries: one call
    assert len(rec.calls) == 2
    for q in queries:  # every caller got its own query's row
        assert np.array_equal(results[q], rec.inner.embed([q])[0])
    assert (batcher.calls, batcher.queries) == (2, 6)


def test_max_batch_caps_a_call() -> None:
    rec = Recording(hold=True)
    batcher = QueryBatcher(rec.embed, rec.count_tokens, window=0.0, max_batch=3)
    run_behind_a_held_call(rec, batcher, lambda q: batcher([q]), [f"query {i} about the garden" for i in range(7)])
    assert [len(c) for c in rec.calls] == [1, 3, 3]


def test_a_lone_long_query_is_embedded_apart_from_short_ones() -> None:
    long_query = "what did " + " ".join(f"word{i}" for i in range(60)) + "?"
    rec = Recording(hold=True)
    batcher = QueryBatcher(rec.embed, rec.count_tokens, window=0.0, call_tokens=12)
    texts = ["where is Ana?", "who is Bruno?", long_query, "when is lunch?"]
    run_behind_a_held_call(rec, batcher, lambda q: batcher([q]), texts)
    assert rec.calls[0] == ["where is Ana?"]
    assert sorted(map(sorted, rec.calls[1:])) == sorted([sorted(["who is Bruno?", "when is lunch?"]), [long_query]])


@pytest.mark.parametrize(("tokens", "call_tokens", "groups"), [
    ([5, 6, 7, 8], 12, [[0, 1, 2, 3]]),
    ([5, 6, 70, 8], 12, [[0, 1, 3], [2]]),
    ([5, 30, 31, 6], 12, [[0, 3], [1, 2]]),
    ([5, 6, 7], 0, [[0], [1], [2]]),  # no fixed cost: padding never pays
    ([9, 9, 9], 0, [[0, 1, 2]]),  # equal lengths pad nothing
    ([], 12, []),
])
def test_length_groups_never_pad_more_than_the_calls_they_save(
    tokens: list[int], call_tokens: int, groups: list[list[int]]
) -> None:
    got = length_groups(tokens, call_tokens)
    assert got == groups
    for g in got:
        padding = sum(max(tokens[i] for i in g) - tokens[i] for i in g)
        assert padding <= (len(g) - 1) * call_tokens


def test_an_embedder_error_reaches_every_caller_of_its_call_and_no_other() -> None:
    rec = Recording(hold=True, fail_on="bad query")
    batcher = QueryBatcher(rec.embed, rec.count_tokens, window=0.0)
    outcome: dict[str, str] = {}

    def search(q: str) -> None:
        try:
            batcher([q])
            outcome[q] = "ok"
        except RuntimeError as exc:
            outcome[q] = str(exc)

    texts = ["first one", "bad query", "good query", "a much longer query " + "x " * 40]
    run_behind_a_held_call(rec, batcher, search, texts)
    assert outcome["first one"] == "ok"
    assert outcome["bad query"] == outcome["good query"] == "cannot embed 'bad query'"
    assert outcome[texts[3]] == "ok"  # embedded in a call of its own
    assert np.array_equal(batcher(["after the error"])[0], rec.inner.embed(["after the error"])[0])


def test_a_list_of_texts_passes_straight_through() -> None:
    rec = Recording()
    batcher = QueryBatcher(rec.embed, rec.count_tokens)
    rows = batcher(["a", "b", "c"])
    assert rows.shape == (3, 32)
    assert rec.calls == [["a", "b", "c"]]
    assert batcher([]).shape == (0, 32)


@pytest.mark.parametrize(("kwargs", "named"), [
    ({"window": -0.1}, "window"), ({"window": 5.0}, "window"), ({"max_batch": 0}, "max_batch"),
    ({"call_tokens": -1}, "call_tokens"),
])
def test_bad_settings_are_refused_by_name(kwargs: dict[str, float], named: str) -> None:
    rec = Recording()
    with pytest.raises(ConfigurationError, match=named):
        QueryBatcher(rec.embed, rec.count_tokens, **kwargs)  # type: ignore[arg-type]


def test_batched_minilm_vectors_match_single_ones(minilm) -> None:  # type: ignore[no-untyped-def]
    """Padding a query inside a batch leaves its embedding as it was (the attention mask hides the padding)."""
    queries = ["Where does my sister Ana live?", "When is the dentist appointment?", "What do I drink?",
               "How much did I pay for the winter coat in Lisbon last year?"]
    alone = np.vstack([minilm.embed([q]) for q in queries])
    together = minilm.embed(queries)
    assert np.min(np.sum(alone * together, axis=1)) > 0.999


def test_concurrent_searches_through_memory_find_the_same_memories(tmp_path, minilm) -> None:  # type: ignore[no-untyped-def]
    """Searches from many threads at once (their query vectors batched) rank as the same searches one by one."""
    facts = ["My sister Ana lives in Lisbon.", "I drink green tea every morning.", "Bruno works as a pilot.",
             "The dentist appointment is on Friday.", "I paid 300 euros for a bicycle in Porto.",
             "Chen's birthday is on 4 May.", "My landlord Goran lives in Berlin."]
    queries = ["where does my sister live?", "what do I drink in the morning?", "what is Bruno's job?",
               "when is the dentist?", "how much was the bicycle?", "when is Chen's birthday?",
               "who is my landlord?", "which city does Goran live in?"]
    with Memory(f"sqlite:///{tmp_path / 'm.db'}", embedder=minilm) as m:
        m.add([{"role": "user", "content": f} for f in facts], user_id="u", infer=False)
        alone = {q: [r["id"] for r in m.search(q, user_id="u", limit=3)["results"]] for q in queries}
        m._qcache.clear()
        together: dict[str, list[str]] = {}
        barrier = threading.Barrier(len(queries))

        def search(q: str) -> None:
            barrier.wait()
            together[q] = [r["id"] for r in m.search(q, user_id="u", limit=3)["results"]]

        threads = [threading.Thread(target=search, args=(q,)) for q in queries]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert together == alone
    assert alone["where does my sister live?"][0] != alone["what is Bruno's job?"][0]
