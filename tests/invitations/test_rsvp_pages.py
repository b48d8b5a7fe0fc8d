"""The signed accept/decline pages and the .ics download, through the real
app: bookings made through the API, answers read back from the API and over
CalDAV."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import icalendar
import pytest
import vobject
from aiohttp import web

from gateway.app import create_app
from gateway.core.model import PartStat
from gateway.settings import load_settings
from tests.backends import Store, Stores
from tests.conftest import ADMIN_PASSWORD, basic, settings_yaml
from tests.dbcheck import row_counts
from tests.invitations import (
    LINK_KEY,
    ORGANIZER,
    PUBLIC_URL,
    Client,
    book,
    booking_json,
    invitation_yaml,
    partstat_of,
    rsvp_path,
)

WINDOW = {"resource": "anna", "start": "2026-12-01T00:00:00Z", "end": "2026-12-02T00:00:00Z"}
MakeClient = Callable[[web.Application], Awaitable[Client]]


@pytest.fixture
def config_file(tmp_path: Path, store: Store) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(invitation_yaml(store.url), encoding="utf-8")
    return path


def written(store: Store) -> dict[str, int]:
    """What any change of a calendar bumps: objects, change log, revisions."""
    counts = row_counts(store)
    return {k: counts[k] for k in ("objects", "changes", "revision")}


def assert_page_headers(resp: Any) -> None:
    assert resp.content_type == "text/html"
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]


def checked_answer(page: str) -> str | None:
    """The answer the page's form has chosen."""
    found = re.search(r'name="answer" id="[^"]+" value="([A-Z]+)" checked', page)
    return found[1] if found else None


def current_answer(page: str) -> str | None:
    """The answer the page's form marks as the one recorded now."""
    found = re.search(r'value="([A-Z]+)"[^>]*>\s*<label[^>]*>[^<]*<span class="current">', page)
    return found[1] if found else None


async def caldav_partstat(client: Client, booking: dict[str, Any]) -> str:
    resp = await client.get(
        f"/dav/calendars/anna/{booking['uid']}.ics", headers=basic("admin", ADMIN_PASSWORD)
    )
    assert resp.status == 200
    event = icalendar.Calendar.from_ical(await resp.text()).walk("VEVENT")[0]
    attendee = event["ATTENDEE"]  # one attendee: one value, not a list
    assert str(attendee).lower() == "mailto:zoe@example.com"
    return str(attendee.params["PARTSTAT"])


# -- GET: a page, nothing else ---------------------------------------------------------


async def test_get_shows_the_booking_and_the_answers_and_changes_nothing(
    client: Client, api_headers: dict[str, str], store: Store
) -> None:
    booking = await book(client, api_headers)
    before = written(store)
    for _ in range(2):  # a mail scanner, then the booker
        resp = await client.get(rsvp_path(booking, PartStat.ACCEPTED))
        assert resp.status == 200
        assert_page_headers(resp)
        page = await resp.text()
        assert "<h1>Haircut</h1>" in page
        assert "Tuesday, 1 December 2026, 09:00\u201310:00 (Central European Standard Time)" in page
        assert "Chair 2" in page
        assert "Anna Schmidt" in page
        # One form with all three answers, the link's own chosen.
        assert page.count("<form") == 1
        assert checked_answer(page) == "ACCEPTED"
        assert page.index("Yes, I accept") < page.index("Maybe, I might come")
        assert page.index("Maybe, I might come") < page.index("No, I decline")
    head = await client.head(rsvp_path(booking, PartStat.ACCEPTED))
    assert head.status == 200
    assert written(store) == before
    assert await partstat_of(client, api_headers, booking["id"]) == "NEEDS-ACTION"
    assert await caldav_partstat(client, booking) == "NEEDS-ACTION"

    decline = await (await client.get(rsvp_path(booking, PartStat.DECLINED))).text()
    assert checked_answer(decline) == "DECLINED"
    assert "Yes, I accept" in decline and "Maybe, I might come" in decline


async def test_everything_on_the_page_is_escaped(
    client: Client, api_headers: dict[str, str]
) -> None:
    booking = await book(
        client,
        api_headers,
        title='<script>alert("t")</script>',
        location="<img src=x onerror=alert(1)> & co",
    )
    for partstat in (PartStat.ACCEPTED, PartStat.DECLINED):
        for method in ("GET", "POST"):
            resp = await client.request(method, rsvp_path(booking, partstat))
            page = await resp.text()
            assert "<script>" not in page
            assert "<img" not in page
            assert "&lt;script&gt;alert(&#34;t&#34;)&lt;/script&gt;" in page
            assert "&lt;img src=x onerror=alert(1)&gt; &amp; co" in page


