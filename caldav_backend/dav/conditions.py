"""Conditional request headers (RFC 9110 13.1.1 If-Match, 13.1.2 If-None-Match,
RFC 6638 8.3 If-Schedule-Tag-Match)."""

from __future__ import annotations

import re

from multidict import CIMultiDictProxy

from gateway.core.model import ANY_ENTITY, Precondition

from .errors import DavError

# RFC 9110 8.8.3: entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE
_TAG = re.compile(r'\s*((?:W/)?"[\x21\x23-\x7e\x80-\xff]*")\s*(?:,|$)')


def _tags(header: str, name: str) -> frozenset[str]:
    if header.strip() == "*":
        return frozenset({ANY_ENTITY})
    tags: list[str] = []
    position = 0
    while position < len(header):
        found = _TAG.match(header, position)
        if found is None:
            raise DavError(400, f"{name}: not a list of entity tags or '*': {header!r}")
        tags.append(found.group(1))
        position = found.end()
    if not tags:
        raise DavError(400, f"{name}: empty header")
    return frozenset(tags)


def _schedule_tag(headers: CIMultiDictProxy[str]) -> str | None:
    """RFC 6638 8.3: If-Schedule-Tag-Match names exactly one schedule tag
    (a quoted string; no "*", no list)."""
    given = headers.getall("If-Schedule-Tag-Match", [])
    if not given:
        return None
    tags = _tags(", ".join(given), "If-Schedule-Tag-Match")
    (tag,) = tags if len(tags) == 1 else (ANY_ENTITY,)
    if tag == ANY_ENTITY or tag.startswith("W/"):
        raise DavError(
            400,
            f"If-Schedule-Tag-Match: one schedule tag in double quotes is needed, "
            f"as the Schedule-Tag header gave it: {', '.join(given)!r}",
        )
    return tag


def precondition_from(headers: CIMultiDictProxy[str]) -> Precondition:
    """If-Match / If-None-Match / If-Schedule-Tag-Match as a ``Precondition``
    (repeated headers join)."""
    values: dict[str, frozenset[str] | None] = {}
    for name in ("If-Match", "If-None-Match"):
        given = headers.getall(name, [])
        values[name] = _tags(", ".join(given), name) if given else None
    return Precondition(
        if_match=values["If-Match"],
        if_none_match=values["If-None-Match"],
        if_schedule_tag_match=_schedule_tag(headers),
    )
