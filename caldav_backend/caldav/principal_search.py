"""principal-property-search and principal-search-property-set (RFC 3744
9.4, 9.5): how clients (Apple's among them) look for principals by name.

A caller sees one principal here, its own (``tree.PrincipalNode``): the
search runs over that, and answers a multistatus of the principals that
match (none is a 207 with no response, as Radicale answers). The one
searchable property is DAV:displayname; a principal's
CALDAV:calendar-user-address-set is its own URL (users have no e-mail
address in the config), so there is no address to search for.
A property-search on a property that cannot be searched matches nothing.

Matching is the caseless substring match RFC 3744 9.4 asks for;
``test="anyof"`` needs one property-search to match, the default (allof)
all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web

from caldav_backend.dav.errors import DavError
from caldav_backend.dav.multistatus import PropRequest, multistatus, node_response
from caldav_backend.dav.resource import DavNode
from caldav_backend.dav.xml import Element, children_named, dav, element, new_root, serialize

from .names import DISPLAYNAME
from .tree import PrincipalNode, PrincipalsNode

# Searchable properties and how principal-search-property-set describes them.
SEARCHABLE = {DISPLAYNAME: "Display name"}


@dataclass(frozen=True, slots=True)
class PropertySearch:
    """One DAV:property-search: these properties, this text."""

    names: tuple[str, ...]
    match: str


def parse_searches(root: Element) -> tuple[list[PropertySearch], bool]:
    """The property-searches of a principal-property-search body, and whether
    any of them suffices (``test="anyof"``); 400 naming what is missing."""
    searches = []
    for search in children_named(root, dav("property-search")):
        props = children_named(search, dav("prop"))
        matches = children_named(search, dav("match"))
        if not props or not matches:
            raise DavError(400, "each DAV:property-search needs a DAV:prop and a DAV:match")
        names = tuple(child.tag for child in props[0] if isinstance(child.tag, str))
        searches.append(PropertySearch(names, matches[0].text or ""))
    if not searches:
        raise DavError(400, "principal-property-search needs at least one DAV:property-search")
    test = (root.get("test") or "allof").strip().lower()
    if test not in ("allof", "anyof"):
        raise DavError(400, f'test must be "allof" or "anyof", not {test!r}')
    return searches, test == "anyof"


def matches(node: DavNode, searches: Sequence[PropertySearch], anyof: bool) -> bool:
    """Whether ``node`` answers the searches (RFC 3744 9.4: caseless
    substring; a search over several properties matches if one does)."""

    def one(search: PropertySearch) -> bool:
        wanted = search.match.casefold()
        for name in search.names:
            value = node.property(name) if name in SEARCHABLE else None
            if isinstance(value, str) and wanted in value.casefold():
                return True
        return False

    results = [one(search) for search in searches]
    return any(results) if anyof else all(results)


def _principals(node: DavNode) -> list[DavNode]:
    if isinstance(node, PrincipalsNode | PrincipalNode):
        return [PrincipalNode(node.ctx)]
    raise DavError(
        403,
        "principal reports are answered on the principals collection or a principal",
        dav("supported-report"),
    )


async def principal_property_search(
    request: web.Request, node: DavNode, root: Element
) -> web.StreamResponse:
    searches, anyof = parse_searches(root)
    wanted = PropRequest.from_parent(root)
    found = [p for p in _principals(node) if matches(p, searches, anyof)]
    return multistatus(node_response(p, wanted) for p in found)


async def principal_search_property_set(
    request: web.Request, node: DavNode, root: Element
) -> web.StreamResponse:
    _principals(node)
    answer = new_root(dav("principal-search-property-set"))
    for name, description in SEARCHABLE.items():
        answer.append(
            element(
                dav("principal-search-property"),
                children=[
                    element(dav("prop"), children=[element(name)]),
                    element(dav("description"), description),
                ],
            )
        )
    return web.Response(body=serialize(answer), content_type="application/xml", charset="utf-8")
