"""XML for WebDAV: safe parsing of request bodies and building answers.

Request bodies come from the network, so the parser resolves no entities,
loads no DTD, touches no network and refuses any document type declaration
outright (the "billion laughs" and external-entity attacks both need one).

Answers carry stored text (calendar data, names). Every text goes through
``text`` (also used by ``multistatus``): a character XML 1.0 cannot carry
(NUL, ESC, U+FFFE, a lone surrogate; inputs refuse them, but older data or a
hand-edited database may hold one) becomes U+FFFD in the answer, so one
object can never make a collection's reports fail. The stored object, and a
GET of it, keep the original bytes.
"""

from __future__ import annotations

from collections.abc import Iterable

from lxml import etree

from gateway.core.text import xml_safe

from .errors import DavError

DAV = "DAV:"

Element = etree._Element

# Prefixes used in answers; clients must not care, people reading logs do.
NSMAP: dict[str, str] = {
    "D": DAV,
    "C": "urn:ietf:params:xml:ns:caldav",
    "CS": "http://calendarserver.org/ns/",
    "ICAL": "http://apple.com/ns/ical/",
    "G": "urn:calgateway:",
}

_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_comments=True,
    remove_pis=True,
)


def clark(namespace: str, name: str) -> str:
    """``{namespace}name``: how lxml (and this package) names an element."""
    return f"{{{namespace}}}{name}"


def dav(name: str) -> str:
    return clark(DAV, name)


def parse_body(body: bytes) -> Element | None:
    """The root element of a request body, or None for an empty body.

    Raises ``DavError`` 400 naming what is wrong with malformed XML."""
    if not body.strip():
        return None
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise DavError(400, "document type declarations are not allowed in request bodies")
    try:
        root = etree.fromstring(body, parser=_PARSER)
    except etree.XMLSyntaxError as exc:
        raise DavError(400, f"the request body is not well-formed XML: {exc}") from None
    return root


def text(node: Element, value: str) -> None:
    """Set the text of ``node`` to ``value``, with each character XML cannot
    carry replaced by U+FFFD (lxml would raise, and the answer be a 500)."""
    node.text = xml_safe(value)


def element(tag: str, value: str | None = None, children: Iterable[Element] = ()) -> Element:
    node = etree.Element(tag, nsmap=None)
    if value is not None:
        text(node, value)
    node.extend(children)
    return node


def sub(parent: Element, tag: str, value: str | None = None) -> Element:
    node = etree.SubElement(parent, tag)
    if value is not None:
        text(node, value)
    return node


def new_root(tag: str) -> Element:
    """A document root declaring the usual prefixes once."""
    return etree.Element(tag, nsmap=NSMAP)


def serialize(root: Element) -> bytes:
    return bytes(etree.tostring(root, xml_declaration=True, encoding="utf-8"))


def children_named(parent: Element, tag: str) -> list[Element]:
    return [child for child in parent if child.tag == tag]


def child_named(parent: Element, tag: str) -> Element | None:
    for child in parent:
        if child.tag == tag:
            return child
    return None
