"""SIGHUP reloads the settings file (issue 12 item 9): against a real
``calgateway serve``, and the pure rules of gateway.reload as tables."""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import time
from pathlib import Path

import aiohttp
import pytest

from gateway.reload import changed_keys, restart_reasons
from gateway.settings import Settings, load_settings
from tests.conftest import API_TOKEN, settings_yaml
from tests.rawhttp import connect, request_head
from tests.samples import SLOT
from tests.serving import Served, serving

API = {"Authorization": f"Bearer {API_TOKEN}"}
CAROL = """\
  - id: carol
    name: Carol Diaz
    email: carol@example.com
"""


def _write(path: Path, db: Path, *, server: str = "", carol: bool = False) -> None:
    text = settings_yaml(db, mail=False, server=server)
    if carol:
        text += CAROL  # resources is the last section
    path.write_text(text, encoding="utf-8")


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.yaml"
    _write(path, tmp_path / "db.sqlite3")
    return path


async def _resources(server: Served) -> list[str]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{server.url}/api/v1/resources", headers=API) as answer,
    ):
        assert answer.status == 200
        body = await answer.json()
    return [r["id"] for r in body["resources"]]


def _reload_log(server: Served) -> asyncio.Future[dict[str, object]]:
    """The next "reloaded" or "reload refused" line, from the entries after now."""
    seen = len(server.entries)
    return asyncio.ensure_future(
        server.wait_for_log(
            lambda e: (
                e["msg"] in ("reloaded", "reload refused")
                and any(e is later for later in server.entries[seen:])
            )
        )
    )


async def test_sighup_with_a_new_resource_serves_it(tmp_path: Path) -> None:
    config = _config(tmp_path)
    async with serving(config) as server:
        assert "carol" not in await _resources(server)
        _write(config, tmp_path / "db.sqlite3", carol=True)
        outcome = _reload_log(server)
        server.signal(signal.SIGHUP)
        entry = await outcome
        assert entry["msg"] == "reloaded"
        assert entry["changed"] == ["resources"]
        assert "carol" in await _resources(server)
        # The old generation drained and closed its storage; SIGTERM still stops cleanly.
        await server.wait_for_log(lambda e: e["msg"] == "storage closed")
        assert await server.stop() == 0


async def test_sighup_with_an_invalid_file_keeps_the_old_settings_and_says_why(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path)
    async with serving(config) as server:
        good = config.read_text(encoding="utf-8")
        config.write_text(
            good.replace(
                "  base_url: http://gateway.test\n",
                "  base_url: http://gateway.test\n  head_timeout: -1\n",
            )
            + CAROL,
            encoding="utf-8",
        )
        outcome = _reload_log(server)
        server.signal(signal.SIGHUP)
        entry = await outcome
        assert entry["msg"] == "reload refused"
        # Key and line, as check-config says them.
        assert f"{config}:5: server.head_timeout" in str(entry["error"])
        assert "carol" not in await _resources(server)  # nothing of the new file applies
        assert not [e for e in server.entries if e["msg"] == "storage closed"]

        config.write_text(good + CAROL, encoding="utf-8")  # fixed: the next SIGHUP applies it
        outcome = _reload_log(server)
        server.signal(signal.SIGHUP)
        assert (await outcome)["msg"] == "reloaded"
        assert "carol" in await _resources(server)


async def test_sighup_that_changes_the_port_is_refused_whole(tmp_path: Path) -> None:
    config = _config(tmp_path)
    async with serving(config) as server:
        text = config.read_text(encoding="utf-8").replace("  port: 0\n", "  port: 1\n")
        config.write_text(text + CAROL, encoding="utf-8")
        outcome = _reload_log(server)
        server.signal(signal.SIGHUP)
        entry = await outcome
        assert entry["msg"] == "reload refused"
        assert "server.port changed" in str(entry["error"])
        assert "carol" not in await _resources(server)


