"""Free-busy for scheduling clients (RFC 6638 5; issue 16, CalDAV scheduling
item 3): the principal names its schedule outbox, and a VFREEBUSY request
POSTed there answers the busy time of each ATTENDEE that is a resource the
caller may read, and 3.7 for every other address. Raw HTTP here; the
python-caldav client is driven in test_interop_python_caldav.py."""

from __future__ import annotations

import icalendar
import pytest

from tests.caldav.dav import NS, Answer, event, propfind, put, request
from tests.conftest import READER_PASSWORD, AppClient, basic

READER = basic("reader", READER_PASSWORD)
OUTBOX = "/dav/principals/admin/outbox/"


def freebusy_request(
    *attendees: str,
    start: str = "20261201T000000Z",
    end: str = "20261202T000000Z",
    method: str = "REQUEST",
    organizer: str = "ORGANIZER:/dav/principals/admin/\r\n",
) -> str:
    lines = "".join(f"ATTENDEE:{a}\r\n" for a in attendees)
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//outbox//EN\r\n"
        f"METHOD:{method}\r\nBEGIN:VFREEBUSY\r\nUID:fb-1\r\nDTSTAMP:20261101T000000Z\r\n"
        f"DTSTART:{start}\r\nDTEND:{end}\r\n{organizer}{lines}"
        "END:VFREEBUSY\r\nEND:VCALENDAR\r\n"
    )


async def post(
    client: AppClient,
    body: str,
    *,
    path: str = OUTBOX,
    auth: dict[str, str] | None = None,
    content_type: str = "text/calendar; charset=utf-8",
) -> Answer:
    return await request(
        client,
        "POST",
        path,
        body.encode("utf-8"),
        headers={"Content-Type": content_type},
        auth=auth,
    )


def answers(answer: Answer) -> dict[str, tuple[str, str]]:
    """recipient -> (request-status, calendar-data) of a schedule-response."""
    root = answer.xml()
    assert root.tag == f"{{{NS['C']}}}schedule-response", answer.body
    found = {}
    for response in root.findall("C:response", NS):
        recipient = response.findtext("C:recipient/D:href", namespaces=NS)
        status = response.findtext("C:request-status", namespaces=NS) or ""
        found[recipient] = (status, response.findtext("C:calendar-data", namespaces=NS) or "")
    return found


def busy(calendar_text: str) -> list[tuple[str, str]]:
    """(period, FBTYPE) of the one VFREEBUSY of a REPLY, with its checks."""
    calendar = icalendar.Calendar.from_ical(calendar_text)
    assert str(calendar["METHOD"]) == "REPLY"
    [component] = calendar.walk("VFREEBUSY")
    assert str(component["UID"]) == "fb-1"
    assert str(component["ORGANIZER"]) == "/dav/principals/admin/"
    periods = component.get("FREEBUSY", [])
    periods = periods if isinstance(periods, list) else [periods]
    return [
        (
            f"{p.dt[0]:%Y%m%dT%H%M%SZ}/{p.dt[1]:%Y%m%dT%H%M%SZ}",
            str(p.params.get("FBTYPE", "BUSY")),
        )
        for p in periods
    ]


async def test_the_principal_names_its_outbox_inbox_and_address(client: AppClient) -> None:
    answer = await propfind(
        client,
        "/dav/principals/admin/",
        "C:schedule-outbox-URL",
        "C:schedule-inbox-URL",
        "C:calendar-user-address-set",
        "C:calendar-user-type",
    )
    assert answer.status == 207
    props = answer.props("/dav/principals/admin/")
    assert props["C:schedule-outbox-URL"].findtext("D:href", namespaces=NS) == OUTBOX
    assert props["C:schedule-inbox-URL"].findtext("D:href", namespaces=NS) == (
        "/dav/principals/admin/inbox/"
    )
    addresses = [h.text for h in props["C:calendar-user-address-set"].findall("D:href", NS)]
    assert addresses == ["/dav/principals/admin/"]
    assert props["C:calendar-user-type"].text == "INDIVIDUAL"


@pytest.mark.parametrize(
    ("path", "kind"),
    [(OUTBOX, "schedule-outbox"), ("/dav/principals/admin/inbox/", "schedule-inbox")],
)
async def test_propfind_on_the_scheduling_collections(
    client: AppClient, path: str, kind: str
) -> None:
    answer = await propfind(client, path, "D:resourcetype", "D:current-user-privilege-set")
    assert answer.status == 207, answer.body
    props = answer.props(path)
    types = [child.tag for child in props["D:resourcetype"]]
    assert types == [f"{{{NS['D']}}}collection", f"{{{NS['C']}}}{kind}"]
    if kind == "schedule-outbox":
        privileges = props["D:current-user-privilege-set"]
        assert privileges.find("D:privilege/C:schedule-send", NS) is not None


