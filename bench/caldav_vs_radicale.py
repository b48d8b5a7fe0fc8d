"""CalDAV on loopback: the gateway against Radicale, on the same requests.

    .venv/bin/python -m bench.caldav_vs_radicale                 # 1000, then 10000 events
    .venv/bin/python -m bench.caldav_vs_radicale --events 1000 --json bench.json

The three-server table of issue 17 (with Xandikos and the floor, every
server loaded before it starts) is ``bench.side_by_side``, which takes its
data, servers and checks from this module. This one loads through PUT and
follows the memory of the two servers phase by phase.

For each N, starts both servers as real subprocesses on free loopback ports
(``calgateway serve --config FILE`` and ``python -m radicale``, each with its
storage in a fresh temporary directory), loads N events into both through
CalDAV PUT with one aiohttp client (fixed concurrency), then times the same
requests against both, one at a time: a one-week calendar-query, PROPFIND
Depth 1, calendar-multiget of 50 hrefs, sync-collection after one change,
and the whole calendar as ICS (the gateway's feed; Radicale's GET on the
collection). Every answer is checked (same hrefs on both, and the ones the
generated data predicts); a difference fails the run with the request, what
was expected and what came back. Prints one Markdown table per N with
medians, throughput and the ratio Radicale time / gateway time ("x times
faster"), plus the peak RSS of each server process (``VmHWM``).

Data: events in non-overlapping half-hour slots (06:00-22:00 Berlin time,
Monday to Saturday) over about a year, about 5% weekly recurring (on
Sundays, three occurrences, COUNT or UNTIL), some with VALARM, half with
``TZID=Europe/Berlin`` and a VTIMEZONE, the rest in UTC. Both servers get the
same bytes.

Radicale checks every new UID against every stored item (O(N) per PUT), so
loading N events through PUT costs it O(N^2), and a PUT of the whole calendar
on the collection costs it ~40 ms per event here (vobject rebuilds the
VTIMEZONE of every item). Above
``--radicale-files-above`` events, Radicale is therefore preloaded by writing
the same .ics bytes as files into its collection folder -- NOT a PUT -- then
one PROPFIND lets it build its item cache, while the gateway gets every event
through a single PUT. The PUT rate is then compared on the same last
``--put-sample`` events, PUT one by one into both servers holding the rest.
The output says which loading was used.

Absolute numbers depend on the machine; compare ratios, on one machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import unquote
from zoneinfo import ZoneInfo

import aiohttp

from bench.exports import VTIMEZONE as BERLIN_VTIMEZONE_LINES

USER = "bench"
PASSWORD = "bench-password-0123456789"  # a throwaway loopback account
FEED_TOKEN = "bench-feed-token-0123456789abcdef"
RESOURCE = "bench"
BERLIN = ZoneInfo("Europe/Berlin")
FIRST_MONDAY = datetime(2027, 1, 4)  # a Monday; all slots are Berlin wall-clock times
SLOT_MINUTES = 30
DAY_SLOTS = 32  # 06:00-22:00: far from the 02:00-03:00 DST switches
FIRST_HOUR = 6
RECURRING_SHARE = 0.05
RECURRING_WEEKS = 3  # occurrences of each recurring event, one per week
READY_TIMEOUT = 30.0
MS = 1000.0

CRLF = "\r\n"
# One definition of Berlin's zone for every bench (bench.exports).
VTIMEZONE = CRLF.join(BERLIN_VTIMEZONE_LINES)
CAL_HEAD = CRLF.join(["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//calgateway//bench//EN"])
CAL_TAIL = "END:VCALENDAR" + CRLF


# -- the data ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    """One calendar object as both servers receive it."""

    index: int
    uid: str
    start: datetime  # Berlin wall clock (aware)
    minutes: int
    recurring: bool
    tzid: bool  # TZID=Europe/Berlin with a VTIMEZONE; else UTC times

    @property
    def name(self) -> str:
        """The object's name in the collection."""
        return f"{self.uid}.ics"

    def occurrences(self) -> list[tuple[datetime, datetime]]:
        """UTC spans of every instance (weekly ones keep the Berlin wall-clock time)."""
        count = RECURRING_WEEKS if self.recurring else 1
        spans = []
        for week in range(count):
            local = self.start + timedelta(weeks=week)  # wall-clock arithmetic in zoneinfo
            start = local.astimezone(UTC)
            spans.append((start, start + timedelta(minutes=self.minutes)))
        return spans

    def vevent(self, revision: int = 0) -> str:
        end = self.start + timedelta(minutes=self.minutes)
        if self.tzid:
            times = [
                f"DTSTART;TZID=Europe/Berlin:{self.start:%Y%m%dT%H%M%S}",
                f"DTEND;TZID=Europe/Berlin:{end:%Y%m%dT%H%M%S}",
            ]
        else:
            times = [f"DTSTART:{_utc(self.start)}", f"DTEND:{_utc(end)}"]
        lines = [
            "BEGIN:VEVENT",
            f"UID:{self.uid}",
            "DTSTAMP:20260101T000000Z",
            *times,
            f"SUMMARY:Booking {self.index}" + (f" (changed {revision})" if revision else ""),
        ]
        if revision:
            lines.append(f"SEQUENCE:{revision}")
        if self.index % 4 == 0:
            lines.append(f"DESCRIPTION:Customer {self.index}\\, booked online\\nSecond line")
        if self.index % 3 == 0:
            lines.append(f"LOCATION:Room {self.index % 7 + 1}")
        if self.recurring:
            if self.index % 2:
                last = self.start + timedelta(weeks=RECURRING_WEEKS - 1)
                lines.append(f"RRULE:FREQ=WEEKLY;UNTIL={_utc(last)}")
            else:
                lines.append(f"RRULE:FREQ=WEEKLY;COUNT={RECURRING_WEEKS}")
        if self.index % 5 == 0:
            lines += [
                "BEGIN:VALARM",
                "ACTION:DISPLAY",
                "DESCRIPTION:Reminder",
                "TRIGGER:-PT15M",
                "END:VALARM",
            ]
        lines.append("END:VEVENT")
        return CRLF.join(lines)

    def ics(self, revision: int = 0) -> bytes:
        parts = [CAL_HEAD, *([VTIMEZONE] if self.tzid else []), self.vevent(revision), CAL_TAIL]
        return CRLF.join(parts).encode("utf-8")


