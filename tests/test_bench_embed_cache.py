"""The benchmark embedding cache: exact vectors back, each text embedded once, embedders kept apart, safe
under threads, and the LongMemEval harness's resumable runs on top of it."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from locomo_support import write_locomo
from memstrata.evaluation.embed_cache import FILE_NAME, CachingEmbedder, default_cache_dir
from memstrata.providers.embedders import HashEmbedder

TEXTS = ["I moved to Lisbon in May", "my sister's name is Ana", "the cat sleeps on the piano", "ok"]


class Counting(HashEmbedder):
    """The deterministic test embedder, remembering every batch it was asked to embed."""

    def __init__(self, dim: int = 64, name: str = "hash") -> None:
        super().__init__(dim)
        self.name = name
        self.calls: list[list[str]] = []
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            self.calls.append(list(texts))
        return super().embed(texts)

    @property
    def embedded(self) -> list[str]:
        return [t for call in self.calls for t in call]


class Negated(Counting):
    """Another embedder under another name and the same dimension: its vectors are the hash ones negated."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return -super().embed(texts)


def test_hits_return_the_vectors_the_embedder_gave(tmp_path: Path) -> None:
    inner = Counting()
    cache = CachingEmbedder(inner, tmp_path)
    first = cache.embed(TEXTS)
    again = cache.embed(list(reversed(TEXTS)))
    plain = HashEmbedder().embed(TEXTS)
    assert first.dtype == np.float32 and first.shape == (4, 64)
    assert np.array_equal(first, plain)  # a miss is exactly what the embedder returns
    assert np.array_equal(again, plain[::-1])  # a hit is the stored vector bit for bit, in the caller's order
    assert inner.embedded == TEXTS  # the second call was served from the file
    assert (cache.hits, cache.misses) == (4, 4)
    assert cache.name == "hash" and cache.dim == 64 and cache.count_tokens("two words") == 2


def test_misses_are_embedded_once_in_one_batch(tmp_path: Path) -> None:
    inner = Counting()
    cache = CachingEmbedder(inner, tmp_path)
    cache.embed(TEXTS[:2])
    out = cache.embed([TEXTS[0], TEXTS[2], TEXTS[3], TEXTS[2], TEXTS[1]])
    assert inner.calls == [TEXTS[:2], [TEXTS[2], TEXTS[3]]]  # only the new texts, each once, in one call
    assert np.array_equal(out, HashEmbedder().embed([TEXTS[0], TEXTS[2], TEXTS[3], TEXTS[2], TEXTS[1]]))
    assert cache.embed([]).shape == (0, 64)


def test_the_cache_outlives_the_process_object(tmp_path: Path) -> None:
    CachingEmbedder(Counting(), tmp_path).embed(TEXTS)
    assert (tmp_path / FILE_NAME).exists()
    inner = Counting()
    out = CachingEmbedder(inner, tmp_path).embed(TEXTS)
    assert inner.calls == []
    assert np.array_equal(out, HashEmbedder().embed(TEXTS))


def test_embedders_with_other_names_or_sizes_do_not_mix(tmp_path: Path) -> None:
    hashed = CachingEmbedder(Counting(), tmp_path).embed(TEXTS)
    negated_inner = Negated(name="hash-negated")
    negated = CachingEmbedder(negated_inner, tmp_path).embed(TEXTS)
    assert negated_inner.embedded == TEXTS  # nothing read from the other embedder's rows
    assert np.array_equal(negated, -hashed)
    wide_inner = Counting(dim=32)
    wide = CachingEmbedder(wide_inner, tmp_path).embed(TEXTS)
    assert wide.shape == (4, 32) and wide_inner.embedded == TEXTS
    assert np.array_equal(CachingEmbedder(Counting(), tmp_path).embed(TEXTS), hashed)


def test_live_texts_are_embedded_every_time_and_not_stored(tmp_path: Path) -> None:
    inner = Counting()
    cache = CachingEmbedder(inner, tmp_path)
    query = "where did I move?"
    with cache.live([query]):
        cache.embed([query])
        out = cache.embed([query, TEXTS[0]])
    assert inner.calls == [[query], [query], [TEXTS[0]]]
    assert np.array_equal(out, HashEmbedder().embed([query, TEXTS[0]]))
    cache.embed([query])  # outside the block it is an ordinary miss: it was never stored
    assert inner.calls[-1] == [query]


