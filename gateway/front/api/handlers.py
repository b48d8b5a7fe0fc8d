"""Handlers of the JSON booking API (``/api/v1/``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from aiohttp import web
from prometheus_client import Counter
from pydantic import BaseModel, ValidationError

from gateway.core.calendar_import import UnsplittableFile
from gateway.core.errors import AmbiguousReply
from gateway.core.instants import instant_problem
from gateway.core.invitations import CalendarLinks, InvalidReply, ItipReply, ReplyOutcome
from gateway.core.model import Attendee, Booking, BookingChanges, BookingDraft, TimeSpan
from gateway.core.service import MAX_QUERY_WINDOW, BookingService
from gateway.core.text import UnknownCharset, UnreadableText, calendar_text_problem, decode
from gateway.ical import parse_reply
from gateway.mail.inbound import itip_parts
from gateway.web.admission import heavy_work
from gateway.web.auth import ALL_RESOURCES, Authenticator, Principal
from gateway.web.json_body import JsonRefused, parse_json
from gateway.web.keys import (
    ADMIN_ACTIONS,
    AUTHENTICATOR,
    BOOKINGS,
    CLOCK,
    LINKS,
    METRICS,
    MIRROR_ADMIN,
    SETTINGS,
)
from gateway.web.responses import releasing_json

from .problems import ApiProblem, from_validation_error, invalid
from .schemas import (
    Availability,
    BookingCreate,
    BookingList,
    BookingOut,
    BookingPatch,
    GoogleInviteOut,
    ImportReportOut,
    InvitationResent,
    OutboxEntryOut,
    OutboxList,
    ReplyResult,
    ReplyResults,
    ResourceList,
    ResourceOut,
    SpanOut,
    SyncLog,
    SyncLogEntryOut,
    SyncStatusList,
    SyncStatusOut,
)


@dataclass(frozen=True, slots=True)
class ApiServices:
    """What the API's requests use from the root application, looked up
    once when the server starts (``bind_at_start``) instead of about five
    times per booking (issue 17). The root never replaces them once it
    serves."""

    authenticator: Authenticator
    bookings: BookingService
    # LINKS is set only when invitations.link_key is configured.
    links: Callable[[Booking], CalendarLinks] | None
    clock: Callable[[], datetime]
    # The series of each booking change, looked up once rather than per change.
    created: Counter
    rescheduled: Counter
    cancelled: Counter

    @classmethod
    def of(cls, config: web.Application) -> ApiServices:
        signer = config.get(LINKS)
        changes = config[METRICS].bookings
        return cls(
            authenticator=config[AUTHENTICATOR],
            bookings=config[BOOKINGS],
            links=signer.calendar_links if signer is not None else None,
            clock=config[CLOCK],
            created=changes.labels("created"),
            rescheduled=changes.labels("rescheduled"),
            cancelled=changes.labels("cancelled"),
        )


PRINCIPAL = web.RequestKey("principal", Principal)
API_SERVICES = web.AppKey("api_services", ApiServices)
SERVICES = web.RequestKey("api_services", ApiServices)
DEFAULT_LIST_WINDOW = timedelta(days=30)
MAX_IDEMPOTENCY_KEY = 255
DEFAULT_LOG_LIMIT = 100
MAX_LOG_LIMIT = 500
MAX_LOG_ID = 2**62  # sync log ids are SQLite integers; larger values are typos
DEFAULT_OUTBOX_LIMIT = 100
MAX_OUTBOX_LIMIT = 500
MAX_OUTBOX_ID = 2**62  # outbox ids are database integers; larger values are typos

Model = TypeVar("Model", bound=BaseModel)


def _json(
    model: BaseModel, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return releasing_json(model.model_dump(mode="json"), status=status, headers=headers)


async def _body(request: web.Request, model: type[Model]) -> Model:
    if request.content_type != "application/json":
        raise ApiProblem(
            415,
            "Unsupported media type",
            f"send the body as application/json, not {request.content_type or 'nothing'}",
        )
    try:
        data = parse_json(await request.read())
    except JsonRefused as exc:
        raise invalid("body", str(exc), status=400) from None
    if not isinstance(data, dict):
        raise invalid("body", "must be a JSON object", status=400)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise from_validation_error(exc) from None


def _service(request: web.Request) -> BookingService:
    return request[SERVICES].bookings


def _links(request: web.Request) -> Callable[[Booking], CalendarLinks] | None:
    return request[SERVICES].links


def _readable_resource(
    request: web.Request, resource_id: str, field: str | None = None, status: int = 422
) -> str:
    """The resource id if the caller may see it. Unknown and hidden resources
    look the same, so names of resources the caller may not see do not leak.
    Named by a ``field`` (body 422, query 400), else a 404 for the URL."""
    principal = request[PRINCIPAL]
    if resource_id in _service(request).resources and principal.can_read(resource_id):
        return resource_id
    if field is not None:
        raise invalid(field, f"unknown resource {resource_id!r}", status=status)
    raise ApiProblem(404, "Not found", f"resource {resource_id!r} not found")


def _require_write(request: web.Request, resource_id: str) -> None:
    if not request[PRINCIPAL].can_write(resource_id):
        raise ApiProblem(403, "Forbidden", f"read-only access to resource {resource_id!r}")


async def _visible_booking(request: web.Request) -> Booking:
    booking_id = request.match_info["booking_id"]
    booking = await _service(request).get(booking_id)
    if not request[PRINCIPAL].can_read(booking.resource_id):
        raise ApiProblem(404, "Not found", f"booking {booking_id!r} not found")
    return booking


def _query_time(request: web.Request, name: str, default: datetime | None) -> datetime:
    raw = request.query.get(name)
    if raw is None:
        if default is None:
            raise invalid(name, "is required", status=400)
        return default
    # An unencoded '+' in a query string arrives as a space; put it back.
    text = raw.strip().replace(" ", "+")
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise invalid(name, f"is not an ISO 8601 date-time: {raw!r}", status=400) from None
    if value.tzinfo is None:
        raise invalid(name, "needs a UTC offset or zone (naive times are ambiguous)", status=400)
    problem = instant_problem(value)
    if problem is not None:
        raise invalid(name, problem, status=400)
    return value


def _query_int(request: web.Request, name: str, low: int, high: int) -> int | None:
    """An optional integer query parameter (None when absent)."""
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        raise invalid(name, f"is not an integer: {raw!r}", status=400) from None
    if not low <= value <= high:
        raise invalid(name, f"must be between {low} and {high}", status=400)
    return value


def _query_window(request: web.Request, *, required: bool) -> TimeSpan:
    now = request[SERVICES].clock()
    start = _query_time(request, "start", None if required else now)
    end = _query_time(request, "end", None if required else start + DEFAULT_LIST_WINDOW)
    if end <= start:
        raise invalid("end", "must be after start", status=400)
    if end - start > MAX_QUERY_WINDOW:
        raise invalid("end", f"the window may span at most {MAX_QUERY_WINDOW.days} days", 400)
    return TimeSpan(start, end)


# -- resources -----------------------------------------------------------------


async def list_resources(request: web.Request) -> web.Response:
    principal = request[PRINCIPAL]
    resources = [
        ResourceOut(id=r.id, name=r.name, timezone=r.timezone, writable=principal.can_write(r.id))
        for r in _service(request).resources.values()
        if principal.can_read(r.id)
    ]
    return _json(ResourceList(resources=resources))


async def get_resource(request: web.Request) -> web.Response:
    resource_id = _readable_resource(request, request.match_info["resource_id"])
    r = _service(request).resource(resource_id)
    writable = request[PRINCIPAL].can_write(r.id)
    return _json(ResourceOut(id=r.id, name=r.name, timezone=r.timezone, writable=writable))


async def availability(request: web.Request) -> web.Response:
    resource_id = _readable_resource(request, request.match_info["resource_id"])
    window = _query_window(request, required=True)
    busy = await _service(request).busy(resource_id, window)
    return _json(
        Availability(
            resource=resource_id,
            start=window.start.astimezone(UTC),
            end=window.end.astimezone(UTC),
            busy=[SpanOut.of(s) for s in busy],
        )
    )


# -- bookings ------------------------------------------------------------------


async def list_bookings(request: web.Request) -> web.Response:
    """The bookings of one resource (``resource``), or without it of every
    resource the caller may see, in the window, by start."""
    resource_id = request.query.get("resource")
    if resource_id is not None:
        resource_ids = [_readable_resource(request, resource_id, field="resource", status=400)]
    else:
        principal = request[PRINCIPAL]
        resource_ids = [r for r in _service(request).resources if principal.can_read(r)]
    window = _query_window(request, required=False)
    bookings = [b for r in resource_ids for b in await _service(request).in_window(r, window)]
    bookings.sort(key=lambda b: (b.start, b.resource_id, b.id))
    return _json(BookingList(bookings=[BookingOut.of(b, _links(request)) for b in bookings]))


async def create_booking(request: web.Request) -> web.Response:
    body = await _body(request, BookingCreate)
    _readable_resource(request, body.resource, field="resource")
    _require_write(request, body.resource)
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 0 < len(key) <= MAX_IDEMPOTENCY_KEY:
        raise invalid("Idempotency-Key", f"must be 1 to {MAX_IDEMPOTENCY_KEY} characters", 400)
    attendees = (Attendee(email=body.booker.email, name=body.booker.name),) if body.booker else ()
    draft = BookingDraft(
        resource_id=body.resource,
        title=body.title,
        start=body.start,
        end=body.end,
        timezone=body.timezone,
        description=body.description,
        location=body.location,
        attendees=attendees,
    )
    scoped_key = f"{request[PRINCIPAL].key}:{key}" if key is not None else None
    booking = await _service(request).create(draft, scoped_key)
    request[SERVICES].created.inc()
    location = request.app.router["booking"].url_for(booking_id=booking.id)
    return _json(
        BookingOut.of(booking, _links(request)), status=201, headers={"Location": str(location)}
    )


async def get_booking(request: web.Request) -> web.Response:
    return _json(BookingOut.of(await _visible_booking(request), _links(request)))


async def patch_booking(request: web.Request) -> web.Response:
    body = await _body(request, BookingPatch)
    if not body.model_fields_set:
        raise invalid("body", "names no field to change")
    for name in ("start", "end", "title"):
        if name in body.model_fields_set and getattr(body, name) is None:
            raise invalid(name, "must not be null")
    booking = await _visible_booking(request)
    _require_write(request, booking.resource_id)
    changes = BookingChanges(
        start=body.start,
        end=body.end,
        timezone=body.timezone,
        title=body.title,
        description=body.description,
        location=body.location,
    )
    updated = await _service(request).reschedule(booking.id, changes)
    if updated.sequence != booking.sequence:
        request[SERVICES].rescheduled.inc()
    return _json(BookingOut.of(updated, _links(request)))


async def cancel_booking(request: web.Request) -> web.Response:
    booking = await _visible_booking(request)
    _require_write(request, booking.resource_id)
    cancelled = await _service(request).cancel(booking.id)
    if cancelled.sequence != booking.sequence:
        request[SERVICES].cancelled.inc()
    return _json(BookingOut.of(cancelled, _links(request)))


# -- Google mirror -------------------------------------------------------------
# Reading the status and the log needs read access to the resource; inviting
# and disconnecting change what happens to its bookings, so they need
# read-write, like booking. None of these calls Google: they change or read
# the database only, the bridge acts on it.


async def google_invite(request: web.Request) -> web.Response:
    resource_id = _readable_resource(request, request.match_info["resource_id"])
    _require_write(request, resource_id)
    issued = await request.config_dict[MIRROR_ADMIN].invite(resource_id)
    return _json(GoogleInviteOut.of(issued), status=201)


async def google_disconnect(request: web.Request) -> web.Response:
    resource_id = _readable_resource(request, request.match_info["resource_id"])
    _require_write(request, resource_id)
    await request.config_dict[MIRROR_ADMIN].disconnect(resource_id)
    return web.Response(status=204)


async def sync_status(request: web.Request) -> web.Response:
    principal = request[PRINCIPAL]
    states = await request.config_dict[MIRROR_ADMIN].statuses()
    now = request[SERVICES].clock()
    return _json(
        SyncStatusList(
            resources=[
                SyncStatusOut.of(s, now) for s in states if principal.can_read(s.resource_id)
            ]
        )
    )


async def sync_log(request: web.Request) -> web.Response:
    resource_id = _readable_resource(request, request.match_info["resource_id"])
    limit = _query_int(request, "limit", 1, MAX_LOG_LIMIT)
    if limit is None:
        limit = DEFAULT_LOG_LIMIT
    before = _query_int(request, "before", 1, MAX_LOG_ID)
    # One entry more than asked tells whether an older page exists, so the
    # last page says next_before: null instead of leading to an empty page.
    entries = await request.config_dict[MIRROR_ADMIN].log(resource_id, limit + 1, before)
    page = entries[:limit]
    next_before = page[-1].id if len(entries) > limit else None
    return _json(SyncLog(entries=[SyncLogEntryOut.of(e) for e in page], next_before=next_before))


# -- the outbox and invitations, as the admin acts on them ------------------------
# The same actions as the console and `calgateway outbox` (AdminActions). A
# caller acts on the items of the resources it has read-write access to; an
# item of a resource it may not see is "not found", like a booking.


def _actor(principal: Principal) -> str:
    """Who did it, for the log and a given-up item's reason."""
    return principal.name if principal.kind == "user" else f"API token {principal.name}"


