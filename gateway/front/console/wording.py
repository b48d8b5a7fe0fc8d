"""How the console words what it shows (pure): the age of a sync, the
mirror's direction and details, and the settings as key paths with their
values, secrets masked.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from enum import Enum

from pydantic import BaseModel, SecretBytes, SecretStr

MASK = "•••••• (secret, not shown)"
# Values that are credentials although their type is a plain string.
_SECRET_KEYS = frozenset({"password_hash"})

DIRECTIONS = {
    "off": "Off: nothing is mirrored",
    "to_google": "One way: gateway to Google",
    "from_google": "One way: Google to gateway (busy times only)",
    "two_way": "Both ways",
}
DETAILS = {
    "full": "Full details (title, description, location, guests)",
    "anonymous": "Anonymous (only the time, shown as Busy)",
}


def age_text(then: datetime | None, now: datetime) -> str:
    """How long ago, in words: "never", "just now", "5 minutes ago",
    "3 hours ago", "2 days ago" (rounded down; a time ahead of ``now`` --
    another replica's clock -- counts as just now)."""
    if then is None:
        return "never"
    age = now - then
    if age < timedelta(minutes=1):
        return "just now"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        count = int(age.total_seconds() // size)
        if count >= 1:
            return f"{count} {unit}{'' if count == 1 else 's'} ago"
    return "just now"  # pragma: no cover - the first branch took it


def utc_text(at: datetime | None) -> str:
    if at is None:
        return ""
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def settings_rows(settings: BaseModel) -> list[tuple[str, str]]:
    """Every setting as (key path, value as shown), in the models' order:
    ``server.port``, ``resources[0].feed_tokens[1]``, ... Secrets (secret
    types, password hashes) are masked; an empty list or section shows as
    such."""
    return list(_rows("", settings))


def _rows(path: str, value: object) -> Iterator[tuple[str, str]]:
    if isinstance(value, SecretStr | SecretBytes):
        yield path, MASK
    elif isinstance(value, BaseModel):
        names = type(value).model_fields
        if not names:
            yield path, "{}"
        for name in names:
            child = f"{path}.{name}" if path else name
            if name in _SECRET_KEYS and getattr(value, name) is not None:
                yield child, MASK
            else:
                yield from _rows(child, getattr(value, name))
    elif isinstance(value, list | tuple):
        if not value:
            yield path, "[] (none)"
        for index, item in enumerate(value):
            yield from _rows(f"{path}[{index}]", item)
    elif isinstance(value, dict):
        if not value:
            yield path, "{} (none)"
        for key, item in value.items():
            yield from _rows(f"{path}.{key}", item)
    else:
        yield path, _scalar(value)


def _scalar(value: object) -> str:
    if value is None:
        return "not set"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, timedelta):
        return f"{value.total_seconds():g} seconds"
    return str(value)
