"""SQLite in one process, PostgreSQL with one replica, PostgreSQL with three
replicas: the same requests against each, side by side in one run.

    .venv/bin/python -m bench.replicas                 # 10,000 events (~2.5 min, 2 cores)
    .venv/bin/python -m bench.replicas --quick         # a smoke run (~20 s)
    .venv/bin/python -m bench.replicas --json out.json

What it does, in order:

1. Loads N events (``bench.caldav_vs_radicale``'s data: half-hour slots over
   a year, weekly series, VTIMEZONEs, alarms) once, with ``calgateway
   import`` into a SQLite file, then ``calgateway copy-store`` from that file
   into a new SQLite file and into two databases of a PostgreSQL server the
   bench starts itself (``tests.pgserver``), followed by ``ANALYZE`` (what
   autovacuum does within a minute of a bulk load). Every set-up thus
   starts from the same store. Loading is not measured.
2. Runs the set-ups ONE AFTER THE OTHER, not side by side: the machine this
   was written on has 2 cores, and servers measured at the same time would
   take CPU from each other (and from the one PostgreSQL they share), so
   their figures would measure the scheduler. For each set-up it starts
   real ``calgateway serve`` processes (``tests.serving``,
   ``tests.replicas.cluster``; the three replicas sit behind nothing: the
   bench client sends its requests to them in turn), measures, and stops
   them. ``--rounds`` times (3), the set-ups taking turns, so that a slow
   spell of a shared machine hits each set-up in some round rather than
   one set-up in its only round; each set-up keeps its store across rounds.
3. Measures, each answer checked against the generated data:
   - a CalDAV calendar-query REPORT for one week (calendar-data included),
     ``--repeats`` times after one warm-up per process;
   - a sync-collection REPORT with the token from before ``--changes``
     CalDAV PUTs that changed events (``--repeats`` rounds): its answer
     must name exactly the changed objects, and its new token is the next
     round's;
   - ``--bookings`` API bookings (``POST /api/v1/bookings``) from
     ``--clients`` concurrent clients into the same N-event calendar, in
     non-overlapping one-hour slots after the data: every answer should be
     201, anything else (or a client error) is counted; and the CPU time the
     gateway processes and PostgreSQL's processes spent meanwhile
     (``/proc/PID/stat``), per booking;
   - the peak RSS (``VmHWM``) of each server process (PostgreSQL's own
     processes are not counted: their shared memory makes a sum misleading).
4. Prints one Markdown table, the three set-ups side by side, each figure
   with its ratio to SQLite's (bookings/s: the median round; latencies:
   p50 and p99 of every round's samples together). A wrong answer makes the
   run exit 1 after the table (its figures are then not to be used).

PostgreSQL runs with ``synchronous_commit=off`` (fsync and full-page writes
on): a commit is answered before its WAL reaches the disk, as the SQLite
store's ``journal_mode=WAL`` with ``synchronous=NORMAL`` does too (a power
loss may lose the last commits, never corrupts). ``--synchronous-commit on``
measures PostgreSQL's default instead.

Every wait is bounded (server start, each request, each command); servers
are stopped and temporary folders removed in ``finally``; ports come from
``tests.net.free_port``. Absolute numbers depend on the machine; compare
the ratios of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, timedelta
from pathlib import Path

import aiohttp
import psycopg

from bench.caldav_vs_radicale import (
    BERLIN,
    CAL_HEAD,
    CAL_TAIL,
    CRLF,
    FIRST_MONDAY,
    VTIMEZONE,
    Event,
    expected_in,
    make_events,
    parse_multistatus,
    propfind_body,
    sync_body,
    week_query_body,
)
from gateway.web.auth import hash_password
from tests.net import LOOPBACK, free_port
from tests.pgserver import PostgresServer, _start, _stop, find_binaries
from tests.replicas.cluster import replica_config, running_cluster, wait_healthy
from tests.serving import serving

RESOURCE = "bench"
USER = "bench"
PASSWORD = "bench-password-0123456789"  # a throwaway loopback account
API_TOKEN = "bench-api-token-0123456789abcdef"
COMMAND_TIMEOUT = 900.0  # import / copy-store of the largest sizes on a busy machine
REQUEST_TIMEOUT = 120.0  # one request, however loaded the machine
MS = 1000.0
MIB = 1024.0

CALENDAR = f"/dav/calendars/{RESOURCE}/"
XML = {"Content-Type": "application/xml; charset=utf-8"}
ICS = {"Content-Type": "text/calendar; charset=utf-8"}
API = {"Authorization": f"Bearer {API_TOKEN}"}
DAV = {"Authorization": aiohttp.encode_basic_auth(USER, PASSWORD)}


@dataclass(frozen=True)
class Setup:
    label: str
    backend: str  # "sqlite" or "postgresql"
    replicas: int


SETUPS = (
    Setup("SQLite, 1 process", "sqlite", 1),
    Setup("PostgreSQL, 1 replica", "postgresql", 1),
    Setup("PostgreSQL, 3 replicas", "postgresql", 3),
)


@dataclass(frozen=True)
class Options:
    events: int
    bookings: int
    clients: int
    repeats: int
    changes: int
    rounds: int
    sync_commit: str  # PostgreSQL's synchronous_commit


# -- figures -----------------------------------------------------------------------------


def percentile(samples: Sequence[float], p: float) -> float:
    """Nearest rank: the smallest sample at or above ``p`` of them (of 50
    samples, p99 is the largest)."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(p * len(ordered)) - 1)]


