"""The ``memstrata`` command line: add, search, list, get, delete, history, export, import, stats, demo, bench."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from memstrata.errors import ConfigurationError, InvalidInputError, MemstrataError, NotFoundError

EXIT_INPUT, EXIT_NOT_FOUND, EXIT_CONFIG, EXIT_OTHER = 2, 3, 4, 1


def _open(ctx: click.Context):  # type: ignore[no-untyped-def]
    obj = ctx.find_root().obj
    if "memory" not in obj:
        from memstrata.secure import memory_from_env
        from memstrata.settings import StackSettings

        stack = StackSettings.from_env(store=obj["store"], embedder=obj["embedder"])
        obj["memory"] = memory_from_env(stack.store, **stack.memory_options())
        ctx.find_root().call_on_close(obj["memory"].close)
    return obj["memory"]


def _scope(kw: dict[str, Any]) -> dict[str, Any]:
    return {k: kw.pop(k) for k in ("user_id", "agent_id", "run_id", "org_id")}


def _emit(ctx: click.Context, data: Any, human: str | None = None) -> None:
    if ctx.find_root().obj["json"] or human is None:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))
    else:
        click.echo(human)


def scope_options(f):  # type: ignore[no-untyped-def]
    for opt in reversed(
        [
            click.option("--user", "user_id", help="user id of the scope"),
            click.option("--agent", "agent_id", help="agent id of the scope"),
            click.option("--run", "run_id", help="run id of the scope"),
            click.option("--org", "org_id", help="organisation id (default: 'default')"),
        ]
    ):
        f = opt(f)
    return f


class _Group(click.Group):
    """Maps memstrata errors to one clean line and an exit code instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except InvalidInputError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_INPUT)
        except NotFoundError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_NOT_FOUND)
        except ConfigurationError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_CONFIG)
        except MemstrataError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_OTHER)


@click.group(cls=_Group)
@click.option(
    "--store",
    envvar="MEMSTRATA_STORE",
    default=None,
    help="store URL, e.g. sqlite:///path/memory.db (default ~/.memstrata/memory.db)",
)
@click.option("--embedder", envvar="MEMSTRATA_EMBEDDER", default=None,
              help="'minilm' (default), 'hash', or openai[+http|+https]://host/v1?model=NAME")
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of text")
@click.version_option(package_name="memstrata")
@click.pass_context
def main(ctx: click.Context, store: str | None, embedder: str | None, as_json: bool) -> None:
    """memstrata: long-term memory for AI agents, on an embedded SQLite store."""
    ctx.obj = {"store": store, "embedder": embedder, "json": as_json}


@main.command()
@click.argument("text")
@scope_options
@click.option("--role", default="user", show_default=True, help="role of the message")
@click.option("--conversation", "conversation_id", help="conversation id")
@click.option("--timestamp", help="when it was said (ISO 8601)")
@click.option("--metadata", help="JSON object stored on each memory")
@click.option("--raw", is_flag=True, help="store verbatim (infer=False)")
@click.pass_context
def add(
    ctx: click.Context,
    text: str,
    role: str,
    conversation_id: str | None,
    timestamp: str | None,
    metadata: str | None,
    raw: bool,
    **kw: Any,
) -> None:
    """Remember TEXT."""
    meta = _json_arg("--metadata", metadata)
    r = _open(ctx).add(
        [{"role": role, "content": text}],
        conversation_id=conversation_id,
        timestamp=timestamp,
        metadata=meta,
        infer=not raw,
        **_scope(kw),
    )
    lines = [f"{x['event']:9} {x['id']}  {x['memory']}" for x in r["results"]] or [
        "(nothing worth remembering)"
    ]
    _emit(ctx, r, "\n".join(lines))


@main.command()
@click.argument("query")
@scope_options
@click.option("--limit", default=10, show_default=True)
@click.option("--preset", type=click.Choice(["fast", "balanced", "thorough"]), default=None)
@click.option("--explain", is_flag=True, help="show each stage's score")
@click.option("--now", help="reference time for 'last week' etc. (ISO 8601)")
@click.pass_context
def search(
    ctx: click.Context, query: str, limit: int, preset: str | None, explain: bool, now: str | None, **kw: Any
) -> None:
    """Find memories relevant to QUERY."""
    r = _open(ctx).search(query, limit=limit, preset=preset, explain=explain, now=now, **_scope(kw))
    lines = [
        f"{x['score']:.4f}  {x['id']}  {x['memory']}" + (f"\n        {x['stages']}" if explain else "")
        for x in r["results"]
    ] or ["(no memories)"]
    _emit(ctx, r, "\n".join(lines))


