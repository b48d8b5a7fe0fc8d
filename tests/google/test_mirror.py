"""The two-way mirror against the fake Google, through the real client."""

from __future__ import annotations

import json

from gateway.core.mirror import google_event_id
from tests.google.harness import Gateway

ANNA = "anna.google@example.com"


def timed(start: str, end: str, zone: str = "Europe/Berlin") -> dict[str, object]:
    return {
        "start": {"dateTime": start, "timeZone": zone},
        "end": {"dateTime": end, "timeZone": zone},
    }


async def test_two_way_round_trip(gateway: Gateway) -> None:
    fake = gateway.fake
    await gateway.connect("anna", ANNA)

    # Gateway -> Google: a booking appears with full details and our id.
    booking = await gateway.book(
        "anna",
        "2027-03-01T09:00:00+01:00",
        "2027-03-01T10:00:00+01:00",
        "Haircut",
        description="Short back and sides",
        location="Chair 2",
        booker={"name": "Zoë Müller", "email": "zoe@example.com"},
    )
    await gateway.settle()
    event = fake.event(ANNA, google_event_id(booking["id"]))
    assert event["summary"] == "Haircut"
    assert event["description"] == "Short back and sides"
    assert event["location"] == "Chair 2"
    assert [a["email"] for a in event["attendees"]] == ["zoe@example.com"]
    assert event["extendedProperties"]["private"]["calgatewayBookingId"] == booking["id"]
    assert event["start"]["dateTime"].startswith("2027-03-01T09:00:00")

    # Google -> gateway: someone's own appointment becomes a busy block...
    dentist = fake.user_insert(
        ANNA, {"summary": "Dentist", **timed("2027-03-01T11:00:00", "2027-03-01T12:00:00")}
    )
    await gateway.settle()
    blocks = await gateway.busy_blocks("anna")
    assert len(blocks) == 1
    assert blocks[0].booking.title == "Busy"
    assert "Dentist" not in blocks[0].ics  # Google -> gateway is always anonymous
    # ... that blocks bookings, through the API as through anything else.
    refused = await gateway.api(
        "POST",
        "/bookings",
        {
            "resource": "anna",
            "start": "2027-03-01T11:30:00+01:00",
            "end": "2027-03-01T12:30:00+01:00",
            "title": "Colour",
        },
        expect=409,
    )
    assert "busy" in json.dumps(refused).lower()
    # Our own event did not come back as a busy block (no echo).
    assert all(google_event_id(booking["id"]) not in b.uid for b in blocks)

    # Moved in Google: the block moves; deleted in Google: the block goes.
    fake.user_update(ANNA, dentist["id"], timed("2027-03-02T11:00:00", "2027-03-02T12:00:00"))
    await gateway.settle()
    (moved,) = await gateway.busy_blocks("anna")
    assert moved.booking.start.isoformat() == "2027-03-02T11:00:00+01:00"
    fake.user_delete(ANNA, dentist["id"])
    await gateway.settle()
    assert await gateway.busy_blocks("anna") == []

    # Rescheduled and cancelled in the gateway: Google follows.
    await gateway.api(
        "PATCH",
        f"/bookings/{booking['id']}",
        {"start": "2027-03-01T14:00:00+01:00", "end": "2027-03-01T15:00:00+01:00"},
        expect=200,
    )
    await gateway.settle()
    event = fake.event(ANNA, google_event_id(booking["id"]))
    assert event["start"]["dateTime"].startswith("2027-03-01T14:00:00")
    await gateway.api("DELETE", f"/bookings/{booking['id']}", expect=200)
    await gateway.settle()
    assert fake.event(ANNA, google_event_id(booking["id"]))["status"] == "cancelled"
    assert [e["id"] for e in fake.events(ANNA)] == []


async def test_anonymous_mode_leaks_nothing(gateway: Gateway) -> None:
    fake = gateway.fake
    account = "bob.google@example.com"
    await gateway.connect("bob", account)
    secrets = [
        "Root canal",
        "Molar 36, anxious patient",
        "Praxis Dr. Weiß",
        "zoe@example.com",
        "Zoë",
    ]
    booking = await gateway.book(
        "bob",
        "2027-03-01T09:00:00-05:00",
        "2027-03-01T10:00:00-05:00",
        secrets[0],
        description=secrets[1],
        location=secrets[2],
        booker={"name": "Zoë Müller", "email": "zoe@example.com"},
    )
    await gateway.settle()
    event = fake.event(account, google_event_id(booking["id"]))
    assert event["summary"] == "Busy"
    assert "description" not in event and "location" not in event and "attendees" not in event
    # Nothing anywhere in what Google holds or was sent.
    stored = json.dumps(fake.events(account, include_cancelled=True), ensure_ascii=False)
    for secret in secrets:
        assert secret not in stored
    # Also after an edit of the title and description.
    await gateway.api(
        "PATCH", f"/bookings/{booking['id']}", {"title": "Extraction", "description": "x"}
    )
    await gateway.settle()
    stored = json.dumps(fake.events(account, include_cancelled=True), ensure_ascii=False)
    assert "Extraction" not in stored
