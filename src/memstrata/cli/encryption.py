"""Encryption commands of the ``memstrata`` CLI: make a master key, inspect a store's keys, rotate.

    memstrata encryption new-key -o master.key          # 32 random bytes, base64, file mode 0600
    MEMSTRATA_MASTER_KEY_FILE=old.key memstrata --store URL encryption status
    MEMSTRATA_MASTER_KEY_FILE=old.key memstrata --store URL encryption rotate --new-key-file new.key

Rotation re-wraps every live data key with the new master key in one transaction and re-encrypts no
data; run it again after an interruption and it skips what is already done. Afterwards, configure the
new key everywhere the store is opened; the old one no longer opens it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from memstrata.cli.base import emit, settings
from memstrata.errors import ConfigurationError


def _open_encrypted(ctx: click.Context) -> Any:
    """The store opened with the configured (current) master key; refused without one or with a wrong one."""
    from memstrata.secure import open_secure_store

    configured = settings(ctx)
    provider = configured.key_provider()
    if provider is None:
        raise ConfigurationError(
            "encryption: no master key configured; set MEMSTRATA_MASTER_KEY or MEMSTRATA_MASTER_KEY_FILE "
            "to the store's current key")
    store = open_secure_store(configured.store_url, configured.build_embedder().dim, provider=provider)
    ctx.find_root().call_on_close(store.close)
    return store, provider


@click.group()
def encryption() -> None:
    """Master keys and per-user data keys of an encrypted store."""


@encryption.command(name="new-key")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="write the key to this file (mode 0600, must not exist) instead of printing it")
def new_key(output: str | None) -> None:
    """Generate a random AES-256 master key (base64)."""
    from memstrata.privacy.crypto import generate_master_key, master_key_id

    key = generate_master_key()
    if output is None:
        click.echo(key)
        return
    path = Path(output)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigurationError(f"encryption: {path} exists; refusing to overwrite a key file") from None
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    import base64

    click.echo(f"wrote master key {master_key_id(base64.b64decode(key))} to {path}", err=True)


@encryption.command(name="status")
@click.pass_context
def status(ctx: click.Context) -> None:
    """Check that the configured master key opens the store, and count its data keys."""
    from memstrata.tiers.privacy import privacy_tier

    store, provider = _open_encrypted(ctx)
    keys = [k for k in privacy_tier(store).data_keys() if not k.subject_key.startswith("!")]  # not the audit key
    live = [k for k in keys if not k.destroyed]
    by_master: dict[str, int] = {}
    for k in live:
        by_master[k.master_key_id] = by_master.get(k.master_key_id, 0) + 1
    data = {
        "master_key_id": provider.current_key_id,
        "live_data_keys": len(live),
        "destroyed_data_keys": len(keys) - len(live),
        "by_master_key": by_master,
        "rotation_pending": any(mk != provider.current_key_id for mk in by_master),
    }
    emit(ctx, data, f"master key {provider.current_key_id} opens the store: {len(live)} live data keys, "
                     f"{data['destroyed_data_keys']} destroyed"
                     + ("; some keys are still wrapped by another master key" if data["rotation_pending"] else ""))


@encryption.command(name="rotate")
@click.option("--new-key-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="file holding the new master key (base64 or 32 raw bytes)")
@click.option("--new-key-env", default=None, metavar="VAR",
              help="environment variable holding the new master key (base64)")
@click.pass_context
def rotate(ctx: click.Context, new_key_file: str | None, new_key_env: str | None) -> None:
    """Re-wrap every data key from the configured master key to a new one (no data is re-encrypted)."""
    from memstrata.privacy.crypto import LocalKeyProvider, decode_master_key, rotate_master_key

    if (new_key_file is None) == (new_key_env is None):
        raise click.UsageError("give exactly one of --new-key-file and --new-key-env")
    if new_key_file is not None:
        new = LocalKeyProvider.from_file(new_key_file)
    else:
        assert new_key_env is not None
        value = os.environ.get(new_key_env)
        if not value:
            raise ConfigurationError(f"encryption: environment variable {new_key_env} is not set")
        new = LocalKeyProvider(decode_master_key(value, new_key_env))
    store, old = _open_encrypted(ctx)
    if new.current_key_id == old.current_key_id:
        raise ConfigurationError("encryption: the new master key is the configured one; nothing to rotate")
    report = rotate_master_key(store, old, new, actor="cli")
    emit(ctx, report, f"re-wrapped {report['rewrapped']} data keys ({report['skipped']} already under the "
                       f"new key) to master key {report['master_key_id']}; configure it wherever the store is "
                       "opened: the old key no longer opens it")


COMMANDS = (encryption,)


def register(group: click.Group) -> None:
    """Add these commands to ``group`` (the ``memstrata`` group, or a test's own)."""
    for command in COMMANDS:
        group.add_command(command)
