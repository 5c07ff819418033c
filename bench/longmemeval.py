"""LongMemEval retrieval benchmark: ``python bench/longmemeval.py [PATH] [--systems flat,bm25] [--limit N] [--write]``.

The ``memstrata bench longmemeval`` command with this repository's paths as defaults: PATH is the shared dev100
file, results go to bench/RESULTS.md and the per-question dump to bench/out.
"""

from __future__ import annotations

from pathlib import Path

from memstrata.cli.bench import bench_longmemeval

BENCH = Path(__file__).resolve().parent
DATA = "shared/data/longmemeval_s_dev100.jsonl"


def default_path() -> str | None:
    for root in (BENCH.parent, BENCH.parent.parent):
        if (root / DATA).exists():
            return str(root / DATA)
    return None


if __name__ == "__main__":
    defaults = {"results": str(BENCH / "RESULTS.md"), "out": str(BENCH / "out")}
    path = default_path()
    if path:
        defaults["path"] = path
    bench_longmemeval.main(prog_name="python bench/longmemeval.py", default_map=defaults)
