"""vdirsyncer (the real CLI, in a subprocess) syncing the gateway with a local
``filesystem`` storage both ways: what a user running ``vdirsyncer sync``
against the gateway sees in their folder and on the server."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import icalendar
import pytest
from aiohttp import ClientSession

from tests.caldav.dav import NS, event, propfind_body
from tests.caldav.servers import DavEndpoint, GatewayServer, member_name
from tests.conftest import ADMIN_PASSWORD, basic

VDIRSYNCER = Path(sys.executable).parent / "vdirsyncer"
RUN_TIMEOUT = 60  # seconds for one vdirsyncer command

pytestmark = pytest.mark.skipif(not VDIRSYNCER.exists(), reason="vdirsyncer is not installed")


def _env(home: Path) -> dict[str, str]:
    """No proxy settings or user config of the machine leak into the run."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
    }
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), NO_PROXY="127.0.0.1")
    return env


@dataclass
class Vdirsyncer:
    config: Path
    home: Path

    async def run(self, *args: str, succeeds: bool = True) -> str:
        process = await asyncio.create_subprocess_exec(
            str(VDIRSYNCER),
            "--config",
            str(self.config),
            *args,
            stdin=subprocess.DEVNULL,  # any question it would ask fails instead of hanging
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=_env(self.home),
        )
        try:
            out, _ = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
        text = out.decode(errors="replace")
        if succeeds:
            assert process.returncode == 0, f"vdirsyncer {' '.join(args)} failed:\n{text}"
        else:
            assert process.returncode != 0, f"vdirsyncer {' '.join(args)} succeeded:\n{text}"
        return text

    async def sync(self) -> str:
        return await self.run("sync")


def write_config(tmp_path: Path, storage_b: str, pair_extra: str, local: Path) -> Vdirsyncer:
    config = tmp_path / "vdirsyncer.conf"
    config.write_text(
        f"""\
[general]
status_path = "{tmp_path / "status"}/"

[pair gw]
a = "local"
b = "gateway"
{pair_extra}

[storage local]
type = "filesystem"
path = "{local}/"
fileext = ".ics"

[storage gateway]
type = "caldav"
{storage_b}
username = "admin"
password = "{ADMIN_PASSWORD}"
""",
        encoding="utf-8",
    )
    home = tmp_path / "home"
    home.mkdir()
    return Vdirsyncer(config, home)


@pytest.fixture
async def room(gateway: GatewayServer, http: ClientSession) -> DavEndpoint:
    return DavEndpoint(http, gateway.url, "/dav/calendars/room/", basic("admin", ADMIN_PASSWORD))


@pytest.fixture
async def synced(tmp_path: Path, gateway: GatewayServer) -> AsyncIterator[tuple[Vdirsyncer, Path]]:
    """A pair of the room calendar (by its URL, collections null) and a folder."""
    local = tmp_path / "local"
    local.mkdir()
    vdir = write_config(
        tmp_path,
        f'url = "{gateway.calendar_url("room")}"',
        "collections = null\nconflict_resolution = null",
        local,
    )
    yield vdir, local


# -- reading both sides --------------------------------------------------------------


def _uid(ics: str | bytes) -> str:
    calendar = icalendar.Calendar.from_ical(ics)
    (uid,) = {str(c["UID"]) for c in calendar.walk("VEVENT")}
    return uid


def local_items(folder: Path) -> dict[str, tuple[str, bytes]]:
    """UID -> (file name, bytes) of the .ics files in a folder."""
    items = {}
    for path in sorted(folder.glob("*.ics")):
        data = path.read_bytes()
        items[_uid(data)] = (path.name, data)
    assert len(items) == len(list(folder.iterdir())), list(folder.iterdir())
    return items


async def server_items(room: DavEndpoint) -> dict[str, tuple[str, str, bytes]]:
    """UID -> (member name, etag, body) of the objects in the calendar."""
    listing = await room.propfind(propfind_body("D:getetag"))
    assert listing.status == 207
    items = {}
    for href in listing.hrefs():
        if href.rstrip("/") == room.collection.rstrip("/"):
            continue
        etag = listing.props(href)["D:getetag"].text
        name = member_name(href)
        got = await room.get(name)
        assert got.status == 200, (href, got.status)
        assert got.headers["ETag"] == etag
        items[_uid(got.body)] = (name, etag, got.body)
    return items


