"""Domain values: resources, bookings, attendees, time spans."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from .outbox_payloads import Payload, kind_of


class BookingStatus(StrEnum):
    CONFIRMED = "confirmed"
    TENTATIVE = "tentative"
    CANCELLED = "cancelled"


class Origin(StrEnum):
    """Where a calendar object came from."""

    API = "api"
    CALDAV = "caldav"
    GOOGLE = "google"
    IMPORT = "import"  # calgateway import: a calendar file


class PartStat(StrEnum):
    """RFC 5545 section 3.2.12 participation status (the values bookers send)."""

    NEEDS_ACTION = "NEEDS-ACTION"
    ACCEPTED = "ACCEPTED"
    DECLINED = "DECLINED"
    TENTATIVE = "TENTATIVE"
    DELEGATED = "DELEGATED"


@dataclass(frozen=True, slots=True)
class Resource:
    """A bookable resource (staff member, room): one calendar of bookings."""

    id: str
    name: str
    email: str
    timezone: str


@dataclass(frozen=True, slots=True)
class TimeSpan:
    """A half-open interval [start, end) of aware datetimes."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("TimeSpan needs timezone-aware datetimes")
        if self.end < self.start:
            raise ValueError("TimeSpan ends before it starts")

    def overlaps(self, other: TimeSpan) -> bool:
        # Half-open: a booking ending at 10:00 does not clash with one starting at 10:00.
        return self.start < other.end and other.start < self.end

    def meets(self, window: TimeSpan) -> bool:
        """Whether this span of an event or instance is in the time range
        ``window`` by RFC 4791 9.9: ``window.start < end AND window.end >
        start``, and for an instant (start == end: DURATION zero, a DATE-TIME
        without DTEND, or DTEND equal to DTSTART) ``window.start <= start <
        window.end``, so a range that starts at an instant finds it and one
        that ends at it does not. A range of no length holds no instant.

        The one time-range rule of calendar-query and free-busy; the store's
        candidate query (``gateway.store.sqlite.in_span_statement``) is its
        superset. The double-booking check is not a time-range query: there
        an instant takes no time (RFC 5545 3.6.1) and blocks nothing, as it
        shows no busy period in free-busy and the availability API."""
        if self.start == self.end:
            return window.start <= self.start < window.end
        return self.overlaps(window)

    def in_utc(self) -> TimeSpan:
        return TimeSpan(self.start.astimezone(UTC), self.end.astimezone(UTC))


def merge_spans(spans: Iterable[TimeSpan]) -> list[TimeSpan]:
    """Sorted union of spans; touching spans are joined (they leave no free gap)."""
    merged: list[TimeSpan] = []
    for span in sorted((s.in_utc() for s in spans), key=lambda s: (s.start, s.end)):
        if merged and span.start <= merged[-1].end:
            last = merged[-1]
            merged[-1] = TimeSpan(last.start, max(last.end, span.end))
        else:
            merged.append(span)
    return merged


@dataclass(frozen=True, slots=True)
class Attendee:
    email: str
    name: str = ""
    partstat: PartStat = PartStat.NEEDS_ACTION
    # When the attendee gave ``partstat`` (UTC), None when unknown: answers
    # are ordered by it (``gateway.core.answers``). Not part of the value: two
    # attendees with the same answer are equal however their times differ, so
    # "did the answer change" stays a plain comparison.
    answered_at: datetime | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Booking:
    """The parsed fields of one calendar object the gateway reasons about.

    For a recurring object ``start``/``end`` are the first occurrence; the
    object's whole extent is ``CalendarObject.span``.
    """

    id: str
    resource_id: str
    uid: str
    title: str
    start: datetime
    end: datetime
    timezone: str
    created: datetime
    updated: datetime
    description: str = ""
    location: str = ""
    attendees: tuple[Attendee, ...] = ()
    status: BookingStatus = BookingStatus.CONFIRMED
    transparent: bool = False
    origin: Origin = Origin.API
    sequence: int = 0
    recurring: bool = False

    @property
    def blocks_time(self) -> bool:
        """Whether this booking makes its time unavailable (RFC 5545 3.8.2.7 TRANSP)."""
        return self.status is not BookingStatus.CANCELLED and not self.transparent


