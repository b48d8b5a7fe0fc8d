"""Every real-world calendar of the corpus (``shared/corpus/ics``) PUT to the
gateway as a client would: it is stored and served back exactly as sent, or
refused with a 4xx naming the rule it breaks — never a server error.

One app and database serve the module (each new app pays one slow password
check); every test starts from the empty ``room`` calendar and deletes what
it stored, so double bookings between files never decide an outcome. A
second pass splits every file into one object per UID, as a client importing
it would, and PUTs the pieces into the empty calendar; the outcome counts
are written to the terminal.

Whatever is stored must read in icalendar and in vobject wherever the
gateway serves it (issue 13 item 3): GET, both feeds, calendar-query with
and without expand, calendar-multiget. The small hand-written fixtures of
``tests/fixtures/ical`` go through the same checks: ``accepted-*`` ones are
stored and read everywhere, ``refused-*`` ones are refused with
valid-calendar-data and a message naming the line and the property.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import icalendar
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.settings import load_settings
from tests.caldav.dav import NS, Answer, multiget_body, propfind_body, request
from tests.conftest import AppClient, settings_yaml
from tests.corpus import corpus_files
from tests.ical_readers import assert_readable

pytestmark = pytest.mark.asyncio(loop_scope="module")

ROOM = "/dav/calendars/room/"
ROOM_FEED_TOKEN = "room-feed-token-0123456789abcdef"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ical"
ICS = {"Content-Type": "text/calendar; charset=utf-8"}
# (read here, not in the async tests: no blocking file reads in the event loop)
FILES = [pytest.param(path.read_bytes(), id=path.name) for path in corpus_files()]
# What a refusal may name (RFC 4791 5.3.2.1 preconditions, and the gateway's own).
PRECONDITIONS = {
    "valid-calendar-data",
    "valid-calendar-object-resource",
    "supported-calendar-component",
    "supported-calendar-data",
    "no-uid-conflict",
    "max-resource-size",
    "min-date-time",
    "max-date-time",
    "max-instances",
    "no-double-booking",
}
ALL_EVENTS = (
    f'<C:calendar-query xmlns:D="DAV:" xmlns:C="{NS["C"]}"><D:prop><D:getetag/></D:prop>'
    '<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"/>'
    "</C:comp-filter></C:filter></C:calendar-query>"
)
# Every event of every corpus year, with calendar-data: as stored, and expanded.
_SPAN = 'start="19000101T000000Z" end="21000101T000000Z"'
ALL_DATA = (
    f'<C:calendar-query xmlns:D="DAV:" xmlns:C="{NS["C"]}"><D:prop><C:calendar-data/></D:prop>'
    '<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"/>'
    "</C:comp-filter></C:filter></C:calendar-query>"
)
ALL_EXPANDED = (
    f'<C:calendar-query xmlns:D="DAV:" xmlns:C="{NS["C"]}"><D:prop><C:calendar-data>'
    f"<C:expand {_SPAN}/></C:calendar-data></D:prop>"
    '<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
    f"<C:time-range {_SPAN}/></C:comp-filter></C:comp-filter></C:filter></C:calendar-query>"
)


@pytest.fixture
def whole(outcome_counts: dict[str, Counter[str]]) -> Counter[str]:
    return outcome_counts.setdefault("corpus over CalDAV, whole files", Counter())


@pytest.fixture
def pieces(outcome_counts: dict[str, Counter[str]]) -> Counter[str]:
    return outcome_counts.setdefault("corpus over CalDAV, pieces by UID", Counter())


# SQLite only: one server for the whole module (hundreds of files, each
# PUT, read back and deleted), so no per-test backend; what the corpus tries
# is the iCalendar handling, and the store's part of it (the text kept as
# sent, read back by every report) runs on both backends in test_objects,
# test_reports and test_feeds.
@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_client(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[AppClient]:
    folder = tmp_path_factory.mktemp("corpus")
    config = folder / "gateway.yaml"
    room = "    email: room1@example.com\n"
    yaml = settings_yaml(folder / "gateway.sqlite3").replace(
        room, f"{room}    feed_tokens: [{ROOM_FEED_TOKEN}]\n"
    )
    assert ROOM_FEED_TOKEN in yaml
    config.write_text(yaml, encoding="utf-8")
    client: AppClient = TestClient(TestServer(create_app(load_settings(config))))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


async def members(client: AppClient) -> list[str]:
    listing = await request(
        client, "PROPFIND", ROOM, propfind_body("D:getetag"), headers={"Depth": "1"}
    )
    assert listing.status == 207
    return [h for h in listing.hrefs() if h != ROOM]


@pytest_asyncio.fixture(loop_scope="module")
async def client(module_client: AppClient) -> AsyncIterator[AppClient]:
    """The module's client on an empty room calendar, emptied again after."""
    assert await members(module_client) == [], "a previous test left objects behind"
    try:
        yield module_client
    finally:
        for href in await members(module_client):
            deleted = await request(module_client, "DELETE", href)
            assert deleted.status == 204, (href, deleted.status)


