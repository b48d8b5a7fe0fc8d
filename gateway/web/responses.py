"""What answers are made of: a response that lets go of its body once it
is sent, and the status line's reason phrase.

aiohttp's keep-alive loop keeps the last response of each connection until
the next request comes in on it, so every idle connection holds the whole
body it last sent. For a multistatus listing 10,000 objects that is a few
megabytes per idle client connection, kept for as long as the connection
stays open: memory that grows with the calendar and the number of clients.
Big answers (listings, reports, feeds) use this class instead of
``web.Response``; small ones need not bother.

Some clients show only the status line of a refusal (vdirsyncer prints
"409, message='Conflict'"). RFC 9110 15.1 lets the reason phrase be any
text, and clients should not act on it, so a refusal may put a short,
plain reason there: ``conflict_reason`` names the first conflicting span
in UTC. The phrase is built from times and fixed words only, never from
what a client sent, and ``reason_phrase`` keeps it to one short line of
printable ASCII (RFC 9112 4). HTTP/2 has no reason phrase; the body says
the same and more.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from aiohttp import web

from gateway.core.errors import BookingConflict
from gateway.core.model import TimeSpan

# Long enough for "Conflict: busy <date time> to <date time> UTC and N more";
# a status line is no place for more (RFC 9112 4: clients may limit it).
MAX_REASON = 80


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


def reason_phrase(text: str) -> str:
    """``text`` as a reason phrase: RFC 9112 4 allows HTAB, SP, VCHAR and
    obs-text; this keeps SP and the printable ASCII of VCHAR (obs-text has
    no agreed charset), replaces anything else by "?", and cuts it to
    ``MAX_REASON`` characters, so no CR or LF can end the status line."""
    printable = "".join(c if " " <= c <= "~" else "?" for c in text)
    return printable[:MAX_REASON].strip()


def _clock(moment: datetime) -> str:
    # Seconds only where the span has them: most bookings start on a minute.
    if moment.second or moment.microsecond:
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%H:%M")


def utc_span_text(span: TimeSpan) -> str:
    """``2026-12-01 09:00-10:00 UTC``, or ``2026-12-01 23:00 to 2026-12-02
    01:00 UTC`` for a span across midnight (UTC)."""
    utc = span.in_utc()
    # isoformat, not strftime("%Y"): years before 1000 keep their four digits.
    start_day, end_day = utc.start.date().isoformat(), utc.end.date().isoformat()
    if start_day == end_day:
        return f"{start_day} {_clock(utc.start)}-{_clock(utc.end)} UTC"
    return f"{start_day} {_clock(utc.start)} to {end_day} {_clock(utc.end)} UTC"


def conflict_reason(conflict: BookingConflict) -> str:
    """The reason phrase of a double-booking 409: ``Conflict: busy
    2026-12-01 09:00-10:00 UTC`` (the first conflicting span) and how many
    more there are. "Conflict" first: a client that shows only the status
    line still reads the standard meaning of 409 (RFC 9110 15.5.10)."""
    if not conflict.conflicts:
        return "Conflict: busy"
    first = utc_span_text(conflict.conflicts[0])
    more = len(conflict.conflicts) - 1
    return reason_phrase(f"Conflict: busy {first}" + (f" and {more} more" if more else ""))


# RFC 4791 5.3.2.1 no-uid-conflict, and the API's UID rule: a fixed phrase,
# the UID itself is the client's text and stays in the body.
UID_CONFLICT_REASON = "Conflict: UID already used"
