"""The content lines of a PUT's text that icalendar is given to read: those
of the properties the gateway reads, and every component's BEGIN and END.

icalendar 7 spends some 15 µs on each content line it reads (a scan of the
whole line one character at a time, three parameter dictionaries, the
value's type), and most lines of a client's object are read by nobody
here: VERSION, PRODID, DTSTAMP, CREATED, LAST-MODIFIED, alarms' ACTION,
every client's X- properties. ``gateway.ical.parse`` checks every line
against RFC 5545's grammar on the text as sent (``gateway.ical.syntax``)
and the object is stored as sent; what icalendar builds is only read for
the booking's fields, the checks and the series' span, all from the
properties ``parse.READ_PROPERTIES`` names. So icalendar reads those lines
alone and spends nothing on the rest. For a small event that saves about
a fifth of its parse in a loop of its own, and a smaller share inside a
busy server, where the parse's fixed costs are larger (issue 17).

A VTIMEZONE is kept whole: icalendar builds a zone from every part of one
(those of tz-database zones were taken out before,
``gateway.ical.known_zones``).
"""

from __future__ import annotations

from icalendar.parser.content_line import NEWLINE

from gateway.ical.guard import unfold
from gateway.ical.syntax import LINE_NAME


def lines_read(text: str, properties: frozenset[str]) -> str:
    """``text`` unfolded (RFC 5545 3.1, as icalendar unfolds it), with only
    the content lines of ``properties`` (upper case), BEGIN and END lines,
    and the whole of each VTIMEZONE. ``text`` has passed
    ``gateway.ical.syntax``: every line is a content line."""
    kept: list[str] = []
    in_zone = 0
    # Unfolded and split as icalendar does (RFC 5545 3.1); names as the
    # grammar check reads them.
    for line in NEWLINE.split(unfold(text)):
        found = LINE_NAME.match(line)
        if found is None:  # a blank line (icalendar skips them too)
            continue
        name = found.group().upper()
        if name == "BEGIN" or name == "END":
            # The component's name is the value, after the last colon (a
            # parameter's quoted value may hold one, a name cannot).
            if line.rpartition(":")[2].upper() == "VTIMEZONE":
                in_zone += 1 if name == "BEGIN" else -1
            kept.append(line)
        elif in_zone or name in properties:
            kept.append(line)
    kept.append("")
    return "\r\n".join(kept)
