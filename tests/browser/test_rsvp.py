"""The booker's answer page in the browser: opened from the link in the
invitation e-mail, answered, and the answer changed on the same page
(accept, then decline), in English and in German, at 390 and 1280 px.
What the business then sees is read back from the JSON API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.browser.chromium import Browser
from tests.browser.site import BUSINESS, Site

BOOKER_ZONE = "America/New_York"


@dataclass(frozen=True)
class Words:
    """What the page says, in one language."""

    language: str
    resource: str  # whose pages are in that language (tests.browser.site)
    title: str
    accept: str
    decline: str
    send: str
    accepted: str
    declined: str


ENGLISH = Words(
    language="en",
    resource="anna",
    title="Haircut",
    accept="Yes, I accept",
    decline="No, I decline",
    send="Send my answer",
    accepted="accepted",
    declined="declined",
)
GERMAN = Words(
    language="de",
    resource="jonas",
    title="Haarschnitt",
    accept="Ja, ich sage zu",
    decline="Nein, ich sage ab",
    send="Antwort senden",
    accepted="zugesagt",
    declined="abgesagt",
)


async def partstat(site: Site, booking_id: str) -> str:
    booking = await site.gateway.api("GET", f"/bookings/{booking_id}", expect=200)
    return str(booking["booker"]["partstat"])


@pytest.mark.parametrize("words", [ENGLISH, GERMAN], ids=lambda w: w.language)
async def test_booker_accepts_then_changes_to_decline(
    browser: Browser, site: Site, words: Words
) -> None:
    booking = await site.book(words.resource, words.title)
    await browser.time_zone(BOOKER_ZONE)  # Zoë books from abroad
    await browser.open(site.rsvp_link())  # the "accept" link of the e-mail
    opened = await browser.look("rsvp-1-opened", language=words.language)
    assert words.title in opened and BUSINESS in opened
    # When, in the resource's time and in the booker's own (the page's script).
    start = datetime.fromisoformat(booking["start"])
    for zone in ("Europe/Berlin", BOOKER_ZONE):
        assert f"{start.astimezone(ZoneInfo(zone)):%H:%M}" in opened, zone
    assert await partstat(site, booking["id"]) == "NEEDS-ACTION"  # opening is no answer

    await browser.choose(words.accept)
    await browser.press(words.send)
    accepted = await browser.look("rsvp-2-accepted", language=words.language)
    assert words.accepted in accepted
    assert await partstat(site, booking["id"]) == "ACCEPTED"

    await browser.choose(words.decline)
    await browser.press(words.send)
    declined = await browser.look("rsvp-3-declined", language=words.language)
    assert words.declined in declined
    assert await partstat(site, booking["id"]) == "DECLINED"
