"""Object hrefs: a name is percent-encoded exactly as RFC 3986 pchar (minus
"/") requires, whether or not it takes the no-quoting fast path."""

from __future__ import annotations

from urllib.parse import quote

from hypothesis import given
from hypothesis import strategies as st

from caldav_backend.caldav.names import object_href, segment

_PCHAR_SAFE = "-._~!$&'()*+,;=:@"


@given(st.text())
def test_a_segment_is_the_name_percent_encoded(name: str) -> None:
    assert segment(name) == quote(name, safe=_PCHAR_SAFE)


def test_names_that_need_quoting_are_quoted() -> None:
    table = {
        "calbench-00001.ics": "calbench-00001.ics",
        "a b.ics": "a%20b.ics",
        "Zoë@home.ics": "Zo%C3%AB@home.ics",
        "x/y": "x%2Fy",
        "100%.ics": "100%25.ics",
        "q?.ics": "q%3F.ics",
        "h#.ics": "h%23.ics",
        "line\n.ics": "line%0A.ics",
    }
    for name, encoded in table.items():
        assert object_href("anna", name) == f"/dav/calendars/anna/{encoded}", name
