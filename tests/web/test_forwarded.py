"""The client's address behind trusted reverse proxies: the X-Forwarded-For
walk as a table, and what it means for password guessing through the app
(behind a proxy one attacker must not lock every client out, and without a
trusted proxy nobody can dodge a lockout by writing the header)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, make_mocked_request

from gateway.settings import SettingsError, load_settings
from gateway.web.forwarded import CLIENT_ADDRESS, client_address, parse_networks
from gateway.web.observability import ACCESS_LOGGER, AccessLogger
from tests.conftest import ADMIN_PASSWORD, ClientWith, basic, settings_yaml

Client = TestClient[Any, Any]
PROXIES = parse_networks(["127.0.0.1", "10.0.0.0/8", "fd00::/8"])


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "expected"),
    [
        # Not from a proxy: the header is anyone's to write, and ignored.
        ("203.0.113.7", ["198.51.100.1"], "203.0.113.7"),
        ("203.0.113.7", [], "203.0.113.7"),
        # From a proxy: the rightmost address that is not a proxy.
        ("127.0.0.1", ["203.0.113.7"], "203.0.113.7"),
        ("127.0.0.1", ["198.51.100.1, 203.0.113.7"], "203.0.113.7"),
        ("127.0.0.1", ["198.51.100.1, 203.0.113.7, 10.1.2.3"], "203.0.113.7"),
        ("127.0.0.1", ["198.51.100.1", "203.0.113.7, 10.1.2.3"], "203.0.113.7"),
        # Every hop a proxy: the leftmost.
        ("127.0.0.1", ["10.9.9.9, 10.1.2.3"], "10.9.9.9"),
        # No header: the proxy itself.
        ("127.0.0.1", [], "127.0.0.1"),
        # Garbage ends the walk at the last trusted hop.
        ("127.0.0.1", ["203.0.113.7, unknown"], "127.0.0.1"),
        ("127.0.0.1", ["203.0.113.7, junk, 10.1.2.3"], "10.1.2.3"),
        # Ports and brackets as proxies write them.
        ("127.0.0.1", ["203.0.113.7:5123"], "203.0.113.7"),
        ("127.0.0.1", ["[2001:db8::7]"], "2001:db8::7"),
        ("fd00::1", ["2001:db8::7"], "2001:db8::7"),
        ("::ffff:127.0.0.1", ["203.0.113.7"], "203.0.113.7"),  # a dual-stack listener
        ("::ffff:203.0.113.9", ["198.51.100.1"], "::ffff:203.0.113.9"),
        (None, ["203.0.113.7"], None),
    ],
)
def test_client_address(peer: str | None, forwarded_for: list[str], expected: str | None) -> None:
    assert client_address(peer, forwarded_for, PROXIES) == expected


def test_a_trusted_proxy_that_is_no_address_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        settings_yaml(tmp_path / "db.sqlite3", server="  trusted_proxies: [10.0.0.0/8, nginx]\n")
    )
    with pytest.raises(SettingsError, match=r"server.trusted_proxies.*'nginx'"):
        load_settings(path)


async def _client(client_with: ClientWith, trusted: bool) -> Client:
    return await client_with(
        "  trusted_proxies: [127.0.0.1]\n" if trusted else "",
        extra="auth:\n  max_failures_per_address: 3\n  max_failures_per_user: 100\n",
    )


async def _sign_ins(client: Client) -> tuple[list[int], int]:
    """Three wrong passwords from 203.0.113.7, then the right one from
    198.51.100.9, as a proxy on 127.0.0.1 would forward them."""
    wrong = basic("admin", "not-the-password")
    statuses = []
    for _ in range(4):
        answer = await client.get(
            "/api/v1/resources", headers={**wrong, "X-Forwarded-For": "203.0.113.7"}
        )
        statuses.append(answer.status)
    real = await client.get(
        "/api/v1/resources",
        headers={**basic("admin", ADMIN_PASSWORD), "X-Forwarded-For": "198.51.100.9"},
    )
    return statuses, real.status


async def test_behind_a_trusted_proxy_one_attacker_does_not_lock_everyone_out(
    client_with: ClientWith, caplog: pytest.LogCaptureFixture
) -> None:
    client = await _client(client_with, trusted=True)
    with caplog.at_level(logging.INFO):
        attacker, real = await _sign_ins(client)
    assert attacker == [401, 401, 401, 429]
    assert real == 200
    locked = [r for r in caplog.records if r.getMessage() == "sign-in locked out"]
    assert [getattr(r, "address", None) for r in locked] == ["203.0.113.7"]


def test_the_access_log_names_the_client_the_proxy_forwarded_for(
    caplog: pytest.LogCaptureFixture,
) -> None:
    request = make_mocked_request("GET", "/healthz")
    request[CLIENT_ADDRESS] = "203.0.113.7"
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER.name):
        AccessLogger(ACCESS_LOGGER, "").log(request, web.Response(), 0.01)
    assert [getattr(r, "remote", None) for r in caplog.records] == ["203.0.113.7"]


async def test_without_a_trusted_proxy_the_header_changes_nothing(
    client_with: ClientWith,
) -> None:
    client = await _client(client_with, trusted=False)
    attacker, real = await _sign_ins(client)
    assert attacker == [401, 401, 401, 429]
    assert real == 429  # the same connection address: locked out, header or not
