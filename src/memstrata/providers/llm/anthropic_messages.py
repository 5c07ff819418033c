"""Anthropic's ``/v1/messages`` wire format, with the answer as one forced tool call."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from memstrata.errors import ConfigurationError
from memstrata.providers.llm.client import LLMClient
from memstrata.providers.llm.steps import Parsed, Request, token_count

ANTHROPIC_VERSION = "2023-06-01"


class AnthropicClient(LLMClient):
    """Anthropic's Messages API; structured output through one forced tool call whose input is the answer."""

    provider = "anthropic"

    def __init__(
        self,
        api_key: str,
        model: str,
        base_url: str = "https://api.anthropic.com",
        timeout: float = 30.0,
        max_retries: int = 2,
        *,
        anthropic_version: str = ANTHROPIC_VERSION,
        **options: Any,
    ) -> None:
        if not api_key:
            raise ConfigurationError("anthropic: an API key is required")
        self.anthropic_version = anthropic_version
        super().__init__(
            model=model, base_url=base_url, api_key=api_key, timeout=timeout, max_retries=max_retries, **options
        )

    def _build_request(self, system: str, user: str, schema: Mapping[str, Any], name: str) -> Request:
        headers = {
            "Content-Type": "application/json",
            "x-api-key": self._api_key or "",
            "anthropic-version": self.anthropic_version,
            **self._extra_headers,
        }
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "system": system,
            "messages": [{"role": "user", "content": user}],
            "tools": [{"name": name, "description": "Record the answer.", "input_schema": dict(schema)}],
            "tool_choice": {"type": "tool", "name": name},
        }
        if self.temperature is not None:
            body["temperature"] = self.temperature
        return Request("/v1/messages", body, headers)

    def _parse_reply(self, body: Any, name: str) -> Parsed:
        usage = body.get("usage")
        tokens = token_count(usage, "input_tokens"), token_count(usage, "output_tokens")
        blocks = body["content"]
        for block in blocks:
            if block.get("type") == "tool_use" and block.get("name") == name:
                return Parsed(block.get("input"), *tokens)
        # Without the tool call, a text block may still hold the JSON; let the parser judge it.
        text = "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
        if not text.strip():
            raise ValueError(f"the answer has no {name!r} tool call")
        return Parsed(text, *tokens)
