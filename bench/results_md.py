"""Write one named section of bench/RESULTS.md, leaving the other sections alone."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime
from pathlib import Path

from memstrata.evaluation.report import machine  # one provenance line for every benchmark

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADER = "# Benchmark results\n\nEvery section says the command that produced it and the machine it ran on.\n"


def provenance(command: str | None = None) -> str:
    cmd = command or "python " + " ".join(sys.argv)
    return f"Command: `{cmd}`  \nDate: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  \nMachine: {machine()}\n"


def write_section(name: str, body: str, path: Path = RESULTS) -> None:
    """Replace the text between ``<!-- name:start -->`` and ``<!-- name:end -->`` (append if absent)."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    text = path.read_text() if path.exists() else HEADER
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)