async def assert_served_readable(client: AppClient, hrefs: list[str]) -> None:
    """Every answer that carries the stored objects ``hrefs`` reads in
    icalendar and in vobject (issue 13 item 3): GET, the full and the busy
    feed, calendar-query as stored and expanded, calendar-multiget."""
    for href in hrefs:
        got = await request(client, "GET", href)
        assert got.status == 200
        assert_readable(got.body, f"GET {href}")
    for view in ("full", "busy"):
        async with client.get(
            "/feeds/room.ics", params={"token": ROOM_FEED_TOKEN, "view": view}
        ) as feed:
            assert feed.status == 200, view
            assert_readable(await feed.read(), f"the {view} feed")
    answers = {
        "calendar-query": await request(client, "REPORT", ROOM, ALL_DATA, headers={"Depth": "1"}),
        "calendar-query with expand": await request(
            client, "REPORT", ROOM, ALL_EXPANDED, headers={"Depth": "1"}
        ),
        "calendar-multiget": await request(client, "REPORT", ROOM, multiget_body(*hrefs)),
    }
    for name, answer in answers.items():
        assert answer.status == 207, (name, answer.body[:500])
        for href, data in answer.calendar_data().items():
            assert_readable(data, f"{name}, {href}")
    assert sorted(answers["calendar-query"].calendar_data()) == sorted(hrefs)
    assert sorted(answers["calendar-multiget"].calendar_data()) == sorted(hrefs)


def refusal(answer: Answer) -> str:
    """The precondition a 4xx answer names; fails for anything else."""
    assert 400 <= answer.status < 500, (answer.status, answer.body[:500])
    conditions = [c for c in answer.error() if c != "message"]
    assert len(conditions) == 1, answer.body
    assert conditions[0] in PRECONDITIONS, answer.body
    assert answer.message(), answer.body  # a reason people can read
    return conditions[0]


@pytest.mark.parametrize("body", FILES)
async def test_corpus_file(client: AppClient, body: bytes, whole: Counter[str]) -> None:
    put = await request(client, "PUT", f"{ROOM}corpus.ics", body, headers=ICS)
    if put.status != 201:
        whole[f"{put.status} {refusal(put)}"] += 1
        gone = await request(client, "GET", f"{ROOM}corpus.ics")
        assert gone.status == 404  # nothing half-stored
        return
    whole["201 stored"] += 1
    got = await request(client, "GET", f"{ROOM}corpus.ics")
    assert got.status == 200
    assert got.body == body  # stored as sent (RFC 4791 5.3.4 lets the ETag be sent)
    assert got.headers["ETag"] == put.headers["ETag"]
    found = await request(client, "REPORT", ROOM, ALL_EVENTS, headers={"Depth": "1"})
    assert found.status == 207
    assert found.hrefs() == [f"{ROOM}corpus.ics"]
    assert found.props(f"{ROOM}corpus.ics")["D:getetag"].text == put.headers["ETag"]
    await assert_served_readable(client, [f"{ROOM}corpus.ics"])


def split_by_uid(data: bytes) -> list[bytes] | None:
    """One calendar per UID, with the file's calendar properties but METHOD
    (an importing client drops it: RFC 4791 4.1 keeps it out of stored
    objects) and all its VTIMEZONEs; None if icalendar cannot read the file."""
    try:
        calendar = icalendar.Calendar.from_ical(data)
    except Exception:
        return None
    timezones = [c for c in calendar.subcomponents if c.name == "VTIMEZONE"]
    by_uid: dict[str, list[icalendar.cal.Component]] = {}
    for component in calendar.subcomponents:
        if component.name != "VTIMEZONE" and "UID" in component:
            by_uid.setdefault(str(component["UID"]), []).append(component)
    pieces = []
    for components in by_uid.values():
        piece = icalendar.Calendar()
        for key, value in calendar.property_items(recursive=False):
            if key not in ("BEGIN", "END", "METHOD"):
                piece.add(key, value)
        for component in [*timezones, *components]:
            piece.add_component(component)
        pieces.append(piece.to_ical())
    return pieces


