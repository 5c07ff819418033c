"""LangChain: chat history, retriever and tools driven through the real langchain-core (and langchain's
create_agent), with the framework's own fake chat model standing in for a provider."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from integration_support import need, run_example

need("langchain_core")
need("langchain")

from langchain.agents import create_agent  # noqa: E402
from langchain_core.chat_history import BaseChatMessageHistory  # noqa: E402
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel  # noqa: E402
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage  # noqa: E402
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder  # noqa: E402
from langchain_core.retrievers import BaseRetriever  # noqa: E402

from memstrata import Memory  # noqa: E402
from memstrata.integrations.langchain import (  # noqa: E402
    MemstrataChatMessageHistory,
    MemstrataRetriever,
    memory_tools,
)


class ToolCallingFake(GenericFakeChatModel):
    """langchain-core's scripted fake model, accepting tools as a tool-calling provider model does."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> ToolCallingFake:
        return self


def _script(*replies: AIMessage) -> ToolCallingFake:
    return ToolCallingFake(messages=iter(replies))


def test_history_keeps_every_message_type_in_order(engine_memory: Memory) -> None:
    history = MemstrataChatMessageHistory(engine_memory, "s1", user_id="alice")
    assert isinstance(history, BaseChatMessageHistory) and history.messages == []
    call = {"name": "search_memory", "args": {"query": "sister"}, "id": "call-1", "type": "tool_call"}
    history.add_messages([
        SystemMessage("You are a travel assistant."),
        HumanMessage("I moved to Lisbon last month. My sister Ana lives in Porto."),
        AIMessage("", tool_calls=[call]),
        ToolMessage("- My sister Ana lives in Porto.", tool_call_id="call-1"),
    ])
    history.add_ai_message("Noted: you live in Lisbon and Ana lives in Porto.")
    again = MemstrataChatMessageHistory(engine_memory, "s1", user_id="alice").messages
    assert [type(m).__name__ for m in again] == ["SystemMessage", "HumanMessage", "AIMessage", "ToolMessage",
                                                 "AIMessage"]
    assert again[1].content.startswith("I moved to Lisbon") and again[2].content == ""
    assert again[2].tool_calls[0]["name"] == "search_memory" and again[3].tool_call_id == "call-1"
    # The session is the episodic log of alice's scope, and what she said became long-term memory.
    episodes = engine_memory.episodes(user_id="alice", conversation_id="s1")["results"]
    assert len(episodes) == 5 and episodes[1]["role"] == "user"
    found = engine_memory.search("where does my sister live", user_id="alice")["results"]
    assert any("Porto" in r["memory"] for r in found)
    # Another session and another user see none of it.
    assert MemstrataChatMessageHistory(engine_memory, "s2", user_id="alice").messages == []
    assert MemstrataChatMessageHistory(engine_memory, "s1", user_id="bob").messages == []


async def test_clear_starts_afresh_and_async_faces(memory: Memory) -> None:
    history = MemstrataChatMessageHistory(memory, "s1", user_id="alice")
    await history.aadd_messages([HumanMessage("I am allergic to peanuts."), AIMessage("I'll remember that.")])
    assert len(await history.aget_messages()) == 2
    await history.aclear()
    assert await history.aget_messages() == []
    history.add_user_message("Hello again.")
    assert [m.content for m in history.messages] == ["Hello again."]
    texts = [r["memory"] for r in memory.get_all(user_id="alice")["results"]]
    assert any("peanuts" in t for t in texts)  # clearing the chat keeps what was learnt from it
    assert not any("cleared" in t for t in texts)


def test_history_feeds_a_prompt_chain(memory: Memory) -> None:
    prompt = ChatPromptTemplate.from_messages([MessagesPlaceholder("history"), ("human", "{input}")])
    chain = prompt | _script(AIMessage("Nice to meet you, Alice."), AIMessage("You told me: Alice."))
    for text in ("Hi, my name is Alice.", "What is my name?"):
        history = MemstrataChatMessageHistory(memory, "chat-7", user_id="alice")  # a fresh object each turn
        reply = chain.invoke({"history": history.messages, "input": text})
        history.add_messages([HumanMessage(text), reply])
    seen = prompt.invoke({"history": history.messages, "input": "?"}).to_messages()
    assert [m.content for m in seen] == ["Hi, my name is Alice.", "Nice to meet you, Alice.", "What is my name?",
                                         "You told me: Alice.", "?"]


