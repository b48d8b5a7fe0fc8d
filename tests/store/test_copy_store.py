"""``calgateway copy-store``: a whole installation moved SQLite ->
PostgreSQL -> SQLite, judged by what users see: a real ``calgateway serve``
on each store answers the same ETags, the same sync-collection delta for a
sync token taken before the move, the same ICS feeds, and goes on taking
bookings (idempotency keys remembered). Beside that: a non-empty target is
refused, a failure half-way leaves the target empty, and the one table list
covers both backends' schemas."""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import aiosqlite
import psycopg
import pytest
from lxml import etree

from gateway.core.mirror import (
    Channel,
    Connection,
    ConnectionStatus,
    EventLink,
    Invite,
    LinkKind,
    LogKind,
    SyncLogEntry,
)
from gateway.core.ports import IdempotencyRecord
from gateway.store import open_sqlite_repository
from gateway.store.copy import CopyFailed, StoreAddress, copy_store
from gateway.store.copy_postgres import open_postgres_rows
from gateway.store.copy_sqlite import SqliteRows, open_sqlite_rows
from gateway.store.copy_tables import NOT_COPIED, TABLES
from gateway.store.postgres import open_postgres_repository
from gateway.store.schema import bundled_migrations, migrate
from google_bridge.tokens import TokenVault, new_key
from tests.caldav.dav import ADMIN, NS, event
from tests.conftest import API_TOKEN, settings_yaml
from tests.net import free_port
from tests.pgserver import postgres_server, postgres_url  # noqa: F401 - fixtures
from tests.serving import COMMAND, REPO, serving
from tests.store.contract import delete, effect, make_object, rich_object, save

API = {"Authorization": f"Bearer {API_TOKEN}"}
CALENDARS = ("anna", "room", "bob")
FEEDS = {"anna": "anna-feed-token-0123456789abcdef", "bob": "bob-feed-token-0123456789abcdef"}
SERIES = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//copy//EN\r\n"
    "BEGIN:VEVENT\r\nUID:series-1\r\nDTSTAMP:20261101T000000Z\r\n"
    "DTSTART:20261207T140000Z\r\nDTEND:20261207T150000Z\r\nRRULE:FREQ=WEEKLY;COUNT=6\r\n"
    "SUMMARY:Team meeting\r\nX-CLIENT-THING:kept as sent\r\n"
    "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT15M\r\nDESCRIPTION:soon\r\nEND:VALARM\r\n"
    "END:VEVENT\r\n"
    "BEGIN:VEVENT\r\nUID:series-1\r\nDTSTAMP:20261101T000000Z\r\n"
    "RECURRENCE-ID:20261214T140000Z\r\nDTSTART:20261214T160000Z\r\nDTEND:20261214T170000Z\r\n"
    "SUMMARY:Team meeting (moved)\r\nEND:VEVENT\r\n"
    "END:VCALENDAR\r\n"
)


def calgateway(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env=dict(os.environ),
        check=False,
    )


def config_for(tmp_path: Path, name: str, url: str) -> Path:
    """The shared test settings (mail to a closed port, so invitations
    wait in the outbox) with ``storage.url`` set to ``url``."""
    text = settings_yaml(tmp_path / "unused.sqlite3")
    start = text.index("storage:\n")
    end = text.index("\n", text.index("  url:", start)) + 1
    config = tmp_path / f"{name}.yaml"
    config.write_text(text[:start] + f"storage:\n  url: {url}\n" + text[end:])
    return config


@dataclass
class Http:
    session: aiohttp.ClientSession
    base: str

    async def call(
        self, method: str, path: str, body: str | None = None, **headers: str
    ) -> tuple[int, dict[str, str], bytes]:
        async with self.session.request(
            method, self.base + path, data=body, headers=headers
        ) as answer:
            return (
                answer.status,
                {k.lower(): v for k, v in answer.headers.items()},
                await answer.read(),
            )


