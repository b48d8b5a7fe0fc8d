"""The admin console in the browser, as an admin uses it without reading
any code: the landing page at /, signing in (a wrong password first), the
overview of every resource, the outbox with a failed invitation retried
once the mail server takes mail again, and connecting a resource's Google
calendar from the console's invitation to the calendar choice (against the
fake Google) and back to the overview. At 390 and 1280 px, every page
checked (``tests.browser.checks``) and photographed."""

from __future__ import annotations

import pytest

from tests.browser.chromium import Browser
from tests.browser.site import BUSINESS, Site, sign_in


async def test_a_visitor_at_the_root_learns_what_this_is_and_where_to_sign_in(
    browser: Browser, site: Site
) -> None:
    await browser.open(f"{site.url}/")
    text = await browser.look("landing")
    assert BUSINESS in text
    assert f"{site.url}/.well-known/caldav" in text
    await browser.press("Sign in to the admin console")
    assert (await browser.url()).startswith(f"{site.url}/admin/sign-in")


async def test_sign_in_wrong_then_right_shows_every_resource(browser: Browser, site: Site) -> None:
    await browser.open(f"{site.url}/admin/")  # not signed in: to the sign-in form
    assert (await browser.url()).startswith(f"{site.url}/admin/sign-in")
    await browser.look("console-sign-in")

    await sign_in(browser, site, password="not-the-password")
    text = await browser.look("console-sign-in-wrong")
    assert "Name or password wrong." in text

    await sign_in(browser, site)
    assert await browser.url() == f"{site.url}/admin/"
    text = await browser.look("console-overview")
    for name in ("Anna Schmidt", "Jonas Weber"):
        assert name in text
    caldav = await browser.value("CalDAV address of Anna Schmidt")
    assert caldav == f"{site.url}/dav/calendars/anna/"

    await browser.press("Sign out")
    text = await browser.look("console-signed-out")
    assert "You are signed out." in text
    await browser.open(f"{site.url}/admin/outbox")  # the session is over
    assert (await browser.url()).startswith(f"{site.url}/admin/sign-in")


async def test_settings_are_shown_read_only_with_the_key_to_change(
    browser: Browser, site: Site
) -> None:
    await browser.open(f"{site.url}/admin/")
    await sign_in(browser, site)
    await browser.press("Settings")
    text = await browser.look("console-settings")
    assert "SIGHUP" in text and "branding.name" in text and BUSINESS in text
    assert "$argon2" not in await browser.run(lambda: browser.driver.page_source)


async def test_outbox_retry_now_sends_a_failed_invitation(browser: Browser, site: Site) -> None:
    mail = site.gateway.mail
    mail.refuse = "550 5.7.1 Refused by local policy"  # 5yz: the item fails for good
    await site.book("anna", "Haircut")
    assert mail.to("zoe@example.com") == []

    await browser.open(f"{site.url}/admin/outbox")
    await sign_in(browser, site)
    assert await browser.url() == f"{site.url}/admin/outbox"  # back where the admin was going
    text = await browser.look("console-outbox-failed")
    assert "Failed (1)" in text and "550" in text

    mail.refuse = None  # the mail server takes mail again
    await browser.press("Retry now")
    await browser.look("console-outbox-retried")
    await site.gateway.settle()
    assert len(mail.to("zoe@example.com")) == 1

    await browser.open(f"{site.url}/admin/outbox")
    text = await browser.look("console-outbox-empty")
    assert "Failed (0)" in text and "Waiting (0)" in text


@pytest.mark.parametrize(
    ("resource", "account", "connect", "language"),
    [
        ("anna", "anna.schmidt@gmail.test", "Connect this calendar", "en"),
        ("jonas", "jonas.weber@gmail.test", "Diesen Kalender verbinden", "de"),
    ],
    ids=["en", "de"],
)
async def test_connect_google_from_the_console_to_the_overview(
    browser: Browser, site: Site, resource: str, account: str, connect: str, language: str
) -> None:
    """The console is in English; the pages the resource's owner sees
    while connecting are in the resource's language."""
    fake = site.gateway.fake
    fake.add_account(account, time_zone="Europe/Berlin")
    fake.consent_as(account)

    await browser.open(f"{site.url}/admin/resources/{resource}")
    await sign_in(browser, site)
    await browser.look(f"console-resource-{resource}")
    await browser.press("Send Google connect invitation")
    await browser.look(f"console-invitation-sent-{resource}")
    link = await browser.value("Link")
    assert link.startswith(f"{site.url}/google/connect/")

    # The owner opens the link; the fake Google consents as their account
    # at once and sends them back to choose a calendar.
    await browser.open(link)
    text = await browser.look("google-choose-calendar", language=language)
    assert account in text
    await browser.press(connect)
    await browser.look("google-connected", language=language)
    await site.gateway.settle()

    await browser.open(f"{site.url}/admin/")
    text = await browser.look(f"console-overview-{resource}-connected")
    assert account in text and "synced" in text

    await browser.press("Jonas Weber" if resource == "jonas" else "Anna Schmidt")
    assert await browser.url() == f"{site.url}/admin/resources/{resource}"

    await browser.press("Disconnect from Google…")
    await browser.look(f"console-disconnect-{resource}")
    await browser.press("Yes, disconnect")
    text = await browser.look(f"console-resource-{resource}-disconnected")
    assert "Disconnected from Google." in text


async def test_sync_log_of_a_resource_filtered_by_kind(browser: Browser, site: Site) -> None:
    """The mirror has worked for Anna (connected the quick way, without the
    browser; the test above clicks through it); her page's sync log shows
    what happened and narrows down to one kind."""
    gateway = site.gateway
    await gateway.connect("anna", "anna.schmidt@gmail.test")
    await site.book("anna", "Haircut")
    await browser.open(f"{site.url}/admin/resources/anna")
    await sign_in(browser, site)
    await browser.look("console-resource-sync-log")
    kinds = set(await browser.column("sync-log", 1))
    assert {"mirrored", "info"} <= kinds, kinds
    assert "Haircut" in await browser.text()  # among the upcoming bookings

    await browser.select("Show", "mirrored")
    await browser.press("Filter")
    await browser.look("console-resource-sync-log-mirrored")
    assert set(await browser.column("sync-log", 1)) == {"mirrored"}


async def test_resend_a_bookings_invitation(browser: Browser, site: Site) -> None:
    await site.book("anna", "Haircut")
    assert len(site.gateway.mail.to("zoe@example.com")) == 1
    await browser.open(f"{site.url}/admin/resources/anna")
    await sign_in(browser, site)
    await browser.press("Resend invitation for Haircut")
    text = await browser.look("console-invitation-resent")
    assert "queued to be sent again" in text
    await site.gateway.settle()
    assert len(site.gateway.mail.to("zoe@example.com")) == 2
