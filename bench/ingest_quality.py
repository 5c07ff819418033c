"""Quality and latency of the offline ``rules`` ingestion steps on a hand-labelled chat set.

    python bench/ingest_quality.py                 # print the table
    python bench/ingest_quality.py --write         # also replace the section in bench/RESULTS.md
    python bench/ingest_quality.py --verbose       # list every miss

Each conversation group is replayed in order against a simulated store: a message's candidates are
deduplicated (normalized_hash, then is_near_duplicate with the real MiniLM embedder against the group's
current memories), then checked for slot conflicts (find_conflicts, latest_wins) and stored. Scores:

* importance: does a message yield at least one memory (``keep``)?
* dedup: is a message merged into the earlier message its label names (``duplicate_of``)?
* conflicts: is the earlier message its label names (``conflicts_with``) flagged as conflicting?
* slot accuracy: among kept messages with a labelled slot, is that slot among the extracted ones?

Latency is the rules extraction alone (spaCy parse + rules), one message per call, after a warm-up.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
from memstrata.ingest.candidate import Message, Slot  # noqa: E402
from memstrata.ingest.conflicts import find_conflicts, normalize_value  # noqa: E402
from memstrata.ingest.dedup import DEFAULT_THRESHOLD, is_near_duplicate, normalized_hash  # noqa: E402
from memstrata.ingest.rules import RulesExtractor  # noqa: E402
from results_md import provenance, write_section  # noqa: E402

DATA = ROOT / "data" / "ingest_labelled.jsonl"
# Each holdout split was written after the rules of its time and scored once before anything changed
# because of it; later runs no longer measure unseen data. Those first runs, as printed then:
FIRST_RUNS = "\n".join([
    "| split (when first run) | messages | importance P / R / F1 | conflict P / R (labelled) "
    "| dedup P / R (labelled) | slot acc. (labelled) |",
    "|---|---|---|---|---|---|",
    "| holdout (after tuning on dev) | 82 | 1.000 / 0.957 / 0.978 | 1.000 / 0.833 (6) | 0.667 / 0.500 (4) "
    "| 0.867 (30) |",
    "| holdout2 (after fixes prompted by holdout) | 58 | 1.000 / 0.833 / 0.909 | 0.667 / 0.333 (6) "
    "| 1.000 / 1.000 (1) | 0.750 (20) |",
    "| holdout3 (after fixes prompted by holdout2) | 53 | 1.000 / 0.935 / 0.967 | 1.000 / 0.800 (5) "
    "| 1.000 / 1.000 (2) | 0.765 (17) |",
    "| pooled first runs | 193 | 1.000 / 0.912 / 0.954 | 0.917 / 0.647 (17) | 0.833 / 0.714 (7) | 0.806 (67) |",
])
SECTION = "ingest-quality"
TARGETS = {"importance_f1": 0.85, "conflict_recall": 0.85, "conflict_precision": 0.9, "p95_ms": 40.0}


@dataclass
class Stored:
    msg_id: str
    text: str
    hash: str
    vec: np.ndarray
    entities: list[str]
    slot: Slot | None
    current: bool = True


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    misses: list[str] = field(default_factory=list)

    def add(self, predicted: bool, gold: bool, correct: bool, note: str) -> None:
        if predicted and gold and correct:
            self.tp += 1
            return
        if predicted:
            self.fp += 1
        if gold:
            self.fn += 1
        if predicted or gold:
            self.misses.append(note)

    def prf(self) -> tuple[float, float, float]:
        p = self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0
        r = self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        return p, r, f


def load(path: Path, split: str | None) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = defaultdict(list)
    with path.open() as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                if split is None or row.get("split", "dev") == split:
                    groups[row["group"]].append(row)
    return groups


def slot_key(slot: Slot | list | tuple) -> tuple[str, str, str]:
    s = list(slot.__dict__.values()) if isinstance(slot, Slot) else list(slot)
    return (s[0].casefold(), s[1].casefold(), normalize_value(s[2]))


def run(groups: dict[str, list[dict]], embedder, threshold: float, verbose: bool,  # type: ignore[no-untyped-def]
        use_slots: bool = True) -> dict:
    extractor = RulesExtractor()
    # warm-up: load spaCy and the embedder outside the timed region
    extractor.extract([Message("user", "My sister Anna moved to Lisbon last week.", 0)])
    embedder.embed(["warm up"])
    importance, dedup, conflicts = Counts(), Counts(), Counts()
    slot_hits = slot_total = 0
    slot_misses: list[str] = []
    latencies: list[float] = []
    base = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    for g, rows in enumerate(groups.values()):
        store: list[Stored] = []
        known: list[str] = []
        for i, row in enumerate(rows):
            msg = Message(row["role"], row["text"], 0, timestamp=base + timedelta(days=g, minutes=5 * i))
            t0 = time.perf_counter()
            cands = extractor.extract([msg], known_entities=known)
            elapsed = (time.perf_counter() - t0) * 1000
            if row["role"] == "user":
                latencies.append(elapsed)
            kept = bool(cands)
            tag = f"{row['id']}: {row['text']!r}"
            importance.add(kept, row["keep"], True, f"{tag} keep={row['keep']} got={[c.text for c in cands]}")
            if row["slot"] and row["keep"]:
                slot_total += 1
                got = [slot_key(c.slot) for c in cands if c.slot]
                if slot_key(row["slot"]) in got:
                    slot_hits += 1
                else:
                    slot_misses.append(f"{tag} want={row['slot']} got={got}")
            dup_of: set[str] = set()
            clash: set[str] = set()
            vecs = embedder.embed([c.text for c in cands]) if cands else []
            for cand, vec in zip(cands, vecs, strict=True):
                names = sorted({e.canonical for e in cand.entities})
                h = normalized_hash(cand.text)
                current = [m for m in store if m.current]
                twin = next((m for m in current if m.hash == h), None)
                if twin is None:
                    ranked = sorted(current, key=lambda m: -float(np.dot(vec, m.vec)))
                    twin = next((m for m in ranked if is_near_duplicate(
                        cand.text, vec, names, m.text, m.vec, m.entities, threshold=threshold,
                        new_slot=cand.slot if use_slots else None, old_slot=m.slot if use_slots else None)),
                        None)
                if twin is not None:
                    dup_of.add(twin.msg_id)
                    continue
                ids = find_conflicts(cand, [(str(k), m.slot) for k, m in enumerate(store) if m.current and m.slot])
                for k in ids:
                    clash.add(store[int(k)].msg_id)
                    store[int(k)].current = False  # latest_wins
                store.append(Stored(row["id"], cand.text, h, vec, names, cand.slot))
                known.extend(n for n in names if n not in known)
            gold_dup, gold_conf = row["duplicate_of"], row["conflicts_with"]
            dedup.add(bool(dup_of), gold_dup is not None, gold_dup in dup_of,
                      f"{tag} duplicate_of={gold_dup} got={sorted(dup_of)}")
            conflicts.add(bool(clash), gold_conf is not None, gold_conf in clash,
                          f"{tag} conflicts_with={gold_conf} got={sorted(clash)}")
    result = {
        "messages": sum(len(r) for r in groups.values()),
        "user_messages": len(latencies),
        "groups": len(groups),
        "importance": importance,
        "dedup": dedup,
        "conflicts": conflicts,
        "slot_accuracy": slot_hits / slot_total if slot_total else float("nan"),
        "slot_total": slot_total,
        "p50": float(np.percentile(latencies, 50)),
        "p95": float(np.percentile(latencies, 95)),
        "max": float(max(latencies)),
    }
    if verbose:
        for label, counts in (("importance", importance), ("dedup", dedup), ("conflicts", conflicts)):
            print(f"\n### {label} misses")
            for line in counts.misses:
                print("  ", line)
        print("\n### slot misses")
        for line in slot_misses:
            print("  ", line)
    return result


class CachedEmbedder:
    """Embeds each distinct text once: the sweep replays the same candidates many times."""

    def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
        self.inner = inner
        self.name = inner.name
        self._cache: dict[str, np.ndarray] = {}

    def embed(self, texts: list[str]) -> np.ndarray:
        todo = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if todo:
            for text, vec in zip(todo, self.inner.embed(todo), strict=True):
                self._cache[text] = vec
        return np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, 384), np.float32)


def table(res: dict, plain: dict, split: str) -> str:
    """``res``: dedup with slots passed to is_near_duplicate; ``plain``: texts and entities only."""
    ip, ir, i_f = res["importance"].prf()

    def ok(flag: bool) -> str:
        return "met" if flag else "**missed**"

    def row(label: str, counts: Counts, target: str = "–") -> str:
        p, r, f = counts.prf()
        n = counts.tp + counts.fn
        return f"| {label} | {p:.3f} | {r:.3f} | {f:.3f} | {n} | {target} |"

    cp, cr, _ = res["conflicts"].prf()
    pp, pr, _ = plain["conflicts"].prf()
    rows = [
        "| metric | precision | recall | F1 | labelled positives | target |",
        "|---|---|---|---|---|---|",
        row("importance (keep/drop)", res["importance"], f"F1 ≥ 0.85: {ok(i_f >= 0.85)}"),
        row("dedup, slot-aware (`new_slot`/`old_slot` passed)", res["dedup"]),
        row("dedup, texts + entities only (as `pipeline.py` calls it)", plain["dedup"]),
        row("conflict detection, slot-aware dedup", res["conflicts"],
            f"R ≥ 0.85 at P ≥ 0.9: {ok(cr >= 0.85 and cp >= 0.9)}"),
        row("conflict detection, texts-only dedup", plain["conflicts"],
            f"R ≥ 0.85 at P ≥ 0.9: {ok(pr >= 0.85 and pp >= 0.9)}"),
    ]
    lines = [
        f"{res['messages']} messages ({res['user_messages']} user) in {res['groups']} conversations.",
        "",
        *rows,
        "",
        f"Slot accuracy (labelled slot among the extracted ones, kept messages): {res['slot_accuracy']:.3f} "
        f"of {res['slot_total']}.",
        "",
        f"Rules extraction latency per user message (spaCy parse + rules, one message per call): "
        f"p50 {res['p50']:.1f} ms, p95 {res['p95']:.1f} ms, max {res['max']:.1f} ms "
        f"(target p95 < 40 ms: {ok(res['p95'] < 40.0)}).",
    ]
    return "\n".join(lines)


def sweep(groups: dict[str, list[dict]], embedder) -> str:  # type: ignore[no-untyped-def]
    """Dedup and conflict scores across near-duplicate thresholds (all splits together)."""
    lines = ["| threshold | slots | dedup P | dedup R | conflict P | conflict R |", "|---|---|---|---|---|---|"]
    for threshold in (0.75, 0.8, 0.85, 0.9, 0.95):
        for use_slots in (True, False):
            res = run(groups, embedder, threshold, False, use_slots)
            dp, dr, _ = res["dedup"].prf()
            cp, cr, _ = res["conflicts"].prf()
            lines.append(f"| {threshold} | {'yes' if use_slots else 'no'} | {dp:.3f} | {dr:.3f} | {cp:.3f} "
                         f"| {cr:.3f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--split", default=None, help="dev | holdout | holdout2 (default: each, reported separately)")
    ap.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, help="near-duplicate cosine threshold")
    ap.add_argument("--embedder", default="minilm", help="minilm (default) or hash (fast, meaningless)")
    ap.add_argument("--write", action="store_true", help="replace the section in bench/RESULTS.md")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--sweep", action="store_true", help="also score dedup/conflicts across thresholds "
                    "(always done with --write)")
    args = ap.parse_args()

    from memstrata.providers.embedders import resolve_embedder

    embedder = CachedEmbedder(resolve_embedder(args.embedder))
    splits = [args.split] if args.split else list(dict.fromkeys(
        json.loads(line).get("split", "dev") for line in args.data.open() if line.strip()))
    parts: list[str] = []
    for split in splits:
        groups = load(args.data, split)
        if not groups:
            continue
        res = run(groups, embedder, args.threshold, args.verbose)
        plain = run(groups, embedder, args.threshold, False, use_slots=False)
        parts.append(f"### {split} split\n\n{table(res, plain, split)}")
    if args.sweep or args.write:
        parts.append("### Near-duplicate threshold sweep (all splits)\n\n" + sweep(load(args.data, None), embedder))
    parts.append("### First runs on unseen splits\n\n" + FIRST_RUNS)
    body = "\n\n".join(parts)
    print(body)
    if args.write:
        text = (
            "## Ingestion quality (rules mode)\n\n"
            + provenance("python bench/ingest_quality.py --write")
            + f"\nEmbedder: {embedder.name}; near-duplicate threshold {args.threshold} (chosen from the sweep "
            "below: the highest recall at precision 1.0 with slots, and the pipeline's 0.85 kNN probe); conflict "
            "policy latest_wins.\n\n"
            "How to read this: the rules were written against the dev split. Each holdout split was written "
            "later, scored once (\"First runs on unseen splits\" at the end: the honest estimate), and then "
            "its misses prompted general fixes, so the per-split tables below are no longer unseen-data numbers. "
            "Four holdout labels changed after their first runs: three event slots moved to the one event "
            "schema (subject = event phrase, attribute scheduled_for) and one real conflict that had been "
            "missed in labelling was added (h03-kids-07). All drop-labelled messages are easy categories "
            "(greetings, thanks, questions, "
            "requests), which is why importance precision is 1.0 everywhere; ambiguous messages are few.\n\n"
            "The pipeline today calls `is_near_duplicate` without slots; the slot-aware rows show what passing "
            "`new_slot`/`old_slot` buys (\"I moved to Lisbon\" = \"I live in Lisbon now\"; \"tea over coffee\" "
            "is never merged into \"coffee over tea\"). Latency is wall time on a shared 2-core machine, so "
            "max and p95 move by a few ms between runs.\n\n"
            + body
        )
        write_section(SECTION, text)
        print(f"\nwrote section {SECTION!r} to {ROOT / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
