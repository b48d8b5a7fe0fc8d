"""Free-busy for scheduling clients (RFC 6638 5): whose busy time a
VFREEBUSY request to a user's schedule outbox may see.

A scheduling client (Thunderbird's and Apple Calendar's attendee
availability) asks the outbox for the busy time of calendar user addresses.
Here those addresses are the resources' e-mail addresses; an address answers
with that resource's busy time only if the signed-in user may read its
calendar. Any other address (no resource, or one the user may not read)
answers the same 3.7 "invalid calendar user" (RFC 6638 3.2.10 / RFC 5546
3.6), so the answer tells nobody which resources exist beyond their grants.

The decision is ``recipients``; parsing the request and rendering each
VFREEBUSY reply are the codec's (``ports.CalendarQuerying``). This module
does not look at the ORGANIZER beyond its presence: users here have no
calendar user address of their own, and the answer depends only on the
signed-in user's grants.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from .invitations import mailbox
from .model import Resource, TimeSpan

# RFC 5546 3.6 request-status values used by RFC 6638 schedule-response.
DELIVERED = "2.0;Success"
INVALID_USER = "3.7;Invalid calendar user"

# At most this many distinct recipients in one request; each costs a query.
MAX_RECIPIENTS = 100


@dataclass(frozen=True, slots=True)
class FreeBusyRequest:
    """A VFREEBUSY with METHOD:REQUEST (RFC 5546 3.3.2): who asks, about
    whom (ATTENDEE values as sent, duplicates kept out), for which span."""

    uid: str
    organizer: str
    attendees: tuple[str, ...]
    window: TimeSpan


@dataclass(frozen=True, slots=True)
class Recipient:
    """The answer for one ATTENDEE: ``resource`` is whose busy time to send
    (with ``DELIVERED``), or None (with ``INVALID_USER``)."""

    address: str
    status: str
    resource: Resource | None


def address_mailbox(address: str) -> str | None:
    """The mailbox of a ``mailto:`` calendar user address (scheme caseless,
    RFC 3986 3.1), else None: only e-mail addresses name resources."""
    scheme, colon, rest = address.strip().partition(":")
    if not colon or scheme.casefold() != "mailto" or "@" not in rest:
        return None
    return mailbox(rest)


def recipients(
    request: FreeBusyRequest,
    resources: Iterable[Resource],
    can_read: Callable[[str], bool],
) -> list[Recipient]:
    """One answer per ATTENDEE of ``request``, in its order."""
    by_mailbox: Mapping[str, Resource] = {mailbox(r.email): r for r in resources}
    answers = []
    for address in request.attendees:
        key = address_mailbox(address)
        resource = None if key is None else by_mailbox.get(key)
        if resource is not None and can_read(resource.id):
            answers.append(Recipient(address, DELIVERED, resource))
        else:
            answers.append(Recipient(address, INVALID_USER, None))
    return answers
