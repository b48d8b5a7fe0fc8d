"""``set_attendee_params``: an answer changes the attendee's PARTSTAT in a
calendar app's text and not one other byte of it."""

from __future__ import annotations

import difflib

import icalendar
import pytest
import vobject

from gateway.ical.attendee_params import with_partstat

LONG = "x" * 90

APP_TEXT = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//app//EN\r\n"
    "BEGIN:VEVENT\r\nUID:u1\r\nDTSTAMP:20301101T000000Z\r\n"
    "DTSTART:20301203T090000Z\r\nDURATION:PT1H\r\nRRULE:FREQ=WEEKLY;COUNT=3\r\n"
    f"X-APP-NOTE:{LONG[:60]}\r\n {LONG[60:]}\r\n"
    'ATTENDEE;CN="Müller, Zoë";X-APP-SEEN=1:MAILTO:Zoe@Example.com\r\n'
    "ATTENDEE;PARTSTAT=TENTATIVE:mailto:max@example.com\r\n"
    "BEGIN:VALARM\r\nACTION:EMAIL\r\nTRIGGER:-PT1H\r\nSUMMARY:s\r\nDESCRIPTION:d\r\n"
    "ATTENDEE:mailto:zoe@example.com\r\nEND:VALARM\r\n"
    "END:VEVENT\r\n"
    "BEGIN:VEVENT\r\nUID:u1\r\nRECURRENCE-ID:20301210T090000Z\r\nDTSTAMP:20301101T000000Z\r\n"
    "DTSTART:20301210T140000Z\r\nDURATION:PT1H\r\n"
    "ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:zoe@example.com\r\n"
    "END:VEVENT\r\nEND:VCALENDAR\r\n"
)


def _changed_lines(before: str, after: str) -> list[str]:
    """The content lines (unfolded) that differ."""

    def lines(text: str) -> list[str]:
        return text.replace("\r\n ", "").splitlines(True)

    return [line for line in difflib.ndiff(lines(before), lines(after)) if line[:1] in "+-"]


def test_only_the_attendees_lines_change_in_every_event_but_not_in_alarms() -> None:
    after = with_partstat(APP_TEXT, "zoe@example.com", "ACCEPTED")
    assert _changed_lines(APP_TEXT, after) == [
        '- ATTENDEE;CN="Müller, Zoë";X-APP-SEEN=1:MAILTO:Zoe@Example.com\r\n',
        '+ ATTENDEE;CN="Müller, Zoë";X-APP-SEEN=1;PARTSTAT=ACCEPTED:MAILTO:Zoe@Example.com\r\n',
        "- ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:zoe@example.com\r\n",
        "+ ATTENDEE;PARTSTAT=ACCEPTED:mailto:zoe@example.com\r\n",
    ]
    assert max(len(line.encode()) for line in after.split("\r\n")) <= 75
    for reader in (icalendar.Calendar.from_ical, vobject.readOne):
        assert reader(after)  # both parsers still read it
    events = icalendar.Calendar.from_ical(after).walk("VEVENT")
    events[1]["ATTENDEE"] = [events[1]["ATTENDEE"]]  # one ATTENDEE reads as no list
    zoe = [a for e in events for a in e.get("ATTENDEE") if "zoe" in a.lower()]
    assert [str(a.params["PARTSTAT"]) for a in zoe] == ["ACCEPTED"] * 2


def test_a_long_line_is_folded_and_the_texts_line_ending_kept() -> None:
    text = APP_TEXT.replace("\r\n", "\n").replace("X-APP-SEEN=1", f"X-APP-SEEN={LONG}")
    after = with_partstat(text, "zoe@example.com", "DECLINED")
    assert "\r" not in after
    assert max(len(line.encode()) for line in after.split("\n")) <= 75
    (master, _) = icalendar.Calendar.from_ical(after).walk("VEVENT")
    assert master["ATTENDEE"][0].params["X-APP-SEEN"] == LONG
    assert master["ATTENDEE"][0].params["PARTSTAT"] == "DECLINED"


@pytest.mark.parametrize(
    ("email", "partstat"),
    [("nobody@example.com", "ACCEPTED"), ("max@example.com", "TENTATIVE")],
    ids=["not an attendee", "says so already"],
)
def test_nothing_to_change_gives_the_text_back(email: str, partstat: str) -> None:
    assert with_partstat(APP_TEXT, email, partstat) == APP_TEXT
