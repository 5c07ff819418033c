"""`memstrata demo`: three sessions of a real-sounding conversation, then recall questions answered from memory."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import click

from memstrata.cli.base import settings

SESSIONS = [
    (
        "2026-01-12T09:30:00Z",
        [
            (
                "user",
                "Hi! I'm planning my move. I currently live in Berlin and work as a data engineer at Zalando.",
            ),
            ("assistant", "Exciting! Where are you moving to?"),
            ("user", "Lisbon, hopefully by March. My sister Anna lives in Porto, so I'll be closer to her."),
            ("user", "Remember that my gate code at the new flat will be 4512."),
        ],
    ),
    (
        "2026-02-20T18:05:00Z",
        [
            ("user", "I started learning Portuguese with a tutor called Marta, every Tuesday evening."),
            ("assistant", "Great, consistency helps a lot."),
            ("user", "Also, I'm vegetarian now, so please suggest meat-free recipes from here on."),
            ("user", "Thanks!"),
        ],
    ),
    (
        "2026-03-15T11:00:00Z",
        [
            ("user", "I moved to Lisbon last week! The flat is in Alfama."),
            ("user", "My colleague John and I are kicking off the Alpha project next Monday."),
            ("assistant", "Congratulations on the move, and good luck with the project."),
        ],
    ),
]

QUESTIONS = [
    "Where do I live now?",
    "What is my gate code?",
    "Where does my sister live?",
    "Who is working with me on the Alpha project?",
    "What kind of food should you suggest to me?",
    "When are my Portuguese lessons?",
]


NOW = "2026-03-16T09:00:00Z"  # the questions are asked the day after the last session
CONTEXT_QUERY = "What should I know about this user's life right now?"
CONTEXT_BUDGET = 200


def _learned(results: list[dict]) -> list[str]:
    """One line per fact ``add`` kept or replaced; verbatim messages are stored too, but not listed."""
    replaced = {r["id"]: r["memory"] for r in results if r["event"] == "SUPERSEDE"}
    lines = []
    for r in results:
        if r["event"] != "ADD" or r.get("kind") == "message":
            continue
        lines.append(f"  + {r['memory']}  ({r['kind']})")
        lines += [f"      replaces: {replaced[old]}" for old in r.get("supersedes", []) if old in replaced]
    return lines


def run_demo(store: str | None = None, *, keep: bool = False) -> None:
    from memstrata import Memory

    tmp = None
    if store is None:
        tmp = tempfile.TemporaryDirectory(prefix="memstrata-demo-")
        store = f"sqlite:///{Path(tmp.name) / 'demo.db'}"
    click.echo(f"memstrata demo: three chat sessions with one user, then questions answered from memory\n"
               f"store: {store}\n")
    with Memory(store) as m:
        user = "demo-user"
        m.delete_all(user_id=user)
        start = time.perf_counter()
        for i, (when, turns) in enumerate(SESSIONS, start=1):
            r = m.add(
                [{"role": role, "content": text} for role, text in turns],
                user_id=user,
                conversation_id=f"session-{i}",
                timestamp=when,
            )
            click.echo(f"Session {i}, {when[:10]}: {len(turns)} messages stored; learned:")
            click.echo("\n".join(_learned(r["results"])) + "\n")
        click.echo(f"(added in {time.perf_counter() - start:.1f} s, the first call loads the models)\n")
        for q in QUESTIONS:
            t0 = time.perf_counter()
            res = m.search(q, user_id=user, limit=1, now=NOW)["results"]
            ms = (time.perf_counter() - t0) * 1000
            answer = f"{res[0]['memory']}  [{res[0]['valid_from'][:10]}]" if res else "(nothing found)"
            click.echo(f"Q: {q}\n   {answer}   ({ms:.0f} ms)")
        ctx = m.context(CONTEXT_QUERY, user_id=user, token_budget=CONTEXT_BUDGET, now=NOW)
        click.echo(f"\ncontext(\"{CONTEXT_QUERY}\") in {ctx['tokens']} of {CONTEXT_BUDGET} tokens:\n")
        click.echo("\n".join(f"   {line}" if line else "" for line in ctx["text"].rstrip().splitlines()))
        changes = m.conflicts(user_id=user, status="all")["results"]
        if changes:
            click.echo("\nChanged values (the newer one is current, the older one stays in the history):")
        for c in changes:
            waiting = "" if c["status"] == "resolved" else ", waiting for a decision"
            click.echo(f"   {c['attribute']}: {c['old_value']} → {c['new_value']}{waiting}")
    if tmp is not None and not keep:
        tmp.cleanup()
        click.echo("\nDone; that store was temporary. `memstrata --store sqlite:///demo.db demo` writes one that "
                   "`memstrata --store sqlite:///demo.db serve` shows in a web page.")


@click.command()
@click.option("--keep", is_flag=True, help="keep the demo database afterwards")
@click.pass_context
def demo(ctx: click.Context, keep: bool) -> None:
    """Add a multi-session conversation and answer recall questions from it."""
    run_demo(settings(ctx).store, keep=keep)


COMMANDS = (demo,)
