"""CalDAV side by side: the gateway, Radicale and Xandikos against the floor.

    .venv/bin/python -m bench.side_by_side                        # 1,000 then 10,000 events
    .venv/bin/python -m bench.side_by_side --quick                # smoke run: 1,000, 3 repeats
    .venv/bin/python -m bench.side_by_side --events 100000 --peers gateway xandikos
    .venv/bin/python -m bench.side_by_side --events 1000 --json out.json

For each N, writes the same N events (``bench.caldav_vs_radicale``'s data)
into each server's storage the fastest way that server allows, before it
starts: the gateway through ``calgateway import`` (its own import path: every
object parsed, checked and stored as a PUT would), Radicale by writing its
item files into its collection folder, Xandikos by writing the .ics blobs into
its calendar's git repository and committing them in one commit (what its
``--defaults`` collection holds, as ``xandikos.store.git.TreeGitStore`` lays
it out). Then starts every server as a subprocess on a free loopback port,
plus the floor (``bench.floor``: an aiohttp handler returning a fixed small
body), reads each server's RSS before any request (idle RSS), and times the
same requests against each, one at a time (medians over ``--repeat``): GET of
one object, the same GET answered 304 (If-None-Match), the whole calendar
with If-None-Match (the gateway's feed; the collection GET of the peers),
calendar-multiget of 50, PUT of one new object, PUT + DELETE of one object,
PROPFIND Depth 1 on the whole calendar, a one-week calendar-query,
sync-collection after one change and the whole calendar as .ics; then 16
clients sending the week's calendar-query for ``--throughput-seconds``
(ops/s); then each server's peak RSS (VmHWM).

Every answer is checked against the generated truth; a difference fails the
run (exit 1) with the request, the expected and the received answer. A
server that does not finish a step within ``--timeout`` seconds is shown as
"did not finish in N s" and the run goes on (its late answer is dropped).

Prints one Markdown table per N (ratios peer/gateway, and gateway/floor on
the rows the floor bounds) and, with several N, a scaling table: each
server's median at each N and how it grew from the smallest N.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import aiohttp

from bench.caldav_vs_radicale import (
    BERLIN,
    CAL_HEAD,
    CAL_TAIL,
    CRLF,
    FIRST_MONDAY,
    ICS,
    MS,
    PASSWORD,
    RESOURCE,
    USER,
    VTIMEZONE,
    XML,
    Checks,
    D,
    Event,
    Reply,
    Server,
    _body_excerpt,
    _spawn,
    call,
    expected_in,
    free_port,
    ics_uids,
    make_events,
    multiget_body,
    parse_multistatus,
    propfind_body,
    spawn_gateway,
    sync_body,
    week_query_body,
    write_gateway_config,
)

PEERS = ("gateway", "Radicale", "Xandikos")
FLOOR = "floor"
XANDIKOS_PRINCIPAL = f"/{USER}/"
XANDIKOS_CALENDAR = f"/{USER}/calendars/calendar/"  # what --defaults creates
LOAD_TIMEOUT = 1800.0  # loading 100,000 events on a busy machine
START_TIMEOUT = 120.0  # a server reading a big store at start
CLIENTS = 16
# Xandikos answers a GET of a collection with an HTML page unless asked for text/calendar.
CALENDAR = {"Accept": "text/calendar"}


def log(text: str) -> None:
    print(text, flush=True)


def header(reply: Reply, name: str) -> str:
    """A response header, whatever its case (``Reply.headers`` is a plain dict)."""
    return next((v for k, v in reply.headers.items() if k.lower() == name.lower()), "")


# -- loading, before each server starts --------------------------------------------------


def import_file(events: Sequence[Event]) -> bytes:
    """All events as one calendar export (one VTIMEZONE at the top)."""
    return CRLF.join([CAL_HEAD, VTIMEZONE, *(e.vevent() for e in events), CAL_TAIL]).encode()


def load_gateway(tmp: Path, events: Sequence[Event]) -> tuple[Path, int, float]:
    """``calgateway import`` of all events into a fresh SQLite file."""
    config, port = write_gateway_config(tmp)
    export = tmp / "export.ics"
    export.write_bytes(import_file(events))
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "import",
            RESOURCE,
            str(export),
            "--config",
            str(config),
            "--problems-only",
        ],
        capture_output=True,
        text=True,
        timeout=LOAD_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"calgateway import failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return config, port, time.perf_counter() - started


def load_radicale(folder: Path, events: Sequence[Event]) -> float:
    """NOT a PUT: each event's bytes as ``{uid}.ics`` in the collection folder,
    with the properties MKCALENDAR would have written."""
    started = time.perf_counter()
    collection = folder / "collection-root" / USER / RESOURCE
    collection.mkdir(parents=True)
    props = {"C:supported-calendar-component-set": "VEVENT", "D:displayname": "Bench"}
    (collection / ".Radicale.props").write_text(json.dumps({**props, "tag": "VCALENDAR"}))
    for event in events:
        (collection / event.name).write_bytes(event.ics())
    return time.perf_counter() - started


def load_xandikos(folder: Path, events: Sequence[Event]) -> float:
    """Xandikos' own ``--defaults`` layout, then every event as a blob (one
    pack), a file in the work tree and an index entry, committed once."""
    from dulwich.index import index_entry_from_stat
    from dulwich.objects import Blob
    from dulwich.repo import Repo
    from xandikos.web import SingleUserFilesystemBackend

    started = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    backend = SingleUserFilesystemBackend(str(folder))
    backend.create_principal(XANDIKOS_PRINCIPAL, create_defaults=True)  # type: ignore[no-untyped-call]
    path = folder / XANDIKOS_CALENDAR.strip("/")
    repo = Repo(str(path))
    blobs: list[tuple[Blob, None]] = []
    index = repo.open_index()
    for event in events:
        data = event.ics()
        file = path / event.name
        file.write_bytes(data)
        blob = Blob.from_string(data)
        blobs.append((blob, None))
        index[event.name.encode()] = index_entry_from_stat(os.lstat(file), blob.id)
    repo.object_store.add_objects(blobs)
    index.write()
    tree = index.commit(repo.object_store)
    repo.get_worktree().commit(message=f"Load {len(events)} events".encode(), tree=tree)
    repo.close()
    return time.perf_counter() - started


# -- servers -----------------------------------------------------------------------------


def spawn_radicale(folder: Path) -> Server:
    port = free_port()
    config = folder.parent / "radicale.ini"
    config.write_text(
        f"[server]\nhosts = 127.0.0.1:{port}\n[auth]\ntype = none\n[rights]\n"
        f"type = owner_only\n[storage]\nfilesystem_folder = {folder}\n[web]\ntype = none\n",
        encoding="utf-8",
    )
    log_file = folder.parent / "radicale.log"
    process = _spawn([sys.executable, "-m", "radicale", "--config", str(config)], log_file)
    cal = f"/{USER}/{RESOURCE}/"
    return Server(
        "Radicale",
        f"http://127.0.0.1:{port}",
        cal,
        cal,
        "/.well-known/caldav",
        process,
        log_file,
        folder,
    )


def spawn_xandikos(folder: Path) -> Server:
    port = free_port()
    log_file = folder.parent / "xandikos.log"
    args = [sys.executable, "-m", "xandikos", "serve", "-d", str(folder), "-l", "127.0.0.1"]
    args += ["-p", str(port), "--current-user-principal", XANDIKOS_PRINCIPAL]
    args += ["--no-detect-systemd", "--state-dir", str(folder.parent / "xandikos-state")]
    process = _spawn(args, log_file)
    cal = XANDIKOS_CALENDAR
    return Server(
        "Xandikos",
        f"http://127.0.0.1:{port}",
        cal,
        cal,
        XANDIKOS_PRINCIPAL,
        process,
        log_file,
        folder,
    )


def spawn_floor(tmp: Path) -> Server:
    port = free_port()
    log_file = tmp / "floor.log"
    process = _spawn([sys.executable, "-m", "bench.floor", "--port", str(port)], log_file)
    return Server(
        FLOOR, f"http://127.0.0.1:{port}", "/", "/floor", "/floor", process, log_file, tmp
    )


async def wait_listening(server: Server) -> None:
    """Until the port accepts a connection: no HTTP request yet (idle RSS)."""
    port = int(server.base.rsplit(":", 1)[1])
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if server.process.poll() is not None:
            raise SystemExit(f"{server.label} exited while starting:\n{server.log_tail()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"{server.label} not listening after {START_TIMEOUT:.0f} s")
        await asyncio.sleep(0.05)


# -- measuring ---------------------------------------------------------------------------


@dataclass
class Cell:
    """One server's figure for one step: timings, or why there are none."""

    samples: list[float] = field(default_factory=list)  # seconds
    ops_per_s: float | None = None
    dnf: float | None = None  # did not finish within this many seconds
    note: str = ""

    @property
    def median_ms(self) -> float | None:
        return statistics.median(self.samples) * MS if self.samples else None

    def as_json(self) -> dict[str, Any]:
        return {
            "median_ms": self.median_ms,
            "ops_per_s": self.ops_per_s,
            "did_not_finish_s": self.dnf,
            "samples_s": self.samples,
            "note": self.note,
        }


