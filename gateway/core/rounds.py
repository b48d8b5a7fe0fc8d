"""The loop shared by the background workers (the outbox, the Google sync):
run a round, log a failure without stopping, then sleep until woken or until
the next round is due."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import NoReturn

from .errors import StorageFull

# After a failed round, wait at least this long: a round that fails at once
# (a full disk, a database that is away) must not turn the loop into a spin
# that logs as fast as it can.
PAUSE_AFTER_FAILURE_S = 5.0


async def run_rounds(
    one_round: Callable[[], Awaitable[object]],
    wake: asyncio.Event,
    next_wait: Callable[[], Awaitable[float]],
    *,
    log: logging.Logger,
    failure: str,
    pause_after_failure: float = PAUSE_AFTER_FAILURE_S,
) -> NoReturn:
    """Until cancelled: ``one_round()``, then wait ``await next_wait()``
    seconds or until ``wake`` is set. A ``wake.set()`` during a round starts
    the next one at once; a failed round is logged as ``failure`` (the
    database may be briefly unavailable) and the loop goes on after at least
    ``pause_after_failure`` seconds, woken or not. A full disk is not logged
    here: the store says so itself, once (``gateway.store.full``)."""
    while True:
        wake.clear()
        failed = False
        try:
            await one_round()
        except asyncio.CancelledError:
            raise
        except StorageFull:
            failed = True
        except Exception:
            log.exception(failure)
            failed = True
        if failed:
            await asyncio.sleep(pause_after_failure)
            continue
        wait = await next_wait()
        if wait > 0 and not wake.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=wait)
