"""A reloaded generation's background loops wait for the old ones to stop
(gateway.web.background): two outbox workers on one database must never run
at once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from gateway.web.background import BackgroundLoops


class Probe:
    """A background loop that records when it starts and when it is cancelled."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = False

    def loop(self) -> Callable[[], Coroutine[Any, Any, None]]:
        async def run() -> None:
            self.started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled = True
                raise

        return run


async def test_held_loops_start_only_when_released_and_stop_cancels_them() -> None:
    old_probe, new_probe = Probe(), Probe()
    old = BackgroundLoops()
    old.start([old_probe.loop()])
    new = BackgroundLoops(held=True)
    new.start([new_probe.loop()])
    await asyncio.wait_for(old_probe.started.wait(), 5)
    for _ in range(10):
        await asyncio.sleep(0)  # every task that could run has run
    assert not new_probe.started.is_set()

    await old.stop()
    assert old_probe.cancelled
    new.release()
    await asyncio.wait_for(new_probe.started.wait(), 5)

    await new.stop()
    await new.stop()  # twice is harmless
    assert new_probe.cancelled
