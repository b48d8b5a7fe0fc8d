"""HTTP/1.1 over raw loopback sockets, for tests that misbehave on purpose
(half-sent heads, lying Content-Length, endless chunked bodies) where a real
HTTP client would refuse to. Every wait is bounded."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from tests.net import LOOPBACK

BOUND = 10.0


@dataclass
class Conn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    opened: float = field(default_factory=time.monotonic)

    async def send(self, data: bytes | str) -> None:
        self.writer.write(data.encode() if isinstance(data, str) else data)
        await self.writer.drain()

    async def answer(self, within: float = BOUND) -> Answer:
        """The next answer: status, headers and (by Content-Length) body."""

        async def read() -> Answer:
            head = await self.reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            body = await self.reader.readexactly(int(headers.get("content-length", "0")))
            return Answer(status, headers, body, time.monotonic(), head.split(b"\r\n", 1)[0])

        return await asyncio.wait_for(read(), within)

    async def closed_by_server(self, within: float = BOUND) -> bool:
        """True when the server closes (EOF or reset) within ``within`` s;
        whatever else it sends meanwhile is read and dropped."""

        async def until_eof() -> None:
            with contextlib.suppress(ConnectionError):
                while await self.reader.read(65536):
                    pass

        try:
            await asyncio.wait_for(until_eof(), within)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), 1.0)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when it was read
    status_line: bytes = b""  # as sent, without CRLF


async def connect(port: int, *, source: str = LOOPBACK) -> Conn:
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(LOOPBACK, port, local_addr=(source, 0)), BOUND
    )
    return Conn(reader, writer)


def request_head(
    method: str, path: str, headers: dict[str, str] | None = None, *, host: str = "gateway.test"
) -> str:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return "\r\n".join(lines) + "\r\n\r\n"