def _writable(request: web.Request) -> list[str] | None:
    """The resources whose items the caller may act on (None: every one,
    also those no longer in the settings)."""
    principal = request[PRINCIPAL]
    if principal.access.get(ALL_RESOURCES) == "read-write":
        return None
    return [r for r in _service(request).resources if principal.can_write(r)]


async def list_outbox(request: web.Request) -> web.Response:
    state = request.query.get("state")
    if state is not None and state not in ("pending", "failed"):
        raise invalid("state", f"must be pending or failed, not {state!r}", status=400)
    limit = _query_int(request, "limit", 1, MAX_OUTBOX_LIMIT) or DEFAULT_OUTBOX_LIMIT
    entries = await request.config_dict[ADMIN_ACTIONS].outbox(
        "pending" if state == "pending" else "failed" if state == "failed" else None,
        limit,
        resource_ids=_writable(request),
    )
    return _json(OutboxList(entries=[OutboxEntryOut.of(e) for e in entries]))


async def _outbox_item(request: web.Request) -> int:
    """The item id of the URL, if the caller may act on the item."""
    raw = request.match_info["item_id"]
    item_id = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 19 else 0
    if not 0 < item_id <= MAX_OUTBOX_ID:
        raise ApiProblem(404, "Not found", f"outbox item {raw!r} not found")
    resource_id = await request.config_dict[ADMIN_ACTIONS].outbox_resource(item_id)
    if not request[PRINCIPAL].can_read(resource_id):
        raise ApiProblem(404, "Not found", f"outbox item {raw!r} not found")
    _require_write(request, resource_id)
    return item_id


