"""The resources behind ``/dav/``: which node a path names, and what each
node says about itself (its live properties).

Access follows the config: a user sees their own principal and the calendars
granted to them; anything else answers exactly as a path that does not exist
(404), so names of other users and resources do not leak.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Hashable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from typing import Any, ClassVar
from urllib.parse import unquote

from caldav_backend.dav.errors import DavError
from caldav_backend.dav.resource import DavNode, LiveProperty, PropValue
from caldav_backend.dav.sync import SyncRequest, SyncResult, invalid_token
from caldav_backend.dav.xml import Element, dav, element
from gateway.core.errors import ExpansionLimit
from gateway.core.model import CalendarObject, ChangeKind, ObjectEntry, Resource
from gateway.core.ports import CalendarQuerying, CalendarStore
from gateway.core.query import DataRequest, QueriedObject
from gateway.core.service import BookingService
from gateway.web.auth import Principal

from .filters import parse_data_request
from .names import (
    CALENDAR_COLOR,
    CALENDAR_DATA,
    CALENDAR_DESCRIPTION,
    CALENDAR_ORDER,
    CALENDARS,
    DAV_ROOT,
    DISPLAYNAME,
    GETETAG,
    PRINCIPALS,
    RESOURCETYPE,
    SCHEDULE_INBOX,
    SCHEDULE_OUTBOX,
    cal,
    calendar_href,
    cs,
    home_href,
    inbox_href,
    member_href,
    object_href,
    outbox_href,
    principal_href,
    principals_href,
)

SYNC_TOKEN_PREFIX = "urn:calgateway:sync:"  # noqa: S105 - not a secret


def sync_token(resource_id: str, revision: int) -> str:
    """RFC 6578 sync token: a URI naming the collection and its revision."""
    return f"{SYNC_TOKEN_PREFIX}{resource_id}:{revision}"


def parse_sync_token(token: str, resource_id: str) -> int | None:
    """The revision in a token this collection issued, else None."""
    prefix = f"{SYNC_TOKEN_PREFIX}{resource_id}:"
    rest = token.strip().removeprefix(prefix)
    # ASCII digits only (str.isdigit also takes "²", which int() refuses), and
    # at most 18 of them: revisions are SQLite integers (below 2**63).
    if rest == token.strip() or not (rest.isascii() and rest.isdigit()) or len(rest) > 18:
        return None
    return int(rest)


@dataclass(frozen=True, slots=True)
class DavContext:
    """What a request's handlers work with: who asks, and the services."""

    principal: Principal
    repository: CalendarStore
    bookings: BookingService
    queries: CalendarQuerying
    max_resource_size: int

    @property
    def resources(self) -> Mapping[str, Resource]:
        return self.bookings.resources

    def readable(self, resource_id: str) -> bool:
        return resource_id in self.resources and self.principal.can_read(resource_id)

    def require_write(self, resource_id: str) -> None:
        """RFC 3744 7.1.1: a readable calendar the caller may not change."""
        if not self.principal.can_write(resource_id):
            raise DavError(
                403, f"you may read {resource_id!r} but not change it", dav("need-privileges")
            )

    def readable_resources(self) -> list[Resource]:
        return [r for r in self.resources.values() if self.principal.can_read(r.id)]


# -- shared property values ----------------------------------------------------------

_READ_PRIVILEGES = (dav("read"), dav("read-current-user-privilege-set"), cal("read-free-busy"))
_WRITE_PRIVILEGES = (
    dav("write"),
    dav("write-properties"),
    dav("write-content"),
    dav("bind"),
    dav("unbind"),
)


def _privileges(write: bool) -> list[Element]:
    """RFC 3744 5.4 current-user-privilege-set."""
    names = _READ_PRIVILEGES + (_WRITE_PRIVILEGES if write else ())
    return [element(dav("privilege"), children=[element(name)]) for name in names]


def _href(value: str) -> Element:
    return element(dav("href"), value)


