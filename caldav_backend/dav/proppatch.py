"""PROPPATCH (RFC 4918 9.2): set or remove properties, all or nothing."""

from __future__ import annotations

from aiohttp import web
from lxml import etree

from .errors import DavError
from .multistatus import multistatus, status_line
from .resource import DavNode
from .xml import Element, dav, parse_body, sub


def _instructions(root: Element) -> dict[str, str | None]:
    """The set/remove instructions in document order; later ones win (9.2)."""
    changes: dict[str, str | None] = {}
    for instruction in root:
        if instruction.tag not in (dav("set"), dav("remove")):
            continue
        for prop in instruction:
            if prop.tag != dav("prop"):
                continue
            for item in prop:
                if not isinstance(item.tag, str):
                    continue
                if instruction.tag == dav("remove"):
                    changes[item.tag] = None
                elif len(item):
                    raise DavError(400, f"property {item.tag} must be text, not XML elements")
                else:
                    changes[item.tag] = (item.text or "").strip()
    return changes


async def proppatch(request: web.Request, node: DavNode) -> web.Response:
    root = parse_body(await request.read())
    if root is None or root.tag != dav("propertyupdate"):
        raise DavError(400, "expected a DAV:propertyupdate body")
    changes = _instructions(root)
    if not changes:
        raise DavError(400, "the propertyupdate sets or removes no property")
    if not node.may_write:
        raise DavError(403, "you may read this calendar but not change it", dav("need-privileges"))
    refused = [name for name in changes if name not in node.WRITABLE]
    response = etree.Element(dav("response"))
    sub(response, dav("href"), node.href)
    if refused:
        # Atomic (9.2): nothing is set, the others fail "by dependency".
        _propstat(response, refused, 403, dav("cannot-modify-protected-property"))
        _propstat(response, [n for n in changes if n not in refused], 424)
    else:
        await node.patch(changes)
        _propstat(response, list(changes), 200)
    return multistatus([response])


def _propstat(response: Element, names: list[str], code: int, error: str | None = None) -> None:
    if not names:
        return
    propstat = sub(response, dav("propstat"))
    prop = sub(propstat, dav("prop"))
    for name in names:
        sub(prop, name)
    sub(propstat, dav("status"), status_line(code))
    if error is not None:
        sub(sub(propstat, dav("error")), error)