def test_retriever_search_and_context(real_memory: Memory) -> None:
    real_memory.add([{"role": "user", "content": "I am vegetarian. My dog Biscuit is a beagle. "
                                                 "I work night shifts as a nurse."}], user_id="alice")
    real_memory.add("I love steak.", user_id="bob")
    retriever = MemstrataRetriever(memory=real_memory, user_id="alice", k=2)
    assert isinstance(retriever, BaseRetriever)
    docs = retriever.invoke("does she have any diet restrictions, does she eat meat?")
    assert "vegetarian" in docs[0].page_content and docs[0].metadata["score"] > 0 and docs[0].id
    assert all("steak" not in d.page_content for d in docs)  # bob's memory never reaches alice's retriever
    ctx = MemstrataRetriever(memory=real_memory, user_id="alice", mode="context", token_budget=60)
    (block,) = ctx.invoke("tell me about her pet")
    assert "Biscuit" in block.page_content and 0 < block.metadata["tokens"] <= 60
    bob = MemstrataRetriever(memory=real_memory, user_id="bob", k=5).invoke("food")
    assert [d.page_content for d in bob] == ["I love steak."]


async def test_retriever_async(memory: Memory) -> None:
    memory.add("I play the cello.", user_id="alice", infer=False)
    docs = await MemstrataRetriever(memory=memory, user_id="alice").ainvoke("music instrument")
    assert docs[0].page_content == "I play the cello."


def _remember_then_answer(text: str) -> ToolCallingFake:
    return _script(
        AIMessage("", tool_calls=[{"name": "add_memory", "args": {"text": text}, "id": "c1", "type": "tool_call"}]),
        AIMessage("Saved."),
    )


def _search_then_answer(query: str) -> ToolCallingFake:
    return _script(
        AIMessage("", tool_calls=[{"name": "search_memory", "args": {"query": query}, "id": "c2",
                                   "type": "tool_call"}]),
        AIMessage("Done."),
    )


def _tool_output(result: dict[str, Any]) -> str:
    return next(m.content for m in result["messages"] if isinstance(m, ToolMessage))


def test_tool_calling_agents_share_one_users_memory_and_never_anothers(memory: Memory) -> None:
    alice_tools = memory_tools(memory, user_id="alice")
    assert {t.name for t in alice_tools} == {"search_memory", "add_memory"}
    planner = create_agent(_remember_then_answer("My sister Ana lives in Porto."), alice_tools)
    out = planner.invoke({"messages": [HumanMessage("Please remember where Ana lives.")]})
    assert "Ana lives in Porto" in _tool_output(out) and out["messages"][-1].content == "Saved."
    # A second agent of the same user (its own tools, same scope) finds what the first one stored.
    booker = create_agent(_search_then_answer("where does Ana live"), memory_tools(memory, user_id="alice"))
    assert "Porto" in _tool_output(booker.invoke({"messages": [HumanMessage("Where is Ana?")]}))
    # Bob's agent runs the very same search in bob's scope and finds nothing of alice's.
    bobs = create_agent(_search_then_answer("where does Ana live"), memory_tools(memory, user_id="bob"))
    assert _tool_output(bobs.invoke({"messages": [HumanMessage("Where is Ana?")]})) == "No memories found."
    # Tools bound to an agent id write to that agent's own scope.
    private = create_agent(_remember_then_answer("My sister Ana lives in Porto."),
                           memory_tools(memory, user_id="alice", agent_id="booker"))
    private.invoke({"messages": [HumanMessage("remember")]})
    assert len(memory.get_all(user_id="alice", agent_id="booker")["results"]) == 1


async def test_tools_async(memory: Memory) -> None:
    search, add = memory_tools(memory, user_id="alice", limit=1)
    assert "Remembered" in await add.ainvoke({"text": "I moved to Lisbon last month."})
    assert "Lisbon" in await search.ainvoke({"query": "where do I live"})


def test_example_runs_offline(tmp_path: Path) -> None:
    out = run_example("langchain_memory.py", tmp_path)
    assert "Porto" in out and "bob: No memories found." in out
