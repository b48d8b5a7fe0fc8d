"""The character rule every input uses, the XML writer's fallback, and
reading bytes in a declared charset (gateway.core.text)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from gateway.core.text import (
    REPLACEMENT,
    UnknownCharset,
    UnreadableText,
    calendar_text_problem,
    decode,
    first_forbidden_character,
    text_problem,
    xml_safe,
)

# XML 1.0 section 2.2 Char, spelled out independently of the module's regex.


def _xml_char(char: str) -> bool:
    c = ord(char)
    return (
        c in (0x9, 0xA, 0xD)
        or 0x20 <= c <= 0xD7FF
        or 0xE000 <= c <= 0xFFFD
        or 0x10000 <= c <= 0x10FFFF
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", None),
        ("Haircut", None),
        ("tab\there, line\nbreak\r\n", None),
        ("Ünïcödé 日本 🎉 \u007f \u0085 \ufffd", None),  # DEL and NEL are XML characters
        ("a\x00b", (1, "\x00")),  # NUL
        ("\x1bescape", (0, "\x1b")),  # ESC
        ("vertical\x0btab", (8, "\x0b")),  # VT
        ("form\x0cfeed", (4, "\x0c")),
        ("x\ufffe", (1, "\ufffe")),
        ("x\uffff", (1, "\uffff")),
        ("lone \ud800 high", (5, "\ud800")),
        ("lone \udfff low", (5, "\udfff")),
        ("first \x01 then \x00", (6, "\x01")),
    ],
)
def test_first_forbidden_character(text: str, expected: tuple[int, str] | None) -> None:
    assert first_forbidden_character(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("abc-123_x", None),
        ("a\tb", (1, "\t")),
        ("a\nb", (1, "\n")),
        ("a\rb", (1, "\r")),
        ("a\x7fb", (1, "\x7f")),
        ("a\x00b", (1, "\x00")),
    ],
)
def test_one_line_text_refuses_every_control_character(
    text: str, expected: tuple[int, str] | None
) -> None:
    assert first_forbidden_character(text, one_line=True) == expected


@given(st.text(alphabet=st.characters(codec=None, exclude_categories=())))
def test_the_rule_is_xml_1_0(text: str) -> None:
    found = first_forbidden_character(text)
    bad = [i for i, c in enumerate(text) if not _xml_char(c)]
    assert found == ((bad[0], text[bad[0]]) if bad else None)


@given(st.text(alphabet=st.characters(codec=None, exclude_categories=())))
def test_xml_safe_text_always_serializes_and_reads_back(text: str) -> None:
    safe = xml_safe(text)
    assert first_forbidden_character(safe) is None
    assert len(safe) == len(text)
    assert all(s in (t, REPLACEMENT) for s, t in zip(safe, text, strict=True))
    node = etree.Element("a")
    node.text = safe  # lxml raises on what XML cannot carry
    parsed = etree.fromstring(etree.tostring(node, encoding="utf-8"))
    # (lxml writes CR as &#13;, so even the CRLFs of calendar data survive.)
    assert (parsed.text or "") == safe


@given(
    st.text(alphabet=st.characters(max_codepoint=0x7F))
    | st.text(alphabet=st.characters(codec=None, exclude_categories=()))
)
def test_xml_safe_replaces_exactly_what_xml_cannot_carry(text: str) -> None:
    # ASCII texts (calendar data, hrefs) take a path of their own: the
    # first strategy gives them, control characters included.
    expected = "".join(c if _xml_char(c) else REPLACEMENT for c in text)
    assert xml_safe(text) == expected


def test_xml_safe_keeps_clean_text_as_is() -> None:
    text = "Haircut with Anna"
    assert xml_safe(text) is text
    assert xml_safe("a\x00b\ufffe") == "a\ufffdb\ufffd"


def test_the_problem_names_the_character_and_its_position() -> None:
    assert text_problem("ok") is None
    assert text_problem("ab\x00") == (
        "contains U+0000 at position 3, which calendar clients cannot carry"
    )
    assert "U+FFFE at position 2" in str(text_problem("a\ufffe"))


ICS = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:1\r\n"
    "SUMMARY;LANGUAGE=en:Hair{summary}\r\n"
    "DESCRIPTION:a long\r\n  folded te{description}xt\r\n"
    "END:VEVENT\r\nEND:VCALENDAR\r\n"
)


@pytest.mark.parametrize(
    ("summary", "description", "expected"),
    [
        ("cut", "", None),
        ("c\x00ut", "", "SUMMARY (line 5) contains U+0000 at column 26"),
        ("cut", "\x1b", "DESCRIPTION (line 7) contains U+001B at column 12"),
        ("\ufffe", "\x0b", "SUMMARY (line 5) contains U+FFFE at column 25"),
    ],
)
def test_the_calendar_problem_names_the_property(
    summary: str, description: str, expected: str | None
) -> None:
    problem = calendar_text_problem(ICS.format(summary=summary, description=description))
    if expected is None:
        assert problem is None
    else:
        assert problem == f"{expected}, which calendar clients cannot carry"


def test_a_character_before_any_property_names_the_line() -> None:
    assert calendar_text_problem("\x00BEGIN:VCALENDAR") == (
        "line 1 contains U+0000 at column 1, which calendar clients cannot carry"
    )


@pytest.mark.parametrize(
    ("raw", "charset", "text"),
    [
        (b"caf\xc3\xa9", None, "café"),
        (b"caf\xc3\xa9", "UTF-8", "café"),
        (b"caf\xe9", "latin1", "café"),
        (b"caf\xe9", "iso-8859-1", "café"),
        (b"\xff\xfec\x00", "utf-16", "c"),
        (b"a+AGU-", "utf-7", "ae"),
    ],
)
def test_decode_reads_real_charsets(raw: bytes, charset: str | None, text: str) -> None:
    assert decode(raw, charset) == text


@pytest.mark.parametrize(
    ("charset", "message"),
    [
        ("foo", "unknown charset 'foo'"),
        ("punycode", "'punycode' is not a text charset"),
        ("idna", "'idna' is not a text charset"),
        ("base64", "'base64' is not a text charset"),
        ("zlib", "'zlib' is not a text charset"),
        ("rot13", "'rot13' is not a text charset"),
        ("hex", "'hex' is not a text charset"),
        ("unicode_escape", "'unicode_escape' is not a text charset"),
        ("undefined", "'undefined' is not a text charset"),
    ],
)
def test_decode_refuses_what_is_no_charset(charset: str, message: str) -> None:
    with pytest.raises(UnknownCharset) as caught:
        decode(b"BEGIN:VCALENDAR", charset)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("raw", "charset"),
    [(b"caf\xe9", None), (b"caf\xe9", "utf-8"), (b"\xff\xfec", "utf-16"), (b"\x80", "ascii")],
)
def test_decode_refuses_bytes_that_do_not_decode(raw: bytes, charset: str | None) -> None:
    with pytest.raises(UnreadableText) as caught:
        decode(raw, charset)
    assert not isinstance(caught.value, UnknownCharset)
    assert str(caught.value).startswith(f"is not text in the charset {charset or 'utf-8'} (byte ")


@given(st.binary(max_size=64), st.sampled_from(["utf-8", "utf-7", "utf-16", "latin1", "punycode"]))
def test_decode_raises_nothing_but_unreadable_text(raw: bytes, charset: str) -> None:
    with contextlib.suppress(UnreadableText):
        decode(raw, charset)
