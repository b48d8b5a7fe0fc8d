"""PUT of a calendar object (RFC 4791 5.3.2): stored exactly as sent, after
the booking service has validated it and refused double bookings."""

from __future__ import annotations

from aiohttp import web

from caldav_backend.dav.conditions import precondition_from
from caldav_backend.dav.errors import DavError
from gateway.core.errors import (
    BookingConflict,
    BusyTimeUnverified,
    ExpansionLimit,
    ImportedObject,
    InvalidCalendarData,
    PreconditionFailed,
    UidConflict,
)
from gateway.web.responses import UID_CONFLICT_REASON, conflict_reason

from .body import calendar_text
from .names import cal, gw, object_href
from .tree import DavContext, Target


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


def _conflict_hrefs(ctx: DavContext, resource_id: str, error: UidConflict) -> tuple[str, ...]:
    """The DAV:href of the object holding the UID (RFC 4791 5.3.2.1), only
    for a caller who may read its calendar: UIDs are unique across the
    gateway, and another calendar's objects are not everyone's to find. A
    reserved UID names no object."""
    holder = error.resource_id or resource_id
    if not error.href or not ctx.readable(holder):
        return ()
    return (object_href(holder, error.href),)


async def put_object(request: web.Request, ctx: DavContext, target: Target) -> web.Response:
    if target.kind != "object" or target.resource is None or target.name is None:
        raise DavError(405, "PUT creates calendar objects inside a calendar only")
    resource = target.resource
    ctx.require_write(resource.id)
    condition = precondition_from(request.headers)
    # RFC 4791 5.3.2.1 supported-calendar-data and valid-calendar-data: a
    # refused object is 403.
    ics = calendar_text(
        request,
        await request.read(),
        accepted=("text/calendar", "application/octet-stream"),
        sent_as="calendar objects must be sent",
        invalid=403,
    )
    try:
        obj, created = await ctx.bookings.put_object(resource.id, target.name, ics, condition)
    except InvalidCalendarData as error:
        # RFC 4791 5.3.2.1 preconditions, with 403 as RFC 4791 1.3 (after RFC
        # 3253 1.6) asks of a request that will always fail as sent; this
        # includes the RecurrenceLimit subclass (well formed, beyond this server's limits).
        raise DavError(403, error.message, cal(error.precondition)) from None
    except ExpansionLimit as error:
        # A stored series too large to check for double bookings (RFC 4918 11.5).
        raise DavError(507, error.message, cal("max-instances")) from None
    except PreconditionFailed as error:
        raise DavError(412, error.message) from None
    except UidConflict as error:
        raise DavError(
            409,
            str(error),
            cal("no-uid-conflict"),
            hrefs=_conflict_hrefs(ctx, resource.id, error),
            reason=UID_CONFLICT_REASON,
        ) from None
    except BookingConflict as error:
        # The first conflicting span in the reason phrase too (RFC 9110 15.1
        # lets it be free text): some clients show only the status line.
        raise DavError(
            409, _conflict_message(error), gw("no-double-booking"), reason=conflict_reason(error)
        ) from None
    except BusyTimeUnverified as error:
        # Not a rule the object breaks: the busy time it must be checked
        # against could not be brought up to date from Google now (the
        # resource's when_stale is refuse). RFC 9110 15.6.4: temporary, with
        # Retry-After; nothing was stored.
        raise DavError(
            503,
            error.message,
            gw("busy-time-current"),
            headers={"Retry-After": str(error.retry_after)},
        ) from None
    except ImportedObject as error:
        # RFC 4918 9.7.2 lets a server refuse a PUT it will not perform (403).
        raise DavError(403, str(error), gw("imported-from-google")) from None
    # RFC 6638 3.2.10 / 8.3: the new schedule tag, for the client's next write.
    headers = {"Schedule-Tag": obj.schedule_tag}
    if obj.ics == ics:
        # RFC 4791 5.3.4: the ETag only when the object is stored as sent (not
        # when answers that came in meanwhile were kept, RFC 6638 3.2.10, nor
        # with the server's SCHEDULE-STATUS or raised SEQUENCE, 3.2.9).
        headers["ETag"] = obj.etag
    return web.Response(status=201 if created else 204, headers=headers)