@contextlib.asynccontextmanager
async def served(config: Path) -> AsyncIterator[Http]:
    """A real ``calgateway serve`` on ``config``, and a client for it."""
    async with serving(config) as server, aiohttp.ClientSession() as session:
        yield Http(session, server.url.rstrip("/"))


def booking(resource: str, day: int, hour: int, title: str) -> dict[str, Any]:
    start = datetime(2026, 12, day, hour, tzinfo=UTC)
    return {
        "resource": resource,
        "start": start.isoformat(),
        "end": (start + timedelta(hours=1)).isoformat(),
        "title": title,
        "booker": {"name": "Zoë Müller", "email": "zoe@example.com"},
    }


async def book(http: Http, body: dict[str, Any], key: str = "") -> tuple[int, dict[str, Any]]:
    headers = {**API, "Idempotency-Key": key} if key else API
    async with http.session.post(
        f"{http.base}/api/v1/bookings", json=body, headers=headers
    ) as answer:
        return answer.status, await answer.json()


SYNC_TOKEN_PROP = (
    '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:sync-token/></D:prop></D:propfind>'
)
LISTING_PROPS = (
    '<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:CS="http://calendarserver.org/ns/"'
    ' xmlns:I="http://apple.com/ns/ical/"><D:prop><D:getetag/><CS:getctag/><D:sync-token/>'
    "<D:displayname/><I:calendar-color/></D:prop></D:propfind>"
)


def sync_report(token: str) -> str:
    return (
        '<?xml version="1.0"?><D:sync-collection xmlns:D="DAV:">'
        f"<D:sync-token>{token}</D:sync-token><D:sync-level>1</D:sync-level>"
        "<D:prop><D:getetag/></D:prop></D:sync-collection>"
    )


def multistatus(body: bytes) -> list[tuple[str, ...]]:
    """Each response as (href, status or prop=value...), in answer order,
    plus the sync-token a sync-collection answer ends with."""
    root = etree.fromstring(body)
    out: list[tuple[str, ...]] = []
    for response in root.findall("D:response", NS):
        cells = [response.findtext("D:href", namespaces=NS) or ""]
        if (status := response.findtext("D:status", namespaces=NS)) is not None:
            cells.append(status)
        for propstat in response.findall("D:propstat", NS):
            if " 200 " in (propstat.findtext("D:status", namespaces=NS) or ""):
                cells += sorted(
                    f"{etree.QName(p).localname}={p.text}" for p in propstat.find("D:prop", NS)
                )
        out.append(tuple(cells))
    if (token := root.findtext("D:sync-token", namespaces=NS)) is not None:
        out.append(("sync-token", token))
    return out


async def sync_tokens(http: Http) -> dict[str, str]:
    tokens = {}
    for calendar in CALENDARS:
        status, _, body = await http.call(
            "PROPFIND", f"/dav/calendars/{calendar}/", SYNC_TOKEN_PROP, Depth="0", **ADMIN
        )
        assert status == 207, body
        tokens[calendar] = multistatus(body)[0][1].removeprefix("sync-token=")
    return tokens


