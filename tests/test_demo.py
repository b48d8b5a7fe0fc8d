"""Demo mode (``demo.fake_google``) and what ``make run`` shows a newcomer.

config/example.yaml, the file ``make run`` serves, is served for real (on
free ports): the fake Google answers on loopback, and an invitation link
leads through the fake's consent to the calendar choice. The demo is refused
where it could reach anything but loopback, and nothing starts without it.
"""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
from pathlib import Path

import aiohttp
import pytest
from argon2 import PasswordHasher

from gateway import demo
from gateway.settings import Settings, load_settings, parse_settings
from tests.net import LOOPBACK, free_port
from tests.serving import COMMAND, REPO, serving

EXAMPLE = REPO / "config" / "example.yaml"
EXAMPLE_FAKE_PORT = 8090
TIMEOUT = aiohttp.ClientTimeout(total=30)


def example_on(tmp_path: Path, port: int, fake_port: int, *, text: str | None = None) -> Path:
    """config/example.yaml as ``make run`` serves it, moved to free ports and
    a database of its own."""
    text = EXAMPLE.read_text(encoding="utf-8") if text is None else text
    text = text.replace("  port: 8080\n", f"  port: {port}\n", 1)
    text = text.replace(f"127.0.0.1:{EXAMPLE_FAKE_PORT}/", f"127.0.0.1:{fake_port}/")
    text = text.replace("url: sqlite:///../var/demo.sqlite3", "url: sqlite:///demo.sqlite3")
    path = tmp_path / "example.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def listens(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex((LOOPBACK, port)) == 0


# --- the rule -------------------------------------------------------------------------

GOOGLE = """\
google:
  client_id: demo-client-id.apps.googleusercontent.com
  client_secret: demo-client-secret
  token_keys: [8ucsnredJv1zUFczlxaf1E3mc-5t6N1252iKbpkciiY=]
{endpoints}
"""
AT_FAKE = """\
  api_endpoint: http://127.0.0.1:8090/calendar/v3/
  auth_uri: http://127.0.0.1:8090/o/oauth2/auth
  token_uri: http://127.0.0.1:8090/token
"""


def settings_of(host: str = "127.0.0.1", google: str | None = AT_FAKE, on: bool = True) -> Settings:
    text = f"server: {{host: '{host}', port: 8080}}\n"
    if google is not None:
        text += GOOGLE.format(endpoints=google)
    text += f"demo: {{fake_google: {str(on).lower()}}}\n"
    text += "resources:\n  - {id: anna, name: Anna, email: anna@example.com}\n"
    return parse_settings(text)


@pytest.mark.parametrize(
    ("host", "google", "on", "refused"),
    [
        ("127.0.0.1", AT_FAKE, True, []),
        ("::1", AT_FAKE, True, []),
        ("localhost", AT_FAKE, True, []),
        # Off: nothing to check, whatever the rest says.
        ("0.0.0.0", None, False, []),
        # Reachable from outside: demo passwords and a fake Google must not be.
        ("0.0.0.0", AT_FAKE, True, ["server.host"]),
        ("192.168.1.5", AT_FAKE, True, ["server.host"]),
        ("calendar.example.com", AT_FAKE, True, ["server.host"]),
        # No google section: nothing would use the fake.
        ("127.0.0.1", None, True, ["google"]),
        # Google's own endpoints (the defaults): requests would leave the machine.
        ("127.0.0.1", "", True, ["google.api_endpoint", "google.auth_uri", "google.token_uri"]),
        # One endpoint elsewhere, or on another port than the fake's.
        (
            "127.0.0.1",
            AT_FAKE.replace("http://127.0.0.1:8090/token", "https://oauth2.googleapis.com/token"),
            True,
            ["google.token_uri"],
        ),
        ("127.0.0.1", AT_FAKE.replace(":8090/o/", ":8091/o/"), True, ["google.auth_uri"]),
        # No explicit port: the fake cannot listen on "the default".
        (
            "127.0.0.1",
            AT_FAKE.replace(":8090", ""),
            True,
            ["google.api_endpoint", "google.auth_uri", "google.token_uri"],
        ),
        # The server's own port.
        ("127.0.0.1", AT_FAKE.replace(":8090", ":8080"), True, ["google.api_endpoint"]),
        # Another loopback name than the fake's address.
        (
            "127.0.0.1",
            AT_FAKE.replace("127.0.0.1", "localhost"),
            True,
            ["google.api_endpoint", "google.auth_uri", "google.token_uri"],
        ),
    ],
)
def test_the_demo_runs_only_on_loopback_against_the_fake(
    host: str, google: str | None, on: bool, refused: list[str]
) -> None:
    problems = demo.problems(settings_of(host, google, on))
    assert [p.path for p in problems] == refused
    assert all(p.message for p in problems)


def test_a_reload_cannot_switch_the_demo_or_move_the_fake() -> None:
    running = settings_of()
    assert demo.reload_problems(running, settings_of()) == []
    assert demo.reload_problems(running, settings_of(on=False))
    assert demo.reload_problems(settings_of(on=False), running)
    moved = settings_of(google=AT_FAKE.replace(":8090", ":8091"))
    assert demo.reload_problems(running, moved)