def _utc(local: datetime) -> str:
    return local.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _slot(day: datetime, slot: int) -> datetime:
    start = day + timedelta(hours=FIRST_HOUR, minutes=SLOT_MINUTES * slot)
    return start.replace(tzinfo=BERLIN)


def make_events(n: int) -> tuple[list[Event], int]:
    """N events in distinct slots spread over the data's weeks, and the number of weeks."""
    n_recurring = round(n * RECURRING_SHARE)
    n_single = n - n_recurring
    blocks_needed = -(-n_recurring // DAY_SLOTS)
    weeks = max(52, -(-n_single // (6 * DAY_SLOTS)), blocks_needed * RECURRING_WEEKS)
    blocks = weeks // RECURRING_WEEKS
    single_slots = weeks * 6 * DAY_SLOTS
    recurring_slots = blocks * DAY_SLOTS
    events = []
    for k in range(n_single):
        at = k * single_slots // n_single  # evenly spread over the weeks
        day, slot = divmod(at, DAY_SLOTS)
        week, weekday = divmod(day, 6)  # Monday..Saturday
        date = FIRST_MONDAY + timedelta(weeks=week, days=weekday)
        events.append((_slot(date, slot), False))
    for k in range(n_recurring):
        at = k * recurring_slots // n_recurring
        block, slot = at % blocks, at // blocks  # round the year first
        sunday = FIRST_MONDAY + timedelta(weeks=block * RECURRING_WEEKS, days=6)
        events.append((_slot(sunday, slot), True))
    out = [
        Event(
            index=i,
            uid=f"calbench-{i:05d}",
            start=start,
            minutes=(30, 30, 20, 15)[i % 4],
            recurring=recurring,
            tzid=recurring or i % 2 == 0,
        )
        for i, (start, recurring) in enumerate(events)
    ]
    return out, weeks


def expected_in(events: Iterable[Event], start: datetime, end: datetime) -> set[str]:
    return {e.name for e in events if any(s < end and t > start for s, t in e.occurrences())}


# -- servers -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    label: str
    base: str
    calendar: str  # path of the calendar collection, with a trailing slash
    feed: str  # path (and query) of the whole calendar as ICS
    ready: str  # path polled until it answers
    process: subprocess.Popen[bytes]
    log: Path
    storage: Path  # the gateway's SQLite file, Radicale's storage folder

    def url(self, path: str) -> str:
        return self.base + path

    def object_path(self, name: str) -> str:
        return self.calendar + name

    def proc_status(self) -> dict[str, int]:
        """VmHWM / VmRSS of the server process, in KiB."""
        values = {}
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                values[key] = int(rest.split()[0])
        return values

    def reset_peak(self) -> bool:
        """Reset VmHWM (Linux >= 4.0: write 5 to clear_refs); False if not allowed."""
        try:
            Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")
        except OSError:
            return False
        return True

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)


def _spawn(args: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )


def start_gateway(tmp: Path) -> Server:
    config, port = write_gateway_config(tmp)
    return spawn_gateway(tmp, config, port)


def write_gateway_config(tmp: Path) -> tuple[Path, int]:
    """The gateway's settings (a free loopback port, SQLite in ``tmp``)."""
    calgateway = Path(sys.executable).parent / "calgateway"
    password_hash = (
        subprocess.run(
            [str(calgateway), "hash-password", "--stdin"],
            input=PASSWORD.encode(),
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .strip()
    )
    port = free_port()
    config = tmp / "gateway.yaml"
    config.write_text(
        f"""\
server:
  host: 127.0.0.1
  port: {port}
  max_body_bytes: 1048576
  log_format: text
  shutdown_timeout: 5
storage:
  url: "sqlite:///{tmp / "gateway.sqlite3"}"
defaults:
  timezone: Europe/Berlin
users:
  - name: {USER}
    password_hash: "{password_hash}"
    access: {{{RESOURCE}: read-write}}
resources:
  - id: {RESOURCE}
    name: Bench
    email: bench@example.com
    timezone: Europe/Berlin
    feed_tokens: [{FEED_TOKEN}]
""",
        encoding="utf-8",
    )
    return config, port


def spawn_gateway(
    tmp: Path, config: Path, port: int, command: Sequence[str] | None = None
) -> Server:
    """``calgateway serve`` with the settings of ``write_gateway_config``;
    ``command``: another way to run it (its ``--config`` is appended)."""
    calgateway = Path(sys.executable).parent / "calgateway"
    log = tmp / "gateway.log"
    run = list(command) if command is not None else [str(calgateway), "serve"]
    process = _spawn([*run, "--config", str(config)], log)
    return Server(
        label="gateway",
        base=f"http://127.0.0.1:{port}",
        calendar=f"/dav/calendars/{RESOURCE}/",
        feed=f"/feeds/{RESOURCE}.ics?token={FEED_TOKEN}",
        ready="/healthz",
        process=process,
        log=log,
        storage=tmp / "gateway.sqlite3",
    )


def start_radicale(tmp: Path) -> Server:
    port = free_port()
    config = tmp / "radicale.ini"
    config.write_text(
        f"""\
[server]
hosts = 127.0.0.1:{port}
[auth]
type = none
[rights]
type = owner_only
[storage]
filesystem_folder = {tmp / "radicale"}
[web]
type = none
""",
        encoding="utf-8",
    )
    log = tmp / "radicale.log"
    process = _spawn([sys.executable, "-m", "radicale", "--config", str(config)], log)
    return Server(
        label="Radicale",
        base=f"http://127.0.0.1:{port}",
        calendar=f"/{USER}/{RESOURCE}/",
        feed=f"/{USER}/{RESOURCE}/",
        ready="/.well-known/caldav",
        process=process,
        log=log,
        storage=tmp / "radicale",
    )


async def wait_ready(http: aiohttp.ClientSession, server: Server) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        if server.process.poll() is not None:
            raise SystemExit(
                f"{server.label} exited with {server.process.returncode} while starting:\n"
                + server.log_tail()
            )
        with contextlib.suppress(aiohttp.ClientError):
            async with http.get(server.url(server.ready), allow_redirects=False) as resp:
                await resp.read()
                if resp.status < 500:
                    return
        if time.monotonic() > deadline:
            raise SystemExit(
                f"{server.label} not ready after {READY_TIMEOUT:.0f} s:\n" + server.log_tail()
            )
        await asyncio.sleep(0.05)


# -- HTTP and WebDAV helpers -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    seconds: float
    headers: dict[str, str]


async def call(
    http: aiohttp.ClientSession,
    server: Server,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    started = time.perf_counter()
    async with http.request(method, server.url(path), data=body, headers=headers) as resp:
        data = await resp.read()
        elapsed = time.perf_counter() - started
        return Reply(resp.status, data, elapsed, dict(resp.headers))


XML = {"Content-Type": "application/xml; charset=utf-8"}
ICS = {"Content-Type": "text/calendar; charset=utf-8"}
D = "{DAV:}"
C = "{urn:ietf:params:xml:ns:caldav}"


@dataclass(frozen=True, slots=True)
class Member:
    name: str  # last path segment, unquoted
    status: int
    etag: str | None
    data: str | None


def parse_multistatus(body: bytes) -> tuple[list[Member], str | None]:
    """Members (the collection itself left out) and the sync-token, if any."""
    root = ET.fromstring(body)
    members = []
    for response in root.findall(f"{D}response"):
        href = (response.findtext(f"{D}href") or "").strip()
        if href.endswith("/"):
            continue  # the collection itself
        name = unquote(href.rsplit("/", 1)[-1])
        status_text = response.findtext(f"{D}status")
        etag = data = None
        if status_text is None:
            status_text = "HTTP/1.1 500 no status"
            for propstat in response.findall(f"{D}propstat"):
                text = propstat.findtext(f"{D}status") or ""
                prop = propstat.find(f"{D}prop")
                if " 200 " in text + " " and prop is not None:
                    status_text = text
                    etag = prop.findtext(f"{D}getetag")
                    data = prop.findtext(f"{C}calendar-data")
        members.append(Member(name, int(status_text.split()[1]), etag, data))
    return members, root.findtext(f"{D}sync-token")


def propfind_body(*props: str) -> bytes:
    inner = "".join(f"<D:{p}/>" for p in props)
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<D:propfind xmlns:D="DAV:"><D:prop>{inner}</D:prop></D:propfind>'
    ).encode()


def week_query_body(start: datetime, end: datetime) -> bytes:
    fmt = "%Y%m%dT%H%M%SZ"
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
        "<D:prop><D:getetag/><C:calendar-data/></D:prop>"
        '<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
        f'<C:time-range start="{start.astimezone(UTC):{fmt}}" end="{end.astimezone(UTC):{fmt}}"/>'
        "</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>"
    ).encode()


def multiget_body(hrefs: Iterable[str]) -> bytes:
    inner = "".join(f"<D:href>{h}</D:href>" for h in hrefs)
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<C:calendar-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
        f"<D:prop><D:getetag/><C:calendar-data/></D:prop>{inner}</C:calendar-multiget>"
    ).encode()


def sync_body(token: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><D:sync-collection xmlns:D="DAV:">'
        f"<D:sync-token>{token}</D:sync-token><D:sync-level>1</D:sync-level>"
        "<D:prop><D:getetag/></D:prop></D:sync-collection>"
    ).encode()


MKCALENDAR_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?>'
    b'<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:set><D:prop>'
    b"<D:displayname>Bench</D:displayname><C:supported-calendar-component-set>"
    b'<C:comp name="VEVENT"/></C:supported-calendar-component-set>'
    b"</D:prop></D:set></C:mkcalendar>"
)


