"""Random hostile input to the API and CalDAV (a fixed seed, a few hundred
requests): no answer is a 5xx, and the calendar answers every client after."""

from __future__ import annotations

import json
import random
from typing import Any

from tests.caldav.dav import event, put, reports, request, sync_body
from tests.conftest import AppClient
from tests.samples import SLOT

ODD_TEXT = [
    "\x00", "\x1b", "\x0b", "\ufffe", "\uffff", "\ud800", "\udfff", "\r\n", "\t", "\x7f",
    "🎉", "é", "", " ", "x" * 1100, "%00", "\\", '"', "<D:x/>", "]]>", "&amp;",
]  # fmt: skip
# Text a PUT body can hold (UTF-8 has no lone surrogates), short enough.
PUT_TEXT = [t for t in ODD_TEXT if len(t) < 10 and not 0xD800 <= ord(t[:1] or "a") <= 0xDFFF]
ODD_TIMES = [
    "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0001-01-01", "9999-12-31T23:59Z",
    "2026-12-01T09:00:00+23:59", "2026-02-30T09:00Z", "1e999", "-1", "2026-12-01T09:00:00",
    "2026-12-01T09:00:00.123456789Z", "+002026-12-01T09:00Z", "2026-W49-1T09:00Z",
]  # fmt: skip
ODD_VALUES: list[Any] = [None, 0, -1, 10**30, 1.5, True, [], {}, [[[[[]]]]], "x"]


def hostile_body(rnd: random.Random) -> Any:
    body: dict[str, Any] = dict(SLOT)
    for _ in range(rnd.randint(1, 3)):
        key = rnd.choice(["resource", "start", "end", "title", "timezone", "description",
                          "location", "booker", "extra"])  # fmt: skip
        pool = ODD_TIMES if key in ("start", "end") else ODD_TEXT
        choice = rnd.random()
        if choice < 0.6:
            body[key] = (
                f"Hair{rnd.choice(pool)}cut" if key not in ("start", "end") else rnd.choice(pool)
            )
        elif choice < 0.8:
            body[key] = rnd.choice(ODD_VALUES)
        else:
            body["booker"] = {
                "name": rnd.choice(ODD_TEXT),
                "email": f"a{rnd.choice(ODD_TEXT)}@b.cd",
            }
    return body


async def test_no_hostile_request_is_a_5xx(client: AppClient, api_headers: dict[str, str]) -> None:
    rnd = random.Random(12)
    statuses: list[tuple[int, str]] = []
    created = await client.post("/api/v1/bookings", json=SLOT, headers=api_headers)
    booking_id = (await created.json())["id"]
    for n in range(150):
        body = json.dumps(hostile_body(rnd))
        for method, path in (
            ("POST", "/api/v1/bookings"),
            ("PATCH", f"/api/v1/bookings/{booking_id}"),
        ):
            response = await client.request(
                method, path, data=body, headers={**api_headers, "Content-Type": "application/json"}
            )
            statuses.append((response.status, f"{method} {body[:120]}"))
            if response.status == 201:
                await client.delete(f"/api/v1/bookings/{(await response.json())['id']}",
                                    headers=api_headers)  # fmt: skip
        start, end = rnd.choice(ODD_TIMES), rnd.choice(ODD_TIMES)
        for path in ("/api/v1/bookings?resource=anna", "/api/v1/resources/anna/availability?"):
            response = await client.get(
                path, params={"start": start, "end": end}, headers=api_headers
            )
            statuses.append((response.status, f"GET {path} {start} {end}"))
        summary = "".join(rnd.choice(PUT_TEXT) for _ in range(2))
        answer = await put(client, f"/dav/calendars/anna/f{n}.ics", event(f"f{n}", summary=summary))
        statuses.append((answer.status, f"PUT {summary!r}"))
        token = f"urn:calgateway:sync:anna:{rnd.choice(['1' * rnd.randint(1, 40), '²', '-1', ''])}"
        answer = await request(client, "REPORT", "/dav/calendars/anna/", sync_body(token))
        statuses.append((answer.status, f"sync {token[:60]}"))
    assert [s for s in statuses if s[0] >= 500] == []
    assert {name: a.status for name, a in (await reports(client)).items()} == {
        "propfind": 207,
        "calendar-query": 207,
        "sync-collection": 207,
        "calendar-multiget": 207,
    }