def summary(ics: bytes) -> str:
    (vevent,) = icalendar.Calendar.from_ical(ics).walk("VEVENT")
    return str(vevent["SUMMARY"])


def write_local(folder: Path, name: str, ics: str) -> None:
    (folder / name).write_bytes(ics.encode("utf-8"))


async def sync_token(room: DavEndpoint) -> str:
    answer = await room.propfind(propfind_body("D:sync-token"), depth="0")
    token = answer.xml().findtext("D:response/D:propstat/D:prop/D:sync-token", namespaces=NS)
    assert token
    return token


# -- tests ---------------------------------------------------------------------------

STAY = "stay@example.com"


async def test_two_way_round_trip(synced: tuple[Vdirsyncer, Path], room: DavEndpoint) -> None:
    vdir, local = synced
    server_ics = event("from-server@example.com", "20261201T090000Z", "20261201T100000Z")
    assert (await room.put("from-server.ics", server_ics)).status == 201
    # Kept on the server throughout: vdirsyncer refuses to sync a side that
    # was emptied completely.
    stay = event("stay@example.com", "20261205T090000Z", "20261205T100000Z", summary="Stay")
    assert (await room.put("stay.ics", stay)).status == 201
    local_ics = event(
        "from-local@example.com", "20261202T090000Z", "20261202T100000Z", summary="Local"
    )
    write_local(local, "from-local.ics", local_ics)

    await vdir.run("discover")
    await vdir.sync()

    # Each side got the other's event, with the same meaning.
    here = local_items(local)
    there = await server_items(room)
    assert set(here) == set(there) == {"from-server@example.com", "from-local@example.com", STAY}
    assert summary(here["from-server@example.com"][1]) == "Haircut"
    assert summary(there["from-local@example.com"][2]) == "Local"
    # The gateway stores what vdirsyncer sent, byte for byte.
    assert there["from-local@example.com"][2] == here["from-local@example.com"][1]

    # A change on the server comes back to the local file.
    name, etag, _ = there["from-server@example.com"]
    changed = server_ics.replace("SUMMARY:Haircut", "SUMMARY:Haircut (moved)")
    assert (await room.put(name, changed, headers={"If-Match": etag})).status == 204
    await vdir.sync()
    here = local_items(local)
    assert summary(here["from-server@example.com"][1]) == "Haircut (moved)"

    # A local change goes to the server.
    local_name = here["from-local@example.com"][0]
    write_local(local, local_name, local_ics.replace("SUMMARY:Local", "SUMMARY:Local v2"))
    await vdir.sync()
    there = await server_items(room)
    assert summary(there["from-local@example.com"][2]) == "Local v2"
    server_name = there["from-local@example.com"][0]

    # A local deletion deletes on the server.
    (local / local_name).unlink()
    await vdir.sync()
    there = await server_items(room)
    assert set(there) == {"from-server@example.com", STAY}
    assert (await room.get(server_name)).status == 404

    # A server deletion deletes the local file.
    name, etag, _ = there["from-server@example.com"]
    assert (await room.delete(name, headers={"If-Match": etag})).status == 204
    await vdir.sync()
    assert set(local_items(local)) == set(await server_items(room)) == {STAY}


async def test_a_double_booking_shows_the_busy_span_in_what_vdirsyncer_prints(
    synced: tuple[Vdirsyncer, Path], room: DavEndpoint
) -> None:
    """vdirsyncer reports a refused upload by its status line only (no
    body): the reason phrase is what its user gets to read."""
    vdir, local = synced
    booked = event(STAY, "20261201T090000Z", "20261201T100000Z", summary="Stay")
    assert (await room.put("stay.ics", booked)).status == 201
    clash = event("clash@example.com", "20261201T093000Z", "20261201T103000Z", summary="Clash")
    write_local(local, "clash.ics", clash)
    await vdir.run("discover")
    printed = await vdir.run("sync", succeeds=False)
    assert "409, message='Conflict: busy 2026-12-01 09:00-10:00 UTC'" in printed
    assert set(await server_items(room)) == {STAY}


