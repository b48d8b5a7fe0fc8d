"""The background loops of one app generation (outbox worker, Google sync,
reply inbox), startable late and stoppable before the app's storage closes.

A settings reload (gateway.serve) runs two app generations for a moment. Their
loops must not overlap: an outbox worker voids every lease when it starts
(gateway.core.outbox), which would hand the other worker's in-flight items to
a second sender, and two Google sync loops would sync the same calendar at
once. So the new generation is started with its loops *held*, the old
generation's loops are stopped, and only then are the new ones released.
A plain start (``calgateway serve``, tests) never holds them.

This module only starts and stops tasks; what the loops do is not its business.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from aiohttp import web

Loop = Callable[[], Coroutine[Any, Any, None]]


class BackgroundLoops:
    def __init__(self, *, held: bool = False) -> None:
        self._go = asyncio.Event()
        if not held:
            self._go.set()
        self._tasks: list[asyncio.Task[None]] = []
        self._finishers: list[Callable[[], Awaitable[None]]] = []

    def start(self, loops: Sequence[Loop]) -> None:
        """Start a task per loop; each begins when released (at once if not held)."""
        self._tasks.extend(
            asyncio.create_task(self._when_released(loop), name=f"worker-{i}")
            for i, loop in enumerate(loops)
        )

    def release(self) -> None:
        self._go.set()

    def before_stop(self, finish: Callable[[], Awaitable[None]]) -> None:
        """``finish()`` runs (and bounds itself) before the loops are cancelled:
        a loop's chance to end what it is in the middle of."""
        self._finishers.append(finish)

    async def stop(self) -> None:
        """Let the loops finish what they do (``before_stop``), then cancel
        them and wait for them; safe to call twice."""
        finishers, self._finishers = self._finishers, []
        await asyncio.gather(*(finish() for finish in finishers), return_exceptions=True)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _when_released(self, loop: Loop) -> None:
        await self._go.wait()
        await loop()


# Set by whoever starts the app before its start-up to hold the loops;
# otherwise gateway.app sets an unheld one.
BACKGROUND = web.AppKey("background", BackgroundLoops)