async def retry_outbox(request: web.Request) -> web.Response:
    item_id = await _outbox_item(request)
    actions = request.config_dict[ADMIN_ACTIONS]
    entry = await actions.retry_outbox_now(item_id, _actor(request[PRINCIPAL]))
    return _json(OutboxEntryOut.of(entry))


async def give_up_outbox(request: web.Request) -> web.Response:
    item_id = await _outbox_item(request)
    actions = request.config_dict[ADMIN_ACTIONS]
    entry = await actions.give_up_outbox(item_id, _actor(request[PRINCIPAL]))
    return _json(OutboxEntryOut.of(entry))


async def resend_invitation(request: web.Request) -> web.Response:
    booking = await _visible_booking(request)
    _require_write(request, booking.resource_id)
    actions = request.config_dict[ADMIN_ACTIONS]
    attendees = await actions.resend_invitation(booking.id, _actor(request[PRINCIPAL]))
    return _json(InvitationResent(attendees=list(attendees)), status=202)


# -- importing a calendar file -------------------------------------------------
# The same import as `calgateway import`: needs read-write on the resource,
# like booking. It is heavy work (seconds for thousands of events), so it
# takes a slot of the heavy-request gate.


async def import_calendar(request: web.Request) -> web.Response:
    resource_id = _readable_resource(request, request.match_info["resource_id"])
    _require_write(request, resource_id)
    dry_run = _query_flag(request, "dry_run")
    if request.content_type != CALENDAR_MEDIA_TYPE:
        raise ApiProblem(
            415,
            "Unsupported media type",
            f"send the calendar file as {CALENDAR_MEDIA_TYPE}, not {request.content_type}",
        )
    server = request.config_dict[SETTINGS].server
    raw = await _whole_body(request, server.max_import_bytes)
    try:
        text = decode(raw, request.charset)
    except (UnknownCharset, UnreadableText) as exc:
        raise invalid("body", str(exc), 400) from None
    async with heavy_work(request):
        try:
            report = await _service(request).import_calendar(
                resource_id, text, dry_run=dry_run, max_object_bytes=server.max_body_bytes
            )
        except UnsplittableFile as exc:
            raise invalid("body", f"nothing imported: {exc.message}", 422) from None
    return _json(ImportReportOut.of(report), status=200 if dry_run else 201)