def ics_uids(body: bytes) -> list[str]:
    """UID of every VEVENT in an iCalendar stream (unfolded lines)."""
    text = body.decode("utf-8").replace("\r\n ", "").replace("\n ", "")
    uids, in_event = [], False
    for line in text.splitlines():
        if line == "BEGIN:VEVENT":
            in_event = True
        elif line == "END:VEVENT":
            in_event = False
        elif in_event and line.startswith("UID"):
            uids.append(line.split(":", 1)[1])
    return uids


# -- correctness -------------------------------------------------------------------------


@dataclass
class Checks:
    failures: list[str] = field(default_factory=list)

    def expect(self, ok: bool, server: Server, request: str, expected: object, got: object) -> bool:
        if not ok:
            message = (
                f"{server.label}: {request}\n    expected: {_short(expected)}\n"
                f"    got:      {_short(got)}"
            )
            self.failures.append(message)
            print("MISMATCH " + message, file=sys.stderr, flush=True)
        return ok

    def same_names(self, server: Server, request: str, want: set[str], got: Iterable[str]) -> bool:
        got_list = list(got)
        got_set = set(got_list)
        ok = got_set == want and len(got_list) == len(got_set)
        detail: object = sorted(got_set)
        if not ok:
            detail = {
                "count": len(got_list),
                "missing": sorted(want - got_set)[:10],
                "unexpected": sorted(got_set - want)[:10],
                "duplicates": len(got_list) - len(got_set),
            }
        return self.expect(ok, server, request, f"{len(want)} hrefs", detail)


