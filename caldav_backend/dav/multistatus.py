"""Building ``DAV:multistatus`` answers (RFC 4918 13): one ``DAV:response``
per resource, its properties grouped into one ``propstat`` per status."""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import AsyncGenerator, Callable, Iterable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Literal

from aiohttp import web
from lxml import etree

from gateway.core.text import xml_safe
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


def _names(node: DavNode, request: PropRequest) -> tuple[str, ...]:
    """The properties a response to ``request`` reports for ``node``."""
    if request.kind == "propname":
        return tuple(node.PROPERTIES)
    if request.kind == "allprop":
        return tuple(dict.fromkeys([*node.allprop_names(), *request.names]))
    return request.names


def node_response(node: DavNode, request: PropRequest) -> Element:
    """The ``DAV:response`` for one resource."""
    return _response(node.href, request, _names(node, request), node.property)


def _response(
    href: str, request: PropRequest, names: Sequence[str], lookup: Callable[[str], PropValue]
) -> Element:
    response = etree.Element(_RESPONSE)
    sub(response, _HREF, href)
    if request.kind == "propname":
        _propstat(response, 200, [(name, None) for name in names])
        return response
    found: list[tuple[str, PropValue]] = []
    missing: list[tuple[str, PropValue]] = []
    failed: list[tuple[str, DavError]] = []
    for name in names:
        try:
            value = lookup(name)
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


def response_text(response: Element) -> str:
    """A ``DAV:response`` serialized as ``ResponseFormatter.text`` gives one."""
    return _inner([response]).decode("utf-8")


# Private-use characters around a slot number: a template's slots, found by
# splitting its serialization (a template whose constant parts hold one
# too is not used).
_SLOT = re.compile("\ue000([0-9]+)\ue001")


def _mark(slot: int) -> str:
    return f"\ue000{slot}\ue001"


def _escaped(value: str) -> str:
    """``value`` as an element's text in a serialized answer, written as
    lxml writes it: through ``xml_safe`` (as ``text`` does), with &, <, >
    and CR escaped."""
    safe = xml_safe(value)
    # One replace per character present, & first: calendar data always
    # holds CRs and seldom the others.
    if "&" in safe:
        safe = safe.replace("&", "&amp;")
    if "<" in safe:
        safe = safe.replace("<", "&lt;")
    if ">" in safe:
        safe = safe.replace(">", "&gt;")
    if "\r" in safe:
        safe = safe.replace("\r", "&#13;")
    return safe


# A template not made yet (None is one that cannot be: built on its own).
_UNMADE = "\ue000unmade"


@dataclass(frozen=True, slots=True)
class _Plan:
    """What ``ResponseFormatter`` reports for one class of node."""

    names: tuple[str, ...]  # the properties reported
    own: tuple[str, ...]  # those whose value is the member's own
    getters: tuple[Callable[[DavNode], PropValue], ...]  # of ``own``, in order


