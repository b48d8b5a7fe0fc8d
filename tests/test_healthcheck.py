"""``calgateway healthcheck``: where it asks, and its exit codes (0 or 1 only:
Docker reserves 2). The check against a running server is in
tests/test_docker_files.py, run as the image runs it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gateway.healthcheck import probe_address
from gateway.settings import parse_settings
from tests.net import free_port
from tests.serving import COMMAND, REPO

RESOURCE = "resources:\n  - {id: anna, name: Anna, email: anna@example.com}\n"


@pytest.mark.parametrize(
    ("host", "asked"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("0.0.0.0", "127.0.0.1"),  # every interface: loopback is one of them
        ("::", "::1"),
        ("::1", "::1"),
        ("192.0.2.7", "192.0.2.7"),
        ("localhost", "localhost"),
    ],
)
def test_the_check_asks_where_the_server_listens(host: str, asked: str) -> None:
    settings = parse_settings(f"server: {{host: '{host}', port: 8123}}\n{RESOURCE}")
    assert probe_address(settings) == (asked, 8123)


def healthcheck(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, "healthcheck", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


def test_nothing_listening_is_unhealthy_and_says_where_it_asked(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "config.yaml"
    config.write_text(f"server: {{host: 0.0.0.0, port: {port}}}\n{RESOURCE}")
    result = healthcheck(config)
    assert result.returncode == 1
    assert f"http://127.0.0.1:{port}/healthz" in result.stderr


def test_a_broken_settings_file_is_unhealthy_not_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("server: {port: 99999}\n" + RESOURCE)
    result = healthcheck(config)
    assert result.returncode == 1
    assert "server.port" in result.stderr
