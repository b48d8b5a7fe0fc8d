"""Every real-world calendar of the corpus (``shared/corpus/ics``) PUT to the
gateway as a client would: it is stored and served back exactly as sent, or
refused with a 4xx naming the rule it breaks — never a server error.

One app and database serve the module (each new app pays one slow password
check); every test starts from the empty ``room`` calendar and deletes what
it stored, so double bookings between files never decide an outcome. A
second pass splits every file into one object per UID, as a client importing
it would, and PUTs the pieces into the empty calendar; the outcome counts
are written to the terminal.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

import icalendar
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.settings import load_settings
from tests.caldav.dav import NS, Answer, propfind_body, request
from tests.conftest import AppClient, settings_yaml
from tests.corpus import corpus_files

pytestmark = pytest.mark.asyncio(loop_scope="module")

ROOM = "/dav/calendars/room/"
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


@pytest.fixture
def whole(outcome_counts: dict[str, Counter[str]]) -> Counter[str]:
    return outcome_counts.setdefault("corpus over CalDAV, whole files", Counter())


@pytest.fixture
def pieces(outcome_counts: dict[str, Counter[str]]) -> Counter[str]:
    return outcome_counts.setdefault("corpus over CalDAV, pieces by UID", Counter())


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_client(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[AppClient]:
    folder = tmp_path_factory.mktemp("corpus")
    config = folder / "gateway.yaml"
    config.write_text(settings_yaml(folder / "gateway.sqlite3"), encoding="utf-8")
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
    for n, piece in enumerate(split):
        name = f"{ROOM}piece-{n}.ics"
        put = await request(client, "PUT", name, piece, headers=ICS)
        if put.status in (201, 204):
            pieces[f"{put.status} stored"] += 1
            got = await request(client, "GET", name)
            assert got.status == 200
            assert got.body == piece
            continue
        condition = refusal(put)
        if put.status == 409:
            assert condition in ("no-double-booking", "no-uid-conflict"), put.body
        pieces[f"{put.status} {condition}"] += 1
        assert (await request(client, "GET", name)).status == 404
