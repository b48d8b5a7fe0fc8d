"""A listing's responses made from templates (``ResponseFormatter``) are
byte for byte the responses built element by element (``node_response``),
for every kind of PROPFIND body, across pages, with texts needing escaping
and members whose properties the templates cannot carry."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from caldav_backend.caldav.tree import DavContext, ObjectNode
from caldav_backend.dav.errors import DavError
from caldav_backend.dav.multistatus import (
    PropRequest,
    ResponseFormatter,
    _inner,
    node_response,
)
from caldav_backend.dav.resource import DavNode, LiveProperty, PropValue
from caldav_backend.dav.xml import dav, parse_body
from gateway.core.model import Booking, CalendarObject, ObjectEntry, TimeSpan, etag_for
from gateway.core.query import DataRequest, QueriedObject
from gateway.ical.query import ICalQueryEngine
from gateway.web.auth import Principal

PROPS = (
    "getetag",
    "getcontenttype",
    "getlastmodified",
    "resourcetype",
    "displayname",
    "getcontentlength",
    "current-user-principal",
    "current-user-privilege-set",
    "owner",
    "principal-collection-set",
)


def _body(inner: str) -> bytes:
    return (
        '<D:propfind xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" '
        f'xmlns:X="http://example.com/x">{inner}</D:propfind>'
    ).encode()


REQUESTS = {
    "allprop": _body("<D:allprop/>"),
    "allprop+include": _body("<D:allprop/><D:include><C:schedule-tag/></D:include>"),
    "propname": _body("<D:propname/>"),
    "prop, usual": _body("<D:prop><D:getetag/><D:getcontenttype/><D:resourcetype/></D:prop>"),
    "prop, every": _body(
        "<D:prop>"
        + "".join(f"<D:{p}/>" for p in PROPS)
        + "<C:schedule-tag/><C:calendar-data/><X:unknown/><X:other/></D:prop>"
    ),
    "prop, unknown only": _body("<D:prop><X:unknown/><D:displayname/></D:prop>"),
    "empty body": b"",
}


class _Ctx:
    def __init__(self, writable: bool) -> None:
        access: dict[str, Any] = {"room": "read-write" if writable else "read"}
        self.principal = Principal("al&ce <x> {0}}", "user", access)


def _entries(count: int) -> list[ObjectEntry]:
    start = datetime(2026, 3, 1, 9, tzinfo=UTC)
    names = ["a&b <c>.ics", "quote\"'.ics", "ümlaut é.ics", "cr\r.ics", "x]]>y.ics"]
    return [
        ObjectEntry(
            href=names[i] if i < len(names) else f"event-{i}.ics",
            uid=f"uid-{i}",
            etag=f'"etag-{i}&<{i}>\r"' if i % 3 == 0 else f'"{i}"',
            updated_text=(start + timedelta(minutes=i)).isoformat(timespec="microseconds"),
            size=100 + i,
            revision=i,
            schedule_tag=f"tag-{i}" if i % 4 == 0 else "",
        )
        for i in range(count)
    ]


def _nodes(count: int, *, writable: bool = True) -> list[ObjectNode]:
    ctx = cast(DavContext, _Ctx(writable))
    return [ObjectNode(ctx, "room", entry) for entry in _entries(count)]


def _expected(nodes: Sequence[DavNode], wanted: PropRequest) -> bytes:
    return _inner([node_response(node, wanted) for node in nodes])


def _formatted(pages: Sequence[Sequence[DavNode]], wanted: PropRequest) -> bytes:
    formatter = ResponseFormatter(wanted)  # one per request, across its pages
    return b"".join(formatter.page(page) for page in pages)


def _wanted(body: bytes) -> PropRequest:
    return PropRequest.from_parent(parse_body(body))


@pytest.mark.parametrize("writable", [True, False])
@pytest.mark.parametrize("name", list(REQUESTS))
def test_listing_is_byte_for_byte_the_element_built_one(name: str, writable: bool) -> None:
    wanted = _wanted(REQUESTS[name])
    nodes = _nodes(1200, writable=writable)  # more than one page of the store
    pages = [nodes[:500], nodes[500:1000], nodes[1000:]]
    expected = _expected(nodes, wanted)
    assert _formatted(pages, wanted) == expected
    assert expected.count(b"<D:response>") == len(nodes)


class _QueryCtx(_Ctx):
    def __init__(self, writable: bool) -> None:
        super().__init__(writable)
        self.queries = ICalQueryEngine()


# Calendar data as a query answers it: CRLFs, characters XML escapes, and
# characters XML cannot carry in ASCII text (its own path through xml_safe)
# and beyond.
_DATA = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:{i}\r\n"
    "SUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)
_SUMMARIES = ["Cut", "a & b <c> ]]> d", "bell\x07 tab\t vt\x0b nul\x00", "Zoë ☕", "\ufffe\uffff x"]


def _objects(count: int) -> list[CalendarObject]:
    start = datetime(2026, 3, 1, 9, tzinfo=UTC)
    objects = []
    for i in range(count):
        at = start + timedelta(hours=i)
        booking = Booking(f"b{i}", "room", f"uid-{i}", "x", at, at, "UTC", start, at)
        ics = _DATA.format(i=i, summary=_SUMMARIES[i % len(_SUMMARIES)])
        span = TimeSpan(at, at + timedelta(hours=1))
        if i % 2:  # as a listing reads it: with the stored ETag
            obj = CalendarObject.stored(booking, ics, span, f"o{i}&.ics", "", etag_for(ics))
        else:
            obj = CalendarObject(booking, ics, span, f"o{i}.ics")
        objects.append(obj)
    return objects


QUERY = (
    b'<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
    b"<D:prop><D:getetag/><C:calendar-data/></D:prop></C:calendar-query>"
)


@pytest.mark.parametrize("writable", [True, False])
@pytest.mark.parametrize("body", [QUERY, REQUESTS["prop, every"], REQUESTS["allprop"]])
def test_query_answers_with_calendar_data_are_byte_for_byte_the_element_built_ones(
    body: bytes, writable: bool
) -> None:
    ctx = cast(DavContext, _QueryCtx(writable))
    wanted = _wanted(body)
    nodes = [ObjectNode(ctx, "room", obj, data_request=DataRequest()) for obj in _objects(40)]
    expected = _expected(nodes, wanted)
    assert _formatted([nodes[:7], nodes[7:]], wanted) == expected
    if body == QUERY:
        assert expected.count(b"&#13;") == 40 * 7  # every CR of every object
        assert b"\xef\xbf\xbd" in expected  # U+FFFD for what XML cannot carry
    # A calendar-query reads its objects as ``QueriedObject``: the same answer.
    queried = [
        ObjectNode(ctx, "room", QueriedObject.of(obj), data_request=DataRequest())
        for obj in _objects(40)
    ]
    assert _formatted([queried[:7], queried[7:]], wanted) == expected
    assert _expected(queried, wanted) == expected


class _Odd(DavNode):
    """A member whose own properties are sometimes no text: an element, an
    error, a character XML cannot carry."""

    PROPERTIES = {
        dav("getetag"): LiveProperty(lambda n: n.etag),
        dav("displayname"): LiveProperty(lambda n: n.name),
        dav("resourcetype"): LiveProperty(lambda n: [], shared=True),
        dav("owner"): LiveProperty(lambda n: "{0} }{", shared=True),  # str.format syntax
        dav("getcontentlength"): LiveProperty(lambda n: n.length()),
    }

    def __init__(self, i: int, name: str) -> None:
        super().__init__(f"/dav/calendars/room/{i}.ics")
        self.i = i
        self.etag = f'"{i}"'
        self.name = name
        self.reads = 0

    def length(self) -> PropValue:
        self.reads += 1  # an expansion may be behind it: read once
        if self.i % 5 == 1:
            raise DavError(507, "too large", dav("max"))
        if self.i % 5 == 2:
            return etree.Element(dav("href"))
        return str(self.i)

    def listing_key(self) -> object:
        return type(self)


@given(
    st.lists(st.text() | st.sampled_from(["a\r\nb", "&<>", "\x00\ud800", "\ue0001\ue001"])),
    st.sampled_from(list(REQUESTS)),
)
def test_any_text_and_odd_values_are_written_as_the_elements_write_them(
    names: list[str], request_name: str
) -> None:
    wanted = _wanted(REQUESTS[request_name])
    nodes = [_Odd(i, name) for i, name in enumerate(names)]
    expected = _expected(nodes, wanted)
    nodes = [_Odd(i, name) for i, name in enumerate(names)]
    assert _formatted([nodes[:3], nodes[3:]], wanted) == expected
    asked = wanted.kind == "allprop" or dav("getcontentlength") in wanted.names
    assert all(node.reads == asked for node in nodes)
