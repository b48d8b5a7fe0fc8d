"""The booking API through the real app, HTTP client and SQLite file."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.backends import Store
from tests.dbcheck import outbox_rows, row_counts
from tests.samples import SLOT

Client = TestClient[Any, Any]


async def create(client: Client, headers: dict[str, str], **changes: Any) -> Any:
    resp = await client.post("/api/v1/bookings", json={**SLOT, **changes}, headers=headers)
    return resp.status, await resp.json()


async def test_create_then_read_back(client: Client, api_headers: dict[str, str]) -> None:
    resp = await client.post("/api/v1/bookings", json=SLOT, headers=api_headers)
    assert resp.status == 201
    booking = await resp.json()
    assert resp.headers["Location"] == f"/api/v1/bookings/{booking['id']}"
    assert booking["status"] == "confirmed"
    assert booking["sequence"] == 0
    assert booking["timezone"] == "Europe/Berlin"  # the resource's zone by default
    assert booking["start"] == "2026-12-01T09:00:00+01:00"
    assert booking["booker"] == {
        "email": "zoe@example.com",
        "name": "Zoë Müller",
        "partstat": "NEEDS-ACTION",
    }
    again = await client.get(resp.headers["Location"], headers=api_headers)
    assert again.status == 200
    assert await again.json() == booking

    listed = await client.get(
        "/api/v1/bookings",
        params={"resource": "anna", "start": "2026-12-01T00:00:00Z", "end": "2026-12-02T00:00Z"},
        headers=api_headers,
    )
    assert [b["id"] for b in (await listed.json())["bookings"]] == [booking["id"]]


async def test_start_in_other_zone_is_shown_in_booking_zone(
    client: Client, api_headers: dict[str, str]
) -> None:
    status, booking = await create(
        client,
        api_headers,
        start="2026-12-01T08:00:00Z",
        end="2026-12-01T09:00:00Z",
        timezone="Asia/Tokyo",
    )
    assert status == 201
    assert booking["timezone"] == "Asia/Tokyo"
    assert booking["start"] == "2026-12-01T17:00:00+09:00"


async def test_double_booking_is_refused_with_the_conflicting_span(
    client: Client, api_headers: dict[str, str], store: Store
) -> None:
    assert (await create(client, api_headers))[0] == 201
    before = row_counts(store)
    status, problem = await create(
        client, api_headers, start="2026-12-01T09:30:00+01:00", end="2026-12-01T11:00:00+01:00"
    )
    assert status == 409
    assert problem["conflicts"] == [
        {"start": "2026-12-01T08:00:00Z", "end": "2026-12-01T09:00:00Z"}
    ]
    assert "Haircut" not in json.dumps(problem)  # other bookers' details do not leak
    assert row_counts(store) == before


async def test_a_double_booking_409_names_the_span_in_its_status_line(
    client: Client, api_headers: dict[str, str]
) -> None:
    """As CalDAV's: a client that logs only the status line learns what is
    in the way (in UTC), and the problem document keeps every span."""
    assert (await create(client, api_headers))[0] == 201
    resp = await client.post(
        "/api/v1/bookings",
        json={**SLOT, "start": "2026-12-01T09:30:00+01:00", "end": "2026-12-01T11:00:00+01:00"},
        headers=api_headers,
    )
    assert resp.status == 409
    assert resp.reason == "Conflict: busy 2026-12-01 08:00-09:00 UTC"
    assert (await resp.json())["conflicts"] == [
        {"start": "2026-12-01T08:00:00Z", "end": "2026-12-01T09:00:00Z"}
    ]


async def test_touching_bookings_and_other_resources_do_not_conflict(
    client: Client, api_headers: dict[str, str]
) -> None:
    assert (await create(client, api_headers))[0] == 201
    after = await create(
        client, api_headers, start="2026-12-01T10:00:00+01:00", end="2026-12-01T11:00:00+01:00"
    )
    assert after[0] == 201
    other = await create(client, api_headers, resource="bob")
    assert other[0] == 201


async def test_concurrent_overlapping_creates_yield_exactly_one_booking(
    client: Client, api_headers: dict[str, str], store: Store
) -> None:
    attempts = [
        create(
            client,
            api_headers,
            start=f"2026-12-02T09:{minute:02d}:00+01:00",
            end="2026-12-02T10:30:00+01:00",
            title=f"attempt {minute}",
        )
        for minute in range(0, 50, 5)
    ]
    results = await asyncio.gather(*attempts)
    statuses = sorted(status for status, _ in results)
    assert statuses == [201] + [409] * 9
    assert row_counts(store)["objects"] == 1


async def test_idempotency_key_returns_the_first_booking(
    client: Client, api_headers: dict[str, str], store: Store
) -> None:
    headers = {**api_headers, "Idempotency-Key": "order-42"}
    first = await client.post("/api/v1/bookings", json=SLOT, headers=headers)
    retry = await client.post("/api/v1/bookings", json=SLOT, headers=headers)
    assert first.status == 201 and retry.status == 201
    assert (await first.json())["id"] == (await retry.json())["id"]
    assert row_counts(store)["objects"] == 1

    other = await client.post(
        "/api/v1/bookings", json={**SLOT, "title": "Something else"}, headers=headers
    )
    assert other.status == 422
    assert (await other.json())["errors"][0]["field"] == "Idempotency-Key"
    assert row_counts(store)["objects"] == 1


async def test_concurrent_retries_with_one_idempotency_key_create_one_booking(
    client: Client, api_headers: dict[str, str], store: Store
) -> None:
    headers = {**api_headers, "Idempotency-Key": "retry-storm"}
    results = await asyncio.gather(
        *(client.post("/api/v1/bookings", json=SLOT, headers=headers) for _ in range(5))
    )
    assert {r.status for r in results} == {201}
    assert len({(await r.json())["id"] for r in results}) == 1
    assert row_counts(store)["objects"] == 1


BAD_BODIES = [
    pytest.param({**SLOT, "colour": "red"}, "colour", id="unknown-field"),
    pytest.param(
        {**SLOT, "booker": {**SLOT["booker"], "phone": "1"}},
        "booker.phone",
        id="unknown-nested-field",
    ),
    pytest.param({**SLOT, "end": "2026-12-01T08:00:00+01:00"}, "end", id="end-before-start"),
    pytest.param({**SLOT, "end": SLOT["start"]}, "end", id="zero-length"),
    pytest.param({**SLOT, "start": "2026-12-01T09:00:00"}, "start", id="naive-start"),
    pytest.param({**SLOT, "end": "2026-12-01T10:00:00"}, "end", id="naive-end"),
    pytest.param({**SLOT, "start": "tomorrow"}, "start", id="not-a-datetime"),
    pytest.param({**SLOT, "timezone": "Europe/Atlantis"}, "timezone", id="unknown-timezone"),
    pytest.param({**SLOT, "resource": "nobody"}, "resource", id="unknown-resource"),
    pytest.param({k: v for k, v in SLOT.items() if k != "title"}, "title", id="missing-title"),
    pytest.param({**SLOT, "title": "   "}, "title", id="blank-title"),
    pytest.param({**SLOT, "booker": {"email": "not-an-address"}}, "booker.email", id="bad-email"),
    pytest.param({**SLOT, "end": "2027-03-01T10:00:00+01:00"}, "end", id="too-long"),
]


@pytest.mark.parametrize(("body", "field"), BAD_BODIES)
async def test_bad_input_is_refused_naming_the_field_and_writes_nothing(
    client: Client, api_headers: dict[str, str], store: Store, body: dict[str, Any], field: str
) -> None:
    await client.get("/healthz")  # the database exists before we count
    before = row_counts(store)
    resp = await client.post("/api/v1/bookings", json=body, headers=api_headers)
    assert resp.status == 422
    assert resp.content_type == "application/problem+json"
    problem = await resp.json()
    assert field in [e["field"] for e in problem["errors"]], problem
    assert row_counts(store) == before


@pytest.mark.parametrize(
    ("data", "content_type", "status"),
    [
        pytest.param(b'{"resource": "anna",', "application/json", 400, id="truncated-json"),
        pytest.param(b"[1, 2]", "application/json", 400, id="not-an-object"),
        pytest.param(b"\xff\xfe", "application/json", 400, id="not-utf8"),
        pytest.param(b"resource=anna", "application/x-www-form-urlencoded", 415, id="form"),
    ],
)
async def test_malformed_body_is_refused_and_writes_nothing(
    client: Client,
    api_headers: dict[str, str],
    store: Store,
    data: bytes,
    content_type: str,
    status: int,
) -> None:
    await client.get("/healthz")
    before = row_counts(store)
    resp = await client.post(
        "/api/v1/bookings", data=data, headers={**api_headers, "Content-Type": content_type}
    )
    assert resp.status == status
    problem = await resp.json()
    assert problem["status"] == status and problem["detail"]
    assert row_counts(store) == before


async def test_oversized_body_is_refused_with_413(
    client: Client, api_headers: dict[str, str], store: Store
) -> None:
    await client.get("/healthz")
    before = row_counts(store)
    body = {**SLOT, "description": "x" * 2_000_000}
    resp = await client.post("/api/v1/bookings", json=body, headers=api_headers)
    assert resp.status == 413
    assert row_counts(store) == before


async def test_reschedule_bumps_sequence_and_checks_conflicts(
    client: Client, api_headers: dict[str, str], store: Store
) -> None:
    _, first = await create(client, api_headers)
    _, second = await create(
        client, api_headers, start="2026-12-01T11:00:00+01:00", end="2026-12-01T12:00:00+01:00"
    )
    url = f"/api/v1/bookings/{first['id']}"

    moved = await client.patch(
        url,
        json={"start": "2026-12-01T13:00:00+01:00", "end": "2026-12-01T14:00:00+01:00"},
        headers=api_headers,
    )
    assert moved.status == 200
    body = await moved.json()
    assert body["sequence"] == 1 and body["start"] == "2026-12-01T13:00:00+01:00"

    before = row_counts(store)
    clash = await client.patch(
        url, json={"start": "2026-12-01T11:30:00+01:00"}, headers=api_headers
    )
    assert clash.status == 409
    assert row_counts(store) == before
    unchanged = await (await client.get(url, headers=api_headers)).json()
    assert unchanged["start"] == "2026-12-01T13:00:00+01:00" and unchanged["sequence"] == 1

    # Shrinking a booking inside its own slot never conflicts with itself.
    shrink = await client.patch(url, json={"end": "2026-12-01T13:30:00+01:00"}, headers=api_headers)
    assert shrink.status == 200
    assert (await shrink.json())["sequence"] == 2
    assert second["id"] != first["id"]


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        pytest.param({"start": "2026-12-01T12:00:00+01:00"}, "end", id="start-after-end"),
        pytest.param({"end": "2026-12-01T10:00:00"}, "end", id="naive"),
        pytest.param({"title": None}, "title", id="null-title"),
        pytest.param({"sequence": 7}, "sequence", id="unknown-field"),
        pytest.param({}, "body", id="empty"),
        pytest.param({"timezone": "Mars/Olympus"}, "timezone", id="unknown-zone"),
    ],
)
async def test_bad_patch_is_refused_and_changes_nothing(
    client: Client, api_headers: dict[str, str], store: Store, patch: dict[str, Any], field: str
) -> None:
    _, booking = await create(client, api_headers)
    before = row_counts(store)
    resp = await client.patch(f"/api/v1/bookings/{booking['id']}", json=patch, headers=api_headers)
    assert resp.status == 422
    assert field in [e["field"] for e in (await resp.json())["errors"]]
    assert row_counts(store) == before


async def test_cancel_frees_the_slot_and_is_kept_as_cancelled(
    client: Client, api_headers: dict[str, str], store: Store
) -> None:
    _, booking = await create(client, api_headers)
    url = f"/api/v1/bookings/{booking['id']}"
    resp = await client.delete(url, headers=api_headers)
    assert resp.status == 200
    cancelled = await resp.json()
    assert cancelled["status"] == "cancelled" and cancelled["sequence"] == 1
    assert (await (await client.get(url, headers=api_headers)).json())["status"] == "cancelled"

    again = await client.delete(url, headers=api_headers)
    assert (await again.json())["sequence"] == 1  # cancelling twice changes nothing

    change = await client.patch(url, json={"title": "x"}, headers=api_headers)
    assert change.status == 422

    assert (await create(client, api_headers))[0] == 201  # the slot is free again


async def test_listing_an_unknown_resource_names_the_parameter(
    client: Client, api_headers: dict[str, str]
) -> None:
    resp = await client.get("/api/v1/bookings", params={"resource": "ghost"}, headers=api_headers)
    assert resp.status == 400
    assert (await resp.json())["errors"] == [
        {"field": "resource", "message": "unknown resource 'ghost'"}
    ]


async def test_unknown_booking_is_404(client: Client, api_headers: dict[str, str]) -> None:
    for method in ("GET", "DELETE"):
        resp = await client.request(method, "/api/v1/bookings/nope", headers=api_headers)
        assert resp.status == 404
        assert (await resp.json())["title"] == "Not found"


async def test_every_change_queues_one_invitation_for_the_booker(
    client: Client, api_headers: dict[str, str], store: Store
) -> None:
    _, booking = await create(client, api_headers)
    url = f"/api/v1/bookings/{booking['id']}"
    await client.patch(url, json={"start": "2026-12-01T08:00:00+01:00"}, headers=api_headers)
    await client.delete(url, headers=api_headers)
    rows = outbox_rows(store)
    assert [(kind, bid) for kind, bid, _ in rows] == [("invitation", booking["id"])] * 3
    payloads = [json.loads(p) for _, _, p in rows]
    assert [(p["action"], p["sequence"]) for p in payloads] == [
        ("created", 0),
        ("rescheduled", 1),
        ("cancelled", 2),
    ]

    status, _ = await create(client, api_headers, resource="bob", booker=None)
    assert status == 201
    assert len(outbox_rows(store)) == 3  # nobody to invite


async def test_availability_merges_and_clips_busy_time(
    client: Client, api_headers: dict[str, str]
) -> None:
    await create(client, api_headers)  # 08:00-09:00Z
    await create(
        client, api_headers, start="2026-12-01T10:00:00+01:00", end="2026-12-01T11:00:00+01:00"
    )  # touching: 09:00-10:00Z
    await create(
        client, api_headers, start="2026-12-01T15:00:00+01:00", end="2026-12-01T16:00:00+01:00"
    )
    _, cancelled = await create(
        client, api_headers, start="2026-12-01T17:00:00+01:00", end="2026-12-01T18:00:00+01:00"
    )
    await client.delete(f"/api/v1/bookings/{cancelled['id']}", headers=api_headers)
    resp = await client.get(
        "/api/v1/resources/anna/availability",
        params={"start": "2026-12-01T08:30:00Z", "end": "2026-12-01T23:00:00Z"},
        headers=api_headers,
    )
    assert resp.status == 200
    assert (await resp.json())["busy"] == [
        {"start": "2026-12-01T08:30:00Z", "end": "2026-12-01T10:00:00Z"},
        {"start": "2026-12-01T14:00:00Z", "end": "2026-12-01T15:00:00Z"},
    ]


async def test_availability_accepts_an_unencoded_plus_offset(
    client: Client, api_headers: dict[str, str]
) -> None:
    await create(client, api_headers)
    resp = await client.get(
        "/api/v1/resources/anna/availability?start=2026-12-01T00:00:00+01:00"
        "&end=2026-12-02T00:00:00+01:00",
        headers=api_headers,
    )
    assert resp.status == 200
    assert len((await resp.json())["busy"]) == 1


@pytest.mark.parametrize(
    ("query", "field"),
    [
        pytest.param({"end": "2026-12-02T00:00:00Z"}, "start", id="missing-start"),
        pytest.param(
            {"start": "2026-12-01T00:00:00", "end": "2026-12-02T00:00:00Z"}, "start", id="naive"
        ),
        pytest.param(
            {"start": "2026-12-02T00:00:00Z", "end": "2026-12-01T00:00:00Z"}, "end", id="reversed"
        ),
        pytest.param({"start": "soon", "end": "2026-12-01T00:00:00Z"}, "start", id="garbage"),
        pytest.param(
            {"start": "2000-01-01T00:00:00Z", "end": "2026-12-01T00:00:00Z"}, "end", id="too-wide"
        ),
    ],
)
async def test_bad_availability_query_names_the_parameter(
    client: Client, api_headers: dict[str, str], query: dict[str, str], field: str
) -> None:
    resp = await client.get(
        "/api/v1/resources/anna/availability", params=query, headers=api_headers
    )
    assert resp.status == 400
    assert (await resp.json())["errors"][0]["field"] == field


async def test_availability_of_unknown_resource_is_404(
    client: Client, api_headers: dict[str, str]
) -> None:
    resp = await client.get(
        "/api/v1/resources/ghost/availability",
        params={"start": "2026-12-01T00:00:00Z", "end": "2026-12-02T00:00:00Z"},
        headers=api_headers,
    )
    assert resp.status == 404
