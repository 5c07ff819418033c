"""Retrieval benchmarks (LongMemEval, LoCoMo), their metrics and in-process baselines.

Run ``memstrata bench longmemeval PATH`` (or ``python bench/longmemeval.py``) and ``memstrata bench locomo PATH``;
see ``run_longmemeval`` and ``run_locomo``.
"""

from memstrata.evaluation.metrics import (
    aggregate,
    ndcg_at_k,
    percentile,
    recall_all_at_k,
    recall_any_at_k,
    session_cutoff,
    session_ranking,
)

__all__ = [
    "aggregate",
    "ndcg_at_k",
    "percentile",
    "recall_all_at_k",
    "recall_any_at_k",
    "run_locomo",
    "run_longmemeval",
    "session_cutoff",
    "session_ranking",
]


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    # The runners pull in the embedder stack; load them only when asked for.
    if name == "run_longmemeval":
        from memstrata.evaluation.longmemeval import run_longmemeval

        return run_longmemeval
    if name == "run_locomo":
        from memstrata.evaluation.locomo import run_locomo

        return run_locomo
    raise AttributeError(f"module 'memstrata.evaluation' has no attribute {name!r}")
