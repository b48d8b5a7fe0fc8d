"""``gateway.ical.syntax.syntax_problem``: RFC 5545's grammar on a client's
raw calendar text (issue 13 item 3), as a table of what is accepted (the
tolerances named in the module docstring included) and what is refused,
with the line and the property each refusal names."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import icalendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.ical.syntax import syntax_problem
from tests.ical_readers import read_icalendar, read_vobject


def text(*lines: str, head: tuple[str, ...] = (), nl: str = "\r\n") -> str:
    """A calendar whose VEVENT's extra ``lines`` start on line 9."""
    return (
        nl.join(
            [
                "BEGIN:VCALENDAR",  # 1
                "VERSION:2.0",  # 2
                "PRODID:-//test//syntax//EN",  # 3
                *head,
                "BEGIN:VEVENT",  # 4
                "UID:s1@test",  # 5
                "DTSTAMP:20260101T000000Z",  # 6
                "SUMMARY:Haircut",  # 7
                "LOCATION:Salon",  # 8
                *lines,
                "END:VEVENT",
                "END:VCALENDAR",
            ]
        )
        + nl
    )


def alarm(*lines: str) -> tuple[str, ...]:
    """A VALARM whose ``lines`` start on line 12 of ``text(*alarm(...))``."""
    return ("BEGIN:VALARM", "ACTION:DISPLAY", "DESCRIPTION:Reminder", *lines, "END:VALARM")


def zone(*standard: str) -> tuple[str, ...]:
    """A VTIMEZONE for the head; the STANDARD's ``standard`` lines start on line 7."""
    return (
        "BEGIN:VTIMEZONE",
        "TZID:My/Zone",
        "BEGIN:STANDARD",
        *standard,
        "END:STANDARD",
        "END:VTIMEZONE",
    )


ZONE_OK = ("DTSTART:19701025T030000", "TZOFFSETFROM:+0200", "TZOFFSETTO:+0100")

ACCEPTED = {
    "a plain event": text("DTSTART:20260302T090000Z", "DTEND:20260302T100000Z"),
    "LF line ends": text("DTSTART:20260302T090000Z", nl="\n"),
    "blank lines between and after": text("DTSTART:20260302T090000Z", "", "X-A:1") + "\r\n\r\n",
    "folds with a space and a tab": text("DESCRIPTION:one", " two", "\tthree", "  four"),
    "a continuation of only spaces": text("DESCRIPTION:one", "   "),
    "non-ASCII values": text("DESCRIPTION:Grüße, 日本語; \\, ok: yes"),
    "lower-case names": text(
        "dtstart:20260302T090000Z", "begin:valarm", "action:DISPLAY", "trigger:-PT5M", "end:VALARM"
    ),
    "quoted parameters with ; : ,": text(
        'ATTENDEE;CN="Doe, J; Dr: X";PARTSTAT=ACCEPTED:mailto:j@x'
    ),
    "an empty parameter value and a list": text('X-A;X-B=;X-C=a,b,"c,d":1'),
    "an empty value": text("X-EMPTY:"),
    # Tolerances (module docstring): both icalendar and vobject read them.
    "'_' in names (Lotus Notes)": text("X-LOTUS_NOTES;X-MS_OLK=1:a"),
    "a DATE DTSTART without VALUE=DATE": text("DTSTART:20260302", "DTEND:20260303"),
    "a DATE RECURRENCE-ID without VALUE=DATE": text("DTSTART:20260302", "RECURRENCE-ID:20260302"),
    "DATE values with VALUE=DATE": text(
        "DTSTART;VALUE=DATE:20260302", "EXDATE;VALUE=DATE:20260303,20260304"
    ),
    "DTSTAMP and CREATED in local time": text(
        "CREATED:20260101T000000", "LAST-MODIFIED:20260101T000000"
    ),
    "year 0000 (item 4)": text("CREATED:00000101T000000Z", "LAST-MODIFIED:00000229T000000Z"),
    "TRIGGER forms": text(
        *alarm("TRIGGER:-PT15M"),
        *alarm("TRIGGER;RELATED=END:+PT0S"),
        *alarm("TRIGGER:-P1W"),
        *alarm("TRIGGER:-P1DT2H"),
        *alarm("TRIGGER;VALUE=DATE-TIME:20260302T080000Z"),
        *alarm("TRIGGER;VALUE=DURATION:PT1H1S"),
    ),
    "a TRIGGER date-time without VALUE (Apple iCal)": text(*alarm("TRIGGER:20260302T080000Z")),
    "REPEAT and DURATION of an alarm": text(*alarm("TRIGGER:-PT15M", "REPEAT:2", "DURATION:PT5M")),
    "an empty RDATE": text("DTSTART:20260302T090000Z", "RDATE:"),
    "RDATE periods": text(
        "RDATE;VALUE=PERIOD:20260305T090000Z/PT1H,20260306T090000Z/20260306T100000Z"
    ),
    "EXDATE and RDATE lists": text(
        "EXDATE:20260303T090000Z,20260304T090000Z", "RDATE:20260310T090000Z"
    ),
    "a DURATION": text("DTSTART:20260302T090000Z", "DURATION:P1DT2H30M"),
    "integers and GEO": text("SEQUENCE:3", "PRIORITY:+1", "GEO:52.52;-13.405"),
    "a VTIMEZONE": text(head=zone(*ZONE_OK)),
    "a UTC offset with seconds": text(
        head=zone("DTSTART:19701025T030000", "TZOFFSETFROM:+001728", "TZOFFSETTO:+0100")
    ),
    "no limit on VTODO duplicates (refused later as a component)": text().replace(
        "BEGIN:VEVENT", "BEGIN:VTODO\r\nSUMMARY:a\r\nSUMMARY:b\r\nEND:VTODO\r\nBEGIN:VEVENT"
    ),
}

