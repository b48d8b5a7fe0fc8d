"""``calgateway import RESOURCE FILE.ics``: an export of years of
appointments, split by UID, each object stored as a CalDAV PUT would store
it, refused ones reported with the reason, idempotent, with a dry run.

The command runs as a real process on a real SQLite file; what it stored is
read back through the server's CalDAV and feeds, as a client would."""

from __future__ import annotations

import asyncio
import os
import pty
import re
import sqlite3
import subprocess
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from lxml import etree

from bench.exports import calendar_export
from gateway.core.calendar_import import ImportStatus
from gateway.core.mirror import GOOGLE_PUSH
from gateway.ical.split import split_calendar
from tests.api.test_google_admin import google_yaml
from tests.caldav.dav import put, request
from tests.conftest import ADMIN_PASSWORD, READER_PASSWORD, AppClient, basic, settings_yaml
from tests.corpus import corpus_files
from tests.dbcheck import outbox_rows, row_counts
from tests.ical_readers import assert_readable
from tests.serving import COMMAND, REPO, serving

ANNA = "/dav/calendars/anna/"
TIMEOUT = 120


def calgateway_import(
    config: Path, *args: str, stderr: int | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, "import", *args, "--config", str(config)],
        capture_output=stderr is None,
        stdout=subprocess.PIPE if stderr is not None else None,
        stderr=stderr,
        text=True,
        timeout=TIMEOUT,
        cwd=REPO,
        check=False,
    )


