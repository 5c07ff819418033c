"""Sentence evidence inside long messages, and standing instructions in context(), with the real embedder."""

from __future__ import annotations

from memstrata import Memory
from memstrata.ingest.asides import sentence_units
from memstrata.retrieve.presets import get_preset

LONG = ("We finally started the kitchen renovation last week and it has been chaos. The contractor removed the old "
        "cabinets on Monday, but the plumber found that the pipes behind the sink are corroded, so the whole wall has "
        "to be opened up before the new countertops can go in. I am also still undecided between oak and walnut for "
        "the open shelves, and the tiles we ordered are two weeks late. My sister Clara just got engaged to a pilot "
        "from Lyon, so the house has to be ready for the party in June. Do you think I should push the contractor "
        "to work weekends or accept the delay?")
ABOUT_CLARA = ["Clara and I went hiking in the Dolomites last summer.", "My sister Clara works as a nurse in Porto.",
               "Clara's birthday is on the 3rd of May.", "Clara adopted a grey cat called Pixel.",
               "I lent Clara my car for the weekend.", "Clara is learning to play the cello.",
               "Clara and her friends are planning a trip to Japan."]


def test_sentence_units_skip_code_short_messages_and_fragments() -> None:
    assert sentence_units("I moved to Lisbon. It is sunny.") == []  # short: its window is its sentence
    text = LONG + "\n\n```python\nfor pipe in wall:\n    replace(pipe)  # this comment is not a sentence\n```\nThanks!"
    units = sentence_units(text)
    assert "My sister Clara just got engaged to a pilot from Lyon, so the house has to be ready for the party in " \
           "June." in units
    assert not any("replace(pipe)" in u or u == "Thanks!" for u in units)


def _rank(mem: Memory, uid: str, query: str, limit: int) -> int | None:
    results = mem.search(query, user_id=uid, limit=limit)["results"]
    return next((i for i, r in enumerate(results) if "kitchen renovation" in r["memory"]), None)


def test_an_aside_in_a_long_message_is_found_by_its_sentence(real_mem: Memory, uid: str) -> None:
    for text in ABOUT_CLARA:
        real_mem.add([{"role": "user", "content": text}], user_id=uid, infer=False)
    real_mem.add([{"role": "user", "content": LONG}], user_id=uid, infer=False)
    query = "Who is my sister engaged to?"
    real_mem.preset = get_preset("balanced", sentence_weight=0.0)
    assert _rank(real_mem, uid, query, 3) is None  # by its windows alone, turns about Clara outrank it
    real_mem.preset = get_preset("balanced")
    assert get_preset("balanced").sentence_weight > 0
    rank = _rank(real_mem, uid, query, 3)
    assert rank is not None and rank <= 1
    hit = real_mem.search(query, user_id=uid, limit=3, explain=True)["results"][rank]
    assert hit["stages"]["sentence"] > hit["stages"]["dense"] - 1e-6  # the sentence scored above the window


def test_standing_instructions_reach_context_on_an_unrelated_query(real_mem: Memory, uid: str) -> None:
    real_mem.add([{"role": "user", "content": "From now on, always answer in metric units."}], user_id=uid)
    real_mem.add([{"role": "user", "content": "Never use semicolons in my JavaScript code."}], user_id=uid)
    real_mem.add([{"role": "user", "content": "From now on call me Sam."}], user_id=uid)
    for text in ["I'm planning a hike up Ben Nevis on Saturday with my brother Tom.",
                 "My brother Tom lives in Glasgow and works as a paramedic.",
                 "We want to start walking at 7 in the morning to avoid the crowds.",
                 "Tom bought new boots for the trip last week."]:
        real_mem.add([{"role": "user", "content": text}], user_id=uid)
    ctx = real_mem.context("How long will the hike up Ben Nevis take us?", user_id=uid, token_budget=400)
    shown = [s["memory"] for s in ctx["standing"]]
    assert any("metric units" in s for s in shown) and any("semicolons" in s for s in shown)
    assert any("call me Sam" in s for s in shown)
    assert "## Standing instructions and preferences" in ctx["text"] and "metric units" in ctx["text"]
    assert all(s["kind"] == "instruction" for s in ctx["standing"])
    assert ctx["tokens"] <= 400
    assert not any("metric units" in item["memory"] for item in ctx["items"])  # shown once
    # a query about what the user asked for finds the instruction first
    top = real_mem.search("What units did I ask you to use?", user_id=uid, limit=3, explain=True)["results"][0]
    assert "metric units" in top["memory"] and top["stages"]["standing"] > 1


def test_standing_instructions_stay_in_their_scope(real_mem: Memory, uid: str) -> None:
    real_mem.add([{"role": "user", "content": "From now on, always answer in metric units."}], user_id=uid)
    real_mem.add([{"role": "user", "content": "I'm planning a hike on Saturday."}], user_id=uid + "-other")
    ctx = real_mem.context("How long is the hike?", user_id=uid + "-other")
    assert ctx["standing"] == [] and "metric units" not in ctx["text"]


def test_only_long_user_messages_keep_sentence_vectors(store_url: str, uid: str) -> None:
    from memstrata.config import IngestConfig
    from memstrata.models import Scope
    from memstrata.providers.embedders import HashEmbedder

    with Memory(store_url, embedder=HashEmbedder()) as mem:
        out = mem.add([{"role": "user", "content": LONG},
                       {"role": "assistant", "content": LONG.replace("I am", "You are")},
                       {"role": "user", "content": "Thanks, that helps."}], user_id=uid, infer=False)
        ids = [r["id"] for r in out["results"]]
        kept = mem.store.sentence_vectors(Scope.of(user_id=uid), ids)
        assert list(kept) == [ids[0]] and kept[ids[0]].shape == (len(sentence_units(LONG)), mem.embedder.dim)
    with Memory(store_url, embedder=HashEmbedder(), ingest=IngestConfig(sentence_vectors=False)) as mem:
        off = mem.add([{"role": "user", "content": LONG + " Also the fridge is broken."}], user_id=uid, infer=False)
        assert mem.store.sentence_vectors(Scope.of(user_id=uid), [off["results"][0]["id"]]) == {}
