"""The queue of password checks: bounded, and fair between client addresses,
so that a real user signing in from one address is not kept waiting behind an
attacker's pile of guesses from another.

The rules, as pure functions over a snapshot of what waits:

- at most ``workers`` checks run at once, and at most one per address: an
  address's guesses are checked one after the other, so its wrong passwords
  are counted (and it is locked out) before the next one costs a hash;
- the next check to run is the one with the fewest wrong passwords in the
  current streaks of its address and its user name, the oldest first among
  equals: a guess from an address, or at a name, that has only failed so far
  waits behind a sign-in that has not;
- at most ``limit`` checks wait. When the queue is full, a newcomer takes the
  place of the newest check of the address that holds the most places (the
  one with more wrong passwords among equals), if that address is worse off
  than the newcomer's would be; otherwise the newcomer is refused: with 429 if
  its own address already has checks waiting (it is the one sending too many),
  with 503 if not (the server is busy with others).

What this module does not do: decide whether a password may be checked at all
(``gateway.web.backoff``), or check it (``gateway.web.auth``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Generic, Literal, NamedTuple, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Waiting:
    """A check waiting for its turn, as the rules see it."""

    address: str
    # Wrong passwords in the current streaks of its address and its user name.
    strikes: int


class Admission(NamedTuple):
    """Whether a newcomer gets a place, and whose place it takes."""

    admitted: bool
    displaced: int | None = None  # index of the waiting check that loses its place
    refused_because: Literal["address", "busy"] | None = None


def admit(waiting: Sequence[Waiting], newcomer: Waiting, limit: int) -> Admission:
    """May ``newcomer`` wait, given the checks already waiting (oldest first)?"""
    if len(waiting) < limit:
        return Admission(True)
    held: dict[str, int] = {}
    for entry in waiting:
        held[entry.address] = held.get(entry.address, 0) + 1
    strikes: dict[str, int] = {}
    for entry in waiting:
        strikes[entry.address] = max(strikes.get(entry.address, 0), entry.strikes)
    worst = max(held, key=lambda a: (held[a], strikes[a]))
    mine = held.get(newcomer.address, 0)
    if (held[worst], strikes[worst]) > (mine + 1, newcomer.strikes):
        newest = max(i for i, entry in enumerate(waiting) if entry.address == worst)
        return Admission(True, displaced=newest)
    return Admission(False, refused_because="address" if mine else "busy")


def next_up(waiting: Sequence[Waiting], running: Collection[str]) -> int | None:
    """Index of the check to run next (None: none may run now)."""
    ready = [i for i, entry in enumerate(waiting) if entry.address not in running]
    if not ready:
        return None
    return min(ready, key=lambda i: (waiting[i].strikes, i))


class QueueFull(Exception):
    """No place for this check; ``by_address``: its address holds places already."""

    def __init__(self, by_address: bool) -> None:
        super().__init__("too many sign-ins from this address" if by_address else "busy")
        self.by_address = by_address


def _new_future() -> asyncio.Future[T]:
    return asyncio.get_running_loop().create_future()


@dataclass(eq=False)
class _Entry(Generic[T]):
    address: str
    name: str
    job: Callable[[], Awaitable[T]]
    future: asyncio.Future[T] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class CheckQueue(Generic[T]):
    """Runs the jobs it is given by the rules above; only executes."""

    def __init__(self, *, limit: int, workers: int, strikes: Callable[[str, str], int]) -> None:
        self._limit = limit
        self._workers = workers
        self._strikes = strikes
        self._waiting: list[_Entry[T]] = []
        self._running: dict[str, asyncio.Task[None]] = {}

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def _snapshot(self) -> list[Waiting]:
        return [Waiting(e.address, self._strikes(e.address, e.name)) for e in self._waiting]

    def submit(self, address: str, name: str, job: Callable[[], Awaitable[T]]) -> asyncio.Future[T]:
        """The future result of ``job`` (a check of a password for ``name``
        from ``address``), run when its turn comes; raises
        ``QueueFull`` at once if it gets no place (and sets it on the future
        of a check that loses its place)."""
        newcomer = Waiting(address, self._strikes(address, name))
        decision = admit(self._snapshot(), newcomer, self._limit)
        if not decision.admitted:
            raise QueueFull(by_address=decision.refused_because == "address")
        if decision.displaced is not None:
            loser = self._waiting.pop(decision.displaced)
            if not loser.future.done():
                loser.future.set_exception(QueueFull(by_address=True))
        entry: _Entry[T] = _Entry(address, name, job)
        self._waiting.append(entry)
        self._pump()
        return entry.future

    def _pump(self) -> None:
        while len(self._running) < self._workers:
            index = next_up(self._snapshot(), self._running)
            if index is None:
                return
            entry = self._waiting.pop(index)
            if entry.future.done():  # its callers are gone
                continue
            self._running[entry.address] = asyncio.create_task(self._run(entry))

    async def _run(self, entry: _Entry[T]) -> None:
        try:
            result = await entry.job()
        except asyncio.CancelledError:
            # The server is stopping: start nothing more.
            del self._running[entry.address]
            entry.future.cancel()
            raise
        except Exception as error:
            if not entry.future.done():
                entry.future.set_exception(error)
        else:
            if not entry.future.done():
                entry.future.set_result(result)
        del self._running[entry.address]
        self._pump()