def _resourcetype(*types: str) -> list[Element]:
    return [element(name) for name in types]


def _reports(*names: str) -> list[Element]:
    """RFC 3253 3.1.5 supported-report-set."""
    return [
        element(dav("supported-report"), children=[element(dav("report"), children=[element(n)])])
        for n in names
    ]


def _http_date(node: Any) -> str:
    return format_datetime(node.updated, usegmt=True)


class CalDavNode(DavNode):
    """A node seen by an authenticated principal."""

    COMMON: ClassVar[dict[str, LiveProperty]] = {
        dav("current-user-principal"): LiveProperty(lambda n: _href(n.principal_href), shared=True),
        dav("principal-collection-set"): LiveProperty(
            lambda n: _href(principals_href()), in_allprop=False, shared=True
        ),
        dav("current-user-privilege-set"): LiveProperty(
            lambda n: _privileges(n.may_write), in_allprop=False, shared=True
        ),
        dav("owner"): LiveProperty(
            lambda n: _href(n.principal_href), in_allprop=False, shared=True
        ),
    }

    def __init__(
        self, href: str, ctx: DavContext, *, writable: bool = False, principal: str | None = None
    ) -> None:
        super().__init__(href)
        self.ctx = ctx
        # ``principal``: the caller's principal href, when already known.
        self.principal_href = principal_href(ctx.principal.name) if principal is None else principal
        self.may_write = writable

    def listing_key(self) -> Hashable:
        # The shared properties (COMMON's and the class's own constants)
        # depend on the class, the caller and whether they may write.
        return (type(self), self.principal_href, self.may_write)


def _with_common(table: dict[str, LiveProperty]) -> dict[str, LiveProperty]:
    return {**table, **CalDavNode.COMMON}


class RootNode(CalDavNode):
    """``/dav/``: where clients start discovery (RFC 6764 6, RFC 5397)."""

    PROPERTIES = _with_common(
        {
            RESOURCETYPE: LiveProperty(lambda n: _resourcetype(dav("collection"))),
            DISPLAYNAME: LiveProperty(lambda n: "calgateway"),
        }
    )

    async def members(self) -> list[DavNode]:
        return [PrincipalsNode(self.ctx), HomeNode(self.ctx)]


class PrincipalsNode(CalDavNode):
    PROPERTIES = _with_common(
        {
            RESOURCETYPE: LiveProperty(lambda n: _resourcetype(dav("collection"))),
            DISPLAYNAME: LiveProperty(lambda n: "Principals"),
        }
    )

    def __init__(self, ctx: DavContext) -> None:
        super().__init__(principals_href(), ctx)

    async def members(self) -> list[DavNode]:
        return [PrincipalNode(self.ctx)]


class PrincipalNode(CalDavNode):
    """The caller's own principal (RFC 3744 2; RFC 4791 6.2.1 home set)."""

    PROPERTIES = _with_common(
        {
            RESOURCETYPE: LiveProperty(
                lambda n: _resourcetype(dav("collection"), dav("principal"))
            ),
            DISPLAYNAME: LiveProperty(lambda n: n.ctx.principal.name),
            dav("principal-URL"): LiveProperty(lambda n: _href(n.href)),
            cal("calendar-home-set"): LiveProperty(lambda n: _href(home_href())),
            # RFC 6638 2.1, 2.2, 2.4: where a scheduling client asks for
            # free-busy time. Users have no e-mail address in the config, so
            # the principal's own URL is its calendar user address (2.4.1
            # allows it); the outbox's answer depends on the user's grants only.
            cal("schedule-outbox-URL"): LiveProperty(
                lambda n: _href(outbox_href(n.ctx.principal.name)), in_allprop=False
            ),
            cal("schedule-inbox-URL"): LiveProperty(
                lambda n: _href(inbox_href(n.ctx.principal.name)), in_allprop=False
            ),
            cal("calendar-user-address-set"): LiveProperty(
                lambda n: _href(n.href), in_allprop=False
            ),
            cal("calendar-user-type"): LiveProperty(lambda n: "INDIVIDUAL", in_allprop=False),
        }
    )

    def __init__(self, ctx: DavContext) -> None:
        super().__init__(principal_href(ctx.principal.name), ctx)

    async def members(self) -> list[DavNode]:
        return [ScheduleOutboxNode(self.ctx), ScheduleInboxNode(self.ctx)]


