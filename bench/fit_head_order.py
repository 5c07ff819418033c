"""Fit the head model of ``memstrata.retrieve.head_order`` on labelled update conversations.

    python bench/fit_head_order.py --splits dev,heldout,heldout2 --folds --cache /tmp/head.json

Each conversation is added session by session through the public API (real MiniLM embedder, SQLite), with
the head model switched off. Then every labelled question the model would read (a question about the user
now: each update pair's question and each findable statement's query) is searched, and its first
``SPAN`` results are kept as ``search`` returns them (``--cache`` keeps them in a file) and described by
``head_features`` exactly as ``search`` describes them. A result is a
right answer when it holds the pair's new value (the findable statement's words); one that holds only the
old value is a stale answer.

The model is a conditional logit over each question's results (one softmax per question; the target is
spread over its right answers; update pairs and findable statements weigh the same in all), with a term
that moves probability away from stale answers, a pairwise term that puts each stale answer below the
results that are not, an L2 penalty, and plain gradient descent. With ``--folds`` each split is scored by
a model fitted without it: how often the first result is right (for update pairs and for findable
statements), and how often a stale answer is among the first three (results the search holds in place keep
their places, and outdated results are placed after the first three current ones, as ``search`` does).
Then the weights fitted on all splits are printed, to be pasted into ``FITTED``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
from memstrata import Memory  # noqa: E402
from memstrata.ingest.statement_words import StatementWords  # noqa: E402
from memstrata.providers.embedders import default_embedder  # noqa: E402
from memstrata.retrieve.head_order import (  # noqa: E402
    FEATURES,
    SPAN,
    Item,
    head_features,
    held_in_place,
    model_order,
    reads,
)
from memstrata.retrieve.presets import get_preset  # noqa: E402
from memstrata.retrieve.query_words import asks_about_user  # noqa: E402
from memstrata.retrieve.revisions import current_first, wants_current  # noqa: E402
from update_quality import holds  # noqa: E402

L2 = 1e-3
STEPS = 1000
RATE = 0.5
STALE = 1.0  # weight of the term that moves probability away from stale answers
PAIR = 0.25  # weight of the pairwise term that puts a stale answer below each result that is not one


def rows_of(conv: dict, emb, split: str) -> list[dict]:  # type: ignore[no-untyped-def]
    """One row per question the model reads: its items' features and labels."""
    out: list[dict] = []
    user = conv["id"]
    off = get_preset("balanced", head_order=False)
    with tempfile.TemporaryDirectory(prefix="memstrata-fit-") as d, \
            Memory(f"sqlite:///{Path(d) / 'm.db'}", embedder=emb, preset=off) as m:  # type: ignore[arg-type]
        for n, session in enumerate(conv["sessions"]):
            m.add(session["turns"], user_id=user, conversation_id=f"{user}-s{n}", timestamp=session["date"])
        now = conv["sessions"][-1]["date"]
        asked = [(u["question"], u["new"], u["old"], "update") for u in conv["updates"]]
        asked += [(f["query"], f["expect"], None, "findable") for f in conv["findable"]]
        for query, right, old, kind in asked:
            if not asks_about_user(query) or not wants_current(query):
                continue
            hits = m.search(query, user_id=user, limit=10, now=now, explain=True)["results"][:SPAN]
            if len(hits) < 2:
                continue
            items = [Item(h["memory"], h.get("kind", ""), (h.get("source") or {}).get("role", ""),
                          _ts(h["created_at"]), float(h["score"]), h.get("stages", {})) for h in hits]
            out.append({
                "split": split, "kind": kind, "query": query, "items": [list(i) for i in items],
                "right": [float(holds(i.text, right)) for i in items],
                "stale": [float(old is not None and holds(i.text, old) and not holds(i.text, right)) for i in items],
                "outdated": [float("outdated" in i.stages) for i in items],
            })
    return out


