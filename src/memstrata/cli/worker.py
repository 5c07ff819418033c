"""``memstrata worker``: process queued adds (``add(..., wait=False)``, ``POST /v1/messages?wait=false``).

Run as many as the store takes, beside the servers or on other machines: each claims its own batches under a
lease, so a worker that dies leaves its claims to the others once the lease has passed.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from typing import Any

import click

from memstrata.cli.base import emit, open_memory


def loop(memory: Any, *, batch: int = 32, lease: float = 60.0, max_attempts: int = 5, backoff: float = 2.0,
         poll: float = 1.0, once: bool = False, report: Callable[[dict[str, int]], None] | None = None,
         ) -> dict[str, int]:
    """Claim and process batches until stopped (SIGTERM or SIGINT end it after the batch in hand); ``once``:
    until the queue has nothing ready. Returns the totals."""
    stop = {"now": False}

    def halt(*_: object) -> None:
        stop["now"] = True

    previous = {s: signal.signal(s, halt) for s in (signal.SIGTERM, signal.SIGINT)}
    totals: dict[str, int] = {}
    try:
        while not stop["now"]:
            counts = memory.process_queue(batch=batch, lease=lease, max_attempts=max_attempts, backoff=backoff)
            for k, v in counts.items():
                totals[k] = totals.get(k, 0) + v
            if counts["claimed"] and report is not None:
                report(counts)
            if not counts["claimed"]:
                if once:
                    break
                time.sleep(poll)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return totals


@click.command(name="worker")
@click.option("--batch", default=32, show_default=True, help="queued adds claimed at once")
@click.option("--lease", default=60.0, show_default=True,
              help="seconds a claim holds; a dead worker's claims pass to others after it")
@click.option("--max-attempts", default=5, show_default=True, help="attempts before an add is dead-lettered")
@click.option("--backoff", default=2.0, show_default=True, help="seconds before a retry, doubled each attempt")
@click.option("--poll", default=1.0, show_default=True, help="seconds to wait when nothing is queued")
@click.option("--once", is_flag=True, help="exit when the queue has nothing ready")
@click.pass_context
def worker(ctx: click.Context, batch: int, lease: float, max_attempts: int, backoff: float, poll: float,
           once: bool) -> None:
    """Process queued adds: extract, embed in batches across users, store, and mark them done."""
    memory = open_memory(ctx)

    def say(counts: dict[str, int]) -> None:
        click.echo(f"claimed {counts['claimed']}: {counts['done']} done, {counts['retry']} to retry,"
                   f" {counts['dead']} dead ({counts['messages']} messages)", err=True)

    totals = loop(memory, batch=batch, lease=lease, max_attempts=max_attempts, backoff=backoff, poll=poll,
                  once=once, report=say)
    emit(ctx, totals, f"processed {totals.get('done', 0)} queued add(s); {totals.get('dead', 0)} dead")


COMMANDS = (worker,)
