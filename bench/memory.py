"""Where the gateway's memory goes: imports, then each phase at N events.

    .venv/bin/python -m bench.memory                    # 10,000 events (~2 min on 2 cores)
    .venv/bin/python -m bench.memory --events 2000 --top 8

1. Imports. In a fresh interpreter (``python -c``, nothing else loaded),
   imports each top-level package (libraries and the standard library) in
   the order ``calgateway serve`` first imports it (read from ``python -X
   importtime -c "import gateway.cli"``), then the gateway's own layers, and
   prints the RSS and its growth after each; a second fresh interpreter does
   the same with tracemalloc on (Python objects only: the rest of a
   package's RSS is its shared libraries and their data).
2. Phases. Starts the gateway (``gateway.cli.main(["serve", ...])``, what
   the ``calgateway`` script runs) with the settings of
   ``bench.caldav_vs_radicale`` (SQLite, no Google, no mail) and reads its
   ``VmRSS`` and the phase's peak (``VmHWM``, reset after each phase): idle
   after start, the first sign-in (argon2), N events PUT (8 concurrent), the
   CalDAV reads (PROPFIND Depth 1, a week's calendar-query, a multiget of
   50, an initial sync-collection), the whole calendar as .ics (the feed,
   twice), and what glibc's ``malloc_trim(0)`` gives back at the end. Then
   the same run with the server under tracemalloc (SIGUSR1 makes it dump a
   snapshot): the allocation sites that grew most in each phase, by line.

The RSS run and the traced run are separate: tracemalloc's own bookkeeping
would be counted in the RSS. Each phase's numbers are one process's; use
``--repeat`` and compare runs of one machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp

from bench.caldav_vs_radicale import (
    BERLIN,
    FIRST_MONDAY,
    PASSWORD,
    USER,
    XML,
    Checks,
    Server,
    _body_excerpt,
    call,
    make_events,
    multiget_body,
    parse_multistatus,
    propfind_body,
    put_events,
    sync_body,
    wait_ready,
    week_query_body,
    write_gateway_config,
)
from bench.caldav_vs_radicale import spawn_gateway as serve_gateway

MIB = 1024 * 1024
SMALL = MIB // 10  # import rows below this are left out of the table
SNAPSHOT_WAIT = 60.0  # a traced snapshot of a large heap takes a few seconds

# The gateway's own layers, imported after the libraries (each pulls in its parts).
OWN_MODULES = (
    "gateway.settings",
    "gateway.core.service",
    "gateway.store",
    "gateway.ical",
    "caldav_backend",
    "gateway.look",
    "gateway.front.console",
    "gateway.app",
    "gateway.serve",
    "gateway.cli",
)

# Runs in a fresh interpreter: imports argv[2:] in order, one JSON row each.
_IMPORT_PROBE = r"""
import importlib, json, sys, time
trace = sys.argv[1] == "trace"
if trace:
    import tracemalloc
    tracemalloc.start()
def rss():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
def row(name, ms):
    traced = tracemalloc.get_traced_memory()[0] if trace else 0
    print(json.dumps({"name": name, "rss": rss(), "traced": traced, "ms": ms}), flush=True)
row("python", 0.0)
for name in sys.argv[2:]:
    started = time.perf_counter()
    try:
        importlib.import_module(name)
    except ImportError:
        continue
    row(name, (time.perf_counter() - started) * 1000)
"""


# -- 1. imports ----------------------------------------------------------------------


def import_order() -> list[str]:
    """Top-level packages (the standard library's too) in the order ``import
    gateway.cli`` first loads them: a module is counted once, on the row of
    the first package that loads it, so asyncio and ssl get rows of their own
    instead of weighing on whichever library imports them first."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import gateway.cli"],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    own = {name.split(".")[0] for name in OWN_MODULES}
    seen: list[str] = []
    for line in out.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+\d+ \|\s*(\S+)", line)
        if match is None:
            continue
        top = match.group(1).split(".")[0]
        skip = top.startswith("_") or top in own
        if not skip and top != "sitecustomize" and top not in seen:
            seen.append(top)
    return seen


