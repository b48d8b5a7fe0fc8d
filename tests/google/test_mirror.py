"""The two-way mirror against the fake Google, through the real client."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from fake_google.calendar import FakeGoogle
from gateway.core.mirror import google_event_id
from gateway.web.keys import OUTBOX
from google_bridge.tokens import new_key
from tests.backends import Store
from tests.google.harness import RESOURCES, Gateway, at, gtime, running_gateway
from tests.smtp import Recorder

ANNA = "anna.google@example.com"
HOUR = timedelta(hours=1)


def google_start(event: dict[str, Any]) -> str:
    return str(event["start"]["dateTime"])


async def test_two_way_round_trip(gateway: Gateway) -> None:
    fake = gateway.fake
    await gateway.connect("anna", ANNA)

    # Gateway -> Google: a booking appears with full details and our id.
    nine = at(7, 9)
    booking = await gateway.book(
        "anna",
        nine,
        nine + HOUR,
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
    assert google_start(event) == nine.isoformat()

    # Google -> gateway: someone's own appointment becomes a busy block...
    eleven = at(7, 11)
    dentist = fake.user_insert(ANNA, {"summary": "Dentist", **gtime(eleven, eleven + HOUR)})
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
            "start": (eleven + HOUR / 2).isoformat(),
            "end": (eleven + HOUR * 1.5).isoformat(),
            "title": "Colour",
        },
        expect=409,
    )
    assert "busy" in json.dumps(refused).lower()
    # Our own event did not come back as a busy block (no echo).
    assert all(google_event_id(booking["id"]) not in b.uid for b in blocks)

    # Moved in Google: the block moves; deleted in Google: the block goes.
    next_day = at(8, 11)
    fake.user_update(ANNA, dentist["id"], gtime(next_day, next_day + HOUR))
    await gateway.settle()
    (moved,) = await gateway.busy_blocks("anna")
    assert moved.booking.start == next_day
    fake.user_delete(ANNA, dentist["id"])
    await gateway.settle()
    assert await gateway.busy_blocks("anna") == []

    # Rescheduled and cancelled in the gateway: Google follows.
    await gateway.api(
        "PATCH",
        f"/bookings/{booking['id']}",
        {"start": at(7, 14).isoformat(), "end": at(7, 15).isoformat()},
        expect=200,
    )
    await gateway.settle()
    event = fake.event(ANNA, google_event_id(booking["id"]))
    assert google_start(event) == at(7, 14).isoformat()
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
        at(7, 15),
        at(7, 16),
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


async def test_our_event_edited_or_deleted_in_google_is_written_back(gateway: Gateway) -> None:
    fake = gateway.fake
    await gateway.connect("anna", ANNA)
    booking = await gateway.book("anna", at(5, 9), at(5, 10), "Colour")
    await gateway.settle()
    event_id = google_event_id(booking["id"])

    # Someone drags it to another hour in Google: the gateway's booking wins.
    fake.user_update(ANNA, event_id, {"summary": "Moved by hand", **gtime(at(5, 15), at(5, 16))})
    await gateway.settle()
    event = fake.event(ANNA, event_id)
    assert event["summary"] == "Colour"
    assert google_start(event) == at(5, 9).isoformat()
    conflicts = [e for e in await gateway.admin.log("anna") if e.kind.value == "conflict"]
    assert len(conflicts) == 1 and "changed in Google Calendar" in conflicts[0].message
    # It does not count as a busy block, and the booking itself did not move.
    assert await gateway.busy_blocks("anna") == []
    assert (await gateway.api("GET", f"/bookings/{booking['id']}"))["title"] == "Colour"

    # Deleted in Google: it comes back.
    fake.user_delete(ANNA, event_id)
    await gateway.settle()
    assert fake.event(ANNA, event_id)["status"] == "confirmed"
    writes = fake.write_count(ANNA)
    await gateway.settle()
    assert fake.write_count(ANNA) == writes  # and then it stays quiet


async def test_google_event_over_a_booking_keeps_the_booking_and_logs_the_conflict(
    gateway: Gateway,
) -> None:
    fake = gateway.fake
    await gateway.connect("anna", ANNA)
    booking = await gateway.book("anna", at(6, 9), at(6, 10), "Perm")
    await gateway.settle()
    fake.user_insert(ANNA, {"summary": "Doctor", **gtime(at(6, 9, 30), at(6, 10, 30))})
    await gateway.settle()

    assert len(await gateway.busy_blocks("anna")) == 1  # the Google event blocks time
    kept = await gateway.api("GET", f"/bookings/{booking['id']}", expect=200)
    assert kept["status"] == "confirmed"
    (conflict,) = [e for e in await gateway.admin.log("anna") if e.kind.value == "conflict"]
    assert conflict.booking_id == booking["id"]
    assert "'Perm'" in conflict.message and "kept" in conflict.message
    assert "Doctor" not in conflict.message  # Google -> gateway stays anonymous


async def test_update_with_a_stale_etag_rereads_and_wins(gateway: Gateway) -> None:
    fake = gateway.fake
    await gateway.connect("anna", ANNA)
    booking = await gateway.book("anna", at(6, 14), at(6, 15), "Cut")
    await gateway.settle()
    event_id = google_event_id(booking["id"])
    # A change in Google the gateway has not synced yet (its notification is
    # lost): the etag we hold is stale.
    fake.drop_notifications = True
    fake.user_update(ANNA, event_id, {"colorId": "5"})
    await gateway.api("PATCH", f"/bookings/{booking['id']}", {"title": "Cut and dry"}, expect=200)
    await gateway.app[OUTBOX].settle()  # the push only, no sync in between

    event = fake.event(ANNA, event_id)
    assert event["summary"] == "Cut and dry"
    calls = [r for r in fake.requests if r.path.endswith(f"/events/{event_id}")]
    assert [r.method for r in calls][-3:] == ["PUT", "GET", "PUT"]  # 412, re-read, write


@pytest.mark.parametrize("direction", ["from_google", "off"])
async def test_a_direction_change_leaves_no_stale_event_in_google(
    tmp_path: Path, store: Store, fake: FakeGoogle, mail: tuple[Recorder, int], direction: str
) -> None:
    """A direction change applies to new bookings; the events already written
    to Google keep following their bookings (moved, cancelled) there."""
    key = new_key()
    async with running_gateway(tmp_path, store, fake, mail, key=key) as first:
        await first.connect("anna", ANNA)
        made = [await first.book("anna", at(3 + n, 9), at(3 + n, 10), f"Cut {n}") for n in range(5)]
        await first.settle()
    changed = RESOURCES.replace(
        "    timezone: Europe/Berlin\n    feed_tokens",
        f"    timezone: Europe/Berlin\n    google: {{direction: {direction}}}\n    feed_tokens",
        1,
    )
    async with running_gateway(tmp_path, store, fake, mail, key=key, resources=changed) as second:
        for n, booking in enumerate(made[:3]):
            await second.api(
                "PATCH",
                f"/bookings/{booking['id']}",
                {"start": at(3 + n, 15).isoformat(), "end": at(3 + n, 16).isoformat()},
                expect=200,
            )
        for booking in made[3:]:
            await second.api("DELETE", f"/bookings/{booking['id']}", expect=200)
        new = await second.book("anna", at(9, 9), at(9, 10), "After the change")
        await second.settle()

    for n, booking in enumerate(made[:3]):
        event = fake.event(ANNA, google_event_id(booking["id"]))
        assert google_start(event) == at(3 + n, 15).isoformat(), n
    for booking in made[3:]:
        assert fake.event(ANNA, google_event_id(booking["id"]))["status"] == "cancelled"
    # New bookings follow the new direction: not written to Google.
    assert google_event_id(new["id"]) not in {e["id"] for e in fake.events(ANNA)}
