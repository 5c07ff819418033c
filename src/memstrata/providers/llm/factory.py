""":func:`llm_from_url`: a client from a URL (``openai://?model=...``) or a mapping."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from memstrata.errors import ConfigurationError
from memstrata.providers.llm.anthropic_messages import AnthropicClient
from memstrata.providers.llm.client import LLMClient
from memstrata.providers.llm.openai_compatible import OpenAICompatibleClient

_CLIENT_OPTIONS = {
    "timeout": float,
    "max_retries": int,
    "json_retries": int,
    "backoff": float,
    "max_backoff": float,
    "max_retry_after": float,
    "max_tokens": int,
    "temperature": float,
}


def llm_from_url(url_or_config: str | Mapping[str, Any], api_key: str | None = None) -> LLMClient:
    """Build a client from a URL or a mapping.

    URLs (the model is always the ``model`` query parameter; other parameters are client options such as
    ``timeout``, ``max_retries``, ``max_tokens`` and, for OpenAI-compatible servers, ``json_mode``)::

        openai://?model=gpt-4o-mini                      -> https://api.openai.com/v1
        openai+http://localhost:11434/v1?model=llama3.1  -> that server (Ollama here)
        openai+https://openrouter.ai/api/v1?model=...    -> that server
        anthropic://?model=claude-3-5-haiku-latest       -> https://api.anthropic.com
        anthropic+https://proxy.example/?model=...       -> that server

    A mapping takes ``provider`` ("openai" or "anthropic"), ``model``, optional ``base_url`` and
    ``api_key``, and any constructor keyword. Without an explicit key, ``OPENAI_API_KEY`` /
    ``ANTHROPIC_API_KEY`` are read, but only for the providers' own hosts.
    """
    if isinstance(url_or_config, Mapping):
        cfg = dict(url_or_config)
        provider = str(cfg.pop("provider", "openai")).lower()
        base_url = cfg.pop("base_url", None)
        api_key = cfg.pop("api_key", None) or api_key
        options: dict[str, Any] = cfg
    elif isinstance(url_or_config, str):
        parts = urlsplit(url_or_config)
        scheme = parts.scheme.lower()
        provider, _, transport = scheme.partition("+")
        if "://" not in url_or_config or not provider:
            raise ConfigurationError(f"llm: {url_or_config!r} is not a URL such as openai://?model=gpt-4o-mini")
        if transport and transport not in ("http", "https"):
            raise ConfigurationError(f"llm: transport {transport!r} in {url_or_config!r} must be http or https")
        base_url = urlunsplit((transport, parts.netloc, parts.path, "", "")) if transport else None
        options = {}
        for param, values in parse_qs(parts.query).items():
            value = values[-1]
            if param in _CLIENT_OPTIONS:
                try:
                    options[param] = _CLIENT_OPTIONS[param](value)
                except ValueError:
                    raise ConfigurationError(f"llm: {param}={value!r} in the URL is not a number") from None
            elif param in ("model", "json_mode"):
                options[param] = value
            else:
                raise ConfigurationError(f"llm: unknown URL parameter {param!r}")
    else:
        raise ConfigurationError(f"llm: expected a URL or a mapping, got {type(url_or_config).__name__}")

    if not options.get("model"):
        raise ConfigurationError("llm: the model is missing (add ?model=NAME)")
    if provider in ("openai", "openai-compatible"):
        official = base_url is None
        base_url = base_url or "https://api.openai.com/v1"
        # An environment key is only sent to its own provider, never to an arbitrary host.
        key = api_key or (os.environ.get("OPENAI_API_KEY") if official else None)
        return OpenAICompatibleClient(base_url, key, **options)
    if provider == "anthropic":
        official = base_url is None
        key = api_key or (os.environ.get("ANTHROPIC_API_KEY") if official else None)
        if not key:
            raise ConfigurationError("llm: anthropic needs an API key (argument or ANTHROPIC_API_KEY)")
        options.pop("json_mode", None)
        return AnthropicClient(key, base_url=base_url or "https://api.anthropic.com", **options)
    raise ConfigurationError(f"llm: unknown provider {provider!r} (supported: openai, anthropic)")
