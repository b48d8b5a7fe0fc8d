"""Booking API write rate and ICS feed latency of the gateway on loopback.

    .venv/bin/python -m bench.api_and_feed --bookings 1000
    .venv/bin/python -m bench.api_and_feed --clients 16 [--creates 3000] [--profile FILE]

Starts the real app (``create_app`` over a temporary YAML and SQLite file) on a
free loopback port, books N non-overlapping one-hour slots through the JSON
API with a real HTTP client, then fetches the feed: the first GET renders it,
later GETs with the same revision are served from the render cache, and a GET
with If-None-Match answers 304. Prints medians; absolute numbers depend on the
machine, so compare runs on one machine only. (The CalDAV benchmark against
Radicale arrives with the CalDAV server.)

``--clients N`` measures creates only (issue 17): the app runs in a thread of
this process with its own event loop, N clients in the main thread book
``--creates`` non-overlapping slots one after the other each, and it prints
creates/s and the p50/p99 of each create's round trip. ``--profile FILE``
profiles the server's thread over those creates (cProfile; work the app sends
to worker threads is not in it), writes the stats to FILE and prints the top
by cumulative time. With ``--serve`` the server is a ``calgateway serve``
process of its own instead, as deployed (its access log written to a file):
the clients' CPU then no longer shares the server's interpreter, and the
server's CPU is read from ``/proc`` (Linux).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from aiohttp import web

from bench.caldav_vs_radicale import free_port
from gateway.app import create_app
from gateway.settings import parse_settings

TOKEN = "bench-api-token-0123456789abcdef"
FEED = "bench-feed-token-0123456789abcdef"


def _config(db: Path) -> str:
    return f"""
server: {{host: 127.0.0.1, port: 0}}
storage: {{url: "sqlite:///{db}"}}
api_tokens: [{{name: bench, token: {TOKEN}}}]
resources:
  - {{id: anna, name: Anna, email: anna@example.com, timezone: Europe/Berlin,
     feed_tokens: [{FEED}]}}
