"""Building ``DAV:multistatus`` answers (RFC 4918 13): one ``DAV:response``
per resource, its properties grouped into one ``propstat`` per status."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncGenerator, Iterable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Literal

from aiohttp import web
from lxml import etree

from gateway.web.responses import ReleasingResponse

from .errors import DavError
from .resource import DavNode, PropValue
from .xml import Element, children_named, dav, new_root, serialize, sub, text


@functools.cache  # a handful of codes, one per propstat of every listed member
def status_line(code: int) -> str:
    return f"HTTP/1.1 {code} {HTTPStatus(code).phrase}"


@dataclass(frozen=True, slots=True)
class PropRequest:
    """Which properties a PROPFIND or REPORT asks for (RFC 4918 14.20, 14.2, 14.18).

    ``requested`` keeps the request's own elements: some carry parameters
    (CALDAV:calendar-data with expand, RFC 4791 9.6)."""

    kind: Literal["prop", "allprop", "propname"]
    names: tuple[str, ...] = ()
    requested: dict[str, Element] = field(default_factory=dict)

    @classmethod
    def from_parent(cls, parent: Element | None) -> PropRequest:
        """Read ``prop`` / ``allprop`` (+ ``include``) / ``propname`` among the
        children of ``parent`` (a PROPFIND or REPORT root); none means allprop."""
        if parent is None:
            return cls("allprop")
        if len(children_named(parent, dav("propname"))):
            return cls("propname")
        prop = children_named(parent, dav("prop"))
        if prop:
            requested = {child.tag: child for child in prop[0] if isinstance(child.tag, str)}
            return cls("prop", tuple(requested), requested)
        include = children_named(parent, dav("include"))
        extra = tuple(c.tag for c in include[0] if isinstance(c.tag, str)) if include else ()
        return cls("allprop", extra)


# Built once: a listing makes a response, a propstat, a prop and a status for
# each of thousands of members.
_RESPONSE = dav("response")
_HREF = dav("href")
_PROPSTAT = dav("propstat")
_PROP = dav("prop")
_STATUS = dav("status")
_SubElement = etree.SubElement


def _fill(prop: Element, value: PropValue) -> None:
    if isinstance(value, str):
        text(prop, value)  # calendar-data: stored text, maybe not XML-safe
    elif isinstance(value, etree._Element):
        prop.append(value)
    elif value is not None:
        prop.extend(value)


def _propstat(response: Element, code: int, props: Sequence[tuple[str, PropValue]]) -> None:
    propstat = _SubElement(response, _PROPSTAT)
    prop = _SubElement(propstat, _PROP)
    for name, value in props:
        _fill(_SubElement(prop, name), value)
    # A status line is ASCII made here: no character to replace.
    _SubElement(propstat, _STATUS).text = status_line(code)


def node_response(node: DavNode, request: PropRequest) -> Element:
    """The ``DAV:response`` for one resource."""
    response = etree.Element(_RESPONSE)
    sub(response, _HREF, node.href)
    if request.kind == "propname":
        _propstat(response, 200, [(name, None) for name in node.PROPERTIES])
        return response
    names = request.names
    if request.kind == "allprop":
        names = tuple(dict.fromkeys([*node.allprop_names(), *names]))
    found: list[tuple[str, PropValue]] = []
    missing: list[tuple[str, PropValue]] = []
    failed: list[tuple[str, DavError]] = []
    for name in names:
        try:
            value = node.property(name)
        except DavError as error:
            # One property this resource cannot give (a recurring object too
            # large to expand): its own propstat with the status and reason
            # (RFC 4918 9.1, 14.22), the other properties as usual.
            failed.append((name, error))
            continue
        if value is None:
            missing.append((name, None))
        else:
            found.append((name, value))
    if found:
        _propstat(response, 200, found)
    if missing and request.kind == "prop":  # allprop does not report absent ones
        _propstat(response, 404, missing)
    for name, problem in failed:
        _propstat(response, problem.status, [(name, None)])
        if problem.condition is not None:
            sub(sub(response[-1], dav("error")), problem.condition)
        sub(response[-1], dav("responsedescription"), problem.message)
    if not found and not failed and not (missing and request.kind == "prop"):
        # RFC 4918 14.24: a response has a status or at least one propstat.
        _propstat(response, 200, [])
    return response


def status_response(href: str, code: int) -> Element:
    """A member answered with a status only (a 404 for a missing href)."""
    response = etree.Element(dav("response"))
    sub(response, dav("href"), href)
    sub(response, dav("status"), status_line(code))
    return response


def multistatus(responses: Iterable[Element], *tail: Element) -> web.Response:
    root = new_root(dav("multistatus"))
    root.extend(responses)
    root.extend(tail)
    return ReleasingResponse(
        status=207, body=serialize(root), content_type="application/xml", charset="utf-8"
    )


def _split_root() -> tuple[bytes, bytes]:
    """What precedes and what follows the responses in a serialized
    multistatus: the declaration and root start tag, and the end tag."""
    root = new_root(dav("multistatus"))
    sub(root, dav("response"))
    text = serialize(root)
    child = text.index(b"<", text.index(b"<D:multistatus") + 1)
    end = text.rindex(b"</")
    return text[:child], text[end:]


_HEAD, _TAIL = _split_root()

# Seconds a client gets to take one page of a streamed multistatus (a few
# hundred kilobytes at most), and the whole answer: while it is sent, the
# listing holds a database snapshot and a heavy-request slot that others
# need, so a reader that trickles (a page just inside the limit each time)
# must not hold them for pages x PAGE_SEND_TIMEOUT either. Ten minutes is
# 3 MB (10,000 events) at 40 kbit/s.
PAGE_SEND_TIMEOUT = 60.0
STREAM_TIMEOUT = 600.0


def _inner(responses: Iterable[Element]) -> bytes:
    """The responses serialized as they read inside a multistatus (the
    prefixes declared once on the root), without the root's tags."""
    holder = new_root(dav("multistatus"))
    holder.extend(responses)
    if not len(holder):
        return b""
    text = serialize(holder)
    return text[len(_HEAD) : -len(_TAIL)]