def probe_imports(names: Sequence[str], *, trace: bool) -> list[dict[str, Any]]:
    out = subprocess.run(
        [sys.executable, "-c", _IMPORT_PROBE, "trace" if trace else "rss", *names],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def import_table(names: Sequence[str]) -> str:
    plain = probe_imports(names, trace=False)
    traced = {str(row["name"]): float(row["traced"]) for row in probe_imports(names, trace=True)}
    lines = [
        "| imported (in order) | RSS after (MiB) | RSS growth (MiB) "
        "| Python objects growth (tracemalloc, MiB) | import ms |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    previous_rss = previous_traced = 0.0
    hidden: list[str] = []
    for row in plain:
        name = str(row["name"])
        traced_now = traced.get(name, previous_traced)
        small = max(row["rss"] - previous_rss, traced_now - previous_traced) < SMALL
        if small and name not in OWN_MODULES:
            hidden.append(name)  # still in the next row's "RSS after"
            continue
        lines.append(
            f"| {name} | {row['rss'] / MIB:.1f} | {(row['rss'] - previous_rss) / MIB:+.1f} "
            f"| {(traced_now - previous_traced) / MIB:+.1f} | {row['ms']:.0f} |"
        )
        previous_rss, previous_traced = row["rss"], traced_now
    lines.append(f"\nLeft out, each under {SMALL / MIB:.1f} MiB: {', '.join(hidden)}.")
    return "\n".join(lines)


# -- 2. phases -----------------------------------------------------------------------


# Runs ``calgateway serve`` (the console script's own ``main``) in a fresh
# interpreter, with two signal handlers: SIGUSR1 dumps a tracemalloc
# snapshot (when traced) to $CALGATEWAY_MEMORY_SNAPSHOT, written aside and
# renamed; SIGUSR2 calls glibc's malloc_trim(0), then touches ".trimmed".
_SERVE = r"""
import os, pathlib, signal, sys
target = pathlib.Path(os.environ["CALGATEWAY_MEMORY_SNAPSHOT"])
if sys.argv[1] == "trace":
    import tracemalloc
    tracemalloc.start(1)
    def dump(signum, frame):
        aside = target.with_suffix(".part")
        tracemalloc.take_snapshot().dump(str(aside))
        aside.rename(target)
    signal.signal(signal.SIGUSR1, dump)
def trim(signum, frame):
    import ctypes
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    target.with_suffix(".trimmed").touch()
signal.signal(signal.SIGUSR2, trim)
from gateway.cli import main
sys.exit(main(["serve", *sys.argv[2:]]))
"""


def spawn_gateway(tmp: Path, *, trace: bool) -> Server:
    """The gateway with the settings of ``bench.caldav_vs_radicale``, run by ``_SERVE``."""
    config, port = write_gateway_config(tmp)
    os.environ["CALGATEWAY_MEMORY_SNAPSHOT"] = str(tmp / "snapshot.tracemalloc")
    mode = "trace" if trace else "plain"
    return serve_gateway(tmp, config, port, [sys.executable, "-c", _SERVE, mode])


async def malloc_trim(server: Server) -> None:
    """Has the server call malloc_trim(0); returns once it has."""
    trimmed = server.storage.parent / "snapshot.trimmed"
    server.process.send_signal(signal.SIGUSR2)
    deadline = time.monotonic() + SNAPSHOT_WAIT
    while not trimmed.exists():
        if time.monotonic() > deadline or server.process.poll() is not None:
            raise SystemExit("no malloc_trim from the server:\n" + server.log_tail())
        await asyncio.sleep(0.1)
    trimmed.unlink()


async def take_snapshot(server: Server, path: Path) -> tracemalloc.Snapshot:
    path.unlink(missing_ok=True)  # noqa: ASYNC240 - the server is idle meanwhile
    server.process.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + SNAPSHOT_WAIT
    while not path.exists():  # noqa: ASYNC240
        if time.monotonic() > deadline or server.process.poll() is not None:
            raise SystemExit("no tracemalloc snapshot from the server:\n" + server.log_tail())
        await asyncio.sleep(0.1)
    return tracemalloc.Snapshot.load(str(path))


TRIMMED = "then malloc_trim(0) (measured, not adopted)"
PHASES = (
    "idle after start",
    "after the first sign-in",
    "after the PUTs",
    "after the CalDAV reads",
    "after the whole calendar as .ics",
)


async def run_phases(
    server: Server, n: int, on_phase: Callable[[str], Awaitable[None]]
) -> list[str]:
    """Drives ``server`` through PHASES, awaiting ``on_phase(name)`` after
    each. Returns the failed checks."""
    checks = Checks()
    events, _ = make_events(n)
    auth = {"Authorization": aiohttp.encode_basic_auth(USER, PASSWORD)}
    async with aiohttp.ClientSession(headers=auth) as http:
        await wait_ready(http, server)
        await on_phase(PHASES[0])
        body = propfind_body("resourcetype")
        reply = await call(http, server, "PROPFIND", server.calendar, body, XML)
        checks.expect(reply.status == 207, server, "sign-in", "207", _body_excerpt(reply))
        await on_phase(PHASES[1])
        await put_events(http, server, events, 8, checks)
        await on_phase(PHASES[2])
        depth1 = {**XML, "Depth": "1"}
        reply = await call(
            http, server, "PROPFIND", server.calendar, propfind_body("getetag"), depth1
        )
        members, _ = parse_multistatus(reply.body)
        checks.expect(len(members) == n, server, "PROPFIND Depth 1", str(n), str(len(members)))
        week = FIRST_MONDAY.replace(tzinfo=BERLIN) + timedelta(weeks=10)
        hrefs = [server.object_path(e.name) for e in events[:: max(1, n // 50)][:50]]
        for report in (
            week_query_body(week, week + timedelta(weeks=1)),
            multiget_body(hrefs),
            sync_body(""),
        ):
            reply = await call(http, server, "REPORT", server.calendar, report, depth1)
            checks.expect(reply.status == 207, server, "REPORT", "207", _body_excerpt(reply))
        await on_phase(PHASES[3])
        for _ in range(2):
            reply = await call(http, server, "GET", server.feed)
            checks.expect(reply.status == 200, server, "feed", "200", _body_excerpt(reply))
        await on_phase(PHASES[4])
    return checks.failures


async def rss_run(n: int) -> list[tuple[str, int, int]]:
    rows: list[tuple[str, int, int]] = []
    with tempfile.TemporaryDirectory(prefix="calgateway-memory-") as tmp:
        server = spawn_gateway(Path(tmp), trace=False)
        try:

            async def on_phase(name: str) -> None:
                status = server.proc_status()
                rows.append((name, status["VmRSS"], status["VmHWM"]))
                # The next row's peak is that phase's own (the sign-in's
                # argon2 would hide every later one).
                if not server.reset_peak():
                    raise SystemExit("cannot reset VmHWM (/proc/PID/clear_refs)")

            failures = await run_phases(server, n, on_phase)
            await malloc_trim(server)
            await on_phase(TRIMMED)
        finally:
            server.stop()
    if failures:
        raise SystemExit("checks failed:\n" + "\n".join(failures))
    return rows


async def traced_run(n: int, top: int) -> list[str]:
    out: list[str] = []
    with tempfile.TemporaryDirectory(prefix="calgateway-memory-") as tmp:
        snapshot_path = Path(tmp) / "snapshot.tracemalloc"
        server = spawn_gateway(Path(tmp), trace=True)
        previous: list[tracemalloc.Snapshot] = []
        try:

            async def on_phase(name: str) -> None:
                snap = await take_snapshot(server, snapshot_path)
                snap = snap.filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
                total = sum(stat.size for stat in snap.statistics("filename"))
                if previous:
                    diffs = snap.compare_to(previous[-1], "lineno")[:top]
                    out.append(f"\n{name}: Python objects {total / MIB:.1f} MiB; grew most at:\n")
                    out.append("| allocation site | growth (KiB) | blocks | now (KiB) |")
                    out.append("| --- | ---: | ---: | ---: |")
                    for diff in diffs:
                        frame = diff.traceback[0]
                        site = f"{_short_path(frame.filename)}:{frame.lineno}"
                        out.append(
                            f"| {site} | {diff.size_diff / 1024:+.0f} "
                            f"| {diff.count_diff:+d} | {diff.size / 1024:.0f} |"
                        )
                else:
                    out.append(f"{name}: Python objects {total / MIB:.1f} MiB")
                previous[:] = [snap]

            await run_phases(server, n, on_phase)
        finally:
            server.stop()
    return out


def _short_path(filename: str) -> str:
    for marker in ("site-packages/", "/work/main/", "python3.11/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


# -- the command -----------------------------------------------------------------------


async def run(args: argparse.Namespace) -> None:
    python = sys.version.split()[0]
    print(f"## Imports of `calgateway serve`, one fresh interpreter (Python {python})\n")
    print(import_table([*import_order(), *OWN_MODULES]))
    print(f"\n## `calgateway serve` (SQLite, no Google, no mail), {args.events} events\n")
    runs = [await rss_run(args.events) for _ in range(args.repeat)]
    header = " | ".join(f"run {i + 1}: RSS / phase's peak" for i in range(len(runs)))
    print(f"| MiB | {header} |")
    print("| --- |" + " ---: |" * len(runs))
    for i, phase in enumerate((*PHASES, TRIMMED)):
        cells = " | ".join(f"{r[i][1] / 1024:.1f} / {r[i][2] / 1024:.1f}" for r in runs)
        print(f"| {phase} | {cells} |")
    peaks = " | ".join(f"{max(row[2] for row in r) / 1024:.1f}" for r in runs)
    print(f"| peak of the run (VmHWM) | {peaks} |")
    if args.top:
        print("\n## tracemalloc, the same phases (a second run, traced)\n")
        print("\n".join(await traced_run(args.events, args.top)))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=1, help="RSS runs (default 1)")
    parser.add_argument(
        "--top", type=int, default=10, help="allocation sites per phase; 0: no traced run"
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
