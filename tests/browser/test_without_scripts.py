"""The pages work in a browser with JavaScript off (progressive
enhancement only, issue 15 item 2): a booker changes the answer and an
admin signs in and retries an outbox item; what scripts add (copy buttons,
the booker's own time zone) is simply not there."""

from __future__ import annotations

from tests.browser.chromium import Browser
from tests.browser.site import Site, sign_in


async def test_booker_answers_without_javascript(browser: Browser, site: Site) -> None:
    booking = await site.book("anna", "Haircut")
    await browser.without_scripts()
    await browser.open(site.rsvp_link())
    text = await browser.look("nojs-rsvp-opened")
    assert "In your time zone" not in text  # the script's line stays hidden
    await browser.choose("Maybe, I might come")
    await browser.press("Send my answer")
    await browser.look("nojs-rsvp-maybe")
    answer = await site.gateway.api("GET", f"/bookings/{booking['id']}", expect=200)
    assert answer["booker"]["partstat"] == "TENTATIVE"


async def test_admin_uses_the_console_without_javascript(browser: Browser, site: Site) -> None:
    await browser.without_scripts()
    await browser.open(f"{site.url}/admin/")
    await sign_in(browser, site)
    await browser.look("nojs-console-overview")
    assert "Copy" not in await browser.names()  # the copy buttons need the script
    caldav = await browser.value("CalDAV address of Anna Schmidt")
    assert caldav == f"{site.url}/dav/calendars/anna/"  # selectable text instead
