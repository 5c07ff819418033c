"""Retrieval metrics, LongMemEval/LoCoMo loading and the results-file section writer, on hand-computed values."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import pytest

from memstrata.evaluation import metrics as M
from memstrata.evaluation.baselines import BM25, Outcome, pack_context, tokenize
from memstrata.evaluation.locomo import load_locomo, parse_locomo_date
from memstrata.evaluation.longmemeval import score_question
from memstrata.evaluation.longmemeval_data import instance_from_json, parse_date
from memstrata.evaluation.report import write_section

# ---------------------------------------------------------------------------------------------- metrics


def test_recall_all_needs_every_gold_item() -> None:
    ranked = ["a", "b", "c", "d", "e", "f"]
    assert M.recall_all_at_k(ranked, {"b", "e"}, 5) == 1.0
    assert M.recall_all_at_k(ranked, {"b", "f"}, 5) == 0.0
    assert M.recall_all_at_k(ranked, {"b", "f"}, 6) == 1.0
    assert M.recall_all_at_k(ranked, {"b", "zz"}, 6) == 0.0


def test_recall_any_needs_one_gold_item() -> None:
    ranked = ["a", "b", "c", "d", "e", "f"]
    assert M.recall_any_at_k(ranked, {"f", "e"}, 5) == 1.0
    assert M.recall_any_at_k(ranked, {"f", "zz"}, 5) == 0.0
    assert M.recall_any_at_k(ranked, {"a"}, 1) == 1.0


def test_recall_fraction() -> None:
    assert M.recall_fraction_at_k(["a", "b", "c"], {"a", "c", "x", "y"}, 2) == 0.25
    assert M.recall_fraction_at_k(["a", "b", "c"], {"a", "c", "x", "y"}, 3) == 0.5


def test_metrics_refuse_empty_gold_and_bad_k() -> None:
    with pytest.raises(ValueError):
        M.recall_all_at_k(["a"], set(), 5)
    with pytest.raises(ValueError):
        M.ndcg_at_k(["a"], {"a"}, 0)


def test_ndcg_ranks_one_and_two_are_undiscounted() -> None:
    # One gold item: rank 1 and rank 2 both give DCG 1, i.e. nDCG 1 (log2(2) = 1).
    assert M.ndcg_at_k(["g", "x", "y"], {"g"}, 10) == 1.0
    assert M.ndcg_at_k(["x", "g", "y"], {"g"}, 10) == 1.0
    # Rank 3: 1 / log2(3) = 0.6309...
    assert M.ndcg_at_k(["x", "y", "g"], {"g"}, 10) == pytest.approx(1 / math.log2(3))
    # Rank 4: 1 / log2(4) = 0.5.
    assert M.ndcg_at_k(["x", "y", "z", "g"], {"g"}, 10) == pytest.approx(0.5)
    assert M.ndcg_at_k(["x", "y", "z", "g"], {"g"}, 3) == 0.0


def test_ndcg_two_gold_items_hand_computed() -> None:
    # Gold at ranks 1 and 4: DCG = 1 + 1/log2(4) = 1.5; ideal = 1 + 1 = 2 → 0.75.
    assert M.ndcg_at_k(["g1", "x", "y", "g2"], {"g1", "g2"}, 10) == pytest.approx(0.75)
    # Gold at ranks 3 and 5: DCG = 1/log2(3) + 1/log2(5); ideal 2.
    want = (1 / math.log2(3) + 1 / math.log2(5)) / 2
    assert M.ndcg_at_k(["x", "y", "g1", "z", "g2"], {"g1", "g2"}, 10) == pytest.approx(want)
    # Three gold items, k=2: the ideal only counts 2 of them, so two hits in the top 2 score 1.
    assert M.ndcg_at_k(["g1", "g2", "g3"], {"g1", "g2", "g3"}, 2) == 1.0
    # A repeated gold item earns nothing the second time.
    assert M.ndcg_at_k(["g1", "g1"], {"g1", "g2"}, 10) == pytest.approx(0.5)


def test_dcg_formula() -> None:
    assert M.dcg_at_k([1, 1, 1, 1], 4) == pytest.approx(1 + 1 + 1 / math.log2(3) + 0.5)
    assert M.dcg_at_k([0, 0, 1], 2) == 0.0


def test_session_cutoff_grows_until_k_sessions() -> None:
    session_of = {"a1": "A", "a2": "A", "b1": "B", "a3": "A", "c1": "C", "b2": "B", "d1": "D"}
    turns = ["a1", "a2", "b1", "a3", "c1", "b2", "d1"]
    assert M.session_cutoff(turns, session_of, 1) == 1
    assert M.session_cutoff(turns, session_of, 2) == 3
    assert M.session_cutoff(turns, session_of, 3) == 5
    assert M.session_cutoff(turns, session_of, 4) == 7
    assert M.session_cutoff(turns, session_of, 9) == 7  # fewer sessions than k: every turn
    assert M.session_ranking(turns, session_of) == ["A", "B", "C", "D"]


def test_session_metric_from_turn_ranking() -> None:
    session_of = {"a1": "A", "a2": "A", "a3": "A", "b1": "B", "c1": "C"}
    turns = ["a1", "a2", "a3", "b1", "c1"]
    # Top 2 sessions need the top 4 turns; C is third.
    assert M.session_metric(M.recall_all_at_k, turns, session_of, {"A", "B"}, 2) == 1.0
    assert M.session_metric(M.recall_all_at_k, turns, session_of, {"A", "C"}, 2) == 0.0
    assert M.session_metric(M.recall_all_at_k, turns, session_of, {"A", "C"}, 3) == 1.0
    # Session nDCG: gold C at session rank 3 → 1/log2(3).
    assert M.session_metric(M.ndcg_at_k, turns, session_of, {"C"}, 10) == pytest.approx(1 / math.log2(3))


def test_percentile_interpolates() -> None:
    values = [10.0, 1.0, 4.0, 2.0, 3.0]
    assert M.percentile(values, 50) == 3.0
    assert M.percentile(values, 0) == 1.0
    assert M.percentile(values, 100) == 10.0
    # p95 of 1,2,3,4,10: position 3.8 → 4 + 0.8 * 6 = 8.8.
    assert M.percentile(values, 95) == pytest.approx(8.8)
    assert M.percentile([1.0, 2.0], 50) == 1.5
    assert math.isnan(M.percentile([], 50))


def test_aggregate_per_question_type() -> None:
    rows = [
        {"question_type": "x", "r": 1.0, "s": 0.5},
        {"question_type": "x", "r": 0.0, "s": None},
        {"question_type": "y", "r": 1.0, "s": 1.0},
    ]
    agg = M.aggregate(rows, ["r", "s"])
    assert agg["all"]["n"] == 3
    assert agg["all"]["r"] == pytest.approx(2 / 3)
    assert agg["all"]["s"] == pytest.approx(0.75)
    assert agg["x"]["r"] == 0.5 and agg["x"]["n"] == 2
    assert agg["x"]["s"] == 0.5
    assert agg["y"]["r"] == 1.0


# ---------------------------------------------------------------------------------------------- BM25


def test_tokenize_lowercases_and_drops_stopwords() -> None:
    assert tokenize("The Cat, my DOG's bone!") == ["cat", "dog", "s", "bone"]
    assert tokenize("The cat", frozenset()) == ["the", "cat"]


def test_bm25_hand_computed() -> None:
    docs = [["cat", "cat", "dog"], ["dog"], ["bird", "fish", "fish", "fish"]]
    bm = BM25(docs, k1=1.2, b=0.75)
    avgdl = 8 / 3
    idf_cat = math.log((3 - 1 + 0.5) / (1 + 0.5) + 1)
    norm0 = 1.2 * (1 - 0.75 + 0.75 * 3 / avgdl)
    want = idf_cat * 2 * 2.2 / (2 + norm0)
    scores = bm.scores(["cat"])
    assert scores[0] == pytest.approx(want)
    assert scores[1] == 0.0 and scores[2] == 0.0
    # "dog" is in 2 of 3 docs; the shorter doc scores higher for the same tf.
    dog = bm.scores(["dog"])
    assert dog[1] > dog[0] > 0.0
    assert bm.scores(["unknown"]).sum() == 0.0


def test_pack_context_skips_what_overflows() -> None:
    count = lambda text: len(text.split())  # noqa: E731
    # "- a b c\n" is 4 words, "- d\n" 2, "- e f g h i\n" 6.
    keep, used = pack_context(["a b c", "e f g h i", "d"], count, budget=7)
    assert keep == [0, 2] and used == 6


# ---------------------------------------------------------------------------------------------- LongMemEval


def test_parse_longmemeval_date() -> None:
    assert parse_date("2023/05/20 (Sat) 02:21") == datetime(2023, 5, 20, 2, 21, tzinfo=UTC)
    assert parse_date("2023/1/3") == datetime(2023, 1, 3, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_date("20 May 2023")


def _lme_row() -> dict:
    return {
        "question_id": "q1",
        "question_type": "multi-session",
        "question": "Where did I go?",
        "question_date": "2023/06/01 (Thu) 10:00",
        "answer": "Paris",
        "answer_session_ids": ["s2", "s3"],
        "haystack_session_ids": ["s2", "s1", "s3"],
        "haystack_dates": ["2023/05/03 (Wed) 09:00", "2023/05/01 (Mon) 09:00", "2023/05/03 (Wed) 08:00"],
        "haystack_sessions": [
            [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello", "has_answer": True},
                {"role": "user", "content": "I went to Paris", "has_answer": True},
            ],
            [{"role": "user", "content": "nothing"}, {"role": "assistant", "content": "ok"}],
            [{"role": "assistant", "content": "?"}, {"role": "user", "content": "and Rome", "has_answer": True}],
        ],
    }


def test_longmemeval_turn_ids_gold_and_order() -> None:
    inst = instance_from_json(_lme_row())
    # k counts all turns of the session, assistant ones included; assistant evidence is not a key.
    assert inst.gold_turns == {"s2_3", "s3_2"}
    assert inst.gold_sessions == {"s2", "s3"}
    assert inst.user_turns == {"s2_1", "s2_3", "s1_1", "s3_2"}
    assert inst.session_of["s3_2"] == "s3"
    assert inst.scorable
    assert [s.session_id for s in inst.sessions_in_time_order()] == ["s1", "s3", "s2"]
    abstention = instance_from_json({**_lme_row(), "question_id": "q1_abs"})
    assert not abstention.scorable


def test_longmemeval_scoring_keeps_user_turns_only() -> None:
    inst = instance_from_json(_lme_row())
    # Assistant turns in a system's ranking are dropped before scoring; s2_3 becomes rank 2, s3_2 rank 3.
    out = Outcome(["s2_2", "s1_1", "s2_3", "s1_2", "s3_2"], 1.0, 10, 20, {"s2_3"})
    row = score_question(inst, out)
    assert row["ranked_user_turns"] == ["s1_1", "s2_3", "s3_2"]
    assert row["turn_recall_all@5"] == 1.0
    assert row["turn_recall_any@5"] == 1.0
    assert row["turn_ndcg@10"] == pytest.approx((1 + 1 / math.log2(3)) / 2)
    assert row["session_recall_all@5"] == 1.0
    assert row["context_evidence"] == 0.0  # s3_2 is not in the context
    full = score_question(inst, Outcome(["s3_2", "s2_3"], 1.0, 10, 20, {"s2_3", "s3_2"}))
    assert full["turn_ndcg@10"] == 1.0 and full["context_evidence"] == 1.0


def test_write_section_replaces_only_its_own_block(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    write_section(path, "longmemeval", "first")
    assert "<!-- longmemeval:start -->\nfirst\n<!-- longmemeval:end -->" in path.read_text()
    path.write_text(path.read_text() + "\n<!-- other:start -->\nkeep me\n<!-- other:end -->\n")
    write_section(path, "longmemeval", "second")
    text = path.read_text()
    assert "second" in text and "first" not in text and "keep me" in text
    assert text.count("<!-- longmemeval:start -->") == 1


# ---------------------------------------------------------------------------------------------- LoCoMo


def test_parse_locomo_date() -> None:
    assert parse_locomo_date("1:56 pm on 8 May, 2023") == datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
    assert parse_locomo_date("12:09 am on 15 January, 2024") == datetime(2024, 1, 15, 0, 9, tzinfo=UTC)
    assert parse_locomo_date("12:30 pm on 1 Jun, 2023") == datetime(2023, 6, 1, 12, 30, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_locomo_date("yesterday")


def test_locomo_loader_on_a_tiny_file(tmp_path: Path) -> None:
    sample = {
        "sample_id": "conv-1",
        "conversation": {
            "speaker_a": "Ann",
            "speaker_b": "Bob",
            "session_2_date_time": "9:00 am on 9 May, 2023",
            "session_2": [{"speaker": "Bob", "dia_id": "D2:1", "text": "I adopted a cat."}],
            "session_1_date_time": "1:56 pm on 8 May, 2023",
            "session_1": [
                {"speaker": "Ann", "dia_id": "D1:1", "text": "Hi Bob!"},
                {"speaker": "Bob", "dia_id": "D1:2", "text": "I work at a bakery."},
            ],
        },
        "qa": [
            {"question": "Where does Bob work?", "answer": "bakery", "evidence": ["D1:2"], "category": 1},
            {"question": "Pets?", "answer": "cat", "evidence": ["D2:1; D1:2"], "category": 2},
            {"question": "Unknown?", "answer": "x", "evidence": ["D9:9"], "category": 4},
            {"question": "Adversarial?", "adversarial_answer": "y", "evidence": [], "category": 5},
        ],
    }
    path = tmp_path / "locomo.json"
    path.write_text(json.dumps([sample]))
    convs = load_locomo(path)
    assert len(convs) == 1
    conv = convs[0]
    assert conv.sample_id == "conv-1"
    assert [s.session_id for s in conv.sessions] == ["session_1", "session_2"]
    assert conv.sessions[0].date == datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
    first = conv.sessions[0].turns[1]
    assert (first.turn_id, first.role, first.name, first.content) == ("D1:2", "user", "Bob", "I work at a bakery.")
    assert [q.evidence for q in conv.questions] == [["D1:2"], ["D2:1", "D1:2"], [], []]
    assert [q.scorable for q in conv.questions] == [True, True, False, False]
    assert conv.questions[1].category == 2


def test_run_longmemeval_end_to_end_on_a_tiny_file(tmp_path: Path) -> None:
    from memstrata.evaluation.longmemeval import run_longmemeval

    row = _lme_row()
    row["question"] = "Which city did I go to, Paris or Rome?"
    path = tmp_path / "tiny.jsonl"
    path.write_text(json.dumps(row) + "\n" + json.dumps({**row, "question_id": "q2_abs"}) + "\n")
    result = run_longmemeval(
        path, systems=["bm25", "memstrata", "flat"], embedder="hash", workdir=tmp_path / "db",
        write=True, results_path=tmp_path / "RESULTS.md", out_dir=tmp_path / "out", progress=False, echo=False,
    )
    assert list(result["systems"]) == ["flat", "bm25", "memstrata"]
    for summary in result["systems"].values():
        assert summary["questions"] == 2 and summary["scorable"] == 1
        # Only four user turns exist, so every system has both gold turns in its top 5.
        assert summary["metrics"]["turn_recall_all@5"] == 1.0
    assert not list((tmp_path / "db").glob("*.db"))  # per-instance databases are deleted
    dump = json.loads(Path(result["dump"]).read_text())
    assert dump["questions"]["memstrata"][0]["gold_turns"] == ["s2_3", "s3_2"]
    assert "| turn recall_all@5 | 1.00 | 1.00 | 1.00 | ≥ 0.85 |" in (tmp_path / "RESULTS.md").read_text()


def test_the_bench_command_runs_longmemeval_with_every_option(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from memstrata.cli import main

    path = tmp_path / "tiny.jsonl"
    path.write_text(json.dumps(_lme_row()) + "\n")
    results = tmp_path / "RESULTS.md"
    r = CliRunner().invoke(main, [
        "bench", "longmemeval", str(path), "--systems", "bm25", "--embedder", "hash", "--limit", "1",
        "--baseline-roles", "user,assistant", "--workdir", str(tmp_path / "db"), "--write", "--results",
        str(results), "--out", str(tmp_path / "out"), "--no-progress", "--embed-cache", str(tmp_path / "cache"),
    ])
    assert r.exit_code == 0, r.output
    assert "<!-- longmemeval:start -->" in results.read_text()
    assert list((tmp_path / "out").glob("*.json"))
    assert (tmp_path / "cache" / "embeddings.sqlite3").exists()
    r = CliRunner().invoke(main, [
        "bench", "longmemeval", str(path), "--systems", "flat,bm25", "--embedder", "hash", "--offset", "0",
        "--runs", str(tmp_path / "runs"), "--no-embed-cache", "--write", "--results", str(results), "--out",
        str(tmp_path / "out"), "--no-progress",
    ])
    assert r.exit_code == 0, r.output
    assert "<!-- longmemeval-full:start -->" in results.read_text()
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["bm25", "flat"]
    r = CliRunner().invoke(main, ["bench", "longmemeval", str(path), "--merge-only", "--no-progress"])
    assert r.exit_code != 0 and "--merge-only needs --runs" in r.output
    r = CliRunner().invoke(main, ["bench", "longmemeval", str(path), "--no-embed-cache", "--embed-cache", "x"])
    assert r.exit_code != 0 and "exclude each other" in r.output


def test_cells_below_flat_are_flagged() -> None:
    from memstrata.evaluation.report import BELOW_FLAT, flag_below_flat

    keys = ["flat", "bm25", "memstrata", "memstrata-infer"]
    cells = flag_below_flat(["0.50", "0.40", "0.45", "0.60"], [0.5, 0.4, 0.45, 0.6], keys)
    assert cells == ["0.50", "0.40", "0.45" + BELOW_FLAT, "0.60"]  # BM25 below flat is not memstrata's row
    assert flag_below_flat(["0.1"], [0.1], ["memstrata"]) == ["0.1"]  # no flat column: nothing to compare


def test_project_chats_hold_their_evidence() -> None:
    from memstrata.evaluation.projectchats import load_chats

    chats = load_chats(Path(__file__).resolve().parents[1] / "bench" / "data" / "project_chats.json")
    turns = {t.turn_id: t for c in chats for s in c.sessions for t in s.turns}
    questions = [q for c in chats for q in c.questions]
    assert len(chats) == 3 and len(questions) == 30
    for q in questions:
        assert q["evidence"] and all(turns[e].role == "user" for e in q["evidence"])
