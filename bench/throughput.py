"""Search throughput of one server before and after a change: two runs of bench/load.py side by side.

    python bench/load.py --workdir /tmp/ms-load --json /tmp/before.json      # on the old code (PYTHONPATH)
    python bench/load.py --workdir /tmp/ms-load --json /tmp/after.json       # on the new code
    python bench/throughput.py /tmp/before.json /tmp/after.json --label-before f7b42c3 --write
    python bench/throughput.py b1.json a1.json b2.json a2.json --write     # two back-to-back pairs

Both runs of a pair should use the same store (``--workdir``) and follow each other closely: the machine is
shared, so requests per second move with whatever else runs, while the server's CPU time per search moves far
less. Give several pairs to see how far it moves.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_md import provenance, write_section  # noqa: E402

TARGET_RPS, TARGET_P99 = 300, 100


def _rows(run: dict[str, Any], label: str, pair: int) -> list[str]:
    out = []
    for r in run["search"]:
        met = "met" if r["rps"] >= TARGET_RPS and r["p99"] <= TARGET_P99 and not r["errors"] else "missed"
        out.append(f"| {pair} | {label} | {r['clients']} | {r['requests']:,} | {r['rps']:.1f} | {r['p50']:.1f} | "
                   f"{r['p99']:.1f} | {r['errors']} | **{r['server_cpu_ms']:.1f}** | {r['load']:.1f} | {met} |")
    return out


def _cpu(run: dict[str, Any]) -> float:
    return sum(r["server_cpu_ms"] for r in run["search"]) / len(run["search"])


def section(pairs: list[tuple[dict[str, Any], dict[str, Any]]], labels: tuple[str, str], command: str) -> str:
    """The markdown of the section: the load phases of every pair, then the in-process measures."""
    after0 = pairs[0][1]
    lines = [
        "## Search throughput of one server: before and after",
        "",
        provenance(command).rstrip(),
        "",
        f"`bench/load.py` against `memstrata serve --workers {after0['workers']} --rate-limit 0`"
        f"{'' if after0['audit'] else ' --no-audit'}: embedded SQLite, {after0['memories']:,} memories in one "
        f"scope, every query distinct (no query-vector cache hits), `limit` 10, balanced preset, "
        f"{after0['duration']:.0f} s per concurrency level; the load generator shares the 2 cores with the server. "
        "The two runs of a pair used the same store and ran one after the other. Server CPU is the CPU time of the "
        "server's processes per completed search; requests per second and latency move with the machine's load "
        "(other work shared the cores: the load average is the 1-minute one at the end of each phase).",
        "",
        "| pair | code | clients | searches | req/s | p50 ms | p99 ms | errors | server CPU ms/search | load avg "
        "| ≥ 300 req/s, p99 ≤ 100 ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n, (before, after) in enumerate(pairs, 1):
        lines += [*_rows(before, labels[0], n), *_rows(after, labels[1], n)]
    lines.append("")
    for n, (before, after) in enumerate(pairs, 1):
        b_cpu, a_cpu = _cpu(before), _cpu(after)
        lines.append(f"- pair {n}: server CPU per search {b_cpu:.1f} ms before, {a_cpu:.1f} ms after "
                     f"({(a_cpu - b_cpu) / b_cpu:+.0%}); two free cores would sustain at most {2000 / b_cpu:.0f} and "
                     f"{2000 / a_cpu:.0f} searches/s.")
    profiled = [(b["profile"], a["profile"]) for b, a in pairs if b.get("profile") and a.get("profile")]
    if profiled:
        lines += [
            "",
            "In-process `Memory.search` (no HTTP, one thread): CPU per search unprofiled, then the cumulative wall "
            "time of each stage under cProfile (inflated by the profiler and by the machine's load; compare the "
            "columns, not the absolute values), ms per search:",
            "",
            "| stage | " + " | ".join(f"{lab} ({n})" for n in range(1, len(profiled) + 1) for lab in labels) + " |",
            "|---|" + "---|" * (2 * len(profiled)),
            "| CPU per search, unprofiled | " + " | ".join(f"{p['cpu_ms']:.1f}" for pair in profiled for p in pair)
            + " |",
            *["| " + k + " | " + " | ".join(f"{p['stages'].get(k, float('nan')):.2f}" for pair in profiled
                                             for p in pair) + " |" for k in profiled[0][1]["stages"]],
        ]
    for n, (before, after) in enumerate(pairs, 1):
        bt, at = before.get("threaded"), after.get("threaded")
        if bt and at:
            lines.append(f"\nPair {n}, in-process, {at['threads']} threads searching at once (no HTTP): "
                         f"{bt['cpu_ms']:.1f} ms CPU per search before, {at['cpu_ms']:.1f} ms after "
                         f"({bt['rps']:.0f} and {at['rps']:.0f} searches/s).")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", type=Path, nargs="+", help="JSON dumps of bench/load.py: before, after[, before, after...]")
    ap.add_argument("--label-before", default="before")
    ap.add_argument("--label-after", default="after")
    ap.add_argument("--command", default=None, help="the command line to record (default: this one)")
    ap.add_argument("--notes", type=Path, default=None, help="markdown appended to the section (other measures)")
    ap.add_argument("--write", action="store_true", help="write the 'throughput' section of bench/RESULTS.md")
    args = ap.parse_args()
    if len(args.runs) % 2:
        raise SystemExit("give the runs in pairs: before.json after.json [before.json after.json ...]")
    runs = []
    for path in args.runs:
        try:
            runs.append(json.loads(path.read_text()))
        except (OSError, ValueError) as exc:
            raise SystemExit(f"{path}: not a bench/load.py --json dump ({exc})") from exc
    pairs = [(runs[i], runs[i + 1]) for i in range(0, len(runs), 2)]
    body = section(pairs, (args.label_before, args.label_after), args.command or "")
    if args.notes is not None:
        body += "\n" + args.notes.read_text().strip() + "\n"
    print(body)
    if args.write:
        write_section("throughput", body)
        print("wrote bench/RESULTS.md (section 'throughput')", file=sys.stderr)


if __name__ == "__main__":
    main()
