"""A LangGraph graph whose long-term memory lives in memstrata: `python examples/langgraph_memory.py`.

Runs offline: the embedded SQLite store and the local embedding model, no LLM. Each user's memories sit in
their own memstrata scope; the namespace ("memories", user_id) says which.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from memstrata import Memory
from memstrata.integrations.langgraph import MemstrataStore


class State(TypedDict):
    message: str
    reply: str


@dataclass
class User:
    user_id: str


def remember(state: State, runtime: Runtime[User]) -> dict[str, str]:
    """Keep statements that start with 'remember:' in the user's memory."""
    if state["message"].startswith("remember:"):
        fact = state["message"].removeprefix("remember:").strip()
        key = f"fact-{len(runtime.store.search(('memories', runtime.context.user_id), limit=100))}"
        runtime.store.put(("memories", runtime.context.user_id), key, {"text": fact})
    return {}


def answer(state: State, runtime: Runtime[User]) -> dict[str, str]:
    """Answer from the best matching memory (a real agent would hand it to its model)."""
    hits = runtime.store.search(("memories", runtime.context.user_id), query=state["message"], limit=1)
    return {"reply": hits[0].value["text"] if hits else "I don't know"}


def main() -> None:
    folder = os.environ.get("MEMSTRATA_EXAMPLE_DIR") or tempfile.mkdtemp()
    with Memory(f"sqlite:///{folder}/langgraph-example.db") as memory:
        builder = StateGraph(State, context_schema=User)
        builder.add_node("remember", remember)
        builder.add_node("answer", answer)
        builder.add_edge(START, "remember")
        builder.add_edge("remember", "answer")
        builder.add_edge("answer", END)
        graph = builder.compile(store=MemstrataStore(memory, namespace_scope=(None, "user_id")))

        for fact in ("my sister Ana lives in Porto", "I am allergic to peanuts"):
            graph.invoke({"message": f"remember: {fact}", "reply": ""}, context=User("alice"))
        question = {"message": "where does Ana live?", "reply": ""}
        print("alice asks:", question["message"])
        print("alice sees:", graph.invoke(question, context=User("alice"))["reply"])
        print("bob sees:", graph.invoke(question, context=User("bob"))["reply"])


if __name__ == "__main__":
    main()