def _short(value: object, limit: int = 600) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def _body_excerpt(reply: Reply) -> str:
    return f"{reply.status} {_short(reply.body, 400)}"


# -- measuring ---------------------------------------------------------------------------


@dataclass
class Timing:
    samples: list[float]  # seconds per operation
    wall: float  # seconds for all of them
    count: int  # operations done in ``wall``
    note: str = ""

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples) * MS if self.samples else float("nan")

    @property
    def per_s(self) -> float:
        return self.count / self.wall if self.wall else float("nan")

    def as_json(self) -> dict[str, Any]:
        return {
            "median_ms": self.median_ms,
            "ops_per_s": self.per_s,
            "count": self.count,
            "wall_s": self.wall,
            "samples_s": self.samples,
            "note": self.note,
        }


async def put_events(
    http: aiohttp.ClientSession,
    server: Server,
    events: Sequence[Event],
    concurrency: int,
    checks: Checks,
) -> Timing:
    queue = iter(events)
    samples: list[float] = []

    async def worker() -> None:
        for event in queue:
            path = server.object_path(event.name)
            reply = await call(
                http, server, "PUT", path, event.ics(), {**ICS, "If-None-Match": "*"}
            )
            samples.append(reply.seconds)
            checks.expect(
                reply.status == 201, server, f"PUT {path} (new object)", "201", _body_excerpt(reply)
            )

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Timing(samples, time.perf_counter() - started, len(events))


async def preload_radicale_files(
    http: aiohttp.ClientSession, server: Server, events: Sequence[Event], checks: Checks
) -> tuple[Timing, float]:
    """NOT a PUT: writes each event's bytes as ``{uid}.ics`` into Radicale's
    collection folder (Radicale reads files changed behind its back), then
    makes one PROPFIND Depth 1 so that Radicale parses every item into its
    item cache, as its PUT would have. Returns the write time and the time of
    that first read."""
    collection = server.storage / "collection-root" / USER / RESOURCE
    started = time.perf_counter()
    for event in events:
        (collection / event.name).write_bytes(event.ics())
    written = time.perf_counter() - started
    request = f"PROPFIND {server.calendar} Depth: 1 (first read after writing files)"
    reply = await call(
        http, server, "PROPFIND", server.calendar, propfind_body("getetag"), {**XML, "Depth": "1"}
    )
    if checks.expect(reply.status == 207, server, request, "207", _body_excerpt(reply)):
        names = (m.name for m in parse_multistatus(reply.body)[0])
        checks.same_names(server, request, {e.name for e in events}, names)
    note = f"{len(events)} .ics files written into its folder, no PUT"
    return Timing([written], written, len(events), note), reply.seconds