async def test_a_request_in_flight_during_sighup_completes(tmp_path: Path) -> None:
    config = _config(tmp_path)
    async with serving(config) as server:
        body = json.dumps(SLOT).encode()
        conn = await connect(server.port)
        try:
            head = {**API, "Content-Type": "application/json", "Content-Length": str(len(body))}
            await conn.send(request_head("POST", "/api/v1/bookings", head))
            await conn.send(body[:10])  # the handler is reading the body
            _write(config, tmp_path / "db.sqlite3", carol=True)
            outcome = _reload_log(server)
            server.signal(signal.SIGHUP)
            assert (await outcome)["msg"] == "reloaded"
            # The old generation is draining: its connection still gets its body.
            await server.wait_for_log(lambda e: e["msg"] == "draining")
            await conn.send(body[10:])
            answer = await conn.answer()
            assert answer.status == 201
            assert answer.headers["connection"] == "close"  # its generation is leaving
        finally:
            await conn.close()
        await server.wait_for_log(lambda e: e["msg"] == "storage closed")


async def test_healthz_never_stops_answering_across_reloads(tmp_path: Path) -> None:
    config = _config(tmp_path)
    async with serving(config) as server:
        answers: list[tuple[float, int]] = []
        done, more = asyncio.Event(), asyncio.Event()

        async def poll() -> None:
            connector = aiohttp.TCPConnector(force_close=True)  # a fresh connection each time
            async with aiohttp.ClientSession(connector=connector) as http:
                while not done.is_set():
                    async with http.get(
                        f"{server.url}/healthz", timeout=aiohttp.ClientTimeout(total=5)
                    ) as answer:
                        answers.append((time.monotonic(), answer.status))
                        more.set()

        poller = asyncio.create_task(poll())
        try:
            for n in range(3):
                _write(config, tmp_path / "db.sqlite3", carol=n % 2 == 0)
                outcome = _reload_log(server)
                server.signal(signal.SIGHUP)
                assert (await outcome)["msg"] == "reloaded"
                await asyncio.wait_for(_answered(answers, more, len(answers) + 5), 10)
            await server.wait_for_log(
                lambda e: sum(x["msg"] == "storage closed" for x in server.entries) >= 3
            )
        finally:
            done.set()
            await asyncio.wait_for(poller, 10)
        assert {status for _, status in answers} == {200}
        gaps = [b - a for (a, _), (b, _) in itertools.pairwise(answers)]
        assert max(gaps) < 1.0


async def _answered(answers: list[tuple[float, int]], more: asyncio.Event, count: int) -> None:
    while len(answers) < count:
        more.clear()
        await more.wait()


# --------------------------------------------------------------------------- the rules


def _settings(tmp_path: Path, *, server: str = "", carol: bool = False) -> Settings:
    path = tmp_path / f"s{len(list(tmp_path.iterdir()))}.yaml"
    _write(path, tmp_path / "db.sqlite3", server=server, carol=carol)
    return load_settings(path)


@pytest.mark.parametrize(
    ("server", "carol", "changed", "restart"),
    [
        ("", False, [], []),
        ("", True, ["resources"], []),
        ("  head_timeout: 3\n", False, ["server.head_timeout"], []),
        (
            "  keepalive_timeout: 5\n  max_connections: 9\n",
            True,
            ["resources", "server.keepalive_timeout", "server.max_connections"],
            [],
        ),
        ("  metrics: public\n", False, ["server.metrics"], []),
    ],
)
def test_changed_keys(
    tmp_path: Path, server: str, carol: bool, changed: list[str], restart: list[str]
) -> None:
    old, new = _settings(tmp_path), _settings(tmp_path, server=server, carol=carol)
    assert changed_keys(old, new) == changed
    assert restart_reasons(old, new) == restart


def test_what_needs_a_restart(tmp_path: Path) -> None:
    old = _settings(tmp_path)
    moved = replaced(tmp_path, "  port: 0\n", "  port: 8443\n")
    assert changed_keys(old, moved) == ["server.port"]
    assert restart_reasons(old, moved) == [
        "server.port changed: the listening socket is opened once, at start; "
        "restart the server to apply it"
    ]
    other_db = replaced(tmp_path, "db.sqlite3", "other.sqlite3")
    assert [r.split(":")[0] for r in restart_reasons(old, other_db)] == ["storage.url changed"]


def test_a_changed_secret_is_a_change(tmp_path: Path) -> None:
    old = _settings(tmp_path)
    new = replaced(tmp_path, API_TOKEN, "another-api-token-0123456789abcdef")
    assert changed_keys(old, new) == ["api_tokens"]


def replaced(tmp_path: Path, old: str, new: str) -> Settings:
    """The test settings with one text replaced."""
    path = tmp_path / "replaced.yaml"
    text = settings_yaml(tmp_path / "db.sqlite3", mail=False)
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
    return load_settings(path)
