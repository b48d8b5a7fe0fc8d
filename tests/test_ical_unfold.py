"""``gateway.ical.guard.unfold``: the guard's (and the known-zone split's)
unfolding is icalendar's exactly (RFC 5545 3.1), its shortcut included."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from icalendar.parser.content_line import UFOLD

from gateway.ical.guard import unfold

LINE_BREAKS_AND_SPACE = st.text(alphabet=["\r", "\n", " ", "\t", "a", ":"], max_size=40)


@given(LINE_BREAKS_AND_SPACE)
def test_unfold_is_icalendars_unfolding(text: str) -> None:
    assert unfold(text) == UFOLD.sub("", text)


@pytest.mark.parametrize(
    ("text", "unfolded"),
    [
        ("A:b\r\n c\r\n", "A:bc\r\n"),
        ("A:b\n\tc\n", "A:bc\n"),
        ("A:b\r\n\r\n c\r\n", "A:bc\r\n"),
        ("A:b\r\nC:d\r\n", "A:b\r\nC:d\r\n"),
        ("A:b \r\nC:d\t\r\n", "A:b \r\nC:d\t\r\n"),
        ("A:b\r \n", "A:b\r \n"),
    ],
)
def test_unfold_table(text: str, unfolded: str) -> None:
    assert unfold(text) == unfolded == UFOLD.sub("", text)
