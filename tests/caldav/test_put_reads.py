"""What a CalDAV PUT reads of the object before its write transaction
(``BookingService.put_object``): only what must be worked out outside the
write lock. A single event needs nothing there, so its only read is the
transaction's own; a series, whose attendees may have been told of its
occurrences, is read before, so that its old text is parsed outside the lock.
A DELETE reads before its transaction only the text of an object with
attendees (``text_with_attendees``), to parse it outside the lock."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from gateway.web.keys import BOOKINGS, REPOSITORY
from tests.caldav.dav import event, put, request
from tests.conftest import AppClient

ANNA = "/dav/calendars/anna/"
SERIES = "RRULE:FREQ=WEEKLY;COUNT=4\r\nATTENDEE;CN=Bo:mailto:bo@example.com\r\n"


def _count_reads(client: AppClient, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The hrefs the repository reads outside a transaction, as they come."""
    repo = client.app[REPOSITORY]
    read: Callable[[str, str], Awaitable[Any]] = repo.get_by_href
    seen: list[str] = []

    async def counted(resource_id: str, href: str) -> Any:
        seen.append(href)
        return await read(resource_id, href)

    monkeypatch.setattr(repo, "get_by_href", counted)
    return seen


@pytest.mark.parametrize("new", [True, False], ids=["create", "replace"])
async def test_a_single_event_is_read_in_the_transaction_only(
    client: AppClient, monkeypatch: pytest.MonkeyPatch, new: bool
) -> None:
    if not new:
        assert (await put(client, ANNA + "a.ics", event("a"))).status == 201
    seen = _count_reads(client, monkeypatch)
    answer = await put(client, ANNA + "a.ics", event("a", summary="Moved"))
    assert answer.status == (201 if new else 204)
    assert seen == []
    got = await request(client, "GET", ANNA + "a.ics")
    assert got.body == event("a", summary="Moved").encode()


async def test_a_series_is_read_before_the_transaction(
    client: AppClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await put(client, ANNA + "s.ics", event("s", extra=SERIES))).status == 201
    seen = _count_reads(client, monkeypatch)
    changed = event("s", extra=SERIES, summary="Changed")
    assert (await put(client, ANNA + "s.ics", changed)).status == 204
    assert seen == ["s.ics"]


def _parse_threads(client: AppClient, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """For each parse of a calendar text, whether it ran on the event loop's
    thread (where a write transaction's statements run, under the lock)."""
    codec = client.app[BOOKINGS]._codec
    parse: Callable[..., Any] = codec.parse
    on_loop: list[bool] = []

    def counted(*args: Any, **kwargs: Any) -> Any:
        on_loop.append(threading.current_thread() is threading.main_thread())
        return parse(*args, **kwargs)

    monkeypatch.setattr(codec, "parse", counted)
    return on_loop


async def test_a_delete_reads_no_object_before_its_transaction(
    client: AppClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await put(client, ANNA + "a.ics", event("a"))).status == 201
    seen = _count_reads(client, monkeypatch)
    parsed = _parse_threads(client, monkeypatch)
    assert (await request(client, "DELETE", ANNA + "a.ics")).status == 204
    assert seen == []
    assert parsed == []  # nobody to tell: nothing parsed
    assert (await request(client, "GET", ANNA + "a.ics")).status == 404


async def test_a_delete_parses_attendees_outside_the_transaction(
    client: AppClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    invited = event("i", extra="ATTENDEE;CN=Bo:mailto:bo@example.com\r\n")
    assert (await put(client, ANNA + "i.ics", invited)).status == 201
    seen = _count_reads(client, monkeypatch)
    parsed = _parse_threads(client, monkeypatch)
    assert (await request(client, "DELETE", ANNA + "i.ics")).status == 204
    assert seen == []
    assert parsed == [False]  # once, on a worker thread: not under the write lock
    assert (await request(client, "GET", ANNA + "i.ics")).status == 404