"""


def _booking(first: datetime, n: int) -> dict[str, object]:
    """The API body of booking ``n``: the n-th one-hour slot from ``first``."""
    start = first + timedelta(hours=n)
    return {
        "resource": "anna",
        "start": start.isoformat(),
        "end": (start + timedelta(hours=1)).isoformat(),
        "title": f"Booking {n}",
        "booker": {"name": f"Booker {n}", "email": f"b{n}@example.com"},
    }


async def _timed(http: aiohttp.ClientSession, url: str, **kwargs: object) -> tuple[float, int]:
    started = time.perf_counter()
    async with http.get(url, **kwargs) as resp:  # type: ignore[arg-type]
        await resp.read()
        return time.perf_counter() - started, resp.status


async def run(bookings: int, concurrency: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = parse_settings(_config(Path(tmp) / "bench.sqlite3"), base_dir=Path(tmp))
        runner = web.AppRunner(create_app(settings), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {TOKEN}"}
        first = datetime(2027, 1, 4, 8, tzinfo=UTC)
        try:
            async with aiohttp.ClientSession(headers=headers) as http:
                queue = iter(range(bookings))

                async def worker() -> None:
                    for n in queue:
                        body = _booking(first, n)
                        async with http.post(f"{base}/api/v1/bookings", json=body) as resp:
                            assert resp.status == 201, await resp.text()

                started = time.perf_counter()
                await asyncio.gather(*(worker() for _ in range(concurrency)))
                create_s = time.perf_counter() - started

                feed = f"{base}/feeds/anna.ics?token={FEED}"
                cold, _ = await _timed(http, feed)
                warm = [(await _timed(http, feed))[0] for _ in range(20)]
                async with http.get(feed) as resp:
                    etag = resp.headers["ETag"]
                not_modified = [
                    (await _timed(http, feed, headers={"If-None-Match": etag}))[0]
                    for _ in range(20)
                ]
                busy_cold, _ = await _timed(http, feed + "&view=busy")
                week = (
                    f"{base}/api/v1/resources/anna/availability?"
                    f"start={(first + timedelta(days=7)).isoformat().replace('+', '%2B')}&"
                    f"end={(first + timedelta(days=14)).isoformat().replace('+', '%2B')}"
                )
                avail = [(await _timed(http, week))[0] for _ in range(20)]
        finally:
            await runner.cleanup()
    ms = 1000
    print(
        f"bookings created         {bookings} in {create_s:.2f} s "
        f"= {bookings / create_s:.0f}/s ({concurrency} concurrent clients)"
    )
    print(f"feed full, first GET     {cold * ms:.1f} ms (renders)")
    print(f"feed full, same revision {statistics.median(warm) * ms:.1f} ms median (cached)")
    print(f"feed If-None-Match       {statistics.median(not_modified) * ms:.1f} ms median (304)")
    print(f"feed busy, first GET     {busy_cold * ms:.1f} ms (renders)")
    print(f"availability, one week   {statistics.median(avail) * ms:.1f} ms median")


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class _ServerThread:
    """The app on a loopback port, served by its own event loop in a thread
    (profiled there when asked), so that the profile holds the server only."""

    def __init__(self, settings_text: str, base_dir: Path, profile: bool) -> None:
        self._settings = parse_settings(settings_text, base_dir=base_dir)
        self._profile = cProfile.Profile() if profile else None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._failure: BaseException | None = None
        self.port = 0
        self._thread = threading.Thread(target=self._run, name="bench-server")

    def __enter__(self) -> _ServerThread:
        self._thread.start()
        if not self._ready.wait(60) or self._failure is not None:
            raise RuntimeError(f"the server did not start: {self._failure!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)

    def profiling(self, on: bool) -> None:
        """Turn the profiler on or off in the server's thread."""
        if self._profile is None or self._loop is None:
            return
        done = threading.Event()
        profile = self._profile

        def switch() -> None:
            profile.enable() if on else profile.disable()
            done.set()

        self._loop.call_soon_threadsafe(switch)
        done.wait(10)

    def loop_cpu(self) -> float:
        """CPU seconds the server's event-loop thread has used so far (the
        rest of the server's CPU is spent in its worker threads: SQLite's)."""
        if self._loop is None:
            return 0.0
        done = threading.Event()
        used = [0.0]

        def read() -> None:
            used[0] = time.thread_time()
            done.set()

        self._loop.call_soon_threadsafe(read)
        done.wait(10)
        return used[0]

    def stats(self) -> pstats.Stats | None:
        return pstats.Stats(self._profile) if self._profile is not None else None

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported by __enter__
            self._failure = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        runner = web.AppRunner(create_app(self._settings), access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.port = runner.addresses[0][1]
            self._ready.set()
            await self._stop.wait()
        finally:
            await runner.cleanup()


async def _create_clients(port: int, clients: int, creates: int) -> tuple[float, list[float]]:
    """``creates`` bookings by ``clients`` concurrent clients: (seconds, latencies)."""
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    first = datetime(2027, 1, 4, 8, tzinfo=UTC)
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(headers=headers, connector=connector) as http:
        queue = iter(range(creates))

        async def client() -> None:
            for n in queue:
                body = _booking(first, n)
                began = time.perf_counter()
                async with http.post(f"{base}/api/v1/bookings", json=body) as resp:
                    text = await resp.read()
                    assert resp.status == 201, text
                latencies.append(time.perf_counter() - began)

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        return time.perf_counter() - started, latencies


class _ServeProcess:
    """``calgateway serve`` of ``config`` on ``port``, as a process of its own."""

    def __init__(self, config: Path, port: int, log: Path) -> None:
        self._config, self.port, self._log = config, port, log
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> _ServeProcess:
        with self._log.open("wb") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "serve", "--config", str(self._config)],
                stdout=log,
                stderr=log,
            )
        asyncio.run(self._ready())
        return self

    async def _ready(self) -> None:
        deadline = time.monotonic() + 60
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                if self._process is not None and self._process.poll() is not None:
                    break
                try:
                    async with http.get(f"http://127.0.0.1:{self.port}/healthz") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        tail = self._log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"calgateway serve did not start:\n{tail}")

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(60)

    def cpu(self) -> float:
        """CPU seconds (user and system, every thread) the process has used."""
        assert self._process is not None
        fields = Path(f"/proc/{self._process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_serve_clients(clients: int, creates: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        config = Path(tmp) / "bench.yaml"
        config.write_text(
            _config(Path(tmp) / "bench.sqlite3").replace("port: 0", f"port: {port}"),
            encoding="utf-8",
        )
        with _ServeProcess(config, port, Path(tmp) / "serve.log") as server:
            asyncio.run(_create_clients(port, 1, 0))
            before = server.cpu()
            seconds, latencies = asyncio.run(_create_clients(port, clients, creates))
            server_cpu = server.cpu() - before
    ms = 1000
    p50, p99 = _percentile(latencies, 0.5) * ms, _percentile(latencies, 0.99) * ms
    print(
        f"creates {creates} by {clients} clients of a calgateway serve process in "
        f"{seconds:.2f} s = {creates / seconds:.0f}/s; latency p50 {p50:.1f} ms, "
        f"p99 {p99:.1f} ms; server process CPU {server_cpu / creates * ms:.2f} ms per create"
    )


def run_clients(clients: int, creates: int, profile: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = _config(Path(tmp) / "bench.sqlite3")
        with _ServerThread(config, Path(tmp), profile is not None) as server:
            # A few creates first: imports, caches and the SQLite file warm up.
            asyncio.run(_create_clients(server.port, 1, 0))
            server.profiling(True)
            cpu = time.process_time(), time.thread_time(), server.loop_cpu()
            seconds, latencies = asyncio.run(_create_clients(server.port, clients, creates))
            # Every thread's CPU but the clients' (this thread): the server's
            # cost, which the other agents on a shared machine do not inflate
            # as much as they do wall-clock time.
            server_cpu = time.process_time() - cpu[0] - (time.thread_time() - cpu[1])
            loop_cpu = server.loop_cpu() - cpu[2]
            server.profiling(False)
            stats = server.stats()
    ms = 1000
    print(
        f"creates {creates} by {clients} clients in {seconds:.2f} s = "
        f"{creates / seconds:.0f}/s; latency p50 {_percentile(latencies, 0.5) * ms:.1f} ms, "
        f"p99 {_percentile(latencies, 0.99) * ms:.1f} ms; "
        f"server CPU {server_cpu / creates * ms:.2f} ms per create "
        f"(event loop {loop_cpu / creates * ms:.2f} ms, "
        f"other threads {(server_cpu - loop_cpu) / creates * ms:.2f} ms)"
    )
    if stats is not None and profile is not None:
        stats.dump_stats(profile)
        stats.sort_stats("cumulative").print_stats(40)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--bookings", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--clients", type=int, default=0, help="creates only, by this many clients (issue 17)"
    )
    parser.add_argument("--creates", type=int, default=3000, help="with --clients")
    parser.add_argument(
        "--profile", metavar="FILE", help="with --clients: cProfile of the server to FILE"
    )
    parser.add_argument(
        "--serve",
        action="store_true",
        help="with --clients: the server as a calgateway serve process of its own",
    )
    args = parser.parse_args()
    if args.clients and args.serve:
        if args.profile:
            parser.error("--profile profiles the in-process server: not with --serve")
        run_serve_clients(args.clients, args.creates)
    elif args.clients:
        run_clients(args.clients, args.creates, args.profile)
    else:
        asyncio.run(run(args.bookings, args.concurrency))


if __name__ == "__main__":
    main()
