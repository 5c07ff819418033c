"""LongMemEval retrieval benchmark: ``python bench/longmemeval.py [PATH] [--systems flat,bm25] [--limit N] [--write]``.

A thin wrapper over ``memstrata.evaluation.longmemeval``; PATH defaults to the shared dev100 file.
"""

from __future__ import annotations

from pathlib import Path

from memstrata.evaluation.longmemeval import main

BENCH = Path(__file__).resolve().parent
DATA = "shared/data/longmemeval_s_dev100.jsonl"


def default_path() -> str | None:
    for root in (BENCH.parent, BENCH.parent.parent):
        if (root / DATA).exists():
            return str(root / DATA)
    return None


if __name__ == "__main__":
    main(path=default_path(), results=str(BENCH / "RESULTS.md"), out=str(BENCH / "out"))