@dataclass
class Latencies:
    seconds: list[float] = field(default_factory=list)

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.seconds) * MS

    @property
    def p99_ms(self) -> float:
        return percentile(self.seconds, 0.99) * MS


@dataclass
class Figures:
    setup: Setup
    bookings_per_s: list[float] = field(default_factory=list)  # one per round
    booking_cpu_s: list[float] = field(default_factory=lambda: [0.0, 0.0])  # gateway, PostgreSQL
    booking: Latencies = field(default_factory=Latencies)
    booking_errors: Counter[str] = field(default_factory=Counter)
    query: Latencies = field(default_factory=Latencies)
    query_events: int = 0
    sync: Latencies = field(default_factory=Latencies)
    peaks_kib: list[list[int]] = field(default_factory=list)  # each round: each process's VmHWM

    @property
    def largest_peak_kib(self) -> int:
        return max(max(peaks) for peaks in self.peaks_kib)

    @property
    def all_peaks_kib(self) -> int:
        return max(sum(peaks) for peaks in self.peaks_kib)


@dataclass
class Checks:
    """Wrong answers: each one printed at once, all of them fail the run."""

    failures: list[str] = field(default_factory=list)

    def expect(self, ok: bool, setup: Setup, what: str, expected: object, got: object) -> None:
        if not ok:
            text = f"{setup.label}: {what}\n    expected: {expected}\n    got: {str(got)[:600]}"
            self.failures.append(text)
            print("MISMATCH " + text, file=sys.stderr, flush=True)


# -- the data and the stores -------------------------------------------------------------


def import_file(events: Sequence[Event]) -> bytes:
    """All events as one calendar export (one VTIMEZONE at the top)."""
    vevents = [e.vevent() for e in events]
    return CRLF.join([CAL_HEAD, VTIMEZONE, *vevents, CAL_TAIL]).encode("utf-8")


def settings(storage_url: str, port: int) -> str:
    """The settings of one set-up; ``tests.replicas.cluster.replica_config``
    turns them into the replicas' (storage, port and address replaced)."""
    return f"""\
server:
  host: {LOOPBACK}
  port: {port}
  base_url: http://{LOOPBACK}:{port}
  max_connections_per_address: 0
storage:
  url: "{storage_url}"
defaults:
  timezone: Europe/Berlin
users:
  - name: {USER}
    password_hash: "{hash_password(PASSWORD)}"
    access: {{{RESOURCE}: read-write}}
api_tokens:
  - name: bench
    token: {API_TOKEN}
resources:
  - id: {RESOURCE}
    name: Bench
    email: bench@example.com
    timezone: Europe/Berlin
"""


