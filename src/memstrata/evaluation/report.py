"""What every benchmark section of bench/RESULTS.md shares: the provenance lines (command, date, machine),
number formatting, the JSON dump of per-question rows and the replacement of one marked section."""

from __future__ import annotations

import json
import os
import platform
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def dump_json(result: dict[str, Any], rows: dict[str, list[dict[str, Any]]], out_dir: str | Path, name: str) -> Path:
    """Write the summary and every per-question row to ``out_dir/<name>-<systems>.json`` for error analysis."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{name}-{'-'.join(result['systems'])}.json"
    target.write_text(json.dumps({**result, "questions": rows}, indent=1, default=_json_default), encoding="utf-8")
    return target


def _json_default(value: Any) -> Any:
    if isinstance(value, set):
        return sorted(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def machine() -> str:
    """Cores, CPU model, Python and OS, for the provenance line of a results section."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, {platform.platform()}"


def command_line() -> str:
    """The command that is running, as a results section quotes it."""
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else "python"
    path = Path(argv0)
    if path.name == "__main__.py" and path.parent.name == "cli" and path.parent.parent.name == "memstrata":
        prog = "memstrata"  # python -m memstrata.cli runs the memstrata command
    elif path.suffix == ".py":
        # Relative to the working directory when possible, so the line is reproducible from the repo root.
        try:
            prog = f"python {path.resolve().relative_to(Path.cwd())}"
        except ValueError:
            prog = f"python {argv0}"
    else:
        prog = path.name
    return " ".join([prog, *sys.argv[1:]])


def provenance(command: str) -> str:
    """The command / date / machine lines every results section starts with."""
    return (
        f"Command: `{command}`  \nDate: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  \nMachine: {machine()}\n"
    )


def fmt(value: float | None, digits: int = 2) -> str:
    """A number for a table cell; NaN or None as a dash."""
    if value is None or value != value:
        return "–"
    return f"{value:.{digits}f}"


BELOW_FLAT = " ▼"  # appended to a memstrata cell that scores below the flat whole-message cosine baseline


def flag_below_flat(cells: list[str], values: list[float | None], keys: list[str]) -> list[str]:
    """Mark each memstrata cell whose value is below the ``flat`` column of the same row (when there is one)."""
    if "flat" not in keys:
        return cells
    flat = values[keys.index("flat")]
    if flat is None or flat != flat:
        return cells
    return [
        c + BELOW_FLAT if k.startswith("memstrata") and v is not None and v == v and v < flat - 1e-9 else c
        for c, v, k in zip(cells, values, keys, strict=True)
    ]


def below_flat_note(keys: list[str]) -> str:
    """The sentence under a table that uses :func:`flag_below_flat`."""
    if "flat" not in keys:
        return ""
    return f"{BELOW_FLAT.strip()} marks a memstrata cell below the flat whole-message cosine baseline of the same row."


HEADER = "# Benchmark results\n\nEvery section says the command that produced it and the machine it ran on.\n"


def write_section(path: str | Path, name: str, body: str) -> None:
    """Replace the text between ``<!-- name:start -->`` and ``<!-- name:end -->`` in ``path`` (append if absent)."""
    path = Path(path)
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else HEADER
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def publish(result: dict[str, Any], rows: dict[str, list[dict[str, Any]]], name: str,
            render: Callable[[dict[str, Any], str], str], command: str, *, out_dir: str | Path | None,
            echo: bool, write: bool, results_path: str | Path) -> dict[str, Any]:
    """What every benchmark does with its result: the per-question dump (``out_dir``), the markdown section
    printed (``echo``) and written into the results file under ``name`` (``write``)."""
    if out_dir is not None:
        result["dump"] = str(dump_json(result, rows, out_dir, name))
    markdown = render(result, command)
    if echo:
        print(markdown)
    if write:
        write_section(results_path, name, markdown)
    return result
