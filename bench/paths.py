"""CalDAV and feed request paths against the floor, in one process.

    .venv/bin/python -m bench.paths                      # 10,000 events, every kind
    .venv/bin/python -m bench.paths --kinds get get304 propfind1
    .venv/bin/python -m bench.paths --profile propfind1  # + a cProfile of the server side

The real app (``create_app`` over a temporary YAML and SQLite file) serves on
a loopback port from a thread of its own (its own event loop), with N events
of ``bench.caldav_vs_radicale`` loaded through ``BookingService.import_calendar``
(the SQLite file of a load is kept under the system's temporary directory and
copied for the next run with the same N; ``--fresh`` loads again). Beside it,
in the same thread and loop, a bare aiohttp application answers ``/floor``
with a fixed small body: the floor (issue 17). The app's own ``/floor``
(the same handler behind the app's top-level middlewares) shows what those
cost.

For each request kind, ``--repeats`` requests from one aiohttp client in the
main thread, interleaved with as many floor requests, so both see the same
machine; prints the median of each and the ratio to the floor. ``week16``
is the 16-client week calendar-query throughput (answers/s). Every answer's
status is checked. ``--profile KIND`` runs KIND again with cProfile enabled
in the server's thread only and prints its top functions (cumulative and
own time); ``--profile-out FILE`` keeps the stats.

``putdelete`` PUTs an object in UTC, without a VTIMEZONE; ``bench.side_by_side``
sends half its objects with one, as clients do, which costs its parse more.

The machine is shared: compare ratios of one run, and repeat the run.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import aiohttp
from aiohttp import web

from bench.caldav_vs_radicale import (
    CAL_HEAD,
    CAL_TAIL,
    CRLF,
    FEED_TOKEN,
    FIRST_MONDAY,
    PASSWORD,
    RESOURCE,
    USER,
    VTIMEZONE,
    Event,
    make_events,
    multiget_body,
    propfind_body,
    week_query_body,
)
from gateway.app import create_app
from gateway.settings import parse_settings
from gateway.web.auth import hash_password
from gateway.web.keys import BOOKINGS

CALENDAR = f"/dav/calendars/{RESOURCE}/"
FEED = f"/feeds/{RESOURCE}.ics?token={FEED_TOKEN}"
XML = {"Content-Type": "application/xml; charset=utf-8"}
FLOOR_BODY = b"floor: a fixed small body\n"
MS = 1000.0


def _config(tmp: Path, db: Path, password_hash: str) -> str:
    return f"""\
server: {{host: 127.0.0.1, port: 0, log_format: text}}
storage: {{url: "sqlite:///{db}"}}
defaults: {{timezone: Europe/Berlin}}
users:
  - name: {USER}
    password_hash: "{password_hash}"
    access: {{{RESOURCE}: read-write}}
resources:
  - {{id: {RESOURCE}, name: Bench, email: bench@example.com, timezone: Europe/Berlin,
     feed_tokens: [{FEED_TOKEN}]}}