# -- POST: the answer ------------------------------------------------------------------


async def test_post_accepts_and_a_second_post_says_it_is_recorded(
    client: Client, api_headers: dict[str, str], store: Store
) -> None:
    booking = await book(client, api_headers)
    path = rsvp_path(booking, PartStat.ACCEPTED)
    resp = await client.post(path)
    assert resp.status == 200
    assert_page_headers(resp)
    page = await resp.text()
    assert "Thank you, you accepted \u201cHaircut\u201d." in page
    # Accepted: the page offers the calendar links (the .ics one is signed).
    assert 'href="https://calendar.google.com/calendar/render?' in page
    assert f'href="{PUBLIC_URL}/invites/' in page

    after = await booking_json(client, api_headers, booking["id"])
    assert after["booker"]["partstat"] == "ACCEPTED"
    assert after["sequence"] == booking["sequence"]  # an answer is no reschedule
    assert await caldav_partstat(client, booking) == "ACCEPTED"

    changes = written(store)
    again = await client.post(path)
    assert again.status == 200
    assert "Your answer is already recorded: accepted." in await again.text()
    assert written(store) == changes

    shown = await (await client.get(path)).text()
    assert "already recorded" in shown
    # All three answers stay offered; the recorded one is marked.
    assert "No, I decline" in shown and "Maybe, I might come" in shown
    assert current_answer(shown) == "ACCEPTED"


async def test_decline_works_and_may_follow_an_accept(
    client: Client, api_headers: dict[str, str]
) -> None:
    booking = await book(client, api_headers)
    assert (await client.post(rsvp_path(booking, PartStat.ACCEPTED))).status == 200
    resp = await client.post(rsvp_path(booking, PartStat.DECLINED))
    assert resp.status == 200
    page = await resp.text()
    assert "Thank you, you declined \u201cHaircut\u201d." in page
    assert "calendar.google.com" not in page  # nothing to add to a calendar
    assert await partstat_of(client, api_headers, booking["id"]) == "DECLINED"
    assert await caldav_partstat(client, booking) == "DECLINED"


async def test_tampered_and_foreign_tokens_are_404(
    client: Client, api_headers: dict[str, str], store: Store
) -> None:
    booking = await book(client, api_headers)
    path = rsvp_path(booking, PartStat.ACCEPTED)
    body, signature = path.rsplit("/", 1)[1].split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    other_key = rsvp_path(booking, PartStat.ACCEPTED, key="another-link-key-0123456789abcdefghij")
    declined_body = rsvp_path(booking, PartStat.DECLINED).rsplit("/", 1)[1].split(".")[0]
    before = written(store)
    for bad in (
        f"/rsvp/{body}.{flipped}",
        f"/rsvp/{declined_body}.{signature}",  # another answer under this signature
        other_key,
        f"/rsvp/{body}",
        "/rsvp/not-a-token",
    ):
        for method in ("GET", "POST"):
            resp = await client.request(method, bad)
            assert resp.status == 404, (method, bad)
            assert_page_headers(resp)
            assert "This link is not valid" in await resp.text()
    assert written(store) == before
    assert await partstat_of(client, api_headers, booking["id"]) == "NEEDS-ACTION"


async def test_a_link_from_before_a_reschedule_is_stale_and_changes_nothing(
    client: Client, api_headers: dict[str, str], store: Store
) -> None:
    booking = await book(client, api_headers)
    old_link = rsvp_path(booking, PartStat.ACCEPTED)
    resp = await client.patch(
        f"/api/v1/bookings/{booking['id']}",
        json={"start": "2026-12-01T11:00:00+01:00", "end": "2026-12-01T12:00:00+01:00"},
        headers=api_headers,
    )
    moved = await resp.json()
    assert moved["sequence"] == booking["sequence"] + 1

    before = written(store)
    shown = await client.get(old_link)
    assert shown.status == 200
    page = await shown.text()
    assert "has changed since this link was sent" in page
    assert "11:00\u201312:00" in page  # the booking as it now is
    assert "<form" not in page
    answered = await client.post(old_link)
    assert answered.status == 409
    assert "has changed since this link was sent" in await answered.text()
    assert written(store) == before
    assert await partstat_of(client, api_headers, booking["id"]) == "NEEDS-ACTION"

    # The link of the new invitation works.
    assert (await client.post(rsvp_path(moved, PartStat.ACCEPTED))).status == 200
    assert await partstat_of(client, api_headers, booking["id"]) == "ACCEPTED"