@pytest.mark.parametrize("body", FILES)
async def test_corpus_pieces_by_uid(client: AppClient, body: bytes, pieces: Counter[str]) -> None:
    split = split_by_uid(body)
    if split is None:
        pieces["file unreadable by icalendar"] += 1
        pytest.skip("icalendar cannot read it: nothing to split (the whole file is refused)")
    if not split:
        pieces["file without UIDs"] += 1
    stored = []
    for n, piece in enumerate(split):
        name = f"{ROOM}piece-{n}.ics"
        put = await request(client, "PUT", name, piece, headers=ICS)
        if put.status in (201, 204):
            pieces[f"{put.status} stored"] += 1
            got = await request(client, "GET", name)
            assert got.status == 200
            assert got.body == piece
            stored.append(name)
            continue
        condition = refusal(put)
        if put.status == 409:
            assert condition in ("no-double-booking", "no-uid-conflict"), put.body
        pieces[f"{put.status} {condition}"] += 1
        assert (await request(client, "GET", name)).status == 404
    if stored:
        await assert_served_readable(client, stored)


# -- hand-written fixtures -------------------------------------------------------------

ACCEPTED = [
    pytest.param(path.read_bytes(), id=path.name)
    for path in sorted(FIXTURES.glob("accepted-*.ics"))
]
# What the refusal of each refused-* fixture must name: its line, and the
# property or the text of the line (RFC 5545 3.1, 3.3, 3.4, 3.6).
REFUSED_NAMES = {
    "refused-content-after-end-vcalendar.ics": ("line 12 ", "END:VCALENDAR"),
    "refused-created-day-zero.ics": ("line 10:", "CREATED in VEVENT"),
    "refused-end-vcalendard.ics": ("line 11 ", "END:VCALENDARD"),
    "refused-exdate-dates-without-value-date.ics": ("line 11:", "EXDATE in VEVENT"),
    "refused-fold-without-space-with-colon.ics": ("line 11:", "second DESCRIPTION in VEVENT"),
    "refused-fold-without-space.ics": ("line 11 ", "'description continued'"),
    "refused-lone-cr.ics": ("line 10 ", "carriage return"),
    "refused-rdate-dates-without-value-date.ics": ("line 10:", "RDATE in VEVENT"),
    "refused-rdate-period-of-dates.ics": ("line 10:", "RDATE in VEVENT"),
    "refused-second-trigger-in-alarm.ics": ("line 14:", "second TRIGGER in VALARM"),
    "refused-space-in-property-name.ics": ("line 4 ", "'REFRESH - INTERVAL"),
    "refused-trigger-date-time-not-utc.ics": ("line 13:", "TRIGGER in VALARM"),
    "refused-trigger-date-time-without-time.ics": ("line 13:", "TRIGGER in VALARM"),
    "refused-trigger-empty-duration.ics": ("line 13:", "TRIGGER in VALARM"),
    "refused-vtimezone-dtstart-value-date.ics": ("line 14:", "DTSTART in STANDARD"),
}
REFUSED = [
    pytest.param(path.read_bytes(), REFUSED_NAMES.get(path.name), id=path.name)
    for path in sorted(FIXTURES.glob("refused-*.ics"))
]


async def test_every_fixture_is_named() -> None:
    assert ACCEPTED and len(REFUSED) == len(REFUSED_NAMES)
    assert all(names is not None for _, names in (p.values for p in REFUSED))


@pytest.mark.parametrize("body", ACCEPTED)
async def test_accepted_fixture_is_served_readable(client: AppClient, body: bytes) -> None:
    href = f"{ROOM}fixture.ics"
    put = await request(client, "PUT", href, body, headers=ICS)
    assert put.status == 201, put.body
    got = await request(client, "GET", href)
    assert got.body == body  # kept as sent, year 0000 and all
    await assert_served_readable(client, [href])


@pytest.mark.parametrize(("body", "names"), REFUSED)
async def test_refused_fixture_names_line_and_property(
    client: AppClient, body: bytes, names: tuple[str, str]
) -> None:
    put = await request(client, "PUT", f"{ROOM}fixture.ics", body, headers=ICS)
    assert put.status == 403, put.body
    assert refusal(put) == "valid-calendar-data"
    line, what = names
    assert put.message().startswith(line), put.message()
    assert what in put.message(), put.message()
    assert "RFC 5545" in put.message()