"""


async def _floor(request: web.Request) -> web.Response:
    return web.Response(body=FLOOR_BODY, content_type="text/plain")


class Server:
    """The app and the bare floor, served from a thread with its own loop."""

    def __init__(self, config: str, tmp: Path, events: list[Event], cache: Path | None) -> None:
        self._config = config
        self._tmp = tmp
        self._events = events
        self._cache = cache
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.stop = asyncio.Event()
        self.error: BaseException | None = None
        self.port = 0
        self.floor_port = 0
        self.load_seconds = 0.0
        self.thread = threading.Thread(target=self._run, name="server", daemon=True)

    def _run(self) -> None:
        try:
            self.loop.run_until_complete(self._serve())
        except BaseException as error:  # reported to the main thread
            self.error = error
            self.ready.set()

    async def _serve(self) -> None:
        self.stop = asyncio.Event()
        settings = parse_settings(self._config, base_dir=self._tmp)
        app = create_app(settings)
        app.router.add_get("/floor", _floor)
        runner = web.AppRunner(app, access_log=None)
        bare = web.Application()
        bare.router.add_get("/floor", _floor)
        floor_runner = web.AppRunner(bare, access_log=None)
        await runner.setup()
        await floor_runner.setup()
        try:
            if self._cache is None:
                started = time.perf_counter()
                text = CRLF.join(
                    [CAL_HEAD, VTIMEZONE, *(e.vevent() for e in self._events), CAL_TAIL]
                )
                report = await app[BOOKINGS].import_calendar(RESOURCE, text)
                self.load_seconds = time.perf_counter() - started
                stored = sum(1 for o in report.outcomes if not o.status.refused)
                if stored != len(self._events):
                    raise RuntimeError(f"imported {stored} of {len(self._events)}")
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            floor_site = web.TCPSite(floor_runner, "127.0.0.1", 0)
            await floor_site.start()
            self.port = runner.addresses[0][1]
            self.floor_port = floor_runner.addresses[0][1]
            self.ready.set()
            await self.stop.wait()
        finally:
            await floor_runner.cleanup()
            await runner.cleanup()

    def shutdown(self) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(timeout=30)


@dataclass
class Kind:
    """One request kind: what one request does (raises on a wrong answer)."""

    name: str
    what: str
    call: Callable[[aiohttp.ClientSession, int], Awaitable[None]]
    repeats: int | None = None  # None: --repeats


async def _expect(resp: aiohttp.ClientResponse, status: int) -> bytes:
    body = await resp.read()
    if resp.status != status:
        raise RuntimeError(
            f"{resp.method} {resp.url}: {resp.status}, expected {status}: {body[:300]!r}"
        )
    return body


def _kinds(
    base: str, floor: str, events: list[Event], etags: dict[str, str], feed_etag: str
) -> list[Kind]:
    obj = f"{base}{CALENDAR}{events[len(events) // 2].name}"
    week_start = (FIRST_MONDAY + timedelta(weeks=20)).replace(tzinfo=events[0].start.tzinfo)
    week_body = week_query_body(week_start, week_start + timedelta(weeks=1))
    picked = events[:: max(1, len(events) // 50)][:50]
    multiget = multiget_body(f"{CALENDAR}{e.name}" for e in picked)
    new_ics = (
        CRLF.join(
            [
                CAL_HEAD,
                "BEGIN:VEVENT",
                "UID:bench-paths-new",
                "DTSTAMP:20260101T000000Z",
                "DTSTART:20300101T100000Z",
                "DTEND:20300101T103000Z",
                "SUMMARY:PUT then DELETE",
                "END:VEVENT",
                CAL_TAIL,
            ]
        )
    ).encode()

    async def get_floor(http: aiohttp.ClientSession, _: int) -> None:
        async with http.get(floor) as resp:
            await _expect(resp, 200)

    async def app_floor(http: aiohttp.ClientSession, _: int) -> None:
        async with http.get(f"{base}/floor") as resp:
            await _expect(resp, 200)

    async def get(http: aiohttp.ClientSession, _: int) -> None:
        async with http.get(obj) as resp:
            await _expect(resp, 200)

    async def get304(http: aiohttp.ClientSession, _: int) -> None:
        async with http.get(obj, headers={"If-None-Match": etags[obj]}) as resp:
            await _expect(resp, 304)

    async def feed304(http: aiohttp.ClientSession, _: int) -> None:
        async with http.get(f"{base}{FEED}", headers={"If-None-Match": feed_etag}) as resp:
            await _expect(resp, 304)

    async def put_delete(http: aiohttp.ClientSession, n: int) -> None:
        url = f"{base}{CALENDAR}bench-paths-new.ics"
        async with http.put(url, data=new_ics, headers={"Content-Type": "text/calendar"}) as resp:
            await _expect(resp, 201)
        async with http.delete(url) as resp:
            await _expect(resp, 204)

    async def propfind1(http: aiohttp.ClientSession, _: int) -> None:
        body = propfind_body("getetag", "getcontenttype")
        async with http.request(
            "PROPFIND", f"{base}{CALENDAR}", data=body, headers={**XML, "Depth": "1"}
        ) as resp:
            got = await _expect(resp, 207)
        if got.count(b"<D:href>") + got.count(b"<href>") + got.count(b":href>") < len(events):
            raise RuntimeError("PROPFIND Depth 1 answered fewer hrefs than objects")

    async def multiget50(http: aiohttp.ClientSession, _: int) -> None:
        async with http.request(
            "REPORT", f"{base}{CALENDAR}", data=multiget, headers={**XML, "Depth": "1"}
        ) as resp:
            await _expect(resp, 207)

    async def week(http: aiohttp.ClientSession, _: int) -> None:
        async with http.request(
            "REPORT", f"{base}{CALENDAR}", data=week_body, headers={**XML, "Depth": "1"}
        ) as resp:
            await _expect(resp, 207)

    return [
        Kind("floor", "bare aiohttp handler, fixed body (the floor)", get_floor),
        Kind("appfloor", "the same handler inside the app (top-level middlewares)", app_floor),
        Kind("get", "GET one calendar object", get),
        Kind("get304", "GET one object, If-None-Match -> 304", get304),
        Kind("feed304", "feed GET, If-None-Match -> 304", feed304),
        Kind("putdelete", "PUT + DELETE of one object", put_delete),
        Kind("multiget50", "calendar-multiget of 50 hrefs", multiget50),
        Kind("week", "one-week calendar-query (getetag + calendar-data)", week),
        Kind("propfind1", "PROPFIND Depth 1 of the whole calendar", propfind1, repeats=5),
    ]


async def _time(
    kind: Kind, floor: Kind, http: aiohttp.ClientSession, repeats: int
) -> tuple[list[float], list[float]]:
    mine, floors = [], []
    for n in range(repeats):
        started = time.perf_counter()
        await floor.call(http, n)
        floors.append(time.perf_counter() - started)
        started = time.perf_counter()
        await kind.call(http, n)
        mine.append(time.perf_counter() - started)
    return mine, floors


async def _throughput(kind: Kind, http: aiohttp.ClientSession, clients: int, total: int) -> float:
    queue = iter(range(total))

    async def worker() -> None:
        for n in queue:
            await kind.call(http, n)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return total / (time.perf_counter() - started)


async def _client(server: Server, args: argparse.Namespace, events: list[Event]) -> None:
    base = f"http://127.0.0.1:{server.port}"
    floor = f"http://127.0.0.1:{server.floor_port}/floor"
    auth = {"Authorization": aiohttp.encode_basic_auth(USER, PASSWORD)}
    connector = aiohttp.TCPConnector(limit=32)
    async with aiohttp.ClientSession(headers=auth, connector=connector) as http:
        etags: dict[str, str] = {}
        obj = f"{base}{CALENDAR}{events[len(events) // 2].name}"
        async with http.get(obj) as resp:
            await _expect(resp, 200)
            etags[obj] = resp.headers["ETag"]
        async with http.get(f"{base}{FEED}") as resp:
            await _expect(resp, 200)
            feed_etag = resp.headers["ETag"]
        kinds = {k.name: k for k in _kinds(base, floor, events, etags, feed_etag)}
        floor_kind = kinds["floor"]
        wanted = args.kinds or [*kinds, "week16"]
        print("| kind | what | repeats | median ms | floor median ms | ratio to floor |")
        print("| --- | --- | ---: | ---: | ---: | ---: |")
        for name in wanted:
            if name == "week16":
                rate = await _throughput(kinds["week"], http, 16, args.week16)
                print(
                    f"| week16 | 16 clients, one-week calendar-query | {args.week16} "
                    f"| {rate:.0f}/s | | |"
                )
                continue
            kind = kinds[name]
            for _ in range(3):  # warm: connections, caches, first-use imports
                await kind.call(http, 0)
            repeats = kind.repeats or args.repeats
            mine, floors = await _time(kind, floor_kind, http, repeats)
            m, f = statistics.median(mine), statistics.median(floors)
            print(
                f"| {name} | {kind.what} | {repeats} | {m * MS:.2f} | {f * MS:.2f} | {m / f:.2f}x |"
            )
        if args.profile:
            kind = kinds[args.profile]
            profiler = cProfile.Profile()
            await asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(_enable(profiler), server.loop)
            )
            repeats = kind.repeats or args.repeats
            for n in range(repeats):
                await kind.call(http, n)
            await asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(_disable(profiler), server.loop)
            )
            if args.profile_out:
                profiler.dump_stats(args.profile_out)
            for order in ("cumulative", "tottime"):
                out = io.StringIO()
                stats = pstats.Stats(profiler, stream=out)
                stats.sort_stats(order).print_stats(args.profile_lines)
                print(f"\n## server-side profile of {repeats} x {kind.name}, by {order}\n")
                print(out.getvalue())


async def _enable(profiler: cProfile.Profile) -> None:
    profiler.enable()  # in the server's thread: profiles that thread only


async def _disable(profiler: cProfile.Profile) -> None:
    profiler.disable()


def _cached_db(n: int) -> Path:
    return Path(tempfile.gettempdir()) / f"calgateway-bench-paths-{n}.sqlite3"


def run(args: argparse.Namespace) -> None:
    events, _ = make_events(args.events)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        db = tmp / "gateway.sqlite3"
        cached = _cached_db(args.events)
        use_cache = cached.exists() and not args.fresh
        if use_cache:
            shutil.copyfile(cached, db)
        config = _config(tmp, db, hash_password(PASSWORD))
        server = Server(config, tmp, events, cache=cached if use_cache else None)
        server.thread.start()
        if not server.ready.wait(timeout=300) or server.error is not None:
            raise RuntimeError(f"server did not start: {server.error!r}")
        try:
            if use_cache:
                print(f"{args.events} events: copied from {cached} (--fresh to load again)")
            else:
                print(
                    f"{args.events} events loaded through import_calendar in "
                    f"{server.load_seconds:.1f} s"
                )
            asyncio.run(_client(server, args, events))
        finally:
            server.shutdown()
        if not use_cache:
            shutil.copyfile(db, cached)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--week16", type=int, default=400, help="queries in the 16-client run")
    parser.add_argument(
        "--kinds",
        nargs="*",
        help="floor appfloor get get304 feed304 putdelete multiget50 week propfind1 week16",
    )
    parser.add_argument("--profile", metavar="KIND", help="cProfile KIND's server side")
    parser.add_argument("--profile-out", metavar="FILE")
    parser.add_argument("--profile-lines", type=int, default=30)
    parser.add_argument("--fresh", action="store_true", help="load the events again")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
