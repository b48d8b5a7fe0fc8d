"""The loop shared by the background workers (the outbox, the Google sync):
run a round, log a failure without stopping, then sleep until woken or until
the next round is due."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import NoReturn


async def run_rounds(
    one_round: Callable[[], Awaitable[object]],
    wake: asyncio.Event,
    next_wait: Callable[[], Awaitable[float]],
    *,
    log: logging.Logger,
    failure: str,
) -> NoReturn:
    """Until cancelled: ``one_round()``, then wait ``await next_wait()``
    seconds or until ``wake`` is set. A ``wake.set()`` during a round starts
    the next one at once; a failed round is logged as ``failure`` (the
    database may be briefly unavailable) and the loop goes on."""
    while True:
        wake.clear()
        try:
            await one_round()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(failure)
        wait = await next_wait()
        if wait > 0 and not wake.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=wait)
