"""A response that lets go of its body once it is sent.

aiohttp's keep-alive loop keeps the last response of each connection until
the next request comes in on it, so every idle connection holds the whole
body it last sent. For a multistatus listing 10,000 objects that is a few
megabytes per idle client connection, kept for as long as the connection
stays open: memory that grows with the calendar and the number of clients.
Big answers (listings, reports, feeds) use this class instead of
``web.Response``; small ones need not bother.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


class ReleasingResponse(web.Response):
    """A ``web.Response`` that drops its body (and the compressed copy) after
    the last byte is written; status, headers and the access log's byte count
    stay as they were."""

    async def write_eof(self, data: bytes = b"") -> None:
        await super().write_eof(data)
        self.body = None  # the public setter also drops the compressed body


def releasing_json(
    document: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> ReleasingResponse:
    """``web.json_response`` as a :class:`ReleasingResponse`."""
    return ReleasingResponse(
        text=json.dumps(document), status=status, headers=headers, content_type="application/json"
    )