def _ts(value: object) -> float:
    if isinstance(value, int | float):
        return float(value)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def fit(rows: list[dict]) -> np.ndarray:
    """Weights of the conditional logit (see the module's docstring), from the present order as a start."""
    n, d = len(rows), len(FEATURES)
    x = np.zeros((n, SPAN, d))
    mask = np.full((n, SPAN), -np.inf)
    right = np.zeros((n, SPAN))
    stale = np.zeros((n, SPAN))
    for k, r in enumerate(rows):
        m = len(r["right"])
        x[k, :m], mask[k, :m], right[k, :m], stale[k, :m] = r["x"], 0.0, r["right"], r["stale"]
    # the two kinds of question weigh the same in all: most findable statements were said early and never
    # changed, and a model fitted on update pairs alone learns to put whatever is newer first
    kinds = [r["kind"] for r in rows]
    share = {k: n / (2 * kinds.count(k)) for k in set(kinds)}
    weight = np.array([share[k] for k in kinds])[:, None]
    has_right = right.sum(1, keepdims=True)
    target = np.divide(right, has_right, out=np.zeros_like(right), where=has_right > 0)
    # pairs of one question's results (i holds no stale answer, j does), for the pairwise term
    real = np.isfinite(mask)
    pairs = (1 - stale)[:, :, None] * stale[:, None, :] * real[:, :, None] * real[:, None, :]
    per_pair = PAIR / max(1.0, pairs.sum() / n)
    w = np.zeros(d)
    w[FEATURES.index("score_share")] = 3.0
    for _ in range(STEPS):
        s = x @ w + mask
        p = np.exp(s - s.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        g = np.einsum("nsd,ns->d", x, (p - target) * (has_right > 0) * weight)
        g += STALE * np.einsum("nsd,ns->d", x, p * (stale - (p * stale).sum(1, keepdims=True)))
        sc = x @ w
        # log(1 + exp(s_j - s_i)) for each pair: a stale answer below one that is not
        push = pairs / (1.0 + np.exp(sc[:, :, None] - sc[:, None, :]))
        g += per_pair * np.einsum("nijd,nij->d", x[:, None, :, :] - x[:, :, None, :], push)
        w -= RATE * (g / n + L2 * w)
    return w


def score(rows: list[dict], w: np.ndarray | None, kind: str = "update") -> tuple[int, int, int]:
    """Questions of one kind: (count, first result right, a stale answer among the first three)."""
    n = first = stale = 0
    for r in rows:
        if r["kind"] != kind:
            continue
        order = list(range(len(r["right"])))
        if w is not None:
            held = [held_in_place(i[5]) for i in r["items"]]
            order = current_first(model_order((r["x"] @ w).tolist(), held), r["outdated"].__getitem__)
        n += 1
        first += r["right"][order[0]] > 0
        stale += any(r["stale"][i] for i in order[:3])
    return n, first, stale


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--splits", default="dev,heldout,heldout2,heldout3,heldout4,heldout5,heldout6,heldout7,"
                                        "heldout8,heldout9,heldout10,heldout11,heldout12,heldout13,heldout14,"
                                        "heldout15,heldout16,heldout17,heldout18")
    p.add_argument("--folds", action="store_true", help="score each split by a model fitted without it")
    p.add_argument("--cache", default=None, help="keep the rows in this JSON file (reused when present)")
    p.add_argument("--drop", default="", help="features to leave out (comma-separated), to measure what they add")
    a = p.parse_args()
    splits = a.splits.split(",")
    cache = Path(a.cache) if a.cache else None
    if cache and cache.exists():
        rows = json.loads(cache.read_text())
    else:
        emb = default_embedder()
        emb.warm_up()
        rows = []
        for split in splits:
            for line in (ROOT / "data" / f"updates_{split}.jsonl").read_text().splitlines():
                if line.strip():
                    rows += rows_of(json.loads(line), emb, split)
        if cache:
            cache.write_text(json.dumps(rows))
    reader = StatementWords()
    keep = np.array([0.0 if f in a.drop.split(",") else 1.0 for f in FEATURES])
    rows = [{**r, "x": head_features([Item(*i) for i in r["items"]], r["query"], reader) * keep}
            for r in rows if r["split"] in splits and reads(r["query"])]
    print(f"{len(rows)} questions ({sum(r['kind'] == 'update' for r in rows)} update pairs), "
          f"{len(FEATURES)} features, first {SPAN} results each")
    if a.folds:
        total = np.zeros(8)
        print("| split | update pairs: new value first, score order → model | stale answer in first 3 | "
              "findable statements: first |")
        print("|---|---|---|---|")
        for split in splits:
            test = [r for r in rows if r["split"] == split]
            w = fit([r for r in rows if r["split"] != split])
            (n, f0, s0), (_, f1, s1) = score(test, None), score(test, w)
            (m, g0, _), (_, g1, _) = score(test, None, "findable"), score(test, w, "findable")
            total += (n, f0, f1, s0, s1, m, g0, g1)
            print(f"| {split} | {n}: {100 * f0 / n:.1f}% → {100 * f1 / n:.1f}% | {100 * s0 / n:.1f}% → "
                  f"{100 * s1 / n:.1f}% | {m}: {100 * g0 / max(m, 1):.1f}% → {100 * g1 / max(m, 1):.1f}% |")
        n, m = total[0], total[5]
        print(f"| all, each left out | {int(n)}: {100 * total[1] / n:.1f}% → {100 * total[2] / n:.1f}% | "
              f"{100 * total[3] / n:.1f}% → {100 * total[4] / n:.1f}% | {int(m)}: {100 * total[6] / m:.1f}% → "
              f"{100 * total[7] / m:.1f}% |")
    w = fit(rows)
    print("FITTED = {")
    for k in range(0, len(FEATURES), 4):
        print("    " + " ".join(f'"{n}": {v:.3f},' for n, v in zip(FEATURES[k:k + 4], w[k:k + 4], strict=True)))
    print("}")


if __name__ == "__main__":
    sys.exit(main())
