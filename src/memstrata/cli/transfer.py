"""Moving memories in and out: ``export`` (JSON Lines) and ``import`` (those files, or a Mem0 export or store)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from memstrata.cli.base import emit, open_memory, pop_scope, scope_options
from memstrata.errors import InvalidInputError


@click.command()
@scope_options
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, writable=True), default="-", show_default=True
)
@click.option("--all-versions", is_flag=True, help="include superseded memories")
@click.pass_context
def export(ctx: click.Context, output: str, all_versions: bool, **kw: Any) -> None:
    """Write a scope's memories as JSON Lines (one memory per line)."""
    mem = open_memory(ctx)
    scope = pop_scope(kw)
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


@click.command(name="import")
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

    mem = open_memory(ctx)
    scope = pop_scope(kw)
    if source == "mem0":
        from memstrata.importers.mem0 import import_mem0, read_mem0

        if any(scope[k] for k in ("user_id", "agent_id", "run_id")):
            raise InvalidInputError("--user", "Mem0 data carries its own scopes; only --org applies with --from mem0")
        r = import_mem0(mem, read_mem0(path, history_db=history_db, collection=collection), org_id=scope["org_id"])
        emit(ctx, r, f"imported {r['imported']} of {r['read']} Mem0 memories ({r['skipped']} already there, "
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
    emit(ctx, {"imported": added, "read": len(items)}, f"imported {added} of {len(items)} memories")


def _batches(items: list[tuple[str, Any, dict[str, Any]]], size: int) -> list[list[tuple[str, Any, dict[str, Any]]]]:
    """Runs of at most ``size`` consecutive items that share their metadata (add() takes one per call)."""
    out: list[list[tuple[str, Any, dict[str, Any]]]] = []
    for item in items:
        if out and len(out[-1]) < size and out[-1][0][2] == item[2]:
            out[-1].append(item)
        else:
            out.append([item])
    return out


COMMANDS = (export, import_)


def register(group: click.Group) -> None:
    """Add these commands to ``group`` (the ``memstrata`` group, or a test's own)."""
    for command in COMMANDS:
        group.add_command(command)
