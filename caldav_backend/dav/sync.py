"""The sync-collection REPORT (RFC 6578), independent of what is synced.

A collection that supports it implements ``SyncSource``: it turns the
client's token into "what changed since", and this module reads the request
and writes the answer."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from .errors import DavError
from .multistatus import (
    PropRequest,
    multistatus,
    node_response,
    page_responses,
    status_response,
    stream_multistatus,
)
from .resource import DavNode
from .xml import Element, child_named, dav, element


@dataclass(frozen=True, slots=True)
class SyncRequest:
    token: str  # "" for the initial sync (3.4)
    limit: int | None  # DAV:limit/DAV:nresults (3.7)
    props: PropRequest


@dataclass(frozen=True, slots=True)
class SyncResult:
    changed: Sequence[DavNode]  # members created or changed, with properties
    removed: Sequence[str]  # hrefs of members gone (answered 404, 3.5.2)
    token: str  # the new token
    truncated: bool = False  # the limit cut the answer short (3.6)
    # More changed members, read while the answer is sent: an initial sync
    # of a big collection lists it page by page instead of all at once.
    more: AsyncGenerator[Sequence[DavNode]] | None = None


class SyncSource(Protocol):
    href: str

    async def sync(self, request: SyncRequest) -> SyncResult:
        """Raise ``DavError`` 403 ``valid-sync-token`` for a token this
        collection did not issue or can no longer serve (3.2)."""
        ...


def invalid_token(token: str) -> DavError:
    return DavError(
        403,
        f"the sync token {token!r} is not valid for this collection; sync again from scratch",
        dav("valid-sync-token"),
    )


def parse_sync_request(root: Element) -> SyncRequest:
    token_element = child_named(root, dav("sync-token"))
    token = (token_element.text or "").strip() if token_element is not None else ""
    level = child_named(root, dav("sync-level"))
    if level is None or (level.text or "").strip() not in ("1", "infinite"):
        raise DavError(400, "sync-collection needs DAV:sync-level 1 or infinite")
    # "infinite" on a calendar equals "1": calendars hold no collections.
    limit = None
    limit_element = child_named(root, dav("limit"))
    if limit_element is not None:
        nresults = child_named(limit_element, dav("nresults"))
        text = (nresults.text or "").strip() if nresults is not None else ""
        if not text.isdigit() or int(text) < 1:
            raise DavError(400, "DAV:limit needs DAV:nresults, a positive whole number")
        limit = int(text)
    return SyncRequest(token=token, limit=limit, props=PropRequest.from_parent(root))


async def sync_collection(
    request: web.Request, root: Element, source: SyncSource
) -> web.StreamResponse:
    wanted = parse_sync_request(root)
    result = await source.sync(wanted)
    responses = [node_response(node, wanted.props) for node in result.changed]
    responses.extend(status_response(href, 404) for href in result.removed)
    if result.truncated:
        # 3.6: the request-URI answered 507 says "more to come with the new token".
        responses.append(status_response(source.href, 507))
    token = element(dav("sync-token"), result.token)
    if result.more is None:
        return multistatus(responses, token)
    more = page_responses(result.more, wanted.props)
    return await stream_multistatus(request, responses, more, [token])
