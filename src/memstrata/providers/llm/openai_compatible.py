"""The ``/chat/completions`` wire format: OpenAI, Azure OpenAI, vLLM, Ollama, LM Studio, llama.cpp, ..."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from memstrata.errors import ConfigurationError
from memstrata.providers.llm.client import LLMClient
from memstrata.providers.llm.steps import Parsed, Request, token_count

JSON_MODES = ("json_schema", "json_object", "none")


class OpenAICompatibleClient(LLMClient):
    """Any ``/chat/completions`` endpoint.

    ``base_url`` ends where ``/chat/completions`` is appended: ``https://api.openai.com/v1``,
    ``http://localhost:11434/v1`` (Ollama), ``http://localhost:8000/v1`` (vLLM), ...

    ``json_mode``: ``"json_schema"`` sends ``response_format={"type": "json_schema", ...}`` (OpenAI, vLLM,
    llama.cpp, LM Studio, recent Ollama); ``"json_object"`` and ``"none"`` are for servers without schema
    support, and put the schema in the system prompt instead. ``strict`` asks OpenAI to enforce the schema
    (it then requires every property to be listed in ``required``).

    Azure OpenAI: ``base_url=https://RESOURCE.openai.azure.com/openai/deployments/DEPLOYMENT``,
    ``api_key_header="api-key"``, ``query={"api-version": "2024-10-21"}``.
    """

    provider = "openai-compatible"

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        model: str = "",
        timeout: float = 30.0,
        max_retries: int = 2,
        *,
        json_mode: str = "json_schema",
        strict: bool = False,
        api_key_header: str = "Authorization",
        query: Mapping[str, str] | None = None,
        **options: Any,
    ) -> None:
        if json_mode not in JSON_MODES:
            raise ConfigurationError(f"openai-compatible: json_mode {json_mode!r} is not one of {JSON_MODES}")
        if not base_url:
            raise ConfigurationError("openai-compatible: base_url is required, e.g. https://api.openai.com/v1")
        self.json_mode = json_mode
        self.strict = strict
        self._api_key_header = api_key_header
        self._query = dict(query or {})
        super().__init__(
            model=model, base_url=base_url, api_key=api_key, timeout=timeout, max_retries=max_retries, **options
        )

    def _query_params(self) -> dict[str, str]:
        return dict(self._query)

    def _build_request(self, system: str, user: str, schema: Mapping[str, Any], name: str) -> Request:
        headers = {"Content-Type": "application/json", **self._extra_headers}
        if self._api_key:
            bearer = self._api_key_header.lower() == "authorization"
            headers[self._api_key_header] = f"Bearer {self._api_key}" if bearer else self._api_key
        if self.json_mode != "json_schema":
            system = f"{system}\n\nAnswer with only a JSON object that follows this JSON schema:\n{json.dumps(schema)}"
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "max_tokens": self.max_tokens,
        }
        if self.temperature is not None:
            body["temperature"] = self.temperature
        if self.json_mode == "json_schema":
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": dict(schema), "strict": self.strict},
            }
        elif self.json_mode == "json_object":
            body["response_format"] = {"type": "json_object"}
        return Request("/chat/completions", body, headers)

    def _parse_reply(self, body: Any, name: str) -> Parsed:
        message = body["choices"][0]["message"]
        content = message.get("content")
        if not isinstance(content, str) or not content.strip():
            refusal = message.get("refusal")
            raise ValueError(f"the model refused: {refusal}" if refusal else "the answer has no text content")
        usage = body.get("usage")
        return Parsed(content, token_count(usage, "prompt_tokens"), token_count(usage, "completion_tokens"))
