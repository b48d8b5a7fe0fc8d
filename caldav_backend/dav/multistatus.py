"""Building ``DAV:multistatus`` answers (RFC 4918 13): one ``DAV:response``
per resource, its properties grouped into one ``propstat`` per status."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Literal

from aiohttp import web
from lxml import etree

from .errors import DavError
from .resource import DavNode, PropValue
from .xml import Element, children_named, dav, new_root, serialize, sub


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


def _fill(prop: Element, value: PropValue) -> None:
    if isinstance(value, str):
        prop.text = value
    elif isinstance(value, etree._Element):
        prop.append(value)
    elif value is not None:
        prop.extend(value)


def _propstat(response: Element, code: int, props: Sequence[tuple[str, PropValue]]) -> None:
    propstat = sub(response, dav("propstat"))
    prop = sub(propstat, dav("prop"))
    for name, value in props:
        _fill(sub(prop, name), value)
    sub(propstat, dav("status"), status_line(code))


def node_response(node: DavNode, request: PropRequest) -> Element:
    """The ``DAV:response`` for one resource."""
    response = etree.Element(dav("response"))
    sub(response, dav("href"), node.href)
    if request.kind == "propname":
        _propstat(response, 200, [(name, None) for name in node.PROPERTIES])
        return response
    names = request.names
    if request.kind == "allprop":
        names = tuple(dict.fromkeys([*node.allprop_names(), *names]))
    found: list[tuple[str, PropValue]] = []
    missing: list[tuple[str, PropValue]] = []
    for name in names:
        value = node.property(name)
        if value is None:
            missing.append((name, None))
        else:
            found.append((name, value))
    if found:
        _propstat(response, 200, found)
    if missing and request.kind == "prop":  # allprop does not report absent ones
        _propstat(response, 404, missing)
    if not found and not (missing and request.kind == "prop"):
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
    return web.Response(
        status=207, body=serialize(root), content_type="application/xml", charset="utf-8"
    )


def depth(request: web.Request, *, default: str) -> str:
    """The Depth header (RFC 4918 10.2) as "0", "1" or "infinity"."""
    value = request.headers.get("Depth", default).strip().lower()
    if value not in ("0", "1", "infinity"):
        raise DavError(400, f"Depth must be 0, 1 or infinity, not {value!r}")
    return value
