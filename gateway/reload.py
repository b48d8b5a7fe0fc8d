"""What a settings reload (SIGHUP) changes, and whether it may happen in place.

Pure functions over two validated ``Settings``: the running ones and those
just read from the file. A reload is all or nothing: either every new setting
applies (a new app generation is built from them) or none does. Settings
that describe the process rather than the app cannot be swapped while it
runs; a file that changes them is refused whole, with the reason, and the
server keeps running on the old settings until a restart:

- ``server.host`` and ``server.port``: the listening sockets are opened once
  and kept across reloads (so clients never find the port closed);
- ``storage.url``: the outbox and the sync state live in the database; a
  generation on another file would leave the queued work of the old one
  undone.

This module does not read files, start anything or log.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.settings import Settings

# Dotted keys whose change needs a restart, each with the reason shown to the admin.
NEEDS_RESTART: Mapping[str, str] = {
    "server.host": "the listening socket is opened once, at start",
    "server.port": "the listening socket is opened once, at start",
    "storage.url": "queued work (outbox, Google sync) lives in the database in use",
}


def changed_keys(old: Settings, new: Settings) -> list[str]:
    """The dotted keys whose values differ, sorted: a section's keys one by
    one (``server.head_timeout``, ``mail.imap.host``); a list (``resources``,
    ``users``, ``api_tokens``) or a section added or removed as a whole.
    Secrets are compared by value but never shown."""
    return sorted(_diff(old.model_dump(), new.model_dump(), ""))


def restart_reasons(old: Settings, new: Settings) -> list[str]:
    """Why ``new`` cannot replace ``old`` in place; empty if it can."""
    changed = set(changed_keys(old, new))
    return [
        f"{key} changed: {why}; restart the server to apply it"
        for key, why in NEEDS_RESTART.items()
        if key in changed
    ]


def _diff(old: Any, new: Any, path: str) -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        keys: list[str] = []
        for key in sorted(old.keys() | new.keys()):
            where = f"{path}.{key}" if path else str(key)
            if key not in old or key not in new:
                keys.append(where)
            else:
                keys.extend(_diff(old[key], new[key], where))
        return keys
    return [] if old == new else [path]