@dataclass
class RunResult:
    events: int
    weeks: int
    operations: dict[str, dict[str, Timing]] = field(default_factory=dict)
    memory: dict[str, dict[str, int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def record(self, op: str, server: Server, timing: Timing) -> None:
        self.operations.setdefault(op, {})[server.label] = timing


Request = tuple[str, str, bytes | None, dict[str, str]]  # method, path, body, headers


class Run:
    """One N: both servers, the data, and the measurements in order."""

    def __init__(
        self,
        n: int,
        http: aiohttp.ClientSession,
        gateway: Server,
        radicale: Server,
        *,
        concurrency: int,
        repeats: int,
        put_sample: int | None,
        files_above: int,
        checks: Checks,
    ) -> None:
        self.n = n
        self.http = http
        self.gateway, self.radicale = gateway, radicale
        self.servers = (gateway, radicale)
        self.concurrency = concurrency
        self.repeats = repeats
        self.files = n > files_above
        # Radicale's single PUT scans every stored item: ~0.7 s each at 10k here.
        default_sample = 100 if self.files else 500
        self.put_sample = min(default_sample if put_sample is None else put_sample, n)
        self.checks = checks
        self.events, weeks = make_events(n)
        self.result = RunResult(n, weeks)
        self.names = {e.name for e in self.events}
        # Changes for the sync and feed rounds: single events, spread over the
        # data, each changed once (again only if N is tiny).
        singles = [e for e in self.events if not e.recurring]
        self.to_change = itertools.cycle(singles[1 :: max(1, len(singles) // (2 * repeats + 20))])
        self.revision = 0

    def log(self, text: str) -> None:
        print(f"[{self.n}] {text}", flush=True)

    async def call(self, server: Server, request: Request) -> Reply:
        method, path, body, headers = request
        return await call(self.http, server, method, path, body, headers)

    async def change_one(self, server: Server, event: Event) -> None:
        path = server.object_path(event.name)
        reply = await call(self.http, server, "PUT", path, event.ics(self.revision), ICS)
        self.checks.expect(
            reply.status == 204, server, f"PUT {path} (change)", "204", _body_excerpt(reply)
        )

    async def measure(
        self,
        op: str,
        request: Callable[[Server], Request],
        check: Callable[[Server, str, Reply], object],
    ) -> None:
        """One checked warm-up, then ``repeats`` timed and checked requests, per server."""
        for server in self.servers:
            req = request(server)
            label = f"{req[0]} {req[1].split('?')[0]}"
            check(server, label, await self.call(server, req))
            samples = []
            for _ in range(self.repeats):
                reply = await self.call(server, req)
                samples.append(reply.seconds)
                check(server, label, reply)
            self.result.record(op, server, Timing(samples, sum(samples), len(samples)))

    def multistatus(self, server: Server, label: str, reply: Reply) -> list[Member] | None:
        if not self.checks.expect(reply.status == 207, server, label, "207", _body_excerpt(reply)):
            return None
        return parse_multistatus(reply.body)[0]

    # -- phases ---------------------------------------------------------------------

    async def setup(self) -> None:
        for server in self.servers:
            await wait_ready(self.http, server)
        # One request signs in before the concurrent load (clients discover first).
        body = propfind_body("resourcetype")
        reply = await self.call(self.gateway, ("PROPFIND", self.gateway.calendar, body, XML))
        self.checks.expect(
            reply.status == 207,
            self.gateway,
            f"PROPFIND {self.gateway.calendar} Depth: 0",
            "207",
            _body_excerpt(reply),
        )
        cal = self.radicale.calendar
        reply = await self.call(self.radicale, ("MKCALENDAR", cal, MKCALENDAR_BODY, XML))
        self.checks.expect(
            reply.status == 201, self.radicale, f"MKCALENDAR {cal}", "201", _body_excerpt(reply)
        )
        for server in self.servers:
            peak = server.proc_status()["VmHWM"]
            self.result.memory[server.label] = {"startup_peak_kib": peak}
            if not server.reset_peak():
                self.result.notes.append(f"could not reset VmHWM of {server.label}")

    async def load(self) -> None:
        order = list(self.events)
        random.Random(self.n).shuffle(order)  # random time order, the same for both
        cut = self.n - self.put_sample
        preload, sample = order[:cut], order[cut:]
        result = self.result
        self.log(f"loading {len(preload)} events, then {len(sample)} timed single PUTs")
        preloaded: dict[str, Timing] = {}
        first_read = 0.0
        for server in self.servers:
            if server is self.radicale and self.files:
                preloaded[server.label], first_read = await preload_radicale_files(
                    self.http, server, preload, self.checks
                )
            else:
                preloaded[server.label] = await put_events(
                    self.http, server, preload, self.concurrency, self.checks
                )
            self.log(f"  {server.label} preload: {preloaded[server.label].wall:.1f} s")
        for server in self.servers:
            result.record("preload", server, preloaded[server.label])
            result.memory[server.label]["load_peak_kib"] = server.proc_status()["VmHWM"]
            server.reset_peak()
        for server in self.servers:
            timing = await put_events(self.http, server, sample, self.concurrency, self.checks)
            result.record(f"PUT, last {len(sample)} events (events/s)", server, timing)
            pre = preloaded[server.label]
            if pre.count and not pre.note:
                whole = Timing(pre.samples + timing.samples, pre.wall + timing.wall, self.n)
                result.record(f"PUT, all {self.n} events (events/s)", server, whole)
            self.log(f"  {server.label} sample of {len(sample)} PUTs: {timing.wall:.1f} s")
        if self.files:
            gateway_s = preloaded["gateway"].wall
            gateway_s += result.operations[f"PUT, last {len(sample)} events (events/s)"][
                "gateway"
            ].wall
            result.notes.append(
                f"Radicale was NOT loaded through PUT: {len(preload)} events were written as "
                f".ics files into its collection folder ({preloaded['Radicale'].wall:.1f} s), "
                f"then its first PROPFIND Depth 1 built its item cache ({first_read:.1f} s). "
                f"The gateway got all {self.n} events through single PUTs ({gateway_s:.1f} s). "
                f"The PUT rows compare the last {len(sample)} single PUTs, into the same "
                "calendar on both."
            )

    async def propfind(self) -> None:
        def check(server: Server, label: str, reply: Reply) -> None:
            members = self.multistatus(server, label, reply)
            if members is not None:
                self.checks.same_names(server, label, self.names, (m.name for m in members))

        await self.measure(
            "PROPFIND Depth 1 (getetag, getcontenttype)",
            lambda s: (
                "PROPFIND",
                s.calendar,
                propfind_body("getetag", "getcontenttype"),
                {**XML, "Depth": "1"},
            ),
            check,
        )

    async def week_query(self) -> None:
        mid = FIRST_MONDAY + timedelta(weeks=self.result.weeks // 2)
        start = mid.replace(tzinfo=BERLIN)
        end = (mid + timedelta(weeks=1)).replace(tzinfo=BERLIN)
        want = expected_in(self.events, start, end)
        body = week_query_body(start, end)

        def check(server: Server, label: str, reply: Reply) -> None:
            label += f" calendar-query week of {start:%Y-%m-%d}"
            members = self.multistatus(server, label, reply)
            if members is None:
                return
            self.checks.same_names(server, label, want, (m.name for m in members))
            empty = [m.name for m in members if not m.data or "BEGIN:VEVENT" not in m.data]
            self.checks.expect(not empty, server, label, "calendar-data for every href", empty[:5])

        await self.measure(
            f"calendar-query, one week ({len(want)} events)",
            lambda s: ("REPORT", s.calendar, body, {**XML, "Depth": "1"}),
            check,
        )

    async def multiget(self) -> None:
        picked = self.events[:: max(1, self.n // 50)][:50]
        want = {e.name for e in picked}

        def check(server: Server, label: str, reply: Reply) -> None:
            label += f" calendar-multiget of {len(picked)} hrefs"
            members = self.multistatus(server, label, reply)
            if members is None:
                return
            found = (m.name for m in members if m.status == 200)
            self.checks.same_names(server, label, want, found)
            wrong = [
                m.name
                for m in members
                if not m.data or f"UID:{m.name.removesuffix('.ics')}" not in m.data
            ]
            self.checks.expect(not wrong, server, label, "each object's calendar-data", wrong[:5])

        await self.measure(
            f"calendar-multiget, {len(picked)} hrefs",
            lambda s: (
                "REPORT",
                s.calendar,
                multiget_body(s.object_path(e.name) for e in picked),
                {**XML, "Depth": "1"},
            ),
            check,
        )

    def check_ics(self, server: Server, label: str, reply: Reply) -> None:
        if not self.checks.expect(reply.status == 200, server, label, "200", _body_excerpt(reply)):
            return
        got = ics_uids(reply.body)
        self.checks.expect(
            len(got) == self.n and {u + ".ics" for u in got} == self.names,
            server,
            label,
            f"{self.n} VEVENTs, one per generated UID",
            f"{len(got)} VEVENTs, {len({u + '.ics' for u in got} & self.names)} of the UIDs",
        )

    async def whole_calendar(self) -> None:
        await self.measure(
            "GET whole calendar as ICS, unchanged",
            lambda s: ("GET", s.feed, None, {}),
            self.check_ics,
        )
        # The first GET after a change: the gateway renders its feed again.
        rounds = max(3, self.repeats // 5)
        samples: dict[str, list[float]] = {s.label: [] for s in self.servers}
        for event in [next(self.to_change) for _ in range(rounds)]:
            self.revision += 1
            for server in self.servers:
                await self.change_one(server, event)
                reply = await self.call(server, ("GET", server.feed, None, {}))
                samples[server.label].append(reply.seconds)
                self.check_ics(server, f"GET {server.feed.split('?')[0]} after a change", reply)
        for server in self.servers:
            times = samples[server.label]
            op = f"GET whole calendar as ICS, first after a change ({rounds} rounds)"
            self.result.record(op, server, Timing(times, sum(times), len(times)))

    async def sync_token(self, server: Server) -> str | None:
        label = f"PROPFIND {server.calendar} Depth: 0 (DAV:sync-token)"
        body = propfind_body("sync-token")
        reply = await self.call(server, ("PROPFIND", server.calendar, body, {**XML, "Depth": "0"}))
        token = None
        if reply.status == 207:
            token = ET.fromstring(reply.body).findtext(f".//{D}sync-token")
        self.checks.expect(bool(token), server, label, "207 with a token", _body_excerpt(reply))
        return token

    async def sync_collection(self) -> None:
        """Each round: PUT one change, then (timed) sync-collection with the
        token from before the change; its answer gives the next round's token."""
        tokens = {s.label: await self.sync_token(s) for s in self.servers}
        samples: dict[str, list[float]] = {s.label: [] for s in self.servers}
        for event in [next(self.to_change) for _ in range(self.repeats)]:
            self.revision += 1
            for server in self.servers:
                token = tokens[server.label]
                if token is None:
                    continue
                await self.change_one(server, event)
                reply = await self.call(server, ("REPORT", server.calendar, sync_body(token), XML))
                samples[server.label].append(reply.seconds)
                label = (
                    f"REPORT {server.calendar} sync-collection with the token from before "
                    f"PUT {server.object_path(event.name)}"
                )
                members = self.multistatus(server, label, reply)
                if members is None:
                    continue
                self.checks.same_names(server, label, {event.name}, (m.name for m in members))
                new = parse_multistatus(reply.body)[1]
                self.checks.expect(bool(new) and new != token, server, label, "a new token", new)
                tokens[server.label] = new
        for server in self.servers:
            times = samples[server.label]
            if times:
                op = "sync-collection after one change"
                self.result.record(op, server, Timing(times, sum(times), len(times)))

    def memory(self) -> None:
        for server in self.servers:
            status = server.proc_status()
            self.result.memory[server.label]["after_load_peak_kib"] = status["VmHWM"]
            self.result.memory[server.label]["end_rss_kib"] = status["VmRSS"]

    def peaks(self, phase: str) -> str:
        """Record each server's VmHWM after a phase (it only grows): which
        phase pushed the peak shows in the JSON."""
        shown = []
        for server in self.servers:
            peak = server.proc_status()["VmHWM"]
            self.result.memory[server.label][f"peak_after_{phase}_kib"] = peak
            shown.append(f"{server.label} {_mib(peak)}")
        return "VmHWM MiB: " + ", ".join(shown)

    async def all(self) -> RunResult:
        await self.setup()
        await self.load()
        self.log(f"  load done; {self.peaks('load')}")
        for phase in (
            self.propfind,
            self.week_query,
            self.multiget,
            self.whole_calendar,
            self.sync_collection,
        ):
            await phase()
            self.log(f"  {phase.__name__} done; {self.peaks(phase.__name__)}")
        self.memory()
        return self.result


async def run_one(
    n: int,
    *,
    concurrency: int,
    repeats: int,
    put_sample: int | None,
    files_above: int,
    checks: Checks,
) -> RunResult:
    with tempfile.TemporaryDirectory(prefix="caldav-bench-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "gateway").mkdir()
        (tmp / "radicale").mkdir()
        servers: list[Server] = []
        try:
            servers.append(start_gateway(tmp / "gateway"))
            servers.append(start_radicale(tmp / "radicale"))
            async with aiohttp.ClientSession(
                headers={"Authorization": aiohttp.encode_basic_auth(USER, PASSWORD)},
                timeout=aiohttp.ClientTimeout(total=900),
                connector=aiohttp.TCPConnector(limit=concurrency),
            ) as http:
                run = Run(
                    n,
                    http,
                    servers[0],
                    servers[1],
                    concurrency=concurrency,
                    repeats=repeats,
                    put_sample=put_sample,
                    files_above=files_above,
                    checks=checks,
                )
                return await run.all()
        finally:
            for server in servers:
                server.stop()


# -- output ------------------------------------------------------------------------------


def _mib(kib: int) -> str:
    return f"{kib / 1024:.1f}"


def table(result: RunResult, repeats: int, concurrency: int) -> str:
    rows = [
        f"### {result.events} events (over {result.weeks} weeks), {repeats} repeats per read",
        "",
        "| operation | gateway median (ms) | Radicale median (ms) "
        "| gateway ops/s | Radicale ops/s | Radicale/gateway |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for op, by_server in result.operations.items():
        if op == "preload":
            continue
        g, r = by_server.get("gateway"), by_server.get("Radicale")
        cells = [
            f"{g.median_ms:.1f}" if g else "-",
            f"{r.median_ms:.1f}" if r else "-",
            f"{g.per_s:.0f}" if g else "-",
            f"{r.per_s:.0f}" if r else "-",
        ]
        if g and r:
            # PUTs run concurrently: compare throughput; reads run one at a time: medians.
            ratio = g.per_s / r.per_s if "PUT" in op else r.median_ms / g.median_ms
            cells.append(f"{ratio:.1f}x")
        else:
            cells.append("-")
        rows.append(f"| {op} | " + " | ".join(cells) + " |")
    mem = result.memory
    for key, what in (
        ("startup_peak_kib", "peak RSS after start-up and first sign-in (VmHWM, MiB)"),
        ("load_peak_kib", "peak RSS while preloading (VmHWM, MiB)"),
        ("after_load_peak_kib", "peak RSS after preloading: PUT sample + reads (VmHWM, MiB)"),
        ("end_rss_kib", "RSS at the end (VmRSS, MiB)"),
    ):
        g_kib = mem.get("gateway", {}).get(key)
        r_kib = mem.get("Radicale", {}).get(key)
        if g_kib is None or r_kib is None:
            continue
        rows.append(f"| {what} | {_mib(g_kib)} | {_mib(r_kib)} | | | {r_kib / g_kib:.1f}x |")
    rows += [
        "",
        f"PUT rows: median latency of one PUT with {concurrency} in flight; ops/s = events/s; "
        "ratio = gateway events/s / Radicale events/s. Reads, one at a time: ops/s = repeats / "
        "their total time; ratio = Radicale median / gateway median.",
        *(f"Note: {note}" for note in result.notes),
    ]
    return "\n".join(rows)


def memory_table(results: Sequence[RunResult]) -> str:
    """Peak RSS per N after each group of phases (VmHWM only grows, and was
    reset after preloading): the PUT sample, then the CalDAV reads, then the
    whole calendar as ICS (and the sync-collection, which reads little)."""
    columns = (
        ("peak_after_load_kib", "PUT sample"),
        ("peak_after_multiget_kib", "+ CalDAV reads"),
        ("after_load_peak_kib", "+ whole calendar as ICS"),
    )
    servers = ("gateway", "Radicale")
    head = [f"{server}: {what}" for server in servers for _, what in columns]
    rows = [
        "### Peak RSS as N grows (MiB, VmHWM after preloading)",
        "",
        "| events | " + " | ".join(head) + " |",
        "| ---: |" + " ---: |" * len(head),
    ]
    for r in results:
        cells = []
        for server in servers:
            memory = r.memory.get(server, {})
            for key, _ in columns:
                kib = memory.get(key)
                cells.append(_mib(kib) if kib is not None else "-")
        rows.append(f"| {r.events} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def as_json(results: Sequence[RunResult], args: argparse.Namespace) -> dict[str, Any]:
    return {
        "meta": {
            "command": " ".join(sys.argv),
            "python": platform.python_version(),
            "radicale": version("radicale"),
            "calgateway": version("calgateway"),
            "cpus": os.cpu_count(),
            "concurrency": args.concurrency,
            "repeats": args.repeat,
            "put_sample": args.put_sample,
            "radicale_files_above": args.radicale_files_above,
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
        },
        "runs": [
            {
                "events": r.events,
                "weeks": r.weeks,
                "operations": {
                    op: {label: t.as_json() for label, t in by.items()}
                    for op, by in r.operations.items()
                },
                "memory_kib": r.memory,
                "notes": r.notes,
            }
            for r in results
        ],
    }


async def run(args: argparse.Namespace) -> int:
    # SIGTERM/SIGINT cancel the run, so the servers are stopped on the way out
    # (SIGINT too: a shell starting us in the background ignores it for us).
    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    assert task is not None
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, task.cancel)
    checks = Checks()
    results = []
    for n in args.events:
        started = time.perf_counter()
        result = await run_one(
            n,
            concurrency=args.concurrency,
            repeats=args.repeat,
            put_sample=args.put_sample,
            files_above=args.radicale_files_above,
            checks=checks,
        )
        results.append(result)
        print(f"[{n}] finished in {time.perf_counter() - started:.0f} s\n", flush=True)
    print(
        f"CalDAV on loopback, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"Radicale {version('radicale')} (defaults, auth none), one aiohttp client, "
        f"{args.concurrency} concurrent PUTs, reads one at a time.\n"
    )
    for result in results:
        print(table(result, args.repeat, args.concurrency) + "\n")
    if len(results) > 1:
        print(memory_table(results) + "\n")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:  # noqa: ASYNC230 - once, at the end
            json.dump(as_json(results, args), out, indent=2)
        print(f"raw numbers: {args.json}")
    if checks.failures:
        print(f"\n{len(checks.failures)} CHECK(S) FAILED:", file=sys.stderr)
        for failure in checks.failures:
            print("- " + failure, file=sys.stderr)
        return 1
    print("All answers checked: both servers agree with the generated data.")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--events", type=int, nargs="+", default=[1000, 10000], help="N (default: 1000 10000)"
    )
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent PUTs")
    parser.add_argument("--repeat", type=int, default=20, help="timed repeats per read")
    parser.add_argument(
        "--put-sample",
        type=int,
        help="last PUTs timed one by one on both servers "
        "(default: 500, or 100 when Radicale is preloaded with files)",
    )
    parser.add_argument(
        "--radicale-files-above",
        type=int,
        default=2000,
        help="above this N, preload Radicale by writing files, not PUT (see above)",
    )
    parser.add_argument("--json", metavar="FILE", help="save raw numbers as JSON")
    args = parser.parse_args()
    try:
        sys.exit(asyncio.run(run(args)))
    except asyncio.CancelledError:
        sys.exit("interrupted; both servers stopped")


if __name__ == "__main__":
    main()
