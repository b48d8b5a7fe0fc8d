"""Fixtures of the CalDAV tests: real servers on loopback (see ``servers``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from tests.caldav.servers import (
    GatewayServer,
    RadicaleServer,
    new_session,
    start_radicale,
)


@pytest.fixture(scope="module")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RadicaleServer]:
    """One Radicale process per test module; tests make their own calendars."""
    server = start_radicale(tmp_path_factory.mktemp("radicale"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def gateway(
    app: web.Application,
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
) -> GatewayServer:
    """The app of ``create_app`` (test YAML, a fresh store) on a real
    loopback port, served by this test's event loop. ``app`` first: the
    server stops before the store's database is dropped."""
    server = await aiohttp_server(app)
    return GatewayServer(str(server.make_url("/")).rstrip("/"))


@pytest.fixture
async def http() -> AsyncIterator[ClientSession]:
    async with new_session() as session:
        yield session


# -- outcome counts shown after the run ----------------------------------------------

Outcomes = dict[str, Counter[str]]
_OUTCOMES = pytest.StashKey[Outcomes]()


@pytest.fixture(scope="session")
def outcome_counts(pytestconfig: pytest.Config) -> Outcomes:
    """Named counters (label -> outcome -> n) a test can add to; they are
    printed in the terminal summary (for example the corpus outcomes)."""
    return pytestconfig.stash.setdefault(_OUTCOMES, {})


# Under pytest-xdist (``make test`` runs ``-n auto``) the tests count in the
# workers and the summary is printed by the controller: each worker hands
# its counts over when it ends, and the controller adds them up.
_WORKER_OUTPUT = "caldav_outcome_counts"


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        outcomes = session.config.stash.get(_OUTCOMES, {})
        workeroutput[_WORKER_OUTPUT] = {label: dict(c) for label, c in outcomes.items()}


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    counted: dict[str, dict[str, int]] = getattr(node, "workeroutput", {}).get(_WORKER_OUTPUT, {})
    outcomes = node.config.stash.setdefault(_OUTCOMES, {})
    for label, counts in counted.items():
        outcomes.setdefault(label, Counter()).update(counts)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    outcomes = config.stash.get(_OUTCOMES, {})
    if not any(outcomes.values()):
        return
    terminalreporter.section("CalDAV outcome counts")
    for label, counts in outcomes.items():
        summary = ", ".join(f"{key}: {n}" for key, n in sorted(counts.items()))
        terminalreporter.write_line(f"{label}: {summary}")
