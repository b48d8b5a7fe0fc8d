"""The booker pages in the one look (issue 15, items 5 and 6), through the
real app: the business's name and colours, the form with every answer
whatever link was clicked, the time in the resource's zone and UTC for the
browser's script, errors as pages, and the page's language."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from aiohttp import web

from gateway.app import create_app
from gateway.core.model import PartStat
from gateway.settings import load_settings
from tests.backends import Store, Stores
from tests.invitations import PUBLIC_URL, Client, book, invitation_yaml, partstat_of, rsvp_path

MakeClient = Callable[[web.Application], Awaitable[Client]]
BRANDING = """\
branding:
  name: Salon Anna & Co
  accent_color: "#ffcc00"
"""


@pytest.fixture
def config_file(tmp_path: Path, store: Store) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(invitation_yaml(store.url) + BRANDING, encoding="utf-8")
    return path


def checked(page: str) -> str | None:
    found = re.search(r'name="answer" id="[^"]+" value="([A-Z]+)" checked', page)
    return found[1] if found else None


async def test_the_page_carries_the_business_look_and_safe_headers(
    client: Client, api_headers: dict[str, str]
) -> None:
    booking = await book(client, api_headers)
    resp = await client.get(rsvp_path(booking, PartStat.ACCEPTED))
    page = await resp.text()
    assert '<span class="brand-name">Salon Anna &amp; Co</span>' in page
    assert "<title>Haircut · Salon Anna &amp; Co</title>" in page
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "style-src 'self'" in csp and "unsafe-inline" not in csp
    assert "<style" not in page and "onclick" not in page
    # The stylesheets and the one script are files of our own origin.
    hrefs = re.findall(r'(?:href|src)="(/look/[^"]+)"', page)
    assert any(h.startswith("/look/style.css?v=") for h in hrefs)
    assert any(h.startswith("/look/local-time.js?v=") for h in hrefs)
    brand = next(h for h in hrefs if h.startswith("/look/brand.css"))
    css = await client.get(brand)
    assert css.status == 200 and css.content_type == "text/css"
    # A light accent: black text on buttons, links in the text colour.
    assert "--accent: #ffcc00; --on-accent: #000000; --link: #1d1d1f;" in await css.text()
    for href in hrefs:
        assert (await client.get(href)).status == 200, href


async def test_time_in_the_resource_zone_utc_and_for_the_browser(
    client: Client, api_headers: dict[str, str]
) -> None:
    booking = await book(
        client,
        api_headers,
        start="2026-12-01T23:30:00Z",
        end="2026-12-02T01:00:00Z",
        timezone="Asia/Tokyo",
    )
    page = await (await client.get(rsvp_path(booking, PartStat.DECLINED))).text()
    assert "Wednesday, 2 December 2026, 08:30\u201310:00 (Japan Standard Time)" in page
    assert "Tuesday, 1 December 2026, 23:30 \u2013 Wednesday, 2 December 2026, 01:00" in page
    assert (
        '<time datetime="2026-12-01T23:30:00Z" data-end="2026-12-02T01:00:00Z" '
        'data-zone="Asia/Tokyo"' in page
    )


async def test_any_link_gives_any_answer_and_the_current_one_is_marked(
    client: Client, api_headers: dict[str, str]
) -> None:
    booking = await book(client, api_headers)
    decline_link = rsvp_path(booking, PartStat.DECLINED)
    page = await (await client.get(decline_link)).text()
    assert checked(page) == "DECLINED"
    for value in ("ACCEPTED", "TENTATIVE", "DECLINED"):
        assert f'value="{value}"' in page
        assert f'id="answer-{value.lower()}"' in page and f'for="answer-{value.lower()}"' in page
    assert "(your answer now)" not in page  # nothing recorded yet

    # The decline link, answering "maybe" through its form.
    resp = await client.post(decline_link, data={"answer": "TENTATIVE"})
    assert resp.status == 200
    answered = await resp.text()
    assert "Thank you, you tentatively accepted \u201cHaircut\u201d." in answered
    assert await partstat_of(client, api_headers, booking["id"]) == "TENTATIVE"
    assert re.search(r'value="TENTATIVE"[^>]*>\s*<label[^>]*>[^<]*<span class="current">', answered)

    # Then "accept" through the same link: the calendar links appear.
    resp = await client.post(decline_link, data={"answer": "ACCEPTED"})
    accepted = await resp.text()
    assert await partstat_of(client, api_headers, booking["id"]) == "ACCEPTED"
    links = dict(re.findall(r'<a id="(link-[a-z0-9]+)" href="([^"]+)"', accepted))
    assert urlsplit(links["link-ics"]).path.endswith("/invite.ics")
    assert links["link-ics"].startswith(f"{PUBLIC_URL}/invites/")
    assert links["link-google"].startswith("https://calendar.google.com/calendar/render?")
    assert links["link-outlook"].startswith("https://outlook.live.com/calendar/0/action/compose?")
    assert (await client.get(urlsplit(links["link-ics"]).path)).status == 200


async def test_an_answer_that_is_no_answer_is_a_400_page(
    client: Client, api_headers: dict[str, str]
) -> None:
    booking = await book(client, api_headers)
    resp = await client.post(rsvp_path(booking, PartStat.ACCEPTED), data={"answer": "DELEGATED"})
    assert resp.status == 400
    page = await resp.text()
    assert "<h1>Answer not understood</h1>" in page and "Salon Anna" in page
    assert await partstat_of(client, api_headers, booking["id"]) == "NEEDS-ACTION"


@pytest.mark.parametrize(
    ("method", "path", "status", "title"),
    [
        ("GET", "/rsvp/not-a-token", 404, "Link not valid or expired"),
        ("GET", "/rsvp/a/b/c", 404, "Page not found"),
        ("PUT", "/rsvp/not-a-token", 405, "Not possible here"),
        ("GET", "/invites/x.y/other.ics", 404, "Page not found"),
        ("GET", "/invites/x.y/invite.ics", 404, "Link not valid or expired"),
    ],
)
async def test_errors_are_pages_in_the_look(
    client: Client, method: str, path: str, status: int, title: str
) -> None:
    resp = await client.request(method, path)
    assert resp.status == status
    assert resp.content_type == "text/html"
    assert resp.headers["Cache-Control"] == "no-store"
    assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
    page = await resp.text()
    assert f"<h1>{title}</h1>" in page
    assert "Salon Anna &amp; Co" in page and '<html lang="en">' in page
    if status == 405:
        assert "GET" in resp.headers["Allow"]


@pytest.fixture
async def german(stores: Stores, aiohttp_client: MakeClient, tmp_path: Path) -> Client:
    """The app with German as the language of every resource."""
    yaml = invitation_yaml(stores.new("de").url).replace(
        "defaults:\n  timezone: UTC\n", "defaults:\n  timezone: UTC\n  language: de\n"
    )
    assert "language: de" in yaml
    config = tmp_path / "de.yaml"
    config.write_text(yaml, encoding="utf-8")
    return await aiohttp_client(create_app(load_settings(config)))


async def test_pages_speak_the_resource_language(
    german: Client, api_headers: dict[str, str]
) -> None:
    client = german
    booking = await book(client, api_headers)
    page = await (await client.get(rsvp_path(booking, PartStat.ACCEPTED))).text()
    assert '<html lang="de">' in page
    assert "Dienstag, 1. Dezember 2026" in page
    missing = await client.get("/rsvp/not-a-token")
    assert missing.status == 404 and '<html lang="de">' in await missing.text()


async def test_german_pages_say_why_an_answer_does_not_apply(
    german: Client, api_headers: dict[str, str]
) -> None:
    booking = await book(german, api_headers)
    old_link = rsvp_path(booking, PartStat.ACCEPTED)
    moved = await (
        await german.patch(
            f"/api/v1/bookings/{booking['id']}",
            json={"start": "2026-12-01T11:00:00+01:00", "end": "2026-12-01T12:00:00+01:00"},
            headers=api_headers,
        )
    ).json()
    stale = await german.post(old_link)
    assert stale.status == 409
    assert "Dieser Termin hat sich geändert, seit dieser Link verschickt wurde" in (
        await stale.text()
    )

    # Accepted through the new link: the add-to-calendar links, the file's
    # name in German, the brands as they are.
    accepted = await (await german.post(rsvp_path(moved, PartStat.ACCEPTED))).text()
    assert "Vielen Dank, Sie haben \u201eHaircut\u201c zugesagt." in accepted
    names = dict(re.findall(r'<a id="(link-[a-z0-9]+)" href="[^"]+"[^>]*>([^<]+)</a>', accepted))
    assert names["link-ics"] == "Kalenderdatei (.ics)"
    assert names["link-google"] == "Google Calendar"
    assert names["link-office365"] == "Office 365"

    await german.delete(f"/api/v1/bookings/{booking['id']}", headers=api_headers)
    cancelled = await german.get(rsvp_path(moved, PartStat.DECLINED))
    page = await cancelled.text()
    assert "Dieser Termin wurde abgesagt: Es gibt nichts mehr zu beantworten." in page
    assert "cancelled" not in page and "<form" not in page
