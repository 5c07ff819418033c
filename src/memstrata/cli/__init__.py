"""The ``memstrata`` command line, one module per command group:

- ``memories``: add, search, context, list, get, delete, history, stats
- ``transfer``: export, import
- ``privacy``: audit, retention, forget, export-user, import-user
- ``archive``: old episodes to Parquet files and back (policy, run, list, restore, search)
- ``encryption``: new-key, status, rotate
- ``keys``: API keys, and ``mcp`` (the MCP tools on stdio)
- ``server``: serve, openapi
- ``backends``: migrate
- ``worker``: process queued adds
- ``demo`` and ``bench``
- ``reference``: the hidden ``docs`` command that renders docs/cli.md and docs/configuration.md

``base`` holds the group itself and what the commands share. Settings are read once, from the flags and the
``MEMSTRATA_*`` variables, into a ``memstrata.settings.Settings``.
"""

from __future__ import annotations

from memstrata.cli import (
    archive,
    backends,
    bench,
    demo,
    encryption,
    keys,
    memories,
    privacy,
    reference,
    server,
    transfer,
    worker,
)
from memstrata.cli.base import main

for _module in (memories, transfer, privacy, archive, encryption, keys, server, backends, worker, demo, bench,
                reference):
    for _command in _module.COMMANDS:
        main.add_command(_command)

__all__ = ["main"]