async def imported(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The command, from a test whose app serves meanwhile (its event loop
    must go on, or a transaction it holds open blocks the command)."""
    return await asyncio.to_thread(calgateway_import, config, *args)


def report_lines(stdout: str) -> dict[str, tuple[str, str]]:
    """UID -> (status, rest of the line) from the command's report."""
    found = {}
    for line in stdout.splitlines():
        match = re.fullmatch(r"(\S+)\s+line (\d+) (\S+)(?:: (.*))?", line)
        if match:
            found[match.group(3)] = (match.group(1), match.group(4) or "")
    return found


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def _z(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_an_export_is_imported_once_and_double_bookings_are_named(
    tmp_path: Path, config_file: Path, db_path: Path, client: AppClient
) -> None:
    export = calendar_export(300)
    file = write(tmp_path, "anna.ics", export.text)

    first = await imported(config_file, "anna", str(file))
    assert first.returncode == 1, first.stderr  # some were refused
    assert "Traceback" not in first.stderr, first.stderr
    report = report_lines(first.stdout)
    assert set(report) == export.stored | set(export.double_booked)
    assert {uid for uid, (status, _) in report.items() if status == "stored"} == export.stored
    for uid, (start, end) in export.double_booked.items():
        status, why = report[uid]
        assert status == "double-booking"
        assert f"overlaps busy time of 'anna' at {_z(start)}/{_z(end)}" in why
    assert first.stdout.splitlines()[-1] == (
        f"{file} -> anna: 300 objects were {len(export.stored)} stored, "
        f"{len(export.double_booked)} double-booking"
    )

    # Stored as the file wrote each object, served by CalDAV as a client sees it.
    pieces = {p.uid: p.ics for p in split_calendar(export.text).pieces}
    uid = sorted(export.stored)[3]
    got = await request(client, "GET", f"{ANNA}{uid}.ics")
    assert got.status == 200
    assert got.body == pieces[uid].encode("utf-8")
    listing = await request(client, "PROPFIND", ANNA, headers={"Depth": "1"})
    assert len(listing.hrefs()) == len(export.stored) + 1  # and the collection
    feed = await client.get("/feeds/anna.ics?token=anna-feed-token-0123456789abcdef")
    assert (await feed.text()).count("BEGIN:VEVENT") == len(export.stored)

    # A second run changes nothing: no write, no new revision, no sync noise.
    before = row_counts(db_path)
    second = await imported(config_file, "anna", str(file))
    assert row_counts(db_path) == before
    again = report_lines(second.stdout)
    assert {uid for uid, (status, _) in again.items() if status == "unchanged"} == export.stored
    assert {uid for uid, (s, _) in again.items() if s == "double-booking"} == set(
        export.double_booked
    )


def test_a_dry_run_says_the_same_and_writes_nothing(
    tmp_path: Path, config_file: Path, db_path: Path
) -> None:
    export = calendar_export(120)
    file = write(tmp_path, "anna.ics", export.text)
    dry = calgateway_import(config_file, "anna", str(file), "--dry-run")
    assert dry.returncode == 1
    assert dry.stdout.splitlines()[-1].endswith("(dry run: nothing was written)")
    assert row_counts(db_path)["objects"] == 0
    real = calgateway_import(config_file, "anna", str(file))
    # Overlaps inside the file are found without writing: the same verdicts.
    assert report_lines(dry.stdout) == report_lines(real.stdout)
    assert row_counts(db_path)["objects"] == len(export.stored)


async def test_existing_bookings_block_the_import_and_an_edited_file_updates(
    tmp_path: Path, config_file: Path, client: AppClient, api_headers: dict[str, str]
) -> None:
    export = calendar_export(20, seed_every=1000)
    first_uid = sorted(export.stored)[0]
    # A booking made through the API in the hour of the file's first appointment.
    start = datetime(2023, 1, 2, 8, tzinfo=UTC)  # 09:00 in Berlin
    made = await client.post(
        "/api/v1/bookings",
        json={
            "resource": "anna",
            "title": "Walk-in",
            "start": start.isoformat(),
            "end": (start + timedelta(hours=1)).isoformat(),
        },
        headers=api_headers,
    )
    assert made.status == 201, await made.text()
    file = write(tmp_path, "anna.ics", export.text)
    first = report_lines((await imported(config_file, "anna", str(file))).stdout)
    assert first[first_uid] == (
        "double-booking",
        "overlaps busy time of 'anna' at 2023-01-02T08:00:00Z/2023-01-02T09:00:00Z",
    )

    edited_uid = sorted(export.stored)[5]
    pieces = {p.uid: p.ics for p in split_calendar(export.text).pieces}
    edited = export.text.replace(
        f"UID:{edited_uid}\r\n", f"UID:{edited_uid}\r\nLOCATION:Room 2\r\n"
    )
    second = report_lines(
        (await imported(config_file, "anna", str(write(tmp_path, "b.ics", edited)))).stdout
    )
    assert second[edited_uid] == ("updated", "")
    assert {s for u, (s, _) in second.items() if u not in (edited_uid, first_uid)} == {"unchanged"}
    got = await request(client, "GET", f"{ANNA}{edited_uid}.ics")
    assert b"LOCATION:Room 2" in got.body
    assert got.body != pieces[edited_uid].encode()


async def test_invalid_objects_are_reported_with_the_reason_and_the_rest_stored(
    tmp_path: Path, config_file: Path, client: AppClient
) -> None:
    good = (
        "BEGIN:VEVENT\r\nUID:good\r\nDTSTAMP:20260101T000000Z\r\n"
        "DTSTART:20260105T090000Z\r\nDTEND:20260105T100000Z\r\nEND:VEVENT\r\n"
    )
    typo = (
        good.replace("UID:good", "UID:typo")
        .replace("DTEND", "RRULE:FREQ=WEEKLY;UNTL=20270101T000000Z\r\nDTEND")
        .replace("0105T", "0106T")
    )
    todo = "BEGIN:VTODO\r\nUID:todo\r\nSUMMARY:buy milk\r\nEND:VTODO\r\n"
    no_uid = "BEGIN:VEVENT\r\nDTSTART:20260107T090000Z\r\nEND:VEVENT\r\n"
    elsewhere = good.replace("UID:good", "UID:bobs").replace("0105T", "0108T")
    # UIDs are unique across the gateway: one already in Bob's calendar.
    assert (
        await put(
            client,
            "/dav/calendars/bob/bobs.ics",
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\n" + elsewhere + "END:VCALENDAR\r\n",
        )
    ).status == 201
    text = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\n"
        + good
        + typo
        + todo
        + no_uid
        + elsewhere
        + "END:VCALENDAR\r\n"
    )
    result = await imported(config_file, "anna", str(write(tmp_path, "mixed.ics", text)))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("stored         line 4 good")
    assert re.match(r"invalid +line 10 typo: valid-calendar-data: .*UNTL", lines[1]), lines[1]
    assert re.match(r"invalid +line 17 todo: supported-calendar-component: VTODO", lines[2]), lines[
        2
    ]
    assert re.match(r"invalid +line 21: the VEVENT at line 21 has no UID", lines[3]), lines[3]
    assert re.match(r"uid-conflict +line 24 bobs: UID 'bobs' is already used", lines[4]), lines[4]
    assert (await request(client, "GET", f"{ANNA}good.ics")).status == 200
    assert (await request(client, "GET", f"{ANNA}typo.ics")).status == 404
    # --problems-only leaves out what was stored.
    quiet = await imported(config_file, "anna", str(tmp_path / "mixed.ics"), "--problems-only")
    assert "good" not in quiet.stdout.split("\n", 1)[0]
    assert len(quiet.stdout.splitlines()) == 5


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\n", "ends inside BEGIN:VEVENT"),
        (b"hello\r\n", "line 1: 'hello' is outside"),
        (
            "BEGIN:VCALENDAR\r\nSUMMARY:Zoë\r\nEND:VCALENDAR\r\n".encode("latin-1"),
            "the file is not text in the charset utf-8 (byte 28",
        ),
    ],
)
def test_a_file_that_is_no_calendar_is_refused_whole(
    tmp_path: Path, config_file: Path, db_path: Path, content: bytes, words: str
) -> None:
    file = tmp_path / "bad.ics"
    file.write_bytes(content)
    result = calgateway_import(config_file, "anna", str(file))
    assert result.returncode == 2
    assert words in result.stderr
    assert result.stdout == ""
    assert not db_path.exists() or row_counts(db_path)["objects"] == 0


