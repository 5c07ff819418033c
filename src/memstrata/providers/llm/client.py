""":class:`LLMClient`: the retry policy and usage accounting as one I/O-free exchange, driven by sync and async twins.

Kept whole on purpose: the exchange and the two drivers that perform its steps belong together, so the sync
and async paths cannot drift apart. The wire formats (:mod:`.openai_compatible`, :mod:`.anthropic_messages`)
only build requests and read replies.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Generator, Mapping
from typing import Any, Self

import httpx

from memstrata.errors import (
    ConfigurationError,
    ProviderError,
    ProviderResponseError,
    ProviderTimeoutError,
    RateLimitedError,
)
from memstrata.providers.llm.json_answers import parse_json_object, validate_json
from memstrata.providers.llm.steps import (
    Failure,
    Outcome,
    Parsed,
    Reply,
    Request,
    Sleep,
    Step,
    mask_url,
    parse_retry_after,
    snippet,
    status_error,
)
from memstrata.providers.llm.usage import DEFAULT_PRICES, Price, Usage, lookup_price

# One logger for the whole package, whichever module logs.
log = logging.getLogger("memstrata.providers.llm")

_FEEDBACK = (
    "\n\nYour previous answer was rejected: {problem}. Answer again with only a JSON object that "
    "follows the schema exactly."
)


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
                if isinstance(step, Sleep):
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
                if isinstance(step, Sleep):
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
        return f"{type(self).__name__}(model={self.model!r}, base_url={mask_url(self.base_url)!r}, api_key={key})"

    # -- what subclasses provide -------------------------------------------------------------------

    def _build_request(
        self, system: str, user: str, schema: Mapping[str, Any], name: str
    ) -> Request:  # pragma: no cover - abstract
        raise NotImplementedError

    def _parse_reply(self, body: Any, name: str) -> Parsed:  # pragma: no cover - abstract
        """Pull the answer and token counts out of a decoded 200 body; ValueError/KeyError/TypeError if unusable."""
        raise NotImplementedError

    def _query_params(self) -> dict[str, str]:
        return {}

    # -- the protocol core (no I/O) ----------------------------------------------------------------

    def _describe(self) -> str:
        return f"{self.provider} model {self.model!r} at {mask_url(self.base_url)}"

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
    ) -> Generator[Step, Outcome | None, tuple[dict[str, Any], Usage]]:
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

            if isinstance(outcome, Failure):
                if outcome.timeout:
                    error = ProviderTimeoutError(
                        f"{self._describe()} did not answer within {self.timeout:g}s "
                        f"(after {transient + 1} attempt(s))"
                    )
                else:
                    error = ProviderError(f"{self._describe()} is unreachable: {outcome.detail}")
            elif outcome.status == 429:
                retry_after = parse_retry_after(outcome.headers.get("retry-after"))
                error = RateLimitedError(
                    f"{self._describe()} answered HTTP 429 (rate limited) after {transient + 1} attempt(s)",
                    retry_after=retry_after,
                )
                error.status = 429  # type: ignore[attr-defined]
            elif outcome.status >= 500:
                error = status_error(
                    f"{self._describe()} answered HTTP {outcome.status} after {transient + 1} attempt(s): "
                    f"{snippet(outcome.text)}",
                    outcome.status,
                )
            elif outcome.status != 200:
                hint = " (check the API key)" if outcome.status in (401, 403) else ""
                self._record(spent)
                raise status_error(
                    f"{self._describe()} answered HTTP {outcome.status}{hint}: {snippet(outcome.text)}",
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
                yield Sleep(delay)

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

    def _send(self, req: Request) -> Outcome:
        try:
            resp = self._http().post(self.base_url + req.path, json=req.body, headers=req.headers)
        except httpx.TimeoutException as exc:
            return Failure(True, type(exc).__name__)
        except httpx.HTTPError as exc:
            return Failure(False, f"{type(exc).__name__}: {exc}")
        return Reply(resp.status_code, resp.headers, resp.text)

    async def _asend(self, req: Request) -> Outcome:
        try:
            resp = await self._ahttp().post(self.base_url + req.path, json=req.body, headers=req.headers)
        except httpx.TimeoutException as exc:
            return Failure(True, type(exc).__name__)
        except httpx.HTTPError as exc:
            return Failure(False, f"{type(exc).__name__}: {exc}")
        return Reply(resp.status_code, resp.headers, resp.text)
