"""Whose busy time a free-busy request to the schedule outbox may see
(``gateway.core.schedule_freebusy.recipients``), as a table: every kind of
ATTENDEE address against the caller's grants."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.core.model import Resource, TimeSpan
from gateway.core.schedule_freebusy import (
    DELIVERED,
    INVALID_USER,
    FreeBusyRequest,
    address_mailbox,
    recipients,
)

ANNA = Resource("anna", "Anna", "Anna@Example.com", "Europe/Berlin")
ROOM = Resource("room", "Room 1", "room1@example.com", "Europe/Berlin")
WINDOW = TimeSpan(datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC))


@pytest.mark.parametrize(
    ("address", "readable", "status", "resource"),
    [
        ("mailto:anna@example.com", {"anna"}, DELIVERED, "anna"),
        ("MAILTO:ANNA@EXAMPLE.COM", {"anna"}, DELIVERED, "anna"),  # caseless
        ("mailto: anna@example.com ", {"anna"}, DELIVERED, "anna"),
        ("mailto:room1@example.com", {"anna"}, INVALID_USER, None),  # a resource, not readable
        ("mailto:room1@example.com", {"anna", "room"}, DELIVERED, "room"),
        ("mailto:zoe@example.com", {"anna", "room"}, INVALID_USER, None),  # no resource
        ("anna@example.com", {"anna"}, INVALID_USER, None),  # no mailto: scheme
        ("urn:uuid:anna", {"anna"}, INVALID_USER, None),
        ("/dav/principals/admin/", {"anna"}, INVALID_USER, None),
        ("mailto:", {"anna"}, INVALID_USER, None),
    ],
)
def test_each_attendee_gets_busy_time_only_for_a_readable_resource(
    address: str, readable: set[str], status: str, resource: str | None
) -> None:
    request = FreeBusyRequest("uid-1", "mailto:me@example.com", (address,), WINDOW)
    [answer] = recipients(request, [ANNA, ROOM], readable.__contains__)
    assert answer.address == address
    assert answer.status == status
    assert (answer.resource.id if answer.resource else None) == resource


def test_answers_keep_the_order_of_the_request() -> None:
    asked = ("mailto:room1@example.com", "mailto:nobody@example.com", "mailto:anna@example.com")
    request = FreeBusyRequest("uid-1", "mailto:me@example.com", asked, WINDOW)
    answers = recipients(request, [ANNA, ROOM], lambda rid: True)
    assert [a.address for a in answers] == list(asked)
    assert [a.status for a in answers] == [DELIVERED, INVALID_USER, DELIVERED]


@pytest.mark.parametrize(
    ("address", "mailbox"),
    [
        ("mailto:Anna@Example.com", "anna@example.com"),
        ("Mailto:a@b", "a@b"),
        ("mailto:no-at-sign", None),
        ("http://example.com/", None),
        ("", None),
    ],
)
def test_address_mailbox(address: str, mailbox: str | None) -> None:
    assert address_mailbox(address) == mailbox
