"""Health, metrics and request logs."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from gateway.core.model import OutboxEffect
from gateway.web.keys import REPOSITORY
from tests.conftest import ADMIN_PASSWORD, basic
from tests.samples import SLOT

Client = TestClient[Any, Any]


async def queue_stuck_item(client: Client) -> None:
    """An outbox item no handler knows: it is retried (with backoff) and never
    done, so it stays pending whatever the workers do meanwhile."""
    async with client.app[REPOSITORY].transaction() as tx:
        await tx.enqueue(OutboxEffect(kind="no-such-effect", resource_id="anna", booking_id="x"))


async def test_healthz_reports_database_and_outbox(client: Client) -> None:
    resp = await client.get("/healthz")
    assert resp.status == 200
    assert await resp.json() == {"status": "ok", "database": "ok", "outbox_pending": 0}
    await queue_stuck_item(client)
    assert (await (await client.get("/healthz")).json())["outbox_pending"] == 1


async def test_metrics_count_requests_by_route_template(
    client: Client, api_headers: dict[str, str]
) -> None:
    created = await client.post("/api/v1/bookings", json=SLOT, headers=api_headers)
    booking_id = (await created.json())["id"]
    await queue_stuck_item(client)
    await client.get(f"/api/v1/bookings/{booking_id}", headers=api_headers)
    await client.post("/api/v1/bookings", json=SLOT, headers=api_headers)  # 409
    await client.get("/feeds/anna.ics", params={"token": "anna-feed-token-0123456789abcdef"})

    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.content_type == "text/plain"
    text = await resp.text()
    assert (
        'calgateway_http_requests_total{method="GET",route="/api/v1/bookings/{booking_id}",'
        'status="200"} 1.0' in text
    )
    assert 'calgateway_booking_changes_total{action="created"} 1.0' in text
    assert "calgateway_booking_conflicts_total 1.0" in text
    pending = await client.app[REPOSITORY].pending_outbox()
    assert pending >= 1  # at least the stuck item
    assert f"calgateway_outbox_pending {float(pending)}" in text
    assert booking_id not in text
    assert "anna-feed-token" not in text


async def test_dav_requests_are_counted_by_route_template(client: Client) -> None:
    auth = basic("admin", ADMIN_PASSWORD)
    await client.request("PROPFIND", "/dav/calendars/anna/", headers={**auth, "Depth": "0"})
    await client.request("MOVE", "/dav/calendars/anna/x.ics", headers=auth)
    text = await (await client.get("/metrics")).text()
    assert (
        'calgateway_http_requests_total{method="PROPFIND",route="/dav/{path}",status="207"} 1.0'
        in text
    )
    assert 'method="MOVE",route="/dav/{path}",status="405"' in text
    assert "x.ics" not in text and "anna" not in text