def test_a_utf16_export_with_a_byte_order_mark_is_read(
    tmp_path: Path, config_file: Path, db_path: Path
) -> None:
    file = tmp_path / "outlook.ics"
    file.write_bytes(calendar_export(5).text.encode("utf-16"))
    result = calgateway_import(config_file, "anna", str(file))
    assert result.returncode == 0, result.stderr
    assert row_counts(db_path)["objects"] == 5


def test_unknown_resource_and_missing_file_are_named(tmp_path: Path, config_file: Path) -> None:
    missing = calgateway_import(config_file, "anna", str(tmp_path / "nope.ics"))
    assert missing.returncode == 2
    assert "cannot read" in missing.stderr and "nope.ics" in missing.stderr
    unknown = calgateway_import(config_file, "carol", str(write(tmp_path, "x.ics", "")))
    assert unknown.returncode == 2
    assert "unknown resource 'carol'" in unknown.stderr


def test_progress_is_shown_on_a_terminal_only(tmp_path: Path, config_file: Path) -> None:
    file = write(tmp_path, "anna.ics", calendar_export(450).text)
    leader, follower = pty.openpty()
    try:
        result = calgateway_import(config_file, "anna", str(file), "--dry-run", stderr=follower)
        os.close(follower)
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal's other end is closed: all read
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(leader)
    assert result.returncode == 1
    assert b"\rimporting: 200/450 objects" in shown
    assert b"\rimporting: 450/450 objects" in shown
    piped = calgateway_import(config_file, "anna", str(file), "--dry-run")
    assert "importing" not in piped.stderr


def test_only_bookings_still_to_come_are_queued_for_google(tmp_path: Path) -> None:
    db_path = tmp_path / "gateway.sqlite3"
    config = tmp_path / "gateway.yaml"
    config.write_text(google_yaml(db_path), encoding="utf-8")
    soon = datetime.now(UTC) + timedelta(days=3)
    past = datetime(2024, 3, 1, 9, tzinfo=UTC)
    events = "".join(
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTART:{when:%Y%m%dT%H%M%SZ}\r\n"
        f"DTEND:{when + timedelta(hours=1):%Y%m%dT%H%M%SZ}\r\nEND:VEVENT\r\n"
        for uid, when in (("past", past), ("coming", soon))
    )
    text = f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\n{events}END:VCALENDAR\r\n"
    result = calgateway_import(config, "anna", str(write(tmp_path, "g.ics", text)))
    assert result.returncode == 0, result.stdout + result.stderr
    with sqlite3.connect(db_path) as conn:
        coming = conn.execute("SELECT booking_id FROM objects WHERE uid = 'coming'").fetchone()[0]
    assert [(kind, booking) for kind, booking, _ in outbox_rows(db_path)] == [(GOOGLE_PUSH, coming)]


