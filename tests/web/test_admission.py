"""Admission of heavy requests (gateway.web.admission): what is heavy, the
gate's slots and queue, and what clients see through the app."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest

from caldav_backend.caldav.names import CALENDARS, DAV_ROOT
from gateway.web.admission import (
    ADMISSION,
    CALENDARS_SEGMENT,
    DAV_PREFIX,
    MAX_RETRY_AFTER,
    AdmissionGate,
    Refused,
    Weight,
    retry_after,
    weigh,
)
from gateway.web.keys import METRICS
from gateway.web.observability import Metrics
from tests.caldav.dav import ADMIN, event, propfind, put, request
from tests.conftest import API_TOKEN, AppClient, ClientWith
from tests.samples import SLOT

HEAVY = Weight.HEAVY
LIGHT = Weight.LIGHT
ANNA = "/dav/calendars/anna/"
FEED = "/feeds/anna.ics?token=anna-feed-token-0123456789abcdef"
API = {"Authorization": f"Bearer {API_TOKEN}"}
# Every wait in these tests is bounded by this.
BOUND = 10.0


# -- what is heavy -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "depth", "weight"),
    [
        # A calendar's members: every object of the calendar.
        ("PROPFIND", "/dav/calendars/anna/", "1", HEAVY),
        ("PROPFIND", "/dav/calendars/anna", "1", HEAVY),
        ("propfind", "/dav/calendars/anna/", " 1 ", HEAVY),
        ("PROPFIND", "/dav/calendars/anna/", "infinity", HEAVY),
        ("PROPFIND", "/dav/calendars/anna/", "Infinity", HEAVY),
        # The calendar itself, or a Depth the handler refuses with 400 at once.
        ("PROPFIND", "/dav/calendars/anna/", "0", LIGHT),
        ("PROPFIND", "/dav/calendars/anna/", None, LIGHT),
        ("PROPFIND", "/dav/calendars/anna/", "2", LIGHT),
        # Small collections and single objects.
        ("PROPFIND", "/dav/calendars/", "1", LIGHT),
        ("PROPFIND", "/dav/", "1", LIGHT),
        ("PROPFIND", "/dav/principals/admin/", "1", LIGHT),
        ("PROPFIND", "/dav/calendars/anna/b1.ics", "1", LIGHT),
        ("PROPFIND", "/", "1", LIGHT),  # redirected to /dav/
        # Every report may read a whole calendar.
        ("REPORT", "/dav/calendars/anna/", "1", HEAVY),
        ("REPORT", "/dav/calendars/anna/", None, HEAVY),
        ("report", "/dav/calendars/anna/", "0", HEAVY),
        ("REPORT", "/dav/calendars/", None, HEAVY),
        # A free-busy request to the schedule outbox (RFC 6638 5) names many.
        ("POST", "/dav/principals/admin/outbox/", None, HEAVY),
        # One object, capabilities, changes.
        ("GET", "/dav/calendars/anna/b1.ics", None, LIGHT),
        ("HEAD", "/dav/calendars/anna/b1.ics", None, LIGHT),
        ("PUT", "/dav/calendars/anna/b1.ics", None, LIGHT),
        ("DELETE", "/dav/calendars/anna/b1.ics", None, LIGHT),
        ("OPTIONS", "/dav/calendars/anna/", "1", LIGHT),
        ("PROPPATCH", "/dav/calendars/anna/", "1", LIGHT),
        # Outside the CalDAV tree: the feed's render is admitted by the feed
        # handler itself; the rest is light.
        ("GET", "/feeds/anna.ics", None, LIGHT),
        ("GET", "/healthz", None, LIGHT),
        ("GET", "/metrics", None, LIGHT),
        ("POST", "/api/v1/bookings", None, LIGHT),
        ("GET", "/api/v1/bookings", None, LIGHT),
        ("REPORT", "/api/v1/bookings", None, LIGHT),
        ("PROPFIND", "/davx/calendars/anna/", "1", LIGHT),
    ],
)
def test_what_is_heavy(method: str, path: str, depth: str | None, weight: Weight) -> None:
    assert weigh(method, path, depth) is weight


def test_the_gate_knows_where_the_caldav_tree_is() -> None:
    assert DAV_PREFIX == DAV_ROOT
    assert CALENDARS_SEGMENT == CALENDARS


@pytest.mark.parametrize(
    ("waiting", "running", "mean", "seconds"),
    [
        (0, 4, 1.0, 1),  # the next slot frees within the mean
        (63, 4, 1.0, 16),  # 64 requests ahead, shared by 4 slots
        (7, 1, 2.5, 20),
        (0, 1, 0.001, 1),  # never below one second
        (1000, 1, 10.0, MAX_RETRY_AFTER),  # never above a minute
        (3, 0, 1.0, 4),  # no slot known to be running: count one
    ],
)
def test_retry_after_estimates_the_wait(
    waiting: int, running: int, mean: float, seconds: int
) -> None:
    assert retry_after(waiting, running, mean) == seconds


# -- the gate ------------------------------------------------------------------------


class Holders:
    """Tasks that take a slot of ``gate`` and keep it until told to let go."""

    def __init__(self, gate: AdmissionGate) -> None:
        self.gate = gate
        self.admitted: list[str] = []
        self.release: dict[str, asyncio.Event] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, name: str) -> asyncio.Task[None]:
        self.release[name] = asyncio.Event()

        async def hold() -> None:
            async with self.gate.admit():
                self.admitted.append(name)
                await self.release[name].wait()

        self.tasks[name] = asyncio.create_task(hold())
        return self.tasks[name]

    async def settle(self) -> None:
        """Let every task run until it blocks."""
        for _ in range(5):
            await asyncio.sleep(0)


def counted(metrics: Metrics, outcome: str) -> float:
    value = metrics.registry.get_sample_value(
        "calgateway_heavy_requests_total", {"outcome": outcome}
    )
    return value or 0.0


async def test_slots_then_a_first_come_queue_then_refusal() -> None:
    metrics = Metrics()
    gate = AdmissionGate(2, 2, BOUND, metrics)
    holders = Holders(gate)
    for name in ("a", "b", "c", "d"):
        holders.start(name)
    await holders.settle()
    assert holders.admitted == ["a", "b"]
    assert (gate.running, gate.waiting) == (2, 2)
    with pytest.raises(Refused) as refused:
        async with gate.admit():
            pass
    assert refused.value.reason == "full" and refused.value.retry_after >= 1
    holders.release["b"].set()
    await holders.settle()
    assert holders.admitted == ["a", "b", "c"]  # the oldest waiter, not d
    holders.start("e")  # a newcomer queues behind d, it does not overtake
    await holders.settle()
    holders.release["a"].set()
    await holders.settle()
    assert holders.admitted == ["a", "b", "c", "d"]
    for event_ in holders.release.values():
        event_.set()
    await asyncio.wait_for(asyncio.gather(*holders.tasks.values()), BOUND)
    assert holders.admitted == ["a", "b", "c", "d", "e"]
    assert (gate.running, gate.waiting) == (0, 0)
    assert counted(metrics, "admitted") == 5
    assert counted(metrics, "queued") == 3
    assert counted(metrics, "refused") == 1
    assert metrics.registry.get_sample_value("calgateway_heavy_running") == 0


async def test_a_wait_is_bounded() -> None:
    metrics = Metrics()
    gate = AdmissionGate(1, 5, 0.05, metrics)
    holders = Holders(gate)
    holders.start("a")
    await holders.settle()
    with pytest.raises(Refused) as refused:
        async with gate.admit():
            pass
    assert refused.value.reason == "timeout"
    assert (gate.running, gate.waiting) == (1, 0)
    holders.release["a"].set()
    await asyncio.wait_for(holders.tasks["a"], BOUND)
    assert gate.running == 0


async def test_a_waiter_cancelled_as_it_is_handed_a_slot_passes_it_on() -> None:
    gate = AdmissionGate(1, 5, BOUND, Metrics())
    holders = Holders(gate)
    for name in ("a", "b", "c"):
        holders.start(name)
    await holders.settle()
    holders.release["a"].set()
    await holders.settle()
    assert holders.admitted == ["a", "b"]
    # c is cancelled while it waits: it leaves the queue, and d, queued
    # after it, gets b's slot.
    holders.start("d")
    await holders.settle()
    holders.tasks["c"].cancel()
    holders.release["b"].set()
    await holders.settle()
    assert holders.admitted == ["a", "b", "d"]
    # The race: the slot is handed to e in the same step in which e is
    # cancelled; e never runs, and the slot goes on to f.
    holders.start("e")
    holders.start("f")
    await holders.settle()
    holders.release["d"].set()
    await asyncio.sleep(0)  # d's task releases: e's waiter now has its result
    holders.tasks["e"].cancel()
    await holders.settle()
    assert holders.admitted == ["a", "b", "d", "f"]
    holders.release["f"].set()
    await asyncio.wait_for(holders.tasks["f"], BOUND)
    assert (gate.running, gate.waiting) == (0, 0)


# -- through the app -------------------------------------------------------------------


# One heavy slot and a queue of one.
ONE_SLOT_ONE_WAITER = "  heavy_requests: 1\n  heavy_queue: 1\n"


@pytest.fixture
async def busy_client(client_with: ClientWith) -> AppClient:
    """The app with one heavy slot, no queue and a short wait."""
    return await client_with("  heavy_requests: 1\n  heavy_queue: 0\n  heavy_queue_timeout: 0.2\n")


async def until(condition: Callable[[], bool]) -> None:
    """Until ``condition()`` holds (the gate and the metrics have no event to
    wait on), for at most ``BOUND`` seconds."""

    async def look() -> None:
        while not condition():  # noqa: ASYNC110 - bounded below
            await asyncio.sleep(0.01)

    await asyncio.wait_for(look(), BOUND)


async def hold_the_only_slot(client: AppClient, stack: AsyncExitStack) -> None:
    await stack.enter_async_context(client.app[ADMISSION].admit())


def assert_busy(status: int, headers: Any) -> None:
    assert status == 503
    value = headers.get("Retry-After")
    assert value is not None and value.isdigit() and int(value) >= 1


async def test_heavy_dav_requests_beyond_the_slots_get_503_and_light_ones_pass(
    busy_client: AppClient,
) -> None:
    client = busy_client
    assert (await put(client, f"{ANNA}b1.ics", event("b1"))).status == 201
    async with AsyncExitStack() as stack:
        await hold_the_only_slot(client, stack)
        listing = await propfind(client, ANNA, "D:getetag", depth="1")
        assert_busy(listing.status, listing.headers)
        assert b"busy" in listing.body
        query = await request(
            client,
            "REPORT",
            ANNA,
            '<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
            '<C:filter><C:comp-filter name="VCALENDAR"/></C:filter></C:calendar-query>',
            headers={"Depth": "1"},
        )
        assert_busy(query.status, query.headers)
        # Light requests do not wait for the slot.
        assert (await propfind(client, ANNA, "D:getetag", depth="0")).status == 207
        assert (await request(client, "GET", f"{ANNA}b1.ics")).status == 200
        assert (
            await put(client, f"{ANNA}b2.ics", event("b2", "20261202T090000Z", "20261202T100000Z"))
        ).status == 201
        assert (await request(client, "OPTIONS", ANNA)).status == 200
        assert (await client.get("/healthz")).status == 200
        assert (await client.post("/api/v1/bookings", json=SLOT, headers=API)).status == 201
    # The slot is free again.
    listing = await propfind(client, ANNA, "D:getetag", depth="1")
    assert listing.status == 207 and len(listing.hrefs()) == 4  # calendar + b1, b2, SLOT


async def test_clients_without_credentials_never_reach_the_gate(busy_client: AppClient) -> None:
    async with AsyncExitStack() as stack:
        await hold_the_only_slot(busy_client, stack)
        stranger = await propfind(busy_client, ANNA, "D:getetag", depth="1", auth={})
        assert stranger.status == 401


async def test_a_queued_request_runs_when_a_slot_frees(client_with: ClientWith) -> None:
    client = await client_with(ONE_SLOT_ONE_WAITER)
    gate = client.app[ADMISSION]
    async with AsyncExitStack() as stack:
        await hold_the_only_slot(client, stack)
        waiting = asyncio.create_task(propfind(client, ANNA, "D:getetag", depth="1"))
        await until(lambda: gate.waiting >= 1)
        refused = await propfind(client, ANNA, "D:getetag", depth="1")
        assert_busy(refused.status, refused.headers)
    answer = await asyncio.wait_for(waiting, BOUND)
    assert answer.status == 207


async def test_a_feed_render_waits_for_a_slot_but_a_cached_feed_does_not(
    busy_client: AppClient,
) -> None:
    client = busy_client
    first = await client.get(FEED)
    assert first.status == 200
    etag = first.headers["ETag"]
    async with AsyncExitStack() as stack:
        await hold_the_only_slot(client, stack)
        assert (await client.get(FEED)).status == 200  # from the cache
        assert (await client.get(FEED, headers={"If-None-Match": etag})).status == 304
        assert (await client.post("/api/v1/bookings", json=SLOT, headers=API)).status == 201
        changed = await client.get(FEED)  # needs a render
        assert_busy(changed.status, changed.headers)
        assert (await client.get("/feeds/anna.ics?token=wrong")).status == 404
    rendered = await client.get(FEED)
    assert rendered.status == 200 and "Haircut" in await rendered.text()


async def test_admission_is_counted_in_metrics(client_with: ClientWith) -> None:
    client = await client_with("  heavy_requests: 1\n  heavy_queue: 0\n  metrics: public\n")
    assert (await propfind(client, ANNA, "D:getetag", depth="1")).status == 207
    async with AsyncExitStack() as stack:
        await hold_the_only_slot(client, stack)
        assert (await propfind(client, ANNA, "D:getetag", depth="1")).status == 503
    text = await (await client.get("/metrics")).text()
    assert 'calgateway_heavy_requests_total{outcome="admitted"} 2.0' in text  # with the hold
    assert 'calgateway_heavy_requests_total{outcome="refused"} 1.0' in text
    assert "calgateway_heavy_running 0.0" in text
    assert "calgateway_heavy_waiting 0.0" in text


async def test_a_request_whose_client_left_while_queued_is_not_worked_on(
    client_with: ClientWith,
) -> None:
    client = await client_with(ONE_SLOT_ONE_WAITER)
    gate = client.app[ADMISSION]
    metrics = client.app[METRICS]
    assert client.port is not None
    async with AsyncExitStack() as stack:
        await hold_the_only_slot(client, stack)
        _reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
        writer.write(
            f"PROPFIND {ANNA} HTTP/1.1\r\nHost: x\r\nDepth: 1\r\n"
            f"Authorization: {ADMIN['Authorization']}\r\nContent-Length: 0\r\n\r\n".encode()
        )
        await writer.drain()
        await until(lambda: gate.waiting >= 1)
        writer.close()
        await writer.wait_closed()

    # The slot is handed to the queued request, which finds its client gone.
    await until(lambda: counted(metrics, "abandoned") >= 1)
    assert (gate.running, gate.waiting) == (0, 0)
