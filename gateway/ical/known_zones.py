"""Taking the VTIMEZONEs of tz-database zones out of a PUT's text before
icalendar parses it, remembering each distinct block's verdict.

Clients send a VTIMEZONE with every object that uses a TZID (RFC 5545
3.6.5), mostly the same few blocks. For a TZID the tz database knows,
icalendar builds nothing from the block (it resolves the TZID to zoneinfo,
``gateway.ical.zone_cache``), yet reading its lines costs about as much as
the rest of a small object. Such a block changes nothing of what
``gateway.ical.parse`` decides except two things, both known once the
block has been read alone: whether icalendar could read every line of it,
and its TZID (``parse._known_tzids``). So each distinct block (its exact
text) is read once, and later objects holding it are parsed without it.

Only what certainly parses the same either way is taken out: VTIMEZONE
blocks written exactly ``BEGIN:VTIMEZONE`` … ``END:VTIMEZONE``, one after
the other, right after the VCALENDAR's own unfolded property lines, read
without an error, with a TZID that builds no zone of its own, in a text
without X-WR-TIMEZONE (recurring_ical_events rewrites a calendar holding
it). Anything else is left in place, and icalendar reads it as before.

Nothing parsed is kept: only the TZID text, so no parse shares a component
another could change.
"""

from __future__ import annotations

import re
import warnings
from functools import lru_cache

from icalendar import Calendar

from gateway.ical.guard import unfold
from gateway.ical.zone_cache import fresh_zones, zones_met

# A block longer than this is read in place: the cache stays small
# (at most _BLOCKS * _LONGEST characters of keys).
_LONGEST = 8192
_BLOCKS = 64

_BLOCK = re.compile(r"BEGIN:VTIMEZONE\r?\n.*?^END:VTIMEZONE\r?\n", re.DOTALL | re.MULTILINE)
_NAME_END = re.compile("[;:]")
_WR_TIMEZONE = re.compile("X-WR-TIMEZONE", re.IGNORECASE)


def split_known_zones(text: str) -> tuple[str, tuple[str, ...]]:
    """``text`` without its leading VTIMEZONE blocks of tz-database zones
    (as the module docstring says which), and the TZIDs of those taken out.
    Returns ``(text, ())`` when nothing can be taken out."""
    start = _first_block_at(text)
    if start < 0:
        return text, ()
    position = start
    tzids: list[str] = []
    while (block := _BLOCK.match(text, position)) is not None:
        end = block.end()
        # The next line must not continue the END line (a fold, RFC 5545
        # 3.1, may follow blank lines in icalendar's unfolding).
        if end < len(text) and text[end] in " \t\r\n":
            break
        tzid = _known_zone(block.group()) if end - position <= _LONGEST else None
        if tzid is None:
            break
        tzids.append(tzid)
        position = end
    if not tzids:
        return text, ()
    if _WR_TIMEZONE.search(unfold(text)) is not None:
        return text, ()
    return text[:start] + text[position:], tuple(tzids)


def _first_block_at(text: str) -> int:
    """Where the first VTIMEZONE starts, when everything before it is the
    VCALENDAR's BEGIN line and property lines, unfolded; else -1."""
    start = text.find("\nBEGIN:VTIMEZONE") + 1
    if start <= 0:
        return -1
    head = text[:start]
    if "\n " in head or "\n\t" in head:
        return -1
    opened = False
    for line in head.splitlines():
        name = _NAME_END.split(line, 1)[0].upper()
        if "BEGIN" not in name and "END" not in name:
            continue
        if opened or line != "BEGIN:VCALENDAR":
            return -1
        opened = True
    return start if opened else -1


@lru_cache(maxsize=_BLOCKS)
def _known_zone(block: str) -> str | None:
    """The TZID of ``block`` when icalendar reads it without an error and
    builds no zone from it (the tz database knows its TZID); else None."""
    fresh_zones()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            calendars = Calendar.from_ical(
                "BEGIN:VCALENDAR\r\n" + block + "END:VCALENDAR\r\n", multiple=True
            )
    except Exception:  # read in place, where the error is reported as before
        return None
    built = zones_met()
    fresh_zones()
    if built or len(calendars) != 1 or len(calendars[0].subcomponents) != 1:
        return None
    zone = calendars[0].subcomponents[0]
    if zone.name != "VTIMEZONE" or "TZID" not in zone:
        return None
    if any(component.errors for component in calendars[0].walk()):
        return None
    return str(zone["TZID"])