async def test_another_users_outbox_is_not_found(client: AppClient) -> None:
    answer = await propfind(client, "/dav/principals/reader/outbox/", "D:resourcetype")
    assert answer.status == 404


async def test_busy_and_free_resources_and_unknown_addresses(client: AppClient) -> None:
    assert (await put(client, "/dav/calendars/anna/a.ics", event("a"))).status == 201
    tentative = event("b", "20261201T120000Z", "20261201T130000Z", extra="STATUS:TENTATIVE\r\n")
    assert (await put(client, "/dav/calendars/anna/b.ics", tentative)).status == 201
    # Outside the asked span: not shown.
    later = event("c", "20261205T090000Z", "20261205T100000Z")
    assert (await put(client, "/dav/calendars/anna/c.ics", later)).status == 201
    answer = await post(
        client,
        freebusy_request(
            "mailto:Anna@Example.com", "mailto:room1@example.com", "mailto:zoe@example.com"
        ),
    )
    assert answer.status == 200, answer.body
    assert answer.headers["Content-Type"].startswith("application/xml")
    found = answers(answer)
    assert list(found) == [
        "mailto:Anna@Example.com",
        "mailto:room1@example.com",
        "mailto:zoe@example.com",
    ]
    status, data = found["mailto:Anna@Example.com"]
    assert status.startswith("2.0")
    assert busy(data) == [
        ("20261201T090000Z/20261201T100000Z", "BUSY"),
        ("20261201T120000Z/20261201T130000Z", "BUSY-TENTATIVE"),
    ]
    status, data = found["mailto:room1@example.com"]
    assert status.startswith("2.0")
    assert busy(data) == []  # free all day
    assert found["mailto:zoe@example.com"] == ("3.7;Invalid calendar user", "")


async def test_a_resource_the_user_may_not_read_looks_like_no_resource(
    client: AppClient,
) -> None:
    assert (await put(client, "/dav/calendars/bob/x.ics", event("x"))).status == 201
    assert (await put(client, "/dav/calendars/anna/y.ics", event("y"))).status == 201
    answer = await post(
        client,
        freebusy_request("mailto:bob@example.com", "mailto:anna@example.com", "mailto:no@x.org"),
        path="/dav/principals/reader/outbox/",
        auth=READER,
    )
    assert answer.status == 200, answer.body
    found = answers(answer)
    # bob exists and is busy, but reader may not read him: the same as no one.
    assert found["mailto:bob@example.com"] == found["mailto:no@x.org"]
    assert found["mailto:bob@example.com"][0].startswith("3.7")
    assert busy(found["mailto:anna@example.com"][1]) == [
        ("20261201T090000Z/20261201T100000Z", "BUSY")
    ]


async def test_post_to_another_users_outbox_is_forbidden(client: AppClient) -> None:
    for other in ("admin", "nobody-at-all"):
        answer = await post(
            client,
            freebusy_request("mailto:anna@example.com"),
            path=f"/dav/principals/{other}/outbox/",
            auth=READER,
        )
        assert answer.status == 403, answer.body
        assert "need-privileges" in answer.error()


async def test_post_elsewhere_is_not_allowed(client: AppClient) -> None:
    answer = await post(
        client, freebusy_request("mailto:anna@example.com"), path="/dav/calendars/anna/"
    )
    assert answer.status == 405
    assert "POST" in answer.headers["Allow"]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "condition"),
    [
        ("not a calendar", "text/calendar", 400, "valid-calendar-data"),
        (
            freebusy_request("mailto:anna@example.com"),
            "application/xml",
            415,
            "supported-calendar-data",
        ),
        (
            freebusy_request("mailto:anna@example.com", method="PUBLISH"),
            "text/calendar",
            400,
            "valid-scheduling-message",
        ),
        (
            freebusy_request("mailto:anna@example.com", organizer=""),
            "text/calendar",
            400,
            "valid-scheduling-message",
        ),
        (
            freebusy_request("mailto:anna@example.com", end="20261130T000000Z"),
            "text/calendar",
            400,
            "valid-scheduling-message",
        ),
        (
            freebusy_request("mailto:anna@example.com", start="20261201"),
            "text/calendar",
            400,
            "valid-scheduling-message",
        ),
        (freebusy_request(), "text/calendar", 400, "recipient-specified"),
        (event("e"), "text/calendar", 400, "valid-scheduling-message"),
        (
            freebusy_request("mailto:anna@example.com", end="20300101T000000Z"),
            "text/calendar",
            403,
            "max-date-time",
        ),
    ],
    ids=[
        "garbage",
        "xml",
        "publish",
        "no-organizer",
        "backwards",
        "date",
        "no-attendee",
        "vevent",
        "too-long",
    ],
)
async def test_bad_requests_name_the_precondition(
    client: AppClient, body: str, content_type: str, status: int, condition: str
) -> None:
    answer = await post(client, body, content_type=content_type)
    assert answer.status == status, answer.body
    assert condition in answer.error()
    assert answer.message()
