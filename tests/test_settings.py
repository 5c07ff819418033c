"""One Settings object for every MEMSTRATA_* variable: typed parsing, flags over variables, and the environment
``memstrata serve`` hands its workers."""

from __future__ import annotations

from dataclasses import fields

import pytest
from click.testing import CliRunner

from memstrata import ConfigurationError
from memstrata.cli import main
from memstrata.cli.server import worker_environment
from memstrata.privacy.crypto import generate_master_key
from memstrata.settings import Settings


def test_variables_are_parsed_as_their_types() -> None:
    s = Settings.from_env({
        "MEMSTRATA_AUTH": "false", "MEMSTRATA_AUDIT": "1", "MEMSTRATA_CORS": " https://a.example , https://b.example,",
        "MEMSTRATA_RATE_LIMIT": "2.5", "MEMSTRATA_RATE_BURST": "7", "MEMSTRATA_THREADS": "3",
        "MEMSTRATA_ALLOWED_HOSTS": "", "MEMSTRATA_STORE": "sqlite:///x.db",
    })
    assert (s.auth, s.audit, s.rate_limit, s.rate_burst, s.threads) == (False, True, 2.5, 7, 3)
    assert s.cors == ("https://a.example", "https://b.example") and s.allowed_hosts == ()
    assert s.store == "sqlite:///x.db" and Settings().store_url == "sqlite:///~/.memstrata/memory.db"
    for var, value, words in (("MEMSTRATA_AUTH", "maybe", "a boolean"), ("MEMSTRATA_RATE_BURST", "7.5", "a whole"),
                              ("MEMSTRATA_RATE_LIMIT", "fast", "a number")):
        with pytest.raises(ConfigurationError, match=f"{var}: '{value}' is not {words}"):
            Settings.from_env({var: value})
    with pytest.raises(TypeError, match="unknown settings: colour"):
        Settings.from_env({}, colour="blue")


def test_secrets_stay_out_of_repr_and_the_start_up_line() -> None:
    s = Settings.from_env({"MEMSTRATA_MASTER_KEY": "c2VjcmV0", "MEMSTRATA_KEY_PEPPER": "pepper-secret",
                           "MEMSTRATA_API_KEY": "ms_secret", "MEMSTRATA_LLM": "openai://?model=m&api_key=sk-url"})
    text = repr(s) + repr(s.describe())
    for secret in ("c2VjcmV0", "pepper-secret", "ms_secret", "sk-url"):
        assert secret not in text


def test_workers_get_the_settings_and_nothing_stale() -> None:
    inherited = {"PATH": "/bin", "MEMSTRATA_AUDIT": "0", "MEMSTRATA_CACHE": "redis://old", "OMP_NUM_THREADS": "4"}
    settings = Settings.from_env(inherited).with_flags(audit=True, store="sqlite:///flag.db")
    env = worker_environment(settings, inherited)
    assert env["PATH"] == "/bin" and env["OMP_NUM_THREADS"] == "4" and env["OPENBLAS_NUM_THREADS"] == "1"
    assert "MEMSTRATA_AUDIT" not in env  # the flag put it back to its default; the stale 0 must not win
    assert Settings.from_env(env) == settings
    assert set(env) - set(inherited) <= {"MEMSTRATA_STORE", *(v for v in env if v.endswith("_NUM_THREADS"))}


def test_every_setting_round_trips_through_the_environment() -> None:
    changed = {"auth": False, "cors": ("https://a",), "rate_limit": 0.0, "threads": 2, "master_key_file": "k",
               "api_key": "ms_x", "blas_threads": 0, "conflict_policy": "manual"}
    assert set(changed) <= {f.name for f in fields(Settings)}
    s = Settings(**changed)  # type: ignore[arg-type]
    assert Settings.from_env(s.to_env()) == s


def test_the_cli_reads_the_environment_once_and_flags_win(tmp_path) -> None:  # type: ignore[no-untyped-def]
    runner = CliRunner()
    env_store, flag_store = f"sqlite:///{tmp_path / 'env.db'}", f"sqlite:///{tmp_path / 'flag.db'}"
    env = {"MEMSTRATA_STORE": env_store, "MEMSTRATA_EMBEDDER": "hash", "MEMSTRATA_MASTER_KEY": None,
           "MEMSTRATA_MASTER_KEY_FILE": None}
    assert runner.invoke(main, ["add", "from the environment", "--user", "u", "--raw"], env=env).exit_code == 0
    assert runner.invoke(main, ["--store", flag_store, "add", "from the flag", "--user", "u", "--raw"],
                         env=env).exit_code == 0
    listed = runner.invoke(main, ["--json", "list", "--user", "u"], env=env)
    assert [m["memory"] for m in __import__("json").loads(listed.output)["results"]] == ["from the environment"]
    bad = runner.invoke(main, ["stats"], env={**env, "MEMSTRATA_CONFLICT_POLICY": "newest"})
    assert bad.exit_code == 4 and "conflict policy" in bad.output
    # --help never depends on the environment.
    assert runner.invoke(main, ["stats", "--help"], env={"MEMSTRATA_RATE_LIMIT": "fast"}).exit_code == 0


def test_a_master_key_in_the_environment_opens_the_store_encrypted(tmp_path) -> None:  # type: ignore[no-untyped-def]
    runner = CliRunner()
    store = f"sqlite:///{tmp_path / 'enc.db'}"
    key = {"MEMSTRATA_MASTER_KEY": generate_master_key(), "MEMSTRATA_EMBEDDER": "hash"}
    assert runner.invoke(main, ["--store", store, "add", "secret fact", "--user", "u", "--raw"], env=key).exit_code == 0
    plain = runner.invoke(main, ["--store", store, "list", "--user", "u"],
                          env={"MEMSTRATA_EMBEDDER": "hash", "MEMSTRATA_MASTER_KEY": None})
    assert plain.exit_code == 4 and "encrypted" in plain.output