def test_concurrent_callers_embed_each_text_once(tmp_path: Path) -> None:
    inner = Counting()
    cache = CachingEmbedder(inner, tmp_path)
    texts = [f"turn number {i} about topic {i % 7}" for i in range(200)]
    expected = HashEmbedder().embed(texts)
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            for _ in range(20):
                idx = rng.choice(len(texts), size=15, replace=False)
                got = cache.embed([texts[i] for i in idx])
                assert np.array_equal(got, expected[idx])
        except BaseException as exc:  # collected: an assertion in a thread would otherwise vanish
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(inner.embedded) == sorted(set(inner.embedded))  # no text embedded twice
    assert cache.misses == len(set(inner.embedded))


def test_a_wrong_shape_from_the_embedder_is_refused(tmp_path: Path) -> None:
    class Short(HashEmbedder):
        def embed(self, texts: Sequence[str]) -> np.ndarray:
            return super().embed(texts)[:1]

    cache = CachingEmbedder(Short(), tmp_path)
    with pytest.raises(ValueError, match="returned shape"):
        cache.embed(TEXTS)
    assert CachingEmbedder(Counting(), tmp_path).embed(TEXTS[:1]).shape == (1, 64)  # nothing half-written


def test_the_bench_command_takes_the_folder_from_the_environment(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from memstrata.cli import main

    assert default_cache_dir() == Path(".memstrata/bench-cache")
    path = tmp_path / "tiny.jsonl"
    _instances(path, 1)
    r = CliRunner().invoke(main, ["bench", "longmemeval", str(path), "--systems", "flat", "--embedder", "hash",
                                  "--out", str(tmp_path / "out"), "--no-progress"],
                           env={"MEMSTRATA_BENCH_CACHE": str(tmp_path / "elsewhere")})
    assert r.exit_code == 0, r.output
    assert (tmp_path / "elsewhere" / FILE_NAME).exists()


def test_the_library_never_builds_the_cache() -> None:
    src = Path(__file__).resolve().parent.parent / "src" / "memstrata"
    users = sorted(str(p.relative_to(src)) for p in src.rglob("*.py") if "embed_cache" in p.read_text())
    assert users == ["cli/bench.py", "evaluation/locomo.py",
                     "evaluation/longmemeval.py", "evaluation/projectchats.py"]


# -- the LongMemEval harness: cache on or off gives the same scores; runs resume from their records ---------


def _instances(path: Path, n: int) -> None:
    rows = []
    for i in range(n):
        rows.append({
            "question_id": f"q{i}", "question_type": "single-session-user" if i % 2 else "multi-session",
            "question": f"Which city did I visit in trip {i}?", "question_date": "2023/06/01 (Thu) 10:00",
            "answer": "Paris", "answer_session_ids": [f"s{i}a"],
            "haystack_session_ids": [f"s{i}a", f"s{i}b"],
            "haystack_dates": ["2023/05/03 (Wed) 09:00", "2023/05/01 (Mon) 09:00"],
            "haystack_sessions": [
                [{"role": "user", "content": f"On trip {i} I visited Paris", "has_answer": True},
                 {"role": "assistant", "content": "Lovely city."}],
                [{"role": "user", "content": "I bought a new kettle"}, {"role": "assistant", "content": "Nice."},
                 {"role": "user", "content": f"Trip {i} planning starts soon"}],
            ],
        })
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _ranked(result: dict) -> dict[str, list[list[str]]]:
    dump = json.loads(Path(result["dump"]).read_text())
    return {k: [q["ranked_user_turns"] for q in rows] for k, rows in dump["questions"].items()}


def test_scores_are_the_same_with_and_without_the_cache(tmp_path: Path) -> None:
    from memstrata.evaluation.longmemeval import run_longmemeval

    path = tmp_path / "tiny.jsonl"
    _instances(path, 3)
    common = {"systems": ["flat", "bm25", "memstrata"], "embedder": "hash", "progress": False, "echo": False}
    plain = run_longmemeval(path, out_dir=tmp_path / "plain", **common)
    cold = run_longmemeval(path, out_dir=tmp_path / "cold", embed_cache=tmp_path / "cache", **common)
    warm = run_longmemeval(path, out_dir=tmp_path / "warm", embed_cache=tmp_path / "cache", **common)
    assert cold["embed_cache"]["misses"] > 0
    assert warm["embed_cache"]["misses"] == 0 and warm["embed_cache"]["hits"] > 0
    assert _ranked(plain) == _ranked(cold) == _ranked(warm)
    for key in ("flat", "bm25", "memstrata"):
        assert plain["systems"][key]["metrics"] == warm["systems"][key]["metrics"]


def test_a_run_in_chunks_resumes_and_merges(tmp_path: Path) -> None:
    from memstrata.evaluation.longmemeval import run_longmemeval

    path = tmp_path / "tiny.jsonl"
    _instances(path, 4)
    runs = tmp_path / "runs"
    common = {"embedder": "hash", "progress": False, "echo": False, "runs_dir": runs, "out_dir": tmp_path / "out"}
    first = run_longmemeval(path, systems=["flat", "bm25"], offset=1, limit=2, **common)
    assert first["instances"] == 2
    assert sorted(p.name for p in (runs / "flat").iterdir()) == ["q1.json", "q2.json"]
    stamp = (runs / "flat" / "q1.json").stat().st_mtime_ns
    partial = run_longmemeval(path, systems=["flat", "bm25"], merge_only=True, write=True,
                              results_path=tmp_path / "RESULTS.md", **common)
    assert partial["instances"] == 2 and partial["systems"]["flat"]["questions"] == 2
    text = (tmp_path / "RESULTS.md").read_text()
    assert "<!-- longmemeval-full:start -->" in text and "**2 of the 4 instances** (file positions 2–3:" in text
    full = run_longmemeval(path, systems=["flat", "bm25"], **common)
    assert full["instances"] == 4
    assert (runs / "flat" / "q1.json").stat().st_mtime_ns == stamp  # a finished record is not run again
    single = run_longmemeval(path, systems=["flat", "bm25"], embedder="hash", progress=False, echo=False,
                             out_dir=tmp_path / "single")
    assert _ranked(full) == _ranked(single)
    assert full["systems"]["flat"]["metrics"] == single["systems"]["flat"]["metrics"]
    with pytest.raises(ValueError, match="made with"):
        run_longmemeval(path, systems=["flat"], preset="precise", merge_only=True, **common)


def test_locomo_scores_are_the_same_with_and_without_the_cache(tmp_path: Path) -> None:
    from memstrata.evaluation.locomo import run_locomo

    turns = [("Ann", "I adopted two dogs in 2019."), ("Bob", "I work at a bakery downtown."),
             ("Ann", "My sister lives in Porto."), ("Bob", "I started running marathons last spring.")]
    path = write_locomo(tmp_path / "locomo.json", turns, [
        {"question": "Where does Bob work?", "answer": "bakery", "evidence": ["D1:2"], "category": 4},
        {"question": "When did Ann adopt her dogs?", "answer": "2019", "evidence": ["D1:1"], "category": 2}])
    common = {"systems": ["flat", "bm25", "memstrata"], "embedder": "hash", "progress": False, "echo": False}
    plain = run_locomo(path, out_dir=tmp_path / "plain", **common)
    cold = run_locomo(path, out_dir=tmp_path / "cold", embed_cache=tmp_path / "cache", **common)
    warm = run_locomo(path, out_dir=tmp_path / "warm", embed_cache=tmp_path / "cache", **common)
    assert cold["embed_cache"]["misses"] > 0 and warm["embed_cache"]["misses"] == 0
    assert _ranked_locomo(plain) == _ranked_locomo(cold) == _ranked_locomo(warm)
    assert plain["systems"]["memstrata"]["overall"] == warm["systems"]["memstrata"]["overall"]


def _ranked_locomo(result: dict) -> dict[str, list[list[str]]]:
    dump = json.loads(Path(result["dump"]).read_text())
    return {k: [q["ranked"] for q in rows] for k, rows in dump["questions"].items()}


def test_project_chats_run_through_the_cache(tmp_path: Path) -> None:
    from memstrata.evaluation.projectchats import run_projectchats

    data = Path(__file__).resolve().parent.parent / "bench" / "data" / "project_chats.json"
    common = {"systems": ["flat", "bm25"], "embedder": "hash", "echo": False}
    plain = run_projectchats(data, out_dir=tmp_path / "plain", **common)
    cached = run_projectchats(data, out_dir=tmp_path / "cached", embed_cache=tmp_path / "cache", **common)
    assert cached["embed_cache"]["misses"] > 0
    assert _ranked_locomo(plain) == _ranked_locomo(cached)


def test_position_spans_and_the_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import memstrata.cli
    from memstrata.evaluation.longmemeval import _spans
    from memstrata.evaluation.report import command_line

    assert _spans([1, 2, 3, 7, 9, 10]) == "1–3, 7, 9–10"
    assert _spans([4]) == "4"
    main_file = str(Path(memstrata.cli.__file__).with_name("__main__.py"))
    monkeypatch.setattr("sys.argv", [main_file, "bench", "longmemeval", "x.jsonl"])
    assert command_line() == "memstrata bench longmemeval x.jsonl"
