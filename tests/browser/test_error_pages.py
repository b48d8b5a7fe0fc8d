"""Links that lead nowhere end on a page in the business's look that says
what happened and what to do, never on a bare status line: a damaged
answer link, a connect link that is not (or no longer) valid, a console
address that does not exist (once signed in: before, every console
address leads to the sign-in form)."""

from __future__ import annotations

import pytest

from tests.browser.chromium import Browser
from tests.browser.site import BUSINESS, Site, sign_in


@pytest.mark.parametrize(
    ("name", "path", "says"),
    [
        ("rsvp-damaged-link", "/rsvp/not-a-token", "Link not valid or expired"),
        ("google-connect-unknown", "/google/connect/no-such-invitation", "Link not valid"),
    ],
    ids=["rsvp", "connect"],
)
async def test_a_dead_link_gets_a_page_that_says_so(
    browser: Browser, site: Site, name: str, path: str, says: str
) -> None:
    await browser.open(f"{site.url}{path}")
    text = await browser.look(name)
    assert BUSINESS in text
    assert says in await browser.heading()


async def test_a_damaged_answer_link_of_a_booking_broken_after_it_was_sent(
    browser: Browser, site: Site
) -> None:
    """The link's last character lost (a mail client wrapped the line)."""
    await site.book("jonas", "Haarschnitt")
    await browser.open(site.rsvp_link()[:-1])
    text = await browser.look("rsvp-truncated-link")
    assert "Link not valid or expired" in await browser.heading()
    assert BUSINESS in text


async def test_a_console_address_that_does_not_exist(browser: Browser, site: Site) -> None:
    await browser.open(f"{site.url}/admin/no-such-page")
    await sign_in(browser, site)
    text = await browser.look("console-no-such-page")
    assert await browser.heading() == "Page not found"
    assert BUSINESS in text


@pytest.mark.parametrize(
    ("resource", "language", "heading", "says"),
    [
        ("anna", "en", "Not connected", "open the invitation link again"),
        ("jonas", "de", "Nicht verbunden", "den Einladungslink erneut öffnen"),
    ],
    ids=["en", "de"],
)
async def test_google_said_no(
    browser: Browser,
    site: Site,
    resource: str,
    language: str,
    heading: str,
    says: str,
) -> None:
    """The owner refuses Google's consent: a page in the resource's language
    that says nothing was connected and how to retry."""
    link = await site.gateway.invite_url(resource)
    site.gateway.fake.consent_as(None)  # the person clicks "Cancel" at Google
    await browser.open(link)
    text = await browser.look("google-refused", language=language)
    assert await browser.heading() == heading
    assert says in text
