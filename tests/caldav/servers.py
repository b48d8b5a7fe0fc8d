"""Real servers on loopback for the interoperability tests.

Radicale runs in a subprocess on a free port of 127.0.0.1 with its own
storage folder and config file (so no user or system config leaks in); the
gateway runs in the test's event loop on a real port (``aiohttp_server``),
so synchronous clients (python-caldav in a thread) and subprocesses
(vdirsyncer) reach it like any other HTTP server.

Waits are bounded and driven by events (a connection accepted, a process
ended), never by sleeping for a guessed time.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from aiohttp import ClientSession, ClientTimeout

from tests.caldav.dav import Answer
from tests.net import LOOPBACK, free_port

START_TIMEOUT = 20.0  # seconds for a server to accept connections
STOP_TIMEOUT = 10.0
HTTP_TIMEOUT = ClientTimeout(total=30)


def wait_until_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    """Poll the socket until ``process`` accepts connections on ``port``.

    Between attempts it waits on the process itself (returning at once if it
    dies), and gives up after ``START_TIMEOUT`` seconds."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise RuntimeError(
                f"server exited with {process.returncode} before listening on {port}:\n"
                + log.read_text(errors="replace")
            )
        try:
            with socket.create_connection((LOOPBACK, port), timeout=1.0):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"nothing listens on {LOOPBACK}:{port} after {START_TIMEOUT}s:\n"
                    + log.read_text(errors="replace")
                ) from None
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=0.05)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)


def basic_auth(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


# -- Radicale ------------------------------------------------------------------------

RADICALE_USER = "user"
RADICALE_PASSWORD = "radicale-pw"  # auth type none: any password is accepted

_RADICALE_CONFIG = """\
[server]
hosts = {host}:{port}

[auth]
type = none

[rights]
type = owner_only

[storage]
filesystem_folder = {folder}

[logging]
level = warning
"""


@dataclass
class RadicaleServer:
    """A Radicale process; ``url`` has no trailing slash."""

    port: int
    folder: Path
    log: Path
    process: subprocess.Popen[bytes]
    user: str = RADICALE_USER
    password: str = RADICALE_PASSWORD

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def auth(self) -> dict[str, str]:
        return basic_auth(self.user, self.password)

    def stop(self) -> None:
        stop_process(self.process)


def start_radicale(workdir: Path, *, attempts: int = 3) -> RadicaleServer:
    """Start Radicale with storage under ``workdir`` and wait until it listens.

    A port can be taken between choosing it and Radicale binding it; then
    Radicale exits and another port is tried."""
    workdir.mkdir(parents=True, exist_ok=True)
    folder = workdir / "collections"
    last_error: Exception | None = None
    for attempt in range(attempts):
        port = free_port()
        config = workdir / "radicale.conf"
        config.write_text(
            _RADICALE_CONFIG.format(host=LOOPBACK, port=port, folder=folder), encoding="utf-8"
        )
        log = workdir / f"radicale-{attempt}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "radicale", "--config", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_until_listening(port, process, log)
        except RuntimeError as error:  # exited: most likely the port was taken
            last_error = error
            continue
        except BaseException:
            stop_process(process)
            raise
        return RadicaleServer(port, folder, log, process)
    raise RuntimeError(f"Radicale did not start in {attempts} attempts") from last_error


# -- the gateway on a real port ------------------------------------------------------


@dataclass
class GatewayServer:
    """The app from ``create_app`` listening on loopback; ``url`` has no
    trailing slash."""

    url: str

    @property
    def port(self) -> int:
        port = urlsplit(self.url).port
        assert port is not None
        return port

    def calendar_url(self, resource: str) -> str:
        return f"{self.url}/dav/calendars/{resource}/"


# -- a tiny DAV client over aiohttp, the same for both servers ----------------------


def member_name(href: str) -> str:
    """The last segment of an href (absolute URL or path), percent-decoded:
    what the client named the object, whatever the collection's path."""
    path = urlsplit(href).path
    return unquote(path.rstrip("/").rsplit("/", 1)[-1])


@dataclass
class DavEndpoint:
    """One calendar collection on one server, spoken to with raw HTTP."""

    session: ClientSession
    base: str  # scheme://host:port
    collection: str  # path of the calendar, with trailing slash
    auth: dict[str, str]

    def url(self, name: str = "") -> str:
        return f"{self.base}{self.collection}{quote(name)}"

    async def request(
        self,
        method: str,
        name: str = "",
        body: str | bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        all_headers = {**self.auth, **(headers or {})}
        if body is not None and "Content-Type" not in all_headers:
            all_headers["Content-Type"] = "application/xml; charset=utf-8"
        data = body.encode("utf-8") if isinstance(body, str) else body
        async with self.session.request(
            method, self.url(name), data=data, headers=all_headers, allow_redirects=False
        ) as response:
            return Answer(response.status, response.headers, await response.read())

    async def put(
        self, name: str, ics: str | bytes, headers: dict[str, str] | None = None
    ) -> Answer:
        return await self.request(
            "PUT", name, ics, {"Content-Type": "text/calendar; charset=utf-8", **(headers or {})}
        )

    async def get(self, name: str, headers: dict[str, str] | None = None) -> Answer:
        return await self.request("GET", name, headers=headers)

    async def delete(self, name: str, headers: dict[str, str] | None = None) -> Answer:
        return await self.request("DELETE", name, headers=headers)

    async def propfind(self, body: str, depth: str = "1") -> Answer:
        return await self.request("PROPFIND", "", body, {"Depth": depth})

    async def report(self, body: str, depth: str = "1") -> Answer:
        return await self.request("REPORT", "", body, {"Depth": depth})


def new_session() -> ClientSession:
    return ClientSession(timeout=HTTP_TIMEOUT)
