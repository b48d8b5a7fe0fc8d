"""The ``calgateway`` command, run as a real process."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from argon2 import PasswordHasher
from cryptography.fernet import Fernet

from gateway.app import create_app
from gateway.core.model import OutboxEffect
from gateway.core.outbox_payloads import InvitationPayload, InviteAction
from gateway.settings import load_settings
from gateway.store import open_sqlite_repository
from tests.api.test_google_admin import google_yaml
from tests.conftest import API_TOKEN, AppClient
from tests.samples import SLOT
from tests.smtp import smtp_server

COMMAND = [sys.executable, "-m", "gateway.cli"]
REPO = Path(__file__).resolve().parent.parent


def run(
    *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env=env,
    )


def test_check_config_accepts_the_example() -> None:
    result = run("check-config", "config/example.yaml")
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


def test_check_config_prints_every_error_with_key_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "server:\n"
        "  port: 99999\n"
        "resources:\n"
        "  - id: anna\n"
        "    name: Anna\n"
        "    email: anna@example.com\n"
        "    timezone: Europe/Berln\n"
        "    colour: red\n",
        encoding="utf-8",
    )
    result = run("check-config", str(bad))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert any(":2:" in line and "server.port" in line for line in lines), lines
    assert any(":7:" in line and "resources[0].timezone" in line for line in lines), lines
    assert any(":8:" in line and "resources[0].colour" in line for line in lines), lines


def test_hash_password_output_verifies() -> None:
    result = run("hash-password", "--stdin", stdin="correct horse battery\n")
    assert result.returncode == 0, result.stderr
    assert PasswordHasher().verify(result.stdout.strip(), "correct horse battery")


def test_new_token_is_long_and_random() -> None:
    first, second = run("new-token").stdout.strip(), run("new-token").stdout.strip()
    assert first != second
    assert len(first) >= 32


def test_resources_lists_urls(config_file: Path) -> None:
    result = run("resources", "--config", str(config_file))
    assert result.returncode == 0, result.stderr
    assert "http://gateway.test/dav/calendars/anna/" in result.stdout
    assert "anna-feed-token" not in result.stdout  # secrets stay out of terminals


async def _read_json_line(stream: asyncio.StreamReader) -> dict[str, Any]:
    line = await asyncio.wait_for(stream.readline(), timeout=30)
    assert line, "server exited early"
    entry: dict[str, Any] = json.loads(line)
    return entry


async def test_serve_logs_requests_and_stops_gracefully_on_sigterm(config_file: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        *COMMAND,
        "serve",
        "--config",
        str(config_file),
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO,
    )
    assert proc.stderr is not None
    try:
        entry = await _read_json_line(proc.stderr)
        while entry["msg"] != "listening":
            entry = await _read_json_line(proc.stderr)
        base = entry["url"]
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/healthz") as resp:
                assert resp.status == 200
            async with http.post(
                f"{base}/api/v1/bookings",
                json=SLOT,
                headers={"Authorization": f"Bearer {API_TOKEN}"},
            ) as resp:
                assert resp.status == 201
            async with http.get(
                f"{base}/feeds/anna.ics?token=anna-feed-token-0123456789abcdef"
            ) as resp:
                assert resp.status == 200
        proc.send_signal(signal.SIGTERM)
        _, rest = await asyncio.wait_for(proc.communicate(), timeout=30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0
    entries = [json.loads(line) for line in rest.decode().splitlines() if line.strip()]
    requests = [e for e in entries if e["msg"] == "request"]
    assert [(e["method"], e["route"], e["status"]) for e in requests] == [
        ("GET", "/healthz", 200),
        ("POST", "/api/v1/bookings", 201),
        ("GET", "/feeds/{resource}.ics", 200),
    ]
    assert all(isinstance(e["duration_ms"], float) for e in requests)
    assert "anna-feed-token" not in rest.decode()
    assert [e["msg"] for e in entries][-2:] == ["storage closed", "stopped"]


def test_container_config_takes_its_secrets_from_the_environment() -> None:
    bare = {"PATH": "/usr/bin:/bin"}
    env_free = run("check-config", "docker/config.yaml", env=bare)
    assert env_free.returncode != 0
    assert "CALGATEWAY_API_TOKEN is not set" in env_free.stderr
    result = run(
        "check-config",
        "docker/config.yaml",
        env={
            **bare,
            "CALGATEWAY_API_TOKEN": "container-api-token-0123456789abcdef",
            "CALGATEWAY_FEED_ANNA": "container-feed-token-0123456789abcdef",
            "CALGATEWAY_ADMIN_PASSWORD_HASH": PasswordHasher().hash("container-admin-pw"),
        },
    )
    assert result.returncode == 0, result.stderr
    assert "/var/lib/calgateway/calgateway.sqlite3" in result.stdout


# -- Google mirror administration -------------------------------------------------


@pytest.fixture
def google_config(tmp_path: Path, db_path: Path) -> Path:
    path = tmp_path / "google.yaml"
    path.write_text(google_yaml(db_path), encoding="utf-8")
    return path


def test_google_new_key_is_a_fernet_key() -> None:
    first, second = (run("google", "new-key").stdout.strip() for _ in range(2))
    assert first != second
    token = Fernet(first.encode()).encrypt(b"refresh")
    assert Fernet(first.encode()).decrypt(token) == b"refresh"


def test_google_invite_prints_the_link_for_hand_over_then_status_and_log_show_it(
    google_config: Path,
) -> None:
    result = run("google", "invite", "anna", "--config", str(google_config))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    links = [w for w in out.split() if w.startswith("http://gateway.test/google/connect/")]
    assert len(links) == 1, out
    assert "works once, until 20" in out and " UTC" in out
    assert "Not mailed" in out and "yourself" in out

    status = run("sync", "status", "--config", str(google_config))
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert lines[0].split() == ["RESOURCE", "MODE", "STATUS", "CALENDAR", "LAST", "SYNC"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert rows["anna"].split()[:3] == ["anna", "two_way/full", "invited"]
    assert rows["anna"].rstrip().endswith("never")
    assert rows["room"].split()[:3] == ["room", "off", "off"]
    assert rows["bob"].split()[:4] == ["bob", "two_way/full", "not", "invited"]

    log = run("sync", "log", "anna", "--config", str(google_config))
    assert log.returncode == 0, log.stderr
    (entry,) = log.stdout.splitlines()
    assert entry.split("\t")[2:] == ["info", "invitation to connect Google created"]
    assert run("sync", "log", "bob", "--config", str(google_config)).stdout == (
        "bob: the sync log is empty.\n"
    )


def test_google_invite_says_the_server_mails_it(tmp_path: Path, db_path: Path) -> None:
    config = tmp_path / "mail.yaml"
    config.write_text(google_yaml(db_path, mail=True), encoding="utf-8")
    result = run("google", "invite", "anna", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "E-mail to anna@example.com queued" in result.stdout
    assert "running server sends it" in result.stdout


def test_google_invite_refuses_clearly(google_config: Path, config_file: Path) -> None:
    unconfigured = run("google", "invite", "anna", "--config", str(config_file))
    assert unconfigured.returncode == 2
    assert "Google is not configured" in unconfigured.stderr
    unknown = run("google", "invite", "nobody", "--config", str(google_config))
    assert unknown.returncode == 2
    assert "unknown resource 'nobody'" in unknown.stderr
    assert "anna, room, bob" in unknown.stderr
    off = run("google", "invite", "room", "--config", str(google_config))
    assert off.returncode == 2
    assert "direction off" in off.stderr
    assert unconfigured.stdout == unknown.stdout == off.stdout == ""


def test_google_disconnect_then_the_log_says_so(google_config: Path) -> None:
    assert run("google", "invite", "anna", "--config", str(google_config)).returncode == 0
    result = run("google", "disconnect", "anna", "--config", str(google_config))
    assert result.returncode == 0, result.stderr
    assert "anna: disconnected from Google (was: invited)" in result.stdout
    again = run("google", "disconnect", "anna", "--config", str(google_config))
    assert "nothing to disconnect" in again.stdout

    log = run("sync", "log", "anna", "--config", str(google_config), "--limit", "1")
    (entry,) = log.stdout.splitlines()
    assert entry.split("\t")[2:] == ["warning", "disconnected: by the admin"]
    bad = run("sync", "log", "anna", "--config", str(google_config), "--limit", "0")
    assert bad.returncode == 2
    assert "between 1 and 500" in bad.stderr


def test_sync_status_without_google_says_everything_is_off(config_file: Path) -> None:
    result = run("sync", "status", "--config", str(config_file))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Google is not configured")
    assert "off (direction off in the settings)" in result.stdout


async def test_invite_beside_a_running_server_is_mailed_by_the_server(
    tmp_path: Path,
    db_path: Path,
    aiohttp_client: Callable[[web.Application], Awaitable[AppClient]],
    api_headers: dict[str, str],
) -> None:
    """The command writes the database the server has open (SQLite WAL); the
    server sees the invitation at once and its outbox worker, which polls for
    items other processes queued, sends the e-mail."""
    with smtp_server() as (recorder, port):
        config = tmp_path / "live.yaml"
        config.write_text(
            google_yaml(db_path, mail=True, smtp_port=port, outbox_poll=0.1),
            encoding="utf-8",
        )
        client = await aiohttp_client(create_app(load_settings(config)))
        proc = await asyncio.create_subprocess_exec(
            *COMMAND,
            "google",
            "invite",
            "anna",
            "--config",
            str(config),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=REPO,
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
        assert proc.returncode == 0, err.decode()
        (link,) = [w for w in out.decode().split() if "/google/connect/" in w]

        resp = await client.get("/api/v1/sync/status", headers=api_headers)
        anna = next(r for r in (await resp.json())["resources"] if r["resource"] == "anna")
        assert anna["status"] == "invited"

        for _ in range(300):
            if recorder.to("anna@example.com"):
                break
            await asyncio.sleep(0.05)
        (message,) = recorder.to("anna@example.com")
        body = message.get_body(("plain",))
        assert body is not None
        assert link in body.get_content()


async def test_outbox_failed_lists_what_failed_for_good_and_why(
    config_file: Path, db_path: Path
) -> None:
    """An invitation the mail server refused for good shows only as a count
    in /healthz; the admin needs which booking, when and why."""
    assert run("outbox", "failed", "--config", str(config_file)).stdout == (
        "No outbox item has failed for good.\n"
    )
    repository = await open_sqlite_repository(db_path)
    try:
        async with repository.transaction() as tx:
            for resource, booking in (("anna", "booking-1"), ("bob", "booking-2")):
                payload = InvitationPayload(InviteAction.CREATED, 0, "zoe@example.com")
                await tx.enqueue(OutboxEffect(resource, booking, payload))
        reason = "failed for good: 550 5.1.1 <zoe@example.com>: mailbox unavailable"
        await repository.fail_outbox(1, reason)
    finally:
        await repository.close()
    result = run("outbox", "failed", "--config", str(config_file))
    assert result.returncode == 0, result.stderr
    header, *items = result.stdout.splitlines()
    assert header.split() == ["ID", "FAILED", "KIND", "RESOURCE", "BOOKING", "REASON"]
    assert len(items) == 1
    assert items[0].split()[:1] + items[0].split()[4:7] == ["1", "invitation", "anna", "booking-1"]
    assert items[0].endswith(reason)
