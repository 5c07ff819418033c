"""docs/openapi.json is the served OpenAPI document; regenerate it with `memstrata openapi -o docs/openapi.json`."""

from __future__ import annotations

import json
from pathlib import Path

from memstrata.cli.server import openapi_text
from memstrata.server import openapi_document

CHECKED_IN = Path(__file__).resolve().parents[1] / "docs" / "openapi.json"


def test_checked_in_openapi_matches_the_app() -> None:
    current = openapi_text(openapi_document())
    assert CHECKED_IN.exists(), "docs/openapi.json is missing: run `memstrata openapi -o docs/openapi.json`"
    assert CHECKED_IN.read_text(encoding="utf-8") == current, (
        "docs/openapi.json is out of date: run `memstrata openapi -o docs/openapi.json` and commit it"
    )


def test_document_covers_the_api() -> None:
    doc = json.loads(CHECKED_IN.read_text(encoding="utf-8"))
    paths = doc["paths"]
    for path in ("/v1/memories", "/v1/memories/search", "/v1/memories/context", "/v1/memories/{memory_id}",
                 "/v1/memories/{memory_id}/history", "/v1/episodes", "/v1/conflicts",
                 "/v1/conflicts/{conflict_id}/resolve", "/v1/entities", "/v1/entities/neighbourhood",
                 "/v1/users/{user_id}/export", "/v1/users/{user_id}/forget", "/v1/audit", "/v1/audit/verify",
                 "/health", "/ready", "/metrics"):
        assert path in paths, path
    assert {"HTTPBearer", "APIKeyHeader"} <= set(doc["components"]["securitySchemes"])
    problem = paths["/v1/memories/search"]["post"]["responses"]["422"]["content"]
    assert problem["application/problem+json"]["schema"]["$ref"] == "#/components/schemas/Problem"
    assert "Problem" in doc["components"]["schemas"]
    assert not any(p.startswith(("/ui", "/mcp")) for p in paths)
