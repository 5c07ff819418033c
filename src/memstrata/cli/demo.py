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


def run_demo(store: str | None = None, *, keep: bool = False) -> None:
    from memstrata import Memory

    tmp = None
    if store is None:
        tmp = tempfile.TemporaryDirectory(prefix="memstrata-demo-")
        store = f"sqlite:///{Path(tmp.name) / 'demo.db'}"
    click.echo(f"memstrata demo — store: {store}\n")
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
            click.echo(
                f"session {i} ({when[:10]}): {len(turns)} messages → "
                + ", ".join(f"{x['event']} '{x['memory']}'" for x in r["results"])
            )
        click.echo(
            f"\ningested in {time.perf_counter() - start:.2f} s (first call includes loading the models)\n"
        )
        for q in QUESTIONS:
            t0 = time.perf_counter()
            res = m.search(q, user_id=user, limit=2, now="2026-03-16T09:00:00Z")["results"]
            ms = (time.perf_counter() - t0) * 1000
            click.echo(f"Q: {q}   ({ms:.1f} ms)")
            for x in res:
                click.echo(f"   → {x['memory']}   [{x['valid_from'][:10]}]")
        ctx = m.context(
            "What should I know about this user's life right now?",
            user_id=user,
            token_budget=120,
            now="2026-03-16T09:00:00Z",
        )
        click.echo(f"\ncontext() within 120 tokens ({ctx['tokens']} used):\n{ctx['text']}")
        for c in m.conflicts(user_id=user, status="all")["results"]:
            settled = f", {c['resolution']}" if c["status"] == "resolved" else ", waiting for a decision"
            click.echo(
                f"conflict: {c['subject']}.{c['attribute']}: {c['old_value']!r} → {c['new_value']!r} "
                f"({c['policy']}{settled})"
            )
    if tmp is not None and not keep:
        tmp.cleanup()


@click.command()
@click.option("--keep", is_flag=True, help="keep the demo database afterwards")
@click.pass_context
def demo(ctx: click.Context, keep: bool) -> None:
    """Add a multi-session conversation and answer recall questions from it."""
    run_demo(settings(ctx).store, keep=keep)


COMMANDS = (demo,)