@dataclass
class Result:
    events: int
    weeks: int
    cells: dict[str, dict[str, Cell]] = field(default_factory=dict)  # step -> server -> cell
    memory: dict[str, dict[str, int]] = field(default_factory=dict)  # server -> KiB
    load_s: dict[str, float] = field(default_factory=dict)
    first_read_s: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


Check = Callable[[Server, str, Reply], object]
Request = tuple[str, str, bytes | None, dict[str, str]]


class Run:
    """One N: the servers, the data, the steps in order."""

    def __init__(
        self,
        n: int,
        events: list[Event],
        weeks: int,
        http: aiohttp.ClientSession,
        servers: list[Server],
        floor: Server,
        *,
        repeats: int,
        timeout: float,
        throughput_seconds: float,
        checks: Checks,
    ) -> None:
        self.n, self.events, self.http = n, events, http
        self.servers, self.floor = servers, floor
        self.repeats, self.timeout = repeats, timeout
        self.throughput_seconds = throughput_seconds
        self.checks = checks
        self.result = Result(n, weeks)
        self.names = {e.name for e in events}
        self.by_name = {e.name: e for e in events}
        singles = [e for e in events if not e.recurring]
        self.to_change = itertools.cycle(singles[1 :: max(1, len(singles) // (2 * repeats + 20))])
        self.revision = 0
        self.extra = itertools.count()
        mid = FIRST_MONDAY + timedelta(weeks=weeks // 2)
        self.week = (mid.replace(tzinfo=BERLIN), (mid + timedelta(weeks=1)).replace(tzinfo=BERLIN))
        self.week_names = expected_in(events, *self.week)
        self.dnf: set[str] = set()  # servers that missed a bound: still busy, maybe

    async def call(self, server: Server, req: Request) -> Reply:
        return await call(self.http, server, *req)

    def cell(self, step: str, server: Server) -> Cell:
        return self.result.cells.setdefault(step, {}).setdefault(server.label, Cell())

    async def bounded(self, step: str, server: Server, work: Awaitable[None]) -> None:
        """``work`` within the timeout; else "did not finish" (samples kept)."""
        cell = self.cell(step, server)
        try:
            await asyncio.wait_for(work, self.timeout)
        except TimeoutError:
            if cell.samples:
                cell.note = f"{len(cell.samples)} of {self.repeats} repeats in {self.timeout:.0f} s"
            else:
                cell.dnf = self.timeout
                self.dnf.add(server.label)
            log(f"  {server.label}: {step}: {cell.note or 'did not finish'}")
            # The server goes on with the request dropped here: let it finish,
            # or its CPU would be taken from the next steps of every server.
            if not await settle(server, self.timeout):
                self.dnf.add(server.label)
                log(f"  {server.label}: still busy {self.timeout:.0f} s later")

    async def timed(
        self,
        step: str,
        servers: Sequence[Server],
        request: Callable[[Server], Request],
        check: Check,
    ) -> None:
        """One checked warm-up, then ``repeats`` timed and checked requests, per server."""
        for server in servers:
            cell = self.cell(step, server)

            async def work(server: Server = server, cell: Cell = cell) -> None:
                req = request(server)
                label = f"{req[0]} {req[1].split('?')[0]}"
                check(server, label, await self.call(server, req))
                for _ in range(self.repeats):
                    reply = await self.call(server, req)
                    cell.samples.append(reply.seconds)
                    check(server, label, reply)

            await self.bounded(step, server, work())

    def expect_status(self, status: int) -> Check:
        def check(server: Server, label: str, reply: Reply) -> None:
            self.checks.expect(reply.status == status, server, label, status, _body_excerpt(reply))

        return check

    def multistatus(self, server: Server, label: str, reply: Reply) -> list[Any] | None:
        if not self.checks.expect(reply.status == 207, server, label, "207", _body_excerpt(reply)):
            return None
        return parse_multistatus(reply.body)[0]

    # -- the steps --------------------------------------------------------------------

    async def get_one(self) -> None:
        event = self.events[len(self.events) // 3]
        want = f"UID:{event.uid}"

        def check(server: Server, label: str, reply: Reply) -> None:
            ok = reply.status == 200 and (server is self.floor or want in reply.body.decode())
            self.checks.expect(ok, server, label, f"200 with {want}", _body_excerpt(reply))

        self.object = event
        await self.timed(
            "GET one object",
            [*self.servers, self.floor],
            lambda s: ("GET", s.object_path(event.name), None, {}),
            check,
        )

    async def conditional_get(self) -> None:
        etags: dict[str, str] = {}
        for server in [*self.servers, self.floor]:
            reply = await self.call(server, ("GET", server.object_path(self.object.name), None, {}))
            etags[server.label] = header(reply, "ETag")
        step = "GET one object, If-None-Match (304)"
        want = f"UID:{self.object.uid}"
        statuses: dict[str, set[int]] = {s.label: set() for s in [*self.servers, self.floor]}

        def check(server: Server, label: str, reply: Reply) -> None:
            # The gateway (and the floor) must answer 304; a peer that ignores
            # If-None-Match is measured as it answers: the whole object.
            statuses[server.label].add(reply.status)
            ok = reply.status == 304 or (
                server.label not in ("gateway", FLOOR)
                and reply.status == 200
                and want in reply.body.decode()
            )
            self.checks.expect(ok, server, label + " If-None-Match", 304, _body_excerpt(reply))

        await self.timed(
            step,
            [*self.servers, self.floor],
            lambda s: (
                "GET",
                s.object_path(self.object.name),
                None,
                {"If-None-Match": etags[s.label]},
            ),
            check,
        )
        for label, got in statuses.items():
            if got and got != {304}:
                self.result.cells[step][label].note = f"answered {sorted(got)}, not 304"

    async def whole_calendar_unchanged(self) -> None:
        """The gateway's feed, the peers' collection GET, with If-None-Match:
        304 where the server gives an ETag and honours it; else a full 200."""
        step = "whole calendar, If-None-Match (feed / collection GET)"
        servers = [s for s in self.servers if s.label not in self.dnf]
        etags: dict[str, str] = {}
        for server in servers:

            async def first(server: Server = server) -> None:
                reply = await self.call(server, ("GET", server.feed, None, dict(CALENDAR)))
                self.check_ics(server, f"GET {server.feed.split('?')[0]}", reply)
                etags[server.label] = header(reply, "ETag")

            await self.bounded(step, server, first())
        servers = [s for s in servers if s.label in etags]
        floor = await self.call(self.floor, ("GET", self.floor.feed, None, {}))
        etags[FLOOR] = header(floor, "ETag")
        statuses: dict[str, set[int]] = {s.label: set() for s in [*servers, self.floor]}

        def check(server: Server, label: str, reply: Reply) -> None:
            statuses[server.label].add(reply.status)
            if server is self.floor or reply.status == 304:
                self.checks.expect(bool(etags.get(server.label)), server, label, "an ETag", "")
                return
            self.check_ics(server, label, reply)

        await self.timed(
            step,
            [*servers, self.floor],
            lambda s: (
                "GET",
                s.feed,
                None,
                {**CALENDAR, "If-None-Match": etags.get(s.label) or "-"},
            ),
            check,
        )
        for server in servers:
            got = statuses[server.label]
            if got != {304}:
                self.cell(step, server).note = f"answered {sorted(got)}, not 304"
        if self.n and "gateway" in statuses:
            self.checks.expect(
                statuses["gateway"] == {304},
                self.servers[0],
                "GET feed with If-None-Match",
                "304",
                sorted(statuses["gateway"]),
            )

    def check_ics(self, server: Server, label: str, reply: Reply) -> None:
        if not self.checks.expect(reply.status == 200, server, label, "200", _body_excerpt(reply)):
            return
        got = {u + ".ics" for u in ics_uids(reply.body)}
        self.checks.expect(
            got == self.names, server, label, f"{self.n} UIDs", f"{len(got & self.names)} of them"
        )

    async def whole_calendar(self) -> None:
        await self.timed(
            "whole calendar as .ics (feed / collection GET)",
            [s for s in self.servers if s.label not in self.dnf],
            lambda s: ("GET", s.feed, None, dict(CALENDAR)),
            self.check_ics,
        )

    async def multiget(self) -> None:
        picked = self.events[:: max(1, self.n // 50)][:50]
        want = {e.name for e in picked}

        def check(server: Server, label: str, reply: Reply) -> None:
            members = self.multistatus(server, label, reply)
            if members is None:
                return
            self.checks.same_names(server, label, want, (m.name for m in members))
            bad = [m.name for m in members if f"UID:{m.name[:-4]}" not in (m.data or "")]
            self.checks.expect(not bad, server, label, "each object's calendar-data", bad[:5])

        await self.timed(
            "calendar-multiget, 50 hrefs",
            self.servers,
            lambda s: (
                "REPORT",
                s.calendar,
                multiget_body(s.object_path(e.name) for e in picked),
                {**XML, "Depth": "1"},
            ),
            check,
        )

    def new_event(self) -> Event:
        """An event outside the generated data's weeks, with a UID of its own."""
        k = next(self.extra)
        base = self.events[k % len(self.events)]
        start = base.start.replace(year=base.start.year + 10)
        return Event(10**6 + k, f"calbench-new-{k:06d}", start, 30, False, k % 2 == 0)

    async def put_new(self) -> None:
        step = "PUT one new object"
        for server in self.servers:
            cell = self.cell(step, server)
            made: list[str] = []

            async def work(
                server: Server = server, cell: Cell = cell, made: list[str] = made
            ) -> None:
                for _ in range(self.repeats + 1):
                    event = self.new_event()
                    path = server.object_path(event.name)
                    headers = {**ICS, "If-None-Match": "*"}
                    reply = await self.call(server, ("PUT", path, event.ics(), headers))
                    self.checks.expect(
                        reply.status == 201, server, f"PUT {path}", 201, _body_excerpt(reply)
                    )
                    made.append(path)
                    cell.samples.append(reply.seconds)
                del cell.samples[0]  # the warm-up

            await self.bounded(step, server, work())
            for path in made:  # the calendar back to the truth, untimed
                reply = await self.call(server, ("DELETE", path, None, {}))
                self.checks.expect(
                    reply.status in (200, 204),
                    server,
                    f"DELETE {path}",
                    "204",
                    _body_excerpt(reply),
                )

    async def put_delete(self) -> None:
        step = "PUT + DELETE of one object"
        for server in self.servers:
            cell = self.cell(step, server)

            async def work(server: Server = server, cell: Cell = cell) -> None:
                for _ in range(self.repeats + 1):
                    event = self.new_event()
                    path = server.object_path(event.name)
                    put = await self.call(
                        server, ("PUT", path, event.ics(), {**ICS, "If-None-Match": "*"})
                    )
                    gone = await self.call(server, ("DELETE", path, None, {}))
                    self.checks.expect(
                        put.status == 201 and gone.status in (200, 204),
                        server,
                        f"PUT + DELETE {path}",
                        "201 then 204",
                        f"{put.status} then {gone.status}",
                    )
                    cell.samples.append(put.seconds + gone.seconds)
                del cell.samples[0]

            await self.bounded(step, server, work())

    async def propfind(self) -> None:
        def check(server: Server, label: str, reply: Reply) -> None:
            members = self.multistatus(server, label, reply)
            if members is not None:
                self.checks.same_names(server, label, self.names, (m.name for m in members))

        await self.timed(
            "PROPFIND Depth 1, whole calendar",
            [s for s in self.servers if s.label not in self.dnf],
            lambda s: (
                "PROPFIND",
                s.calendar,
                propfind_body("getetag", "getcontenttype"),
                {**XML, "Depth": "1"},
            ),
            check,
        )

    def week_check(self, server: Server, label: str, reply: Reply) -> None:
        members = self.multistatus(server, label, reply)
        if members is None:
            return
        self.checks.same_names(server, label, self.week_names, (m.name for m in members))
        empty = [m.name for m in members if "BEGIN:VEVENT" not in (m.data or "")]
        self.checks.expect(not empty, server, label, "calendar-data for every href", empty[:5])

    def week_request(self, server: Server) -> Request:
        return ("REPORT", server.calendar, week_query_body(*self.week), {**XML, "Depth": "1"})

    async def week_query(self) -> None:
        step = f"calendar-query, one week ({len(self.week_names)} events)"
        await self.timed(step, self.servers, self.week_request, self.week_check)

    async def sync_delta(self) -> None:
        step = "sync-collection after one change"
        for server in self.servers:
            cell = self.cell(step, server)

            async def work(server: Server = server, cell: Cell = cell) -> None:
                body = propfind_body("sync-token")
                req = ("PROPFIND", server.calendar, body, {**XML, "Depth": "0"})
                reply = await self.call(server, req)
                token = ET.fromstring(reply.body).findtext(f".//{D}sync-token") or ""
                self.checks.expect(bool(token), server, "sync-token", "a token", reply.body[:300])
                for i in range(self.repeats + 1):
                    event = next(self.to_change)
                    self.revision += 1
                    path = server.object_path(event.name)
                    put = await self.call(server, ("PUT", path, event.ics(self.revision), ICS))
                    self.checks.expect(
                        put.status == 204, server, f"PUT {path} (change)", 204, _body_excerpt(put)
                    )
                    reply = await self.call(
                        server, ("REPORT", server.calendar, sync_body(token), XML)
                    )
                    label = f"REPORT sync-collection after PUT {path}"
                    members = self.multistatus(server, label, reply)
                    if members is None:
                        return
                    self.checks.same_names(server, label, {event.name}, (m.name for m in members))
                    token = parse_multistatus(reply.body)[1] or ""
                    if i:
                        cell.samples.append(reply.seconds)

            await self.bounded(step, server, work())

    async def throughput(self) -> None:
        step = f"{CLIENTS} clients, week calendar-query (ops/s)"
        for server in self.servers:
            if server.label in self.dnf:
                continue
            cell = self.cell(step, server)
            done: list[float] = []
            started = time.perf_counter()
            stop_at = started + self.throughput_seconds

            async def client(
                server: Server = server, done: list[float] = done, stop_at: float = stop_at
            ) -> None:
                while time.perf_counter() < stop_at:
                    reply = await self.call(server, self.week_request(server))
                    self.week_check(server, "16-client calendar-query", reply)
                    done.append(reply.seconds)

            async def work(done: list[float] = done) -> None:
                await asyncio.gather(*(client() for _ in range(CLIENTS)))

            await self.bounded(step, server, work())
            if done and cell.dnf is None:
                cell.samples = done
                cell.ops_per_s = len(done) / (time.perf_counter() - started)
                cell.note = ""

    async def all(self) -> Result:
        for step in (
            self.get_one,
            self.conditional_get,
            self.whole_calendar_unchanged,
            self.multiget,
            self.put_new,
            self.put_delete,
            self.propfind,
            self.week_query,
            self.sync_delta,
            self.whole_calendar,
            self.throughput,
        ):
            began = time.perf_counter()
            await step()
            log(f"[{self.n}] {step.__name__} done in {time.perf_counter() - began:.1f} s")
        for server in [*self.servers, self.floor]:
            self.result.memory.setdefault(server.label, {})["peak_kib"] = status(server)["VmHWM"]
        return self.result


def cpu_seconds(server: Server) -> float:
    """User + system CPU time the server process has used so far."""
    fields = Path(f"/proc/{server.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def settle(server: Server, bound: float) -> bool:
    """Wait (at most ``bound`` s) until the server uses under 5% of a CPU."""
    deadline = time.monotonic() + bound
    before = cpu_seconds(server)
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        now = cpu_seconds(server)
        if now - before < 0.025:
            return True
        before = now
    return False


def status(server: Server) -> dict[str, int]:
    return server.proc_status()


async def run_one(n: int, peers: Sequence[str], args: argparse.Namespace, checks: Checks) -> Result:
    events, weeks = make_events(n)
    with tempfile.TemporaryDirectory(prefix="side-by-side-") as tmp_name:
        tmp = Path(tmp_name)
        servers: list[Server] = []
        loads: dict[str, float] = {}
        first_read: dict[str, float] = {}  # the first PROPFIND Depth 1 after start
        slow: set[str] = set()
        floor: Server | None = None
        try:
            for label in peers:
                folder = tmp / label.lower()
                folder.mkdir()
                log(f"[{n}] loading {label} ...")
                if label == "gateway":
                    config, port, loads[label] = await asyncio.to_thread(
                        load_gateway, folder, events
                    )
                    servers.append(spawn_gateway(folder, config, port))
                elif label == "Radicale":
                    loads[label] = await asyncio.to_thread(load_radicale, folder / "store", events)
                    servers.append(spawn_radicale(folder / "store"))
                else:
                    loads[label] = await asyncio.to_thread(load_xandikos, folder / "store", events)
                    servers.append(spawn_xandikos(folder / "store"))
                log(f"[{n}]   {label} loaded in {loads[label]:.1f} s")
            floor = spawn_floor(tmp)
            for server in [*servers, floor]:
                await wait_listening(server)
            await asyncio.sleep(1.0)  # let each settle after binding
            idle = {s.label: status(s)["VmRSS"] for s in [*servers, floor]}
            async with aiohttp.ClientSession(
                headers={"Authorization": aiohttp.encode_basic_auth(USER, PASSWORD)},
                timeout=aiohttp.ClientTimeout(total=None),
                connector=aiohttp.TCPConnector(limit=CLIENTS),
            ) as http:
                for server in servers:
                    # The first request: sign-in (the gateway), item cache (Radicale).
                    began = time.perf_counter()
                    req = (
                        "PROPFIND",
                        server.calendar,
                        propfind_body("getetag"),
                        {**XML, "Depth": "1"},
                    )
                    try:
                        reply = await asyncio.wait_for(call(http, server, *req), args.timeout * 4)
                        checks.expect(
                            reply.status == 207, server, "first PROPFIND", 207, _body_excerpt(reply)
                        )
                        first_read[server.label] = time.perf_counter() - began
                    except TimeoutError:
                        slow.add(server.label)
                        log(f"[{n}]   {server.label}: first PROPFIND did not finish")
                    log(f"[{n}]   {server.label} first read {time.perf_counter() - began:.1f} s")
                run = Run(
                    n,
                    events,
                    weeks,
                    http,
                    servers,
                    floor,
                    repeats=args.repeat,
                    timeout=args.timeout,
                    throughput_seconds=args.throughput_seconds,
                    checks=checks,
                )
                run.dnf |= slow
                result = await run.all()
            result.load_s, result.first_read_s = loads, first_read
            for label, kib in idle.items():
                result.memory.setdefault(label, {})["idle_kib"] = kib
            return result
        finally:
            for server in [*servers, *([floor] if floor else [])]:
                server.stop()


# -- output ------------------------------------------------------------------------------

FLOOR_BOUND = ("GET one object", "whole calendar, If-None")


def _figure(cell: Cell | None, throughput: bool) -> str:
    if cell is None:
        return "-"
    if cell.dnf is not None:
        return f"did not finish in {cell.dnf:.0f} s"
    value = cell.ops_per_s if throughput else cell.median_ms
    if value is None:
        return "-"
    text = f"{value:.0f}" if throughput else f"{value:.1f}" if value >= 10 else f"{value:.2f}"
    return text + (" *" if cell.note else "")


def _ratio(a: Cell | None, b: Cell | None, throughput: bool) -> str:
    """a's cost / b's cost (throughput: b's ops/s / a's)."""
    if a is None or b is None:
        return "-"
    if throughput:
        if a.ops_per_s and b.ops_per_s:
            return f"{b.ops_per_s / a.ops_per_s:.2f}x"
        return "-"
    if a.median_ms and b.median_ms:
        return f"{a.median_ms / b.median_ms:.2f}x"
    return "-"


LOADING = "gateway: calgateway import; Radicale: item files written; Xandikos: one commit"


def table(result: Result, labels: Sequence[str], repeats: int) -> str:
    peers = [p for p in labels if p != "gateway"]
    head = ["step", *labels, FLOOR, *(f"{p}/gateway" for p in peers), "gateway/floor"]
    rows = [
        f"### {result.events} events (over {result.weeks} weeks); medians (ms) of {repeats}, "
        "ops/s for the throughput row",
        "",
        "| " + " | ".join(head) + " |",
        "| --- |" + " ---: |" * (len(head) - 1),
    ]
    for step, by in result.cells.items():
        tp = "ops/s" in step
        g = by.get("gateway")
        cells = [_figure(by.get(label), tp) for label in [*labels, FLOOR]]
        cells += [_ratio(by.get(p), g, tp) for p in peers]
        cells.append(_ratio(g, by.get(FLOOR), tp) if step.startswith(FLOOR_BOUND) else "")
        rows.append(f"| {step} | " + " | ".join(cells) + " |")
    for key, what in (("idle_kib", "idle RSS after start (MiB)"), ("peak_kib", "peak RSS (MiB)")):
        mem = [result.memory.get(label, {}).get(key) for label in [*labels, FLOOR]]
        cells = [f"{k / 1024:.0f}" if k else "-" for k in mem]
        g_kib = mem[0] if labels[0] == "gateway" else None
        cells += [f"{m / g_kib:.2f}x" if m and g_kib else "-" for m in mem[1 : len(labels)]] + [""]
        rows.append(f"| {what} | " + " | ".join(cells) + " |")
    loads = ", ".join(f"{k} {v:.1f} s" for k, v in result.load_s.items())
    firsts = ", ".join(f"{k} {v:.1f} s" for k, v in result.first_read_s.items())
    rows += [
        "",
        f"Loaded before start ({LOADING}): {loads}. First PROPFIND Depth 1 after start (the "
        f"gateway's sign-in, Radicale's item cache): {firsts}. Ratios: the peer's cost / the "
        "gateway's (above 1: the gateway is faster; the throughput row: gateway ops/s / peer "
        "ops/s); gateway/floor: the gateway's cost / the floor's. * = see the notes below.",
    ]
    notes = [
        f"{label}: {step}: {cell.note}"
        for step, by in result.cells.items()
        for label, cell in by.items()
        if cell.note
    ]
    rows += [f"- {note}" for note in notes]
    return "\n".join(rows)


def scaling_table(results: Sequence[Result], labels: Sequence[str]) -> str:
    sizes = [r.events for r in results]
    head = ["step", "server", *(f"{n} events" for n in sizes), f"{sizes[-1]}/{sizes[0]}"]
    rows = [
        "### Scaling: median ms (ops/s for the throughput row) as the calendar grows",
        "",
        "| " + " | ".join(head) + " |",
        "| --- | --- |" + " ---: |" * (len(head) - 2),
    ]
    steps = list(dict.fromkeys(s for r in results for s in r.cells))

    def key(step: str) -> str:  # the week query's step name holds its count
        return step.split(" (")[0] if step.startswith("calendar-query") else step

    for step in dict.fromkeys(key(s) for s in steps):
        tp = "ops/s" in step
        for label in [*labels, FLOOR]:
            found = [
                next((by.get(label) for s, by in r.cells.items() if key(s) == step), None)
                for r in results
            ]
            if all(c is None for c in found):
                continue
            first, last = found[0], found[-1]
            growth = _ratio(first, last, tp) if tp else _ratio(last, first, tp)
            cells = [_figure(c, tp) for c in found]
            rows.append(f"| {step} | {label} | " + " | ".join(cells) + f" | {growth} |")
    for key_, what in (("idle_kib", "idle RSS (MiB)"), ("peak_kib", "peak RSS (MiB)")):
        for label in labels:
            kib = [r.memory.get(label, {}).get(key_) for r in results]
            cells = [f"{k / 1024:.0f}" if k else "-" for k in kib]
            grow = f"{kib[-1] / kib[0]:.2f}x" if kib[0] and kib[-1] else "-"
            rows.append(f"| {what} | {label} | " + " | ".join(cells) + f" | {grow} |")
    return "\n".join(rows)


def as_json(results: Sequence[Result], args: argparse.Namespace) -> dict[str, Any]:
    def ver(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "-"

    return {
        "meta": {
            "command": " ".join(sys.argv),
            "python": platform.python_version(),
            "versions": {p: ver(p) for p in ("calgateway", "radicale", "xandikos", "aiohttp")},
            "cpus": os.cpu_count(),
            "repeats": args.repeat,
            "timeout_s": args.timeout,
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
        },
        "runs": [
            {
                "events": r.events,
                "weeks": r.weeks,
                "load_s": r.load_s,
                "first_read_s": r.first_read_s,
                "steps": {s: {k: c.as_json() for k, c in by.items()} for s, by in r.cells.items()},
                "memory_kib": r.memory,
            }
            for r in results
        ],
    }


async def main_async(args: argparse.Namespace) -> int:
    labels = [p for p in PEERS if p.lower() in {x.lower() for x in args.peers}]
    if "gateway" not in labels:
        raise SystemExit("--peers: the gateway is the reference of every ratio; keep it")
    checks = Checks()
    results = []
    for n in args.events:
        began = time.perf_counter()
        results.append(await run_one(n, labels, args, checks))
        log(f"[{n}] finished in {time.perf_counter() - began:.0f} s\n")
    versions = ", ".join(f"{p} {_ver(p)}" for p in ("radicale", "xandikos", "aiohttp"))
    log(
        f"CalDAV on loopback, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{versions}; one aiohttp client, requests one at a time but the throughput row.\n"
    )
    for result in results:
        log(table(result, labels, args.repeat) + "\n")
    if len(results) > 1:
        log(scaling_table(results, labels) + "\n")
    if args.json:
        text = json.dumps(as_json(results, args), indent=2)
        await asyncio.to_thread(Path(args.json).write_text, text, encoding="utf-8")
        log(f"raw numbers: {args.json}")
    if checks.failures:
        print(f"\n{len(checks.failures)} CHECK(S) FAILED:", file=sys.stderr)
        for failure in checks.failures:
            print("- " + failure, file=sys.stderr)
        return 1
    log("All answers checked against the generated data.")
    return 0


def _ver(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "(not installed)"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--events", type=int, nargs="+", help="N (default: 1000 10000)")
    parser.add_argument(
        "--peers",
        nargs="+",
        default=[p.lower() for p in PEERS],
        help="servers to run (default: gateway radicale xandikos)",
    )
    parser.add_argument("--repeat", type=int, help="timed repeats per step (default 20)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="bound of one step on one server, seconds (default 60)",
    )
    parser.add_argument(
        "--throughput-seconds",
        type=float,
        default=3.0,
        help="how long the 16 clients send queries (default 3)",
    )
    parser.add_argument("--quick", action="store_true", help="1,000 events, 3 repeats, 1 s")
    parser.add_argument("--json", metavar="FILE", help="save raw numbers as JSON")
    args = parser.parse_args()
    if args.quick:
        args.events = args.events or [1000]
        args.repeat = args.repeat or 3
        args.throughput_seconds = 1.0
    args.events = args.events or [1000, 10000]
    args.repeat = args.repeat or 20
    if "xandikos" in [p.lower() for p in args.peers] and _ver("xandikos") == "(not installed)":
        raise SystemExit("Xandikos is not installed: .venv/bin/pip install -e '.[bench]'")
    try:
        sys.exit(asyncio.run(main_async(args)))
    except KeyboardInterrupt:
        sys.exit("interrupted; servers stopped")


if __name__ == "__main__":
    main()