# RFC 6638 6.1.1: the outbox grants sending free-busy requests (schedule-send
# aggregates schedule-send-freebusy); invitations go out by implicit scheduling.
_OUTBOX_PRIVILEGES = (
    dav("read"),
    dav("read-current-user-privilege-set"),
    cal("schedule-send"),
    cal("schedule-send-freebusy"),
)


class ScheduleOutboxNode(CalDavNode):
    """The caller's schedule outbox (RFC 6638 2.1): empty; a POST of a
    VFREEBUSY request to it asks for busy time (``schedule_outbox``)."""

    PROPERTIES = {
        **_with_common(
            {
                RESOURCETYPE: LiveProperty(
                    lambda n: _resourcetype(dav("collection"), cal("schedule-outbox"))
                ),
                DISPLAYNAME: LiveProperty(lambda n: "Outbox"),
            }
        ),
        dav("current-user-privilege-set"): LiveProperty(
            lambda n: [
                element(dav("privilege"), children=[element(p)]) for p in _OUTBOX_PRIVILEGES
            ],
            in_allprop=False,
        ),
    }

    def __init__(self, ctx: DavContext) -> None:
        super().__init__(outbox_href(ctx.principal.name), ctx)


class ScheduleInboxNode(CalDavNode):
    """The caller's schedule inbox (RFC 6638 2.2), always empty: the gateway
    delivers no scheduling messages to users; clients that look for an inbox
    before scheduling find one."""

    PROPERTIES = _with_common(
        {
            RESOURCETYPE: LiveProperty(
                lambda n: _resourcetype(dav("collection"), cal("schedule-inbox"))
            ),
            DISPLAYNAME: LiveProperty(lambda n: "Inbox"),
        }
    )

    def __init__(self, ctx: DavContext) -> None:
        super().__init__(inbox_href(ctx.principal.name), ctx)


class HomeNode(CalDavNode):
    """``/dav/calendars/``: the calendars this principal may read."""

    PROPERTIES = _with_common(
        {
            RESOURCETYPE: LiveProperty(lambda n: _resourcetype(dav("collection"))),
            DISPLAYNAME: LiveProperty(lambda n: "Calendars"),
        }
    )

    def __init__(self, ctx: DavContext) -> None:
        super().__init__(home_href(), ctx)

    async def members(self) -> list[DavNode]:
        return [await CalendarNode.load(self.ctx, r) for r in self.ctx.readable_resources()]


CALENDAR_REPORTS = (
    cal("calendar-query"),
    cal("calendar-multiget"),
    cal("free-busy-query"),
    dav("sync-collection"),
)


def _calendar_timezone(node: CalendarNode) -> str:
    return node.ctx.queries.timezone_calendar(node.resource.timezone)