async def test_the_import_runs_beside_a_serving_gateway_and_through_its_api(
    tmp_path: Path,
) -> None:
    db_path = tmp_path / "gateway.sqlite3"
    config = tmp_path / "gateway.yaml"
    # A calendar file is far larger than any one object: its own limit.
    limits = "  max_body_bytes: 4096\n  max_import_bytes: 300000\n"
    config.write_text(settings_yaml(db_path, server=limits), encoding="utf-8")
    export = calendar_export(250)  # about 100 KB
    file = write(tmp_path, "anna.ics", export.text)
    auth = basic("admin", ADMIN_PASSWORD)
    async with serving(config) as server, aiohttp.ClientSession() as http:
        anna = f"{server.url}/dav/calendars/anna/"
        result = await asyncio.to_thread(calgateway_import, config, "anna", str(file))
        assert result.returncode == 1
        listing = await http.request("PROPFIND", anna, headers={**auth, "Depth": "1"})
        found = etree.fromstring(await listing.read()).findall("{DAV:}response")
        assert len(found) == len(export.stored) + 1  # and the collection itself

        # The same through the API, into Bob's calendar: a dry run, then for real.
        api = f"{server.url}/api/v1/resources/bob/import"
        ics = {**auth, "Content-Type": "text/calendar"}
        body = export.text.replace("@old-calendar", "@bobs-old-calendar").encode()
        dry = await http.post(api + "?dry_run=true", data=body, headers=ics)
        assert dry.status == 200, await dry.text()
        dry_report = await dry.json()
        assert dry_report["dry_run"] is True
        real = await http.post(api, data=body, headers=ics)
        assert real.status == 201, await real.text()
        report = await real.json()
        assert report["counts"] == dry_report["counts"]
        assert report["counts"]["stored"] == len(export.stored)
        assert report["counts"]["double-booking"] == len(export.double_booked)
        clash = next(o for o in report["objects"] if o["status"] == "double-booking")
        start, end = export.double_booked[clash["uid"].replace("@bobs-old", "@old")]
        assert clash["conflicts"] == [
            {
                "start": start.isoformat().replace("+00:00", "Z"),
                "end": end.isoformat().replace("+00:00", "Z"),
            }
        ]
        listing = await http.request(
            "PROPFIND", f"{server.url}/dav/calendars/bob/", headers={**auth, "Depth": "1"}
        )
        assert (
            len(etree.fromstring(await listing.read()).findall("{DAV:}response"))
            == len(export.stored) + 1
        )

        # An object larger than a CalDAV PUT may send (max-resource-size,
        # here server.max_body_bytes = 4096) is refused like the PUT would be.
        huge = (
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:huge\r\n"
            "DTSTART:20300101T090000Z\r\nDTEND:20300101T100000Z\r\n"
            + "".join(f"X-NOTE-{n}:{'x' * 60}\r\n" for n in range(80))
            + "END:VEVENT\r\nEND:VCALENDAR\r\n"
        )
        too_big = await http.post(api + "?dry_run=1", data=huge.encode(), headers=ics)
        [verdict] = (await too_big.json())["objects"]
        assert verdict["status"] == "invalid"
        assert verdict["message"].startswith("max-resource-size: the object is ")
        assert verdict["message"].endswith("may be at most 4096")

        # Beyond server.max_import_bytes: 413 naming it, nothing read.
        large = calendar_export(800).text.encode()
        assert len(large) > 300_000
        refused = await http.post(api, data=large, headers=ics)
        assert refused.status == 413
        assert "server.max_import_bytes" in (await refused.json())["detail"]
        # Elsewhere the ordinary limit still holds.
        put_large = await http.put(anna + "big.ics", data=body[:5000], headers=ics)
        assert put_large.status == 413
        assert "server.max_body_bytes" in (await put_large.json())["detail"]
        healthy = await http.get(f"{server.url}/healthz")
        assert healthy.status == 200