@main.command()
@click.argument("query")
@scope_options
@click.option("--budget", "token_budget", default=2000, show_default=True, help="token budget")
@click.option("--conversation", "conversation_id")
@click.pass_context
def context(
    ctx: click.Context, query: str, token_budget: int, conversation_id: str | None, **kw: Any
) -> None:
    """Print a prompt-ready context block for QUERY."""
    r = _open(ctx).context(query, token_budget=token_budget, conversation_id=conversation_id, **_scope(kw))
    _emit(ctx, r, r["text"] + f"\n({r['tokens']} of {r['token_budget']} tokens)")


@main.command(name="list")
@scope_options
@click.option("--limit", default=50, show_default=True)
@click.option("--cursor", default=None, help="next_cursor of the previous page")
@click.option("--all-versions", is_flag=True, help="include superseded memories")
@click.pass_context
def list_(ctx: click.Context, limit: int, cursor: str | None, all_versions: bool, **kw: Any) -> None:
    """List memories of a scope, oldest first."""
    r = _open(ctx).get_all(limit=limit, cursor=cursor, include_superseded=all_versions, **_scope(kw))
    lines = [f"{x['created_at']}  {x['id']}  {x['memory']}" for x in r["results"]] or ["(no memories)"]
    if r["next_cursor"]:
        lines.append(f"more: --cursor {r['next_cursor']}")
    _emit(ctx, r, "\n".join(lines))


@main.command()
@click.argument("memory_id")
@scope_options
@click.pass_context
def get(ctx: click.Context, memory_id: str, **kw: Any) -> None:
    """Show one memory."""
    _emit(ctx, _open(ctx).get(memory_id, **_scope(kw)))


@main.command()
@click.argument("memory_id")
@scope_options
@click.pass_context
def delete(ctx: click.Context, memory_id: str, **kw: Any) -> None:
    """Delete one memory (its history stays)."""
    r = _open(ctx).delete(memory_id, **_scope(kw))
    _emit(ctx, r, f"deleted {r['id']}")


@main.command()
@click.argument("memory_id")
@scope_options
@click.pass_context
def history(ctx: click.Context, memory_id: str, **kw: Any) -> None:
    """Show every version of a memory."""
    r = _open(ctx).history(memory_id, **_scope(kw))
    lines = [
        f"{e['created_at']}  {e['event']:9} {e['new_memory'] or e['old_memory']}  ({e['reason']})" for e in r
    ]
    _emit(ctx, r, "\n".join(lines))


@main.command()
@scope_options
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, writable=True), default="-", show_default=True
)
@click.option("--all-versions", is_flag=True, help="include superseded memories")
@click.pass_context
def export(ctx: click.Context, output: str, all_versions: bool, **kw: Any) -> None:
    """Write a scope's memories as JSON Lines (one memory per line)."""
    mem = _open(ctx)
    scope = _scope(kw)
    out = sys.stdout if output == "-" else open(output, "w", encoding="utf-8")  # noqa: SIM115
    n, cursor = 0, None
    try:
        while True:
            page = mem.get_all(limit=500, cursor=cursor, include_superseded=all_versions, **scope)
            for item in page["results"]:
                out.write(json.dumps(item, ensure_ascii=False) + "\n")
                n += 1
            cursor = page["next_cursor"]
            if not cursor:
                break
    finally:
        if out is not sys.stdout:
            out.close()
    click.echo(f"exported {n} memories", err=True)


@main.command(name="import")
@click.argument("path", type=click.Path(exists=True))
@scope_options
@click.option("--batch", default=64, show_default=True, type=click.IntRange(1, 1000),
              help="memories per add() call (consecutive lines with the same metadata share a call)")
@click.option("--from", "source", type=click.Choice(["memstrata", "mem0"]), default="memstrata", show_default=True,
              help="memstrata: JSON Lines from `export`; mem0: a Mem0 export (JSON) or a Mem0 store folder "
                   "(Qdrant or Chroma) with its history database")
@click.option("--history-db", type=click.Path(exists=True, dir_okay=False),
              help="mem0: the history database (default: history.db in or beside PATH)")