@dataclass(frozen=True, slots=True)
class CalendarObject:
    """A stored calendar object: the iCalendar text as received plus parsed fields.

    ``span`` is what the time-range index holds: first start to last end of all
    occurrences (``FAR_FUTURE`` for an unbounded recurrence).
    """

    booking: Booking
    ics: str
    span: TimeSpan
    # The object's name in its collection (the last segment of its CalDAV URL,
    # not percent-encoded). CalDAV clients choose it; everything else gets
    # ``default_href(uid)``.
    href: str = ""
    # The schedule tag (RFC 6638 3.2.10): the ETag the object had when its
    # organizer last wrote it (a CalDAV PUT, an import, the gateway's own API
    # create/reschedule/cancel); "" when made so, which is what a new write
    # is. Changes the server makes on its own (an attendee's answer, the
    # SCHEDULE-STATUS of a delivery) save ``replace(obj, ...)`` or pass the
    # old tag on, so it stays. Why an ETag and not a counter: it needs no
    # state beside the text (objects stored before tags existed get theirs
    # from the ETag column), and "the server changed the object since its
    # organizer wrote it" is simply ``etag != schedule_tag``, which is when
    # a PUT with a matching tag must keep the server's changes. Two organizer
    # writes give the same tag only when they are the same text, and then a
    # client holding that tag has seen exactly what was written.
    schedule_tag: str = ""
    # ``etag_for(ics)``, computed on first use (a listing reads it per member,
    # a query again per filter): not a value of its own, so not compared, and
    # ``replace`` (which passes no init=False field) starts a new one afresh.
    _etag: str = field(default="", init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.href:
            object.__setattr__(self, "href", default_href(self.booking.uid))
        if not self.schedule_tag:
            object.__setattr__(self, "schedule_tag", self.etag)

    @classmethod
    def stored(
        cls, booking: Booking, ics: str, span: TimeSpan, href: str, schedule_tag: str, etag: str
    ) -> CalendarObject:
        """The object as a store reads it back, with the ETag it wrote beside
        the text (``etag_for(ics)`` at the write): not hashed again."""
        obj = cls(booking, ics, span, href, schedule_tag)
        object.__setattr__(obj, "_etag", etag)
        return obj

    @property
    def etag(self) -> str:
        etag = self._etag
        if not etag:
            etag = etag_for(self.ics)
            object.__setattr__(self, "_etag", etag)
        return etag

    @property
    def resource_id(self) -> str:
        return self.booking.resource_id

    @property
    def uid(self) -> str:
        return self.booking.uid


FAR_FUTURE = datetime(9999, 12, 31, tzinfo=UTC)


def default_href(uid: str) -> str:
    """The name an object gets when no CalDAV client chose one."""
    return f"{uid}.ics"


@dataclass(frozen=True, slots=True)
class ObjectEntry:
    """What a collection listing needs of an object, without its text."""

    href: str
    uid: str
    etag: str
    # The last change as ISO-8601 text with its offset, as the stores keep it:
    # parsed (``updated``) only when asked, as a listing of 10,000 members
    # rarely asks for getlastmodified.
    updated_text: str
    size: int  # bytes of the UTF-8 text
    revision: int  # the collection revision of the object's last change
    schedule_tag: str = ""  # CalendarObject.schedule_tag

    @property
    def updated(self) -> datetime:
        """The last change, in UTC."""
        return datetime.fromisoformat(self.updated_text).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class StoredText:
    """What a GET of one object needs, read without decoding its booking:
    its validators, and its text unless only the validators were asked for
    (a conditional GET that may end in 304 needs no text)."""

    etag: str
    schedule_tag: str  # CalendarObject.schedule_tag
    updated: datetime
    ics: str | None = None


ANY_ENTITY = "*"


@dataclass(frozen=True, slots=True)
class Precondition:
    """Conditional-request headers of a write (RFC 9110 13.1.1, 13.1.2;
    RFC 6638 8.3 If-Schedule-Tag-Match).

    Each is None when the header was not sent, else the entity tags it lists
    (``ANY_ENTITY`` for ``*``; If-Schedule-Tag-Match names one tag). Checked
    inside the write's transaction, so no other change can slip in between
    the check and the write."""

    if_match: frozenset[str] | None = None
    if_none_match: frozenset[str] | None = None
    if_schedule_tag_match: str | None = None

    def holds(self, current_etag: str | None, schedule_tag: str | None = None) -> bool:
        """Whether the write may go ahead on an object whose current tag is
        ``current_etag`` and schedule tag ``schedule_tag`` (both None: no
        object at that name)."""
        if self.if_match is not None:
            # 13.1.1: "*" needs a current representation; tags compare strongly.
            if current_etag is None:
                return False
            if ANY_ENTITY not in self.if_match and current_etag not in self.if_match:
                return False
        if self.if_none_match is not None and current_etag is not None:
            # 13.1.2: weak comparison, so W/"x" also names "x".
            if ANY_ENTITY in self.if_none_match:
                return False
            weak = {tag.removeprefix("W/") for tag in self.if_none_match}
            if current_etag.removeprefix("W/") in weak:
                return False
        # RFC 6638 8.3: the schedule tag must be the current one (strong
        # comparison); there is none without an object.
        return self.if_schedule_tag_match is None or (
            schedule_tag is not None and schedule_tag == self.if_schedule_tag_match
        )

    def keeps_server_changes(self, current_etag: str, schedule_tag: str) -> bool:
        """Whether a write this precondition let through must keep what the
        server changed on its own since the organizer's last write (RFC 6638
        3.2.10: the attendees' PARTSTAT and SCHEDULE-STATUS): the client
        named the current schedule tag, so it wrote over the organizer's
        version, and the object is no longer that version (its ETag is no
        longer the tag: ``CalendarObject.schedule_tag``). A client that sent
        If-Match instead saw the server's changes and writes what it means."""
        return self.if_schedule_tag_match is not None and current_etag != schedule_tag


def etag_for(ics: str) -> str:
    """Strong entity tag (RFC 9110 8.8.3): same bytes, same tag."""
    return '"' + hashlib.sha256(ics.encode("utf-8")).hexdigest()[:32] + '"'


@dataclass(frozen=True, slots=True)
class Override:
    """One overridden occurrence of a series (a VEVENT with RECURRENCE-ID):
    ``recurrence_id`` the occurrence it replaces, as ISO 8601 text in UTC
    (a DATE as YYYY-MM-DD), which is also how iTIP messages name it."""

    recurrence_id: str
    start: datetime
    end: datetime
    status: BookingStatus = BookingStatus.CONFIRMED


@dataclass(frozen=True, slots=True)
class Recurrence:
    """What makes an object a series, as its text says, in a form that
    compares equal exactly when the series is the same: ``rules`` the
    master's RRULE, RDATE and EXRULE content lines (unfolded, as written),
    ``exdates`` the excluded occurrences (ISO text as in ``Override``),
    ``overrides`` sorted by RECURRENCE-ID. Empty for a single event."""

    rules: tuple[str, ...] = ()
    exdates: frozenset[str] = frozenset()
    overrides: tuple[Override, ...] = ()


@dataclass(frozen=True, slots=True)
class Scheduling:
    """Who sends an object's iTIP messages, as its text says (RFC 6638 7.1):
    ``organizer`` is the ORGANIZER's address ("" when none), ``by_client``
    the attendees marked SCHEDULE-AGENT=CLIENT or NONE (the client, or
    nobody, tells those; the server tells the rest). ``recurrence``: the
    series (RFC 5546 2.1.4 counts a change of it as significant:
    ``before.recurrence != after.recurrence``)."""

    organizer: str = ""
    by_client: frozenset[str] = frozenset()
    recurrence: Recurrence = Recurrence()


@dataclass(frozen=True, slots=True)
class ParsedObject:
    """What the gateway reads out of a calendar object a client sends (CalDAV PUT).

    ``start``/``end`` are the first occurrence; ``span`` runs from the first
    start to the last end of all occurrences (``FAR_FUTURE`` when unbounded).
    """

    uid: str
    component: str
    title: str
    start: datetime
    end: datetime
    timezone: str
    span: TimeSpan
    description: str = ""
    location: str = ""
    attendees: tuple[Attendee, ...] = ()
    status: BookingStatus = BookingStatus.CONFIRMED
    transparent: bool = False
    sequence: int = 0
    recurring: bool = False
    scheduling: Scheduling = Scheduling()

    def booking(
        self,
        *,
        id: str,
        resource_id: str,
        created: datetime,
        updated: datetime,
        origin: Origin = Origin.CALDAV,
    ) -> Booking:
        """The booking this object describes, as a CalDAV PUT stores it."""
        return Booking(
            id=id,
            resource_id=resource_id,
            uid=self.uid,
            title=self.title,
            start=self.start,
            end=self.end,
            timezone=self.timezone,
            created=created,
            updated=updated,
            description=self.description,
            location=self.location,
            attendees=self.attendees,
            status=self.status,
            transparent=self.transparent,
            origin=origin,
            sequence=self.sequence,
            recurring=self.recurring,
        )


@dataclass(frozen=True, slots=True)
class BookingDraft:
    """What a booker asks for when creating a booking."""

    resource_id: str
    title: str
    start: datetime
    end: datetime
    timezone: str | None = None
    description: str = ""
    location: str = ""
    attendees: tuple[Attendee, ...] = ()

    def fingerprint(self) -> str:
        """Stable digest of the request, to tell a retry from a reused idempotency key."""
        parts = [
            self.resource_id,
            self.title,
            self.start.astimezone(UTC).isoformat(),
            self.end.astimezone(UTC).isoformat(),
            self.timezone or "",
            self.description,
            self.location,
            *(f"{a.email}|{a.name}" for a in self.attendees),
        ]
        return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class BookingChanges:
    """A partial update; ``None`` leaves the field as it is."""

    start: datetime | None = None
    end: datetime | None = None
    timezone: str | None = None
    title: str | None = None
    description: str | None = None
    location: str | None = None

    @property
    def moves_time(self) -> bool:
        return self.start is not None or self.end is not None


@dataclass(frozen=True, slots=True)
class OutboxEffect:
    """A side effect to run after commit (send invitation, push to Google):
    its payload's type says which (``gateway.core.outbox_payloads``)."""

    resource_id: str
    booking_id: str
    payload: Payload

    @property
    def kind(self) -> str:
        return kind_of(self.payload)


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A queued effect as the store hands it to a worker."""

    id: int
    effect: OutboxEffect
    attempts: int
    created: datetime
    # The previous run of this item started its effect (it was marked
    # "sending") and never reported back: a crash, or a lease that ran out.
    # The effect may have happened (see ``gateway.core.outbox``).
    maybe_done: bool = False


@dataclass(frozen=True, slots=True)
class FailedOutboxItem:
    """An effect closed for good without happening (a permanent failure, like
    a mailbox the mail server refuses), for the admin to look at."""

    id: int
    kind: str
    resource_id: str
    booking_id: str
    failed: datetime
    reason: str


class ChangeKind(StrEnum):
    PUT = "put"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class Change:
    """One row of a collection's change log (sync tokens, feeds)."""

    revision: int
    uid: str
    kind: ChangeKind
    href: str
