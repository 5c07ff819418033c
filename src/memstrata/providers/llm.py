"""LLM clients for structured (JSON) answers, built directly on httpx.

Two wire protocols cover the providers memstrata talks to:

* :class:`OpenAICompatibleClient` — ``POST {base_url}/chat/completions`` (OpenAI, Azure OpenAI, vLLM,
  Ollama, LM Studio, llama.cpp server, Groq, Together, DeepSeek, OpenRouter, ...).
* :class:`AnthropicClient` — ``POST {base_url}/v1/messages`` with a forced tool call.

Both expose ``complete_json`` (sync) and ``acomplete_json`` (async). The retry policy, request
building and response parsing live in one I/O-free generator (:meth:`LLMClient._exchange`) that yields
"send this request" / "sleep this long" steps; the sync and async methods only perform those steps, so
the two paths cannot drift apart and the sync path never runs an event loop.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import math
import os
import threading
import time
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple, Self
from urllib.parse import parse_qs, urlsplit, urlunsplit

import httpx

from memstrata.errors import (
    ConfigurationError,
    ProviderError,
    ProviderResponseError,
    ProviderTimeoutError,
    RateLimitedError,
)

log = logging.getLogger(__name__)

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


# -- usage and prices ----------------------------------------------------------------------------


class Price(NamedTuple):
    """US dollars per million input (prompt) and output (completion) tokens."""

    input_per_million: float
    output_per_million: float


# List prices at the time of writing; they change, so pass ``prices=`` to override or extend.
# A model name matches its own entry or the longest entry it starts with ("gpt-4o-mini-2024-07-18").
DEFAULT_PRICES: dict[str, Price] = {
    "gpt-4o-mini": Price(0.15, 0.60),
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4.1-nano": Price(0.10, 0.40),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4.1": Price(2.00, 8.00),
    "claude-3-haiku": Price(0.25, 1.25),
    "claude-3-5-haiku": Price(0.80, 4.00),
    "claude-3-5-sonnet": Price(3.00, 15.00),
    "claude-3-7-sonnet": Price(3.00, 15.00),
}


def lookup_price(model: str, prices: Mapping[str, Price | tuple[float, float]]) -> Price | None:
    """The price entry for ``model``: exact name first, else the longest key that prefixes it."""
    if model in prices:
        return Price(*prices[model])
    best = max((k for k in prices if model.startswith(k)), key=len, default=None)
    return None if best is None else Price(*prices[best])


@dataclass(frozen=True)
class Usage:
    """Tokens and money spent.

    ``calls`` counts provider responses that were billed (HTTP 200), so a re-ask after an invalid
    answer counts twice. ``cost_known`` is False when any call used a model missing from the price
    table; that call then contributes 0.0 to ``cost_usd``.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    cost_usd: float = 0.0
    cost_known: bool = True

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            calls=self.calls + other.calls,
            cost_usd=self.cost_usd + other.cost_usd,
            cost_known=self.cost_known and other.cost_known,
        )


# -- JSON parsing and a small schema validator -----------------------------------------------------

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
    "null": (type(None),),
}


def _is_type(value: Any, name: str) -> bool:
    if name not in _TYPES:
        return True  # unknown type keywords are not ours to enforce
    # bool is an int subclass in Python, but JSON keeps them apart.
    if isinstance(value, bool) and name in ("number", "integer"):
        return False
    if name == "integer" and isinstance(value, float):
        return math.isfinite(value) and value.is_integer()
    return isinstance(value, _TYPES[name])


def validate_json(value: Any, schema: Mapping[str, Any], path: str = "$") -> list[str]:
    """Check ``value`` against a JSON-schema subset; return the problems found (empty list when valid).

    Supported keywords: ``type`` (a name or a list of names), ``enum``, ``properties``, ``required``
    and ``items``. Enough for the schemas memstrata sends, without a jsonschema dependency.
    """
    errors: list[str] = []
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        if not any(_is_type(value, n) for n in names):
            return [f"{path}: expected {' or '.join(names)}, got {_json_type(value)}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} is not one of {list(schema['enum'])}")
    if isinstance(value, dict):
        for key in schema.get("required", ()):
            if key not in value:
                errors.append(f"{path}: missing required key {key!r}")
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                errors.extend(validate_json(value[key], sub, f"{path}.{key}"))
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for i, item in enumerate(value):
            errors.extend(validate_json(item, schema["items"], f"{path}[{i}]"))
    return errors


def _json_type(value: Any) -> str:
    for name in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if _is_type(value, name):
            return name
    return type(value).__name__