@click.option("--collection", default="mem0", show_default=True, help="mem0: the vector store collection")
@click.pass_context
def import_(ctx: click.Context, path: str, batch: int, source: str, history_db: str | None, collection: str,
            **kw: Any) -> None:
    """Load memories from a JSON Lines file (as written by export) into a scope, verbatim; or move a Mem0
    export or store over with --from mem0, keeping its ids, scopes, timestamps and history."""
    from tqdm import tqdm

    mem = _open(ctx)
    scope = _scope(kw)
    if source == "mem0":
        from memstrata.importers.mem0 import import_mem0, read_mem0

        if any(scope[k] for k in ("user_id", "agent_id", "run_id")):
            raise InvalidInputError("--user", "Mem0 data carries its own scopes; only --org applies with --from mem0")
        r = import_mem0(mem, read_mem0(path, history_db=history_db, collection=collection), org_id=scope["org_id"])
        _emit(ctx, r, f"imported {r['imported']} of {r['read']} Mem0 memories ({r['skipped']} already there, "
                      f"{r['history']} history events)")
        return
    if Path(path).is_dir():
        raise InvalidInputError("path", f"{path} is a folder; give the JSON Lines file written by export")
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    items = []
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"{path}:{i}", f"not JSON: {exc.msg}") from None
        text = obj.get("memory") or obj.get("text") or obj.get("content") if isinstance(obj, dict) else None
        if not isinstance(text, str):
            raise InvalidInputError(f"{path}:{i}", "needs a 'memory' (or 'text') string")
        items.append((text, obj.get("valid_from") or obj.get("created_at"), obj.get("metadata") or {}))
    added = 0
    with tqdm(total=len(items), unit="memory", disable=None, file=sys.stderr) as bar:
        for chunk in _batches(items, batch):
            messages = [{"role": "user", "content": text, "timestamp": when} for text, when, _ in chunk]
            r = mem.add(messages, metadata=chunk[0][2], infer=False, **scope)
            added += sum(1 for x in r["results"] if x["event"] == "ADD")
            bar.update(len(chunk))
    _emit(ctx, {"imported": added, "read": len(items)}, f"imported {added} of {len(items)} memories")


def _batches(items: list[tuple[str, Any, dict[str, Any]]], size: int) -> list[list[tuple[str, Any, dict[str, Any]]]]:
    """Runs of at most ``size`` consecutive items that share their metadata (add() takes one per call)."""
    out: list[list[tuple[str, Any, dict[str, Any]]]] = []
    for item in items:
        if out and len(out[-1]) < size and out[-1][0][2] == item[2]:
            out[-1].append(item)
        else:
            out.append([item])
    return out


@main.command()
@scope_options
@click.pass_context
def stats(ctx: click.Context, **kw: Any) -> None:
    """Counts per table, for a scope or the whole store."""
    r = _open(ctx).stats(**_scope(kw))
    _emit(ctx, r, "\n".join(f"{k:20} {v}" for k, v in r.items()))


@main.command()
@click.option("--keep", is_flag=True, help="keep the demo database afterwards")
@click.pass_context
def demo(ctx: click.Context, keep: bool) -> None:
    """Add a multi-session conversation and answer recall questions from it."""
    from memstrata.demo import run_demo

    run_demo(ctx.find_root().obj["store"], keep=keep)


@main.group()
def bench() -> None:
    """Benchmarks (results go to bench/RESULTS.md with --write)."""


@bench.command(name="longmemeval")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--limit", type=int, default=None, help="only the first N instances")
@click.option("--systems", default="memstrata,flat,bm25", show_default=True)
@click.option("--preset", default="balanced", show_default=True)
@click.option("--write", is_flag=True, help="write the tables to bench/RESULTS.md")
def bench_longmemeval(path: str, limit: int | None, systems: str, preset: str, write: bool) -> None:
    """Retrieval quality on LongMemEval (a .jsonl of instances)."""
    from memstrata.evaluation.longmemeval import run_longmemeval

    run_longmemeval(path, systems=systems.split(","), limit=limit, preset=preset, write=write)


def _json_arg(name: str, value: str | None) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(name, f"is not JSON: {exc.msg}") from None


def _register_extensions() -> None:
    """Commands that live beside their subsystem: privacy, encryption, backends, server."""
    from memstrata.cli_encryption import register as register_encryption
    from memstrata.cli_privacy import register as register_privacy

    register_privacy(main)
    register_encryption(main)
    for module in ("memstrata.cli_backends", "memstrata.cli_server"):
        try:
            __import__(module)
        except ImportError:  # an optional extra (server, postgres) is not installed
            continue
        sys.modules[module].register(main)


_register_extensions()

if __name__ == "__main__":  # pragma: no cover
    main()
