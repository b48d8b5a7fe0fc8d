"""The store's ports, cut by job (``gateway.core.ports``): each backend
class has every method of every job port, with the port's parameters, and
``Repository`` / ``MirrorRepository`` are exactly the union of their job
ports, so no method lives outside a job and none lives in two.

mypy proves the types (``_conforms`` in each backend module); these tests
hold the cut itself, which mypy cannot see: a method added to
``Repository`` directly, or one job port growing into another's, would
still type-check. No database is opened: the classes are compared.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from itertools import combinations
from typing import Any, Protocol

import pytest

from gateway.core import outbox
from gateway.core.ports import (
    CalendarCollections,
    CalendarStore,
    MirrorReads,
    MirrorRepository,
    MirrorStore,
    MirrorTransaction,
    OutboxAdmin,
    OutboxJournal,
    OutboxReport,
    OutboxStore,
    ReadPort,
    Repository,
    StoreHealth,
    Transactions,
    WriteTransaction,
)
from gateway.front.feeds import FeedSource
from gateway.store.postgres import PostgresRepository, PostgresTransaction
from gateway.store.sqlite import SqliteRepository, SqliteTransaction

# The jobs a store does, each a port of its own; every method of a
# repository belongs to exactly one of them.
REPOSITORY_JOBS: tuple[type, ...] = (
    ReadPort,
    CalendarCollections,
    Transactions,
    OutboxStore,
    OutboxReport,
    OutboxAdmin,
    StoreHealth,
)
MIRROR_JOBS: tuple[type, ...] = (MirrorStore,)
# The one method two jobs share: the mirror's ``transaction`` is the plain
# one with a wider transaction (``MirrorTransaction``), not a second job.
REFINED = {frozenset({Transactions, MirrorStore}): {"transaction"}}

# Ports a caller is typed against that are parts of a job port or sums of
# them (each must be covered by the jobs, like the unions).
PARTS: tuple[type, ...] = (OutboxJournal, MirrorReads, CalendarStore)

REPOSITORY_PORTS = (*REPOSITORY_JOBS, *MIRROR_JOBS, *PARTS, Repository, MirrorRepository)
TRANSACTION_PORTS = (ReadPort, WriteTransaction, MirrorReads, MirrorTransaction)
BACKENDS = {
    "sqlite": (SqliteRepository, SqliteTransaction),
    "postgres": (PostgresRepository, PostgresTransaction),
}

_NOT_PORTS = (object, Protocol)


def declared(port: type) -> set[str]:
    """The methods a protocol class itself declares (not its bases')."""
    return {
        name for name, value in vars(port).items() if not name.startswith("_") and callable(value)
    }


def members(port: type) -> set[str]:
    """Every method of a protocol, its bases' included."""
    return set().union(*(declared(cls) for cls in port.__mro__ if cls not in _NOT_PORTS))


def _name(port: type) -> str:
    return port.__name__


@pytest.mark.parametrize(
    ("whole", "jobs"),
    [
        (Repository, REPOSITORY_JOBS),
        (MirrorRepository, REPOSITORY_JOBS + MIRROR_JOBS),
    ],
    ids=["Repository", "MirrorRepository"],
)
def test_a_repository_is_exactly_its_jobs(whole: type, jobs: tuple[type, ...]) -> None:
    assert declared(whole) == set(), f"{whole.__name__} declares methods outside any job"
    assert members(whole) == set().union(*(members(job) for job in jobs))


@pytest.mark.parametrize(
    ("one", "other"), list(combinations(REPOSITORY_JOBS + MIRROR_JOBS, 2)), ids=_name
)
def test_no_method_has_two_jobs(one: type, other: type) -> None:
    shared = members(one) & members(other)
    assert shared == REFINED.get(frozenset({one, other}), set())


@pytest.mark.parametrize("part", PARTS, ids=_name)
def test_narrow_ports_are_made_of_job_ports(part: type) -> None:
    assert members(part) <= members(MirrorRepository)


def test_the_feeds_read_only_calendar_collections() -> None:
    # gateway.front.feeds keeps its own, narrower port; a store that does the
    # collections job serves the feeds.
    assert members(FeedSource) <= members(CalendarCollections)


def test_the_outbox_is_one_port() -> None:
    # The worker's store and a mail handler's journal are the same methods,
    # the journal a part of the store (once in two places, issue 14).
    assert members(OutboxJournal) < members(OutboxStore)
    assert not [
        name
        for name, value in vars(outbox).items()
        if isinstance(value, type)
        and issubclass(value, Protocol)
        and value.__module__ == outbox.__name__
    ], "gateway.core.outbox defines a store protocol of its own again"


def _kind(method: Callable[..., Any]) -> str:
    return "async def" if inspect.iscoroutinefunction(method) else "def"


def _parameters(method: Callable[..., Any]) -> list[tuple[str, Any, Any]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(method).parameters.values()]


def _cases() -> list[Any]:
    cases = []
    for backend, (repo_class, tx_class) in BACKENDS.items():
        for ports, cls in ((REPOSITORY_PORTS, repo_class), (TRANSACTION_PORTS, tx_class)):
            cases += [
                pytest.param(cls, port, id=f"{backend}-{_name(cls)}-{_name(port)}")
                for port in ports
            ]
    return cases


@pytest.mark.parametrize(("backend", "port"), _cases())
def test_each_backend_does_every_job(backend: type, port: type) -> None:
    """Every method of the port is there, awaitable where the port's is,
    with the port's parameters (names, kinds, defaults: a caller passing
    ``lease=`` or ``blocking_only=`` reaches every backend alike)."""
    for name in sorted(members(port)):
        wanted = getattr(port, name)
        got = getattr(backend, name, None)
        assert got is not None, f"{backend.__name__} lacks {port.__name__}.{name}"
        assert _kind(got) == _kind(wanted), f"{backend.__name__}.{name}"
        assert _parameters(got) == _parameters(wanted), f"{backend.__name__}.{name}"
