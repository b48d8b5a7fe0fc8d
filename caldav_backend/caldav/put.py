"""PUT of a calendar object (RFC 4791 5.3.2): stored exactly as sent, after
the booking service has validated it and refused double bookings."""

from __future__ import annotations

from aiohttp import web

from caldav_backend.dav.conditions import precondition_from
from caldav_backend.dav.errors import DavError
from gateway.core.errors import (
    BookingConflict,
    ImportedObject,
    InvalidCalendarData,
    PreconditionFailed,
    UidConflict,
)

from .names import cal, gw, object_href
from .tree import DavContext, Target


def _text(request: web.Request, body: bytes) -> str:
    # RFC 4791 5.3.2.1 supported-calendar-data: iCalendar only.
    if request.content_type not in ("text/calendar", "application/octet-stream"):
        raise DavError(
            415,
            f"calendar objects must be sent as text/calendar, not {request.content_type}",
            cal("supported-calendar-data"),
        )
    charset = request.charset or "utf-8"
    try:
        return body.decode(charset)
    except LookupError:
        raise DavError(
            415, f"unknown charset {charset!r}", cal("supported-calendar-data")
        ) from None
    except UnicodeDecodeError as exc:
        raise DavError(
            400, f"the body is not valid {charset}: {exc.reason}", cal("valid-calendar-data")
        ) from None


def _conflict_message(error: BookingConflict) -> str:
    spans = ", ".join(
        f"{s.start.strftime('%Y-%m-%dT%H:%M:%SZ')}/{s.end.strftime('%Y-%m-%dT%H:%M:%SZ')}"
        for s in error.conflicts[:10]
    )
    more = f" and {len(error.conflicts) - 10} more" if len(error.conflicts) > 10 else ""
    return (
        f"{error.resource_id!r} is already booked at {spans}{more}; mark the event "
        "as free (TRANSP:TRANSPARENT) to keep it anyway"
    )


async def put_object(request: web.Request, ctx: DavContext, target: Target) -> web.Response:
    if target.kind != "object" or target.resource is None or target.name is None:
        raise DavError(405, "PUT creates calendar objects inside a calendar only")
    resource = target.resource
    ctx.require_write(resource.id)
    condition = precondition_from(request.headers)
    ics = _text(request, await request.read())
    try:
        obj, created = await ctx.bookings.put_object(resource.id, target.name, ics, condition)
    except InvalidCalendarData as error:
        raise DavError(400, error.message, cal(error.precondition)) from None
    except PreconditionFailed as error:
        raise DavError(412, error.message) from None
    except UidConflict as error:
        raise DavError(
            409, str(error), cal("no-uid-conflict"), hrefs=(object_href(resource.id, error.href),)
        ) from None
    except BookingConflict as error:
        raise DavError(409, _conflict_message(error), gw("no-double-booking")) from None
    except ImportedObject as error:
        # RFC 4918 9.7.2 lets a server refuse a PUT it will not perform (403).
        raise DavError(403, str(error), gw("imported-from-google")) from None
    # RFC 4791 5.3.4: the ETag may be sent because the object is stored as sent.
    return web.Response(status=201 if created else 204, headers={"ETag": obj.etag})
