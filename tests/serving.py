"""`calgateway serve` as a real process on a loopback port, for tests whose
behaviour is about connections, signals and the process itself.

    async with serving(config_file) as server:
        async with aiohttp.ClientSession() as http:
            await http.get(f"{server.url}/healthz")
        await server.wait_for_log(lambda e: e["msg"] == "...")

The server's JSON log lines are collected as they come (``server.entries``);
on exit the process gets SIGTERM and, if it has not stopped within the bound,
SIGKILL. Every wait here is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
COMMAND = [sys.executable, "-m", "gateway.cli"]
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0

LogEntry = dict[str, Any]


@dataclass
class Served:
    process: asyncio.subprocess.Process
    url: str = ""
    port: int = 0
    entries: list[LogEntry] = field(default_factory=list)
    closed: bool = False  # the process closed its stderr (it is exiting)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_for_log(
        self, matches: Callable[[LogEntry], bool], within: float = 10.0
    ) -> LogEntry:
        """The first log entry (seen so far or still to come) that ``matches``."""

        async def look() -> LogEntry:
            seen = 0
            while True:
                for entry in self.entries[seen:]:
                    if matches(entry):
                        return entry
                seen = len(self.entries)
                if self.closed:
                    raise AssertionError(f"server exited; its log: {self.entries[-5:]}")
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(look(), within)

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    async def stop(self, within: float = STOP_TIMEOUT) -> int:
        """SIGTERM, then the exit code (SIGKILL after ``within``)."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.process.wait(), within)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            raise AssertionError("server did not stop on SIGTERM") from None


async def _collect(served: Served, stream: asyncio.StreamReader) -> None:
    while True:
        line = await stream.readline()
        if not line:
            served.closed = True
            served._changed.set()
            return
        text = line.decode("utf-8", "replace").strip()
        if text:
            try:
                entry = json.loads(text)
            except ValueError:
                entry = {"msg": text, "unparsed": True}
            served.entries.append(entry if isinstance(entry, dict) else {"msg": text})
        served._changed.set()


@contextlib.asynccontextmanager
async def serving(
    config_file: Path,
    *,
    env: Mapping[str, str] | None = None,
    preexec: Any = None,
    command: Sequence[str] = COMMAND,
    cwd: Path = REPO,
) -> AsyncIterator[Served]:
    """Start ``calgateway serve --config config_file`` and wait until it listens
    (``command`` is the ``calgateway`` to run: this checkout's by default)."""
    process = await asyncio.create_subprocess_exec(
        *command,
        "serve",
        "--config",
        str(config_file),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
        env=dict(env) if env is not None else None,
        preexec_fn=preexec,
    )
    assert process.stderr is not None
    served = Served(process)
    reader = asyncio.create_task(_collect(served, process.stderr))
    try:
        listening = await served.wait_for_log(
            lambda e: e.get("msg") == "listening", within=START_TIMEOUT
        )
        served.url = str(listening["url"])
        served.port = int(listening["port"])
        yield served
    finally:
        if process.returncode is None:
            with contextlib.suppress(AssertionError):
                await served.stop()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
