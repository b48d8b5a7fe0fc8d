"""A real PostgreSQL server for the tests, started by the tests themselves.

``postgres_server`` (session-scoped) finds Debian's PostgreSQL programs,
runs ``initdb`` in a temporary folder and ``pg_ctl start`` on a free loopback
port with its unix socket in that folder, and stops it when the session
ends. ``postgres_url`` gives each test a database of its own (created empty,
dropped afterwards), so tests never see each other's rows.

PostgreSQL refuses to run as root, and tests in CI and containers often run
as root: then the programs run as the ``postgres`` system user (Debian's
package creates it) and the folder is handed to that user.

When the programs are missing the PostgreSQL tests are skipped with one line
saying how to install them; with ``CI=true`` they fail instead, because CI
(.ci/run installs the package) must run them.

Durability is switched off (``fsync``, ``synchronous_commit``,
``full_page_writes``): the server's data dies with the session anyway, and
this makes the many small commits of the tests much faster. It changes
nothing about locking, isolation or visibility, which is what the tests check.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.net import LOOPBACK, free_port

INSTALL_HINT = (
    "PostgreSQL tests SKIPPED: initdb/pg_ctl not found; "
    "install them with `apt-get install postgresql` (CI=true makes this an error)"
)
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30
SERVER_USER = "postgres"
# The tests' settings (see above); a bench comparing with SQLite passes its own.
NO_DURABILITY = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")


def find_binaries() -> Path | None:
    """The folder holding initdb and pg_ctl: on PATH, else the newest of
    Debian's /usr/lib/postgresql/*/bin (Debian keeps them off PATH)."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl and Path(initdb).resolve().parent == Path(pg_ctl).resolve().parent:
        return Path(initdb).resolve().parent

    def version(folder: str) -> tuple[int, ...]:
        name = Path(folder).parent.name
        return tuple(int(part) for part in name.split(".") if part.isdigit())

    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True):
        if (Path(folder) / "initdb").is_file() and (Path(folder) / "pg_ctl").is_file():
            return Path(folder)
    return None


@dataclass
class PostgresServer:
    """A running server: superuser ``user`` over TCP on ``port``, trusted."""

    bin_dir: Path
    root: Path
    port: int
    user: str
    run_as: str | None
    _made: int = field(default=0)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}@{LOOPBACK}:{self.port}/{dbname}"

    def run(self, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        extra: dict[str, Any] = {"user": self.run_as} if self.run_as else {}
        return subprocess.run(
            [str(self.bin_dir / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.root,  # root's home or cwd may be closed to the server's user
            **extra,
        )

    def create_database(self) -> str:
        """A fresh, empty database; returns its name."""
        self._made += 1
        name = f"test_{os.getpid()}_{self._made}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return name

    def drop_database(self, name: str) -> None:
        # FORCE: a test that failed half-way may have left connections open.
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _start(bin_dir: Path, *, durability: Sequence[str] = NO_DURABILITY) -> PostgresServer:
    run_as = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            pytest.fail(f"running as root, PostgreSQL needs the system user {SERVER_USER!r}")
        run_as = SERVER_USER
    # In /tmp itself, not under pytest's per-user 0700 folder: the server's
    # user must be able to reach it.
    root = Path(tempfile.mkdtemp(prefix="calgateway-pg-"))
    if run_as:
        shutil.chown(root, user=run_as, group=None)
    server = PostgresServer(
        bin_dir=bin_dir,
        root=root,
        port=free_port(),
        user=run_as or pwd.getpwuid(os.geteuid()).pw_name,
        run_as=run_as,
    )
    init = server.run(
        "initdb",
        "--pgdata",
        str(server.data_dir),
        "--username",
        server.user,
        "--auth",
        "trust",
        "--encoding",
        "UTF8",
        "--locale",
        "C.UTF-8",
        "--no-sync",
        timeout=START_TIMEOUT_S,
    )
    if init.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"initdb failed ({init.returncode}):\n{init.stdout}\n{init.stderr}")
    options = " ".join(
        [
            f"-c listen_addresses={LOOPBACK}",
            f"-c port={server.port}",
            f"-c unix_socket_directories={root}",
            "-c max_connections=300",
            *(f"-c {setting}" for setting in durability),
        ]
    )
    start = server.run(
        "pg_ctl",
        "start",
        "--pgdata",
        str(server.data_dir),
        "--log",
        str(root / "server.log"),
        "--options",
        options,
        "--wait",
        "--timeout",
        str(START_TIMEOUT_S),
        timeout=START_TIMEOUT_S + 10,
    )
    if start.returncode != 0:
        log = (
            (root / "server.log").read_text(errors="replace")
            if (root / "server.log").exists()
            else ""
        )
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"pg_ctl start failed ({start.returncode}):\n{start.stderr}\n{log}")
    _wait_for_connections(server)
    return server


def _wait_for_connections(server: PostgresServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            with psycopg.connect(server.url(), connect_timeout=5):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _stop(server: PostgresServer) -> None:
    try:
        server.run(
            "pg_ctl",
            "stop",
            "--pgdata",
            str(server.data_dir),
            "--mode",
            "immediate",
            "--wait",
            "--timeout",
            str(STOP_TIMEOUT_S),
            timeout=STOP_TIMEOUT_S + 10,
        )
    finally:
        shutil.rmtree(server.root, ignore_errors=True)


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def require_postgres() -> None:
    """Call at the top of a test module using PostgreSQL: without the
    programs the whole module is skipped with one line (one per module in
    the summary, instead of one per test), unless in CI."""
    if find_binaries() is None and not _in_ci():
        pytest.skip(INSTALL_HINT, allow_module_level=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bin_dir = find_binaries()
    if bin_dir is None:
        if _in_ci():
            pytest.fail(INSTALL_HINT.replace("SKIPPED", "cannot run in CI"))
        pytest.skip(INSTALL_HINT)
    server = _start(bin_dir)
    try:
        yield server
    finally:
        _stop(server)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of an empty database of this test's own."""
    name = postgres_server.create_database()
    try:
        yield postgres_server.url(name)
    finally:
        with contextlib.suppress(psycopg.Error):
            postgres_server.drop_database(name)
