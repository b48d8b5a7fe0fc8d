"""Hostile and broken input to the booking API is a 4xx naming the problem,
never a 5xx, and never a booking that breaks the calendar for CalDAV
clients (issue 12, items 2 and 11)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.backends import Store
from tests.caldav.dav import reports
from tests.dbcheck import row_counts
from tests.samples import SLOT

Client = TestClient[Any, Any]

# Characters XML 1.0 cannot carry (CalDAV answers are XML): NUL, ESC, VT,
# U+FFFE, U+FFFF and a lone surrogate (JSON can spell it as "\ud800").
BAD_CHARACTERS = ["\x00", "\x1b", "\x0b", "\ufffe", "\uffff", "\ud800"]


async def post(client: Client, headers: dict[str, str], body: Any) -> tuple[int, Any]:
    # json.dumps escapes every non-ASCII character, so even a lone surrogate
    # goes out as the JSON text "\ud800".
    response = await client.post(
        "/api/v1/bookings",
        data=json.dumps(body),
        headers={**headers, "Content-Type": "application/json"},
    )
    return response.status, await response.json()


def field_errors(problem: Any) -> dict[str, str]:
    return {e["field"]: e["message"] for e in problem["errors"]}


@pytest.mark.parametrize("char", BAD_CHARACTERS, ids=[f"U+{ord(c):04X}" for c in BAD_CHARACTERS])
@pytest.mark.parametrize(
    ("field", "body"),
    [
        ("title", {"title": "Hair{}cut"}),
        ("description", {"description": "Short{}"}),
        ("location", {"location": "Chair{} 2"}),
        ("booker.name", {"booker": {"name": "Zo{}e", "email": "zoe@example.com"}}),
    ],
)
async def test_a_character_xml_cannot_carry_is_refused_naming_the_field(
    client: Client,
    api_headers: dict[str, str],
    store: Store,
    char: str,
    field: str,
    body: dict[str, Any],
) -> None:
    before = row_counts(store)
    filled = json.loads(json.dumps(body).replace("{}", json.dumps(char)[1:-1]))
    status, problem = await post(client, api_headers, {**SLOT, **filled})
    assert status == 422, problem
    message = field_errors(problem)[field]
    assert message.startswith(f"contains U+{ord(char):04X} at position ")
    assert "calendar clients cannot carry" in message
    assert row_counts(store) == before
    # And so the calendar keeps answering every client.
    assert {name: a.status for name, a in (await reports(client)).items()} == {
        "propfind": 207,
        "calendar-query": 207,
        "sync-collection": 207,
        "calendar-multiget": 207,
    }


async def test_a_patch_with_such_a_character_is_refused(
    client: Client, api_headers: dict[str, str]
) -> None:
    status, booking = await post(client, api_headers, SLOT)
    assert status == 201
    response = await client.patch(
        f"/api/v1/bookings/{booking['id']}", json={"title": "ESC\x1b"}, headers=api_headers
    )
    assert response.status == 422
    assert field_errors(await response.json()) == {
        "title": "contains U+001B at position 4, which calendar clients cannot carry"
    }


async def test_text_that_xml_carries_is_kept(client: Client, api_headers: dict[str, str]) -> None:
    title = "Tab\there, DEL\x7f, NEL\x85, emoji 🎉, replacement \ufffd"
    status, booking = await post(client, api_headers, {**SLOT, "title": title})
    assert status == 201, booking
    assert booking["title"] == title


# -- dates Python's datetime cannot shift --------------------------------------------

EDGE_TIMES = [
    ("0001-01-01T00:00:00+05:00", "0001-01-01T01:00:00+05:00"),
    ("0001-01-01T00:00:00Z", "0001-01-01T01:00:00Z"),
    ("9999-12-31T22:00:00-05:00", "9999-12-31T23:00:00-05:00"),
    ("9999-12-31T22:00:00Z", "9999-12-31T23:00:00Z"),
    ("1899-12-31T23:00:00Z", "1900-01-01T00:30:00Z"),
]


@pytest.mark.parametrize(("start", "end"), EDGE_TIMES)
async def test_a_booking_in_year_1_or_9999_is_refused_naming_the_field(
    client: Client, api_headers: dict[str, str], start: str, end: str
) -> None:
    status, problem = await post(client, api_headers, {**SLOT, "start": start, "end": end})
    assert status == 422, problem
    assert field_errors(problem)["start"].startswith("must lie between 1900 and 2199")


@pytest.mark.parametrize("moved", ["9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+14:00"])
async def test_moving_a_booking_to_year_1_or_9999_is_refused(
    client: Client, api_headers: dict[str, str], moved: str
) -> None:
    status, booking = await post(client, api_headers, SLOT)
    assert status == 201
    response = await client.patch(
        f"/api/v1/bookings/{booking['id']}", json={"end": moved}, headers=api_headers
    )
    assert response.status == 422
    assert "end" in field_errors(await response.json())


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/bookings?resource=anna&start={start}&end={end}",
        "/api/v1/resources/anna/availability?start={start}&end={end}",
    ],
)
@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("9999-12-31T00:00-12:00", "9999-12-31T10:00-12:00"),
        ("0001-01-01T10:00%2B14:00", "0001-01-02T00:00Z"),
    ],
)
async def test_a_query_window_in_year_1_or_9999_is_a_400(
    client: Client, api_headers: dict[str, str], path: str, start: str, end: str
) -> None:
    response = await client.get(path.format(start=start, end=end), headers=api_headers)
    assert response.status == 400
    assert "start" in field_errors(await response.json())


# -- JSON that crashes the standard library's reader ------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"resource": "anna", "start": ' + b"1" * 5000 + b"}", "has a number of 5000 characters"),
        (b"[" * 100_000 + b"]" * 100_000, "is nested deeper than 32 levels"),
        (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "is nested deeper than 32 levels"),
        (b'{"resource": "anna", "start": NaN}', "NaN is no JSON value"),
    ],
    ids=["5000-digit number", "100000 arrays", "100000 objects", "NaN"],
)
async def test_hostile_json_is_a_400_naming_the_body(
    client: Client, api_headers: dict[str, str], body: bytes, message: str
) -> None:
    for method, path in (("POST", "/api/v1/bookings"), ("PATCH", "/api/v1/bookings/x")):
        response = await client.request(
            method, path, data=body, headers={**api_headers, "Content-Type": "application/json"}
        )
        assert response.status == 400
        assert message in field_errors(await response.json())["body"]


# -- addresses no mail server would take -----------------------------------------------


@pytest.mark.parametrize("email", ["jörg@example.com", "joerg@exämple.de", "zoe@例え.jp"])
async def test_a_non_ascii_address_is_refused_naming_the_field(
    client: Client, api_headers: dict[str, str], store: Store, email: str
) -> None:
    status, problem = await post(
        client, api_headers, {**SLOT, "booker": {"name": "Jörg", "email": email}}
    )
    assert status == 422
    assert "must be an ASCII address" in field_errors(problem)["booker.email"]
    assert row_counts(store)["outbox"] == 0  # nothing left to retry for ever


async def test_an_international_domain_in_its_ascii_form_is_taken(
    client: Client, api_headers: dict[str, str]
) -> None:
    booker = {"name": "Jörg", "email": "joerg@xn--exmple-cua.de"}
    status, booking = await post(client, api_headers, {**SLOT, "booker": booker})
    assert status == 201
    assert booking["booker"]["email"] == "joerg@xn--exmple-cua.de"


# -- iTIP answers ----------------------------------------------------------------------


@pytest.mark.parametrize("charset", ["punycode", "foo", "base64", "idna"])
async def test_an_itip_answer_in_no_real_charset_is_a_400(
    client: Client, api_headers: dict[str, str], charset: str
) -> None:
    response = await client.post(
        "/api/v1/itip",
        data=b"BEGIN:VCALENDAR\r\nMETHOD:REPLY\r\nEND:VCALENDAR\r\n",
        headers={**api_headers, "Content-Type": f"text/calendar; charset={charset}"},
    )
    assert response.status == 400
    assert "charset" in field_errors(await response.json())["body"]


async def test_an_itip_answer_with_a_character_xml_cannot_carry_is_a_400(
    client: Client, api_headers: dict[str, str]
) -> None:
    reply = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nMETHOD:REPLY\r\nBEGIN:VEVENT\r\n"
        "UID:x@gateway.test\r\nDTSTAMP:20261120T100000Z\r\nCOMMENT:see you\x00\r\n"
        "ATTENDEE;PARTSTAT=ACCEPTED:mailto:zoe@example.com\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    response = await client.post(
        "/api/v1/itip",
        data=reply.encode(),
        headers={**api_headers, "Content-Type": "text/calendar; charset=utf-8"},
    )
    assert response.status == 400
    assert field_errors(await response.json())["body"] == (
        "COMMENT (line 8) contains U+0000 at column 16, which calendar clients cannot carry"
    )
