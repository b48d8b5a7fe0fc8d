"""Server-written scheduling values in a stored object's text: SCHEDULE-STATUS
on ATTENDEE (RFC 6638 3.2.9, 7.3) and a raised SEQUENCE (RFC 5546 2.1.4).

The text is otherwise kept as the client sent it (RFC 4791 5.3.2), so these
functions edit content lines, not a re-serialized calendar: only the lines
they change are rewritten (unfolded, edited, folded again); every other
octet, line endings included, stays. icalendar's content-line parser finds
where a line's parameters end (quoted values may hold ":" and ";").

Only the properties of the scheduled components count (VEVENT, VTODO,
VJOURNAL, overridden occurrences included): an ATTENDEE of an e-mail VALARM
is no one the server schedules, and a VTIMEZONE has no SEQUENCE.

Not here: which code an attendee gets (``gateway.core.service`` and the
mail handler decide) and whether a change raises SEQUENCE
(``gateway.core.effects.raises_sequence``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping

from gateway.core.invitations import mailbox

from .common import _address
from .lines import _split

_SCHEDULED = frozenset({"VEVENT", "VTODO", "VJOURNAL"})
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\n|\r(?!\n)|$)")
_STATUS = "SCHEDULE-STATUS"


def _logical_lines(text: str) -> Iterator[tuple[str, str]]:
    """(the physical lines of one content line as written, the content line
    unfolded without its line ending), in order; together the first items
    are ``text``."""
    physical = [m.group(0) for m in _LINE.finditer(text) if m.group(0)]
    index = 0
    while index < len(physical):
        last = index + 1
        while last < len(physical) and physical[last][:1] in (" ", "\t"):
            last += 1
        written = "".join(physical[index:last])
        unfolded = "".join(
            line.rstrip("\r\n") if n == 0 else line.rstrip("\r\n")[1:]
            for n, line in enumerate(physical[index:last])
        )
        yield written, unfolded
        index = last


def _ending(written: str) -> str:
    for ending in ("\r\n", "\n", "\r"):
        if written.endswith(ending):
            return ending
    return ""


def _fold(line: str, ending: str) -> str:
    """``line`` folded at 75 octets (RFC 5545 3.1), never inside a UTF-8
    sequence, with ``ending`` after each physical line."""
    parts: list[str] = []
    current, size, limit = "", 0, 75
    for char in line:
        width = len(char.encode("utf-8"))
        if size + width > limit:
            parts.append(current)
            current, size, limit = " ", 1, 75
        current += char
        size += width
    parts.append(current)
    return (ending or "\r\n").join(parts) + ending


def _name(unfolded: str) -> str:
    return unfolded.partition(":")[0].partition(";")[0].strip().upper()


def split_params(head: str) -> list[str]:
    """``NAME;P1=a;P2="b;c"`` -> ``["NAME", "P1=a", 'P2="b;c"']`` (quotes kept)."""
    segments, current, quoted = [], "", False
    for char in head:
        if char == '"':
            quoted = not quoted
        if char == ";" and not quoted:
            segments.append(current)
            current = ""
        else:
            current += char
    segments.append(current)
    return segments


def param_name(segment: str) -> str:
    return segment.partition("=")[0].strip().upper()


def attendee_mailbox(value: str) -> str:
    """The mailbox (``mailbox``) of an ATTENDEE's CAL-ADDRESS value."""
    return mailbox(_address(value))


def edit_scheduled(text: str, change: Callable[[str, str], str | None]) -> str:
    """``text`` with each content line of a scheduled component for which
    ``change(name, unfolded)`` gives a new line replaced by it (folded)."""
    stack: list[str] = []
    out: list[str] = []
    for written, unfolded in _logical_lines(text):
        name = _name(unfolded)
        value = unfolded.partition(":")[2].strip().upper()
        if name == "BEGIN":
            stack.append(value)
        elif name == "END":
            if stack:
                stack.pop()
        elif stack and stack[-1] in _SCHEDULED:
            new = change(name, unfolded)
            if new is not None and new != unfolded:
                out.append(_fold(new, _ending(written)))
                continue
        out.append(written)
    return "".join(out)


def with_schedule_status(text: str, codes: Mapping[str, str | None]) -> str:
    """``text`` with SCHEDULE-STATUS set to ``codes[address]`` on each
    ATTENDEE whose address ``codes`` holds (any spelling of the mailbox), or
    removed where the code is None; other attendees and lines untouched."""
    wanted = {mailbox(address): code for address, code in codes.items()}

    def change(name: str, unfolded: str) -> str | None:
        if name != "ATTENDEE":
            return None
        head, value = _split(unfolded)
        address = attendee_mailbox(value)
        if address not in wanted:
            return None
        code = wanted[address]
        segments = [s for s in split_params(head)[1:] if param_name(s) != _STATUS]
        if code is not None:
            segments.append(f"{_STATUS}={code}")
        return ";".join([split_params(head)[0], *segments]) + ":" + value

    return edit_scheduled(text, change)


def schedule_statuses(text: str) -> dict[str, str]:
    """mailbox -> the SCHEDULE-STATUS its ATTENDEE carries (the first one
    met when components disagree), for the attendees that carry one."""
    found: dict[str, str] = {}

    def look(name: str, unfolded: str) -> None:
        if name != "ATTENDEE":
            return
        head, value = _split(unfolded)
        for segment in split_params(head)[1:]:
            if param_name(segment) == _STATUS:
                code = segment.partition("=")[2].strip().strip('"')
                found.setdefault(attendee_mailbox(value), code)

    edit_scheduled(text, look)
    found.pop("", None)
    return found


def with_sequence(text: str, sequence: int) -> str:
    """``text`` with SEQUENCE raised to ``sequence`` in each scheduled
    component holding a lower one; a component without SEQUENCE (0, RFC
    5545 3.8.7.4) gets the line after its UID."""
    stack: list[str] = []
    out: list[str] = []
    pending = False  # a scheduled component whose SEQUENCE is not seen yet
    uid_at: int | None = None
    for written, unfolded in _logical_lines(text):
        name = _name(unfolded)
        value = unfolded.partition(":")[2].strip()
        if name == "BEGIN":
            stack.append(value.upper())
            if value.upper() in _SCHEDULED:
                pending, uid_at = True, None
        elif name == "END" and stack:
            if value.upper() in _SCHEDULED and pending and uid_at is not None:
                ending = _ending(out[uid_at]) or "\r\n"
                out.insert(uid_at + 1, f"SEQUENCE:{sequence}{ending}")
            if value.upper() in _SCHEDULED:
                pending = False
            stack.pop()
        elif stack and stack[-1] in _SCHEDULED:
            if name == "UID":
                uid_at = len(out)
            elif name == "SEQUENCE":
                pending = False
                try:
                    current = int(value)
                except ValueError:
                    current = -1
                if current < sequence:
                    out.append(_fold(f"{_split(unfolded)[0]}:{sequence}", _ending(written)))
                    continue
        out.append(written)
    return "".join(out)
