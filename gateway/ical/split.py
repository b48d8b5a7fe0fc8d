"""Splitting an iCalendar file (an export of a whole calendar) into calendar
objects, one per UID, as RFC 4791 4.1 wants them stored: all components of
one UID (a series and its overrides) together, with the VTIMEZONEs they
use, and no METHOD.

The split works on the text, not on parsed components: every piece holds
the file's own lines, byte for byte (folding, X- properties, VALARMs), so an
imported object is stored exactly as the export wrote it, like a CalDAV PUT.
Judging a piece is the PUT path's job (``gateway.ical.parse``); this module
only finds the pieces and says which components it could not place (no
UID), or why the file has no structure to split (``UnsplittableFile``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from gateway.core.calendar_import import CalendarFile, ImportPiece, Unplaced, UnsplittableFile

# RFC 5545 3.1: a line starting with a space or a tab continues the previous.
_CONTINUATION = (" ", "\t")
_LINE_BREAK = re.compile(r"\r\n|\n|\r")
_TZID_PARAMETER = re.compile(r';TZID=("[^"]*"|[^;]*)', re.IGNORECASE)


@dataclass
class _Line:
    number: int  # 1-based, of the first physical line
    raw: list[str]  # the physical lines, as written

    @property
    def text(self) -> str:
        """Unfolded (RFC 5545 3.1)."""
        return "".join([self.raw[0], *(part[1:] for part in self.raw[1:])])

    @property
    def name(self) -> str:
        return self.head.split(";", 1)[0].strip().upper()

    @property
    def head(self) -> str:
        """Name and parameters: up to the first colon outside a quoted
        parameter value (RFC 5545 3.1)."""
        text = self.text
        quoted = False
        for index, char in enumerate(text):
            if char == '"':
                quoted = not quoted
            elif char == ":" and not quoted:
                return text[:index]
        return text

    @property
    def value(self) -> str:
        return self.text[len(self.head) + 1 :]


@dataclass
class _Block:
    """A component directly inside a VCALENDAR, with all its lines."""

    name: str
    line: int
    lines: list[_Line] = field(default_factory=list)
    uid: str | None = None
    tzid: str | None = None  # of a VTIMEZONE
    zones_used: set[str] = field(default_factory=set)

    def text(self) -> list[str]:
        return [raw for line in self.lines for raw in line.raw]


@dataclass
class _Calendar:
    properties: list[_Line] = field(default_factory=list)
    blocks: list[_Block] = field(default_factory=list)


def _logical_lines(text: str) -> list[_Line]:
    lines: list[_Line] = []
    for number, physical in enumerate(_LINE_BREAK.split(text.lstrip("\ufeff")), start=1):
        if physical.startswith(_CONTINUATION) and lines:
            lines[-1].raw.append(physical)
        elif physical.strip():
            lines.append(_Line(number, [physical]))
    return lines


def _unquote(tzid: str) -> str:
    return tzid[1:-1] if len(tzid) >= 2 and tzid[0] == tzid[-1] == '"' else tzid


def _read(text: str) -> list[_Calendar]:
    calendars: list[_Calendar] = []
    calendar: _Calendar | None = None
    block: _Block | None = None
    stack: list[str] = []
    for line in _logical_lines(text):
        name, value = line.name, line.value.strip().upper()
        if name == "BEGIN":
            if not stack and value != "VCALENDAR":
                raise UnsplittableFile(
                    f"line {line.number}: expected BEGIN:VCALENDAR, found BEGIN:{value}"
                )
            stack.append(value)
            if len(stack) == 1:
                calendar = _Calendar()
                calendars.append(calendar)
                continue
            if len(stack) == 2:
                block = _Block(value, line.number)
                assert calendar is not None
                calendar.blocks.append(block)
        elif name == "END":
            if not stack or stack[-1] != value:
                open_ = f"BEGIN:{stack[-1]} is open" if stack else "nothing is open"
                raise UnsplittableFile(f"line {line.number}: END:{value} but {open_}")
            stack.pop()
            if not stack:
                calendar = None
                continue
            if len(stack) == 1:
                assert block is not None
                block.lines.append(line)
                block = None
                continue
        elif not stack:
            raise UnsplittableFile(
                f"line {line.number}: {line.text[:60]!r} is outside BEGIN:VCALENDAR/END:VCALENDAR"
            )
        if len(stack) == 1:
            assert calendar is not None
            calendar.properties.append(line)
            continue
        assert block is not None
        block.lines.append(line)
        if len(stack) == 2 and name == "UID" and block.uid is None:
            block.uid = line.value.strip()
        if len(stack) == 2 and name == "TZID" and block.name == "VTIMEZONE":
            block.tzid = line.value.strip()
        for found in _TZID_PARAMETER.findall(line.head):
            block.zones_used.add(_unquote(found.strip()))
    if stack:
        raise UnsplittableFile(f"the file ends inside BEGIN:{stack[-1]} (is it cut short?)")
    if not calendars:
        raise UnsplittableFile("the file holds no BEGIN:VCALENDAR: not an iCalendar file")
    return calendars


def split_calendar(text: str) -> CalendarFile:
    """The calendar objects of ``text``, one per UID in the order the file
    first names them; components without a UID are listed as unplaced.

    Each piece carries its own VCALENDAR's properties but METHOD (RFC 4791
    4.1: stored objects have none) and the VTIMEZONEs its components name."""
    pieces: dict[str, list[tuple[_Calendar, _Block]]] = {}
    unplaced: list[Unplaced] = []
    calendars = _read(text)
    for calendar in calendars:
        for block in calendar.blocks:
            if block.name == "VTIMEZONE":
                continue
            if not block.uid:
                unplaced.append(
                    Unplaced(
                        block.line,
                        f"the {block.name} at line {block.line} has no UID "
                        "(RFC 5545 3.8.4.7 requires one), so it cannot be stored",
                    )
                )
                continue
            pieces.setdefault(block.uid, []).append((calendar, block))
    zones = {
        block.tzid: block
        for calendar in calendars
        for block in calendar.blocks
        if block.name == "VTIMEZONE" and block.tzid
    }
    return CalendarFile(
        pieces=tuple(_piece(uid, parts, zones) for uid, parts in pieces.items()),
        unplaced=tuple(unplaced),
    )


def _piece(
    uid: str, parts: list[tuple[_Calendar, _Block]], zones: dict[str, _Block]
) -> ImportPiece:
    calendar = parts[0][0]
    used = sorted({zone for _, block in parts for zone in block.zones_used if zone in zones})
    lines = ["BEGIN:VCALENDAR"]
    lines += [raw for prop in calendar.properties if prop.name != "METHOD" for raw in prop.raw]
    for zone in used:
        lines += zones[zone].text()
    for _, block in parts:
        lines += block.text()
    lines.append("END:VCALENDAR")
    return ImportPiece(uid=uid, line=parts[0][1].line, ics="\r\n".join(lines) + "\r\n")
