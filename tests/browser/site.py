"""The gateway the browser tests open: the Google tests' running gateway
(``tests.google.harness``: ``create_app`` over a YAML file, a real SQLite
store, a real SMTP server, the fake Google on loopback) with what the pages
need on top: the business's branding, a link key for the RSVP links, and
one resource whose pages are in German.

``Site.invitation_links(email)`` reads the links out of the invitation
e-mail the booker really received, as the booker would click them.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from fake_google.calendar import FakeGoogle
from tests.backends import Store
from tests.browser.chromium import Browser
from tests.conftest import ADMIN_PASSWORD
from tests.google.harness import Gateway, at, running_gateway
from tests.smtp import smtp_server

BUSINESS = "Salon Sonnenschein"
ADMIN = ("admin", ADMIN_PASSWORD)
BOOKER = {"name": "Zoë Müller", "email": "zoe@example.com"}

EXTRA = f"""\
branding:
  name: {BUSINESS}
  accent_color: "#8a3ab9"
invitations:
  link_key: browser-tests-link-key-0123456789abcdefghij
"""

# Anna's pages are in English (the default), Jonas's in German.
RESOURCES = """\
  - id: anna
    name: Anna Schmidt
    email: anna@example.com
    timezone: Europe/Berlin
    feed_tokens: [anna-feed-token-0123456789abcdef]
  - id: jonas
    name: Jonas Weber
    email: jonas@example.com
    timezone: Europe/Berlin
    language: de
"""

_LINK = re.compile(r"https?://[^\s\"'<>]+")


@dataclass
class Site:
    gateway: Gateway

    @property
    def url(self) -> str:
        return self.gateway.url

    async def book(self, resource: str, title: str, *, day: int = 3, **extra: Any) -> Any:
        """A one-hour booking ``day`` days from now at 10:00 Berlin time,
        with Zoë as the booker; the invitation mail is sent (settled)."""
        booking = await self.gateway.book(
            resource, at(day, 10), at(day, 11), title, booker=BOOKER, **extra
        )
        await self.gateway.settle()
        return booking

    def invitation(self, email: str = BOOKER["email"]) -> EmailMessage:
        received = self.gateway.mail.to(email)
        assert received, f"no e-mail to {email}"
        return received[-1]

    def invitation_links(self, email: str = BOOKER["email"]) -> list[str]:
        """Every link in the text of the newest e-mail to ``email``."""
        message = self.invitation(email)
        body = message.get_body(("plain", "html"))
        assert body is not None, message
        text = body.get_content()
        assert isinstance(text, str)
        return _LINK.findall(text)

    def rsvp_link(self, email: str = BOOKER["email"]) -> str:
        """The first answer link of the newest e-mail (the "accept" one)."""
        links = [link for link in self.invitation_links(email) if "/rsvp/" in link]
        assert links, self.invitation_links(email)
        return links[0]


async def sign_in(browser: Browser, site: Site, password: str = ADMIN[1]) -> None:
    """Fill in and send the console's sign-in form (the page shown now)."""
    await browser.fill("Name", ADMIN[0])
    await browser.fill("Password", password)
    await browser.press("Sign in")


@asynccontextmanager
async def running_site(tmp_path: Path, store: Store) -> AsyncIterator[Site]:
    # The gateway listens on http:// loopback: the fake accepts such webhooks.
    async with FakeGoogle.running(allow_http_webhooks=True) as fake:
        with smtp_server() as mail:
            async with running_gateway(
                tmp_path, store, fake, mail, extra=EXTRA, resources=RESOURCES
            ) as gateway:
                yield Site(gateway)
