"""What else the user said in answer to the same question, earlier or later: evidence for the head model.

:func:`~memstrata.retrieve.revisions.newer_first` pairs an earlier statement with a later one when the two are
near each other as sentences and both answer the query. Many changes are said in passing and pass neither
test on its own ("I get in at 7:40 on the 6:52" in March, "cycling in now, about 25 minutes each way" in
June: both answer "how do I get to work?", little else in common). Whether such a pair is a change or two
answers that stand side by side ("I volunteer at the food bank", "I coach under-9s on Saturdays") is what
the head model can weigh against everything else it reads, if it is told the pair is there.

So each of the user's own statements among the first results is given four readings of the others: how
strongly a statement said at least a day later, and one said at least a day earlier, answer the same query
(the other's nearness to the query as a share of this one's, at most 1), and the same times their cosine to
each other. They are recorded as stages (``later_answer``, ``earlier_answer``, ``later_near``,
``earlier_near``) for :mod:`memstrata.retrieve.head_order`; nothing is moved here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from memstrata.retrieve.revisions import DAY, own_statement, relevance_of

if TYPE_CHECKING:
    from memstrata.retrieve.pipeline import Hit
    from memstrata.retrieve.revisions import StatementReader

STAGES = ("later_answer", "earlier_answer", "later_near", "earlier_near")


def mark_rivals(head: Sequence[Hit], vectors: dict[str, np.ndarray], texts: dict[str, str],
                reader: StatementReader, span: int) -> None:
    """Record the four readings (see the module) on each of the user's own statements in ``head[:span]``;
    ``vectors`` and ``texts`` are what each hit says in answer to the query (its answering sentence for a
    long message)."""
    own = [h for h in head[:span] if h.record.id in vectors
           and own_statement(h, texts.get(h.record.id, h.record.text), reader)]
    if len(own) < 2:
        return
    mat = np.stack([np.asarray(vectors[h.record.id], dtype=np.float32) for h in own])
    cos = np.clip(mat @ mat.T, 0.0, 1.0)
    rel = np.maximum(np.array([relevance_of(h) for h in own]), 1e-6)
    at = np.array([h.record.created_at for h in own])
    share = np.minimum(1.0, rel[None, :] / rel[:, None])  # row i, column j: j's relevance as a share of i's
    later = at[None, :] >= at[:, None] + DAY
    earlier = at[None, :] + DAY <= at[:, None]
    for i, h in enumerate(own):
        for name, mask in (("later", later[i]), ("earlier", earlier[i])):
            if mask.any():
                h.stages[f"{name}_answer"] = round(float(share[i][mask].max()), 3)
                h.stages[f"{name}_near"] = round(float((share[i] * cos[i])[mask].max()), 3)
