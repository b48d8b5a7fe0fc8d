"""The API's JSON of a booking (``BookingOut.of``), built without validation
(issue 17), is byte for byte what the validated model gives."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.invitations import CalendarLinks
from gateway.core.model import Attendee, Booking, BookingStatus, Origin, PartStat
from gateway.front.api.schemas import AttendeeOut, BookingOut, CalendarLinksOut

ZONES = ["UTC", "Europe/Berlin", "America/St_Johns", "Asia/Kathmandu", "Pacific/Apia"]
text = st.text(max_size=20)
instants = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
)
attendees = st.builds(
    Attendee, email=st.emails(), name=text, partstat=st.sampled_from(list(PartStat))
)


@st.composite
def bookings(draw: st.DrawFn) -> Booking:
    zone = draw(st.sampled_from(ZONES))
    start = draw(instants).astimezone(ZoneInfo(zone))
    return Booking(
        id=draw(st.text(min_size=1, max_size=32)),
        resource_id=draw(st.text(min_size=1, max_size=10)),
        uid=draw(st.text(min_size=1, max_size=40)),
        title=draw(text),
        start=start,
        end=start + draw(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=31))),
        timezone=zone,
        created=draw(instants),
        updated=draw(instants),
        description=draw(text),
        location=draw(text),
        attendees=tuple(draw(st.lists(attendees, max_size=3))),
        status=draw(st.sampled_from(list(BookingStatus))),
        origin=draw(st.sampled_from(list(Origin))),
        sequence=draw(st.integers(min_value=0, max_value=2**31)),
    )


def _links(booking: Booking) -> CalendarLinks:
    return CalendarLinks(
        google=f"https://g.example/{booking.id}",
        outlook="https://o.example/?a=1&b=2",
        office365="https://m.example/ö",
        yahoo="https://y.example/",
        ics=f"https://gw.example/invites/{booking.id}.ics",
    )


def _validated(booking: Booking, with_links: bool) -> BookingOut:
    """The model as it was built before issue 17: every field validated."""
    shown = None
    if with_links and booking.status is not BookingStatus.CANCELLED:
        shown = CalendarLinksOut(**_links(booking).as_dict())
    people = [
        AttendeeOut(email=a.email, name=a.name, partstat=a.partstat.value)
        for a in booking.attendees
    ]
    return BookingOut(
        id=booking.id,
        resource=booking.resource_id,
        uid=booking.uid,
        title=booking.title,
        description=booking.description,
        location=booking.location,
        start=booking.start,
        end=booking.end,
        timezone=booking.timezone,
        status=booking.status.value,
        sequence=booking.sequence,
        origin=booking.origin.value,
        booker=people[0] if people else None,
        attendees=people,
        created=booking.created,
        updated=booking.updated,
        links=shown,
    )


@settings(max_examples=300, deadline=None)
@given(booking=bookings(), with_links=st.booleans())
def test_the_json_of_a_booking_is_that_of_the_validated_model(
    booking: Booking, with_links: bool
) -> None:
    built = BookingOut.of(booking, _links if with_links else None)
    expected = _validated(booking, with_links)
    assert built == expected
    assert json.dumps(built.model_dump(mode="json")) == json.dumps(expected.model_dump(mode="json"))
    assert built.model_dump_json() == expected.model_dump_json()
