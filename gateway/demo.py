"""Demo mode: the project's fake Google Calendar, started by ``calgateway serve``.

With ``demo.fake_google: true`` the server starts ``fake_google`` inside its
process and event loop, on 127.0.0.1 at a port of its own, before the server
listens itself, and stops it last; a reload (SIGHUP) cannot turn the demo
on or off or move the fake. The rule (``problems``), checked by every
``calgateway`` command that reads the file, before anything starts:

- ``server.host`` is a loopback address (127.0.0.0/8, ::1, localhost): a demo
  with a fake Google and demo passwords is never reachable from outside;
- the google section is there, and ``api_endpoint``, ``auth_uri`` and
  ``token_uri`` all point at http://127.0.0.1:PORT/ with one explicit PORT
  (not the server's own): the fake listens there, so no request meant for the
  fake can reach Google or another host.

The fake accepts the google section's client id and secret, and has one
Google account per resource (its e-mail address, its time zone) with a
primary calendar holding one event tomorrow at noon (so the first import has
something to show) and a second calendar, "Bookings", to choose instead.
Its state lives in memory: a restart forgets connections made to it.

When the setting is off this module starts nothing and ``fake_google`` is
never imported.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import AsyncIterator
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from gateway.settings import ConfigIssue, Settings, SettingsError

if TYPE_CHECKING:
    from fake_google.calendar import FakeGoogle

FAKE_HOST = "127.0.0.1"
ENDPOINT_KEYS = ("api_endpoint", "auth_uri", "token_uri")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def fake_port(settings: Settings) -> int | None:
    """The port the fake listens on: google.api_endpoint's, if it names one."""
    if settings.google is None:
        return None
    try:
        return urlsplit(settings.google.api_endpoint).port
    except ValueError:
        return None


def problems(settings: Settings) -> list[ConfigIssue]:
    """Why ``settings`` cannot run the demo; empty when they can or the demo is off."""
    if not settings.demo.fake_google:
        return []
    found: list[ConfigIssue] = []
    if not _is_loopback(settings.server.host):
        found.append(
            ConfigIssue(
                "server.host",
                None,
                f"{settings.server.host!r} is not a loopback address; demo.fake_google "
                "serves demo passwords and a fake Google: use 127.0.0.1",
            )
        )
    google = settings.google
    if google is None:
        found.append(
            ConfigIssue(
                "google",
                None,
                "demo.fake_google needs a google section whose api_endpoint, auth_uri and "
                f"token_uri point at the fake, e.g. api_endpoint: http://{FAKE_HOST}:8090/calendar/v3/",
            )
        )
        return found
    port = fake_port(settings)
    for key in ENDPOINT_KEYS:
        url = getattr(google, key)
        try:
            parts = urlsplit(url)
            its_port = parts.port
        except ValueError:
            parts, its_port = urlsplit(""), None
        if parts.scheme != "http" or parts.hostname != FAKE_HOST or its_port is None:
            found.append(
                ConfigIssue(
                    f"google.{key}",
                    None,
                    f"{url!r}: with demo.fake_google it must point at the fake, "
                    f"http://{FAKE_HOST}:PORT/... with an explicit port",
                )
            )
        elif its_port != port:
            found.append(
                ConfigIssue(
                    f"google.{key}",
                    None,
                    f"port {its_port} differs from google.api_endpoint's ({port}): "
                    "the fake listens on one port",
                )
            )
    if port is not None and port == settings.server.port:
        found.append(
            ConfigIssue(
                "google.api_endpoint",
                None,
                f"port {port} is server.port: the fake needs a port of its own",
            )
        )
    return found


class FakeCannotListen(Exception):
    """The fake's port is taken (or not ours to use)."""


def reload_problems(old: Settings, new: Settings) -> list[str]:
    """Why ``new`` cannot replace ``old`` in place, as far as the demo goes:
    the fake is started once, with the server, on one port."""
    if old.demo.fake_google != new.demo.fake_google:
        return ["demo.fake_google changed: the fake Google starts with the server; restart it"]
    if new.demo.fake_google and fake_port(new) != fake_port(old):
        return [
            "google.api_endpoint's port changed: the demo's fake Google listens on "
            f"{fake_port(old)} until the server restarts"
        ]
    return [f"{issue.path}: {issue.message}" for issue in problems(new)]


def check(source: str, settings: Settings) -> None:
    """Raise SettingsError (the same shape as a bad file) if the demo cannot run."""
    found = problems(settings)
    if found:
        raise SettingsError(source, found)


def _seed(fake: FakeGoogle, settings: Settings) -> None:
    for resource in settings.resources:
        if resource.email in fake.store.accounts:
            continue  # two resources with one address share the account
        fake.add_account(resource.email, time_zone=resource.timezone)
        fake.add_calendar(resource.email, "Bookings", time_zone=resource.timezone)
        zone = ZoneInfo(resource.timezone)
        noon = datetime.combine(datetime.now(zone).date() + timedelta(days=1), time(12), zone)
        fake.user_insert(
            resource.email,
            {
                "summary": "Lunch (in Google, not a booking)",
                "start": {"dateTime": noon.isoformat()},
                "end": {"dateTime": (noon + timedelta(hours=1)).isoformat()},
            },
        )


@contextlib.asynccontextmanager
async def fake_google(source: str, settings: Settings) -> AsyncIterator[str | None]:
    """Run the fake for the demo while the block runs; yields its URL, or None
    (and starts nothing) when demo.fake_google is off."""
    if not settings.demo.fake_google:
        yield None
        return
    check(source, settings)
    assert settings.google is not None  # check() refused otherwise
    from fake_google.calendar import FakeGoogle  # only ever loaded for the demo

    fake = FakeGoogle(
        client_id=settings.google.client_id,
        client_secret=settings.google.client_secret.get_secret_value(),
        host=FAKE_HOST,
        port=fake_port(settings) or 0,
    )
    _seed(fake, settings)
    try:
        await fake.start()
    except OSError as exc:
        await fake.close()
        raise FakeCannotListen(
            f"the demo's fake Google cannot listen on {FAKE_HOST} port {fake.port}: {exc}"
        ) from exc
    try:
        yield fake.base_url
    finally:
        await fake.close()
