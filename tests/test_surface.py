"""Meta-tests of the public surface: exports, CLI help (sync/async parity: test_facade_parity.py)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

import memstrata
from memstrata import AsyncMemory
from memstrata.cli import main

PUBLIC = {
    "AccessDeniedError", "AsyncMemory", "BackendError", "BackendUnavailableError", "ConfigurationError",
    "HashEmbedder", "IngestConfig", "InvalidInputError", "Memory", "MemstrataError", "MiniLMEmbedder",
    "NotFoundError", "OpenAIEmbedder", "ProviderError", "ScopeError", "__version__",
}


def test_all_is_exactly_the_public_surface() -> None:
    assert set(memstrata.__all__) == PUBLIC
    for name in memstrata.__all__:
        assert hasattr(memstrata, name), name


async def test_async_answers_like_sync(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'a.db'}"
    async with AsyncMemory(url, embedder="hash") as am:
        added = await am.add("I keep bees in the garden", user_id="u", infer=False)
        mid = added["results"][0]["id"]
        a_search = await am.search("bees", user_id="u")
        a_get = await am.get(mid, user_id="u")
        a_hist = await am.history(mid, user_id="u")
        s = am.sync
        assert a_search == s.search("bees", user_id="u")
        assert a_get == s.get(mid, user_id="u")
        assert a_hist == s.history(mid, user_id="u")
        with pytest.raises(memstrata.NotFoundError):
            await am.get(mid, user_id="other")
        with pytest.raises(AttributeError):
            am.not_a_method  # noqa: B018


def _commands(group, prefix=()):  # type: ignore[no-untyped-def]
    for name, cmd in group.commands.items():
        yield (*prefix, name), cmd
        if hasattr(cmd, "commands"):
            yield from _commands(cmd, (*prefix, name))


def test_every_cli_command_has_help() -> None:
    runner = CliRunner()
    seen = 0
    for path, cmd in _commands(main):
        assert cmd.help or cmd.short_help, f"{' '.join(path)} has no help text"
        result = runner.invoke(main, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage:" in result.output
        seen += 1
    assert seen >= 10


def test_cli_round_trip_with_json_and_clean_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    runner = CliRunner()
    store = f"sqlite:///{tmp_path / 'cli.db'}"
    base = ["--store", store, "--embedder", "hash"]
    r = runner.invoke(main, [*base, "--json", "add", "I play the cello", "--user", "u", "--raw"])
    assert r.exit_code == 0, r.output
    mid = json.loads(r.output)["results"][0]["id"]
    r = runner.invoke(main, [*base, "search", "cello", "--user", "u"])
    assert r.exit_code == 0 and "I play the cello" in r.output
    out = tmp_path / "export.jsonl"
    r = runner.invoke(main, [*base, "export", "--user", "u", "-o", str(out)])
    assert r.exit_code == 0 and len(out.read_text().splitlines()) == 1
    r = runner.invoke(main, [*base, "import", str(out), "--user", "v"])
    assert r.exit_code == 0 and "imported 1 of 1" in r.output
    r = runner.invoke(main, [*base, "--json", "list", "--user", "v"])
    assert json.loads(r.output)["results"][0]["memory"] == "I play the cello"
    r = runner.invoke(main, [*base, "get", mid, "--user", "someone-else"])
    assert r.exit_code == 3 and "not found" in r.output and "Traceback" not in r.output
    r = runner.invoke(main, [*base, "search", "x"])
    assert r.exit_code == 2 and "user_id" in r.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"memory": "fine"}\nnot json\n')
    r = runner.invoke(main, [*base, "import", str(bad), "--user", "w"])
    assert r.exit_code == 2 and "bad.jsonl:2" in r.output
