"""Reading an iCalendar request body (a PUT's object, a schedule-outbox
POST's request): its media type, its charset, and the characters XML could
not carry, each refused with its RFC 4791 precondition element."""

from __future__ import annotations

from collections.abc import Collection

from aiohttp import web

from caldav_backend.dav.errors import DavError
from gateway.core.text import UnknownCharset, UnreadableText, calendar_text_problem, decode

from .names import cal


def calendar_text(
    request: web.Request, body: bytes, *, accepted: Collection[str], sent_as: str, invalid: int
) -> str:
    """The body as text. A media type not in ``accepted`` or an unknown
    charset is 415 ``supported-calendar-data`` (``sent_as`` says what the
    body should have been sent as); undecodable bytes and characters XML
    cannot carry (reports could not answer with them, RFC 4791 5.3.2.1)
    are ``invalid`` (403 for a stored object, 400 for a request) with
    ``valid-calendar-data``."""
    if request.content_type not in accepted:
        raise DavError(
            415,
            f"{sent_as} as text/calendar, not {request.content_type}",
            cal("supported-calendar-data"),
        )
    try:
        text = decode(body, request.charset)
    except UnknownCharset as exc:
        raise DavError(415, str(exc), cal("supported-calendar-data")) from None
    except UnreadableText as exc:
        raise DavError(invalid, f"the body {exc}", cal("valid-calendar-data")) from None
    problem = calendar_text_problem(text)
    if problem is not None:
        raise DavError(invalid, problem, cal("valid-calendar-data"))
    return text