def calgateway(*args: str) -> str:
    """Run a ``calgateway`` command (bounded); its stdout, or exit with its stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(
            f"calgateway {' '.join(args[:2])} failed ({done.returncode}):\n"
            f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
    return done.stdout


def load(folder: Path, events: Sequence[Event], postgres: PostgresServer) -> dict[str, str]:
    """Each set-up's copy of the loaded calendar: its storage URL by label."""
    started = time.monotonic()
    source = folder / "source.sqlite3"
    config = folder / "source.yaml"
    config.write_text(settings(f"sqlite:///{source}", free_port()), encoding="utf-8")
    export = folder / "export.ics"
    export.write_bytes(import_file(events))
    calgateway("import", RESOURCE, str(export), "--config", str(config), "--problems-only")
    log(f"imported {len(events)} events into SQLite in {time.monotonic() - started:.1f} s")
    urls: dict[str, str] = {}
    for setup in SETUPS:
        began = time.monotonic()
        if setup.backend == "sqlite":
            url = f"sqlite:///{folder / 'sqlite.sqlite3'}"
        else:
            url = postgres.url(postgres.create_database())
        calgateway("copy-store", "--from", f"sqlite:///{source}", "--to", url)
        if setup.backend == "postgresql":
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("ANALYZE")
        urls[setup.label] = url
        log(f"copied into {setup.label}'s store in {time.monotonic() - began:.1f} s")
    return urls


# -- the servers -------------------------------------------------------------------------


@dataclass
class Running:
    """The processes of one set-up, and a client that sends each request to
    the next of them in turn (no proxy in front)."""

    urls: list[str]
    pids: list[int]
    http: aiohttp.ClientSession
    _turn: Iterator[int] = field(default_factory=itertools.count)

    def next_url(self) -> str:
        return self.urls[next(self._turn) % len(self.urls)]

    def peaks_kib(self) -> list[int]:
        return [vm_hwm_kib(pid) for pid in self.pids]


def cpu_ticks(pids: Sequence[int]) -> dict[int, int]:
    """User + system CPU of each process, its reaped children's included
    (``/proc/PID/stat`` fields 14-17), in clock ticks; gone ones left out."""
    ticks = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            ticks[pid] = sum(int(value) for value in fields[11:15])
    return ticks


def postgres_pids(postgres: PostgresServer) -> list[int]:
    """The postmaster and its children (a backend per connection, the
    writer, the WAL writer, autovacuum...)."""
    postmaster = int((postgres.data_dir / "postmaster.pid").read_text().split()[0])
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(stat.read_text().rpartition(")")[2].split()[1]) == postmaster:
                children.append(int(stat.parent.name))
    return [postmaster, *children]


@dataclass
class CpuMeter:
    """CPU seconds the gateway's processes and PostgreSQL's spend between
    ``start`` and ``stop`` (a process started meanwhile counts from zero;
    one that ended is in the postmaster's reaped children)."""

    gateway_pids: list[int]
    postgres: PostgresServer
    _before: tuple[dict[int, int], dict[int, int]] = field(default_factory=lambda: ({}, {}))

    def _now(self) -> tuple[dict[int, int], dict[int, int]]:
        return cpu_ticks(self.gateway_pids), cpu_ticks(postgres_pids(self.postgres))

    def start(self) -> None:
        self._before = self._now()

    def stop(self) -> tuple[float, float]:
        tick = os.sysconf("SC_CLK_TCK")
        spent = []
        for before, after in zip(self._before, self._now(), strict=True):
            spent.append(sum(v - before.get(pid, 0) for pid, v in after.items()) / tick)
        return spent[0], spent[1]


def vm_hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmHWM for process {pid}")


@contextlib.asynccontextmanager
async def started(setup: Setup, url: str, folder: Path) -> AsyncIterator[Running]:
    """The set-up's servers, ready (bounded by ``tests.serving``'s and the
    cluster's timeouts); stopped on exit, whatever happened."""
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        if setup.backend == "sqlite":
            config = folder / "sqlite.yaml"
            config.write_text(settings(url, free_port()), encoding="utf-8")
            async with serving(config) as served:
                await wait_healthy(http, served.url)
                yield Running([served.url], [served.process.pid], http)
            return
        place = folder / f"replicas-{setup.replicas}"
        place.mkdir(exist_ok=True)
        config = replica_config(place, settings("sqlite:///unused", 0), url)
        async with running_cluster(config, setup.replicas) as cluster:
            pids = [cluster.served(i).process.pid for i in range(setup.replicas)]
            yield Running(cluster.urls, pids, http)


# -- the measurements --------------------------------------------------------------------


@dataclass
class Bench:
    """What every measurement needs: the options, the data, the checks."""

    options: Options
    events: list[Event]
    weeks: int  # the data spans this many weeks from FIRST_MONDAY
    postgres: PostgresServer
    checks: Checks = field(default_factory=Checks)
    revision: int = 0  # of the last change PUT: each one's content is new


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    seconds: float


