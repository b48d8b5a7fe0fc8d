"""Prefilled "add to calendar" links for bookers whose calendar the gateway
cannot write to: Google Calendar, Outlook.com, Office 365 and Yahoo, plus the
booking's .ics download URL.

None of the four is an RFC; the parameters are the ones each service
documents or is known to accept:

* Google (``calendar/render?action=TEMPLATE``, Google's event publisher
  guide): ``text``, ``dates`` (``YYYYMMDDTHHMMSSZ/YYYYMMDDTHHMMSSZ`` in UTC, or
  ``YYYYMMDD/YYYYMMDD`` for all-day events with the day *after* the last as
  end), ``details``, ``location``, ``ctz`` (IANA zone the event is shown in).
  ``stz``/``etz`` (separate start and end zones) are not used: a booking has
  one zone.
* Outlook.com / Office 365 (``calendar/0/action/compose``): ``subject``,
  ``startdt``/``enddt`` (ISO 8601; UTC with ``Z`` for timed events,
  ``YYYY-MM-DD`` with ``allday=true`` for all-day ones, the end exclusive as in
  Outlook's own all-day events), ``body``, ``location``.
* Yahoo (``?v=60``): ``title``, ``st``/``et`` (``YYYYMMDDTHHMMSSZ``, or
  ``YYYYMMDD`` with ``dur=allday``, where ``et`` is the last day itself),
  ``desc``, ``in_loc``.

All-day bookings are recognised by ``gateway.core.invitations.is_all_day``:
midnight to midnight in the booking's own zone.

Every value is UTF-8 percent-encoded with nothing left "safe", so no character
of a title can end a parameter early. Long descriptions are cut (then
location, then title, if even that is not enough) so that each URL stays under
``MAX_URL_LENGTH`` characters, the limit browsers and mail clients have long
been known to honour.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from gateway.core.invitations import CalendarLinks, is_all_day, local_dates
from gateway.core.model import Booking

MAX_URL_LENGTH = 2000
ELLIPSIS = "\u2026"

GOOGLE_URL = "https://calendar.google.com/calendar/render"
OUTLOOK_URL = "https://outlook.live.com/calendar/0/action/compose"
OFFICE365_URL = "https://outlook.office.com/calendar/0/action/compose"
YAHOO_URL = "https://calendar.yahoo.com/"

Params = list[tuple[str, str]]


def calendar_links(booking: Booking, ics_url: str) -> CalendarLinks:
    """The four "add to calendar" links of ``booking`` and its .ics URL."""
    return CalendarLinks(
        google=google_link(booking),
        outlook=outlook_link(booking, OUTLOOK_URL),
        office365=outlook_link(booking, OFFICE365_URL),
        yahoo=yahoo_link(booking),
        ics=ics_url,
    )


def google_link(booking: Booking) -> str:
    if is_all_day(booking):
        first, after_last = local_dates(booking)
        dates = f"{first:%Y%m%d}/{after_last:%Y%m%d}"
    else:
        dates = f"{_utc_basic(booking.start)}/{_utc_basic(booking.end)}"
    params: Params = [
        ("action", "TEMPLATE"),
        ("text", booking.title),
        ("dates", dates),
        ("details", booking.description),
        ("location", booking.location),
        ("ctz", booking.timezone),
    ]
    return fit_url(GOOGLE_URL, params, shrinkable=("details", "location", "text"))


def outlook_link(booking: Booking, base: str = OUTLOOK_URL) -> str:
    """Outlook.com (``OUTLOOK_URL``) or Office 365 (``OFFICE365_URL``)."""
    if is_all_day(booking):
        first, after_last = local_dates(booking)
        start, end, all_day = first.isoformat(), after_last.isoformat(), "true"
    else:
        start, end, all_day = _utc_iso(booking.start), _utc_iso(booking.end), "false"
    params: Params = [
        ("subject", booking.title),
        ("startdt", start),
        ("enddt", end),
        ("allday", all_day),
        ("body", booking.description),
        ("location", booking.location),
    ]
    return fit_url(base, params, shrinkable=("body", "location", "subject"))


def yahoo_link(booking: Booking) -> str:
    params: Params = [("v", "60"), ("title", booking.title)]
    if is_all_day(booking):
        first, after_last = local_dates(booking)
        last = after_last - timedelta(days=1)
        params += [("st", f"{first:%Y%m%d}"), ("et", f"{last:%Y%m%d}"), ("dur", "allday")]
    else:
        params += [("st", _utc_basic(booking.start)), ("et", _utc_basic(booking.end))]
    params += [("desc", booking.description), ("in_loc", booking.location)]
    return fit_url(YAHOO_URL, params, shrinkable=("desc", "in_loc", "title"))


def _utc_basic(value: datetime) -> str:
    """RFC 5545 3.3.5 form 2 (UTC), which Google and Yahoo read."""
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _utc_iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- encoding and length ------------------------------------------------------------


def encode(value: str) -> str:
    """UTF-8 percent-encoding with no character left unescaped but the
    unreserved ones (RFC 3986 2.3)."""
    return quote(value, safe="")


def build_url(base: str, params: Params) -> str:
    """``base`` with the non-empty parameters as its query."""
    query = "&".join(f"{name}={encode(value)}" for name, value in params if value)
    return f"{base}?{query}"


def fit_url(base: str, params: Params, *, shrinkable: Sequence[str]) -> str:
    """``build_url``, with the ``shrinkable`` parameters cut in that order
    until the URL is shorter than ``MAX_URL_LENGTH``."""
    params = list(params)
    url = build_url(base, params)
    for name in shrinkable:
        excess = len(url) - (MAX_URL_LENGTH - 1)
        if excess <= 0:
            break
        index = next(i for i, (n, _) in enumerate(params) if n == name)
        value = params[index][1]
        room = len(encode(value)) - excess
        params[index] = (name, truncate_encoded(value, room))
        url = build_url(base, params)
    if len(url) >= MAX_URL_LENGTH:
        raise ValueError(f"{base} link cannot be made shorter than {MAX_URL_LENGTH} characters")
    return url


def truncate_encoded(text: str, budget: int) -> str:
    """The longest start of ``text`` that, followed by an ellipsis, takes at
    most ``budget`` characters once percent-encoded; ``text`` itself if it
    fits. Cut between characters (code points), so no UTF-8 sequence and no
    percent-escape is ever split; "" if not even the ellipsis fits."""
    if len(encode(text)) <= budget:
        return text
    room = budget - len(encode(ELLIPSIS))
    if room < 0:
        return ""
    used = 0
    cut = len(text)
    for index, char in enumerate(text):
        used += len(encode(char))
        if used > room:
            cut = index
            break
    # Back off to a boundary a reader sees as one: not before a combining mark
    # or variation selector or skin tone, not around a zero-width joiner (emoji sequences).
    while 0 < cut < len(text) and (_joins(text[cut]) or text[cut - 1] == _ZWJ):
        cut -= 1
    kept = text[:cut].rstrip()
    return kept + ELLIPSIS


_ZWJ = "\u200d"


def _joins(char: str) -> bool:
    """Whether ``char`` belongs to the character before it."""
    return (
        char == _ZWJ
        or unicodedata.category(char).startswith("M")
        or "\U0001f3fb" <= char <= "\U0001f3ff"  # skin tone modifiers
    )
