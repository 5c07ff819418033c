"""``memstrata bench``: the retrieval benchmarks, LongMemEval and LoCoMo (bench/longmemeval.py runs the same
command with the repository's data and result paths as defaults), and the project-chat dev set in bench/data."""

from __future__ import annotations

import click


@click.group()
def bench() -> None:
    """Benchmarks (results go to bench/RESULTS.md with --write)."""


@bench.command(name="longmemeval")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--limit", type=int, default=None, help="only the first N instances")
@click.option("--systems", default="memstrata,flat,bm25", show_default=True,
              help="comma-separated: memstrata, memstrata-infer, flat, bm25")
@click.option("--preset", default="balanced", show_default=True, help="memstrata retrieval preset")
@click.option("--embedder", default=None, help="'minilm' (default) or 'hash' (fast, meaningless)")
@click.option("--workdir", default=None, type=click.Path(file_okay=False),
              help="folder for the per-instance databases (default: a temporary one)")
@click.option("--baseline-roles", default="user", show_default=True,
              help="turn roles the baselines index (user or user,assistant)")
@click.option("--memstrata-roles", default="user,assistant", show_default=True,
              help="turn roles added to memstrata")
@click.option("--write", is_flag=True, help="write the tables to the results file")
@click.option("--results", default="bench/RESULTS.md", show_default=True, help="the results file --write updates")
@click.option("--out", default="bench/out", show_default=True, help="folder for the per-question JSON dump")
@click.option("--no-progress", is_flag=True, help="no progress bar")
def bench_longmemeval(path: str, limit: int | None, systems: str, preset: str, embedder: str | None,
                      workdir: str | None, baseline_roles: str, memstrata_roles: str, write: bool, results: str,
                      out: str, no_progress: bool) -> None:
    """Retrieval quality on LongMemEval (a .jsonl of instances): memstrata against flat MiniLM and BM25."""
    from memstrata.evaluation.longmemeval import run_longmemeval

    run_longmemeval(
        path, systems=systems.split(","), limit=limit, preset=preset, workdir=workdir, embedder=embedder,
        baseline_roles=tuple(baseline_roles.split(",")), memstrata_roles=tuple(memstrata_roles.split(",")),
        write=write, results_path=results, out_dir=out, progress=not no_progress,
    )


@bench.command(name="locomo")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--limit", type=int, default=None, help="only the first N conversations")
@click.option("--systems", default="memstrata,flat,bm25", show_default=True,
              help="comma-separated: memstrata, memstrata-infer, flat, bm25")
@click.option("--preset", default="balanced", show_default=True, help="memstrata retrieval preset")
@click.option("--embedder", default=None, help="'minilm' (default) or 'hash' (fast, meaningless)")
@click.option("--k", "k", type=int, default=10, show_default=True, help="recall@k")
@click.option("--include-adversarial", is_flag=True, help="count category 5 in the overall figure")
@click.option("--workdir", default=None, type=click.Path(file_okay=False),
              help="folder for the per-conversation databases (default: a temporary one)")
@click.option("--write", is_flag=True, help="write the tables to the results file")
@click.option("--results", default="bench/RESULTS.md", show_default=True, help="the results file --write updates")
@click.option("--out", default="bench/out", show_default=True, help="folder for the per-question JSON dump")
@click.option("--no-progress", is_flag=True, help="no progress bar")
def bench_locomo(path: str, limit: int | None, systems: str, preset: str, embedder: str | None, k: int,
                 include_adversarial: bool, workdir: str | None, write: bool, results: str, out: str,
                 no_progress: bool) -> None:
    """Dialog-level evidence recall on LoCoMo (its JSON file), per question category."""
    from memstrata.evaluation.locomo import run_locomo

    run_locomo(
        path, systems=systems.split(","), limit=limit, preset=preset, k=k,
        exclude_categories=() if include_adversarial else (5,), workdir=workdir, embedder=embedder,
        write=write, results_path=results, out_dir=out, progress=not no_progress,
    )


@bench.command(name="projectchats")
@click.argument("path", type=click.Path(exists=True, dir_okay=False), default="bench/data/project_chats.json")
@click.option("--systems", default="memstrata,flat,bm25", show_default=True,
              help="comma-separated: memstrata, memstrata-infer, flat, bm25")
@click.option("--preset", default="balanced", show_default=True, help="memstrata retrieval preset")
@click.option("--embedder", default=None, help="'minilm' (default) or 'hash' (fast, meaningless)")
@click.option("--write", is_flag=True, help="write the tables to the results file")
@click.option("--results", default="bench/RESULTS.md", show_default=True, help="the results file --write updates")
@click.option("--out", default="bench/out", show_default=True, help="folder for the per-question JSON dump")
def bench_projectchats(path: str, systems: str, preset: str, embedder: str | None, write: bool, results: str,
                       out: str) -> None:
    """Evidence recall on long project chats (user asides among long, code-heavy assistant replies)."""
    from memstrata.evaluation.projectchats import run_projectchats

    run_projectchats(path, systems=systems.split(","), preset=preset, embedder=embedder, write=write,
                     results_path=results, out_dir=out)


COMMANDS = (bench,)