async def test_second_sync_without_changes_is_a_no_op(
    synced: tuple[Vdirsyncer, Path], room: DavEndpoint
) -> None:
    vdir, local = synced
    for n in range(3):
        ics = event(f"s{n}@example.com", f"2026120{n + 1}T090000Z", f"2026120{n + 1}T100000Z")
        assert (await room.put(f"s{n}.ics", ics)).status == 201
    write_local(local, "l.ics", event("l@example.com", "20261210T090000Z", "20261210T100000Z"))
    await vdir.run("discover")
    first = await vdir.sync()
    assert first.count("Copying (uploading)") == 4, first  # what a change looks like

    files = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in local.iterdir()}
    objects = await server_items(room)
    token = await sync_token(room)
    assert len(files) == len(objects) == 4

    output = await vdir.sync()

    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in local.iterdir()} == files
    assert await server_items(room) == objects  # same names, etags and bodies
    assert await sync_token(room) == token  # nothing was written on the server
    assert "Copying" not in output and "Deleting" not in output, output


UNSAFE_UIDS = ("team/meeting 1@example.com", "a b/c?d#e%20f@example.com", "ünï räum@example.com")


async def test_uids_unsafe_in_urls_round_trip(
    synced: tuple[Vdirsyncer, Path], room: DavEndpoint
) -> None:
    """vdirsyncer names such objects itself (a UUID); the gateway must take
    a name unrelated to the UID and serve it back under that name."""
    vdir, local = synced
    sent = {}
    for n, uid in enumerate(UNSAFE_UIDS):
        sent[uid] = event(uid, f"2026120{n + 1}T090000Z", f"2026120{n + 1}T100000Z", summary="U")
        write_local(local, f"unsafe{n}.ics", sent[uid])
    await vdir.run("discover")
    await vdir.sync()

    there = await server_items(room)
    assert set(there) == set(UNSAFE_UIDS)
    for uid, (name, _, body) in there.items():
        assert name != uid
        assert body == sent[uid].encode("utf-8")

    # Changed on the server under vdirsyncer's names, they come back.
    for uid, (name, etag, _) in there.items():
        changed = sent[uid].replace("SUMMARY:U", "SUMMARY:U v2")
        assert (await room.put(name, changed, headers={"If-Match": etag})).status == 204
    await vdir.sync()
    here = local_items(local)
    assert set(here) == set(UNSAFE_UIDS)
    assert {summary(data) for _, data in here.values()} == {"U v2"}
    before = await server_items(room)
    output = await vdir.sync()
    assert "Copying" not in output and "Deleting" not in output, output
    assert await server_items(room) == before


async def test_server_object_with_encoded_name_reaches_local(
    synced: tuple[Vdirsyncer, Path], room: DavEndpoint
) -> None:
    """An object a client named with a space and '@' (percent-encoded in
    hrefs) syncs down and a local change goes back to the same object."""
    vdir, local = synced
    uid = "meeting room@example.com"
    ics = event(uid, "20261204T090000Z", "20261204T100000Z", summary="Encoded")
    assert (await room.put("meeting room@example.com.ics", ics)).status == 201
    await vdir.run("discover")
    await vdir.sync()
    here = local_items(local)
    assert summary(here[uid][1]) == "Encoded"

    write_local(local, here[uid][0], ics.replace("SUMMARY:Encoded", "SUMMARY:Encoded v2"))
    await vdir.sync()
    there = await server_items(room)
    assert list(there) == [uid]
    assert there[uid][0] == "meeting room@example.com.ics"
    assert summary(there[uid][2]) == "Encoded v2"


async def test_discovery_from_dav_root(
    tmp_path: Path, gateway: GatewayServer, room: DavEndpoint
) -> None:
    """Given /dav/, vdirsyncer finds the admin's three calendars and syncs each
    into its own folder."""
    local = tmp_path / "calendars"
    local.mkdir()
    vdir = write_config(
        tmp_path,
        f'url = "{gateway.url}/dav/"',
        'collections = ["from b"]\nimplicit = "create"',
        local,
    )
    assert (await room.put("r.ics", event("r@example.com"))).status == 201
    await vdir.run("discover")
    await vdir.sync()
    assert sorted(p.name for p in local.iterdir()) == ["anna", "bob", "room"]
    assert list(local_items(local / "room")) == ["r@example.com"]
    assert local_items(local / "anna") == {}
    assert local_items(local / "bob") == {}