async def fill(http: Http) -> tuple[dict[str, str], dict[str, Any]]:
    """Bookings through the API and CalDAV, then a sync token of every
    calendar, then changes after it (a reschedule, a cancellation, a CalDAV
    deletion, a new object, calendar properties). Returns the tokens and the
    booking made with an Idempotency-Key."""
    status, first = await book(http, booking("anna", 1, 9, "Haircut"), key="order-1001")
    assert status == 201, first
    status, second = await book(http, booking("anna", 2, 9, "Colour"))
    assert status == 201, second
    status, third = await book(http, booking("bob", 3, 15, "Consultation"))
    assert status == 201, third
    assert (await book(http, booking("room", 4, 8, "Workshop")))[0] == 201
    put = "PUT"
    ics = {"Content-Type": "text/calendar"}
    assert (await http.call(put, "/dav/calendars/anna/series.ics", SERIES, **ics, **ADMIN))[
        0
    ] == 201
    other = event("room-uid-2", "20261210T090000Z", "20261210T100000Z")
    assert (await http.call(put, "/dav/calendars/room/not-the-uid.ics", other, **ics, **ADMIN))[
        0
    ] == 201
    tokens = await sync_tokens(http)

    async with http.session.patch(
        f"{http.base}/api/v1/bookings/{second['id']}",
        json={"start": "2026-12-02T11:00:00+00:00", "end": "2026-12-02T12:00:00+00:00"},
        headers=API,
    ) as moved:
        assert moved.status == 200, await moved.text()
    async with http.session.delete(
        f"{http.base}/api/v1/bookings/{third['id']}", headers=API
    ) as cancelled:
        assert cancelled.status in (200, 204), await cancelled.text()
    assert (await http.call("DELETE", "/dav/calendars/room/not-the-uid.ics", **ADMIN))[0] == 204
    late = event("late-1", "20261220T090000Z", "20261220T100000Z")
    assert (await http.call(put, "/dav/calendars/anna/late.ics", late, **ics, **ADMIN))[0] == 201
    patch = (
        '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" '
        'xmlns:I="http://apple.com/ns/ical/"><D:set><D:prop><D:displayname>Anna (salon)'
        "</D:displayname><I:calendar-color>#FF8800FF</I:calendar-color></D:prop></D:set>"
        "</D:propertyupdate>"
    )
    assert (await http.call("PROPPATCH", "/dav/calendars/anna/", patch, **ADMIN))[0] == 207
    return tokens, first


async def observe(http: Http, tokens: dict[str, str]) -> dict[str, Any]:
    """What clients see: every calendar's listing (ETags, ctag, sync token,
    properties), the delta since ``tokens``, and the feeds with their ETags."""
    seen: dict[str, Any] = {}
    for calendar in CALENDARS:
        path = f"/dav/calendars/{calendar}/"
        status, _, body = await http.call("PROPFIND", path, LISTING_PROPS, Depth="1", **ADMIN)
        assert status == 207, body
        seen[f"{calendar} listing"] = sorted(multistatus(body))
        status, _, body = await http.call("REPORT", path, sync_report(tokens[calendar]), **ADMIN)
        assert status == 207, body
        seen[f"{calendar} delta"] = sorted(multistatus(body))
    for calendar, token in FEEDS.items():
        for view in ("", "&view=busy"):
            status, headers, body = await http.call(
                "GET", f"/feeds/{calendar}.ics?token={token}{view}"
            )
            assert status == 200, body
            seen[f"{calendar} feed{view}"] = (headers["etag"], body.decode())
    return seen


GOOGLE_AT = datetime(2026, 11, 20, 8, 30, tzinfo=UTC)


async def add_mirror_and_outbox_state(path: Path, booking_id: str) -> None:
    """What the fill cannot make without Google: a connection (its refresh
    token sealed as the bridge seals it), links, an invite, sync log
    entries; and outbox items failed for good and leased to a worker."""
    repo = await open_sqlite_repository(path)
    try:
        sealed = TokenVault([new_key()]).seal("1//refresh-token-of-anna")
        async with repo.transaction() as tx:
            await tx.save_connection(
                Connection(
                    "anna",
                    ConnectionStatus.SYNCED,
                    account="anna@gmail.test",
                    calendar_id="anna@gmail.test",
                    calendar_name="Anna",
                    refresh_token=sealed,
                    sync_token="CPDAlvWDx9sCEPDAlvWDx9sCGAU=",
                    imported=2,
                    channel=Channel("channel-1", "channel-secret", "res-1", GOOGLE_AT),
                    connected_at=GOOGLE_AT,
                    last_sync_at=GOOGLE_AT,
                )
            )
            await tx.save_link(
                EventLink("anna", "ev1", LinkKind.PUSHED, booking_id=booking_id, etag='"3"')
            )
            await tx.save_link(EventLink("anna", "busy1", LinkKind.IMPORTED, etag='"7"'))
            await tx.save_invite(
                Invite("invite-hash", "bob", GOOGLE_AT, GOOGLE_AT + timedelta(days=3))
            )
            for kind, message in ((LogKind.MIRRORED, "pushed"), (LogKind.IMPORTED, "busy")):
                await tx.log(SyncLogEntry("anna", kind, message, GOOGLE_AT, booking_id=booking_id))
        later = datetime.now(UTC) + timedelta(days=2)  # past any retry the server set
        due = await repo.claim_outbox(later, 100)
        assert len(due) >= 3, due
        await repo.fail_outbox(due[0].id, "550 5.1.1 mailbox unavailable")
        leased = await repo.claim_outbox(later, 1, lease=timedelta(minutes=10))
        assert leased
    finally:
        await repo.close()


