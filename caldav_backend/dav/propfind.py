"""PROPFIND (RFC 4918 9.1): properties of a resource and, at Depth 1, of its
members."""

from __future__ import annotations

from aiohttp import web

from .errors import DavError
from .multistatus import (
    PropRequest,
    depth,
    multistatus,
    node_response,
    page_responses,
    stream_multistatus,
)
from .resource import DavNode
from .xml import dav, parse_body


async def propfind(request: web.Request, node: DavNode) -> web.StreamResponse:
    # RFC 4918 10.2 makes a missing Depth mean infinity; clients that leave it
    # out mean the resource itself, and so does Radicale, so 0 it is.
    level = depth(request, default="0")
    if level == "infinity":
        # RFC 4918 9.1: servers may refuse; a calendar tree is two levels deep.
        raise DavError(403, "Depth: infinity is not supported", dav("propfind-finite-depth"))
    root = parse_body(await request.read())
    if root is not None and root.tag != dav("propfind"):
        raise DavError(400, f"expected a DAV:propfind body, got {root.tag}")
    wanted = PropRequest.from_parent(root)
    own = node_response(node, wanted)
    if level == "0":
        return multistatus([own])
    return await stream_multistatus(request, [own], page_responses(node.member_pages(), wanted))