async def test_the_api_import_needs_write_access_a_calendar_and_a_structure(
    client: AppClient, api_headers: dict[str, str]
) -> None:
    url = "/api/v1/resources/anna/import"
    ics = {"Content-Type": "text/calendar"}
    text = calendar_export(3).text
    reader = await client.post(url, data=text, headers={**basic("reader", READER_PASSWORD), **ics})
    assert reader.status == 403
    json_body = await client.post(url, json={"ics": text}, headers=api_headers)
    assert json_body.status == 415
    broken = await client.post(url, data="BEGIN:VCALENDAR\r\n", headers={**api_headers, **ics})
    assert broken.status == 422
    assert "ends inside BEGIN:VCALENDAR" in (await broken.json())["detail"]
    flag = await client.post(url + "?dry_run=maybe", data=text, headers={**api_headers, **ics})
    assert flag.status == 400
    unknown = await client.post(
        "/api/v1/resources/carol/import", data=text, headers={**api_headers, **ics}
    )
    assert unknown.status == 404
    made = await client.post(url, data=text, headers={**api_headers, **ics})
    assert made.status == 201
    assert (await made.json())["counts"]["stored"] == 3
    again = await client.post(url, data=text, headers={**api_headers, **ics})
    assert (await again.json())["counts"]["unchanged"] == 3


def test_the_server_knows_the_import_route_by_its_path() -> None:
    # gateway.web.connections may not import the API: the two must agree.
    from aiohttp import web

    from gateway.front.api import create_api_app
    from gateway.web.connections import IMPORT_PATH

    route = create_api_app(web.Application()).router["calendar-file"].canonical
    assert IMPORT_PATH.fullmatch("/api/v1" + route.replace("{resource_id}", "anna"))
    assert not IMPORT_PATH.fullmatch("/api/v1/resources/anna/import/x")
    assert not IMPORT_PATH.fullmatch("/dav/calendars/anna/import")


def test_a_reader_that_stops_early_gets_no_traceback(tmp_path: Path, config_file: Path) -> None:
    # A report larger than a pipe's buffer (64 KiB), so the writer meets the closed end.
    file = write(tmp_path, "anna.ics", calendar_export(2000).text)
    process = subprocess.Popen(
        [*COMMAND, "import", "anna", str(file), "--config", str(config_file), "--dry-run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
    )
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline().startswith(b"stored")
    process.stdout.close()  # as `| head -1` does
    error = process.stderr.read()
    assert process.wait(timeout=TIMEOUT) == 1
    assert b"Traceback" not in error and b"BrokenPipe" not in error


async def test_every_corpus_calendar_imports_without_a_server_error_and_reads_back(
    client: AppClient, api_headers: dict[str, str], db_path: Path
) -> None:
    """The real-world corpus through the import API: each file is split
    (or refused whole with 422), every object is stored or refused with a
    reason, and every stored object reads in icalendar and vobject."""
    headers = {**api_headers, "Content-Type": "text/calendar"}
    outcomes: Counter[str] = Counter()
    for path in corpus_files():
        body = await asyncio.to_thread(path.read_bytes)
        answer = await client.post("/api/v1/resources/room/import", data=body, headers=headers)
        assert answer.status in (201, 400, 422), (path.name, answer.status, await answer.text())
        if answer.status != 201:
            outcomes[f"file {answer.status}"] += 1
            continue
        for entry in (await answer.json())["objects"]:
            outcomes[entry["status"]] += 1
            assert entry["status"] in {s.value for s in ImportStatus}, entry
            if entry["status"] in ("invalid", "uid-conflict", "double-booking"):
                assert entry["message"], (path.name, entry)
    stored = await asyncio.to_thread(sqlite_objects, db_path, "room")
    # Files of the corpus share UIDs ("123"): a later one updates the object.
    assert len(stored) == outcomes["stored"] > 20, outcomes
    for href, ics in stored:
        assert_readable(ics, href)
        got = await request(client, "GET", f"/dav/calendars/room/{href}")
        assert got.body == ics.encode("utf-8")


def sqlite_objects(db_path: Path, resource: str) -> list[tuple[str, str]]:
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute(
            "SELECT href, ics FROM objects WHERE resource_id = ? ORDER BY href", (resource,)
        )
        return [(str(href), str(ics)) for href, ics in rows]
