"""``memstrata bench``: the retrieval benchmarks, LongMemEval and LoCoMo (bench/longmemeval.py runs the same
command with the repository's data and result paths as defaults), and the project-chat dev set in bench/data."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click


def _embed_cache_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--embed-cache DIR`` / ``--no-embed-cache``: the benchmark embedding cache, on by default."""
    command = click.option("--no-embed-cache", is_flag=True,
                           help="embed every text, with no benchmark embedding cache")(command)
    return click.option("--embed-cache", "embed_cache", default=None, type=click.Path(file_okay=False),
                        envvar="MEMSTRATA_BENCH_CACHE", show_envvar=True,
                        help="folder of the benchmark embedding cache, keyed by embedder and text hash "
                             "(default: .memstrata/bench-cache)")(command)


def _cache_dir(embed_cache: str | None, no_embed_cache: bool) -> str | None:
    if no_embed_cache:
        if embed_cache is not None:
            raise click.UsageError("--embed-cache and --no-embed-cache exclude each other")
        return None
    from memstrata.evaluation.embed_cache import default_cache_dir

    return embed_cache if embed_cache is not None else str(default_cache_dir())


@click.group()
def bench() -> None:
    """Benchmarks (results go to bench/RESULTS.md with --write)."""


@bench.command(name="longmemeval")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--limit", type=click.IntRange(min=0), default=None, help="only N instances (from --offset on)")
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True,
              help="skip the first N instances of the file")
@click.option("--runs", "runs_dir", default=None, type=click.Path(file_okay=False),
              help="folder keeping one record per system and instance: finished ones are not run again, and "
                   "the tables (section longmemeval-full) cover every record in range")
@click.option("--merge-only", is_flag=True, help="with --runs: run nothing, summarise the saved records")
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
@_embed_cache_options
def bench_longmemeval(path: str, limit: int | None, offset: int, runs_dir: str | None, merge_only: bool,
                      systems: str, preset: str, embedder: str | None, workdir: str | None, baseline_roles: str,
                      memstrata_roles: str, write: bool, results: str, out: str, no_progress: bool,
                      embed_cache: str | None, no_embed_cache: bool) -> None:
    """Retrieval quality on LongMemEval (a .jsonl of instances): memstrata against flat MiniLM and BM25."""
    from memstrata.evaluation.longmemeval import run_longmemeval

    if merge_only and runs_dir is None:
        raise click.UsageError("--merge-only needs --runs")
    run_longmemeval(
        path, systems=systems.split(","), limit=limit, offset=offset, preset=preset, workdir=workdir,
        embedder=embedder, embed_cache=_cache_dir(embed_cache, no_embed_cache), runs_dir=runs_dir,
        merge_only=merge_only,
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
@_embed_cache_options
def bench_locomo(path: str, limit: int | None, systems: str, preset: str, embedder: str | None, k: int,
                 include_adversarial: bool, workdir: str | None, write: bool, results: str, out: str,
                 no_progress: bool, embed_cache: str | None, no_embed_cache: bool) -> None:
    """Dialog-level evidence recall on LoCoMo (its JSON file), per question category."""
    from memstrata.evaluation.locomo import run_locomo

    run_locomo(
        path, systems=systems.split(","), limit=limit, preset=preset, k=k,
        exclude_categories=() if include_adversarial else (5,), workdir=workdir, embedder=embedder,
        embed_cache=_cache_dir(embed_cache, no_embed_cache),
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
@_embed_cache_options
def bench_projectchats(path: str, systems: str, preset: str, embedder: str | None, write: bool, results: str,
                       out: str, embed_cache: str | None, no_embed_cache: bool) -> None:
    """Evidence recall on long project chats (user asides among long, code-heavy assistant replies)."""
    from memstrata.evaluation.projectchats import run_projectchats

    run_projectchats(path, systems=systems.split(","), preset=preset, embedder=embedder,
                     embed_cache=_cache_dir(embed_cache, no_embed_cache), write=write,
                     results_path=results, out_dir=out)


COMMANDS = (bench,)
