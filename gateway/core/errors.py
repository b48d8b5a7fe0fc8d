"""Errors the core raises; front ends map them to protocol answers."""

from __future__ import annotations

from .model import TimeSpan


class GatewayError(Exception):
    """Base of every error the core raises on purpose."""


class NotFound(GatewayError):
    def __init__(self, what: str, ident: str) -> None:
        super().__init__(f"{what} {ident!r} not found")
        self.what = what
        self.ident = ident


class InvalidBooking(GatewayError):
    """A request that breaks a rule of the domain; ``field`` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class BookingConflict(GatewayError):
    """The requested time overlaps busy time of the same resource."""

    def __init__(self, resource_id: str, conflicts: list[TimeSpan]) -> None:
        super().__init__(f"resource {resource_id!r} is busy during the requested time")
        self.resource_id = resource_id
        self.conflicts = conflicts


class IdempotencyKeyReused(GatewayError):
    """The same idempotency key came back with a different request."""

    def __init__(self, key: str) -> None:
        super().__init__(f"idempotency key {key!r} was already used for a different request")
        self.key = key


class InvalidCalendarData(GatewayError):
    """A calendar object the gateway cannot store.

    ``precondition`` is the RFC 4791 section 5.3.2.1 precondition it fails
    (``valid-calendar-data``, ``valid-calendar-object-resource``,
    ``supported-calendar-component``, ...), which CalDAV answers name in the
    error body; ``message`` says what exactly is wrong, for people."""

    def __init__(self, precondition: str, message: str) -> None:
        super().__init__(f"{precondition}: {message}")
        self.precondition = precondition
        self.message = message


class RecurrenceLimit(InvalidCalendarData):
    """A calendar object beyond what the gateway's ``limits`` settings allow
    (a rule repeating every second, more instances or overrides than a
    booking calendar needs). The object is well formed, so RFC 4791 5.3.2.1
    has CalDAV refuse it with 403 and ``max-instances`` (too many instances)
    or ``valid-calendar-data`` (a rule no time zone has)."""


class ExpansionLimit(GatewayError):
    """Expanding one stored recurring object for one request would take more
    steps, seconds or instances than ``limits`` allow, so the answer for it
    cannot be given (never a silently shortened one). CalDAV answers 507
    (RFC 4918 11.5) for that object, the API 507; ``uid`` names the object."""

    def __init__(self, uid: str, message: str) -> None:
        super().__init__(message)
        self.uid = uid
        self.message = message


class PreconditionFailed(GatewayError):
    """If-Match / If-None-Match did not hold (RFC 9110 13.1): the object
    changed since the client read it, or exists when it should not."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UidConflict(GatewayError):
    """The UID is already used by another object of the collection (RFC 4791
    5.3.2.1 ``no-uid-conflict``); ``href`` names that object. UIDs are unique
    across the gateway: ``resource_id`` is set when the object is in another
    collection (whose user may not be allowed to learn its name, so the
    message then names neither), ``href`` is empty when the UID is reserved."""

    def __init__(
        self, uid: str, href: str, message: str | None = None, *, resource_id: str | None = None
    ) -> None:
        if message is None:
            message = (
                f"UID {uid!r} is already used by the calendar object {href!r}"
                if resource_id is None
                else f"UID {uid!r} is already used by a calendar object of another calendar"
            )
        super().__init__(message)
        self.uid = uid
        self.href = href
        self.resource_id = resource_id


class AmbiguousReply(GatewayError):
    """An attendee's reply names a UID that several bookings hold (stored
    before UIDs were unique) and nothing in it tells which one it answers."""

    def __init__(self, uid: str, message: str) -> None:
        super().__init__(message)
        self.uid = uid


class ImportedObject(GatewayError):
    """The object is a busy block mirrored from Google: it changes there, and
    the next sync would undo any change made here."""

    def __init__(self, href: str) -> None:
        super().__init__(
            f"{href!r} is a busy block imported from Google Calendar; change or delete the "
            "event in Google Calendar instead"
        )
        self.href = href


class StorageFull(GatewayError):
    """The database cannot be written because its disk (or quota, or size
    limit) is full. Nothing was written; the same request succeeds once an
    operator frees space. Front ends answer 507 (CalDAV, RFC 4918 11.5) or
    503 with Retry-After (API); ``message`` says so in words."""

    # Seconds a client is asked to wait (Retry-After): freeing space takes a
    # person, so a client hammering the server helps nobody.
    retry_after = 60

    def __init__(self, detail: str) -> None:
        message = (
            "storage is full: the gateway cannot save changes until its operator frees disk "
            f"space ({detail}); nothing was saved, try again later"
        )
        super().__init__(message)
        self.detail = detail
        self.message = message


class BusyTimeUnverified(GatewayError):
    """A booking was not decided: its resource imports busy time from Google,
    that busy time is older than ``google.freshness_seconds``, Google could
    not be asked in time, and the resource's ``when_stale`` is ``refuse``
    (``gateway.core.freshness``). Nothing was written. Front ends answer 503
    with ``Retry-After`` (RFC 9110 15.6.4): the condition is temporary."""

    def __init__(self, resource_id: str, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.resource_id = resource_id
        self.message = message
        self.retry_after = retry_after