class CalendarNode(CalDavNode):
    """A resource's calendar (RFC 4791 4.2, 5.2)."""

    PROPERTIES = _with_common(
        {
            RESOURCETYPE: LiveProperty(lambda n: _resourcetype(dav("collection"), cal("calendar"))),
            DISPLAYNAME: LiveProperty(lambda n: n.stored.get(DISPLAYNAME, n.resource.name)),
            CALENDAR_DESCRIPTION: LiveProperty(
                lambda n: n.stored.get(CALENDAR_DESCRIPTION), in_allprop=False
            ),
            CALENDAR_COLOR: LiveProperty(lambda n: n.stored.get(CALENDAR_COLOR), in_allprop=False),
            CALENDAR_ORDER: LiveProperty(lambda n: n.stored.get(CALENDAR_ORDER), in_allprop=False),
            GETETAG: LiveProperty(lambda n: f'"rev-{n.revision}"'),
            cs("getctag"): LiveProperty(lambda n: str(n.revision)),
            dav("sync-token"): LiveProperty(
                lambda n: sync_token(n.resource.id, n.revision), in_allprop=False
            ),
            cal("supported-calendar-component-set"): LiveProperty(
                lambda n: [_element_with(cal("comp"), {"name": "VEVENT"})],
                in_allprop=False,
            ),
            cal("supported-calendar-data"): LiveProperty(
                lambda n: [_calendar_data_type()], in_allprop=False
            ),
            cal("calendar-timezone"): LiveProperty(_calendar_timezone, in_allprop=False),
            cal("max-resource-size"): LiveProperty(
                lambda n: str(n.ctx.max_resource_size), in_allprop=False
            ),
            dav("supported-report-set"): LiveProperty(
                lambda n: _reports(*CALENDAR_REPORTS), in_allprop=False
            ),
        }
    )
    WRITABLE = frozenset({DISPLAYNAME, CALENDAR_DESCRIPTION, CALENDAR_COLOR, CALENDAR_ORDER})

    def __init__(
        self,
        ctx: DavContext,
        resource: Resource,
        revision: int,
        stored: Mapping[str, str],
    ) -> None:
        super().__init__(
            calendar_href(resource.id), ctx, writable=ctx.principal.can_write(resource.id)
        )
        self.resource = resource
        self.revision = revision
        self.stored = stored

    def member_pages(self) -> AsyncGenerator[list[DavNode]]:
        return self._pages()

    async def _pages(
        self, data_request: DataRequest | None = None
    ) -> AsyncGenerator[list[DavNode]]:
        """Every member, a page at a time from one snapshot; with
        ``data_request`` each carries its calendar data."""
        repo = self.ctx.repository
        resource_id = self.resource.id
        pages: AsyncGenerator[Sequence[ObjectEntry | CalendarObject]]
        if data_request is None:
            pages = repo.iter_entries(resource_id)
        else:
            pages = repo.iter_objects(resource_id)
        listing = Listing.of(self.ctx, resource_id)
        async with aclosing(pages):
            async for page in pages:
                yield [
                    ObjectNode(
                        self.ctx, resource_id, item, data_request=data_request, listing=listing
                    )
                    for item in page
                ]

    async def patch(self, changes: Mapping[str, str | None]) -> None:
        await self.ctx.repository.set_collection_properties(self.resource.id, changes)

    async def sync(self, request: SyncRequest) -> SyncResult:
        """RFC 6578: every member for an empty token, else the changes since
        the token's revision (one per href, the latest), oldest first."""
        resource_id = self.resource.id
        repo = self.ctx.repository
        data_request = parse_data_request(request.props.requested.get(CALENDAR_DATA))
        if not request.token:
            return await self._initial_sync(request, data_request)
        since = parse_sync_token(request.token, resource_id)
        changes = None if since is None else await repo.changes_since(resource_id, since)
        if since is None or changes is None:
            raise invalid_token(request.token)
        truncated = request.limit is not None and len(changes) > request.limit
        if truncated:
            changes = changes[: request.limit]
        # The new token is the last change reported; no later change is lost.
        revision = changes[-1].revision if changes else since
        put = [c.href for c in changes if c.kind is ChangeKind.PUT]
        objects = await repo.get_many(resource_id, put) if put else []
        present = {o.href for o in objects}
        changed = [ObjectNode(self.ctx, resource_id, o, data_request=data_request) for o in objects]
        # A put whose object has since gone (deleted after this snapshot of the
        # log) is reported as removed; its delete comes with the next token.
        removed = [
            object_href(resource_id, c.href)
            for c in changes
            if c.kind is ChangeKind.DELETE or c.href not in present
        ]
        return SyncResult(changed, removed, sync_token(resource_id, revision), truncated)

    async def _initial_sync(self, request: SyncRequest, data_request: DataRequest) -> SyncResult:
        """Every member. Without a limit they are read and sent page by page.
        With one they come oldest change first, and the token is the
        revision of the last member sent: every member not sent changed
        after it, so the next sync reports exactly those (RFC 6578 3.6). A
        change racing this listing shows up again next time, as the token
        is read first."""
        resource_id = self.resource.id
        repo = self.ctx.repository
        revision = await repo.revision(resource_id)
        if request.limit is None:
            with_data = data_request if CALENDAR_DATA in request.props.requested else None
            token = sync_token(resource_id, revision)
            return SyncResult([], [], token, more=self._pages(with_data))
        entries = await repo.list_entries(resource_id)
        truncated = request.limit is not None and len(entries) > request.limit
        if truncated:
            entries = entries[: request.limit]
            revision = entries[-1].revision
        items: Sequence[ObjectEntry | QueriedObject] = entries
        if CALENDAR_DATA in request.props.requested:
            items = await repo.get_many(resource_id, [e.href for e in entries])
        listing = Listing.of(self.ctx, resource_id)
        changed = [
            ObjectNode(self.ctx, resource_id, item, data_request=data_request, listing=listing)
            for item in items
        ]
        return SyncResult(changed, [], sync_token(resource_id, revision), truncated)

    @classmethod
    async def load(cls, ctx: DavContext, resource: Resource) -> CalendarNode:
        repo = ctx.repository
        return cls(
            ctx,
            resource,
            await repo.revision(resource.id),
            await repo.collection_properties(resource.id),
        )