async def send(
    running: Running, method: str, path: str, body: bytes, headers: dict[str, str]
) -> Answer:
    begun = time.perf_counter()
    async with running.http.request(
        method, running.next_url() + path, data=body, headers=headers
    ) as response:
        data = await response.read()
        return Answer(response.status, data, time.perf_counter() - begun)


def names(answer: Answer) -> list[str]:
    return sorted(m.name for m in parse_multistatus(answer.body)[0])


async def week_query(bench: Bench, running: Running, figures: Figures) -> None:
    monday = FIRST_MONDAY + timedelta(weeks=bench.weeks // 2)
    start = monday.replace(tzinfo=BERLIN)
    end = (monday + timedelta(weeks=1)).replace(tzinfo=BERLIN)
    want = sorted(expected_in(bench.events, start, end))
    figures.query_events = len(want)
    body = week_query_body(start, end)
    what = f"calendar-query for the week of {start:%Y-%m-%d}"
    warm_ups = len(running.urls)  # one on each process: its caches, its sign-in
    for n in range(warm_ups + bench.options.repeats):
        answer = await send(running, "REPORT", CALENDAR, body, {**DAV, **XML, "Depth": "1"})
        if n >= warm_ups:
            figures.query.seconds.append(answer.seconds)
        got = names(answer) if answer.status == 207 else answer.status
        bench.checks.expect(got == want, figures.setup, what, f"{len(want)} hrefs", got)


async def sync_token(running: Running) -> str:
    body = propfind_body("sync-token")
    answer = await send(running, "PROPFIND", CALENDAR, body, {**DAV, **XML, "Depth": "0"})
    token = None
    if answer.status == 207:
        token = ET.fromstring(answer.body).findtext(".//{DAV:}sync-token")
    if not token:
        raise SystemExit(f"no sync-token from PROPFIND: {answer.status} {answer.body[:300]!r}")
    return token


async def sync_collection(bench: Bench, running: Running, figures: Figures) -> None:
    """Each round: ``changes`` PUTs that change events (each to the next
    process), then the timed sync-collection REPORT (to the next one) with
    the token from before them. Events changed are spread over the data."""
    changes, repeats = bench.options.changes, bench.options.repeats
    singles = [e for e in bench.events if not e.recurring]
    to_change = itertools.cycle(singles[:: max(1, len(singles) // (changes * (repeats + 1)))])
    token = await sync_token(running)
    for n in range(repeats + 1):  # the first round warms up
        changed = [next(to_change) for _ in range(changes)]
        for event in changed:
            bench.revision += 1
            path = CALENDAR + event.name
            answer = await send(running, "PUT", path, event.ics(bench.revision), {**DAV, **ICS})
            bench.checks.expect(answer.status == 204, figures.setup, f"PUT {path}", 204, answer)
        answer = await send(running, "REPORT", CALENDAR, sync_body(token), {**DAV, **XML})
        if n:
            figures.sync.seconds.append(answer.seconds)
        what = f"sync-collection after {changes} changes"
        got = names(answer) if answer.status == 207 else answer.status
        want = sorted({e.name for e in changed})
        bench.checks.expect(got == want, figures.setup, what, want, got)
        new = parse_multistatus(answer.body)[1] if answer.status == 207 else None
        bench.checks.expect(bool(new) and new != token, figures.setup, what, "a new token", new)
        token = new or await sync_token(running)


async def bookings(bench: Bench, running: Running, figures: Figures, round_: int) -> None:
    """``bookings`` one-hour bookings in consecutive hours after the data
    (each round after the last round's), taken by ``clients`` workers from
    one queue: no two overlap."""
    options = bench.options
    after = FIRST_MONDAY + timedelta(weeks=bench.weeks + 4)
    first = after.replace(tzinfo=BERLIN).astimezone(UTC)
    queue = iter(range(round_ * options.bookings, (round_ + 1) * options.bookings))

    async def client() -> None:
        for n in queue:
            start = first + timedelta(hours=n)
            body = {
                "resource": RESOURCE,
                "start": start.isoformat(),
                "end": (start + timedelta(hours=1)).isoformat(),
                "title": f"Booking {n}",
            }
            begun = time.perf_counter()
            try:
                async with running.http.post(
                    running.next_url() + "/api/v1/bookings", json=body, headers=API
                ) as response:
                    await response.read()
                    status = str(response.status)
            except (aiohttp.ClientError, TimeoutError) as exc:
                status = type(exc).__name__
            figures.booking.seconds.append(time.perf_counter() - begun)
            if status != "201":
                figures.booking_errors[status] += 1

    cpu = CpuMeter(running.pids, bench.postgres)
    cpu.start()
    begun = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(options.clients)))
    figures.bookings_per_s.append(options.bookings / (time.perf_counter() - begun))
    gateway_s, postgres_s = cpu.stop()
    figures.booking_cpu_s[0] += gateway_s
    figures.booking_cpu_s[1] += postgres_s
    errors = dict(figures.booking_errors)
    bench.checks.expect(not errors, figures.setup, "bookings", "every one 201", errors)


async def measure(bench: Bench, figures: Figures, url: str, folder: Path, round_: int) -> None:
    """One round of every measurement on one set-up, added to ``figures``."""
    setup = figures.setup
    async with started(setup, url, folder) as running:
        log(f"round {round_ + 1}, {setup.label}: {len(running.urls)} process(es) ready")
        await week_query(bench, running, figures)
        await sync_collection(bench, running, figures)
        await bookings(bench, running, figures, round_)
        figures.peaks_kib.append(running.peaks_kib())
        repeats = bench.options.repeats
        query = statistics.median(figures.query.seconds[-repeats:]) * MS
        sync = statistics.median(figures.sync.seconds[-repeats:]) * MS
        log(
            f"  calendar-query p50 {query:.1f} ms, sync-collection p50 {sync:.1f} ms, "
            f"{figures.bookings_per_s[-1]:.0f} bookings/s"
        )


# -- the table ---------------------------------------------------------------------------


def table(results: Sequence[Figures], options: Options) -> str:
    """One row per figure, one column per set-up; after each PostgreSQL
    figure its ratio to SQLite's (this / SQLite)."""
    base = results[0]

    def row(name: str, value: Callable[[Figures], float], fmt: str) -> str:
        cells = []
        for figures in results:
            this, ref = value(figures), value(base)
            cell = format(this, fmt)
            if figures is not base and ref:
                cell += f" ({this / ref:.2f}x)"
            cells.append(cell)
        return f"| {name} | " + " | ".join(cells) + " |"

    def errors(figures: Figures) -> str:
        return str(sum(figures.booking_errors.values()))

    def cpu_ms(which: int) -> Callable[[Figures], float]:
        def per_booking(figures: Figures) -> float:
            return figures.booking_cpu_s[which] * MS / (options.bookings * options.rounds)

        return per_booking

    return "\n".join(
        [
            "| measure | " + " | ".join(f.setup.label for f in results) + " |",
            "| --- | " + " | ".join("---:" for _ in results) + " |",
            row(
                f"API bookings/s ({options.clients} clients, {options.bookings} bookings; "
                f"median of {options.rounds} round(s))",
                lambda f: statistics.median(f.bookings_per_s),
                ".0f",
            ),
            "| API bookings/s, each round | "
            + " | ".join(", ".join(f"{r:.0f}" for r in f.bookings_per_s) for f in results)
            + " |",
            row("booking p50 (ms)", lambda f: f.booking.p50_ms, ".1f"),
            row("booking p99 (ms)", lambda f: f.booking.p99_ms, ".1f"),
            "| bookings not 201 | " + " | ".join(errors(f) for f in results) + " |",
            row("CPU per booking, gateway process(es) (ms)", cpu_ms(0), ".1f"),
            row("CPU per booking, PostgreSQL (ms)", cpu_ms(1), ".1f"),
            row(
                f"week calendar-query p50 (ms; {base.query_events} of {options.events} events)",
                lambda f: f.query.p50_ms,
                ".1f",
            ),
            row("week calendar-query p99 (ms)", lambda f: f.query.p99_ms, ".1f"),
            row(
                f"sync-collection delta p50 (ms; {options.changes} changes)",
                lambda f: f.sync.p50_ms,
                ".1f",
            ),
            row("sync-collection delta p99 (ms)", lambda f: f.sync.p99_ms, ".1f"),
            row("peak RSS, largest process (MiB)", lambda f: f.largest_peak_kib / MIB, ".0f"),
            row("peak RSS, all server processes (MiB)", lambda f: f.all_peaks_kib / MIB, ".0f"),
        ]
    )


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def as_json(bench: Bench, results: Sequence[Figures]) -> str:
    return json.dumps(
        {
            "options": asdict(bench.options),
            "cores": os.cpu_count(),
            "results": [
                {
                    "setup": asdict(f.setup),
                    "bookings_per_s": f.bookings_per_s,
                    "booking_cpu_s": {"gateway": f.booking_cpu_s[0], "pg": f.booking_cpu_s[1]},
                    "booking_s": f.booking.seconds,
                    "booking_errors": dict(f.booking_errors),
                    "query_events": f.query_events,
                    "query_s": f.query.seconds,
                    "sync_s": f.sync.seconds,
                    "peaks_kib": f.peaks_kib,
                }
                for f in results
            ],
            "failures": bench.checks.failures,
        },
        indent=2,
    )


# -- the run -----------------------------------------------------------------------------


async def measure_all(bench: Bench, stores: dict[str, str], folder: Path) -> list[Figures]:
    """Round after round, each set-up in turn: a slow spell of the (shared)
    machine then hits every set-up in some round, not one set-up's only."""
    results = [Figures(setup) for setup in SETUPS]
    for round_ in range(bench.options.rounds):
        for figures in results:
            await measure(bench, figures, stores[figures.setup.label], folder, round_)
    return results


def run(options: Options, json_path: Path | None) -> int:
    bin_dir = find_binaries()
    if bin_dir is None:
        raise SystemExit("PostgreSQL's initdb/pg_ctl not found: apt-get install postgresql")
    load_before = os.getloadavg()[0]
    events, weeks = make_events(options.events)
    durability = ("fsync=on", "full_page_writes=on", f"synchronous_commit={options.sync_commit}")
    postgres = _start(bin_dir, durability=durability)
    bench = Bench(options, events, weeks, postgres)
    try:
        with tempfile.TemporaryDirectory(prefix="replicas-bench-") as name:
            folder = Path(name)
            stores = load(folder, events, postgres)
            results = asyncio.run(measure_all(bench, stores, folder))
    finally:
        _stop(postgres)
    print(
        f"\n{options.events} events; {os.cpu_count()} cores, load average "
        f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after; Python "
        f"{platform.python_version()}; PostgreSQL {bin_dir.parent.name}, synchronous_commit="
        f"{options.sync_commit}; p50/p99 (nearest rank) of {options.rounds} round(s)' samples: "
        f"{options.rounds * options.repeats} queries and syncs, "
        f"{options.rounds * options.bookings} bookings; (n.nnx) = this set-up / SQLite\n"
    )
    print(table(results, options))
    if json_path is not None:
        json_path.write_text(as_json(bench, results), encoding="utf-8")
    if bench.checks.failures:
        print(f"\n{len(bench.checks.failures)} wrong answers: see MISMATCH above", file=sys.stderr)
        return 1
    return 0


# Sizes: (option, the full run's, the smoke run's); a size given on the
# command line wins over both.
SIZES = (("events", 10_000, 500), ("bookings", 800, 80), ("repeats", 50, 5), ("rounds", 3, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, help="in the calendar (10,000)")
    parser.add_argument("--bookings", type=int, help="API bookings per set-up and round (800)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent booking clients")
    parser.add_argument("--repeats", type=int, help="timed queries and syncs per round (50)")
    parser.add_argument("--changes", type=int, default=3, help="changes before each sync")
    parser.add_argument("--rounds", type=int, help="of every set-up, interleaved (3)")
    parser.add_argument(
        "--synchronous-commit",
        choices=("off", "on"),
        default="off",
        help="PostgreSQL's (off: as SQLite's synchronous=NORMAL; on: PostgreSQL's default)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 500 events, 80 bookings, 5 repeats, 1 round",
    )
    parser.add_argument("--json", type=Path, help="write every sample here")
    args = parser.parse_args()
    sizes = {
        name: getattr(args, name) or (quick if args.quick else full) for name, full, quick in SIZES
    }
    options = Options(
        **sizes,
        clients=args.clients,
        changes=args.changes,
        sync_commit=args.synchronous_commit,
    )
    sys.exit(run(options, args.json))


if __name__ == "__main__":
    main()
