"""Long memories in context(): shown whole when everything fits, by their relevant part when not."""

from __future__ import annotations

from memstrata import Memory
from memstrata.retrieve.excerpt import GAP, excerpt, excerpt_cap


def _words(text: str) -> int:
    return len(text.split())


RECIPE = ("What a great idea! Baking without a stand mixer is easier than it sounds. "
          "Start with the oven at 180 degrees and line two tins with baking paper. "
          "Whisk the eggs and sugar by hand for about five minutes until pale. "
          "Fold in the flour gently so the batter keeps its air. "
          "For the coffee flavour, brew a double espresso in your coffee maker and let it cool before adding it. "
          "Bake for twenty-five minutes, then leave the sponges to cool on a rack. "
          "Fill with mascarpone whipped with a spoon of sugar. "
          "Dust the top with cocoa just before serving.")


def test_excerpt_keeps_the_opening_and_the_sentences_about_the_query() -> None:
    cut = excerpt(RECIPE, "When did I buy my coffee maker?", cap=45, count=_words)
    assert cut is not None
    assert cut.startswith("What a great idea!")
    assert "brew a double espresso in your coffee maker" in cut
    assert GAP.strip() in cut
    assert "Dust the top with cocoa" not in cut  # shares nothing with the query
    assert _words(cut) <= 45


def test_excerpt_leaves_short_or_single_sentence_text_alone() -> None:
    assert excerpt("I bought a coffee maker in May.", "coffee maker", cap=45, count=_words) is None
    one_long_sentence = " ".join(["coffee"] * 80)
    assert excerpt(one_long_sentence, "coffee", cap=45, count=_words) is None


def test_excerpt_without_a_matching_sentence_reads_from_the_start() -> None:
    cut = excerpt(RECIPE, "What is my sister's name?", cap=30, count=_words)
    assert cut is not None and cut.startswith("What a great idea! Baking without a stand mixer")
    assert cut.endswith("…")


def test_excerpt_cap_scales_with_the_budget_and_has_a_floor() -> None:
    assert excerpt_cap(2000) == 250
    assert excerpt_cap(100) == 48


LONG_REPLY = " ".join([
    "Congratulations on the new coffee maker! Here is how to keep it running well for years.",
    *[f"Step {n}: descale the water tank with a mix of white vinegar and water, run a full cycle, then rinse it "
      f"twice with clean water so no taste of vinegar is left in the next pot." for n in range(1, 9)],
    "If the coffee maker still brews slowly after that, the heating element may need a service.",
])


def test_context_cuts_a_long_reply_so_the_users_statements_fit(real_mem: Memory, uid: str) -> None:
    statements = ["I bought a new coffee maker three weeks ago, a black Breville.",
                  "My stand mixer broke down last month and went in for repair.",
                  "The stand mixer came back from the repair shop yesterday."]
    real_mem.add([{"role": "user", "content": statements[0]}, {"role": "assistant", "content": LONG_REPLY}],
                 user_id=uid, infer=False)
    for text in statements[1:]:
        real_mem.add([{"role": "user", "content": text}], user_id=uid, infer=False)
    query = "Which came first, buying the coffee maker or the stand mixer breaking down?"
    full = real_mem.embedder.count_tokens(LONG_REPLY)
    ctx = real_mem.context(query, user_id=uid, token_budget=full + 40)
    shown = {i["memory"]: i for i in ctx["items"]}
    assert all(s in shown for s in statements)
    reply = shown[LONG_REPLY]
    assert "excerpt" in reply and reply["excerpt"].startswith("Congratulations on the new coffee maker!")
    assert reply["excerpt"] in ctx["text"] and LONG_REPLY not in ctx["text"]
    assert reply["tokens"] < full
    assert ctx["tokens"] <= full + 40
    # the memory itself is whole
    assert real_mem.get(reply["id"], user_id=uid)["memory"] == LONG_REPLY


def test_context_shows_long_memories_whole_when_everything_fits(real_mem: Memory, uid: str) -> None:
    real_mem.add([{"role": "user", "content": "I bought a new coffee maker three weeks ago."},
                  {"role": "assistant", "content": LONG_REPLY}], user_id=uid, infer=False)
    ctx = real_mem.context("How do I clean my coffee maker?", user_id=uid, token_budget=4000)
    reply = next(i for i in ctx["items"] if i["memory"] == LONG_REPLY)
    assert "excerpt" not in reply
    assert LONG_REPLY in ctx["text"]
