"""LLM clients for structured (JSON) answers, built directly on httpx.

Two wire protocols cover the providers memstrata talks to:

* :class:`OpenAICompatibleClient` — ``POST {base_url}/chat/completions`` (OpenAI, Azure OpenAI, vLLM,
  Ollama, LM Studio, llama.cpp server, Groq, Together, DeepSeek, OpenRouter, ...).
* :class:`AnthropicClient` — ``POST {base_url}/v1/messages`` with a forced tool call.

Both expose ``complete_json`` (sync) and ``acomplete_json`` (async). The retry policy, request
building and response parsing live in one I/O-free generator (:meth:`LLMClient._exchange`) that yields
"send this request" / "sleep this long" steps; the sync and async methods only perform those steps, so
the two paths cannot drift apart and the sync path never runs an event loop.

Modules: :mod:`.client` (the exchange and its drivers), :mod:`.steps` (what the exchange yields and
receives), :mod:`.openai_compatible` and :mod:`.anthropic_messages` (wire formats), :mod:`.usage` (tokens and
prices), :mod:`.json_answers` (reading and checking answers) and :mod:`.factory` (:func:`llm_from_url`).
"""

from memstrata.providers.llm.anthropic_messages import AnthropicClient
from memstrata.providers.llm.client import LLMClient
from memstrata.providers.llm.factory import llm_from_url
from memstrata.providers.llm.json_answers import parse_json_object, validate_json
from memstrata.providers.llm.openai_compatible import OpenAICompatibleClient
from memstrata.providers.llm.usage import DEFAULT_PRICES, Price, Usage

__all__ = [
    "DEFAULT_PRICES",
    "AnthropicClient",
    "LLMClient",
    "OpenAICompatibleClient",
    "Price",
    "Usage",
    "llm_from_url",
    "parse_json_object",
    "validate_json",
]