def parse_json_object(text: str) -> dict[str, Any]:
    """Parse a model's text answer into a JSON object.

    Tolerates Markdown code fences and prose around the object, which small local models add even
    when asked not to. Raises ``ValueError`` when no JSON object can be read.
    """
    candidate = text.strip()
    if candidate.startswith("```"):
        candidate = candidate.split("\n", 1)[1] if "\n" in candidate else ""
        candidate = candidate.rsplit("```", 1)[0]
    try:
        value = json.loads(candidate)
    except ValueError:
        start, end = candidate.find("{"), candidate.rfind("}")
        if start < 0 or end <= start:
            raise ValueError("the answer contains no JSON object") from None
        try:
            value = json.loads(candidate[start : end + 1])
        except ValueError as exc:
            raise ValueError(f"the answer is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {_json_type(value)}")
    return value


# -- the I/O-free protocol core ------------------------------------------------------------------


@dataclass(frozen=True)
class _Request:
    path: str
    body: dict[str, Any]
    headers: dict[str, str] = field(repr=False)  # carries the API key


@dataclass(frozen=True)
class _Reply:
    status: int
    headers: Mapping[str, str]
    text: str


@dataclass(frozen=True)
class _Failure:
    timeout: bool
    detail: str


@dataclass(frozen=True)
class _Sleep:
    seconds: float


@dataclass(frozen=True)
class _Parsed:
    payload: Any  # a dict (tool input) or a str (text that should hold JSON)
    prompt_tokens: int
    completion_tokens: int


_Step = _Request | _Sleep
_Outcome = _Reply | _Failure

_FEEDBACK = (
    "\n\nYour previous answer was rejected: {problem}. Answer again with only a JSON object that "
    "follows the schema exactly."
)


def _parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _mask_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return url


