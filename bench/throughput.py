"""Search throughput of one server before and after a change: two runs of bench/load.py side by side.

    python bench/load.py --workdir /tmp/ms-load --json /tmp/before.json      # on the old code (PYTHONPATH)
    python bench/load.py --workdir /tmp/ms-load --json /tmp/after.json       # on the new code
    python bench/throughput.py /tmp/before.json /tmp/after.json --label-before f7b42c3 --write

Both runs should use the same store (``--workdir``) and follow each other closely: the machine is shared, so
requests per second move with whatever else runs, while the server's CPU time per search moves far less.
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


def _rows(run: dict[str, Any], label: str) -> list[str]:
    out = []
    for r in run["search"]:
        met = "met" if r["rps"] >= TARGET_RPS and r["p99"] <= TARGET_P99 and not r["errors"] else "missed"
        out.append(f"| {label} | {r['clients']} | {r['requests']:,} | {r['rps']:.1f} | {r['p50']:.1f} | "
                   f"{r['p99']:.1f} | {r['errors']} | **{r['server_cpu_ms']:.1f}** | {r['load']:.1f} | {met} |")
    return out


def section(before: dict[str, Any], after: dict[str, Any], labels: tuple[str, str], command: str) -> str:
    b_cpu = sum(r["server_cpu_ms"] for r in before["search"]) / len(before["search"])
    a_cpu = sum(r["server_cpu_ms"] for r in after["search"]) / len(after["search"])
    lines = [
        "## Search throughput of one server: before and after",
        "",
        provenance(command).rstrip(),
        "",
        f"`bench/load.py` against `memstrata serve --workers {after['workers']} --rate-limit 0`"
        f"{'' if after['audit'] else ' --no-audit'}: embedded SQLite, {after['memories']:,} memories in one scope, "
        f"every query distinct (no query-vector cache hits), `limit` 10, balanced preset, {after['duration']:.0f} s "
        "per concurrency level; the load generator shares the 2 cores with the server. The two runs used the same "
        "store and ran one after the other. Server CPU is the CPU time of the server's processes per completed "
        "search; requests per second and latency move with the machine's load (other work shared the cores: the "
        "load average is the 1-minute one at the end of each phase).",
        "",
        "| code | clients | searches | req/s | p50 ms | p99 ms | errors | server CPU ms/search | load avg "
        "| ≥ 300 req/s, p99 ≤ 100 ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *_rows(before, labels[0]),
        *_rows(after, labels[1]),
        "",
        f"Server CPU per search: {b_cpu:.1f} ms before, {a_cpu:.1f} ms after ({(a_cpu - b_cpu) / b_cpu:+.0%}); "
        f"two free cores would sustain at most {2000 / b_cpu:.0f} and {2000 / a_cpu:.0f} searches/s.",
    ]
    bp, ap = before.get("profile") or {}, after.get("profile") or {}
    if bp and ap:
        lines += [
            "",
            "In-process `Memory.search` (no HTTP, one thread, cProfile), cumulative ms per search by stage:",
            "",
            f"| stage | {labels[0]} | {labels[1]} |",
            "|---|---|---|",
            f"| CPU per search, unprofiled | {bp['cpu_ms']:.1f} | {ap['cpu_ms']:.1f} |",
            *[f"| {k} | {bp['stages'].get(k, float('nan')):.2f} | {ap['stages'].get(k, float('nan')):.2f} |"
              for k in ap["stages"]],
        ]
    bt, at = before.get("threaded"), after.get("threaded")
    if bt and at:
        lines += [
            "",
            f"In-process, {at['threads']} threads searching at once (no HTTP): {bt['cpu_ms']:.1f} ms CPU per search "
            f"before, {at['cpu_ms']:.1f} ms after ({bt['rps']:.0f} and {at['rps']:.0f} searches/s).",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--label-before", default="before")
    ap.add_argument("--label-after", default="after")
    ap.add_argument("--command", default=None, help="the command line to record (default: this one)")
    ap.add_argument("--write", action="store_true", help="write the 'throughput' section of bench/RESULTS.md")
    args = ap.parse_args()
    runs = []
    for path in (args.before, args.after):
        try:
            runs.append(json.loads(path.read_text()))
        except (OSError, ValueError) as exc:
            raise SystemExit(f"{path}: not a bench/load.py --json dump ({exc})") from exc
    body = section(runs[0], runs[1], (args.label_before, args.label_after), args.command or "")
    print(body)
    if args.write:
        write_section("throughput", body)
        print("wrote bench/RESULTS.md (section 'throughput')", file=sys.stderr)


if __name__ == "__main__":
    main()