# What each refusal must say: the start of the message and a fragment.
REFUSED = {
    "a fold without a space": (
        text("DESCRIPTION:a long", "description continued"),
        "line 10 is not an iCalendar content line ('description continued')",
        "a folded line must start with a space or a tab (RFC 5545 3.1)",
    ),
    "a fold without a space whose text has a colon": (
        text("DESCRIPTION:a long", "description: continued"),
        "line 10: a second DESCRIPTION in VEVENT (the first is on line 9)",
        "is this a folded line that does not start with a space or a tab?",
    ),
    "a continuation after a blank line": (
        text("DESCRIPTION:one", "", " two"),
        "line 11 starts with a space or a tab",
        "3.1",
    ),
    "a continuation first": (" BEGIN:VCALENDAR\r\n", "line 1 starts with a space", "3.1"),
    "a byte order mark": ("\ufeff" + text(), "line 1 starts with a byte order mark", "3.1.4"),
    "a lone CR": (text("DESCRIPTION:one\rtwo"), "line 9 holds a carriage return (CR)", "CRLF"),
    "a space in a name": (
        text(head=("REFRESH - INTERVAL; VALUE = DURATION:PT48H",)),
        "line 4 is not an iCalendar content line ('REFRESH - INTERVAL",
        "a property name holds only letters, digits and '-'",
    ),
    "a parameter without a value": (text("X-A;X-B:1"), "line 9 is not", "parameters are written"),
    "a space before a parameter": (text("X-A; X-B=1:1"), "line 9 is not", "parameters"),
    "a quote inside a plain parameter value": (text('X-A;X-B=a"b:1'), "line 9 is not", "quote"),
    "text after a quoted parameter value": (text('X-A;X-B="a"b:1'), "line 9 is not", "quote"),
    "a vCard group": (text("g.X-A:1"), "line 9 is not", "property name"),
    "END:VCALENDARD": (
        text().replace("END:VCALENDAR", "END:VCALENDARD"),
        "line 10 is END:VCALENDARD, but VCALENDAR opened on line 1 is still open",
        "3.4",
    ),
    "END of another component": (
        text(*alarm("TRIGGER:-PT5M")).replace("END:VALARM", "END:VTODO"),
        "line 13 is END:VTODO, but VALARM opened on line 9 is still open",
        "3.6",
    ),
    "no END": (
        text()[: -len("END:VCALENDAR\r\n")],
        "VCALENDAR opened on line 1 is never closed",
        "END:VCALENDAR is missing",
    ),
    "an END without BEGIN": (
        "END:VCALENDAR\r\n",
        "line 1 is END:VCALENDAR, but no component",
        "3.4",
    ),
    "content after END:VCALENDAR": (
        text() + "X-TRAILER:1\r\n",
        "line 11 comes after END:VCALENDAR (line 10)",
        "4791 4.1",
    ),
    "a second VCALENDAR": (text() + text(), "line 11 comes after END:VCALENDAR", "3.4"),
    "a property before BEGIN:VCALENDAR": (
        "VERSION:2.0\r\n" + text(),
        "line 1 ('VERSION:2.0')",
        "before BEGIN:VCALENDAR",
    ),
    "a bare VEVENT": (
        "BEGIN:VEVENT\r\nEND:VEVENT\r\n",
        "line 1 is BEGIN:VEVENT",
        "BEGIN:VCALENDAR",
    ),
    "BEGIN without a name": (
        text("BEGIN:V ALARM"),
        "line 9: BEGIN 'V ALARM' is not a component name",
        "3.4",
    ),
    "nothing but blank lines": ("\r\n\r\n", "no BEGIN:VCALENDAR", "3.4"),
    "a second SUMMARY": (text("SUMMARY:again"), "line 9: a second SUMMARY in VEVENT", "3.6.1"),
    "a second UID": (
        text("UID:other"),
        "line 9: a second UID in VEVENT (the first is on line 5)",
        "3.6.1",
    ),
    "a second TRIGGER": (
        text(*alarm("TRIGGER:-PT5M", "TRIGGER:-PT1M")),
        "line 13: a second TRIGGER in VALARM (the first is on line 12)",
        "3.6.6",
    ),
    "TRIGGER:PT": (
        text(*alarm("TRIGGER:PT")),
        "line 12: TRIGGER in VALARM is 'PT', not a duration",
        "3.8.6.3",
    ),
    "TRIGGER:P": (text(*alarm("TRIGGER:P")), "line 12: TRIGGER in VALARM is 'P'", "3.8.6.3"),
    "TRIGGER:-PT": (text(*alarm("TRIGGER:-PT")), "line 12: TRIGGER in VALARM", "duration"),
    "TRIGGER:-P1DT": (text(*alarm("TRIGGER:-P1DT")), "line 12: TRIGGER in VALARM", "duration"),
    "TRIGGER:-P1W2D": (text(*alarm("TRIGGER:-P1W2D")), "line 12: TRIGGER in VALARM", "duration"),
    "TRIGGER:-15M": (text(*alarm("TRIGGER:-15M")), "line 12: TRIGGER in VALARM", "duration"),
    "TRIGGER in lower case": (
        text(*alarm("TRIGGER:-pt15m")),
        "line 12: TRIGGER in VALARM",
        "duration",
    ),
    "TRIGGER with a space": (text(*alarm("TRIGGER: -PT15M")), "line 12: TRIGGER", "duration"),
    "a TRIGGER date-time that is a date": (
        text(*alarm("TRIGGER;VALUE=DATE-TIME:20200101")),
        "line 12: TRIGGER in VALARM is '20200101', not a UTC date-time",
        "3.8.6.3",
    ),
    "a TRIGGER date-time in local time": (
        text(*alarm("TRIGGER;VALUE=DATE-TIME:20260302T080000")),
        "line 12: TRIGGER in VALARM is '20260302T080000', not a UTC date-time",
        "3.8.6.3",
    ),
    "TRIGGER;VALUE=DATE": (
        text(*alarm("TRIGGER;VALUE=DATE:20260302")),
        "line 12: TRIGGER in VALARM has VALUE=DATE, which it cannot have",
        "VALUE=DURATION, VALUE=DATE-TIME",
    ),
    "a DTSTART date-time with VALUE=DATE": (
        text("DTSTART;VALUE=DATE:20260302T090000"),
        "line 9: DTSTART in VEVENT",
        "a date such as",
    ),
    "a DTSTART period": (
        text("DTSTART;VALUE=PERIOD:20260302T090000Z/PT1H"),
        "line 9: DTSTART in VEVENT has VALUE=PERIOD",
        "3.8.2.4",
    ),
    "a DTSTART in lower case": (text("DTSTART:20260302t090000z"), "line 9: DTSTART", "3.8.2.4"),
    "month 13": (text("DTEND:20261301T090000Z"), "line 9: DTEND in VEVENT", "3.8.2.2"),
    "30 February": (text("DUE:20260230T090000Z"), "line 9: DUE in VEVENT", "3.8.2.3"),
    "a leap second": (text("DTSTART:20261231T235960Z"), "line 9: DTSTART", "3.8.2.4"),
    "a short time": (text("DTSTART:20260302T0900"), "line 9: DTSTART", "3.8.2.4"),
    "EXDATE dates without VALUE=DATE": (
        text("EXDATE:20260303"),
        "line 9: EXDATE in VEVENT",
        "3.8.5.1",
    ),
    "an empty EXDATE": (text("EXDATE:"), "line 9: EXDATE in VEVENT is ''", "3.8.5.1"),
    "an EXDATE list with a space": (
        text("EXDATE:20260303T090000Z, 20260304T090000Z"),
        "line 9: EXDATE",
        "3.8.5.1",
    ),
    "RDATE dates without VALUE=DATE": (
        text("RDATE:19970101"),
        "line 9: RDATE in VEVENT is '19970101'",
        "3.8.5.2",
    ),
    "an RDATE period of dates": (
        text("RDATE;VALUE=PERIOD:19970101/19970102"),
        "line 9: RDATE in VEVENT is '19970101/19970102', not periods",
        "3.8.5.2",
    ),
    "an RDATE period without VALUE=PERIOD": (
        text("RDATE:20260305T090000Z/PT1H"),
        "line 9: RDATE in VEVENT",
        "3.8.5.2",
    ),
    "an RDATE of times": (
        text("RDATE;VALUE=TIME:083000"),
        "line 9: RDATE in VEVENT has VALUE=TIME",
        "3.8.5.2",
    ),
    "CREATED on day 0": (text("CREATED:00000000T000000Z"), "line 9: CREATED in VEVENT", "3.8.7.1"),
    "a DTSTAMP that is a date": (
        text().replace("DTSTAMP:20260101T000000Z", "DTSTAMP:20260101"),
        "line 6: DTSTAMP in VEVENT is '20260101', not a date-time",
        "3.8.7.2",
    ),
    "LAST-MODIFIED text": (text("LAST-MODIFIED:yesterday"), "line 9: LAST-MODIFIED", "3.8.7.3"),
    "a DURATION without a time part": (
        text("DURATION:P1DT"),
        "line 9: DURATION in VEVENT",
        "3.8.2.5",
    ),
    "an empty DURATION": (text("DURATION:"), "line 9: DURATION in VEVENT is ''", "3.8.2.5"),
    "SEQUENCE text": (
        text("SEQUENCE:x"),
        "line 9: SEQUENCE in VEVENT is 'x', not an integer",
        "3.8.7.4",
    ),
    "PRIORITY text": (text("PRIORITY:high"), "line 9: PRIORITY", "3.8.1.9"),
    "GEO text": (text("GEO:abc"), "line 9: GEO", "3.8.1.6"),
    "REPEAT text": (
        text(*alarm("TRIGGER:-PT5M", "REPEAT:often")),
        "line 13: REPEAT in VALARM",
        "3.8.6.2",
    ),
    "a zone onset in UTC": (
        text(head=zone("DTSTART:19701025T030000Z", *ZONE_OK[1:])),
        "line 7: DTSTART in STANDARD is '19701025T030000Z', not a local date-time",
        "3.6.5",
    ),
    "a zone onset that is a date": (
        text(head=zone("DTSTART;VALUE=DATE:19701025", *ZONE_OK[1:])),
        "line 7: DTSTART in STANDARD has VALUE=DATE",
        "3.6.5",
    ),
    "a UTC offset of hours only": (
        text(head=zone(*ZONE_OK[:2], "TZOFFSETTO:+01")),
        "line 9: TZOFFSETTO in STANDARD is '+01', not a UTC offset",
        "3.8.3.4",
    ),
    "a UTC offset without a sign": (
        text(head=zone(ZONE_OK[0], "TZOFFSETFROM:0200", ZONE_OK[2])),
        "line 8: TZOFFSETFROM in STANDARD",
        "3.8.3.3",
    ),
}


