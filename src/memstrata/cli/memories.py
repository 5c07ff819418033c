"""Commands on the memories of one scope: add, search, context, list, get, delete, history, stats."""

from __future__ import annotations

from typing import Any

import click

from memstrata.cli.base import emit, json_arg, open_memory, pop_scope, scope_options


@click.command()
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
    meta = json_arg("--metadata", metadata)
    r = open_memory(ctx).add(
        [{"role": role, "content": text}],
        conversation_id=conversation_id,
        timestamp=timestamp,
        metadata=meta,
        infer=not raw,
        **pop_scope(kw),
    )
    lines = [f"{x['event']:9} {x['id']}  {x['memory']}" for x in r["results"]] or [
        "(nothing worth remembering)"
    ]
    emit(ctx, r, "\n".join(lines))


@click.command()
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
    r = open_memory(ctx).search(query, limit=limit, preset=preset, explain=explain, now=now, **pop_scope(kw))
    lines = [
        f"{x['score']:.4f}  {x['id']}  {x['memory']}" + (f"\n        {x['stages']}" if explain else "")
        for x in r["results"]
    ] or ["(no memories)"]
    emit(ctx, r, "\n".join(lines))


@click.command()
@click.argument("query")
@scope_options
@click.option("--budget", "token_budget", default=2000, show_default=True, help="token budget")
@click.option("--conversation", "conversation_id")
@click.pass_context
def context(
    ctx: click.Context, query: str, token_budget: int, conversation_id: str | None, **kw: Any
) -> None:
    """Print a prompt-ready context block for QUERY."""
    r = open_memory(ctx).context(query, token_budget=token_budget, conversation_id=conversation_id, **pop_scope(kw))
    emit(ctx, r, r["text"] + f"\n({r['tokens']} of {r['token_budget']} tokens)")


@click.command(name="list")
@scope_options
@click.option("--limit", default=50, show_default=True)
@click.option("--cursor", default=None, help="next_cursor of the previous page")
@click.option("--all-versions", is_flag=True, help="include superseded memories")
@click.pass_context
def list_(ctx: click.Context, limit: int, cursor: str | None, all_versions: bool, **kw: Any) -> None:
    """List memories of a scope, oldest first."""
    r = open_memory(ctx).get_all(limit=limit, cursor=cursor, include_superseded=all_versions, **pop_scope(kw))
    lines = [f"{x['created_at']}  {x['id']}  {x['memory']}" for x in r["results"]] or ["(no memories)"]
    if r["next_cursor"]:
        lines.append(f"more: --cursor {r['next_cursor']}")
    emit(ctx, r, "\n".join(lines))


@click.command()
@click.argument("memory_id")
@scope_options
@click.pass_context
def get(ctx: click.Context, memory_id: str, **kw: Any) -> None:
    """Show one memory."""
    emit(ctx, open_memory(ctx).get(memory_id, **pop_scope(kw)))


@click.command()
@click.argument("memory_id")
@scope_options
@click.pass_context
def delete(ctx: click.Context, memory_id: str, **kw: Any) -> None:
    """Delete one memory (its history stays)."""
    r = open_memory(ctx).delete(memory_id, **pop_scope(kw))
    emit(ctx, r, f"deleted {r['id']}")


@click.command()
@click.argument("memory_id")
@scope_options
@click.pass_context
def history(ctx: click.Context, memory_id: str, **kw: Any) -> None:
    """Show every version of a memory."""
    r = open_memory(ctx).history(memory_id, **pop_scope(kw))
    lines = [
        f"{e['created_at']}  {e['event']:9} {e['new_memory'] or e['old_memory']}  ({e['reason']})" for e in r
    ]
    emit(ctx, r, "\n".join(lines))


@click.command()
@scope_options
@click.pass_context
def stats(ctx: click.Context, **kw: Any) -> None:
    """Counts per table, for a scope or the whole store."""
    r = open_memory(ctx).stats(**pop_scope(kw))
    emit(ctx, r, "\n".join(f"{k:20} {v}" for k, v in r.items()))


COMMANDS = (add, search, context, list_, get, delete, history, stats)


def register(group: click.Group) -> None:
    """Add these commands to ``group`` (the ``memstrata`` group, or a test's own)."""
    for command in COMMANDS:
        group.add_command(command)
