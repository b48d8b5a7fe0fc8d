"""WebDAV errors: a status, a message for people and, where a protocol rule
was broken, the precondition element that names it (RFC 4918 16)."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web
from lxml import etree

from gateway.core.errors import StorageFull
from gateway.core.text import xml_safe
from gateway.web.responses import reason_phrase

_DAV_ERROR = "{DAV:}error"
_DAV_HREF = "{DAV:}href"
# Extension element for the human-readable reason (RFC 4918 16 lets error
# bodies carry elements of other namespaces).
MESSAGE = "{urn:calgateway:}message"


class DavError(Exception):
    """Answered as ``status`` with a ``DAV:error`` body.

    ``condition`` is the Clark name of the pre/postcondition element (for
    example ``{urn:ietf:params:xml:ns:caldav}valid-calendar-data``); ``hrefs``
    go inside it where the rule names resources (``no-uid-conflict``).
    ``reason`` replaces the status line's standard reason phrase for clients
    that show nothing else (``gateway.web.responses``); it must be built
    from nothing the client sent, and is cut to one short ASCII line."""

    def __init__(
        self,
        status: int,
        message: str,
        condition: str | None = None,
        *,
        hrefs: tuple[str, ...] = (),
        headers: Mapping[str, str] | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.condition = condition
        self.hrefs = hrefs
        self.headers = dict(headers or {})
        self.reason = reason

    def response(self) -> web.Response:
        root = etree.Element(_DAV_ERROR, nsmap={"D": "DAV:", "G": "urn:calgateway:"})
        if self.condition is not None:
            condition = etree.SubElement(root, self.condition)
            for href in self.hrefs:
                etree.SubElement(condition, _DAV_HREF).text = xml_safe(href)
        # Messages may quote what the client sent (a decoded body, a name).
        etree.SubElement(root, MESSAGE).text = xml_safe(self.message)
        return web.Response(
            status=self.status,
            reason=None if self.reason is None else reason_phrase(self.reason),
            body=etree.tostring(root, xml_declaration=True, encoding="utf-8"),
            content_type="application/xml",
            charset="utf-8",
            headers=self.headers,
        )


def insufficient_storage(full: StorageFull) -> DavError:
    """507 Insufficient Storage (RFC 4918 11.5) with RFC 4331 6's
    ``DAV:sufficient-disk-space`` precondition: the server cannot store the
    change now; nothing was stored."""
    return DavError(
        507,
        full.message,
        "{DAV:}sufficient-disk-space",
        headers={"Retry-After": str(full.retry_after)},
    )
