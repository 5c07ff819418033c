"""An OpenAI Agents SDK agent with memstrata as its session store and its long-term memory.

Each conversation is a ``MemstrataSession``; what the user says is also offered to their long-term memory,
which the agent reaches through the ``recall_memories`` tool from any later session. Runs offline: a small
model stands in for OpenAI's (leave ``model=`` out of ``Agent`` and set OPENAI_API_KEY for a real one).

    pip install 'memstrata[openai-agents]'
    python examples/openai_agents_session.py
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from typing import Any

from agents import Agent, ModelResponse, Runner, Usage, set_tracing_disabled
from agents.models.interface import Model
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText

from memstrata import Memory
from memstrata.integrations.openai_agents import MemstrataSession, memory_tools


class RecallingModel(Model):
    """Stands in for a model: first looks the question up with ``recall_memories``, then answers with what it
    found."""

    async def get_response(self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any) -> ModelResponse:
        items = [input] if isinstance(input, str) else list(input)
        last = items[-1]
        if isinstance(last, dict) and last.get("type") == "function_call_output":
            asked = {i if isinstance(i, str) else i.get("content") for i in items
                     if isinstance(i, str) or i.get("role") == "user"}
            # the question itself is remembered too, as said; a model reads past it
            found = [line[15:] for line in str(last["output"]).splitlines()
                     if line.startswith("- [") and line[15:] not in asked]
            text = "From what I remember: " + (" ".join(found) or "nothing yet.")
            out: Any = ResponseOutputMessage(id="msg", type="message", role="assistant", status="completed",
                                             content=[ResponseOutputText(type="output_text", text=text,
                                                                         annotations=[])])
        else:
            question = last if isinstance(last, str) else last["content"]
            out = ResponseFunctionToolCall(type="function_call", call_id=f"call-{len(items)}",
                                           name="recall_memories", arguments=json.dumps({"query": question}))
        return ModelResponse(output=[out], usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("this stand-in model does not stream")


async def main() -> None:
    set_tracing_disabled(True)  # offline: no trace upload
    with tempfile.TemporaryDirectory() as tmp, Memory(f"sqlite:///{tmp}/memory.db") as memory:
        def agent_for(user: str) -> Agent:
            return Agent(name="assistant", model=RecallingModel(), tools=memory_tools(memory, user_id=user))

        monday = MemstrataSession("alice-monday", memory, user_id="alice")
        await monday.add_items([{"role": "user", "content": "I'm training for the Lisbon marathon in April."}])
        print("monday transcript:", [i["content"] for i in await monday.get_items()])

        tuesday = MemstrataSession("alice-tuesday", memory, user_id="alice")
        answer = await Runner.run(agent_for("alice"), "What am I training for?", session=tuesday)
        print("alice, tuesday:", answer.final_output)
        print("tuesday transcript:", [i.get("type", i.get("role")) for i in await tuesday.get_items()])

        other = await Runner.run(agent_for("bob"), "What am I training for?",
                                 session=MemstrataSession("bob-tuesday", memory, user_id="bob"))
        print("bob, tuesday:", other.final_output)


if __name__ == "__main__":
    asyncio.run(main())