async def stored_state(repo: Any) -> dict[str, Any]:
    """The store's state as the ports give it (what the workers, the admin
    commands and the Google bridge read)."""
    return {
        "connections": await repo.connections(),
        "links": await repo.links("anna"),
        "invite": await repo.get_invite("invite-hash"),
        "log": await repo.sync_log("anna"),
        "failed": await repo.failed_outbox(50),
        "outbox": await repo.outbox_counts(),
        "properties": await repo.collection_properties("anna"),
        "changes": {c: await repo.changes_since(c, 0) for c in CALENDARS},
        "revisions": {c: await repo.revision(c) for c in CALENDARS},
        "sizes": {c: await entry_sizes(repo, c) for c in CALENDARS},
    }


async def entry_sizes(repo: Any, resource_id: str) -> dict[str, tuple[int, int]]:
    """Each object's listed size (getcontentlength) beside the UTF-8 size
    of its text (what GET answers), by name: equal on every store."""
    sizes = {}
    for entry in await repo.list_entries(resource_id):
        obj = await repo.get_by_href(resource_id, entry.href)
        sizes[entry.href] = (entry.size, len(obj.ics.encode("utf-8")))
    return sizes


def checksum(report: str) -> str:
    found = re.search(r"checksum ([0-9a-f]{64})", report)
    assert found, report
    return found[1]


