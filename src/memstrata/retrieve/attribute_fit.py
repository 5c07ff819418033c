"""Answers about the attribute a query asks for come before answers about a neighbouring one.

"Where do I work?" and "These days I bike to the office" sit close together for the embedder: both speak of
work. Yet the query asks for an employer and the statement says how the user gets there. The reader knows a
few dozen attributes by plain example statements (a job, a commute, a home, a phone, a diet, ...: the same
examples ingestion uses to tell which attribute a statement sets). When the query sits clearly in one of
them, each result at the head is read by what it says in answer (a long message by its sentence nearest the
query): one that sits clearly in another attribute weighs less, one in the asked attribute weighs more, and
one in no attribute the reader knows keeps its score. Nothing leaves the results.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from memstrata.retrieve.pipeline import Hit
    from memstrata.retrieve.revisions import StatementReader

OTHER_ATTRIBUTE = 0.6  # a result that clearly sets another attribute than the one asked about
SAME_ATTRIBUTE = 1.2  # a result that sets the attribute asked about
# "Clearly another": its nearest attribute is at least this near and this much nearer than the asked one.
MIN_COSINE = 0.4
MIN_MARGIN = 0.06


def fit_attribute(head: list[Hit], vectors: dict[str, np.ndarray], qvec: np.ndarray, reader: StatementReader,
                  window: int) -> list[Hit]:
    """``head`` with its first ``window`` results re-weighed by the attribute each sets against the one the
    query asks about (stage ``attribute``), and re-sorted; unchanged when the query names no attribute.
    ``vectors``: what each result says in answer to the query, by memory id."""
    asked = reader.attribute(qvec)
    if asked is None:
        return head
    top = head[:window]
    read = [h for h in top if h.record.id in vectors]
    names, table = reader.attributes(np.stack([vectors[h.record.id] for h in read])) if read else ([], None)
    if table is None or asked not in names:
        return head
    col = names.index(asked)
    for h, row in zip(read, table, strict=True):
        nearest = int(np.argmax(row))
        if nearest == col:
            weight = SAME_ATTRIBUTE
        elif row[nearest] >= MIN_COSINE and row[nearest] - row[col] >= MIN_MARGIN:
            weight = OTHER_ATTRIBUTE
        else:
            continue
        h.score *= weight
        h.stages["attribute"] = weight
    top.sort(key=lambda h: (-h.score, h.record.created_at, h.record.id))
    return top + head[window:]
