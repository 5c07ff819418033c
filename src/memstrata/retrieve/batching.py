"""Query embeddings of concurrent searches, computed together.

A search embeds one short query. Under concurrent load several threads do so at once, and each call pays the
model's fixed cost (tokenizing, the session's setup, one pass of small matrix products per layer) for a single
row. ``QueryBatcher`` is an ``embed(list[str]) -> array`` callable in front of the real one: the first caller
to arrive while nobody is embedding embeds at once (a lone search waits for nothing); callers that arrive while
an embedding runs queue up, and the next of them embeds the whole queue in one call when the running one ends.
Under sustained concurrency the batch may also wait a short window (``window`` seconds, at most) for more
callers, until ``max_batch`` are queued.

A batch pads every query to its longest one, so queries are grouped by token count before embedding: a query
joins a group only while its length exceeds the group's mean by no more than ``call_tokens``, the fixed cost
of one call counted in tokens. The padding a group adds then never exceeds the calls it saves; a lone long
query is embedded on its own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import numpy as np

from memstrata.errors import ConfigurationError

WINDOW_SECONDS = 0.002
MAX_BATCH = 16
CALL_TOKENS = 12  # MiniLM int8 on one thread: one call costs about as much as a dozen tokens of one query


class _Waiter:
    __slots__ = ("text", "vector", "error", "done")

    def __init__(self, text: str) -> None:
        self.text = text
        self.vector: np.ndarray | None = None
        self.error: BaseException | None = None
        self.done = False


def length_groups(tokens: Sequence[int], call_tokens: float) -> list[list[int]]:
    """Indexes of ``tokens`` cut into groups worth one embedding call each (shortest first): sorted by length,
    a query joins the open group when it is no more than ``call_tokens`` longer than the group's mean."""
    groups: list[list[int]] = []
    total = 0
    for i in sorted(range(len(tokens)), key=lambda j: tokens[j]):
        if groups and tokens[i] - total / len(groups[-1]) <= call_tokens:
            groups[-1].append(i)
            total += tokens[i]
        else:
            groups.append([i])
            total = tokens[i]
    return groups


class QueryBatcher:
    """``embed(list[str])`` that merges the single-query calls of concurrent threads into batched ones.

    ``embed``: the inner embedding function (rows L2-normalised, one per text); ``count_tokens``: the
    embedder's token count of a text (groups queries of similar length). Calls with more than one text go
    straight to ``embed``: they are batches already.
    """

    def __init__(self, embed: Callable[[list[str]], np.ndarray], count_tokens: Callable[[str], int], *,
                 window: float = WINDOW_SECONDS, max_batch: int = MAX_BATCH, call_tokens: float = CALL_TOKENS) -> None:
        if window < 0 or window > 1:
            raise ConfigurationError(f"query batching: window must be between 0 and 1 second, got {window}")
        if max_batch < 1:
            raise ConfigurationError(f"query batching: max_batch must be at least 1, got {max_batch}")
        if call_tokens < 0:
            raise ConfigurationError(f"query batching: call_tokens must not be negative, got {call_tokens}")
        self._embed, self._count = embed, count_tokens
        self.window, self.max_batch, self.call_tokens = window, max_batch, call_tokens
        self._cv = threading.Condition()
        self._queue: list[_Waiter] = []
        self._busy = False
        self._last_batch = 0
        self.calls = 0  # inner embedding calls made for single queries
        self.queries = 0  # single queries embedded

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) != 1:
            return self._embed(list(texts))
        me = _Waiter(texts[0])
        with self._cv:
            self._queue.append(me)
            self._cv.notify_all()  # a leader waiting out its window counts the newcomer
            while self._busy and not me.done:
                self._cv.wait()
            if not me.done:
                batch = self._lead(me)
        if not me.done:
            self._run(batch)
        if me.error is not None:
            raise me.error
        assert me.vector is not None
        return me.vector[None, :]

    def _lead(self, me: _Waiter) -> list[_Waiter]:
        """Called with the lock held by the caller that embeds next: its batch, itself first."""
        self._busy = True
        if self.window > 0 and (self._last_batch > 1 or len(self._queue) > 1):
            # Concurrent searches are arriving: give the batch a moment to fill.
            deadline = time.monotonic() + self.window
            try:
                while len(self._queue) < self.max_batch:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cv.wait(left)
            except BaseException:  # interrupted while waiting: hand the queue to the next caller
                self._queue.remove(me)
                self._busy = False
                self._cv.notify_all()
                raise
        self._queue.remove(me)
        batch = [me, *self._queue[: self.max_batch - 1]]
        del self._queue[: self.max_batch - 1]
        self._last_batch = len(batch)
        return batch

    def _run(self, batch: list[_Waiter]) -> None:
        try:
            # A lone query needs no token count (its own call costs what it costs).
            groups = [[0]] if len(batch) == 1 else length_groups([self._count(w.text) for w in batch],
                                                                 self.call_tokens)
            for group in groups:
                members = [batch[i] for i in group]
                try:
                    rows = self._embed([w.text for w in members])
                    if len(rows) != len(members):
                        raise ValueError(f"the embedder returned {len(rows)} rows for {len(members)} texts")
                except Exception as exc:  # every caller of the group sees its own embedder's error
                    for w in members:
                        w.error = exc
                else:
                    for w, row in zip(members, rows, strict=True):
                        w.vector = np.asarray(row)
                self.calls += 1
            self.queries += len(batch)
        finally:
            with self._cv:
                for w in batch:
                    if w.vector is None and w.error is None:
                        w.error = RuntimeError("query embedding was interrupted")
                    w.done = True
                self._busy = False
                self._cv.notify_all()
