"""Which characters the gateway accepts in text, and reading bytes as text.

Every CalDAV answer is XML 1.0, whose documents can carry only TAB, LF, CR
and the characters from U+0020 up, minus the surrogates and U+FFFE/U+FFFF
(XML 1.0 section 2.2, production ``Char``). A title holding NUL, ESC, VT or
U+FFFE cannot be written into a ``calendar-data`` element at all, so one such
booking would take every report on its calendar down. ``first_forbidden_character``
is the one rule every input uses (the JSON API, CalDAV PUT, iTIP answers, the
Google import) to refuse such text with a message naming where it is.

``xml_safe`` is the other side: what the XML writer does with text that is
already stored (from before the rule, or put in the database by hand). It
replaces each forbidden character by U+FFFD REPLACEMENT CHARACTER in the XML
only; the stored object and a GET of it stay byte-identical.

``decode`` reads a request body in its declared charset. Python's codec
registry also holds codecs that are no charsets (base64, zlib, rot13) and
ones that raise other errors than UnicodeDecodeError (punycode, idna): only
text encodings are used, and every failure is one ``UnreadableText``.

This module knows no XML, JSON or iCalendar library; it works on ``str``.
"""

from __future__ import annotations

import codecs
import re

# XML 1.0 section 2.2: Char ::= #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD]
# | [#x10000-#x10FFFF]. Everything else, as a character class.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# For one-line identifiers (ids from other systems that become UIDs and
# names): no control character at all, line breaks and DEL included.
_FORBIDDEN_IN_LINE = re.compile("[\x00-\x1f\x7f\ud800-\udfff\ufffe\uffff]")

REPLACEMENT = "\ufffd"

# Python codecs that decode bytes to text but are no charset a client could
# mean (RFC 2978): they turn a harmless body into whatever they like.
_NOT_CHARSETS = frozenset({"punycode", "idna", "undefined", "unicode-escape", "raw-unicode-escape"})

_CONTENT_LINE_NAME = re.compile(r"[A-Za-z0-9-]+(?=[;:])")


class UnreadableText(ValueError):
    """Bytes that are not text in the charset they claim; the message says why."""


class UnknownCharset(UnreadableText):
    """The declared charset is none this server can read text in."""


def first_forbidden_character(text: str, *, one_line: bool = False) -> tuple[int, str] | None:
    """The index and character of the first character of ``text`` that XML
    1.0 cannot carry, or None when there is none. ``one_line``: also refuse
    line breaks, TAB and DEL (for identifiers)."""
    pattern = _FORBIDDEN_IN_LINE if one_line else _FORBIDDEN
    found = pattern.search(text)
    if found is None:
        return None
    return found.start(), found.group()


def code_point(char: str) -> str:
    """``U+0000`` style name of a character."""
    return f"U+{ord(char):04X}"


def text_problem(text: str, *, one_line: bool = False) -> str | None:
    """Why ``text`` cannot be accepted, for a message naming the field
    (``title: contains U+0000 at position 3, ...``); None when it can.
    Positions count characters from 1."""
    found = first_forbidden_character(text, one_line=one_line)
    if found is None:
        return None
    index, char = found
    return (
        f"contains {code_point(char)} at position {index + 1}, which calendar clients cannot carry"
    )


def calendar_text_problem(ics: str) -> str | None:
    """Why the iCalendar text ``ics`` cannot be accepted, naming the
    property and line (``SUMMARY (line 7) contains U+001B at column 12,
    ...``); None when it can. Works on the raw text, so it also names a
    character the iCalendar parser would choke on."""
    found = first_forbidden_character(ics)
    if found is None:
        return None
    index, char = found
    line_start = ics.rfind("\n", 0, index) + 1
    # RFC 5545 3.1: a line starting with a space or TAB continues the one
    # before; the property name is at the start of the first of them.
    start = line_start
    while start > 0 and ics[start : start + 1] in (" ", "\t"):
        start = ics.rfind("\n", 0, start - 1) + 1
    match = _CONTENT_LINE_NAME.match(ics, start)
    name = match.group().strip() if match else ""
    line = f"line {ics.count(chr(10), 0, line_start) + 1}"
    where = f"{name} ({line})" if name else line
    return (
        f"{where} contains {code_point(char)} at column {index - line_start + 1}, "
        "which calendar clients cannot carry"
    )


# The ASCII characters of XML 1.0's Char (tab, LF, CR, U+0020-U+007F): an
# ASCII text is safe when deleting them leaves nothing, which takes a fifth
# of the time of ``_FORBIDDEN.search`` on a calendar object (every member
# of a query answer).
_XML_ASCII = bytes([0x09, 0x0A, 0x0D, *range(0x20, 0x80)])


def xml_safe(text: str) -> str:
    """``text`` with every character XML 1.0 cannot carry replaced by
    U+FFFD (the text itself when there is none: the common case costs one
    search)."""
    if text.isascii():
        if not text.encode("ascii").translate(None, _XML_ASCII):
            return text
    elif _FORBIDDEN.search(text) is None:
        return text
    return _FORBIDDEN.sub(REPLACEMENT, text)


def decode(raw: bytes, charset: str | None, *, default: str = "utf-8") -> str:
    """``raw`` as text in ``charset`` (``default`` when none is declared).

    Raises ``UnknownCharset`` for a charset Python does not know or a codec
    that is no text encoding or no charset, ``UnreadableText`` for bytes
    that do not decode.
    The result may still hold characters ``first_forbidden_character``
    refuses (UTF-7 can spell lone surrogates): that check is the caller's."""
    name = (charset or default).strip()
    try:
        info = codecs.lookup(name)
    except LookupError:
        raise UnknownCharset(f"unknown charset {name!r}") from None
    if not info._is_text_encoding or info.name in _NOT_CHARSETS:
        raise UnknownCharset(f"{name!r} is not a text charset")
    try:
        return raw.decode(info.name)
    except UnicodeDecodeError as exc:
        raise UnreadableText(
            f"is not text in the charset {name} (byte {exc.start + 1}: {exc.reason})"
        ) from None
    except (UnicodeError, ValueError, LookupError) as exc:
        raise UnreadableText(f"is not text in the charset {name} ({exc})") from None