async def stream_multistatus(
    request: web.Request,
    first: Sequence[Element],
    pages: AsyncGenerator[Sequence[Element]],
    tail: Sequence[Element] = (),
) -> web.StreamResponse:
    """A multistatus of ``first``, every page's responses and ``tail``, sent
    a page at a time: a listing of a big calendar never sits in memory whole.
    The first page is read before the status line goes out, so a failure
    there still gets a proper error answer; a later one can only cut the
    connection (the 207 is already on its way)."""
    async with aclosing(pages):
        page: Sequence[Element]
        try:
            # Not anext(pages, ()): its default trips a CPython 3.11 bug
            # (SystemError) when the generator ends at once.
            page = await anext(pages)
        except StopAsyncIteration:
            page = ()
        response = web.StreamResponse(status=207)
        response.content_type = "application/xml"
        response.charset = "utf-8"
        await response.prepare(request)
        deadline = asyncio.get_running_loop().time() + STREAM_TIMEOUT
        try:
            await _send(response, _HEAD + _inner([*first, *page]), deadline)
            async for page in pages:
                await _send(response, _inner(page), deadline)
        except DavError as error:
            # Too late for an error answer: re-raised as a plain error, aiohttp
            # logs it and cuts the connection, so the client sees a broken
            # listing rather than a short one that looks whole.
            raise RuntimeError(f"multistatus cut short: {error.message}") from error
        # write_eof also waits for the client to take what it writes.
        await _send(response, _inner(tail) + _TAIL, deadline, last=True)
    return response


async def _send(
    response: web.StreamResponse, data: bytes, deadline: float, *, last: bool = False
) -> None:
    """Write one page (``last``: and end the answer); a client that takes
    longer than ``PAGE_SEND_TIMEOUT`` to take it, or is not done by
    ``deadline``, is cut off."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout_at(min(loop.time() + PAGE_SEND_TIMEOUT, deadline)):
            if last:
                await response.write_eof(data)
            else:
                await response.write(data)
    except TimeoutError:
        raise ConnectionResetError(
            f"the client did not take a page within {PAGE_SEND_TIMEOUT:g} s, "
            f"or the whole answer within {STREAM_TIMEOUT:g} s"
        ) from None


async def page_responses(
    pages: AsyncGenerator[Sequence[DavNode]], wanted: PropRequest
) -> AsyncGenerator[list[Element]]:
    """The ``DAV:response`` of each node, page by page."""
    async with aclosing(pages):
        async for page in pages:
            yield [node_response(node, wanted) for node in page]


def depth(request: web.Request, *, default: str) -> str:
    """The Depth header (RFC 4918 10.2) as "0", "1" or "infinity"."""
    value = request.headers.get("Depth", default).strip().lower()
    if value not in ("0", "1", "infinity"):
        raise DavError(400, f"Depth must be 0, 1 or infinity, not {value!r}")
    return value