# --- make run -------------------------------------------------------------------------


def test_make_run_prints_the_console_and_a_demo_admin_who_can_sign_in(tmp_path: Path) -> None:
    # The real Makefile, with a stand-in calgateway (make's BIN) and a venv it
    # takes as installed (make's STAMP, newer than what it depends on).
    (tmp_path / "calgateway").write_text('#!/bin/sh\necho "serving $*"\n')
    (tmp_path / "calgateway").chmod(0o755)
    stamp = tmp_path / "installed"
    stamp.touch()
    result = subprocess.run(
        ["make", "-s", "--no-print-directory", "run", f"BIN={tmp_path}", f"STAMP={stamp}"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=True,
    )
    shown = re.search(r"(http://\S+) -- sign in as (\S+) / (\S+)", result.stdout)
    assert shown is not None, result.stdout
    console, name, password = shown.groups()
    assert result.stdout.splitlines()[-1] == "serving serve --config config/example.yaml"

    settings = load_settings(EXAMPLE, environ={})
    assert settings.demo.fake_google
    assert console == f"{settings.server.public_url}/"
    admin = next(u for u in settings.users if u.name == name)
    assert admin.admin
    assert PasswordHasher().verify(admin.password_hash, password)


# --- served for real ------------------------------------------------------------------


async def _cli(*args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        *COMMAND,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_make_run_serves_the_fake_google_and_connect_reaches_the_calendar_choice(
    tmp_path: Path,
) -> None:
    port, fake_port = free_port(), free_port()
    config = example_on(tmp_path, port, fake_port)
    async with serving(config) as server:
        shown = await server.wait_for_log(lambda e: e.get("msg") == "demo mode")
        assert shown["console"] == f"http://127.0.0.1:{port}/"
        assert shown["fake_google"] == f"http://{LOOPBACK}:{fake_port}"
        assert shown["admins"] == ["admin"]

        jar = aiohttp.CookieJar(unsafe=True)  # cookies for an IP address host
        async with aiohttp.ClientSession(timeout=TIMEOUT, cookie_jar=jar) as http:
            # The fake answers like Google: the API wants a token.
            async with http.get(f"{shown['fake_google']}/calendar/v3/users/me/calendarList") as r:
                assert r.status == 401
                assert (await r.json())["error"]["errors"][0]["reason"] == "required"

            out = await _cli("google", "invite", "anna", "--config", str(config))
            (link,) = re.findall(r"^\s+(http://\S+/google/connect/\S+)$", out, re.M)
            assert link.startswith(f"http://127.0.0.1:{port}/google/connect/")

            # The invitation sends the browser to the fake's consent page ...
            async with http.get(link, allow_redirects=False) as r:
                assert r.status == 302
                consent = r.headers["Location"]
            assert consent.startswith(f"http://{LOOPBACK}:{fake_port}/o/oauth2/auth?")
            # ... which consents as Anna's fake account and sends it back ...
            async with http.get(consent, allow_redirects=False) as r:
                assert r.status == 302
                back = r.headers["Location"]
            assert back.startswith(f"http://127.0.0.1:{port}/google/callback?")
            # ... to the choice of Anna's calendars in the fake.
            async with http.get(back) as r:
                page = await r.text()
                assert r.status == 200, page
            assert "Bookings" in page
            assert "anna@example.com" in page


def _serve_refused(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


def test_serve_refuses_a_demo_reachable_from_outside(tmp_path: Path) -> None:
    port, fake_port = free_port(), free_port()
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        "  host: 127.0.0.1\n", "  host: 0.0.0.0\n", 1
    )
    result = _serve_refused(example_on(tmp_path, port, fake_port, text=text))
    assert result.returncode == 2
    assert "server.host: '0.0.0.0' is not a loopback address" in result.stderr
    assert not listens(port) and not listens(fake_port)


def test_serve_refuses_a_demo_whose_google_is_not_the_fake(tmp_path: Path) -> None:
    port, fake_port = free_port(), free_port()
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        f"  token_uri: http://127.0.0.1:{EXAMPLE_FAKE_PORT}/token\n",
        "  token_uri: https://oauth2.googleapis.com/token\n",
    )
    result = _serve_refused(example_on(tmp_path, port, fake_port, text=text))
    assert result.returncode == 2
    assert "google.token_uri: 'https://oauth2.googleapis.com/token'" in result.stderr
    assert not listens(port) and not listens(fake_port)


async def test_without_the_demo_setting_no_fake_starts(tmp_path: Path) -> None:
    port, fake_port = free_port(), free_port()
    text = EXAMPLE.read_text(encoding="utf-8").replace("fake_google: true", "fake_google: false")
    async with serving(example_on(tmp_path, port, fake_port, text=text)) as server:
        assert not listens(fake_port)
        assert not any(e.get("msg") == "demo mode" for e in server.entries)
