"""Canonical iCalendar text and its content lines, read as bytes and strings.

The feed works on stored text (see ``gateway.ical.feed``); these helpers bring
it to canonical form, cut components out of it and read single content lines.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import cast

from icalendar.parser import Contentline, Contentlines

# icalendar's content-line API is untyped; these are its signatures.
_content_line: Callable[[str], Contentline] = Contentline
_line_to_ical = cast(Callable[[Contentline], bytes], Contentline.to_ical)
_parse_lines = cast(Callable[[str], Contentlines], Contentlines.from_ical)
_lines_to_ical = cast(Callable[[Contentlines], bytes], Contentlines.to_ical)

# Components are cut out of canonical text (see ``gateway.ical.feed``): a line
# that starts with BEGIN: or END: is always a real line, because a folded
# continuation starts with a space or tab (RFC 5545 3.1). Canonical text has
# these markers in upper case, so plain byte searches find them.
_ODD_MARKER = re.compile(rb"\n(?=[bBeE])(?!BEGIN:|END:)(?i:begin:|end:)")
_MARKER_LINE = re.compile(rb"^(?:begin|end):[^\r\n]*", re.M | re.I)
_LONE_CR = re.compile(r"\r(?!\n)")


def _canonical(text: str) -> bytes:
    """``text`` as CRLF-terminated lines of at most 75 octets (RFC 5545 3.1)
    with BEGIN/END in upper case.

    Objects the gateway wrote already are; others are unfolded and refolded
    by icalendar's content-line code.
    """
    data = text.encode("utf-8")
    crlf = data.count(b"\r\n")
    if (
        data.count(b"\n") == crlf
        and data.count(b"\r") == crlf
        and data.endswith(b"\r\n")
        and max(map(len, data.split(b"\r\n"))) <= 75
        and _ODD_MARKER.search(data) is None
    ):
        return data
    # A lone CR is no line break in iCalendar; drop it so it cannot become one.
    data = _lines_to_ical(_parse_lines(_LONE_CR.sub("", text)))
    # Component names are case-insensitive (RFC 5545 2.1).
    return _MARKER_LINE.sub(lambda m: m.group(0).upper(), data)


def _blocks(data: bytes, name: bytes) -> list[bytes]:
    """The ``name`` components of canonical ``data``, each from BEGIN to END."""
    begin = b"\nBEGIN:" + name + b"\r\n"
    end = b"\nEND:" + name + b"\r\n"
    found: list[bytes] = []
    position = 0
    while (first := data.find(begin, position)) >= 0:
        last = data.find(end, first + len(begin))
        if last < 0:
            break
        found.append(data[first + 1 : last + len(end)])
        # The next block's marker starts with this block's final line break.
        position = last + len(end) - 1
    return found


def _unfold(block: bytes) -> bytes:
    return block.replace(b"\r\n ", b"").replace(b"\r\n\t", b"")


def _lines_with(unfolded: bytes, needle: bytes) -> Iterator[str]:
    """The lines of ``unfolded`` that contain ``needle`` (lower case) anywhere."""
    lowered = unfolded.lower()  # bytes.lower() keeps offsets: ASCII only
    position = lowered.find(needle)
    while position >= 0:
        # (+ 1: a needle may start with the line break that opens its line)
        first = unfolded.rfind(b"\n", 0, position + 1) + 1
        last = unfolded.find(b"\r\n", position)
        if last < 0:
            last = len(unfolded)
        yield unfolded[first:last].decode("utf-8")
        position = lowered.find(needle, last)


def _fold(line: str) -> str:
    if len(line) <= 75 and line.isascii():
        return line
    return _line_to_ical(_content_line(line)).decode("utf-8")


def _split(line: str) -> tuple[str, str]:
    """A content line's parameters part and its value.

    Parameter values holding ":" must be quoted (RFC 5545 3.1), so without a
    quote the first colon ends the parameters.
    """
    end = _content_line(line).value_separator_index() if '"' in line else line.find(":")
    if end < 0:
        return line, ""
    return line[:end], line[end + 1 :]


def _name(line: str) -> str:
    return line.partition(":")[0].partition(";")[0].upper()


@lru_cache(maxsize=2048)
def _tzid_in_head(head: str) -> str | None:
    """The TZID parameter of a property's name-and-parameters part."""
    try:
        params = _content_line(head + ":").parts()[1]
    except ValueError:
        return None
    tzid = params.get("TZID")
    return tzid if isinstance(tzid, str) and tzid else None


def _tzid_of(line: str) -> str | None:
    # The cache works on the parameters part only ("DTSTART;TZID=Europe/Berlin"),
    # which repeats a lot.
    head, _ = _split(line)
    return _tzid_in_head(head) if ";" in head else None


@lru_cache(maxsize=2048)
def _text_value(line: str) -> str:
    """The unescaped value of a TEXT property line (RFC 5545 3.3.11)."""
    if "\\" not in line and '"' not in line:
        return line.partition(":")[2]  # nothing escaped, nothing quoted
    try:
        return str(_content_line(line).parts()[2])
    except ValueError:
        return ""


def _token_value(line: str) -> str:
    return _split(line)[1].strip().upper()
