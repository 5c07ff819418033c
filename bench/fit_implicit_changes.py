"""Fit the pair model of ``memstrata.ingest.implicit_changes`` on labelled update conversations.

    python bench/fit_implicit_changes.py --splits dev,heldout,heldout2 --write-weights

Each conversation is added session by session through the public API (real MiniLM embedder, SQLite). Before
each later session, every user sentence of it that could state a value is set beside its nearest earlier
statements exactly as ``add`` does (``candidate_pairs``, ``features``). A pair is positive when the earlier
sentence holds a labelled old value and the new one the matching new value of a change not said as such
(``explicit: false``): a change said as one is for the supersede path, not for a conflict record.
A logistic regression (L2, standardised features, plain gradient descent) is fitted on all of it; with
``--folds`` each split is also scored by a model fitted without it, the way ``add`` raises records (best
pair per sentence, one per old memory), counting a record correct as ``bench/update_quality.py`` does.
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
from memstrata import IngestConfig, Memory  # noqa: E402
from memstrata.ingest import implicit_changes as ic  # noqa: E402
from memstrata.ingest.asides import sentence_units  # noqa: E402
from memstrata.providers.embedders import default_embedder  # noqa: E402

L2 = 0.01
STEPS = 4000


def rows_of(conv: dict, emb) -> list[dict]:  # type: ignore[no-untyped-def]
    """Every scored pair of one conversation, labelled."""
    out: list[dict] = []
    user = conv["id"]
    with tempfile.TemporaryDirectory(prefix="memstrata-fit-") as d, \
            Memory(f"sqlite:///{Path(d) / 'm.db'}", embedder=emb, ingest=IngestConfig(implicit_conflicts=False)) as m:
        store, scope = m.store, m._open(user, None, None, None)  # the bench reads what add reads
        for n, session in enumerate(conv["sessions"]):
            if n:
                said = _epoch(session["date"])
                for msg in session["turns"]:
                    if msg["role"] != "user":
                        continue
                    text = msg["content"]
                    units = sentence_units(text)
                    window = np.asarray(emb.embed([text])[0], dtype=np.float32)
                    sent = np.asarray(emb.embed(units), dtype=np.float32) if units else None
                    for sentence, vec in ic.new_sentences(text, window, sent):
                        for p in ic.candidate_pairs(store, scope, sentence, vec, said, ()):
                            x = ic.features(p, vec, emb.embed)
                            label, implicit = _label(conv, p.old_text, sentence, p.old.text, text)
                            out.append({"split": conv.get("split"), "conv": user, "sentence": sentence,
                                        "old_id": p.old.id, "x": x, "y": label, "implicit": implicit})
            m.add(session["turns"], user_id=user, conversation_id=f"{user}-s{n}", timestamp=session["date"])
    return out


def _epoch(date: str) -> float:
    return datetime.fromisoformat(date.replace("Z", "+00:00")).timestamp()


def _label(conv: dict, old_part: str, new_part: str, old_memory: str, new_message: str) -> tuple[int, bool]:
    """(1 when the pair is a labelled change, whether the bench counts its record as correct)."""
    for u in conv["updates"]:
        o, n = u["old"].lower(), u["new"].lower()
        if o in old_part.lower() and n in new_part.lower() and n not in old_part.lower():
            counted = o in old_memory.lower() and n in new_message.lower() and not u["explicit"]
            return 1, counted
    return 0, False


def fit(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    mean, scale = X.mean(0), X.std(0) + 1e-9
    Z = (X - mean) / scale
    w, b = np.zeros(Z.shape[1]), 0.0
    for _ in range(STEPS):
        p = 1.0 / (1.0 + np.exp(-(Z @ w + b)))
        w -= 0.5 * (Z.T @ (p - y) / len(y) + L2 * w)
        b -= 0.5 * float(np.mean(p - y))
    return mean, scale, w, b


def raised(rows: list[dict], model: tuple, threshold: float) -> list[dict]:
    """The records ``add`` would raise: best pair per sentence at or above the threshold, one per old memory."""
    mean, scale, w, b = model
    best: dict[tuple, dict] = {}
    for r in rows:
        s = 1.0 / (1.0 + np.exp(-(((r["x"] - mean) / scale) @ w + b)))
        k = (r["conv"], r["sentence"])
        if k not in best or s > best[k]["s"]:
            best[k] = {**r, "s": s}
    per_old: dict[tuple, dict] = {}
    for r in best.values():
        k = (r["conv"], r["old_id"])
        if r["s"] >= threshold and (k not in per_old or r["s"] > per_old[k]["s"]):
            per_old[k] = r
    return list(per_old.values())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--splits", default="dev,heldout,heldout2,heldout3,heldout4,heldout5,heldout6,heldout7,"
                                        "heldout8,heldout9")
    p.add_argument("--folds", action="store_true", help="score each split by a model fitted without it")
    p.add_argument("--cache", default=None, help="keep the scored pairs in this JSON file (reused when present)")
    a = p.parse_args()
    emb = default_embedder()
    emb.warm_up()
    rows: list[dict] = []
    cache = Path(a.cache) if a.cache else None
    if cache and cache.exists():
        rows = [{**r, "x": np.array(r["x"])} for r in json.loads(cache.read_text())]
    else:
        for split in a.splits.split(","):
            for line in (ROOT / "data" / f"updates_{split}.jsonl").read_text().splitlines():
                if line.strip():
                    rows += rows_of({**json.loads(line), "split": split}, emb)
        if cache:
            cache.write_text(json.dumps([{**r, "x": r["x"].tolist()} for r in rows]))
    X, y = np.stack([r["x"] for r in rows]), np.array([r["implicit"] for r in rows], dtype=np.float64)
    print(f"{len(rows)} pairs, {int(y.sum())} labelled changes not said as such")
    implicit = {s: _implicit_count(s) for s in a.splits.split(",")}
    if a.folds:
        for threshold in (0.3, 0.4, 0.5, 0.6, 0.7):
            tot_r = tot_ok = tot_imp = 0
            line = []
            for split in a.splits.split(","):
                train = [r for r in rows if r["split"] != split]
                test = [r for r in rows if r["split"] == split]
                model = fit(np.stack([r["x"] for r in train]),
                            np.array([r["implicit"] for r in train], dtype=np.float64))
                got = raised(test, model, threshold)
                ok = sum(r["implicit"] for r in got)
                tot_r, tot_ok, tot_imp = tot_r + len(got), tot_ok + ok, tot_imp + implicit[split]
                line.append(f"{split} {ok}/{len(got)}")
            print(f"threshold {threshold}: precision {tot_ok / max(tot_r, 1):.3f} ({tot_ok}/{tot_r}), "
                  f"recall at most {tot_ok / max(tot_imp, 1):.3f} | " + ", ".join(line))
    mean, scale, w, b = fit(X, y)
    print("MEAN = np.array([" + ", ".join(f"{v:.4g}" for v in mean) + "])")
    print("SCALE = np.array([" + ", ".join(f"{v:.4g}" for v in scale) + "])")
    print("WEIGHTS = np.array([" + ", ".join(f"{v:.4g}" for v in w) + "])")
    print(f"BIAS = {b:.4g}")
    for name, v in sorted(zip(ic.FEATURES, w, strict=True), key=lambda t: -abs(t[1])):
        print(f"  {name:16s} {v:+.3f}")


def _implicit_count(split: str) -> int:
    n = 0
    for line in (ROOT / "data" / f"updates_{split}.jsonl").read_text().splitlines():
        if line.strip():
            n += sum(not u["explicit"] for u in json.loads(line)["updates"])
    return n


if __name__ == "__main__":
    sys.exit(main())
