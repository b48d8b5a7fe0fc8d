"""The ``calgateway serve`` process: listening sockets, app generations, signals.

- The listening sockets are opened once, here, and outlive app generations.
  Each generation (one ``create_app(settings)`` with its storage and workers)
  accepts on its own duplicates of them (``socket.dup()``), through the
  connection guard of ``gateway.web.connections``.
- SIGTERM / SIGINT: stop accepting, let running requests finish (up to
  ``server.shutdown_timeout``), stop the workers, close storage, exit 0.
- SIGHUP: read and validate the settings file again. If it is invalid, or
  changes what needs a restart (``gateway.reload``), nothing changes and the
  log says "reload refused" and why. Otherwise a new generation starts beside
  the running one (its background loops held), the old one stops accepting,
  its loops stop, the new loops start, and the old generation drains in the
  background like on SIGTERM; the log says "reloaded" and which keys changed.
  Connections never find the port closed, and a request in flight finishes
  on the generation that took it.

Before anything else the soft open-file limit is raised to the hard limit,
and ``server.max_connections`` is lowered (one log line) where the limit
cannot hold it.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web

from gateway import demo
from gateway.app import create_app
from gateway.reload import changed_keys, restart_reasons
from gateway.settings import ServerSettings, Settings, SettingsError, load_settings
from gateway.web.background import BACKGROUND, BackgroundLoops
from gateway.web.connections import (
    LISTEN_BACKLOG,
    Caps,
    ConnectionGuard,
    ConnectionTable,
    Limits,
    connection_cap,
    raise_file_limit,
)
from gateway.web.observability import ACCESS_LOGGER, AccessLogger, configure_logging

log = logging.getLogger("calgateway")

# After a generation's own drain (server.shutdown_timeout), what aiohttp's
# shutdown gives the requests still running before it cancels them.
STRAGGLER_GRACE = 1.0


class CannotListen(Exception):
    """The listening address is taken, unknown, or not ours to use."""


def open_listeners(host: str, port: int) -> list[socket.socket]:
    """Listening sockets for every address ``host`` resolves to (like asyncio's
    create_server: SO_REUSEADDR; IPv6 sockets IPv6-only); CannotListen if any fails."""
    sockets: list[socket.socket] = []
    seen: set[tuple[int, object]] = set()
    try:
        for family, kind, proto, _, address in socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        ):
            if (family, address) in seen:
                continue
            seen.add((family, address))
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(LISTEN_BACKLOG)
            sock.setblocking(False)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise CannotListen(f"cannot listen on {host} port {port}: {exc}") from exc
    return sockets


def _caps(server: ServerSettings, file_limit: int) -> Caps:
    total = connection_cap(server.max_connections, file_limit)
    if total < server.max_connections:
        log.warning(
            "max_connections lowered to fit the open-file limit",
            extra={
                "max_connections": server.max_connections,
                "effective": total,
                "open_file_limit": file_limit,
            },
        )
    return Caps(total=total, per_address=server.max_connections_per_address)


@dataclass
class Generation:
    """One app built from one version of the settings, serving on the listeners."""

    settings: Settings
    runner: web.AppRunner
    guard: ConnectionGuard
    servers: list[asyncio.Server]

    @classmethod
    async def start(
        cls,
        settings: Settings,
        listeners: Sequence[socket.socket],
        table: ConnectionTable,
        *,
        held: bool = False,
    ) -> Generation:
        app = create_app(settings)
        if held:
            app[BACKGROUND] = BackgroundLoops(held=True)
        runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=STRAGGLER_GRACE)
        servers: list[asyncio.Server] = []
        try:
            # On failure, cleanup closes what the start-up opened (storage).
            await runner.setup()
            assert runner.server is not None
            guard = ConnectionGuard(
                runner.server,
                Limits.of(settings.server),
                table,
                access_log_class=AccessLogger,
                access_log=ACCESS_LOGGER,
            )
            loop = asyncio.get_running_loop()
            for sock in listeners:
                own = sock.dup()
                try:
                    servers.append(
                        await loop.create_server(guard, sock=own, backlog=LISTEN_BACKLOG)
                    )
                except BaseException:
                    own.close()
                    raise
        except BaseException:
            for server in servers:
                server.close()
            await runner.cleanup()
            raise
        return cls(settings, runner, guard, servers)

    @property
    def background(self) -> BackgroundLoops:
        return self.runner.app[BACKGROUND]

    def stop_accepting(self) -> None:
        for server in self.servers:
            server.close()  # closes this generation's duplicates only

    async def stop(self) -> None:
        """Stop accepting, drain (server.shutdown_timeout), stop the loops, close storage."""
        self.stop_accepting()
        within = self.settings.server.shutdown_timeout
        log.info("draining", extra={"connections": len(self.guard.connections), "within_s": within})
        left = await self.guard.drain(within)
        if left:
            log.warning("requests cut at shutdown_timeout", extra={"connections": left})
        await self.runner.cleanup()


async def serve(config_path: str, settings: Settings) -> None:
    """Run until SIGTERM or SIGINT; reload the settings file on SIGHUP. In demo
    mode (gateway.demo) the fake Google runs as long as the server.

    Raises SettingsError when the demo cannot run with these settings."""
    try:
        async with demo.fake_google(config_path, settings) as fake_url:
            if fake_url is not None:
                log.info(
                    "demo mode",
                    extra={
                        "note": "a fake Google runs on loopback; never use this in production",
                        "console": f"{settings.server.public_url}/",
                        "fake_google": fake_url,
                        "admins": [u.name for u in settings.users if u.admin],
                    },
                )
            await _serve(config_path, settings)
    except demo.FakeCannotListen as exc:
        raise CannotListen(str(exc)) from exc


async def _serve(config_path: str, settings: Settings) -> None:
    file_limit = raise_file_limit()
    table = ConnectionTable(_caps(settings.server, file_limit))
    listeners = open_listeners(settings.server.host, settings.server.port)
    draining: set[asyncio.Task[None]] = set()
    # Before "listening" is logged: from then on a signal must find its handler.
    stop, reload = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reload.set)
    try:
        current = await Generation.start(settings, listeners, table)
        for sock in listeners:
            host, port = sock.getsockname()[:2]
            shown = f"[{host}]" if ":" in host else host
            log.info("listening", extra={"url": f"http://{shown}:{port}", "port": port})
        try:
            while not stop.is_set():
                await _first(stop, reload)
                if stop.is_set():
                    break
                reload.clear()
                current = await _reload(
                    current, config_path, listeners, table, draining, file_limit
                )
            log.info("shutting down")
        finally:
            await current.stop()
            await asyncio.gather(*draining, return_exceptions=True)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(signum)
        for sock in listeners:
            sock.close()
        log.info("stopped")


async def _first(*events: asyncio.Event) -> None:
    waits = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


async def _reload(
    current: Generation,
    config_path: str,
    listeners: Sequence[socket.socket],
    table: ConnectionTable,
    draining: set[asyncio.Task[None]],
    file_limit: int,
) -> Generation:
    """The generation serving after a SIGHUP: a new one, or ``current`` if refused."""
    try:
        settings = load_settings(config_path)
    except SettingsError as exc:
        # The same "FILE:LINE: key.path: message" lines as check-config.
        log.error("reload refused", extra={"error": str(exc), "config": config_path})
        return current
    reasons = restart_reasons(current.settings, settings) + demo.reload_problems(
        current.settings, settings
    )
    if reasons:
        log.error("reload refused", extra={"error": "; ".join(reasons), "config": config_path})
        return current
    changed = changed_keys(current.settings, settings)
    if not changed:
        log.info("reloaded", extra={"changed": [], "config": config_path})
        return current
    try:
        new = await Generation.start(settings, listeners, table, held=True)
    except Exception as exc:  # e.g. the database cannot be opened: keep the old one
        log.exception(
            "reload refused",
            extra={"error": f"the new settings did not start: {exc}", "config": config_path},
        )
        return current
    current.stop_accepting()
    await current.background.stop()
    new.background.release()
    table.caps = _caps(settings.server, file_limit)
    if settings.server.log_format != current.settings.server.log_format:
        configure_logging(settings.server.log_format)
    task = asyncio.create_task(current.stop(), name="drain-old-generation")
    draining.add(task)
    task.add_done_callback(draining.discard)
    log.info("reloaded", extra={"changed": changed, "config": config_path})
    return new
