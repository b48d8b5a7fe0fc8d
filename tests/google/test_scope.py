"""What is mirrored where: directions, recurring events and their horizon,
CalDAV and feeds, and settings changes that apply to future events only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from fake_google.calendar import FakeGoogle
from gateway.core.mirror import LinkKind, google_event_id
from gateway.core.mirror_admin import MirrorDisabled
from google_bridge.tokens import new_key
from tests.backends import Store
from tests.conftest import ADMIN_PASSWORD, basic
from tests.google.harness import BERLIN, RESOURCES, Gateway, at, gtime, running_gateway
from tests.google.test_mirror import ANNA
from tests.smtp import Recorder
from tests.test_cli import run

HOUR = timedelta(hours=1)


def local_basic(value: datetime) -> str:
    return value.astimezone(BERLIN).strftime("%Y%m%dT%H%M%S")


async def test_recurring_google_event_and_its_exceptions_within_the_horizon(
    gateway: Gateway,
) -> None:
    fake = gateway.fake
    await gateway.connect("anna", ANNA)
    first = at(3, 10)
    weekly = fake.user_insert(
        ANNA,
        {
            "summary": "Team meeting",
            **gtime(first, first + HOUR),
            "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=6"],
        },
    )
    endless = fake.user_insert(
        ANNA,
        {"summary": "Yoga", **gtime(at(4, 18), at(4, 19)), "recurrence": ["RRULE:FREQ=DAILY"]},
    )
    await gateway.settle()
    weekly_blocks = [b for b in await gateway.busy_blocks("anna") if weekly["id"] in b.uid]
    assert sorted(b.booking.start for b in weekly_blocks) == [
        first + timedelta(weeks=n) for n in range(6)
    ]
    # An endless series is imported up to the horizon (import_horizon_days: 120).
    yoga = [b for b in await gateway.busy_blocks("anna") if endless["id"] in b.uid]
    # The horizon is 120 days of elapsed time (UTC), not of Berlin wall time:
    # across a DST change the two differ by an hour, and an 18:00 instance
    # fell between them when this ran from 17:00 to 18:00 in winter.
    horizon = datetime.now(UTC) + timedelta(days=120)
    assert 100 < len(yoga) <= 120
    assert max(b.booking.start for b in yoga) <= horizon

    # One instance moved, one cancelled: the blocks follow.
    second = first + timedelta(weeks=1)
    third = first + timedelta(weeks=2)
    # Instance ids: the series id and the original start in UTC (Events reference).
    second_id = f"{weekly['id']}_{second.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    third_id = f"{weekly['id']}_{third.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    fake.user_update(ANNA, second_id, gtime(second + 2 * HOUR, second + 3 * HOUR))
    fake.user_delete(ANNA, third_id)
    await gateway.settle()
    weekly_blocks = [b for b in await gateway.busy_blocks("anna") if weekly["id"] in b.uid]
    assert sorted(b.booking.start for b in weekly_blocks) == sorted(
        [first + timedelta(weeks=n) for n in (0, 3, 4, 5)] + [second + 2 * HOUR]
    )
    # The whole series deleted: every block goes.
    fake.user_delete(ANNA, weekly["id"])
    await gateway.settle()
    assert not [b for b in await gateway.busy_blocks("anna") if weekly["id"] in b.uid]


async def test_directions_decide_what_goes_where(gateway: Gateway) -> None:
    fake = gateway.fake
    for resource, account in (("room", "room@example.com"), ("carl", "carl@example.com")):
        await gateway.connect(resource, account)
        fake.user_insert(account, {"summary": "Elsewhere", **gtime(at(2, 9), at(2, 10))})
    room = await gateway.book("room", at(3, 9), at(3, 10), "Workshop")
    carl = await gateway.book("carl", at(3, 9), at(3, 10), "Consultation")
    await gateway.settle()

    # from_google: Google's events block the room; its bookings stay here.
    assert len(await gateway.busy_blocks("room")) == 1
    assert google_event_id(room["id"]) not in {e["id"] for e in fake.events("room@example.com")}
    # to_google: Carl's bookings go to Google; his other events stay there.
    assert await gateway.busy_blocks("carl") == []
    assert google_event_id(carl["id"]) in {e["id"] for e in fake.events("carl@example.com")}

    # off: no invitation at all, with the reason.
    try:
        await gateway.admin.invite("dora")
    except MirrorDisabled as refused:
        assert "off" in str(refused)
    else:
        raise AssertionError("an invitation for a resource with direction off")


async def test_busy_blocks_show_in_caldav_and_feeds_and_are_read_only(gateway: Gateway) -> None:
    fake = gateway.fake
    await gateway.connect("anna", ANNA)
    fake.user_insert(
        ANNA,
        {
            "summary": "Therapy",
            "description": "private",
            "location": "Secret St 1",
            **gtime(at(2, 9), at(2, 10)),
        },
    )
    await gateway.settle()
    (block,) = await gateway.busy_blocks("anna")
    auth = basic("admin", ADMIN_PASSWORD)
    href = f"{gateway.url}/dav/calendars/anna/{block.href}"
    async with gateway.http.get(href, headers=auth) as reply:
        text = await reply.text()
        assert reply.status == 200
    assert "SUMMARY:Busy" in text
    for secret in ("Therapy", "private", "Secret St"):
        assert secret not in text
    async with gateway.http.get(
        f"{gateway.url}/feeds/anna.ics?token=anna-feed-token-0123456789abcdef"
    ) as reply:
        feed = await reply.text()
    assert f"DTSTART:{at(2, 9).astimezone(UTC):%Y%m%dT%H%M%SZ}" in feed
    assert "Therapy" not in feed

    # Changing it here would be undone by the next sync: refused, with why.
    async with gateway.http.put(
        href,
        data=text.replace("SUMMARY:Busy", "SUMMARY:Mine"),
        headers={**auth, "Content-Type": "text/calendar"},
    ) as reply:
        assert reply.status == 403
        assert "Google" in await reply.text()
    async with gateway.http.delete(href, headers=auth) as reply:
        assert reply.status == 403


async def test_caldav_bookings_are_mirrored_too(gateway: Gateway) -> None:
    fake = gateway.fake
    await gateway.connect("anna", ANNA)
    start = at(4, 9)
    ics = "\r\n".join(
        [
            "BEGIN:VCALENDAR",
            "VERSION:2.0",
            "PRODID:-//test//EN",
            "BEGIN:VEVENT",
            "UID:weekly-coaching@example.com",
            "DTSTAMP:20260101T000000Z",
            f"DTSTART;TZID=Europe/Berlin:{local_basic(start)}",
            f"DTEND;TZID=Europe/Berlin:{local_basic(start + HOUR)}",
            "RRULE:FREQ=WEEKLY;COUNT=4",
            "SUMMARY:Coaching",
            "END:VEVENT",
            "END:VCALENDAR",
            "",
        ]
    )
    auth = basic("admin", ADMIN_PASSWORD)
    href = f"{gateway.url}/dav/calendars/anna/coaching.ics"
    async with gateway.http.put(
        href, data=ics, headers={**auth, "Content-Type": "text/calendar"}
    ) as reply:
        assert reply.status == 201
    await gateway.settle()
    obj = await gateway.repo.get_by_href("anna", "coaching.ics")
    event = fake.event(ANNA, google_event_id(obj.booking.id))
    assert event["summary"] == "Coaching"
    assert event["recurrence"] == ["RRULE:FREQ=WEEKLY;COUNT=4"]
    # Its occurrences come back as its own (no busy blocks for our series).
    assert await gateway.busy_blocks("anna") == []

    async with gateway.http.delete(href, headers=auth) as reply:
        assert reply.status == 204
    await gateway.settle()
    assert fake.event(ANNA, google_event_id(obj.booking.id))["status"] == "cancelled"


async def test_a_settings_change_applies_to_future_events_only(
    tmp_path: Path, store: Store, fake: FakeGoogle, mail: tuple[Recorder, int]
) -> None:
    key = new_key()
    async with running_gateway(tmp_path, store, fake, mail, key=key) as gateway:
        await gateway.connect("anna", ANNA)
        before = await gateway.book("anna", at(2, 9), at(2, 10), "Full details")
        await gateway.settle()
        port = gateway.port

    anonymous = RESOURCES.replace(
        "    timezone: Europe/Berlin\n",
        "    timezone: Europe/Berlin\n    google: {details: anonymous}\n",
        1,
    )
    async with running_gateway(
        tmp_path, store, fake, mail, key=key, port=port, resources=anonymous
    ) as gateway:
        gateway.calendars["anna"] = ANNA
        after = await gateway.book("anna", at(3, 9), at(3, 10), "New secret")
        await gateway.api("PATCH", f"/bookings/{before['id']}", {"title": "Still full"})
        await gateway.settle()
        assert fake.event(ANNA, google_event_id(after["id"]))["summary"] == "Busy"
        # The event mirrored before the change keeps its detail level.
        assert fake.event(ANNA, google_event_id(before["id"]))["summary"] == "Still full"
        links = {
            link.booking_id: link for link in await gateway.repo.links("anna", LinkKind.PUSHED)
        }
        assert links[after["id"]].details.value == "anonymous"


async def test_token_keys_rotate_without_a_reconnect(
    tmp_path: Path, store: Store, fake: FakeGoogle, mail: tuple[Recorder, int]
) -> None:
    old, new = new_key(), new_key()
    async with running_gateway(tmp_path, store, fake, mail, key=old) as gateway:
        await gateway.connect("anna", ANNA)
        port = gateway.port
        sealed = (await gateway.repo.get_connection("anna")).refresh_token

    # New key first, old one still listed: the command re-encrypts...
    async with running_gateway(
        tmp_path, store, fake, mail, key=f"{new}, {old}", port=port
    ) as gateway:
        config = gateway.config
    result = run("google", "rotate-keys", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "1 stored Google token" in result.stdout

    # ... so that the old key can go, and the mirror still works.
    async with running_gateway(tmp_path, store, fake, mail, key=new, port=port) as gateway:
        gateway.calendars["anna"] = ANNA
        connection = await gateway.repo.get_connection("anna")
        assert connection.refresh_token != sealed
        booking = await gateway.book("anna", at(2, 9), at(2, 10), "After rotation")
        await gateway.settle()
        assert google_event_id(booking["id"]) in {e["id"] for e in fake.events(ANNA)}
        assert (await gateway.admin.status("anna")).connection.warning is None


async def test_busy_blocks_cannot_be_changed_through_the_api(gateway: Gateway) -> None:
    await gateway.connect("anna", ANNA)
    gateway.fake.user_insert(ANNA, {"summary": "Private", **gtime(at(2, 9), at(2, 10))})
    await gateway.settle()
    (block,) = await gateway.busy_blocks("anna")
    seen = await gateway.api("GET", f"/bookings/{block.booking.id}", expect=200)
    assert seen["title"] == "Busy"
    for method, body in (("PATCH", {"title": "Mine now"}), ("DELETE", None)):
        refused = await gateway.api(method, f"/bookings/{block.booking.id}", body, expect=403)
        assert "Google" in refused["detail"]
    assert len(await gateway.busy_blocks("anna")) == 1