class LLMClient:
    """Base class: retries, usage accounting and the sync/async drivers.

    Subclasses implement two pure functions: ``_build_request`` (what to send) and ``_parse_reply``
    (what came back). Retry policy:

    * timeouts, connection errors, HTTP 429 and 5xx are retried up to ``max_retries`` times with
      exponential backoff (``backoff`` * 2**n, at most ``max_backoff`` seconds); a 429's Retry-After
      is honoured, capped at ``max_retry_after`` seconds;
    * an answer that is not JSON or breaks the schema is re-asked up to ``json_retries`` times, telling
      the model what was wrong;
    * any other 4xx fails at once.

    HTTP failures carry the status as ``exc.status``.

    After the last attempt the specific error is raised: :class:`ProviderTimeoutError`,
    :class:`RateLimitedError`, :class:`ProviderResponseError` or :class:`ProviderError` (unreachable).
    """

    provider = "llm"

    def __init__(
        self,
        *,
        model: str,
        base_url: str,
        api_key: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 2,
        json_retries: int = 1,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        max_retry_after: float = 30.0,
        max_tokens: int = 4096,
        temperature: float | None = 0.0,
        prices: Mapping[str, Price | tuple[float, float]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if not model or not isinstance(model, str):
            raise ConfigurationError(f"{self.provider}: a model name is required")
        if max_retries < 0 or json_retries < 0:
            raise ConfigurationError(f"{self.provider}: max_retries and json_retries must be >= 0")
        if timeout <= 0:
            raise ConfigurationError(f"{self.provider}: timeout must be > 0 seconds")
        self.model = model
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.timeout = timeout
        self.max_retries = max_retries
        self.json_retries = json_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.prices: dict[str, Price | tuple[float, float]] = dict(DEFAULT_PRICES if prices is None else prices)
        self._extra_headers = dict(headers or {})
        self._usage = Usage()
        self._last_usage: Usage | None = None
        self._usage_lock = threading.Lock()
        self._client: httpx.Client | None = None
        self._aclient: httpx.AsyncClient | None = None
        self._client_lock = threading.Lock()

    # -- public surface ----------------------------------------------------------------------------

    @property
    def usage(self) -> Usage:
        """Everything this client has spent since it was created."""
        with self._usage_lock:
            return self._usage

    @property
    def last_usage(self) -> Usage | None:
        """What the most recent ``complete_json``/``acomplete_json`` call spent (None before the first)."""
        with self._usage_lock:
            return self._last_usage

    def complete_json(
        self, system: str, user: str, schema: Mapping[str, Any], *, name: str = "answer"
    ) -> tuple[dict[str, Any], Usage]:
        """Ask for one JSON object that satisfies ``schema``; return it with this call's usage."""
        gen = self._exchange(system, user, schema, name)
        try:
            step = next(gen)
            while True:
                if isinstance(step, _Sleep):
                    time.sleep(step.seconds)
                    step = gen.send(None)
                else:
                    step = gen.send(self._send(step))
        except StopIteration as done:
            return done.value

    async def acomplete_json(
        self, system: str, user: str, schema: Mapping[str, Any], *, name: str = "answer"
    ) -> tuple[dict[str, Any], Usage]:
        """Async twin of :meth:`complete_json`: same requests, same retries, same errors."""
        gen = self._exchange(system, user, schema, name)
        try:
            step = next(gen)
            while True:
                if isinstance(step, _Sleep):
                    await asyncio.sleep(step.seconds)
                    step = gen.send(None)
                else:
                    step = gen.send(await self._asend(step))
        except StopIteration as done:
            return done.value

    def close(self) -> None:
        """Close the sync connection pool (the async one needs :meth:`aclose`)."""
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        """Close both connection pools."""
        aclient, self._aclient = self._aclient, None
        if aclient is not None:
            await aclient.aclose()
        self.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        key = "'***'" if self._api_key else "None"
        return f"{type(self).__name__}(model={self.model!r}, base_url={_mask_url(self.base_url)!r}, api_key={key})"

    # -- what subclasses provide -------------------------------------------------------------------

    def _build_request(
        self, system: str, user: str, schema: Mapping[str, Any], name: str
    ) -> _Request:  # pragma: no cover - abstract
        raise NotImplementedError

    def _parse_reply(self, body: Any, name: str) -> _Parsed:  # pragma: no cover - abstract
        """Pull the answer and token counts out of a decoded 200 body; ValueError/KeyError/TypeError if unusable."""
        raise NotImplementedError

    def _query_params(self) -> dict[str, str]:
        return {}

    # -- the protocol core (no I/O) ----------------------------------------------------------------

    def _describe(self) -> str:
        return f"{self.provider} model {self.model!r} at {_mask_url(self.base_url)}"

    def _delay(self, attempt: int) -> float:
        return min(self.max_backoff, self.backoff * (2**attempt))

    def _price(self, prompt_tokens: int, completion_tokens: int) -> tuple[float, bool]:
        price = lookup_price(self.model, self.prices)
        if price is None:
            return 0.0, False
        cost = (prompt_tokens * price.input_per_million + completion_tokens * price.output_per_million) / 1e6
        return cost, True

    def _record(self, spent: Usage) -> None:
        with self._usage_lock:
            self._usage = self._usage + spent
            self._last_usage = spent

    def _exchange(
        self, system: str, user: str, schema: Mapping[str, Any], name: str
    ) -> Generator[_Step, _Outcome | None, tuple[dict[str, Any], Usage]]:
        """The whole call as a state machine: yields requests and sleeps, receives replies, returns the answer."""
        spent = Usage()
        transient = 0  # retries spent on timeouts, 429 and 5xx
        reasks = 0  # retries spent on unusable answers
        prompt = user
        while True:
            outcome = yield self._build_request(system, prompt, schema, name)
            assert outcome is not None
            error: ProviderError
            retry_after: float | None = None

            if isinstance(outcome, _Failure):
                if outcome.timeout:
                    error = ProviderTimeoutError(
                        f"{self._describe()} did not answer within {self.timeout:g}s "
                        f"(after {transient + 1} attempt(s))"
                    )
                else:
                    error = ProviderError(f"{self._describe()} is unreachable: {outcome.detail}")
            elif outcome.status == 429:
                retry_after = _parse_retry_after(outcome.headers.get("retry-after"))
                error = RateLimitedError(
                    f"{self._describe()} answered HTTP 429 (rate limited) after {transient + 1} attempt(s)",
                    retry_after=retry_after,
                )
                error.status = 429  # type: ignore[attr-defined]
            elif outcome.status >= 500:
                error = _status_error(
                    f"{self._describe()} answered HTTP {outcome.status} after {transient + 1} attempt(s): "
                    f"{_snippet(outcome.text)}",
                    outcome.status,
                )
            elif outcome.status != 200:
                hint = " (check the API key)" if outcome.status in (401, 403) else ""
                self._record(spent)
                raise _status_error(
                    f"{self._describe()} answered HTTP {outcome.status}{hint}: {_snippet(outcome.text)}",
                    outcome.status,
                )
            else:
                try:
                    parsed = self._parse_reply(json.loads(outcome.text), name)
                except (ValueError, KeyError, TypeError, IndexError) as exc:
                    parsed, problem = None, f"unreadable response body ({type(exc).__name__}: {exc})"
                if parsed is not None:
                    cost, known = self._price(parsed.prompt_tokens, parsed.completion_tokens)
                    spent = spent + Usage(parsed.prompt_tokens, parsed.completion_tokens, 1, cost, known)
                    try:
                        value = parsed.payload if isinstance(parsed.payload, dict) else parse_json_object(
                            str(parsed.payload)
                        )
                        problems = validate_json(value, schema)
                        if not problems:
                            self._record(spent)
                            return value, spent
                        problem = "the JSON does not match the schema: " + "; ".join(problems[:5])
                    except ValueError as exc:
                        problem = str(exc)
                if reasks >= self.json_retries:
                    self._record(spent)
                    raise ProviderResponseError(
                        f"{self._describe()} gave no usable JSON after {reasks + 1} answer(s): {problem}"
                    )
                reasks += 1
                log.warning("%s: unusable answer (%s); asking again", self._describe(), problem)
                prompt = user + _FEEDBACK.format(problem=problem[:500])
                continue

            if transient >= self.max_retries:
                self._record(spent)
                raise error
            delay = self._delay(transient)
            if retry_after is not None:
                delay = min(max(delay, retry_after), self.max_retry_after)
            transient += 1
            log.warning("%s; retry %d/%d in %.2fs", error, transient, self.max_retries, delay)
            if delay > 0:
                yield _Sleep(delay)

    # -- I/O drivers -------------------------------------------------------------------------------

    def _http(self) -> httpx.Client:
        with self._client_lock:
            if self._client is None:
                self._client = httpx.Client(timeout=self.timeout, params=self._query_params())
            return self._client

    def _ahttp(self) -> httpx.AsyncClient:
        if self._aclient is None:
            self._aclient = httpx.AsyncClient(timeout=self.timeout, params=self._query_params())
        return self._aclient

    def _send(self, req: _Request) -> _Outcome:
        try:
            resp = self._http().post(self.base_url + req.path, json=req.body, headers=req.headers)
        except httpx.TimeoutException as exc:
            return _Failure(True, type(exc).__name__)
        except httpx.HTTPError as exc:
            return _Failure(False, f"{type(exc).__name__}: {exc}")
        return _Reply(resp.status_code, resp.headers, resp.text)

    async def _asend(self, req: _Request) -> _Outcome:
        try:
            resp = await self._ahttp().post(self.base_url + req.path, json=req.body, headers=req.headers)
        except httpx.TimeoutException as exc:
            return _Failure(True, type(exc).__name__)
        except httpx.HTTPError as exc:
            return _Failure(False, f"{type(exc).__name__}: {exc}")
        return _Reply(resp.status_code, resp.headers, resp.text)


def _status_error(message: str, status: int) -> ProviderResponseError:
    """A ProviderResponseError tagged with the HTTP status, so callers can tell permanent from transient."""
    exc = ProviderResponseError(message)
    exc.status = status  # type: ignore[attr-defined]
    return exc


def _snippet(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def _tokens(usage: Any, key: str) -> int:
    if not isinstance(usage, dict):
        return 0
    value = usage.get(key)
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


# -- OpenAI-compatible -----------------------------------------------------------------------------

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

    def _build_request(self, system: str, user: str, schema: Mapping[str, Any], name: str) -> _Request:
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
        return _Request("/chat/completions", body, headers)

    def _parse_reply(self, body: Any, name: str) -> _Parsed:
        message = body["choices"][0]["message"]
        content = message.get("content")
        if not isinstance(content, str) or not content.strip():
            refusal = message.get("refusal")
            raise ValueError(f"the model refused: {refusal}" if refusal else "the answer has no text content")
        usage = body.get("usage")
        return _Parsed(content, _tokens(usage, "prompt_tokens"), _tokens(usage, "completion_tokens"))


# -- Anthropic -----------------------------------------------------------------------------------

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

    def _build_request(self, system: str, user: str, schema: Mapping[str, Any], name: str) -> _Request:
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
        return _Request("/v1/messages", body, headers)

    def _parse_reply(self, body: Any, name: str) -> _Parsed:
        usage = body.get("usage")
        tokens = _tokens(usage, "input_tokens"), _tokens(usage, "output_tokens")
        blocks = body["content"]
        for block in blocks:
            if block.get("type") == "tool_use" and block.get("name") == name:
                return _Parsed(block.get("input"), *tokens)
        # Without the tool call, a text block may still hold the JSON; let the parser judge it.
        text = "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
        if not text.strip():
            raise ValueError(f"the answer has no {name!r} tool call")
        return _Parsed(text, *tokens)


# -- factory -------------------------------------------------------------------------------------

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