def _calendar_data_type() -> Element:
    return _element_with(cal("calendar-data"), {"content-type": "text/calendar", "version": "2.0"})


def _element_with(tag: str, attributes: Mapping[str, str]) -> Element:
    node = element(tag)
    for key, value in attributes.items():
        node.set(key, value)
    return node


# A member's calendar-data when the request says nothing of it (frozen: one
# for every node of a listing, not one each).
_AS_STORED = DataRequest()


@dataclass(frozen=True, slots=True)
class Listing:
    """What every member node of one calendar shares, worked out once for
    a listing instead of once a member (10,000 in a large calendar)."""

    calendar_href: str
    principal_href: str
    writable: bool

    @classmethod
    def of(cls, ctx: DavContext, resource_id: str) -> Listing:
        principal = ctx.principal
        return cls(
            calendar_href(resource_id),
            principal_href(principal.name),
            principal.can_write(resource_id),
        )


class ObjectNode(CalDavNode):
    """A calendar object resource. Built from a listing entry (no text) or a
    whole object; ``calendar-data`` needs the latter."""

    PROPERTIES = _with_common(
        {
            RESOURCETYPE: LiveProperty(lambda n: [], shared=True),
            GETETAG: LiveProperty(lambda n: n.etag),
            dav("getcontenttype"): LiveProperty(
                lambda n: "text/calendar; charset=utf-8; component=vevent", shared=True
            ),
            dav("getcontentlength"): LiveProperty(lambda n: str(n.size)),
            dav("getlastmodified"): LiveProperty(_http_date),
            CALENDAR_DATA: LiveProperty(lambda n: n.calendar_data(), in_allprop=False),
            # RFC 6638 9.3; not in allprop (it says SHOULD NOT).
            cal("schedule-tag"): LiveProperty(lambda n: n.item.schedule_tag, in_allprop=False),
        }
    )

    def __init__(
        self,
        ctx: DavContext,
        resource_id: str,
        item: ObjectEntry | CalendarObject | QueriedObject,
        *,
        data_request: DataRequest | None = None,
        listing: Listing | None = None,
    ) -> None:
        if listing is None:
            super().__init__(
                object_href(resource_id, item.href),
                ctx,
                writable=ctx.principal.can_write(resource_id),
            )
        else:
            super().__init__(
                member_href(listing.calendar_href, item.href),
                ctx,
                writable=listing.writable,
                principal=listing.principal_href,
            )
        self.item = item
        self.data_request = data_request or _AS_STORED
        self.etag = item.etag

    @property
    def updated(self) -> datetime:
        # Asked for by allprop and getlastmodified only: a listing entry
        # parses its time only then.
        item = self.item
        return item.booking.updated if isinstance(item, CalendarObject) else item.updated

    @property
    def size(self) -> int:
        # Asked for by allprop and getcontentlength only: a query's objects
        # are not encoded just to count their bytes.
        item = self.item
        return item.size if isinstance(item, ObjectEntry) else len(item.ics.encode("utf-8"))

    def calendar_data(self) -> PropValue:
        if isinstance(self.item, ObjectEntry):
            return None
        try:
            return self.ctx.queries.calendar_data(self.item, self.data_request)
        except ExpansionLimit as error:
            # CALDAV:expand of a stored series beyond the limits settings:
            # this property of this object only (RFC 4918 11.5).
            raise DavError(507, error.message, cal("max-instances")) from None