async def _whole_body(request: web.Request, limit: int) -> bytes:
    """The body, up to ``limit`` bytes (413 beyond; a chunked body has no
    Content-Length for the server's own check to see)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > limit:
            raise ApiProblem(
                413,
                "Request too large",
                f"the body is over {limit} bytes (server.max_import_bytes)",
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _query_flag(request: web.Request, name: str) -> bool:
    raw = request.query.get(name, "false").strip().lower()
    if raw not in ("true", "false", "1", "0"):
        raise invalid(name, f"must be true or false, not {raw!r}", status=400)
    return raw in ("true", "1")


# -- answers of bookers (iTIP REPLY) -------------------------------------------
# For a mail provider's inbound webhook, or any relay that hands over what
# came back to the organizer address: one REPLY as text/calendar, or the whole
# e-mail as message/rfc822 (iMIP, RFC 6047), whose calendar parts are read.

CALENDAR_MEDIA_TYPE = "text/calendar"
MESSAGE_MEDIA_TYPE = "message/rfc822"


async def itip_reply(request: web.Request) -> web.Response:
    replies = await _replies_in(request)
    service = _service(request)
    principal = request[PRINCIPAL]
    # Every reply is looked up and every permission checked before any is
    # applied, so a refused request writes nothing.
    hidden: set[ItipReply] = set()
    routed: dict[ItipReply, str] = {}
    for reply in replies:
        try:
            found = await service.reply_target(reply)
        except AmbiguousReply as exc:
            # Several bookings hold the UID (from before UIDs were unique):
            # applying it to any one of them could be the wrong booker's.
            raise ApiProblem(409, "Ambiguous reply", str(exc)) from None
        if found is None:
            continue
        routed[reply] = found.booking.id
        if not principal.can_read(found.resource_id):
            # A booking the caller may not see answers like one that does not exist.
            hidden.add(reply)
        elif not principal.can_write(found.resource_id):
            raise ApiProblem(
                403,
                "Forbidden",
                f"read-only access to resource {found.resource_id!r}, which holds UID "
                f"{reply.uid!r}: answering for its bookers needs read-write",
            )
    results = []
    for reply in replies:
        if reply in hidden:
            outcome = ReplyOutcome(False, f"no booking has UID {reply.uid!r}")
        else:
            # An unknown UID is no error of the request (the booking may have
            # been deleted since the invitation went out): dropped, said so.
            outcome = await service.apply_reply(reply, via="itip", booking_id=routed.get(reply))
        results.append(ReplyResult.of(reply, outcome))
    return _json(ReplyResults(replies=results))


async def _replies_in(request: web.Request) -> list[ItipReply]:
    """The usable REPLYs in the body, in order, each once; a 400 naming the
    problems when there is none."""
    media_type = request.content_type
    if media_type == CALENDAR_MEDIA_TYPE:
        # RFC 5545 3.1.4: iCalendar's default charset is UTF-8.
        try:
            texts = [decode(await request.read(), request.charset)]
        except UnreadableText as exc:
            raise invalid("body", str(exc), 400) from None
    elif media_type == MESSAGE_MEDIA_TYPE:
        texts = itip_parts(await request.read())
        if not texts:
            raise invalid("body", "the e-mail holds no iCalendar object with a METHOD", 400)
    else:
        raise ApiProblem(
            415,
            "Unsupported media type",
            f"send one iTIP REPLY as {CALENDAR_MEDIA_TYPE} or a whole e-mail as "
            f"{MESSAGE_MEDIA_TYPE}, not {media_type or 'nothing'}",
        )
    replies: list[ItipReply] = []
    problems: list[str] = []
    for text in texts:
        # What the CalDAV PUT refuses is refused here too (gateway.core.text).
        unusable = calendar_text_problem(text)
        if unusable is not None:
            problems.append(unusable)
            continue
        try:
            reply = parse_reply(text)
        except InvalidReply as exc:
            # An e-mail may also quote the REQUEST it answers; only a body
            # with no usable REPLY at all is the sender's mistake.
            problems.append(str(exc))
            continue
        if reply not in replies:
            replies.append(reply)
    if not replies:
        raise invalid("body", "; ".join(problems), 400)
    return replies
