"""The privacy commands: audit verify/show, retention, forget, export-user / import-user, against a SQLite
file and a PostgreSQL database, plain and encrypted (MEMSTRATA_MASTER_KEY)."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from memstrata.cli import main
from memstrata.cli.privacy import register
from memstrata.privacy.crypto import generate_master_key
from privacy_backends import PRIVACY_BACKENDS, RawStore, raw_store


@pytest.fixture(params=PRIVACY_BACKENDS)
def raw(request: pytest.FixtureRequest, tmp_path: Path) -> RawStore:
    return raw_store(request, tmp_path)


@pytest.fixture
def cli() -> click.Group:
    """A copy of the main group with the privacy commands, so the real one is not mutated."""
    group = type(main)(name=main.name, params=main.params, callback=main.callback, commands=dict(main.commands))
    register(group)
    return group


def _run(cli: click.Group, store: str, *args: str, env: dict[str, str] | None = None, ok: bool = True):  # type: ignore[no-untyped-def]
    clean: dict[str, str | None] = {"MEMSTRATA_MASTER_KEY": None, "MEMSTRATA_MASTER_KEY_FILE": None, **(env or {})}
    r = CliRunner().invoke(cli, ["--store", store, "--embedder", "hash", "--json", *args], env=clean)
    if ok:
        assert r.exit_code == 0, r.output
    return r


@pytest.mark.parametrize("encrypted", [False, True])
def test_privacy_commands_end_to_end(cli: click.Group, raw: RawStore, tmp_path: Path, encrypted: bool) -> None:
    store = raw.url
    env = {"MEMSTRATA_MASTER_KEY": generate_master_key()} if encrypted else {}
    _run(cli, store, "retention", "hold", "bob", "--reason", "case 7", env=env)
    _run(cli, store, "retention", "set", "long_term", "30d", "--category", "health", env=env)
    listed = json.loads(_run(cli, store, "retention", "list", env=env).output)
    assert listed["policies"][0]["category"] == "health" and listed["holds"][0]["user_id"] == "bob"
    ran = json.loads(_run(cli, store, "retention", "run", "--now", "2099-01-01T00:00:00Z", env=env).output)
    assert ran["orgs"]["default"]["long_term"] == {}

    # Data written by the library with the same key, then exported, erased and re-imported by the CLI.
    from memstrata.secure import memory_from_env

    m = memory_from_env(store, embedder="hash", environ=env)
    m.add("alice plays the oboe", user_id="alice", infer=False, metadata={"tags": ["hobby"]})
    m.close()
    out = tmp_path / "alice.json"
    _run(cli, store, "export-user", "alice", "-o", str(out), env=env)
    assert json.loads(out.read_text())["scopes"][0]["memories"][0]["memory"] == "alice plays the oboe"
    receipt = json.loads(_run(cli, store, "forget", "alice", "--yes", env=env).output)
    assert receipt["deleted"]["long_term"] == 1
    assert _run(cli, store, "forget", "bob", "--yes", env=env, ok=False).exit_code == 2  # on hold
    assert raw.sql("SELECT count(*) FROM memories WHERE user_id = ?", ("alice",)) == [(0,)]
    imported = json.loads(_run(cli, store, "import-user", str(out), "--user", "alice2", env=env).output)
    assert imported["imported"]["memories"] == 1
    [(text,)] = raw.sql("SELECT text FROM memories WHERE user_id = ?", ("alice2",))
    assert (text == "alice plays the oboe") != encrypted and text.startswith("enc1:") == encrypted

    shown = json.loads(_run(cli, store, "audit", "show", "--limit", "100", env=env).output)
    assert {"retention.hold", "retention.set", "retention.run", "export_user", "forget_user", "import_user"} <= {
        e["operation"] for e in shown}
    verified = json.loads(_run(cli, store, "audit", "verify", env=env).output)
    assert verified["ok"] and verified["unauthenticated"] == 0
    head = f"{verified['head_seq']}:{verified['head_hash']}"
    raw.sql("DELETE FROM audit_log WHERE seq = (SELECT max(seq) FROM audit_log)")
    assert json.loads(_run(cli, store, "audit", "verify", env=env).output)["ok"]  # a cut-off end looks intact
    cut = _run(cli, store, "audit", "verify", "--head", head, env=env, ok=False)
    assert cut.exit_code == 1 and not json.loads(cut.output)["ok"]
    raw.sql("UPDATE audit_log SET actor = ? WHERE seq = 2", ("someone else",))
    edited = _run(cli, store, "audit", "verify", env=env, ok=False)
    assert edited.exit_code == 1 and [p["seq"] for p in json.loads(edited.output)["problems"]] == [2]


def test_an_encrypted_store_without_its_key_is_refused_cleanly(cli: click.Group, raw: RawStore) -> None:
    store = raw.url
    env = {"MEMSTRATA_MASTER_KEY": generate_master_key()}
    _run(cli, store, "retention", "hold", "bob", "--reason", "x", env=env)  # creates the audit key only
    from memstrata.secure import memory_from_env

    m = memory_from_env(store, embedder="hash", environ=env)
    m.add("sealed", user_id="alice", infer=False)
    m.close()
    for args in (["forget", "alice", "--yes"], ["export-user", "alice"], ["audit", "verify"]):
        r = _run(cli, store, *args, ok=False)
        assert r.exit_code == 4 and "master key" in r.output and "Traceback" not in r.output, args
    wrong = _run(cli, store, "audit", "verify", env={"MEMSTRATA_MASTER_KEY": generate_master_key()}, ok=False)
    assert wrong.exit_code == 4 and "master key" in wrong.output
    # Refused before anything was written: alice's memory is intact and readable with the right key.
    m = memory_from_env(store, embedder="hash", environ=env)
    assert [x["memory"] for x in m.get_all(user_id="alice")["results"]] == ["sealed"]
    m.close()
    assert json.loads(_run(cli, store, "audit", "verify", env=env).output)["ok"]


def test_every_privacy_command_has_help(cli: click.Group) -> None:
    for path in (["audit", "verify"], ["audit", "show"], ["retention", "set"], ["retention", "unset"],
                 ["retention", "list"], ["retention", "run"], ["retention", "hold"], ["retention", "release"],
                 ["forget"], ["export-user"], ["import-user"]):
        r = CliRunner().invoke(cli, [*path, "--help"])
        assert r.exit_code == 0 and "Usage:" in r.output, path