class ResponseFormatter:
    """The serialized ``DAV:response`` of each node of a listing, for one
    request: the same bytes as ``node_response`` serialized, made from a
    template per kind of member (the properties asked, which of the
    member's own are absent, the shared ones' values) instead of a tree of
    elements per member. A member whose own properties are not all text or
    absent (an element, an error) is answered by ``node_response``."""

    def __init__(self, request: PropRequest) -> None:
        self.request = request
        # Per node class: the names reported, which are the member's own, and
        # their getters (the class's table: ``DavNode.property`` without a
        # lookup per member).
        self._plans: dict[type[DavNode], _Plan] = {}
        # str.format patterns (None: this kind of member is built on its own).
        self._templates: dict[tuple[object, ...], str | None] = {}

    def page(self, nodes: Iterable[DavNode]) -> bytes:
        return "".join([self.text(node) for node in nodes]).encode("utf-8")

    def text(self, node: DavNode) -> str:
        """The serialized response of ``node`` (join several, then encode
        them as UTF-8)."""
        key = node.listing_key()
        if key is None:
            return response_text(node_response(node, self.request))
        plan = self._plans.get(type(node)) or self._plan(node)
        texts = [_escaped(node.href)]
        shape: list[object] = [key]
        values: list[PropValue] = []
        for get in plan.getters:
            try:
                value = get(node)
            except DavError as error:
                return self._built(node, plan, values, error)
            values.append(value)
            if value is None:
                shape.append(False)
            elif isinstance(value, str):
                shape.append(True)
                texts.append(_escaped(value))
            else:
                return self._built(node, plan, values)
        template_key = tuple(shape)
        template = self._templates.get(template_key, _UNMADE)
        if template is _UNMADE:
            template = self._template(node, plan.names, plan.own, shape[1:])
            self._templates[template_key] = template
        if template is None:
            return self._built(node, plan, values)
        return template.format(*texts)

    def _built(
        self,
        node: DavNode,
        plan: _Plan,
        values: Sequence[PropValue],
        error: DavError | None = None,
    ) -> str:
        """``node``'s response built element by element, reusing the values
        already read (a calendar-data may have cost an expansion), in the
        order of ``plan.own``; ``error`` is what reading the next one raised."""
        read: dict[str, PropValue | DavError] = dict(zip(plan.own, values, strict=False))
        if error is not None:
            read[plan.own[len(values)]] = error

        def lookup(name: str) -> PropValue:
            if name not in read:
                return node.property(name)
            value = read[name]
            if isinstance(value, DavError):
                raise value
            return value

        return response_text(_response(node.href, self.request, plan.names, lookup))

    def _plan(self, node: DavNode) -> _Plan:
        names = _names(node, self.request)
        own: tuple[str, ...] = ()
        table = node.PROPERTIES
        if self.request.kind != "propname":  # no values: nothing of its own
            own = tuple(n for n in names if n in table and not table[n].shared)
        plan = _Plan(names, own, tuple(table[n].get for n in own))
        self._plans[type(node)] = plan
        return plan

    def _template(
        self, node: DavNode, names: Sequence[str], own: Sequence[str], present: Sequence[object]
    ) -> str | None:
        slot_of: dict[str, int] = {}
        for name, there in zip(own, present, strict=True):
            if there:
                slot_of[name] = len(slot_of) + 1

        def lookup(name: str) -> PropValue:
            if name in slot_of:
                return _mark(slot_of[name])
            return None if name in own else node.property(name)

        text = _inner([_response(_mark(0), self.request, names, lookup)]).decode("utf-8")
        pieces = _SLOT.split(text)
        if sorted(int(slot) for slot in pieces[1::2]) != list(range(len(slot_of) + 1)):
            return None
        # A str.format pattern: the constant parts' braces doubled, each slot
        # "{n}" (the escaped href, then the member's own texts in order).
        for i in range(0, len(pieces), 2):
            pieces[i] = pieces[i].replace("{", "{{").replace("}", "}}")
        for i in range(1, len(pieces), 2):
            pieces[i] = f"{{{pieces[i]}}}"
        return "".join(pieces)


Page = Sequence[Element] | bytes
"""A page of a streamed multistatus: responses, or responses serialized
(``ResponseFormatter``)."""


def _page_bytes(page: Page) -> bytes:
    return page if isinstance(page, bytes) else _inner(page)


async def stream_multistatus(
    request: web.Request,
    first: Sequence[Element],
    pages: AsyncGenerator[Page],
    tail: Sequence[Element] = (),
) -> web.StreamResponse:
    """A multistatus of ``first``, every page's responses and ``tail``, sent
    a page at a time: a listing of a big calendar never sits in memory whole.
    The first page is read before the status line goes out, so a failure
    there still gets a proper error answer; a later one can only cut the
    connection (the 207 is already on its way)."""
    async with aclosing(pages):
        page: Page
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
            await _send(response, _HEAD + _inner(first) + _page_bytes(page), deadline)
            async for page in pages:
                await _send(response, _page_bytes(page), deadline)
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
) -> AsyncGenerator[bytes]:
    """The ``DAV:response`` of each node, serialized page by page."""
    formatter = ResponseFormatter(wanted)
    async with aclosing(pages):
        async for page in pages:
            yield formatter.page(page)


def depth(request: web.Request, *, default: str) -> str:
    """The Depth header (RFC 4918 10.2) as "0", "1" or "infinity"."""
    value = request.headers.get("Depth", default).strip().lower()
    if value not in ("0", "1", "infinity"):
        raise DavError(400, f"Depth must be 0, 1 or infinity, not {value!r}")
    return value
