"""POST to the schedule outbox (RFC 6638 5): free-busy for scheduling clients.

Thunderbird's and Apple Calendar's attendee-availability views POST a
VFREEBUSY request (METHOD:REQUEST, RFC 5546 3.3.2) naming ATTENDEEs; the
answer is a CALDAV:schedule-response with one CALDAV:response per ATTENDEE:
request-status 2.0 and a VFREEBUSY METHOD:REPLY with the busy time of the
resource whose e-mail address it is, or 3.7 for an address that is no
resource the signed-in user may read (``gateway.core.schedule_freebusy``
decides; the busy time is the free-busy-query REPORT's, through the same
port). A resource whose busy time cannot be computed within the ``limits``
settings answers 5.1 for that recipient, never an empty, "free" reply.

Only free-busy: any other scheduling message belongs to implicit scheduling
(PUT/DELETE of calendar objects), not to the outbox.
"""

from __future__ import annotations

from aiohttp import web

from caldav_backend.dav.errors import DavError
from caldav_backend.dav.xml import dav, new_root, serialize, sub
from gateway.core.errors import ExpansionLimit, InvalidCalendarData
from gateway.core.schedule_freebusy import MAX_RECIPIENTS, FreeBusyRequest, recipients
from gateway.core.service import MAX_QUERY_WINDOW

from .body import calendar_text
from .expansion import off_loop
from .names import cal, gw
from .tree import DavContext, Target

# RFC 5546 3.6: the service could not answer for this recipient now.
UNAVAILABLE = "5.1;Service unavailable"


async def _reply(ctx: DavContext, request: FreeBusyRequest, resource_id: str, to: str) -> str:
    objects = await ctx.repository.in_span(resource_id, request.window, blocking_only=True)
    return await off_loop(lambda stopped: ctx.queries.freebusy_reply(objects, request, to))


async def schedule_post(request: web.Request, ctx: DavContext, target: Target) -> web.Response:
    if target.kind == "foreign-outbox":
        # Any other principal name, existing or not: no name is confirmed.
        raise DavError(403, "you may POST only to your own schedule outbox", dav("need-privileges"))
    if target.kind != "outbox":
        raise DavError(405, "POST is answered by your schedule outbox only (RFC 6638 5)")
    text = calendar_text(
        request,
        await request.read(),
        accepted=("text/calendar",),
        sent_as="send the free-busy request",
        invalid=400,
    )
    try:
        asked = await off_loop(lambda stopped: ctx.queries.freebusy_request(text))
    except InvalidCalendarData as error:
        raise DavError(400, error.message, cal(error.precondition)) from None
    if asked.window.end - asked.window.start > MAX_QUERY_WINDOW:
        raise DavError(
            403,
            f"ask for at most {MAX_QUERY_WINDOW.days} days of free/busy time at once",
            cal("max-date-time"),
        )
    if len(asked.attendees) > MAX_RECIPIENTS:
        raise DavError(
            403,
            f"ask about at most {MAX_RECIPIENTS} attendees at once",
            gw("too-many-recipients"),
        )
    root = new_root(cal("schedule-response"))
    for recipient in recipients(asked, ctx.resources.values(), ctx.readable):
        response = sub(root, cal("response"))
        sub(sub(response, cal("recipient")), dav("href"), recipient.address)
        if recipient.resource is None:
            sub(response, cal("request-status"), recipient.status)
            continue
        try:
            body = await _reply(ctx, asked, recipient.resource.id, recipient.address)
        except ExpansionLimit as error:
            sub(response, cal("request-status"), UNAVAILABLE)
            sub(response, dav("responsedescription"), error.message)
            continue
        sub(response, cal("request-status"), recipient.status)
        sub(response, cal("calendar-data"), body)
    return web.Response(body=serialize(root), content_type="application/xml", charset="utf-8")