# -- resolving paths -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """What a request path names. ``kind`` is one of root, principals,
    principal, outbox, inbox, home, calendar, object; ``resource`` and
    ``name`` are set for calendars and objects (the object may not exist yet:
    PUT creates it). ``foreign-outbox`` is the outbox path of any other
    principal name, existing or not: 404 to read, 403 to POST to."""

    kind: str
    resource: Resource | None = None
    name: str | None = None


_CONTROL = re.compile("[\x00-\x1f]")


def _segments(raw_path: str) -> list[str]:
    if not raw_path.startswith(DAV_ROOT.rstrip("/")):
        raise DavError(404, "not found")
    rest = raw_path[len(DAV_ROOT) :] if raw_path.startswith(DAV_ROOT) else ""
    parts = [p for p in rest.split("/")]
    if parts and parts[-1] == "":
        parts.pop()  # trailing slash
    names = []
    for part in parts:
        name = unquote(part, errors="strict")
        # No empty, dot or slash-bearing segments: names map to nothing but
        # a row, yet ".." or "%2F" in a href would confuse every client.
        if name in ("", ".", "..") or "/" in name or _CONTROL.search(name):
            raise DavError(400, f"invalid path segment {part!r}")
        names.append(name)
    return names


def resolve(ctx: DavContext, raw_path: str) -> Target:
    """Map a request path to a target, or raise 404 (also for what the
    principal may not see)."""
    try:
        parts = _segments(raw_path)
    except UnicodeDecodeError:
        raise DavError(400, "the path is not valid percent-encoded UTF-8") from None
    if not parts:
        return Target("root")
    if parts[0] == PRINCIPALS:
        if len(parts) == 1:
            return Target("principals")
        if len(parts) == 2 and parts[1] == ctx.principal.name:
            return Target("principal")
        if len(parts) == 3 and parts[1] == ctx.principal.name:
            if parts[2] == SCHEDULE_OUTBOX:
                return Target("outbox")
            if parts[2] == SCHEDULE_INBOX:
                return Target("inbox")
        if len(parts) == 3 and parts[2] == SCHEDULE_OUTBOX:
            return Target("foreign-outbox")
        raise _not_found(raw_path)
    if parts[0] == CALENDARS:
        if len(parts) == 1:
            return Target("home")
        if len(parts) > 3 or not ctx.readable(parts[1]):
            raise _not_found(raw_path)
        resource = ctx.resources[parts[1]]
        if len(parts) == 2:
            return Target("calendar", resource)
        return Target("object", resource, parts[2])
    raise _not_found(raw_path)


def _not_found(raw_path: str) -> DavError:
    return DavError(404, f"nothing at {raw_path}")