@pytest.mark.parametrize("calendar", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_accepted(calendar: str) -> None:
    assert syntax_problem(calendar) is None


@pytest.mark.parametrize("calendar", [c for c in ACCEPTED.values() if "BEGIN:VTODO" not in c])
def test_what_is_accepted_reads_in_both_parsers(calendar: str) -> None:
    """The tolerances are tolerances because both parsers read them."""
    assert read_icalendar(calendar)
    assert read_vobject(calendar)


@pytest.mark.parametrize(("calendar", "start", "fragment"), REFUSED.values(), ids=REFUSED.keys())
def test_refused(calendar: str, start: str, fragment: str) -> None:
    problem = syntax_problem(calendar)
    assert problem is not None
    assert problem.startswith(start), problem
    assert fragment in problem, problem


# -- what libraries write is accepted --------------------------------------------------

_TEXTS = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=200)
_MOMENTS = st.datetimes(datetime(1, 1, 1), datetime(9999, 1, 1))


@settings(max_examples=200, deadline=None)
@given(
    summary=_TEXTS,
    description=_TEXTS,
    start=_MOMENTS,
    length=st.timedeltas(timedelta(0), timedelta(days=400)),
    trigger=st.timedeltas(timedelta(days=-400), timedelta(days=400)),
    day=st.dates(date(1, 1, 1), date(9999, 1, 1)),
)
def test_what_icalendar_writes_is_accepted(
    summary: str,
    description: str,
    start: datetime,
    length: timedelta,
    trigger: timedelta,
    day: date,
) -> None:
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//test//syntax//EN")
    calendar.add("version", "2.0")
    event = icalendar.Event()
    event.add("uid", "h1@test")
    event.add("dtstamp", start.replace(tzinfo=UTC))
    event.add("dtstart", start)
    event.add("duration", length)
    event.add("summary", summary)
    event.add("description", description)
    event.add("exdate", [day])
    event.add("x-param", "v", parameters={"CN": summary[:20]})
    reminder = icalendar.Alarm()
    reminder.add("action", "DISPLAY")
    reminder.add("description", "Reminder")
    reminder.add("trigger", trigger)
    event.add_component(reminder)
    calendar.add_component(event)
    assert syntax_problem(calendar.to_ical().decode("utf-8")) is None