async def test_a_cancelled_booking_cannot_be_answered(
    client: Client, api_headers: dict[str, str]
) -> None:
    booking = await book(client, api_headers)
    old_link = rsvp_path(booking, PartStat.ACCEPTED)
    cancelled = await (
        await client.delete(f"/api/v1/bookings/{booking['id']}", headers=api_headers)
    ).json()
    for link in (old_link, rsvp_path(cancelled, PartStat.ACCEPTED)):
        page = await (await client.get(link)).text()
        assert "This booking has been cancelled" in page
        assert "<form" not in page
        resp = await client.post(link)
        assert resp.status == 409
        assert "This booking has been cancelled" in await resp.text()
    assert await partstat_of(client, api_headers, booking["id"]) == "NEEDS-ACTION"


async def test_a_link_for_someone_not_invited_shows_no_details(
    client: Client, api_headers: dict[str, str]
) -> None:
    booking = await book(client, api_headers)
    link = rsvp_path(booking, PartStat.ACCEPTED, email="mallory@example.com")
    page = await (await client.get(link)).text()
    assert "You are no longer invited to this booking." in page
    assert "mallory" not in page
    assert "Chair 2" not in page
    assert (await client.post(link)).status == 409
    assert await partstat_of(client, api_headers, booking["id"]) == "NEEDS-ACTION"


async def test_cross_site_posts_are_refused(
    client: Client, api_headers: dict[str, str], store: Store
) -> None:
    booking = await book(client, api_headers)
    path = rsvp_path(booking, PartStat.ACCEPTED)
    before = written(store)
    for origin in (
        "https://evil.example",
        "null",  # sandboxed frames, cross-site redirects
        "https://gateway.test",  # another scheme is another origin (RFC 6454)
        "http://gateway.test:8080",
        "http://gateway.test.evil.example",
    ):
        resp = await client.post(path, headers={"Origin": origin})
        assert resp.status == 403, origin
        assert_page_headers(resp)
        assert "another web site" in await resp.text()
    assert written(store) == before
    assert await partstat_of(client, api_headers, booking["id"]) == "NEEDS-ACTION"

    # The page's own form: the origin of server.public_url (default port spelt out).
    resp = await client.post(path, headers={"Origin": "http://GATEWAY.test:80"})
    assert resp.status == 200
    assert await partstat_of(client, api_headers, booking["id"]) == "ACCEPTED"


async def test_a_deleted_booking_is_404(client: Client, api_headers: dict[str, str]) -> None:
    booking = await book(client, api_headers)
    resp = await client.delete(
        f"/dav/calendars/anna/{booking['uid']}.ics", headers=basic("admin", ADMIN_PASSWORD)
    )
    assert resp.status == 204
    for method in ("GET", "POST"):
        gone = await client.request(method, rsvp_path(booking, PartStat.ACCEPTED))
        assert gone.status == 404
        assert "This booking no longer exists" in await gone.text()
    ics = booking["links"]["ics"]
    assert (await client.get(urlsplit(ics).path)).status == 404


async def test_without_a_link_key_no_link_is_valid(
    stores: Stores, aiohttp_client: MakeClient, tmp_path: Path, api_headers: dict[str, str]
) -> None:
    config = tmp_path / "no-key.yaml"
    config.write_text(invitation_yaml(stores.new("no-key").url, link_key=None), "utf-8")
    client = await aiohttp_client(create_app(load_settings(config)))
    booking = await book(client, api_headers)
    assert booking["links"] is None
    for method in ("GET", "POST"):
        resp = await client.request(method, rsvp_path(booking, PartStat.ACCEPTED))
        assert resp.status == 404
        assert "This link is not valid" in await resp.text()
    # A download link made with the key the server no longer has.
    resp = await client.get(f"/invites/{booking['id']}.x/invite.ics")
    assert resp.status == 404


# -- API answers carry the links -------------------------------------------------------


