"""The ``calgateway`` command, run as a real process."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
from argon2 import PasswordHasher

from tests.conftest import API_TOKEN
from tests.samples import SLOT

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