def sqlite_leases(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return int(
            conn.execute("SELECT count(*) FROM outbox WHERE leased_until IS NOT NULL").fetchone()[0]
        )


async def test_a_store_moved_to_postgresql_and_back_serves_the_same_calendars(
    tmp_path: Path,
    postgres_url: str,  # noqa: F811
) -> None:
    source = tmp_path / "source.sqlite3"
    source_config = config_for(tmp_path, "source", f"sqlite:///{source}")
    async with served(source_config) as http:
        tokens, first = await fill(http)
    await add_mirror_and_outbox_state(source, first["id"])
    assert sqlite_leases(source) == 1

    moved = calgateway("copy-store", "--from", f"sqlite:///{source}", "--to", postgres_url)
    assert moved.returncode == 0, moved.stderr
    assert "verified" in moved.stdout and "1 outbox lease(s) cleared" in moved.stdout
    back = tmp_path / "back.sqlite3"
    returned = calgateway("copy-store", "--from", postgres_url, "--to", f"sqlite:///{back}")
    assert returned.returncode == 0, returned.stderr

    # The state workers and admin commands read, the same on all three
    # (Google tokens still sealed with the same key, failed items, counts).
    sqlite_repo = await open_sqlite_repository(source)
    pg_repo = await open_postgres_repository(postgres_url)
    back_repo = await open_sqlite_repository(back)
    try:
        expected = await stored_state(sqlite_repo)
        assert expected["failed"] and expected["connections"][0].refresh_token
        sizes = [size for by_name in expected["sizes"].values() for size in by_name.values()]
        assert sizes and all(listed == text for listed, text in sizes)
        assert await stored_state(pg_repo) == expected
        assert await stored_state(back_repo) == expected
    finally:
        for repo in (sqlite_repo, pg_repo, back_repo):
            await repo.close()
    # The lease of the old installation's worker is gone on the copies.
    assert sqlite_leases(back) == 0
    with psycopg.connect(postgres_url) as conn:
        leased = (
            "SELECT count(*) FROM outbox WHERE leased_until IS NOT NULL OR leased_by IS NOT NULL"
        )
        assert conn.execute(leased).fetchone() == (0,)
    # Both copies checked the same values (the second starts without leases).
    assert checksum(moved.stdout) == checksum(returned.stdout)

    async with served(source_config) as http:
        before = await observe(http, tokens)
    pg_config = config_for(tmp_path, "pg", postgres_url)
    async with served(pg_config) as http:
        assert await observe(http, tokens) == before
        # The idempotency key of a booking made before the move still holds,
        # and new bookings get ids the old store never handed out.
        retried = await book(http, booking("anna", 1, 9, "Haircut"), key="order-1001")
        assert retried == (201, first)
        status, made = await book(http, booking("anna", 5, 9, "After the move"))
        assert status == 201, made
    async with served(config_for(tmp_path, "back", f"sqlite:///{back}")) as http:
        assert await observe(http, tokens) == before


# -- refusals and failures ------------------------------------------------------


async def small_store(path: Path) -> None:
    """A source with objects (one deleted), outbox items and an idempotency key."""
    repo = await open_sqlite_repository(path)
    try:
        await save(repo, rich_object(), make_object("u2"), make_object("u3", resource_id="room"))
        await delete(repo, "u2")
        async with repo.transaction() as tx:
            await tx.enqueue(effect(1))
            await tx.enqueue(effect(2))
            await tx.remember_idempotency("key-1", IdempotencyRecord("fp", "id-room-u3"))
    finally:
        await repo.close()


def pg_counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {
            t.name: conn.execute(f'SELECT count(*) FROM "{t.name}"').fetchone()[0]  # type: ignore[index]
            for t in TABLES
        }


def sqlite_counts(path: Path) -> dict[str, int]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return {
            t.name: conn.execute(f'SELECT count(*) FROM "{t.name}"').fetchone()[0] for t in TABLES
        }


async def test_a_target_holding_data_is_refused_and_left_alone(
    tmp_path: Path,
    postgres_url: str,  # noqa: F811
) -> None:
    source = tmp_path / "source.sqlite3"
    await small_store(source)
    assert (
        calgateway("copy-store", "--from", f"sqlite:///{source}", "--to", postgres_url).returncode
        == 0
    )
    filled = pg_counts(postgres_url)
    assert filled["objects"] == 2 and filled["outbox"] == 2

    again = calgateway("copy-store", "--from", f"sqlite:///{source}", "--to", postgres_url)
    assert again.returncode == 2
    target = "postgresql://" + postgres_url.split("@", 1)[1]
    assert f"the target {target} is not empty (collections: 2, objects: 2" in again.stderr
    assert pg_counts(postgres_url) == filled

    # The other way round: the SQLite file holds data too.
    back = calgateway("copy-store", "--from", postgres_url, "--to", f"sqlite:///{source}")
    assert back.returncode == 2
    assert f"the target {source} is not empty" in back.stderr


async def test_a_failure_half_way_leaves_the_target_empty(
    tmp_path: Path,
    postgres_url: str,  # noqa: F811
) -> None:
    source = tmp_path / "source.sqlite3"
    await small_store(source)
    # SQLite keeps a NUL in text; PostgreSQL refuses it. The sync log is the
    # last table copied, so everything else is written by then.
    with contextlib.closing(sqlite3.connect(source)) as conn, conn:
        conn.execute(
            "INSERT INTO sync_log (resource_id, at, kind, message) VALUES (?, ?, ?, ?)",
            ("anna", "2026-11-20T08:30:00.000000+00:00", "info", "bad \x00 byte"),
        )
    failed = calgateway("copy-store", "--from", f"sqlite:///{source}", "--to", postgres_url)
    assert failed.returncode == 1, failed.stdout
    assert "copying table sync_log failed, nothing was written" in failed.stderr
    assert set(pg_counts(postgres_url).values()) == {0}

    # Mended, the same target takes the copy: it was left empty, not broken.
    with contextlib.closing(sqlite3.connect(source)) as conn, conn:
        conn.execute("DELETE FROM sync_log")
    done = calgateway("copy-store", "--from", f"sqlite:///{source}", "--to", postgres_url)
    assert done.returncode == 0, done.stderr
    assert pg_counts(postgres_url) == sqlite_counts(source)


async def test_rows_lost_on_the_way_roll_the_copy_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, target = tmp_path / "source.sqlite3", tmp_path / "target.sqlite3"
    await small_store(source)
    insert = SqliteRows.insert

    async def lossy(self: SqliteRows, table: str, columns: Any, rows: Any) -> None:
        await insert(self, table, columns, rows[:-1] if table == "changes" else rows)

    monkeypatch.setattr(SqliteRows, "insert", lossy)
    with pytest.raises(CopyFailed, match="verification failed for table changes: 4 rows written"):
        await copy_store(
            StoreAddress("sqlite", str(source), "source"),
            StoreAddress("sqlite", str(target), "target"),
        )
    assert set(sqlite_counts(target).values()) == {0}


async def test_refusals_name_the_problem_and_write_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "missing.sqlite3"
    target = tmp_path / "target.sqlite3"
    gone = calgateway("copy-store", "--from", f"sqlite:///{missing}", "--to", f"sqlite:///{target}")
    assert gone.returncode == 2 and f"the source {missing} does not exist" in gone.stderr
    assert not missing.exists() and not target.exists()

    old = tmp_path / "old.sqlite3"
    conn = await aiosqlite.connect(old, isolation_level=None)
    try:
        await migrate(conn, bundled_migrations()[:5])
    finally:
        await conn.close()
    older = calgateway("copy-store", "--from", f"sqlite:///{old}", "--to", f"sqlite:///{target}")
    assert older.returncode == 2
    assert "is at schema version 5, this calgateway copies version" in older.stderr
    assert "calgateway migrate" in older.stderr

    same = calgateway("copy-store", "--from", f"sqlite:///{old}", "--to", f"sqlite:///{old}")
    assert same.returncode == 2 and "name the same store" in same.stderr

    inline = calgateway(
        "copy-store", "--from", f"sqlite:///{old}", "--to", "postgresql://gw:s3cret@db.test/gw"
    )
    assert inline.returncode == 2
    assert "--to: must not hold the password" in inline.stderr and "s3cret" not in inline.stderr

    unset = calgateway(
        "copy-store",
        "--from",
        f"sqlite:///{old}",
        "--to",
        "postgresql://gw@db.test/gw",
        "--to-password-env",
        "CALGATEWAY_TEST_UNSET_SECRET",
    )
    assert unset.returncode == 2 and "CALGATEWAY_TEST_UNSET_SECRET" in unset.stderr

    # Nobody listens there: the command says so, without a traceback.
    fresh = tmp_path / "fresh.sqlite3"
    await (await open_sqlite_repository(fresh)).close()
    closed = f"postgresql://gw@127.0.0.1:{free_port()}/gw"
    nobody = calgateway("copy-store", "--from", f"sqlite:///{fresh}", "--to", closed)
    assert nobody.returncode == 1
    assert "connection" in nobody.stderr and "nothing was written to postgresql://" in nobody.stderr
    assert "Traceback" not in nobody.stderr


async def test_the_table_list_is_every_table_of_both_schemas(
    tmp_path: Path,
    postgres_url: str,  # noqa: F811
) -> None:
    """A migration that adds a table or a column fails here until copy-store
    knows it (and a table one backend lacks is a broken .pg.sql twin)."""
    copied = {t.name for t in TABLES}
    async with (
        open_sqlite_rows(tmp_path / "new.sqlite3", "sqlite", write=True, page_rows=10) as lite,
        open_postgres_rows(postgres_url, None, "pg", write=True, page_rows=10) as pg,
    ):
        assert await lite.table_names() - set(NOT_COPIED) == copied
        assert await pg.table_names() - set(NOT_COPIED) == copied
        for table in TABLES:
            assert set(await lite.columns(table.name)) == set(await pg.columns(table.name))
            assert set(table.key) | set(table.cleared) <= set(await pg.columns(table.name))
