"""LangGraph: MemstrataStore driven through the real langgraph package, alone and inside compiled graphs."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

import pytest
from integration_support import need, run_example

need("langgraph")

from langgraph.graph import END, START, StateGraph  # noqa: E402
from langgraph.runtime import Runtime  # noqa: E402
from langgraph.store.base import (  # noqa: E402
    GetOp,
    InvalidNamespaceError,
    ListNamespacesOp,
    MatchCondition,
    PutOp,
    SearchOp,
)

from memstrata import ConfigurationError, InvalidInputError, Memory  # noqa: E402
from memstrata.integrations.langgraph import MemstrataStore  # noqa: E402


def test_items_round_trip_and_land_in_the_users_scope(engine_memory: Memory) -> None:
    store = MemstrataStore(engine_memory, namespace_scope=(None, "user_id"))
    before = time.time()
    store.put(("memories", "alice"), "food", {"text": "I love spicy ramen", "stars": 5, "tags": ["food"]})
    item = store.get(("memories", "alice"), "food")
    assert item is not None
    assert (item.namespace, item.key) == (("memories", "alice"), "food")
    assert item.value == {"text": "I love spicy ramen", "stars": 5, "tags": ["food"]}
    assert item.created_at.timestamp() >= before - 1 and item.created_at == item.updated_at
    # It is an ordinary memstrata memory of user alice: visible to Memory, absent from every other scope.
    rows = engine_memory.get_all(user_id="alice")["results"]
    assert [r["metadata"]["lg_key"] for r in rows] == ["food"] and "spicy ramen" in rows[0]["memory"]
    assert engine_memory.get_all(user_id="memories")["results"] == []
    store.put(("memories", "alice"), "food", {"text": "I now prefer sushi", "stars": 4})
    again = store.get(("memories", "alice"), "food")
    assert again is not None and again.value["text"] == "I now prefer sushi"
    assert again.created_at == item.created_at and again.updated_at > item.updated_at
    events = engine_memory.history(rows[0]["id"])  # the id alone finds alice's scope
    assert [e["event"] for e in events] == ["ADD", "UPDATE"] and "ramen" in events[1]["old_memory"]
    store.delete(("memories", "alice"), "food")
    assert store.get(("memories", "alice"), "food") is None
    assert store.get(("memories", "alice"), "never-written") is None


def test_equal_values_under_two_keys_stay_two_items(memory: Memory) -> None:
    store = MemstrataStore(memory)
    store.put(("alice",), "a", {"text": "same"})
    store.put(("alice",), "b", {"text": "same"})
    store.delete(("alice",), "a")
    assert store.get(("alice",), "b") is not None and store.get(("alice",), "a") is None


def test_semantic_search_uses_memstratas_retrieval(real_memory: Memory) -> None:
    store = MemstrataStore(real_memory, namespace_scope=("user_id",))
    facts = {
        "diet": "I am vegetarian and I never eat meat or fish.",
        "pet": "My dog Biscuit is a three year old beagle.",
        "job": "I work as a nurse on night shifts at the city hospital.",
        "hobby": "On weekends I climb at the bouldering gym.",
    }
    for key, text in facts.items():
        store.put(("alice", "profile"), key, {"text": text})
    store.put(("alice", "profile"), "secret", {"text": "My dog hates the vet."}, index=False)
    hits = store.search(("alice",), query="what food should I cook for her?", limit=2)
    assert hits[0].key == "diet" and hits[0].score is not None and hits[0].score > 0
    assert store.search(("alice",), query="which animal lives with her", limit=1)[0].key == "pet"
    assert "secret" not in {h.key for h in store.search(("alice",), query="dog vet", limit=10)}
    page = store.search(("alice",), query="what is her occupation", limit=1, offset=1)
    assert len(page) == 1 and page[0].key != store.search(("alice",), query="what is her occupation")[0].key


def test_filters_cover_every_operator(engine_memory: Memory) -> None:
    store = MemstrataStore(engine_memory)
    for i, colour in enumerate(["red", "green", "blue", "red"]):
        store.put(("u1", "items"), f"k{i}", {"n": i, "colour": colour, "meta": {"deep": True}})

    def keys(flt: dict[str, object]) -> list[str]:
        return sorted(i.key for i in store.search(("u1",), filter=flt))

    assert keys({"colour": "red"}) == ["k0", "k3"]
    assert keys({"colour": {"$eq": "green"}}) == ["k1"]
    assert keys({"colour": {"$ne": "red"}}) == ["k1", "k2"]
    assert keys({"n": {"$gt": 1}}) == ["k2", "k3"]
    assert keys({"n": {"$gte": 1, "$lt": 3}}) == ["k1", "k2"]
    assert keys({"n": {"$lte": 0}}) == ["k0"]
    assert keys({"n": {"$gte": 1}, "colour": "red"}) == ["k3"]
    assert keys({"colour": "purple"}) == []
    ranked = [i.key for i in store.search(("u1",), query="red", filter={"n": {"$gt": 0}})]
    assert ranked[0] == "k3" and sorted(ranked) == ["k1", "k2", "k3"]  # ranked by the query, bounded by the filter
    with pytest.raises(InvalidInputError, match="unknown operator"):
        store.search(("u1",), filter={"n": {"$regex": "1"}})


def test_namespaces_prefixes_and_listing(memory: Memory) -> None:
    store = MemstrataStore(memory, namespace_scope=("user_id",))
    store.put(("alice", "prefs", "food"), "k", {"v": 1})
    store.put(("alice", "prefs", "music"), "k", {"v": 2})
    store.put(("alice", "notes"), "k", {"v": 3})
    store.put(("bob", "prefs", "food"), "k", {"v": 4})
    assert sorted(i.value["v"] for i in store.search(("alice", "prefs"))) == [1, 2]
    assert [i.value["v"] for i in store.search(("alice", "prefs", "food"))] == [1]
    assert store.list_namespaces(prefix=("alice",)) == [
        ("alice", "notes"), ("alice", "prefs", "food"), ("alice", "prefs", "music")]
    assert store.list_namespaces(prefix=("alice",), max_depth=2) == [("alice", "notes"), ("alice", "prefs")]
    assert store.list_namespaces(prefix=("alice",), suffix=("food",)) == [("alice", "prefs", "food")]
    assert store.list_namespaces(prefix=("alice", "*", "music")) == [("alice", "prefs", "music")]
    assert store.list_namespaces(prefix=("alice",), limit=1, offset=1) == [("alice", "prefs", "food")]
    with pytest.raises(InvalidNamespaceError, match="user_id"):
        store.list_namespaces()
    with pytest.raises(InvalidNamespaceError, match="user_id"):
        store.search((), query="food")
    results = store.batch([
        PutOp(("carol", "x"), "k", {"v": 9}),
        GetOp(("carol", "x"), "k"),
        SearchOp(("carol",), filter={"v": 9}),
        ListNamespacesOp(match_conditions=(MatchCondition("prefix", ("carol",)),)),
        PutOp(("carol", "x"), "k", None),
        GetOp(("carol", "x"), "k"),
    ])
    assert results[0] is None and results[1].value == {"v": 9} and [i.key for i in results[2]] == ["k"]
    assert results[3] == [("carol", "x")] and results[4] is None and results[5] is None


def test_scope_templates_and_fixed_ids(memory: Memory) -> None:
    per_agent = MemstrataStore(memory, namespace_scope=("user_id", "agent_id"), org_id="acme")
    per_agent.put(("alice", "planner", "notes"), "n", {"text": "book flights"})
    assert memory.get_all(user_id="alice", agent_id="planner", org_id="acme")["results"][0]["metadata"]["lg_key"] == "n"
    bound = MemstrataStore(memory, namespace_scope=(), user_id="dana")
    bound.put(("notes",), "n", {"text": "dana's note"})
    assert bound.list_namespaces() == [("notes",)]
    assert memory.get_all(user_id="dana")["results"][0]["metadata"]["lg_value"] == {"text": "dana's note"}
    for bad in ({"namespace_scope": ("tenant",)}, {"namespace_scope": (None,)},
                {"namespace_scope": ("user_id",), "user_id": "x"}):
        with pytest.raises(ConfigurationError):
            MemstrataStore(memory, **bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidNamespaceError, match="period"):
        per_agent.batch([GetOp(("alice", "a.b"), "k")])


def test_ttl_expiry_refresh_and_sweep(memory: Memory) -> None:
    store = MemstrataStore(memory, ttl={"default_ttl": None, "refresh_on_read": True})
    minute = 60.0
    store.put(("alice",), "brief", {"text": "gone soon"}, ttl=0.3 / minute)
    store.put(("alice",), "kept", {"text": "stays"})
    store.put(("alice",), "refreshed", {"text": "read often"}, ttl=1.0 / minute)
    assert store.get(("alice",), "brief") is not None
    time.sleep(0.6)
    assert store.get(("alice",), "refreshed") is not None  # the read pushes its expiry a second ahead
    time.sleep(0.6)
    assert store.get(("alice",), "brief") is None
    assert store.get(("alice",), "refreshed", refresh_ttl=False) is not None
    assert {i.key for i in store.search(("alice",))} == {"kept", "refreshed"}
    time.sleep(1.1)
    assert store.sweep_ttl(("alice",)) == 1
    assert [r["metadata"]["lg_key"] for r in memory.get_all(user_id="alice")["results"]] == ["kept"]
    defaulted = MemstrataStore(memory, ttl={"default_ttl": 0.2 / minute})
    defaulted.put(("bob",), "k", {"text": "default ttl"})
    time.sleep(0.4)
    assert defaulted.get(("bob",), "k") is None


async def test_async_ops(memory: Memory) -> None:
    store = MemstrataStore(memory)
    await store.aput(("alice", "a"), "k", {"text": "async value", "n": 1})
    assert (await store.aget(("alice", "a"), "k")).value["n"] == 1  # type: ignore[union-attr]
    assert [i.key for i in await store.asearch(("alice",), filter={"n": 1})] == ["k"]
    assert await store.alist_namespaces(prefix=("alice",)) == [("alice", "a")]
    await store.adelete(("alice", "a"), "k")
    assert await store.aget(("alice", "a"), "k") is None


class State(TypedDict):
    question: str
    answer: str


@dataclass
class Who:
    user_id: str


def _remember(state: State, runtime: Runtime[Who]) -> dict[str, str]:
    assert runtime.store is not None
    if state["question"].startswith("remember:"):
        fact = state["question"].removeprefix("remember:").strip()
        runtime.store.put(("memories", runtime.context.user_id), str(abs(hash(fact))), {"text": fact})
    return {}


def _recall(state: State, runtime: Runtime[Who]) -> dict[str, str]:
    assert runtime.store is not None
    hits = runtime.store.search(("memories", runtime.context.user_id), query=state["question"], limit=1)
    return {"answer": hits[0].value["text"] if hits else "I don't know"}


def _graph(store: MemstrataStore):  # type: ignore[no-untyped-def]
    builder = StateGraph(State, context_schema=Who).add_sequence([("remember", _remember), ("recall", _recall)])
    return builder.add_edge(START, "remember").add_edge("recall", END).compile(store=store)


def test_compiled_graph_remembers_across_runs_and_keeps_users_apart(real_memory: Memory) -> None:
    graph = _graph(MemstrataStore(real_memory, namespace_scope=(None, "user_id")))
    graph.invoke({"question": "remember: my sister Ana lives in Porto", "answer": ""}, context=Who("alice"))
    graph.invoke({"question": "remember: I am allergic to peanuts", "answer": ""}, context=Who("alice"))
    graph.invoke({"question": "remember: my brother Tom lives in Oslo", "answer": ""}, context=Who("bob"))
    out = graph.invoke({"question": "which city does Ana live in?", "answer": ""}, context=Who("alice"))
    assert "Porto" in out["answer"]
    out = graph.invoke({"question": "what is she allergic to?", "answer": ""}, context=Who("alice"))
    assert "peanuts" in out["answer"]
    # Isolation: bob's graph run sees only bob's memory, never alice's.
    out = graph.invoke({"question": "which city does Ana live in?", "answer": ""}, context=Who("bob"))
    assert "Oslo" in out["answer"]
    out = graph.invoke({"question": "anything?", "answer": ""}, context=Who("carol"))
    assert out["answer"] == "I don't know"


async def test_two_agents_share_one_users_memory_and_private_notes_stay_private(memory: Memory) -> None:
    shared = MemstrataStore(memory, namespace_scope=(None, "user_id"))   # every agent: ("memories", user)
    writer, reader = _graph(shared), _graph(MemstrataStore(memory, namespace_scope=(None, "user_id")))
    await writer.ainvoke({"question": "remember: alice prefers window seats", "answer": ""}, context=Who("alice"))
    out = await reader.ainvoke({"question": "window seats", "answer": ""}, context=Who("alice"))
    assert out["answer"] == "alice prefers window seats"
    # Per-agent scopes: the namespace names the agent too, so each agent's notes are its own.
    private = MemstrataStore(memory, namespace_scope=("user_id", "agent_id"))
    private.put(("alice", "planner"), "n", {"text": "draft itinerary"})
    assert private.search(("alice", "booker")) == [] and len(private.search(("alice", "planner"))) == 1
    assert memory.get_all(user_id="alice", agent_id="booker")["results"] == []


def test_example_runs_offline(tmp_path: Path) -> None:
    out = run_example("langgraph_memory.py", tmp_path)
    assert "Porto" in out and "bob sees: I don't know" in out
