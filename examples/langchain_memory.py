"""LangChain with memstrata: chat history, a retriever and memory tools. `python examples/langchain_memory.py`.

Runs offline: the embedded store and the local embedding model. A scripted fake chat model (from
langchain-core) stands in for a provider model so the tool calls are visible; swap in any real chat model.
"""

from __future__ import annotations

import os
import tempfile

from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from memstrata import Memory
from memstrata.integrations.langchain import MemstrataChatMessageHistory, MemstrataRetriever, memory_tools


class ScriptedModel(GenericFakeChatModel):
    def bind_tools(self, tools, **kwargs):  # type: ignore[no-untyped-def]
        return self


def call(tool: str, **args: str) -> AIMessage:
    return AIMessage("", tool_calls=[{"name": tool, "args": args, "id": f"call-{tool}", "type": "tool_call"}])


def main() -> None:
    folder = os.environ.get("MEMSTRATA_EXAMPLE_DIR") or tempfile.mkdtemp()
    with Memory(f"sqlite:///{folder}/langchain-example.db") as memory:
        # 1. Chat history on the episodic tier: what alice says also becomes long-term memory.
        history = MemstrataChatMessageHistory(memory, "session-1", user_id="alice")
        history.add_user_message("I moved to Lisbon last month. My sister Ana lives in Porto.")
        history.add_ai_message("Got it!")
        print("history:", [m.content for m in history.messages])

        # 2. A retriever over alice's memories.
        docs = MemstrataRetriever(memory=memory, user_id="alice", k=1).invoke("where does my sister live?")
        print("retriever:", docs[0].page_content)

        # 3. A tool-calling agent with search_memory / add_memory bound to one user.
        for user in ("alice", "bob"):
            model = ScriptedModel(messages=iter([call("search_memory", query="where does Ana live"),
                                                 AIMessage("done")]))
            agent = create_agent(model, memory_tools(memory, user_id=user))
            result = agent.invoke({"messages": [HumanMessage("Where does Ana live?")]})
            tool_output = next(m.content for m in result["messages"] if isinstance(m, ToolMessage))
            print(f"{user}: {tool_output}")


if __name__ == "__main__":
    main()
