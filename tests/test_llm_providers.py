"""LLM clients and the ``llm`` extractor, exercised over real HTTP against a scripted local server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from fake_llm_server import FakeLLMServer, Reply
from memstrata.errors import (
    ConfigurationError,
    ProviderError,
    ProviderResponseError,
    ProviderTimeoutError,
    RateLimitedError,
)
from memstrata.ingest.candidate import EntityMention, Message, Relation, Slot
from memstrata.ingest.llm_extract import MEMORY_SCHEMA, ExtractionFailed, LLMExtractor
from memstrata.providers.llm import (
    AnthropicClient,
    LLMClient,
    OpenAICompatibleClient,
    Usage,
    llm_from_url,
    parse_json_object,
    validate_json,
)

SECRET = "sk-test-SECRET-0123456789"
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "year": {"type": "integer"}},
    "required": ["city", "year"],
}
GOOD = {"city": "Lisbon", "year": 2024}
FAST = {"backoff": 0.001, "max_backoff": 0.01}


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as srv:
        yield srv


def openai(server: FakeLLMServer, **kw: object) -> OpenAICompatibleClient:
    opts = {**FAST, **kw}
    return OpenAICompatibleClient(server.url + "/v1", SECRET, opts.pop("model", "gpt-4o-mini"), **opts)


def anthropic(server: FakeLLMServer, **kw: object) -> AnthropicClient:
    opts = {**FAST, **kw}
    return AnthropicClient(SECRET, opts.pop("model", "claude-3-5-haiku-latest"), base_url=server.url, **opts)


PROTOCOLS = {"openai": openai, "anthropic": anthropic}


@pytest.fixture(params=sorted(PROTOCOLS))
def make(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    return PROTOCOLS[request.param]


def user_text(server: FakeLLMServer, n: int) -> str:
    """The user prompt of the n-th recorded request, whichever protocol sent it."""
    body = server.requests[n].body
    return next(m["content"] for m in body["messages"] if m["role"] == "user")


# -- request shape -------------------------------------------------------------------------------


def test_openai_success_sends_schema_and_bearer_key(server: FakeLLMServer) -> None:
    server.push(Reply.json(GOOD))
    with openai(server) as client:
        value, usage = client.complete_json("be terse", "where?", SCHEMA, name="place")
    assert value == GOOD
    req = server.requests[0]
    assert req.path == "/v1/chat/completions"
    assert req.headers["authorization"] == f"Bearer {SECRET}"
    assert req.body["model"] == "gpt-4o-mini"
    assert req.body["messages"] == [{"role": "system", "content": "be terse"}, {"role": "user", "content": "where?"}]
    fmt = req.body["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"] == "place" and fmt["json_schema"]["schema"] == SCHEMA
    assert usage.calls == 1


def test_openai_json_object_mode_puts_schema_in_prompt(server: FakeLLMServer) -> None:
    server.push(Reply.json(GOOD))
    with openai(server, json_mode="json_object") as client:
        client.complete_json("sys", "u", SCHEMA)
    body = server.requests[0].body
    assert body["response_format"] == {"type": "json_object"}
    assert '"required": ["city", "year"]' in body["messages"][0]["content"]


def test_anthropic_success_forces_tool_call(server: FakeLLMServer) -> None:
    server.push(Reply.json(GOOD))
    with anthropic(server) as client:
        value, _ = client.complete_json("be terse", "where?", SCHEMA, name="place")
    assert value == GOOD
    req = server.requests[0]
    assert req.path == "/v1/messages"
    assert req.headers["x-api-key"] == SECRET
    assert req.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in req.headers
    assert req.body["model"] == "claude-3-5-haiku-latest"
    assert req.body["system"] == "be terse"
    assert req.body["messages"] == [{"role": "user", "content": "where?"}]
    assert req.body["tools"][0]["name"] == "place" and req.body["tools"][0]["input_schema"] == SCHEMA
    assert req.body["tool_choice"] == {"type": "tool", "name": "place"}
    assert req.body["max_tokens"] > 0


# -- usage and cost ------------------------------------------------------------------------------


def test_usage_and_cost_accumulate(server: FakeLLMServer) -> None:
    server.push(Reply.json(GOOD, prompt_tokens=1000, completion_tokens=500),
                Reply.json(GOOD, prompt_tokens=3000, completion_tokens=0))
    with openai(server, model="tiny-1", prices={"tiny": (1.0, 2.0)}) as client:
        _, first = client.complete_json("s", "u", SCHEMA)
        _, second = client.complete_json("s", "u", SCHEMA)
        total = client.usage
    assert first == Usage(1000, 500, 1, pytest.approx(0.002), True)
    assert second.cost_usd == pytest.approx(0.003)
    assert (total.prompt_tokens, total.completion_tokens, total.calls) == (4000, 500, 2)
    assert total.cost_usd == pytest.approx(0.005) and total.cost_known
    assert client.last_usage == second


def test_unknown_model_costs_zero_and_is_flagged(server: FakeLLMServer) -> None:
    server.push(Reply.json(GOOD))
    with anthropic(server, model="mystery-model") as client:
        _, usage = client.complete_json("s", "u", SCHEMA)
    assert usage.cost_usd == 0.0 and usage.cost_known is False
    assert client.usage.cost_known is False and usage.prompt_tokens == 100


def test_default_price_table_prefers_longest_prefix(server: FakeLLMServer) -> None:
    server.push(Reply.json(GOOD, prompt_tokens=1_000_000, completion_tokens=1_000_000))
    with openai(server, model="gpt-4o-mini-2024-07-18") as client:
        _, usage = client.complete_json("s", "u", SCHEMA)
    assert usage.cost_usd == pytest.approx(0.15 + 0.60)  # gpt-4o-mini, not gpt-4o


# -- retries -------------------------------------------------------------------------------------


def test_429_honours_retry_after_then_succeeds(server: FakeLLMServer, make) -> None:  # type: ignore[no-untyped-def]
    server.push(Reply.status(429, retry_after="0.3"), Reply.json(GOOD))
    with make(server) as client:
        start = time.monotonic()
        value, usage = client.complete_json("s", "u", SCHEMA)
        elapsed = time.monotonic() - start
    assert value == GOOD and len(server.requests) == 2
    assert elapsed >= 0.3  # backoff alone would be ~1 ms
    assert usage.calls == 1  # the 429 was not billed


def test_retry_after_is_capped(server: FakeLLMServer) -> None:
    server.push(Reply.status(429, retry_after="60"), Reply.json(GOOD))
    with openai(server, max_retry_after=0.05) as client:
        start = time.monotonic()
        client.complete_json("s", "u", SCHEMA)
    assert time.monotonic() - start < 2


def test_429_forever_raises_rate_limited(server: FakeLLMServer) -> None:
    server.fallback = Reply.status(429, retry_after="0.01")
    with openai(server, max_retries=2) as client, pytest.raises(RateLimitedError) as info:
        client.complete_json("s", "u", SCHEMA)
    assert len(server.requests) == 3
    assert info.value.retry_after == pytest.approx(0.01)
    assert "429" in str(info.value) and "gpt-4o-mini" in str(info.value)


def test_500_then_success(server: FakeLLMServer, make) -> None:  # type: ignore[no-untyped-def]
    server.push(Reply.status(500), Reply.status(503), Reply.json(GOOD))
    with make(server) as client:
        value, _ = client.complete_json("s", "u", SCHEMA)
    assert value == GOOD and len(server.requests) == 3


def test_500_forever_names_status_provider_and_model(server: FakeLLMServer) -> None:
    server.fallback = Reply.status(502, "bad gateway")
    with anthropic(server, max_retries=1) as client, pytest.raises(ProviderResponseError) as info:
        client.complete_json("s", "u", SCHEMA)
    msg = str(info.value)
    assert "HTTP 502" in msg and "anthropic" in msg and "claude-3-5-haiku-latest" in msg
    assert info.value.status == 502  # type: ignore[attr-defined]
    assert len(server.requests) == 2


def test_malformed_json_is_reasked_with_feedback(server: FakeLLMServer, make) -> None:  # type: ignore[no-untyped-def]
    server.push(Reply.text('{"city": "Lisbon", "year": '), Reply.json(GOOD))
    with make(server) as client:
        value, usage = client.complete_json("s", "where?", SCHEMA)
    assert value == GOOD and len(server.requests) == 2
    assert user_text(server, 0) == "where?"
    assert "rejected" in user_text(server, 1) and user_text(server, 1).startswith("where?")
    assert usage.calls == 2 and usage.prompt_tokens == 200  # both answers were billed


def test_schema_violation_is_reasked(server: FakeLLMServer, make) -> None:  # type: ignore[no-untyped-def]
    server.push(Reply.json({"city": "Lisbon", "year": "twenty"}), Reply.json(GOOD))
    with make(server) as client:
        value, _ = client.complete_json("s", "u", SCHEMA)
    assert value == GOOD
    assert "$.year: expected integer, got string" in user_text(server, 1)


def test_fenced_json_is_accepted(server: FakeLLMServer) -> None:
    server.push(Reply.text('```json\n{"city": "Porto", "year": 2023}\n```'))
    with openai(server) as client:
        value, _ = client.complete_json("s", "u", SCHEMA)
    assert value == {"city": "Porto", "year": 2023} and len(server.requests) == 1


def test_malformed_forever_raises_after_one_reask(server: FakeLLMServer, make) -> None:  # type: ignore[no-untyped-def]
    server.fallback = Reply.text("I think the user lives in Lisbon.")
    with make(server, json_retries=1) as client, pytest.raises(ProviderResponseError) as info:
        client.complete_json("s", "u", SCHEMA)
    assert len(server.requests) == 2
    assert "no usable JSON" in str(info.value)
    assert client.usage.calls == 2  # failed calls still count what they cost


def test_timeout_raises_provider_timeout(server: FakeLLMServer) -> None:
    server.fallback = Reply.slow(3.0)
    with openai(server, timeout=0.2, max_retries=1) as client:
        start = time.monotonic()
        with pytest.raises(ProviderTimeoutError) as info:
            client.complete_json("s", "u", SCHEMA)
    assert time.monotonic() - start < 2
    assert len(server.requests) == 2
    assert "did not answer within 0.2s" in str(info.value)


def test_timeout_then_success(server: FakeLLMServer) -> None:
    server.push(Reply.slow(3.0), Reply.json(GOOD))
    with anthropic(server, timeout=0.2) as client:
        value, _ = client.complete_json("s", "u", SCHEMA)
    assert value == GOOD and len(server.requests) == 2


def test_401_is_not_retried(server: FakeLLMServer, make) -> None:  # type: ignore[no-untyped-def]
    server.fallback = Reply.status(401, '{"error": "invalid api key"}')
    with make(server, max_retries=5) as client, pytest.raises(ProviderResponseError) as info:
        client.complete_json("s", "u", SCHEMA)
    assert len(server.requests) == 1
    assert "HTTP 401" in str(info.value) and "API key" in str(info.value)
    assert SECRET not in str(info.value)
    assert not isinstance(info.value, RateLimitedError | ProviderTimeoutError)


def test_unreachable_server_raises_provider_error() -> None:
    with FakeLLMServer() as srv:
        url = srv.url
    client = OpenAICompatibleClient(url + "/v1", SECRET, "m", max_retries=1, timeout=2, **FAST)
    with client, pytest.raises(ProviderError) as info:
        client.complete_json("s", "u", SCHEMA)
    assert "unreachable" in str(info.value)


# -- async parity --------------------------------------------------------------------------------

SCRIPT = [Reply.status(429, retry_after="0"), Reply.text("not json"), Reply.status(500), Reply.json(GOOD)]


async def test_async_matches_sync(server: FakeLLMServer, make) -> None:  # type: ignore[no-untyped-def]
    server.push(*SCRIPT)
    with make(server) as client:
        sync_value, sync_usage = client.complete_json("s", "u", SCHEMA)
    sync_bodies = [r.body for r in server.requests]
    server.requests.clear()
    server.push(*SCRIPT)
    async with make(server) as client:
        async_value, async_usage = await client.acomplete_json("s", "u", SCHEMA)
    assert async_value == sync_value == GOOD
    assert async_usage == sync_usage and async_usage.calls == 2
    assert [r.body for r in server.requests] == sync_bodies and len(sync_bodies) == 4


async def test_async_timeout_and_401(server: FakeLLMServer) -> None:
    server.push(Reply.slow(3.0), Reply.status(401))
    async with openai(server, timeout=0.2, max_retries=0) as client:
        with pytest.raises(ProviderTimeoutError):
            await client.acomplete_json("s", "u", SCHEMA)
        with pytest.raises(ProviderResponseError, match="HTTP 401"):
            await client.acomplete_json("s", "u", SCHEMA)
    assert len(server.requests) == 2


async def test_async_malformed_forever(server: FakeLLMServer) -> None:
    server.fallback = Reply.json({"city": 1})
    async with anthropic(server, json_retries=2) as client:
        with pytest.raises(ProviderResponseError, match="does not match the schema"):
            await client.acomplete_json("s", "u", SCHEMA)
    assert len(server.requests) == 3


# -- extraction ----------------------------------------------------------------------------------

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
MESSAGES = [
    Message("user", "My sister Anna moved to Lisbon last week. My boss lives in Paris.", 0),
    Message("assistant", "Nice! Lisbon is lovely.", 1),
    Message("user", "I'm vegetarian, by the way.", 2),
]
MEMORY = {
    "text": "The user's sister Anna moved to Lisbon.",
    "importance": 0.8,
    "reasons": ["Relationship", "new entity"],
    "kind": "relationship",
    "source_indexes": [0],
    "entities": [
        {"text": "my sister Anna", "canonical": "Anna", "label": "PERSON"},
        {"text": "Lisbon", "canonical": "Lisbon", "label": "PLACE"},
    ],
    "relations": [{"subject": "Anna", "relation": "Sister Of", "object": "User"},
                  {"subject": "Anna", "relation": "lives_in", "object": "Lisbon"}],
    "slot": {"subject": "Anna", "attribute": "lives in", "value": "Lisbon"},
    "event_time": "2026-02-23",
    "confidence": 0.9,
}


def test_extraction_maps_to_candidates(server: FakeLLMServer, make) -> None:  # type: ignore[no-untyped-def]
    odd = {"text": "  The user   is vegetarian. ", "importance": 1.7, "kind": "diet", "source_indexes": [2, 2.0],
           "entities": [{"text": "veg", "canonical": "", "label": "food"}], "slot": None, "confidence": -3,
           "event_time": "not a date"}
    server.push(Reply.json({"memories": [MEMORY, odd]}))
    with make(server) as client:
        extractor = LLMExtractor(client)
        cands = extractor.extract(MESSAGES, NOW)
    assert len(cands) == 2
    anna, veg = cands
    assert anna.text == MEMORY["text"] and anna.importance == 0.8 and anna.kind == "relationship"
    assert anna.reasons == ["relationship", "new_entity"]
    assert anna.source_indexes == [0]
    assert anna.entities == [
        EntityMention("my sister Anna", "Anna", "PERSON"),
        EntityMention("Lisbon", "Lisbon", "PLACE"),
    ]
    assert anna.relations == [Relation("Anna", "sister_of", "user"), Relation("Anna", "lives_in", "Lisbon")]
    assert anna.slot == Slot("Anna", "lives_in", "Lisbon")
    assert anna.event_time == datetime(2026, 2, 23, tzinfo=UTC)
    assert anna.confidence == 0.9 and "llm" in anna.confidence_reason
    # clamped and normalised
    assert veg.text == "The user is vegetarian." and veg.importance == 1.0 and veg.confidence == 0.0
    assert veg.kind == "fact" and veg.source_indexes == [2] and veg.slot is None and veg.event_time is None
    assert veg.entities == [EntityMention("veg", "veg", "OTHER")]
    assert extractor.last_usage == Usage(100, 50, 1, extractor.last_usage.cost_usd, extractor.last_usage.cost_known)
    # one call, carrying the rules and the indexed messages
    assert len(server.requests) == 1
    body = server.requests[0].body
    system = body["system"] if "system" in body else body["messages"][0]["content"]
    assert "Third parties are not the user" in system and "Hypotheticals" in system
    prompt = user_text(server, 0)
    assert "[0] user: My sister Anna" in prompt and "[1] assistant: Nice!" in prompt and "2026-03-02T10:00:00" in prompt


def test_out_of_range_source_indexes_are_dropped(server: FakeLLMServer) -> None:
    base = {"text": "The user likes tea.", "importance": 0.6, "kind": "preference"}
    server.push(Reply.json({"memories": [
        {**base, "source_indexes": [2]},
        {**base, "text": "invented", "source_indexes": [7]},
        {**base, "text": "half invented", "source_indexes": [0, 9]},
        {**base, "text": "no source", "source_indexes": []},
        {**base, "text": "negative", "source_indexes": [-1]},
    ]}))
    with openai(server) as client:
        extractor = LLMExtractor(client)
        cands = extractor.extract(MESSAGES, NOW)
    assert [c.text for c in cands] == ["The user likes tea."]
    assert extractor.last_dropped == 4


def test_threshold_filters_low_importance(server: FakeLLMServer) -> None:
    server.push(Reply.json({"memories": [
        {"text": "big", "importance": 0.9, "kind": "fact", "source_indexes": [0]},
        {"text": "small", "importance": 0.2, "kind": "fact", "source_indexes": [0]},
    ]}))
    with openai(server) as client:
        cands = LLMExtractor(client, threshold=0.5).extract(MESSAGES, NOW)
    assert [c.text for c in cands] == ["big"]


def test_extraction_schema_violation_then_success(server: FakeLLMServer) -> None:
    server.push(Reply.json({"memories": [{"text": "x", "importance": "high", "kind": "fact", "source_indexes": [0]}]}),
                Reply.json({"memories": []}))
    with anthropic(server) as client:
        assert LLMExtractor(client).extract(MESSAGES, NOW) == []
    assert len(server.requests) == 2 and "importance" in user_text(server, 1)


def test_extraction_failure_is_loud(server: FakeLLMServer, make) -> None:  # type: ignore[no-untyped-def]
    server.fallback = Reply.text("sorry, I cannot do JSON")
    with make(server) as client:
        extractor = LLMExtractor(client)
        with pytest.raises(ExtractionFailed) as info:
            extractor.extract(MESSAGES, NOW)
    err = info.value
    assert isinstance(err, ProviderResponseError) and isinstance(err.cause, ProviderResponseError)
    assert "no usable JSON" in err.reason and err.retryable
    assert extractor.last_usage is not None and extractor.last_usage.calls == 2


def test_extraction_401_is_not_retryable(server: FakeLLMServer) -> None:
    server.fallback = Reply.status(401)
    with openai(server) as client:
        with pytest.raises(ExtractionFailed) as info:
            LLMExtractor(client).extract(MESSAGES, NOW)
    assert info.value.retryable is False and len(server.requests) == 1


def test_extraction_timeout_is_retryable(server: FakeLLMServer) -> None:
    server.fallback = Reply.slow(3.0)
    with openai(server, timeout=0.2, max_retries=0) as client:
        with pytest.raises(ExtractionFailed) as info:
            LLMExtractor(client).extract(MESSAGES, NOW)
    assert info.value.retryable and isinstance(info.value.cause, ProviderTimeoutError)


def test_no_messages_to_read_makes_no_call(server: FakeLLMServer) -> None:
    with openai(server) as client:
        assert LLMExtractor(client).extract([Message("system", "be nice", 0)], NOW) == []
    assert server.requests == []


async def test_aextract_matches_extract(server: FakeLLMServer) -> None:
    server.push(Reply.json({"memories": [MEMORY]}), Reply.status(500), Reply.json({"memories": [MEMORY]}))
    with openai(server) as client:
        sync = LLMExtractor(client).extract(MESSAGES, NOW)
    async with openai(server) as client:
        extractor = LLMExtractor(client)
        got = await extractor.aextract(MESSAGES, NOW)
    assert got == sync and len(got) == 1 and len(server.requests) == 3
    assert server.requests[0].body == server.requests[2].body


async def test_aextract_failure(server: FakeLLMServer) -> None:
    server.fallback = Reply.status(503)
    async with anthropic(server, max_retries=1) as client:
        with pytest.raises(ExtractionFailed, match="HTTP 503") as info:
            await LLMExtractor(client).aextract(MESSAGES, NOW)
    assert info.value.retryable and len(server.requests) == 2


# -- secrets, factory, validator -----------------------------------------------------------------


def test_secrets_not_in_repr(server: FakeLLMServer) -> None:
    for client in (openai(server), anthropic(server)):
        with client:
            assert SECRET not in repr(client) and "***" in repr(client)
            assert SECRET not in repr(LLMExtractor(client))
    masked = OpenAICompatibleClient("https://bob:hunter2@proxy.example/v1", None, "m")
    assert "hunter2" not in repr(masked) and "api_key=None" in repr(masked)


def test_llm_from_url_builds_working_clients(server: FakeLLMServer) -> None:
    server.push(Reply.json(GOOD), Reply.json(GOOD))
    openai_url = f"openai+{server.url}/v1?model=local-llama&max_retries=0&timeout=5"
    with llm_from_url(openai_url, api_key=SECRET) as client:
        assert isinstance(client, OpenAICompatibleClient)
        assert client.model == "local-llama" and client.max_retries == 0 and client.timeout == 5.0
        assert client.complete_json("s", "u", SCHEMA)[0] == GOOD
    with llm_from_url({"provider": "anthropic", "model": "c", "base_url": server.url, "api_key": "k"}) as client:
        assert isinstance(client, AnthropicClient)
        assert client.complete_json("s", "u", SCHEMA)[0] == GOOD
    assert [r.path for r in server.requests] == ["/v1/chat/completions", "/v1/messages"]


def test_llm_from_url_rejects_bad_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "env-key")
    with pytest.raises(ConfigurationError, match="model"):
        llm_from_url("openai://")
    with pytest.raises(ConfigurationError, match="API key"):
        llm_from_url("anthropic://?model=c")
    with pytest.raises(ConfigurationError, match="unknown URL parameter"):
        llm_from_url("openai://?model=m&colour=blue")
    with pytest.raises(ConfigurationError, match="unknown provider"):
        llm_from_url("gemini://?model=m")
    # the environment key goes to the official host only, never to a custom one
    with llm_from_url("openai://?model=m") as official, llm_from_url("openai+http://10.0.0.1/v1?model=m") as custom:
        assert official._api_key == "env-key" and custom._api_key is None
        assert official.base_url == "https://api.openai.com/v1" and custom.base_url == "http://10.0.0.1/v1"


def test_validate_json_subset() -> None:
    assert validate_json(GOOD, SCHEMA) == []
    assert validate_json({"city": "x"}, SCHEMA) == ["$: missing required key 'year'"]
    assert validate_json({"city": "x", "year": True}, SCHEMA) == ["$.year: expected integer, got boolean"]
    assert validate_json({"city": "x", "year": 3.0}, SCHEMA) == []
    assert validate_json([], SCHEMA) == ["$: expected object, got array"]
    assert validate_json("b", {"type": "string", "enum": ["a"]}) == ["$: 'b' is not one of ['a']"]
    bad_memory = {"memories": [{"text": "t", "importance": 1, "kind": "x", "source_indexes": ["0"], "slot": 3}]}
    errors = validate_json(bad_memory, MEMORY_SCHEMA)
    assert len(errors) == 2
    assert "$.memories[0].source_indexes[0]: expected integer, got string" in errors
    assert "$.memories[0].slot: expected object or null, got integer" in errors
    assert validate_json({"memories": [{**MEMORY, "slot": None, "event_time": None}]}, MEMORY_SCHEMA) == []


def test_parse_json_object() -> None:
    assert parse_json_object('Sure! {"a": 1} Hope that helps.') == {"a": 1}
    with pytest.raises(ValueError, match="no JSON object"):
        parse_json_object("nothing here")
    with pytest.raises(ValueError, match="expected a JSON object"):
        parse_json_object("[1, 2]")


def test_client_rejects_bad_settings() -> None:
    with pytest.raises(ConfigurationError):
        AnthropicClient("", "m")
    with pytest.raises(ConfigurationError):
        OpenAICompatibleClient("http://x/v1", None, "m", json_mode="yaml")
    with pytest.raises(ConfigurationError):
        OpenAICompatibleClient("http://x/v1", None, "")
    assert issubclass(OpenAICompatibleClient, LLMClient) and issubclass(ExtractionFailed, ProviderResponseError)