async def test_api_booking_answers_carry_the_calendar_links(
    client: Client, api_headers: dict[str, str]
) -> None:
    created = await book(client, api_headers)
    links = created["links"]
    assert set(links) == {"google", "outlook", "office365", "yahoo", "ics"}
    assert links["google"].startswith("https://calendar.google.com/calendar/render?")
    assert links["outlook"].startswith("https://outlook.live.com/calendar/0/action/compose?")
    assert links["office365"].startswith("https://outlook.office.com/calendar/0/action/compose?")
    assert links["yahoo"].startswith("https://calendar.yahoo.com/?")
    assert links["ics"].startswith(f"{PUBLIC_URL}/invites/")
    assert links["ics"].endswith("/invite.ics")

    read = await booking_json(client, api_headers, created["id"])
    assert read["links"] == links
    listed = await (await client.get("/api/v1/bookings", params=WINDOW, headers=api_headers)).json()
    assert [b["links"] for b in listed["bookings"]] == [links]
    patched = await (
        await client.patch(
            f"/api/v1/bookings/{created['id']}", json={"title": "Beard trim"}, headers=api_headers
        )
    ).json()
    assert (
        "Beard+trim" in patched["links"]["google"] or "Beard%20trim" in patched["links"]["google"]
    )
    assert patched["links"]["ics"] == links["ics"]  # one download URL per booking
    cancelled = await (
        await client.delete(f"/api/v1/bookings/{created['id']}", headers=api_headers)
    ).json()
    assert cancelled["links"] is None  # nothing left to add to a calendar


async def test_without_a_link_key_answers_say_links_null(
    stores: Stores, api_headers: dict[str, str], aiohttp_client: MakeClient, tmp_path: Path
) -> None:
    # The shared test YAML, which has no invitations section at all.
    config = tmp_path / "plain.yaml"
    config.write_text(settings_yaml(stores.new("plain").url), "utf-8")
    plain = await aiohttp_client(create_app(load_settings(config)))
    assert (await book(plain, api_headers))["links"] is None


# -- the .ics download -----------------------------------------------------------------


def parsed(text: str) -> tuple[icalendar.Calendar, Any]:
    calendar = icalendar.Calendar.from_ical(text)
    card = vobject.readOne(text)
    return calendar, card


async def download(client: Client, url: str) -> tuple[Any, str]:
    resp = await client.get(urlsplit(url).path)
    return resp, await resp.text()


async def test_the_ics_download_is_the_current_request_then_the_cancel(
    client: Client, api_headers: dict[str, str]
) -> None:
    booking = await book(client, api_headers)
    url = booking["links"]["ics"]

    resp, text = await download(client, url)
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/calendar; method=REQUEST; charset=utf-8"
    assert resp.headers["Content-Disposition"] == 'attachment; filename="invite.ics"'
    assert resp.headers["Cache-Control"] == "no-store"
    calendar, card = parsed(text)
    assert str(calendar["METHOD"]) == "REQUEST"
    event = calendar.walk("VEVENT")[0]
    assert str(event["UID"]) == booking["uid"]
    assert event.decoded("SEQUENCE") == 0
    assert str(event["ORGANIZER"]) == f"mailto:{ORGANIZER}"
    assert str(event["ATTENDEE"]).lower() == "mailto:zoe@example.com"
    assert card.method.value == "REQUEST"
    assert card.vevent.uid.value == booking["uid"]
    assert card.vevent.sequence.value == "0"
    assert card.vevent.summary.value == "Haircut"

    await client.patch(
        f"/api/v1/bookings/{booking['id']}",
        json={"start": "2026-12-01T11:00:00+01:00", "end": "2026-12-01T12:00:00+01:00"},
        headers=api_headers,
    )
    _, text = await download(client, url)
    calendar, card = parsed(text)
    assert calendar.walk("VEVENT")[0].decoded("SEQUENCE") == 1
    assert card.vevent.dtstart.value.hour == 11

    await client.delete(f"/api/v1/bookings/{booking['id']}", headers=api_headers)
    resp, text = await download(client, url)
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/calendar; method=CANCEL; charset=utf-8"
    calendar, card = parsed(text)
    assert str(calendar["METHOD"]) == "CANCEL"
    event = calendar.walk("VEVENT")[0]
    assert (str(event["UID"]), event.decoded("SEQUENCE"), str(event["STATUS"])) == (
        booking["uid"],
        2,
        "CANCELLED",
    )
    assert card.method.value == "CANCEL"


async def test_a_tampered_download_link_is_404(client: Client, api_headers: dict[str, str]) -> None:
    booking = await book(client, api_headers)
    path = urlsplit(booking["links"]["ics"]).path
    token = path.split("/")[2]
    body, signature = token.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    rsvp_token = rsvp_path(booking, PartStat.ACCEPTED).rsplit("/", 1)[1]
    for bad in (
        f"/invites/{body}.{flipped}/invite.ics",
        f"/invites/{body}/invite.ics",
        f"/invites/{rsvp_token}/invite.ics",  # an RSVP token is no download token
        "/invites/nothing/invite.ics",
    ):
        resp = await client.get(bad)
        assert resp.status == 404, bad
        assert resp.headers["Cache-Control"] == "no-store"
        assert "This link is not valid" in await resp.text()
    assert LINK_KEY not in path
